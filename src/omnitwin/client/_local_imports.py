"""In-process handlers of the ``imports.*`` client operations."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from omnitwin.engine.context import Context
from omnitwin.engine.engine import Engine

__all__ = ["IMPORT_OPERATIONS"]

_Handler = Callable[[Engine, Context, dict[str, Any]], Any]


def _start(engine: Engine, ctx: Context, p: dict[str, Any]) -> Any:
    return engine.imports.start(
        ctx,
        p["source"],
        p["file"],
        dry_run=p.get("dry_run", False),
        filename=p.get("filename"),
        options=p.get("options"),
    )


def _commit(engine: Engine, ctx: Context, p: dict[str, Any]) -> Any:
    accept = p.get("accept_suggestions", False)
    return engine.imports.commit(ctx, p["id"], accept_suggestions=accept)


IMPORT_OPERATIONS: dict[str, _Handler] = {
    "imports.start": _start,
    "imports.get": lambda e, c, p: e.imports.get(c, p["id"]),
    "imports.wait": lambda e, c, p: e.imports.wait(
        c, p["id"], timeout=p.get("timeout", 600.0)
    ),
    "imports.conflicts": lambda e, c, p: e.imports.conflicts(
        c, p["id"], open_only=p.get("open_only", False)
    ),
    "imports.resolve": lambda e, c, p: e.imports.resolve(
        c, p["id"], p["conflict_id"], p["resolution"]
    ),
    "imports.commit": _commit,
}
