"""A vectorised reader of the omnitwin subnet CSV, for planning large files.

:func:`stage_subnet_csv` splits the file into lines and checks them in DuckDB
SQL, writing one row per subnet into a staged view that the conflict checks
of :mod:`omnitwin.engine.import_conflicts` read directly. It handles the
common rows only: printable ASCII, no quotes, a strict IPv4 network with no
leading zeros, a known status, and empty ``tags`` and ``parent``. Every other
row is parsed by :func:`~omnitwin.engine.importers.parse_generic_csv` itself,
so row errors, messages and line numbers are the parser's own. A file that
does not fit (quotes, bare carriage returns, an unusual header) returns None
and the caller uses the parser for all of it.
"""

from __future__ import annotations

import csv
import tempfile
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import duckdb
import numpy as np

from omnitwin.engine.cidr import CANONICAL_IPV4_PATTERN
from omnitwin.engine.import_conflicts import (
    FoundConflict,
    PlanItem,
    apply_resolutions,
    staged_subnet_conflicts,
    write_stage_table,
)
from omnitwin.engine.importers import ParseResult, SubnetRecord, parse_generic_csv
from omnitwin.engine.importers.csvutil import detect_delimiter
from omnitwin.engine.importers.generic_csv import COLUMNS
from omnitwin.models import ImportPlan

__all__ = [
    "STAGE_COLUMNS",
    "StagedCsv",
    "drop_stage",
    "plan_staged_csv",
    "stage_subnet_csv",
]

#: Columns of a staged subnet table that the conflict checks read, in order.
STAGE_COLUMNS = "idx, line, vrf, version, first, last, plen, container, cidr, owner"

_PREVIEW_ROWS = 20
_STATUSES = ("", "allocated", "reserved", "available", "deprecated", "container")

# Columns read past the header's, to notice rows with surplus values. A row
# with more than this many makes DuckDB's reader fail, so the file then goes
# to the parser.
_SPARE_COLUMNS = 1
# detect_delimiter reads this many characters; the header must fit in them.
_SNIFFED = 65536
_BOM = b"\xef\xbb\xbf"
_NEWLINE = 0x0A
_RETURN = 0x0D


@dataclass(frozen=True, slots=True)
class _Lines:
    """A CSV file without its byte order mark, cut into lines on demand."""

    names: list[str]
    delimiter: str
    body: bytes
    # Offsets of the line feeds in ``body``.
    newlines: np.ndarray

    def parse(self, numbers: Sequence[int]) -> ParseResult:
        """Parse the lines ``numbers`` (counted from 1 at the header), in order.

        The records and errors carry the line numbers of the file.
        """
        if not numbers:
            return ParseResult()
        # Line n runs from the line feed that ends line n - 1 to the one that
        # ends line n, or to the end of the file.
        count = len(self.newlines)
        rows = []
        for n in numbers:
            start = int(self.newlines[n - 2]) + 1 if n > 1 else 0
            end = int(self.newlines[n - 1]) if n <= count else len(self.body)
            rows.append(self.body[start:end].rstrip(b"\r").decode("ascii"))
        header = self.delimiter.join(self.names)
        result = parse_generic_csv(header + "\n" + "\n".join(rows) + "\n")
        # The rebuilt file has the header on line 1 and one row per line after.
        result.records = [
            replace(r, line=numbers[r.line - 2])
            for r in result.records
            if isinstance(r, SubnetRecord)
        ]
        for index, error in enumerate(result.errors):
            line = numbers[error.line - 2]
            # Only a leading "line N " is the row's number. The same words
            # inside a value must stay as they are.
            message = error.message
            prefix = f"line {error.line} "
            if message.startswith(prefix):
                message = f"line {line} " + message.removeprefix(prefix)
            result.errors[index] = type(error)(line, error.field, error.value, message)
        return result


@dataclass(frozen=True, slots=True)
class StagedCsv:
    """A subnet CSV read into a staged view.

    ``count`` subnets are in the view ``stage``, each with its line number as
    ``idx``. ``result`` contains the row errors and the row count but no
    records. ``parsed`` contains the records of the rows that the parser
    read, by line. The parser reads the other rows only when
    :meth:`records` asks for them.
    """

    stage: str
    count: int
    result: ParseResult
    parsed: dict[int, SubnetRecord]
    lines: _Lines

    def records(self, numbers: set[int]) -> dict[int, SubnetRecord]:
        """Return the subnet records on the lines ``numbers``, by line."""
        found = {n: self.parsed[n] for n in numbers if n in self.parsed}
        rest = sorted(n for n in numbers if n not in self.parsed)
        for record in self.lines.parse(rest).records:
            if isinstance(record, SubnetRecord):
                found[record.line] = record
        return found


def stage_subnet_csv(
    conn: duckdb.DuckDBPyConnection, data: bytes, stage: str
) -> StagedCsv | None:
    """Read a subnet CSV into the view ``stage``, or return None if it does not fit.

    The view has the columns :data:`STAGE_COLUMNS` and reads two temporary
    tables, ``{stage}_rows`` and ``{stage}_parsed``. :func:`drop_stage`
    removes all three.

    Parameters
    ----------
    conn : duckdb.DuckDBPyConnection
        A connection; the caller holds the store lock.
    data : bytes
        The file content.
    stage : str
        The name of the temporary view to create.

    Returns
    -------
    StagedCsv or None
        None when the file needs the full parser (see the module docstring).
    """
    body = data.removeprefix(_BOM)
    scanned = _scan(body)
    if scanned is None:
        return None
    names, delimiter, newlines = scanned
    lines = _Lines(names, delimiter, body, newlines)
    try:
        with tempfile.TemporaryDirectory(prefix="omnitwin-import-") as folder:
            path = Path(folder) / "data.csv"
            path.write_bytes(body)
            try:
                _stage_fast_rows(conn, f"{stage}_rows", path, names, delimiter)
            except duckdb.InvalidInputException:
                # The reader fails on a row with more cells than it reads.
                drop_stage(conn, stage)
                return None
        total, fast = _row_counts(conn, f"{stage}_rows")
        if total != _data_lines(body, newlines):
            drop_stage(conn, stage)
            return None
        sql = f"SELECT rowid + 2 FROM {stage}_rows WHERE NOT ok ORDER BY rowid"
        slow = lines.parse([int(row[0]) for row in conn.execute(sql).fetchall()])
        parsed = [r for r in slow.records if isinstance(r, SubnetRecord)]
        _create_stage(conn, stage, parsed)
    except BaseException:
        drop_stage(conn, stage)
        raise
    result = ParseResult(errors=slow.errors, total_rows=fast + slow.total_rows)
    by_line = {r.line: r for r in parsed}
    return StagedCsv(stage, fast + len(parsed), result, by_line, lines)


def drop_stage(conn: duckdb.DuckDBPyConnection, stage: str) -> None:
    """Drop the view ``stage`` and the tables it reads, where they exist."""
    conn.execute(f"DROP VIEW IF EXISTS {stage}")
    conn.execute(f"DROP TABLE IF EXISTS {stage}_rows")
    conn.execute(f"DROP TABLE IF EXISTS {stage}_parsed")


def _row_counts(conn: duckdb.DuckDBPyConnection, table: str) -> tuple[int, int]:
    """Return the number of rows in ``table`` and how many of them have ``ok`` set."""
    row = conn.execute(
        f"SELECT count(*), count(*) FILTER (WHERE ok) FROM {table}"
    ).fetchone()
    return (int(row[0]), int(row[1])) if row else (0, 0)


def _data_lines(body: bytes, newlines: np.ndarray) -> int:
    """Return the number of lines after the header, not counting trailing empty ones.

    ``newlines`` contains the offsets of the line feeds in ``body``.
    """
    end = len(body)
    while end and body[end - 1] in b"\r\n":
        end -= 1
    return int(np.searchsorted(newlines, end))


def _scan(body: bytes) -> tuple[list[str], str, np.ndarray] | None:
    """Return the header names, the delimiter and the line feed offsets of ``body``.

    Returns None when the file needs the parser. That is the case for bytes
    other than printable ASCII and line ends, for quotes, and for a carriage
    return without a line feed after it. It is also the case for a line over
    the csv module's field size limit, and for a header without ``cidr`` or
    with unknown or repeated names.
    Line numbers are counted by line feeds, which is why a bare carriage
    return sends the file to the parser.
    """
    if not body.isascii() or b'"' in body or b"\x7f" in body:
        return None
    codes = np.frombuffer(body, dtype=np.uint8)
    controls = np.flatnonzero(codes < 0x20)
    kinds = codes[controls]
    newlines = controls[kinds == _NEWLINE]
    returns = controls[kinds == _RETURN]
    if len(newlines) + len(returns) != len(controls):
        return None
    if len(returns) and (
        returns[-1] + 1 == len(body) or np.any(codes[returns + 1] != _NEWLINE)
    ):
        return None
    # The parser's csv module rejects a value longer than its field size
    # limit, so a file with a line that long goes to the parser for that error.
    limit = csv.field_size_limit()
    if len(body) > limit:
        ends = np.append(newlines, len(body))
        if int(np.max(np.diff(ends, prepend=-1))) - 1 > limit:
            return None
    end = int(newlines[0]) if len(newlines) else len(body)
    first = body[:end].decode("ascii").rstrip("\r")
    if not first.strip() or len(first) > _SNIFFED:
        return None
    delimiter = detect_delimiter(body[:_SNIFFED].decode("ascii"))
    names = [cell.strip().lower() for cell in first.split(delimiter)]
    known = all(name in COLUMNS for name in names)
    if not known or len(set(names)) != len(names) or "cidr" not in names:
        return None
    return names, delimiter, newlines


def _cell(names: list[str], name: str) -> str:
    """Return the SQL of the cell ``name``: NULL when empty or not in the header."""
    if name not in names:
        return "NULL::VARCHAR"
    return f"c{names.index(name) + 1}"


def _trimmed(cell: str, empty: str) -> str:
    """Return the SQL of ``cell`` without outer spaces, or ``empty`` for no text.

    trim() copies every string it reads, so only cells that start or end
    with a space go through it. The file has no other whitespace bytes.
    """
    return (
        f"CASE WHEN {cell} IS NULL THEN {empty} "
        f"WHEN prefix({cell}, ' ') OR suffix({cell}, ' ') "
        f"THEN coalesce(nullif(trim({cell}), ''), {empty}) ELSE {cell} END"
    )


def _stage_fast_rows(
    conn: duckdb.DuckDBPyConnection,
    table: str,
    path: Path,
    names: list[str],
    delimiter: str,
) -> None:
    """Read the body at ``path`` into ``table``, one row per line, in one pass.

    DuckDB's reader returns the cells c1.. as text. The table, filled in
    file order, gives the line number as ``rowid + 2`` as long as the reader
    returns one row per physical line. The reader skips empty lines, so the
    caller compares the row count with the line count. ``ok`` is true on the
    rows that need no parser: a strict IPv4 network and plain values. Only
    those rows have meaningful other columns. Rows whose cells are all empty
    fail the checks and go to the parser, which drops them as it always does.

    An IPv4 network is accepted when the untrimmed cell matches a strict
    pattern: four octets from 0 to 255 without leading zeros, and a prefix
    length from 0 to 32. Its host bits must be zero.
    """
    count = len(names) + _SPARE_COLUMNS
    columns = ", ".join(f"'c{i}': 'VARCHAR'" for i in range(1, count + 1))
    cells = ", ".join(
        f"{_cell(names, name)} AS {name}_cell"
        for name in ("cidr", "status", "vlan", "tags", "parent", "owner", "vrf")
    )
    # lower() copies every string it reads, so it runs only on the statuses
    # that are not already lower case.
    status = (
        f"CASE WHEN status_cell IS NULL OR status_cell IN {_STATUSES} "
        "THEN status_cell ELSE lower(status_cell) END"
    )
    fits = (
        f"spare IS NULL AND regexp_full_match(cidr, '{CANONICAL_IPV4_PATTERN}') "
        f"AND (status IS NULL OR status IN {_STATUSES}) "
        "AND tags_cell IS NULL AND parent_cell IS NULL "
        "AND (vlan_cell IS NULL OR (regexp_full_match(vlan_cell, '[0-9]{1,4}') "
        "AND TRY_CAST(vlan_cell AS USMALLINT) BETWEEN 1 AND 4094))"
    )
    # On rows that match the pattern, one split of the cell into its four
    # octets and the prefix length parses all five numbers. On the others
    # the numbers may be NULL or out of range, so they are used only where
    # ``fits`` holds.
    parts = "TRY_CAST(string_split(replace(cidr_cell, '/', '.'), '.') AS UTINYINT[])"
    value = (
        "(parts[1]::UBIGINT * 16777216 + parts[2]::UBIGINT * 65536 "
        "+ parts[3]::UBIGINT * 256 + parts[4]::UBIGINT)"
    )
    owner, vrf = _trimmed("owner_cell", "''"), _trimmed("vrf_cell", "'global'")
    conn.execute(
        f"CREATE OR REPLACE TEMP TABLE {table} AS "
        "SELECT coalesce(fits AND value & (size - 1) = 0, false) AS ok, vrf, "
        'value::UHUGEINT AS "first", (value + size - 1)::UHUGEINT AS "last", '
        "plen::SMALLINT AS plen, coalesce(status = 'container', false) AS container, "
        "cidr, owner "
        f"FROM (SELECT *, {value} AS value, "
        "CASE WHEN fits THEN 1::UBIGINT << (32 - plen) END AS size FROM ("
        "SELECT *, parts[5] AS plen FROM ("
        f"SELECT *, {fits} AS fits FROM ("
        f"SELECT cidr_cell AS cidr, {status} AS status, {owner} AS owner, "
        f"{vrf} AS vrf, {parts} AS parts, "
        f"vlan_cell, tags_cell, parent_cell, c{count} AS spare FROM ("
        f"SELECT {cells}, c{count} "
        f"FROM read_csv(?, columns = {{{columns}}}, header = false, skip = 1, "
        "delim = ?, quote = '', escape = '', auto_detect = false, "
        "null_padding = true))))))",
        [str(path), delimiter],
    )


def _create_stage(
    conn: duckdb.DuckDBPyConnection, stage: str, records: Sequence[SubnetRecord]
) -> None:
    """Create the view ``stage`` over the fast rows and the parsed ``records``."""
    # Each row contains one network, so ``idx`` is its ``line``.
    lines = [r.line for r in records]
    write_stage_table(conn, f"{stage}_parsed", lines, lines, records)
    conn.execute(
        f"CREATE OR REPLACE TEMP VIEW {stage} AS "
        "SELECT (rowid + 2)::BIGINT AS idx, (rowid + 2)::BIGINT AS line, vrf, "
        '4::TINYINT AS version, "first", "last", plen, container, cidr, owner '
        f"FROM {stage}_rows WHERE ok UNION ALL "
        f"SELECT {STAGE_COLUMNS} FROM {stage}_parsed"
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
        A name for the temporary staged view, unique per job.
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
    finally:
        drop_stage(conn, stage)
    # Only the previewed rows need their records, so only those are parsed.
    records = staged.records(set(shown))
    items = {
        line: PlanItem(line, "subnet", line, records.get(line))
        for line in sorted(wanted | set(shown))
    }
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
