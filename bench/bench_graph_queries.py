"""Median latency of depth-2 subgraphs and shortest paths on a large graph.

Run from the repository root::

    python bench/bench_graph_queries.py --nodes 50000 --edges 200000

The graph is a seeded G(n, m) random graph of devices whose links cost 1 to
100. Each query picks random devices with the same seed, so runs repeat.
Results are appended to ``bench/results/graph_queries.md``.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import random
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import networkx as nx

from omnitwin.engine.topology import Link, build_topology, shortest_path, subgraph
from omnitwin.errors import NoPath

RESULTS = Path(__file__).resolve().parent / "results" / "graph_queries.md"


def build_graph(nodes: int, edges: int, seed: int) -> nx.MultiGraph[str]:
    rng = random.Random(seed)
    shape = nx.gnm_random_graph(nodes, edges, seed=seed)
    links = [
        Link(f"d{u}", f"d{v}", None, None, None, float(rng.randint(1, 100)))
        for u, v in shape.edges()
    ]
    return build_topology([{"id": f"d{n}"} for n in range(nodes)], links)


def time_queries(query: Callable[[], object], count: int) -> list[float]:
    timings = []
    for _ in range(count):
        started = time.perf_counter()
        query()
        timings.append(time.perf_counter() - started)
    return timings


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=50000, help="device count")
    parser.add_argument("--edges", type=int, default=200000, help="link count")
    parser.add_argument("--queries", type=int, default=200, help="queries per kind")
    parser.add_argument("--seed", type=int, default=11, help="graph and query seed")
    parser.add_argument("--output", type=Path, default=RESULTS, help="Markdown file")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    graph = build_graph(args.nodes, args.edges, args.seed)
    build_seconds = time.perf_counter() - started
    devices = sorted(graph)
    rng = random.Random(args.seed)
    sizes: list[int] = []
    no_path = 0

    def one_subgraph() -> None:
        found = subgraph(graph, rng.choice(devices), depth=2)
        sizes.append(found.number_of_nodes())

    def one_path() -> None:
        nonlocal no_path
        try:
            source, target = rng.sample(devices, 2)
            shortest_path(graph, source, target)
        except NoPath:
            no_path += 1

    sub_ms = [t * 1000 for t in time_queries(one_subgraph, args.queries)]
    path_ms = [t * 1000 for t in time_queries(one_path, args.queries)]

    lines = [
        f"## {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC, "
        f"{args.nodes} nodes, {args.edges} edges",
        "",
        f"- command: `python bench/bench_graph_queries.py --nodes {args.nodes} "
        f"--edges {args.edges} --queries {args.queries} --seed {args.seed}`",
        f"- machine: {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"networkx {nx.__version__}",
        f"- graph built in {build_seconds:.1f} s",
        f"- subgraph depth 2: median {statistics.median(sub_ms):.2f} ms, "
        f"max {max(sub_ms):.2f} ms over {args.queries} queries; "
        f"median {statistics.median(sizes):.0f} nodes returned",
        f"- shortest_path: median {statistics.median(path_ms):.2f} ms, "
        f"max {max(path_ms):.2f} ms over {args.queries} queries; "
        f"{no_path} pairs had no path",
        "",
    ]
    report = "\n".join(lines)
    print(report)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    new_file = not args.output.exists()
    with args.output.open("a", encoding="utf-8") as out:
        if new_file:
            out.write("# Graph query benchmark\n\n")
        out.write(report + "\n")


if __name__ == "__main__":
    main()
