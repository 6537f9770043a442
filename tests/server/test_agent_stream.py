"""Agent commands through a real ``omnitwin serve`` process: SSE, JSON, replay."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

import omnitwin
from omnitwin.errors import PermissionDenied, ValidationError
from serverproc import Key, ServerProcess

SEARCH = "Find available /24 blocks in 10.128.0.0/16"
SSE = {"Accept": "text/event-stream"}


@pytest.fixture
def key(server: ServerProcess) -> Key:
    """A key of a fresh workspace that has one container, 10.128.0.0/16."""
    key = next(server.workspace_keys)
    with omnitwin.Client(server.url, api_key=key.secret) as client:
        client.subnets.create(
            "10.128.0.0/16",
            is_container=True,
            purpose="us-east pool",
            tags={"region": "us-east"},
        )
    return key


@pytest.fixture
def http(server: ServerProcess, key: Key) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {key.secret}"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=30) as client:
        yield client


def data_lines(text: str) -> list[str]:
    lines = [line for line in text.split("\n") if line]
    assert all(line.startswith("data: ") for line in lines), lines
    return [line[len("data: ") :] for line in lines]


def sse_events(response: httpx.Response) -> list[dict[str, Any]]:
    payloads = data_lines(response.text)
    assert payloads[-1] == "[DONE]"
    return [json.loads(p) for p in payloads[:-1]]


def test_command_streams_sse(http: httpx.Client) -> None:
    response = http.post("/agents/command", json={"command": SEARCH}, headers=SSE)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    events = sse_events(response)
    assert [e["type"] for e in events] == [
        "agent_status",
        "agent_tool_call",
        "data_chunk",
        "final_result",
    ]
    assert [e["seq"] for e in events] == [1, 2, 3, 4]
    assert events[-1]["body"]["result"]["blocks"][0] == "10.128.0.0/24"


def test_command_error_streams_error_event(http: httpx.Client) -> None:
    body = {"command": "make me a sandwich"}
    response = http.post("/agents/command", json=body, headers=SSE)
    events = sse_events(response)
    assert events[-1]["type"] == "error"
    assert events[-1]["body"]["code"] == "validation_error"
    assert events[-1]["body"]["suggestions"]


def test_command_json_without_accept(http: httpx.Client) -> None:
    response = http.post("/agents/command", json={"command": SEARCH})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["data"]["summary"].startswith("256 free /24 blocks")
    assert [e["type"] for e in body["events"]][-1] == "final_result"


def test_command_json_error_status(http: httpx.Client) -> None:
    response = http.post("/agents/command", json={"command": "make me a sandwich"})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "validation_error"


def test_structured_command_over_http(http: httpx.Client) -> None:
    body = {
        "tool": "ipam_search",
        "args": {"prefix_length": 20, "cidr": "10.128.0.0/16"},
    }
    response = http.post("/agents/command", json=body)
    assert response.json()["data"]["result"]["total_free"] == 16


def test_session_events_replay(http: httpx.Client) -> None:
    live = sse_events(
        http.post("/agents/command", json={"command": SEARCH}, headers=SSE)
    )
    session = live[0]["session"]
    replayed = sse_events(http.get(f"/agents/sessions/{session}/events", headers=SSE))
    assert replayed == live


def test_session_listed_and_fetched(http: httpx.Client, key: Key) -> None:
    live = sse_events(
        http.post("/agents/command", json={"command": SEARCH}, headers=SSE)
    )
    session = live[0]["session"]
    listed = http.get("/agents/sessions").json()
    assert [s["id"] for s in listed["data"]] == [session]
    fetched = http.get(f"/agents/sessions/{session}").json()
    assert fetched["actor"] == f"key:{key.id}"
    assert fetched["status"] == "completed"
    assert fetched["telemetry"]["tool_calls"] == 1


def test_disconnected_stream_ends_session(http: httpx.Client) -> None:
    body = {"command": SEARCH}
    with http.stream("POST", "/agents/command", json=body, headers=SSE) as stream:
        first = next(line for line in stream.iter_lines() if line)
    session = json.loads(first.removeprefix("data: "))["session"]
    # Once the client is gone, the server stores an error event and ends the
    # session. It used to leave the session running until a restart.
    deadline = time.monotonic() + 20
    status = http.get(f"/agents/sessions/{session}").json()["status"]
    while status == "running" and time.monotonic() < deadline:
        time.sleep(0.1)
        status = http.get(f"/agents/sessions/{session}").json()["status"]
    assert status == "failed"
    replayed = sse_events(http.get(f"/agents/sessions/{session}/events", headers=SSE))
    assert replayed[-1]["type"] == "error"
    again = http.post(
        "/agents/command", json={**body, "session_id": session}, headers=SSE
    )
    assert sse_events(again)[-1]["type"] == "final_result"


def test_unknown_session_is_404(http: httpx.Client) -> None:
    response = http.get("/agents/sessions/sess_missing/events", headers=SSE)
    assert response.status_code == 404
    body = {"command": SEARCH, "session_id": "sess_missing"}
    assert http.post("/agents/command", json=body).status_code == 404


def test_http_client_typed_events(server: ServerProcess, key: Key) -> None:
    with omnitwin.Client(server.url, api_key=key.secret) as client:
        events = list(client.agents.command(SEARCH))
        session = events[0].session
        assert events[-1].type == "final_result"
        assert list(client.agents.events(session)) == events
        assert client.agents.session(session).turns == 1


def test_http_client_write_audits_key(server: ServerProcess, key: Key) -> None:
    command = "Allocate a /24 for the payments service in us-east"
    with omnitwin.Client(server.url, api_key=key.secret) as client:
        result = client.agents.command(command, stream=False)
        trail = client.subnets.audit(result["result"]["id"]).data
    assert trail[0].actor == f"key:{key.id}"
    assert trail[0].intent is not None
    assert trail[0].intent.endswith(f": {command}")


def test_http_client_raises_error(server: ServerProcess, key: Key) -> None:
    with omnitwin.Client(server.url, api_key=key.secret) as client:
        with pytest.raises(ValidationError):
            client.agents.command("allocate a /24 for payments", stream=False)
        events = list(client.agents.command("allocate a /24 for payments"))
    assert events[-1].type == "error"
    assert events[-1].body["details"]["reason"] == "missing_argument"


def test_async_http_client_streams(server: ServerProcess, key: Key) -> None:
    async def main() -> list[str]:
        async with omnitwin.AsyncClient(server.url, api_key=key.secret) as client:
            return [e.type async for e in client.agents.command(SEARCH)]

    assert asyncio.run(main())[-1] == "final_result"


def test_read_only_key_rejected(server: ServerProcess) -> None:
    read_only = server.keys["a_read_only"]
    client = omnitwin.Client(server.url, api_key=read_only.secret)
    with client, pytest.raises(PermissionDenied):
        list(client.agents.command(SEARCH))
