"""The ``client.agents`` namespace: agent commands as typed event streams.

On :class:`~omnitwin.Client`, :meth:`Agents.command` is a plain generator of
:class:`~omnitwin.models.StreamEvent`; on :class:`~omnitwin.AsyncClient` it
is an async generator. Over HTTP the events come from the server's SSE
stream. In process, the engine produces them on an async generator that the
sync client drives on a private event-loop thread, so it also works inside
Jupyter, whose own loop is already running.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
from collections.abc import AsyncIterator, Awaitable, Iterator
from typing import Any, Literal, Protocol, overload

from omnitwin.errors import OmniTwinError, StreamError, error_class_for_code
from omnitwin.models import Page, Session, StreamEvent

__all__ = ["Agents", "AsyncAgents"]

Command = str | dict[str, Any]


class _Backend(Protocol):
    def call(self, operation: str, params: dict[str, Any]) -> Any: ...

    async def acall(self, operation: str, params: dict[str, Any]) -> Any: ...


def _command_params(
    command: Command, session_id: str | None, model: str | None
) -> dict[str, Any]:
    if isinstance(command, dict):
        params: dict[str, Any] = {"tool": command.get("tool")}
        params["args"] = command.get("args", {})
    else:
        params = {"command": command}
    if session_id is not None:
        params["session_id"] = session_id
    if model is not None:
        params["model"] = model
    return params


def _error(body: Any) -> OmniTwinError:
    body = body if isinstance(body, dict) else {"message": str(body)}
    code = str(body.get("code", "internal"))
    details = body.get("details") if isinstance(body.get("details"), dict) else None
    return error_class_for_code(code)(str(body.get("message", code)), details=details)


class _Contract:
    """Check that a stream reaches a terminal event; convert envelopes."""

    def __init__(self) -> None:
        self.count = 0
        self.terminal: StreamEvent | None = None

    def accept(self, envelope: dict[str, Any]) -> StreamEvent:
        event = StreamEvent.from_dict(envelope)
        self.count += 1
        if event.terminal:
            self.terminal = event
        return event

    def finish(self) -> StreamEvent:
        if self.terminal is None:
            message = (
                f"agent stream ended after {self.count} events without a "
                "final_result or error event; the output is incomplete"
            )
            raise StreamError(message, details={"events": self.count})
        return self.terminal


def _result_of(terminal: StreamEvent) -> Any:
    if terminal.type == "error":
        raise _error(terminal.body)
    return terminal.body


# --- the private event loop of the sync client --------------------------------

logger = logging.getLogger(__name__)

# Seconds that closing a sync stream waits for the private loop. The close
# goes on after that, because the garbage collector may close a stream on a
# thread that has a lock the close needs, and must let go of it.
_CLOSE_WAIT_SECONDS = 5.0

_loop_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None
_loop_thread: threading.Thread | None = None


def _private_loop() -> asyncio.AbstractEventLoop:
    """Return the event loop thread that sync clients drive async streams on."""
    global _loop, _loop_thread
    with _loop_lock:
        running = _loop_thread is not None and _loop_thread.is_alive()
        if _loop is None or _loop.is_closed() or not running:
            # A forked child inherits the loop but not its thread.
            loop = asyncio.new_event_loop()
            thread = threading.Thread(
                target=loop.run_forever, name="omnitwin-agent-loop", daemon=True
            )
            thread.start()
            _loop, _loop_thread = loop, thread
        return _loop


async def _next(stream: AsyncIterator[dict[str, Any]]) -> dict[str, Any]:
    return await anext(stream)


async def _close(stream: AsyncIterator[dict[str, Any]]) -> None:
    close = getattr(stream, "aclose", None)
    if close is not None:
        await close()


def _drive(stream: AsyncIterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Iterate an async iterator from sync code, on the private loop."""
    loop = _private_loop()
    try:
        while True:
            future = asyncio.run_coroutine_threadsafe(_next(stream), loop)
            try:
                item = future.result()
            except StopAsyncIteration:
                return
            yield item
    finally:
        closing = asyncio.run_coroutine_threadsafe(_close(stream), loop)
        # On the loop's own thread, waiting would block the loop forever, and
        # at interpreter exit the loop no longer runs.
        if threading.current_thread() is not _loop_thread and not sys.is_finalizing():
            try:
                closing.result(timeout=_CLOSE_WAIT_SECONDS)
            except TimeoutError:
                logger.warning(
                    "closing an agent stream timed out after %s s, so it "
                    "finishes in the background",
                    _CLOSE_WAIT_SECONDS,
                )


class Agents:
    """Agent commands and sessions: ``client.agents``.

    Examples
    --------
    >>> import omnitwin
    >>> with omnitwin.Client() as client:
    ...     _ = client.subnets.create("10.128.0.0/16", is_container=True)
    ...     events = list(client.agents.command("free /24 in 10.128.0.0/16"))
    >>> [event.type for event in events]
    ['agent_status', 'agent_tool_call', 'data_chunk', 'final_result']
    >>> events[-1].body["result"]["blocks"][:2]
    ['10.128.0.0/24', '10.128.1.0/24']
    """

    def __init__(self, backend: _Backend) -> None:
        self._backend = backend

    def _envelopes(
        self, operation: str, params: dict[str, Any]
    ) -> Iterator[dict[str, Any]]:
        stream = getattr(self._backend, "stream", None)
        if stream is not None:
            yield from stream(operation, params)
            return
        yield from _drive(self._backend.call(operation, params))

    def _events(self, operation: str, params: dict[str, Any]) -> Iterator[StreamEvent]:
        contract = _Contract()
        for envelope in self._envelopes(operation, params):
            yield contract.accept(envelope)
        contract.finish()

    @overload
    def command(
        self,
        command: Command,
        *,
        session_id: str | None = ...,
        model: str | None = ...,
        stream: Literal[True] = ...,
    ) -> Iterator[StreamEvent]: ...

    @overload
    def command(
        self,
        command: Command,
        *,
        session_id: str | None = ...,
        model: str | None = ...,
        stream: Literal[False],
    ) -> Any: ...

    def command(
        self,
        command: Command,
        *,
        session_id: str | None = None,
        model: str | None = None,
        stream: bool = True,
    ) -> Any:
        """Run an agent command.

        Parameters
        ----------
        command : str or dict
            Plain English, or ``{"tool": name, "args": {...}}``.
        session_id : str, optional
            Continue this session; it must not have expired.
        model : str, optional
            Plan with this model through an OpenAI-compatible endpoint.
        stream : bool
            True (default) returns a generator of :class:`StreamEvent`;
            False returns the body of the ``final_result`` event.

        Raises
        ------
        OmniTwinError
            With ``stream=False``, the error of an ``error`` event as its
            exception class; always, a session that cannot be continued.
        StreamError
            The stream ended without a ``final_result`` or ``error`` event.
        """
        params = _command_params(command, session_id, model)
        if stream:
            return self._events("agents.command", params)
        if getattr(self._backend, "stream", None) is not None:
            # The server collects the events and returns the final result.
            return self._backend.call("agents.command", params)["data"]
        contract = _Contract()
        for envelope in self._envelopes("agents.command", params):
            contract.accept(envelope)
        return _result_of(contract.finish())

    def sessions(
        self, *, status: str | None = None, page: int = 1, per_page: int = 50
    ) -> Page[Session]:
        """List sessions, most recently active first; ``status`` is ``active``,
        ``running``, ``completed``, ``failed`` or ``expired``."""
        params: dict[str, Any] = {"page": page, "per_page": per_page}
        if status is not None:
            params["status"] = status
        result: Page[Session] = self._backend.call("agents.sessions", params)
        return result

    def session(self, session_id: str) -> Session:
        """Return one session with its status and telemetry."""
        result: Session = self._backend.call("agents.session", {"id": session_id})
        return result

    def events(self, session_id: str, *, after_seq: int = 0) -> Iterator[StreamEvent]:
        """Replay a session's events; while a command runs, follow it live."""
        params: dict[str, Any] = {"id": session_id}
        if after_seq:
            params["after_seq"] = after_seq
        return self._events("agents.events", params)


class AsyncAgents:
    """Agent commands and sessions of an :class:`~omnitwin.AsyncClient`."""

    def __init__(self, backend: _Backend) -> None:
        self._backend = backend

    async def _envelopes(
        self, operation: str, params: dict[str, Any]
    ) -> AsyncIterator[dict[str, Any]]:
        astream = getattr(self._backend, "astream", None)
        if astream is not None:
            async for envelope in astream(operation, params):
                yield envelope
            return
        stream: AsyncIterator[dict[str, Any]] = await self._backend.acall(
            operation, params
        )
        try:
            async for envelope in stream:
                yield envelope
        finally:
            await _close(stream)

    async def _events(
        self, operation: str, params: dict[str, Any]
    ) -> AsyncIterator[StreamEvent]:
        contract = _Contract()
        async for envelope in self._envelopes(operation, params):
            yield contract.accept(envelope)
        contract.finish()

    async def _result(self, params: dict[str, Any]) -> Any:
        if getattr(self._backend, "astream", None) is not None:
            body = await self._backend.acall("agents.command", params)
            return body["data"]
        contract = _Contract()
        async for envelope in self._envelopes("agents.command", params):
            contract.accept(envelope)
        return _result_of(contract.finish())

    @overload
    def command(
        self,
        command: Command,
        *,
        session_id: str | None = ...,
        model: str | None = ...,
        stream: Literal[True] = ...,
    ) -> AsyncIterator[StreamEvent]: ...

    @overload
    def command(
        self,
        command: Command,
        *,
        session_id: str | None = ...,
        model: str | None = ...,
        stream: Literal[False],
    ) -> Awaitable[Any]: ...

    def command(
        self,
        command: Command,
        *,
        session_id: str | None = None,
        model: str | None = None,
        stream: bool = True,
    ) -> Any:
        """Run an agent command; see :meth:`Agents.command`.

        With ``stream=True`` use ``async for event in ...``; with
        ``stream=False`` await the final result.
        """
        params = _command_params(command, session_id, model)
        if stream:
            return self._events("agents.command", params)
        return self._result(params)

    async def sessions(
        self, *, status: str | None = None, page: int = 1, per_page: int = 50
    ) -> Page[Session]:
        """List sessions, most recently active first."""
        params: dict[str, Any] = {"page": page, "per_page": per_page}
        if status is not None:
            params["status"] = status
        result: Page[Session] = await self._backend.acall("agents.sessions", params)
        return result

    async def session(self, session_id: str) -> Session:
        """Return one session with its status and telemetry."""
        result: Session = await self._backend.acall(
            "agents.session", {"id": session_id}
        )
        return result

    def events(
        self, session_id: str, *, after_seq: int = 0
    ) -> AsyncIterator[StreamEvent]:
        """Replay a session's events; while a command runs, follow it live."""
        params: dict[str, Any] = {"id": session_id}
        if after_seq:
            params["after_seq"] = after_seq
        return self._events("agents.events", params)
