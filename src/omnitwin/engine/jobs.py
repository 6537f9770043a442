"""Background jobs: reconcile and import work that returns a job id at once.

A job is a row in the ``jobs`` table plus a function that runs on a worker
thread. The function receives a :class:`JobHandle` to report progress and
finishes by returning a result map; an exception marks the job ``failed``
with the error message. Status moves ``queued`` -> ``processing`` -> one of
:data:`TERMINAL_STATUSES`, or to ``awaiting_review`` when the work needs a
decision first (interactive reconcile, import conflicts) and resumes later.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import duckdb

from omnitwin._ids import new_id
from omnitwin.engine.context import Context
from omnitwin.engine.store import Store, utc_now
from omnitwin.errors import EngineClosed, NotFound, OmniTwinError, ValidationError
from omnitwin.models import Record

__all__ = ["TERMINAL_STATUSES", "Job", "JobHandle", "JobRunner"]

logger = logging.getLogger(__name__)

JOBS_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id VARCHAR NOT NULL,
    workspace VARCHAR NOT NULL,
    kind VARCHAR NOT NULL,
    status VARCHAR NOT NULL,
    processed BIGINT NOT NULL,
    total BIGINT NOT NULL,
    params VARCHAR NOT NULL,
    result VARCHAR NOT NULL,
    error VARCHAR,
    actor VARCHAR NOT NULL,
    created_at VARCHAR NOT NULL,
    updated_at VARCHAR NOT NULL
);
"""

TERMINAL_STATUSES = frozenset({"completed", "committed", "failed", "cancelled"})
WAITING_STATUSES = frozenset({"awaiting_review"})


@dataclass(frozen=True, slots=True)
class Job(Record):
    """A background job and its progress (``processed`` of ``total`` items)."""

    id: str
    kind: str
    status: str
    processed: int = 0
    total: int = 0
    params: dict[str, Any] = field(default_factory=dict)
    result: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    actor: str = ""
    created_at: str = ""
    updated_at: str = ""

    @property
    def done(self) -> bool:
        """Whether the job has finished, successfully or not."""
        return self.status in TERMINAL_STATUSES


_COLUMNS = (
    "id, kind, status, processed, total, params, result, error, actor, created_at, "
    "updated_at"
)


def _to_job(row: tuple[Any, ...]) -> Job:
    return Job(
        id=row[0],
        kind=row[1],
        status=row[2],
        processed=int(row[3]),
        total=int(row[4]),
        params=json.loads(row[5]),
        result=json.loads(row[6]),
        error=row[7],
        actor=row[8],
        created_at=row[9],
        updated_at=row[10],
    )


class JobHandle:
    """The progress reporter that a running job function receives."""

    def __init__(self, runner: JobRunner, job_id: str, ctx: Context) -> None:
        self._runner = runner
        self.job_id = job_id
        self.context = ctx

    def progress(self, processed: int, total: int | None = None) -> None:
        """Record that ``processed`` items of ``total`` are done."""
        self._runner._update(self.job_id, processed=processed, total=total)

    def set_status(self, status: str, result: dict[str, Any] | None = None) -> None:
        """Move the job to another status, e.g. ``awaiting_review``."""
        self._runner._update(self.job_id, status=status, result=result)


JobFunction = Callable[[JobHandle], dict[str, Any]]


class JobRunner:
    """Run job functions on worker threads and keep their rows current."""

    def __init__(self, store: Store, *, workers: int = 2) -> None:
        self.store = store
        store.ensure_schema(JOBS_SCHEMA)
        self._executor = ThreadPoolExecutor(
            max_workers=workers, thread_name_prefix="omnitwin-job"
        )
        # No job row is written once shutdown has begun, and shutdown waits
        # for the submits already writing, so every queued job runs. No thread
        # waits for the store's lock while it holds the condition.
        self._open = threading.Condition()
        self._closed = False
        self._submitting = 0
        self._changed = threading.Condition()
        # Counts job updates, so that a watcher that read a job just before an
        # update does not sleep through that update's notification.
        self._updates = 0

    def submit(
        self,
        ctx: Context,
        kind: str,
        params: dict[str, Any],
        function: JobFunction,
        *,
        prefix: str = "job",
        job_id: str | None = None,
        setup: Callable[[duckdb.DuckDBPyConnection], None] | None = None,
    ) -> Job:
        """Queue ``function`` as a new job and return the job at once.

        The job gets ``job_id`` when it is given, else a new id that starts
        with ``prefix``. ``setup`` runs in the transaction that writes the
        job's row, for rows the job reads when it starts.

        Raises
        ------
        EngineClosed
            The runner was shut down; nothing was written.
        """
        now = utc_now()
        job = Job(
            job_id or new_id(prefix),
            kind,
            "queued",
            params=params,
            actor=ctx.actor,
            created_at=now,
            updated_at=now,
        )
        with self._submitting_job(job.id):
            with self.store.transaction() as conn:
                if setup is not None:
                    setup(conn)
                conn.execute(
                    "INSERT INTO jobs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [
                        job.id,
                        ctx.workspace,
                        kind,
                        job.status,
                        0,
                        0,
                        json.dumps(params, default=str),
                        "{}",
                        None,
                        ctx.actor,
                        now,
                        now,
                    ],
                )
            self._executor.submit(self._run, job.id, ctx, function)
        logger.info("job %s (%s) queued by %s", job.id, kind, ctx.actor)
        return job

    @contextlib.contextmanager
    def _submitting_job(self, job_id: str) -> Iterator[None]:
        """Count a submit in progress, or raise EngineClosed after shutdown."""
        with self._open:
            if self._closed:
                logger.warning("job %s not queued: the engine is closed", job_id)
                raise EngineClosed(
                    f"the engine is closed, so job {job_id} was not queued; open "
                    "the database again to run it",
                    details={"job_id": job_id},
                )
            self._submitting += 1
        try:
            yield
        finally:
            with self._open:
                self._submitting -= 1
                self._open.notify_all()

    def resume(self, ctx: Context, job_id: str, function: JobFunction) -> Job:
        """Run more work for a job that waits for a decision."""
        job = self.get(ctx, job_id)
        if job.status not in WAITING_STATUSES:
            message = (
                f"job {job_id} is {job.status}, not awaiting_review; nothing to resume"
            )
            raise ValidationError(message, details={"status": job.status})
        with self._submitting_job(job_id):
            self._update(job_id, status="queued")
            self._executor.submit(self._run, job_id, ctx, function)
        return self.get(ctx, job_id)

    def _run(self, job_id: str, ctx: Context, function: JobFunction) -> None:
        self._update(job_id, status="processing")
        logger.info("job %s started", job_id)
        try:
            result = function(JobHandle(self, job_id, ctx))
        except OmniTwinError as exc:
            logger.warning("job %s failed: %s", job_id, exc)
            self._update(job_id, status="failed", error=str(exc))
            return
        except Exception as exc:
            logger.exception("job %s failed with an unexpected error", job_id)
            self._update(job_id, status="failed", error=f"{type(exc).__name__}: {exc}")
            return
        current = self._status(job_id)
        final = result.pop("_status", None) or (
            current if current in WAITING_STATUSES else "completed"
        )
        self._update(job_id, status=final, result=result)
        logger.info("job %s finished: %s", job_id, final)

    def _status(self, job_id: str) -> str:
        row = self.store.fetchone("SELECT status FROM jobs WHERE id = ?", [job_id])
        return str(row[0]) if row else "failed"

    def _update(
        self,
        job_id: str,
        *,
        status: str | None = None,
        processed: int | None = None,
        total: int | None = None,
        result: dict[str, Any] | None = None,
        error: str | None = None,
    ) -> None:
        sets: list[str] = ["updated_at = ?"]
        params: list[Any] = [utc_now()]
        for column, value in (
            ("status", status),
            ("processed", processed),
            ("total", total),
            ("error", error),
        ):
            if value is not None:
                sets.append(f"{column} = ?")
                params.append(value)
        if result is not None:
            sets.append("result = ?")
            params.append(json.dumps(result, default=str))
        with self.store.transaction() as conn:
            conn.execute(
                f"UPDATE jobs SET {', '.join(sets)} WHERE id = ?", [*params, job_id]
            )
        with self._changed:
            self._updates += 1
            self._changed.notify_all()

    def get(self, ctx: Context, job_id: str) -> Job:
        """Return a job of the caller's workspace."""
        row = self.store.fetchone(
            f"SELECT {_COLUMNS} FROM jobs WHERE workspace = ? AND id = ?",
            [ctx.workspace, job_id],
        )
        if row is None:
            raise NotFound(f"job {job_id!r} not found", details={"id": job_id})
        return _to_job(row)

    def watch(
        self, ctx: Context, job_id: str, *, timeout: float = 600.0
    ) -> Iterator[Job]:
        """Yield the job each time it changes, until it finishes or waits.

        Raises ``TimeoutError`` if nothing finishes within ``timeout`` seconds.
        """
        last: Job | None = None
        deadline = threading.Event()
        timer = threading.Timer(timeout, deadline.set)
        timer.daemon = True
        timer.start()
        try:
            while True:
                with self._changed:
                    seen = self._updates
                job = self.get(ctx, job_id)
                if job != last:
                    yield job
                    last = job
                if job.done or job.status in WAITING_STATUSES:
                    return
                if deadline.is_set():
                    raise TimeoutError(
                        f"job {job_id} still {job.status} after {timeout} s"
                    )
                self._wait_for_update(seen, 0.2)
        finally:
            timer.cancel()

    def _wait_for_update(self, seen: int, timeout: float) -> None:
        """Sleep until a job update after the ``seen``-th, or ``timeout`` seconds."""
        with self._changed:
            self._changed.wait_for(lambda: self._updates != seen, timeout)

    def wait(self, ctx: Context, job_id: str, *, timeout: float = 600.0) -> Job:
        """Block until the job finishes or waits for review; return it."""
        job = self.get(ctx, job_id)
        for snapshot in self.watch(ctx, job_id, timeout=timeout):
            job = snapshot
        return job

    def shutdown(self) -> None:
        """Stop queueing jobs, then wait for queued and running jobs to end."""
        with self._open:
            self._closed = True
            self._open.wait_for(lambda: self._submitting == 0)
        self._executor.shutdown(wait=True)
