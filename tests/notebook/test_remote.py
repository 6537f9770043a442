"""The notebook layer against a real ``omnitwin serve`` process on 127.0.0.1."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from IPython import get_ipython
from IPython.core.interactiveshell import InteractiveShell
from IPython.testing.globalipapp import start_ipython

import omnitwin
from omnitwin.engine.engine import Engine
from omnitwin.notebook import load_sample_twin, read_subnets
from omnitwin.notebook.report import render_report
from omnitwin.server._keys import KeyStore

HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    tmp = tmp_path_factory.mktemp("server")
    db = tmp / "server.duckdb"
    engine = Engine(db)
    try:
        _, secret = KeyStore(engine.store).create("notebook", name="notebook")
    finally:
        engine.close()

    port = free_port()
    log = (tmp / "server.log").open("w")
    command = [sys.executable, "-m", "omnitwin.cli", "serve", "--db", str(db)]
    command += ["--host", HOST, "--port", str(port)]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        command, stdout=log, stderr=subprocess.STDOUT, cwd=tmp, env=env
    )
    url = f"http://{HOST}:{port}/v1"

    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                status = process.poll()
                output = (tmp / "server.log").read_text()
                pytest.fail(f"server did not start (exit status {status}): {output}")
            time.sleep(0.1)

    with omnitwin.connect(url, api_key=secret) as client:
        load_sample_twin(client, sites=1)
    yield {"url": url, "key": secret}
    process.send_signal(signal.SIGINT)
    process.wait(timeout=15)
    log.close()


@pytest.fixture(scope="module")
def shell(server: dict[str, str]) -> InteractiveShell:
    # start_ipython returns None once the shared test shell exists.
    ip = start_ipython() or get_ipython()
    assert ip is not None
    ip.run_line_magic("load_ext", "omnitwin")
    ip.run_line_magic("omnitwin", f"connect {server['url']} --api-key {server['key']}")
    return ip


def test_connect_reports_remote_counts(shell: InteractiveShell) -> None:
    magics = shell.magics_manager.registry["OmniTwinMagics"]
    assert magics.client.subnets.list(per_page=1).total > 0
    frame = shell.run_line_magic("omnitwin", "devices --role router").to_pandas()
    assert sorted(frame["hostname"]) == ["core-01", "core-02"]


def test_remote_graph_results(shell: InteractiveShell) -> None:
    radius = shell.run_line_magic("omnitwin", "blast-radius leaf-01.nyc1")
    assert len(radius.to_pandas()) == 3
    path = shell.run_line_magic("omnitwin", "path srv-01-01.nyc1 srv-02-01.nyc1")
    assert len(path.to_pandas()) == 4


def test_remote_agent_cell(shell: InteractiveShell) -> None:
    shell.run_cell_magic("omnitwin", "--var remote_run", "Show drift on leaf-01.nyc1")
    run = shell.user_ns["remote_run"]
    assert run.error is None
    assert run.statuses
    assert "os_version" in set(run.to_pandas()["field"])


def test_remote_subnets_fall_back_to_paging(server: dict[str, str]) -> None:
    with omnitwin.connect(server["url"], api_key=server["key"]) as client:
        bulk = client.subnets.to_pandas()
        paged = read_subnets(client, purpose="")
    assert len(bulk) == client_total(server)
    assert bulk["id"].tolist() == paged["id"].tolist()


def client_total(server: dict[str, str]) -> int:
    with omnitwin.connect(server["url"], api_key=server["key"]) as client:
        total: int = client.subnets.list(per_page=1).total
        return total


def test_report_from_server(server: dict[str, str], tmp_path: Path) -> None:
    out = tmp_path / "remote.html"
    inputs = render_report(
        "blast-radius", "leaf-01.nyc1", out, url=server["url"], api_key=server["key"]
    )
    text = out.read_text(encoding="utf-8")
    assert inputs["database"]["url"] == server["url"]
    assert server["key"] not in text
    recorded = re.search(r"id='omnitwin-report-inputs'>(.*?)</script>", text, re.S)
    assert recorded is not None
    data: dict[str, Any] = json.loads(recorded.group(1))
    assert data["database"]["counts"]["devices"] == 16
    assert "cuts off <strong>3</strong> devices" in text


def test_report_leaves_environment_alone() -> None:
    assert "OMNITWIN_API_KEY" not in os.environ
