"""Choose the parser of an import source and run it on the uploaded bytes.

Each source accepts the file formats its vendor exports; JSON is recognised
by its first character (``[`` or ``{``, after an optional byte order mark):

==========  ==========================================================
source      formats
==========  ==========================================================
csv         the omnitwin subnet CSV (a ``cidr`` column), or a device
            CSV (``name`` with ``role``, ``site`` ...) or an interface
            CSV (``device`` and ``name``) in NetBox's bulk import layout
infoblox    NIOS CSV, or a WAPI JSON response (or a list of pages)
bluecat     Gateway CSV layouts, or entity JSON
phpipam     the documented CSV layouts, or REST API JSON: a response
            ``{"data": [...]}`` or ``{"subnets": [...], "addresses": [...]}``
netbox      ``manage.py dumpdata`` JSON
==========  ==========================================================

NetBox device names are unique per site only. When one name is used at
several sites (the demo data has three patch panels named ``PP:MDF``), each
of those devices is renamed ``<name>.<site slug>`` before parsing, so that
its ports and cables keep pointing at the right device.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from omnitwin.engine.importers import (
    DeviceRecord,
    InterfaceRecord,
    ParseResult,
    RowError,
    parse_bluecat_csv,
    parse_bluecat_json,
    parse_generic_csv,
    parse_infoblox_csv,
    parse_infoblox_wapi,
    parse_netbox_dump,
    parse_phpipam_api,
    parse_phpipam_csv,
    read_table,
)
from omnitwin.engine.importers.csvutil import CsvRow, surplus_error
from omnitwin.engine.importers.records import check_field, parse_mac
from omnitwin.errors import ValidationError

__all__ = [
    "SOURCES",
    "Parsed",
    "guess_json_source",
    "parse_source",
    "qualify_netbox_device_names",
]

#: Import sources, as ``start(ctx, source, ...)`` names them.
SOURCES = ("csv", "infoblox", "bluecat", "phpipam", "netbox")
_TRUE = {"true", "yes", "1", "y"}
_FALSE = {"false", "no", "0", "n", ""}


@dataclass(slots=True)
class Parsed:
    """A parse result plus values the records have no field for, by line."""

    result: ParseResult
    layout: str
    extras: dict[int, dict[str, str]] = field(default_factory=dict)


def parse_source(source: str, data: bytes) -> Parsed:
    """Parse ``data`` with the parser of ``source``, detecting JSON or CSV.

    Parameters
    ----------
    source : str
        One of :data:`SOURCES`.
    data : bytes
        The uploaded file.

    Returns
    -------
    Parsed
        Records, row errors, skipped rows and the detected layout.

    Raises
    ------
    ValidationError
        The source is unknown, the JSON is invalid, or the file as a whole
        is unusable (see :mod:`omnitwin.engine.importers`).

    Examples
    --------
    >>> parse_source("csv", b"cidr\\n10.0.0.0/24\\n").result.records[0].cidr
    '10.0.0.0/24'
    """
    is_json = data.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] in (b"[", b"{")
    if source not in SOURCES:
        message = f"unknown import source {source!r}; use one of {', '.join(SOURCES)}"
        raise ValidationError(message, details={"source": source})
    if source == "csv":
        if is_json:
            _reject_json_as_csv(data)
        return _parse_csv(data)
    if not is_json and source != "netbox":
        csv_parsers = {
            "infoblox": parse_infoblox_csv,
            "bluecat": parse_bluecat_csv,
            "phpipam": parse_phpipam_csv,
        }
        return Parsed(csv_parsers[source](data), "csv")
    document = _load_json(data)
    json_parsers: dict[str, tuple[Callable[[Any], ParseResult], str]] = {
        "netbox": (
            lambda doc: parse_netbox_dump(qualify_netbox_device_names(doc)),
            "dump",
        ),
        "infoblox": (parse_infoblox_wapi, "wapi"),
        "bluecat": (parse_bluecat_json, "json"),
        "phpipam": (_parse_phpipam_json, "api"),
    }
    parser, layout = json_parsers[source]
    try:
        parsed = Parsed(parser(document), layout)
    except ValidationError as exc:
        # The parser rejected the document's shape; name the source whose
        # shape it has, if any, rather than only the shape expected.
        _reject_other_source(source, document, cause=exc)
        raise
    if not parsed.result.records:
        _reject_other_source(source, document)
    return parsed


_SOURCE_NAMES = {
    "netbox": "a NetBox dumpdata export",
    "infoblox": "an Infoblox WAPI response",
    "bluecat": "a BlueCat JSON export",
    "phpipam": "a phpIPAM JSON export",
}


def _reject_other_source(
    source: str, document: Any, *, cause: Exception | None = None
) -> None:
    """Raise ValidationError if ``document`` is another source's export.

    Called when the chosen source read no record or rejected the document.
    Without this check a file imported under the wrong source ends as a
    committed import with every row skipped, or with the parser's complaint
    about a shape the user never meant to give.
    """
    detected = guess_json_source(document)
    if detected is None or detected == source:
        return
    message = (
        f"the file is {_SOURCE_NAMES[detected]}, not {_SOURCE_NAMES[source]}; "
        f"import it with source {detected!r}"
    )
    details = {"source": source, "detected": detected}
    raise ValidationError(message, details=details) from cause


def _reject_json_as_csv(data: bytes) -> None:
    """Raise ValidationError for a JSON file given to the CSV source."""
    try:
        document = json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return
    detected = guess_json_source(document)
    if detected is not None:
        message = (
            f"the file is {_SOURCE_NAMES[detected]}, not a CSV; import it with "
            f"source {detected!r}"
        )
    else:
        message = (
            "the file is JSON, not a CSV; the csv source reads a header line "
            "such as cidr,status,purpose"
        )
    raise ValidationError(message, details={"source": "csv"})


def _phpipam_marked(item: dict[str, Any]) -> bool:
    return ("subnet" in item and "mask" in item) or (
        "ip" in item and "subnetId" in item
    )


_JSON_MARKS: dict[str, Callable[[dict[str, Any]], bool]] = {
    "netbox": lambda item: "model" in item and "fields" in item,
    "infoblox": lambda item: (
        "/" in str(item.get("_ref", ""))
        or ("start_addr" in item and "end_addr" in item)
    ),
    "bluecat": lambda item: "type" in item and "properties" in item,
    "phpipam": _phpipam_marked,
}


def guess_json_source(document: Any) -> str | None:
    """Return the import source whose JSON shape ``document`` has, if any.

    The objects are those of the document, of its ``result`` or ``data``
    member, and of every page when it is a list of pages. Nine in ten of them
    must carry the source's marks: NetBox's ``model`` and ``fields``, an
    Infoblox ``_ref`` such as ``network/...`` or a range's ``start_addr`` and
    ``end_addr``, a BlueCat ``type`` and ``properties``, or phpIPAM's
    ``subnet`` and ``mask`` or ``ip`` and ``subnetId``. A BlueCat
    ``BlueCat.AddressManager.IP`` context and a phpIPAM export with
    ``subnets`` or ``addresses`` lists are recognised by those keys.

    >>> guess_json_source([{"model": "dcim.site", "pk": 1, "fields": {}}])
    'netbox'
    >>> guess_json_source([{"result": [{"_ref": "network/x:10.0.0.0/8/default"}]}])
    'infoblox'
    >>> guess_json_source([{"cidr": "10.0.0.0/8"}]) is None
    True
    """
    if isinstance(document, dict):
        if "BlueCat.AddressManager.IP" in document:
            return "bluecat"
        if isinstance(document.get("subnets"), list) or isinstance(
            document.get("addresses"), list
        ):
            objects = [
                item
                for key in ("subnets", "addresses")
                for item in document.get(key) or []
                if isinstance(item, dict)
            ]
            return "phpipam" if objects and _share(objects, _phpipam_marked) else None
    objects = list(_json_objects(document, depth=0))
    if not objects:
        return None
    for source, marked in _JSON_MARKS.items():
        if _share(objects, marked):
            return source
    return None


def _share(
    objects: list[dict[str, Any]], marked: Callable[[dict[str, Any]], bool]
) -> bool:
    count = sum(1 for item in objects if marked(item))
    return count * 10 >= len(objects) * 9


def _json_objects(document: Any, *, depth: int) -> Iterator[dict[str, Any]]:
    """Yield the record objects of a document, its pages and their members."""
    if depth > 3:
        return
    if isinstance(document, list):
        for item in document:
            nested = isinstance(item, list) or (
                isinstance(item, dict) and _is_page(item)
            )
            if nested:
                yield from _json_objects(item, depth=depth + 1)
            elif isinstance(item, dict):
                yield item
    elif isinstance(document, dict):
        if _is_page(document):
            members = document.get("result", document.get("data"))
            yield from _json_objects(
                members if isinstance(members, list) else [members], depth=depth + 1
            )
        else:
            yield document


def _is_page(item: dict[str, Any]) -> bool:
    return ("result" in item or "data" in item) and "_ref" not in item


def _load_json(data: bytes) -> Any:
    try:
        return json.loads(data.decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        message = f"the file is not UTF-8 ({exc}); save it as UTF-8 and retry"
        raise ValidationError(message) from exc
    except json.JSONDecodeError as exc:
        message = (
            f"invalid JSON on line {exc.lineno}, column {exc.colno}: {exc.msg}; "
            "check that the source matches the file (a CSV export needs its own "
            "source), or export the file again"
        )
        raise ValidationError(message, details={"line": exc.lineno}) from exc


def _parse_phpipam_json(document: Any) -> ParseResult:
    if isinstance(document, dict) and (
        "subnets" in document or "addresses" in document
    ):
        return parse_phpipam_api(
            document.get("subnets") or [], document.get("addresses") or []
        )
    items = document.get("data") if isinstance(document, dict) else document
    if isinstance(items, dict):
        items = [items]
    items = [item for item in items or [] if isinstance(item, dict)]
    if items and all("mask" in item for item in items):
        return parse_phpipam_api(items, [])
    return parse_phpipam_api([], items)


# NetBox


def qualify_netbox_device_names(document: Any) -> Any:
    """Rename NetBox devices that share a name across sites to ``<name>.<site>``.

    ``<site>`` is the site's slug. The document is copied, not changed.

    Examples
    --------
    >>> dump = [
    ...     {"model": "dcim.site", "pk": 1, "fields": {"slug": "a"}},
    ...     {"model": "dcim.site", "pk": 2, "fields": {"slug": "b"}},
    ...     {"model": "dcim.device", "pk": 7, "fields": {"name": "pp", "site": 1}},
    ...     {"model": "dcim.device", "pk": 8, "fields": {"name": "pp", "site": 2}},
    ... ]
    >>> [d["fields"]["name"] for d in qualify_netbox_device_names(dump)[2:]]
    ['pp.a', 'pp.b']
    """
    if not isinstance(document, list):
        return document
    devices = [
        item
        for item in document
        if isinstance(item, dict) and item.get("model") == "dcim.device"
    ]
    device_ids = {id(d) for d in devices}
    names = Counter(str((d.get("fields") or {}).get("name") or "") for d in devices)
    repeated = {name for name, count in names.items() if name and count > 1}
    if not repeated:
        return document
    slugs: dict[Any, str] = defaultdict(str)
    for item in document:
        if isinstance(item, dict) and item.get("model") == "dcim.site":
            slugs[item.get("pk")] = str((item.get("fields") or {}).get("slug") or "")
    copied = []
    for item in document:
        fields = item.get("fields") if isinstance(item, dict) else None
        if id(item) in device_ids and fields and fields.get("name") in repeated:
            site = slugs[fields.get("site")] or f"site-{fields.get('site')}"
            fields = {**fields, "name": f"{fields['name']}.{site}"}
            item = {**item, "fields": fields}
        copied.append(item)
    return copied


# Device and interface CSV layouts

_DEVICE_COLUMNS = (
    "name", "role", "site", "rack", "serial", "platform", "tenant",
    "device_type", "type", "status", "description",
)  # fmt: skip
_INTERFACE_COLUMNS = (
    "device", "name", "type", "enabled", "mgmt_only", "mac_address", "mac",
    "mtu", "description",
)  # fmt: skip


def _parse_csv(data: bytes) -> Parsed:
    table = read_table(data)
    headers = set(table.headers)
    if "cidr" in headers:
        return Parsed(parse_generic_csv(data), "subnets")
    columns: tuple[str, ...]
    if {"device", "name"} <= headers:
        layout, columns = "interfaces", _INTERFACE_COLUMNS
    elif "name" in headers:
        layout, columns = "devices", _DEVICE_COLUMNS
    else:
        return Parsed(parse_generic_csv(data), "subnets")
    unknown = sorted(headers - set(columns))
    if unknown:
        message = (
            f"unknown column {unknown[0]!r} in a {layout} CSV; the columns are "
            f"{', '.join(columns)}"
        )
        raise ValidationError(message, details={"header": unknown[0]})
    parsed = Parsed(ParseResult(total_rows=len(table.rows)), layout)
    for row in table.rows:
        error = surplus_error(row, len(table.headers))
        if error is not None:
            parsed.result.errors.append(error)
        elif layout == "devices":
            _device_row(parsed, row)
        else:
            _interface_row(parsed, row)
    return parsed


def _device_row(parsed: Parsed, row: CsvRow) -> None:
    if not row.get("name"):
        message = "name is empty; give the device name"
        parsed.result.errors.append(RowError(row.line, "name", "", message))
        return
    tenant = row.get("tenant")
    record = DeviceRecord(
        row.line,
        row.get("name"),
        role=row.get("role").lower(),
        site=row.get("site"),
        rack=row.get("rack"),
        serial=row.get("serial"),
        platform=row.get("platform"),
        tenant=f"tenant:{tenant}" if tenant and ":" not in tenant else tenant,
        device_type=row.get("device_type") or row.get("type"),
        status=row.get("status"),
    )
    parsed.result.records.append(record)
    if row.get("description"):
        parsed.extras[row.line] = {"description": row.get("description")}


def _flag(errors: list[RowError], row: CsvRow, name: str, default: bool) -> bool:
    text = row.get(name).lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return default if not text else False
    message = f"{name} {row.get(name)!r} is not true or false; write TRUE or FALSE"
    errors.append(RowError(row.line, name, row.get(name), message))
    return default


def _interface_row(parsed: Parsed, row: CsvRow) -> None:
    errors: list[RowError] = []
    for required in ("device", "name"):
        if not row.get(required):
            message = f"{required} is empty; give the interface's {required}"
            errors.append(RowError(row.line, required, "", message))
    enabled = _flag(errors, row, "enabled", True)
    mgmt_only = _flag(errors, row, "mgmt_only", False)
    mac_text = row.get("mac_address") or row.get("mac")
    mac = (
        check_field(errors, row.line, "mac_address", mac_text, parse_mac)
        if mac_text
        else ""
    )
    mtu_text = row.get("mtu")
    if mtu_text and not mtu_text.isdigit():
        message = f"mtu {mtu_text!r} is not a whole number of bytes, e.g. 1500"
        errors.append(RowError(row.line, "mtu", mtu_text, message))
    if errors:
        parsed.result.errors.extend(errors)
        return
    record = InterfaceRecord(
        row.line,
        row.get("device"),
        row.get("name"),
        type=row.get("type"),
        enabled=enabled,
        mgmt_only=mgmt_only,
        mac=mac or "",
        mtu=int(mtu_text) if mtu_text else None,
        description=row.get("description"),
    )
    parsed.result.records.append(record)
