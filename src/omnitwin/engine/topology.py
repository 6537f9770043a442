"""Topology algorithms over a networkx ``MultiGraph``: subgraph, path, blast radius.

The graph has four node kinds, stored in the node attribute ``kind``:
``"device"``, ``"site"``, ``"subnet"`` and ``"address"``. Node ids are strings
and unique across kinds. Every edge carries a ``relation`` attribute:

``connected_to``
    One link between two devices, keyed by the link key. The edge stores
    ``a`` (the device that ``port_a`` belongs to), ``port_a``, ``port_b``,
    ``cable``, ``weight`` and ``kind``. The kind is ``"intended"`` for a cable
    from the source of truth and ``"detected"`` for a neighbour seen by LLDP
    or CDP. Both kinds are kept, so parallel edges are common.
``located_in``
    From a device to its site, with key ``"located_in"``.
``member_of``
    From a device or an address to a subnet, with key ``"member_of"``.

An address node may name the device that holds it in its ``device`` attribute.
Nothing here touches a database: the graph is the networkx object itself, and
:func:`graph_to_dict` and :func:`graph_from_dict` convert it to and from JSON.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from itertools import pairwise
from typing import Any, Literal, TypeAlias, cast

import networkx as nx

from omnitwin.errors import NodeNotFound, NoPath, NotFound, ValidationError

__all__ = [
    "BlastRadius",
    "Hop",
    "Link",
    "Path",
    "blast_radius",
    "blast_radius_all",
    "build_topology",
    "graph_from_dict",
    "graph_to_dict",
    "new_single_points",
    "shortest_path",
    "subgraph",
]

LinkKind: TypeAlias = Literal["intended", "detected"]
LinkId: TypeAlias = tuple[str, str, str]
"""A link as ``(a, b, key)``: its two devices and its edge key."""

LINK_KINDS: tuple[LinkKind, ...] = ("intended", "detected")
CONNECTED_TO = "connected_to"
LOCATED_IN = "located_in"
MEMBER_OF = "member_of"
MAX_DEPTH = 5


@dataclass(frozen=True, slots=True)
class Link:
    """A link between two devices, as given to :func:`build_topology`.

    Attributes
    ----------
    a, b : str
        The two devices. ``a == b`` is allowed (a cable looped back).
    port_a, port_b : str or None
        The interface on ``a`` and the interface on ``b``.
    cable : str or None
        The cable id or label, if any.
    weight : float
        Cost of the link for :func:`shortest_path`; finite and at least 0.
    kind : {"intended", "detected"}
        ``"intended"`` for a documented cable, ``"detected"`` for an LLDP/CDP
        neighbour.
    key : str or None
        Edge key, unique among the links between ``a`` and ``b``. ``None``
        derives one from the kind, devices and ports (see :attr:`edge_key`).

    Examples
    --------
    >>> Link("r1", "r2", "Gi0/0", "Gi0/1", None).edge_key
    'intended:r1:Gi0/0|r2:Gi0/1'
    """

    a: str
    b: str
    port_a: str | None
    port_b: str | None
    cable: str | None
    weight: float = 1.0
    kind: LinkKind = "intended"
    key: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in LINK_KINDS:
            message = (
                f"link kind {self.kind!r} is invalid; use 'intended' or 'detected'"
            )
            raise ValidationError(message)
        if not (math.isfinite(self.weight) and self.weight >= 0):
            message = (
                f"link {self.a!r}-{self.b!r} has weight {self.weight!r}; "
                "weights must be finite and at least 0"
            )
            raise ValidationError(message)

    @property
    def edge_key(self) -> str:
        """The edge key: :attr:`key`, or ``kind:dev:port|dev:port`` in sorted order."""
        if self.key is not None:
            return self.key
        ends = sorted([(self.a, self.port_a or ""), (self.b, self.port_b or "")])
        return f"{self.kind}:{ends[0][0]}:{ends[0][1]}|{ends[1][0]}:{ends[1][1]}"


@dataclass(frozen=True, slots=True)
class Hop:
    """One step of a :class:`Path`: the link used from ``source`` to ``target``.

    ``port_a`` is the interface on ``source`` and ``port_b`` the one on
    ``target``, whatever order the link was recorded in. ``weight`` is the cost
    of this hop and ``key`` the edge key of the parallel link that was chosen.
    """

    source: str
    target: str
    port_a: str | None
    port_b: str | None
    cable: str | None
    weight: float
    key: str


@dataclass(frozen=True, slots=True)
class Path:
    """A path between two devices: its nodes, its hops and its total cost."""

    nodes: tuple[str, ...]
    hops: tuple[Hop, ...]
    cost: float


@dataclass(frozen=True, slots=True)
class BlastRadius:
    """Devices, subnets, addresses, sites and links cut off by one failure.

    See :func:`blast_radius` for the rules. Every field except ``target`` is a
    sorted tuple. Links are ``(a, b, key)`` with ``a <= b``.
    """

    target: str | LinkId
    devices: tuple[str, ...]
    subnets: tuple[str, ...]
    addresses: tuple[str, ...]
    sites: tuple[str, ...]
    links: tuple[LinkId, ...]


# --- building ---------------------------------------------------------------


def build_topology(
    devices: Iterable[Mapping[str, Any]],
    links: Iterable[Link] = (),
    subnet_members: Iterable[tuple[str, str]] = (),
    address_members: Iterable[tuple[str, str] | tuple[str, str, str | None]] = (),
) -> nx.MultiGraph[str]:
    """Build a topology graph from plain lists.

    Parameters
    ----------
    devices : iterable of mapping
        One mapping per device with an ``"id"`` and an optional ``"site"``.
        Other keys become node attributes. A site node is created for each
        site named.
    links : iterable of Link
        Links between listed devices.
    subnet_members : iterable of (device, subnet)
        Device-to-subnet memberships; subnet nodes are created as needed.
    address_members : iterable of (address, subnet) or (address, subnet, device)
        Address-to-subnet memberships. The optional device, which must be
        listed, is stored in the address node's ``device`` attribute.

    Returns
    -------
    networkx.MultiGraph
        The graph described in this module's docstring.

    Raises
    ------
    ValidationError
        If an id is reused across kinds, a device is listed twice, a link key
        repeats between the same devices, or a reference names no listed device.

    Examples
    --------
    >>> g = build_topology(
    ...     [{"id": "r1", "site": "lon"}, {"id": "r2", "site": "lon"}],
    ...     [Link("r1", "r2", "Gi0/0", "Gi0/0", "c-7")],
    ...     subnet_members=[("r1", "10.0.0.0/31"), ("r2", "10.0.0.0/31")],
    ...     address_members=[("10.0.0.0", "10.0.0.0/31", "r1")],
    ... )
    >>> g.number_of_nodes(), g.number_of_edges()
    (5, 6)
    """
    graph: nx.MultiGraph[str] = nx.MultiGraph()
    for device in devices:
        _add_device(graph, device)
    for link in links:
        _add_link(graph, link)
    for device_id, subnet in subnet_members:
        _require_listed_device(graph, device_id, f"subnet membership in {subnet!r}")
        _add_node(graph, subnet, "subnet")
        graph.add_edge(device_id, subnet, key=MEMBER_OF, relation=MEMBER_OF)
    for member in address_members:
        address, subnet = member[0], member[1]
        holder = member[2] if len(member) == 3 else None
        if address in graph and graph.nodes[address].get("kind") == "address":
            raise ValidationError(f"address {address!r} is listed twice")
        attributes: dict[str, Any] = {}
        if holder is not None:
            _require_listed_device(graph, holder, f"address {address!r}")
            attributes["device"] = holder
        _add_node(graph, subnet, "subnet")
        _add_node(graph, address, "address", **attributes)
        graph.add_edge(address, subnet, key=MEMBER_OF, relation=MEMBER_OF)
    return graph


def _add_node(graph: nx.MultiGraph[str], node: str, kind: str, **attrs: Any) -> None:
    if not isinstance(node, str) or not node:
        message = f"{kind} id {node!r} is invalid; ids must be non-empty strings"
        raise ValidationError(message)
    existing = graph.nodes[node]["kind"] if node in graph else kind
    if existing != kind:
        message = (
            f"id {node!r} is used for a {existing} and a {kind}; "
            "ids must be unique across devices, sites, subnets and addresses"
        )
        raise ValidationError(message)
    graph.add_node(node, kind=kind, **attrs)


def _add_device(graph: nx.MultiGraph[str], device: Mapping[str, Any]) -> None:
    attrs = dict(device)
    device_id = attrs.pop("id", None)
    site = attrs.pop("site", None)
    if device_id in graph and graph.nodes[device_id]["kind"] == "device":
        raise ValidationError(f"device {device_id!r} is listed twice")
    attrs.pop("kind", None)
    _add_node(graph, device_id, "device", **attrs)
    if site is not None:
        _add_node(graph, site, "site")
        graph.add_edge(device_id, site, key=LOCATED_IN, relation=LOCATED_IN)


def _add_link(graph: nx.MultiGraph[str], link: Link) -> None:
    for end in (link.a, link.b):
        _require_listed_device(graph, end, f"link {link.a!r}-{link.b!r}")
    key = link.edge_key
    if graph.has_edge(link.a, link.b, key):
        message = (
            f"link key {key!r} is used twice between {link.a!r} and {link.b!r}; "
            "give parallel links distinct keys or ports"
        )
        raise ValidationError(message)
    graph.add_edge(
        link.a,
        link.b,
        key=key,
        relation=CONNECTED_TO,
        a=link.a,
        port_a=link.port_a,
        port_b=link.port_b,
        cable=link.cable,
        weight=link.weight,
        kind=link.kind,
    )


def _require_listed_device(graph: nx.MultiGraph[str], node: str, user: str) -> None:
    if node not in graph or graph.nodes[node].get("kind") != "device":
        message = f"{user} names device {node!r}, which is not in the device list"
        raise ValidationError(message)


# --- shared checks ----------------------------------------------------------


def _require_multigraph(graph: object) -> None:
    if not isinstance(graph, nx.MultiGraph):
        message = (
            f"expected a networkx MultiGraph, got {type(graph).__name__}; "
            "build one with build_topology() or graph_from_dict()"
        )
        raise ValidationError(message)


def _require_device(graph: nx.MultiGraph[str], node: str) -> None:
    if node not in graph:
        raise NodeNotFound(f"node {node!r} not found in the topology")
    kind = graph.nodes[node].get("kind")
    if kind != "device":
        message = f"node {node!r} is a {kind}, not a device; pass a device id"
        raise ValidationError(message)


def _check_kinds(kinds: Iterable[str]) -> frozenset[str]:
    chosen = frozenset(kinds)
    if not chosen or not chosen <= set(LINK_KINDS):
        message = (
            f"link kinds {sorted(chosen)!r} are invalid; "
            "use a non-empty subset of ('intended', 'detected')"
        )
        raise ValidationError(message)
    return chosen


def _check_roots(
    graph: nx.MultiGraph[str], roots: Iterable[str] | None
) -> frozenset[str] | None:
    if roots is None:
        return None
    chosen = frozenset(roots)
    if not chosen:
        message = "roots is empty; pass None to measure against the largest piece"
        raise ValidationError(message)
    for root in sorted(chosen):
        _require_device(graph, root)
    return chosen


def _is_device_link(data: Mapping[str, Any], kinds: frozenset[str]) -> bool:
    return data.get("relation") == CONNECTED_TO and data.get("kind") in kinds


# --- subgraph ---------------------------------------------------------------


def subgraph(
    graph: nx.MultiGraph[str],
    scope: str,
    depth: int = 2,
    max_elements: int | None = None,
) -> nx.MultiGraph[str]:
    """Return the nodes within ``depth`` hops of ``scope`` and the edges among them.

    Hops follow every edge (links, site locations and subnet memberships), so
    two devices of one site are two hops apart.

    Parameters
    ----------
    graph : networkx.MultiGraph
        A topology graph.
    scope : str
        The node at the centre; it is never pruned.
    depth : int
        Maximum number of hops from ``scope``, 1 to 5.
    max_elements : int or None
        Upper bound on nodes plus edges. When the result is larger, the
        farthest nodes are removed first (the last discovered at the largest
        hop count goes first) until it fits or only ``scope`` is left.

    Returns
    -------
    networkx.MultiGraph
        A copy induced on the kept nodes. Each node gets a ``hops`` attribute.
        ``graph.graph`` stores ``scope``, ``depth``, ``pruned_nodes`` and
        ``pruned_edges``.

    Raises
    ------
    NodeNotFound
        If ``scope`` is not in the graph.
    ValidationError
        If ``depth`` is outside 1..5 or ``max_elements`` is below 1.

    Examples
    --------
    >>> g = build_topology(
    ...     [{"id": d} for d in "abcd"],
    ...     [Link(x, y, None, None, None) for x, y in ["ab", "bc", "cd"]],
    ... )
    >>> sorted(subgraph(g, "a", depth=2))
    ['a', 'b', 'c']
    >>> small = subgraph(g, "a", depth=3, max_elements=3)
    >>> sorted(small), small.graph["pruned_nodes"], small.graph["pruned_edges"]
    (['a', 'b'], 2, 2)
    """
    _require_multigraph(graph)
    _check_subgraph_limits(depth, max_elements)
    if scope not in graph:
        raise NodeNotFound(f"node {scope!r} not found in the topology")

    hops = _hop_counts(graph, scope, depth)
    result: nx.MultiGraph[str] = graph.subgraph(hops).copy()
    pruned_nodes = pruned_edges = 0
    if max_elements is not None:
        pruned_nodes, pruned_edges = _prune_farthest(result, list(hops), max_elements)

    for node in result:
        result.nodes[node]["hops"] = hops[node]
    result.graph.update(
        scope=scope, depth=depth, pruned_nodes=pruned_nodes, pruned_edges=pruned_edges
    )
    return result


def _check_subgraph_limits(depth: int, max_elements: int | None) -> None:
    if isinstance(depth, bool) or not isinstance(depth, int):
        message = f"depth {depth!r} is not an integer; use 1 to {MAX_DEPTH}"
        raise ValidationError(message)
    if not 1 <= depth <= MAX_DEPTH:
        raise ValidationError(f"depth {depth} is out of range; use 1 to {MAX_DEPTH}")
    if max_elements is None:
        return
    if isinstance(max_elements, bool) or not isinstance(max_elements, int):
        valid = False
    else:
        valid = max_elements >= 1
    if not valid:
        message = (
            f"max_elements {max_elements!r} is invalid; use an integer of 1 or more"
        )
        raise ValidationError(message)


def _hop_counts(graph: nx.MultiGraph[str], scope: str, depth: int) -> dict[str, int]:
    """Breadth-first hop counts from ``scope``, in discovery order."""
    hops = {scope: 0}
    queue = deque([scope])
    while queue:
        node = queue.popleft()
        if hops[node] == depth:
            continue
        for neighbour in graph.adj[node]:
            if neighbour not in hops:
                hops[neighbour] = hops[node] + 1
                queue.append(neighbour)
    return hops


def _prune_farthest(
    result: nx.MultiGraph[str], order: list[str], max_elements: int
) -> tuple[int, int]:
    """Remove nodes from the end of ``order`` until nodes plus edges fit."""
    size = result.number_of_nodes() + result.number_of_edges()
    pruned_nodes = pruned_edges = 0
    for node in reversed(order[1:]):
        if size <= max_elements:
            break
        incident = sum(len(keys) for keys in result.adj[node].values())
        result.remove_node(node)
        pruned_nodes += 1
        pruned_edges += incident
        size -= 1 + incident
    return pruned_nodes, pruned_edges


# --- shortest path ----------------------------------------------------------


def shortest_path(
    graph: nx.MultiGraph[str],
    source: str,
    target: str,
    weight: str | None = "weight",
    kinds: Iterable[LinkKind] = ("intended",),
) -> Path:
    """Find the cheapest path between two devices over links of the given kinds.

    Between two devices with parallel links, each hop uses the cheapest one;
    ties go to the smallest edge key. Only ``connected_to`` edges are walked,
    so a path never passes through a site or subnet.

    Parameters
    ----------
    graph : networkx.MultiGraph
        A topology graph. A ``MultiDiGraph`` works too and is walked along
        edge directions.
    source, target : str
        Device ids.
    weight : str or None
        Edge attribute holding the cost; an edge without it costs 1.
        ``None`` counts hops.
    kinds : iterable of {"intended", "detected"}
        Which links to use.

    Returns
    -------
    Path
        Nodes, one :class:`Hop` per link (key, ports, cable, weight), and the
        total cost. From a device to itself the path has no hops.

    Raises
    ------
    NodeNotFound
        If ``source`` or ``target`` is not in the graph.
    NoPath
        If both exist but no path of the given kinds joins them.
    ValidationError
        If either node is not a device or ``kinds`` is invalid.

    Examples
    --------
    >>> g = build_topology(
    ...     [{"id": "a"}, {"id": "b"}],
    ...     [
    ...         Link("a", "b", "e1", "e1", None, weight=100, key="slow"),
    ...         Link("a", "b", "e2", "e2", "c-9", weight=10, key="fast"),
    ...     ],
    ... )
    >>> path = shortest_path(g, "a", "b")
    >>> path.cost, path.hops[0].key, path.hops[0].cable
    (10.0, 'fast', 'c-9')
    """
    _require_multigraph(graph)
    allowed = _check_kinds(kinds)
    _require_device(graph, source)
    _require_device(graph, target)

    def hop_cost(data: Mapping[str, Any]) -> float | None:
        if not _is_device_link(data, allowed):
            return None
        return 1.0 if weight is None else float(data.get(weight, 1.0))

    def edge_cost(u: str, v: str, parallel: Mapping[Any, Any]) -> float | None:
        # networkx passes all parallel edges of the pair, keyed by edge key, and
        # None hides the pair. Pricing them here keeps the result independent of
        # how networkx reads multigraph weights, which bidirectional_dijkstra
        # once got wrong (it read a single parallel edge).
        costs = [c for d in parallel.values() if (c := hop_cost(d)) is not None]
        return min(costs, default=None)

    try:
        nodes = nx.bidirectional_dijkstra(graph, source, target, weight=edge_cost)[1]
    except nx.NetworkXNoPath as exc:
        message = (
            f"no path between {source!r} and {target!r} over "
            f"{'/'.join(sorted(allowed))} links; check that both are connected"
        )
        raise NoPath(message, details={"source": source, "target": target}) from exc

    hops = tuple(_cheapest_hop(graph, u, v, hop_cost) for u, v in pairwise(nodes))
    return Path(tuple(nodes), hops, float(sum(hop.weight for hop in hops)))


def _cheapest_hop(
    graph: nx.MultiGraph[str],
    source: str,
    target: str,
    hop_cost: Callable[[Mapping[str, Any]], float | None],
) -> Hop:
    """Recover the parallel edge that Dijkstra priced for the pair."""
    best: tuple[float, str, Any, Mapping[str, Any]] | None = None
    for key, data in graph[source][target].items():
        cost = hop_cost(data)
        if cost is not None and (best is None or (cost, str(key)) < best[:2]):
            best = (cost, str(key), key, data)
    assert best is not None, "Dijkstra returned a pair without a usable edge"
    cost, _, key, data = best
    ports = (data.get("port_a"), data.get("port_b"))
    if data.get("a", source) != source:
        ports = ports[::-1]
    return Hop(source, target, ports[0], ports[1], data.get("cable"), cost, key)


# --- blast radius -----------------------------------------------------------


def blast_radius(
    graph: nx.MultiGraph[str],
    target: str | LinkId,
    roots: Iterable[str] | None = None,
    kinds: Iterable[LinkKind] = ("intended",),
) -> BlastRadius:
    """Find what loses its path to the rest of the network when ``target`` fails.

    Connectivity is measured over device links of the given kinds. The
    reference that devices must reach is:

    - with ``roots``: any root that is still up. A device is affected when it
      reached a root before the failure and reaches none after it. A device
      that reached no root before the failure is not affected.
    - without ``roots``: the rest of the network. Take the connected component
      that contains the target (for a link, its first device) and remove the
      target. Of the pieces that are left, the one with the most devices is
      the rest of the network, and the devices of the other pieces are
      affected. When several pieces tie for the most devices, each of them
      counts as the rest, so the result does not depend on node names.
      Devices in other components are never affected.

    A failed device is always affected itself. A failed link cuts nothing
    while a parallel link of the given kinds joins the same two devices.

    Parameters
    ----------
    graph : networkx.MultiGraph
        A topology graph.
    target : str or (a, b, key)
        A device id, or a link given by its two devices and edge key.
    roots : iterable of str or None
        Devices that stand for the outside world, such as border routers.
    kinds : iterable of {"intended", "detected"}
        Which links carry connectivity.

    Returns
    -------
    BlastRadius
        ``devices``: the affected devices. ``subnets`` and ``sites``: without
        roots, those whose every device is affected. With roots, those with
        an affected device that reached a root before the failure and no
        device that reaches one after it. ``addresses``: the addresses in those
        subnets plus the addresses whose ``device`` is affected. ``links``:
        the links of the given kinds with an affected device at either end,
        plus the failed link.

    Raises
    ------
    NodeNotFound
        If the target device, a link end or a root is not in the graph.
    NotFound
        If the two devices exist but no link has the given key.
    ValidationError
        If the target or a root is not a device, ``roots`` is empty, or
        ``kinds`` is invalid.

    Examples
    --------
    >>> g = build_topology(
    ...     [{"id": "core", "site": "dc"}, {"id": "edge", "site": "branch"},
    ...      {"id": "srv", "site": "branch"}],
    ...     [Link("core", "edge", None, None, None, key="wan"),
    ...      Link("edge", "srv", None, None, None, key="lan")],
    ...     subnet_members=[("edge", "10.1.0.0/24"), ("srv", "10.1.0.0/24")],
    ...     address_members=[("10.1.0.5", "10.1.0.0/24", "srv")],
    ... )
    >>> hit = blast_radius(g, "edge", roots=["core"])
    >>> hit.devices, hit.sites, hit.subnets, hit.addresses
    (('edge', 'srv'), ('branch',), ('10.1.0.0/24',), ('10.1.0.5',))
    >>> blast_radius(g, ("core", "edge", "wan")).devices
    ('core',)
    """
    _require_multigraph(graph)
    allowed = _check_kinds(kinds)
    root_set = _check_roots(graph, roots)
    if isinstance(target, tuple):
        failed_link: LinkId | None = _check_link(graph, target)
        failed: frozenset[str] = frozenset()
        start = target[0]
    else:
        _require_device(graph, target)
        failed_link = None
        failed = frozenset({target})
        start = target

    devices = _device_graph(graph, allowed)
    if root_set is None:
        before = nx.node_connected_component(devices, start)
    else:
        before = _reachable(devices, root_set)
    _fail(devices, graph, failed, failed_link, allowed)
    if root_set is None:
        after = _largest_pieces(devices.subgraph(before - failed))
    else:
        after = _reachable(devices, root_set - failed)

    affected = (before - after) | failed
    # Without roots a member outside the target's component keeps working, so
    # only a group whose every member is affected is cut off.
    lost = affected & before if root_set is not None else None
    subnets = _cut_off_groups(graph, affected, after, "subnet", lost)
    return BlastRadius(
        target=target,
        devices=tuple(sorted(affected)),
        subnets=tuple(sorted(subnets)),
        addresses=tuple(sorted(_lost_addresses(graph, affected, subnets))),
        sites=tuple(sorted(_cut_off_groups(graph, affected, after, "site", lost))),
        links=tuple(sorted(_lost_links(graph, affected, allowed, failed_link))),
    )


def _check_link(graph: nx.MultiGraph[str], target: tuple[Any, ...]) -> LinkId:
    if len(target) != 3:
        message = f"link {target!r} is invalid; give a link as (a, b, key)"
        raise ValidationError(message)
    a, b, key = target
    for end in (a, b):
        if end not in graph:
            raise NodeNotFound(f"node {end!r} not found in the topology")
    data = graph.get_edge_data(a, b, key)
    if data is None or data.get("relation") != CONNECTED_TO:
        message = (
            f"link {a!r}-{b!r} with key {key!r} not found; "
            f"list the keys with graph[{a!r}][{b!r}]"
        )
        raise NotFound(message)
    return (a, b, key)


def _device_graph(graph: nx.MultiGraph[str], kinds: frozenset[str]) -> nx.Graph[str]:
    """Simple graph of all devices; ``links`` counts the parallel links per pair."""
    devices: nx.Graph[str] = nx.Graph()
    devices.add_nodes_from(
        n for n, attrs in graph.nodes.items() if attrs.get("kind") == "device"
    )
    for u, v, data in graph.edges(data=True):
        if u == v or not _is_device_link(data, kinds):
            continue
        if devices.has_edge(u, v):
            devices[u][v]["links"] += 1
        else:
            devices.add_edge(u, v, links=1)
    return devices


def _fail(
    devices: nx.Graph[str],
    graph: nx.MultiGraph[str],
    failed: frozenset[str],
    failed_link: LinkId | None,
    kinds: frozenset[str],
) -> None:
    devices.remove_nodes_from(failed)
    if failed_link is None:
        return
    a, b, key = failed_link
    if a == b or not _is_device_link(graph[a][b][key], kinds):
        return
    devices[a][b]["links"] -= 1
    if devices[a][b]["links"] == 0:
        devices.remove_edge(a, b)


def _reachable(devices: nx.Graph[str], sources: Iterable[str]) -> set[str]:
    seen: set[str] = set()
    for source in sources:
        if source not in seen:
            seen |= nx.node_connected_component(devices, source)
    return seen


def _largest_pieces(remaining: nx.Graph[str]) -> set[str]:
    """Union of the connected components that tie for the most devices."""
    pieces = list(nx.connected_components(remaining))
    largest = max((len(piece) for piece in pieces), default=0)
    return set().union(*(piece for piece in pieces if len(piece) == largest))


def _cut_off_groups(
    graph: nx.MultiGraph[str],
    affected: set[str],
    reached: set[str],
    kind: str,
    lost: set[str] | None,
) -> set[str]:
    """Return the sites or subnets that the failure cuts off.

    Without roots (``lost`` is None), a group is cut off when every member
    device is affected. With roots, ``lost`` contains the affected devices that
    reached a root before the failure, and a group is cut off when one of its
    members is lost and none still reaches a root.
    """
    nodes = graph.nodes
    candidates = {
        g for d in affected for g in graph.adj[d] if nodes[g].get("kind") == kind
    }
    cut_off = set()
    for group in candidates:
        members = {m for m in graph.adj[group] if nodes[m].get("kind") == "device"}
        if lost is None:
            if members <= affected:
                cut_off.add(group)
        elif members & lost and not members & reached:
            cut_off.add(group)
    return cut_off


def _lost_addresses(
    graph: nx.MultiGraph[str], affected: set[str], subnets: set[str]
) -> set[str]:
    nodes = graph.nodes
    lost = {
        a for s in subnets for a in graph.adj[s] if nodes[a].get("kind") == "address"
    }
    for node, attrs in nodes.items():
        if attrs.get("kind") == "address" and attrs.get("device") in affected:
            lost.add(node)
    return lost


def _lost_links(
    graph: nx.MultiGraph[str],
    affected: set[str],
    kinds: frozenset[str],
    failed_link: LinkId | None,
) -> set[LinkId]:
    lost: set[LinkId] = set()
    for device in affected:
        for neighbour, parallel in graph.adj[device].items():
            for key, data in parallel.items():
                if _is_device_link(data, kinds):
                    lost.add(_link_id(device, neighbour, key))
    if failed_link is not None:
        lost.add(_link_id(*failed_link))
    return lost


def _link_id(a: str, b: str, key: str) -> LinkId:
    return (a, b, key) if a <= b else (b, a, key)


def blast_radius_all(
    graph: nx.MultiGraph[str],
    roots: Iterable[str] | None = None,
    kinds: Iterable[LinkKind] = ("intended",),
) -> dict[str, set[str]]:
    """Compute the affected devices of every single-device failure in one pass.

    The result for each device equals ``set(blast_radius(graph, device,
    roots, kinds).devices)``, but comes from one biconnected-component
    decomposition instead of one removal per device. Removing a device that is
    not an articulation point leaves its component connected, so it affects
    only itself, unless it is the only root of its component. For an
    articulation point, the pieces left behind are the subtrees of the
    block-cut tree around it, so their sizes and root counts come from
    subtree sums.

    Parameters
    ----------
    graph : networkx.MultiGraph
        A topology graph.
    roots : iterable of str or None
        As in :func:`blast_radius`.
    kinds : iterable of {"intended", "detected"}
        Which links carry connectivity.

    Returns
    -------
    dict of str to set of str
        For every device, the devices affected when it fails (itself included).

    Raises
    ------
    NodeNotFound, ValidationError
        As in :func:`blast_radius` for ``roots`` and ``kinds``.

    Examples
    --------
    >>> g = build_topology(
    ...     [{"id": d} for d in "abcd"],
    ...     [Link(x, y, None, None, None) for x, y in ["ab", "bc", "ca", "cd"]],
    ... )
    >>> {d: sorted(hit) for d, hit in sorted(blast_radius_all(g).items())}
    {'a': ['a'], 'b': ['b'], 'c': ['c', 'd'], 'd': ['d']}
    """
    _require_multigraph(graph)
    allowed = _check_kinds(kinds)
    root_set = _check_roots(graph, roots)

    return _radii(_device_graph(graph, allowed), root_set)


def new_single_points(
    graph: nx.MultiGraph[str],
    target: str | LinkId,
    roots: Iterable[str] | None = None,
    kinds: Iterable[LinkKind] = ("intended",),
) -> dict[str, set[str]]:
    """Find the devices that a failure of ``target`` turns into single points.

    After ``target`` fails, the devices that still reach the reference (as in
    :func:`blast_radius`) form a smaller network. A device of that network is
    a new single point when its own failure would now cut off a device that
    it would not have cut off before. This is the redundancy that the first
    failure used up, such as the second switch of a pair.

    Returns
    -------
    dict of str to set of str
        For each new single point, the other devices that its failure would
        cut off once ``target`` is down.

    Raises
    ------
    NodeNotFound, NotFound, ValidationError
        As in :func:`blast_radius`.

    Examples
    --------
    >>> g = build_topology(
    ...     [{"id": d} for d in ("core1", "core2", "dist1", "dist2")],
    ...     [Link("core1", "dist1", None, None, None, key="a"),
    ...      Link("core2", "dist1", None, None, None, key="b"),
    ...      Link("core1", "dist2", None, None, None, key="c"),
    ...      Link("core2", "dist2", None, None, None, key="d")],
    ... )
    >>> cores = ["core1", "core2"]
    >>> {d: sorted(cut) for d, cut in new_single_points(g, "core1", cores).items()}
    {'core2': ['dist1', 'dist2']}
    """
    _require_multigraph(graph)
    allowed = _check_kinds(kinds)
    root_set = _check_roots(graph, roots)
    if isinstance(target, tuple):
        failed_link: LinkId | None = _check_link(graph, target)
        failed: frozenset[str] = frozenset()
        start = target[0]
    else:
        _require_device(graph, target)
        failed_link = None
        failed = frozenset({target})
        start = target

    devices = _device_graph(graph, allowed)
    component = nx.node_connected_component(devices, start)
    before = _radii(devices.subgraph(component), root_set)
    _fail(devices, graph, failed, failed_link, allowed)
    if root_set is None:
        survivors = _largest_pieces(devices.subgraph(component - failed))
    else:
        survivors = _reachable(devices, (root_set - failed) & component)
    after = _radii(devices.subgraph(survivors), root_set)

    found: dict[str, set[str]] = {}
    for device, cut in after.items():
        grown = cut - before.get(device, set())
        if grown - {device}:
            found[device] = cut - {device}
    return found


def _radii(devices: nx.Graph[str], roots: frozenset[str] | None) -> dict[str, set[str]]:
    """Compute the blast radius of every device of a simple device graph."""
    radii: dict[str, set[str]] = {}
    for component in nx.connected_components(devices):
        component_roots = None if roots is None else roots & component
        if len(component) == 1 or component_roots == frozenset():
            # Alone, or no device here reached a root before any failure.
            radii.update((device, {device}) for device in component)
        else:
            sub = devices.subgraph(component)
            radii.update(_component_radii(sub, component_roots))
    return radii


def _component_radii(
    component: nx.Graph[str], roots: frozenset[str] | None
) -> dict[str, set[str]]:
    """Blast radius of every device of one connected component of 2+ devices."""
    # The networkx stubs type a block as a list of sets, but it is a set of nodes.
    blocks: list[list[str]] = [
        list(cast("set[str]", block)) for block in nx.biconnected_components(component)
    ]
    block_count: dict[str, int] = {}
    for block in blocks:
        for device in block:
            block_count[device] = block_count.get(device, 0) + 1
    # A vertex is an articulation point exactly when it lies in 2+ blocks.
    tree = _BlockCutTree(blocks, {d for d, n in block_count.items() if n > 1}, roots)

    radii: dict[str, set[str]] = {}
    for device in component:
        if block_count[device] > 1:
            radii[device] = tree.cut_off_by(device)
        elif roots == frozenset({device}):
            radii[device] = set(component)
        else:
            radii[device] = {device}
    return radii


class _BlockCutTree:
    """Block-cut tree of one component, rooted at block 0, with subtree sums.

    Tree nodes ``0..len(blocks)-1`` are blocks and the rest are articulation
    points. Each device is listed once in ``flat``, under its articulation
    point or under its only block, in tree preorder, so every subtree's
    devices form one slice ``flat[start[t]:start[t] + size[t]]``.
    """

    def __init__(
        self, blocks: list[list[str]], cuts: set[str], roots: frozenset[str] | None
    ) -> None:
        self.roots = roots
        self.cut_node = {d: len(blocks) + i for i, d in enumerate(sorted(cuts))}
        count = len(blocks) + len(cuts)
        adjacency: list[list[int]] = [[] for _ in range(count)]
        own: list[list[str]] = [[d] for d in sorted(cuts)]
        own[:0] = [[d for d in block if d not in cuts] for block in blocks]
        for index, block in enumerate(blocks):
            for device in block:
                if device in cuts:
                    adjacency[index].append(self.cut_node[device])
                    adjacency[self.cut_node[device]].append(index)

        self.parent = [-1] * count
        self.children: list[list[int]] = [[] for _ in range(count)]
        self.start = [0] * count
        self.size = [len(devices) for devices in own]
        self.root_count = [sum(d in (roots or ()) for d in ds) for ds in own]
        self.flat: list[str] = []
        order = self._preorder(adjacency, own)
        for node in reversed(order[1:]):
            self.size[self.parent[node]] += self.size[node]
            self.root_count[self.parent[node]] += self.root_count[node]

    def _preorder(self, adjacency: list[list[int]], own: list[list[str]]) -> list[int]:
        order: list[int] = []
        stack = [0]
        while stack:
            node = stack.pop()
            order.append(node)
            self.start[node] = len(self.flat)
            self.flat.extend(own[node])
            for child in adjacency[node]:
                if child != self.parent[node]:
                    self.parent[child] = node
                    self.children[node].append(child)
                    stack.append(child)
        return order

    def cut_off_by(self, device: str) -> set[str]:
        """Devices affected when the articulation point ``device`` fails."""
        node = self.cut_node[device]
        end = self.start[node] + self.size[node]
        # Pieces as (device count, root count, slices of flat).
        pieces = [
            (
                self.size[c],
                self.root_count[c],
                [(self.start[c], self.start[c] + self.size[c])],
            )
            for c in self.children[node]
        ]
        pieces.append(
            (
                len(self.flat) - self.size[node],
                self.root_count[0] - self.root_count[node],
                [(0, self.start[node]), (end, len(self.flat))],
            )
        )
        if self.roots is None:
            largest = max(size for size, _, _ in pieces)
            lost = [slices for size, _, slices in pieces if size < largest]
        else:
            lost = [slices for _, roots, slices in pieces if roots == 0]

        affected = {device}
        for slices in lost:
            for first, last in slices:
                affected.update(self.flat[first:last])
        return affected


# --- JSON -------------------------------------------------------------------


def graph_to_dict(graph: nx.MultiGraph[str]) -> dict[str, Any]:
    """Convert a topology graph to a JSON-serialisable dict.

    Returns
    -------
    dict
        ``{"nodes": [{"id", **attrs}], "edges": [{"source", "target", "key",
        **attrs}], "graph": {...}}``. Attribute values are copied as they are,
        so they must themselves be JSON-serialisable.

    Raises
    ------
    ValidationError
        If a node attribute is named ``id``, or an edge attribute ``source``,
        ``target`` or ``key``, because it would overwrite the field.

    Examples
    --------
    >>> g = build_topology([{"id": "r1", "site": "lon"}])
    >>> graph_to_dict(g)["edges"]
    [{'source': 'r1', 'target': 'lon', 'key': 'located_in', 'relation': 'located_in'}]
    >>> graph_from_dict(graph_to_dict(g)).nodes["lon"]
    {'kind': 'site'}
    """
    _require_multigraph(graph)
    nodes = []
    for node, attrs in graph.nodes.items():
        _reject_reserved(attrs, ("id",), f"node {node!r}")
        nodes.append({"id": node, **attrs})
    edges = []
    for u, v, key, attrs in graph.edges(keys=True, data=True):
        _reject_reserved(attrs, ("source", "target", "key"), f"edge {u!r}-{v!r}")
        edges.append({"source": u, "target": v, "key": key, **attrs})
    return {"nodes": nodes, "edges": edges, "graph": dict(graph.graph)}


def graph_from_dict(data: Mapping[str, Any]) -> nx.MultiGraph[str]:
    """Build a topology graph from the output of :func:`graph_to_dict`.

    Raises
    ------
    ValidationError
        If ``nodes`` or ``edges`` is missing, an entry lacks its id fields, or
        an edge names a node that is not listed.

    Examples
    --------
    >>> g = graph_from_dict(
    ...     {"nodes": [{"id": "a", "kind": "device"}, {"id": "b", "kind": "device"}],
    ...      "edges": [{"source": "a", "target": "b", "key": "k",
    ...                 "relation": "connected_to", "kind": "intended"}]}
    ... )
    >>> list(g.edges(keys=True))
    [('a', 'b', 'k')]
    """
    graph: nx.MultiGraph[str] = nx.MultiGraph()
    graph.graph.update(data.get("graph") or {})
    for entry in _entries(data, "nodes", ("id",)):
        attrs = dict(entry)
        graph.add_node(attrs.pop("id"), **attrs)
    for entry in _entries(data, "edges", ("source", "target", "key")):
        attrs = dict(entry)
        u, v, key = attrs.pop("source"), attrs.pop("target"), attrs.pop("key")
        for end in (u, v):
            if end not in graph:
                message = f"edge {u!r}-{v!r} names node {end!r}, which is not listed"
                raise ValidationError(message)
        graph.add_edge(u, v, key=key, **attrs)
    return graph


def _reject_reserved(
    attrs: Mapping[str, Any], names: tuple[str, ...], owner: str
) -> None:
    for name in names:
        if name in attrs:
            message = f"{owner} has an attribute named {name!r}; rename it to convert"
            raise ValidationError(message)


def _entries(
    data: Mapping[str, Any], field: str, required: tuple[str, ...]
) -> list[Mapping[str, Any]]:
    entries = data.get(field)
    if not isinstance(entries, list):
        raise ValidationError(f"topology dict has no {field!r} list")
    for index, entry in enumerate(entries):
        missing = [
            name
            for name in required
            if not isinstance(entry, Mapping) or name not in entry
        ]
        if missing:
            message = f"{field}[{index}] is missing {', '.join(missing)}"
            raise ValidationError(message)
    return entries
