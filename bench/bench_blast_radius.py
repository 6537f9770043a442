"""Time blast_radius_all against one removal-and-recount per device.

Run from the repository root::

    python bench/bench_blast_radius.py --devices 20000

The fabric is deterministic: each site has two spines, eight leaves and
servers, and every site's spines connect to two core routers. Most servers
are dual-homed to a leaf pair, every fifth is single-homed, so the leaves
become articulation points. The baseline removes one device from the device
graph, recounts its connected components and puts the device back. It runs on
a random sample of devices, and its total for all devices is extrapolated from
the sample mean. Results are appended to ``bench/results/blast_radius.md``.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import random
import statistics
import time
from pathlib import Path

import networkx as nx

from omnitwin.engine.topology import Link, blast_radius_all, build_topology

RESULTS = Path(__file__).resolve().parent / "results" / "blast_radius.md"
LEAVES_PER_SITE = 8
SERVERS_PER_LEAF = 10


def build_fabric(device_count: int) -> nx.MultiGraph[str]:
    """Build a spine-leaf fabric with exactly ``device_count`` devices."""
    devices = [{"id": "core-1", "site": "core"}, {"id": "core-2", "site": "core"}]
    links: list[Link] = []

    def add(device: str, site: str, uplinks: list[str]) -> bool:
        if len(devices) >= device_count:
            return False
        devices.append({"id": device, "site": site})
        for port, uplink in enumerate(uplinks):
            links.append(Link(device, uplink, f"up{port}", None, None))
        return True

    site_index = 0
    while len(devices) < device_count:
        site = f"site-{site_index:04d}"
        spines = [f"{site}-spine-{i}" for i in (1, 2)]
        for spine in spines:
            add(spine, site, ["core-1", "core-2"])
        leaves = [f"{site}-leaf-{i}" for i in range(1, LEAVES_PER_SITE + 1)]
        for leaf in leaves:
            add(leaf, site, spines)
        server = 0
        for pair in range(0, LEAVES_PER_SITE, 2):
            for _ in range(2 * SERVERS_PER_LEAF):
                uplinks = (
                    leaves[pair : pair + 2] if server % 5 else leaves[pair : pair + 1]
                )
                add(f"{site}-srv-{server:03d}", site, uplinks)
                server += 1
        site_index += 1

    return build_topology(devices, links)


def baseline(
    devices: nx.Graph[str], sample: list[str]
) -> tuple[list[float], dict[str, set[str]]]:
    """Per device: remove it, recount components, take the affected set, restore."""
    timings: list[float] = []
    radii: dict[str, set[str]] = {}
    for device in sample:
        started = time.perf_counter()
        neighbours = list(devices[device])
        before = nx.node_connected_component(devices, device)
        devices.remove_node(device)
        pieces = [p for p in nx.connected_components(devices) if p <= before]
        largest = max((len(p) for p in pieces), default=0)
        rest = set().union(*(p for p in pieces if len(p) == largest))
        radii[device] = (before - rest) | {device}
        devices.add_edges_from((device, n) for n in neighbours)
        timings.append(time.perf_counter() - started)
    return timings, radii


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=20000, help="device count")
    parser.add_argument("--sample", type=int, default=200, help="baseline sample size")
    parser.add_argument("--seed", type=int, default=7, help="sample seed")
    parser.add_argument("--output", type=Path, default=RESULTS, help="Markdown file")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    graph = build_fabric(args.devices)
    build_seconds = time.perf_counter() - started
    devices = nx.Graph(
        (u, v) for u, v, d in graph.edges(data=True) if d["relation"] == "connected_to"
    )
    articulation = sum(1 for _ in nx.articulation_points(devices))

    started = time.perf_counter()
    radii = blast_radius_all(graph)
    one_pass = time.perf_counter() - started

    sample = random.Random(args.seed).sample(
        sorted(devices), min(args.sample, len(devices))
    )
    timings, sampled = baseline(devices, sample)
    mismatched = [d for d in sample if sampled[d] != radii[d]]
    if mismatched:
        raise SystemExit(
            f"blast_radius_all differs from the baseline on {mismatched[:5]}"
        )
    per_device = statistics.fmean(timings)
    extrapolated = per_device * devices.number_of_nodes()
    ratio = extrapolated / one_pass

    lines = [
        f"## {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC, "
        f"{args.devices} devices",
        "",
        f"- command: `python bench/bench_blast_radius.py --devices {args.devices} "
        f"--sample {args.sample} --seed {args.seed}`",
        f"- machine: {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"networkx {nx.__version__}",
        f"- fabric: {devices.number_of_nodes()} devices, "
        f"{devices.number_of_edges()} device pairs with links, "
        f"{articulation} articulation points, built in {build_seconds:.2f} s",
        f"- blast_radius_all (every device, one pass): {one_pass:.3f} s; "
        f"largest affected set {max(len(r) for r in radii.values())} devices",
        f"- baseline, remove and recount: {per_device * 1000:.2f} ms per device, "
        f"mean of {len(sample)} sampled devices",
        f"- baseline for all devices: {extrapolated:.1f} s, an estimate "
        f"extrapolated from the sample",
        f"- ratio baseline / one pass: {ratio:.0f}x; the sampled devices' "
        "affected sets equal blast_radius_all",
        "",
    ]
    report = "\n".join(lines)
    print(report)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    new_file = not args.output.exists()
    with args.output.open("a", encoding="utf-8") as out:
        if new_file:
            out.write("# blast_radius_all benchmark\n\n")
        out.write(report + "\n")


if __name__ == "__main__":
    main()
