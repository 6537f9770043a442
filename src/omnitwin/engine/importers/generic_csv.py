"""The omnitwin subnet CSV layout.

Columns, matched by header name in any order and case: ``cidr`` (required),
``status``, ``purpose``, ``vlan``, ``owner``, ``tags``, ``vrf``, ``parent``.
Tags are written ``key=value|key=value`` because ``|`` is neither CSV
delimiter, so the cell needs no quoting. Status ``container`` marks a
container and stores it as ``allocated``.
"""

from __future__ import annotations

import ipaddress

from omnitwin.engine.importers.csvutil import CsvRow, read_table, surplus_error
from omnitwin.engine.importers.records import (
    SUBNET_STATUSES,
    ParseResult,
    RowError,
    SubnetRecord,
    check_field,
    parse_network,
    parse_vlan_id,
)
from omnitwin.errors import ValidationError

__all__ = ["COLUMNS", "parse_generic_csv", "parse_tags"]

#: The columns of the layout; only ``cidr`` is required.
COLUMNS = ("cidr", "status", "purpose", "vlan", "owner", "tags", "vrf", "parent")


def parse_tags(text: str) -> dict[str, str]:
    """Parse a tags cell written ``key=value|key=value``.

    Parameters
    ----------
    text : str
        The cell; empty gives no tags.

    Returns
    -------
    dict of str to str
        The tags, keys and values trimmed.

    Raises
    ------
    ValidationError
        If a pair has no ``=``, a key is empty or a key repeats.

    Examples
    --------
    >>> parse_tags("env=prod | team=net")
    {'env': 'prod', 'team': 'net'}
    """
    tags: dict[str, str] = {}
    for pair in text.split("|"):
        if not pair.strip():
            continue
        key, equals, value = pair.partition("=")
        key = key.strip()
        if not equals or not key:
            raise ValidationError(
                f"tag {pair.strip()!r} is not key=value; write tags as"
                " key=value|key=value",
                details={"value": text},
            )
        if key in tags:
            raise ValidationError(
                f"tag key {key!r} appears twice; keep one value per key",
                details={"value": text},
            )
        tags[key] = value.strip()
    return tags


def _parse_status(text: str) -> str:
    status = text.strip().lower() or "allocated"
    if status != "container" and status not in SUBNET_STATUSES:
        allowed = ", ".join((*SUBNET_STATUSES, "container"))
        raise ValidationError(
            f"status {text!r} is not one of {allowed}; use one of those",
            details={"value": text},
        )
    return status


def _check_parent(errors: list[RowError], row: CsvRow, cidr: str, parent: str) -> None:
    child = ipaddress.ip_network(cidr)
    outer = ipaddress.ip_network(parent)
    contained = (
        child.version == outer.version and child != outer and child.subnet_of(outer)  # type: ignore[arg-type]
    )
    if not contained:
        errors.append(
            RowError(
                line=row.line,
                field="parent",
                value=row.get("parent"),
                message=(
                    f"parent {parent} does not contain {cidr}; give a larger network"
                    " of the same family or leave parent empty"
                ),
            )
        )


def _parse_row(row: CsvRow) -> tuple[SubnetRecord | None, list[RowError]]:
    errors: list[RowError] = []
    if not row.get("cidr"):
        message = "cidr is empty; give the network, e.g. 10.0.0.0/24"
        return None, [RowError(row.line, "cidr", "", message)]

    cidr = check_field(errors, row.line, "cidr", row.get("cidr"), parse_network)
    status = check_field(errors, row.line, "status", row.get("status"), _parse_status)
    tags = check_field(errors, row.line, "tags", row.get("tags"), parse_tags)
    vlan_id = None
    if row.get("vlan"):
        vlan_id = check_field(errors, row.line, "vlan", row.get("vlan"), parse_vlan_id)
    parent = None
    if row.get("parent"):
        parent = check_field(
            errors, row.line, "parent", row.get("parent"), parse_network
        )
    if cidr and parent:
        _check_parent(errors, row, cidr, parent)

    if errors or cidr is None or status is None or tags is None:
        return None, errors
    record = SubnetRecord(
        line=row.line,
        cidr=cidr,
        vrf=row.get("vrf") or "global",
        status="allocated" if status == "container" else status,
        purpose=row.get("purpose"),
        vlan_id=vlan_id,
        owner=row.get("owner"),
        tags=tags,
        parent_cidr=parent,
        is_container=status == "container",
    )
    return record, []


def parse_generic_csv(data: bytes | str) -> ParseResult:
    """Parse a subnet CSV in the omnitwin layout.

    Parameters
    ----------
    data : bytes or str
        The file content, UTF-8 with or without a byte order mark, delimited by
        ``,`` or ``;``.

    Returns
    -------
    ParseResult
        One :class:`SubnetRecord` per valid row, and row errors for the rest.

    Raises
    ------
    ValidationError
        If the header is unusable: no ``cidr`` column, an unknown or repeated
        column name, or an unnamed column holding values.

    Examples
    --------
    >>> result = parse_generic_csv("cidr;status;tags\\n10.0.0.0/24;reserved;env=lab\\n")
    >>> result.records[0].cidr, result.records[0].tags
    ('10.0.0.0/24', {'env': 'lab'})
    """
    table = read_table(data)
    unknown = [name for name in table.headers if name not in COLUMNS]
    if unknown:
        raise ValidationError(
            f"unknown column {unknown[0]!r} on line {table.header_line}; the columns"
            f" are {', '.join(COLUMNS)}",
            details={"header": unknown[0]},
        )
    if "cidr" not in table.headers:
        raise ValidationError(
            f"the header on line {table.header_line} has no cidr column; add one",
            details={"header": "cidr"},
        )
    result = ParseResult(total_rows=len(table.rows))
    for row in table.rows:
        shape_error = surplus_error(row, len(table.headers))
        if shape_error is not None:
            result.errors.append(shape_error)
            continue
        record, errors = _parse_row(row)
        result.errors.extend(errors)
        if record is not None:
            result.records.append(record)
    return result
