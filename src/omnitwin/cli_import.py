"""The ``omnitwin import SOURCE FILE`` command.

It starts an import job, shows its progress with tqdm, and prints the plan,
the row errors and the conflicts. Exit status: 0 when the import was
committed or the dry run is ready for review, 3 when conflicts wait for
review (nothing was written), 1 when the job failed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from omnitwin.client import Client
from omnitwin.engine.import_sources import SOURCES
from omnitwin.errors import ValidationError
from omnitwin.models import ImportJob

__all__ = [
    "NewDatabase",
    "add_import_command",
    "follow_import",
    "print_import_report",
]

_SHOWN_ROWS = 20
# A day: the CLI waits for the largest import rather than give up on it.
_WAIT_SECONDS = 86_400.0
EXIT_REVIEW = 3


class NewDatabase:
    """The files of a database that a command may create, to remove if it fails.

    Create it before the command opens the database. :meth:`remove` deletes
    the DuckDB file and its write-ahead log only when the file did not exist
    at that moment, so a database that was there before is never removed.
    """

    def __init__(self, db: str) -> None:
        path = Path(db).expanduser()
        self.paths: list[Path] = []
        # lexists: a symbolic link, even a dangling one, existed before.
        if db != ":memory:" and not os.path.lexists(path):
            wal = path.with_name(path.name + ".wal")
            self.paths = [path] if os.path.lexists(wal) else [path, wal]

    def remove(self) -> None:
        """Delete the files. Call it only after the database is closed."""
        for path in self.paths:
            path.unlink(missing_ok=True)


def add_import_command(commands: Any, *, default_db: str = "omnitwin.duckdb") -> None:
    """Add the ``import`` subcommand to an argparse subparsers object.

    Examples
    --------
    >>> parser = argparse.ArgumentParser(prog="omnitwin")
    >>> add_import_command(parser.add_subparsers(dest="command"))
    >>> parser.parse_args(["import", "csv", "x.csv", "--dry-run"]).dry_run
    True
    """
    command = commands.add_parser(
        "import",
        help="import a CSV, Infoblox, BlueCat, phpIPAM or NetBox file",
        description=(
            "Import a file as a background job with conflict review. Exit "
            "status 0: committed (or dry run ready), 3: conflicts await review, "
            "1: failed."
        ),
    )
    command.add_argument("source", choices=SOURCES, help="the format of FILE")
    command.add_argument("file", type=Path, help="the file to import")
    command.add_argument(
        "--db", default=default_db, help="DuckDB file to write (default: %(default)s)"
    )
    command.add_argument(
        "--dry-run", action="store_true", help="plan and report only; write nothing"
    )
    command.add_argument(
        "--accept-suggestions",
        action="store_true",
        help="resolve every conflict with its suggestion and commit",
    )
    command.add_argument(
        "--on-error",
        choices=("skip", "fail"),
        default="skip",
        help="leave rows with errors out (skip) or fail the whole import",
    )
    command.add_argument("--json", action="store_true", help="print the job as JSON")
    command.set_defaults(handler=_run_import)


def follow_import(client: Client, import_id: str) -> ImportJob:
    """Wait for an import job, with a progress bar when stderr is a terminal.

    Redirected output gets no bar, because each redraw would add a line.
    """
    if sys.stderr.isatty():
        return client.imports.progress(import_id)
    return client.imports.wait(import_id, timeout=_WAIT_SECONDS)


def _run_import(args: argparse.Namespace) -> int:
    if not args.file.is_file():
        raise ValidationError(f"{args.file} not found; give the path of the export")
    new_database = NewDatabase(args.db)
    try:
        job = _import(args)
    except BaseException:
        new_database.remove()
        raise
    if job.status == "failed":
        new_database.remove()
        return 1
    if job.status == "awaiting_review" and job.open_conflicts:
        return EXIT_REVIEW
    return 0


def _import(args: argparse.Namespace) -> ImportJob:
    """Run the import job of ``args``, print its report and return the job."""
    with Client(f"local:{args.db}", actor="user:cli") as client:
        job = client.imports.start(
            args.source,
            args.file,
            dry_run=args.dry_run,
            options={"on_error": args.on_error},
        )
        job = follow_import(client, job.id)
        conflicts = client.imports.conflicts(job.id)
        if args.accept_suggestions and job.status == "awaiting_review":
            client.imports.commit(job.id, accept_suggestions=True)
            job = follow_import(client, job.id)
        if args.json:
            body = {**job.to_dict(), "conflicts": [c.to_dict() for c in conflicts]}
            print(json.dumps(body, indent=2, sort_keys=True))
        else:
            print_import_report(job, [c.to_dict() for c in conflicts])
    return job


def print_import_report(job: ImportJob, conflicts: list[dict[str, Any]]) -> None:
    """Print an import job's status, plan, skipped rows, row errors and conflicts."""
    print(f"import {job.id}: {job.status}")
    if job.error:
        print(f"  error: {job.error}")
    plan = job.plan
    if plan is None:
        return
    print(f"  rows: {plan.total_rows}")
    for name in ("create", "update", "skip"):
        counts: dict[str, int] = getattr(plan, name)
        if counts:
            text = ", ".join(f"{kind} {n}" for kind, n in sorted(counts.items()))
            print(f"  {name}: {text}")
    if plan.skipped_rows:
        print(f"  not imported: {len(plan.skipped_rows)} row(s)")
        reasons = Counter(str(row.get("reason", "")) for row in plan.skipped_rows)
        for reason, count in reasons.most_common():
            print(f"    {count:>5}  {reason}")
    if plan.row_errors:
        print(f"  row errors: {len(plan.row_errors)}")
        for error in plan.row_errors[:_SHOWN_ROWS]:
            print(f"    line {error['line']} {error['field']}: {error['message']}")
        _print_more(len(plan.row_errors))
    if conflicts:
        print(f"  conflicts: {len(conflicts)} ({job.open_conflicts} open)")
        for conflict in conflicts[:_SHOWN_ROWS]:
            print(
                f"    {conflict['id']} line {conflict['line']} {conflict['kind']}: "
                f"{conflict['message']} [suggested: {conflict['suggestion']}]"
            )
        _print_more(len(conflicts))
    if job.status == "awaiting_review" and job.open_conflicts:
        print(
            "  next: run the same command with --accept-suggestions to take every "
            "suggested resolution, or resolve conflicts one by one through the API"
        )


def _print_more(count: int) -> None:
    if count > _SHOWN_ROWS:
        print(f"    ... and {count - _SHOWN_ROWS} more; --json lists them all")
