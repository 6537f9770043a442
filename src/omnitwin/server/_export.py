"""``GET /v1/subnets/export``: every matching subnet as Arrow IPC or NDJSON.

The media type follows the ``Accept`` header (RFC 9110 content negotiation):
``application/x-ndjson`` (the default, for ``*/*`` or no header) or
``application/vnd.apache.arrow.stream``, which needs pyarrow on the server.
Rows go out in batches of :data:`BATCH_ROWS`, each read in a worker thread,
so the event loop keeps serving other requests during a long export.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

from starlette.responses import StreamingResponse

from omnitwin.client._export import ARROW_STREAM, NDJSON
from omnitwin.engine.context import Context
from omnitwin.engine.subnet_export import SubnetExport
from omnitwin.errors import NotAcceptable

__all__ = [
    "ARROW_STREAM",
    "BATCH_ROWS",
    "NDJSON",
    "choose_media_type",
    "export_media_types",
    "export_response",
]

logger = logging.getLogger("omnitwin.server")

# Rows per Arrow record batch or NDJSON chunk: roughly 15 MB of NDJSON at
# about 300 bytes a row, and 20 worker-thread hops for 1,000,000 rows.
BATCH_ROWS = 50_000


def export_media_types() -> tuple[str, ...]:
    """Return the media types this server can export, the default first."""
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        return (NDJSON,)
    return (NDJSON, ARROW_STREAM)


def _media_ranges(accept: str) -> list[tuple[str, float]]:
    """Parse an Accept header into (media range, quality) pairs."""
    ranges = []
    for item in accept.split(","):
        media_range, *parameters = (part.strip() for part in item.split(";"))
        if not media_range:
            continue
        quality = 1.0
        for parameter in parameters:
            name, _, value = parameter.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        ranges.append((media_range.lower(), quality))
    return ranges


def _quality(media_type: str, ranges: list[tuple[str, float]]) -> float:
    """Return the quality of the most specific range that matches ``media_type``."""
    kind = media_type.split("/")[0]
    best_rank, best_quality = -1, 0.0
    for media_range, quality in ranges:
        if media_range == media_type:
            rank = 2
        elif media_range == f"{kind}/*":
            rank = 1
        elif media_range == "*/*":
            rank = 0
        else:
            continue
        if rank > best_rank:
            best_rank, best_quality = rank, quality
    return best_quality


def choose_media_type(accept: str | None, offered: Sequence[str]) -> str:
    """Return the offered media type that ``accept`` ranks highest.

    Ties go to the earlier entry of ``offered``; no header picks the first.

    Raises
    ------
    NotAcceptable
        If ``accept`` gives every offered type quality 0.
    """
    if accept is None or not accept.strip():
        return offered[0]
    ranges = _media_ranges(accept)
    scored = [(_quality(media_type, ranges), media_type) for media_type in offered]
    best = max(quality for quality, _ in scored)
    if best <= 0:
        raise NotAcceptable(
            f"cannot export subnets as {accept!r}; send Accept: {' or '.join(offered)}"
        )
    return next(media_type for quality, media_type in scored if quality == best)


class _ChunkSink:
    """A writable file object for pyarrow that hands out what was written."""

    closed = False

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self._position = 0

    def write(self, data: Any) -> int:
        chunk = bytes(data)
        self._parts.append(chunk)
        self._position += len(chunk)
        return len(chunk)

    def tell(self) -> int:
        return self._position

    def flush(self) -> None:
        pass

    def take(self) -> bytes:
        data = b"".join(self._parts)
        self._parts.clear()
        return data


def _arrow_chunks(reader: Any) -> Iterator[bytes]:
    """Encode a RecordBatchReader as an Arrow IPC stream, one batch a chunk."""
    import pyarrow as pa

    sink = _ChunkSink()
    with pa.ipc.new_stream(sink, reader.schema) as writer:
        for batch in reader:
            writer.write_batch(batch)
            yield sink.take()
    # Closing the writer wrote the end-of-stream marker (and the schema when
    # there was no batch).
    yield sink.take()


class _ExportBody:
    """The chunks of one export, read one at a time in worker threads.

    A lock orders :meth:`read` and :meth:`close`, because a client that
    disconnects cancels the response while a worker thread may still be
    reading from the export's DuckDB connection.
    """

    def __init__(self, export: SubnetExport, chunks: Iterator[bytes]) -> None:
        self._export = export
        self._chunks = chunks
        self._lock = threading.Lock()
        self._closed = False

    def read(self) -> bytes | None:
        with self._lock:
            if self._closed:
                return None
            return next(self._chunks, None)

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                self._export.close()


def _open_body(
    engine: Any, ctx: Context, params: dict[str, Any], media_type: str
) -> _ExportBody:
    """Check the filters and run the query, before the response starts."""
    export = SubnetExport(engine, ctx, **params)
    try:
        if media_type == ARROW_STREAM:
            chunks = _arrow_chunks(export.arrow_batches(BATCH_ROWS))
        else:
            chunks = export.json_lines(BATCH_ROWS)
    except BaseException:
        export.close()
        raise
    return _ExportBody(export, chunks)


async def _send(body: _ExportBody, request_id: str) -> AsyncIterator[bytes]:
    chunks_sent = 0
    try:
        while (chunk := await asyncio.to_thread(body.read)) is not None:
            chunks_sent += 1
            yield chunk
    except Exception:
        # The status line is already sent, so the error can only end the
        # body early: the server drops the connection, and the client sees
        # an incomplete chunked body.
        logger.exception(
            "request %s: subnet export failed after %d chunks", request_id, chunks_sent
        )
        raise
    finally:
        await asyncio.to_thread(body.close)


async def export_response(
    engine: Any,
    ctx: Context,
    params: dict[str, Any],
    media_type: str,
    headers: dict[str, str],
    request_id: str,
) -> StreamingResponse:
    """Return a streaming response of the subnets that match ``params``.

    Invalid filters raise here, so they get the usual error body.
    """
    body = await asyncio.to_thread(_open_body, engine, ctx, params, media_type)
    return StreamingResponse(
        _send(body, request_id),
        media_type=media_type,
        headers={**headers, "Vary": "Accept"},
    )
