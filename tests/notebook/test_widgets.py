"""Topology widget and drift explorer, driven from Python on the embedded engine."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import comm
import pytest

import omnitwin
from omnitwin.models import TopologyGraph
from omnitwin.notebook import load_sample_twin
from omnitwin.notebook.drift_explorer import DriftExplorer
from omnitwin.notebook.widgets import TopologyWidget, topology_widget
from testdata import data_file


@pytest.fixture
def client() -> Iterator[omnitwin.Client]:
    with omnitwin.connect(":memory:") as twin:
        load_sample_twin(twin, sites=1)
        yield twin


@pytest.fixture
def published(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, dict[str, Any]]]:
    """Record the messages that every new widget comm publishes to the front end."""
    messages: list[tuple[str, dict[str, Any]]] = []

    class RecordingComm(comm.DummyComm):
        def publish_msg(
            self, msg_type: str, data: Any = None, *args: Any, **kwargs: Any
        ) -> None:
            messages.append((msg_type, data or {}))

    monkeypatch.setattr(comm, "create_comm", RecordingComm)
    return messages


def opened_models(messages: list[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    return [data["state"] for kind, data in messages if kind == "comm_open"]


def classes_by_label(widget: TopologyWidget) -> dict[str, str]:
    return {
        node["data"]["label"]: node["classes"] for node in widget.elements()["nodes"]
    }


def test_blast_radius_highlights_devices(client: omnitwin.Client) -> None:
    widget = topology_widget(client, blast_radius="leaf-01.nyc1")
    classes = classes_by_label(widget)
    assert "target" in classes["leaf-01.nyc1"]
    assert "highlight" in classes["srv-01-01.nyc1"]
    assert "highlight" not in classes["spine-01.nyc1"]


def test_blast_radius_of_link_centres_on_end(client: omnitwin.Client) -> None:
    link = client.drift.links()["missing"][0]
    widget = topology_widget(client, blast_radius=link.id)
    classes = classes_by_label(widget)
    assert link.a_hostname in classes
    assert link.b_hostname in classes
    marked = [e for e in widget.elements()["edges"] if "highlight" in e["classes"]]
    assert len(marked) == 1


def test_drift_class_marks_open_drift(client: omnitwin.Client) -> None:
    widget = topology_widget(client, scope="leaf-02.nyc1")
    assert "drift" in classes_by_label(widget)["leaf-02.nyc1"]
    assert "open drift" in widget.summary.value


def test_path_highlights_edges(client: omnitwin.Client) -> None:
    widget = topology_widget(client, path=("srv-01-01.nyc1", "srv-02-01.nyc1"))
    marked = [e for e in widget.elements()["edges"] if "highlight" in e["classes"]]
    assert len(marked) == 4


def test_summary_reports_server_pruning(client: omnitwin.Client) -> None:
    widget = topology_widget(client, scope="leaf-01.nyc1", max_elements=20)
    assert widget.node_count + widget.edge_count <= 20
    assert "pruned by the server" in widget.summary.value


def test_edge_ids_are_unique(client: omnitwin.Client) -> None:
    widget = topology_widget(client)
    ids = [edge["data"]["id"] for edge in widget.elements()["edges"]]
    assert len(ids) == len(set(ids))
    assert len(widget.cytoscape.elements["edges"]) == len(ids)


def test_graph_is_one_widget_model(
    client: omnitwin.Client, published: list[tuple[str, dict[str, Any]]]
) -> None:
    widget = topology_widget(client)
    graphs = [
        state
        for state in opened_models(published)
        if state["_model_name"] == "AnyModel"
    ]
    assert len(graphs) == 1
    assert len(graphs[0]["elements"]["nodes"]) == widget.node_count
    assert len(graphs[0]["elements"]["edges"]) == widget.edge_count
    assert "export default" in graphs[0]["_esm"]
    assert "export{" in graphs[0]["_cytoscape_esm"]


def test_comm_traffic_independent_of_size(
    client: omnitwin.Client, published: list[tuple[str, dict[str, Any]]]
) -> None:
    small = topology_widget(client, scope="leaf-01.nyc1", max_elements=20)
    small_messages = [kind for kind, _ in published]
    published.clear()
    large = topology_widget(client)
    large_messages = [kind for kind, _ in published]
    assert large.node_count + large.edge_count > 5 * (
        small.node_count + small.edge_count
    )
    assert large_messages == small_messages
    assert large_messages.count("comm_open") < 15


def test_node_values_are_strict_json() -> None:
    nodes = [
        {"id": "a", "kind": "device", "score": float("nan"), "cost": float("inf")},
        {"id": "b", "kind": "device", "seen": {"at": float("nan")}, "when": (1, 2)},
    ]
    elements = TopologyWidget(TopologyGraph(nodes)).elements()
    first, second = (node["data"] for node in elements["nodes"])
    assert first["score"] is None
    assert first["cost"] is None
    assert second["seen"] == "{'at': nan}"
    assert second["when"] == (1, 2)
    json.dumps(elements, allow_nan=False)


def test_style_sheet_is_loaded(client: omnitwin.Client) -> None:
    widget = topology_widget(client, scope="leaf-01.nyc1")
    selectors = [rule["selector"] for rule in widget.cytoscape.cytoscape_style]
    assert 'node[role = "switch"]' in selectors
    assert "node.drift" in selectors


def test_click_shows_node_data(client: omnitwin.Client) -> None:
    widget = topology_widget(client, scope="leaf-01.nyc1")
    node = next(n for n in widget.topology.nodes if n.get("label") == "leaf-01.nyc1")
    widget.cytoscape._handle_custom_msg(
        {"widget": "node", "event": "click", "data": {"data": node}}, []
    )
    assert "<strong>leaf-01.nyc1</strong>" in widget.inspector.value
    assert "drift_score" in widget.inspector.value


def test_click_error_reaches_panel(client: omnitwin.Client) -> None:
    widget = topology_widget(client, scope="leaf-01.nyc1")
    widget.cytoscape._handle_custom_msg(
        {"widget": "node", "event": "click", "data": {"no": "data"}}, []
    )
    assert "omnitwin-error" in widget.inspector.value
    assert "KeyError" in widget.inspector.value


def test_click_ignores_other_messages(client: omnitwin.Client) -> None:
    widget = topology_widget(client, scope="leaf-01.nyc1")
    before = widget.inspector.value
    widget.cytoscape._handle_custom_msg(
        {"widget": "edge", "event": "click", "data": {"data": {"id": "x"}}}, []
    )
    widget.cytoscape._handle_custom_msg({"event": "dblclick"}, [])
    assert widget.inspector.value == before


def test_inspect_unknown_node(client: omnitwin.Client) -> None:
    widget = topology_widget(client, scope="leaf-01.nyc1")
    with pytest.raises(KeyError, match="not in this view"):
        widget.inspect("dv_nope")


def test_explorer_filters(client: omnitwin.Client) -> None:
    explorer = DriftExplorer(client)
    everything = len(explorer.device.options)
    explorer.role.value = "server"
    assert 0 < len(explorer.device.options) < everything
    explorer.role.value = "(all)"
    explorer.min_score.value = 0.01
    scores = [d.drift_score for d in explorer.filtered()]
    assert scores
    assert all(score >= 0.01 for score in scores)
    assert scores == sorted(scores, reverse=True)


def test_explorer_shows_diff(client: omnitwin.Client) -> None:
    explorer = DriftExplorer(client)
    leaf = client.devices.get("leaf-01.nyc1")
    explorer.device.value = leaf.id
    assert "os_version" in explorer.diff.value
    assert "4.31.0F" in explorer.diff.value


def test_explorer_shows_batfish_missing_link() -> None:
    from omnitwin.engine.discovery import load_snapshot, read_snapshot

    layer1 = data_file("batfish-example", "example_layer1_topology.json")
    outage = data_file("batfish-example", "live-with-interface-outage")
    (down,) = json.loads((outage / "interface_blacklist").read_text())
    with omnitwin.connect(":memory:") as client:
        twin = load_snapshot(data_file("batfish-example", "live"), layer1)
        client.devices.create_many(twin.devices)
        client.topology.add_links(twin.links)
        client.discovery.ingest("batfish", read_snapshot(outage, layer1))
        explorer = DriftExplorer(client)
        drifting = [d.hostname for d in explorer.filtered() if d.drift_score]
        explorer.device.value = client.devices.get(down["hostname"]).id
        shown = explorer.diff.value
    assert down["hostname"] in drifting
    assert "missing link" in shown
    assert f"{down['hostname']} {down['interface']}" in shown
    assert "missing &#x27;" in shown


def test_explorer_reconcile_fills_progress(client: omnitwin.Client) -> None:
    explorer = DriftExplorer(client)
    leaf = client.devices.get("leaf-01.nyc1")
    explorer.device.value = leaf.id
    job = explorer.reconcile("trust_detected")
    assert job.status == "completed"
    assert explorer.progress.value == explorer.progress.max
    assert "completed" in explorer.status.value
    assert client.devices.get(leaf.id).drift_score == 0.0


def test_explorer_button_error_reaches_status(client: omnitwin.Client) -> None:
    explorer = DriftExplorer(client)
    explorer.device.value = None
    explorer.reconcile_button.click()
    assert "select a device" in explorer.status.value
