"""Send an async iterator of stream envelopes as SSE, or as one JSON result.

An envelope is a dict ``{type, seq, session, ts, body}``. On the wire each one
becomes ``data: <json>\\n\\n`` and the stream closes with ``data: [DONE]\\n\\n``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from omnitwin.client._sse import DONE
from omnitwin.errors import OmniTwinError, StreamError, error_class_for_code

__all__ = ["encode_event", "event_stream_response", "sse_lines", "wants_event_stream"]

logger = logging.getLogger("omnitwin.server")


def encode_event(envelope: Mapping[str, Any]) -> bytes:
    """Return one envelope as an SSE ``data:`` line followed by a blank line.

    JSON escapes CR and LF inside strings, so the payload is always one line.
    """
    return b"data: " + json.dumps(envelope, separators=(",", ":")).encode() + b"\n\n"


async def sse_lines(
    events: AsyncIterator[dict[str, Any]], request: Request | None = None
) -> AsyncIterator[bytes]:
    """Yield the SSE encoding of ``events`` and then ``data: [DONE]``.

    The producer is closed in every case: when it ends, when it fails, and when
    the client disconnects (Starlette then cancels this generator, or
    ``request`` reports the disconnect between two events).
    """
    try:
        async for envelope in events:
            if request is not None and await request.is_disconnected():
                logger.info("stream client disconnected; stopping the producer")
                return
            yield encode_event(envelope)
        yield f"data: {DONE}\n\n".encode()
    finally:
        close = getattr(events, "aclose", None)
        if close is not None:
            await close()


def wants_event_stream(request: Request) -> bool:
    """Return whether the request's ``Accept`` header requests SSE."""
    return "text/event-stream" in request.headers.get("accept", "").lower()


async def _collect(events: AsyncIterator[dict[str, Any]]) -> list[dict[str, Any]]:
    collected: list[dict[str, Any]] = []
    try:
        async for envelope in events:
            collected.append(envelope)
    finally:
        close = getattr(events, "aclose", None)
        if close is not None:
            await close()
    return collected


def _error_from(envelope: Mapping[str, Any]) -> OmniTwinError:
    body = envelope.get("body") or {}
    code = str(body.get("code", "internal")) if isinstance(body, dict) else "internal"
    message = str(body.get("message", body)) if isinstance(body, dict) else str(body)
    return error_class_for_code(code)(message)


async def event_stream_response(
    request: Request,
    events: AsyncIterator[dict[str, Any]],
    headers: Mapping[str, str] | None = None,
) -> Response:
    """Stream ``events`` as SSE, or return them as one JSON result.

    Without ``Accept: text/event-stream`` the events are collected and the
    response is ``{"data": <final_result body>, "events": [...]}``. A stream
    that ends with an ``error`` envelope raises the matching
    :class:`~omnitwin.errors.OmniTwinError`, so the caller's error handler
    writes the usual error body and status.
    """
    if wants_event_stream(request):
        stream_headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        return StreamingResponse(
            sse_lines(events, request),
            media_type="text/event-stream",
            headers={**stream_headers, **(headers or {})},
        )
    collected = await _collect(events)
    last = collected[-1] if collected else {}
    if last.get("type") == "error":
        raise _error_from(last)
    if last.get("type") != "final_result":
        message = (
            f"the event stream ended after {len(collected)} events without a "
            "final_result or error event"
        )
        raise StreamError(message)
    data = last.get("body")
    return JSONResponse({"data": data, "events": collected}, headers=headers)
