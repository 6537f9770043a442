"""A vectorised reader of the omnitwin subnet CSV, for planning large files.

:func:`stage_subnet_csv` splits the file into lines and checks them in DuckDB
SQL, writing one row per subnet into a staged table that the conflict checks
of :mod:`omnitwin.engine.import_conflicts` read directly. It handles the
common rows only: printable ASCII, no quotes, a strict IPv4 network with no
leading zeros, a known status, and empty ``tags`` and ``parent``. Every other
row is parsed by :func:`~omnitwin.engine.importers.parse_generic_csv` itself,
so row errors, messages and line numbers are the parser's own. A file that
does not fit (quotes, bare carriage returns, an unusual header) returns None
and the caller uses the parser for all of it.
"""

from __future__ import annotations

import ipaddress
import json
import tempfile
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import duckdb
import numpy as np

from omnitwin.engine.import_conflicts import (
    FoundConflict,
    PlanItem,
    apply_resolutions,
    staged_subnet_conflicts,
)
from omnitwin.engine.importers import ParseResult, SubnetRecord, parse_generic_csv
from omnitwin.engine.importers.csvutil import decode_csv, detect_delimiter
from omnitwin.engine.importers.generic_csv import COLUMNS
from omnitwin.errors import ValidationError
from omnitwin.models import ImportPlan

__all__ = ["STAGE_COLUMNS", "StagedCsv", "plan_staged_csv", "stage_subnet_csv"]

#: Columns of a staged subnet table, in order.
STAGE_COLUMNS = (
    "idx, line, vrf, version, first, last, plen, container, cidr, status, "
    "purpose, owner, vlan, tags, parent"
)

_OCTET = r"(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9][0-9]|[0-9])"
_IPV4_CIDR = rf"^{_OCTET}\.{_OCTET}\.{_OCTET}\.{_OCTET}/(3[0-2]|[12][0-9]|[0-9])$"
_PREVIEW_ROWS = 20
_STATUSES = ("", "allocated", "reserved", "available", "deprecated", "container")

# Columns read past the header's, to notice rows with surplus values. A row
# with more than this many makes DuckDB's reader fail, so the file then goes
# to the parser.
_SPARE_COLUMNS = 1
# Bytes other than these send the file to the parser.
_PLAIN_BYTES = bytes(range(0x20, 0x7F)) + b"\r\n"
# detect_delimiter reads this many characters; the header must fit in them.
_SNIFFED = 65536
_BOM = b"\xef\xbb\xbf"
_NEWLINE = 0x0A


@dataclass(frozen=True, slots=True)
class StagedCsv:
    """A subnet CSV read into a staged table.

    ``count`` subnets are in the table, each with its line number as ``idx``.
    ``result`` contains the row errors and the row count, but no records,
    because they are in the table.
    """

    stage: str
    count: int
    result: ParseResult


def stage_subnet_csv(
    conn: duckdb.DuckDBPyConnection, data: bytes, stage: str
) -> StagedCsv | None:
    """Read a subnet CSV into the table ``stage``, or return None if it does not fit.

    Parameters
    ----------
    conn : duckdb.DuckDBPyConnection
        A connection; the caller holds the store lock.
    data : bytes
        The file content.
    stage : str
        The name of the temporary table to create.

    Returns
    -------
    StagedCsv or None
        None when the file needs the full parser (see the module docstring).
    """
    try:
        text = decode_csv(data)
    except ValidationError:
        return None
    header = _header(data, text)
    if header is None:
        return None
    names, delimiter = header
    # _header accepts only ASCII, so the bytes after the byte order mark are
    # the text, one byte per character.
    body = data.removeprefix(_BOM)
    raw = f"{stage}_lines"
    with tempfile.TemporaryDirectory(prefix="omnitwin-import-") as folder:
        path = Path(folder) / "data.csv"
        path.write_bytes(body)
        try:
            _read_lines(conn, raw, path, len(names), delimiter)
        except duckdb.Error:
            conn.execute(f"DROP TABLE IF EXISTS {raw}")
            return None
    try:
        newlines = np.flatnonzero(np.frombuffer(body, dtype=np.uint8) == _NEWLINE)
        if _row_count(conn, raw) != _data_lines(body, newlines):
            return None
        fast = _insert_fast_rows(conn, raw, stage, names)
        slow = _parse_slow_rows(conn, raw, names, delimiter, body, newlines)
        _insert_records(conn, stage, slow.records)
    finally:
        conn.execute(f"DROP TABLE IF EXISTS {raw}")
    result = ParseResult(errors=slow.errors, total_rows=fast + slow.total_rows)
    return StagedCsv(stage, fast + len(slow.records), result)


def _read_lines(
    conn: duckdb.DuckDBPyConnection, raw: str, path: Path, width: int, delimiter: str
) -> None:
    """Read the body into ``raw`` with DuckDB's reader: cells c1.. as text.

    The table, filled in file order, gives the line number as ``rowid + 2``
    as long as the reader returns one row per physical line. The reader skips
    empty lines, so the caller compares the row count with the line count.
    Rows whose cells are all empty fail the strict checks and go to the
    parser, which drops them as it always does.
    """
    count = width + _SPARE_COLUMNS
    columns = ", ".join(f"'c{i}': 'VARCHAR'" for i in range(1, count + 1))
    conn.execute(
        f"CREATE OR REPLACE TEMP TABLE {raw} AS SELECT * FROM read_csv(?, "
        f"columns = {{{columns}}}, header = false, skip = 1, delim = ?, "
        "quote = '', escape = '', auto_detect = false, null_padding = true)",
        [str(path), delimiter],
    )


def _row_count(conn: duckdb.DuckDBPyConnection, table: str) -> int:
    row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
    return int(row[0]) if row else 0


def _data_lines(body: bytes, newlines: np.ndarray) -> int:
    """Return the number of lines after the header, not counting trailing empty ones.

    ``newlines`` contains the offsets of the line feeds in ``body``.
    """
    end = len(body)
    while end and body[end - 1] in b"\r\n":
        end -= 1
    return int(np.searchsorted(newlines, end))


def _header(data: bytes, text: str) -> tuple[list[str], str] | None:
    if '"' in text:
        return None
    # Line numbers are counted by line feeds, so a carriage return anywhere
    # but before a line feed sends the file to the parser.
    if "\r" in text and text.count("\r") != text.count("\r\n"):
        return None
    if data.removeprefix(_BOM).translate(None, _PLAIN_BYTES):
        return None
    first = text[: text.find("\n")].rstrip("\r") if "\n" in text else text
    if not first.strip() or len(first) > _SNIFFED:
        return None
    delimiter = detect_delimiter(text[:_SNIFFED])
    names = [cell.strip().lower() for cell in first.split(delimiter)]
    known = all(name in COLUMNS for name in names)
    if not known or len(set(names)) != len(names) or "cidr" not in names:
        return None
    return names, delimiter


def _cell(names: list[str], name: str) -> str:
    if name not in names:
        return "''"
    return f"coalesce(c{names.index(name) + 1}, '')"


def _insert_fast_rows(
    conn: duckdb.DuckDBPyConnection, raw: str, stage: str, names: list[str]
) -> int:
    """Stage the rows that need no parser: strict IPv4 and plain values.

    An IPv4 network is accepted when the untrimmed cell matches a strict
    pattern: four octets from 0 to 255 without leading zeros, and a prefix
    length from 0 to 32. Its host bits must be zero. The ``line`` is the
    ``idx`` because each row contains one network.
    """
    cidr, status = _cell(names, "cidr"), f"lower({_cell(names, 'status')})"
    vlan = _cell(names, "vlan")
    # The pattern has already checked each part, so one split of the cell
    # into its four octets and the prefix length parses all five numbers.
    parts = f"TRY_CAST(string_split(replace({cidr}, '/', '.'), '.') AS UTINYINT[])"
    value = (
        "(parts[1]::UBIGINT * 16777216 + parts[2]::UBIGINT * 65536 "
        "+ parts[3]::UBIGINT * 256 + parts[4]::UBIGINT)"
    )
    conn.execute(
        f"CREATE OR REPLACE TEMP TABLE {stage} AS "
        "SELECT line AS idx, line, "
        "CASE WHEN vrf = '' THEN 'global' ELSE vrf END AS vrf, 4::TINYINT AS version, "
        'value::UHUGEINT AS "first", (value + size - 1)::UHUGEINT AS "last", '
        "plen::SMALLINT AS plen, status = 'container' AS container, cidr, "
        "CASE WHEN status IN ('', 'container') THEN 'allocated' ELSE status END "
        "AS status, purpose, owner, "
        "CASE WHEN vlan_text = '' THEN NULL ELSE vlan_text::INTEGER END AS vlan, "
        "'{}' AS tags, NULL::VARCHAR AS parent FROM ("
        f"SELECT *, {value} AS value, 1::UBIGINT << (32 - plen) AS size FROM ("
        "SELECT *, parts[5] AS plen FROM ("
        f"SELECT (rowid + 2)::BIGINT AS line, {cidr} AS cidr, {status} AS status, "
        f"trim({_cell(names, 'purpose')}) AS purpose, "
        f"trim({_cell(names, 'owner')}) AS owner, "
        f"trim({_cell(names, 'vrf')}) AS vrf, {vlan} AS vlan_text, {parts} AS parts "
        f"FROM {raw} WHERE c{len(names) + 1} IS NULL "
        f"AND regexp_full_match({cidr}, '{_IPV4_CIDR}') "
        f"AND {status} IN {_STATUSES} "
        f"AND {_cell(names, 'tags')} = '' AND {_cell(names, 'parent')} = '' "
        f"AND ({vlan} = '' OR (regexp_full_match({vlan}, '[0-9]+') "
        f"AND TRY_CAST({vlan} AS USMALLINT) BETWEEN 1 AND 4094))"
        "))) WHERE value & (size - 1) = 0"
    )
    conn.execute(
        f"CREATE OR REPLACE TEMP TABLE {raw} AS SELECT line FROM "
        f"(SELECT (rowid + 2)::BIGINT AS line FROM {raw}) "
        f"ANTI JOIN {stage} USING (line)"
    )
    row = conn.execute(f"SELECT count(*) FROM {stage}").fetchone()
    return int(row[0]) if row else 0


def _parse_slow_rows(
    conn: duckdb.DuckDBPyConnection,
    raw: str,
    names: list[str],
    delimiter: str,
    body: bytes,
    newlines: np.ndarray,
) -> ParseResult:
    numbers = [int(r[0]) for r in conn.execute(f"SELECT line FROM {raw} ORDER BY line")
               .fetchall()]  # fmt: skip
    if not numbers:
        return ParseResult()
    # Line n runs from the line feed that ends line n - 1 to the one that
    # ends line n, or to the end of the file.
    starts = np.append(-1, newlines) + 1
    ends = np.append(newlines, len(body))
    rows = [
        body[starts[n - 1] : ends[n - 1]].rstrip(b"\r").decode("ascii") for n in numbers
    ]
    result = parse_generic_csv(delimiter.join(names) + "\n" + "\n".join(rows) + "\n")
    # The rebuilt file has the header on line 1 and one row per line after.
    result.records = [
        replace(r, line=numbers[r.line - 2])
        for r in result.records
        if isinstance(r, SubnetRecord)
    ]
    for index, error in enumerate(result.errors):
        line = numbers[error.line - 2]
        message = error.message.replace(f"line {error.line} ", f"line {line} ")
        result.errors[index] = type(error)(line, error.field, error.value, message)
    return result


def _insert_records(
    conn: duckdb.DuckDBPyConnection, stage: str, records: Sequence[object]
) -> None:
    subnets = [r for r in records if isinstance(r, SubnetRecord)]
    if not subnets:
        return
    networks = [ipaddress.ip_network(r.cidr) for r in subnets]
    conn.execute(
        f"INSERT INTO {stage} SELECT unnest(?::BIGINT[]), unnest(?::BIGINT[]), "
        "unnest(?::VARCHAR[]), "
        "unnest(?::TINYINT[]), CAST(unnest(?::VARCHAR[]) AS UHUGEINT), "
        "CAST(unnest(?::VARCHAR[]) AS UHUGEINT), unnest(?::SMALLINT[]), "
        "unnest(?::BOOLEAN[]), unnest(?::VARCHAR[]), unnest(?::VARCHAR[]), "
        "unnest(?::VARCHAR[]), unnest(?::VARCHAR[]), unnest(?::INTEGER[]), "
        "unnest(?::VARCHAR[]), unnest(?::VARCHAR[])",
        [
            [r.line for r in subnets],
            [r.line for r in subnets],
            [r.vrf for r in subnets],
            [n.version for n in networks],
            [str(int(n.network_address)) for n in networks],
            [str(int(n.broadcast_address)) for n in networks],
            [n.prefixlen for n in networks],
            [r.is_container for r in subnets],
            [r.cidr for r in subnets],
            [r.status for r in subnets],
            [r.purpose for r in subnets],
            [r.owner for r in subnets],
            [r.vlan_id for r in subnets],
            [json.dumps(r.tags, sort_keys=True) for r in subnets],
            [r.parent_cidr for r in subnets],
        ],
    )


def plan_staged_csv(
    conn: duckdb.DuckDBPyConnection,
    workspace: str,
    data: bytes,
    stage: str,
    chosen: dict[str, str],
) -> tuple[ImportPlan, list[FoundConflict], ParseResult] | None:
    """Plan a subnet CSV without building a plan item per row.

    Parameters
    ----------
    conn : duckdb.DuckDBPyConnection
        The store connection; the caller holds the store lock.
    workspace : str
        The workspace the import would write to.
    data : bytes
        The file content.
    stage : str
        A name for the temporary staged table, unique per job.
    chosen : dict of str to str
        Resolutions already chosen, by conflict key.

    Returns
    -------
    tuple of (ImportPlan, list of FoundConflict, ParseResult) or None
        The plan (the same as the item-by-item planner gives), the conflicts
        and the row errors; None when the file needs the full parser.
    """
    staged = stage_subnet_csv(conn, data, stage)
    if staged is None:
        return None
    try:
        conflicts = staged_subnet_conflicts(conn, workspace, stage)
        wanted = {c.item for c in conflicts} | {
            int(c.existing["item"]) for c in conflicts if "item" in c.existing
        }
        first_rows = conn.execute(
            f"SELECT idx FROM {stage} ORDER BY idx LIMIT {_PREVIEW_ROWS}"
        ).fetchall()
        shown = [int(r[0]) for r in first_rows]
        items = _staged_items(conn, stage, wanted | set(shown))
    finally:
        conn.execute(f"DROP TABLE IF EXISTS {stage}")
    apply_resolutions(items, conflicts, chosen)
    actions = Counter(item.action for item in items.values())
    update = actions["update"] + len(
        {i for x in items.values() for i in x.containerize}
    )
    create = staged.count - actions["skip"] - actions["update"]
    preview = [
        {"action": items[i].action, **items[i].record.to_dict(), **items[i].extra}
        for i in shown
    ]
    plan = ImportPlan(
        total_rows=staged.result.total_rows,
        create={"subnet": create} if create else {},
        update={"subnet": update} if update else {},
        skip={"subnet": actions["skip"]} if actions["skip"] else {},
        conflicts=dict(Counter(c.kind for c in conflicts)),
        row_errors=[error.to_dict() for error in staged.result.errors],
        skipped_rows=[],
        preview=preview,
    )
    return plan, conflicts, staged.result


def _staged_items(
    conn: duckdb.DuckDBPyConnection, stage: str, indexes: set[int]
) -> dict[int, PlanItem]:
    rows = conn.execute(
        "SELECT idx, line, cidr, vrf, status, purpose, vlan, owner, tags, parent, "
        f"container FROM {stage} WHERE idx IN (SELECT unnest(?::BIGINT[])) "
        "ORDER BY idx",
        [sorted(indexes)],
    ).fetchall()
    items: dict[int, PlanItem] = {}
    for idx, line, cidr, vrf, status, purpose, vlan, owner, tags, parent, box in rows:
        record = SubnetRecord(
            line,
            cidr,
            vrf=vrf,
            status=status,
            purpose=purpose,
            vlan_id=vlan,
            owner=owner,
            tags=json.loads(tags),
            parent_cidr=parent,
            is_container=bool(box),
        )
        items[int(idx)] = PlanItem(int(idx), "subnet", int(line), record)
    return items
