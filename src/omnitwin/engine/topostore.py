"""Topology over the store: links, the cached graph, paths and blast radius.

Links live in the ``links`` table. An ``intended`` link is a cable of the
twin. A ``detected`` link is an LLDP or CDP neighbour written by discovery
ingest, and each new report of a device replaces the detected links that
the device reported before. Ports are stored in the normalised long form
(:func:`~omnitwin.engine.discovery.interfaces.normalize_interface`), so that
cables and neighbours name a port the same way.

The graph follows :mod:`omnitwin.engine.topology`. Its node ids are device
ids (``dv_...``), ``site:<name>``, subnet ids (``sn_...``) and address ids;
every node has a ``label`` (hostname, site name, CIDR or address). A device
is a member of the most specific stored subnet that contains its management
address or an interface address of its twin state, and of the subnets of
the addresses assigned to it. Two devices that both report one detected link
give one detected edge.

The graph of a workspace is built once and cached. Writes to devices or
links drop the cache after they commit; subnet and address changes are
noticed through a cheap fingerprint query on each use.
"""

from __future__ import annotations

import ipaddress
import json
import math
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import duckdb
import networkx as nx

from omnitwin._ids import new_id
from omnitwin.engine import topology as algo
from omnitwin.engine.audit import AuditEntry, AuditLog
from omnitwin.engine.context import Context
from omnitwin.engine.devices import DeviceService
from omnitwin.engine.discovery.interfaces import normalize_interface
from omnitwin.engine.store import Store, utc_now
from omnitwin.errors import Duplicate, NodeNotFound, NotFound, ValidationError
from omnitwin.models import (
    BlastRadiusResult,
    TopologyGraph,
    TopologyHop,
    TopologyLink,
    TopologyPath,
)

__all__ = ["LINKS_SCHEMA", "TopologyService"]

LINKS_SCHEMA = """
CREATE TABLE IF NOT EXISTS links (
    id VARCHAR NOT NULL,
    workspace VARCHAR NOT NULL,
    kind VARCHAR NOT NULL,
    a VARCHAR NOT NULL,
    port_a VARCHAR,
    b VARCHAR NOT NULL,
    port_b VARCHAR,
    cable VARCHAR,
    weight DOUBLE NOT NULL,
    reported_by VARCHAR,
    created_at VARCHAR NOT NULL
);
"""

_LINK_COLUMNS = (
    "l.id, l.kind, l.a, l.port_a, l.b, l.port_b, l.cable, l.weight, "
    "da.hostname, db.hostname, l.reported_by, l.created_at"
)
_LINK_JOIN = (
    "FROM links l JOIN devices da ON da.workspace = l.workspace AND da.id = l.a "
    "JOIN devices db ON db.workspace = l.workspace AND db.id = l.b"
)


def _port(value: object, name: str) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if not isinstance(value, str):
        raise ValidationError(f"invalid {name} {value!r}; a port name is a string")
    return normalize_interface(value)


def _weight(value: object) -> float:
    valid = isinstance(value, int | float) and not isinstance(value, bool)
    if not valid or not math.isfinite(float(value)) or float(value) < 0:  # type: ignore[arg-type]
        message = f"invalid link weight {value!r}; use a finite number of 0 or more"
        raise ValidationError(message, details={"weight": value})
    return float(value)  # type: ignore[arg-type]


def link_from_row(row: tuple[Any, ...]) -> TopologyLink:
    """Build a :class:`TopologyLink` from a row selected with the link columns."""
    return TopologyLink(
        id=row[0],
        kind=row[1],
        a=row[2],
        port_a=row[3],
        b=row[4],
        port_b=row[5],
        cable=row[6],
        weight=float(row[7]),
        a_hostname=row[8],
        b_hostname=row[9],
        reported_by=row[10],
        created_at=row[11],
    )


def link_ends(link: TopologyLink) -> tuple[tuple[str, str], tuple[str, str]]:
    """Return the two (device, port) ends of a link in sorted order."""
    first, second = (link.a, link.port_a or ""), (link.b, link.port_b or "")
    return (first, second) if first <= second else (second, first)


@dataclass(slots=True)
class _Cached:
    """One workspace's graph with the lookups that resolve user names."""

    generation: int
    fingerprint: tuple[Any, ...]
    graph: nx.MultiGraph[str]
    by_name: dict[str, str] = field(default_factory=dict)
    links: dict[str, TopologyLink] = field(default_factory=dict)


class TopologyService:
    """Links, the topology graph, shortest paths and blast radius.

    Examples
    --------
    >>> from omnitwin.engine.engine import Engine
    >>> engine, ctx = Engine(":memory:"), Context()
    >>> for name in ("r1", "r2"):
    ...     _ = engine.devices.create(ctx, name, role="router", site="lab")
    >>> _ = engine.topology.add_link(ctx, "r1", "Gi0/0", "r2", "Gi0/0", cable="c-1")
    >>> path = engine.topology.path(ctx, "r1", "r2")
    >>> path.hostnames, path.hops[0].port_a, path.hops[0].cable
    (['r1', 'r2'], 'GigabitEthernet0/0', 'c-1')
    >>> engine.close()
    """

    def __init__(self, store: Store, audit: AuditLog, devices: DeviceService) -> None:
        self.store = store
        self.audit = audit
        self.devices = devices
        store.ensure_schema(LINKS_SCHEMA)
        self._lock = threading.Lock()
        self._generation: dict[str, int] = {}
        self._cache: dict[str, _Cached] = {}
        devices.commit_listeners.append(self.invalidate)

    def invalidate(self, workspace: str) -> None:
        """Drop the cached graph of a workspace."""
        with self._lock:
            self._generation[workspace] = self._generation.get(workspace, 0) + 1
            self._cache.pop(workspace, None)

    # -- links -------------------------------------------------------------

    def add_link(
        self,
        ctx: Context,
        a: str,
        port_a: str | None,
        b: str,
        port_b: str | None,
        *,
        cable: str | None = None,
        kind: str = "intended",
        weight: float = 1.0,
    ) -> TopologyLink:
        """Add a link between two devices, named by id or hostname.

        Raises
        ------
        NotFound
            If either device does not exist.
        Duplicate
            If an intended link already uses one of the two ports, or joins
            the same two ports.
        ValidationError
            An unknown kind or a negative or infinite weight.
        """
        item = {
            "a": a,
            "port_a": port_a,
            "b": b,
            "port_b": port_b,
            "cable": cable,
            "kind": kind,
            "weight": weight,
        }
        return self.add_links(ctx, [item])[0]

    def add_links(
        self, ctx: Context, links: Iterable[Mapping[str, Any]]
    ) -> list[TopologyLink]:
        """Add links in one transaction (joining the caller's, if open).

        Each item is a map with the arguments of :meth:`add_link`: ``a``,
        ``port_a``, ``b``, ``port_b`` and optionally ``cable``, ``kind`` and
        ``weight``. Either every link is added or none.
        """
        with self.store.transaction() as conn:
            ids = self._device_ids(conn, ctx.workspace)
            used = self._used_ports(conn, ctx.workspace)
            created = [self._validate(ctx, item, ids, used) for item in links]
            self._insert(conn, ctx, created)
            entries = [
                AuditEntry(
                    link.id,
                    "link.create",
                    ctx.actor,
                    ctx.intent,
                    {"before": None, "after": link.to_dict()},
                )
                for link in created
            ]
            self.audit.append_many(conn, ctx.workspace, entries, new_subjects=True)
            self.devices.notify_commit(ctx.workspace)
        return created

    @staticmethod
    def _device_ids(
        conn: duckdb.DuckDBPyConnection, workspace: str
    ) -> dict[str, tuple[str, str]]:
        rows = conn.execute(
            "SELECT id, hostname FROM devices WHERE workspace = ?", [workspace]
        ).fetchall()
        ids: dict[str, tuple[str, str]] = {}
        for device_id, hostname in rows:
            ids[device_id] = (device_id, hostname)
            ids[hostname.lower()] = (device_id, hostname)
        return ids

    @staticmethod
    def _used_ports(conn: duckdb.DuckDBPyConnection, workspace: str) -> set[Any]:
        rows = conn.execute(
            "SELECT a, port_a, b, port_b FROM links WHERE workspace = ? "
            "AND kind = 'intended'",
            [workspace],
        ).fetchall()
        used: set[Any] = set()
        for a, port_a, b, port_b in rows:
            used |= {(a, port_a), (b, port_b)} - {(a, None), (b, None)}
            used.add(tuple(sorted([(a, port_a or ""), (b, port_b or "")])))
        return used

    def _validate(
        self,
        ctx: Context,
        item: Mapping[str, Any],
        ids: dict[str, tuple[str, str]],
        used: set[Any],
    ) -> TopologyLink:
        ends = []
        for name in ("a", "b"):
            ref = str(item.get(name) or "")
            found = ids.get(ref) or ids.get(ref.lower())
            if found is None:
                message = f"device {ref!r} of link end {name} not found"
                raise NotFound(message, details={"device": ref})
            ends.append(found)
        kind = item.get("kind", "intended")
        if kind not in algo.LINK_KINDS:
            message = f"invalid link kind {kind!r}; use 'intended' or 'detected'"
            raise ValidationError(message, details={"kind": kind})
        link = TopologyLink(
            id=new_id("lk"),
            kind=str(kind),
            a=ends[0][0],
            port_a=_port(item.get("port_a"), "port_a"),
            b=ends[1][0],
            port_b=_port(item.get("port_b"), "port_b"),
            cable=item.get("cable"),
            weight=_weight(item.get("weight", 1.0)),
            a_hostname=ends[0][1],
            b_hostname=ends[1][1],
            created_at=utc_now(),
        )
        if link.kind == "intended":
            self._claim_ports(link, used)
        return link

    @staticmethod
    def _claim_ports(link: TopologyLink, used: set[Any]) -> None:
        pair = tuple(sorted([(link.a, link.port_a or ""), (link.b, link.port_b or "")]))
        if pair in used:
            message = (
                f"an intended link between {link.a_hostname} {link.port_a} and "
                f"{link.b_hostname} {link.port_b} already exists"
            )
            raise Duplicate(message, details={"link": link.to_dict()})
        for device, port, hostname in (
            (link.a, link.port_a, link.a_hostname),
            (link.b, link.port_b, link.b_hostname),
        ):
            if port is not None and (device, port) in used:
                message = (
                    f"port {port} of {hostname} already has an intended link; "
                    "one port takes one cable"
                )
                raise Duplicate(message, details={"device": device, "port": port})
        used |= {(link.a, link.port_a), (link.b, link.port_b), pair}

    @staticmethod
    def _insert(
        conn: duckdb.DuckDBPyConnection, ctx: Context, links: list[TopologyLink]
    ) -> None:
        if not links:
            return
        rows = [
            [
                link.id,
                ctx.workspace,
                link.kind,
                link.a,
                link.port_a,
                link.b,
                link.port_b,
                link.cable,
                link.weight,
                link.reported_by,
                link.created_at,
            ]
            for link in links
        ]
        columns = [list(c) for c in zip(*rows, strict=True)]
        conn.execute(
            "INSERT INTO links SELECT unnest(?::VARCHAR[]), unnest(?::VARCHAR[]), "
            "unnest(?::VARCHAR[]), unnest(?::VARCHAR[]), unnest(?::VARCHAR[]), "
            "unnest(?::VARCHAR[]), unnest(?::VARCHAR[]), unnest(?::VARCHAR[]), "
            "unnest(?::DOUBLE[]), unnest(?::VARCHAR[]), unnest(?::VARCHAR[])",
            columns,
        )

    def replace_detected(
        self,
        conn: duckdb.DuckDBPyConnection,
        ctx: Context,
        reporter: str,
        neighbors: list[tuple[str, str, str]],
    ) -> int:
        """Replace the detected links a device reported, inside a transaction.

        ``neighbors`` are ``(local port, remote device id, remote port)``.
        Returns how many links were written.
        """
        conn.execute(
            "DELETE FROM links WHERE workspace = ? AND kind = 'detected' "
            "AND reported_by = ?",
            [ctx.workspace, reporter],
        )
        now = utc_now()
        links = [
            TopologyLink(
                new_id("lk"),
                "detected",
                reporter,
                _port(local, "port_a"),
                remote,
                _port(remote_port, "port_b"),
                reported_by=reporter,
                created_at=now,
            )
            for local, remote, remote_port in dict.fromkeys(neighbors)
        ]
        self._insert(conn, ctx, links)
        self.devices.notify_commit(ctx.workspace)
        return len(links)

    def list_links(
        self, ctx: Context, *, kind: str | None = None, device: str | None = None
    ) -> list[TopologyLink]:
        """Return links ordered by id, optionally of one kind or one device."""
        where = ["l.workspace = ?"]
        params: list[Any] = [ctx.workspace]
        if kind is not None:
            where.append("l.kind = ?")
            params.append(kind)
        if device is not None:
            device_id = self.devices.get(ctx, device).id
            where.append("(l.a = ? OR l.b = ?)")
            params += [device_id, device_id]
        rows = self.store.fetchall(
            f"SELECT {_LINK_COLUMNS} {_LINK_JOIN} WHERE {' AND '.join(where)} "
            "ORDER BY l.id",
            params,
        )
        return [link_from_row(row) for row in rows]

    def link_drift(self, ctx: Context) -> dict[str, list[TopologyLink]]:
        """Compare intended links with detected ones.

        Only devices whose detected state lists neighbours (they reported
        LLDP or CDP) are judged. ``missing`` lists intended links with such
        a device at an end and no detected link between the same two ports.
        ``unexpected`` lists detected links with no intended link between
        the same two ports, once per physical link.
        """
        rows = self.store.fetchall(
            "SELECT id FROM devices WHERE workspace = ? AND "
            "json_exists(detected_state, '$.neighbors')",
            [ctx.workspace],
        )
        reporters = {row[0] for row in rows}
        intended = self.list_links(ctx, kind="intended")
        detected: dict[Any, TopologyLink] = {}
        for link in self.list_links(ctx, kind="detected"):
            detected.setdefault(link_ends(link), link)
        intended_ends = {link_ends(link) for link in intended}
        missing = [
            link
            for link in intended
            if (link.a in reporters or link.b in reporters)
            and link_ends(link) not in detected
        ]
        unexpected = [
            link for ends, link in detected.items() if ends not in intended_ends
        ]
        return {"missing": missing, "unexpected": unexpected}

    # -- graph -------------------------------------------------------------

    def _fingerprint(self, workspace: str) -> tuple[Any, ...]:
        row = self.store.fetchone(
            "SELECT (SELECT count(*) FROM subnets WHERE workspace = ?), "
            "(SELECT max(updated_at) FROM subnets WHERE workspace = ?), "
            "(SELECT count(*) FROM addresses WHERE workspace = ?), "
            "(SELECT max(created_at) FROM addresses WHERE workspace = ?)",
            [workspace] * 4,
        )
        return tuple(row or ())

    def _cached(self, ctx: Context) -> _Cached:
        workspace = ctx.workspace
        fingerprint = self._fingerprint(workspace)
        with self._lock:
            generation = self._generation.get(workspace, 0)
            cached = self._cache.get(workspace)
            if (
                cached is not None
                and cached.generation == generation
                and cached.fingerprint == fingerprint
            ):
                return cached
        built = self._build(ctx, generation, fingerprint)
        with self._lock:
            if self._generation.get(workspace, 0) == generation:
                self._cache[workspace] = built
        return built

    def networkx(self, ctx: Context) -> nx.MultiGraph[str]:
        """Return the whole cached graph; callers must not change it."""
        return self._cached(ctx).graph

    def _build(
        self, ctx: Context, generation: int, fingerprint: tuple[Any, ...]
    ) -> _Cached:
        devices = self.store.fetchall(
            "SELECT id, hostname, role, site, management_address, twin_state, "
            "drift_score FROM devices WHERE workspace = ? ORDER BY id",
            [ctx.workspace],
        )
        subnets = self.store.fetchall(
            "SELECT id, cidr, vrf, is_container FROM subnets WHERE workspace = ?",
            [ctx.workspace],
        )
        addresses = self.store.fetchall(
            "SELECT a.id, a.address, a.subnet_id, coalesce(a.device_id, d.id) "
            "FROM addresses a LEFT JOIN devices d ON d.workspace = a.workspace "
            "AND d.hostname_key = lower(a.hostname) WHERE a.workspace = ? "
            "AND a.subnet_id IS NOT NULL "
            "AND (a.device_id IS NOT NULL OR d.id IS NOT NULL)",
            [ctx.workspace],
        )

        cached = _Cached(generation, fingerprint, nx.MultiGraph())
        device_nodes = []
        for device_id, hostname, role, site, _, _, score in devices:
            device_nodes.append(
                {
                    "id": device_id,
                    "site": f"site:{site}",
                    "label": hostname,
                    "role": role,
                    "drift_score": score,
                }
            )
            cached.by_name[hostname.lower()] = device_id

        known = {row[0] for row in devices}
        members = _subnet_members(devices, subnets)
        address_members = []
        for address_id, address, subnet_id, device_id in addresses:
            if device_id in known:
                address_members.append((address_id, subnet_id, device_id))
                members.add((device_id, subnet_id))
                cached.by_name[address] = address_id

        links = self._graph_links(ctx, cached)
        graph = algo.build_topology(
            device_nodes, links, sorted(members), address_members
        )
        _label_nodes(graph, subnets, addresses, cached.by_name)
        cached.graph = graph
        return cached

    def _graph_links(self, ctx: Context, cached: _Cached) -> list[algo.Link]:
        links = []
        seen_detected: set[Any] = set()
        for link in self.list_links(ctx):
            if link.kind == "detected":
                ends = link_ends(link)
                if ends in seen_detected:
                    continue
                seen_detected.add(ends)
            cached.links[link.id] = link
            links.append(
                algo.Link(
                    link.a,
                    link.b,
                    link.port_a,
                    link.port_b,
                    link.cable,
                    link.weight,
                    "detected" if link.kind == "detected" else "intended",
                    key=link.id,
                )
            )
        return links

    def _node(self, cached: _Cached, name: str) -> str:
        if name in cached.graph:
            return name
        for candidate in (name.lower(), f"site:{name}"):
            if candidate in cached.graph:
                return candidate
            if candidate in cached.by_name:
                return cached.by_name[candidate]
        if name in cached.by_name:
            return cached.by_name[name]
        message = (
            f"node {name!r} not found in the topology; name a device (id or "
            "hostname), a site, a subnet (id or CIDR) or an address"
        )
        raise NodeNotFound(message, details={"node": name})

    def _device_node(self, cached: _Cached, name: str) -> str:
        try:
            node = self._node(cached, name)
        except NodeNotFound:
            # Paths, blast radii and roots take devices only, so the generic
            # list of node kinds would suggest values that fail next.
            message = (
                f"node {name!r} not found in the topology; name a device by id "
                "or hostname"
            )
            raise NodeNotFound(message, details={"node": name}) from None
        kind = cached.graph.nodes[node].get("kind")
        if kind != "device":
            message = f"node {name!r} is a {kind}, not a device; name a device"
            raise ValidationError(message, details={"node": name})
        return node

    def graph(
        self,
        ctx: Context,
        *,
        scope: str | None = None,
        depth: int = 2,
        annotate_drift: bool = False,
        max_elements: int | None = None,
    ) -> TopologyGraph:
        """Return the topology, or the part within ``depth`` hops of ``scope``.

        Parameters
        ----------
        scope : str, optional
            A device (id or hostname), site, subnet (id or CIDR) or address
            at the centre. None returns the whole graph.
        depth : int
            Hops from ``scope``, 1 to 5 (default 2).
        annotate_drift : bool
            Add ``open_drift`` (the number of open drift events) to device
            nodes; ``drift_score`` is always present.
        max_elements : int, optional
            Upper bound on nodes plus edges; the farthest nodes go first.
            Without a scope, nodes go in reverse order of insertion, so
            addresses and subnets go before devices and sites, about a
            tenth of the nodes at a time.

        Raises
        ------
        NodeNotFound
            If ``scope`` names nothing in the topology.
        ValidationError
            If ``depth`` is outside 1..5 or ``max_elements`` is below 1.
        """
        cached = self._cached(ctx)
        if scope is not None:
            node = self._node(cached, scope)
            part = algo.subgraph(cached.graph, node, depth, max_elements)
        else:
            part = _trim(cached.graph, max_elements)
        if annotate_drift:
            part = part.copy()
            counts = self._open_drift_counts(ctx)
            for node_id, attrs in part.nodes.items():
                if attrs.get("kind") == "device":
                    attrs["open_drift"] = counts.get(node_id, 0)
        data = algo.graph_to_dict(part)
        return TopologyGraph(data["nodes"], data["edges"], data["graph"])

    def _open_drift_counts(self, ctx: Context) -> dict[str, int]:
        rows = self.store.fetchall(
            "SELECT device_id, count(*) FROM drift_events WHERE workspace = ? "
            "AND status = 'open' GROUP BY device_id",
            [ctx.workspace],
        )
        return {row[0]: int(row[1]) for row in rows}

    def path(
        self,
        ctx: Context,
        source: str,
        target: str,
        *,
        kinds: Iterable[str] = ("intended",),
    ) -> TopologyPath:
        """Return the cheapest path between two devices, with ports and cables.

        Parallel links are priced one by one and each hop uses the cheapest.

        Raises
        ------
        NodeNotFound
            If a device is not in the topology.
        NoPath
            If both exist but no link of the given kinds joins them.
        """
        cached = self._cached(ctx)
        start = self._device_node(cached, source)
        end = self._device_node(cached, target)
        found = algo.shortest_path(cached.graph, start, end, kinds=_kinds(kinds))
        labels = cached.graph.nodes
        hops = [
            TopologyHop(
                hop.source,
                hop.target,
                labels[hop.source]["label"],
                labels[hop.target]["label"],
                hop.port_a,
                hop.port_b,
                hop.cable,
                hop.weight,
                hop.key,
            )
            for hop in found.hops
        ]
        return TopologyPath(
            source=start,
            target=end,
            nodes=list(found.nodes),
            hostnames=[labels[n]["label"] for n in found.nodes],
            hops=hops,
            cost=found.cost,
        )

    def blast_radius(
        self,
        ctx: Context,
        target_device_or_link: str | tuple[str, str, str],
        *,
        roots: Iterable[str] | None = None,
        kinds: Iterable[str] = ("intended",),
    ) -> BlastRadiusResult:
        """Find what loses its path to the network when a device or link fails.

        Parameters
        ----------
        target_device_or_link : str or (a, b, link id)
            A device id or hostname, or a link id (``lk_...``).
        roots : iterable of str, optional
            Devices that stand for the outside world; without them the
            largest piece left after the failure is the reference (see
            :func:`omnitwin.engine.topology.blast_radius`).
        kinds : iterable of {"intended", "detected"}
            Which links carry connectivity.

        Raises
        ------
        NodeNotFound
            If the device or a root is not in the topology.
        NotFound
            If a link id names no link.
        """
        cached = self._cached(ctx)
        target, kind = self._blast_target(cached, target_device_or_link)
        root_nodes = (
            None if roots is None else [self._device_node(cached, r) for r in roots]
        )
        hit = algo.blast_radius(cached.graph, target, root_nodes, _kinds(kinds))
        single_points = algo.new_single_points(
            cached.graph, target, root_nodes, _kinds(kinds)
        )
        nodes = cached.graph.nodes
        sites = [nodes[s]["label"] for s in hit.sites]
        subnets = self._site_subnets(ctx, cached, set(hit.subnets), sites)
        vlans = self._site_vlans(ctx, sites)
        return BlastRadiusResult(
            target=target if isinstance(target, str) else target[2],
            target_kind=kind,
            devices=list(hit.devices),
            hostnames=[nodes[d]["label"] for d in hit.devices],
            subnets=[subnet_id for subnet_id, _ in subnets],
            subnet_cidrs=[cidr for _, cidr in subnets],
            addresses=sorted(nodes[a]["label"] for a in hit.addresses),
            sites=sites,
            vlans=[vlan_id for vlan_id, _ in vlans],
            vlan_names=[name for _, name in vlans],
            links=sorted(link[2] for link in hit.links),
            roots=root_nodes,
            new_single_points=[
                {
                    "device": device,
                    "hostname": nodes[device]["label"],
                    "cuts_off": sorted(
                        nodes[d]["label"] for d in single_points[device]
                    ),
                }
                for device in sorted(single_points, key=lambda d: nodes[d]["label"])
            ],
        )

    def _site_subnets(
        self, ctx: Context, cached: _Cached, hit: set[str], sites: list[str]
    ) -> list[tuple[str, str]]:
        """Return the ``hit`` subnets plus those of cut-off sites without members.

        A subnet with a ``site`` tag (a NetBox prefix assigned to a site, or a
        sample site block) serves that site even when no device has one of
        its addresses, so it is cut off with its site.
        """
        graph = cached.graph
        rows = self.store.fetchall(
            "SELECT id, cidr, json_extract_string(tags, '$.site') FROM subnets "
            "WHERE workspace = ? ORDER BY id",
            [ctx.workspace],
        )
        cut_sites = set(sites)
        found = []
        for subnet_id, cidr, site in rows:
            neighbours = graph.adj[subnet_id] if subnet_id in graph else {}
            has_members = any(
                graph.nodes[m].get("kind") == "device" for m in neighbours
            )
            if subnet_id in hit or (site in cut_sites and not has_members):
                found.append((subnet_id, cidr))
        return found

    def _site_vlans(self, ctx: Context, sites: list[str]) -> list[tuple[str, str]]:
        """Return the VLANs scoped to cut-off sites, as (id, display name)."""
        if not sites:
            return []
        marks = ", ".join("?" for _ in sites)
        rows = self.store.fetchall(
            f"SELECT id, vid, name, site FROM vlans WHERE workspace = ? "
            f"AND site IN ({marks}) ORDER BY site, vid, id",
            [ctx.workspace, *sites],
        )
        return [
            (vlan_id, f"{name} ({vid}) at {site}") for vlan_id, vid, name, site in rows
        ]

    def _blast_target(
        self, cached: _Cached, target: str | tuple[str, str, str]
    ) -> tuple[str | tuple[str, str, str], str]:
        if isinstance(target, tuple | list):
            if len(target) != 3:
                raise ValidationError("give a link as (a, b, link id) or a link id")
            target = str(target[2])
        if target.startswith("lk_"):
            link = cached.links.get(target)
            if link is None:
                message = f"link {target!r} not found; list links to find its id"
                raise NotFound(message, details={"link": target})
            return (link.a, link.b, link.id), "link"
        return self._device_node(cached, target), "device"


def _kinds(kinds: Iterable[str]) -> tuple[algo.LinkKind, ...]:
    chosen = tuple(kinds)
    for kind in chosen:
        if kind not in algo.LINK_KINDS:
            message = f"invalid link kind {kind!r}; use 'intended' or 'detected'"
            raise ValidationError(message, details={"kind": kind})
    return chosen  # type: ignore[return-value]


def _interface_addresses(management: str | None, twin_text: str) -> list[str]:
    found = [management] if management else []
    twin = json.loads(twin_text)
    interfaces = twin.get("interfaces")
    if isinstance(interfaces, Mapping):
        for values in interfaces.values():
            if not isinstance(values, Mapping):
                continue
            for family in ("ipv4", "ipv6"):
                items = values.get(family)
                if isinstance(items, list):
                    found += [str(item).split("/", 1)[0] for item in items]
    return found


def _subnet_members(
    devices: list[tuple[Any, ...]], subnets: list[tuple[Any, ...]]
) -> set[tuple[str, str]]:
    """Pair each device with the most specific subnet holding one of its addresses."""
    networks: dict[Any, str] = {}
    for subnet_id, cidr, vrf, is_container in subnets:
        network = ipaddress.ip_network(cidr)
        current = networks.get(network)
        # Prefer a global, non-container subnet when a CIDR is stored twice.
        if current is None or (vrf == "global" and not is_container):
            networks[network] = subnet_id
    lengths = {4: sorted({n.prefixlen for n in networks if n.version == 4})[::-1]}
    lengths[6] = sorted({n.prefixlen for n in networks if n.version == 6})[::-1]
    members: set[tuple[str, str]] = set()
    for device_id, _, _, _, management, twin_text, _ in devices:
        for text in _interface_addresses(management, twin_text):
            try:
                address = ipaddress.ip_address(text)
            except ValueError:
                continue
            for length in lengths[address.version]:
                key = ipaddress.ip_network((address, length), strict=False)
                if key in networks:
                    members.add((device_id, networks[key]))
                    break
    return members


def _label_nodes(
    graph: nx.MultiGraph[str],
    subnets: list[tuple[Any, ...]],
    addresses: list[tuple[Any, ...]],
    by_name: dict[str, str],
) -> None:
    cidrs = {row[0]: row[1] for row in subnets}
    texts = {row[0]: row[1] for row in addresses}
    for node, attrs in graph.nodes.items():
        kind = attrs.get("kind")
        if kind == "site":
            attrs["label"] = node.removeprefix("site:")
        elif kind == "subnet":
            attrs["label"] = cidrs.get(node, node)
            by_name.setdefault(attrs["label"], node)
        elif kind == "address":
            attrs["label"] = texts.get(node, node)


def _trim(graph: nx.MultiGraph[str], max_elements: int | None) -> nx.MultiGraph[str]:
    if max_elements is None:
        return graph
    if isinstance(max_elements, bool) or not isinstance(max_elements, int):
        raise ValidationError(f"max_elements {max_elements!r} is not an integer")
    if max_elements < 1:
        raise ValidationError(f"max_elements {max_elements} is below 1")
    keep = list(graph.nodes)
    part = graph.subgraph(keep)
    while keep and part.number_of_nodes() + part.number_of_edges() > max_elements:
        keep = keep[: max(1, len(keep) * 9 // 10)] if len(keep) > 1 else []
        part = graph.subgraph(keep)
    result: nx.MultiGraph[str] = part.copy()
    result.graph.update(
        pruned_nodes=graph.number_of_nodes() - result.number_of_nodes(),
        pruned_edges=graph.number_of_edges() - result.number_of_edges(),
    )
    return result
