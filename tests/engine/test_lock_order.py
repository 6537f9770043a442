"""Engine caches beside transactions: lock order and rolled-back rows.

Each test keeps a transaction open on one thread while another thread reads
a cold cache that must load from the store. When the transaction commits,
its callbacks update the same cache. A cache with a lock of its own, held
while it reads the store, deadlocks here: the reader holds the cache's lock
and waits for the store's, and the commit holds the store's and waits for
the cache's. The old interval index hung in this order on a free-block
search beside an allocation.

The last tests fill the interval index inside a transaction, whose
uncommitted rows it then contains, and end the transaction both ways.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from omnitwin.engine.context import Context
from omnitwin.engine.engine import Engine

CTX = Context(actor="user:test")
# Long enough for the reader to reach the store's lock while the writer has
# it. Once the lock order is right, the test passes with any value.
HOLD_SECONDS = 0.3
JOIN_SECONDS = 20.0


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    eng = Engine(tmp_path / "twin.duckdb")
    yield eng
    # After a deadlock, a stuck thread keeps the store's lock for good. Closing
    # would wait for it too, so the run would hang instead of failing.
    if eng.store.lock.acquire(timeout=JOIN_SECONDS):
        eng.store.lock.release()
        eng.close()


def _race(write: Callable[[], None], read: Callable[[], Any]) -> Any:
    """Run ``write`` and ``read`` on two threads and return the result of ``read``."""
    results: dict[str, Any] = {}

    def run(name: str, function: Callable[[], Any]) -> None:
        try:
            results[name] = function()
        except BaseException as exc:  # raised again on the test's thread
            results[f"{name} error"] = exc

    threads = [
        threading.Thread(target=run, args=("write", write), daemon=True),
        threading.Thread(target=run, args=("read", read), daemon=True),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(JOIN_SECONDS)
    names = ("write", "read")
    waiting = [n for n, t in zip(names, threads, strict=True) if t.is_alive()]
    assert not waiting, f"{waiting} still waiting after {JOIN_SECONDS} s: deadlock"
    for name in ("write error", "read error"):
        if name in results:
            raise results[name]
    return results["read"]


def test_free_search_beside_commit(engine: Engine) -> None:
    engine.subnets.create(CTX, "10.0.0.0/8", is_container=True)
    engine.subnets.index.clear()
    holding = threading.Event()

    def write() -> None:
        with engine.store.transaction():
            engine.subnets.create(CTX, "10.1.0.0/24", vrf="red")
            holding.set()
            time.sleep(HOLD_SECONDS)
        # The commit ran the callback that adds 10.1.0.0/24 to the index.

    def read() -> set[str]:
        holding.wait(JOIN_SECONDS)
        return engine.subnets.index.vrfs(CTX.workspace)

    vrfs = _race(write, read)
    # The reader waited for the commit, so it saw the new VRF.
    assert vrfs == {"global", "red"}
    free = engine.subnets.available(CTX, 24, cidr_text="10.1.0.0/16", vrf="red")
    assert free.blocks[0] == "10.1.1.0/24"


def test_import_progress_beside_commit(engine: Engine) -> None:
    # A commit reports progress while it holds the store's lock; a second
    # import that starts at that moment reads its row from the store.
    first = engine.imports.start(CTX, "csv", b"cidr\n10.9.0.0/24\n", dry_run=True)
    second = engine.imports.start(CTX, "csv", b"cidr\n10.8.0.0/24\n", dry_run=True)
    engine.imports.wait(CTX, first.id)
    engine.imports.wait(CTX, second.id)
    holding = threading.Event()

    def write() -> None:
        with engine.store.transaction():
            engine.imports._set_live(CTX, first.id, "processing", 1, 2)
            holding.set()
            time.sleep(HOLD_SECONDS)
            engine.imports._set_live(CTX, first.id, "processing", 2, 2)

    def read() -> str:
        holding.wait(JOIN_SECONDS)
        engine.imports._set_live(CTX, second.id, "processing", 0, 1)
        return engine.imports.get(CTX, second.id).source

    assert _race(write, read) == "csv"


# -- caches filled inside a transaction ---------------------------------------


def test_rolled_back_rows_leave_free_space(engine: Engine) -> None:
    engine.subnets.create(CTX, "10.0.0.0/16", is_container=True)
    engine.subnets.index.clear()
    rollback = pytest.raises(RuntimeError, match="roll back")
    with rollback, engine.store.transaction():
        engine.subnets.create(CTX, "10.0.0.0/24")
        # The index loads here and reads the uncommitted /24.
        engine.subnets.available(CTX, 24, cidr_text="10.0.0.0/16")
        raise RuntimeError("roll back")
    free = engine.subnets.available(CTX, 24, cidr_text="10.0.0.0/16", limit=1)
    assert free.blocks == ["10.0.0.0/24"]
    assert free.total_free == 256


def test_second_allocation_in_transaction(engine: Engine) -> None:
    engine.subnets.create(CTX, "10.0.0.0/16", is_container=True)
    # Warm the index outside the transaction.
    engine.subnets.available(CTX, 24, cidr_text="10.0.0.0/16")
    with engine.store.transaction():
        first = engine.subnets.allocate(CTX, 24, cidr_text="10.0.0.0/16")
        second = engine.subnets.allocate(CTX, 24, cidr_text="10.0.0.0/16")
    assert first.cidr == "10.0.0.0/24"
    assert second.cidr == "10.0.1.0/24"
    free = engine.subnets.available(CTX, 24, cidr_text="10.0.0.0/16", limit=1)
    assert free.blocks == ["10.0.2.0/24"]


def test_rolled_back_allocation_freed(engine: Engine) -> None:
    engine.subnets.create(CTX, "10.0.0.0/16", is_container=True)
    engine.subnets.available(CTX, 24, cidr_text="10.0.0.0/16")
    rollback = pytest.raises(RuntimeError, match="roll back")
    with rollback, engine.store.transaction():
        engine.subnets.allocate(CTX, 24, cidr_text="10.0.0.0/16")
        raise RuntimeError("roll back")
    free = engine.subnets.available(CTX, 24, cidr_text="10.0.0.0/16", limit=1)
    assert free.blocks == ["10.0.0.0/24"]


def test_committed_rows_indexed_once(engine: Engine) -> None:
    engine.subnets.create(CTX, "10.0.0.0/16", is_container=True)
    engine.subnets.index.clear()
    with engine.store.transaction():
        engine.subnets.create(CTX, "10.0.0.0/24")
        engine.subnets.available(CTX, 24, cidr_text="10.0.0.0/16")
    # The index read the /24 inside the transaction and keeps it once.
    starts, ends = engine.subnets.index.occupied(
        CTX.workspace, 4, ["global"], 10 << 24, (10 << 24) + 65535
    )
    assert [(int(s), int(e)) for s, e in zip(starts, ends, strict=True)] == [
        (10 << 24, (10 << 24) + 255)
    ]
    free = engine.subnets.available(CTX, 24, cidr_text="10.0.0.0/16", limit=1)
    assert free.blocks == ["10.0.1.0/24"]
    assert free.total_free == 255
