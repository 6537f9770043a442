"""Latency of GET /v1/subnets and of the first SSE event under concurrent clients.

Starts a server on 127.0.0.1 with its own DuckDB file in a temporary folder,
loads 200 subnets, then runs CLIENTS concurrent clients (one keep-alive
connection each) that send REQUESTS_PER_CLIENT requests in a row. The
baseline is GET /v1/health under the same load in the same run: no key, no
database, so its latency is the floor of the HTTP stack. The same clients
then stream agent commands (POST /v1/agents/command with Accept:
text/event-stream) and the time to the first ``data:`` line is recorded.
Writes the results to bench/results/server.md.

Run: python bench/bench_server.py [--clients 50] [--requests 40] [--commands 5]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from omnitwin.engine.engine import Engine
from omnitwin.server._keys import KeyStore

RESULTS = Path(__file__).resolve().parent / "results" / "server.md"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(db: Path, workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "omnitwin.cli",
        "serve",
        "--db",
        str(db),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--rate-limit",
        "10000000",
    ]
    log = (workdir / "server.log").open("wb")
    process = subprocess.Popen(
        command, stdout=log, stderr=subprocess.STDOUT, cwd=workdir
    )
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return process, url
        except httpx.TransportError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit("the server did not start within 30 s")


async def one_client(url: str, key: str, count: int, latencies: list[float]) -> None:
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=60) as http:
        for _ in range(count):
            started = time.perf_counter()
            response = await http.get("/subnets")
            latencies.append((time.perf_counter() - started) * 1000)
            response.raise_for_status()


async def health_client(url: str, count: int, latencies: list[float]) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=60) as http:
        for _ in range(count):
            started = time.perf_counter()
            response = await http.get("/health")
            latencies.append((time.perf_counter() - started) * 1000)
            response.raise_for_status()


async def stream_client(url: str, key: str, count: int, firsts: list[float]) -> None:
    """Stream ``count`` agent commands; record the time to each first event."""
    headers = {"Authorization": f"Bearer {key}", "Accept": "text/event-stream"}
    body = {"command": "Find available /24 blocks in 10.7.0.0/16"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=60) as http:
        for _ in range(count):
            started = time.perf_counter()
            first = None
            async with http.stream("POST", "/agents/command", json=body) as response:
                response.raise_for_status()
                async for line in response.aiter_lines():
                    if first is None and line.startswith("data:"):
                        first = (time.perf_counter() - started) * 1000
            if first is None:
                raise SystemExit("an agent stream ended without a data line")
            firsts.append(first)


async def run_load(
    url: str, key: str, clients: int, requests: int, kind: str = "subnets"
) -> tuple[list[float], float]:
    latencies: list[float] = []
    started = time.perf_counter()
    if kind == "health":
        jobs = [health_client(url, requests, latencies) for _ in range(clients)]
    elif kind == "stream":
        jobs = [stream_client(url, key, requests, latencies) for _ in range(clients)]
    else:
        jobs = [one_client(url, key, requests, latencies) for _ in range(clients)]
    await asyncio.gather(*jobs)
    return latencies, time.perf_counter() - started


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50, help="concurrent clients")
    parser.add_argument("--requests", type=int, default=40, help="requests per client")
    parser.add_argument(
        "--commands", type=int, default=5, help="streamed commands per client"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        workdir = Path(folder)
        db = workdir / "bench.duckdb"
        engine = Engine(db)
        _, key = KeyStore(engine.store).create("bench")
        engine.close()
        process, url = start(db, workdir)
        try:
            headers = {"Authorization": f"Bearer {key}"}
            with httpx.Client(base_url=url, headers=headers) as http:
                for index in range(200):
                    http.post(
                        "/subnets", json={"cidr": f"10.{index}.0.0/16"}
                    ).raise_for_status()
            asyncio.run(run_load(url, key, 5, 10))  # warm-up
            runs = {
                kind: asyncio.run(run_load(url, key, args.clients, count, kind))
                for kind, count in (
                    ("health", args.requests),
                    ("subnets", args.requests),
                    ("stream", args.commands),
                )
            }
        finally:
            process.send_signal(signal.SIGINT)
            process.wait(timeout=15)
    rows = []
    labels = {
        "health": "GET /v1/health (baseline)",
        "subnets": "GET /v1/subnets",
        "stream": "POST /v1/agents/command, first SSE event",
    }
    for kind, (latencies, elapsed) in runs.items():
        rows.append(
            f"| {labels[kind]} | {args.clients} | {len(latencies)} | "
            f"{statistics.median(latencies):.1f} | {percentile(latencies, 0.99):.1f} "
            f"| {len(latencies) / elapsed:.0f} |"
        )
    ratio = statistics.median(runs["subnets"][0]) / statistics.median(runs["health"][0])
    command = f"python bench/bench_server.py --clients {args.clients}"
    command += f" --requests {args.requests} --commands {args.commands}"
    table = "\n".join(rows)
    report = f"""# Server latency under concurrent clients

Measured by `{command}`
on {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()},
over loopback (127.0.0.1). One `omnitwin serve` process (uvicorn, one worker) on a
DuckDB file with 200 subnets; each GET /v1/subnets response is the first page of
50 subnets. The load generator runs on the same machine and competes with the
server for CPU. Load average before the run: {os.getloadavg()[0]:.2f}.

| request | clients | requests | median ms | p99 ms | requests/s |
|---|---|---|---|---|---|
{table}

Median of GET /v1/subnets over the baseline's median: {ratio:.1f}x.
"""
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(report)
    print(report)


if __name__ == "__main__":
    main()
