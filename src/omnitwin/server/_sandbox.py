"""Sandbox data: one in-memory engine per workspace, seeded with sample data.

Each workspace's engine is created and seeded on its first request, and
dropped on reset; the next request seeds a fresh one.
"""

from __future__ import annotations

import asyncio
import logging

from omnitwin.client._client import Client
from omnitwin.client._local import LocalBackend
from omnitwin.engine.context import Context
from omnitwin.engine.engine import Engine
from omnitwin.sample import generate_fabric

__all__ = ["SandboxEngines"]

logger = logging.getLogger("omnitwin.server")

SANDBOX_ACTOR = "system:sandbox"
# An engine that a reset replaced is closed this many seconds later, so that
# requests still running on it can finish.
_CLOSE_DELAY_SECONDS = 30.0


def seed_engine(engine: Engine, workspace: str) -> int:
    """Load the generated sample network into ``workspace``; return the count."""
    from omnitwin.cli import load_sample

    network = generate_fabric(sites=2, spines=2, leaves=4, servers_per_leaf=2)
    context = Context(workspace=workspace, actor=SANDBOX_ACTOR)
    client = Client(backend=LocalBackend(engine, context))
    return load_sample(client, network)


class SandboxEngines:
    """In-memory, seeded engines of the workspaces of a sandbox server."""

    def __init__(self) -> None:
        self._engines: dict[str, Engine] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def get(self, workspace: str) -> Engine:
        """Return the workspace's engine, seeding a new one when needed."""
        engine = self._engines.get(workspace)
        if engine is not None:
            return engine
        lock = self._locks.setdefault(workspace, asyncio.Lock())
        async with lock:
            engine = self._engines.get(workspace)
            if engine is None:
                engine = Engine(":memory:")
                count = await asyncio.to_thread(seed_engine, engine, workspace)
                logger.info(
                    "seeded sandbox workspace %s with %d subnets", workspace, count
                )
                self._engines[workspace] = engine
        return engine

    async def reset(self, workspace: str) -> Engine:
        """Replace the workspace's data with freshly seeded sample data."""
        old = self._engines.pop(workspace, None)
        if old is not None:
            asyncio.get_running_loop().call_later(_CLOSE_DELAY_SECONDS, old.close)
        logger.info("reset sandbox workspace %s", workspace)
        return await self.get(workspace)

    def reset_all(self) -> int:
        """Drop every workspace's data; each is seeded again on next use."""
        engines, self._engines = self._engines, {}
        loop = asyncio.get_running_loop()
        for engine in engines.values():
            loop.call_later(_CLOSE_DELAY_SECONDS, engine.close)
        logger.info("reset %d sandbox workspaces", len(engines))
        return len(engines)

    def close(self) -> None:
        """Close every engine."""
        for engine in self._engines.values():
            engine.close()
        self._engines.clear()
