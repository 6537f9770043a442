"""Records that every import parser returns, and the field checks that build them.

Parsers are pure: they turn a vendor file into a :class:`ParseResult` holding
typed records and one :class:`RowError` per rejected row, and they never touch
the store. ``line`` is the physical line where a CSV row starts (counting from
1) or, for JSON input, the position of the object in its list (counting from
1).
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from omnitwin.engine.cidr import canonical_ipv4
from omnitwin.errors import InvalidAddress, InvalidCIDR, ValidationError

__all__ = [
    "SUBNET_STATUSES",
    "AddressRecord",
    "CableHop",
    "CableRecord",
    "DeviceRecord",
    "InterfaceRecord",
    "ParseResult",
    "PortRecord",
    "RackRecord",
    "RangeRecord",
    "Record",
    "RowError",
    "SiteRecord",
    "SkippedRow",
    "SubnetRecord",
    "TenantRecord",
    "VlanRecord",
    "VrfRecord",
    "check_field",
    "check_range",
    "mask_to_prefix",
    "parse_address",
    "parse_ip",
    "parse_mac",
    "parse_network",
    "parse_vlan_id",
]

#: Subnet statuses of the omnitwin data model.
SUBNET_STATUSES = ("allocated", "reserved", "available", "deprecated")


class _RecordBase:
    """Mixin giving records a JSON-ready ``to_dict``."""

    __slots__ = ()

    def to_dict(self) -> dict[str, Any]:
        """Return the record as a JSON-serialisable dict with a ``type`` key.

        Examples
        --------
        >>> SiteRecord(line=1, name="lab", slug="lab").to_dict()["type"]
        'site'
        """
        body: dict[str, Any] = {"type": _type_name(type(self).__name__)}
        for item in dataclasses.fields(self):  # type: ignore[arg-type]
            body[item.name] = _jsonable(getattr(self, item.name))
        return body


def _type_name(class_name: str) -> str:
    return class_name.removesuffix("Record").lower()


def _jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)
        }
    if isinstance(value, tuple | list):
        return [_jsonable(item) for item in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return value


@dataclass(frozen=True, slots=True)
class SubnetRecord(_RecordBase):
    """A network or network container read from a source."""

    line: int
    cidr: str
    vrf: str = "global"
    status: str = "allocated"
    purpose: str = ""
    vlan_id: int | None = None
    owner: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    parent_cidr: str | None = None
    is_container: bool = False
    source_id: str = ""


@dataclass(frozen=True, slots=True)
class AddressRecord(_RecordBase):
    """An IP address, with the prefix length given by the source or /32, /128."""

    line: int
    address: str
    vrf: str = "global"
    hostname: str = ""
    status: str = ""
    mac: str = ""
    owner: str = ""
    device: str = ""
    interface: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    source_id: str = ""


@dataclass(frozen=True, slots=True)
class RangeRecord(_RecordBase):
    """A DHCP or reserved range of addresses, both ends inclusive."""

    line: int
    start: str
    end: str
    vrf: str = "global"
    network_cidr: str | None = None
    purpose: str = ""
    source_id: str = ""


@dataclass(frozen=True, slots=True)
class SiteRecord(_RecordBase):
    """A site (NetBox ``dcim.site``)."""

    line: int
    name: str
    slug: str = ""
    status: str = ""
    region: str = ""
    facility: str = ""
    owner: str = ""
    source_id: str = ""


@dataclass(frozen=True, slots=True)
class RackRecord(_RecordBase):
    """A rack in a site."""

    line: int
    name: str
    site: str = ""
    location: str = ""
    status: str = ""
    role: str = ""
    u_height: int | None = None
    owner: str = ""
    source_id: str = ""


@dataclass(frozen=True, slots=True)
class DeviceRecord(_RecordBase):
    """A device; ``tenant`` is the owner string ``tenant:<slug>`` or empty."""

    line: int
    name: str
    role: str = ""
    site: str = ""
    rack: str = ""
    serial: str = ""
    platform: str = ""
    tenant: str = ""
    device_type: str = ""
    status: str = ""
    source_id: str = ""


@dataclass(frozen=True, slots=True)
class InterfaceRecord(_RecordBase):
    """A network interface of a device."""

    line: int
    device: str
    name: str
    type: str = ""
    enabled: bool = True
    mgmt_only: bool = False
    mac: str = ""
    mtu: int | None = None
    parent: str = ""
    lag: str = ""
    description: str = ""
    source_id: str = ""


@dataclass(frozen=True, slots=True)
class PortRecord(_RecordBase):
    """A patch panel port: ``kind`` is ``front_port`` or ``rear_port``.

    A front port maps to position ``rear_port_position`` of ``rear_port`` on the
    same device. A rear port carries ``positions`` front ports.
    """

    line: int
    device: str
    name: str
    kind: str
    type: str = ""
    rear_port: str = ""
    rear_port_position: int | None = None
    positions: int | None = None
    source_id: str = ""


@dataclass(frozen=True, slots=True)
class CableHop(_RecordBase):
    """One hop of a cable path: a panel port or a circuit.

    For ``kind`` ``front_port`` and ``rear_port``, ``name`` is the device and
    ``port`` the port name. For ``kind`` ``circuit``, ``name`` is the circuit ID
    and ``port`` the termination side (``A`` or ``Z``) where the path enters it.
    """

    kind: str
    name: str
    port: str


@dataclass(frozen=True, slots=True)
class CableRecord(_RecordBase):
    """A physical cable, or an end-to-end path when ``kind`` is ``path``.

    ``a_type`` and ``b_type`` name what each end is attached to (``interface``,
    ``front_port``, ``rear_port``, ``circuit_termination``, ``power_port`` ...).
    For a circuit termination, the device field contains the circuit ID and the
    port field its side. A path joins two device ports and lists the panel
    ports and circuits between them in ``through``, in order from A to B.
    """

    line: int
    a_device: str
    a_port: str
    b_device: str
    b_port: str
    label: str = ""
    kind: str = "cable"
    a_type: str = "interface"
    b_type: str = "interface"
    through: tuple[CableHop, ...] = ()
    source_id: str = ""


@dataclass(frozen=True, slots=True)
class VlanRecord(_RecordBase):
    """A VLAN; ``site`` or ``group`` scopes the VLAN ID when set."""

    line: int
    vid: int
    name: str
    site: str = ""
    group: str = ""
    status: str = ""
    role: str = ""
    owner: str = ""
    source_id: str = ""


@dataclass(frozen=True, slots=True)
class VrfRecord(_RecordBase):
    """A VRF with its route distinguisher."""

    line: int
    name: str
    rd: str = ""
    owner: str = ""
    source_id: str = ""


@dataclass(frozen=True, slots=True)
class TenantRecord(_RecordBase):
    """A tenant; records it owns carry the owner string ``tenant:<slug>``."""

    line: int
    name: str
    slug: str
    group: str = ""
    source_id: str = ""


Record = (
    SubnetRecord
    | AddressRecord
    | RangeRecord
    | SiteRecord
    | RackRecord
    | DeviceRecord
    | InterfaceRecord
    | PortRecord
    | CableRecord
    | VlanRecord
    | VrfRecord
    | TenantRecord
)

_R = TypeVar("_R")
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True, slots=True)
class RowError:
    """A rejected row: where, which field, the value, and what to do."""

    line: int
    field: str
    value: str
    message: str

    def to_dict(self) -> dict[str, Any]:
        """Return the error as a JSON-serialisable dict."""
        return dataclasses.asdict(self)


@dataclass(frozen=True, slots=True)
class SkippedRow:
    """A valid row that the parser does not import, with the reason."""

    line: int
    reason: str

    def to_dict(self) -> dict[str, Any]:
        """Return the skipped row as a JSON-serialisable dict."""
        return dataclasses.asdict(self)


@dataclass(slots=True)
class ParseResult:
    """Records, row errors and skipped rows read from one source.

    ``total_rows`` counts the data rows (CSV) or objects (JSON) examined, so
    every one of them is either a record source, an error or a skipped row.
    A row may yield more than one record, as a host record with two addresses
    does.
    """

    records: list[Record] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    total_rows: int = 0
    skipped: list[SkippedRow] = field(default_factory=list)

    def of_type(self, kind: type[_R]) -> list[_R]:
        """Return the records of one class, in source order.

        Examples
        --------
        >>> result = ParseResult(records=[SiteRecord(line=1, name="lab")])
        >>> [site.name for site in result.of_type(SiteRecord)]
        ['lab']
        """
        return [record for record in self.records if isinstance(record, kind)]

    def extend(self, other: ParseResult) -> None:
        """Append the records, errors and row counts of ``other``."""
        self.records.extend(other.records)
        self.errors.extend(other.errors)
        self.skipped.extend(other.skipped)
        self.total_rows += other.total_rows

    def to_dict(self) -> dict[str, Any]:
        """Return the result as a JSON-serialisable dict."""
        return {
            "records": [record.to_dict() for record in self.records],
            "errors": [error.to_dict() for error in self.errors],
            "skipped": [row.to_dict() for row in self.skipped],
            "total_rows": self.total_rows,
        }


# Field checks. Each raises a ValidationError subclass whose message names the
# value and the fix; parsers turn it into a RowError for the row.


def parse_network(value: str) -> str:
    """Parse a network in CIDR form, rejecting host bits and bare addresses.

    A dotted netmask after the slash (``10.0.0.0/255.255.255.0``) is accepted
    and written as a prefix length. Leading-zero octets are rejected, as
    :mod:`ipaddress` does.

    Parameters
    ----------
    value : str
        The network, such as ``"10.0.0.0/24"`` or ``"2001:db8::/32"``.

    Returns
    -------
    str
        The network in canonical CIDR form.

    Raises
    ------
    InvalidCIDR
        If the value is not a network, has host bits set or has no prefix length.

    Examples
    --------
    >>> parse_network("10.0.0.0/255.255.0.0")
    '10.0.0.0/16'
    >>> try:
    ...     parse_network("10.0.83.196/26")
    ... except InvalidCIDR as exc:
    ...     print(exc)
    10.0.83.196/26 has host bits set; did you mean 10.0.83.192/26?
    """
    text = value.strip()
    if canonical_ipv4(text) is not None:
        return text
    if "/" not in text:
        raise InvalidCIDR(
            f"{text!r} has no prefix length; write the network as address/length,"
            " e.g. 10.0.0.0/24",
            details={"value": text},
        )
    try:
        return str(ipaddress.ip_network(text, strict=True))
    except ValueError as exc:
        message = _network_error(text, exc)
    raise InvalidCIDR(message, details={"value": text})


def _network_error(text: str, exc: ValueError) -> str:
    try:
        network = ipaddress.ip_network(text, strict=False)
    except ValueError:
        return f"{text!r} is not a valid network ({exc}); write it as e.g. 10.0.0.0/24"
    return f"{text} has host bits set; did you mean {network}?"


def parse_address(value: str) -> str:
    """Parse an IP address, keeping a given prefix length or adding /32, /128.

    Parameters
    ----------
    value : str
        An address such as ``"10.1.1.1"`` or an interface-style address with a
        prefix length or netmask, such as ``"10.1.1.1/24"``.

    Returns
    -------
    str
        The address with its prefix length, e.g. ``"10.1.1.1/24"``.

    Raises
    ------
    InvalidAddress
        If the value is not an IPv4 or IPv6 address.

    Examples
    --------
    >>> parse_address("10.1.1.1")
    '10.1.1.1/32'
    >>> parse_address("2001:db8::1/64")
    '2001:db8::1/64'
    """
    text = value.strip()
    try:
        if "/" in text:
            return str(ipaddress.ip_interface(text))
        address = ipaddress.ip_address(text)
    except ValueError as exc:
        raise InvalidAddress(
            f"{text!r} is not a valid IP address ({exc}); write it as e.g. 10.1.1.1"
            " or 2001:db8::1",
            details={"value": text},
        ) from exc
    return f"{address}/{address.max_prefixlen}"


def parse_ip(value: str) -> IPAddress:
    """Parse a bare IPv4 or IPv6 address, without a prefix length.

    Raises
    ------
    InvalidAddress
        If the value is not an address.

    Examples
    --------
    >>> str(parse_ip(" 10.0.0.1 "))
    '10.0.0.1'
    """
    text = value.strip()
    try:
        return ipaddress.ip_address(text)
    except ValueError as exc:
        raise InvalidAddress(
            f"{text!r} is not a valid IP address ({exc}); write it as e.g. 10.1.1.1"
            " or 2001:db8::1",
            details={"value": text},
        ) from exc


def mask_to_prefix(mask: str) -> int:
    """Convert a dotted IPv4 netmask or a prefix length to a prefix length.

    Parameters
    ----------
    mask : str
        ``"255.255.255.0"``, ``"24"`` or ``"/24"``.

    Returns
    -------
    int
        The prefix length.

    Raises
    ------
    InvalidCIDR
        If the netmask is not contiguous or the length is out of range.

    Examples
    --------
    >>> mask_to_prefix("255.255.252.0")
    22
    """
    text = mask.strip().removeprefix("/")
    if text.isdigit():
        length = int(text)
        if length > 128:
            raise InvalidCIDR(
                f"prefix length {text} is out of range; use 0-32 for IPv4"
                " or 0-128 for IPv6",
                details={"value": text},
            )
        return length
    try:
        return ipaddress.IPv4Network(f"0.0.0.0/{text}").prefixlen
    except ValueError as exc:
        raise InvalidCIDR(
            f"netmask {text!r} is not a contiguous IPv4 netmask; use one such as"
            " 255.255.255.0",
            details={"value": text},
        ) from exc


_MAC_SEPARATORS = re.compile(r"[:\-.\s]")


def parse_mac(value: str) -> str:
    """Normalise a MAC address to lower-case, colon-separated form.

    Colon, hyphen and Cisco dotted forms and 12 bare hex digits are accepted.

    Parameters
    ----------
    value : str
        The MAC address as written in the source.

    Returns
    -------
    str
        The MAC address, e.g. ``"00:11:22:33:44:55"``.

    Raises
    ------
    ValidationError
        If the value does not hold exactly 12 hex digits.

    Examples
    --------
    >>> parse_mac("0011.2233.4455")
    '00:11:22:33:44:55'
    """
    text = value.strip()
    digits = _MAC_SEPARATORS.sub("", text).lower()
    if len(digits) != 12 or any(c not in "0123456789abcdef" for c in digits):
        raise ValidationError(
            f"{text!r} is not a valid MAC address; write 12 hex digits such as"
            " 00:11:22:33:44:55",
            details={"value": text},
        )
    return ":".join(digits[i : i + 2] for i in range(0, 12, 2))


def parse_vlan_id(value: str) -> int:
    """Parse a VLAN ID in the range 1-4094.

    Examples
    --------
    >>> parse_vlan_id(" 100 ")
    100
    """
    text = value.strip()
    if not text.isdigit() or not 1 <= int(text) <= 4094:
        raise ValidationError(
            f"VLAN ID {text!r} is invalid; use a whole number from 1 to 4094",
            details={"value": text},
        )
    return int(text)


def check_field(
    errors: list[RowError],
    line: int,
    name: str,
    value: str,
    parse: Callable[[str], _R],
) -> _R | None:
    """Run ``parse`` on a field value, recording a failure as a row error.

    Parameters
    ----------
    errors : list of RowError
        Where a failure is appended.
    line : int
        The row's line number.
    name : str
        The field name, as the source spells it.
    value : str
        The raw value.
    parse : callable
        A field check such as :func:`parse_network`.

    Returns
    -------
    object or None
        The parsed value, or None when the check failed.

    Examples
    --------
    >>> errors: list[RowError] = []
    >>> check_field(errors, 7, "vlan", "5000", parse_vlan_id) is None
    True
    >>> errors[0].line, errors[0].field
    (7, 'vlan')
    """
    try:
        return parse(value)
    except ValidationError as exc:
        errors.append(RowError(line=line, field=name, value=value, message=exc.message))
        return None


def check_range(
    errors: list[RowError], line: int, start: str, end: str, network: str = ""
) -> str | None:
    """Check an address range and return its network, or ``""`` when not given.

    The ends must be addresses of one family, both must lie in ``network`` when
    it is given, and the end must not precede the start. Every failed check
    adds its own row error.

    Parameters
    ----------
    errors : list of RowError
        Where failures are appended, one per failed check.
    line : int
        The row's line number.
    start, end : str
        The first and last address of the range.
    network : str, optional
        The network that should contain the range, in CIDR form.

    Returns
    -------
    str or None
        The canonical network, ``""`` without one, or None when a check failed.

    Examples
    --------
    >>> errors: list[RowError] = []
    >>> check_range(errors, 2, "10.0.0.20", "10.0.0.10") is None
    True
    >>> errors[0].message
    'range end 10.0.0.10 precedes its start 10.0.0.20; swap them or fix the end'
    """
    count = len(errors)
    first = check_field(errors, line, "start", start, parse_ip)
    last = check_field(errors, line, "end", end, parse_ip)
    cidr = (
        check_field(errors, line, "network", network, parse_network) if network else ""
    )
    if first is None or last is None or cidr is None:
        return None
    if first.version != last.version:
        message = (
            f"range start {start} and end {end} are different IP versions;"
            " give both ends in the same family"
        )
        errors.append(RowError(line, "end", end, message))
        return None
    if cidr:
        outer = ipaddress.ip_network(cidr)
        for name, text, value in (("start", start, first), ("end", end, last)):
            if value not in outer:
                message = (
                    f"range {name} {text} is outside its network {cidr}; give an"
                    f" address from {outer[0]} to {outer[-1]}"
                )
                errors.append(RowError(line, name, text, message))
    if last < first:  # type: ignore[operator]
        message = (
            f"range end {end} precedes its start {start}; swap them or fix the end"
        )
        errors.append(RowError(line, "end", end, message))
    return None if len(errors) > count else cidr
