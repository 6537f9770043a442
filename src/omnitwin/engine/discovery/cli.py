"""Detected state from device CLI output, parsed with ntc-templates.

The TextFSM templates of the ``ntc-templates`` package turn the text of
``show lldp neighbors``, ``show cdp neighbors`` (each with or without
``detail``) and ``show version`` into rows. This module maps those rows to
the canonical device state. :data:`SUPPORTED_COMMANDS` lists the platform and
command pairs for which ntc-templates has a template.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import textfsm
from ntc_templates.parse import ParsingException, parse_output
from textfsm import clitable

from omnitwin.engine.discovery.interfaces import normalize_hostname, try_normalize_mac
from omnitwin.engine.discovery.model import (
    Neighbor,
    Observation,
    build_neighbor,
    unique_neighbors,
)
from omnitwin.errors import ValidationError

__all__ = ["SUPPORTED_COMMANDS", "parse_cli", "parse_uptime"]

logger = logging.getLogger(__name__)

_LLDP = "show lldp neighbors"
_LLDP_DETAIL = "show lldp neighbors detail"
_CDP = "show cdp neighbors"
_CDP_DETAIL = "show cdp neighbors detail"
_VERSION = "show version"

# Platform (netmiko device type, as ntc-templates names it) -> command -> kind.
# The kind is "neighbors" or "version".
SUPPORTED_COMMANDS: dict[str, dict[str, str]] = {
    "arista_eos": {
        _LLDP: "neighbors",
        _LLDP_DETAIL: "neighbors",
        _VERSION: "version",
    },
    "aruba_aoscx": {"show lldp neighbors-info detail": "neighbors"},
    "cisco_ios": {
        _LLDP: "neighbors",
        _LLDP_DETAIL: "neighbors",
        _CDP: "neighbors",
        _CDP_DETAIL: "neighbors",
        _VERSION: "version",
    },
    "cisco_nxos": {
        _LLDP: "neighbors",
        _LLDP_DETAIL: "neighbors",
        _CDP: "neighbors",
        _CDP_DETAIL: "neighbors",
        _VERSION: "version",
    },
    "cisco_xr": {
        _LLDP: "neighbors",
        _LLDP_DETAIL: "neighbors",
        _CDP_DETAIL: "neighbors",
        _VERSION: "version",
    },
    "hp_procurve": {
        "show lldp info remote-device": "neighbors",
        _CDP_DETAIL: "neighbors",
        _VERSION: "version",
    },
    "juniper_junos": {_LLDP: "neighbors", _VERSION: "version"},
}

_VENDORS = {
    "arista_eos": "Arista",
    "aruba_aoscx": "Aruba",
    "cisco_ios": "Cisco",
    "cisco_nxos": "Cisco",
    "cisco_xr": "Cisco",
    "hp_procurve": "HP",
    "juniper_junos": "Juniper",
}

# Template field names differ per platform; the first non-empty field wins.
_VERSION_FIELDS: dict[str, tuple[str, ...]] = {
    "hostname": ("hostname",),
    "model": ("hardware", "model", "platform"),
    "os_version": ("version", "os", "image", "junos_version"),
    "serial": ("serial", "serial_number"),
    "mac": ("sys_mac", "mac_address"),
}
_NEIGHBOR_HOST_FIELDS = ("neighbor_name", "neighbor", "chassis_id")
# In templates that have both fields, NEIGHBOR_PORT_ID is the LLDP port ID and
# NEIGHBOR_INTERFACE the port description, so the port ID comes first.
_NEIGHBOR_PORT_FIELDS = ("neighbor_port_id", "neighbor_interface")

# Cisco counts a year as 365 days in "show version" uptime.
_SECONDS = {
    "year": 365 * 86400,
    "week": 7 * 86400,
    "day": 86400,
    "hour": 3600,
    "minute": 60,
    "second": 1,
}
_UPTIME_RE = re.compile(r"(\d+)\s*(year|week|day|hour|minute|second)", re.IGNORECASE)


def parse_cli(platform: str, command: str, text: str) -> Observation:
    """Parse the text output of one CLI command into an observation.

    Parameters
    ----------
    platform : str
        The platform name that ntc-templates uses, such as ``"cisco_ios"``.
    command : str
        The full command, such as ``"show cdp neighbors detail"``. Case and
        repeated spaces do not matter, but abbreviations are not accepted.
    text : str
        The command's output as the device printed it.

    Returns
    -------
    Observation
        ``source`` is ``"textfsm:<platform>"``. Neighbour commands fill
        ``state["neighbors"]`` and ``neighbors``. ``show version`` fills
        hostname, vendor, model, OS version, serial, MAC address and uptime,
        where the template reports them.

    Raises
    ------
    ValidationError
        If the platform or command is not supported, or the template fails on
        the text.

    Examples
    --------
    >>> text = '''
    ... Capability codes:
    ...     (R) Router, (B) Bridge, (T) Telephone, (C) DOCSIS Cable Device
    ...     (W) WLAN Access Point, (P) Repeater, (S) Station, (O) Other
    ...
    ... Device ID           Local Intf     Hold-time  Capability      Port ID
    ... S2                  Fa0/13         120        B               Gi0/13
    ...
    ... Total entries displayed: 1
    ... '''
    >>> parse_cli("cisco_ios", "show lldp neighbors", text).state
    {'neighbors': ['FastEthernet0/13 s2 GigabitEthernet0/13']}
    """
    kind, command = _resolve_command(platform, command)
    rows = _run_template(platform, command, text)

    if kind == "version":
        state = _version_state(platform, rows)
        return Observation(
            source=f"textfsm:{platform}",
            hostname=state.get("hostname"),
            serial=state.get("serial"),
            state=state,
        )

    neighbors = _neighbors(rows)
    return Observation(
        source=f"textfsm:{platform}",
        state={"neighbors": sorted({n.name for n in neighbors})},
        neighbors=neighbors,
    )


def parse_uptime(text: str) -> int | None:
    """Convert a ``show version`` uptime phrase to seconds.

    Returns
    -------
    int or None
        The uptime in seconds, or None when the text names no time unit.

    Examples
    --------
    >>> parse_uptime("2 years, 31 weeks, 6 days, 9 hours, 55 minutes")
    82374900
    >>> parse_uptime("123 day(s), 5 hour(s), 15 minute(s), 19 second(s)")
    10646119
    """
    parts = _UPTIME_RE.findall(text)
    if not parts:
        return None
    return sum(int(count) * _SECONDS[unit.lower()] for count, unit in parts)


def _resolve_command(platform: str, command: str) -> tuple[str, str]:
    commands = SUPPORTED_COMMANDS.get(platform)
    if commands is None:
        message = (
            f"unsupported platform {platform!r}; supported platforms: "
            f"{', '.join(sorted(SUPPORTED_COMMANDS))}"
        )
        raise ValidationError(message, details={"platform": platform})

    canonical = " ".join(command.lower().split())
    kind = commands.get(canonical)
    if kind is None:
        message = (
            f"unsupported command {command!r} for platform {platform!r}; "
            f"supported commands: {', '.join(sorted(commands))}"
        )
        raise ValidationError(
            message, details={"platform": platform, "command": command}
        )
    return kind, canonical


def _run_template(platform: str, command: str, text: str) -> list[dict[str, Any]]:
    try:
        rows: list[dict[str, Any]] = parse_output(
            platform=platform, command=command, data=text
        )
    except (ParsingException, clitable.CliTableError, textfsm.TextFSMError) as exc:
        message = (
            f"failed to parse {command!r} output for platform {platform!r}: {exc}; "
            "check that the text is the complete output of that command"
        )
        raise ValidationError(
            message, details={"platform": platform, "command": command}
        ) from exc
    return rows


def _neighbors(rows: list[dict[str, Any]]) -> list[Neighbor]:
    found = [
        build_neighbor(
            _first(row, ("local_interface",)),
            _first(row, _NEIGHBOR_HOST_FIELDS),
            _first(row, _NEIGHBOR_PORT_FIELDS),
        )
        for row in rows
    ]
    neighbors = [n for n in found if n is not None]
    if len(neighbors) < len(found):
        logger.debug(
            "skipped %d neighbour rows without a local port, remote host or port",
            len(found) - len(neighbors),
        )
    return unique_neighbors(neighbors)


def _version_state(platform: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
    state: dict[str, Any] = {"vendor": _VENDORS[platform]}
    if not rows:
        return state

    row = rows[0]
    for target, fields in _VERSION_FIELDS.items():
        value = _first(row, fields)
        if value:
            state[target] = value
    if "hostname" in state:
        state["hostname"] = normalize_hostname(state["hostname"])
    if "mac" in state:
        mac = try_normalize_mac(state.pop("mac"))
        if mac is not None:
            state["mac"] = mac

    uptime = parse_uptime(_first(row, ("uptime",)))
    if uptime is not None:
        state["uptime_s"] = uptime
    return state


def _first(row: dict[str, Any], fields: tuple[str, ...]) -> str:
    """Return the first non-blank field; a list field gives its first item.

    Stacked IOS switches list one hardware model, serial and MAC per member,
    and the first member is the one whose values are returned.
    """
    for field in fields:
        value = row.get(field)
        if isinstance(value, list):
            value = value[0] if value else ""
        if isinstance(value, str) and value.strip():
            return value.strip()
    return ""
