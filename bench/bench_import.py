"""Time a dry-run import of a large subnet CSV against DuckDB's own read_csv.

Run from the repository root::

    python bench/bench_import.py --rows 1000000

The generated file is deterministic. Every 256th row is a /16 container and
the rows after it are /24s inside it. A few rows make conflicts on purpose.
One row in 1,000 repeats an earlier network with another owner
(``duplicate`` and ``ownership_mismatch``). One in 5,000 is a /22 leaf that
contains neighbouring /24s (``cidr_overlap``). One in 2,000 has host bits
set (a row error). Before the import, the store holds 1,000 subnets, some of
which the file duplicates.

The dry run goes through the import job API on a DuckDB file: start, wait for
``awaiting_review``, then read the full conflict report. The baseline is
``CREATE TABLE ... AS SELECT * FROM read_csv(...)`` of the same file in a new
DuckDB connection, in the same run. Peak memory is the process peak resident
set size (``ru_maxrss``), which includes DuckDB's memory; tracemalloc is not
used because it slows the Python parts it traces. Results are appended to
``bench/results/import.md``.
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

import duckdb

from omnitwin.engine.context import Context
from omnitwin.engine.engine import Engine

RESULTS = Path(__file__).resolve().parent / "results" / "import.md"
BLOCK = 256


def generate_csv(rows: int) -> bytes:
    """Return a subnet CSV with ``rows`` data rows (see the module docstring)."""
    lines = ["cidr,status,purpose,owner,vlan,vrf"]
    base = 10 << 24
    for index in range(rows):
        block, offset = divmod(index, BLOCK)
        block_first = base + block * 65536
        if offset == 0:
            network = f"{ipaddress.IPv4Address(block_first)}/16"
            lines.append(f"{network},container,block {block},team:net,,")
            continue
        first = block_first + (offset - 1) * 256
        cidr = f"{ipaddress.IPv4Address(first)}/24"
        owner = "team:web"
        if index % 1000 == 999:
            cidr = f"{ipaddress.IPv4Address(first - 256)}/24"
            owner = "team:db"
        elif index % 5000 == 2500:
            cidr = f"{ipaddress.IPv4Address(first & ~0x3FF)}/22"
        elif index % 2000 == 1000:
            cidr = f"{ipaddress.IPv4Address(first + 5)}/24"
        lines.append(f"{cidr},allocated,row {index},{owner},{100 + offset % 3000},")
    return ("\n".join(lines) + "\n").encode()


def seed_store(engine: Engine, ctx: Context) -> None:
    """Store 1,000 /24 leaves in 172.16.0.0/12 and 100 that the file repeats."""
    from omnitwin.engine import cidr
    from omnitwin.engine.subnets import SubnetInput

    items = [
        SubnetInput(
            cidr.parse_network(
                f"{ipaddress.IPv4Address((172 << 24) + (16 << 16) + i * 256)}/24"
            )
        )
        for i in range(900)
    ]
    items += [
        SubnetInput(
            cidr.parse_network(
                f"{ipaddress.IPv4Address((10 << 24) + i * 65536 + 256)}/24"
            ),
            owner="team:other",
        )
        for i in range(100)
    ]
    engine.subnets.create_many(ctx, items)


def time_baseline(path: Path) -> float:
    """Return the seconds DuckDB takes to read the whole file into a table."""
    conn = duckdb.connect()
    started = time.perf_counter()
    conn.execute(f"CREATE TABLE t AS SELECT * FROM read_csv('{path}')")
    elapsed = time.perf_counter() - started
    count = conn.execute("SELECT count(*) FROM t").fetchone()
    conn.close()
    assert count is not None
    return elapsed


def time_dry_run(data: bytes, folder: Path) -> dict[str, float | int | str]:
    """Run the dry-run import through the job API; return timings and counts."""
    engine = Engine(folder / "twin.duckdb")
    ctx = Context(actor="user:bench")
    seed_store(engine, ctx)
    started = time.perf_counter()
    job = engine.imports.start(ctx, "csv", data, dry_run=True, filename="bench.csv")
    job = engine.imports.wait(ctx, job.id, timeout=3600)
    planned = time.perf_counter() - started
    conflicts = engine.imports.conflicts(ctx, job.id)
    reported = time.perf_counter() - started
    engine.close()
    assert job.plan is not None, job.error
    return {
        "status": job.status,
        "planned_s": planned,
        "report_s": reported,
        "conflicts": len(conflicts),
        "row_errors": len(job.plan.row_errors),
        "create": job.plan.create.get("subnet", 0),
        "skip": job.plan.skip.get("subnet", 0),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="data rows")
    args = parser.parse_args()

    data = generate_csv(args.rows)
    with tempfile.TemporaryDirectory(prefix="omnitwin-bench-") as name:
        folder = Path(name)
        path = folder / "prefixes.csv"
        path.write_bytes(data)
        baseline = time_baseline(path)
        result = time_dry_run(data, folder)
    rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    ratio = float(result["report_s"]) / baseline
    lines = [
        f"## {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC, "
        f"{args.rows:,} rows ({len(data) / 2**20:.1f} MiB)",
        "",
        f"Machine: {platform.platform()}, Python {platform.python_version()}, "
        f"DuckDB {duckdb.__version__}, {os.cpu_count()} CPUs.",
        "",
        "| step | seconds |",
        "|---|---|",
        f"| DuckDB `read_csv` into a table (baseline) | {baseline:.2f} |",
        f"| dry run: start to `{result['status']}` | {result['planned_s']:.2f} |",
        f"| dry run plus reading the conflict report | {result['report_s']:.2f} |",
        "",
        f"Ratio to the baseline: {ratio:.1f}x. Plan: {result['create']:,} to "
        f"create, {result['skip']:,} to skip; {result['conflicts']:,} conflicts; "
        f"{result['row_errors']:,} row errors.",
        f"Peak memory: process resident set {rss_mib:.0f} MiB (ru_maxrss, which "
        "includes DuckDB's memory and the generated file).",
        "",
    ]
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with RESULTS.open("a", encoding="utf-8") as out:
        if out.tell() == 0:
            out.write("# Import dry run\n\nWritten by `bench/bench_import.py`.\n\n")
        out.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
