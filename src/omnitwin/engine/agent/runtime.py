"""Agent sessions: run commands through the planners and stream typed events.

:meth:`AgentRuntime.command` returns an async generator of event envelopes
(see :mod:`.events`). The first event is an ``agent_status``, sent before
planning starts. ``agent_tool_call`` and ``data_chunk`` events (tool
results, job progress) follow, and one terminal event ends the command:
``final_result`` or ``error``. Engine and database calls run in worker
threads, so the producer does not block its event loop while they run.

Tools run as the command's issuer: the audit ``actor`` of every write is
the caller's actor (``key:<id>`` over the API, ``user:...`` locally), and
the ``intent`` is ``agent:<session id>: <command text>``, so the audit trail
records both who asked and which agent session acted.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable, Generator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, cast

from omnitwin._ids import new_id
from omnitwin.engine.agent import events as ev
from omnitwin.engine.agent.catalog import EngineCatalog
from omnitwin.engine.agent.llm import LLMPlanner, LLMToolCall
from omnitwin.engine.agent.planner import Plan, ToolCall, plan_command
from omnitwin.engine.agent.refusals import CommandNotUnderstood
from omnitwin.engine.agent.sessions import SessionStore, format_time
from omnitwin.engine.agent.summaries import summarize
from omnitwin.engine.agent.tools import TOOLS, ToolRegistry, to_json
from omnitwin.engine.context import Context
from omnitwin.engine.jobs import Job
from omnitwin.errors import Conflict, OmniTwinError, ServerError, ValidationError
from omnitwin.models import Page, Session, Telemetry

if TYPE_CHECKING:
    from omnitwin.engine.engine import Engine

__all__ = ["AgentRuntime"]

logger = logging.getLogger(__name__)

MAX_MODEL_ROUNDS = 8
JOB_WATCH_TIMEOUT = 600.0
Clock = Callable[[], datetime]


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class _Turn:
    """One command of a session while it runs."""

    ctx: Context
    session: str
    text: str
    model: str | None
    seq: int
    buffer: ev.LiveBuffer
    telemetry: Telemetry
    number: int
    started: float = field(default_factory=time.perf_counter)
    steps: list[dict[str, Any]] = field(default_factory=list)
    tokens: dict[str, int] = field(default_factory=dict)
    tool_calls: int = 0
    # The type of the terminal event once it is stored.
    terminal: str | None = None
    # Event writes started and not yet done, which a cancellation leaves
    # running so that no event gets a seq without being stored.
    writes: set[asyncio.Task[None]] = field(default_factory=set)


class AgentRuntime:
    """Run agent commands in persisted sessions over one engine.

    Parameters
    ----------
    engine : Engine
        The engine whose services the tools call.
    clock : callable, optional
        Returns the current UTC time; tests pass a fake one to expire
        sessions without waiting 24 hours.
    llm_url, llm_key : str, optional
        The OpenAI-compatible endpoint for commands with a ``model``;
        default ``OMNITWIN_LLM_URL`` and ``OMNITWIN_LLM_KEY``.

    Examples
    --------
    >>> import asyncio
    >>> from omnitwin.engine.engine import Engine
    >>> engine = Engine(":memory:")
    >>> async def run() -> list[str]:
    ...     stream = engine.agents.command(Context(), "show subnet 10.9.0.0/24")
    ...     return [event["type"] async for event in stream]
    >>> asyncio.run(run())
    ['agent_status', 'agent_tool_call', 'error']
    >>> engine.close()
    """

    def __init__(
        self,
        engine: Engine,
        *,
        clock: Clock | None = None,
        llm_url: str | None = None,
        llm_key: str | None = None,
    ) -> None:
        self.engine = engine
        self.clock: Clock = clock or _utc_now
        self.registry = ToolRegistry(TOOLS)
        self.store = SessionStore(engine.store)
        self.llm_url = llm_url
        self.llm_key = llm_key
        self._live: dict[str, ev.LiveBuffer] = {}
        self._lock = threading.Lock()
        # Tasks that end commands; the loop keeps only weak references.
        self._closing: set[asyncio.Task[None]] = set()

    # -- reading sessions ------------------------------------------------------

    def session(self, ctx: Context, session_id: str) -> Session:
        """Return one session with its status and telemetry."""
        return self.store.get(ctx, session_id, self.clock())

    def sessions(
        self,
        ctx: Context,
        *,
        status: str | None = None,
        page: int = 1,
        per_page: int = 50,
    ) -> Page[Session]:
        """List sessions, most recently active first; ``status="active"`` leaves
        out expired ones."""
        return self.store.list(
            ctx, self.clock(), status=status, page=page, per_page=per_page
        )

    def events(
        self, ctx: Context, session_id: str, *, after_seq: int = 0
    ) -> AsyncIterator[dict[str, Any]]:
        """Return the events of a session: stored ones, then live ones while a
        command runs.

        Raises
        ------
        NotFound
            If the session does not exist in the caller's workspace.
        ValidationError
            If ``after_seq`` is negative, or not below the last ``seq`` of a
            session that runs no command, so that nothing would be replayed.
        """
        session = self.session(ctx, session_id)
        with self._lock:
            live = session_id in self._live
        beyond_end = after_seq > session.events or (
            after_seq == session.events and not live
        )
        if after_seq < 0 or beyond_end:
            message = (
                f"after_seq {after_seq} leaves nothing to replay: session "
                f"{session_id} has events 1 to {session.events}; use 0 to "
                f"{session.events - 1}"
            )
            raise ValidationError(message, details={"after_seq": after_seq})
        return self._replay(ctx, session_id, after_seq)

    async def _replay(
        self, ctx: Context, session_id: str, after_seq: int
    ) -> AsyncIterator[dict[str, Any]]:
        with self._lock:
            buffer = self._live.get(session_id)
        stored = await asyncio.to_thread(self.store.events, ctx, session_id, after_seq)
        last = after_seq
        for event in stored:
            last = event["seq"]
            yield event
        if buffer is not None:
            async for event in buffer.follow(last):
                last = event["seq"]
                yield event
        if last == after_seq:
            # The command ended between the check in events() and this replay.
            message = f"after_seq {after_seq} leaves nothing to replay"
            raise ValidationError(message, details={"after_seq": after_seq})

    # -- running commands ------------------------------------------------------

    def command(
        self,
        ctx: Context,
        command: str | dict[str, Any],
        *,
        session_id: str | None = None,
        model: str | None = None,
    ) -> AsyncIterator[dict[str, Any]]:
        """Run a command and return the async generator of its events.

        Parameters
        ----------
        ctx : Context
            The issuer; tools run with its workspace and actor.
        command : str or dict
            Plain English, or ``{"tool": name, "args": {...}}``.
        session_id : str, optional
            Continue this session instead of starting a new one.
        model : str, optional
            Plan with this model through the OpenAI-compatible endpoint
            instead of the offline planner.

        Raises
        ------
        NotFound
            ``session_id`` names no session of the workspace.
        Conflict
            The session expired after 24 hours idle, or runs another command.
        ValidationError
            The command is neither text nor a structured object.
        """
        text = _command_text(command)
        if session_id is not None:
            self._check_continuable(ctx, session_id)
        return self._run(ctx, command, text, session_id, model)

    def _check_continuable(self, ctx: Context, session_id: str) -> None:
        session = self.session(ctx, session_id)
        if session.status == "expired":
            message = (
                f"agent session {session_id} expired at {session.expires_at} after "
                "24 hours idle; start a new session by omitting session_id"
            )
            raise Conflict(message, details={"id": session_id, "reason": "expired"})
        with self._lock:
            running = session_id in self._live
        if running or session.status == "running":
            message = (
                f"agent session {session_id} is running a command; wait for its "
                "final_result or error event, then continue it"
            )
            raise Conflict(message, details={"id": session_id, "reason": "running"})

    async def _run(
        self,
        ctx: Context,
        command: str | dict[str, Any],
        text: str,
        session_id: str | None,
        model: str | None,
    ) -> AsyncIterator[dict[str, Any]]:
        begin = asyncio.ensure_future(
            asyncio.to_thread(self._begin, ctx, text, session_id, model)
        )
        try:
            turn = await asyncio.shield(begin)
        except asyncio.CancelledError:
            # _begin goes on in its thread and opens the session, so end the
            # session once it returns.
            begin.add_done_callback(self._end_abandoned)
            raise
        try:
            planner = f"model {model}" if model else "the offline planner"
            yield await self._emit(
                turn,
                ev.AGENT_STATUS,
                {"state": "planning", "message": f"planning with {planner}: {text}"},
            )
            if model:
                produce = self._run_model(turn, model)
            else:
                produce = self._run_plan(turn, command)
            async for event in produce:
                yield event
        except OmniTwinError as exc:
            yield await self._emit(turn, ev.ERROR, _error_body(exc))
        except Exception as exc:
            logger.exception("agent session %s failed", turn.session)
            error = ServerError(f"the agent failed: {type(exc).__name__}: {exc}")
            yield await self._emit(turn, ev.ERROR, _error_body(error))
        finally:
            # One task for all closing steps: Starlette cancels a disconnected
            # stream again at each await, which would skip a second step.
            await asyncio.shield(self._start_closing(turn))

    def _start_closing(self, turn: _Turn) -> asyncio.Task[None]:
        """Start the task that ends a command, and keep it until it is done."""
        task = asyncio.ensure_future(self._close_turn(turn))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)
        return task

    async def _close_turn(self, turn: _Turn) -> None:
        try:
            if turn.writes:
                await asyncio.gather(*turn.writes, return_exceptions=True)
            if turn.terminal is None:
                # The consumer stopped early: store an error event so that a
                # replay of this command still ends with a terminal event.
                stopped = ServerError(
                    "the stream was closed before the command finished"
                )
                await self._emit(turn, ev.ERROR, _error_body(stopped))
        finally:
            status = "completed" if turn.terminal == ev.FINAL_RESULT else "failed"
            await asyncio.to_thread(self._finish, turn, status)

    def _end_abandoned(self, begin: asyncio.Future[_Turn]) -> None:
        """End the session of a command cancelled while it was starting."""
        if not begin.cancelled() and begin.exception() is None:
            self._start_closing(begin.result())

    def _begin(
        self, ctx: Context, text: str, session_id: str | None, model: str | None
    ) -> _Turn:
        now = self.clock()
        buffer = ev.LiveBuffer()
        continued = session_id is not None
        session_id = session_id or new_id("sess")
        with self._lock:
            if session_id in self._live:
                message = f"agent session {session_id} is running a command"
                raise Conflict(message, details={"id": session_id})
            self._live[session_id] = buffer
        try:
            if continued:
                session = self.store.get(ctx, session_id, now)
                self.store.resume(ctx, session_id, text, now)
                telemetry, seq = session.telemetry, session.events
                number = session.turns + 1
                if model:
                    telemetry = replace(telemetry, model=model)
            else:
                self.store.create(ctx, session_id, text, model, now)
                telemetry, seq, number = Telemetry(model=model), 0, 1
        except BaseException:
            # Followers of the session would otherwise wait for it forever.
            buffer.finish()
            with self._lock:
                self._live.pop(session_id, None)
            raise
        logger.info("agent session %s command %d by %s", session_id, number, ctx.actor)
        intent = f"agent:{session_id}: {text}"
        tool_ctx = Context(workspace=ctx.workspace, actor=ctx.actor, intent=intent)
        return _Turn(tool_ctx, session_id, text, model, seq, buffer, telemetry, number)

    def _finish(self, turn: _Turn, status: str) -> None:
        duration = (time.perf_counter() - turn.started) * 1000
        old = turn.telemetry
        telemetry = Telemetry(
            model=turn.model or old.model,
            prompt_tokens=old.prompt_tokens + turn.tokens.get("prompt_tokens", 0),
            completion_tokens=old.completion_tokens
            + turn.tokens.get("completion_tokens", 0),
            total_tokens=old.total_tokens + turn.tokens.get("total_tokens", 0),
            tool_calls=old.tool_calls + turn.tool_calls,
            steps=[*old.steps, *turn.steps],
            duration_ms=round(old.duration_ms + duration, 3),
        )
        try:
            self.store.finish(turn.ctx, turn.session, status, telemetry, self.clock())
        finally:
            turn.buffer.finish()
            with self._lock:
                self._live.pop(turn.session, None)
        logger.info(
            "agent session %s command %d %s in %.1f ms",
            turn.session,
            turn.number,
            status,
            duration,
        )

    async def _emit(self, turn: _Turn, event_type: str, body: Any) -> dict[str, Any]:
        turn.seq += 1
        stamp = format_time(self.clock())
        event = ev.make_event(event_type, turn.seq, turn.session, stamp, to_json(body))
        write = asyncio.ensure_future(asyncio.to_thread(self._store_event, turn, event))
        turn.writes.add(write)
        write.add_done_callback(turn.writes.discard)
        await asyncio.shield(write)
        return event

    def _store_event(self, turn: _Turn, event: dict[str, Any]) -> None:
        self.store.append_event(turn.ctx, event)
        turn.buffer.append(event)
        if event["type"] in ev.TERMINAL_TYPES:
            turn.terminal = event["type"]

    def _step(self, turn: _Turn, name: str, started: float) -> None:
        latency = round((time.perf_counter() - started) * 1000, 3)
        turn.steps.append({"turn": turn.number, "step": name, "latency_ms": latency})

    # -- the offline planner ---------------------------------------------------

    async def _run_plan(
        self, turn: _Turn, command: str | dict[str, Any]
    ) -> AsyncIterator[dict[str, Any]]:
        started = time.perf_counter()
        plan: Plan = await asyncio.to_thread(self._plan, turn.ctx, command)
        self._step(turn, "plan", started)
        if plan.notes:
            status = {"state": "planned", "message": "; ".join(plan.notes)}
            yield await self._emit(turn, ev.AGENT_STATUS, status)
        tool, result = "", None
        for call in plan.calls:
            tool = call.tool
            async for event in self._call_tool(turn, call):
                if event["type"] == ev.DATA_CHUNK and "result" in event["body"]:
                    result = event["body"]["result"]
                yield event
        body: dict[str, Any] = {
            "tool": tool,
            "summary": summarize(tool, result),
            "result": result,
            "notes": plan.notes,
        }
        yield await self._emit(turn, ev.FINAL_RESULT, body)

    def _plan(self, ctx: Context, command: str | dict[str, Any]) -> Plan:
        return plan_command(command, EngineCatalog(self.engine, ctx))

    async def _call_tool(
        self, turn: _Turn, call: ToolCall
    ) -> AsyncIterator[dict[str, Any]]:
        args = self.registry.validate(call.tool, call.args)
        body = {"fn": call.tool, "args": args}
        yield await self._emit(turn, ev.AGENT_TOOL_CALL, body)
        tool = self.registry.get(call.tool)
        started = time.perf_counter()
        turn.tool_calls += 1
        try:
            result = await asyncio.to_thread(tool.function, self.engine, turn.ctx, args)
        finally:
            self._step(turn, call.tool, started)
        if isinstance(result, Job):
            async for event in self._watch(turn, call.tool, result):
                yield event
            return
        yield await self._emit(
            turn, ev.DATA_CHUNK, {"tool": call.tool, "result": to_json(result)}
        )

    async def _watch(
        self, turn: _Turn, tool: str, job: Job
    ) -> AsyncIterator[dict[str, Any]]:
        """Stream a job's progress as data_chunk events until it ends or waits."""
        watch = self.engine.jobs.watch(turn.ctx, job.id, timeout=JOB_WATCH_TIMEOUT)
        snapshots = cast(Generator[Job, None, None], watch)
        latest = job
        step: asyncio.Future[Job | None] | None = None
        try:
            while True:
                step = asyncio.ensure_future(asyncio.to_thread(next, snapshots, None))
                # Shielded, so that a cancellation leaves the step running
                # and the finally block can tell that it still runs.
                snapshot = await asyncio.shield(step)
                if snapshot is None:
                    break
                latest = snapshot
                progress = {
                    "job": snapshot.id,
                    "status": snapshot.status,
                    "processed": snapshot.processed,
                    "total": snapshot.total,
                }
                yield await self._emit(
                    turn, ev.DATA_CHUNK, {"tool": tool, "progress": progress}
                )
        finally:
            if step is not None and not step.done():
                # The watcher runs in its thread until the job changes, and a
                # running generator cannot be closed, so close it after that.
                step.add_done_callback(lambda _: snapshots.close())
            else:
                snapshots.close()
        if latest.status == "failed":
            message = f"job {latest.id} failed: {latest.error}"
            raise ServerError(message, details={"job": latest.id})
        yield await self._emit(
            turn, ev.DATA_CHUNK, {"tool": tool, "result": to_json(latest)}
        )

    # -- the LLM planner -------------------------------------------------------

    async def _run_model(
        self, turn: _Turn, model: str
    ) -> AsyncIterator[dict[str, Any]]:
        planner = LLMPlanner(model, self.registry, url=self.llm_url, key=self.llm_key)
        # NOTE: each command starts a new conversation; the model does not see
        # the earlier commands of the session.
        messages = planner.first_messages(turn.text)
        tool, result = "", None
        for round_number in range(1, MAX_MODEL_ROUNDS + 1):
            started = time.perf_counter()
            reply = await planner.complete(messages)
            self._step(turn, f"model round {round_number}", started)
            for name, count in reply.usage.items():
                turn.tokens[name] = turn.tokens.get(name, 0) + count
            if not reply.tool_calls:
                body: dict[str, Any] = {
                    "tool": tool or None,
                    "summary": reply.content or summarize(tool, result),
                    "answer": reply.content,
                    "result": result,
                    "usage": dict(turn.tokens),
                }
                yield await self._emit(turn, ev.FINAL_RESULT, body)
                return
            messages.append(reply.message)
            for call in reply.tool_calls:
                outcome: Any = None
                async for event in self._model_tool(turn, call):
                    if event["type"] == ev.DATA_CHUNK:
                        outcome = event["body"].get("result", event["body"])
                    yield event
                if isinstance(outcome, dict) and "error" not in outcome:
                    tool, result = call.name, outcome
                messages.append(planner.tool_message(call, outcome))
        message = (
            f"model {model} did not finish within {MAX_MODEL_ROUNDS} rounds of "
            "tool calls; rephrase the command or use the offline planner"
        )
        raise ValidationError(message, details={"model": model})

    async def _model_tool(
        self, turn: _Turn, call: LLMToolCall
    ) -> AsyncIterator[dict[str, Any]]:
        """Run a model's tool call; errors go back to the model as the result."""
        try:
            if call.error is not None:
                message = f"arguments of {call.name} are {call.error}"
                raise ValidationError(message, details={"tool": call.name})
            async for event in self._call_tool(turn, ToolCall(call.name, call.args)):
                yield event
        except OmniTwinError as exc:
            body = {"tool": call.name, "error": _error_body(exc)}
            yield await self._emit(turn, ev.DATA_CHUNK, body)


def _command_text(command: str | dict[str, Any]) -> str:
    if isinstance(command, dict):
        return json.dumps(command, sort_keys=True, separators=(",", ":"))
    if isinstance(command, str):
        return command.strip()
    message = (
        f"a command is text or {{'tool': ..., 'args': ...}}, not "
        f"{type(command).__name__}"
    )
    raise ValidationError(message)


def _error_body(error: OmniTwinError) -> dict[str, Any]:
    suggestions = error.suggestions if isinstance(error, CommandNotUnderstood) else None
    if suggestions is None:
        found = error.details.get("candidates")
        suggestions = list(found) if isinstance(found, list) else None
    return ev.error_body(error, suggestions)
