"""Infoblox NIOS CSV files and WAPI JSON responses.

NIOS CSV
    A file contains one or more sections. A section starts with a header row
    whose first cell is ``header-<type>`` (``header-network``,
    ``header-networkcontainer``, ``header-ipv6network``, ``header-range``,
    ``header-fixedaddress``, ``header-hostrecord``, ``header-hostaddress``); the
    data rows that follow start with ``<type>``. A ``*`` after a column name
    marks it required and is ignored. ``<empty>`` means an empty value.
    ``EA-<name>`` columns become tags ``<name>``. Rows whose ``IMPORT-ACTION``
    is ``D`` (delete) are skipped. Sections of other types, such as DNS
    records, are skipped row by row with the reason.

WAPI JSON
    Each document is one response: ``{"result": [...], "next_page_id": ...}``,
    a bare list (nested lists are flattened) or a single object. The object
    type comes from the ``_ref`` prefix. Objects without ``_ref`` that have
    ``start_addr`` and ``end_addr`` are ranges. ``line`` is the object's
    position, counting from 1, across all documents given.

In both, the network view ``default`` (or none) becomes VRF ``global``, and
other views keep their names.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from omnitwin.engine.importers.csvutil import (
    decode_csv,
    detect_delimiter,
    iter_records,
    normalise_headers,
)
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
    mask_to_prefix,
    parse_address,
    parse_mac,
    parse_network,
)

__all__ = ["parse_infoblox_csv", "parse_infoblox_wapi"]

_EMPTY = "<empty>"
_IMPORT_ACTIONS = {"I", "O", "M", "D", "IO", "IM", "OI", "MI"}
_NETWORK_TYPES = {"network", "ipv6network"}
_CONTAINER_TYPES = {"networkcontainer", "ipv6networkcontainer"}
_ADDRESS_TYPES = {"fixedaddress", "ipv6fixedaddress", "hostrecord", "hostaddress"}
_RANGE_TYPES = {"range", "ipv6range"}


def _vrf(view: str) -> str:
    return "global" if view in ("", "default") else view


# NIOS CSV


class _Section:
    """The header of one ``header-<type>`` section."""

    def __init__(self, object_type: str, cells: list[str], line: int) -> None:
        self.object_type = object_type
        self.line = line
        stripped = [cell.rstrip("*") for cell in cells]
        self.names = normalise_headers(stripped, line)
        self.tag_keys = {
            name: cell[3:]
            for name, cell in zip(self.names, stripped, strict=True)
            if name.startswith("ea-")
        }

    def values(self, cells: list[str]) -> dict[str, str]:
        values = {}
        for name, cell in zip(self.names, cells, strict=False):
            values[name] = "" if cell == _EMPTY else cell
        return values


def parse_infoblox_csv(data: bytes | str) -> ParseResult:
    """Parse a NIOS CSV export or import file.

    Parameters
    ----------
    data : bytes or str
        The file content.

    Returns
    -------
    ParseResult
        Subnet, range and address records, with a row error for each invalid
        row and a skipped row for each row of a type that is not imported.

    Raises
    ------
    ValidationError
        If the file is not UTF-8 or a section header repeats a column name.

    Examples
    --------
    >>> text = "header-network,address*,netmask*\\nnetwork,10.1.0.0,255.255.0.0\\n"
    >>> parse_infoblox_csv(text).records[0].cidr
    '10.1.0.0/16'
    """
    text = decode_csv(data)
    result = ParseResult()
    section: _Section | None = None
    for line, cells in iter_records(text, detect_delimiter(text)):
        kind = cells[0].lower()
        if kind.startswith("header-"):
            section = _Section(kind.removeprefix("header-"), cells[1:], line)
            continue
        result.total_rows += 1
        if section is None or section.object_type != kind:
            result.errors.append(_no_header_error(line, cells[0]))
            continue
        _parse_csv_row(result, section, line, cells[1:])
    return result


def _no_header_error(line: int, kind: str) -> RowError:
    return RowError(
        line=line,
        field="type",
        value=kind,
        message=(
            f"row of type {kind!r} has no header-{kind.lower()} row above it; add"
            " that header row before the rows of this type"
        ),
    )


def _parse_csv_row(
    result: ParseResult, section: _Section, line: int, cells: list[str]
) -> None:
    if len(cells) > len(section.names) and any(cells[len(section.names) :]):
        extra = cells[len(section.names)]
        message = (
            f"line {line} has more values than its header on line {section.line};"
            f" quote values that contain the delimiter or remove {extra!r}"
        )
        result.errors.append(RowError(line, "", extra, message))
        return
    values = section.values(cells)
    action = values.get("import-action", "").upper()
    if action and action not in _IMPORT_ACTIONS:
        message = f"IMPORT-ACTION {action!r} is unknown; use I, O, M or D"
        result.errors.append(RowError(line, "IMPORT-ACTION", action, message))
        return
    if action == "D":
        result.skipped.append(SkippedRow(line, "IMPORT-ACTION D deletes the object"))
        return
    tags = {key: values[name] for name, key in section.tag_keys.items() if values[name]}
    errors: list[RowError] = []
    records = _csv_records(section.object_type, values, tags, line, errors)
    if records is None:
        reason = (
            f"{section.object_type} rows are not IPAM objects that omnitwin imports"
        )
        result.skipped.append(SkippedRow(line, reason))
        return
    result.errors.extend(errors)
    if not errors:
        result.records.extend(records)


def _csv_records(
    kind: str,
    values: dict[str, str],
    tags: dict[str, str],
    line: int,
    errors: list[RowError],
) -> list[Record] | None:
    vrf = _vrf(values.get("network_view", ""))
    if kind in _NETWORK_TYPES or kind in _CONTAINER_TYPES:
        cidr = _csv_network(values, line, errors)
        if cidr is None:
            return []
        record = SubnetRecord(
            line=line,
            cidr=cidr,
            vrf=vrf,
            purpose=values.get("comment", ""),
            tags=tags,
            is_container=kind in _CONTAINER_TYPES,
        )
        return [record]
    if kind in _RANGE_TYPES:
        start, end = values.get("start_address", ""), values.get("end_address", "")
        checked = check_range(errors, line, start, end, values.get("network", ""))
        if checked is None:
            return []
        purpose = values.get("name", "") or values.get("comment", "")
        return [RangeRecord(line, start, end, vrf, checked or None, purpose)]
    if kind in _ADDRESS_TYPES:
        return _csv_addresses(kind, values, tags, line, errors)
    return None


def _csv_network(
    values: dict[str, str], line: int, errors: list[RowError]
) -> str | None:
    address = values.get("address", "")
    if "cidr" in values:
        length = check_field(errors, line, "cidr", values["cidr"], mask_to_prefix)
    else:
        length = check_field(
            errors, line, "netmask", values.get("netmask", ""), mask_to_prefix
        )
    if length is None:
        return None
    return check_field(errors, line, "address", f"{address}/{length}", parse_network)


def _csv_addresses(
    kind: str,
    values: dict[str, str],
    tags: dict[str, str],
    line: int,
    errors: list[RowError],
) -> list[Record]:
    if kind == "hostrecord":
        texts = [
            *values.get("addresses", "").split(","),
            *values.get("ipv6_addresses", "").split(","),
        ]
        hostname = values.get("fqdn", "")
    elif kind == "hostaddress":
        texts = [values.get("address", "")]
        hostname = values.get("parent", "")
    else:
        texts = [values.get("ip_address", "")]
        hostname = values.get("name", "")
    texts = [text.strip() for text in texts if text.strip()]
    if not texts:
        message = f"{kind} row has no address; fill in its address column"
        errors.append(RowError(line, "address", "", message))
        return []
    mac = ""
    if values.get("mac_address"):
        mac = (
            check_field(errors, line, "mac_address", values["mac_address"], parse_mac)
            or ""
        )
    vrf = _vrf(values.get("network_view", ""))
    records: list[Record] = []
    for text in texts:
        address = check_field(errors, line, "address", text, parse_address)
        if address is not None:
            records.append(
                AddressRecord(line, address, vrf, hostname, mac=mac, tags=tags)
            )
    return records


# WAPI JSON

_WAPI_SKIPPED = {
    "lease": "DHCP leases are detected state, not intended addresses",
    "networkview": "network views become VRF names on the objects in them",
    "view": "DNS views are not IPAM objects",
    "zone_auth": "DNS zones are not IPAM objects",
}


def parse_infoblox_wapi(*documents: Any) -> ParseResult:
    """Parse Infoblox WAPI responses into subnet, range and address records.

    Parameters
    ----------
    *documents : object
        Decoded JSON responses in page order. A page with ``next_page_id`` must
        be followed by the next page. When the last document still has one, a
        row error with ``line`` 0 reports the missing pages.

    Returns
    -------
    ParseResult
        Records from networks, network containers (v4 and v6, ``extattrs``
        become tags), ranges, fixed addresses, host, A, AAAA and PTR records and
        ``ipv4address``/``ipv6address`` objects. Leases, views and zones are
        skipped with the reason.

    Examples
    --------
    >>> page = {"result": [{"_ref": "network/x:10.0.0.0/24/default",
    ...                     "network": "10.0.0.0/24", "network_view": "default"}]}
    >>> parse_infoblox_wapi(page).records[0].cidr
    '10.0.0.0/24'
    """
    result = ParseResult()
    objects = [obj for document in documents for obj in _wapi_objects(document)]
    for line, obj in enumerate(objects, start=1):
        result.total_rows += 1
        _parse_wapi_object(result, line, obj)
    if documents and isinstance(documents[-1], dict):
        next_page = documents[-1].get("next_page_id")
        if next_page:
            message = (
                f"the last page given has next_page_id {next_page}; fetch the"
                f" remaining pages with _page_id={next_page} and pass them too"
            )
            result.errors.append(RowError(0, "next_page_id", str(next_page), message))
    return result


def _wapi_objects(document: Any) -> Iterator[Any]:
    if isinstance(document, list):
        for item in document:
            yield from _wapi_objects(item)
    elif isinstance(document, dict) and "result" in document and "_ref" not in document:
        yield from _wapi_objects(document["result"])
    else:
        yield document


def _wapi_type(obj: dict[str, Any]) -> str:
    ref = obj.get("_ref")
    if isinstance(ref, str) and "/" in ref:
        return ref.split("/", 1)[0]
    if "start_addr" in obj and "end_addr" in obj:
        return "range"
    return ""


def _extattrs(obj: dict[str, Any]) -> dict[str, str]:
    attrs = obj.get("extattrs") or {}
    return {
        str(name): str(item.get("value", "") if isinstance(item, dict) else item)
        for name, item in attrs.items()
    }


def _parse_wapi_object(result: ParseResult, line: int, obj: Any) -> None:
    if not isinstance(obj, dict):
        message = f"object {line} is a {type(obj).__name__}, not a JSON object"
        result.errors.append(RowError(line, "", str(obj)[:80], message))
        return
    kind = _wapi_type(obj)
    errors: list[RowError] = []
    if kind in _NETWORK_TYPES or kind in _CONTAINER_TYPES:
        records = _wapi_network(obj, kind, line, errors)
    elif kind in _RANGE_TYPES:
        records = _wapi_range(obj, line, errors)
    elif kind.startswith("record:") or kind in _WAPI_ADDRESS_FIELDS:
        records = _wapi_addresses(obj, kind, line, errors)
    else:
        reason = _WAPI_SKIPPED.get(kind, f"object type {kind!r} is not imported")
        if not kind:
            reason = (
                "object has no _ref and no start_addr/end_addr, so its type is unknown"
            )
        result.skipped.append(SkippedRow(line, reason))
        return
    result.errors.extend(errors)
    if not errors:
        result.records.extend(records)


def _wapi_network(
    obj: dict[str, Any], kind: str, line: int, errors: list[RowError]
) -> list[Record]:
    cidr = check_field(
        errors, line, "network", str(obj.get("network", "")), parse_network
    )
    if cidr is None:
        return []
    record = SubnetRecord(
        line=line,
        cidr=cidr,
        vrf=_vrf(str(obj.get("network_view", ""))),
        purpose=str(obj.get("comment", "")),
        tags=_extattrs(obj),
        is_container=kind in _CONTAINER_TYPES or obj.get("status") == "container",
        source_id=str(obj.get("_ref", "")),
    )
    return [record]


def _wapi_range(obj: dict[str, Any], line: int, errors: list[RowError]) -> list[Record]:
    start, end = str(obj.get("start_addr", "")), str(obj.get("end_addr", ""))
    cidr = check_range(errors, line, start, end, str(obj.get("network", "")))
    if cidr is None:
        return []
    record = RangeRecord(
        line=line,
        start=start,
        end=end,
        vrf=_vrf(str(obj.get("network_view", ""))),
        network_cidr=cidr or None,
        purpose=str(obj.get("name", "") or obj.get("comment", "")),
        source_id=str(obj.get("_ref", "")),
    )
    return [record]


# Address field names per object type, and the field holding the host name.
_WAPI_ADDRESS_FIELDS = {
    "fixedaddress": (("ipv4addr",), "name", "mac"),
    "ipv6fixedaddress": (("ipv6addr",), "name", "duid"),
    "record:a": (("ipv4addr",), "name", ""),
    "record:aaaa": (("ipv6addr",), "name", ""),
    "record:ptr": (("ipv4addr", "ipv6addr"), "ptrdname", ""),
    "ipv4address": (("ip_address",), "names", "mac_address"),
    "ipv6address": (("ip_address",), "names", "duid"),
}


def _wapi_addresses(
    obj: dict[str, Any], kind: str, line: int, errors: list[RowError]
) -> list[Record]:
    vrf = _vrf(str(obj.get("network_view", "")))
    if kind == "record:host":
        pairs = _host_addresses(obj)
        hostname = str(obj.get("name", ""))
    elif kind in _WAPI_ADDRESS_FIELDS:
        fields, name_field, mac_field = _WAPI_ADDRESS_FIELDS[kind]
        names = obj.get(name_field, "")
        hostname = str(names[0] if isinstance(names, list) and names else names or "")
        mac_text = str(obj.get(mac_field, "")) if mac_field.startswith("mac") else ""
        pairs = [(str(obj[f]), mac_text) for f in fields if obj.get(f)]
    else:
        errors.append(RowError(line, "_ref", kind, f"{kind} objects are not imported"))
        return []
    if not pairs:
        field_name = (
            "ipv4addrs" if kind == "record:host" else _WAPI_ADDRESS_FIELDS[kind][0][0]
        )
        message = (
            f"{kind} {hostname or obj.get('_ref', '')} has no address; request it"
            f" with _return_fields+={field_name}"
        )
        errors.append(RowError(line, field_name, "", message))
        return []
    records: list[Record] = []
    for text, mac_text in pairs:
        address = check_field(errors, line, "address", text, parse_address)
        checked_mac: str | None = ""
        if mac_text:
            checked_mac = check_field(errors, line, "mac", mac_text, parse_mac)
        if address is not None and checked_mac is not None:
            records.append(
                AddressRecord(
                    line=line,
                    address=address,
                    vrf=vrf,
                    hostname=hostname,
                    status=str(obj.get("status", "")).lower(),
                    mac=checked_mac,
                    tags=_extattrs(obj),
                    source_id=str(obj.get("_ref", "")),
                )
            )
    return records


def _host_addresses(obj: dict[str, Any]) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    for key, field in (("ipv4addrs", "ipv4addr"), ("ipv6addrs", "ipv6addr")):
        for item in obj.get(key) or []:
            if isinstance(item, dict) and item.get(field):
                pairs.append((str(item[field]), str(item.get("mac", ""))))
    if not pairs and obj.get("ipv4addr"):
        pairs.append((str(obj["ipv4addr"]), ""))
    return pairs
