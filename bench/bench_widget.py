"""Time the topology widget in JupyterLab and headless Chromium.

Run from the repository root (needs /usr/bin/chromium, see .ci/system-packages)::

    python bench/bench_widget.py --sizes 500 2000

For each size the script writes a notebook that builds the generated sample
network (12 sites, 8 leaves, 4 servers per leaf: about 2,900 nodes plus
edges) in memory and shows
``TopologyWidget(client.topology.graph(max_elements=SIZE))``, so the server
prunes the graph to at most SIZE nodes plus edges. It starts JupyterLab on 127.0.0.1
with a temporary home (the helpers of ``tests/notebook``), opens the
notebook in Chromium with every other address blocked, and runs all cells.
Three times are reported: fetching the pruned graph through the client and
building the widget in the kernel (both printed by the cell), and from the
moment the widget cell starts until the cytoscape node layer has painted
pixels. The page polls for painted pixels every 50 ms from before Run All;
the cell prints its start on the same wall clock (``time.time()``).
Results are appended to ``bench/results/widget.md``.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import re
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "notebook"))

from _browser import chromium_page, painted_pixels  # noqa: E402
from _lab import jupyter_lab, run_all_and_wait, write_notebook  # noqa: E402

RESULTS = REPO / "bench" / "results" / "widget.md"

SETUP = (
    "import time\n"
    "import omnitwin\n"
    "from omnitwin.notebook import load_sample_twin\n"
    "from omnitwin.notebook.widgets import TopologyWidget\n"
    "client = omnitwin.connect(':memory:')\n"
    "_ = load_sample_twin(client, sites=12, leaves=8, servers_per_leaf=4)"
)
WIDGET = (
    "print(f'START {{time.time() * 1000:.0f}}')\n"
    "started = time.perf_counter()\n"
    "graph = client.topology.graph(annotate_drift=True, max_elements={size})\n"
    "fetched = time.perf_counter()\n"
    "view = TopologyWidget(graph)\n"
    "built = time.perf_counter()\n"
    "print(f'FETCH {{fetched - started:.3f}} BUILD {{built - fetched:.3f}} '\n"
    "      f'ELEMENTS {{view.node_count + view.edge_count}}')\n"
    "view"
)

# Polls every 50 ms from before Run All and stores the wall-clock time (ms
# since the epoch, the same clock as the kernel's time.time()) at which a
# cytoscape node layer first has painted pixels.
WATCH_PAINT_JS = """
() => {
  window.benchPainted = null;
  const poll = () => {
    for (const canvas of document.querySelectorAll('canvas[data-id="layer2-node"]')) {
      if (!canvas.width || !canvas.height) { continue; }
      const data = canvas.getContext('2d')
        .getImageData(0, 0, canvas.width, canvas.height).data;
      for (let i = 3; i < data.length; i += 4) {
        if (data[i] > 0) { window.benchPainted = Date.now(); return; }
      }
    }
    setTimeout(poll, 50);
  };
  poll();
}
"""


def measure(size: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as folder:
        home = Path(folder)
        root = home / "notebooks"
        root.mkdir()
        write_notebook(root / "bench.ipynb", [SETUP, WIDGET.format(size=size)])
        with jupyter_lab(home, root) as lab, chromium_page() as (page, _blocked):
            page.goto(lab.notebook_url("bench.ipynb"))
            page.evaluate(WATCH_PAINT_JS)
            run_all_and_wait(page, 2, timeout=300)
            page.wait_for_function(
                "() => window.benchPainted !== null", timeout=120_000
            )
            painted_at = page.evaluate("window.benchPainted")
            output = " ".join(page.locator(".jp-OutputArea-output").all_inner_texts())
            pixels = max(painted_pixels(page) or [0])
    start = re.search(r"START (\d+)", output)
    build = re.search(r"FETCH ([\d.]+) BUILD ([\d.]+) ELEMENTS (\d+)", output)
    if start is None or build is None:
        raise RuntimeError(f"the widget cell did not report its timings: {output}")
    return {
        "fetch": float(build.group(1)),
        "build": float(build.group(2)),
        "elements": int(build.group(3)),
        "render": (painted_at - int(start.group(1))) / 1000,
        "pixels": pixels,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[500, 2000])
    args = parser.parse_args()

    rows = []
    for size in args.sizes:
        started = time.perf_counter()
        result = measure(size)
        print(size, result, f"{time.perf_counter() - started:.1f} s", flush=True)
        rows.append(
            f"| {size:,} | {result['elements']:,} | {result['fetch']:.2f} "
            f"| {result['build']:.2f} | {result['render']:.2f} | {result['pixels']:,} |"
        )
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"## {now}",
        "",
        f"Machine: {platform.platform()}, Python {platform.python_version()}, "
        f"{os.cpu_count()} CPUs; JupyterLab and Chromium on the same machine.",
        "",
        "| max_elements | elements shown | graph fetch (s) "
        "| widget build in kernel (s) | cell start to painted canvas (s) "
        "| painted pixels |",
        "|---|---|---|---|---|---|",
        *rows,
        "",
    ]
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    if not RESULTS.exists():
        RESULTS.write_text(
            "# Topology widget rendering\n\nWritten by `bench/bench_widget.py`.\n\n"
        )
    with RESULTS.open("a") as results:
        results.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
