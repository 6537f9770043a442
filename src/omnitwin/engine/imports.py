"""Import jobs: parse a vendor file, plan it, review conflicts, commit atomically.

A job (``imp_`` id) runs on the :class:`~omnitwin.engine.jobs.JobRunner`:
``queued`` -> ``processing`` -> ``committed``, ``awaiting_review`` or
``failed``. Planning parses the file with the pure parsers of
:mod:`omnitwin.engine.importers`, turns records into plan items and finds
conflicts (:mod:`omnitwin.engine.import_conflicts`). A job stops in
``awaiting_review`` when it is a dry run or when it found conflicts. Nothing
is written until :meth:`ImportService.commit`. The commit re-plans against
the current store and writes every accepted row in one transaction, or none.

Rows with errors (bad CIDR, a range that ends outside its network ...) are
listed with their line numbers in the plan and left out. The other rows can
still be committed, unless the job was started with
``options={"on_error": "fail"}``, which fails the job when any row has an
error.

The uploaded bytes are kept in the ``import_uploads`` table so that a
commit re-reads exactly the file that was reviewed. They are stored
compressed with Zstandard (``data_encoding`` ``zstd``): a 47 MB prefix CSV
becomes about 4 MB, which DuckDB writes to its log and checkpoints in a
fraction of the time. The job's first run stores them before it ends, and
the ``data_encoding`` of its ``import_jobs`` row is ``import_uploads`` from
the start. Earlier versions kept the file in ``import_jobs.data``, as
``zlib``, or as ``identity`` when they predate the encoding column.
"""

from __future__ import annotations

import json
import logging
import threading
import zlib
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import duckdb
import orjson
import zstandard

from omnitwin._ids import new_id
from omnitwin.engine.context import Context
from omnitwin.engine.import_addresses import insert_addresses
from omnitwin.engine.import_conflicts import (
    FoundConflict,
    PlanItem,
    apply_resolutions,
    detect_conflicts,
)
from omnitwin.engine.import_fast import plan_staged_csv
from omnitwin.engine.import_plan import (
    ImportPlanDraft,
    build_items,
    cable_links,
    device_values,
    interfaces_by_device,
    merged_record,
    network_order,
    of_kind,
    skip_open_circuits,
    skip_stored_inventory,
    skip_unknown_devices,
    subnet_input,
    subnet_merge,
    summarize_plan,
    vlan_input,
)
from omnitwin.engine.import_sources import SOURCES, Parsed, parse_source
from omnitwin.engine.importers import ParseResult
from omnitwin.engine.importers.records import (
    AddressRecord,
    SiteRecord,
    SubnetRecord,
    VlanRecord,
)
from omnitwin.engine.jobs import JobHandle
from omnitwin.engine.store import utc_now
from omnitwin.engine.subnets import SubnetInput
from omnitwin.engine.vlans import VlanInput
from omnitwin.errors import Conflict, NotFound, ValidationError
from omnitwin.models import ImportConflict, ImportJob, ImportPlan

if TYPE_CHECKING:
    from omnitwin.engine.engine import Engine

__all__ = ["IMPORTS_SCHEMA", "SOURCES", "ImportService"]

logger = logging.getLogger(__name__)

# Zstandard level 1: at 1,000,000 CSV rows it compresses 47 MB to about
# 4 MB in about 0.09 s. zlib level 1, used before, took 0.24 s for 8 MB.
_UPLOAD_COMPRESSION = 1

IMPORTS_SCHEMA = """
CREATE TABLE IF NOT EXISTS import_jobs (
    id VARCHAR NOT NULL,
    workspace VARCHAR NOT NULL,
    source VARCHAR NOT NULL,
    filename VARCHAR,
    dry_run BOOLEAN NOT NULL,
    options VARCHAR NOT NULL,
    data BLOB NOT NULL,
    created_at VARCHAR NOT NULL,
    data_encoding VARCHAR DEFAULT 'identity'
);
ALTER TABLE import_jobs
    ADD COLUMN IF NOT EXISTS data_encoding VARCHAR DEFAULT 'identity';
CREATE TABLE IF NOT EXISTS import_uploads (
    id VARCHAR NOT NULL,
    workspace VARCHAR NOT NULL,
    data BLOB NOT NULL,
    data_encoding VARCHAR NOT NULL
);
CREATE TABLE IF NOT EXISTS import_conflicts (
    id VARCHAR NOT NULL,
    workspace VARCHAR NOT NULL,
    import_id VARCHAR NOT NULL,
    key VARCHAR NOT NULL,
    kind VARCHAR NOT NULL,
    line BIGINT NOT NULL,
    subject VARCHAR NOT NULL,
    message VARCHAR NOT NULL,
    suggestion VARCHAR NOT NULL,
    options VARCHAR NOT NULL,
    existing VARCHAR NOT NULL,
    resolution VARCHAR,
    resolved_by VARCHAR,
    resolved_at VARCHAR
);
"""

_CONFLICT_COLUMNS = (
    "id, import_id, kind, line, subject, message, suggestion, options, existing, "
    "resolution, resolved_by, resolved_at"
)
_PROGRESS_STEPS = 50
_ON_ERROR = ("skip", "fail")


class ImportService:
    """Start, review and commit import jobs over one engine.

    Parameters
    ----------
    engine : Engine
        The engine whose store, jobs and services the imports write through.
        Devices, sites and cables are written only when the engine has the
        ``devices`` (and, for cables, ``topology``) service.

    Examples
    --------
    >>> from omnitwin.engine.engine import Engine
    >>> engine = Engine(":memory:")
    >>> ctx = Context()
    >>> job = engine.imports.start(ctx, "csv", b"cidr\\n10.9.0.0/24\\n")
    >>> engine.imports.wait(ctx, job.id).status
    'committed'
    >>> engine.close()
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.store = engine.store
        self.store.ensure_schema(IMPORTS_SCHEMA)
        self._live: dict[str, ImportJob] = {}
        self._live_lock = threading.Lock()
        #: Called with the count of rows written so far, inside the commit
        #: transaction; tests use it to inject a failure mid-commit.
        self.commit_row_hook: Callable[[int], None] | None = None

    # -- public API ------------------------------------------------------

    def start(
        self,
        ctx: Context,
        source: str,
        data: bytes,
        *,
        dry_run: bool = False,
        filename: str | None = None,
        options: dict[str, Any] | None = None,
    ) -> ImportJob:
        """Queue an import of ``data`` from ``source`` and return the job at once.

        Parameters
        ----------
        ctx : Context
            The caller; the actor is recorded on every audit event written.
        source : str
            One of ``csv``, ``infoblox``, ``bluecat``, ``phpipam``, ``netbox``.
        data : bytes
            The file content. A first character of ``[`` or ``{`` marks
            JSON, anything else CSV.
        dry_run : bool
            Plan and report conflicts, then stop in ``awaiting_review``
            without writing; :meth:`commit` writes the reviewed plan.
        filename : str, optional
            Shown with the job.
        options : dict, optional
            ``on_error``: ``"skip"`` (default) leaves rows with errors out;
            ``"fail"`` fails the job when any row has an error.

        Returns
        -------
        ImportJob
            The queued job; poll :meth:`get` or block on :meth:`wait`.

        Raises
        ------
        ValidationError
            An unknown source or option, or data that is not bytes.
        """
        options = _check_start(source, data, options)
        import_id = new_id("imp")
        data = bytes(data)
        # The upload is compressed on another thread while the job plans, and
        # the job stores it in import_uploads before it ends.
        upload = _compress_upload(data)
        values = [
            import_id,
            ctx.workspace,
            source,
            filename,
            dry_run,
            json.dumps(options),
            utc_now(),
        ]

        def insert_job(conn: duckdb.DuckDBPyConnection) -> None:
            conn.execute(
                "INSERT INTO import_jobs (id, workspace, source, filename, "
                "dry_run, options, data, created_at, data_encoding) "
                "VALUES (?, ?, ?, ?, ?, ?, ''::BLOB, ?, 'import_uploads')",
                values,
            )

        params = {"source": source, "filename": filename, "dry_run": dry_run}
        # The import row is written with the job's row, so the worker finds
        # it. The first run takes the bytes from memory, and a commit reads
        # them from import_uploads.
        payload = (source, data, options)
        job = self.engine.jobs.submit(
            ctx,
            "import",
            params,
            lambda handle: self._run(
                handle,
                handle.job_id,
                commit=not dry_run,
                payload=payload,
                upload=upload,
            ),
            job_id=import_id,
            setup=insert_job,
        )
        logger.info("import %s of %s queued (dry_run=%s)", job.id, source, dry_run)
        return self.get(ctx, job.id)

    def get(self, ctx: Context, import_id: str) -> ImportJob:
        """Return an import job with its status, progress and plan."""
        with self._live_lock:
            live = self._live.get(import_id)
        if live is not None:
            return live
        meta = self.store.fetchone(
            "SELECT source, filename, dry_run FROM import_jobs "
            "WHERE workspace = ? AND id = ?",
            [ctx.workspace, import_id],
        )
        if meta is None:
            message = f"import {import_id!r} not found; start an import first"
            raise NotFound(message, details={"id": import_id})
        job = self.engine.jobs.get(ctx, import_id)
        plan = job.result.get("plan")
        return ImportJob(
            id=job.id,
            source=meta[0],
            status=job.status,
            dry_run=bool(meta[2]),
            filename=meta[1],
            processed=job.processed,
            total=job.total,
            plan=ImportPlan.from_dict(plan) if plan else None,
            open_conflicts=self._open_count(ctx.workspace, import_id),
            error=job.error,
            actor=job.actor,
            created_at=job.created_at,
            updated_at=job.updated_at,
        )

    def wait(
        self, ctx: Context, import_id: str, *, timeout: float = 600.0
    ) -> ImportJob:
        """Block until the job is committed, failed or awaiting review; return it."""
        self.get(ctx, import_id)
        self.engine.jobs.wait(ctx, import_id, timeout=timeout)
        return self.get(ctx, import_id)

    def conflicts(
        self, ctx: Context, import_id: str, *, open_only: bool = False
    ) -> list[ImportConflict]:
        """Return the conflicts of a job in line order."""
        self.get(ctx, import_id)
        where = " AND resolution IS NULL" if open_only else ""
        rows = self.store.fetchall(
            f"SELECT {_CONFLICT_COLUMNS} FROM import_conflicts "
            f"WHERE workspace = ? AND import_id = ?{where} ORDER BY line, kind, id",
            [ctx.workspace, import_id],
        )
        return [_to_conflict(row) for row in rows]

    def resolve(
        self, ctx: Context, import_id: str, conflict_id: str, resolution: str
    ) -> ImportConflict:
        """Choose the resolution of one conflict; the commit applies it.

        Raises
        ------
        NotFound
            No such conflict in this job.
        ValidationError
            The resolution is not one of the conflict's ``options``, or the
            job is no longer awaiting review.
        """
        job = self.get(ctx, import_id)
        _check_reviewable(job)
        row = self.store.fetchone(
            f"SELECT {_CONFLICT_COLUMNS} FROM import_conflicts "
            "WHERE workspace = ? AND import_id = ? AND id = ?",
            [ctx.workspace, import_id, conflict_id],
        )
        if row is None:
            message = f"conflict {conflict_id!r} not found in import {import_id}"
            raise NotFound(message, details={"id": conflict_id})
        conflict = _to_conflict(row)
        if resolution not in conflict.options:
            message = (
                f"invalid resolution {resolution!r} for a {conflict.kind} conflict; "
                f"use one of {', '.join(conflict.options)}"
            )
            raise ValidationError(message, details={"options": conflict.options})
        now = utc_now()
        with self.store.transaction() as conn:
            conn.execute(
                "UPDATE import_conflicts SET resolution = ?, resolved_by = ?, "
                "resolved_at = ? WHERE workspace = ? AND id = ?",
                [resolution, ctx.actor, now, ctx.workspace, conflict_id],
            )
        return replace(conflict, resolution=resolution, resolved_by=ctx.actor,
                       resolved_at=now)  # fmt: skip

    def commit(
        self, ctx: Context, import_id: str, *, accept_suggestions: bool = False
    ) -> ImportJob:
        """Resume a job awaiting review: re-plan, then write it in one transaction.

        Parameters
        ----------
        accept_suggestions : bool
            Resolve every open conflict with its suggestion first.

        Raises
        ------
        Conflict
            Conflicts are still open and ``accept_suggestions`` is false.
        ValidationError
            The job is not awaiting review.
        """
        job = self.get(ctx, import_id)
        _check_reviewable(job)
        if accept_suggestions:
            with self.store.transaction() as conn:
                conn.execute(
                    "UPDATE import_conflicts SET resolution = suggestion, "
                    "resolved_by = ?, resolved_at = ? WHERE workspace = ? "
                    "AND import_id = ? AND resolution IS NULL",
                    [ctx.actor, utc_now(), ctx.workspace, import_id],
                )
        open_count = self._open_count(ctx.workspace, import_id)
        if open_count:
            message = (
                f"import {import_id} has {open_count} open conflict(s); resolve "
                "them or commit with accept_suggestions=True"
            )
            raise Conflict(message, details={"open_conflicts": open_count})
        self.engine.jobs.resume(
            ctx, import_id, lambda handle: self._run(handle, handle.job_id, commit=True)
        )
        return self.get(ctx, import_id)

    # -- the job ---------------------------------------------------------

    def _run(
        self,
        handle: JobHandle,
        import_id: str,
        *,
        commit: bool,
        payload: tuple[str, bytes, dict[str, Any]] | None = None,
        upload: Future[bytes] | None = None,
    ) -> dict[str, Any]:
        ctx = handle.context.with_intent(f"import {import_id}")
        try:
            self._set_live(ctx, import_id, "processing", 0, 0)
            if payload is None:
                payload = self._payload(ctx.workspace, import_id)
            return self._plan_and_commit(handle, ctx, import_id, payload, commit=commit)
        finally:
            with self._live_lock:
                self._live.pop(import_id, None)
            if upload is not None:
                self._store_upload(ctx.workspace, import_id, upload)

    def _store_upload(
        self, workspace: str, import_id: str, upload: Future[bytes]
    ) -> None:
        """Store the compressed upload of a job, before the job ends.

        It goes to its own table because DuckDB inserts a 4 MB value about
        three times faster than it updates a row to contain it.
        """
        data = upload.result()
        with self.store.transaction() as conn:
            conn.execute(
                "INSERT INTO import_uploads VALUES (?, ?, ?, 'zstd')",
                [import_id, workspace, data],
            )

    def _plan_and_commit(
        self,
        handle: JobHandle,
        ctx: Context,
        import_id: str,
        payload: tuple[str, bytes, dict[str, Any]],
        *,
        commit: bool,
    ) -> dict[str, Any]:
        source, data, options = payload
        if not commit and source == "csv":
            staged = self._plan_staged(handle, ctx, import_id, data, options)
            if staged is not None:
                return staged
        parsed = parse_source(source, data)
        total = parsed.result.total_rows
        handle.progress(0, total)
        logger.info("import %s parsed %d rows from %s", import_id, total, source)
        _check_row_errors(parsed.result, options)
        if not commit:
            plan = self._plan(ctx, import_id, parsed, stage=f"stage_{import_id}")
            new = self._store_conflicts(ctx, import_id, plan.conflicts)
            handle.progress(total, total)
            return self._review_result(plan, new)
        return self._commit(handle, ctx, import_id, parsed)

    def _plan_staged(
        self,
        handle: JobHandle,
        ctx: Context,
        import_id: str,
        data: bytes,
        options: dict[str, Any],
    ) -> dict[str, Any] | None:
        """Plan a subnet CSV in SQL; return None when it needs the full parser."""
        chosen = self._resolutions(ctx.workspace, import_id)
        with self.store.lock:
            planned = plan_staged_csv(
                self.store.conn, ctx.workspace, data, f"stage_{import_id}", chosen
            )
        if planned is None:
            return None
        plan, conflicts, result = planned
        _check_row_errors(result, options)
        new = self._store_conflicts(ctx, import_id, conflicts)
        handle.progress(plan.total_rows, plan.total_rows)
        logger.info("import %s planned %d rows in SQL", import_id, plan.total_rows)
        return {"_status": "awaiting_review", "plan": plan.to_dict(), "new": new}

    def _commit(
        self, handle: JobHandle, ctx: Context, import_id: str, parsed: Parsed
    ) -> dict[str, Any]:
        written = 0
        with self.store.transaction():
            plan = self._plan(ctx, import_id, parsed, stage=f"stage_{import_id}")
            known = self._known(import_id)
            new = [c for c in plan.conflicts if c.key not in known]
            if not new:
                written = self._write(ctx, import_id, plan)
        if new:
            self._store_conflicts(ctx, import_id, plan.conflicts)
            logger.info("import %s found %d new conflict(s)", import_id, len(new))
            return self._review_result(plan, len(new))
        handle.progress(written, written)
        logger.info("import %s committed %d object(s)", import_id, written)
        return {"_status": "committed", "plan": summarize_plan(plan).to_dict()}

    @staticmethod
    def _review_result(plan: ImportPlanDraft, new_conflicts: int) -> dict[str, Any]:
        summary = summarize_plan(plan).to_dict()
        return {"_status": "awaiting_review", "plan": summary, "new": new_conflicts}

    def _plan(
        self, ctx: Context, import_id: str, parsed: Parsed, *, stage: str
    ) -> ImportPlanDraft:
        devices = self._device_service()
        items, skipped = build_items(parsed, with_devices=devices is not None)
        stored_names: list[str] = []
        with self.store.lock:
            if devices is not None:
                stored_names = [
                    str(r[0]).lower()
                    for r in self.store.conn.execute(
                        "SELECT hostname FROM devices WHERE workspace = ?",
                        [ctx.workspace],
                    ).fetchall()
                ]
            conflicts = detect_conflicts(
                self.store.conn,
                ctx.workspace,
                items,
                stage_name=stage,
                device_names=stored_names,
            )
        chosen = self._resolutions(ctx.workspace, import_id)
        apply_resolutions(items, conflicts, chosen)
        skipped += skip_unknown_devices(items, set(stored_names))
        skipped += skip_open_circuits(items)
        if devices is not None:
            skipped += skip_stored_inventory(items, *self._stored_inventory(ctx))
        return ImportPlanDraft(items, conflicts, parsed, skipped)

    def _stored_inventory(
        self, ctx: Context
    ) -> tuple[set[str], set[tuple[tuple[str, str], tuple[str, str]]]]:
        """Return the stored site names and the ends of stored intended links."""
        sites = {
            str(row[0])
            for row in self.store.fetchall(
                "SELECT name FROM sites WHERE workspace = ?", [ctx.workspace]
            )
        }
        rows = self.store.fetchall(
            "SELECT lower(da.hostname), coalesce(l.port_a, ''), lower(db.hostname), "
            "coalesce(l.port_b, '') FROM links l "
            "JOIN devices da ON da.workspace = l.workspace AND da.id = l.a "
            "JOIN devices db ON db.workspace = l.workspace AND db.id = l.b "
            "WHERE l.workspace = ? AND l.kind = 'intended'",
            [ctx.workspace],
        )
        links = {
            (min((a, pa), (b, pb)), max((a, pa), (b, pb))) for a, pa, b, pb in rows
        }
        return sites, links

    # -- writing ---------------------------------------------------------

    def _write(self, ctx: Context, import_id: str, plan: ImportPlanDraft) -> int:
        writable = [i for i in plan.items if i.action != "skip"]
        total = len(writable)
        self._set_live(ctx, import_id, "processing", 0, total)
        counter = _Ticker(total, lambda n: self._tick(ctx, import_id, n, total))
        self._write_vlans(ctx, plan.items, counter)
        self._write_subnets(ctx, plan.items, counter)
        self._write_addresses(ctx, plan.items, counter)
        self._write_inventory(ctx, plan.items, counter)
        return counter.count

    def _tick(self, ctx: Context, import_id: str, count: int, total: int) -> None:
        self._set_live(ctx, import_id, "processing", count, total)
        if self.commit_row_hook is not None:
            self.commit_row_hook(count)

    def _write_vlans(self, ctx: Context, items: list[PlanItem], tick: _Ticker) -> None:
        vlans = self.engine.vlans
        created: list[VlanInput] = []
        for item in of_kind(items, "vlan"):
            record: VlanRecord = merged_record(items, item)
            if item.action == "update" and item.target_id:
                current = vlans.get(ctx, item.target_id)
                take = record.owner and (item.use_imported_owner or not current.tenant)
                if take:
                    vlans.update(ctx, item.target_id, {"tenant": record.owner})
                tick()
            else:
                created.append(vlan_input(record))
        if created:
            vlans.create_many(ctx, created)
        for _ in created:
            tick()

    def _write_subnets(
        self, ctx: Context, items: list[PlanItem], tick: _Ticker
    ) -> None:
        subnets = self.engine.subnets
        selected = list(of_kind(items, "subnet"))
        for subnet_id in dict.fromkeys(i for s in selected for i in s.containerize):
            subnets.update(ctx, subnet_id, {"is_container": True})
        creates: list[SubnetInput] = []
        for item in selected:
            record: SubnetRecord = merged_record(items, item)
            if item.action == "update" and item.target_id:
                current = subnets.get(ctx, item.target_id).subnet
                changes = subnet_merge(current.to_dict(), record, item)
                if changes:
                    subnets.update(ctx, item.target_id, changes)
                tick()
            else:
                creates.append(subnet_input(record))

        def ticking() -> Iterator[SubnetInput]:
            for values in creates:
                yield values
                tick()

        # Containers must exist before their children: sort like the engine.
        creates.sort(key=network_order)
        subnets.create_many(ctx, ticking())

    def _write_addresses(
        self, ctx: Context, items: list[PlanItem], tick: _Ticker
    ) -> None:
        created: list[AddressRecord] = []
        for item in of_kind(items, "address"):
            record: AddressRecord = merged_record(items, item)
            if item.action == "update" and item.target_id:
                self._merge_address(ctx, item.target_id, record)
                tick()
            else:
                created.append(record)
        if created:
            with self.store.transaction() as conn:
                insert_addresses(conn, self.engine.audit, ctx, created)
        for _ in created:
            tick()

    def _merge_address(
        self, ctx: Context, address_id: str, record: AddressRecord
    ) -> None:
        current = self.engine.addresses.get(ctx, address_id)
        changes = {
            name: value
            for name, value in (
                ("hostname", record.hostname),
                ("interface", record.interface),
            )
            if value and not getattr(current, name)
        }
        if not changes:
            return
        from omnitwin.engine.audit import AuditEntry

        with self.store.transaction() as conn:
            for name, value in changes.items():
                conn.execute(
                    f"UPDATE addresses SET {name} = ? WHERE workspace = ? AND id = ?",
                    [value, ctx.workspace, address_id],
                )
            before = {name: getattr(current, name) for name in changes}
            entry = AuditEntry(
                address_id,
                "address.update",
                ctx.actor,
                ctx.intent,
                {"before": before, "after": changes},
            )
            self.engine.audit.append(conn, ctx.workspace, entry)

    def _write_inventory(
        self, ctx: Context, items: list[PlanItem], tick: _Ticker
    ) -> None:
        devices = self._device_service()
        if devices is None:
            return
        for item in of_kind(items, "site"):
            site: SiteRecord = item.record
            exists = self.store.fetchone(
                "SELECT 1 FROM sites WHERE workspace = ? AND name = ?",
                [ctx.workspace, site.name],
            )
            if exists is None:
                devices.create_site(
                    ctx,
                    site.name,
                    region=site.region or None,
                    owner=site.owner or None,
                    description=site.facility or None,
                )
            tick()
        interfaces = interfaces_by_device(items)
        created = [i for i in of_kind(items, "device") if i.action == "create"]
        if created:
            values = [
                device_values(i, interfaces.pop(i.record.name.lower(), {}))
                for i in created
            ]
            devices.create_many(ctx, values)
        for _ in created:
            tick()
        for name, ports in interfaces.items():
            device = devices.get(ctx, name)
            state = dict(device.twin_state)
            state["interfaces"] = {**state.get("interfaces", {}), **ports}
            devices.update(ctx, device.id, {"twin_state": state})
        for _ in of_kind(items, "interface"):
            tick()
        self._write_cables(ctx, items, tick)

    def _write_cables(self, ctx: Context, items: list[PlanItem], tick: _Ticker) -> None:
        topology = getattr(self.engine, "topology", None)
        add_links = getattr(topology, "add_links", None)
        cables = [i.record for i in of_kind(items, "cable")]
        if add_links is None or not cables:
            return
        add_links(ctx, cable_links(cables))
        for _ in cables:
            tick()

    # -- storage helpers -------------------------------------------------

    def _device_service(self) -> Any:
        devices = getattr(self.engine, "devices", None)
        return devices if hasattr(devices, "create_many") else None

    def _payload(
        self, workspace: str, import_id: str
    ) -> tuple[str, bytes, dict[str, Any]]:
        # Earlier versions kept the upload in import_jobs.data.
        row = self.store.fetchone(
            "SELECT j.source, coalesce(u.data, j.data), j.options, "
            "coalesce(u.data_encoding, j.data_encoding) FROM import_jobs j "
            "LEFT JOIN import_uploads u ON u.workspace = j.workspace AND u.id = j.id "
            "WHERE j.workspace = ? AND j.id = ?",
            [workspace, import_id],
        )
        if row is None:
            raise NotFound(f"import {import_id!r} has no stored file")
        return str(row[0]), _decode_upload(bytes(row[1]), row[3]), json.loads(row[2])

    def _set_live(
        self, ctx: Context, import_id: str, status: str, processed: int, total: int
    ) -> None:
        with self._live_lock:
            current = self._live.get(import_id)
        if current is None:
            # Read the store before taking the private lock, because commits
            # call this under the store's lock and the reverse order deadlocks.
            current = ImportJob(import_id, "", status, actor=ctx.actor)
            meta = self.store.fetchone(
                "SELECT source, filename, dry_run, created_at FROM import_jobs "
                "WHERE id = ?",
                [import_id],
            )
            if meta is not None:
                current = replace(
                    current,
                    source=meta[0],
                    filename=meta[1],
                    dry_run=bool(meta[2]),
                    created_at=meta[3],
                )
        with self._live_lock:
            self._live[import_id] = replace(
                self._live.get(import_id, current),
                status=status,
                processed=processed,
                total=total,
                updated_at=utc_now(),
            )

    def _resolutions(self, workspace: str, import_id: str) -> dict[str, str]:
        rows = self.store.fetchall(
            "SELECT key, resolution FROM import_conflicts WHERE workspace = ? "
            "AND import_id = ? AND resolution IS NOT NULL",
            [workspace, import_id],
        )
        return {str(key): str(resolution) for key, resolution in rows}

    def _known(self, import_id: str) -> set[str]:
        rows = self.store.fetchall(
            "SELECT key FROM import_conflicts WHERE import_id = ?", [import_id]
        )
        return {str(r[0]) for r in rows}

    def _open_count(self, workspace: str, import_id: str) -> int:
        row = self.store.fetchone(
            "SELECT count(*) FROM import_conflicts WHERE workspace = ? "
            "AND import_id = ? AND resolution IS NULL",
            [workspace, import_id],
        )
        return int(row[0]) if row else 0

    def _store_conflicts(
        self, ctx: Context, import_id: str, conflicts: list[FoundConflict]
    ) -> int:
        known = self._known(import_id)
        new = [c for c in conflicts if c.key not in known]
        if not new:
            return 0
        ids = [new_id("cf") for _ in new]
        columns = [
            ids,
            [c.key for c in new],
            [c.kind for c in new],
            [c.line for c in new],
            [c.subject for c in new],
            [c.message for c in new],
            [c.suggestion for c in new],
            [orjson.dumps(list(c.options)).decode() for c in new],
            [orjson.dumps(_shown(c.existing), default=str).decode() for c in new],
        ]
        with self.store.transaction() as conn:
            conn.execute(
                "INSERT INTO import_conflicts SELECT unnest(?::VARCHAR[]), ?, ?, "
                "unnest(?::VARCHAR[]), unnest(?::VARCHAR[]), unnest(?::BIGINT[]), "
                "unnest(?::VARCHAR[]), unnest(?::VARCHAR[]), unnest(?::VARCHAR[]), "
                "unnest(?::VARCHAR[]), unnest(?::VARCHAR[]), NULL, NULL, NULL",
                [columns[0], ctx.workspace, import_id, *columns[1:]],
            )
        return len(new)


class _Ticker:
    """Counts written objects and reports every few percent."""

    def __init__(self, total: int, report: Callable[[int], None]) -> None:
        self.count = 0
        self._every = max(1, total // _PROGRESS_STEPS)
        self._report = report

    def __call__(self) -> None:
        self.count += 1
        if self.count % self._every == 0:
            self._report(self.count)


def _shown(existing: dict[str, Any]) -> dict[str, Any]:
    """Return a conflict's ``existing`` without the plan's internal item index.

    The SQL planner numbers items by line and the parser planner by
    position, so the index would mean different things to a reader.
    """
    return {key: value for key, value in existing.items() if key != "item"}


def _compress_upload(data: bytes) -> Future[bytes]:
    """Start compressing ``data`` on a new thread and return its future.

    zstandard releases the GIL while it compresses, so the thread runs
    beside the job's planning. A thread per upload, not a shared pool,
    also works in a process forked after an earlier import.
    """
    future: Future[bytes] = Future()

    def compress() -> None:
        try:
            future.set_result(zstandard.compress(data, _UPLOAD_COMPRESSION))
        except BaseException as exc:
            future.set_exception(exc)

    threading.Thread(target=compress, name="omnitwin-upload", daemon=True).start()
    return future


def _decode_upload(data: bytes, encoding: str | None) -> bytes:
    """Return the stored upload ``data`` as it was sent."""
    if encoding == "zstd":
        return zstandard.decompress(data)
    if encoding == "zlib":
        return zlib.decompress(data)
    if encoding in (None, "identity"):
        return data
    if encoding == "import_uploads":
        # The job row points to import_uploads, which has no row for it.
        raise ValidationError(
            "the file of this import was not stored because its first run "
            "stopped before the end; start the import again",
            details={"data_encoding": encoding},
        )
    raise ValidationError(
        f"the stored upload has the unsupported encoding {encoding!r}; open this "
        "database with the omnitwin version that started the import",
        details={"data_encoding": encoding},
    )


def _check_start(
    source: str, data: bytes, options: dict[str, Any] | None
) -> dict[str, Any]:
    if source not in SOURCES:
        message = f"unknown import source {source!r}; use one of {', '.join(SOURCES)}"
        raise ValidationError(message, details={"source": source})
    if not isinstance(data, bytes | bytearray):
        message = (
            f"import data must be bytes, got {type(data).__name__}; read the file "
            "in binary mode"
        )
        raise ValidationError(message)
    options = dict(options or {})
    unknown = sorted(set(options) - {"on_error"})
    if unknown:
        message = f"unknown import option {unknown[0]!r}; the options are: on_error"
        raise ValidationError(message, details={"option": unknown[0]})
    if options.setdefault("on_error", "skip") not in _ON_ERROR:
        message = f"invalid on_error {options['on_error']!r}; use 'skip' or 'fail'"
        raise ValidationError(message, details={"option": "on_error"})
    return options


def _check_row_errors(result: ParseResult, options: dict[str, Any]) -> None:
    if result.errors and options.get("on_error") == "fail":
        first = result.errors[0]
        message = (
            f"{len(result.errors)} row(s) have errors, the first on line "
            f"{first.line}: {first.message}"
        )
        raise ValidationError(message, details={"line": first.line})


def _check_reviewable(job: ImportJob) -> None:
    if job.status != "awaiting_review":
        message = (
            f"import {job.id} is {job.status}, not awaiting_review; only a job "
            "awaiting review can be resolved or committed"
        )
        raise ValidationError(message, details={"status": job.status})


def _to_conflict(row: tuple[Any, ...]) -> ImportConflict:
    return ImportConflict(
        id=row[0],
        import_id=row[1],
        kind=row[2],
        line=int(row[3]),
        subject=row[4],
        message=row[5],
        suggestion=row[6],
        options=orjson.loads(row[7]),
        existing=orjson.loads(row[8]),
        resolution=row[9],
        resolved_by=row[10],
        resolved_at=row[11],
    )
