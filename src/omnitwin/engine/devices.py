"""Devices and sites: the twin's inventory, validated and audited.

Rules kept here:

- A hostname is unique in a workspace, compared without case. The stored
  ``host_label`` (lower case, no domain, see
  :func:`~omnitwin.engine.discovery.interfaces.normalize_hostname`) is what
  discovery matches observations against.
- ``role`` is free text in lower case; :data:`~omnitwin.models.DEVICE_ROLES`
  lists the usual ones, and imports may bring others.
- A device's ``site`` must be named; a site that does not exist yet is
  created with the device.
- ``update`` replaces ``twin_state`` when given a map under ``"twin_state"``,
  and sets one nested value when given a dotted key such as
  ``"twin_state.interfaces.Ethernet1.mtu"`` (a value of None removes it).
  The detected state and the drift score are never set by ``update``: only
  discovery ingest and reconcile change them.
- Devices are never deleted, so their audit trail and drift history stay
  whole.
"""

from __future__ import annotations

import builtins
import functools
import ipaddress
import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import duckdb

from omnitwin._ids import new_id
from omnitwin.engine.audit import AuditEntry, AuditLog
from omnitwin.engine.context import Context
from omnitwin.engine.discovery.interfaces import normalize_hostname
from omnitwin.engine.drift import flatten, split_path
from omnitwin.engine.store import Store, utc_now
from omnitwin.errors import (
    Duplicate,
    ImmutableField,
    InvalidAddress,
    NotFound,
    ValidationError,
)
from omnitwin.models import Device, Page, Site

__all__ = ["DEVICES_SCHEMA", "MAX_PER_PAGE", "DeviceService"]

MAX_PER_PAGE = 200

DEVICES_SCHEMA = """
CREATE TABLE IF NOT EXISTS devices (
    id VARCHAR NOT NULL,
    workspace VARCHAR NOT NULL,
    hostname VARCHAR NOT NULL,
    hostname_key VARCHAR NOT NULL,
    host_label VARCHAR NOT NULL,
    role VARCHAR NOT NULL,
    site VARCHAR NOT NULL,
    rack VARCHAR,
    serial VARCHAR,
    management_address VARCHAR,
    platform VARCHAR,
    model VARCHAR,
    owner VARCHAR,
    twin_state VARCHAR NOT NULL,
    detected_state VARCHAR NOT NULL,
    drift_score DOUBLE,
    created_at VARCHAR NOT NULL,
    updated_at VARCHAR NOT NULL,
    twin_flat VARCHAR,
    detected_flat VARCHAR,
    observed_at VARCHAR
);
CREATE TABLE IF NOT EXISTS sites (
    workspace VARCHAR NOT NULL,
    name VARCHAR NOT NULL,
    region VARCHAR,
    owner VARCHAR,
    description VARCHAR,
    created_at VARCHAR NOT NULL
);
"""

TEXT_FIELDS = (
    "rack",
    "serial",
    "platform",
    "model",
    "owner",
)
UPDATABLE = frozenset(
    {"hostname", "role", "site", "management_address", "twin_state", *TEXT_FIELDS}
)
IMMUTABLE = frozenset(
    {"id", "detected_state", "drift_score", "created_at", "updated_at"}
)
COLUMNS = (
    "id, hostname, role, site, rack, serial, management_address, platform, model, "
    "owner, twin_state, detected_state, drift_score, created_at, updated_at"
)

# Called inside the transaction with the ids of devices whose twin state
# changed, so that drift is re-evaluated before the commit.
TwinChangeHook = Callable[[duckdb.DuckDBPyConnection, Context, list[str]], None]


def device_from_row(row: tuple[Any, ...]) -> Device:
    """Build a :class:`Device` from a row selected with :data:`COLUMNS`."""
    return Device(
        id=row[0],
        hostname=row[1],
        role=row[2],
        site=row[3],
        rack=row[4],
        serial=row[5],
        management_address=row[6],
        platform=row[7],
        model=row[8],
        owner=row[9],
        twin_state=json.loads(row[10]),
        detected_state=json.loads(row[11]),
        drift_score=None if row[12] is None else float(row[12]),
        created_at=row[13],
        updated_at=row[14],
    )


def _text(name: str, value: object, *, required: bool = False) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            message = f"missing {name}; a device needs a non-empty {name}"
            raise ValidationError(message, details={"field": name})
        return None
    if not isinstance(value, str):
        message = f"invalid {name} {value!r}; {name} must be a string"
        raise ValidationError(message, details={"field": name, "value": value})
    return value.strip()


def _address(value: object) -> str | None:
    text = _text("management_address", value)
    if text is None:
        return None
    try:
        return ipaddress.ip_address(text.split("/", 1)[0]).compressed
    except ValueError as exc:
        message = (
            f"invalid management_address {text!r}; give an IPv4 or IPv6 address "
            "such as 10.0.0.1"
        )
        raise InvalidAddress(message, details={"value": text}) from exc


def _state(name: str, value: object) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        message = f"invalid {name} {value!r}; {name} must be a map"
        raise ValidationError(message, details={"field": name})
    try:
        return dict(json.loads(json.dumps(value)))
    except (TypeError, ValueError) as exc:
        message = f"invalid {name}: it must be JSON serialisable ({exc})"
        raise ValidationError(message, details={"field": name}) from exc


def set_path(state: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """Return a copy of ``state`` with the value at a dotted ``path`` set.

    A value of None removes the key. Missing maps on the way are created.

    Examples
    --------
    >>> set_path({"a": {"b": 1}}, "a.c", 2)
    {'a': {'b': 1, 'c': 2}}
    >>> set_path({"a": {"b": 1}}, "a.b", None)
    {'a': {}}
    """
    result = json.loads(json.dumps(state))
    keys = split_path(path)
    node = result
    for key in keys[:-1]:
        child = node.get(key)
        if not isinstance(child, dict):
            if value is None:
                return dict(result)
            child = node[key] = {}
        node = child
    if value is None:
        node.pop(keys[-1], None)
    else:
        node[keys[-1]] = value
    return dict(result)


def flat_json(state: Mapping[str, Any]) -> str:
    """Return the flattened state (see :func:`~omnitwin.engine.drift.flatten`) as JSON.

    Devices store it next to the state so that re-scoring does not flatten
    every state again.
    """
    return json.dumps(flatten(state), sort_keys=True, default=str)


def host_label(hostname: str) -> str:
    """Return the lower-case host label that discovery matches on."""
    return normalize_hostname(hostname)


def check_page(page: int, per_page: int) -> None:
    """Raise unless ``page`` >= 1 and ``per_page`` is 1 to 200."""
    if isinstance(page, bool) or not isinstance(page, int) or page < 1:
        raise ValidationError(f"invalid page {page!r}; pages start at 1")
    if (
        isinstance(per_page, bool)
        or not isinstance(per_page, int)
        or not 1 <= per_page <= MAX_PER_PAGE
    ):
        message = f"invalid per_page {per_page!r}; use a value from 1 to {MAX_PER_PAGE}"
        raise ValidationError(message)


class DeviceService:
    """Create, read and update devices and sites in one store.

    Examples
    --------
    >>> from omnitwin.engine.engine import Engine
    >>> engine = Engine(":memory:")
    >>> device = engine.devices.create(Context(), "spine-01", role="switch",
    ...                                site="nyc1")
    >>> engine.devices.get(Context(), "SPINE-01").id == device.id
    True
    >>> engine.close()
    """

    def __init__(self, store: Store, audit: AuditLog) -> None:
        self.store = store
        self.audit = audit
        store.ensure_schema(DEVICES_SCHEMA)
        self.twin_change_hooks: list[TwinChangeHook] = []
        self.commit_listeners: list[Callable[[str], None]] = []

    # -- reading ---------------------------------------------------------

    def _lookup(
        self, conn: duckdb.DuckDBPyConnection | None, workspace: str, key: str
    ) -> Device | None:
        sql = (
            f"SELECT {COLUMNS} FROM devices WHERE workspace = ? "
            "AND (id = ? OR hostname_key = ?) ORDER BY id = ? DESC LIMIT 1"
        )
        params = [workspace, key, key.strip().lower(), key]
        if conn is None:
            row = self.store.fetchone(sql, params)
        else:
            row = conn.execute(sql, params).fetchone()
        return None if row is None else device_from_row(row)

    def get(self, ctx: Context, id_or_hostname: str) -> Device:
        """Return a device by id or by hostname (compared without case).

        Raises
        ------
        NotFound
            If no device of the workspace has that id or hostname.
        """
        device = self._lookup(None, ctx.workspace, str(id_or_hostname))
        if device is None:
            message = (
                f"device {id_or_hostname!r} not found; list devices to find its id "
                "or hostname"
            )
            raise NotFound(message, details={"id": id_or_hostname})
        return device

    def fetch_in(
        self, conn: duckdb.DuckDBPyConnection, ctx: Context, id_or_hostname: str
    ) -> Device:
        """Return a device inside an open transaction, else raise NotFound."""
        device = self._lookup(conn, ctx.workspace, str(id_or_hostname))
        if device is None:
            message = f"device {id_or_hostname!r} not found"
            raise NotFound(message, details={"id": id_or_hostname})
        return device

    def list(
        self,
        ctx: Context,
        *,
        site: str | None = None,
        role: str | None = None,
        has_drift: bool | None = None,
        page: int = 1,
        per_page: int = 50,
    ) -> Page[Device]:
        """List devices ordered by hostname, filtered and paginated.

        Parameters
        ----------
        site, role : str, optional
            Exact matches (role without case).
        has_drift : bool, optional
            True for devices with a drift score above 0, False for devices
            observed in sync or never observed.
        page, per_page : int
            Page number from 1 and page size from 1 to 200.
        """
        check_page(page, per_page)
        where = ["workspace = ?"]
        params: list[Any] = [ctx.workspace]
        if site is not None:
            where.append("site = ?")
            params.append(site)
        if role is not None:
            where.append("role = ?")
            params.append(str(role).strip().lower())
        if has_drift is True:
            where.append("drift_score > 0")
        elif has_drift is False:
            where.append("coalesce(drift_score, 0) = 0")
        clause = " AND ".join(where)
        count = self.store.fetchone(
            f"SELECT count(*) FROM devices WHERE {clause}", params
        )
        rows = self.store.fetchall(
            f"SELECT {COLUMNS} FROM devices WHERE {clause} "
            "ORDER BY hostname_key LIMIT ? OFFSET ?",
            [*params, per_page, (page - 1) * per_page],
        )
        devices = [device_from_row(row) for row in rows]
        return Page(devices, int(count[0]) if count else 0, page, per_page)

    # -- sites -----------------------------------------------------------

    def create_site(
        self,
        ctx: Context,
        name: str,
        *,
        region: str | None = None,
        owner: str | None = None,
        description: str | None = None,
    ) -> Site:
        """Create a site and audit it.

        Raises
        ------
        Duplicate
            If a site of that name exists in the workspace.
        """
        site_name = _text("site", name, required=True)
        assert site_name is not None
        site = Site(
            site_name,
            _text("region", region),
            _text("owner", owner),
            _text("description", description),
            utc_now(),
        )
        with self.store.transaction() as conn:
            if self._site_exists(conn, ctx.workspace, site_name):
                message = f"site {site_name!r} already exists; list sites to see it"
                raise Duplicate(message, details={"name": site_name})
            self._insert_site(conn, ctx, site)
        return site

    def _site_exists(
        self, conn: duckdb.DuckDBPyConnection, workspace: str, name: str
    ) -> bool:
        row = conn.execute(
            "SELECT 1 FROM sites WHERE workspace = ? AND name = ?", [workspace, name]
        ).fetchone()
        return row is not None

    def _insert_site(
        self, conn: duckdb.DuckDBPyConnection, ctx: Context, site: Site
    ) -> None:
        conn.execute(
            "INSERT INTO sites VALUES (?, ?, ?, ?, ?, ?)",
            [
                ctx.workspace,
                site.name,
                site.region,
                site.owner,
                site.description,
                site.created_at,
            ],
        )
        entry = AuditEntry(
            f"site:{site.name}",
            "site.create",
            ctx.actor,
            ctx.intent,
            {"before": None, "after": site.to_dict()},
        )
        self.audit.append(conn, ctx.workspace, entry)

    def list_sites(self, ctx: Context) -> builtins.list[Site]:
        """Return every site of the workspace, ordered by name."""
        rows = self.store.fetchall(
            "SELECT name, region, owner, description, created_at FROM sites "
            "WHERE workspace = ? ORDER BY name",
            [ctx.workspace],
        )
        return [Site(*row) for row in rows]

    # -- creating --------------------------------------------------------

    def create(
        self,
        ctx: Context,
        hostname: str,
        *,
        role: str,
        site: str,
        rack: str | None = None,
        serial: str | None = None,
        management_address: str | None = None,
        platform: str | None = None,
        model: str | None = None,
        owner: str | None = None,
        twin_state: Mapping[str, Any] | None = None,
    ) -> Device:
        """Create a device and audit it.

        Raises
        ------
        ValidationError
            A missing hostname, role or site, or a value of the wrong type.
        InvalidAddress
            A management address that is not an IP address.
        Duplicate
            Another device of the workspace has the same hostname.
        """
        item = {
            "hostname": hostname,
            "role": role,
            "site": site,
            "rack": rack,
            "serial": serial,
            "management_address": management_address,
            "platform": platform,
            "model": model,
            "owner": owner,
            "twin_state": twin_state,
        }
        return self.create_many(ctx, [item])[0]

    def create_many(
        self, ctx: Context, items: Iterable[Mapping[str, Any]]
    ) -> builtins.list[Device]:
        """Create devices in one transaction, or join the caller's open one.

        Each item is a map with the keyword arguments of :meth:`create`.
        Either every device is created or, on the first invalid item, none.
        """
        now = utc_now()
        devices = [self._validate(item, now) for item in items]
        if not devices:
            return []
        with self.store.transaction() as conn:
            self._check_unique(conn, ctx.workspace, devices)
            self._ensure_sites(conn, ctx, {d.site for d in devices})
            rows = [self._row(ctx.workspace, d) for d in devices]
            columns = [list(column) for column in zip(*rows, strict=True)]
            # One statement for the whole batch: executemany is row by row.
            casts = ["VARCHAR"] * 15 + ["DOUBLE"] + ["VARCHAR"] * 5
            select = ", ".join(f"unnest(?::{cast}[])" for cast in casts)
            conn.execute(f"INSERT INTO devices SELECT {select}", columns)
            entries = [
                AuditEntry(
                    d.id,
                    "device.create",
                    ctx.actor,
                    ctx.intent,
                    {"before": None, "after": d.to_dict()},
                )
                for d in devices
            ]
            self.audit.append_many(conn, ctx.workspace, entries, new_subjects=True)
            self.notify_commit(ctx.workspace)
        return devices

    def _validate(self, item: Mapping[str, Any], now: str) -> Device:
        unknown = set(item) - UPDATABLE
        if unknown:
            message = (
                f"unknown device fields {sorted(unknown)}; use {sorted(UPDATABLE)}"
            )
            raise ValidationError(message, details={"fields": sorted(unknown)})
        hostname = _text("hostname", item.get("hostname"), required=True)
        role = _text("role", item.get("role"), required=True)
        site = _text("site", item.get("site"), required=True)
        assert hostname is not None and role is not None and site is not None
        host_label(hostname)
        texts: dict[str, Any] = {n: _text(n, item.get(n)) for n in TEXT_FIELDS}
        return Device(
            id=new_id("dv"),
            hostname=hostname,
            role=role.lower(),
            site=site,
            management_address=_address(item.get("management_address")),
            twin_state=_state("twin_state", item.get("twin_state")),
            created_at=now,
            updated_at=now,
            **texts,
        )

    def _check_unique(
        self,
        conn: duckdb.DuckDBPyConnection,
        workspace: str,
        devices: builtins.list[Device],
    ) -> None:
        keys: dict[str, str] = {}
        for device in devices:
            key = device.hostname.lower()
            if key in keys:
                message = (
                    f"hostname {device.hostname!r} appears twice in one request; "
                    "hostnames are unique without case"
                )
                raise Duplicate(message, details={"hostname": device.hostname})
            keys[key] = device.hostname
        if not keys:
            return
        row = conn.execute(
            "SELECT hostname, id FROM devices WHERE workspace = ? "
            "AND hostname_key IN (SELECT unnest(?::VARCHAR[])) LIMIT 1",
            [workspace, list(keys)],
        ).fetchone()
        if row is not None:
            message = (
                f"device {row[0]!r} already exists as {row[1]}; update that device "
                "instead"
            )
            raise Duplicate(message, details={"hostname": row[0], "existing": row[1]})

    def _ensure_sites(
        self, conn: duckdb.DuckDBPyConnection, ctx: Context, names: set[str]
    ) -> None:
        for name in sorted(names):
            if not self._site_exists(conn, ctx.workspace, name):
                self._insert_site(conn, ctx, Site(name, created_at=utc_now()))

    @staticmethod
    def _row(workspace: str, d: Device) -> builtins.list[Any]:
        return [
            d.id,
            workspace,
            d.hostname,
            d.hostname.lower(),
            host_label(d.hostname),
            d.role,
            d.site,
            d.rack,
            d.serial,
            d.management_address,
            d.platform,
            d.model,
            d.owner,
            json.dumps(d.twin_state, sort_keys=True),
            json.dumps(d.detected_state, sort_keys=True),
            d.drift_score,
            d.created_at,
            d.updated_at,
            flat_json(d.twin_state),
            None,
            None,
        ]

    # -- updating --------------------------------------------------------

    def update(
        self, ctx: Context, device_id: str, changes: Mapping[str, Any]
    ) -> Device:
        """Update fields of a device and audit the change.

        ``changes`` may set ``hostname``, ``role``, ``site``, ``rack``,
        ``serial``, ``management_address``, ``platform``, ``model``,
        ``owner`` and ``twin_state``. A ``twin_state`` map replaces the whole
        twin state. A dotted key such as ``"twin_state.os_version"`` sets one
        nested value instead, and None as its value removes it. A changed
        twin state re-evaluates the device's drift in the same transaction.

        Raises
        ------
        ImmutableField
            For ``id``, ``detected_state``, ``drift_score`` and timestamps.
        ValidationError, InvalidAddress, Duplicate
            As in :meth:`create`.
        NotFound
            If the device does not exist.
        """
        self._check_change_names(changes)
        with self.store.transaction() as conn:
            before = self.fetch_in(conn, ctx, device_id)
            after = self._apply(before, changes)
            if after == before:
                return before
            if after.hostname.lower() != before.hostname.lower():
                self._check_unique(conn, ctx.workspace, [after])
            if after.site != before.site:
                self._ensure_sites(conn, ctx, {after.site})
            self.write(conn, ctx, before, after, "device.update")
            if after.twin_state != before.twin_state:
                for hook in self.twin_change_hooks:
                    hook(conn, ctx, [after.id])
        return self.get(ctx, after.id)

    @staticmethod
    def _check_change_names(changes: Mapping[str, Any]) -> None:
        for name in changes:
            if name in IMMUTABLE:
                message = (
                    f"{name} of a device cannot be set; discovery ingest and "
                    "reconcile change the detected state and drift score"
                )
                raise ImmutableField(message, details={"field": name})
            if name not in UPDATABLE and not name.startswith("twin_state."):
                message = (
                    f"unknown field {name!r}; updatable fields: {sorted(UPDATABLE)} "
                    "or 'twin_state.<dotted path>'"
                )
                raise ValidationError(message, details={"field": name})

    def _apply(self, device: Device, changes: Mapping[str, Any]) -> Device:
        values = device.to_dict()
        twin = dict(device.twin_state)
        if "twin_state" in changes:
            twin = _state("twin_state", changes["twin_state"])
        for name, value in changes.items():
            if name.startswith("twin_state."):
                twin = set_path(twin, name.removeprefix("twin_state."), value)
            elif name in TEXT_FIELDS:
                values[name] = _text(name, value)
            elif name in ("hostname", "role", "site"):
                values[name] = _text(name, value, required=True)
        json.dumps(twin)
        if "management_address" in changes:
            values["management_address"] = _address(changes["management_address"])
        values["role"] = str(values["role"]).lower()
        values["twin_state"] = twin
        new = Device.from_dict(values)
        if new == device:
            return device
        return Device.from_dict({**values, "updated_at": utc_now()})

    def write(
        self,
        conn: duckdb.DuckDBPyConnection,
        ctx: Context,
        before: Device,
        after: Device,
        action: str,
    ) -> None:
        """Store ``after`` over ``before`` and audit the changed fields."""
        conn.execute(
            "UPDATE devices SET hostname = ?, hostname_key = ?, host_label = ?, "
            "role = ?, site = ?, rack = ?, serial = ?, management_address = ?, "
            "platform = ?, model = ?, owner = ?, twin_state = ?, updated_at = ?, "
            "twin_flat = ? WHERE workspace = ? AND id = ?",
            [
                after.hostname,
                after.hostname.lower(),
                host_label(after.hostname),
                after.role,
                after.site,
                after.rack,
                after.serial,
                after.management_address,
                after.platform,
                after.model,
                after.owner,
                json.dumps(after.twin_state, sort_keys=True),
                after.updated_at,
                flat_json(after.twin_state),
                ctx.workspace,
                after.id,
            ],
        )
        old, new = before.to_dict(), after.to_dict()
        changed = [k for k in new if old[k] != new[k] and k not in ("updated_at", "id")]
        entry = AuditEntry(
            after.id,
            action,
            ctx.actor,
            ctx.intent,
            {
                "before": {k: old[k] for k in changed},
                "after": {k: new[k] for k in changed},
            },
        )
        self.audit.append(conn, ctx.workspace, entry)
        self.notify_commit(ctx.workspace)

    def notify_commit(self, workspace: str) -> None:
        """Tell the listeners, once the transaction commits, that devices changed."""
        for listener in self.commit_listeners:
            self.store.after_commit(functools.partial(listener, workspace))

    def audit_trail(
        self, ctx: Context, device_id: str, *, page: int = 1, per_page: int = 50
    ) -> Any:
        """Return the audit events of one device, oldest first."""
        check_page(page, per_page)
        device = self.get(ctx, device_id)
        return self.audit.list(
            ctx.workspace, subject=device.id, page=page, per_page=per_page
        )
