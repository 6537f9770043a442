"""Server-Sent Events: an incremental decoder and omnitwin's stream contract.

:class:`SSEDecoder` turns byte chunks, split anywhere, into events as the
WHATWG HTML standard defines them (section "Server-sent events", the event
stream interpretation): one leading UTF-8 byte order mark is dropped, lines
end with CR, LF or CRLF, lines starting with ``:`` are comments, and several
``data:`` lines of one event are joined with ``\\n``.

:func:`iter_envelopes` applies omnitwin's contract on top: every event carries
a JSON envelope ``{type, seq, session, ts, body}``, a ``final_result`` or
``error`` envelope ends the stream, and ``data: [DONE]`` closes it. SSE has no
end marker of its own, so a stream that stops early raises
:class:`~omnitwin.errors.StreamError` instead of looking complete.
"""

from __future__ import annotations

import codecs
import json
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from omnitwin.errors import StreamError

__all__ = [
    "DONE",
    "TERMINAL_TYPES",
    "SSEDecoder",
    "SSEEvent",
    "aiter_envelopes",
    "iter_envelopes",
]

DONE = "[DONE]"
TERMINAL_TYPES = frozenset({"final_result", "error"})
_BOM = "\ufeff"


@dataclass(frozen=True, slots=True)
class SSEEvent:
    """One dispatched event: its type (``"message"`` by default) and data."""

    data: str
    event: str = "message"
    id: str | None = None
    retry: int | None = None


class SSEDecoder:
    """Decode an event stream incrementally: bytes in, :class:`SSEEvent` out.

    Examples
    --------
    >>> decoder = SSEDecoder()
    >>> decoder.feed(b"\\xef\\xbb")
    []
    >>> [e.data for e in decoder.feed(b"\\xbfdata: a\\r")]
    []
    >>> [e.data for e in decoder.feed(b"\\n\\r\\n")]
    ['a']
    """

    def __init__(self) -> None:
        self._text = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._at_start = True
        self._after_cr = False
        self._line = ""
        self._data: list[str] = []
        self._event = ""
        self._last_id: str | None = None
        self._retry: int | None = None

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        """Decode one chunk and return the events it completes."""
        return self._feed_text(self._text.decode(chunk))

    def close(self) -> list[SSEEvent]:
        """Finish the stream; an event without its closing blank line is dropped."""
        events = self._feed_text(self._text.decode(b"", final=True))
        self._line = ""
        self._data = []
        return events

    def _feed_text(self, text: str) -> list[SSEEvent]:
        if self._at_start and text:
            # Only the very first character of the stream may be a BOM.
            self._at_start = False
            if text.startswith(_BOM):
                text = text[1:]
        events: list[SSEEvent] = []
        start = 0
        for index, char in enumerate(text):
            if char not in "\r\n":
                continue
            if char == "\n" and self._after_cr and index == start:
                # The LF of a CRLF whose CR ended the previous line.
                self._after_cr = False
                start = index + 1
                continue
            self._after_cr = char == "\r"
            event = self._process_line(self._line + text[start:index])
            self._line = ""
            if event is not None:
                events.append(event)
            start = index + 1
        if start < len(text):
            self._after_cr = False
            self._line += text[start:]
        return events

    def _process_line(self, line: str) -> SSEEvent | None:
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id" and "\0" not in value:
            self._last_id = value
        elif name == "retry" and value.isascii() and value.isdigit():
            self._retry = int(value)
        return None

    def _dispatch(self) -> SSEEvent | None:
        data, event = self._data, self._event
        self._data, self._event = [], ""
        if not data:
            return None
        return SSEEvent("\n".join(data), event or "message", self._last_id, self._retry)


def _envelope(event: SSEEvent) -> dict[str, Any]:
    try:
        envelope = json.loads(event.data)
    except json.JSONDecodeError as exc:
        message = f"stream event is not JSON: {event.data[:80]!r}"
        raise StreamError(message) from exc
    if not isinstance(envelope, dict) or "type" not in envelope:
        message = f"stream event has no envelope type: {event.data[:80]!r}"
        raise StreamError(message)
    return envelope


class _Contract:
    """Track the stream contract: terminal envelope, then ``[DONE]``."""

    def __init__(self) -> None:
        self.terminal: str | None = None
        self.done = False
        self.count = 0

    def accept(self, event: SSEEvent) -> dict[str, Any] | None:
        if event.data == DONE:
            self.done = True
            return None
        envelope = _envelope(event)
        self.count += 1
        if envelope["type"] in TERMINAL_TYPES:
            self.terminal = str(envelope["type"])
        return envelope

    def finish(self) -> None:
        if not self.done:
            message = (
                f"event stream ended after {self.count} events without [DONE]; "
                "the output is incomplete, retry the request"
            )
            raise StreamError(message, details={"events": self.count})
        if self.terminal is None:
            message = (
                f"event stream closed after {self.count} events without a "
                "final_result or error event; the output is incomplete"
            )
            raise StreamError(message, details={"events": self.count})


def iter_envelopes(chunks: Iterable[bytes]) -> Iterator[dict[str, Any]]:
    """Yield the JSON envelopes of an omnitwin event stream read from ``chunks``.

    Raises
    ------
    StreamError
        The stream ended without ``[DONE]``, or reached ``[DONE]`` without a
        ``final_result`` or ``error`` envelope, or carried an event that is not
        a JSON envelope. Envelopes before the failure are yielded first.

    Examples
    --------
    >>> body = [b'data: {"type": "final_result", "body": 1}\\n\\n',
    ...         b"data: [DONE]\\n\\n"]
    >>> [e["type"] for e in iter_envelopes(body)]
    ['final_result']
    """
    decoder = SSEDecoder()
    contract = _Contract()
    for chunk in chunks:
        for event in decoder.feed(chunk):
            envelope = contract.accept(event)
            if contract.done:
                return contract.finish()
            if envelope is not None:
                yield envelope
    decoder.close()
    contract.finish()


async def aiter_envelopes(
    chunks: AsyncIterable[bytes],
) -> AsyncIterator[dict[str, Any]]:
    """Yield the envelopes of an event stream read asynchronously; see
    :func:`iter_envelopes`."""
    decoder = SSEDecoder()
    contract = _Contract()
    async for chunk in chunks:
        for event in decoder.feed(chunk):
            envelope = contract.accept(event)
            if contract.done:
                contract.finish()
                return
            if envelope is not None:
                yield envelope
    decoder.close()
    contract.finish()
