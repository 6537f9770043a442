"""The twin and its detected state from a Batfish snapshot folder.

A Batfish snapshot is a folder with these parts, of which this module reads:

- ``configs/*.cfg``: Cisco IOS configurations. A router's name is its
  ``hostname`` line (else the file name without ``.cfg``), its site is
  ``AS<asn>`` from ``router bgp <asn>``, and every ``interface`` block gives
  the interface's ``ipv4`` addresses, ``enabled``/``oper_up`` (False after
  ``shutdown``), ``description``, ``mtu`` and ``speed_mbps``;
- ``hosts/*.json``: Batfish host files, whose ``hostInterfaces`` give each
  interface's ``prefix``;
- ``batfish/layer1_topology.json``: the cabling, as ``edges`` of two ends
  (``hostname``, ``interfaceName``). Batfish's example lists each cable in
  both directions, so cables are deduplicated by their two ends. A snapshot
  without the file can be given one from elsewhere;
- ``interface_blacklist``: a JSON list of ``{"hostname", "interface"}`` that
  are down.

Routers get role ``router`` and hosts role ``host``. A device without
``router bgp`` (every host) gets the site of the first device it is cabled
to that has one, else ``unassigned``. Node names are lower-cased, as
Batfish does, and interface names go through
:func:`~omnitwin.engine.discovery.interfaces.normalize_interface`.

The detected state of a snapshot is not observed by LLDP. Its neighbours are
derived from the layer-1 file minus the cables with a blacklisted end, as
Batfish itself prunes the layer-1 edges of blacklisted interfaces, and those
interfaces have ``oper_up`` False. It is the network as the snapshot
describes it, so a cable that the twin has and the blacklist takes down
becomes a missing link.

:func:`read_snapshot` reads a folder into a JSON document of its files, the
``data`` of the ``batfish`` discovery ingest format, which works over HTTP as
well. :func:`parse_snapshot` turns such a document into a
:class:`BatfishSnapshot`: devices, subnets and links for the twin, and
observations for the detected state.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omnitwin.engine.discovery.interfaces import (
    normalize_hostname,
    normalize_interface,
)
from omnitwin.engine.discovery.model import Neighbor, Observation
from omnitwin.errors import ValidationError

__all__ = [
    "LAYER1_FILE",
    "NO_SITE",
    "BatfishSnapshot",
    "Cable",
    "load_snapshot",
    "parse_batfish",
    "parse_cables",
    "parse_snapshot",
    "read_snapshot",
]

logger = logging.getLogger(__name__)

LAYER1_FILE = "batfish/layer1_topology.json"
BLACKLIST_FILE = "interface_blacklist"
# Site of a device with no BGP AS and no cable to a device that has one.
NO_SITE = "unassigned"

_HOSTNAME = re.compile(r"^hostname (\S+)")
_BGP = re.compile(r"^router bgp (\d+)")
_INTERFACE = re.compile(r"^interface (\S+)")
_IP_ADDRESS = re.compile(r"^ ip address (\S+) (\S+)( secondary)?\s*$")
_MTU = re.compile(r"^ mtu (\d+)\s*$")
_SPEED = re.compile(r"^ speed (\d+)\s*$")
_DESCRIPTION = re.compile(r"^ description (.+?)\s*$")


@dataclass(frozen=True, slots=True, order=True)
class Cable:
    """One layer-1 cable with its ends in sorted order and ports as the file
    spells them."""

    a: str
    port_a: str
    b: str
    port_b: str


@dataclass(slots=True)
class BatfishSnapshot:
    """The devices, subnets, cables and blacklist parsed from one snapshot.

    Attributes
    ----------
    name : str
        The snapshot folder's name, used in messages.
    devices : list of dict
        Items for ``devices.create_many``: hostname, role, site, twin_state.
    subnets : list of dict
        ``{"cidr", "is_container"}`` for every network of an interface
        address, sorted; a network that contains another one is a container.
    cables : list of Cable
        The layer-1 cables between devices of the snapshot, sorted.
    skipped_cables : list of Cable
        Cables with an end on a device that the snapshot does not have.
    down : set of (hostname, interface)
        The blacklisted interfaces, names normalised.
    """

    name: str
    devices: list[dict[str, Any]]
    subnets: list[dict[str, Any]]
    cables: list[Cable]
    skipped_cables: list[Cable] = field(default_factory=list)
    down: set[tuple[str, str]] = field(default_factory=set)

    @property
    def links(self) -> list[dict[str, Any]]:
        """Items for ``topology.add_links``: one intended link per cable."""
        return [
            {
                "a": cable.a,
                "port_a": normalize_interface(cable.port_a),
                "b": cable.b,
                "port_b": normalize_interface(cable.port_b),
                "cable": f"{cable.a}:{cable.port_a}-{cable.b}:{cable.port_b}",
            }
            for cable in self.cables
        ]

    @property
    def addresses(self) -> list[dict[str, Any]]:
        """Items for ``addresses.create``: each interface address of a device.

        ``{"address", "hostname", "interface"}``, sorted by device and
        interface, so that the subnets of the snapshot show what they use.
        """
        items = []
        for device in self.devices:
            interfaces = device.get("twin_state", {}).get("interfaces", {})
            for name, interface in sorted(interfaces.items()):
                for value in interface.get("ipv4", []):
                    items.append(
                        {
                            "address": str(ipaddress.IPv4Interface(value).ip),
                            "hostname": device["hostname"],
                            "interface": name,
                        }
                    )
        return items

    def observations(self) -> list[Observation]:
        """Return the detected state: the twin state with the blacklist applied.

        Neighbours are the cables with no blacklisted end, seen from both
        ends, and blacklisted interfaces have ``oper_up`` False.
        """
        neighbors: dict[str, list[Neighbor]] = {
            device["hostname"]: [] for device in self.devices
        }
        for link in self.links:
            ends = ((link["a"], link["port_a"]), (link["b"], link["port_b"]))
            if any(end in self.down for end in ends):
                continue
            neighbors[link["a"]].append(
                Neighbor(link["port_a"], link["b"], link["port_b"])
            )
            neighbors[link["b"]].append(
                Neighbor(link["port_b"], link["a"], link["port_a"])
            )
        observations = []
        for device in self.devices:
            hostname = device["hostname"]
            state = json.loads(json.dumps(device["twin_state"]))
            for port, interface in state["interfaces"].items():
                if (hostname, port) in self.down:
                    interface["oper_up"] = False
            state["neighbors"] = sorted(n.name for n in neighbors[hostname])
            observations.append(
                Observation(
                    "batfish", hostname, state=state, neighbors=neighbors[hostname]
                )
            )
        return observations


# --- reading a folder ---------------------------------------------------------


def read_snapshot(
    folder: str | Path, layer1: str | Path | None = None
) -> dict[str, Any]:
    """Read a snapshot folder into the document that :func:`parse_snapshot` takes.

    Parameters
    ----------
    folder : str or Path
        The snapshot folder, with ``configs/`` and optionally ``hosts/``,
        ``batfish/layer1_topology.json`` and ``interface_blacklist``.
    layer1 : str or Path, optional
        The layer-1 file to use when the snapshot has no
        ``batfish/layer1_topology.json``.

    Returns
    -------
    dict
        ``{"name", "configs": {file: text}, "hosts": {file: object},
        "layer1_topology": object, "interface_blacklist": list}``, JSON
        serialisable; ``interface_blacklist`` only when the file exists.

    Raises
    ------
    ValidationError
        If the folder or its ``configs`` folder is missing, no layer-1 file
        is found, or a JSON file cannot be read or parsed.
    """
    root = Path(folder)
    if not root.is_dir():
        raise ValidationError(
            f"Batfish snapshot folder {root} not found; pass the folder that "
            "contains configs/"
        )
    configs = root / "configs"
    if not configs.is_dir():
        raise ValidationError(
            f"{configs} not found; a Batfish snapshot keeps its device "
            "configurations in configs/*.cfg"
        )
    document: dict[str, Any] = {
        "name": root.name,
        "configs": {
            path.name: _read_text(path) for path in sorted(configs.glob("*.cfg"))
        },
        "hosts": {
            path.name: _read_json(path)
            for path in sorted((root / "hosts").glob("*.json"))
        },
        "layer1_topology": _read_json(_layer1_path(root, layer1)),
    }
    blacklist = root / BLACKLIST_FILE
    if blacklist.is_file():
        document["interface_blacklist"] = _read_json(blacklist)
    return document


def load_snapshot(
    folder: str | Path, layer1: str | Path | None = None
) -> BatfishSnapshot:
    """Read and parse a snapshot folder; see :func:`read_snapshot`."""
    return parse_snapshot(read_snapshot(folder, layer1))


def _layer1_path(root: Path, layer1: str | Path | None) -> Path:
    inside = root / LAYER1_FILE
    if inside.is_file():
        return inside
    if layer1 is None:
        raise ValidationError(
            f"no layer-1 file: {inside} not found; add the cabling there, as "
            "Batfish expects, or pass its path (--layer1 FILE)"
        )
    path = Path(layer1)
    if not path.is_file():
        raise ValidationError(
            f"layer-1 file {path} not found; pass the path of a Batfish "
            "layer1_topology.json"
        )
    return path


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise ValidationError(
            f"failed to read {path}: {exc.strerror}; check that the file is readable"
        ) from exc


def _read_json(path: Path) -> Any:
    try:
        return json.loads(_read_text(path))
    except json.JSONDecodeError as exc:
        raise ValidationError(
            f"invalid JSON in {path} at line {exc.lineno} column {exc.colno}: "
            f"{exc.msg}; fix or remove the file"
        ) from exc


# --- parsing a document -------------------------------------------------------


def parse_batfish(document: Mapping[str, Any]) -> list[Observation]:
    """Parse a snapshot document into its detected state, one observation a device."""
    return parse_snapshot(document).observations()


def parse_snapshot(document: Mapping[str, Any]) -> BatfishSnapshot:
    """Parse the document of :func:`read_snapshot` into devices, subnets and cables.

    Raises
    ------
    ValidationError
        If a part of the document has the wrong type, a host file lacks its
        ``hostname`` or ``hostInterfaces``, an address is invalid, or two
        files name the same device.
    """
    if not isinstance(document, Mapping):
        raise ValidationError(
            "Batfish data must be a map of the snapshot's files, as "
            "read_snapshot(folder) returns"
        )
    name = str(document.get("name") or "snapshot")
    configs = _mapping(document.get("configs"), f"{name}: configs", str)
    hosts = _mapping(document.get("hosts", {}), f"{name}: hosts", Mapping)
    if not configs and not hosts:
        raise ValidationError(
            f"{name}: configs/ has no *.cfg files and hosts/ no *.json files; "
            "the snapshot has no devices"
        )

    states: dict[str, dict[str, Any]] = {}
    sites: dict[str, str | None] = {}
    roles: dict[str, str] = {}
    for file_name, text in sorted(configs.items()):
        hostname, site, state = _parse_ios(file_name, text)
        _add(states, hostname, state, f"{name}: configs/{file_name}")
        sites[hostname], roles[hostname] = site, "router"
    for file_name, host in sorted(hosts.items()):
        hostname, state = _parse_host(f"{name}: hosts/{file_name}", host)
        _add(states, hostname, state, f"{name}: hosts/{file_name}")
        sites[hostname], roles[hostname] = None, "host"

    if "layer1_topology" not in document:
        raise ValidationError(
            f"{name}: layer1_topology is missing; read the snapshot with "
            "read_snapshot(folder, layer1)"
        )
    cables: list[Cable] = []
    skipped: list[Cable] = []
    for cable in parse_cables(document["layer1_topology"], f"{name}: layer-1 file"):
        a, b = cable.a.lower(), cable.b.lower()
        if a in states and b in states:
            cables.append(Cable(a, cable.port_a, b, cable.port_b))
        else:
            skipped.append(cable)
    if skipped:
        logger.warning(
            "%s: %d layer-1 cables name a device the snapshot does not have, "
            "e.g. %s; they are left out",
            name,
            len(skipped),
            skipped[0],
        )
    _inherit_sites(sites, cables)
    down = _blacklist(document.get("interface_blacklist", []), name)
    unknown = sorted(
        (host, port)
        for host, port in down
        if port not in states.get(host, {}).get("interfaces", {})
    )
    if unknown:
        logger.warning(
            "%s: %s lists interfaces the snapshot does not have: %s",
            name,
            BLACKLIST_FILE,
            unknown,
        )
    return BatfishSnapshot(
        name=name,
        devices=[
            {
                "hostname": hostname,
                "role": roles[hostname],
                "site": sites[hostname] or NO_SITE,
                "twin_state": state,
            }
            for hostname, state in states.items()
        ],
        subnets=_subnets(states),
        cables=cables,
        skipped_cables=skipped,
        down=down,
    )


def parse_cables(layer1: Any, where: str = "layer-1 file") -> list[Cable]:
    """Return the distinct cables of a Batfish layer-1 topology, sorted.

    Each edge has ``node1`` and ``node2`` with ``hostname`` and
    ``interfaceName``. An edge and its reverse are one cable. Names are kept
    as the file spells them.

    Examples
    --------
    >>> end = lambda h, i: {"hostname": h, "interfaceName": i}
    >>> edge = {"node1": end("r2", "Gi0/0"), "node2": end("r1", "Gi0/1")}
    >>> back = {"node1": edge["node2"], "node2": edge["node1"]}
    >>> parse_cables({"edges": [edge, back]})
    [Cable(a='r1', port_a='Gi0/1', b='r2', port_b='Gi0/0')]
    """
    if not isinstance(layer1, Mapping) or not isinstance(layer1.get("edges"), list):
        raise ValidationError(
            f'{where}: expected {{"edges": [...]}} as in Batfish\'s '
            "layer1_topology.json"
        )
    cables = set()
    for number, edge in enumerate(layer1["edges"], start=1):
        ends = []
        for node in ("node1", "node2"):
            end = edge.get(node) if isinstance(edge, Mapping) else None
            if not (
                isinstance(end, Mapping)
                and isinstance(end.get("hostname"), str)
                and isinstance(end.get("interfaceName"), str)
            ):
                raise ValidationError(
                    f"{where}: edge {number} has no {node} with hostname and "
                    "interfaceName"
                )
            ends.append((end["hostname"], end["interfaceName"]))
        (a, port_a), (b, port_b) = sorted(ends)
        cables.add(Cable(a, port_a, b, port_b))
    return sorted(cables)


def _parse_ios(file_name: str, text: str) -> tuple[str, str | None, dict[str, Any]]:
    """Return the hostname, site and twin state of one Cisco IOS configuration."""
    hostname = file_name.removesuffix(".cfg")
    site = None
    interfaces: dict[str, dict[str, Any]] = {}
    current: dict[str, Any] | None = None
    for line in text.splitlines():
        if not line.startswith(" "):
            current = None
        if match := _HOSTNAME.match(line):
            hostname = match.group(1)
        elif match := _BGP.match(line):
            site = f"AS{match.group(1)}"
        elif match := _INTERFACE.match(line):
            current = {"enabled": True, "oper_up": True}
            interfaces[normalize_interface(match.group(1))] = current
        elif current is not None:
            _interface_line(current, line, file_name)
    hostname = hostname.lower()
    state = {"hostname": normalize_hostname(hostname), "interfaces": interfaces}
    return hostname, site, state


def _interface_line(interface: dict[str, Any], line: str, file_name: str) -> None:
    if match := _IP_ADDRESS.match(line):
        address = f"{match.group(1)}/{match.group(2)}"
        try:
            value = str(ipaddress.IPv4Interface(address))
        except ValueError as exc:
            raise ValidationError(
                f"configs/{file_name}: invalid address in {line.strip()!r}: {exc}"
            ) from exc
        interface.setdefault("ipv4", []).append(value)
    elif line.rstrip() == " shutdown":
        interface["enabled"] = interface["oper_up"] = False
    elif line.rstrip() == " no shutdown":
        interface["enabled"] = interface["oper_up"] = True
    elif match := _MTU.match(line):
        interface["mtu"] = int(match.group(1))
    elif match := _SPEED.match(line):
        interface["speed_mbps"] = int(match.group(1))
    elif match := _DESCRIPTION.match(line):
        interface["description"] = match.group(1)


def _parse_host(where: str, host: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    hostname = host.get("hostname")
    host_interfaces = host.get("hostInterfaces")
    if not isinstance(hostname, str) or not hostname.strip():
        raise ValidationError(f"{where}: hostname is missing")
    if not isinstance(host_interfaces, Mapping):
        raise ValidationError(f"{where}: hostInterfaces is missing or not a map")
    interfaces = {}
    for port, settings in host_interfaces.items():
        prefix = settings.get("prefix") if isinstance(settings, Mapping) else None
        interface: dict[str, Any] = {"enabled": True, "oper_up": True}
        if prefix is not None:
            try:
                interface["ipv4"] = [str(ipaddress.IPv4Interface(prefix))]
            except ValueError as exc:
                raise ValidationError(
                    f"{where}: invalid prefix {prefix!r} of {port}: {exc}"
                ) from exc
        interfaces[normalize_interface(port)] = interface
    name = hostname.strip().lower()
    return name, {"hostname": normalize_hostname(name), "interfaces": interfaces}


def _add(
    states: dict[str, dict[str, Any]],
    hostname: str,
    state: dict[str, Any],
    where: str,
) -> None:
    if hostname in states:
        raise ValidationError(
            f"{where}: device {hostname!r} is already defined by another file; "
            "each device needs one configuration"
        )
    states[hostname] = state


def _inherit_sites(sites: dict[str, str | None], cables: list[Cable]) -> None:
    """Give each device without a site the site of the first cabled device with one."""
    for cable in cables:
        for device, other in ((cable.a, cable.b), (cable.b, cable.a)):
            if sites[device] is None and sites[other] is not None:
                sites[device] = sites[other]


def _subnets(states: Mapping[str, dict[str, Any]]) -> list[dict[str, Any]]:
    networks = {
        ipaddress.IPv4Interface(address).network
        for state in states.values()
        for interface in state["interfaces"].values()
        for address in interface.get("ipv4", [])
    }
    parents = {
        network.supernet(new_prefix=length)
        for network in networks
        for length in range(network.prefixlen)
    }
    return [
        {"cidr": str(network), "is_container": network in parents}
        for network in sorted(networks)
    ]


def _blacklist(value: Any, name: str) -> set[tuple[str, str]]:
    where = f"{name}: {BLACKLIST_FILE}"
    if not isinstance(value, list):
        raise ValidationError(
            f'{where}: expected a list of {{"hostname", "interface"}}'
        )
    down = set()
    for item in value:
        if not (
            isinstance(item, Mapping)
            and isinstance(item.get("hostname"), str)
            and isinstance(item.get("interface"), str)
        ):
            raise ValidationError(
                f"{where}: {item!r} is not an object with hostname and interface"
            )
        down.add((item["hostname"].lower(), normalize_interface(item["interface"])))
    return down


def _mapping(value: Any, where: str, item_type: type) -> dict[str, Any]:
    if not isinstance(value, Mapping) or not all(
        isinstance(key, str) and isinstance(item, item_type)
        for key, item in value.items()
    ):
        kind = "text" if item_type is str else "a JSON object"
        raise ValidationError(f"{where}: expected a map of file name to {kind}")
    return dict(value)
