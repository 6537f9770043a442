"""Time loading every subnet into a DataFrame over HTTP: paging against export.

Run from the repository root::

    python bench/bench_export.py --subnets 1000000

Fills a DuckDB file in a temporary folder with one /8 container, created
through the engine, and ``subnets - 1`` /28 children inside it. The
children are written directly with ``Store.bulk_insert``, so they have no
audit events, which the reads do not look at. Then starts ``omnitwin serve``
on 127.0.0.1 and times, in the same run and through the public client:

- the baseline: ``client.subnets.list`` at per_page=200 (the maximum), page
  after page, then ``to_pandas`` of the records. With more than
  ``--max-baseline-pages`` pages only ``--sample-pages`` pages are read at
  each of five offsets (start, 25 %, 50 %, 75 %, end), and the time of all
  pages is estimated from them (see :func:`estimate_paging`);
- ``client.subnets.to_pandas()``, which reads ``GET /v1/subnets/export``, as
  an Arrow IPC stream and as NDJSON, ``--repeat`` times each.

The embedded engine's ``to_pandas()`` on the same file is timed too, before
the server starts, as a reference without HTTP. Results are appended to
``bench/results/export.md``.
"""

from __future__ import annotations

import argparse
import datetime
import itertools
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import httpx
import pandas as pd
import pyarrow

import omnitwin
from omnitwin._ids import new_id
from omnitwin.client import _http
from omnitwin.client._export import ARROW_STREAM, NDJSON
from omnitwin.client._http import HttpBackend
from omnitwin.engine.context import Context
from omnitwin.engine.engine import Engine
from omnitwin.engine.store import utc_now
from omnitwin.notebook.loaders import to_pandas
from omnitwin.server._keys import KeyStore

RESULTS = Path(__file__).resolve().parent / "results" / "export.md"
WORKSPACE = "bench"
PER_PAGE = 200
SAMPLE_POSITIONS = (0.0, 0.25, 0.5, 0.75, 1.0)


def fill(path: Path, subnets: int) -> tuple[str, float]:
    """Create the store and an API key of its workspace; return (key, seconds)."""
    started = time.perf_counter()
    engine = Engine(path)
    try:
        ctx = Context(workspace=WORKSPACE)
        block = engine.subnets.create(
            ctx, "10.0.0.0/8", is_container=True, tags={"region": "bench"}
        )
        children = subnets - 1
        if children > 2**20:
            raise SystemExit("at most 1,048,577 subnets fit as /28s in 10.0.0.0/8")
        base = 10 << 24
        now = utc_now()
        columns: dict[str, list[Any]] = {
            "id": [new_id("sn") for _ in range(children)],
            "workspace": [WORKSPACE] * children,
            "cidr": [
                f"{(base + i * 16) >> 24}.{(base + i * 16) >> 16 & 255}."
                f"{(base + i * 16) >> 8 & 255}.{(base + i * 16) & 255}/28"
                for i in range(children)
            ],
            "version": [4] * children,
            "first": [base + i * 16 for i in range(children)],
            "last": [base + i * 16 + 15 for i in range(children)],
            "prefix_length": [28] * children,
            "vrf": ["global"] * children,
            "status": ["allocated"] * children,
            "purpose": [f"bench {i % 97}" for i in range(children)],
            "parent_id": [block.id] * children,
            "vlan_id": [
                100 + i % 3000 if i % 4 == 0 else None for i in range(children)
            ],
            "owner": ["team:bench" if i % 2 else None for i in range(children)],
            "tags": [json.dumps({"rack": f"r{i % 40}"}) for i in range(children)],
            "is_pool": [False] * children,
            "is_container": [False] * children,
            "created_at": [now] * children,
            "updated_at": [now] * children,
        }
        with engine.store.transaction() as conn:
            engine.store.bulk_insert(
                conn,
                "subnets",
                columns,
                casts={"first": "UHUGEINT", "last": "UHUGEINT"},
            )
        _, key = KeyStore(engine.store).create(WORKSPACE, read_only=True)
    finally:
        engine.close()
    return key, time.perf_counter() - started


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(db: Path, workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    """Start ``omnitwin serve`` on 127.0.0.1 and wait for /health."""
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
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return process, url
        except httpx.TransportError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit("the server did not start within 120 s")


def peak_memory_mib(pid: int) -> float:
    """Return a process's peak resident set (VmHWM) in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def load_average() -> str:
    return " / ".join(f"{value:.2f}" for value in os.getloadavg())


def time_pages(
    client: omnitwin.Client, first: int, count: int
) -> tuple[float, list[Any]]:
    """Read ``count`` pages from page ``first``; return (seconds, records)."""
    records: list[Any] = []
    started = time.perf_counter()
    for page in range(first, first + count):
        records.extend(client.subnets.list(page=page, per_page=PER_PAGE).data)
    return time.perf_counter() - started, records


def estimate_paging(
    client: omnitwin.Client, total: int, sample_pages: int
) -> dict[str, Any]:
    """Time ``sample_pages`` pages at each sample position of the table.

    The time of every page is estimated by linear interpolation between the
    mean page times at the positions, because OFFSET paging slows down with
    the offset and a single mean would understate the deep pages. The
    ``to_pandas`` time of the sampled records, scaled to all rows, is added.
    """
    pages = -(-total // PER_PAGE)
    points = []
    records: list[Any] = []
    for position in SAMPLE_POSITIONS:
        first = 1 + round(position * (pages - sample_pages))
        seconds, sample = time_pages(client, first, sample_pages)
        points.append((first, seconds / sample_pages))
        records.extend(sample)
    started = time.perf_counter()
    to_pandas(records, kind="Subnet")
    convert_per_row = (time.perf_counter() - started) / len(records)
    paging_seconds = 0.0
    for (page_a, time_a), (page_b, time_b) in itertools.pairwise(points):
        paging_seconds += (page_b - page_a) * (time_a + time_b) / 2
    paging_seconds += points[-1][1] * sample_pages
    return {
        "measured": False,
        "pages_read": sample_pages * len(SAMPLE_POSITIONS),
        "page_ms": [(page, per_page * 1000) for page, per_page in points],
        "seconds": paging_seconds + convert_per_row * total,
    }


def time_baseline(
    client: omnitwin.Client, max_pages: int, sample_pages: int
) -> dict[str, Any]:
    total = client.subnets.list(per_page=1).total
    pages = -(-total // PER_PAGE)
    if pages > max_pages:
        return estimate_paging(client, total, sample_pages)
    started = time.perf_counter()
    _, records = time_pages(client, 1, pages)
    frame = to_pandas(records, kind="Subnet")
    seconds = time.perf_counter() - started
    assert len(frame) == total
    return {"measured": True, "pages_read": pages, "page_ms": [], "seconds": seconds}


def time_export(
    client: omnitwin.Client, media_type: str, repeat: int
) -> tuple[list[float], pd.DataFrame]:
    """Time ``client.subnets.to_pandas()`` with the export in ``media_type``."""
    accept: Callable[[], str] = _http.export_accept
    _http.export_accept = lambda: media_type  # type: ignore[assignment]
    try:
        times = []
        frame = pd.DataFrame()
        for _ in range(repeat):
            started = time.perf_counter()
            frame = client.subnets.to_pandas()
            times.append(time.perf_counter() - started)
    finally:
        _http.export_accept = accept  # type: ignore[assignment]
    return times, frame


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--subnets", type=int, default=1_000_000, help="subnets in the store"
    )
    parser.add_argument(
        "--max-baseline-pages",
        type=int,
        default=500,
        help="page through everything up to this many pages, else sample",
    )
    parser.add_argument(
        "--sample-pages",
        type=int,
        default=10,
        help="pages read at each of the five sample positions",
    )
    parser.add_argument("--repeat", type=int, default=2, help="runs of each export")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        workdir = Path(folder)
        db = workdir / "bench.duckdb"
        key, fill_seconds = fill(db, args.subnets)
        print(f"filled {args.subnets:,} subnets in {fill_seconds:.1f} s", flush=True)
        with omnitwin.connect(f"local:{db}", workspace=WORKSPACE) as local:
            started = time.perf_counter()
            local_frame = local.subnets.to_pandas()
            local_seconds = time.perf_counter() - started
        print(f"embedded to_pandas: {local_seconds:.2f} s", flush=True)
        process, url = start(db, workdir)
        load = {"start": load_average()}
        try:
            # A long read timeout, because the first byte of an export comes
            # only after DuckDB has sorted every row.
            backend = HttpBackend(url, api_key=key, timeout=300)
            with omnitwin.Client(backend=backend) as client:
                exports = {}
                for media_type in (ARROW_STREAM, NDJSON):
                    times, frame = time_export(client, media_type, args.repeat)
                    pd.testing.assert_frame_equal(frame, local_frame)
                    exports[media_type] = times
                    print(f"export {media_type}: {times}", flush=True)
                load["after exports"] = load_average()
                server_peak = peak_memory_mib(process.pid)
                baseline = time_baseline(
                    client, args.max_baseline_pages, args.sample_pages
                )
                print(f"baseline: {baseline}", flush=True)
                load["end"] = load_average()
        finally:
            process.send_signal(signal.SIGINT)
            process.wait(timeout=30)
    write_results(
        args, fill_seconds, local_seconds, exports, baseline, server_peak, load
    )


def write_results(
    args: argparse.Namespace,
    fill_seconds: float,
    local_seconds: float,
    exports: dict[str, list[float]],
    baseline: dict[str, Any],
    server_peak: float,
    load: dict[str, str],
) -> None:
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    rows = args.subnets
    base_seconds = baseline["seconds"]
    how = "measured" if baseline["measured"] else "estimated"
    lines = [
        f"## {now}, {rows:,} subnets",
        "",
        f"Command: `python bench/bench_export.py --subnets {rows}` "
        f"(--repeat {args.repeat}, --sample-pages {args.sample_pages}, "
        f"--max-baseline-pages {args.max_baseline_pages}).",
        f"Machine: {platform.platform()}, {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}, DuckDB {duckdb.__version__}, pandas "
        f"{pd.__version__}, pyarrow {pyarrow.__version__}. Server and client "
        "run on the same machine over 127.0.0.1.",
        "Load average (1 / 5 / 15 min): "
        + "; ".join(f"{when}: {value}" for when, value in load.items())
        + ".",
        "",
        "| step | seconds | baseline / step |",
        "|---|---|---|",
        f"| fill (`Store.bulk_insert`) | {fill_seconds:.1f} | |",
        f"| baseline: paging `GET /v1/subnets` (per_page={PER_PAGE}) into a "
        f"DataFrame, {how} | {base_seconds:,.1f} | 1.0x |",
    ]

    for media_type, times in exports.items():
        best = min(times)
        runs = ", ".join(f"{t:.2f}" for t in times)
        lines.append(
            f"| `client.subnets.to_pandas()` over the export, `{media_type}` "
            f"(best of {runs}) | {best:.2f} | {base_seconds / best:,.0f}x |"
        )
    lines.append(
        f"| embedded engine `to_pandas()` on the same file, no HTTP (reference) "
        f"| {local_seconds:.2f} | |"
    )
    lines.append("")

    if baseline["measured"]:
        lines.append(f"The baseline read all {baseline['pages_read']:,} pages.")
    else:
        samples = ", ".join(
            f"page {page:,}: {ms:.0f} ms" for page, ms in baseline["page_ms"]
        )
        lines.append(
            f"The baseline is an estimate, not a measurement: it read "
            f"{args.sample_pages} pages at each of five offsets "
            f"({baseline['pages_read']} of {-(-rows // PER_PAGE):,} pages; mean "
            f"time per page: {samples}), interpolated the page time linearly "
            "between them over all pages, and added the `to_pandas` time of "
            "the sampled records scaled to all rows."
        )
    lines.append(
        f"Server peak resident set (VmHWM) after the exports: {server_peak:,.0f} MiB."
    )
    lines.append("")

    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    if not RESULTS.exists():
        RESULTS.write_text(
            "# Subnets into a DataFrame over HTTP: paging against export\n\n"
            "Written by `bench/bench_export.py`.\n\n"
        )
    with RESULTS.open("a") as results:
        results.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
