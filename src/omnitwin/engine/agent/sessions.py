"""Agent sessions and their events in DuckDB.

``agent_sessions`` has one row per session: who issued its commands, the
latest command, status, model, telemetry (JSON) and the time it expires.
``agent_events`` has every event envelope of every command, by ``seq``. Rows
are written by the runtime that produced them and are never deleted, so a
finished session replays exactly what was streamed.
"""

from __future__ import annotations

import builtins
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from omnitwin.engine.context import Context
from omnitwin.engine.store import Store
from omnitwin.errors import NotFound, ValidationError
from omnitwin.models import Page, Session, Telemetry

__all__ = ["IDLE_TIMEOUT", "SESSION_STATUSES", "SessionStore", "format_time"]

IDLE_TIMEOUT = timedelta(hours=24)
SESSION_STATUSES = ("running", "completed", "failed", "expired")

SESSIONS_SCHEMA = """
CREATE TABLE IF NOT EXISTS agent_sessions (
    id VARCHAR NOT NULL,
    workspace VARCHAR NOT NULL,
    actor VARCHAR NOT NULL,
    status VARCHAR NOT NULL,
    command VARCHAR NOT NULL,
    model VARCHAR,
    turns INTEGER NOT NULL,
    last_seq BIGINT NOT NULL,
    telemetry VARCHAR NOT NULL,
    created_at VARCHAR NOT NULL,
    updated_at VARCHAR NOT NULL,
    expires_at VARCHAR NOT NULL
);
CREATE TABLE IF NOT EXISTS agent_events (
    workspace VARCHAR NOT NULL,
    session VARCHAR NOT NULL,
    seq BIGINT NOT NULL,
    type VARCHAR NOT NULL,
    ts VARCHAR NOT NULL,
    body VARCHAR NOT NULL
);
"""

_COLUMNS = (
    "id, status, command, actor, model, turns, last_seq, telemetry, created_at, "
    "updated_at, expires_at"
)


def format_time(moment: datetime) -> str:
    """Return ``moment`` as ISO 8601 UTC with microseconds and ``Z``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _session(row: tuple[Any, ...], now: str) -> Session:
    status = str(row[1])
    expires_at = str(row[10])
    if status != "running" and expires_at <= now:
        status = "expired"
    return Session(
        id=row[0],
        status=status,
        command=row[2],
        actor=row[3],
        model=row[4],
        turns=int(row[5]),
        events=int(row[6]),
        telemetry=Telemetry.from_dict(json.loads(row[7])),
        created_at=row[8],
        updated_at=row[9],
        expires_at=expires_at,
    )


class SessionStore:
    """Read and write the agent tables of one store."""

    def __init__(self, store: Store) -> None:
        self.store = store
        store.ensure_schema(SESSIONS_SCHEMA)
        if not store.read_only:
            # A session still marked running belongs to a process that
            # stopped mid-command, because only one process writes this file.
            # NOTE: this assumes one runtime per engine; a second runtime on
            # the same engine would also mark the first one's running sessions.
            with store.transaction() as conn:
                conn.execute(
                    "UPDATE agent_sessions SET status = 'failed' "
                    "WHERE status = 'running'"
                )

    def get(self, ctx: Context, session_id: str, now: datetime) -> Session:
        """Return a session of the caller's workspace, else raise NotFound."""
        row = self.store.fetchone(
            f"SELECT {_COLUMNS} FROM agent_sessions WHERE workspace = ? AND id = ?",
            [ctx.workspace, session_id],
        )
        if row is None:
            message = (
                f"agent session {session_id!r} not found; list sessions to find "
                "its id, or omit session_id to start a new one"
            )
            raise NotFound(message, details={"id": session_id})
        return _session(row, format_time(now))

    def list(
        self,
        ctx: Context,
        now: datetime,
        *,
        status: str | None = None,
        page: int = 1,
        per_page: int = 50,
    ) -> Page[Session]:
        """List sessions, most recently active first.

        ``status`` is ``active`` (running, or idle for less than 24 hours) or
        one of :data:`SESSION_STATUSES`; None lists every session.
        """
        if status is not None and status not in ("active", *SESSION_STATUSES):
            message = (
                f"invalid session status {status!r}; use active, "
                f"{', '.join(SESSION_STATUSES)}"
            )
            raise ValidationError(message, details={"status": status})
        if page < 1 or not 1 <= per_page <= 200:
            raise ValidationError("page must be 1 or more and per_page 1 to 200")
        stamp = format_time(now)
        where = ["workspace = ?"]
        params: list[Any] = [ctx.workspace]
        if status == "active":
            where.append("(status = 'running' OR expires_at > ?)")
            params.append(stamp)
        elif status == "expired":
            where.append("status <> 'running' AND expires_at <= ?")
            params.append(stamp)
        elif status is not None:
            where.append("status = ?")
            params.append(status)
            if status != "running":
                where.append("expires_at > ?")
                params.append(stamp)
        clause = " AND ".join(where)
        count = self.store.fetchone(
            f"SELECT count(*) FROM agent_sessions WHERE {clause}", params
        )
        rows = self.store.fetchall(
            f"SELECT {_COLUMNS} FROM agent_sessions WHERE {clause} "
            "ORDER BY updated_at DESC, id DESC LIMIT ? OFFSET ?",
            [*params, per_page, (page - 1) * per_page],
        )
        sessions = [_session(row, stamp) for row in rows]
        return Page(sessions, int(count[0]) if count else 0, page, per_page)

    def create(
        self,
        ctx: Context,
        session_id: str,
        command: str,
        model: str | None,
        now: datetime,
    ) -> None:
        """Insert a new session in ``running`` status."""
        stamp, expires = format_time(now), format_time(now + IDLE_TIMEOUT)
        with self.store.transaction() as conn:
            conn.execute(
                "INSERT INTO agent_sessions VALUES "
                "(?, ?, ?, 'running', ?, ?, 1, 0, ?, ?, ?, ?)",
                [
                    session_id,
                    ctx.workspace,
                    ctx.actor,
                    command,
                    model,
                    json.dumps(Telemetry(model=model).to_dict()),
                    stamp,
                    stamp,
                    expires,
                ],
            )

    def resume(
        self, ctx: Context, session_id: str, command: str, now: datetime
    ) -> None:
        """Mark an existing session ``running`` for its next command."""
        with self.store.transaction() as conn:
            conn.execute(
                "UPDATE agent_sessions SET status = 'running', command = ?, "
                "turns = turns + 1, updated_at = ?, expires_at = ? "
                "WHERE workspace = ? AND id = ?",
                [
                    command,
                    format_time(now),
                    format_time(now + IDLE_TIMEOUT),
                    ctx.workspace,
                    session_id,
                ],
            )

    def append_event(self, ctx: Context, event: dict[str, Any]) -> None:
        """Store one event envelope and advance the session's ``last_seq``."""
        body = json.dumps(event["body"], separators=(",", ":"), default=str)
        with self.store.transaction() as conn:
            conn.execute(
                "INSERT INTO agent_events VALUES (?, ?, ?, ?, ?, ?)",
                [
                    ctx.workspace,
                    event["session"],
                    event["seq"],
                    event["type"],
                    event["ts"],
                    body,
                ],
            )
            conn.execute(
                "UPDATE agent_sessions SET last_seq = ? WHERE workspace = ? AND id = ?",
                [event["seq"], ctx.workspace, event["session"]],
            )

    def finish(
        self,
        ctx: Context,
        session_id: str,
        status: str,
        telemetry: Telemetry,
        now: datetime,
    ) -> None:
        """Store the outcome of a command and restart the idle clock."""
        with self.store.transaction() as conn:
            conn.execute(
                "UPDATE agent_sessions SET status = ?, telemetry = ?, model = ?, "
                "updated_at = ?, expires_at = ? WHERE workspace = ? AND id = ?",
                [
                    status,
                    json.dumps(telemetry.to_dict()),
                    telemetry.model,
                    format_time(now),
                    format_time(now + IDLE_TIMEOUT),
                    ctx.workspace,
                    session_id,
                ],
            )

    def events(
        self, ctx: Context, session_id: str, after_seq: int = 0
    ) -> builtins.list[dict[str, Any]]:
        """Return the stored envelopes of a session with ``seq`` above ``after_seq``."""
        rows = self.store.fetchall(
            "SELECT seq, type, ts, body FROM agent_events "
            "WHERE workspace = ? AND session = ? AND seq > ? ORDER BY seq",
            [ctx.workspace, session_id, after_seq],
        )
        return [
            {
                "type": row[1],
                "seq": int(row[0]),
                "session": session_id,
                "ts": row[2],
                "body": json.loads(row[3]),
            }
            for row in rows
        ]
