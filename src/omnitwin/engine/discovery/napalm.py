"""Detected state from NAPALM getter output.

NAPALM drivers return the same JSON shape for every vendor, so one parser
covers IOS, IOS-XR, NX-OS, EOS and Junos. The getters read are ``get_facts``,
``get_interfaces``, ``get_interfaces_ip``, ``get_lldp_neighbors`` and
``get_lldp_neighbors_detail``.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from omnitwin.engine.discovery.interfaces import (
    normalize_hostname,
    normalize_interface,
    try_normalize_mac,
)
from omnitwin.engine.discovery.model import (
    Neighbor,
    Observation,
    build_neighbor,
    unique_neighbors,
)
from omnitwin.errors import ValidationError

__all__ = ["SUPPORTED_GETTERS", "load_napalm_case", "parse_napalm"]

logger = logging.getLogger(__name__)

SUPPORTED_GETTERS: tuple[str, ...] = (
    "get_facts",
    "get_interfaces",
    "get_interfaces_ip",
    "get_lldp_neighbors",
    "get_lldp_neighbors_detail",
)


def parse_napalm(getters: Mapping[str, Any]) -> Observation:
    """Build one device observation from NAPALM getter output.

    Parameters
    ----------
    getters : mapping
        Getter name to that getter's return value, for example
        ``{"get_facts": {...}, "get_interfaces": {...}}``. Any subset of
        :data:`SUPPORTED_GETTERS` may be given.

    Returns
    -------
    Observation
        ``source`` is ``"napalm"``. ``state`` contains the keys that the given
        getters provide. Neighbours from both LLDP getters are merged.

    Raises
    ------
    ValidationError
        If a getter name is not supported or its output is not a JSON object.

    Examples
    --------
    >>> obs = parse_napalm({"get_lldp_neighbors": {
    ...     "Et1": [{"hostname": "spine2.example.com", "port": "Ethernet1"}]}})
    >>> obs.state
    {'neighbors': ['Ethernet1 spine2 Ethernet1']}
    """
    outputs = _validate_getters(getters)

    state: dict[str, Any] = {}
    if "get_facts" in outputs:
        state.update(_facts_state(outputs["get_facts"]))
    interfaces = _interfaces_state(outputs)
    if interfaces is not None:
        state["interfaces"] = interfaces
    neighbors = _lldp_neighbors(outputs)
    if neighbors is not None:
        state["neighbors"] = sorted({n.name for n in neighbors})

    return Observation(
        source="napalm",
        hostname=state.get("hostname"),
        serial=state.get("serial"),
        state=state,
        neighbors=neighbors or [],
    )


def load_napalm_case(path: str | Path, getter: str | None = None) -> dict[str, Any]:
    """Read one NAPALM test case ``expected_result.json`` as getter output.

    NAPALM's own test suite stores each case as
    ``<driver>/test_<getter>/<case>/expected_result.json``, so the getter is
    taken from the ``test_<getter>`` folder unless `getter` is given.

    Parameters
    ----------
    path : str or Path
        The ``expected_result.json`` file.
    getter : str, optional
        The getter name, when the path does not follow NAPALM's layout.

    Returns
    -------
    dict
        ``{getter: output}``, ready for :func:`parse_napalm`.

    Raises
    ------
    ValidationError
        If the getter cannot be inferred or is not supported, or the file is
        not valid JSON.
    FileNotFoundError
        If the file does not exist.

    Examples
    --------
    >>> load_napalm_case("eos/test_get_facts/normal/expected_result.json")
    ... # doctest: +SKIP
    {'get_facts': {'hostname': 'localhost', ...}}
    """
    file = Path(path)
    name = getter if getter is not None else _getter_from_path(file)
    if name not in SUPPORTED_GETTERS:
        message = (
            f"unsupported NAPALM getter {name!r} for {file}; "
            f"supported getters: {', '.join(SUPPORTED_GETTERS)}"
        )
        raise ValidationError(message, details={"getter": name, "path": str(file)})

    text = file.read_text(encoding="utf-8")
    try:
        output = json.loads(text)
    except json.JSONDecodeError as exc:
        message = f"invalid JSON in {file}: {exc}; pass NAPALM getter output"
        raise ValidationError(message, details={"path": str(file)}) from exc
    return {name: output}


def _getter_from_path(file: Path) -> str:
    for part in reversed(file.parts[:-1]):
        if part.startswith("test_get_"):
            return part.removeprefix("test_")
    message = (
        f"cannot infer the NAPALM getter from {file}: no 'test_get_*' folder in "
        "the path; pass getter='get_facts' (or another getter) explicitly"
    )
    raise ValidationError(message, details={"path": str(file)})


def _validate_getters(getters: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    outputs: dict[str, dict[str, Any]] = {}
    for name, output in getters.items():
        if name not in SUPPORTED_GETTERS:
            message = (
                f"unsupported NAPALM getter {name!r}; "
                f"supported getters: {', '.join(SUPPORTED_GETTERS)}"
            )
            raise ValidationError(message, details={"getter": name})
        if not isinstance(output, dict):
            message = (
                f"invalid output for NAPALM getter {name!r}: expected a JSON "
                f"object, got {type(output).__name__}"
            )
            raise ValidationError(message, details={"getter": name})
        outputs[name] = output
    return outputs


def _facts_state(facts: dict[str, Any]) -> dict[str, Any]:
    state: dict[str, Any] = {}
    hostname = _text(facts.get("hostname"))
    if hostname:
        state["hostname"] = normalize_hostname(hostname)
    for key, target in (
        ("vendor", "vendor"),
        ("model", "model"),
        ("os_version", "os_version"),
        ("serial_number", "serial"),
    ):
        value = _text(facts.get(key))
        if value:
            state[target] = value

    # NAPALM reports uptime in seconds. A non-numeric value, such as the "..."
    # placeholder in NAPALM's EOS test case, is skipped.
    uptime = _count(facts.get("uptime"))
    if uptime is not None:
        state["uptime_s"] = uptime
    return state


def _interfaces_state(
    outputs: dict[str, dict[str, Any]],
) -> dict[str, dict[str, Any]] | None:
    if "get_interfaces" not in outputs and "get_interfaces_ip" not in outputs:
        return None

    interfaces: dict[str, dict[str, Any]] = {}
    for raw_name, data in outputs.get("get_interfaces", {}).items():
        name = normalize_interface(raw_name)
        interfaces.setdefault(name, {}).update(_interface_fields(name, data))
    for raw_name, data in outputs.get("get_interfaces_ip", {}).items():
        name = normalize_interface(raw_name)
        interfaces.setdefault(name, {}).update(_address_fields(name, data))
    return interfaces


def _interface_fields(name: str, data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        message = (
            f"invalid get_interfaces entry for {name}: expected a JSON object, "
            f"got {type(data).__name__}"
        )
        raise ValidationError(message, details={"interface": name})

    fields: dict[str, Any] = {}
    for key, target in (("is_enabled", "enabled"), ("is_up", "oper_up")):
        if isinstance(data.get(key), bool):
            fields[target] = data[key]
    # NAPALM uses -1 (and some drivers 0) for an unknown speed or MTU, and
    # "", "None" or "Unspecified" for an unknown MAC address.
    mac = try_normalize_mac(_text(data.get("mac_address")))
    if mac is not None:
        fields["mac"] = mac
    speed = _count(data.get("speed"))
    if speed:
        fields["speed_mbps"] = speed
    mtu = _count(data.get("mtu"))
    if mtu:
        fields["mtu"] = mtu
    if isinstance(data.get("description"), str):
        fields["description"] = data["description"]
    return fields


def _address_fields(name: str, data: Any) -> dict[str, list[str]]:
    if not isinstance(data, dict):
        message = (
            f"invalid get_interfaces_ip entry for {name}: expected a JSON "
            f"object, got {type(data).__name__}"
        )
        raise ValidationError(message, details={"interface": name})

    fields: dict[str, list[str]] = {}
    for family in ("ipv4", "ipv6"):
        addresses = data.get(family)
        if isinstance(addresses, dict):
            fields[family] = sorted(
                _interface_address(name, address, info)
                for address, info in addresses.items()
            )
    return fields


def _interface_address(name: str, address: str, info: Any) -> str:
    length = info.get("prefix_length") if isinstance(info, dict) else None
    try:
        return ipaddress.ip_interface(f"{address}/{length}").with_prefixlen
    except ValueError as exc:
        message = (
            f"invalid address {address!r} with prefix length {length!r} on "
            f"{name} in get_interfaces_ip output"
        )
        raise ValidationError(message, details={"interface": name}) from exc


def _lldp_neighbors(outputs: dict[str, dict[str, Any]]) -> list[Neighbor] | None:
    if "get_lldp_neighbors" not in outputs and (
        "get_lldp_neighbors_detail" not in outputs
    ):
        return None

    found: list[Neighbor | None] = []
    for local, entries in outputs.get("get_lldp_neighbors", {}).items():
        for entry in _entries(local, entries):
            found.append(
                build_neighbor(local, entry.get("hostname"), entry.get("port"))
            )
    for local, entries in outputs.get("get_lldp_neighbors_detail", {}).items():
        for entry in _entries(local, entries):
            # Devices without a system name or port ID are identified by
            # their chassis ID and port description instead.
            host = entry.get("remote_system_name") or entry.get("remote_chassis_id")
            port = entry.get("remote_port") or entry.get("remote_port_description")
            found.append(build_neighbor(local, host, port))

    neighbors = [n for n in found if n is not None]
    if len(neighbors) < len(found):
        logger.debug(
            "skipped %d LLDP entries without a remote port or host",
            len(found) - len(neighbors),
        )
    return unique_neighbors(neighbors)


def _entries(local: str, entries: Any) -> list[dict[str, Any]]:
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        message = (
            f"invalid LLDP neighbour list for {local}: expected a list of JSON "
            "objects as NAPALM's get_lldp_neighbors returns"
        )
        raise ValidationError(message, details={"interface": local})
    return entries


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def _count(value: Any) -> int | None:
    """Return a finite non-negative number as a rounded int, or None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if not math.isfinite(value) or value < 0:
        return None
    return round(value)
