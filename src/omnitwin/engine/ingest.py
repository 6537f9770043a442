"""Discovery ingest: apply observations to devices and re-evaluate drift.

An observation matches a device by, in this order:

1. hostname: the observed name (lower case, domain removed) equals a
   device's whole hostname without case, or the host label of exactly one
   device. A label that several devices share (``spine-01.nyc1`` and
   ``spine-01.sfo1``) is narrowed by serial or address, else it is ambiguous.
2. serial number, compared without case, when one device has it.
3. management address, or any address the source reported, when one device
   has it as management address.

A matched observation is merged into the device's detected state: maps are
merged key by key and every other value is replaced, so a new NAPALM
``get_interfaces`` run updates interface fields without dropping the
addresses that ``get_interfaces_ip`` reported. ``last_seen`` and ``source``
are stamped at the top, and ``sources.<source>`` keeps each source's own
``last_seen`` and ``ingested_at``.

LLDP and CDP neighbours replace the detected links that the device reported
before. A neighbour's remote name resolves by whole hostname, then by a
label that one device has, then by the intended cable on the local port,
then by a label that one device of the reporter's site has.

An observation that matches no device is returned in the report with the
reason, and stored in the ``observations`` table unless ``keep_unmatched``
is False. Each ingest appends one ``discovery.ingest`` audit event naming
the devices it updated.
"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from omnitwin._ids import new_id
from omnitwin.engine.audit import AuditEntry, AuditLog
from omnitwin.engine.context import Context
from omnitwin.engine.devices import DeviceService, flat_json, host_label
from omnitwin.engine.discovery import (
    Observation,
    load_napalm_case,
    normalize_hostname,
    parse_cli,
    parse_napalm,
    parse_nmap_xml,
)
from omnitwin.engine.discovery.batfish import parse_batfish, read_snapshot
from omnitwin.engine.driftstore import DriftService, detected_view
from omnitwin.engine.store import Store, utc_now
from omnitwin.engine.topostore import TopologyService
from omnitwin.errors import ValidationError
from omnitwin.models import IngestReport

if TYPE_CHECKING:
    from omnitwin.sample import SampleNetwork

__all__ = [
    "FORMATS",
    "OBSERVATIONS_SCHEMA",
    "IngestService",
    "add_cli_commands",
    "sample_detected_state",
]

logger = logging.getLogger(__name__)

FORMATS = ("napalm", "cli", "nmap", "batfish")

OBSERVATIONS_SCHEMA = """
CREATE TABLE IF NOT EXISTS observations (
    id VARCHAR NOT NULL,
    workspace VARCHAR NOT NULL,
    source VARCHAR NOT NULL,
    hostname VARCHAR,
    serial VARCHAR,
    management_address VARCHAR,
    state VARCHAR NOT NULL,
    observed_at VARCHAR,
    ingested_at VARCHAR NOT NULL,
    reason VARCHAR NOT NULL
);
"""


@dataclass(slots=True)
class _Index:
    """Lookups from observed names to device ids of one workspace."""

    site: dict[str, str] = field(default_factory=dict)
    hostname: dict[str, str] = field(default_factory=dict)
    label: dict[str, list[str]] = field(default_factory=dict)
    serial: dict[str, list[str]] = field(default_factory=dict)
    address: dict[str, list[str]] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)
    cabled: dict[tuple[str, str], str] = field(default_factory=dict)


def _load_index(conn: duckdb.DuckDBPyConnection, workspace: str) -> _Index:
    index = _Index()
    rows = conn.execute(
        "SELECT id, hostname, host_label, serial, management_address, site "
        "FROM devices WHERE workspace = ?",
        [workspace],
    ).fetchall()
    for device_id, hostname, label, serial, address, site in rows:
        index.site[device_id] = site
        index.names[device_id] = hostname
        index.hostname[hostname.lower()] = device_id
        index.label.setdefault(label, []).append(device_id)
        if serial:
            index.serial.setdefault(serial.lower(), []).append(device_id)
        if address:
            index.address.setdefault(address, []).append(device_id)
    cables = conn.execute(
        "SELECT a, port_a, b, port_b FROM links WHERE workspace = ? "
        "AND kind = 'intended'",
        [workspace],
    ).fetchall()
    for a, port_a, b, port_b in cables:
        index.cabled[(a, port_a or "")] = b
        index.cabled[(b, port_b or "")] = a
    return index


def _match(index: _Index, obs: Observation, hint: str | None) -> tuple[str | None, str]:
    """Return ``(device id, what matched)`` or ``(None, reason)``."""
    name = hint or obs.hostname
    by_name: list[str] = []
    if name:
        exact = index.hostname.get(name.lower())
        if exact is not None:
            return exact, "hostname"
        by_name = index.label.get(host_label(name), [])
        if len(by_name) == 1:
            return by_name[0], "hostname"
    by_serial = index.serial.get((obs.serial or "").lower(), [])
    addresses = [obs.management_address, *obs.state.get("addresses", [])]
    by_address = [d for a in addresses if a for d in index.address.get(a, [])]
    for ids, how in ((by_serial, "serial"), (by_address, "management_address")):
        narrowed = [d for d in ids if not by_name or d in by_name]
        if len(set(narrowed)) == 1:
            return narrowed[0], how
    if len(by_name) > 1:
        return None, f"hostname {name!r} matches {len(by_name)} devices"
    if not (name or obs.serial or obs.management_address):
        return None, "the observation names no hostname, serial or address"
    return None, "no device has this hostname, serial or management address"


def _resolve_remote(
    index: _Index, reporter: str, local_port: str, remote: str
) -> str | None:
    """Find the device a neighbour names: exact name, unique label, cable, site."""
    exact = index.hostname.get(remote.lower())
    if exact is not None:
        return exact
    candidates = index.label.get(remote.lower(), [])
    if len(candidates) == 1:
        return candidates[0]
    cabled = index.cabled.get((reporter, local_port))
    if cabled in candidates:
        return cabled
    same_site = [d for d in candidates if index.site[d] == index.site[reporter]]
    return same_site[0] if len(same_site) == 1 else None


def merge_state(current: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """Merge an observed state into a stored one: maps by key, other values replaced.

    Examples
    --------
    >>> merge_state({"interfaces": {"Ethernet1": {"mtu": 1500}}, "os": "a"},
    ...             {"interfaces": {"Ethernet1": {"oper_up": False}}, "os": "b"})
    {'interfaces': {'Ethernet1': {'mtu': 1500, 'oper_up': False}}, 'os': 'b'}
    """
    merged = dict(current)
    for key, value in new.items():
        old = merged.get(key)
        if isinstance(old, Mapping) and isinstance(value, Mapping):
            merged[key] = merge_state(old, value)
        else:
            merged[key] = value
    return merged


class IngestService:
    """Parse discovery data and apply it to devices, links and drift."""

    def __init__(
        self,
        store: Store,
        audit: AuditLog,
        devices: DeviceService,
        drift: DriftService,
        topology: TopologyService,
    ) -> None:
        self.store = store
        self.audit = audit
        self.devices = devices
        self.drift = drift
        self.topology = topology
        store.ensure_schema(OBSERVATIONS_SCHEMA)

    def ingest(
        self,
        ctx: Context,
        format: str,
        data: Any,
        *,
        platform: str | None = None,
        command: str | None = None,
        hostname: str | None = None,
        keep_unmatched: bool = True,
    ) -> IngestReport:
        """Parse discovery output and apply it to the matching devices.

        Parameters
        ----------
        format : {"napalm", "cli", "nmap", "batfish"}
            ``napalm``: a map of getter name to getter output, a list of
            such maps (one per device), or that JSON as text. ``cli``: the
            text output of one command, with ``platform`` and ``command``.
            ``nmap``: Nmap XML text (``-oX``). ``batfish``: a snapshot as
            the map of its files that
            :func:`~omnitwin.engine.discovery.batfish.read_snapshot` returns.
        data : Any
            The discovery output.
        platform, command : str, optional
            For ``cli``: the ntc-templates platform, e.g. ``"cisco_ios"``,
            and the full command, e.g. ``"show lldp neighbors"``.
        hostname : str, optional
            The device the output came from. Needed for neighbour tables,
            which do not name the local device.
        keep_unmatched : bool
            Store observations that match no device in ``observations``.

        Returns
        -------
        IngestReport
            Matched and unmatched observations, links and drift counts.

        Raises
        ------
        ValidationError
            An unknown format, missing platform or command, or input that
            the parser rejects.
        """
        observations = parse_observations(format, data, platform, command)
        return self.ingest_observations(
            ctx,
            observations,
            format=format,
            hostname=hostname,
            keep_unmatched=keep_unmatched,
        )

    def ingest_observations(
        self,
        ctx: Context,
        observations: Iterable[Observation],
        *,
        format: str = "observations",
        hostname: str | None = None,
        keep_unmatched: bool = True,
    ) -> IngestReport:
        """Apply parsed observations in one transaction; see :meth:`ingest`."""
        observed = list(observations)
        now = utc_now()
        matched: list[dict[str, Any]] = []
        unmatched: list[dict[str, Any]] = []
        unresolved: list[dict[str, Any]] = []
        links = 0
        with self.store.transaction() as conn:
            index = _load_index(conn, ctx.workspace)
            stored = self._load_detected(conn, ctx, observed, index, hostname)
            states: dict[str, dict[str, Any]] = {}
            for obs in observed:
                device_id, how = _match(index, obs, hostname)
                if device_id is None:
                    unmatched.append(_describe(obs, how))
                    if keep_unmatched:
                        self._keep(conn, ctx, obs, how, now)
                    continue
                current = states.get(device_id, stored.get(device_id, {}))
                states[device_id] = _stamp(merge_state(current, obs.state), obs, now)
                matched.append(
                    {
                        "device_id": device_id,
                        "hostname": index.names[device_id],
                        "source": obs.source,
                        "matched_by": how,
                    }
                )
                if "neighbors" in obs.state:
                    resolved, missing = self._neighbors(index, device_id, obs)
                    unresolved += missing
                    links += self.topology.replace_detected(
                        conn, ctx, device_id, resolved
                    )
            self._save(conn, ctx, states, now, format)
            result = self.drift.evaluate(conn, ctx, sorted(states))
        logger.info(
            "ingested %d %s observations: %d matched, %d unmatched",
            len(observed),
            format,
            len(matched),
            len(unmatched),
        )
        return IngestReport(
            format=format,
            observations=len(observed),
            matched=matched,
            unmatched=unmatched,
            detected_links=links,
            unresolved_neighbors=unresolved,
            drift_opened=result.opened,
            drift_closed=result.closed,
        )

    @staticmethod
    def _load_detected(
        conn: duckdb.DuckDBPyConnection,
        ctx: Context,
        observed: list[Observation],
        index: _Index,
        hint: str | None,
    ) -> dict[str, dict[str, Any]]:
        """Read the detected states of every device the observations match."""
        ids = sorted({d for obs in observed if (d := _match(index, obs, hint)[0])})
        rows = conn.execute(
            "SELECT id, detected_state FROM devices WHERE workspace = ? "
            "AND id IN (SELECT unnest(?::VARCHAR[]))",
            [ctx.workspace, ids],
        ).fetchall()
        return {row[0]: json.loads(row[1]) for row in rows}

    @staticmethod
    def _neighbors(
        index: _Index, device_id: str, obs: Observation
    ) -> tuple[list[tuple[str, str, str]], list[dict[str, Any]]]:
        resolved, unresolved = [], []
        for neighbor in obs.neighbors:
            remote = _resolve_remote(
                index, device_id, neighbor.local_port, neighbor.remote_host
            )
            if remote is None:
                unresolved.append({"device_id": device_id, "neighbor": neighbor.name})
            else:
                resolved.append((neighbor.local_port, remote, neighbor.remote_port))
        return resolved, unresolved

    def _save(
        self,
        conn: duckdb.DuckDBPyConnection,
        ctx: Context,
        states: dict[str, dict[str, Any]],
        now: str,
        format: str,
    ) -> None:
        if not states:
            return
        dumps = json.dumps
        conn.execute(
            "UPDATE devices SET detected_state = s.state, detected_flat = s.flat, "
            "observed_at = ? FROM (SELECT unnest(?::VARCHAR[]) AS id, "
            "unnest(?::VARCHAR[]) AS state, unnest(?::VARCHAR[]) AS flat) s "
            "WHERE devices.workspace = ? AND devices.id = s.id",
            [
                now,
                list(states),
                [dumps(s, sort_keys=True, default=str) for s in states.values()],
                [flat_json(detected_view(s)) for s in states.values()],
                ctx.workspace,
            ],
        )
        # One audit event per ingest: the detected state is observation, not
        # intent, so it does not get an event per device.
        entry = AuditEntry(
            f"discovery:{ctx.workspace}",
            "discovery.ingest",
            ctx.actor,
            ctx.intent,
            {"before": None, "after": {"format": format, "devices": sorted(states)}},
        )
        self.audit.append(conn, ctx.workspace, entry)
        self.devices.notify_commit(ctx.workspace)

    @staticmethod
    def _keep(
        conn: duckdb.DuckDBPyConnection,
        ctx: Context,
        obs: Observation,
        reason: str,
        now: str,
    ) -> None:
        conn.execute(
            "INSERT INTO observations VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                new_id("obs"),
                ctx.workspace,
                obs.source,
                obs.hostname,
                obs.serial,
                obs.management_address,
                json.dumps(obs.state, sort_keys=True, default=str),
                obs.observed_at,
                now,
                reason,
            ],
        )

    def unmatched(self, ctx: Context, *, limit: int = 100) -> list[dict[str, Any]]:
        """Return the latest stored observations that matched no device."""
        rows = self.store.fetchall(
            "SELECT id, source, hostname, serial, management_address, observed_at, "
            "ingested_at, reason FROM observations WHERE workspace = ? "
            "ORDER BY ingested_at DESC, id DESC LIMIT ?",
            [ctx.workspace, limit],
        )
        keys = (
            "id",
            "source",
            "hostname",
            "serial",
            "management_address",
            "observed_at",
            "ingested_at",
            "reason",
        )
        return [dict(zip(keys, row, strict=True)) for row in rows]


def _describe(obs: Observation, reason: str) -> dict[str, Any]:
    return {
        "source": obs.source,
        "hostname": obs.hostname,
        "serial": obs.serial,
        "management_address": obs.management_address,
        "reason": reason,
        "state": obs.state,
    }


def _stamp(state: dict[str, Any], obs: Observation, now: str) -> dict[str, Any]:
    seen = obs.observed_at or now
    sources = dict(state.get("sources") or {})
    sources[obs.source] = {"last_seen": seen, "ingested_at": now}
    return {**state, "last_seen": seen, "source": obs.source, "sources": sources}


def parse_observations(
    format: str, data: Any, platform: str | None, command: str | None
) -> list[Observation]:
    """Parse discovery output of one format into observations.

    Raises
    ------
    ValidationError
        An unknown format, a missing platform or command for ``cli``, or data
        of the wrong type.
    """
    if format == "napalm":
        if isinstance(data, str):
            try:
                data = json.loads(data)
            except json.JSONDecodeError as exc:
                raise ValidationError(f"invalid NAPALM JSON: {exc}") from exc
        items = data if isinstance(data, list) else [data]
        if not all(isinstance(item, Mapping) for item in items):
            message = "NAPALM data must be a map of getter name to output, or a list"
            raise ValidationError(message)
        return [parse_napalm(item) for item in items]
    if format == "cli":
        if not platform or not command:
            message = "cli ingest needs platform and command, e.g. cisco_ios and "
            message += "'show lldp neighbors'"
            raise ValidationError(message)
        if not isinstance(data, str):
            raise ValidationError("cli data must be the command's text output")
        return [parse_cli(platform, command, data)]
    if format == "nmap":
        if not isinstance(data, str) or not data.lstrip().startswith("<"):
            message = "nmap data must be Nmap XML text (nmap -oX), not a file path"
            raise ValidationError(message)
        return parse_nmap_xml(data)
    if format == "batfish":
        if not isinstance(data, Mapping):
            message = "batfish data must be the snapshot's files as a map, as "
            message += "read_snapshot(folder) returns, not a folder path"
            raise ValidationError(message)
        return parse_batfish(data)
    message = f"unknown discovery format {format!r}; use one of {', '.join(FORMATS)}"
    raise ValidationError(message, details={"format": format})


# --- the sample network's observations ---------------------------------------


def sample_detected_state(network: SampleNetwork) -> list[dict[str, Any]]:
    """Return NAPALM getter output for every device of a sample network.

    The output agrees with the twin that ``load_sample_devices`` builds,
    except in four deterministic places, all in the first site:

    - ``leaf-01`` runs another OS version (``4.31.0F``);
    - ``leaf-02``'s uplink ``Ethernet50/1`` is down, so LLDP reports no
      neighbour on it or on the spine port at its other end (one missing
      link);
    - ``leaf-03`` and ``leaf-04`` see each other on ``Ethernet48/1``, a
      cable the twin does not have (one unexpected link).

    Servers report facts and interfaces but no LLDP.

    Examples
    --------
    >>> from omnitwin.sample import generate_fabric
    >>> data = sample_detected_state(generate_fabric(sites=1, leaves=4))
    >>> data[0]["get_facts"]["hostname"]
    'core-01'
    """
    site = network.sites[0]
    down = (f"leaf-02.{site}", "Ethernet50/1")
    extra = [
        (f"leaf-03.{site}", "Ethernet48/1", f"leaf-04.{site}", "Ethernet48/1"),
        (f"leaf-04.{site}", "Ethernet48/1", f"leaf-03.{site}", "Ethernet48/1"),
    ]
    ports: dict[str, dict[str, tuple[str, str]]] = {}
    for link in network.links:
        ports.setdefault(link.a, {})[link.port_a] = (link.b, link.port_b)
        ports.setdefault(link.b, {})[link.port_b] = (link.a, link.port_a)
    cut = {down}
    if down[0] in ports and down[1] in ports[down[0]]:
        cut.add(ports[down[0]][down[1]])
    output = []
    for device in network.devices:
        version = device.os_version
        if device.hostname == f"leaf-01.{site}":
            version = "4.31.0F"
        own = ports.get(device.hostname, {})
        interfaces = {
            port: {
                "is_up": (device.hostname, port) != down,
                "is_enabled": True,
                "description": f"to {remote}",
                "mac_address": "",
                "speed": 0,
                "mtu": 0,
                "last_flapped": -1.0,
            }
            for port, (remote, _) in own.items()
        }
        getters: dict[str, Any] = {
            "get_facts": {
                "hostname": device.hostname,
                "fqdn": device.hostname,
                "model": device.model,
                "os_version": version,
                "serial_number": device.serial,
                "vendor": "Dell" if device.role == "server" else "Arista",
                "interface_list": sorted(own),
                "uptime": 86400,
            },
            "get_interfaces": interfaces,
        }
        if device.role != "server":
            lldp = {
                port: [{"hostname": remote, "port": remote_port}]
                for port, (remote, remote_port) in own.items()
                if (device.hostname, port) not in cut
            }
            for local, port, remote, remote_port in extra:
                if local == device.hostname:
                    lldp[port] = [{"hostname": remote, "port": remote_port}]
            getters["get_lldp_neighbors"] = lldp
        output.append(getters)
    return output


def sample_twin_state(network: SampleNetwork) -> dict[str, dict[str, Any]]:
    """Return the twin state of each sample device, keyed by hostname.

    The twin has the host label, model, OS version, serial and, for every
    cabled port, ``enabled`` and ``oper_up`` set to True.
    """
    ports: dict[str, set[str]] = {}
    for link in network.links:
        ports.setdefault(link.a, set()).add(link.port_a)
        ports.setdefault(link.b, set()).add(link.port_b)
    from omnitwin.engine.discovery import normalize_interface

    return {
        device.hostname: {
            "hostname": normalize_hostname(device.hostname),
            "model": device.model,
            "os_version": device.os_version,
            "serial": device.serial,
            "interfaces": {
                normalize_interface(port): {"enabled": True, "oper_up": True}
                for port in sorted(ports.get(device.hostname, ()))
            },
        }
        for device in network.devices
    }


# --- command line ------------------------------------------------------------


def add_cli_commands(commands: Any) -> None:
    """Add the ``discover`` subcommand to the ``omnitwin`` argument parser."""
    discover = commands.add_parser(
        "discover",
        help="ingest discovery output (NAPALM JSON, CLI text, Nmap XML, Batfish "
        "snapshot folder)",
    )
    discover.add_argument("file", help="the file or, for batfish, folder to ingest")
    discover.add_argument(
        "--format", required=True, choices=FORMATS, help="format of the file"
    )
    discover.add_argument("--platform", help="ntc-templates platform, e.g. cisco_ios")
    discover.add_argument("--command", help="CLI command, e.g. 'show lldp neighbors'")
    discover.add_argument(
        "--hostname", help="device the output came from (needed for neighbour tables)"
    )
    discover.add_argument(
        "--getter",
        help="NAPALM getter name when the file contains one getter's output",
    )
    discover.add_argument(
        "--layer1",
        help="for batfish: the layer-1 file, if the snapshot has no "
        "batfish/layer1_topology.json",
    )
    discover.add_argument("--db", default="omnitwin.duckdb", help="DuckDB file")
    discover.set_defaults(handler=_cmd_discover)


def _read_input(args: argparse.Namespace) -> Any:
    path = Path(args.file)
    if args.format == "batfish":
        return read_snapshot(path, args.layer1)
    try:
        if args.format != "napalm":
            return path.read_text(encoding="utf-8")
        if args.getter or any(p.startswith("test_get_") for p in path.parts):
            return load_napalm_case(path, args.getter)
        return json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        message = f"{path} is not UTF-8 ({exc}); save it as UTF-8 and retry"
        raise ValidationError(message, details={"path": str(path)}) from exc
    except json.JSONDecodeError as exc:
        message = f"invalid JSON in {path}: {exc}; pass NAPALM getter output"
        raise ValidationError(message, details={"path": str(path)}) from exc


def _cmd_discover(args: argparse.Namespace) -> int:
    from omnitwin.client._client import Client

    data = _read_input(args)
    with Client(f"local:{args.db}") as client:
        report = client.discovery.ingest(
            args.format,
            data,
            platform=args.platform,
            command=args.command,
            hostname=args.hostname,
        )
    body = report.to_dict()
    for item in body["unmatched"]:
        item.pop("state", None)
    print(json.dumps(body, indent=2, sort_keys=True))
    return 0
