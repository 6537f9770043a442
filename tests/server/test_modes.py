"""Server modes: rate limiting and the sandbox, each on its own server process."""

from __future__ import annotations

import re
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

import omnitwin
from omnitwin.client._http import HttpBackend
from serverproc import make_keys, start_server


def test_rate_limit_429_then_client_waits(tmp_path: Path) -> None:
    db = tmp_path / "limited.duckdb"
    key = make_keys(db, {"a": ("ws", False)})["a"]
    window = 20
    proc = start_server(
        tmp_path, "--rate-limit", "1000", "--rate-window-seconds", str(window), db=db
    )
    try:
        headers = {"Authorization": f"Bearer {key.secret}"}
        with httpx.Client(base_url=proc.url, headers=headers) as http:
            with ThreadPoolExecutor(8) as pool:
                statuses = list(
                    pool.map(
                        lambda _: http.get("/audit/verify").status_code, range(1000)
                    )
                )
            limited = http.get("/audit/verify")
        assert set(statuses) == {200}
        assert limited.status_code == 429
        assert limited.json()["error"]["code"] == "rate_limited"
        retry_after = int(limited.headers["Retry-After"])
        assert 1 <= retry_after <= window
        assert limited.headers["X-RateLimit-Remaining"] == "0"

        started = time.monotonic()
        with omnitwin.Client(proc.url, api_key=key.secret) as client:
            assert client.audit.verify().ok is True
        assert time.monotonic() - started >= retry_after - 1.5
    finally:
        assert proc.stop() in (0, -signal.SIGINT)
    assert "omnitwin server stopped" in proc.log()


def test_client_gives_up_after_bounded_retries(tmp_path: Path) -> None:
    db = tmp_path / "tiny.duckdb"
    key = make_keys(db, {"a": ("ws", False)})["a"]
    proc = start_server(
        tmp_path, "--rate-limit", "1", "--rate-window-seconds", "30", db=db
    )
    try:
        backend = HttpBackend(proc.url, api_key=key.secret, max_retries=0)
        client = omnitwin.Client(backend=backend)
        client.audit.verify()
        with pytest.raises(omnitwin.RateLimited) as caught:
            client.audit.verify()
        assert 1 <= caught.value.retry_after <= 30
        client.close()
    finally:
        proc.stop()


def test_sandbox_seeds_and_resets(tmp_path: Path) -> None:
    db = tmp_path / "sandbox.duckdb"
    live = make_keys(db, {"live": ("ws", False)})["live"]
    proc = start_server(tmp_path, "--sandbox", db=db)
    try:
        match = re.search(r"(ot_sandbox_\S+)", proc.log())
        assert match is not None, proc.log()
        secret = match.group(1)
        with omnitwin.Client(proc.url, api_key=secret) as client:
            seeded = client.subnets.list().total
            assert seeded > 10
            client.subnets.create("203.0.113.0/24")
            assert client.subnets.list().total == seeded + 1
            reset = httpx.post(
                f"{proc.url}/sandbox/reset",
                headers={"Authorization": f"Bearer {secret}"},
            )
            assert reset.status_code == 200
            assert client.subnets.list().total == seeded
        rejected = httpx.get(
            f"{proc.url}/subnets", headers={"Authorization": f"Bearer {live.secret}"}
        )
        assert rejected.status_code == 401
    finally:
        proc.stop()
    assert proc.log().count(secret) == 1


def test_live_server_has_no_sandbox_reset(tmp_path: Path) -> None:
    db = tmp_path / "live.duckdb"
    key = make_keys(db, {"a": ("ws", False)})["a"]
    proc = start_server(tmp_path, db=db)
    try:
        response = httpx.post(
            f"{proc.url}/sandbox/reset",
            headers={"Authorization": f"Bearer {key.secret}"},
        )
        assert response.status_code == 404
    finally:
        proc.stop()
