"""Reading CSV bytes into rows with their physical line numbers.

Rules shared by every CSV source:

- Input is UTF-8. Exactly one leading byte order mark is removed, also when
  the first header is quoted.
- The delimiter is ``,`` or ``;``, found by :class:`csv.Sniffer` limited to
  those two. When the sniffer fails, or picks a character that the header line
  does not contain outside quotes, the one that occurs more often outside
  quotes in the header line wins (``,`` on a tie).
- Header names are trimmed and lower-cased for matching. A duplicate header
  name is rejected. A last column with no header name is dropped when every
  row leaves it empty, as a trailing delimiter produces.
- Whitespace around values is trimmed, and rows whose cells are all empty are
  skipped and not counted.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass

from omnitwin.engine.importers.records import RowError
from omnitwin.errors import ValidationError

__all__ = [
    "CsvRow",
    "CsvTable",
    "decode_csv",
    "detect_delimiter",
    "iter_records",
    "normalise_headers",
    "read_table",
    "surplus_error",
]

_BOM = "\ufeff"
_DELIMITERS = ",;"


@dataclass(frozen=True, slots=True)
class CsvRow:
    """One data row: its first physical line and its values by header name."""

    line: int
    values: dict[str, str]
    extra: tuple[str, ...] = ()

    def get(self, name: str) -> str:
        """Return the trimmed value of column ``name``, or ``""`` when absent."""
        return self.values.get(name, "")


@dataclass(frozen=True, slots=True)
class CsvTable:
    """A CSV file read as one header and its rows."""

    headers: tuple[str, ...]
    delimiter: str
    rows: tuple[CsvRow, ...]
    header_line: int = 1


def decode_csv(data: bytes | str) -> str:
    """Decode CSV input as UTF-8 and remove one leading byte order mark.

    Parameters
    ----------
    data : bytes or str
        The file content.

    Returns
    -------
    str
        The text without its byte order mark.

    Raises
    ------
    ValidationError
        If the bytes are not valid UTF-8.

    Examples
    --------
    >>> decode_csv(b'\\xef\\xbb\\xbf"name"\\r\\n')
    '"name"\\r\\n'
    """
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ValidationError(
                f"the file is not valid UTF-8 (byte {exc.start} is"
                f" {data[exc.start]:#x}); save it as 'CSV UTF-8' and upload it again",
                details={"offset": exc.start},
            ) from exc
    else:
        text = data
    return text.removeprefix(_BOM)


def _count_outside_quotes(line: str) -> dict[str, int]:
    counts = dict.fromkeys(_DELIMITERS, 0)
    quoted = False
    for char in line:
        if char == '"':
            quoted = not quoted
        elif not quoted and char in counts:
            counts[char] += 1
    return counts


def _first_line(text: str) -> str:
    for line in io.StringIO(text, newline=""):
        if line.strip():
            return line
    return ""


def detect_delimiter(text: str) -> str:
    """Return ``","`` or ``";"``, the delimiter of the CSV text.

    Parameters
    ----------
    text : str
        The decoded CSV text; the first 64 KiB are examined.

    Returns
    -------
    str
        The delimiter.

    Examples
    --------
    >>> detect_delimiter('name;description\\r\\nsw1;"a, b, c, d"\\r\\n')
    ';'
    """
    counts = _count_outside_quotes(_first_line(text))
    try:
        sniffed = csv.Sniffer().sniff(text[:65536], delimiters=_DELIMITERS).delimiter
    except csv.Error:
        sniffed = ""
    if sniffed and counts[sniffed] > 0:
        return sniffed
    if counts[";"] > counts[","]:
        return ";"
    return ","


def iter_records(text: str, delimiter: str) -> Iterator[tuple[int, list[str]]]:
    """Yield each non-blank CSV record with the physical line it starts on.

    A quoted value may span lines, so the start line of a record is one past
    the line where the previous record ended. Values are trimmed.

    Parameters
    ----------
    text : str
        Decoded CSV text.
    delimiter : str
        The delimiter, ``","`` or ``";"``.

    Yields
    ------
    tuple of (int, list of str)
        The line number, counting from 1, and the trimmed cells.

    Examples
    --------
    >>> list(iter_records('a,b\\n"x\\ny",z\\n\\nc,d\\n', ","))
    [(1, ['a', 'b']), (2, ['x\\ny', 'z']), (5, ['c', 'd'])]
    """
    reader = csv.reader(
        io.StringIO(text, newline=""), delimiter=delimiter, skipinitialspace=True
    )
    end_of_previous = 0
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            # The usual cause is a quote that never closes, which makes the
            # rest of the file one value longer than the csv module allows.
            message = (
                f"line {end_of_previous + 1} cannot be read as CSV ({exc}); check "
                "for a quote that is not closed, or shorten the value"
            )
            raise ValidationError(
                message, details={"line": end_of_previous + 1}
            ) from exc
        start = end_of_previous + 1
        end_of_previous = reader.line_num
        trimmed = [cell.strip() for cell in cells]
        if any(trimmed):
            yield start, trimmed


def normalise_headers(cells: list[str], line: int) -> list[str]:
    """Trim and lower-case header names and reject duplicates.

    Empty names are kept as ``""`` so the caller can decide about a trailing
    delimiter.

    Parameters
    ----------
    cells : list of str
        The header row as read.
    line : int
        The header's line number, used in messages.

    Returns
    -------
    list of str
        The header names for matching.

    Raises
    ------
    ValidationError
        If two columns have the same name.

    Examples
    --------
    >>> normalise_headers([" Name", "SITE "], 1)
    ['name', 'site']
    """
    names = [cell.strip().lower() for cell in cells]
    seen: dict[str, int] = {}
    for index, name in enumerate(names):
        if name and name in seen:
            raise ValidationError(
                f"header {cells[index].strip()!r} on line {line} appears in columns"
                f" {seen[name] + 1} and {index + 1}; rename or remove one of them",
                details={"header": name, "line": line},
            )
        seen[name] = index
    return names


def read_table(data: bytes | str) -> CsvTable:
    """Read a CSV file with one header row into rows keyed by header name.

    Parameters
    ----------
    data : bytes or str
        The file content.

    Returns
    -------
    CsvTable
        The header names, the delimiter and the rows. A row with more values
        than the header has columns keeps the surplus in ``CsvRow.extra`` for
        the parser to report.

    Raises
    ------
    ValidationError
        If the file is not UTF-8, has no header, repeats a header name or has an
        unnamed column that contains values.

    Examples
    --------
    >>> table = read_table(b"\\xef\\xbb\\xbfdevice,name\\r\\nsw1,Gi1\\r\\n")
    >>> table.headers, table.rows[0].get("device")
    (('device', 'name'), 'sw1')
    """
    text = decode_csv(data)
    delimiter = detect_delimiter(text)
    records = iter_records(text, delimiter)
    first = next(records, None)
    if first is None:
        raise ValidationError("the file has no header row; add one as the first line")
    header_line, header_cells = first
    names = normalise_headers(header_cells, header_line)
    body = list(records)
    names = _drop_unnamed_trailing(names, body, header_line)
    rows = tuple(_make_row(line, cells, names) for line, cells in body)
    return CsvTable(tuple(names), delimiter, rows, header_line)


def _drop_unnamed_trailing(
    names: list[str], body: list[tuple[int, list[str]]], header_line: int
) -> list[str]:
    if names and names[-1] == "":
        last = len(names) - 1
        for line, cells in body:
            if len(cells) > last and cells[last]:
                raise ValidationError(
                    f"column {last + 1} has no header name but line {line} has"
                    f" {cells[last]!r} in it; add a header name, or remove the"
                    f" trailing delimiter on line {header_line}",
                    details={"line": line, "column": last + 1},
                )
        names = names[:-1]
    for index, name in enumerate(names):
        if name == "":
            raise ValidationError(
                f"column {index + 1} on line {header_line} has no header name;"
                " add one or delete the column",
                details={"line": header_line, "column": index + 1},
            )
    return names


def _make_row(line: int, cells: list[str], names: list[str]) -> CsvRow:
    values = dict(zip(names, cells, strict=False))
    for name in names[len(cells) :]:
        values[name] = ""
    extra = tuple(cells[len(names) :])
    if not any(extra):
        extra = ()
    return CsvRow(line, values, extra)


def surplus_error(row: CsvRow, column_count: int) -> RowError | None:
    """Return a row error when ``row`` has more values than the header has columns.

    Examples
    --------
    >>> surplus_error(CsvRow(3, {"a": "1"}, ("2",)), 1).value
    '2'
    """
    if not row.extra:
        return None
    return RowError(
        line=row.line,
        field="",
        value=row.extra[0],
        message=(
            f"line {row.line} has {column_count + len(row.extra)} values but the header"
            f" has {column_count} columns; quote values that contain the delimiter"
            f" or remove the extra value {row.extra[0]!r}"
        ),
    )
