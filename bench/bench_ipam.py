"""Benchmark free-block search and allocation against the netaddr.IPSet approach.

Run: ``python bench/bench_ipam.py [--children 50000] [--stored 1000000]``.

Part 1 stores 10.0.0.0/8 with ``--children`` allocated children of mixed
lengths (/22 to /28) and times, in the same run:

- omnitwin: ``client.subnets.available(24, subnet_id=..., limit=1000)``, which
  returns the first 1,000 free /24s and the count of every free /24;
- baseline: the set-difference approach of common IPAM tools, building
  ``netaddr.IPSet([parent]) - IPSet(children)`` and walking its CIDRs.

Part 2 bulk-creates ``--stored`` /28 subnets in 10.0.0.0/8 and measures the
throughput of single allocations against that store, and peak memory.
Results go to ``bench/results/ipam.md``.
"""

from __future__ import annotations

import argparse
import ipaddress
import random
import resource
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

import netaddr

import omnitwin
from omnitwin.engine.context import Context
from omnitwin.engine.engine import Engine
from omnitwin.engine.subnets import SubnetInput

RESULTS = Path(__file__).resolve().parent / "results" / "ipam.md"
LENGTH_WEIGHTS = {22: 3, 23: 5, 24: 25, 25: 17, 26: 17, 27: 17, 28: 16}


def mixed_children(count: int, seed: int = 1) -> list[ipaddress.IPv4Network]:
    """Return ``count`` disjoint networks of /22../28 spread over 10.0.0.0/8."""
    rng = random.Random(seed)
    lengths = list(LENGTH_WEIGHTS)
    weights = list(LENGTH_WEIGHTS.values())
    cursor = int(ipaddress.IPv4Address("10.0.0.0"))
    end = cursor + 2**24
    children = []
    for _ in range(count):
        length = rng.choices(lengths, weights)[0]
        size = 2 ** (32 - length)
        cursor = -(-cursor // size) * size
        if cursor + size > end:
            raise SystemExit(f"only {len(children)} children fit in 10.0.0.0/8")
        children.append(ipaddress.IPv4Network((cursor, length)))
        cursor += size + rng.choice((0, 0, 16, 64, 256))
    return children


def median_ms(function, repeats: int) -> tuple[float, object]:  # type: ignore[no-untyped-def]
    times = []
    result = None
    for _ in range(repeats):
        started = time.perf_counter()
        result = function()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), result


def netaddr_free_24s(
    parent: str, children: list[str], limit: int
) -> tuple[list[str], int]:
    """Compute the baseline: IPSet difference, then /24s carved from each free CIDR."""
    free = netaddr.IPSet([parent]) - netaddr.IPSet(children)
    blocks: list[str] = []
    total = 0
    for network in free.iter_cidrs():
        if network.prefixlen > 24:
            continue
        count = 2 ** (24 - network.prefixlen)
        total += count
        if len(blocks) < limit:
            for sub in network.subnet(24):
                blocks.append(str(sub))
                if len(blocks) >= limit:
                    break
    return blocks, total


def part_free_blocks(children_count: int, repeats: int) -> list[str]:
    children = mixed_children(children_count)
    client = omnitwin.connect("local::memory:")
    engine: Engine = client.backend.engine  # type: ignore[attr-defined]
    ctx = Context()
    parent = engine.subnets.create(ctx, "10.0.0.0/8", is_container=True)
    started = time.perf_counter()
    engine.subnets.create_many(ctx, [SubnetInput(network=c) for c in children])
    load_s = time.perf_counter() - started

    ours_ms, ours = median_ms(
        lambda: client.subnets.available(24, subnet_id=parent.id, limit=1000), repeats
    )
    count_ms, counted = median_ms(
        lambda: client.subnets.available(24, subnet_id=parent.id, limit=1), repeats
    )
    texts = [str(c) for c in children]
    base_ms, base = median_ms(
        lambda: netaddr_free_24s("10.0.0.0/8", texts, 1000), max(3, repeats // 5)
    )
    assert ours.blocks == base[0], "omnitwin and netaddr disagree on the free /24s"
    assert ours.total_free == base[1] == counted.total_free
    return [
        f"Store: 10.0.0.0/8 with {children_count:,} allocated children of /22 to /28 "
        f"(bulk-created in {load_s:.1f} s).",
        "",
        "| query | omnitwin median | netaddr.IPSet median | ratio |",
        "|---|---|---|---|",
        f"| first 1,000 free /24s and the count of all ({ours.total_free:,}) "
        f"| {ours_ms:.2f} ms | {base_ms:.1f} ms | {base_ms / ours_ms:.0f}x |",
        f"| count of all free /24s (limit 1) | {count_ms:.2f} ms | {base_ms:.1f} ms "
        f"| {base_ms / count_ms:.0f}x |",
        "",
        f"omnitwin times are medians of {repeats} calls through the public sync "
        "client on the embedded engine; the baseline builds the IPSet from the "
        f"children on each call, as a stateless IPAM request would "
        f"(median of {max(3, repeats // 5)}). Both return the same blocks and count.",
    ]


def part_large_store(stored: int, allocations: int) -> list[str]:
    tracemalloc.start()
    client = omnitwin.connect("local::memory:")
    engine: Engine = client.backend.engine  # type: ignore[attr-defined]
    ctx = Context()
    parent = engine.subnets.create(ctx, "10.0.0.0/8", is_container=True)
    base = int(ipaddress.IPv4Address("10.0.0.0"))
    items = [
        SubnetInput(network=ipaddress.IPv4Network((base + i * 16, 28)))
        for i in range(stored)
    ]
    started = time.perf_counter()
    engine.subnets.create_many(ctx, items)
    load_s = time.perf_counter() - started
    del items
    client.subnets.available(28, subnet_id=parent.id, limit=1)  # warm the index
    started = time.perf_counter()
    for _ in range(allocations):
        client.subnets.allocate(28, subnet_id=parent.id)
    alloc_s = time.perf_counter() - started
    _, python_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    assert client.subnets.list().total == stored + allocations + 1
    return [
        f"Store: {stored:,} /28 subnets in 10.0.0.0/8, bulk-created in {load_s:.1f} s "
        f"({stored / load_s:,.0f} subnets/s, with their audit events).",
        "",
        f"- Allocation: {allocations:,} single `allocate(28)` calls from the /8 in "
        f"{alloc_s:.2f} s: {allocations / alloc_s:,.0f} allocations/s "
        f"({alloc_s / allocations * 1000:.2f} ms each, each in its own "
        "transaction with its audit event).",
        f"- Peak memory: {python_peak / 2**20:,.0f} MiB of Python objects "
        f"(tracemalloc), {rss_mb:,.0f} MiB resident for the whole process "
        "(ru_maxrss, DuckDB included).",
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--children", type=int, default=50_000)
    parser.add_argument(
        "--stored",
        type=int,
        default=1_000_000,
        help="subnets in the large store (0 skips that part)",
    )
    parser.add_argument("--allocations", type=int, default=2_000)
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    lines = [
        "# IPAM benchmark",
        "",
        f"Machine: {sys.platform}, Python {sys.version.split()[0]}, "
        f"{__import__('os').cpu_count()} cores. Script: `bench/bench_ipam.py`.",
        "",
        "## Free-block search",
        "",
    ]
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    lines += part_free_blocks(args.children, args.repeats)
    RESULTS.write_text("\n".join(lines) + "\n")
    print("\n".join(lines), flush=True)
    if args.stored:
        part = ["", "## Allocation against a large store", ""]
        part += part_large_store(args.stored, args.allocations)
        lines += part
        RESULTS.write_text("\n".join(lines) + "\n")
        print("\n".join(part))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
