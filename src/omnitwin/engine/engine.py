"""The engine facade: one store and the services over it."""

from __future__ import annotations

import threading
from pathlib import Path

from omnitwin.engine.addresses import AddressService
from omnitwin.engine.agent.runtime import AgentRuntime
from omnitwin.engine.audit import AuditLog
from omnitwin.engine.devices import DeviceService
from omnitwin.engine.driftstore import DriftService
from omnitwin.engine.imports import ImportService
from omnitwin.engine.ingest import IngestService
from omnitwin.engine.jobs import JobRunner
from omnitwin.engine.reconcile import ReconcileService
from omnitwin.engine.store import Store
from omnitwin.engine.subnets import SubnetService
from omnitwin.engine.topostore import TopologyService
from omnitwin.engine.vlans import VlanService
from omnitwin.errors import ValidationError

__all__ = ["Engine", "open_engine"]

_open_engines: dict[str, Engine] = {}
_registry_lock = threading.Lock()


class Engine:
    """All omnitwin behaviour over one DuckDB database.

    Parameters
    ----------
    path : str or Path
        A DuckDB file (created when missing) or ``":memory:"``.
    read_only : bool
        Open an existing file without write access.

    Examples
    --------
    >>> from omnitwin.engine.context import Context
    >>> engine = Engine(":memory:")
    >>> engine.subnets.create(Context(), "10.0.0.0/24").cidr
    '10.0.0.0/24'
    >>> engine.close()
    """

    def __init__(self, path: str | Path = ":memory:", *, read_only: bool = False):
        self.store = Store(path, read_only=read_only)
        self.audit = AuditLog(self.store)
        self.subnets = SubnetService(self.store, self.audit)
        self.addresses = AddressService(self.store, self.audit, self.subnets)
        self.jobs = JobRunner(self.store)
        self.devices = DeviceService(self.store, self.audit)
        self.drift = DriftService(self.store, self.audit, self.devices)
        self.topology = TopologyService(self.store, self.audit, self.devices)
        self.discovery = IngestService(
            self.store, self.audit, self.devices, self.drift, self.topology
        )
        self.reconcile = ReconcileService(
            self.store, self.audit, self.devices, self.drift, self.topology, self.jobs
        )
        self.vlans = VlanService(self.store, self.audit)
        self.imports = ImportService(self)
        self.agents = AgentRuntime(self)
        self.closed = False
        self.users = 0

    @property
    def path(self) -> str:
        """The database path, or ``":memory:"``."""
        return self.store.path

    def release(self) -> None:
        """Drop one user taken by :func:`open_engine`; close when none is left."""
        with _registry_lock:
            if self.users == 0:
                return  # built directly, not by open_engine: its owner closes it
            self.users -= 1
            last = self.users == 0
        if last:
            self.close()

    def close(self) -> None:
        """Close the database and forget this engine in the open-engine registry."""
        if self.closed:
            return
        self.closed = True
        with _registry_lock:
            for key, engine in list(_open_engines.items()):
                if engine is self:
                    del _open_engines[key]
        self.jobs.shutdown()
        self.store.close()


def open_engine(path: str | Path = ":memory:", *, read_only: bool = False) -> Engine:
    """Return the engine of a database file, shared within this process.

    DuckDB allows one writing process per file, and one configuration per file
    within a process, so every client of one file in this process shares one
    engine. Asking for ``read_only`` on a file that this process already has
    open for writing returns that engine: it can read, and the caller simply
    does not write. ``":memory:"`` always opens a new, private database.
    Each call counts as one user; :meth:`Engine.release` closes the engine
    when its last user lets go.
    """
    if str(path) == ":memory:":
        private = Engine(":memory:", read_only=read_only)
        private.users = 1
        return private
    key = str(Path(path).expanduser().resolve())
    with _registry_lock:
        engine = _open_engines.get(key)
        if engine is not None and not engine.closed:
            if engine.store.read_only and not read_only:
                message = (
                    f"{key} is already open read-only in this process; close that "
                    "client first to open it for writing"
                )
                raise ValidationError(message, details={"path": key})
            engine.users += 1
            return engine
        engine = Engine(key, read_only=read_only)
        engine.users = 1
        _open_engines[key] = engine
        return engine
