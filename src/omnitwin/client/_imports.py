"""The ``client.imports`` namespace: start, review and commit import jobs."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any, Protocol

from omnitwin.models import ImportConflict, ImportJob

__all__ = ["AsyncImports", "Imports"]


class _Backend(Protocol):
    def call(self, operation: str, params: dict[str, Any]) -> Any: ...

    async def acall(self, operation: str, params: dict[str, Any]) -> Any: ...


def _start_params(
    source: str,
    file: str | Path | bytes,
    dry_run: bool,
    filename: str | None,
    options: dict[str, Any] | None,
) -> dict[str, Any]:
    if isinstance(file, bytes | bytearray):
        data = bytes(file)
    else:
        path = Path(file).expanduser()
        data = path.read_bytes()
        filename = filename or path.name
    params: dict[str, Any] = {"source": source, "file": data, "dry_run": dry_run}
    if filename is not None:
        params["filename"] = filename
    if options is not None:
        params["options"] = options
    return params


def _waiting(job: ImportJob) -> bool:
    return not job.done and job.status != "awaiting_review"


class Imports:
    """Import jobs: ``client.imports``.

    Examples
    --------
    >>> import omnitwin
    >>> with omnitwin.Client("local::memory:") as client:
    ...     job = client.imports.start("csv", b"cidr\\n10.1.0.0/24\\n", dry_run=True)
    ...     job = client.imports.wait(job.id)
    ...     job.status, job.plan.create
    ('awaiting_review', {'subnet': 1})
    """

    def __init__(self, backend: _Backend) -> None:
        self._backend = backend

    def start(
        self,
        source: str,
        file: str | Path | bytes,
        *,
        dry_run: bool = False,
        filename: str | None = None,
        options: dict[str, Any] | None = None,
    ) -> ImportJob:
        """Start an import of a file path or bytes; return the queued job.

        ``source`` is ``csv``, ``infoblox``, ``bluecat``, ``phpipam`` or
        ``netbox``. A dry run stops in ``awaiting_review`` without writing.
        """
        params = _start_params(source, file, dry_run, filename, options)
        result: ImportJob = self._backend.call("imports.start", params)
        return result

    def get(self, import_id: str) -> ImportJob:
        """Return an import job with its status, progress and plan."""
        result: ImportJob = self._backend.call("imports.get", {"id": import_id})
        return result

    def wait(self, import_id: str, *, timeout: float = 600.0) -> ImportJob:
        """Block until the job is committed, failed or awaiting review."""
        params = {"id": import_id, "timeout": timeout}
        result: ImportJob = self._backend.call("imports.wait", params)
        return result

    def conflicts(
        self, import_id: str, *, open_only: bool = False
    ) -> list[ImportConflict]:
        """Return the conflicts of a job in line order."""
        params = {"id": import_id, "open_only": open_only}
        result: list[ImportConflict] = self._backend.call("imports.conflicts", params)
        return result

    def resolve(
        self, import_id: str, conflict_id: str, resolution: str
    ) -> ImportConflict:
        """Choose one of a conflict's ``options`` as its resolution."""
        params = {"id": import_id, "conflict_id": conflict_id, "resolution": resolution}
        result: ImportConflict = self._backend.call("imports.resolve", params)
        return result

    def commit(self, import_id: str, *, accept_suggestions: bool = False) -> ImportJob:
        """Resume a job awaiting review and write its plan in one transaction."""
        params = {"id": import_id, "accept_suggestions": accept_suggestions}
        result: ImportJob = self._backend.call("imports.commit", params)
        return result

    def progress(self, import_id: str, *, interval: float = 0.25) -> ImportJob:
        """Show a progress bar (tqdm.auto) until the job stops; return it."""
        from tqdm.auto import tqdm

        job = self.get(import_id)
        with tqdm(total=job.total or None, desc=f"import {job.id}") as bar:
            while _waiting(job):
                time.sleep(interval)
                job = self.get(import_id)
                _update_bar(bar, job)
            _update_bar(bar, job)
        return job


class AsyncImports:
    """Import jobs of an :class:`~omnitwin.AsyncClient`; see :class:`Imports`."""

    def __init__(self, backend: _Backend) -> None:
        self._backend = backend

    async def start(
        self,
        source: str,
        file: str | Path | bytes,
        *,
        dry_run: bool = False,
        filename: str | None = None,
        options: dict[str, Any] | None = None,
    ) -> ImportJob:
        """Start an import of a file path or bytes; return the queued job."""
        params = await asyncio.to_thread(
            _start_params, source, file, dry_run, filename, options
        )
        result: ImportJob = await self._backend.acall("imports.start", params)
        return result

    async def get(self, import_id: str) -> ImportJob:
        """Return an import job with its status, progress and plan."""
        result: ImportJob = await self._backend.acall("imports.get", {"id": import_id})
        return result

    async def wait(self, import_id: str, *, timeout: float = 600.0) -> ImportJob:
        """Wait until the job is committed, failed or awaiting review."""
        params = {"id": import_id, "timeout": timeout}
        result: ImportJob = await self._backend.acall("imports.wait", params)
        return result

    async def conflicts(
        self, import_id: str, *, open_only: bool = False
    ) -> list[ImportConflict]:
        """Return the conflicts of a job in line order."""
        params = {"id": import_id, "open_only": open_only}
        result: list[ImportConflict] = await self._backend.acall(
            "imports.conflicts", params
        )
        return result

    async def resolve(
        self, import_id: str, conflict_id: str, resolution: str
    ) -> ImportConflict:
        """Choose one of a conflict's ``options`` as its resolution."""
        params = {"id": import_id, "conflict_id": conflict_id, "resolution": resolution}
        result: ImportConflict = await self._backend.acall("imports.resolve", params)
        return result

    async def commit(
        self, import_id: str, *, accept_suggestions: bool = False
    ) -> ImportJob:
        """Resume a job awaiting review and write its plan in one transaction."""
        params = {"id": import_id, "accept_suggestions": accept_suggestions}
        result: ImportJob = await self._backend.acall("imports.commit", params)
        return result

    async def progress(self, import_id: str, *, interval: float = 0.25) -> ImportJob:
        """Show a progress bar (tqdm.auto) until the job stops; return it."""
        from tqdm.auto import tqdm

        job = await self.get(import_id)
        with tqdm(total=job.total or None, desc=f"import {job.id}") as bar:
            while _waiting(job):
                await asyncio.sleep(interval)
                job = await self.get(import_id)
                _update_bar(bar, job)
            _update_bar(bar, job)
        return job


def _update_bar(bar: Any, job: ImportJob) -> None:
    bar.total = job.total or bar.total
    bar.n = job.processed
    bar.set_postfix_str(job.status)
    bar.refresh()
