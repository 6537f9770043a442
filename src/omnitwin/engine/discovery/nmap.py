"""Detected state from Nmap XML output (``nmap -oX``).

Each ``<host>`` element becomes one :class:`Observation` with the host's
status, addresses, MAC address, hostnames, port states and best OS match.

Nmap lists only the "interesting" ports one by one and summarises the rest of
the scanned ports as ``<extraports state="closed" count="995">``. When that
summary is unambiguous, the parser records those ports with their state too,
so a port that was open in one scan and falls into the closed summary of the
next scan shows up as drift. A summary is unambiguous when the host has one
``<extraports>`` group and its count equals the scanned ports (from
``<scaninfo services=...>``) minus the listed ones, or when Nmap names the
ports in ``<extrareasons ports=...>`` itself.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from xml.parsers import expat

from omnitwin.engine.discovery.interfaces import normalize_hostname, try_normalize_mac
from omnitwin.engine.discovery.model import Observation
from omnitwin.errors import ValidationError

__all__ = ["parse_nmap_xml"]


def parse_nmap_xml(
    source: str | os.PathLike[str], *, expand_extraports: bool = True
) -> list[Observation]:
    """Parse an Nmap XML report into one observation per host.

    Parameters
    ----------
    source : str or path-like
        The XML text, or the path of an XML file. A string whose first
        non-blank character is ``<`` is taken as XML text.
    expand_extraports : bool, default True
        Record the ports that Nmap summarised in ``<extraports>`` one by one,
        where the summary is unambiguous. A full-range scan then stores about
        65,000 port states per host, so pass False to keep only the listed
        ports.

    Returns
    -------
    list of Observation
        In document order, hosts that are down included. ``source`` is
        ``"nmap"``, ``management_address`` is the first IP address and
        ``observed_at`` is the host's scan end time, or the scan start time
        when the host has none.

    Raises
    ------
    ValidationError
        If the XML is malformed, is not an Nmap report, or declares entities
        or a document type with an internal subset or external identifier.
    FileNotFoundError
        If `source` is a path that does not exist.

    Examples
    --------
    >>> xml = '''<nmaprun start="1607282135"><host>
    ... <status state="up"/><address addr="172.28.1.3" addrtype="ipv4"/>
    ... <address addr="02:42:AC:1C:01:03" addrtype="mac"/></host></nmaprun>'''
    >>> [obs.state for obs in parse_nmap_xml(xml)]
    [{'status': 'up', 'addresses': ['172.28.1.3'], 'mac': '02:42:ac:1c:01:03'}]
    """
    text, origin = _read_source(source)
    root = _parse_xml(text, origin)

    scanned = _scanned_ports(root)
    started = _timestamp(root.get("start"))
    observations = []
    for host in root.iter("host"):
        state = _host_state(host, scanned if expand_extraports else None)
        addresses = state.get("addresses", [])
        observations.append(
            Observation(
                source="nmap",
                hostname=state.get("hostname"),
                management_address=addresses[0] if addresses else None,
                state=state,
                observed_at=_timestamp(host.get("endtime")) or started,
            )
        )
    return observations


def _read_source(source: str | os.PathLike[str]) -> tuple[str, str]:
    if isinstance(source, str) and source.lstrip().startswith("<"):
        return source, "<text>"
    path = Path(source)
    return path.read_text(encoding="utf-8"), str(path)


def _parse_xml(text: str, origin: str) -> ET.Element:
    _reject_declarations(text, origin)
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        message = f"invalid XML in {origin}: {exc}; pass the output of 'nmap -oX'"
        raise ValidationError(message, details={"source": origin}) from exc

    if root.tag != "nmaprun":
        message = (
            f"{origin} is not an Nmap XML report: the root element is "
            f"<{root.tag}>, expected <nmaprun>; pass the output of 'nmap -oX'"
        )
        raise ValidationError(message, details={"source": origin})
    return root


def _reject_declarations(text: str, origin: str) -> None:
    """Reject entity declarations and any DOCTYPE beyond ``<!DOCTYPE nmaprun>``.

    Nmap writes a bare ``<!DOCTYPE nmaprun>``. Entity declarations enable
    entity expansion attacks, so this check runs in a separate expat pass
    before ElementTree builds the tree.
    """

    def on_doctype(
        name: str, system_id: str | None, public_id: str | None, internal: int
    ) -> None:
        if system_id or public_id or internal:
            _raise_declaration(origin, f"DOCTYPE {name} with a DTD")

    def on_entity(name: str, *_: Any) -> None:
        _raise_declaration(origin, f"ENTITY {name}")

    parser = expat.ParserCreate()
    parser.StartDoctypeDeclHandler = on_doctype
    parser.EntityDeclHandler = on_entity
    try:
        parser.Parse(text, True)
    except expat.ExpatError as exc:
        message = f"invalid XML in {origin}: {exc}; pass the output of 'nmap -oX'"
        raise ValidationError(message, details={"source": origin}) from exc


def _raise_declaration(origin: str, declaration: str) -> None:
    message = (
        f"rejected {origin}: it declares {declaration}, which Nmap does not write; "
        "remove the declaration or pass the report as Nmap produced it"
    )
    raise ValidationError(message, details={"source": origin})


def _host_state(
    host: ET.Element, scanned: set[tuple[str, int]] | None
) -> dict[str, Any]:
    state: dict[str, Any] = {}
    status = host.find("status")
    if status is not None and status.get("state"):
        state["status"] = status.get("state")

    state.update(_address_fields(host))
    names = [name.get("name", "") for name in host.iterfind("hostnames/hostname")]
    hostnames = sorted({normalize_hostname(n) for n in names if n.strip()})
    if hostnames:
        state["hostname"] = normalize_hostname(next(n for n in names if n.strip()))
        state["hostnames"] = hostnames

    ports_element = host.find("ports")
    if ports_element is not None:
        state["ports"] = _port_states(ports_element, scanned)
    os_name = _best_os_match(host)
    if os_name:
        state["os"] = os_name
    return state


def _address_fields(host: ET.Element) -> dict[str, Any]:
    addresses: list[str] = []
    mac: str | None = None
    for address in host.iterfind("address"):
        kind, value = address.get("addrtype"), address.get("addr", "")
        if kind in ("ipv4", "ipv6") and value:
            addresses.append(value)
        elif kind == "mac":
            mac = try_normalize_mac(value)

    fields: dict[str, Any] = {}
    if addresses:
        fields["addresses"] = addresses
    if mac is not None:
        fields["mac"] = mac
    return fields


def _port_states(
    ports: ET.Element, scanned: set[tuple[str, int]] | None
) -> dict[str, str]:
    listed: dict[str, str] = {}
    for port in ports.iterfind("port"):
        state = port.find("state")
        protocol, number = port.get("protocol"), port.get("portid")
        if state is not None and protocol and number:
            listed[f"{protocol}/{number}"] = state.get("state", "unknown")

    if scanned is None:
        return dict(sorted(listed.items(), key=_port_sort_key))
    summarised = _extraports_states(ports, scanned, listed)
    merged = {**summarised, **listed}
    return dict(sorted(merged.items(), key=_port_sort_key))


def _extraports_states(
    ports: ET.Element, scanned: set[tuple[str, int]], listed: dict[str, str]
) -> dict[str, str]:
    groups = ports.findall("extraports")
    states: dict[str, str] = {}

    # Newer Nmap versions name the summarised ports in <extrareasons ports=...>.
    named = [
        (group.get("state", "unknown"), reason)
        for group in groups
        for reason in group.iterfind("extrareasons")
        if reason.get("ports")
    ]
    if named:
        for state, reason in named:
            protocol = reason.get("proto", "tcp")
            for number in _port_ranges(reason.get("ports", "")):
                states[f"{protocol}/{number}"] = state
        return states

    unlisted = {f"{p}/{n}" for p, n in scanned} - listed.keys()
    count = groups[0].get("count", "") if len(groups) == 1 else ""
    if not count.isdigit() or int(count) != len(unlisted):
        # NOTE: several groups (e.g. 990 closed and 10 filtered) without port
        # lists cannot be split, so their ports stay unrecorded.
        return states
    state = groups[0].get("state", "unknown")
    return dict.fromkeys(unlisted, state)


def _scanned_ports(root: ET.Element) -> set[tuple[str, int]]:
    scanned: set[tuple[str, int]] = set()
    for info in root.iterfind("scaninfo"):
        protocol = info.get("protocol", "tcp")
        scanned.update((protocol, n) for n in _port_ranges(info.get("services", "")))
    return scanned


def _port_ranges(text: str) -> list[int]:
    """Expand Nmap's port list syntax, such as ``"1,3-4,6"``."""
    numbers: list[int] = []
    for part in text.split(","):
        part = part.strip()
        # A "T:" or "U:" prefix selects the protocol in mixed scans.
        part = part.split(":", 1)[-1]
        if not part:
            continue
        first, _, last = part.partition("-")
        try:
            numbers.extend(range(int(first), int(last or first) + 1))
        except ValueError as exc:
            message = f"invalid port range {part!r} in Nmap port list {text[:80]!r}"
            raise ValidationError(message, details={"ports": part}) from exc
    return numbers


def _port_sort_key(item: tuple[str, str]) -> tuple[str, int]:
    protocol, _, number = item[0].partition("/")
    return protocol, int(number) if number.isdigit() else -1


def _best_os_match(host: ET.Element) -> str | None:
    """Return the name of the most accurate ``<osmatch>``, the first one on ties."""
    best: tuple[int, str] | None = None
    for match in host.iterfind("os/osmatch"):
        text = match.get("accuracy", "0")
        accuracy = int(text) if text.isdigit() else 0
        name = match.get("name", "")
        if name and (best is None or accuracy > best[0]):
            best = (accuracy, name)
    return best[1] if best else None


def _timestamp(value: str | None) -> str | None:
    if not value or not value.isdigit():
        return None
    return datetime.fromtimestamp(int(value), tz=UTC).isoformat()
