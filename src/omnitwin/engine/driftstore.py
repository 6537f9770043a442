"""Drift over the store: drift events, scores, and their life cycle.

The comparison itself is :func:`omnitwin.engine.drift.compare`. This module
applies it to stored devices and keeps the ``drift_events`` table in step:

- The twin side is the device's ``twin_state`` plus, when the device has
  intended links, a ``neighbors`` set built from them (each entry
  ``"<local port> <remote host label> <remote port>"``, the form LLDP and
  CDP observations use). A missing or an unexpected link therefore shows up
  as drift of the field ``neighbors`` on each device that reported its
  neighbours. The detected side is ``detected_state`` without its per-source
  bookkeeping (``sources``).
- One divergence of a (device, field) pair has at most one open event.
  Seeing it again updates that event's values and ``last_seen_at``; it never
  opens a second one.
- An open event closes as ``reconciled`` with resolution ``converged`` once
  the field is compared and equal, or ``twin_changed`` once the twin no
  longer sets the field. A field that is simply not observed any more keeps
  its event open, because nothing shows that it converged.
- An ``ignored`` event keeps that divergence quiet while the twin and
  observed values stay the same; other values open a new event. An event
  closed by ``trust_twin`` keeps the divergence quiet until an observation
  newer than the decision shows it again, so that the plan is not undone by
  a re-score of the same stored states.
- Events are never deleted, so the history stays in the table.
"""

from __future__ import annotations

import gc
import json
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import duckdb

from omnitwin._ids import new_id
from omnitwin.engine.audit import AuditEntry, AuditLog
from omnitwin.engine.context import Context
from omnitwin.engine.devices import DeviceService, check_page
from omnitwin.engine.drift import DEFAULT_IGNORED, flatten
from omnitwin.engine.drift import _matches_any as matches_any
from omnitwin.engine.drift import _validate_weights as validate_weights
from omnitwin.engine.drift import _values_equal as values_equal
from omnitwin.engine.drift import _weight_for as weight_for
from omnitwin.engine.store import Store, utc_now
from omnitwin.errors import InvalidTransition, NotFound, ValidationError
from omnitwin.models import DRIFT_STATUSES, DriftEvent, Page

__all__ = ["DRIFT_SCHEMA", "DriftService", "EvaluationResult", "effective_twin"]

fast_loads: Callable[[str], Any] = json.loads
try:  # orjson parses the stored states several times faster than json.
    import orjson

    fast_loads = orjson.loads
except ImportError:  # pragma: no cover - orjson is a declared dependency
    pass

logger = logging.getLogger(__name__)

DRIFT_SCHEMA = """
CREATE TABLE IF NOT EXISTS drift_events (
    id VARCHAR NOT NULL,
    workspace VARCHAR NOT NULL,
    device_id VARCHAR NOT NULL,
    field VARCHAR NOT NULL,
    twin_value VARCHAR,
    actual_value VARCHAR,
    detected_at VARCHAR NOT NULL,
    last_seen_at VARCHAR,
    status VARCHAR NOT NULL,
    resolution VARCHAR,
    resolved_at VARCHAR,
    resolved_by VARCHAR
);
"""

# Keys of detected_state that describe observations rather than the device.
BOOKKEEPING_KEYS = ("sources",)

_EVENT_COLUMNS = (
    "e.id, e.device_id, e.field, e.twin_value, e.actual_value, e.detected_at, "
    "e.status, e.resolution, e.last_seen_at, e.resolved_at, d.hostname"
)

# Intended neighbours of every device, in the form LLDP observations use.
_NEIGHBORS_SQL = """
SELECT l.a AS device, l.port_a || ' ' || rb.host_label || ' ' || l.port_b AS name
FROM links l JOIN devices rb ON rb.workspace = l.workspace AND rb.id = l.b
WHERE l.workspace = ? AND l.kind = 'intended'
  AND l.port_a IS NOT NULL AND l.port_b IS NOT NULL {filter_a}
UNION ALL
SELECT l.b, l.port_b || ' ' || ra.host_label || ' ' || l.port_a
FROM links l JOIN devices ra ON ra.workspace = l.workspace AND ra.id = l.a
WHERE l.workspace = ? AND l.kind = 'intended'
  AND l.port_a IS NOT NULL AND l.port_b IS NOT NULL {filter_b}
"""


def effective_twin(
    twin_state: Mapping[str, Any], intended_neighbors: Iterable[str] | None
) -> dict[str, Any]:
    """Return the twin side of the comparison: twin state plus link neighbours.

    Examples
    --------
    >>> effective_twin({"os_version": "4.30"}, ["Ethernet1 spine2 Ethernet1"])
    {'os_version': '4.30', 'neighbors': ['Ethernet1 spine2 Ethernet1']}
    >>> effective_twin({"os_version": "4.30"}, None)
    {'os_version': '4.30'}
    """
    twin = dict(twin_state)
    names = sorted(set(intended_neighbors or ()))
    if names:
        twin["neighbors"] = names
    return twin


def detected_view(detected_state: Mapping[str, Any]) -> dict[str, Any]:
    """Return the detected state without per-source bookkeeping."""
    return {k: v for k, v in detected_state.items() if k not in BOOKKEEPING_KEYS}


@dataclass(slots=True)
class EvaluationResult:
    """Counts of one drift evaluation: devices scored, events opened and closed."""

    devices: int = 0
    drifted: int = 0
    opened: int = 0
    closed: int = 0
    opened_ids: list[str] = field(default_factory=list)


@dataclass(slots=True)
class _Known:
    """The open event and the latest closed event of one (device, field)."""

    open: tuple[str, str, str] | None = None
    closed: tuple[str, str | None, str, str, str | None] | None = None


def _dump(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def _event_from_row(row: tuple[Any, ...]) -> DriftEvent:
    return DriftEvent(
        id=row[0],
        device_id=row[1],
        field=row[2],
        twin_value=None if row[3] is None else json.loads(row[3]),
        actual_value=None if row[4] is None else json.loads(row[4]),
        detected_at=row[5],
        status=row[6],
        resolution=row[7],
        last_seen_at=row[8],
        resolved_at=row[9],
        hostname=row[10],
    )


class DriftService:
    """Score devices and keep their drift events.

    Parameters
    ----------
    store, audit : Store, AuditLog
        The store and its audit trail.
    devices : DeviceService
        The device service; its twin-change hook re-evaluates drift.
    ignore : iterable of str
        Paths or patterns never compared (default: ``uptime_s``).
    weights : mapping of str to float, optional
        Weight per path or pattern, as in :func:`~omnitwin.engine.drift.compare`.
    """

    def __init__(
        self,
        store: Store,
        audit: AuditLog,
        devices: DeviceService,
        *,
        ignore: Iterable[str] = DEFAULT_IGNORED,
        weights: Mapping[str, float] | None = None,
    ) -> None:
        self.store = store
        self.audit = audit
        self.devices = devices
        self.ignored_paths = tuple(ignore)
        self.weights = dict(weights or {})
        self.weight_rules = validate_weights(self.weights)
        self._rules: dict[str, float] = {}
        store.ensure_schema(DRIFT_SCHEMA)
        devices.twin_change_hooks.append(self._on_twin_change)

    def _on_twin_change(
        self, conn: duckdb.DuckDBPyConnection, ctx: Context, ids: list[str]
    ) -> None:
        self.evaluate(conn, ctx, ids)

    # -- evaluation --------------------------------------------------------

    def evaluate(
        self,
        conn: duckdb.DuckDBPyConnection,
        ctx: Context,
        device_ids: list[str] | None = None,
    ) -> EvaluationResult:
        """Re-score devices and open or close their events, in the caller's transaction.

        Parameters
        ----------
        conn : duckdb.DuckDBPyConnection
            The connection of an open :meth:`Store.transaction`.
        ctx : Context
            The caller; its workspace selects the devices.
        device_ids : list of str, optional
            The devices to evaluate; None evaluates every device of the
            workspace with a fixed number of queries.
        """
        states = self._load_states(conn, ctx.workspace, device_ids)
        neighbors = self._load_neighbors(conn, ctx.workspace, device_ids)
        known = self._load_known(conn, ctx.workspace, device_ids)
        now = utc_now()
        result = EvaluationResult(devices=len(states))
        scores: dict[str, float | None] = {}
        new_rows: list[list[Any]] = []
        updates: list[tuple[str, str, str]] = []
        closes: list[tuple[str, str]] = []
        for device_id, (twin, detected, old_score, last_seen) in states.items():
            names = neighbors.get(device_id)
            if names:
                twin["neighbors"] = sorted(set(names))
            differences, score = self._compare_flat(twin, detected)
            if score != old_score:
                scores[device_id] = score
            if differences:
                result.drifted += 1
            device_known = known.get(device_id, {})
            for path, twin_value, actual in differences:
                twin_text, actual_text = _dump(twin_value), _dump(actual)
                entry = device_known.get(path, _Known())
                if entry.open is not None:
                    if (twin_text, actual_text) != entry.open[1:]:
                        updates.append((entry.open[0], twin_text, actual_text))
                    continue
                if _suppressed(entry, twin_text, actual_text, last_seen):
                    continue
                event_id = new_id("dr")
                new_rows.append(
                    [event_id, ctx.workspace, device_id, path, twin_text, actual_text]
                )
                result.opened_ids.append(event_id)
            if not device_known:
                continue
            diverging = {path for path, _, _ in differences}
            for path, entry in device_known.items():
                if entry.open is None or path in diverging:
                    continue
                if path not in twin:
                    closes.append((entry.open[0], "twin_changed"))
                elif path in detected:
                    closes.append((entry.open[0], "converged"))
        self._write(conn, ctx, now, scores, new_rows, updates, closes)
        result.opened, result.closed = len(new_rows), len(closes)
        return result

    def _compare_flat(
        self, twin: dict[str, Any], detected: dict[str, Any]
    ) -> tuple[list[tuple[str, Any, Any]], float | None]:
        """Compare flattened states exactly as :func:`drift.compare` does.

        Per-path ignore and weight decisions are cached, because the same
        paths repeat across devices; this keeps a re-score of 100,000
        devices within seconds.
        """
        rules = self._rules
        differences = []
        total = diverging = 0.0
        for path in twin.keys() & detected.keys():
            weight = rules.get(path)
            if weight is None:
                weight = rules[path] = self._rule(path)
            if weight < 0:
                continue
            total += weight
            twin_value, actual = twin[path], detected[path]
            # Inline fast path; values_equal settles mixed types (True vs 1).
            if twin_value == actual and type(twin_value) is type(actual):
                continue
            if not values_equal(twin_value, actual):
                differences.append((path, twin_value, actual))
                diverging += weight
        differences.sort()
        return differences, (diverging / total if total > 0 else None)

    def _rule(self, path: str) -> float:
        if matches_any(path, self.ignored_paths):
            return -1.0
        return weight_for(path, self.weight_rules)

    def _load_states(
        self,
        conn: duckdb.DuckDBPyConnection,
        workspace: str,
        device_ids: list[str] | None,
    ) -> dict[str, tuple[dict[str, Any], dict[str, Any], float | None, str]]:
        """Return id -> (flat twin, flat detected, stored score, last ingest time)."""
        sql = (
            "SELECT id, twin_flat, detected_flat, drift_score, observed_at, "
            "CASE WHEN twin_flat IS NULL THEN twin_state END, "
            "CASE WHEN detected_flat IS NULL THEN detected_state END "
            "FROM devices WHERE workspace = ?"
        )
        params: list[Any] = [workspace]
        if device_ids is not None:
            sql += " AND id IN (SELECT unnest(?::VARCHAR[]))"
            params.append(list(device_ids))
        loads = fast_loads
        states = {}
        for row in conn.execute(sql, params).fetchall():
            twin = loads(row[1]) if row[1] is not None else flatten(loads(row[5]))
            if row[2] is not None:
                detected = loads(row[2])
            else:
                detected = flatten(detected_view(loads(row[6])))
            states[row[0]] = (twin, detected, row[3], row[4] or "")
        return states

    @staticmethod
    def _load_neighbors(
        conn: duckdb.DuckDBPyConnection,
        workspace: str,
        device_ids: list[str] | None,
    ) -> dict[str, list[str]]:
        neighbors: dict[str, list[str]] = {}
        if device_ids is None:
            # Every device: join in Python, which is faster than building
            # the names in SQL for tens of thousands of links.
            labels = dict(
                conn.execute(
                    "SELECT id, host_label FROM devices WHERE workspace = ?",
                    [workspace],
                ).fetchall()
            )
            links = conn.execute(
                "SELECT a, port_a, b, port_b FROM links WHERE workspace = ? "
                "AND kind = 'intended' AND port_a IS NOT NULL "
                "AND port_b IS NOT NULL",
                [workspace],
            ).fetchall()
            for a, port_a, b, port_b in links:
                neighbors.setdefault(a, []).append(f"{port_a} {labels[b]} {port_b}")
                neighbors.setdefault(b, []).append(f"{port_b} {labels[a]} {port_a}")
            return neighbors
        ids = list(device_ids)
        sql = _NEIGHBORS_SQL.format(
            filter_a="AND l.a IN (SELECT unnest(?::VARCHAR[]))",
            filter_b="AND l.b IN (SELECT unnest(?::VARCHAR[]))",
        )
        rows = conn.execute(sql, [workspace, ids, workspace, ids]).fetchall()
        for device, name in rows:
            neighbors.setdefault(device, []).append(name)
        return neighbors

    @staticmethod
    def _load_known(
        conn: duckdb.DuckDBPyConnection,
        workspace: str,
        device_ids: list[str] | None,
    ) -> dict[str, dict[str, _Known]]:
        # Open events, plus the latest closed event of each (device, field).
        sql = (
            "SELECT device_id, field, id, status, resolution, twin_value, "
            "actual_value, resolved_at FROM drift_events WHERE workspace = ?"
        )
        params: list[Any] = [workspace]
        if device_ids is not None:
            sql += " AND device_id IN (SELECT unnest(?::VARCHAR[]))"
            params.append(list(device_ids))
        sql += " ORDER BY device_id, field, detected_at, id"
        known: dict[str, dict[str, _Known]] = {}
        for row in conn.execute(sql, params).fetchall():
            device_id, path, event_id, status, resolution, twin, actual, at = row
            entry = known.setdefault(device_id, {}).setdefault(path, _Known())
            if status == "open":
                entry.open = (event_id, twin, actual)
            else:
                entry.closed = (status, resolution, twin, actual, at)
        return known

    def _write(
        self,
        conn: duckdb.DuckDBPyConnection,
        ctx: Context,
        now: str,
        scores: dict[str, float | None],
        new_rows: list[list[Any]],
        updates: list[tuple[str, str, str]],
        closes: list[tuple[str, str]],
    ) -> None:
        if scores:
            conn.execute(
                "UPDATE devices SET drift_score = s.score FROM (SELECT "
                "unnest(?::VARCHAR[]) AS id, unnest(?::DOUBLE[]) AS score) s "
                "WHERE devices.workspace = ? AND devices.id = s.id",
                [list(scores), list(scores.values()), ctx.workspace],
            )
            # Topology nodes carry the score, so the cached graph must go.
            self.devices.notify_commit(ctx.workspace)
        if new_rows:
            columns = list(zip(*new_rows, strict=True))
            conn.execute(
                "INSERT INTO drift_events SELECT unnest(?::VARCHAR[]), "
                "unnest(?::VARCHAR[]), unnest(?::VARCHAR[]), unnest(?::VARCHAR[]), "
                "unnest(?::VARCHAR[]), unnest(?::VARCHAR[]), ?, ?, 'open', NULL, "
                "NULL, NULL",
                [*(list(c) for c in columns), now, now],
            )
        if updates:
            ids, twins, actuals = (list(c) for c in zip(*updates, strict=True))
            conn.execute(
                "UPDATE drift_events SET twin_value = u.twin, actual_value = u.actual, "
                "last_seen_at = ? FROM (SELECT unnest(?::VARCHAR[]) AS id, "
                "unnest(?::VARCHAR[]) AS twin, unnest(?::VARCHAR[]) AS actual) u "
                "WHERE drift_events.id = u.id",
                [now, ids, twins, actuals],
            )
        if closes:
            ids, resolutions = (list(c) for c in zip(*closes, strict=True))
            conn.execute(
                "UPDATE drift_events SET status = 'reconciled', resolution = c.r, "
                "resolved_at = ?, resolved_by = ? FROM (SELECT unnest(?::VARCHAR[]) "
                "AS id, unnest(?::VARCHAR[]) AS r) c WHERE drift_events.id = c.id",
                [now, ctx.actor, ids, resolutions],
            )

    def rescore_all(self, ctx: Context) -> dict[str, Any]:
        """Score every device of the workspace and sync its events in one pass.

        The store is read with three queries (devices, intended links, events)
        whatever the number of devices, and written with one statement per
        kind of change.

        Returns
        -------
        dict
            ``devices``, ``drifted``, ``opened``, ``closed`` and ``seconds``.

        Examples
        --------
        >>> from omnitwin.engine.engine import Engine
        >>> engine = Engine(":memory:")
        >>> engine.drift.rescore_all(Context())["devices"]
        0
        >>> engine.close()
        """
        started = time.perf_counter()
        # The pass builds a few million short-lived objects, and pausing the
        # cyclic garbage collector meanwhile saves a noticeable share of it.
        collecting = gc.isenabled()
        gc.disable()
        try:
            with self.store.transaction() as conn:
                result = self.evaluate(conn, ctx, None)
        finally:
            if collecting:
                gc.enable()
        seconds = time.perf_counter() - started
        logger.info(
            "re-scored %d devices in %.2f s: %d drifted, %d events opened, %d closed",
            result.devices,
            seconds,
            result.drifted,
            result.opened,
            result.closed,
        )
        return {
            "devices": result.devices,
            "drifted": result.drifted,
            "opened": result.opened,
            "closed": result.closed,
            "seconds": round(seconds, 3),
        }

    # -- reading -----------------------------------------------------------

    def events(
        self,
        ctx: Context,
        *,
        device: str | None = None,
        status: str | None = None,
        field: str | None = None,
        page: int = 1,
        per_page: int = 50,
    ) -> Page[DriftEvent]:
        """List drift events, newest first.

        Parameters
        ----------
        device : str, optional
            A device id or hostname.
        status : {"open", "reconciled", "ignored"}, optional
            Only events with this status.
        field : str, optional
            A dotted path; also matches the fields below it.
        page, per_page : int
            Page number from 1 and page size from 1 to 200.
        """
        check_page(page, per_page)
        where = ["e.workspace = ?"]
        params: list[Any] = [ctx.workspace]
        if device is not None:
            where.append("e.device_id = ?")
            params.append(self.devices.get(ctx, device).id)
        if status is not None:
            where.append("e.status = ?")
            params.append(_check_status(status))
        if field is not None:
            where.append("(e.field = ? OR starts_with(e.field, ?))")
            params += [field, field + "."]
        clause = " AND ".join(where)
        joined = (
            "FROM drift_events e JOIN devices d ON d.workspace = e.workspace "
            "AND d.id = e.device_id"
        )
        count = self.store.fetchone(f"SELECT count(*) {joined} WHERE {clause}", params)
        rows = self.store.fetchall(
            f"SELECT {_EVENT_COLUMNS} {joined} WHERE {clause} "
            "ORDER BY e.detected_at DESC, e.id DESC LIMIT ? OFFSET ?",
            [*params, per_page, (page - 1) * per_page],
        )
        events = [_event_from_row(row) for row in rows]
        return Page(events, int(count[0]) if count else 0, page, per_page)

    def get_event(self, ctx: Context, event_id: str) -> DriftEvent:
        """Return one drift event of the workspace, else raise NotFound."""
        row = self.store.fetchone(
            f"SELECT {_EVENT_COLUMNS} FROM drift_events e JOIN devices d "
            "ON d.workspace = e.workspace AND d.id = e.device_id "
            "WHERE e.workspace = ? AND e.id = ?",
            [ctx.workspace, event_id],
        )
        if row is None:
            message = f"drift event {event_id!r} not found; list drift events"
            raise NotFound(message, details={"id": event_id})
        return _event_from_row(row)

    def open_events(
        self, conn: duckdb.DuckDBPyConnection, ctx: Context, device_id: str
    ) -> list[DriftEvent]:
        """Return the open events of a device inside a transaction, by field."""
        rows = conn.execute(
            f"SELECT {_EVENT_COLUMNS} FROM drift_events e JOIN devices d "
            "ON d.workspace = e.workspace AND d.id = e.device_id "
            "WHERE e.workspace = ? AND e.device_id = ? AND e.status = 'open' "
            "ORDER BY e.field",
            [ctx.workspace, device_id],
        ).fetchall()
        return [_event_from_row(row) for row in rows]

    # -- decisions ---------------------------------------------------------

    def ignore(
        self, ctx: Context, event_id: str, *, reason: str | None = None
    ) -> DriftEvent:
        """Mark an open event ``ignored`` and audit the decision.

        The same divergence (same twin and observed values) stays quiet
        afterwards; a different observed value opens a new event.

        Raises
        ------
        NotFound
            If the event does not exist.
        InvalidTransition
            If the event is not open.
        """
        with self.store.transaction() as conn:
            event = self.get_event(ctx, event_id)
            if event.status != "open":
                message = (
                    f"drift event {event_id} is {event.status}; only open events "
                    "can be ignored"
                )
                raise InvalidTransition(message, details={"status": event.status})
            self.close(conn, ctx, [event], "ignored", reason or "ignored")
        return self.get_event(ctx, event_id)

    def close(
        self,
        conn: duckdb.DuckDBPyConnection,
        ctx: Context,
        events: list[DriftEvent],
        status: str,
        resolution: str,
    ) -> None:
        """Close events with a status and resolution, and audit each closure."""
        if not events:
            return
        now = utc_now()
        conn.execute(
            "UPDATE drift_events SET status = ?, resolution = ?, resolved_at = ?, "
            "resolved_by = ? WHERE workspace = ? AND id IN "
            "(SELECT unnest(?::VARCHAR[]))",
            [status, resolution, now, ctx.actor, ctx.workspace, [e.id for e in events]],
        )
        entries = [
            AuditEntry(
                event.device_id,
                f"drift.{status}",
                ctx.actor,
                ctx.intent,
                {
                    "before": {
                        "event": event.id,
                        "field": event.field,
                        "status": "open",
                    },
                    "after": {"status": status, "resolution": resolution},
                },
            )
            for event in events
        ]
        self.audit.append_many(conn, ctx.workspace, entries)


def _check_status(status: str) -> str:
    if status not in DRIFT_STATUSES:
        message = f"invalid drift status {status!r}; use {', '.join(DRIFT_STATUSES)}"
        raise ValidationError(message, details={"status": status})
    return status


def _suppressed(
    entry: _Known, twin_text: str, actual_text: str, last_seen: str
) -> bool:
    """Return whether a closed event keeps this divergence from opening an event."""
    if entry.closed is None:
        return False
    status, resolution, twin, actual, resolved_at = entry.closed
    if (twin, actual) != (twin_text, actual_text):
        return False
    if status == "ignored":
        return True
    return resolution == "trust_twin" and last_seen <= (resolved_at or "")
