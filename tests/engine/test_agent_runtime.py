"""Agent sessions: event streams, continuation, replay, expiry, audit, clients,
and the LLM planner.

The LLM test runs against a small OpenAI-compatible HTTP server that the
test starts on 127.0.0.1. Its responses are hand-written JSON in the
documented chat-completions shape (``choices[0].message.tool_calls``,
``finish_reason``, ``usage``); they were not recorded from a real model.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from _agentdata import load_agent_sample

import omnitwin
from omnitwin.client._agents import _private_loop
from omnitwin.engine.agent.runtime import AgentRuntime
from omnitwin.engine.agent.summaries import summarize
from omnitwin.engine.context import Context
from omnitwin.engine.engine import Engine
from omnitwin.errors import Conflict, NotFound, PermissionDenied, ValidationError
from omnitwin.models import StreamEvent

ALLOCATE = "Allocate a /24 for the payments service in us-east"


@pytest.fixture(scope="module")
def sample_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A DuckDB file with the agent sample network, copied by each test."""
    path = tmp_path_factory.mktemp("agent-sample") / "sample.duckdb"
    client = omnitwin.Client(f"local:{path}", actor="user:test")
    load_agent_sample(client)
    client.backend.engine.close()  # type: ignore[attr-defined]
    return path


@pytest.fixture
def db(sample_db: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "twin.duckdb"
    copy.write_bytes(sample_db.read_bytes())
    return copy


@pytest.fixture
def engine(db: Path) -> Iterator[Engine]:
    eng = Engine(db)
    yield eng
    eng.close()


@pytest.fixture
def client(db: Path) -> Iterator[omnitwin.Client]:
    with omnitwin.Client(f"local:{db}", actor="user:alice@example.com") as c:
        yield c
    c.backend.engine.close()  # type: ignore[attr-defined]


ISSUER = Context(actor="user:test")


async def collect(
    runtime: AgentRuntime, command: Any, **options: Any
) -> list[dict[str, Any]]:
    return [event async for event in runtime.command(ISSUER, command, **options)]


async def replay(runtime: AgentRuntime, session: str) -> list[dict[str, Any]]:
    return [event async for event in runtime.events(ISSUER, session)]


def run(coroutine: Any) -> Any:
    return asyncio.run(coroutine)


# --- streams and sessions ---------------------------------------------------------


def test_concurrent_sessions_do_not_interleave(engine: Engine) -> None:
    commands = [
        "what breaks if leaf-03 fails",
        "show drift on leaf-01",
        "Find available /24 blocks in 10.128.0.0/16",
        ALLOCATE,
        "path from leaf-01.nyc1 to leaf-02.nyc1",
        "make me a sandwich",
    ]

    async def all_at_once() -> list[list[dict[str, Any]]]:
        runs = [collect(engine.agents, c) for c in commands]
        return list(await asyncio.gather(*runs))

    streams = run(all_at_once())
    sessions = [stream[0]["session"] for stream in streams]
    assert len(set(sessions)) == len(commands)
    for stream, session in zip(streams, sessions, strict=True):
        assert {event["session"] for event in stream} == {session}
        assert [event["seq"] for event in stream] == list(range(1, len(stream) + 1))
        assert stream[-1]["type"] in ("final_result", "error")


def test_continuation_continues_seq(engine: Engine) -> None:
    first = run(collect(engine.agents, "show device core-01"))
    session = first[0]["session"]
    second = run(collect(engine.agents, "blast radius of core-01", session_id=session))
    assert {event["session"] for event in second} == {session}
    assert second[0]["seq"] == first[-1]["seq"] + 1
    assert second[-1]["type"] == "final_result"


def test_continuation_updates_session(engine: Engine) -> None:
    first = run(collect(engine.agents, "show device core-01"))
    session = first[0]["session"]
    run(collect(engine.agents, "blast radius of core-01", session_id=session))
    stored = engine.agents.session(ISSUER, session)
    assert stored.turns == 2
    assert stored.command == "blast radius of core-01"
    assert stored.status == "completed"
    assert stored.telemetry.tool_calls == 2
    assert {step["turn"] for step in stored.telemetry.steps} == {1, 2}
    assert stored.telemetry.duration_ms > 0


def test_replay_equals_live_stream(engine: Engine) -> None:
    live = run(collect(engine.agents, "reconcile leaf-01.nyc1 trusting detected"))
    session = live[0]["session"]
    more = run(collect(engine.agents, "show drift on leaf-01", session_id=session))
    assert run(replay(engine.agents, session)) == live + more


def test_replay_follows_running_command(engine: Engine) -> None:
    async def produce_and_follow() -> tuple[list[Any], list[Any]]:
        stream = engine.agents.command(ISSUER, "reconcile leaf-01 trusting detected")
        first = await anext(stream)
        follower = asyncio.create_task(replay(engine.agents, first["session"]))
        rest = [event async for event in stream]
        return [first, *rest], await follower

    live, followed = run(produce_and_follow())
    assert followed == live
    assert followed[-1]["type"] == "final_result"


def test_closed_stream_still_replays(engine: Engine) -> None:
    async def first_only() -> dict[str, Any]:
        stream = engine.agents.command(ISSUER, "show device core-01")
        try:
            return await anext(stream)
        finally:
            await stream.aclose()  # type: ignore[attr-defined]

    first = run(first_only())
    stored = engine.agents.session(ISSUER, first["session"])
    events = run(replay(engine.agents, first["session"]))
    assert stored.status == "failed"
    assert events[0] == first
    assert events[-1]["type"] == "error"


def test_failed_start_leaves_session_followable(db: Path) -> None:
    writer = Engine(db)
    first = run(collect(writer.agents, "show device core-01"))
    writer.close()
    session = first[0]["session"]
    reader = Engine(db, read_only=True)
    try:
        with pytest.raises(PermissionDenied):
            run(collect(reader.agents, "show device core-01", session_id=session))

        async def follow() -> list[dict[str, Any]]:
            return await asyncio.wait_for(replay(reader.agents, session), 10)

        # The failed start left no live command behind to wait for.
        assert run(follow()) == first
    finally:
        reader.close()


def test_unknown_session_rejected(engine: Engine) -> None:
    with pytest.raises(NotFound):
        engine.agents.command(ISSUER, "show device core-01", session_id="sess_nope")


def test_session_of_other_workspace_hidden(engine: Engine) -> None:
    events = run(collect(engine.agents, "show device core-01"))
    other = Context(workspace="other", actor="user:test")
    with pytest.raises(NotFound):
        engine.agents.session(other, events[0]["session"])


def test_sessions_listed_newest_first(engine: Engine) -> None:
    first = run(collect(engine.agents, "show device core-01"))[0]["session"]
    second = run(collect(engine.agents, "show device core-02"))[0]["session"]
    listed = engine.agents.sessions(ISSUER)
    assert [s.id for s in listed.data][:2] == [second, first]
    assert listed.total == 2


# --- expiry ----------------------------------------------------------------------


class FakeClock:
    """A settable UTC clock."""

    def __init__(self) -> None:
        self.now = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def test_session_expires_after_a_day_idle(engine: Engine) -> None:
    clock = FakeClock()
    runtime = AgentRuntime(engine, clock=clock)
    session = run(collect(runtime, "show device core-01"))[0]["session"]

    clock.now += timedelta(hours=23, minutes=59)
    assert runtime.session(ISSUER, session).status == "completed"
    assert [s.id for s in runtime.sessions(ISSUER, status="active")] == [session]

    clock.now += timedelta(minutes=2)
    assert runtime.session(ISSUER, session).status == "expired"
    assert runtime.sessions(ISSUER, status="active").total == 0
    assert [s.id for s in runtime.sessions(ISSUER, status="expired")] == [session]


def test_expired_session_rejects_continuation(engine: Engine) -> None:
    clock = FakeClock()
    runtime = AgentRuntime(engine, clock=clock)
    session = run(collect(runtime, "show device core-01"))[0]["session"]
    clock.now += timedelta(hours=25)
    with pytest.raises(Conflict, match="expired .* after 24 hours idle"):
        runtime.command(ISSUER, "show device core-02", session_id=session)


def test_continuation_restarts_idle_clock(engine: Engine) -> None:
    clock = FakeClock()
    runtime = AgentRuntime(engine, clock=clock)
    session = run(collect(runtime, "show device core-01"))[0]["session"]
    clock.now += timedelta(hours=20)
    run(collect(runtime, "show device core-02", session_id=session))
    clock.now += timedelta(hours=20)
    assert runtime.session(ISSUER, session).status == "completed"


def test_expired_session_still_replays(engine: Engine) -> None:
    clock = FakeClock()
    runtime = AgentRuntime(engine, clock=clock)
    live = run(collect(runtime, "show device core-01"))
    clock.now += timedelta(days=3)
    assert run(replay(runtime, live[0]["session"])) == live


# --- writes and audit ----------------------------------------------------------


def test_allocation_audits_issuer_and_command(engine: Engine) -> None:
    events = run(collect(engine.agents, ALLOCATE))
    session = events[0]["session"]
    subnet = events[-1]["body"]["result"]
    trail = engine.subnets.audit_trail(ISSUER, subnet["id"]).data
    assert [e.action for e in trail] == ["subnet.create"]
    assert trail[0].actor == "user:test"
    assert trail[0].intent == f"agent:{session}: {ALLOCATE}"


def test_subnet_update_audits_issuer(engine: Engine) -> None:
    command = "Set the owner of 10.1.16.0/24 to team:payments"
    events = run(collect(engine.agents, command))
    subnet = events[-1]["body"]["result"]
    trail = engine.subnets.audit_trail(ISSUER, subnet["id"]).data
    assert subnet["owner"] == "team:payments"
    assert trail[-1].actor == "user:test"
    assert trail[-1].intent == f"agent:{events[0]['session']}: {command}"


def test_reconcile_audits_issuer(engine: Engine) -> None:
    command = "reconcile leaf-01.nyc1 trusting the detected state"
    events = run(collect(engine.agents, command))
    device = engine.devices.get(ISSUER, "leaf-01.nyc1")
    trail = engine.devices.audit_trail(ISSUER, device.id).data
    intents = {e.intent for e in trail if e.actor == "user:test"}
    assert f"agent:{events[0]['session']}: {command}" in intents


def test_reconcile_streams_job_progress(engine: Engine) -> None:
    events = run(collect(engine.agents, "reconcile leaf-01 trusting detected"))
    progress = [e["body"]["progress"] for e in events if "progress" in e["body"]]
    assert progress
    assert progress[-1]["status"] == "completed"
    assert events[-1]["body"]["result"]["status"] == "completed"
    assert engine.devices.get(ISSUER, "leaf-01.nyc1").drift_score == 0.0


def test_cancel_during_write_stores_one_end(engine: Engine) -> None:
    async def cancel_final_write() -> str:
        stream = engine.agents.command(ISSUER, ALLOCATE)
        event = await anext(stream)
        while not (event["type"] == "data_chunk" and "result" in event["body"]):
            event = await anext(stream)
        holding, release = threading.Event(), threading.Event()

        def hold_store() -> None:
            with engine.store.lock:
                holding.set()
                release.wait(30)

        threading.Thread(target=hold_store, daemon=True).start()
        holding.wait(30)
        final = asyncio.ensure_future(anext(stream))
        # The final_result write now waits for the store's lock.
        await asyncio.sleep(0.3)
        final.cancel()
        release.set()
        with pytest.raises(asyncio.CancelledError):
            await final
        session = str(event["session"])
        deadline = time.monotonic() + 20
        while engine.agents.session(ISSUER, session).status == "running":
            assert time.monotonic() < deadline, "the cancelled command never ended"
            await asyncio.sleep(0.05)
        return session

    session = run(cancel_final_write())
    stored = run(replay(engine.agents, session))
    types = [e["type"] for e in stored]
    # The write had begun, so it finished, and no second end was added.
    assert types[-1] == "final_result"
    assert types.count("error") == 0
    assert [e["seq"] for e in stored] == list(range(1, len(stored) + 1))
    assert engine.agents.session(ISSUER, session).status == "completed"


def test_job_watch_cancelled_while_waiting(engine: Engine) -> None:
    release = threading.Event()

    def blocked(handle: Any) -> dict[str, Any]:
        release.wait(30)
        return {}

    job = engine.jobs.submit(ISSUER, "test", {}, blocked)
    turn = engine.agents._begin(ISSUER, "watch a job", None, None)

    async def cancel_second_step() -> BaseException | None:
        events = engine.agents._watch(turn, "test", job)
        await anext(events)
        second = asyncio.ensure_future(anext(events))
        # The watcher thread now waits for the job to change.
        await asyncio.sleep(0.3)
        second.cancel()
        try:
            await second
        except BaseException as exc:
            return exc
        finally:
            # The watcher thread returns once the job ends, and asyncio.run
            # waits for that thread.
            release.set()
        return None

    try:
        outcome = run(cancel_second_step())
    finally:
        release.set()
    engine.agents._finish(turn, "failed")
    # It used to raise "generator already executing" instead.
    assert isinstance(outcome, asyncio.CancelledError)
    assert engine.jobs.wait(ISSUER, job.id, timeout=30).status == "completed"


def test_interactive_reconcile_stops_for_review(engine: Engine) -> None:
    events = run(collect(engine.agents, "reconcile leaf-01.nyc1 interactively"))
    assert events[-1]["type"] == "final_result"
    assert events[-1]["body"]["result"]["status"] == "awaiting_review"


def test_refused_write_changes_nothing(engine: Engine) -> None:
    before = engine.audit.list(ISSUER.workspace).total
    events = run(collect(engine.agents, "allocate a /24 in eu-west"))
    assert events[-1]["type"] == "error"
    assert events[-1]["body"]["details"]["reason"] == "ambiguous"
    assert engine.audit.list(ISSUER.workspace).total == before


def test_error_event_has_code_and_message(engine: Engine) -> None:
    events = run(collect(engine.agents, "show subnet 10.0.83.196/26"))
    body = events[-1]["body"]
    assert body["code"] == "invalid_cidr"
    assert "10.0.83.192/26" in body["message"]


def test_structured_command_runs(engine: Engine) -> None:
    command = {
        "tool": "ipam_search",
        "args": {"prefix_length": 24, "cidr": "10.9.0.0/16"},
    }
    events = run(collect(engine.agents, command))
    assert events[-1]["body"]["result"]["total_free"] == 256


def test_structured_command_schema_error(engine: Engine) -> None:
    command = {"tool": "ipam_search", "args": {"prefix_length": 200, "cidr": "x"}}
    events = run(collect(engine.agents, command))
    assert events[-1]["type"] == "error"
    assert "prefix_length" in events[-1]["body"]["message"]


# --- clients ----------------------------------------------------------------------


def test_sync_client_yields_typed_events(client: omnitwin.Client) -> None:
    events = list(client.agents.command("what breaks if leaf-03 fails"))
    assert all(isinstance(event, StreamEvent) for event in events)
    assert events[-1].type == "final_result"
    assert events[-1].body["result"]["hostnames"][0] == "leaf-03.nyc1"


def test_sync_client_inside_running_loop(client: omnitwin.Client) -> None:
    async def notebook_cell() -> list[StreamEvent]:
        # Jupyter runs cells inside its event loop; the sync client must work.
        return list(client.agents.command("show device core-01"))

    events = run(notebook_cell())
    assert events[-1].type == "final_result"


def test_blast_summary_names_target_host(client: omnitwin.Client) -> None:
    result = client.agents.command("what breaks if leaf-03 fails", stream=False)
    assert result["result"]["target"].startswith("dv_")
    assert result["summary"].startswith("if leaf-03.nyc1 fails: ")


def test_sync_client_final_result(client: omnitwin.Client) -> None:
    result = client.agents.command(ALLOCATE, stream=False)
    assert result["result"]["cidr"] == "10.1.128.0/24"
    assert result["summary"].startswith("allocated 10.1.128.0/24")


def test_sync_client_raises_error_event(client: omnitwin.Client) -> None:
    with pytest.raises(ValidationError, match="not understood") as caught:
        client.agents.command("make me a sandwich", stream=False)
    assert caught.value.details["suggestions"]


def test_sync_client_sessions_and_replay(client: omnitwin.Client) -> None:
    live = list(client.agents.command("show device core-01"))
    session = live[0].session
    assert client.agents.session(session).actor == "user:alice@example.com"
    assert [s.id for s in client.agents.sessions()] == [session]
    assert list(client.agents.events(session)) == live
    assert list(client.agents.events(session, after_seq=2)) == live[2:]


def test_sync_client_early_break(client: omnitwin.Client) -> None:
    for event in client.agents.command("show device core-01"):
        session = event.session
        break
    assert client.agents.session(session).status == "failed"


def test_sync_stream_closed_on_its_loop_thread(client: omnitwin.Client) -> None:
    # The garbage collector may close an abandoned stream on any thread,
    # the private event loop's own among them.
    events = client.agents.command("show device core-01")
    session = next(events).session
    loop = _private_loop()
    closed: concurrent.futures.Future[bool] = concurrent.futures.Future()

    def close_there() -> None:
        events.close()
        closed.set_result(True)

    loop.call_soon_threadsafe(close_there)
    assert closed.result(timeout=10)
    # The loop still runs: the close it scheduled ends the command.
    deadline = time.monotonic() + 10
    while client.agents.session(session).status == "running":
        assert time.monotonic() < deadline, "the closed command never ended"
        time.sleep(0.05)
    assert client.agents.session(session).status == "failed"
    assert list(client.agents.command("show device core-01"))[-1].type == (
        "final_result"
    )


def test_sync_stream_closed_under_store_lock(client: omnitwin.Client) -> None:
    # The garbage collector may close a stream on a thread that holds the
    # store's lock, which the close itself needs to store its error event.
    events = client.agents.command("show device core-01")
    session = next(events).session
    store = client.backend.engine.store  # type: ignore[attr-defined]
    with store.transaction():
        events.close()
    deadline = time.monotonic() + 10
    while client.agents.session(session).status == "running":
        assert time.monotonic() < deadline, "the closed command never ended"
        time.sleep(0.05)
    assert client.agents.session(session).status == "failed"


def test_sync_stream_after_loop_thread_stops(client: omnitwin.Client) -> None:
    # A forked child inherits the private loop without the thread that ran it.
    loop = _private_loop()
    loop.call_soon_threadsafe(loop.stop)
    threads = [t for t in threading.enumerate() if t.name == "omnitwin-agent-loop"]
    for thread in threads:
        thread.join(10)
    results: list[StreamEvent] = []
    worker = threading.Thread(
        target=lambda: results.extend(client.agents.command("show device core-01")),
        daemon=True,
    )
    worker.start()
    worker.join(30)
    assert not worker.is_alive(), "the stream waited for a loop that does not run"
    assert results[-1].type == "final_result"


def test_exit_with_open_sync_stream(tmp_path: Path) -> None:
    script = (
        "import omnitwin\n"
        "client = omnitwin.Client('local::memory:')\n"
        "client.subnets.create('10.0.0.0/16', is_container=True)\n"
        "events = client.agents.command('free /24 in 10.0.0.0/16')\n"
        "print(next(events).type, flush=True)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "agent_status"


def test_async_client_streams(db: Path) -> None:
    async def main() -> tuple[list[StreamEvent], Any]:
        async with omnitwin.AsyncClient(f"local:{db}") as client:
            events = [e async for e in client.agents.command("show device core-01")]
            result = await client.agents.command(
                "blast radius of core-01", session_id=events[0].session, stream=False
            )
            replayed = [e async for e in client.agents.events(events[0].session)]
            client.backend.engine.close()  # type: ignore[attr-defined]
            return [*events, replayed[-1]], result

    events, result = run(main())
    assert events[-2].type == "final_result"
    assert events[-1].type == "final_result"
    assert events[-1].body == result


# --- the LLM planner ----------------------------------------------------------------

TOOL_CALL_RESPONSE = {
    "id": "chatcmpl-test-1",
    "object": "chat.completion",
    "created": 1767600000,
    "model": "test-model",
    "choices": [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {
                            "name": "ipam_search",
                            "arguments": json.dumps(
                                {
                                    "prefix_length": 24,
                                    "cidr": "10.128.0.0/16",
                                    "limit": 3,
                                }
                            ),
                        },
                    }
                ],
            },
            "finish_reason": "tool_calls",
        }
    ],
    "usage": {"prompt_tokens": 812, "completion_tokens": 31, "total_tokens": 843},
}
ANSWER_RESPONSE = {
    "id": "chatcmpl-test-2",
    "object": "chat.completion",
    "created": 1767600001,
    "model": "test-model",
    "choices": [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": "10.128.0.0/24 is the first free /24 in 10.128.0.0/16.",
            },
            "finish_reason": "stop",
        }
    ],
    "usage": {"prompt_tokens": 1020, "completion_tokens": 24, "total_tokens": 1044},
}


class ReplayServer:
    """An OpenAI-compatible endpoint on 127.0.0.1 that replays fixed responses."""

    def __init__(self, responses: list[dict[str, Any]]) -> None:
        self.responses = list(responses)
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        replay = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                replay.requests.append(json.loads(self.rfile.read(length)))
                replay.headers.append(dict(self.headers))
                if self.path != "/v1/chat/completions" or not replay.responses:
                    self.send_response(404)
                    self.end_headers()
                    return
                body = json.dumps(replay.responses.pop(0)).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> ReplayServer:
        self.thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_llm_planner_calls_tool_then_answers(engine: Engine) -> None:
    with ReplayServer([TOOL_CALL_RESPONSE, ANSWER_RESPONSE]) as llm:
        runtime = AgentRuntime(engine, llm_url=llm.url, llm_key="sk-test")
        events = run(
            collect(runtime, "where can I put a /24 in 10.128.0.0/16?", model="m1")
        )
    types = [e["type"] for e in events]
    assert types == ["agent_status", "agent_tool_call", "data_chunk", "final_result"]
    assert events[1]["body"] == {
        "fn": "ipam_search",
        "args": {"prefix_length": 24, "cidr": "10.128.0.0/16", "limit": 3},
    }
    assert events[-1]["body"]["answer"].startswith("10.128.0.0/24 is the first")
    assert events[-1]["body"]["result"]["blocks"][0] == "10.128.0.0/24"


def test_llm_planner_sends_tools_and_results(engine: Engine) -> None:
    with ReplayServer([TOOL_CALL_RESPONSE, ANSWER_RESPONSE]) as llm:
        runtime = AgentRuntime(engine, llm_url=llm.url, llm_key="sk-test")
        run(collect(runtime, "where can I put a /24 in 10.128.0.0/16?", model="m1"))
    first, second = llm.requests
    assert first["model"] == "m1"
    assert len(first["tools"]) == 13
    assert llm.headers[0]["Authorization"] == "Bearer sk-test"
    tool_message = second["messages"][-1]
    assert tool_message["role"] == "tool"
    assert tool_message["tool_call_id"] == "call_1"
    assert json.loads(tool_message["content"])["blocks"][0] == "10.128.0.0/24"


def test_llm_tokens_go_to_telemetry(engine: Engine) -> None:
    with ReplayServer([TOOL_CALL_RESPONSE, ANSWER_RESPONSE]) as llm:
        runtime = AgentRuntime(engine, llm_url=llm.url)
        events = run(collect(runtime, "free /24 in 10.128.0.0/16", model="m1"))
    telemetry = runtime.session(ISSUER, events[0]["session"]).telemetry
    assert telemetry.model == "m1"
    assert telemetry.prompt_tokens == 812 + 1020
    assert telemetry.completion_tokens == 31 + 24
    assert telemetry.total_tokens == 843 + 1044
    assert telemetry.tool_calls == 1
    assert [s["step"] for s in telemetry.steps] == [
        "model round 1",
        "ipam_search",
        "model round 2",
    ]


def test_llm_url_from_environment(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    with ReplayServer([ANSWER_RESPONSE]) as llm:
        monkeypatch.setenv("OMNITWIN_LLM_URL", llm.url)
        monkeypatch.setenv("OMNITWIN_LLM_KEY", "sk-env")
        events = run(collect(engine.agents, "hello", model="m1"))
    assert events[-1]["type"] == "final_result"
    assert llm.headers[0]["Authorization"] == "Bearer sk-env"


def test_llm_without_url_is_error(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OMNITWIN_LLM_URL", raising=False)
    events = run(collect(engine.agents, "hello", model="m1"))
    assert events[-1]["type"] == "error"
    assert "OMNITWIN_LLM_URL" in events[-1]["body"]["message"]


def test_llm_bad_tool_args_go_back_to_model(engine: Engine) -> None:
    bad = json.loads(json.dumps(TOOL_CALL_RESPONSE))
    call = bad["choices"][0]["message"]["tool_calls"][0]
    call["function"]["arguments"] = json.dumps({"prefix_length": "big"})
    with ReplayServer([bad, ANSWER_RESPONSE]) as llm:
        runtime = AgentRuntime(engine, llm_url=llm.url)
        events = run(collect(runtime, "free space please", model="m1"))
    assert events[-1]["type"] == "final_result"
    tool_message = llm.requests[1]["messages"][-1]
    assert "error" in json.loads(tool_message["content"])


def test_replay_after_last_event_rejected(engine: Engine) -> None:
    live = run(collect(engine.agents, "show device core-01"))
    session = live[0]["session"]
    with pytest.raises(ValidationError, match="nothing to replay"):
        engine.agents.events(ISSUER, session, after_seq=live[-1]["seq"])
    events = run(replay_after(engine.agents, session, live[-2]["seq"]))
    assert events == live[-1:]


async def replay_after(
    runtime: AgentRuntime, session: str, after_seq: int
) -> list[dict[str, Any]]:
    return [e async for e in runtime.events(ISSUER, session, after_seq=after_seq)]


@pytest.mark.parametrize(
    ("counts", "expected"),
    [
        ((3, 1, 0, 1), "3 devices, 1 subnet, 0 addresses and 1 site"),
        ((1, 0, 1, 2), "1 device, 0 subnets, 1 address and 2 sites"),
    ],
)
def test_blast_summary_counts_nouns(
    counts: tuple[int, int, int, int], expected: str
) -> None:
    devices, subnets, addresses, sites = (list(range(n)) for n in counts)
    result = {
        "target": "leaf-01.nyc1",
        "devices": devices,
        "subnets": subnets,
        "addresses": addresses,
        "sites": sites,
    }
    summary = summarize("blast_radius", result)
    assert summary == f"if leaf-01.nyc1 fails: {expected} lose their path"
