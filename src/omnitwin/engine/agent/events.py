"""Event envelopes of agent streams and the live buffer of a running session.

Every event is a JSON envelope ``{type, seq, session, ts, body}``. ``seq``
increases strictly over the whole life of a session, across its commands, so
a replay can be compared with what was streamed live. Each command ends with
exactly one terminal event: ``final_result`` on success, ``error`` on failure.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from typing import Any, Final

from omnitwin.errors import OmniTwinError

__all__ = [
    "AGENT_STATUS",
    "AGENT_TOOL_CALL",
    "DATA_CHUNK",
    "ERROR",
    "EVENT_TYPES",
    "FINAL_RESULT",
    "TERMINAL_TYPES",
    "LiveBuffer",
    "error_body",
    "make_event",
]

AGENT_STATUS: Final = "agent_status"
DATA_CHUNK: Final = "data_chunk"
AGENT_TOOL_CALL: Final = "agent_tool_call"
FINAL_RESULT: Final = "final_result"
ERROR: Final = "error"
EVENT_TYPES = (AGENT_STATUS, DATA_CHUNK, AGENT_TOOL_CALL, FINAL_RESULT, ERROR)
TERMINAL_TYPES = frozenset({FINAL_RESULT, ERROR})


def make_event(
    event_type: str, seq: int, session: str, ts: str, body: Any
) -> dict[str, Any]:
    """Return one envelope; ``event_type`` must be one of :data:`EVENT_TYPES`."""
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown event type {event_type!r}; use one of {EVENT_TYPES}")
    return {"type": event_type, "seq": seq, "session": session, "ts": ts, "body": body}


def error_body(
    error: OmniTwinError, suggestions: list[str] | None = None
) -> dict[str, Any]:
    """Return the body of an ``error`` event: code, message, details, suggestions.

    ``code`` is an API error code of :mod:`omnitwin.errors`, so a client
    raises the same exception class that the engine raised.
    """
    body: dict[str, Any] = {"code": error.code, "message": error.message}
    if error.details:
        body["details"] = error.details
    if suggestions:
        body["suggestions"] = suggestions
    return body


class LiveBuffer:
    """The events of a session's running command, for live followers.

    The producer appends from its event loop; followers may run on another
    loop or thread (a server request, a notebook's client), so the buffer
    uses a thread condition, and async followers wait for it in a worker
    thread.
    """

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.finished = False
        self._changed = threading.Condition()

    def append(self, event: dict[str, Any]) -> None:
        """Add an event and wake the followers."""
        with self._changed:
            self.events.append(event)
            self._changed.notify_all()

    def finish(self) -> None:
        """Mark the command as over and wake the followers."""
        with self._changed:
            self.finished = True
            self._changed.notify_all()

    def _wait(self, seen: int, timeout: float) -> None:
        with self._changed:
            if len(self.events) <= seen and not self.finished:
                self._changed.wait(timeout)

    async def follow(self, after_seq: int = 0) -> AsyncIterator[dict[str, Any]]:
        """Yield the events with ``seq`` above ``after_seq`` until the command ends."""
        index = 0
        while True:
            with self._changed:
                pending = self.events[index:]
                finished = self.finished
            index += len(pending)
            for event in pending:
                if event["seq"] > after_seq:
                    yield event
            if finished and index >= len(self.events):
                return
            if not pending:
                await asyncio.to_thread(self._wait, index, 0.5)
