"""VLANs: a VLAN ID with a name, scoped by site or VLAN group.

A VLAN ID is unique within its scope: the pair (site, group), where an empty
site and group is the global scope. The same ID may exist at two sites, as it
does in NetBox. Every create and update is audited.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import duckdb

from omnitwin._ids import new_id
from omnitwin.engine.audit import AuditEntry, AuditLog
from omnitwin.engine.context import Context
from omnitwin.engine.store import Store, utc_now
from omnitwin.engine.subnets import validate_text, validate_vlan
from omnitwin.errors import Duplicate, NotFound, ValidationError
from omnitwin.models import Page, Vlan

__all__ = ["VLANS_SCHEMA", "VlanInput", "VlanService"]

VLANS_SCHEMA = """
CREATE TABLE IF NOT EXISTS vlans (
    id VARCHAR NOT NULL,
    workspace VARCHAR NOT NULL,
    vid INTEGER NOT NULL,
    name VARCHAR NOT NULL,
    site VARCHAR,
    "group" VARCHAR,
    status VARCHAR NOT NULL,
    tenant VARCHAR,
    created_at VARCHAR NOT NULL,
    updated_at VARCHAR NOT NULL
);
"""

_COLUMNS = 'id, vid, name, site, "group", status, tenant, created_at, updated_at'
_UPDATABLE = frozenset({"name", "status", "tenant"})


@dataclass(frozen=True, slots=True)
class VlanInput:
    """Values of a VLAN to create."""

    vid: int
    name: str
    site: str | None = None
    group: str | None = None
    status: str = "active"
    tenant: str | None = None


def _to_vlan(row: tuple[Any, ...]) -> Vlan:
    return Vlan(
        id=row[0],
        vid=int(row[1]),
        name=row[2],
        site=row[3],
        group=row[4],
        status=row[5],
        tenant=row[6],
        created_at=row[7],
        updated_at=row[8],
    )


def _checked(values: VlanInput) -> VlanInput:
    vid = validate_vlan(values.vid)
    name = validate_text("name", values.name)
    if vid is None or not name:
        message = f"VLAN {values.vid!r} needs an ID from 1 to 4094 and a name"
        raise ValidationError(message, details={"vid": values.vid})
    return VlanInput(
        vid,
        name,
        validate_text("site", values.site),
        validate_text("group", values.group),
        validate_text("status", values.status) or "active",
        validate_text("tenant", values.tenant),
    )


def _new_vlan(values: VlanInput, now: str) -> Vlan:
    return Vlan(
        new_id("vlan"),
        values.vid,
        values.name,
        values.site,
        values.group,
        values.status,
        values.tenant,
        now,
        now,
    )


def _raise_duplicate(values: VlanInput, existing_id: str) -> None:
    message = (
        f"VLAN {values.vid} already exists at site {values.site!r}, group "
        f"{values.group!r} as {existing_id}; update that VLAN instead"
    )
    raise Duplicate(message, details={"existing": existing_id})


class VlanService:
    """Create, update and list VLANs of one store.

    Examples
    --------
    >>> from omnitwin.engine.engine import Engine
    >>> engine = Engine(":memory:")
    >>> engine.vlans.create(Context(), VlanInput(100, "Data", site="lab")).vid
    100
    >>> engine.close()
    """

    def __init__(self, store: Store, audit: AuditLog) -> None:
        self.store = store
        self.audit = audit
        store.ensure_schema(VLANS_SCHEMA)

    def create(self, ctx: Context, values: VlanInput) -> Vlan:
        """Create one VLAN and audit it.

        Raises
        ------
        ValidationError
            The ID is outside 1..4094 or the name is empty.
        Duplicate
            The ID already exists in the same site and group.
        """
        with self.store.transaction() as conn:
            return self._insert(conn, ctx, _checked(values))

    def create_many(self, ctx: Context, items: Iterable[VlanInput]) -> list[Vlan]:
        """Create many VLANs in one transaction, all or none.

        Raises
        ------
        ValidationError, Duplicate
            As in :meth:`create`, for the first item that fails; nothing is
            created then.
        """
        checked = [_checked(values) for values in items]
        with self.store.transaction() as conn:
            taken = {
                (int(vid), site, group): str(vlan_id)
                for vlan_id, vid, site, group in conn.execute(
                    'SELECT id, vid, site, "group" FROM vlans WHERE workspace = ?',
                    [ctx.workspace],
                ).fetchall()
            }
            now = utc_now()
            created: list[Vlan] = []
            for values in checked:
                key = (values.vid, values.site, values.group)
                if key in taken:
                    _raise_duplicate(values, taken[key])
                vlan = _new_vlan(values, now)
                taken[key] = vlan.id
                created.append(vlan)
            self._insert_rows(conn, ctx, created)
        return created

    def _insert(
        self, conn: duckdb.DuckDBPyConnection, ctx: Context, values: VlanInput
    ) -> Vlan:
        existing = conn.execute(
            "SELECT id FROM vlans WHERE workspace = ? AND vid = ? AND site IS NOT "
            'DISTINCT FROM ? AND "group" IS NOT DISTINCT FROM ?',
            [ctx.workspace, values.vid, values.site, values.group],
        ).fetchone()
        if existing is not None:
            _raise_duplicate(values, str(existing[0]))
        vlan = _new_vlan(values, utc_now())
        self._insert_rows(conn, ctx, [vlan])
        return vlan

    def _insert_rows(
        self, conn: duckdb.DuckDBPyConnection, ctx: Context, vlans: list[Vlan]
    ) -> None:
        columns: dict[str, list[Any]] = {
            "id": [v.id for v in vlans],
            "workspace": [ctx.workspace] * len(vlans),
            "vid": [v.vid for v in vlans],
            "name": [v.name for v in vlans],
            "site": [v.site for v in vlans],
            "group": [v.group for v in vlans],
            "status": [v.status for v in vlans],
            "tenant": [v.tenant for v in vlans],
            "created_at": [v.created_at for v in vlans],
            "updated_at": [v.updated_at for v in vlans],
        }
        self.store.bulk_insert(conn, "vlans", columns)
        entries = [
            AuditEntry(
                vlan.id,
                "vlan.create",
                ctx.actor,
                ctx.intent,
                {"before": None, "after": vlan.to_dict()},
            )
            for vlan in vlans
        ]
        self.audit.append_many(conn, ctx.workspace, entries, new_subjects=True)

    def get(self, ctx: Context, vlan_id: str) -> Vlan:
        """Return one VLAN by id."""
        row = self.store.fetchone(
            f"SELECT {_COLUMNS} FROM vlans WHERE workspace = ? AND id = ?",
            [ctx.workspace, vlan_id],
        )
        if row is None:
            message = f"VLAN {vlan_id!r} not found; list VLANs to find its id"
            raise NotFound(message, details={"id": vlan_id})
        return _to_vlan(row)

    def update(self, ctx: Context, vlan_id: str, changes: Mapping[str, Any]) -> Vlan:
        """Change the name, status or tenant of a VLAN and audit it."""
        unknown = sorted(set(changes) - _UPDATABLE)
        if unknown:
            message = (
                f"cannot update {unknown[0]!r} of a VLAN; updatable fields: "
                f"{', '.join(sorted(_UPDATABLE))}"
            )
            raise ValidationError(message, details={"field": unknown[0]})
        with self.store.transaction() as conn:
            before = self.get(ctx, vlan_id)
            values = {k: validate_text(k, v) for k, v in changes.items()}
            after = Vlan.from_dict({**before.to_dict(), **values})
            if after == before:
                return before
            after = Vlan.from_dict({**after.to_dict(), "updated_at": utc_now()})
            conn.execute(
                "UPDATE vlans SET name = ?, status = ?, tenant = ?, updated_at = ? "
                "WHERE workspace = ? AND id = ?",
                [
                    after.name,
                    after.status,
                    after.tenant,
                    after.updated_at,
                    ctx.workspace,
                    vlan_id,
                ],
            )
            diff = {k: (getattr(before, k), v) for k, v in values.items()}
            entry = AuditEntry(
                vlan_id,
                "vlan.update",
                ctx.actor,
                ctx.intent,
                {
                    "before": {k: old for k, (old, _) in diff.items()},
                    "after": {k: new for k, (_, new) in diff.items()},
                },
            )
            self.audit.append(conn, ctx.workspace, entry)
        return after

    def list(
        self,
        ctx: Context,
        *,
        site: str | None = None,
        group: str | None = None,
        vid: int | None = None,
        page: int = 1,
        per_page: int = 50,
    ) -> Page[Vlan]:
        """List VLANs ordered by site, group and ID, filtered and paginated."""
        if page < 1 or not 1 <= per_page <= 200:
            raise ValidationError("page starts at 1 and per_page is 1 to 200")
        where = ["workspace = ?"]
        params: list[Any] = [ctx.workspace]
        for column, value in (("site", site), ('"group"', group), ("vid", vid)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        clause = " AND ".join(where)
        total = self.store.fetchone(
            f"SELECT count(*) FROM vlans WHERE {clause}", params
        )
        rows = self.store.fetchall(
            f"SELECT {_COLUMNS} FROM vlans WHERE {clause} "
            'ORDER BY site NULLS FIRST, "group" NULLS FIRST, vid LIMIT ? OFFSET ?',
            [*params, per_page, (page - 1) * per_page],
        )
        count = int(total[0]) if total else 0
        return Page([_to_vlan(r) for r in rows], count, page, per_page)
