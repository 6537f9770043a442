"""The in-process backend: client operations run on an embedded engine."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from omnitwin.client._local_agents import AGENT_OPERATIONS
from omnitwin.client._local_devices import DEVICE_OPERATIONS
from omnitwin.client._local_imports import IMPORT_OPERATIONS
from omnitwin.engine.context import Context
from omnitwin.engine.engine import Engine
from omnitwin.engine.subnet_export import export_subnets

__all__ = ["LOCAL_OPERATIONS", "LocalBackend"]

_Handler = Callable[[Engine, Context, dict[str, Any]], Any]


def _subnets_create(engine: Engine, ctx: Context, p: dict[str, Any]) -> Any:
    cidr_text = p.pop("cidr")
    return engine.subnets.create(ctx, cidr_text, **p)


def _subnets_available(engine: Engine, ctx: Context, p: dict[str, Any]) -> Any:
    prefix_length = p.pop("prefix_length")
    p["cidr_text"] = p.pop("cidr", None)
    return engine.subnets.available(ctx, prefix_length, **p)


def _subnets_allocate(engine: Engine, ctx: Context, p: dict[str, Any]) -> Any:
    prefix_length = p.pop("prefix_length")
    p["cidr_text"] = p.pop("cidr", None)
    return engine.subnets.allocate(ctx, prefix_length, **p)


def _addresses_create(engine: Engine, ctx: Context, p: dict[str, Any]) -> Any:
    address = p.pop("address")
    return engine.addresses.create(ctx, address, **p)


LOCAL_OPERATIONS: dict[str, _Handler] = {
    "subnets.list": lambda e, c, p: e.subnets.list(c, **p),
    "subnets.get": lambda e, c, p: e.subnets.get(c, p["id"]),
    "subnets.create": _subnets_create,
    "subnets.update": lambda e, c, p: e.subnets.update(c, p["id"], p["changes"]),
    "subnets.audit": lambda e, c, p: e.subnets.audit_trail(
        c, p["id"], page=p.get("page", 1), per_page=p.get("per_page", 50)
    ),
    "subnets.available": _subnets_available,
    "subnets.allocate": _subnets_allocate,
    "subnets.available_addresses": lambda e, c, p: e.addresses.available(
        c, p["id"], limit=p.get("limit", 16)
    ),
    "addresses.create": _addresses_create,
    "addresses.get": lambda e, c, p: e.addresses.get(c, p["id"]),
    "addresses.list": lambda e, c, p: e.addresses.list(c, **p),
    "audit.list": lambda e, c, p: e.audit.list(c.workspace, **p),
    "audit.verify": lambda e, c, p: e.audit.verify(c.workspace),
    "jobs.get": lambda e, c, p: e.jobs.get(c, p["id"]),
    "jobs.wait": lambda e, c, p: e.jobs.wait(c, p["id"], timeout=p.get("timeout", 600)),
}
LOCAL_OPERATIONS.update(IMPORT_OPERATIONS)
LOCAL_OPERATIONS.update(DEVICE_OPERATIONS)
LOCAL_OPERATIONS.update(AGENT_OPERATIONS)
# Bulk DataFrame export for notebooks. Over HTTP the same operation reads
# GET /v1/subnets/export, which omnitwin.server._export serves.
LOCAL_OPERATIONS["subnets.export"] = lambda e, c, p: export_subnets(e, c, **p)


class LocalBackend:
    """Run client operations on an engine in this process.

    Sync calls run directly on the caller's thread, so the sync client needs
    no event loop and works inside Jupyter. Async calls run the same work in
    a worker thread so that they do not block the caller's event loop.
    """

    def __init__(self, engine: Engine, context: Context) -> None:
        self.engine = engine
        self.context = context
        self.closed = False

    def call(self, operation: str, params: dict[str, Any]) -> Any:
        """Run one operation and return its result."""
        handler = LOCAL_OPERATIONS[operation]
        intent = params.pop("intent", None)
        ctx = self.context.with_intent(intent) if intent else self.context
        return handler(self.engine, ctx, params)

    async def acall(self, operation: str, params: dict[str, Any]) -> Any:
        """Run one operation in a worker thread and return its result."""
        return await asyncio.to_thread(self.call, operation, params)

    def close(self) -> None:
        """Release the engine; the last client of a database closes it."""
        if not self.closed:
            self.closed = True
            self.engine.release()
