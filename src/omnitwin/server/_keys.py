"""API keys: creation, revocation and lookup, stored hashed in DuckDB.

A key is ``ot_live_<secret>`` (or ``ot_sandbox_<secret>`` for a sandbox
server). Only its SHA-256 digest is stored, next to a key id such as
``key_01J9...`` that names the key in audit events (``key:<key id>``) and in
``omnitwin keys revoke``. The secret is shown once, when the key is created.

A workspace key reads and writes the data of one workspace. An admin key
manages keys (``/v1/keys``) of every workspace and reads no workspace data;
its ``workspace`` column contains :data:`ADMIN_WORKSPACE`. Every creation and
revocation appends an audit event to the chain of the key's workspace, so the
events of admin keys go to the ``*`` chain.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
import time
from dataclasses import dataclass, field, fields
from typing import Any, Literal

from omnitwin._ids import new_id
from omnitwin.engine.audit import AuditEntry, AuditLog
from omnitwin.engine.context import DEFAULT_ACTOR
from omnitwin.engine.store import Store, utc_now
from omnitwin.errors import NotFound, ValidationError
from omnitwin.models import Page, Record

__all__ = [
    "ADMIN_WORKSPACE",
    "KEY_PREFIXES",
    "ApiKey",
    "CreatedApiKey",
    "KeyKind",
    "KeyStore",
    "hash_key",
]

KeyKind = Literal["live", "sandbox"]
KEY_PREFIXES: dict[KeyKind, str] = {"live": "ot_live_", "sandbox": "ot_sandbox_"}

# The workspace column of admin keys. Workspace keys may not use this name, so
# the rate-limit budget and the audit chain of "*" belong to admin keys only.
ADMIN_WORKSPACE = "*"
_WORKSPACE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")

KEYS_DDL = """
CREATE TABLE IF NOT EXISTS api_keys (
    id VARCHAR NOT NULL,
    workspace VARCHAR NOT NULL,
    name VARCHAR,
    kind VARCHAR NOT NULL,
    hash VARCHAR NOT NULL,
    read_only BOOLEAN NOT NULL,
    created_at VARCHAR NOT NULL,
    revoked_at VARCHAR,
    admin BOOLEAN NOT NULL DEFAULT false
);
"""

# Databases created before admin keys existed lack the admin column. Adding it
# with a default of false keeps every existing key a workspace key.
_ADD_ADMIN_COLUMN = (
    "ALTER TABLE api_keys ADD COLUMN IF NOT EXISTS admin BOOLEAN DEFAULT false",
    "ALTER TABLE api_keys ALTER COLUMN admin SET NOT NULL",
)

_COLUMNS = "id, workspace, name, kind, read_only, created_at, revoked_at, admin"
# The same columns for a file opened read-only that was never migrated.
_COLUMNS_WITHOUT_ADMIN = (
    "id, workspace, name, kind, read_only, created_at, revoked_at, false AS admin"
)

# A server process caches key lookups for this many seconds. Creating or
# revoking a key through the same KeyStore (the server's /v1/keys routes)
# clears the cache, so those changes take effect at once. A change made by
# another process is seen after at most this long.
CACHE_SECONDS = 60.0
_CACHE_ENTRIES = 10_000


@dataclass(frozen=True, slots=True)
class ApiKey(Record):
    """A stored API key, without its secret."""

    id: str
    workspace: str
    name: str | None
    kind: str
    read_only: bool
    created_at: str
    revoked_at: str | None = None
    admin: bool = False

    @property
    def actor(self) -> str:
        """The audit actor of writes made with this key, ``key:<key id>``."""
        return f"key:{self.id}"

    @property
    def access(self) -> str:
        """A label of what the key may do: ``read-write``, ``read-only``,
        ``admin`` or ``admin-read-only``."""
        if self.admin:
            return "admin-read-only" if self.read_only else "admin"
        return "read-only" if self.read_only else "read-write"


@dataclass(frozen=True, slots=True)
class CreatedApiKey(ApiKey):
    """A key that was just created, with its secret (returned only once)."""

    secret: str = field(default="", kw_only=True, repr=False)

    @classmethod
    def of(cls, record: ApiKey, secret: str) -> CreatedApiKey:
        """Return ``record`` with its ``secret`` attached."""
        values = {f.name: getattr(record, f.name) for f in fields(ApiKey)}
        return cls(**values, secret=secret)


def hash_key(secret: str) -> str:
    """Return the hex SHA-256 digest under which a key is stored."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def _row_to_key(row: tuple[Any, ...]) -> ApiKey:
    key_id, workspace, name, kind, read_only, created_at, revoked_at, admin = row
    return ApiKey(
        key_id, workspace, name, kind, read_only, created_at, revoked_at, bool(admin)
    )


def _workspace_filter(workspace: str | None) -> tuple[str, list[Any]]:
    if workspace is None:
        return "", []
    return " WHERE workspace = ?", [workspace]


class KeyStore:
    """API keys of one omnitwin database.

    Pass the engine's ``audit`` log when an engine writes to the same store
    in this process: the log caches the head of each hash chain, so two logs
    that append to one workspace would break its chain.

    Examples
    --------
    >>> from omnitwin.engine.store import Store
    >>> keys = KeyStore(Store(":memory:"))
    >>> record, secret = keys.create("team-a", read_only=True)
    >>> keys.authenticate(secret).workspace
    'team-a'
    """

    def __init__(self, store: Store, audit: AuditLog | None = None) -> None:
        self.store = store
        self.audit = audit if audit is not None else AuditLog(store)
        self._migrate()
        self._columns = _COLUMNS if self._has_admin_column() else _COLUMNS_WITHOUT_ADMIN
        self._cache: dict[str, tuple[float, ApiKey | None]] = {}
        self._cache_lock = threading.Lock()

    def _has_admin_column(self) -> bool:
        row = self.store.fetchone(
            "SELECT count(*) FROM information_schema.columns "
            "WHERE table_name = 'api_keys' AND column_name = 'admin'"
        )
        return bool(row and row[0])

    def _migrate(self) -> None:
        if self.store.read_only:
            return
        self.store.ensure_schema(KEYS_DDL)
        if self._has_admin_column():
            return
        with self.store.transaction() as conn:
            for statement in _ADD_ADMIN_COLUMN:
                conn.execute(statement)

    def create(
        self,
        workspace: str | None,
        *,
        read_only: bool = False,
        name: str | None = None,
        kind: KeyKind = "live",
        admin: bool = False,
        actor: str = DEFAULT_ACTOR,
    ) -> tuple[ApiKey, str]:
        """Create a key and return its record and its secret (shown only once).

        An admin key takes no workspace. ``actor`` is recorded on the audit
        event, e.g. ``key:<admin key id>`` for a key created over HTTP.

        Raises
        ------
        ValidationError
            A workspace key without a workspace, an admin key with one, or a
            workspace key named ``*``.
        """
        workspace = self._check_workspace(workspace, admin=admin)
        secret = KEY_PREFIXES[kind] + secrets.token_urlsafe(32)
        record = ApiKey(
            new_id("key"), workspace, name, kind, read_only, utc_now(), admin=admin
        )
        with self.store.transaction() as conn:
            conn.execute(
                "INSERT INTO api_keys (id, workspace, name, kind, hash, read_only, "
                "created_at, revoked_at, admin) VALUES (?, ?, ?, ?, ?, ?, ?, NULL, ?)",
                [
                    record.id,
                    workspace,
                    name,
                    kind,
                    hash_key(secret),
                    read_only,
                    record.created_at,
                    admin,
                ],
            )
            entry = AuditEntry(
                record.id,
                "key.create",
                actor,
                None,
                {"before": None, "after": record.to_dict()},
            )
            self.audit.append(conn, workspace, entry)
        self._clear_cache()
        return record, secret

    @staticmethod
    def _check_workspace(workspace: str | None, *, admin: bool) -> str:
        if admin:
            if workspace is not None and workspace != ADMIN_WORKSPACE:
                raise ValidationError(
                    f"an admin key has no workspace, got {workspace!r}; "
                    "omit the workspace to create an admin key",
                    details={"field": "workspace"},
                )
            return ADMIN_WORKSPACE
        if workspace is None or not workspace.strip():
            raise ValidationError(
                "workspace is missing or empty; name the key's workspace",
                details={"field": "workspace"},
            )
        if workspace == ADMIN_WORKSPACE:
            raise ValidationError(
                f"workspace {ADMIN_WORKSPACE!r} is reserved for admin keys; "
                "name another workspace or create an admin key",
                details={"field": "workspace"},
            )
        # Workspace names reach log lines and URLs, so control characters,
        # spaces and unbounded lengths are rejected.
        if not _WORKSPACE_NAME.fullmatch(workspace):
            raise ValidationError(
                f"invalid workspace name {workspace[:80]!r}; use 1 to 64 letters, "
                "digits, '.', '_' or '-', starting with a letter or digit",
                details={"field": "workspace"},
            )
        return workspace

    def revoke(self, key_id: str, *, actor: str = DEFAULT_ACTOR) -> ApiKey:
        """Revoke a key by id; revoking twice keeps the first revocation time.

        Only the first revocation appends an audit event, with ``actor``.
        """
        with self.store.transaction() as conn:
            before = self.get(key_id)
            if before.revoked_at is None:
                conn.execute(
                    "UPDATE api_keys SET revoked_at = ? WHERE id = ?",
                    [utc_now(), key_id],
                )
                after = self.get(key_id)
                entry = AuditEntry(
                    key_id,
                    "key.revoke",
                    actor,
                    None,
                    {"before": before.to_dict(), "after": after.to_dict()},
                )
                self.audit.append(conn, before.workspace, entry)
        self._clear_cache()
        return self.get(key_id)

    def get(self, key_id: str) -> ApiKey:
        """Return one key by id."""
        row = self.store.fetchone(
            f"SELECT {self._columns} FROM api_keys WHERE id = ?", [key_id]
        )
        if row is None:
            raise NotFound(
                f"no API key with id {key_id!r}; list the key ids with "
                "omnitwin keys list",
                details={"id": key_id},
            )
        return _row_to_key(row)

    def list(self, workspace: str | None = None) -> list[ApiKey]:
        """Return every key, oldest first, optionally of one workspace."""
        clause, params = _workspace_filter(workspace)
        rows = self.store.fetchall(
            f"SELECT {self._columns} FROM api_keys{clause} ORDER BY id", params
        )
        return [_row_to_key(row) for row in rows]

    def page(
        self, workspace: str | None = None, *, page: int = 1, per_page: int = 50
    ) -> Page[ApiKey]:
        """Return one page of keys, oldest first, optionally of one workspace."""
        clause, params = _workspace_filter(workspace)
        count = self.store.fetchone(f"SELECT count(*) FROM api_keys{clause}", params)
        rows = self.store.fetchall(
            f"SELECT {self._columns} FROM api_keys{clause} ORDER BY id "
            "LIMIT ? OFFSET ?",
            [*params, per_page, (page - 1) * per_page],
        )
        total = int(count[0]) if count else 0
        return Page([_row_to_key(row) for row in rows], total, page, per_page)

    def cached(self, secret: str) -> tuple[bool, ApiKey | None]:
        """Return (found, key) from the cache alone, without a database query.

        The server calls this on its event loop, so a cached key costs no
        thread hop; ``found`` is false when :meth:`authenticate` must query.
        """
        entry = self._fresh(hash_key(secret), time.monotonic())
        return (entry is not None, entry[1] if entry is not None else None)

    def _fresh(self, digest: str, now: float) -> tuple[float, ApiKey | None] | None:
        with self._cache_lock:
            cached = self._cache.get(digest)
        if cached is not None and now - cached[0] < CACHE_SECONDS:
            return cached
        return None

    def authenticate(self, secret: str) -> ApiKey | None:
        """Return the active key whose secret is ``secret``, or ``None``."""
        digest = hash_key(secret)
        now = time.monotonic()
        cached = self._fresh(digest, now)
        if cached is not None:
            return cached[1]
        record = self._lookup(digest)
        with self._cache_lock:
            if len(self._cache) >= _CACHE_ENTRIES:
                self._cache.clear()
            self._cache[digest] = (now, record)
        return record

    def _clear_cache(self) -> None:
        with self._cache_lock:
            self._cache.clear()

    def _lookup(self, digest: str) -> ApiKey | None:
        rows = self.store.fetchall(
            f"SELECT {self._columns}, hash FROM api_keys WHERE hash = ?", [digest]
        )
        for row in rows:
            # The SQL match already compared digests; compare again in
            # constant time so that the check does not depend on DuckDB.
            if hmac.compare_digest(row[-1], digest) and row[6] is None:
                return _row_to_key(row[:-1])
        return None
