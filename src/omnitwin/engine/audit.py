"""The append-only audit trail and its hash chain.

Each workspace has one chain: every event stores the hash of the event before
it (``prev_hash``) and its own ``hash`` over its content, so that altering,
removing or reordering a stored row breaks the chain at that row. ``seq``
counts the events of one subject (a subnet id, a device id, ...). This module
has functions to append and read; there is deliberately no update or delete.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import duckdb

from omnitwin.engine.store import Store, utc_now
from omnitwin.models import AuditEvent, AuditVerification, Page

__all__ = ["GENESIS_HASH", "AuditEntry", "AuditLog"]

GENESIS_HASH = "0" * 64
_EVENT_COLUMNS = (
    'subject, seq, action, actor, "at", intent, changes, prev_hash, hash, position'
)


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """An event to append: who did what to which subject, and why."""

    subject: str
    action: str
    actor: str
    intent: str | None
    changes: dict[str, Any]


def _event_hash(
    workspace: str, position: int, event: AuditEntry, seq: int, at: str, prev_hash: str
) -> str:
    payload = json.dumps(
        [
            workspace,
            position,
            event.subject,
            seq,
            event.action,
            event.actor,
            at,
            event.intent,
            event.changes,
            prev_hash,
        ],
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return hashlib.sha256(payload.encode()).hexdigest()


class AuditLog:
    """Append and read audit events of a store."""

    def __init__(self, store: Store) -> None:
        self.store = store
        # workspace -> (last position, last hash); valid while this process is
        # the only writer, which DuckDB's file lock guarantees.
        self._heads: dict[str, tuple[int, str]] = {}
        # Heads written by the open transaction: workspace -> (serial, head).
        self._pending: dict[str, tuple[int, tuple[int, str]]] = {}

    def _head(self, conn: duckdb.DuckDBPyConnection, workspace: str) -> tuple[int, str]:
        pending = self._pending.get(workspace)
        if pending is not None and pending[0] == self.store.transaction_serial:
            return pending[1]
        head = self._heads.get(workspace)
        if head is None:
            row = conn.execute(
                "SELECT position, hash FROM audit_events WHERE workspace = ? "
                "ORDER BY position DESC LIMIT 1",
                [workspace],
            ).fetchall()
            # fetchall, not fetchone: a half-read result blocks a later
            # conn.register() in bulk inserts on the same connection.
            head = (0, GENESIS_HASH) if not row else (int(row[0][0]), str(row[0][1]))
        return head

    def append_many(
        self,
        conn: duckdb.DuckDBPyConnection,
        workspace: str,
        entries: Iterable[AuditEntry],
        *,
        new_subjects: bool = False,
    ) -> int:
        """Append events inside the caller's transaction; return how many.

        ``new_subjects`` skips the per-subject ``seq`` lookup when every
        subject is known to have no events yet (a bulk create).
        """
        position, prev_hash = self._head(conn, workspace)
        at = utc_now()
        rows: list[tuple[Any, ...]] = []
        seqs: dict[str, int] = {}
        for entry in entries:
            if entry.subject not in seqs:
                seqs[entry.subject] = (
                    0
                    if new_subjects
                    else self._last_seq(conn, workspace, entry.subject)
                )
            seqs[entry.subject] += 1
            position += 1
            digest = _event_hash(
                workspace, position, entry, seqs[entry.subject], at, prev_hash
            )
            rows.append(
                (
                    workspace,
                    position,
                    entry.subject,
                    seqs[entry.subject],
                    entry.action,
                    entry.actor,
                    at,
                    entry.intent,
                    json.dumps(entry.changes, sort_keys=True, default=str),
                    prev_hash,
                    digest,
                )
            )
            prev_hash = digest
        if len(rows) > 20:
            names = [
                "workspace",
                "position",
                "subject",
                "seq",
                "action",
                "actor",
                "at",
                "intent",
                "changes",
                "prev_hash",
                "hash",
            ]
            columns = {name: [row[i] for row in rows] for i, name in enumerate(names)}
            self.store.bulk_insert(conn, "audit_events", columns)
        elif rows:
            conn.executemany(
                "INSERT INTO audit_events VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
        if rows:
            new_head = (position, prev_hash)
            self._pending[workspace] = (self.store.transaction_serial, new_head)
            self.store.after_commit(
                lambda: self._heads.__setitem__(workspace, new_head)
            )
        return len(rows)

    def append(
        self, conn: duckdb.DuckDBPyConnection, workspace: str, entry: AuditEntry
    ) -> None:
        """Append one event inside the caller's transaction."""
        self.append_many(conn, workspace, [entry])

    @staticmethod
    def _last_seq(conn: duckdb.DuckDBPyConnection, workspace: str, subject: str) -> int:
        row = conn.execute(
            "SELECT max(seq) FROM audit_events WHERE workspace = ? AND subject = ?",
            [workspace, subject],
        ).fetchall()
        return int(row[0][0]) if row and row[0][0] is not None else 0

    def list(
        self,
        workspace: str,
        *,
        subject: str | None = None,
        actor: str | None = None,
        action: str | None = None,
        page: int = 1,
        per_page: int = 50,
    ) -> Page[AuditEvent]:
        """List events, oldest first, optionally for one subject, actor or action."""
        where = ["workspace = ?"]
        params: list[Any] = [workspace]
        for column, value in (
            ("subject", subject),
            ("actor", actor),
            ("action", action),
        ):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        clause = " AND ".join(where)
        total_row = self.store.fetchone(
            f"SELECT count(*) FROM audit_events WHERE {clause}", params
        )
        total = int(total_row[0]) if total_row else 0
        rows = self.store.fetchall(
            f"SELECT {_EVENT_COLUMNS} FROM audit_events WHERE {clause} "
            "ORDER BY position "
            "LIMIT ? OFFSET ?",
            [*params, per_page, (page - 1) * per_page],
        )
        events = [_row_to_event(row) for row in rows]
        return Page(events, total, page, per_page)

    def verify(self, workspace: str) -> AuditVerification:
        """Recompute the chain of a workspace and report the first broken link."""
        rows = self.store.fetchall(
            f"SELECT {_EVENT_COLUMNS} FROM audit_events WHERE workspace = ? "
            "ORDER BY position",
            [workspace],
        )
        expected_prev = GENESIS_HASH
        for index, row in enumerate(rows, start=1):
            event = _row_to_event(row)
            reason = None
            if event.position != index:
                reason = f"position {event.position} found where {index} was expected"
            elif event.prev_hash != expected_prev:
                reason = "prev_hash does not match the hash of the previous event"
            else:
                entry = AuditEntry(
                    event.subject,
                    event.action,
                    event.actor,
                    event.intent,
                    event.changes,
                )
                digest = _event_hash(
                    workspace,
                    event.position,
                    entry,
                    event.seq,
                    event.at,
                    event.prev_hash,
                )
                if digest != event.hash:
                    reason = "stored hash does not match the event's content"
            if reason is not None:
                return AuditVerification(False, index, index, event.subject, reason)
            expected_prev = event.hash
        return AuditVerification(True, len(rows))


def _row_to_event(row: tuple[Any, ...]) -> AuditEvent:
    return AuditEvent(
        subject=row[0],
        seq=int(row[1]),
        action=row[2],
        actor=row[3],
        at=row[4],
        intent=row[5],
        changes=json.loads(row[6]),
        prev_hash=row[7],
        hash=row[8],
        position=int(row[9]),
    )
