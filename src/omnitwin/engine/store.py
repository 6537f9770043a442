"""The DuckDB store: one connection, its schema, and transactions.

A :class:`Store` owns a single DuckDB connection and a re-entrant lock. Every
read and every transaction holds the lock, so threads of one process share the
store safely and a mutation never reads another half-done one. DuckDB lets one
process at a time open a file for writing; a second process gets
:class:`~omnitwin.errors.StoreLocked`, which says how to share the file.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from omnitwin.errors import PermissionDenied, StoreLocked, ValidationError

__all__ = ["SCHEMA", "Store", "is_database_file", "utc_now"]

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 1

# Addresses are stored as UHUGEINT (unsigned 128-bit) so that IPv4 and IPv6
# intervals use one integer column. Uniqueness is enforced by the engine under
# the store lock instead of by DuckDB keys: DuckDB turns an UPDATE into a
# delete and insert, which makes key checks inside one transaction brittle.
SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key VARCHAR, value VARCHAR);
CREATE TABLE IF NOT EXISTS subnets (
    id VARCHAR NOT NULL,
    workspace VARCHAR NOT NULL,
    cidr VARCHAR NOT NULL,
    version TINYINT NOT NULL,
    "first" UHUGEINT NOT NULL,
    "last" UHUGEINT NOT NULL,
    prefix_length SMALLINT NOT NULL,
    vrf VARCHAR NOT NULL,
    status VARCHAR NOT NULL,
    purpose VARCHAR,
    parent_id VARCHAR,
    vlan_id INTEGER,
    owner VARCHAR,
    tags VARCHAR NOT NULL,
    is_pool BOOLEAN NOT NULL,
    is_container BOOLEAN NOT NULL,
    created_at VARCHAR NOT NULL,
    updated_at VARCHAR NOT NULL
);
CREATE TABLE IF NOT EXISTS addresses (
    id VARCHAR NOT NULL,
    workspace VARCHAR NOT NULL,
    address VARCHAR NOT NULL,
    version TINYINT NOT NULL,
    value UHUGEINT NOT NULL,
    prefix_length SMALLINT NOT NULL,
    vrf VARCHAR NOT NULL,
    subnet_id VARCHAR,
    status VARCHAR NOT NULL,
    hostname VARCHAR,
    device_id VARCHAR,
    interface VARCHAR,
    created_at VARCHAR NOT NULL
);
CREATE TABLE IF NOT EXISTS audit_events (
    workspace VARCHAR NOT NULL,
    position BIGINT NOT NULL,
    subject VARCHAR NOT NULL,
    seq BIGINT NOT NULL,
    action VARCHAR NOT NULL,
    actor VARCHAR NOT NULL,
    "at" VARCHAR NOT NULL,
    intent VARCHAR,
    changes VARCHAR NOT NULL,
    prev_hash VARCHAR NOT NULL,
    hash VARCHAR NOT NULL
);
"""


def utc_now() -> str:
    """Return the current time as ISO 8601 UTC with microseconds and ``Z``."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# A DuckDB database file has an 8-byte checksum and then this magic number
# (seen in files written by DuckDB 2.0.1).
_DUCKDB_MAGIC = b"DUCK"
_MAGIC_OFFSET = 8


def is_database_file(path: str | Path) -> bool:
    """Return whether ``path`` starts with the header of a DuckDB database file.

    An empty file is no database either, because DuckDB 2.0.1 raises on it.
    """
    with open(path, "rb") as file:
        header = file.read(_MAGIC_OFFSET + len(_DUCKDB_MAGIC))
    return header[_MAGIC_OFFSET:] == _DUCKDB_MAGIC


def _locked_message(path: str, exc: Exception) -> str:
    return (
        f"the omnitwin database {path} is locked by another process ({exc}). "
        "Close that process, open the file read-only with "
        "omnitwin.connect('local:...', read_only=True) once no writer holds it, "
        "or serve it with 'omnitwin serve --db ...' and connect over HTTP."
    )


class Store:
    """A DuckDB database file (or ``:memory:``) with omnitwin's schema.

    Parameters
    ----------
    path : str or Path
        The database file, created when missing, or ``":memory:"``.
    read_only : bool
        Open the file without write access; every write raises
        :class:`~omnitwin.errors.PermissionDenied`.
    """

    def __init__(self, path: str | Path = ":memory:", *, read_only: bool = False):
        self.path = str(path)
        self.read_only = read_only
        self.lock = threading.RLock()
        self._depth = 0
        # Counts transactions begun, so caches can tell one transaction's
        # uncommitted values from another's.
        self.transaction_serial = 0
        self._pending_callbacks: list[Callable[[], None]] = []
        self._rollback_callbacks: list[Callable[[], None]] = []
        if Path(self.path).is_file() and not is_database_file(self.path):
            # DuckDB 2.0.1 opens a *.json path as an in-memory database, so
            # its own error for such a file names neither the file nor a fix.
            raise ValidationError(
                f"{self.path} is not a DuckDB database file; open an omnitwin "
                "database, or give a new file name to create one",
                details={"path": self.path},
            )
        try:
            self.conn = duckdb.connect(self.path, read_only=read_only)
        except duckdb.IOException as exc:
            if "lock" in str(exc).lower():
                raise StoreLocked(
                    _locked_message(self.path, exc), details={"path": self.path}
                ) from exc
            raise
        if not read_only:
            self.conn.execute(SCHEMA)
            self._stamp_version()
        logger.debug("opened store %s (read_only=%s)", self.path, read_only)

    def _stamp_version(self) -> None:
        row = self.conn.execute(
            "SELECT value FROM meta WHERE key = 'schema_version'"
        ).fetchone()
        if row is None:
            self.conn.execute(
                "INSERT INTO meta VALUES ('schema_version', ?)", [str(SCHEMA_VERSION)]
            )

    def ensure_schema(self, ddl: str) -> None:
        """Create the tables of an engine part that extends the base schema."""
        if not self.read_only:
            with self.lock:
                self.conn.execute(ddl)

    def close(self) -> None:
        """Close the connection; the store cannot be used afterwards."""
        with self.lock:
            self.conn.close()

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """Run a block in one transaction: commit on success, roll back on error."""
        if self.read_only:
            raise PermissionDenied(
                f"the database {self.path} is open read-only; reopen it without "
                "read_only=True to write"
            )
        with self.lock:
            if self._depth:
                # A nested block joins the transaction that is already open.
                self._depth += 1
                try:
                    yield self.conn
                finally:
                    self._depth -= 1
                return
            self.conn.execute("BEGIN TRANSACTION")
            self.transaction_serial += 1
            self._depth = 1
            try:
                yield self.conn
            except BaseException:
                self._pending_callbacks.clear()
                self.conn.execute("ROLLBACK")
                undone, self._rollback_callbacks = self._rollback_callbacks, []
                for callback in undone:
                    callback()
                raise
            else:
                self.conn.execute("COMMIT")
                self._rollback_callbacks.clear()
                callbacks, self._pending_callbacks = self._pending_callbacks, []
                for callback in callbacks:
                    callback()
            finally:
                self._depth = 0

    def after_rollback(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` if the current transaction rolls back.

        Outside a transaction, do nothing. A cache filled inside a transaction
        uses this to drop rows that it read and the rollback undid.
        """
        if self._depth:
            self._rollback_callbacks.append(callback)

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` once the current transaction commits (never on rollback).

        In-memory indexes use this so that they change only with the data.
        """
        if self._depth == 0:
            callback()
        else:
            self._pending_callbacks.append(callback)

    def bulk_insert(
        self,
        conn: duckdb.DuckDBPyConnection,
        table: str,
        columns: dict[str, list[Any]],
        *,
        casts: dict[str, str] | None = None,
    ) -> int:
        """Insert many rows at once through a staged pandas frame; return the count.

        ``columns`` maps every column of ``table``, in table order, to its
        values. DuckDB's ``executemany`` inserts only about a thousand rows a
        second, while a staged frame inserts a million in under a second.
        Integers wider than 64 bits go in as strings with a cast in ``casts``
        (for example ``{"first": "UHUGEINT"}``).
        """
        import pandas as pd

        lengths = {len(values) for values in columns.values()}
        if len(lengths) != 1:
            raise ValueError(f"bulk insert into {table}: columns differ in length")
        if not lengths or 0 in lengths:
            return 0
        casts = casts or {}
        frame = pd.DataFrame(
            {
                name: [None if v is None else str(v) for v in values]
                if name in casts
                else pd.Series(values, dtype="object")
                for name, values in columns.items()
            }
        )
        select = ", ".join(
            f'CAST("{name}" AS {casts[name]})' if name in casts else f'"{name}"'
            for name in columns
        )
        view = f"_staged_{table}"
        # DuckDB refuses register() while an earlier result on this connection
        # is only partly fetched (e.g. after fetchone); finish it first.
        conn.execute("SELECT 1").fetchall()
        conn.register(view, frame)
        try:
            conn.execute(f"INSERT INTO {table} SELECT {select} FROM {view}")
        finally:
            conn.unregister(view)
        return lengths.pop()

    def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run a read query and return every row."""
        with self.lock:
            return self.conn.execute(sql, list(params)).fetchall()

    def fetchone(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        """Run a read query and return its first row, or ``None``."""
        with self.lock:
            return self.conn.execute(sql, list(params)).fetchone()
