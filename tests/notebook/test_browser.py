"""JupyterLab in headless Chromium: Run All on a notebook of omnitwin widgets.

Each test starts a real JupyterLab on 127.0.0.1 with a temporary home and a
token, opens a notebook in Debian's Chromium (every request not to 127.0.0.1
is blocked) and runs all cells. The negative control disables the
``anywidget`` extension, which paints the topology graph, in the temporary
configuration. That must make the canvas check fail while the plain
ipywidgets still render.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import pytest
from _browser import chromium_available, chromium_page, painted_pixels
from _lab import (
    WATCH_AGENT_JS,
    disable_extension,
    jupyter_lab,
    page_config,
    run_all_and_wait,
    write_notebook,
)
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not chromium_available(), reason="needs /usr/bin/chromium and playwright"
    ),
]

CELLS = [
    "%load_ext omnitwin",
    "connection = %omnitwin connect :memory: --sample --sites 1\n"
    "client = connection.client",
    "from omnitwin.notebook.widgets import topology_widget\n"
    "topology_widget(client, blast_radius='leaf-01.nyc1')",
    "from omnitwin.notebook.drift_explorer import DriftExplorer\nDriftExplorer(client)",
    "%%omnitwin --var run\nShow drift on leaf-01.nyc1",
]


# Returns the page coordinates of the node labelled `label` in the first
# topology graph, from the cytoscape instance that widgets/topology.js keeps
# on its container.
NODE_POSITION_JS = """
(label) => {
  const container = document.querySelector('.omnitwin-cytoscape');
  const node = container.cytoscape.nodes().filter(n => n.data('label') === label)[0];
  const box = container.getBoundingClientRect();
  const position = node.renderedPosition();
  return {x: box.left + position.x, y: box.top + position.y};
}
"""


def click_node(page: Any, label: str) -> str:
    """Click the node labelled ``label`` and return the inspection panel's title."""
    page.locator(".omnitwin-cytoscape").first.scroll_into_view_if_needed()
    position = page.evaluate(NODE_POSITION_JS, label)
    page.mouse.click(position["x"], position["y"])
    title = page.locator(".omnitwin-topology strong").first
    title.wait_for(timeout=20_000)
    text: str = title.inner_text()
    return text


def run_notebook(home: Path, *, click: bool = True) -> dict[str, Any]:
    root = home / "notebooks"
    root.mkdir()
    write_notebook(root / "check.ipynb", CELLS)
    with jupyter_lab(home, root) as lab, chromium_page() as (page, blocked):
        page.goto(lab.notebook_url("check.ipynb"))
        page.evaluate(WATCH_AGENT_JS)
        run_all_and_wait(page, len(CELLS))
        page.locator(".omnitwin-drift-explorer select").first.wait_for()
        page.wait_for_timeout(2_000)
        pixels = painted_pixels(page)
        return {
            "pixels": pixels,
            "inspected": click_node(page, "leaf-01.nyc1") if click else None,
            "seen": page.evaluate("window.omnitwinSeen"),
            "selects": page.locator(".omnitwin-drift-explorer select").count(),
            "buttons": page.locator(
                ".omnitwin-drift-explorer button"
            ).all_inner_texts(),
            "progress": page.locator(".omnitwin-job-progress").count(),
            "final": page.locator(".omnitwin-final").inner_text(),
            "blocked": list(blocked.urls),
        }


@pytest.fixture(scope="module")
def enabled(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return run_notebook(tmp_path_factory.mktemp("lab"))


@pytest.fixture(scope="module")
def disabled(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    home = tmp_path_factory.mktemp("lab-disabled")
    disable_extension(home, "anywidget")
    assert page_config(home)["disabledExtensions"] == {"anywidget": True}
    return run_notebook(home, click=False)


def test_topology_canvas_is_painted(enabled: dict[str, Any]) -> None:
    assert enabled["pixels"]
    assert max(enabled["pixels"]) > 1_000


def test_node_click_fills_panel(enabled: dict[str, Any]) -> None:
    assert enabled["inspected"] == "leaf-01.nyc1"


def test_drift_explorer_controls_exist(enabled: dict[str, Any]) -> None:
    assert enabled["selects"] == 4
    assert enabled["buttons"] == ["Reconcile"]
    assert enabled["progress"] == 1


def test_agent_status_before_result(enabled: dict[str, Any]) -> None:
    seen = [state for state in enabled["seen"] if state != "empty"]
    assert seen[:2] == ["status", "final"]
    assert "os_version" in enabled["final"]


def test_lab_made_no_outside_requests(enabled: dict[str, Any]) -> None:
    assert enabled["blocked"] == []


def test_disabled_extension_paints_nothing(disabled: dict[str, Any]) -> None:
    assert not any(disabled["pixels"])


def test_disabled_extension_keeps_ipywidgets(disabled: dict[str, Any]) -> None:
    assert disabled["selects"] == 4


TWO_NODES = (
    "{'nodes': [{'data': {'id': 'a'}}, {'data': {'id': 'b'}}],"
    " 'edges': [{'data': {'id': 'e', 'source': 'a', 'target': 'b'}}]}"
)
UPDATE_CELLS = [
    "from omnitwin.notebook.widgets import CytoscapeGraph\n"
    f"late = CytoscapeGraph(elements={TWO_NODES}, height='0px')\n"
    "late",
    "late.height = '200px'",
    f"broken = CytoscapeGraph(elements={TWO_NODES}, height='200px')\nbroken",
    # The kernel waits so that the front end paints the graph before the
    # invalid elements (an edge to a missing node) arrive.
    "import time\n"
    "time.sleep(3)\n"
    "broken.elements = {'nodes': [{'data': {'id': 'a'}}],"
    " 'edges': [{'data': {'id': 'x', 'source': 'a', 'target': 'missing'}}]}",
]

# Returns [elements painted, height in pixels] of each graph on the page.
GRAPHS_JS = """
() => Array.from(document.querySelectorAll('.omnitwin-cytoscape')).map(
  c => [c.cytoscape ? c.cytoscape.elements().length : null, c.clientHeight])
"""


@pytest.fixture(scope="module")
def updated(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    home = tmp_path_factory.mktemp("lab-updates")
    root = home / "notebooks"
    root.mkdir()
    write_notebook(root / "updates.ipynb", UPDATE_CELLS)
    with jupyter_lab(home, root) as lab, chromium_page() as (page, blocked):
        page.goto(lab.notebook_url("updates.ipynb"))
        run_all_and_wait(page, len(UPDATE_CELLS))
        error = page.locator(".omnitwin-cytoscape-error")
        with contextlib.suppress(PlaywrightTimeoutError):
            error.wait_for(timeout=20_000)
        return {
            "graphs": page.evaluate(GRAPHS_JS),
            "error": error.inner_text() if error.count() else None,
            "blocked": list(blocked.urls),
        }


def test_height_set_before_paint(updated: dict[str, Any]) -> None:
    late = updated["graphs"][0]
    assert late == [3, 200]


def test_invalid_elements_keep_graph(updated: dict[str, Any]) -> None:
    broken = updated["graphs"][1]
    assert broken == [3, 200]
    assert updated["error"] is not None
    assert "the new elements are invalid" in updated["error"]
    assert "missing" in updated["error"]
    assert updated["blocked"] == []
