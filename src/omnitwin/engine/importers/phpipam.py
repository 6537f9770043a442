"""phpIPAM CSV import layouts and REST API objects.

CSV layouts, matched by header name in any case:

- subnets: ``Section, Subnet, Mask, Description, VLAN, Domain, VRF`` and then
  custom fields. ``Subnet`` is the network address and ``Mask`` its prefix
  length or dotted netmask. Section, Domain and each non-empty custom field
  become tags (``section``, ``domain``, the custom header name).
- addresses: ``Section, IP address, Hostname, Description, VRF, Subnet, MAC,
  Owner, Device, Note, Tag, Is_Gateway`` and then custom fields. ``Subnet`` is
  the containing network in CIDR form, ``Tag`` (phpIPAM's address state, such
  as Used or Reserved) becomes the status, and Section, Description, Note,
  Is_Gateway and custom fields become tags.

phpIPAM stores addresses as decimal integers (``168427520`` is 10.10.0.0).
A decimal value is IPv6 when it is above 2**32-1, when its subnet mask is
above 32, or when the address is in an IPv6 subnet. Otherwise it is IPv4.
The one value this rule cannot place is an IPv6 address below 2**32 without
such context, such as ``::1`` given alone.
"""

from __future__ import annotations

import ipaddress
from functools import partial
from typing import Any

from omnitwin.engine.importers.csvutil import CsvRow, read_table, surplus_error
from omnitwin.engine.importers.records import (
    AddressRecord,
    ParseResult,
    Record,
    RowError,
    SubnetRecord,
    check_field,
    mask_to_prefix,
    parse_address,
    parse_mac,
    parse_network,
    parse_vlan_id,
)
from omnitwin.errors import InvalidAddress, ValidationError

__all__ = [
    "ADDRESS_COLUMNS",
    "SUBNET_COLUMNS",
    "decimal_to_ip",
    "parse_phpipam_api",
    "parse_phpipam_csv",
]

#: Documented columns of the subnet import, before custom fields.
SUBNET_COLUMNS = ("section", "subnet", "mask", "description", "vlan", "domain", "vrf")
#: Documented columns of the address import, before custom fields.
ADDRESS_COLUMNS = (
    "section", "ip address", "hostname", "description", "vrf", "subnet", "mac",
    "owner", "device", "note", "tag", "is_gateway",
)  # fmt: skip
_IPV4_MAX = 2**32 - 1
_TRUE = {"1", "yes", "true", "y"}


def decimal_to_ip(value: str | int, *, version: int | None = None) -> str:
    """Convert phpIPAM's decimal address to text.

    Parameters
    ----------
    value : str or int
        The decimal integer. Dotted or colon text is accepted and returned
        canonical, as some phpIPAM versions return text.
    version : {4, 6}, optional
        The family when the context fixes it; otherwise values above 2**32-1
        are IPv6 and the rest IPv4.

    Returns
    -------
    str
        The address, e.g. ``"10.10.0.0"``.

    Raises
    ------
    InvalidAddress
        If the value is negative, too large for its family, or not a number.

    Examples
    --------
    >>> decimal_to_ip(168427520)
    '10.10.0.0'
    >>> decimal_to_ip("42540766411282592856903984951653826561")
    '2001:db8::1'
    """
    text = str(value).strip()
    if not text.isdigit():
        try:
            return str(ipaddress.ip_address(text))
        except ValueError as exc:
            raise InvalidAddress(
                f"{text!r} is neither a decimal address nor an IP address; phpIPAM"
                " stores e.g. 168427520 for 10.10.0.0",
                details={"value": text},
            ) from exc
    number = int(text)
    family = version or (6 if number > _IPV4_MAX else 4)
    try:
        if family == 4:
            return str(ipaddress.IPv4Address(number))
        return str(ipaddress.IPv6Address(number))
    except ValueError as exc:
        raise InvalidAddress(
            f"decimal address {text} is out of range for IPv{family}; check the"
            " value or its subnet",
            details={"value": text},
        ) from exc


def parse_phpipam_csv(data: bytes | str) -> ParseResult:
    """Parse a phpIPAM subnet or address import CSV.

    The layout is chosen by the header: ``ip address`` means addresses,
    ``subnet`` with ``mask`` means subnets.

    Parameters
    ----------
    data : bytes or str
        The file content.

    Returns
    -------
    ParseResult
        Subnet or address records, with a row error per invalid row.

    Raises
    ------
    ValidationError
        If the header matches neither layout.

    Examples
    --------
    >>> text = "Section,Subnet,Mask,Description,VLAN,Domain,VRF\\n"
    >>> text += "Lab,10.10.0.0,16,Lab space,,default,\\n"
    >>> parse_phpipam_csv(text).records[0].cidr
    '10.10.0.0/16'
    """
    table = read_table(data)
    documented: tuple[str, ...]
    if "ip address" in table.headers:
        documented, parse_row = ADDRESS_COLUMNS, _address_row
    elif {"subnet", "mask"} <= set(table.headers):
        documented, parse_row = SUBNET_COLUMNS, _subnet_row
    else:
        raise ValidationError(
            f"the header on line {table.header_line} matches no phpIPAM layout;"
            " subnets need Subnet and Mask columns, addresses an IP address column",
            details={"headers": list(table.headers)},
        )
    custom = [name for name in table.headers if name not in documented]
    result = ParseResult(total_rows=len(table.rows))
    for row in table.rows:
        shape_error = surplus_error(row, len(table.headers))
        if shape_error is not None:
            result.errors.append(shape_error)
            continue
        errors: list[RowError] = []
        record = parse_row(row, custom, errors)
        result.errors.extend(errors)
        if record is not None and not errors:
            result.records.append(record)
    return result


def _tags(row: CsvRow, names: list[str]) -> dict[str, str]:
    return {name.replace(" ", "_"): row.get(name) for name in names if row.get(name)}


def _subnet_row(
    row: CsvRow, custom: list[str], errors: list[RowError]
) -> Record | None:
    line = row.line
    length = check_field(errors, line, "Mask", row.get("mask"), mask_to_prefix)
    cidr = None
    if length is not None:
        text = f"{row.get('subnet')}/{length}"
        cidr = check_field(errors, line, "Subnet", text, parse_network)
    vlan_id = None
    if row.get("vlan"):
        vlan_id = check_field(errors, line, "VLAN", row.get("vlan"), parse_vlan_id)
    if cidr is None:
        return None
    return SubnetRecord(
        line,
        cidr,
        vrf=row.get("vrf") or "global",
        purpose=row.get("description"),
        vlan_id=vlan_id,
        tags=_tags(row, ["section", "domain", *custom]),
    )


def _address_row(
    row: CsvRow, custom: list[str], errors: list[RowError]
) -> Record | None:
    line = row.line
    address = check_field(
        errors, line, "IP address", row.get("ip address"), parse_address
    )
    if row.get("subnet"):
        subnet = check_field(errors, line, "Subnet", row.get("subnet"), parse_network)
        if address and subnet:
            _check_in_subnet(errors, line, address, subnet)
    mac = ""
    if row.get("mac"):
        mac = check_field(errors, line, "MAC", row.get("mac"), parse_mac) or ""
    if address is None:
        return None
    tags = _tags(row, ["section", "description", "note", *custom])
    if row.get("is_gateway").lower() in _TRUE:
        tags["gateway"] = "true"
    return AddressRecord(
        line,
        address,
        vrf=row.get("vrf") or "global",
        hostname=row.get("hostname"),
        status=row.get("tag").lower(),
        mac=mac,
        owner=row.get("owner"),
        device=row.get("device"),
        tags=tags,
    )


def _check_in_subnet(
    errors: list[RowError], line: int, address: str, subnet: str
) -> None:
    host = ipaddress.ip_interface(address).ip
    network = ipaddress.ip_network(subnet)
    if host not in network:
        message = (
            f"IP address {host} is outside its subnet {subnet}; fix the address"
            " or the Subnet column"
        )
        errors.append(RowError(line, "IP address", str(host), message))


def parse_phpipam_api(subnets: Any = (), addresses: Any = ()) -> ParseResult:
    """Parse phpIPAM REST API subnet and address objects.

    Parameters
    ----------
    subnets : list of dict or dict, optional
        Objects from ``GET /api/<app>/subnets/...``, or the response with
        ``data``. Uses ``id``, ``subnet``, ``mask``, ``description``,
        ``vrfId`` (VRF ``vrf-<id>``) and ``vlanId`` (tag ``vlan_object_id``).
    addresses : list of dict or dict, optional
        Objects from ``GET /api/<app>/addresses/...``. Uses ``ip`` (or
        ``ip_addr``), ``subnetId``, ``hostname``, ``mac``, ``owner`` and
        ``is_gateway``.

    Returns
    -------
    ParseResult
        Subnets first, then addresses; ``line`` counts objects from 1 across
        both lists. An address in a known IPv6 subnet is read as IPv6.

    Examples
    --------
    >>> result = parse_phpipam_api([{"id": "7", "subnet": "168427520", "mask": "16"}])
    >>> result.records[0].cidr
    '10.10.0.0/16'
    """
    # NOTE: no recorded phpIPAM API response was available, so this follows the
    # documented field names and is tested through decimal_to_ip only.
    subnet_items, address_items = _api_data(subnets), _api_data(addresses)
    result = ParseResult(total_rows=len(subnet_items) + len(address_items))
    families: dict[str, int] = {}
    for line, item in enumerate(subnet_items, start=1):
        errors: list[RowError] = []
        record = _api_subnet(item, line, errors)
        result.errors.extend(errors)
        if record is not None:
            families[str(item.get("id"))] = ipaddress.ip_network(record.cidr).version
            result.records.append(record)
    for line, item in enumerate(address_items, start=len(subnet_items) + 1):
        errors = []
        family = families.get(str(item.get("subnetId")))
        text = str(item.get("ip") or item.get("ip_addr") or "")
        parse = partial(decimal_to_ip, version=family)
        ip = check_field(errors, line, "ip", text, parse)
        if ip is None:
            result.errors.extend(errors)
            continue
        gateway = str(item.get("is_gateway") or "").lower() in _TRUE
        result.records.append(
            AddressRecord(
                line,
                parse_address(ip),
                hostname=str(item.get("hostname") or ""),
                mac=str(item.get("mac") or ""),
                owner=str(item.get("owner") or ""),
                tags={"gateway": "true"} if gateway else {},
                source_id=str(item.get("id") or ""),
            )
        )
    return result


def _api_data(payload: Any) -> list[dict[str, Any]]:
    if isinstance(payload, dict):
        payload = payload.get("data") or []
    return [item for item in payload if isinstance(item, dict)]


def _api_subnet(
    item: dict[str, Any], line: int, errors: list[RowError]
) -> SubnetRecord | None:
    mask = str(item.get("mask", ""))
    length = check_field(errors, line, "mask", mask, mask_to_prefix)
    if length is None:
        return None
    version = 6 if length > 32 else None
    text = str(item.get("subnet", ""))
    network = check_field(
        errors, line, "subnet", text, partial(decimal_to_ip, version=version)
    )
    if network is None:
        return None
    cidr = check_field(errors, line, "subnet", f"{network}/{length}", parse_network)
    if cidr is None:
        return None
    vlan = str(item.get("vlanId") or "")
    vrf_id = str(item.get("vrfId") or "")
    return SubnetRecord(
        line,
        cidr,
        vrf=f"vrf-{vrf_id}" if vrf_id and vrf_id != "0" else "global",
        purpose=str(item.get("description") or ""),
        tags={"vlan_object_id": vlan} if vlan and vlan != "0" else {},
        source_id=str(item.get("id") or ""),
    )
