"""Bulk creation of subnets: the rules of :mod:`omnitwin.engine.subnets` in one pass.

Creating subnets one at a time costs several queries each. For imports and
large loads, :func:`plan_bulk` sorts the new subnets together with the stored
ones of the same VRF by (first address, size descending) and sweeps them with
a stack of enclosing intervals. CIDR blocks either nest or are disjoint, so
the top of the stack is always the smallest stored or new subnet that
contains the current one. One pass therefore finds duplicates, overlaps
(nesting in a subnet that is not a container) and parents in O(n log n).
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import duckdb

from omnitwin._ids import new_id
from omnitwin.engine import cidr
from omnitwin.engine.audit import AuditEntry
from omnitwin.engine.context import Context
from omnitwin.engine.store import utc_now
from omnitwin.errors import CIDROverlap, Duplicate, ValidationError
from omnitwin.models import Subnet

__all__ = ["BulkPlan", "plan_bulk", "write_bulk"]

GLOBAL_VRF = "global"


@dataclass(slots=True)
class _Entry:
    """One interval in the sweep: a stored subnet or a new one."""

    first: int
    last: int
    is_container: bool
    subnet_id: str
    cidr: str
    prefix_length: int
    new_index: int | None = None  # position in the input, for new subnets
    parent_id: str | None = None
    parent_length: int = -1
    parent_vrf: str | None = None


@dataclass(slots=True)
class BulkPlan:
    """The writes of a bulk create: new subnets and parent changes."""

    subnets: list[Subnet] = field(default_factory=list)
    versions: list[int] = field(default_factory=list)
    intervals: list[tuple[int, int]] = field(default_factory=list)
    reparented: list[tuple[str, str | None, str]] = field(default_factory=list)


def _stored_entries(
    conn: duckdb.DuckDBPyConnection,
    workspace: str,
    vrf: str,
    version: int,
    first: int,
    last: int,
    containers_only: bool = False,
) -> list[_Entry]:
    rows = conn.execute(
        "SELECT s.id, s.cidr, s.first, s.last, s.is_container, s.prefix_length, "
        "s.parent_id, coalesce(p.prefix_length, -1), p.vrf FROM subnets s "
        "LEFT JOIN subnets p ON p.workspace = s.workspace AND p.id = s.parent_id "
        "WHERE s.workspace = ? AND s.vrf = ? AND s.version = ? "
        "AND s.first <= CAST(? AS UHUGEINT) AND s.last >= CAST(? AS UHUGEINT)"
        + (" AND s.is_container" if containers_only else ""),
        [workspace, vrf, version, last, first],
    ).fetchall()
    return [
        _Entry(
            int(r[2]),
            int(r[3]),
            bool(r[4]),
            r[0],
            r[1],
            int(r[5]),
            parent_id=r[6],
            parent_length=int(r[7]),
            parent_vrf=r[8],
        )
        for r in rows
    ]


def _sort_key(entry: _Entry) -> tuple[int, int]:
    return (entry.first, -entry.last)


def _conflict(new: _Entry, other: _Entry, vrf: str, inside: bool) -> Exception:
    if other.first == new.first and other.last == new.last:
        message = (
            f"{new.cidr} already exists in VRF {vrf!r} as subnet {other.subnet_id}; "
            "update that subnet instead"
        )
        return Duplicate(message, details={"existing": other.subnet_id})
    if inside:
        message = (
            f"{new.cidr} overlaps {other.cidr} (subnet {other.subnet_id}), which is "
            f"not a container; make {other.cidr} a container to nest subnets in it"
        )
    else:
        message = (
            f"{new.cidr} overlaps {other.cidr} (subnet {other.subnet_id}) by "
            f"containing it; create {new.cidr} with is_container=true"
        )
    return CIDROverlap(message, details={"existing": other.subnet_id})


def _sweep(entries: list[_Entry], vrf: str, plan: BulkPlan) -> list[_Entry]:
    """Check nesting and set parents; return new entries left without a parent."""
    orphans: list[_Entry] = []
    stack: list[_Entry] = []
    for entry in sorted(entries, key=_sort_key):
        while stack and stack[-1].last < entry.first:
            stack.pop()
        top = stack[-1] if stack else None
        both_stored = (
            top is not None and top.new_index is None and (entry.new_index is None)
        )
        if top is not None and not both_stored:
            same = top.first == entry.first and top.last == entry.last
            if same or not top.is_container:
                new, other = (
                    (entry, top) if entry.new_index is not None else (top, entry)
                )
                raise _conflict(new, other, vrf, inside=new is entry)
        if entry.new_index is not None:
            if top is None:
                orphans.append(entry)
            else:
                entry.parent_id, entry.parent_length = top.subnet_id, top.prefix_length
        elif (
            top is not None
            and top.new_index is not None
            and (
                entry.parent_id is None
                or entry.parent_length < top.prefix_length
                or (vrf != GLOBAL_VRF and entry.parent_vrf == GLOBAL_VRF)
            )
        ):
            plan.reparented.append((entry.subnet_id, entry.parent_id, top.subnet_id))
        stack.append(entry)
    return orphans


def _global_parents(
    conn: duckdb.DuckDBPyConnection,
    workspace: str,
    version: int,
    orphans: list[_Entry],
    new_global: list[_Entry],
) -> None:
    """Give VRF subnets without a VRF parent the smallest global container."""
    low = min(e.first for e in orphans)
    high = max(e.last for e in orphans)
    containers = _stored_entries(
        conn, workspace, GLOBAL_VRF, version, low, high, containers_only=True
    )
    containers += [e for e in new_global if e.is_container]
    stack: list[_Entry] = []
    items = [(e.first, -e.last, 0, e) for e in containers]
    items += [(e.first, -e.last, 1, e) for e in orphans]
    for first, _, kind, entry in sorted(items, key=lambda t: t[:3]):
        while stack and stack[-1].last < first:
            stack.pop()
        if kind == 0:
            stack.append(entry)
            continue
        for container in reversed(stack):
            same = container.first == entry.first and container.last == entry.last
            if not same and container.last >= entry.last:
                entry.parent_id = container.subnet_id
                break


def _adopt_vrf_subnets(
    conn: duckdb.DuckDBPyConnection,
    workspace: str,
    version: int,
    new_global: list[_Entry],
    plan: BulkPlan,
) -> None:
    """Let new global containers adopt stored VRF subnets that have no VRF parent."""
    containers = [e for e in new_global if e.is_container]
    if not containers:
        return
    rows = conn.execute(
        "SELECT s.id, s.cidr, s.first, s.last, s.is_container, s.prefix_length, "
        "s.parent_id FROM subnets s "
        "LEFT JOIN subnets p ON p.workspace = s.workspace AND p.id = s.parent_id "
        "WHERE s.workspace = ? AND s.vrf <> 'global' AND s.version = ? "
        "AND s.first >= CAST(? AS UHUGEINT) AND s.last <= CAST(? AS UHUGEINT) "
        "AND (s.parent_id IS NULL OR p.vrf = 'global')",
        [
            workspace,
            version,
            min(e.first for e in containers),
            max(e.last for e in containers),
        ],
    ).fetchall()
    if not rows:
        return
    has_vrf_parent = {child for child, _, _ in plan.reparented}
    candidates = [
        _Entry(int(r[2]), int(r[3]), bool(r[4]), r[0], r[1], int(r[5]))
        for r in rows
        if r[0] not in has_vrf_parent
    ]
    if not candidates:
        return
    old_parents = {r[0]: r[6] for r in rows}
    _global_parents(conn, workspace, version, candidates, new_global)
    new_ids = {e.subnet_id for e in containers}
    for entry in candidates:
        old = old_parents[entry.subnet_id]
        if entry.parent_id in new_ids and entry.parent_id != old:
            plan.reparented.append((entry.subnet_id, old, entry.parent_id))


def plan_bulk(
    conn: duckdb.DuckDBPyConnection, ctx: Context, items: list[Any]
) -> BulkPlan:
    """Check new subnets (``SubnetInput`` items) and return what to write.

    Raises the same errors as single creates, naming the first offending
    subnet. Items with an explicit ``parent_id`` are not supported here.
    """
    plan = BulkPlan()
    now = utc_now()
    groups: dict[tuple[str, int], list[_Entry]] = defaultdict(list)
    for index, values in enumerate(items):
        if values.parent_id is not None:
            raise ValidationError("bulk create finds parents itself; omit parent_id")
        interval = cidr.Interval.of(values.network)
        groups[(values.vrf, interval.version)].append(
            _Entry(
                interval.first,
                interval.last,
                values.is_container,
                new_id("sn"),
                str(values.network),
                values.network.prefixlen,
                new_index=index,
            )
        )
    orphans_by_version: dict[int, list[_Entry]] = defaultdict(list)
    for (vrf, version), new_entries in groups.items():
        low = min(e.first for e in new_entries)
        high = max(e.last for e in new_entries)
        stored = _stored_entries(conn, ctx.workspace, vrf, version, low, high)
        orphans = _sweep(stored + new_entries, vrf, plan)
        if vrf != GLOBAL_VRF:
            orphans_by_version[version] += orphans
    for version, orphans in orphans_by_version.items():
        if orphans:
            _global_parents(
                conn,
                ctx.workspace,
                version,
                orphans,
                groups.get((GLOBAL_VRF, version), []),
            )
    for version in {v for (vrf, v) in groups if vrf == GLOBAL_VRF}:
        _adopt_vrf_subnets(
            conn, ctx.workspace, version, groups[(GLOBAL_VRF, version)], plan
        )
    entries = sorted(
        (e for g in groups.values() for e in g), key=lambda e: e.new_index or 0
    )
    for entry in entries:
        values = items[entry.new_index or 0]
        plan.subnets.append(
            Subnet(
                id=entry.subnet_id,
                cidr=entry.cidr,
                status=values.status,
                purpose=values.purpose,
                parent_id=entry.parent_id,
                vlan_id=values.vlan_id,
                owner=values.owner,
                tags=values.tags,
                vrf=values.vrf,
                is_pool=values.is_pool,
                is_container=values.is_container,
                created_at=now,
                updated_at=now,
            )
        )
        plan.versions.append(values.network.version)
        plan.intervals.append((entry.first, entry.last))
    return plan


def write_bulk(
    conn: duckdb.DuckDBPyConnection,
    ctx: Context,
    plan: BulkPlan,
    store: Any,
    audit: Any,
) -> None:
    """Insert a checked plan and its audit events in the caller's transaction."""
    subnets = plan.subnets
    columns: dict[str, list[Any]] = {
        "id": [s.id for s in subnets],
        "workspace": [ctx.workspace] * len(subnets),
        "cidr": [s.cidr for s in subnets],
        "version": plan.versions,
        "first": [i[0] for i in plan.intervals],
        "last": [i[1] for i in plan.intervals],
        "prefix_length": [int(s.cidr.rsplit("/", 1)[1]) for s in subnets],
        "vrf": [s.vrf for s in subnets],
        "status": [s.status for s in subnets],
        "purpose": [s.purpose for s in subnets],
        "parent_id": [s.parent_id for s in subnets],
        "vlan_id": [s.vlan_id for s in subnets],
        "owner": [s.owner for s in subnets],
        "tags": [json.dumps(s.tags, sort_keys=True) for s in subnets],
        "is_pool": [s.is_pool for s in subnets],
        "is_container": [s.is_container for s in subnets],
        "created_at": [s.created_at for s in subnets],
        "updated_at": [s.updated_at for s in subnets],
    }
    store.bulk_insert(
        conn,
        "subnets",
        columns,
        casts={
            "first": "UHUGEINT",
            "last": "UHUGEINT",
            "version": "TINYINT",
            "prefix_length": "SMALLINT",
            "vlan_id": "INTEGER",
            "is_pool": "BOOLEAN",
            "is_container": "BOOLEAN",
        },
    )
    creates = [
        AuditEntry(
            s.id,
            "subnet.create",
            ctx.actor,
            ctx.intent,
            {"before": None, "after": s.to_dict()},
        )
        for s in subnets
    ]
    audit.append_many(conn, ctx.workspace, creates, new_subjects=True)
    reparents = []
    for child_id, old_parent, new_parent in plan.reparented:
        conn.execute(
            "UPDATE subnets SET parent_id = ? WHERE workspace = ? AND id = ?",
            [new_parent, ctx.workspace, child_id],
        )
        reparents.append(
            AuditEntry(
                child_id,
                "subnet.reparent",
                ctx.actor,
                ctx.intent,
                {
                    "before": {"parent_id": old_parent},
                    "after": {"parent_id": new_parent},
                },
            )
        )
    audit.append_many(conn, ctx.workspace, reparents)
