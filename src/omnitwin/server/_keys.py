"""API keys: creation, revocation and lookup, stored hashed in DuckDB.

A key is ``ot_live_<secret>`` (or ``ot_sandbox_<secret>`` for a sandbox
server). Only its SHA-256 digest is stored, next to a key id such as
``key_01J9...`` that names the key in audit events (``key:<key id>``) and in
``omnitwin keys revoke``. The secret is shown once, when the key is created.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Literal

from omnitwin._ids import new_id
from omnitwin.engine.store import Store, utc_now
from omnitwin.errors import NotFound, ValidationError

__all__ = ["KEY_PREFIXES", "ApiKey", "KeyKind", "KeyStore", "hash_key"]

KeyKind = Literal["live", "sandbox"]
KEY_PREFIXES: dict[KeyKind, str] = {"live": "ot_live_", "sandbox": "ot_sandbox_"}

KEYS_DDL = """
CREATE TABLE IF NOT EXISTS api_keys (
    id VARCHAR NOT NULL,
    workspace VARCHAR NOT NULL,
    name VARCHAR,
    kind VARCHAR NOT NULL,
    hash VARCHAR NOT NULL,
    read_only BOOLEAN NOT NULL,
    created_at VARCHAR NOT NULL,
    revoked_at VARCHAR
);
"""

_COLUMNS = "id, workspace, name, kind, read_only, created_at, revoked_at"

# A server process caches key lookups for this many seconds. Keys are
# revoked with the CLI, which needs the database file that the server holds
# open, so a revocation takes effect at the latest when the server restarts.
CACHE_SECONDS = 60.0
_CACHE_ENTRIES = 10_000


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A stored API key, without its secret."""

    id: str
    workspace: str
    name: str | None
    kind: str
    read_only: bool
    created_at: str
    revoked_at: str | None = None

    @property
    def actor(self) -> str:
        """The audit actor of writes made with this key, ``key:<key id>``."""
        return f"key:{self.id}"


def hash_key(secret: str) -> str:
    """Return the hex SHA-256 digest under which a key is stored."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


class KeyStore:
    """API keys of one omnitwin database.

    Examples
    --------
    >>> from omnitwin.engine.store import Store
    >>> keys = KeyStore(Store(":memory:"))
    >>> record, secret = keys.create("team-a", read_only=True)
    >>> keys.authenticate(secret).workspace
    'team-a'
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        store.ensure_schema(KEYS_DDL)
        self._cache: dict[str, tuple[float, ApiKey | None]] = {}
        self._cache_lock = threading.Lock()

    def create(
        self,
        workspace: str,
        *,
        read_only: bool = False,
        name: str | None = None,
        kind: KeyKind = "live",
    ) -> tuple[ApiKey, str]:
        """Create a key and return its record and its secret (shown only once)."""
        if not workspace or not workspace.strip():
            raise ValidationError("workspace is empty; name the key's workspace")
        secret = KEY_PREFIXES[kind] + secrets.token_urlsafe(32)
        record = ApiKey(new_id("key"), workspace, name, kind, read_only, utc_now())
        with self.store.transaction() as conn:
            conn.execute(
                "INSERT INTO api_keys VALUES (?, ?, ?, ?, ?, ?, ?, NULL)",
                [
                    record.id,
                    workspace,
                    name,
                    kind,
                    hash_key(secret),
                    read_only,
                    record.created_at,
                ],
            )
        return record, secret

    def revoke(self, key_id: str) -> ApiKey:
        """Revoke a key by id; revoking twice keeps the first revocation time."""
        record = self.get(key_id)
        if record.revoked_at is None:
            with self.store.transaction() as conn:
                conn.execute(
                    "UPDATE api_keys SET revoked_at = ? WHERE id = ?",
                    [utc_now(), key_id],
                )
        with self._cache_lock:
            self._cache.clear()
        return self.get(key_id)

    def get(self, key_id: str) -> ApiKey:
        """Return one key by id."""
        row = self.store.fetchone(
            f"SELECT {_COLUMNS} FROM api_keys WHERE id = ?", [key_id]
        )
        if row is None:
            raise NotFound(f"API key {key_id!r} not found", details={"id": key_id})
        return ApiKey(*row)

    def list(self, workspace: str | None = None) -> list[ApiKey]:
        """Return every key, oldest first, optionally of one workspace."""
        sql = f"SELECT {_COLUMNS} FROM api_keys"
        params: list[str] = []
        if workspace is not None:
            sql += " WHERE workspace = ?"
            params.append(workspace)
        return [
            ApiKey(*row) for row in self.store.fetchall(sql + " ORDER BY id", params)
        ]

    def authenticate(self, secret: str) -> ApiKey | None:
        """Return the active key whose secret is ``secret``, or ``None``."""
        digest = hash_key(secret)
        now = time.monotonic()
        with self._cache_lock:
            cached = self._cache.get(digest)
        if cached is not None and now - cached[0] < CACHE_SECONDS:
            return cached[1]
        record = self._lookup(digest)
        with self._cache_lock:
            if len(self._cache) >= _CACHE_ENTRIES:
                self._cache.clear()
            self._cache[digest] = (now, record)
        return record

    def _lookup(self, digest: str) -> ApiKey | None:
        rows = self.store.fetchall(
            f"SELECT {_COLUMNS}, hash FROM api_keys WHERE hash = ?", [digest]
        )
        for row in rows:
            # The SQL match already compared digests; compare again in
            # constant time so that the check does not depend on DuckDB.
            if hmac.compare_digest(row[-1], digest) and row[6] is None:
                return ApiKey(*row[:-1])
        return None
