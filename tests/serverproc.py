"""Fixtures that run a real ``omnitwin serve`` process on 127.0.0.1.

Keys are created in the server's DuckDB file before the server starts,
because a running server holds the file's write lock.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

import omnitwin
from omnitwin.engine.engine import Engine
from omnitwin.server._keys import KeyStore

HOST = "127.0.0.1"
CONTRACT_WORKSPACES = 80


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


@dataclass
class Key:
    """A key created for a test server: id, secret and workspace."""

    id: str
    secret: str
    workspace: str


@dataclass
class ServerProcess:
    """A running ``omnitwin serve`` process and the keys made for it."""

    url: str
    process: subprocess.Popen[str]
    log_path: Path
    keys: dict[str, Key] = field(default_factory=dict)
    workspace_keys: Iterator[Key] = field(default_factory=lambda: iter(()))

    def log(self) -> str:
        """Return what the server wrote to its log so far."""
        return self.log_path.read_text(errors="replace")

    def stop(self) -> int:
        """Stop the server with SIGINT (graceful shutdown); return its exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        return int(self.process.returncode)


def make_keys(
    db: Path, specs: Mapping[str, tuple[str | None, bool]], kind: str = "live"
) -> dict[str, Key]:
    """Create keys named by ``specs`` (name: (workspace, read_only)) in ``db``.

    A workspace of ``None`` makes an admin key.
    """
    engine = Engine(db)
    try:
        store = KeyStore(engine.store, engine.audit)
        keys = {}
        for name, (workspace, read_only) in specs.items():
            record, secret = store.create(
                workspace,
                read_only=read_only,
                name=name,
                kind=kind,  # type: ignore[arg-type]
                admin=workspace is None,
            )
            keys[name] = Key(record.id, secret, record.workspace)
        return keys
    finally:
        engine.close()


def start_server(tmp: Path, *args: str, db: Path | None = None) -> ServerProcess:
    """Start ``omnitwin serve`` on a free port and wait until it responds."""
    db = db or tmp / "server.duckdb"
    port = free_port()
    log_path = tmp / f"server-{port}.log"
    command = [
        sys.executable,
        "-m",
        "omnitwin.cli",
        "serve",
        "--db",
        str(db),
        "--host",
        HOST,
        "--port",
        str(port),
        *args,
    ]
    log = log_path.open("w")
    process = subprocess.Popen(
        command,
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=tmp,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    url = f"http://{HOST}:{port}/v1"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited early:\n{log_path.read_text()}")
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return ServerProcess(url, process, log_path)
        except httpx.TransportError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"server did not start in 30 s:\n{log_path.read_text()}")


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A live server with keys of workspaces a and b, read-only, revoked and
    admin keys, and one fresh workspace per contract test."""
    tmp = tmp_path_factory.mktemp("server")
    db = tmp / "server.duckdb"
    specs: dict[str, tuple[str | None, bool]] = {
        "a": ("ws-a", False),
        "a_read_only": ("ws-a", True),
        "b": ("ws-b", False),
        "revoked": ("ws-a", False),
        "admin": (None, False),
        "admin_read_only": (None, True),
    }
    for index in range(CONTRACT_WORKSPACES):
        specs[f"contract{index}"] = (f"contract-{index}", False)
    keys = make_keys(db, specs)
    engine = Engine(db)
    KeyStore(engine.store).revoke(keys["revoked"].id)
    engine.close()
    proc = start_server(tmp, db=db)
    proc.keys = keys
    proc.workspace_keys = iter(keys[f"contract{i}"] for i in range(CONTRACT_WORKSPACES))
    yield proc
    proc.stop()


@pytest.fixture(params=["local", "http"])
def client(
    request: pytest.FixtureRequest, server: ServerProcess
) -> Iterator[omnitwin.Client]:
    """A sync client on an in-memory engine, or on the live server in a fresh
    workspace."""
    if request.param == "local":
        with omnitwin.Client("local::memory:") as local:
            yield local
        return
    key = next(server.workspace_keys)
    with omnitwin.Client(server.url, api_key=key.secret) as remote:
        yield remote


@pytest.fixture(params=["local", "http"])
def async_client(
    request: pytest.FixtureRequest, server: ServerProcess
) -> omnitwin.AsyncClient:
    """An async client on either backend, like :func:`client`."""
    if request.param == "local":
        return omnitwin.AsyncClient("local::memory:")
    key = next(server.workspace_keys)
    return omnitwin.AsyncClient(server.url, api_key=key.secret)
