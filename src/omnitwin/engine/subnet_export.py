"""Bulk export of subnets, in one query.

``client.subnets.list`` pages with LIMIT and OFFSET, 200 rows at a time,
which reads about 2,000 rows a second and slows down as the offset grows.
For DataFrame loads the local backend runs a single query instead
(:func:`export_subnets`), and DuckDB builds the columns directly. The server's
``GET /v1/subnets/export`` reads the same rows in batches through
:class:`SubnetExport`. The filters are those of ``SubnetService.list`` that a
notebook needs for bulk loads: ``within``, ``status`` and ``vrf``.

With pyarrow installed, both paths build the DataFrame from Arrow columns
(:func:`frame_from_arrow`): strings stay in Arrow memory, and each distinct
tags text is parsed once.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import orjson
import pandas as pd

from omnitwin.engine import cidr
from omnitwin.engine.context import Context
from omnitwin.engine.subnets import validate_status, validate_vrf

__all__ = [
    "EXPORT_COLUMNS",
    "SubnetExport",
    "export_subnets",
    "frame_from_arrow",
    "has_pyarrow",
    "parse_tags",
]

# Columns of an export, in order: those of omnitwin.models.Subnet plus
# prefix_length and version.
EXPORT_COLUMNS = (
    "id",
    "cidr",
    "prefix_length",
    "version",
    "status",
    "purpose",
    "vrf",
    "vlan_id",
    "owner",
    "parent_id",
    "is_container",
    "is_pool",
    "tags",
    "created_at",
    "updated_at",
)
_COLUMNS = ", ".join(EXPORT_COLUMNS)
_ORDER = "ORDER BY version, first, prefix_length, vrf"

# One JSON object per subnet, with the stored tags text embedded as an object.
_JSON_LINE = "json_object({}) AS line".format(
    ", ".join(
        f"'{name}', json(coalesce(nullif(tags, ''), '{{}}'))"
        if name == "tags"
        else f"'{name}', {name}"
        for name in EXPORT_COLUMNS
    )
)


def _where(
    ctx: Context, within: str | None, status: str | None, vrf: str | None
) -> tuple[str, list[Any]]:
    """Return the WHERE clause of the export filters and its parameters.

    Raises
    ------
    InvalidCIDR, ValidationError
        If ``within``, ``status`` or ``vrf`` is invalid.
    """
    where = ["workspace = ?"]
    params: list[Any] = [ctx.workspace]
    if within is not None:
        interval = cidr.Interval.of(cidr.parse_network(within))
        where.append(
            "version = ? AND first >= CAST(? AS UHUGEINT) "
            "AND last <= CAST(? AS UHUGEINT)"
        )
        params += [interval.version, interval.first, interval.last]
    if status is not None:
        where.append("status = ?")
        params.append(validate_status(status))
    if vrf is not None:
        where.append("vrf = ?")
        params.append(validate_vrf(vrf))
    return "WHERE " + " AND ".join(where), params


def export_subnets(
    engine: Any,
    ctx: Context,
    *,
    within: str | None = None,
    status: str | None = None,
    vrf: str | None = None,
) -> pd.DataFrame:
    """Return the workspace's subnets in address order as a pandas DataFrame.

    Columns are :data:`EXPORT_COLUMNS`, and ``tags`` contains dicts. With
    pyarrow installed the columns are typed as :func:`frame_from_arrow`
    describes. Without it, DuckDB's ``.df()`` builds them, and the
    timestamps stay ISO 8601 strings for the caller's schema to parse.

    Raises
    ------
    InvalidCIDR, ValidationError
        If ``within``, ``status`` or ``vrf`` is invalid.
    """
    where, params = _where(ctx, within, status, vrf)
    query = f"SELECT {_COLUMNS} FROM subnets {where} {_ORDER}"
    store = engine.store
    if has_pyarrow():
        with store.lock:
            table = store.conn.sql(query, params=params).to_arrow_table()
        return frame_from_arrow(table)
    with store.lock:
        frame: pd.DataFrame = store.conn.execute(query, params).df()
    frame["tags"] = pd.Series(parse_tags(frame["tags"].tolist()), dtype=object)
    return frame


def has_pyarrow() -> bool:
    """Return whether pyarrow can be imported."""
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        return False
    return True


def frame_from_arrow(table: Any) -> pd.DataFrame:
    """Convert an Arrow table of :data:`EXPORT_COLUMNS` to a typed DataFrame.

    Strings become pandas ``string`` columns backed by the Arrow buffers,
    integers ``Int64``, booleans ``boolean``, and ``tags`` one dict per row.
    The timestamps, ISO 8601 text in the store and on the wire, become
    ``datetime64[ns, UTC]``; an empty text is a missing value. A column whose
    text Arrow cannot parse as a timestamp stays text for
    ``omnitwin.notebook.loaders.subnets_frame`` to parse.

    Raises
    ------
    KeyError
        If the table lacks one of :data:`EXPORT_COLUMNS`.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    text = pd.StringDtype()
    types = {
        pa.string(): text,
        pa.large_string(): text,
        pa.int64(): pd.Int64Dtype(),
        pa.bool_(): pd.BooleanDtype(),
    }
    columns: dict[str, Any] = {}
    for name in EXPORT_COLUMNS:
        column = table.column(name)
        if name == "tags":
            columns[name] = _tags_from_arrow(column)
            continue
        if pa.types.is_integer(column.type):
            column = pc.cast(column, pa.int64())
        elif name.endswith("_at") and pa.types.is_string(column.type):
            column = _timestamps_from_text(column)
        columns[name] = column.to_pandas(types_mapper=types.get)
    return pd.DataFrame(columns)


def _timestamps_from_text(column: Any) -> Any:
    import pyarrow as pa
    import pyarrow.compute as pc

    present = pc.if_else(pc.equal(column, ""), pa.scalar(None, pa.string()), column)
    try:
        return pc.cast(present, pa.timestamp("ns", tz="UTC"))
    except pa.ArrowInvalid:
        return column


def _tags_from_arrow(column: Any) -> pd.Series:
    """Parse a column of tags JSON texts, each distinct text once.

    Every row gets its own dict, as in :func:`parse_tags`.
    """
    encoded = column.fill_null("").combine_chunks().dictionary_encode()
    texts = encoded.dictionary.to_pylist()
    parsed = [orjson.loads(text) if text else {} for text in texts]
    rows = [dict(parsed[index]) for index in encoded.indices.to_pylist()]
    return pd.Series(rows, dtype=object)


def parse_tags(texts: list[str | None]) -> list[dict[str, str]]:
    """Parse stored tag texts into one dict per row.

    Most subnets of a twin share a few tag sets, so each distinct text is
    parsed once and every row gets its own shallow copy (tag values are
    strings, so rows never share a mutable value).

    >>> rows = parse_tags(['{"site": "nyc1"}', '{"site": "nyc1"}', None])
    >>> rows, rows[0] is rows[1]
    ([{'site': 'nyc1'}, {'site': 'nyc1'}, {}], False)
    """
    parsed: dict[str, dict[str, str]] = {}
    rows: list[dict[str, str]] = []
    for text in texts:
        if not text:
            rows.append({})
            continue
        tags = parsed.get(text)
        if tags is None:
            tags = parsed[text] = json.loads(text)
        rows.append(dict(tags))
    return rows


class SubnetExport:
    """The matching subnets of one workspace, read in batches for streaming.

    The filters are checked when the export is created, so that an invalid
    one fails before a response starts.

    The query runs on a DuckDB connection of its own (``conn.cursor()``),
    which reads one consistent snapshot of the committed rows. The store lock
    is held only while that connection is opened, not while DuckDB sorts and
    the caller sends the rows, because a 1,000,000-row export takes seconds
    and the lock serialises every other request of the server. The caller
    gets one batch of rows at a time, while DuckDB sorts the whole result in
    its own buffer memory, which its ``memory_limit`` setting caps.

    Raises
    ------
    InvalidCIDR, ValidationError
        If ``within``, ``status`` or ``vrf`` is invalid.
    """

    def __init__(
        self,
        engine: Any,
        ctx: Context,
        *,
        within: str | None = None,
        status: str | None = None,
        vrf: str | None = None,
    ) -> None:
        self._where, self._params = _where(ctx, within, status, vrf)
        store = engine.store
        with store.lock:
            self._conn = store.conn.cursor()

    def arrow_batches(self, batch_rows: int) -> Any:
        """Run the query and return a ``pyarrow.RecordBatchReader`` of its rows.

        Columns are :data:`EXPORT_COLUMNS`; ``tags`` is the JSON text of the
        tags map and the timestamps are ISO 8601 strings.
        """
        query = f"SELECT {_COLUMNS} FROM subnets {self._where} {_ORDER}"
        relation = self._conn.sql(query, params=self._params)
        return relation.to_arrow_reader(batch_rows)

    def json_lines(self, batch_rows: int) -> Iterator[bytes]:
        """Run the query now and return an iterator of NDJSON chunks.

        Each chunk has up to ``batch_rows`` lines, one JSON object per subnet
        with the keys of :data:`EXPORT_COLUMNS`, each line ending in ``\\n``.
        """
        query = f"SELECT {_JSON_LINE} FROM subnets {self._where} {_ORDER}"
        result = self._conn.execute(query, self._params)

        def chunks() -> Iterator[bytes]:
            while rows := result.fetchmany(batch_rows):
                yield "".join(row[0] + "\n" for row in rows).encode()

        return chunks()

    def close(self) -> None:
        """Close the export's connection; the engine's own stays open."""
        self._conn.close()
