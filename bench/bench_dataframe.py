"""Time loading subnets into a pandas DataFrame through the public client.

Run from the repository root::

    python bench/bench_dataframe.py --rows 1000000

The store is a DuckDB file with one /8 container and ``rows - 1`` /28 subnets
inside it. ``--fill import`` (the default) fills it through the client's
import API (``client.imports.start("csv", ...)``, committed), some rows with
a VLAN id; ``--fill bulk`` writes the rows with ``Store.bulk_insert`` as
``bench_export.py`` does, in seconds rather than minutes, without audit
events, which the reads do not look at. Two reads are timed, both ending in
the same DataFrame with explicit dtypes:

- ``client.subnets.to_pandas()``, one bulk query on the embedded engine
  (what ``omnitwin.notebook.read_subnets(client)`` uses when it can);
- paging through ``client.subnets.list`` (200 rows a page, the maximum),
  which ``read_subnets`` does when given a limit or another filter. Only the
  first ``--sample`` rows are paged, and the time for all rows is
  extrapolated linearly: an estimate, marked as such.

The baselines query the same columns with DuckDB's own DataFrame
conversions: ``.df()``, and an Arrow table converted by pyarrow.

Results are appended to ``bench/results/dataframe.md``.
"""

from __future__ import annotations

import argparse
import datetime
import ipaddress
import os
import platform
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

import omnitwin
from omnitwin.notebook import read_subnets

RESULTS = Path(__file__).resolve().parent / "results" / "dataframe.md"
FILL_LABELS = {
    "import": "through `client.imports`, committed",
    "bulk": "`Store.bulk_insert`",
}


def generate_csv(rows: int) -> bytes:
    """Return a CSV of one /8 container and ``rows - 1`` /28 subnets inside it."""
    lines = ["cidr,status,purpose,vlan", "10.0.0.0/8,container,bench block,"]
    base = 10 << 24
    for index in range(rows - 1):
        cidr = f"{ipaddress.IPv4Address(base + index * 16)}/28"
        vlan = str(100 + index % 3000) if index % 4 == 0 else ""
        lines.append(f"{cidr},allocated,bench {index % 97},{vlan}")
    return ("\n".join(lines) + "\n").encode()


def fill(path: Path, rows: int) -> float:
    """Import ``rows`` subnets into the DuckDB file at ``path``; return seconds."""
    started = time.perf_counter()
    with omnitwin.connect(f"local:{path}") as client:
        job = client.imports.start("csv", generate_csv(rows), filename="bench.csv")
        job = client.imports.wait(job.id, timeout=3600)
        if job.status == "awaiting_review":
            job = client.imports.commit(job.id, accept_suggestions=True)
            job = client.imports.wait(job.id, timeout=3600)
        if job.status != "committed":
            raise RuntimeError(f"import ended {job.status}: {job.error}")
    return time.perf_counter() - started


def time_reads(path: Path, sample: int, workspace: str) -> dict[str, Any]:
    target = f"local:{path}"
    with omnitwin.connect(target, read_only=True, workspace=workspace) as client:
        total = client.subnets.list(per_page=1).total
        started = time.perf_counter()
        bulk = client.subnets.to_pandas()
        bulk_seconds = time.perf_counter() - started
        started = time.perf_counter()
        paged = read_subnets(client, limit=sample, progress=False)
        paged_seconds = time.perf_counter() - started
    return {
        "total": total,
        "bulk_rows": len(bulk),
        "bulk_seconds": bulk_seconds,
        "paged_rows": len(paged),
        "paged_seconds": paged_seconds,
    }


# Every column that read_subnets returns; "first" and "last" are UHUGEINT,
# which DuckDB 2.0 cannot convert to NumPy.
_BASELINE_QUERY = (
    "SELECT id, cidr, prefix_length, version, status, purpose, vrf, vlan_id, "
    "owner, parent_id, is_container, is_pool, tags, created_at, updated_at "
    "FROM subnets"
)


def time_baseline(path: Path) -> tuple[float, float]:
    """Time DuckDB's own query of the same columns into a DataFrame, twice.

    Return the seconds of ``.df()`` and of an Arrow table converted with
    pyarrow's ``to_pandas()``, the two ways DuckDB offers.
    """
    connection = duckdb.connect(str(path), read_only=True)
    try:
        started = time.perf_counter()
        connection.execute(_BASELINE_QUERY).df()
        numpy_seconds = time.perf_counter() - started
        started = time.perf_counter()
        connection.sql(_BASELINE_QUERY).to_arrow_table().to_pandas()
        arrow_seconds = time.perf_counter() - started
        return numpy_seconds, arrow_seconds
    finally:
        connection.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument(
        "--sample", type=int, default=20_000, help="rows to read by paging"
    )
    parser.add_argument(
        "--fill",
        choices=["import", "bulk"],
        default="import",
        help="fill through the import API or with Store.bulk_insert",
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bench.duckdb"
        workspace = "default"
        if args.fill == "bulk":
            from bench_export import WORKSPACE
            from bench_export import fill as bulk_fill

            workspace = WORKSPACE
            _, fill_seconds = bulk_fill(path, args.rows)
        else:
            fill_seconds = fill(path, args.rows)
        print(f"filled in {fill_seconds:.1f} s", flush=True)
        reads = time_reads(path, args.sample, workspace)
        print(reads, flush=True)
        baseline, arrow_baseline = time_baseline(path)
    total = reads["total"]
    rate = reads["paged_rows"] / reads["paged_seconds"]
    memory = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"## {now}, {total:,} subnets",
        "",
        f"Machine: {platform.platform()}, Python {platform.python_version()}, "
        f"DuckDB {duckdb.__version__}, pandas {pd.__version__}, "
        f"{os.cpu_count()} CPUs.",
        "",
        "| step | rows | seconds |",
        "|---|---|---|",
        f"| fill ({FILL_LABELS[args.fill]}) | {total:,} | {fill_seconds:.1f} |",
        f"| `client.subnets.to_pandas()` (bulk query) | {reads['bulk_rows']:,} "
        f"| {reads['bulk_seconds']:.2f} |",
        f"| paging `client.subnets.list` into a DataFrame | {reads['paged_rows']:,} "
        f"| {reads['paged_seconds']:.2f} |",
        f"| DuckDB query of the same columns to `.df()` (baseline) | {total:,} "
        f"| {baseline:.2f} |",
        f"| the same query to an Arrow table, then pyarrow `to_pandas()` | {total:,} "
        f"| {arrow_baseline:.2f} |",
        "",
        f"Paging reads {rate:,.0f} rows/s, so all {total:,} rows would take about "
        f"{total / rate:,.0f} s (extrapolated from the first "
        f"{reads['paged_rows']:,} rows, not measured; OFFSET paging slows down "
        "further into the table, so this is a lower bound).",
        f"Peak memory: process resident set {memory:,.0f} MiB (ru_maxrss).",
        f"Load average (1, 5, 15 min) at the end: {load}.",
        "",
    ]
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    if not RESULTS.exists():
        RESULTS.write_text(
            "# Subnets into a DataFrame\n\nWritten by `bench/bench_dataframe.py`.\n\n"
        )
    with RESULTS.open("a") as results:
        results.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
