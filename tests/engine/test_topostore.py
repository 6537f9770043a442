"""Tests for the topology service over a real DuckDB file and real topologies."""

from __future__ import annotations

from pathlib import Path

import networkx as nx
import pytest
from _topodata import brute_force, cut_off_groups, device_multigraph

from omnitwin.engine.context import Context
from omnitwin.engine.discovery import Observation, read_snapshot
from omnitwin.engine.discovery.batfish import BatfishSnapshot, load_snapshot
from omnitwin.engine.engine import Engine
from omnitwin.errors import Duplicate, NodeNotFound, NoPath, NotFound, ValidationError
from omnitwin.sample import generate_fabric
from testdata import data_file, load_cases

# --- batfish example -------------------------------------------------------

LAYER1 = ("batfish-example", "example_layer1_topology.json")


def batfish_snapshot(snapshot: str) -> BatfishSnapshot:
    """Parse one snapshot of the example with the cabling file at the top."""
    return load_snapshot(data_file("batfish-example", snapshot), data_file(*LAYER1))


def outage_interfaces() -> set[tuple[str, str]]:
    return batfish_snapshot("live-with-interface-outage").down


def load_batfish_twin(engine: Engine, ctx: Context) -> dict[str, str]:
    """Create the batfish routers, their subnets and cables; return hostname -> id."""
    snapshot = batfish_snapshot("live")
    for subnet in snapshot.subnets:
        engine.subnets.create(ctx, subnet["cidr"], is_container=subnet["is_container"])
    devices = engine.devices.create_many(ctx, snapshot.devices)
    engine.topology.add_links(ctx, snapshot.links)
    return {d.hostname: d.id for d in devices}


def outage_observations() -> list[Observation]:
    """Detected state of the outage snapshot: the listed interface is down."""
    return batfish_snapshot("live-with-interface-outage").observations()


@pytest.fixture
def batfish(engine: Engine, ctx: Context) -> dict[str, str]:
    return load_batfish_twin(engine, ctx)


def test_batfish_links_load_once_per_cable(
    engine: Engine, ctx: Context, batfish: dict[str, str]
) -> None:
    assert len(batfish) == 15
    assert len(engine.topology.list_links(ctx, kind="intended")) == 20


def test_batfish_outage_gives_one_missing_link(
    engine: Engine, ctx: Context, batfish: dict[str, str]
) -> None:
    report = engine.discovery.ingest_observations(ctx, outage_observations())
    assert len(report.matched) == 15
    assert report.unresolved_neighbors == []

    drift = engine.topology.link_drift(ctx)
    ((down_host, down_port),) = outage_interfaces()
    assert len(drift["missing"]) == 1
    assert drift["unexpected"] == []
    missing = drift["missing"][0]
    ends = {(missing.a_hostname, missing.port_a), (missing.b_hostname, missing.port_b)}
    assert (down_host, down_port) in ends


def test_batfish_ingest_format_finds_missing_link(
    engine: Engine, ctx: Context, batfish: dict[str, str]
) -> None:
    folder = data_file("batfish-example", "live-with-interface-outage")
    report = engine.discovery.ingest(
        ctx, "batfish", read_snapshot(folder, data_file(*LAYER1))
    )
    assert report.format == "batfish"
    assert len(report.matched) == 15
    # Every cable but the one with a blacklisted end, seen from both ends.
    assert report.detected_links == 2 * (20 - 1)
    assert len(engine.topology.link_drift(ctx)["missing"]) == 1


def test_batfish_outage_drifts_both_ends(
    engine: Engine, ctx: Context, batfish: dict[str, str]
) -> None:
    engine.discovery.ingest_observations(ctx, outage_observations())
    ((down_host, down_port),) = outage_interfaces()
    missing = engine.topology.link_drift(ctx)["missing"][0]
    other = (
        missing.b_hostname if missing.a_hostname == down_host else missing.a_hostname
    )

    events = engine.drift.events(ctx, status="open", per_page=200).data
    by_host: dict[str, set[str]] = {}
    for event in events:
        by_host.setdefault(event.hostname or "", set()).add(event.field)
    assert set(by_host) == {down_host, other}
    assert by_host[down_host] == {"neighbors", f"interfaces.{down_port}.oper_up"}
    assert by_host[other] == {"neighbors"}
    assert engine.devices.list(ctx, has_drift=True).total == 2


def test_batfish_missing_link_blast_radius_matches_brute_force(
    engine: Engine, ctx: Context, batfish: dict[str, str]
) -> None:
    engine.discovery.ingest_observations(ctx, outage_observations())
    missing = engine.topology.link_drift(ctx)["missing"][0]
    graph = engine.topology.graph(ctx).to_networkx()

    hit = engine.topology.blast_radius(ctx, missing.id)
    devices = device_multigraph(graph)
    affected, reached = brute_force(
        devices, None, link=(missing.a, missing.b, missing.id)
    )
    assert set(hit.devices) == affected
    assert set(hit.subnets) == cut_off_groups(graph, "subnet", affected, reached)
    assert hit.target_kind == "link"


@pytest.mark.parametrize("hostname", ["as1core1", "as2dist1", "as3border1"])
def test_batfish_device_blast_radius_matches_brute_force(
    engine: Engine, ctx: Context, batfish: dict[str, str], hostname: str
) -> None:
    graph = engine.topology.graph(ctx).to_networkx()
    hit = engine.topology.blast_radius(ctx, hostname)

    affected, reached = brute_force(device_multigraph(graph), None, batfish[hostname])
    assert set(hit.devices) == affected
    assert set(hit.subnets) == cut_off_groups(graph, "subnet", affected, reached)
    assert set(hit.sites) == {
        graph.nodes[s]["label"]
        for s in cut_off_groups(graph, "site", affected, reached)
    }


def test_batfish_devices_join_their_subnets(
    engine: Engine, ctx: Context, batfish: dict[str, str]
) -> None:
    graph = engine.topology.graph(ctx).to_networkx()
    subnets = {
        graph.nodes[n]["label"]
        for n in graph[batfish["as2dist1"]]
        if graph.nodes[n]["kind"] == "subnet"
    }
    assert {"2.23.11.0/24", "2.23.21.0/24", "2.34.101.0/24", "2.1.3.1/32"} <= subnets


# --- the sample fabric ------------------------------------------------------


def load_fabric(engine: Engine, ctx: Context, **sizes: int) -> nx.Graph[str]:
    """Load a sample fabric and return the same cabling as a plain networkx graph."""
    network = generate_fabric(**sizes)
    created = engine.devices.create_many(
        ctx,
        [
            {
                "hostname": d.hostname,
                "role": d.role,
                "site": d.site,
                "management_address": d.management_address,
            }
            for d in network.devices
        ],
    )
    ids = {d.hostname: d.id for d in created}
    weights = {}
    items = []
    for index, link in enumerate(network.links):
        weight = 1.0 + index % 7
        weights[(link.a, link.b)] = weight
        items.append(
            {
                "a": link.a,
                "port_a": link.port_a,
                "b": link.b,
                "port_b": link.port_b,
                "cable": link.cable,
                "weight": weight,
            }
        )
    engine.topology.add_links(ctx, items)
    reference: nx.Graph[str] = nx.Graph()
    for (a, b), weight in weights.items():
        reference.add_edge(ids[a], ids[b], weight=weight)
    return reference


def test_fabric_paths_match_networkx(engine: Engine, ctx: Context) -> None:
    reference = load_fabric(engine, ctx, sites=2, leaves=3, servers_per_leaf=2)
    nodes = sorted(reference)
    pairs = [(nodes[i], nodes[-1 - i]) for i in range(0, len(nodes) // 2, 3)]
    for source, target in pairs:
        path = engine.topology.path(ctx, source, target)
        expected = nx.dijkstra_path_length(reference, source, target)
        assert path.cost == pytest.approx(expected)
        assert path.nodes[0] == source
        assert path.nodes[-1] == target
        assert len(path.hops) == len(path.nodes) - 1
        assert all(hop.cable for hop in path.hops)


def test_fabric_blast_radius_matches_brute_force(engine: Engine, ctx: Context) -> None:
    reference = load_fabric(engine, ctx, sites=2, leaves=3, servers_per_leaf=2)
    cores = [engine.devices.get(ctx, name).id for name in ("core-01", "core-02")]
    for device_id in sorted(reference)[::4]:
        hit = engine.topology.blast_radius(ctx, device_id, roots=cores)
        after = reference.copy()
        after.remove_node(device_id)
        alive = set(cores) - {device_id}
        reached = set().union(*(c for c in nx.connected_components(after) if c & alive))
        expected = (set(reference) - reached) | {device_id}
        assert set(hit.devices) == expected, device_id


def test_fabric_leaf_blast_radius_names_servers(engine: Engine, ctx: Context) -> None:
    load_fabric(engine, ctx, sites=1, leaves=2, servers_per_leaf=2)
    hit = engine.topology.blast_radius(ctx, "leaf-01.nyc1", roots=["core-01"])
    assert hit.hostnames == sorted(
        hit.hostnames, key=lambda h: hit.devices[hit.hostnames.index(h)]
    )
    assert set(hit.hostnames) == {"leaf-01.nyc1", "srv-01-01.nyc1", "srv-01-02.nyc1"}


def test_graph_scope_depth_and_drift_annotation(engine: Engine, ctx: Context) -> None:
    load_fabric(engine, ctx, sites=1, leaves=2, servers_per_leaf=1)
    graph = engine.topology.graph(
        ctx, scope="leaf-01.nyc1", depth=1, annotate_drift=True
    )
    labels = {n["label"] for n in graph.nodes}
    assert labels == {
        "leaf-01.nyc1",
        "spine-01.nyc1",
        "spine-02.nyc1",
        "srv-01-01.nyc1",
        "nyc1",
    }
    assert all("open_drift" in n for n in graph.nodes if n["kind"] == "device")
    assert graph.meta["depth"] == 1


def test_graph_max_elements_prunes(engine: Engine, ctx: Context) -> None:
    load_fabric(engine, ctx, sites=1, leaves=2, servers_per_leaf=1)
    small = engine.topology.graph(ctx, scope="core-01", depth=5, max_elements=10)
    assert len(small.nodes) + len(small.edges) <= 10
    assert small.meta["pruned_nodes"] > 0


def test_graph_cache_sees_new_links(engine: Engine, ctx: Context) -> None:
    for name in ("a", "b", "c"):
        engine.devices.create(ctx, name, role="switch", site="lab")
    engine.topology.add_link(ctx, "a", "e1", "b", "e1")
    with pytest.raises(NoPath):
        engine.topology.path(ctx, "a", "c")
    engine.topology.add_link(ctx, "b", "e2", "c", "e1")
    assert engine.topology.path(ctx, "a", "c").hostnames == ["a", "b", "c"]


def test_graph_cache_sees_new_subnets(engine: Engine, ctx: Context) -> None:
    engine.devices.create(
        ctx, "a", role="server", site="lab", management_address="10.9.0.5"
    )
    assert len(engine.topology.graph(ctx).nodes) == 2
    engine.subnets.create(ctx, "10.9.0.0/24")
    labels = {n["label"] for n in engine.topology.graph(ctx).nodes}
    assert "10.9.0.0/24" in labels


def test_path_unknown_node_and_no_path_differ(engine: Engine, ctx: Context) -> None:
    for name in ("a", "b"):
        engine.devices.create(ctx, name, role="switch", site="lab")
    with pytest.raises(NodeNotFound):
        engine.topology.path(ctx, "a", "nowhere")
    with pytest.raises(NoPath):
        engine.topology.path(ctx, "a", "b")


def test_path_rejects_site_as_endpoint(engine: Engine, ctx: Context) -> None:
    engine.devices.create(ctx, "a", role="switch", site="lab")
    with pytest.raises(ValidationError):
        engine.topology.path(ctx, "a", "lab")


def test_blast_radius_unknown_link(engine: Engine, ctx: Context) -> None:
    engine.devices.create(ctx, "a", role="switch", site="lab")
    with pytest.raises(NotFound):
        engine.topology.blast_radius(ctx, "lk_missing")


def test_add_link_rejects_reused_port(engine: Engine, ctx: Context) -> None:
    for name in ("a", "b", "c"):
        engine.devices.create(ctx, name, role="switch", site="lab")
    engine.topology.add_link(ctx, "a", "Gi0/1", "b", "Gi0/1")
    with pytest.raises(Duplicate):
        engine.topology.add_link(ctx, "c", "Gi0/1", "a", "GigabitEthernet0/1")
    with pytest.raises(Duplicate):
        engine.topology.add_link(ctx, "b", "Gi0/1", "a", "Gi0/1")


def test_add_links_is_atomic(engine: Engine, ctx: Context) -> None:
    for name in ("a", "b"):
        engine.devices.create(ctx, name, role="switch", site="lab")
    items = [
        {"a": "a", "port_a": "e1", "b": "b", "port_b": "e1"},
        {"a": "a", "port_a": "e2", "b": "ghost", "port_b": "e1"},
    ]
    with pytest.raises(NotFound):
        engine.topology.add_links(ctx, items)
    assert engine.topology.list_links(ctx) == []


def test_add_link_rejects_negative_weight(engine: Engine, ctx: Context) -> None:
    for name in ("a", "b"):
        engine.devices.create(ctx, name, role="switch", site="lab")
    with pytest.raises(ValidationError):
        engine.topology.add_link(ctx, "a", "e1", "b", "e1", weight=-1)


# --- B23: parallel links with weights ---------------------------------------


def test_b23_parallel_links_through_service(engine: Engine, ctx: Context) -> None:
    case = load_cases("topology")["B23"]
    assert "parallel" in case["summary"]
    for name in ("a", "b", "r1", "r2"):
        engine.devices.create(ctx, name, role="router", site="lab")
    engine.topology.add_link(ctx, "a", "e1", "b", "e1", weight=10)
    engine.topology.add_link(ctx, "a", "e2", "b", "e2", weight=100)
    slow = engine.topology.add_link(ctx, "r1", "e1", "r2", "e1", weight=5, cable="slow")
    fast = engine.topology.add_link(ctx, "r1", "e2", "r2", "e2", weight=2, cable="fast")

    ab = engine.topology.path(ctx, "a", "b")
    assert (ab.cost, ab.hostnames) == (10.0, ["a", "b"])
    assert ab.hops[0].port_a == "e1"
    r = engine.topology.path(ctx, "r1", "r2")
    assert r.cost == 2.0
    assert r.hops[0].link_id == fast.id
    assert r.hops[0].cable == "fast"
    assert slow.id != fast.id


def test_b23_parallel_link_failure_cuts_nothing(engine: Engine, ctx: Context) -> None:
    for name in ("r1", "r2"):
        engine.devices.create(ctx, name, role="router", site="lab")
    first = engine.topology.add_link(ctx, "r1", "e1", "r2", "e1", weight=5)
    engine.topology.add_link(ctx, "r1", "e2", "r2", "e2", weight=2)
    hit = engine.topology.blast_radius(ctx, first.id)
    assert hit.devices == []
    assert hit.links == [first.id]


def test_to_networkx_round_trip(engine: Engine, ctx: Context, tmp_path: Path) -> None:
    load_fabric(engine, ctx, sites=1, leaves=2, servers_per_leaf=1)
    graph = engine.topology.graph(ctx)
    nxg = graph.to_networkx()
    assert nxg.number_of_nodes() == len(graph.nodes)
    assert nxg.number_of_edges() == len(graph.edges)
