"""Benchmark: drift re-scoring of 100,000 devices in a DuckDB file.

Run with ``python bench/bench_drift.py [--devices N] [--runs R]``. The script
builds a twin in a temporary DuckDB file through the engine's services:
devices with six interfaces in their twin state, a cable between each pair
of neighbouring devices, and one observation per device. Of those
observations, 5 % report another OS version and 1 % one interface down.
Then it times ``DriftService.rescore_all``:

- ``steady``: every score and event is already current, so the pass reads
  and compares everything and writes nothing;
- ``all scores written``: every stored score was cleared first, so the pass
  also writes 100,000 scores.

It writes a Markdown table to ``bench/results/drift.md``.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

from omnitwin.engine.context import Context
from omnitwin.engine.discovery import Observation
from omnitwin.engine.engine import Engine

RESULTS = Path(__file__).resolve().parent / "results" / "drift.md"
BATCH = 10_000
PORTS = [f"Ethernet{i}/1" for i in range(1, 7)]


def twin_state(index: int) -> dict[str, object]:
    return {
        "hostname": f"sw-{index:06d}",
        "model": "DCS-7050SX",
        "os_version": "4.30.1F",
        "serial": f"SN{index:08d}",
        "interfaces": {port: {"enabled": True, "oper_up": True} for port in PORTS},
    }


def observed_state(index: int) -> dict[str, object]:
    state = twin_state(index)
    if index % 20 == 0:
        state["os_version"] = "4.31.0F"
    if index % 100 == 7:
        interfaces = state["interfaces"]
        assert isinstance(interfaces, dict)
        interfaces["Ethernet1/1"] = {"enabled": True, "oper_up": False}
    state["vendor"] = "Arista"
    return state


def build(engine: Engine, ctx: Context, devices: int) -> dict[str, float]:
    timings: dict[str, float] = {}
    started = time.perf_counter()
    for start in range(0, devices, BATCH):
        items = [
            {
                "hostname": f"sw-{i:06d}",
                "role": "switch",
                "site": f"site{i % 50:02d}",
                "serial": f"SN{i:08d}",
                "twin_state": twin_state(i),
            }
            for i in range(start, min(start + BATCH, devices))
        ]
        engine.devices.create_many(ctx, items)
    timings["create devices"] = time.perf_counter() - started

    started = time.perf_counter()
    for start in range(0, devices - 1, BATCH):
        links = [
            {
                "a": f"sw-{i:06d}",
                "port_a": "Ethernet6/1",
                "b": f"sw-{i + 1:06d}",
                "port_b": "Ethernet5/1",
            }
            for i in range(start, min(start + BATCH, devices - 1), 2)
        ]
        engine.topology.add_links(ctx, links)
    timings["add links"] = time.perf_counter() - started

    started = time.perf_counter()
    for start in range(0, devices, BATCH):
        observations = [
            Observation("bench", f"sw-{i:06d}", state=observed_state(i))
            for i in range(start, min(start + BATCH, devices))
        ]
        engine.discovery.ingest_observations(ctx, observations)
    timings["ingest observations"] = time.perf_counter() - started
    return timings


def measure(engine: Engine, ctx: Context, runs: int) -> dict[str, list[float]]:
    """Time ``rescore_all`` ``runs`` times in each of the two scenarios."""
    results: dict[str, list[float]] = {"steady": [], "all scores written": []}
    for _ in range(runs):
        started = time.perf_counter()
        summary = engine.drift.rescore_all(ctx)
        results["steady"].append(time.perf_counter() - started)
        assert summary["opened"] == 0, summary
    for _ in range(runs):
        with engine.store.transaction() as conn:
            conn.execute("UPDATE devices SET drift_score = NULL").fetchall()
        started = time.perf_counter()
        engine.drift.rescore_all(ctx)
        results["all scores written"].append(time.perf_counter() - started)
    return results


def report(
    devices: int,
    setup: dict[str, float],
    results: dict[str, list[float]],
    drifted: int,
    events: int,
    load: float,
) -> str:
    lines = [
        "# Drift re-scoring benchmark",
        "",
        f"`python bench/bench_drift.py --devices {devices}` on {platform.machine()}, "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}. The host is shared: its "
        f"1-minute load average was {load:.1f} when the timing started.",
        "",
        f"{devices:,} devices (six interfaces each), {devices // 2:,} cables; "
        f"{drifted:,} devices drift, with {events:,} open drift events.",
        "",
        "| step | median s | min s | max s |",
        "|---|---|---|---|",
    ]
    for name, values in results.items():
        lines.append(
            f"| rescore_all, {name} | {statistics.median(values):.2f} | "
            f"{min(values):.2f} | {max(values):.2f} |"
        )
    lines += ["", "Set-up, once:", "", "| step | s |", "|---|---|"]
    lines += [f"| {name} | {seconds:.1f} |" for name, seconds in setup.items()]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    ctx = Context(actor="user:bench")
    with tempfile.TemporaryDirectory() as folder:
        engine = Engine(Path(folder) / "bench.duckdb")
        try:
            setup = build(engine, ctx, args.devices)
            load = os.getloadavg()[0]
            results = measure(engine, ctx, args.runs)
            drifted = engine.devices.list(ctx, has_drift=True).total
            events = engine.drift.events(ctx, status="open").total
        finally:
            engine.close()
    text = report(args.devices, setup, results, drifted, events, load)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
