"""Load real topologies for the topology tests, and brute-force blast radius.

The data files are read in place from ``OMNITWIN_TEST_DATA`` (default: the
``shared/data`` folder next to the repository).
"""

from __future__ import annotations

import ipaddress
import math
import os
from collections.abc import Iterable
from pathlib import Path

import networkx as nx
import pytest

from omnitwin.engine.discovery.batfish import load_snapshot
from omnitwin.engine.topology import Link, build_topology

REPO = Path(__file__).resolve().parents[2]
DATA = Path(os.environ.get("OMNITWIN_TEST_DATA", REPO.parent / "shared" / "data"))
ZOO = DATA / "topology-zoo"
BATFISH = DATA / "batfish-example"
ZOO_NAMES = ["Abilene", "Cogentco", "Geant2012", "Internet2", "Switch", "Uninett2011"]


def require(path: Path) -> Path:
    """Return ``path``, failing the test with its name when it is absent."""
    if not path.exists():
        pytest.fail(f"test data file {path} is missing; set OMNITWIN_TEST_DATA")
    return path


def zoo_files() -> list[Path]:
    """The Topology Zoo GraphML files the tests cover."""
    return [require(ZOO / f"{name}.graphml") for name in ZOO_NAMES]


def _great_circle_km(a: dict[str, object], b: dict[str, object]) -> float | None:
    if not all(k in n for n in (a, b) for k in ("Latitude", "Longitude")):
        return None
    lat1, lon1, lat2, lon2 = (
        math.radians(float(n[k]))  # type: ignore[arg-type]
        for n in (a, b)
        for k in ("Latitude", "Longitude")
    )
    h = (
        math.sin((lat2 - lat1) / 2) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    )
    return 2 * 6371.0 * math.asin(math.sqrt(h))


def load_zoo(path: Path) -> nx.MultiGraph[str]:
    """Build a topology from a Topology Zoo GraphML file.

    Each PoP becomes a device whose site is its ``Country``. A link costs its
    great-circle length in km (1 when a PoP has no coordinates), times 10 per
    factor of ten below 10 Gbit/s when ``LinkSpeedRaw`` is given, so parallel
    1G and 10G links in Uninett2011 have different costs.
    """
    raw = nx.read_graphml(path, force_multigraph=True)
    devices = []
    for node, attrs in raw.nodes(data=True):
        device = {"id": str(node), "label": attrs.get("label")}
        if "Country" in attrs:
            device["site"] = f"country:{attrs['Country']}"
        devices.append(device)
    links = []
    for u, v, key, attrs in raw.edges(keys=True, data=True):
        km = _great_circle_km(raw.nodes[u], raw.nodes[v])
        weight = 1.0 if km is None else round(km, 3) + 1.0
        if "LinkSpeedRaw" in attrs:
            weight *= 1e10 / float(attrs["LinkSpeedRaw"])
        links.append(Link(str(u), str(v), None, None, None, weight, key=f"zoo-{key}"))
    return build_topology(devices, links)


def load_batfish() -> nx.MultiGraph[str]:
    """Build the batfish example network from its layer-1 file and configs.

    Devices are the 13 routers (site ``AS<n>`` from ``router bgp``) and the two
    hosts, which take the site of the router they are cabled to. Links are the
    20 cables of ``example_layer1_topology.json``, which lists each cable in
    both directions, with the ports as the file spells them. Every interface
    address adds the device to that subnet and adds the address. Address ids
    are ``device:ip`` because two loopbacks in the example share 2.1.1.2/32.
    """
    snapshot = load_snapshot(
        require(BATFISH / "live"), require(BATFISH / "example_layer1_topology.json")
    )
    devices, subnets, addresses = [], [], []
    for device in snapshot.devices:
        name = device["hostname"]
        devices.append({"id": name, "site": device["site"]})
        for interface in device["twin_state"]["interfaces"].values():
            for address in interface.get("ipv4", []):
                iface = ipaddress.ip_interface(address)
                subnets.append((name, str(iface.network)))
                addresses.append((f"{name}:{iface.ip}", str(iface.network), name))
    links = [Link(c.a, c.b, c.port_a, c.port_b, None) for c in snapshot.cables]
    return build_topology(devices, links, subnets, addresses)


# --- brute force ----------------------------------------------------------


def device_multigraph(
    graph: nx.MultiGraph[str], kinds: Iterable[str] = ("intended",)
) -> nx.MultiGraph[str]:
    """Devices and their links of the given kinds, parallel links kept."""
    chosen = set(kinds)
    devices: nx.MultiGraph[str] = nx.MultiGraph()
    devices.add_nodes_from(n for n, k in graph.nodes(data="kind") if k == "device")
    for u, v, key, data in graph.edges(keys=True, data=True):
        if data["relation"] == "connected_to" and data["kind"] in chosen:
            devices.add_edge(u, v, key)
    return devices


def brute_force(
    devices: nx.MultiGraph[str],
    roots: set[str] | None,
    device: str | None = None,
    link: tuple[str, str, str] | None = None,
) -> tuple[set[str], set[str]]:
    """Remove a device or link, recount components, return (affected, reached).

    ``reached`` is the set of devices that still reach the reference after
    the failure: a surviving root, or without roots the largest pieces of the
    failed element's former component.
    """
    after = devices.copy()
    if device is not None:
        after.remove_node(device)
        start = device
    else:
        assert link is not None
        after.remove_edge(*link)
        start = link[0]
    failed = {device} if device is not None else set()

    if roots is None:
        before = nx.node_connected_component(devices, start)
        pieces = [c for c in nx.connected_components(after) if c <= before]
        largest = max((len(c) for c in pieces), default=0)
        reached = set().union(*(c for c in pieces if len(c) == largest))
    else:
        before = set().union(
            *(c for c in nx.connected_components(devices) if c & roots)
        )
        reached = set().union(
            *(c for c in nx.connected_components(after) if c & (roots - failed))
        )
    return (before - reached) | failed, reached


def cut_off_groups(
    graph: nx.MultiGraph[str],
    kind: str,
    affected: set[str],
    reached: set[str],
    before: set[str] | None = None,
) -> set[str]:
    """Groups of ``kind`` that a failure cuts off.

    Without roots (``before`` is None): every member device is affected. With
    roots, ``before`` is the devices that reached a root before the failure:
    a member in ``before`` is affected and no member is in ``reached``.
    """
    groups = set()
    for node, node_kind in graph.nodes(data="kind"):
        if node_kind != kind:
            continue
        members = {m for m in graph[node] if graph.nodes[m]["kind"] == "device"}
        if not members & affected:
            continue
        if before is None and members <= affected:
            groups.add(node)
        if before is not None and members & affected & before and not members & reached:
            groups.add(node)
    return groups


def reaching_roots(devices: nx.MultiGraph[str], roots: set[str]) -> set[str]:
    """Devices that reach a root with nothing failed."""
    return set().union(*(c for c in nx.connected_components(devices) if c & roots))
