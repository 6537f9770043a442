"""REST routes of the import and job operations.

:mod:`omnitwin.client._routes` merges :data:`IMPORT_ROUTES` into its table.
``jobs.wait`` and ``imports.wait`` have no route, because the HTTP backend
polls ``GET /jobs/{id}`` and ``GET /import/{id}`` instead of holding a request
open.
"""

from __future__ import annotations

from omnitwin.client._routes import Param, ResultSpec, Route
from omnitwin.client._routes import _body as body_param
from omnitwin.client._routes import _path as path_param
from omnitwin.client._routes import _query as query_param
from omnitwin.engine.import_sources import SOURCES
from omnitwin.engine.jobs import Job
from omnitwin.models import ImportConflict, ImportJob

__all__ = ["IMPORT_ROUTES"]

_IMPORT_ID = path_param("id", "import job id, e.g. imp_01J9...")
_IMPORT_JOB = ResultSpec("record", ImportJob)
_INTENT = body_param("intent", description="reason stored in the audit event")

IMPORT_ROUTES: dict[str, tuple[Route, ...]] = {
    "imports.start": (
        Route(
            "imports.start",
            "POST",
            "/import",
            (
                body_param("source", required=True, enum=SOURCES),
                Param(
                    "file",
                    "binary",
                    "body",
                    required=True,
                    description="the export file: CSV or JSON",
                ),
                body_param("dry_run", "boolean", description="plan without writing"),
                body_param("filename", description="shown with the job"),
                body_param(
                    "options",
                    "object",
                    description='JSON object, e.g. {"on_error": "fail"}',
                ),
            ),
            _IMPORT_JOB,
            status=202,
            write=True,
            content_type="multipart/form-data",
            summary="Start an import of an uploaded file; returns the queued job",
        ),
    ),
    "imports.get": (
        Route(
            "imports.get",
            "GET",
            "/import/{id}",
            (_IMPORT_ID,),
            _IMPORT_JOB,
            summary="Get an import job with its status, progress and plan",
        ),
    ),
    "imports.conflicts": (
        Route(
            "imports.conflicts",
            "GET",
            "/import/{id}/conflicts",
            (_IMPORT_ID, query_param("open_only", "boolean")),
            ResultSpec("list", ImportConflict),
            summary="List the conflicts of an import job in line order",
        ),
    ),
    "imports.resolve": (
        Route(
            "imports.resolve",
            "POST",
            "/import/{id}/conflicts/{conflict_id}/resolve",
            (
                _IMPORT_ID,
                path_param("conflict_id", "conflict id"),
                body_param(
                    "resolution",
                    required=True,
                    description="one of the conflict's options",
                ),
                _INTENT,
            ),
            ResultSpec("record", ImportConflict),
            write=True,
            summary="Choose the resolution of one conflict",
        ),
    ),
    "imports.commit": (
        Route(
            "imports.commit",
            "POST",
            "/import/{id}/commit",
            (
                _IMPORT_ID,
                body_param(
                    "accept_suggestions",
                    "boolean",
                    description="resolve open conflicts with their suggestion",
                ),
                _INTENT,
            ),
            _IMPORT_JOB,
            status=202,
            write=True,
            summary="Write a reviewed import; returns the queued job",
        ),
    ),
    "jobs.get": (
        Route(
            "jobs.get",
            "GET",
            "/jobs/{id}",
            (path_param("id", "job id, e.g. job_01J9..."),),
            ResultSpec("record", Job),
            summary="Get a background job with its status and progress",
        ),
    ),
}
