"""BlueCat Address Manager CSV files and entity JSON.

CSV layouts are recognised by their columns (trimmed, any case):

- DHCP ranges: ``Block, Pool Name, Network, Gateway, Tag Name, DHCP Range``.
  Each row gives the block as a container, the network inside it with the
  pool name as purpose and the tag as tag ``tag``, the gateway as an address
  with status ``gateway``, and the range ``first-last``.
- IP addresses: ``IP Address, Host Name, MAC Address, Comments``.
- MAC addresses: ``Asset Code, MAC Address, MAC Pool, Comments``, and IoT
  devices: ``name, macAddress, ...``. These carry no IP address, so their
  rows are checked (the MAC address must be valid) and then skipped.

Entity JSON comes in two shapes: the Cortex XSOAR context of an IP query
(``BlueCat.AddressManager.IP`` with ``Parents`` listed from the nearest
network to the top block), and a list of API entities ``{"id", "name",
"type", "properties"}`` whose ``properties`` are ``key=value|key=value|``.
``line`` is the position of the entity, counting from 1: the address first,
then its parents in order.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from omnitwin.engine.importers.csvutil import CsvRow, read_table, surplus_error
from omnitwin.engine.importers.records import (
    AddressRecord,
    ParseResult,
    RangeRecord,
    Record,
    RowError,
    SkippedRow,
    SubnetRecord,
    check_field,
    check_range,
    parse_address,
    parse_mac,
    parse_network,
)
from omnitwin.errors import ValidationError

__all__ = ["parse_bluecat_csv", "parse_bluecat_json", "parse_properties"]

_RANGE_COLUMNS = {"block", "network", "dhcp range"}
_ADDRESS_COLUMNS = {"ip address", "host name", "mac address"}
_MAC_COLUMNS = {"asset code", "mac address"}
_IOT_COLUMNS = {"name", "macaddress"}


def parse_bluecat_csv(data: bytes | str) -> ParseResult:
    """Parse a BlueCat Gateway CSV of DHCP ranges, IP addresses or MACs.

    Parameters
    ----------
    data : bytes or str
        The file content.

    Returns
    -------
    ParseResult
        Subnet, range and address records, with a row error per invalid row.

    Raises
    ------
    ValidationError
        If the columns match none of the layouts in the module docstring.

    Examples
    --------
    >>> text = "IP Address, Host Name, MAC Address\\n10.0.0.5, web1, 0011.2233.4455\\n"
    >>> parse_bluecat_csv(text).records[0].mac
    '00:11:22:33:44:55'
    """
    table = read_table(data)
    headers = set(table.headers)
    if headers >= _RANGE_COLUMNS:
        parse_row = _range_row
    elif headers >= _ADDRESS_COLUMNS:
        parse_row = _address_row
    elif headers >= _MAC_COLUMNS or headers >= _IOT_COLUMNS:
        parse_row = _mac_row
    else:
        raise ValidationError(
            f"the columns {', '.join(table.headers)} match no BlueCat layout; expected"
            " Block, Network and DHCP Range, or IP Address, Host Name and MAC"
            " Address, or Asset Code and MAC Address",
            details={"headers": list(table.headers)},
        )
    result = ParseResult(total_rows=len(table.rows))
    seen_blocks: set[str] = set()
    for row in table.rows:
        shape_error = surplus_error(row, len(table.headers))
        if shape_error is not None:
            result.errors.append(shape_error)
            continue
        errors: list[RowError] = []
        records = parse_row(row, errors)
        result.errors.extend(errors)
        if errors:
            continue
        if records is None:
            reason = "the row registers a MAC address without an IP address"
            result.skipped.append(SkippedRow(row.line, reason))
            continue
        for record in records:
            if isinstance(record, SubnetRecord) and record.is_container:
                if record.cidr in seen_blocks:
                    continue
                seen_blocks.add(record.cidr)
            result.records.append(record)
    return result


def _range_row(row: CsvRow, errors: list[RowError]) -> list[Record] | None:
    line = row.line
    block = check_field(errors, line, "Block", row.get("block"), parse_network)
    network = check_field(errors, line, "Network", row.get("network"), parse_network)
    if block and network:
        _check_inside(errors, line, "Network", network, block)

    gateway = None
    if row.get("gateway"):
        gateway = check_field(
            errors, line, "Gateway", row.get("gateway"), parse_address
        )
    if gateway and network:
        _check_inside(errors, line, "Gateway", gateway.split("/")[0], network)

    start, dash, end = row.get("dhcp range").partition("-")
    if not dash:
        message = (
            f"DHCP range {row.get('dhcp range')!r} is not first-last; write it as"
            " e.g. 10.0.0.30-10.0.0.254"
        )
        errors.append(RowError(line, "DHCP Range", row.get("dhcp range"), message))
    elif network:
        check_range(errors, line, start.strip(), end.strip(), network)
    if errors or block is None or network is None:
        return []

    tags = {"tag": row.get("tag name")} if row.get("tag name") else {}
    records: list[Record] = [
        SubnetRecord(line, block, is_container=True),
        SubnetRecord(
            line, network, purpose=row.get("pool name"), tags=tags, parent_cidr=block
        ),
        RangeRecord(
            line,
            start.strip(),
            end.strip(),
            network_cidr=network,
            purpose=row.get("pool name"),
        ),
    ]
    if gateway:
        records.append(AddressRecord(line, gateway, status="gateway"))
    return records


def _check_inside(
    errors: list[RowError], line: int, name: str, inner: str, outer: str
) -> None:
    if "/" in inner:
        inside = ipaddress.ip_network(inner).subnet_of(ipaddress.ip_network(outer))  # type: ignore[arg-type]
    else:
        inside = ipaddress.ip_address(inner) in ipaddress.ip_network(outer)
    if not inside:
        message = f"{name} {inner} is outside {outer}; give a value inside {outer}"
        errors.append(RowError(line, name, inner, message))


def _address_row(row: CsvRow, errors: list[RowError]) -> list[Record] | None:
    line = row.line
    address = check_field(
        errors, line, "IP Address", row.get("ip address"), parse_address
    )
    mac = ""
    if row.get("mac address"):
        mac = (
            check_field(errors, line, "MAC Address", row.get("mac address"), parse_mac)
            or ""
        )
    if errors or address is None:
        return []
    record = AddressRecord(
        line,
        address,
        hostname=row.get("host name"),
        mac=mac,
        tags=_comment_tag(row.get("comments")),
    )
    return [record]


def _comment_tag(comment: str) -> dict[str, str]:
    return {"comment": comment} if comment else {}


def _mac_row(row: CsvRow, errors: list[RowError]) -> list[Record] | None:
    field = "MAC Address" if "mac address" in row.values else "macAddress"
    value = row.get("mac address") or row.get("macaddress")
    check_field(errors, row.line, field, value, parse_mac)
    return None


# Entity JSON


def parse_properties(text: str) -> dict[str, str]:
    """Split a BlueCat ``properties`` string ``key=value|key=value|``.

    Parameters
    ----------
    text : str
        The properties string; a trailing ``|`` is allowed.

    Returns
    -------
    dict of str to str
        The properties in order.

    Examples
    --------
    >>> parse_properties("CIDR=10.0.0.0/8|name=x|")
    {'CIDR': '10.0.0.0/8', 'name': 'x'}
    """
    properties: dict[str, str] = {}
    for pair in text.split("|"):
        key, _, value = pair.partition("=")
        if key:
            properties[key] = value
    return properties


def parse_bluecat_json(document: Any) -> ParseResult:
    """Parse a BlueCat entity chain into block, network and address records.

    Parameters
    ----------
    document : object
        Decoded JSON: an XSOAR context with ``BlueCat.AddressManager.IP``, or
        a list of API entities with pipe-delimited ``properties``.

    Returns
    -------
    ParseResult
        ``IP4Block``/``IP6Block`` entities as containers, ``IP4Network``/
        ``IP6Network`` as networks, each with the next larger entity of the
        chain as parent, and ``IP4Address``/``IP6Address`` as addresses.

    Examples
    --------
    >>> chain = [{"id": 1, "name": "n", "type": "IP4Network",
    ...           "properties": "CIDR=10.0.0.0/24|"}]
    >>> parse_bluecat_json(chain).records[0].cidr
    '10.0.0.0/24'
    """
    entities = _entities(document)
    result = ParseResult(total_rows=len(entities))
    cidrs = [entity.get("CIDR", "") for entity in entities]
    for line, entity in enumerate(entities, start=1):
        errors: list[RowError] = []
        record = _entity_record(entity, line, cidrs[line:], errors)
        result.errors.extend(errors)
        if record is None and not errors:
            reason = f"entity type {entity.get('Type', '')!r} is not imported"
            result.skipped.append(SkippedRow(line, reason))
        elif record is not None:
            result.records.append(record)
    return result


def _entities(document: Any) -> list[dict[str, Any]]:
    """Return entities as flat dicts with ``Type``, ``ID``, ``Name`` keys."""
    if isinstance(document, dict) and "BlueCat.AddressManager.IP" in document:
        ip = document["BlueCat.AddressManager.IP"]
        own = {key: value for key, value in ip.items() if key != "Parents"}
        own["Type"] = "IP4Address" if ip.get("Type") == "IPv4" else "IP6Address"
        return [own, *ip.get("Parents", [])]
    if isinstance(document, list):
        flat = []
        for index, entity in enumerate(document, start=1):
            if not isinstance(entity, dict):
                raise ValidationError(
                    f"entity {index} is a {type(entity).__name__}, not a JSON "
                    "object; pass a list of BlueCat entities"
                )
            item: dict[str, Any] = dict(
                parse_properties(str(entity.get("properties") or ""))
            )
            item.update(
                Type=entity.get("type"), ID=entity.get("id"), Name=entity.get("name")
            )
            flat.append(item)
        # Entities are sorted from the smallest to the largest, the order of the
        # XSOAR parents. NOTE: no recorded API entity list was available to test.
        return sorted(flat, key=_entity_size)
    raise ValidationError(
        "the JSON is neither a BlueCat.AddressManager.IP context nor a list of"
        " entities; pass one of those",
    )


def _entity_size(entity: dict[str, Any]) -> int:
    cidr = str(entity.get("CIDR") or "")
    if "/" not in cidr:
        return -1
    return 128 - int(cidr.split("/")[1])


def _entity_record(
    entity: dict[str, Any], line: int, larger: list[str], errors: list[RowError]
) -> Record | None:
    kind = str(entity.get("Type", ""))
    source_id = str(entity.get("ID", ""))
    name = str(entity.get("Name") or "")
    if kind in ("IP4Address", "IP6Address"):
        text = str(entity.get("Address") or entity.get("address") or "")
        address = check_field(errors, line, "Address", text, parse_address)
        if address is None:
            return None
        state = str(entity.get("State") or entity.get("state") or "").lower()
        return AddressRecord(
            line, address, hostname=name, status=state, source_id=source_id
        )
    if kind not in ("IP4Block", "IP6Block", "IP4Network", "IP6Network"):
        return None
    cidr = check_field(errors, line, "CIDR", str(entity.get("CIDR", "")), parse_network)
    parent = next((text for text in larger if text), None)
    if cidr is None:
        return None
    return SubnetRecord(
        line,
        cidr,
        purpose=name,
        parent_cidr=parent,
        is_container=kind.endswith("Block"),
        source_id=source_id,
    )
