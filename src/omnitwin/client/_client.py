"""The public client: :class:`AsyncClient`, :class:`Client` and :func:`connect`.

Both clients expose the same resource namespaces (``client.subnets``,
``client.addresses``, ``client.audit``) over a backend. The sync client's
methods return results; the async client's methods are coroutines. Each
namespace class only names an operation and its parameters; the backend runs
it, in process or over HTTP.
"""

from __future__ import annotations

import asyncio
import builtins
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, Protocol

from omnitwin.client._agents import Agents, AsyncAgents
from omnitwin.client._devices import (
    AsyncDevices,
    AsyncDiscovery,
    AsyncDrift,
    AsyncTopology,
    Devices,
    Discovery,
    Drift,
    Topology,
)
from omnitwin.client._imports import AsyncImports, Imports
from omnitwin.client._local import LocalBackend
from omnitwin.engine.cidr import AllocationPolicy
from omnitwin.engine.context import DEFAULT_ACTOR, DEFAULT_WORKSPACE, Context
from omnitwin.engine.engine import open_engine
from omnitwin.engine.jobs import Job
from omnitwin.errors import ValidationError
from omnitwin.models import (
    Address,
    AuditEvent,
    AuditVerification,
    FreeBlocks,
    Page,
    Subnet,
    SubnetDetail,
)

__all__ = ["AsyncClient", "Client", "connect"]


class Backend(Protocol):
    """The operations a client needs from a backend."""

    def call(self, operation: str, params: dict[str, Any]) -> Any: ...

    async def acall(self, operation: str, params: dict[str, Any]) -> Any: ...

    def close(self) -> None: ...


def _params(**values: Any) -> dict[str, Any]:
    """Drop unset optional parameters so that backend defaults apply."""
    return {k: v for k, v in values.items() if v is not None}


class _Namespace:
    def __init__(self, backend: Backend) -> None:
        self._backend = backend

    def _call(self, operation: str, params: dict[str, Any]) -> Any:
        return self._backend.call(operation, params)


class _AsyncNamespace:
    def __init__(self, backend: Backend) -> None:
        self._backend = backend

    async def _call(self, operation: str, params: dict[str, Any]) -> Any:
        return await self._backend.acall(operation, params)


class Subnets(_Namespace):
    """Subnets: ``client.subnets``."""

    def list(
        self,
        *,
        within: str | None = None,
        contains: str | None = None,
        status: str | None = None,
        purpose: str | None = None,
        vrf: str | None = None,
        owner: str | None = None,
        page: int = 1,
        per_page: int = 50,
    ) -> Page[Subnet]:
        """List subnets in address order; see :meth:`SubnetService.list`."""
        params = _params(
            within=within,
            contains=contains,
            status=status,
            purpose=purpose,
            vrf=vrf,
            owner=owner,
        )
        result: Page[Subnet] = self._call(
            "subnets.list", {**params, "page": page, "per_page": per_page}
        )
        return result

    def iter(self, *, per_page: int = 200, **filters: Any) -> Iterator[Subnet]:
        """Iterate over every matching subnet, fetching one page at a time."""
        page = 1
        while True:
            result = self.list(page=page, per_page=per_page, **filters)
            yield from result.data
            if page >= result.pages:
                return
            page += 1

    def get(self, subnet_id: str) -> SubnetDetail:
        """Return a subnet with total_ips, used_ips, utilization and children."""
        result: SubnetDetail = self._call("subnets.get", {"id": subnet_id})
        return result

    def create(self, cidr: str, *, intent: str | None = None, **fields: Any) -> Subnet:
        """Create a subnet; ``fields`` are status, purpose, vlan_id, owner, tags,
        vrf, parent_id, is_pool, is_container and normalize."""
        result: Subnet = self._call(
            "subnets.create", {"cidr": cidr, **_params(intent=intent), **fields}
        )
        return result

    def update(
        self, subnet_id: str, *, intent: str | None = None, **changes: Any
    ) -> Subnet:
        """Update a subnet; tags are merged, a tag set to ``None`` is removed."""
        result: Subnet = self._call(
            "subnets.update",
            {"id": subnet_id, "changes": changes, **_params(intent=intent)},
        )
        return result

    def audit(
        self, subnet_id: str, *, page: int = 1, per_page: int = 50
    ) -> Page[AuditEvent]:
        """Return the audit events of one subnet, oldest first."""
        result: Page[AuditEvent] = self._call(
            "subnets.audit", {"id": subnet_id, "page": page, "per_page": per_page}
        )
        return result

    def available(
        self,
        prefix_length: int,
        *,
        subnet_id: str | None = None,
        cidr: str | None = None,
        vrf: str | None = None,
        scope: str | None = None,
        limit: int = 100,
    ) -> FreeBlocks:
        """List free blocks of ``prefix_length`` inside a subnet or a CIDR."""
        params = _params(subnet_id=subnet_id, cidr=cidr, vrf=vrf, scope=scope)
        result: FreeBlocks = self._call(
            "subnets.available",
            {"prefix_length": prefix_length, "limit": limit, **params},
        )
        return result

    def allocate(
        self,
        prefix_length: int,
        *,
        subnet_id: str | None = None,
        cidr: str | None = None,
        policy: AllocationPolicy = "first_fit",
        intent: str | None = None,
        **fields: Any,
    ) -> Subnet:
        """Create the next free block of ``prefix_length`` inside a parent."""
        params = _params(subnet_id=subnet_id, cidr=cidr, intent=intent)
        result: Subnet = self._call(
            "subnets.allocate",
            {"prefix_length": prefix_length, "policy": policy, **params, **fields},
        )
        return result

    def available_addresses(
        self, subnet_id: str, *, limit: int = 16
    ) -> builtins.list[str]:
        """Return the first usable, unassigned addresses of a subnet."""
        result: builtins.list[str] = self._call(
            "subnets.available_addresses", {"id": subnet_id, "limit": limit}
        )
        return result

    def to_pandas(
        self,
        *,
        within: str | None = None,
        status: str | None = None,
        vrf: str | None = None,
    ) -> Any:
        """Return every matching subnet as a DataFrame (dtypes as in the loaders).

        The embedded engine runs one bulk query, and the HTTP backend reads
        ``GET /v1/subnets/export`` in one streamed response (Arrow IPC when
        pyarrow is installed, else NDJSON). A backend without the
        ``subnets.export`` operation is read page by page instead.
        """
        from omnitwin.notebook.loaders import subnets_frame, to_pandas

        params = _params(within=within, status=status, vrf=vrf)
        try:
            frame = self._call("subnets.export", params)
        except KeyError:
            return to_pandas(builtins.list(self.iter(**params)), kind="Subnet")
        return subnets_frame(frame)


class Addresses(_Namespace):
    """Assigned IP addresses: ``client.addresses``."""

    def create(
        self, address: str, *, intent: str | None = None, **fields: Any
    ) -> Address:
        """Assign an address; ``fields`` are vrf, status, hostname, device_id
        and interface."""
        result: Address = self._call(
            "addresses.create", {"address": address, **_params(intent=intent), **fields}
        )
        return result

    def get(self, address_id: str) -> Address:
        """Return one assigned address."""
        result: Address = self._call("addresses.get", {"id": address_id})
        return result

    def list(
        self,
        *,
        subnet_id: str | None = None,
        vrf: str | None = None,
        hostname: str | None = None,
        page: int = 1,
        per_page: int = 50,
    ) -> Page[Address]:
        """List assigned addresses in address order."""
        params = _params(subnet_id=subnet_id, vrf=vrf, hostname=hostname)
        result: Page[Address] = self._call(
            "addresses.list", {**params, "page": page, "per_page": per_page}
        )
        return result


class Audit(_Namespace):
    """The audit trail: ``client.audit``."""

    def list(
        self,
        *,
        subject: str | None = None,
        actor: str | None = None,
        action: str | None = None,
        page: int = 1,
        per_page: int = 50,
    ) -> Page[AuditEvent]:
        """List audit events, oldest first."""
        params = _params(subject=subject, actor=actor, action=action)
        result: Page[AuditEvent] = self._call(
            "audit.list", {**params, "page": page, "per_page": per_page}
        )
        return result

    def verify(self) -> AuditVerification:
        """Check the hash chain and report the first broken link, if any."""
        result: AuditVerification = self._call("audit.verify", {})
        return result


class Jobs(_Namespace):
    """Background jobs (reconcile, import): ``client.jobs``."""

    def get(self, job_id: str) -> Job:
        """Return a job with its status and progress."""
        result: Job = self._call("jobs.get", {"id": job_id})
        return result

    def wait(self, job_id: str, *, timeout: float = 600.0) -> Job:
        """Block until the job finishes or waits for review; return it."""
        result: Job = self._call("jobs.wait", {"id": job_id, "timeout": timeout})
        return result

    def progress(self, job_id: str, *, interval: float = 0.25) -> Job:
        """Show a progress bar (tqdm.auto) until the job finishes; return it."""
        import time

        from tqdm.auto import tqdm

        job = self.get(job_id)
        with tqdm(total=job.total or None, desc=f"{job.kind} {job.id}") as bar:
            while not job.done and job.status != "awaiting_review":
                time.sleep(interval)
                job = self.get(job_id)
                bar.total = job.total or bar.total
                bar.n = job.processed
                bar.set_postfix_str(job.status)
                bar.refresh()
        return job


class AsyncJobs(_AsyncNamespace):
    """Background jobs of an :class:`AsyncClient`."""

    async def get(self, job_id: str) -> Job:
        """Return a job with its status and progress."""
        result: Job = await self._call("jobs.get", {"id": job_id})
        return result

    async def wait(self, job_id: str, *, timeout: float = 600.0) -> Job:
        """Wait until the job finishes or waits for review; return it."""
        result: Job = await self._call("jobs.wait", {"id": job_id, "timeout": timeout})
        return result


class AsyncSubnets(_AsyncNamespace):
    """Subnets: ``client.subnets`` of an :class:`AsyncClient`."""

    async def list(
        self, *, page: int = 1, per_page: int = 50, **filters: str | None
    ) -> Page[Subnet]:
        """List subnets; filters as in :meth:`Subnets.list`."""
        result: Page[Subnet] = await self._call(
            "subnets.list", {**_params(**filters), "page": page, "per_page": per_page}
        )
        return result

    async def iter(
        self, *, per_page: int = 200, **filters: str | None
    ) -> AsyncIterator[Subnet]:
        """Iterate over every matching subnet, fetching one page at a time."""
        page = 1
        while True:
            result = await self.list(page=page, per_page=per_page, **filters)
            for subnet in result.data:
                yield subnet
            if page >= result.pages:
                return
            page += 1

    async def to_pandas(
        self,
        *,
        within: str | None = None,
        status: str | None = None,
        vrf: str | None = None,
    ) -> Any:
        """Return every matching subnet as a DataFrame; see :meth:`Subnets.to_pandas`.

        The dtypes are applied in a worker thread, so that a large frame does
        not block the event loop.
        """
        from omnitwin.notebook.loaders import subnets_frame, to_pandas

        params = _params(within=within, status=status, vrf=vrf)
        try:
            frame = await self._call("subnets.export", params)
        except KeyError:
            records = [subnet async for subnet in self.iter(**params)]
            return await asyncio.to_thread(to_pandas, records, kind="Subnet")
        return await asyncio.to_thread(subnets_frame, frame)

    async def get(self, subnet_id: str) -> SubnetDetail:
        """Return a subnet with its usage and children."""
        result: SubnetDetail = await self._call("subnets.get", {"id": subnet_id})
        return result

    async def create(
        self, cidr: str, *, intent: str | None = None, **fields: Any
    ) -> Subnet:
        """Create a subnet; fields as in :meth:`Subnets.create`."""
        result: Subnet = await self._call(
            "subnets.create", {"cidr": cidr, **_params(intent=intent), **fields}
        )
        return result

    async def update(
        self, subnet_id: str, *, intent: str | None = None, **changes: Any
    ) -> Subnet:
        """Update a subnet; tags are merged."""
        result: Subnet = await self._call(
            "subnets.update",
            {"id": subnet_id, "changes": changes, **_params(intent=intent)},
        )
        return result

    async def audit(
        self, subnet_id: str, *, page: int = 1, per_page: int = 50
    ) -> Page[AuditEvent]:
        """Return the audit events of one subnet."""
        result: Page[AuditEvent] = await self._call(
            "subnets.audit", {"id": subnet_id, "page": page, "per_page": per_page}
        )
        return result

    async def available(
        self, prefix_length: int, *, limit: int = 100, **where: str | None
    ) -> FreeBlocks:
        """List free blocks; ``where`` is subnet_id or cidr, plus vrf and scope."""
        result: FreeBlocks = await self._call(
            "subnets.available",
            {"prefix_length": prefix_length, "limit": limit, **_params(**where)},
        )
        return result

    async def allocate(
        self,
        prefix_length: int,
        *,
        policy: AllocationPolicy = "first_fit",
        intent: str | None = None,
        **fields: Any,
    ) -> Subnet:
        """Create the next free block; fields as in :meth:`Subnets.allocate`."""
        result: Subnet = await self._call(
            "subnets.allocate",
            {
                "prefix_length": prefix_length,
                "policy": policy,
                **_params(intent=intent),
                **_params(**fields),
            },
        )
        return result

    async def available_addresses(
        self, subnet_id: str, *, limit: int = 16
    ) -> builtins.list[str]:
        """Return the first usable, unassigned addresses of a subnet."""
        result: builtins.list[str] = await self._call(
            "subnets.available_addresses", {"id": subnet_id, "limit": limit}
        )
        return result


class AsyncAddresses(_AsyncNamespace):
    """Assigned IP addresses of an :class:`AsyncClient`."""

    async def create(
        self, address: str, *, intent: str | None = None, **fields: Any
    ) -> Address:
        """Assign an address."""
        result: Address = await self._call(
            "addresses.create", {"address": address, **_params(intent=intent), **fields}
        )
        return result

    async def get(self, address_id: str) -> Address:
        """Return one assigned address."""
        result: Address = await self._call("addresses.get", {"id": address_id})
        return result

    async def list(
        self, *, page: int = 1, per_page: int = 50, **filters: str | None
    ) -> Page[Address]:
        """List assigned addresses in address order."""
        result: Page[Address] = await self._call(
            "addresses.list", {**_params(**filters), "page": page, "per_page": per_page}
        )
        return result


class AsyncAudit(_AsyncNamespace):
    """The audit trail of an :class:`AsyncClient`."""

    async def list(
        self, *, page: int = 1, per_page: int = 50, **filters: str | None
    ) -> Page[AuditEvent]:
        """List audit events, oldest first."""
        result: Page[AuditEvent] = await self._call(
            "audit.list", {**_params(**filters), "page": page, "per_page": per_page}
        )
        return result

    async def verify(self) -> AuditVerification:
        """Check the hash chain."""
        result: AuditVerification = await self._call("audit.verify", {})
        return result


def _backend_for(
    target: str | Path | None,
    *,
    read_only: bool,
    workspace: str,
    actor: str,
    api_key: str | None,
) -> Backend:
    if target is None:
        target = os.environ.get("OMNITWIN_BASE_URL") or "local::memory:"
    text = str(target)
    if text.startswith(("http://", "https://")):
        from omnitwin.client._http import HttpBackend

        return HttpBackend(text, api_key=api_key)
    path = text[len("local:") :] if text.startswith("local:") else text
    if not path:
        raise ValidationError(
            "empty database path; use 'local::memory:' or 'local:twin.duckdb'"
        )
    engine = open_engine(path, read_only=read_only)
    return LocalBackend(engine, Context(workspace=workspace, actor=actor))


class _ClientBase:
    def __init__(
        self,
        target: str | Path | None = None,
        *,
        api_key: str | None = None,
        read_only: bool = False,
        workspace: str = DEFAULT_WORKSPACE,
        actor: str = DEFAULT_ACTOR,
        backend: Backend | None = None,
    ) -> None:
        api_key = api_key or os.environ.get("OMNITWIN_API_KEY")
        self._backend = backend or _backend_for(
            target,
            read_only=read_only,
            workspace=workspace,
            actor=actor,
            api_key=api_key,
        )

    @property
    def backend(self) -> Backend:
        """The backend that runs this client's operations."""
        return self._backend


class Client(_ClientBase):
    """The synchronous omnitwin client.

    Parameters
    ----------
    target : str or Path, optional
        ``"local:PATH"`` or a bare path for an embedded DuckDB database,
        ``"local::memory:"`` (the default) for a private in-memory one. The
        ``OMNITWIN_BASE_URL`` environment variable is used when no target is
        given.
    api_key : str, optional
        The key of a remote API; defaults to ``OMNITWIN_API_KEY``.
    read_only : bool
        Open a local database without write access.
    workspace, actor : str
        Who the client acts as; ``actor`` is recorded in the audit trail.

    Examples
    --------
    >>> import omnitwin
    >>> with omnitwin.Client("local::memory:") as client:
    ...     block = client.subnets.create("10.0.0.0/16", is_container=True)
    ...     client.subnets.allocate(24, subnet_id=block.id).cidr
    '10.0.0.0/24'
    """

    def __init__(self, target: str | Path | None = None, **options: Any) -> None:
        super().__init__(target, **options)
        self.subnets = Subnets(self._backend)
        self.addresses = Addresses(self._backend)
        self.audit = Audit(self._backend)
        self.jobs = Jobs(self._backend)
        self.devices = Devices(self._backend)
        self.drift = Drift(self._backend)
        self.discovery = Discovery(self._backend)
        self.topology = Topology(self._backend)
        self.imports = Imports(self._backend)
        self.agents = Agents(self._backend)

    def close(self) -> None:
        """Release the backend."""
        self._backend.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class AsyncClient(_ClientBase):
    """The asynchronous omnitwin client; same namespaces as :class:`Client`.

    Examples
    --------
    >>> import asyncio, omnitwin
    >>> async def main() -> str:
    ...     async with omnitwin.AsyncClient() as client:
    ...         subnet = await client.subnets.create("2001:db8::/48")
    ...         return subnet.cidr
    >>> asyncio.run(main())
    '2001:db8::/48'
    """

    def __init__(self, target: str | Path | None = None, **options: Any) -> None:
        super().__init__(target, **options)
        self.subnets = AsyncSubnets(self._backend)
        self.addresses = AsyncAddresses(self._backend)
        self.audit = AsyncAudit(self._backend)
        self.jobs = AsyncJobs(self._backend)
        self.devices = AsyncDevices(self._backend)
        self.drift = AsyncDrift(self._backend)
        self.discovery = AsyncDiscovery(self._backend)
        self.topology = AsyncTopology(self._backend)
        self.imports = AsyncImports(self._backend)
        self.agents = AsyncAgents(self._backend)

    async def aclose(self) -> None:
        """Release the backend, awaiting its async close when it has one."""
        aclose = getattr(self._backend, "aclose", None)
        if aclose is not None:
            await aclose()
        else:
            self._backend.close()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


def connect(target: str | Path | None = None, **options: Any) -> Client:
    """Return a sync :class:`Client`; see its parameters.

    Examples
    --------
    >>> import omnitwin
    >>> client = omnitwin.connect("local::memory:")
    >>> client.subnets.create("192.0.2.0/24").cidr
    '192.0.2.0/24'
    """
    return Client(target, **options)
