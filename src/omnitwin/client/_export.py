"""Decode the body of ``GET /v1/subnets/export`` into a pandas DataFrame.

The HTTP backend requests an Arrow IPC stream when pyarrow is installed,
because pyarrow converts typed columns to pandas in bulk while NDJSON is
parsed value by value, and NDJSON otherwise. Both decode to the frame that
the local backend's ``subnets.export`` returns: the columns of
:data:`~omnitwin.engine.subnet_export.EXPORT_COLUMNS` with tags as dicts.
An Arrow stream is typed by ``frame_from_arrow``, and NDJSON keeps the
timestamps as ISO 8601 strings, which ``subnets_frame`` then types.
"""

from __future__ import annotations

import io

import orjson
import pandas as pd

from omnitwin.engine.subnet_export import (
    EXPORT_COLUMNS,
    frame_from_arrow,
    has_pyarrow,
)

__all__ = ["ARROW_STREAM", "NDJSON", "ExportDecoder", "export_accept"]

ARROW_STREAM = "application/vnd.apache.arrow.stream"
NDJSON = "application/x-ndjson"


def export_accept() -> str:
    """Return the Accept header of an export request: Arrow first if readable."""
    if has_pyarrow():
        return f"{ARROW_STREAM}, {NDJSON};q=0.5"
    return NDJSON


class ExportDecoder:
    """Collect the body of an export response and build its DataFrame.

    Call :meth:`feed` with each chunk of the body, in order, then
    :meth:`frame` once. NDJSON is parsed as it arrives, so that only the
    rows decoded so far and one partial line are held. An Arrow stream is
    kept whole until :meth:`frame`, where it is about the size of the
    decoded table.

    Raises
    ------
    ValueError
        If ``media_type`` is neither Arrow IPC stream nor NDJSON.
    """

    def __init__(self, media_type: str) -> None:
        media_type = media_type.partition(";")[0].strip().lower()
        if media_type not in (ARROW_STREAM, NDJSON):
            raise ValueError(
                f"the server sent the export as {media_type!r}; expected "
                f"{ARROW_STREAM} or {NDJSON}"
            )
        self.media_type = media_type
        self._chunks: list[bytes] = []
        self._partial = b""
        self._frames: list[pd.DataFrame] = []

    def feed(self, chunk: bytes) -> None:
        """Add the next chunk of the response body."""
        if self.media_type == ARROW_STREAM:
            self._chunks.append(chunk)
            return
        data = self._partial + chunk
        end = data.rfind(b"\n")
        if end < 0:
            self._partial = data
            return
        self._partial = data[end + 1 :]
        self._add_lines(data[:end])

    def _add_lines(self, lines: bytes) -> None:
        # JSON escapes line breaks inside strings, so each newline ends one
        # object and the lines become a JSON array by joining them with commas.
        lines = lines.strip(b"\n")
        if not lines:
            return
        records = orjson.loads(b"[" + lines.replace(b"\n", b",") + b"]")
        self._frames.append(pd.DataFrame.from_records(records, columns=EXPORT_COLUMNS))

    def frame(self) -> pd.DataFrame:
        """Return every row received, in the order the server sent them.

        Raises
        ------
        ValueError
            If the body ends inside an NDJSON line or is not an Arrow stream.
        """
        if self.media_type == ARROW_STREAM:
            return self._arrow_frame()
        if self._partial.strip():
            raise ValueError("the NDJSON export ended inside a line")
        if not self._frames:
            return pd.DataFrame({name: [] for name in EXPORT_COLUMNS}, dtype=object)
        frame = pd.concat(self._frames, ignore_index=True)
        self._frames = []
        return frame

    def _arrow_frame(self) -> pd.DataFrame:
        import pyarrow as pa

        body = io.BytesIO(b"".join(self._chunks))
        self._chunks = []
        try:
            table = pa.ipc.open_stream(body).read_all()
        except pa.ArrowInvalid as exc:
            raise ValueError(f"the export is not a valid Arrow stream: {exc}") from exc
        try:
            return frame_from_arrow(table)
        except KeyError as exc:
            raise ValueError(f"the Arrow export lacks the column {exc}") from exc
