"""Reconcile: resolve a device's open drift events as a background job.

Strategies:

``trust_detected``
    The twin takes the observed value of each field (audited as
    ``device.reconcile``), and the events close as ``reconciled``. For the
    field ``neighbors`` the intended links of the device change instead:
    links that were not observed are removed and observed links between
    known devices become intended links.
``trust_twin``
    The twin is kept as it is. A remediation plan with one step per field is stored in
    ``remediation_plans`` and in the job result, and the events close as
    ``reconciled`` with resolution ``trust_twin``.
``interactive``
    The job stops in ``awaiting_review`` with one proposal per field; its
    result lists them. :meth:`ReconcileService.decide` takes a choice per
    field (``"twin"``, ``"detected"`` or ``"ignore"``), applies it and
    completes the job. Fields without a decision stay open.

``fields`` limits the work to the given dotted paths and the fields below
them (``"interfaces"`` covers ``interfaces.Ethernet1.mtu``). Progress is the
number of fields done out of the number selected, readable with
``jobs.get`` and streamed by ``jobs.watch``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from typing import Any

import duckdb

from omnitwin._ids import new_id
from omnitwin.engine.audit import AuditEntry, AuditLog
from omnitwin.engine.context import Context
from omnitwin.engine.devices import DeviceService, set_path
from omnitwin.engine.driftstore import DriftService
from omnitwin.engine.jobs import Job, JobHandle, JobRunner
from omnitwin.engine.store import Store, utc_now
from omnitwin.engine.topostore import TopologyService, link_ends
from omnitwin.errors import NotFound, ValidationError
from omnitwin.models import DriftEvent

__all__ = ["DECISIONS", "STRATEGIES", "ReconcileService"]

logger = logging.getLogger(__name__)

STRATEGIES = ("trust_detected", "trust_twin", "interactive")
DECISIONS = ("twin", "detected", "ignore")

REMEDIATION_SCHEMA = """
CREATE TABLE IF NOT EXISTS remediation_plans (
    id VARCHAR NOT NULL,
    workspace VARCHAR NOT NULL,
    device_id VARCHAR NOT NULL,
    job_id VARCHAR,
    steps VARCHAR NOT NULL,
    created_by VARCHAR NOT NULL,
    created_at VARCHAR NOT NULL
);
"""


def _selected(event: DriftEvent, fields: list[str] | None) -> bool:
    if fields is None:
        return True
    return any(event.field == f or event.field.startswith(f + ".") for f in fields)


def remediation_step(event: DriftEvent) -> dict[str, Any]:
    """Describe how to bring the device back to the twin's value of one field."""
    action = (
        f"set {event.field} to {json.dumps(event.twin_value)} on the device "
        f"(observed {json.dumps(event.actual_value)})"
    )
    if event.field == "neighbors":
        twin = set(event.twin_value or [])
        seen = set(event.actual_value or [])
        missing, extra = sorted(twin - seen), sorted(seen - twin)
        action = (
            f"restore links {missing or 'none'}; remove or document unexpected "
            f"links {extra or 'none'}"
        )
    elif event.field.endswith(".oper_up") and event.twin_value is True:
        action = f"bring {event.field.rsplit('.', 1)[0]} up: check cable and optics"
    return {
        "field": event.field,
        "twin_value": event.twin_value,
        "actual_value": event.actual_value,
        "action": action,
    }


class ReconcileService:
    """Start reconcile jobs and apply interactive decisions."""

    def __init__(
        self,
        store: Store,
        audit: AuditLog,
        devices: DeviceService,
        drift: DriftService,
        topology: TopologyService,
        jobs: JobRunner,
    ) -> None:
        self.store = store
        self.audit = audit
        self.devices = devices
        self.drift = drift
        self.topology = topology
        self.jobs = jobs
        store.ensure_schema(REMEDIATION_SCHEMA)

    def reconcile(
        self,
        ctx: Context,
        device_id: str,
        strategy: str,
        fields: Iterable[str] | None = None,
    ) -> Job:
        """Start reconciling a device's open drift; return the queued job at once.

        Parameters
        ----------
        device_id : str
            A device id or hostname.
        strategy : {"trust_detected", "trust_twin", "interactive"}
            How to resolve each field (see the module docstring).
        fields : iterable of str, optional
            Dotted paths to reconcile; None takes every open event.

        Raises
        ------
        ValidationError
            An unknown strategy or an empty field list.
        NotFound
            If the device does not exist.
        """
        if strategy not in STRATEGIES:
            message = (
                f"invalid strategy {strategy!r}; use one of {', '.join(STRATEGIES)}"
            )
            raise ValidationError(message, details={"strategy": strategy})
        chosen = None if fields is None else [str(f) for f in fields]
        if chosen is not None and not chosen:
            raise ValidationError("fields is empty; pass None to reconcile every field")
        device = self.devices.get(ctx, device_id)
        params = {"device_id": device.id, "strategy": strategy, "fields": chosen}

        def work(handle: JobHandle) -> dict[str, Any]:
            return self._run(handle, device.id, strategy, chosen)

        return self.jobs.submit(ctx, "reconcile", params, work)

    def _run(
        self,
        handle: JobHandle,
        device_id: str,
        strategy: str,
        fields: list[str] | None,
    ) -> dict[str, Any]:
        ctx = handle.context
        with self.store.transaction() as conn:
            events = [
                e
                for e in self.drift.open_events(conn, ctx, device_id)
                if _selected(e, fields)
            ]
        handle.progress(0, len(events))
        if strategy == "interactive":
            proposals = [
                {
                    "field": e.field,
                    "event_id": e.id,
                    "twin_value": e.twin_value,
                    "actual_value": e.actual_value,
                    "options": list(DECISIONS),
                }
                for e in events
            ]
            return {
                "_status": "awaiting_review",
                "device_id": device_id,
                "strategy": strategy,
                "proposals": proposals,
            }
        decisions = {
            e.field: "detected" if strategy == "trust_detected" else "twin"
            for e in events
        }
        return self._apply(handle, device_id, strategy, events, decisions)

    def _apply(
        self,
        handle: JobHandle,
        device_id: str,
        strategy: str,
        events: list[DriftEvent],
        decisions: Mapping[str, str],
    ) -> dict[str, Any]:
        ctx = handle.context
        applied: list[dict[str, Any]] = []
        steps: list[dict[str, Any]] = []
        plan_id = None
        total = len(events)
        for done, event in enumerate(events, start=1):
            choice = decisions.get(event.field)
            if choice is None:
                continue
            with self.store.transaction() as conn:
                if choice == "detected":
                    self._take_detected(conn, ctx, device_id, event)
                    self.drift.close(conn, ctx, [event], "reconciled", "trust_detected")
                elif choice == "twin":
                    steps.append(remediation_step(event))
                    self.drift.close(conn, ctx, [event], "reconciled", "trust_twin")
                else:
                    self.drift.close(conn, ctx, [event], "ignored", "ignored")
            applied.append({"field": event.field, "decision": choice})
            handle.progress(done, total)
        if steps:
            plan_id = self._store_plan(ctx, device_id, handle.job_id, steps)
        with self.store.transaction() as conn:
            evaluation = self.drift.evaluate(conn, ctx, [device_id])
        score = self.devices.get(ctx, device_id).drift_score
        logger.info(
            "reconcile job %s applied %d decisions to %s",
            handle.job_id,
            len(applied),
            device_id,
        )
        result: dict[str, Any] = {
            "device_id": device_id,
            "strategy": strategy,
            "applied": applied,
            "drift_score": score,
            "reopened": evaluation.opened,
        }
        if plan_id is not None:
            result["remediation_plan"] = {"id": plan_id, "steps": steps}
        return result

    def _take_detected(
        self,
        conn: duckdb.DuckDBPyConnection,
        ctx: Context,
        device_id: str,
        event: DriftEvent,
    ) -> None:
        if event.field == "neighbors":
            self._adopt_detected_links(conn, ctx, device_id)
            return
        before = self.devices.fetch_in(conn, ctx, device_id)
        twin = set_path(before.twin_state, event.field, event.actual_value)
        values = {**before.to_dict(), "twin_state": twin, "updated_at": utc_now()}
        after = type(before).from_dict(values)
        self.devices.write(conn, ctx, before, after, "device.reconcile")

    def _adopt_detected_links(
        self, conn: duckdb.DuckDBPyConnection, ctx: Context, device_id: str
    ) -> None:
        """Make the device's intended links equal to the links it reported."""
        links = self.topology.list_links(ctx, device=device_id)
        detected = {
            link_ends(link): link
            for link in links
            if link.kind == "detected" and link.reported_by == device_id
        }
        intended = {link_ends(link): link for link in links if link.kind == "intended"}
        removed = [link for ends, link in intended.items() if ends not in detected]
        added = [link for ends, link in detected.items() if ends not in intended]
        if removed:
            conn.execute(
                "DELETE FROM links WHERE workspace = ? AND id IN "
                "(SELECT unnest(?::VARCHAR[]))",
                [ctx.workspace, [link.id for link in removed]],
            )
        if added:
            self.topology.add_links(
                ctx,
                [
                    {
                        "a": link.a,
                        "port_a": link.port_a,
                        "b": link.b,
                        "port_b": link.port_b,
                    }
                    for link in added
                ],
            )
        entry = AuditEntry(
            device_id,
            "device.reconcile",
            ctx.actor,
            ctx.intent,
            {
                "before": {"links_removed": [link.to_dict() for link in removed]},
                "after": {"links_added": [link.to_dict() for link in added]},
            },
        )
        self.audit.append(conn, ctx.workspace, entry)
        self.devices.notify_commit(ctx.workspace)

    def _store_plan(
        self, ctx: Context, device_id: str, job_id: str, steps: list[dict[str, Any]]
    ) -> str:
        plan_id = new_id("rp")
        with self.store.transaction() as conn:
            conn.execute(
                "INSERT INTO remediation_plans VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    plan_id,
                    ctx.workspace,
                    device_id,
                    job_id,
                    json.dumps(steps, sort_keys=True, default=str),
                    ctx.actor,
                    utc_now(),
                ],
            )
            entry = AuditEntry(
                device_id,
                "device.remediation_plan",
                ctx.actor,
                ctx.intent,
                {"before": None, "after": {"plan": plan_id, "steps": steps}},
            )
            self.audit.append(conn, ctx.workspace, entry)
        return plan_id

    def remediation_plans(
        self, ctx: Context, device_id: str | None = None
    ) -> list[dict[str, Any]]:
        """Return stored remediation plans, newest first, optionally of one device."""
        sql = (
            "SELECT id, device_id, job_id, steps, created_by, created_at "
            "FROM remediation_plans WHERE workspace = ?"
        )
        params: list[Any] = [ctx.workspace]
        if device_id is not None:
            sql += " AND device_id = ?"
            params.append(self.devices.get(ctx, device_id).id)
        rows = self.store.fetchall(sql + " ORDER BY created_at DESC, id DESC", params)
        keys = ("id", "device_id", "job_id", "steps", "created_by", "created_at")
        plans = [dict(zip(keys, row, strict=True)) for row in rows]
        for plan in plans:
            plan["steps"] = json.loads(plan["steps"])
        return plans

    def decide(self, ctx: Context, job_id: str, decisions: Mapping[str, str]) -> Job:
        """Apply decisions to an interactive reconcile job waiting for review.

        Parameters
        ----------
        job_id : str
            A job started with ``strategy="interactive"``.
        decisions : mapping of str to str
            Field to ``"twin"``, ``"detected"`` or ``"ignore"``.

        Returns
        -------
        Job
            The job, queued again; it completes once the decisions are applied.

        Raises
        ------
        NotFound
            If the job does not exist or is not a reconcile job.
        ValidationError
            If the job is not waiting for review, a field was not proposed,
            or a decision is unknown.
        """
        job = self.jobs.get(ctx, job_id)
        if job.kind != "reconcile":
            raise NotFound(f"job {job_id} is not a reconcile job")
        proposed = {p["field"]: p for p in job.result.get("proposals", [])}
        for name, choice in decisions.items():
            if name not in proposed:
                message = (
                    f"field {name!r} was not proposed by job {job_id}; "
                    f"proposed fields: {sorted(proposed)}"
                )
                raise ValidationError(message, details={"field": name})
            if choice not in DECISIONS:
                message = f"invalid decision {choice!r} for {name}; use {DECISIONS}"
                raise ValidationError(message, details={"field": name})
        device_id = str(job.params["device_id"])
        chosen = dict(decisions)

        def work(handle: JobHandle) -> dict[str, Any]:
            with self.store.transaction() as conn:
                events = [
                    e
                    for e in self.drift.open_events(conn, handle.context, device_id)
                    if e.field in chosen
                ]
            result = self._apply(handle, device_id, "interactive", events, chosen)
            result["proposals"] = list(proposed.values())
            result["_status"] = "completed"
            return result

        return self.jobs.resume(ctx, job_id, work)
