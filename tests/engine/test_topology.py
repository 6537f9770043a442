"""Tests for omnitwin.engine.topology on real topologies and random graphs."""

from __future__ import annotations

import doctest
import json
import random

import networkx as nx
import pytest
from _topodata import (
    brute_force,
    cut_off_groups,
    device_multigraph,
    load_batfish,
    load_zoo,
    reaching_roots,
    require,
    zoo_files,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from omnitwin.engine import topology
from omnitwin.engine.topology import (
    Link,
    blast_radius,
    blast_radius_all,
    build_topology,
    graph_from_dict,
    graph_to_dict,
    shortest_path,
    subgraph,
)
from omnitwin.errors import NodeNotFound, NoPath, NotFound, ValidationError

ZOO = zoo_files()
ZOO_IDS = [path.stem for path in ZOO]


@pytest.fixture(scope="module")
def batfish() -> nx.MultiGraph[str]:
    return load_batfish()


def _devices(graph: nx.MultiGraph[str]) -> list[str]:
    return sorted(n for n, kind in graph.nodes(data="kind") if kind == "device")


def _two_roots(graph: nx.MultiGraph[str]) -> set[str]:
    """The two best-connected devices, ties broken by id."""
    devices = _devices(graph)
    return set(sorted(devices, key=lambda d: (-graph.degree(d), d))[:2])


def _cheapest_costs(graph: nx.MultiGraph[str]) -> nx.Graph[str]:
    """Simple graph with the cheapest intended link per device pair."""
    simple: nx.Graph[str] = nx.Graph()
    for u, v, data in graph.edges(data=True):
        if data["relation"] != "connected_to" or data["kind"] != "intended":
            continue
        if not simple.has_edge(u, v) or data["weight"] < simple[u][v]["weight"]:
            simple.add_edge(u, v, weight=data["weight"])
    return simple


# --- module examples --------------------------------------------------------


def test_docstring_examples_run() -> None:
    result = doctest.testmod(topology)
    assert result.attempted > 0
    assert result.failed == 0


# --- shortest path ------------------------------------------------------------


@pytest.mark.parametrize("path", ZOO, ids=ZOO_IDS)
def test_zoo_shortest_path_costs_match_networkx(path) -> None:
    graph = load_zoo(path)
    reference = _cheapest_costs(graph)
    rng = random.Random(path.stem)
    devices = _devices(graph)
    for _ in range(60):
        source, target = rng.sample(devices, 2)
        found = shortest_path(graph, source, target)
        expected = nx.dijkstra_path_length(reference, source, target)
        assert found.cost == pytest.approx(expected), (source, target)
        assert found.nodes[0] == source
        assert found.nodes[-1] == target
        assert [h.source for h in found.hops] == list(found.nodes[:-1])
        assert [h.target for h in found.hops] == list(found.nodes[1:])
        for hop in found.hops:
            cheapest = reference[hop.source][hop.target]["weight"]
            assert hop.weight == cheapest, hop
            assert graph[hop.source][hop.target][hop.key]["weight"] == cheapest


def test_uninett_parallel_links_use_10g() -> None:
    # Uninett2011 PoPs 13 and 43 are joined by a 1 Gbit/s and a 10 Gbit/s link.
    graph = load_zoo(require(ZOO[ZOO_IDS.index("Uninett2011")]))
    keys = graph["13"]["43"]
    assert len(keys) == 2
    fast = min(keys, key=lambda k: keys[k]["weight"])
    found = shortest_path(graph, "13", "43")
    assert found.hops[0].key == fast
    assert found.cost == keys[fast]["weight"]


def test_shortest_path_hop_count_without_weight() -> None:
    graph = build_topology(
        [{"id": d} for d in "abc"],
        [
            Link("a", "b", None, None, None, weight=1),
            Link("b", "c", None, None, None, weight=1),
            Link("a", "c", None, None, None, weight=50),
        ],
    )
    assert shortest_path(graph, "a", "c").nodes == ("a", "b", "c")
    assert shortest_path(graph, "a", "c", weight=None).nodes == ("a", "c")


def test_shortest_path_ports_follow_direction(batfish) -> None:
    found = shortest_path(batfish, "host1", "as2dist1")
    first, second = found.hops
    assert (first.source, first.port_a, first.port_b) == (
        "host1",
        "eth0",
        "GigabitEthernet2/0",
    )
    assert (second.source, second.port_a) == ("as2dept1", "GigabitEthernet0/0")
    assert second.port_b == "GigabitEthernet2/0"


def test_shortest_path_kinds_select_links() -> None:
    graph = build_topology(
        [{"id": d} for d in "abc"],
        [
            Link("a", "b", None, None, None),
            Link("b", "c", None, None, None),
            Link("a", "c", "e9", "e9", None, kind="detected"),
        ],
    )
    assert shortest_path(graph, "a", "c").nodes == ("a", "b", "c")
    detected = shortest_path(graph, "a", "c", kinds=("detected",))
    assert detected.nodes == ("a", "c")
    assert detected.hops[0].key == "detected:a:e9|c:e9"
    with pytest.raises(NoPath):
        shortest_path(graph, "a", "b", kinds=("detected",))


def test_shortest_path_to_itself_has_no_hops() -> None:
    graph = build_topology([{"id": "a"}])
    assert shortest_path(graph, "a", "a") == topology.Path(("a",), (), 0.0)


def test_shortest_path_unknown_node_vs_no_path() -> None:
    graph = build_topology(
        [{"id": d, "site": "s1"} for d in "abc"], [Link("a", "b", None, None, None)]
    )
    with pytest.raises(NodeNotFound, match="'zz'") as unknown:
        shortest_path(graph, "a", "zz")
    assert not isinstance(unknown.value, NoPath)
    # a and c share a site, but a path runs over device links only.
    with pytest.raises(NoPath, match="'a' and 'c'") as missing:
        shortest_path(graph, "a", "c")
    assert not isinstance(missing.value, NodeNotFound)
    assert missing.value.code == "no_path"
    assert unknown.value.code == "node_not_found"


def test_shortest_path_rejects_site_and_bad_kinds() -> None:
    graph = build_topology([{"id": "a", "site": "s1"}])
    with pytest.raises(ValidationError, match="is a site"):
        shortest_path(graph, "a", "s1")
    with pytest.raises(ValidationError, match="link kinds"):
        shortest_path(graph, "a", "a", kinds=("lldp",))  # type: ignore[arg-type]


# --- B23: weighted multigraph with parallel edges -------------------------


def test_b23_cheapest_parallel_edge_wins() -> None:
    graph = build_topology(
        [{"id": "a"}, {"id": "b"}],
        [
            Link("a", "b", None, None, None, 10, key="k10"),
            Link("a", "b", None, None, None, 100, key="k100"),
        ],
    )
    found = shortest_path(graph, "a", "b")
    assert (found.cost, list(found.nodes)) == (10.0, ["a", "b"])
    assert found.hops[0].key == "k10"


def test_b23_networkx_bidirectional_dijkstra_is_fixed() -> None:
    graph: nx.MultiGraph[str] = nx.MultiGraph()
    graph.add_edge("a", "b", weight=10)
    graph.add_edge("a", "b", weight=100)
    assert nx.bidirectional_dijkstra(graph, "a", "b") == (10, ["a", "b"])


def test_b23_other_attributes_do_not_count() -> None:
    graph = build_topology([{"id": "a"}, {"id": "b"}])
    graph.add_edge(
        "a", "b", key="e1", relation="connected_to", kind="intended", foo=5, weight=100
    )
    graph.add_edge(
        "a", "b", key="e2", relation="connected_to", kind="intended", bar=1, weight=110
    )
    assert shortest_path(graph, "a", "b").cost == 100
    assert nx.single_source_dijkstra_path_length(graph, "a")["b"] == 100


def test_b23_directed_path_uses_fast_key() -> None:
    graph: nx.MultiDiGraph[str] = nx.MultiDiGraph()
    graph.add_nodes_from(["r1", "r2"], kind="device")
    graph.add_edge(
        "r1", "r2", key="slow", relation="connected_to", kind="intended", weight=5
    )
    graph.add_edge(
        "r1", "r2", key="fast", relation="connected_to", kind="intended", weight=2
    )
    found = shortest_path(graph, "r1", "r2")
    assert found.hops[0].key == "fast"
    assert found.cost == 2


# --- blast radius -------------------------------------------------------------


@pytest.mark.parametrize("with_roots", [False, True], ids=["no-roots", "roots"])
@pytest.mark.parametrize("path", ZOO, ids=ZOO_IDS)
def test_zoo_blast_radius_matches_brute_force(path, with_roots) -> None:
    graph = load_zoo(path)
    roots = _two_roots(graph) if with_roots else None
    devices = device_multigraph(graph)
    every = blast_radius_all(graph, roots=roots)
    assert set(every) == set(_devices(graph))
    for device in _devices(graph):
        affected, reached = brute_force(devices, roots, device=device)
        found = blast_radius(graph, device, roots=roots)
        assert every[device] == affected, device
        assert set(found.devices) == affected, device
        before = reaching_roots(devices, roots) if roots else None
        expected = cut_off_groups(graph, "site", affected, reached, before)
        assert set(found.sites) == expected


@pytest.mark.parametrize("path", ZOO, ids=ZOO_IDS)
def test_zoo_link_blast_radius_matches_brute_force(path) -> None:
    graph = load_zoo(path)
    devices = device_multigraph(graph)
    simple_bridges = {frozenset(e) for e in nx.bridges(nx.Graph(devices))}
    for a, b, key in devices.edges(keys=True):
        affected, _ = brute_force(devices, None, link=(a, b, key))
        found = blast_radius(graph, (a, b, key))
        assert set(found.devices) == affected, (a, b, key)
        is_bridge = frozenset((a, b)) in simple_bridges and len(graph[a][b]) == 1
        assert bool(affected) == is_bridge, (a, b, key)
        assert (min(a, b), max(a, b), key) in found.links


@pytest.mark.parametrize("roots", [None, {"as1border1"}, {"as1border1", "as3core1"}])
def test_batfish_blast_radius_matches_brute_force(batfish, roots) -> None:
    devices = device_multigraph(batfish)
    every = blast_radius_all(batfish, roots=roots)
    for device in _devices(batfish):
        affected, reached = brute_force(devices, roots, device=device)
        found = blast_radius(batfish, device, roots=roots)
        assert every[device] == affected, device
        assert set(found.devices) == affected, device
        before = reaching_roots(devices, roots) if roots else None
        expected_subnets = cut_off_groups(batfish, "subnet", affected, reached, before)
        assert set(found.subnets) == expected_subnets
        expected_sites = cut_off_groups(batfish, "site", affected, reached, before)
        assert set(found.sites) == expected_sites


def test_batfish_dept_router_cuts_off_hosts(batfish) -> None:
    found = blast_radius(batfish, "as2dept1")
    assert found.devices == ("as2dept1", "host1", "host2")
    assert "2.128.0.0/24" in found.subnets
    assert "host1:2.128.0.101" in found.addresses
    assert "as2dept1:2.128.0.1" in found.addresses
    assert (
        "as2dept1",
        "host1",
        "intended:as2dept1:GigabitEthernet2/0|host1:eth0",
    ) in found.links
    # as2dept1 runs its own BGP AS, so its site contains no other router.
    assert found.sites == ("AS65001",)


def test_batfish_core_is_not_a_single_point(batfish) -> None:
    # as3core1 has a cable looped back to itself; it must not count as a path.
    assert blast_radius(batfish, "as2core1").devices == ("as2core1",)
    assert blast_radius_all(batfish)["as3core1"] == {"as3core1"}


def test_batfish_only_root_failing_cuts_everything(batfish) -> None:
    found = blast_radius(batfish, "as1border1", roots=["as1border1"])
    assert set(found.devices) == set(_devices(batfish))
    assert set(found.sites) == {"AS1", "AS2", "AS3", "AS65001"}


def test_blast_radius_parallel_link_keeps_pair_up() -> None:
    graph = build_topology(
        [{"id": "a"}, {"id": "b"}],
        [Link("a", "b", "e1", "e1", None), Link("a", "b", "e2", "e2", None)],
    )
    found = blast_radius(graph, ("a", "b", "intended:a:e1|b:e1"))
    assert found.devices == ()
    assert found.links == (("a", "b", "intended:a:e1|b:e1"),)


def test_blast_radius_without_roots_ties_keep_both() -> None:
    graph = build_topology(
        [{"id": d} for d in "abc"],
        [Link("a", "b", None, None, None), Link("b", "c", None, None, None)],
    )
    assert blast_radius(graph, "b").devices == ("b",)
    assert blast_radius_all(graph)["b"] == {"b"}


def test_blast_radius_target_errors() -> None:
    graph = build_topology(
        [{"id": "a", "site": "s"}, {"id": "b"}],
        [Link("a", "b", None, None, None, key="k")],
    )
    with pytest.raises(NodeNotFound, match="'zz'"):
        blast_radius(graph, "zz")
    with pytest.raises(NodeNotFound, match="'zz'"):
        blast_radius(graph, ("a", "zz", "k"))
    with pytest.raises(NotFound, match="key 'nope' not found"):
        blast_radius(graph, ("a", "b", "nope"))
    with pytest.raises(ValidationError, match="is a site"):
        blast_radius(graph, "s")
    with pytest.raises(ValidationError, match="roots is empty"):
        blast_radius_all(graph, roots=[])
    with pytest.raises(NodeNotFound, match="'zz'"):
        blast_radius_all(graph, roots=["zz"])


@st.composite
def random_topologies(draw: st.DrawFn) -> tuple[nx.MultiGraph[str], set[str] | None]:
    count = draw(st.integers(1, 12))
    names = [f"d{i}" for i in range(count)]
    pairs = draw(
        st.lists(st.tuples(st.sampled_from(names), st.sampled_from(names)), max_size=24)
    )
    links = [
        Link(a, b, None, None, None, key=f"l{i}") for i, (a, b) in enumerate(pairs)
    ]
    graph = build_topology([{"id": n} for n in names], links)
    roots = draw(st.none() | st.sets(st.sampled_from(names), min_size=1, max_size=3))
    return graph, roots


@settings(max_examples=300, deadline=None)
@given(random_topologies())
def test_random_blast_radius_all_matches_brute_force(case) -> None:
    graph, roots = case
    devices = device_multigraph(graph)
    every = blast_radius_all(graph, roots=roots)
    for device in _devices(graph):
        affected, _ = brute_force(devices, roots, device=device)
        assert every[device] == affected, device
        assert set(blast_radius(graph, device, roots=roots).devices) == affected


# --- subgraph ---------------------------------------------------------------


@pytest.mark.parametrize("depth", [0, 6, -1, 99])
def test_subgraph_depth_out_of_range(batfish, depth) -> None:
    with pytest.raises(
        ValidationError, match=rf"depth {depth} is out of range; use 1 to 5"
    ):
        subgraph(batfish, "as2dept1", depth=depth)


@pytest.mark.parametrize("depth", [True, 2.0, "2"])
def test_subgraph_depth_not_integer(batfish, depth) -> None:
    with pytest.raises(ValidationError, match="is not an integer; use 1 to 5"):
        subgraph(batfish, "as2dept1", depth=depth)


@pytest.mark.parametrize("depth", [1, 2, 3, 4, 5])
def test_subgraph_matches_ego_graph(batfish, depth) -> None:
    found = subgraph(batfish, "as2dept1", depth=depth)
    expected = nx.ego_graph(batfish, "as2dept1", radius=depth)
    assert set(found) == set(expected)
    assert found.number_of_edges() == expected.number_of_edges()
    lengths = nx.single_source_shortest_path_length(batfish, "as2dept1")
    assert all(found.nodes[n]["hops"] == lengths[n] for n in found)
    assert found.graph["pruned_nodes"] == 0


def test_subgraph_unknown_scope(batfish) -> None:
    with pytest.raises(NodeNotFound, match="'nope'"):
        subgraph(batfish, "nope")


@pytest.mark.parametrize("limit", [1, 5, 20, 40, 1000])
def test_subgraph_pruning_counts(batfish, limit) -> None:
    full = subgraph(batfish, "as2core1", depth=3)
    found = subgraph(batfish, "as2core1", depth=3, max_elements=limit)
    elements_kept = found.number_of_nodes() + found.number_of_edges()
    assert (
        found.graph["pruned_nodes"] == full.number_of_nodes() - found.number_of_nodes()
    )
    assert (
        found.graph["pruned_edges"] == full.number_of_edges() - found.number_of_edges()
    )
    assert elements_kept <= limit
    assert "as2core1" in found
    pruned = set(full) - set(found)
    if pruned:
        max_kept_hops = max(found.nodes[n]["hops"] for n in found)
        assert min(full.nodes[n]["hops"] for n in pruned) >= max_kept_hops


def test_subgraph_max_elements_invalid(batfish) -> None:
    with pytest.raises(ValidationError, match="max_elements 0 is invalid"):
        subgraph(batfish, "as2dept1", max_elements=0)


# --- building and JSON --------------------------------------------------------


def test_graph_dict_round_trip(batfish) -> None:
    data = json.loads(json.dumps(graph_to_dict(batfish)))
    copy = graph_from_dict(data)
    assert dict(copy.nodes(data=True)) == dict(batfish.nodes(data=True))
    assert sorted(copy.edges(keys=True, data=True), key=repr) == sorted(
        batfish.edges(keys=True, data=True), key=repr
    )


def test_graph_from_dict_rejects_bad_input() -> None:
    with pytest.raises(ValidationError, match="no 'edges' list"):
        graph_from_dict({"nodes": []})
    with pytest.raises(ValidationError, match=r"edges\[0\] is missing key"):
        graph_from_dict(
            {"nodes": [{"id": "a"}], "edges": [{"source": "a", "target": "a"}]}
        )
    with pytest.raises(ValidationError, match="names node 'b'"):
        graph_from_dict(
            {
                "nodes": [{"id": "a"}],
                "edges": [{"source": "a", "target": "b", "key": "k"}],
            }
        )


def test_build_topology_rejects_bad_input() -> None:
    with pytest.raises(ValidationError, match="used for a device and a site"):
        build_topology([{"id": "x"}, {"id": "y", "site": "x"}])
    with pytest.raises(ValidationError, match="listed twice"):
        build_topology([{"id": "x"}, {"id": "x"}])
    with pytest.raises(ValidationError, match="names device 'zz'"):
        build_topology([{"id": "x"}], [Link("x", "zz", None, None, None)])
    with pytest.raises(ValidationError, match="used twice"):
        build_topology(
            [{"id": "x"}, {"id": "y"}], [Link("x", "y", None, None, None)] * 2
        )
    with pytest.raises(ValidationError, match="weights must be finite"):
        Link("x", "y", None, None, None, weight=-1)
    with pytest.raises(ValidationError, match="kind 'lldp' is invalid"):
        Link("x", "y", None, None, None, kind="lldp")  # type: ignore[arg-type]
