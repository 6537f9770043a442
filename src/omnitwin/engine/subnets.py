"""Subnets: the IPAM hierarchy, its validation, free space and allocation.

Rules kept here:

- CIDRs are strict (:func:`omnitwin.engine.cidr.parse_network`) and immutable.
- Two subnets of one VRF either nest or are disjoint (CIDR blocks cannot
  partly overlap). Nesting is allowed only inside a *container*
  (``is_container=True``: a block, a NetBox container, an Infoblox network
  container). A subnet that would nest inside, or around, a subnet that is
  not a container is a ``cidr_overlap`` conflict. The same CIDR twice in one
  VRF is a ``duplicate``.
- The VRF ``"global"`` is the shared table. A subnet's parent is the smallest
  container of its own VRF that strictly contains it; a subnet of another VRF
  with no such container takes the smallest global container instead, so a
  global container serves as a pool shared by every VRF.
- Free space of a parent is its range minus every stored subnet inside it.
  The ``scope`` of a search is ``"vrf"`` (subnets of the parent's VRF only) or
  ``"pool"`` (subnets of every VRF); a global parent defaults to ``"pool"``,
  so one block is never handed out twice from a shared pool.
- Status follows :data:`TRANSITIONS`; ``deprecated`` never returns to
  ``allocated`` or ``reserved`` directly.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import duckdb

from omnitwin._ids import new_id
from omnitwin.engine import cidr
from omnitwin.engine.audit import AuditEntry, AuditLog
from omnitwin.engine.context import Context
from omnitwin.engine.intervals import (
    Array,
    IntervalIndex,
    choose_in_gaps,
    count_blocks_in_gaps,
    gaps_ipv4,
    list_blocks_in_gaps,
)
from omnitwin.engine.store import Store, utc_now
from omnitwin.engine.subnet_bulk import plan_bulk, write_bulk
from omnitwin.errors import (
    CIDROverlap,
    Duplicate,
    ImmutableField,
    InvalidTransition,
    NoFreeSpace,
    NotFound,
    ValidationError,
)
from omnitwin.models import SUBNET_STATUSES, FreeBlocks, Page, Subnet, SubnetDetail

__all__ = ["MAX_PER_PAGE", "TRANSITIONS", "SubnetInput", "SubnetService"]

GLOBAL_VRF = "global"
MAX_PER_PAGE = 200
Scope = Literal["vrf", "pool"]

TRANSITIONS: dict[str, frozenset[str]] = {
    "available": frozenset({"reserved", "allocated", "deprecated"}),
    "reserved": frozenset({"available", "allocated", "deprecated"}),
    "allocated": frozenset({"available", "reserved", "deprecated"}),
    "deprecated": frozenset({"available"}),
}

UPDATABLE = frozenset(
    {"purpose", "owner", "status", "tags", "vlan_id", "is_pool", "is_container"}
)
IMMUTABLE = frozenset({"cidr", "vrf", "id", "parent_id", "created_at", "updated_at"})

_COLUMNS = (
    "id, cidr, status, purpose, parent_id, vlan_id, owner, tags, vrf, is_pool, "
    "is_container, created_at, updated_at, version, first, last, prefix_length"
)


@dataclass(frozen=True, slots=True)
class _Row:
    """A stored subnet with the integer interval the engine works on."""

    subnet: Subnet
    is_container: bool
    version: int
    first: int
    last: int
    prefix_length: int


@dataclass(slots=True)
class SubnetInput:
    """Validated values of a subnet to create."""

    network: cidr.Network
    status: str = "allocated"
    purpose: str | None = None
    parent_id: str | None = None
    vlan_id: int | None = None
    owner: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    vrf: str = GLOBAL_VRF
    is_pool: bool = False
    is_container: bool = False


def _row_from_db(row: tuple[Any, ...]) -> _Row:
    subnet = Subnet(
        id=row[0],
        cidr=row[1],
        status=row[2],
        purpose=row[3],
        parent_id=row[4],
        vlan_id=row[5],
        owner=row[6],
        tags=json.loads(row[7]),
        vrf=row[8],
        is_pool=bool(row[9]),
        is_container=bool(row[10]),
        created_at=row[11],
        updated_at=row[12],
    )
    return _Row(
        subnet, bool(row[10]), int(row[13]), int(row[14]), int(row[15]), int(row[16])
    )


def validate_status(status: object) -> str:
    """Return ``status`` if it is a known subnet status, else raise."""
    if status not in SUBNET_STATUSES:
        message = f"invalid status {status!r}; use one of {', '.join(SUBNET_STATUSES)}"
        raise ValidationError(message, details={"field": "status", "value": status})
    return str(status)


def validate_vlan(vlan_id: object) -> int | None:
    """Return a VLAN id in 1..4094 (or ``None``), else raise."""
    if vlan_id is None:
        return None
    if (
        isinstance(vlan_id, bool)
        or not isinstance(vlan_id, int)
        or not (1 <= vlan_id <= 4094)
    ):
        message = f"invalid vlan_id {vlan_id!r}; VLAN ids are integers from 1 to 4094"
        raise ValidationError(message, details={"field": "vlan_id", "value": vlan_id})
    return vlan_id


def validate_tags(tags: object) -> dict[str, str]:
    """Return tags as a string map, else raise."""
    if tags is None:
        return {}
    if not isinstance(tags, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in tags.items()
    ):
        message = f"invalid tags {tags!r}; tags are a map of strings to strings"
        raise ValidationError(message, details={"field": "tags"})
    return dict(tags)


def validate_text(name: str, value: object) -> str | None:
    """Return an optional free-text field, stripped, else raise."""
    if value is None:
        return None
    if not isinstance(value, str):
        message = f"invalid {name} {value!r}; {name} must be a string"
        raise ValidationError(message, details={"field": name, "value": value})
    return value.strip() or None


def validate_vrf(vrf: object) -> str:
    """Return a VRF name (``"global"`` when empty), else raise."""
    if vrf is None or vrf == "":
        return GLOBAL_VRF
    if not isinstance(vrf, str) or not vrf.strip():
        message = f"invalid vrf {vrf!r}; a VRF is a non-empty name such as 'red'"
        raise ValidationError(message, details={"field": "vrf", "value": vrf})
    return vrf.strip()


def _check_per_page(page: int, per_page: int) -> None:
    if isinstance(page, bool) or not isinstance(page, int) or page < 1:
        raise ValidationError(f"invalid page {page!r}; pages start at 1")
    if (
        isinstance(per_page, bool)
        or not isinstance(per_page, int)
        or not 1 <= per_page <= MAX_PER_PAGE
    ):
        message = f"invalid per_page {per_page!r}; use a value from 1 to {MAX_PER_PAGE}"
        raise ValidationError(message)


class SubnetService:
    """Create, read, update and allocate subnets in one store."""

    def __init__(self, store: Store, audit: AuditLog) -> None:
        self.store = store
        self.audit = audit
        self.index = IntervalIndex(store)

    # -- reading ---------------------------------------------------------

    def _fetch(self, workspace: str, subnet_id: str) -> _Row:
        row = self.store.fetchone(
            f"SELECT {_COLUMNS} FROM subnets WHERE workspace = ? AND id = ?",
            [workspace, subnet_id],
        )
        if row is None:
            message = f"subnet {subnet_id!r} not found; list subnets to find its id"
            raise NotFound(message, details={"id": subnet_id})
        return _row_from_db(row)

    def _find_by_cidr(
        self, workspace: str, network: cidr.Network, vrf: str
    ) -> _Row | None:
        row = self.store.fetchone(
            f"SELECT {_COLUMNS} FROM subnets "
            "WHERE workspace = ? AND cidr = ? AND vrf = ?",
            [workspace, str(network), vrf],
        )
        return None if row is None else _row_from_db(row)

    def get(self, ctx: Context, subnet_id: str) -> SubnetDetail:
        """Return a subnet with its usage and direct children."""
        row = self._fetch(ctx.workspace, subnet_id)
        children = [
            _row_from_db(r).subnet
            for r in self.store.fetchall(
                f"SELECT {_COLUMNS} FROM subnets WHERE workspace = ? AND parent_id = ? "
                "ORDER BY version, first",
                [ctx.workspace, subnet_id],
            )
        ]
        total, used = self._usage(ctx.workspace, row)
        utilization = min(1.0, used / total) if total else 0.0
        return SubnetDetail(row.subnet, total, min(used, total), utilization, children)

    def _usage(self, workspace: str, row: _Row) -> tuple[int, int]:
        network = cidr.parse_network(row.subnet.cidr)
        if row.is_container:
            total = cidr.address_count(network)
            covered = self.store.fetchone(
                "SELECT coalesce(sum(last - first + 1), 0) FROM subnets "
                "WHERE workspace = ? AND parent_id = ? "
                "AND status IN ('allocated', 'reserved')",
                [workspace, row.subnet.id],
            )
            direct = self.store.fetchone(
                "SELECT count(DISTINCT value) FROM addresses "
                "WHERE workspace = ? AND subnet_id = ?",
                [workspace, row.subnet.id],
            )
            used = 0
            if covered:
                used += int(covered[0])
            if direct:
                used += int(direct[0])
            return total, min(used, total)
        total = cidr.usable_address_count(network, pool=row.subnet.is_pool)
        low, high = row.first, row.last
        if network.version == 4 and network.prefixlen <= 30 and not row.subnet.is_pool:
            low, high = low + 1, high - 1
        counted = self.store.fetchone(
            "SELECT count(DISTINCT value) FROM addresses WHERE workspace = ? "
            "AND subnet_id = ? AND value BETWEEN CAST(? AS UHUGEINT) "
            "AND CAST(? AS UHUGEINT)",
            [workspace, row.subnet.id, low, high],
        )
        return total, min(int(counted[0] if counted else 0), total)

    # -- creating --------------------------------------------------------

    def create(
        self,
        ctx: Context,
        cidr_text: str,
        *,
        status: str = "allocated",
        purpose: str | None = None,
        parent_id: str | None = None,
        vlan_id: int | None = None,
        owner: str | None = None,
        tags: Mapping[str, str] | None = None,
        vrf: str | None = None,
        is_pool: bool = False,
        is_container: bool = False,
        normalize: bool = False,
    ) -> Subnet:
        """Create a subnet and audit it.

        Raises
        ------
        InvalidCIDR
            Malformed CIDR or host bits set (unless ``normalize``).
        ValidationError
            Invalid status, VLAN, tags, or a ``parent_id`` that does not
            contain the CIDR.
        Duplicate
            The CIDR already exists in the VRF.
        CIDROverlap
            The subnet would nest inside or around a subnet that is not a
            container.
        """
        values = SubnetInput(
            network=cidr.parse_network(cidr_text, normalize=normalize),
            status=validate_status(status),
            purpose=validate_text("purpose", purpose),
            parent_id=parent_id,
            vlan_id=validate_vlan(vlan_id),
            owner=validate_text("owner", owner),
            tags=validate_tags(tags),
            vrf=validate_vrf(vrf),
            is_pool=bool(is_pool),
            is_container=bool(is_container),
        )
        with self.store.transaction() as conn:
            subnet = self._insert(conn, ctx, values)
        return subnet

    def _overlapping(
        self,
        conn: duckdb.DuckDBPyConnection,
        workspace: str,
        vrf: str,
        interval: cidr.Interval,
    ) -> list[_Row]:
        rows = conn.execute(
            f"SELECT {_COLUMNS} FROM subnets WHERE workspace = ? AND vrf = ? "
            "AND version = ? AND first <= CAST(? AS UHUGEINT) "
            "AND last >= CAST(? AS UHUGEINT) ORDER BY prefix_length",
            [workspace, vrf, interval.version, interval.last, interval.first],
        ).fetchall()
        return [_row_from_db(r) for r in rows]

    def _check_conflicts(
        self, existing: list[_Row], values: SubnetInput, interval: cidr.Interval
    ) -> None:
        for other in existing:
            if other.first == interval.first and other.last == interval.last:
                message = (
                    f"{values.network} already exists in VRF {values.vrf!r} as subnet "
                    f"{other.subnet.id}; update that subnet instead"
                )
                raise Duplicate(message, details={"existing": other.subnet.to_dict()})
            inside = other.first <= interval.first and interval.last <= other.last
            if inside and not other.is_container:
                message = (
                    f"{values.network} overlaps {other.subnet.cidr} (subnet "
                    f"{other.subnet.id}), which is not a container; update "
                    f"{other.subnet.id} with is_container=true to nest subnets in it"
                )
                raise CIDROverlap(message, details={"existing": other.subnet.to_dict()})
            if not inside and not values.is_container:
                message = (
                    f"{values.network} overlaps {other.subnet.cidr} (subnet "
                    f"{other.subnet.id}) by containing it; create {values.network} "
                    "with is_container=true to make it a parent"
                )
                raise CIDROverlap(message, details={"existing": other.subnet.to_dict()})

    def _parent_for(
        self,
        conn: duckdb.DuckDBPyConnection,
        workspace: str,
        values: SubnetInput,
        interval: cidr.Interval,
    ) -> str | None:
        vrfs = [values.vrf] if values.vrf == GLOBAL_VRF else [values.vrf, GLOBAL_VRF]
        for vrf in vrfs:
            row = conn.execute(
                "SELECT id FROM subnets WHERE workspace = ? AND vrf = ? "
                "AND version = ? AND is_container AND first <= CAST(? AS UHUGEINT) "
                "AND last >= CAST(? AS UHUGEINT) "
                "AND prefix_length < ? "
                "ORDER BY prefix_length DESC LIMIT 1",
                [
                    workspace,
                    vrf,
                    interval.version,
                    interval.first,
                    interval.last,
                    values.network.prefixlen,
                ],
            ).fetchone()
            if row is not None:
                return str(row[0])
        return None

    def _check_given_parent(
        self, conn: duckdb.DuckDBPyConnection, workspace: str, values: SubnetInput
    ) -> None:
        assert values.parent_id is not None
        row = conn.execute(
            f"SELECT {_COLUMNS} FROM subnets WHERE workspace = ? AND id = ?",
            [workspace, values.parent_id],
        ).fetchone()
        if row is None:
            message = f"parent subnet {values.parent_id!r} not found"
            raise ValidationError(message, details={"field": "parent_id"})
        parent = _row_from_db(row)
        network = cidr.parse_network(parent.subnet.cidr)
        if not cidr.contains(network, values.network, strict=True):
            message = (
                f"parent {parent.subnet.cidr} (subnet {parent.subnet.id}) does not "
                f"contain {values.network}; omit parent_id to find the parent "
                "automatically"
            )
            raise ValidationError(message, details={"field": "parent_id"})
        if parent.subnet.vrf not in (values.vrf, GLOBAL_VRF):
            message = (
                f"parent {parent.subnet.cidr} is in VRF {parent.subnet.vrf!r}, not "
                f"{values.vrf!r} or the global table"
            )
            raise ValidationError(message, details={"field": "parent_id"})

    def _insert(
        self,
        conn: duckdb.DuckDBPyConnection,
        ctx: Context,
        values: SubnetInput,
        *,
        parent_known: bool = False,
    ) -> Subnet:
        """Check and store one subnet.

        ``parent_known`` skips the parent checks when an allocation has just
        found ``values.parent_id`` to be the smallest container of the block.
        """
        interval = cidr.Interval.of(values.network)
        existing = self._overlapping(conn, ctx.workspace, values.vrf, interval)
        self._check_conflicts(existing, values, interval)
        auto_parent = None
        if values.parent_id is not None and not parent_known:
            self._check_given_parent(conn, ctx.workspace, values)
        if not parent_known:
            auto_parent = self._parent_for(conn, ctx.workspace, values, interval)
        parent_id = values.parent_id or auto_parent
        now = utc_now()
        subnet = Subnet(
            id=new_id("sn"),
            cidr=str(values.network),
            status=values.status,
            purpose=values.purpose,
            parent_id=parent_id,
            vlan_id=values.vlan_id,
            owner=values.owner,
            tags=values.tags,
            vrf=values.vrf,
            is_pool=values.is_pool,
            is_container=values.is_container,
            created_at=now,
            updated_at=now,
        )
        conn.execute(
            "INSERT INTO subnets VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
            "?, ?, ?)",
            [
                subnet.id,
                ctx.workspace,
                subnet.cidr,
                interval.version,
                interval.first,
                interval.last,
                values.network.prefixlen,
                subnet.vrf,
                subnet.status,
                subnet.purpose,
                subnet.parent_id,
                subnet.vlan_id,
                subnet.owner,
                json.dumps(subnet.tags, sort_keys=True),
                subnet.is_pool,
                values.is_container,
                now,
                now,
            ],
        )
        entries = [
            AuditEntry(
                subnet.id,
                "subnet.create",
                ctx.actor,
                ctx.intent,
                {"before": None, "after": subnet.to_dict()},
            )
        ]
        if values.is_container:
            entries += self._adopt_children(conn, ctx, subnet, interval)
        self.audit.append_many(conn, ctx.workspace, entries[:1], new_subjects=True)
        self.audit.append_many(conn, ctx.workspace, entries[1:])
        self._add_to_index(
            ctx.workspace,
            [(interval.version, subnet.vrf, interval.first, interval.last)],
        )
        return subnet

    def _add_to_index(
        self, workspace: str, added: list[tuple[int, str, int, int]]
    ) -> None:
        """Add new subnets to the interval index inside their transaction.

        A later allocation in the same transaction must see them. Only the
        transaction's thread can read the index until it ends, because the
        index uses the store's lock, and a rollback empties the index.
        """
        self.index.add_many(workspace, added)
        self.store.after_rollback(self.index.clear)

    def _adopt_children(
        self,
        conn: duckdb.DuckDBPyConnection,
        ctx: Context,
        subnet: Subnet,
        interval: cidr.Interval,
    ) -> list[AuditEntry]:
        """Make a new container the parent of subnets it now sits directly above."""
        vrf_clause = "" if subnet.vrf == GLOBAL_VRF else "AND s.vrf = ?"
        # A VRF container outranks any global parent; a global container only
        # takes subnets that have no parent in their own VRF.
        if subnet.vrf == GLOBAL_VRF:
            adopt_clause = (
                "(s.parent_id IS NULL OR p.prefix_length < ?) "
                "AND (s.vrf = 'global' OR s.parent_id IS NULL OR p.vrf = 'global')"
            )
        else:
            adopt_clause = (
                "(s.parent_id IS NULL OR p.vrf = 'global' OR p.prefix_length < ?)"
            )
        params: list[Any] = [
            ctx.workspace,
            interval.version,
            interval.first,
            interval.last,
            subnet.id,
        ]
        if subnet.vrf != GLOBAL_VRF:
            params.append(subnet.vrf)
        rows = conn.execute(
            "SELECT s.id, s.parent_id, s.vrf FROM subnets s "
            "LEFT JOIN subnets p ON p.id = s.parent_id AND p.workspace = s.workspace "
            "WHERE s.workspace = ? AND s.version = ? "
            "AND s.first >= CAST(? AS UHUGEINT) "
            "AND s.last <= CAST(? AS UHUGEINT) "
            f"AND s.id <> ? {vrf_clause} AND s.prefix_length > ? "
            f"AND {adopt_clause}",
            [*params, _prefix_of(interval), _prefix_of(interval)],
        ).fetchall()
        entries = []
        for child_id, old_parent, _vrf in rows:
            conn.execute(
                "UPDATE subnets SET parent_id = ?, updated_at = ? WHERE workspace = ? "
                "AND id = ?",
                [subnet.id, subnet.created_at, ctx.workspace, child_id],
            )
            entries.append(
                AuditEntry(
                    child_id,
                    "subnet.reparent",
                    ctx.actor,
                    ctx.intent,
                    {
                        "before": {"parent_id": old_parent},
                        "after": {"parent_id": subnet.id},
                    },
                )
            )
        return entries

    # -- updating --------------------------------------------------------

    def update(
        self, ctx: Context, subnet_id: str, changes: Mapping[str, Any]
    ) -> Subnet:
        """Update purpose, owner, status, tags, VLAN or flags of a subnet.

        Tags are merged into the existing map; a tag set to ``None`` is
        removed. The CIDR, VRF and parent never change.
        """
        for name in changes:
            if name in IMMUTABLE:
                message = (
                    f"{name} of a subnet cannot change; create a new subnet and "
                    "deprecate this one"
                )
                raise ImmutableField(message, details={"field": name})
            if name not in UPDATABLE:
                message = (
                    f"unknown field {name!r}; updatable fields: {sorted(UPDATABLE)}"
                )
                raise ValidationError(message, details={"field": name})
        with self.store.transaction() as conn:
            row = self._fetch(ctx.workspace, subnet_id)
            before = row.subnet
            new = self._apply_changes(conn, ctx, row, changes)
            if new == before:
                return before
            new_values = new.to_dict()
            conn.execute(
                "UPDATE subnets SET status = ?, purpose = ?, owner = ?, tags = ?, "
                "vlan_id = ?, is_pool = ?, is_container = ?, updated_at = ? "
                "WHERE workspace = ? AND id = ?",
                [
                    new.status,
                    new.purpose,
                    new.owner,
                    json.dumps(new.tags, sort_keys=True),
                    new.vlan_id,
                    new.is_pool,
                    new.is_container,
                    new.updated_at,
                    ctx.workspace,
                    subnet_id,
                ],
            )
            old_values = before.to_dict()
            diff_before = {
                k: old_values[k]
                for k in new_values
                if old_values[k] != new_values[k] and k != "updated_at"
            }
            diff_after = {k: new_values[k] for k in diff_before}
            self.audit.append(
                conn,
                ctx.workspace,
                AuditEntry(
                    subnet_id,
                    "subnet.update",
                    ctx.actor,
                    ctx.intent,
                    {"before": diff_before, "after": diff_after},
                ),
            )
        return new

    def _apply_changes(
        self,
        conn: duckdb.DuckDBPyConnection,
        ctx: Context,
        row: _Row,
        changes: Mapping[str, Any],
    ) -> Subnet:
        subnet = row.subnet
        updates: dict[str, Any] = {}
        if "status" in changes:
            status = validate_status(changes["status"])
            if status != subnet.status and status not in TRANSITIONS[subnet.status]:
                allowed = ", ".join(sorted(TRANSITIONS[subnet.status]))
                message = (
                    f"subnet {subnet.id} cannot go from {subnet.status} to {status}; "
                    f"from {subnet.status} it can go to: {allowed}"
                )
                raise InvalidTransition(
                    message, details={"from": subnet.status, "to": status}
                )
            updates["status"] = status
        for name in ("purpose", "owner"):
            if name in changes:
                updates[name] = validate_text(name, changes[name])
        if "vlan_id" in changes:
            updates["vlan_id"] = validate_vlan(changes["vlan_id"])
        if "tags" in changes:
            updates["tags"] = self._merge_tags(subnet.tags, changes["tags"])
        for flag in ("is_pool", "is_container"):
            if flag in changes:
                if not isinstance(changes[flag], bool):
                    raise ValidationError(
                        f"{flag} must be true or false, got {changes[flag]!r}"
                    )
                updates[flag] = changes[flag]
        if updates.get("is_container") is False and row.is_container:
            has_children = conn.execute(
                "SELECT count(*) FROM subnets WHERE workspace = ? AND parent_id = ?",
                [ctx.workspace, subnet.id],
            ).fetchone()
            if has_children and has_children[0]:
                message = (
                    f"subnet {subnet.id} ({subnet.cidr}) still has child subnets; it "
                    "must stay a container"
                )
                raise InvalidTransition(message)
        merged = {**subnet.to_dict(), **updates}
        if all(merged[k] == getattr(subnet, k) for k in updates):
            return subnet
        merged["updated_at"] = utc_now()
        return Subnet.from_dict(merged)

    @staticmethod
    def _merge_tags(current: dict[str, str], changes: object) -> dict[str, str]:
        if not isinstance(changes, Mapping) or not all(
            isinstance(k, str) and (v is None or isinstance(v, str))
            for k, v in changes.items()
        ):
            message = (
                f"invalid tags {changes!r}; pass a map of strings, with null to "
                "remove a tag"
            )
            raise ValidationError(message, details={"field": "tags"})
        merged = dict(current)
        for key, value in changes.items():
            if value is None:
                merged.pop(key, None)
            else:
                merged[key] = value
        return merged

    # -- free space and allocation ---------------------------------------

    def _resolve_parent(
        self,
        ctx: Context,
        subnet_id: str | None,
        cidr_text: str | None,
        vrf: str | None,
    ) -> tuple[cidr.Network, _Row | None, str]:
        if (subnet_id is None) == (cidr_text is None):
            raise ValidationError("pass exactly one of subnet_id or cidr")
        if subnet_id is not None:
            row = self._fetch(ctx.workspace, subnet_id)
            return cidr.parse_network(row.subnet.cidr), row, row.subnet.vrf
        assert cidr_text is not None
        network = cidr.parse_network(cidr_text)
        vrf_name = validate_vrf(vrf)
        return network, self._find_by_cidr(ctx.workspace, network, vrf_name), vrf_name

    def _vrfs_in_scope(
        self, workspace: str, vrf: str, scope: str | None
    ) -> tuple[str, list[str]]:
        chosen = scope or ("pool" if vrf == GLOBAL_VRF else "vrf")
        if chosen not in ("vrf", "pool"):
            raise ValidationError(f"invalid scope {scope!r}; use 'vrf' or 'pool'")
        if chosen == "vrf":
            return chosen, [vrf]
        return chosen, sorted({vrf, *self.index.vrfs(workspace)})

    def _occupied(
        self, workspace: str, network: cidr.Network, vrfs: Iterable[str]
    ) -> tuple[Array, Array]:
        interval = cidr.Interval.of(network)
        return self.index.occupied(
            workspace, network.version, vrfs, interval.first, interval.last
        )

    def available(
        self,
        ctx: Context,
        prefix_length: int,
        *,
        subnet_id: str | None = None,
        cidr_text: str | None = None,
        vrf: str | None = None,
        scope: Scope | None = None,
        limit: int = 100,
    ) -> FreeBlocks:
        """List free blocks of ``prefix_length`` inside a subnet or a CIDR.

        Blocks come in address order, at most ``limit`` of them (1 to
        10,000); ``total_free`` counts all of them.
        """
        if (
            isinstance(limit, bool)
            or not isinstance(limit, int)
            or not (1 <= limit <= 10_000)
        ):
            raise ValidationError(f"invalid limit {limit!r}; use 1 to 10000")
        network, row, vrf_name = self._resolve_parent(ctx, subnet_id, cidr_text, vrf)
        chosen, vrfs = self._vrfs_in_scope(ctx.workspace, vrf_name, scope)
        with self.store.lock:
            starts, ends = self._occupied(ctx.workspace, network, vrfs)
        blocks, total = _free_blocks(network, starts, ends, prefix_length, limit)
        return FreeBlocks(
            str(network),
            prefix_length,
            blocks,
            total,
            chosen,
            row.subnet.id if row else None,
        )

    def allocate(
        self,
        ctx: Context,
        prefix_length: int,
        *,
        subnet_id: str | None = None,
        cidr_text: str | None = None,
        vrf: str | None = None,
        scope: Scope | None = None,
        policy: cidr.AllocationPolicy = "first_fit",
        status: str = "allocated",
        purpose: str | None = None,
        owner: str | None = None,
        tags: Mapping[str, str] | None = None,
        vlan_id: int | None = None,
        is_container: bool = False,
    ) -> Subnet:
        """Create the next free block of ``prefix_length`` inside a parent, atomically.

        The block is chosen and stored under the store lock in one
        transaction, so concurrent callers never get the same block.
        ``vrf`` is the new subnet's VRF (default: the parent's).
        """
        values = SubnetInput(
            network=cidr.parse_network("0.0.0.0/0"),
            status=validate_status(status),
            purpose=validate_text("purpose", purpose),
            vlan_id=validate_vlan(vlan_id),
            owner=validate_text("owner", owner),
            tags=validate_tags(tags),
            is_container=bool(is_container),
        )
        with self.store.transaction() as conn:
            network, row, parent_vrf = self._resolve_parent(
                ctx, subnet_id, cidr_text, None if subnet_id else vrf
            )
            values.vrf = validate_vrf(vrf) if vrf is not None else parent_vrf
            if row is not None and not row.is_container:
                message = (
                    f"subnet {row.subnet.id} ({row.subnet.cidr}) is not a container; "
                    "update it with is_container=true to allocate inside it"
                )
                raise CIDROverlap(message, details={"existing": row.subnet.to_dict()})
            _, vrfs = self._vrfs_in_scope(ctx.workspace, parent_vrf, scope)
            if values.vrf not in vrfs:
                vrfs.append(values.vrf)
            starts, ends = self._occupied(ctx.workspace, network, vrfs)
            block = _choose_block(network, starts, ends, prefix_length, policy)
            if block is None:
                message = (
                    f"no free /{prefix_length} left in {network} (scope "
                    f"{scope or 'default'}); choose a longer prefix or another parent"
                )
                raise NoFreeSpace(message, details={"parent": str(network)})
            values.network = block
            known = row is not None and row.subnet.vrf in (values.vrf, GLOBAL_VRF)
            if known and row is not None:
                # The block is free of every subnet of these VRFs inside the
                # parent, so no smaller container lies between them.
                values.parent_id = row.subnet.id
            return self._insert(conn, ctx, values, parent_known=known)

    # -- bulk ------------------------------------------------------------

    def create_many(self, ctx: Context, items: Iterable[SubnetInput]) -> list[Subnet]:
        """Create many subnets in one transaction; all of them or none.

        Every item is checked as :meth:`create` checks it, against the store
        and against the other items, in any order: containers may come after
        their children. Raises the error of the first offending item.
        """
        values = list(items)
        with self.store.transaction() as conn:
            if any(v.parent_id is not None for v in values):
                return [self._insert(conn, ctx, v) for v in values]
            plan = plan_bulk(conn, ctx, values)
            write_bulk(conn, ctx, plan, self.store, self.audit)
            added = [
                (version, s.vrf, first, last)
                for version, s, (first, last) in zip(
                    plan.versions, plan.subnets, plan.intervals, strict=True
                )
            ]
            self._add_to_index(ctx.workspace, added)
        return plan.subnets

    def audit_trail(
        self, ctx: Context, subnet_id: str, *, page: int = 1, per_page: int = 50
    ) -> Any:
        """Return the audit events of one subnet, oldest first."""
        _check_per_page(page, per_page)
        self._fetch(ctx.workspace, subnet_id)
        return self.audit.list(
            ctx.workspace, subject=subnet_id, page=page, per_page=per_page
        )

    # Defined last: inside the class body, the name list refers to this method.
    def list(
        self,
        ctx: Context,
        *,
        within: str | None = None,
        contains: str | None = None,
        status: str | None = None,
        purpose: str | None = None,
        vrf: str | None = None,
        owner: str | None = None,
        page: int = 1,
        per_page: int = 50,
    ) -> Page[Subnet]:
        """List subnets in address order, filtered and paginated.

        Parameters
        ----------
        within : str, optional
            Only subnets inside this CIDR (the CIDR itself included).
        contains : str, optional
            Only subnets that contain this CIDR or address.
        status, vrf, owner : str, optional
            Exact matches.
        purpose : str, optional
            Case-insensitive substring of the purpose.
        page, per_page : int
            Page number from 1 and page size from 1 to 200.
        """
        _check_per_page(page, per_page)
        where = ["workspace = ?"]
        params: list[Any] = [ctx.workspace]
        if within is not None:
            interval = cidr.Interval.of(cidr.parse_network(within))
            where.append(
                "version = ? AND first >= CAST(? AS UHUGEINT) "
                "AND last <= CAST(? AS UHUGEINT)"
            )
            params += [interval.version, interval.first, interval.last]
        if contains is not None:
            text = contains if "/" in contains else str(cidr.parse_address(contains))
            interval = cidr.Interval.of(cidr.parse_network(text))
            where.append(
                "version = ? AND first <= CAST(? AS UHUGEINT) "
                "AND last >= CAST(? AS UHUGEINT)"
            )
            params += [interval.version, interval.first, interval.last]
        if status is not None:
            where.append("status = ?")
            params.append(validate_status(status))
        if purpose is not None:
            where.append("purpose ILIKE ? ESCAPE '\\'")
            params.append(f"%{_escape_like(purpose)}%")
        if vrf is not None:
            where.append("vrf = ?")
            params.append(validate_vrf(vrf))
        if owner is not None:
            where.append("owner = ?")
            params.append(owner)
        clause = " AND ".join(where)
        count = self.store.fetchone(
            f"SELECT count(*) FROM subnets WHERE {clause}", params
        )
        rows = self.store.fetchall(
            f"SELECT {_COLUMNS} FROM subnets WHERE {clause} "
            "ORDER BY version, first, prefix_length, vrf LIMIT ? OFFSET ?",
            [*params, per_page, (page - 1) * per_page],
        )
        subnets = [_row_from_db(r).subnet for r in rows]
        return Page(subnets, int(count[0]) if count else 0, page, per_page)


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _prefix_of(interval: cidr.Interval) -> int:
    """Return the prefix length of a CIDR-aligned interval."""
    bits = 32 if interval.version == 4 else 128
    return bits - (interval.size.bit_length() - 1)


def _choose_block(
    network: cidr.Network,
    starts: Array,
    ends: Array,
    prefix_length: int,
    policy: cidr.AllocationPolicy,
) -> cidr.Network | None:
    if network.version == 6 or policy not in cidr.ALLOCATION_POLICIES:
        pairs = list(zip(starts.tolist(), ends.tolist(), strict=True))
        return cidr.choose_block(network, pairs, prefix_length, policy)
    cidr.free_blocks(network, [], prefix_length, limit=0)  # validates the length
    interval = cidr.Interval.of(network)
    gap_first, gap_last = gaps_ipv4(interval.first, interval.last, starts, ends)
    start = choose_in_gaps(gap_first, gap_last, 1 << (32 - prefix_length), policy)
    return None if start is None else ipaddress.IPv4Network((start, prefix_length))


def _free_blocks(
    network: cidr.Network,
    starts: Array,
    ends: Array,
    prefix_length: int,
    limit: int,
) -> tuple[list[str], int]:
    if network.version == 4:
        cidr.free_blocks(network, [], prefix_length, limit=0)  # validates the length
        interval = cidr.Interval.of(network)
        gap_first, gap_last = gaps_ipv4(interval.first, interval.last, starts, ends)
        size = 1 << (32 - prefix_length)
        total = count_blocks_in_gaps(gap_first, gap_last, size)
        firsts = list_blocks_in_gaps(gap_first, gap_last, size, limit)
        suffix = f"/{prefix_length}"
        return [_ipv4_text(f) + suffix for f in firsts], total
    pairs = list(zip(starts.tolist(), ends.tolist(), strict=True))
    blocks = cidr.free_blocks(network, pairs, prefix_length, limit=limit)
    total = cidr.count_free_blocks(network, pairs, prefix_length)
    return [str(b) for b in blocks], total


def _ipv4_text(value: int) -> str:
    return f"{value >> 24}.{value >> 16 & 255}.{value >> 8 & 255}.{value & 255}"
