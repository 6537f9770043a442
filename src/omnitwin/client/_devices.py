"""Client namespaces for devices, drift, discovery and topology.

Sync classes return results; the ``Async*`` classes return coroutines with
the same names and parameters. :func:`load_sample_devices` loads the sample
network's devices and cables through a client.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from omnitwin.engine.ingest import sample_detected_state, sample_twin_state
from omnitwin.engine.jobs import Job
from omnitwin.models import (
    AuditEvent,
    BlastRadiusResult,
    Device,
    DriftEvent,
    IngestReport,
    Page,
    Site,
    TopologyGraph,
    TopologyLink,
    TopologyPath,
)

if TYPE_CHECKING:
    from omnitwin.sample import SampleNetwork

__all__ = [
    "AsyncDevices",
    "AsyncDiscovery",
    "AsyncDrift",
    "AsyncTopology",
    "Devices",
    "Discovery",
    "Drift",
    "Topology",
    "load_sample_devices",
    "sample_detected_state",
]


class _Backend(Protocol):
    def call(self, operation: str, params: dict[str, Any]) -> Any: ...

    async def acall(self, operation: str, params: dict[str, Any]) -> Any: ...


def _params(**values: Any) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


class _Sync:
    def __init__(self, backend: _Backend) -> None:
        self._backend = backend

    def _call(self, operation: str, params: dict[str, Any]) -> Any:
        return self._backend.call(operation, params)


class _Async:
    def __init__(self, backend: _Backend) -> None:
        self._backend = backend

    async def _call(self, operation: str, params: dict[str, Any]) -> Any:
        return await self._backend.acall(operation, params)


class Devices(_Sync):
    """Devices and sites: ``client.devices``."""

    def create(self, hostname: str, *, role: str, site: str, **fields: Any) -> Device:
        """Create a device; ``fields`` are rack, serial, management_address,
        platform, model, owner, twin_state and intent."""
        params = {"hostname": hostname, "role": role, "site": site, **fields}
        result: Device = self._call("devices.create", params)
        return result

    def create_many(self, items: Iterable[Mapping[str, Any]]) -> builtins.list[Device]:
        """Create devices in one transaction; each item has create's arguments."""
        result: builtins.list[Device] = self._call(
            "devices.create_many", {"items": [dict(i) for i in items]}
        )
        return result

    def get(self, id_or_hostname: str) -> Device:
        """Return a device by id or hostname."""
        result: Device = self._call("devices.get", {"id": id_or_hostname})
        return result

    def list(
        self,
        *,
        site: str | None = None,
        role: str | None = None,
        has_drift: bool | None = None,
        page: int = 1,
        per_page: int = 50,
    ) -> Page[Device]:
        """List devices by hostname; filters as in ``DeviceService.list``."""
        params = _params(site=site, role=role, has_drift=has_drift)
        result: Page[Device] = self._call(
            "devices.list", {**params, "page": page, "per_page": per_page}
        )
        return result

    def iter(self, *, per_page: int = 200, **filters: Any) -> Iterator[Device]:
        """Iterate over every matching device, fetching one page at a time."""
        page = 1
        while True:
            result = self.list(page=page, per_page=per_page, **filters)
            yield from result.data
            if page >= result.pages:
                return
            page += 1

    def update(self, device_id: str, changes: Mapping[str, Any]) -> Device:
        """Update a device; ``"twin_state.<path>"`` keys set one nested value."""
        result: Device = self._call(
            "devices.update", {"id": device_id, "changes": dict(changes)}
        )
        return result

    def audit(
        self, device_id: str, *, page: int = 1, per_page: int = 50
    ) -> Page[AuditEvent]:
        """Return the audit events of one device, oldest first."""
        result: Page[AuditEvent] = self._call(
            "devices.audit", {"id": device_id, "page": page, "per_page": per_page}
        )
        return result

    def reconcile(
        self, device_id: str, strategy: str, fields: Iterable[str] | None = None
    ) -> Job:
        """Start a reconcile job and return it at once."""
        params: dict[str, Any] = {"id": device_id, "strategy": strategy}
        params["fields"] = None if fields is None else builtins.list(fields)
        result: Job = self._call("devices.reconcile", params)
        return result

    def decide(self, job_id: str, decisions: Mapping[str, str]) -> Job:
        """Apply ``{field: "twin"|"detected"|"ignore"}`` to an interactive job."""
        result: Job = self._call(
            "devices.decide", {"job_id": job_id, "decisions": dict(decisions)}
        )
        return result

    def remediation_plans(
        self, device_id: str | None = None
    ) -> builtins.list[dict[str, Any]]:
        """Return remediation plans recorded by ``trust_twin``, newest first."""
        result: builtins.list[dict[str, Any]] = self._call(
            "devices.remediation_plans", _params(id=device_id)
        )
        return result

    def create_site(self, name: str, **fields: Any) -> Site:
        """Create a site; ``fields`` are region, owner and description."""
        result: Site = self._call("sites.create", {"name": name, **fields})
        return result

    def list_sites(self) -> builtins.list[Site]:
        """Return every site, ordered by name."""
        result: builtins.list[Site] = self._call("sites.list", {})
        return result


class Drift(_Sync):
    """Drift events and scores: ``client.drift``."""

    def events(
        self,
        *,
        device: str | None = None,
        status: str | None = None,
        field: str | None = None,
        page: int = 1,
        per_page: int = 50,
    ) -> Page[DriftEvent]:
        """List drift events, newest first."""
        params = _params(device=device, status=status, field=field)
        result: Page[DriftEvent] = self._call(
            "drift.events", {**params, "page": page, "per_page": per_page}
        )
        return result

    def get(self, event_id: str) -> DriftEvent:
        """Return one drift event."""
        result: DriftEvent = self._call("drift.get", {"id": event_id})
        return result

    def ignore(self, event_id: str, *, reason: str | None = None) -> DriftEvent:
        """Mark an open event ignored."""
        result: DriftEvent = self._call(
            "drift.ignore", {"id": event_id, **_params(reason=reason)}
        )
        return result

    def rescore_all(self) -> dict[str, Any]:
        """Score every device and sync its events; return counts and seconds."""
        result: dict[str, Any] = self._call("drift.rescore_all", {})
        return result

    def links(self) -> dict[str, builtins.list[TopologyLink]]:
        """Return intended links not observed and observed links not intended."""
        result: dict[str, builtins.list[TopologyLink]] = self._call("drift.links", {})
        return result


class Discovery(_Sync):
    """Discovery ingest: ``client.discovery``."""

    def ingest(
        self,
        format: str,
        data: Any,
        *,
        platform: str | None = None,
        command: str | None = None,
        hostname: str | None = None,
    ) -> IngestReport:
        """Ingest NAPALM JSON, CLI text (with platform and command), Nmap XML or a
        Batfish snapshot (the map of its files that ``read_snapshot`` returns)."""
        params = _params(platform=platform, command=command, hostname=hostname)
        result: IngestReport = self._call(
            "discovery.ingest", {"format": format, "data": data, **params}
        )
        return result

    def unmatched(self, *, limit: int = 100) -> builtins.list[dict[str, Any]]:
        """Return stored observations that matched no device, newest first."""
        result: builtins.list[dict[str, Any]] = self._call(
            "discovery.unmatched", {"limit": limit}
        )
        return result


class Topology(_Sync):
    """Links, graph, paths and blast radius: ``client.topology``."""

    def add_link(
        self,
        a: str,
        port_a: str | None,
        b: str,
        port_b: str | None,
        *,
        cable: str | None = None,
        kind: str = "intended",
        weight: float = 1.0,
    ) -> TopologyLink:
        """Add a link between two devices named by id or hostname."""
        params = {"a": a, "port_a": port_a, "b": b, "port_b": port_b}
        result: TopologyLink = self._call(
            "topology.add_link",
            {**params, "cable": cable, "kind": kind, "weight": weight},
        )
        return result

    def add_links(
        self, links: Iterable[Mapping[str, Any]]
    ) -> builtins.list[TopologyLink]:
        """Add links in one transaction."""
        result: builtins.list[TopologyLink] = self._call(
            "topology.add_links", {"links": [dict(link) for link in links]}
        )
        return result

    def links(
        self, *, kind: str | None = None, device: str | None = None
    ) -> builtins.list[TopologyLink]:
        """Return links, optionally of one kind or one device."""
        result: builtins.list[TopologyLink] = self._call(
            "topology.links", _params(kind=kind, device=device)
        )
        return result

    def graph(
        self,
        *,
        scope: str | None = None,
        depth: int = 2,
        annotate_drift: bool = False,
        max_elements: int | None = None,
    ) -> TopologyGraph:
        """Return the topology or the part around ``scope``."""
        params = _params(scope=scope, max_elements=max_elements)
        result: TopologyGraph = self._call(
            "topology.graph",
            {**params, "depth": depth, "annotate_drift": annotate_drift},
        )
        return result

    def path(
        self, source: str, target: str, *, kinds: Iterable[str] = ("intended",)
    ) -> TopologyPath:
        """Return the cheapest path between two devices."""
        result: TopologyPath = self._call(
            "topology.path",
            {"source": source, "target": target, "kinds": tuple(kinds)},
        )
        return result

    def blast_radius(
        self,
        target: str,
        *,
        roots: Iterable[str] | None = None,
        kinds: Iterable[str] = ("intended",),
    ) -> BlastRadiusResult:
        """Return what a failure of the device or link cuts off."""
        params: dict[str, Any] = {"target": target, "kinds": tuple(kinds)}
        if roots is not None:
            params["roots"] = builtins.list(roots)
        result: BlastRadiusResult = self._call("topology.blast_radius", params)
        return result


class AsyncDevices(_Async):
    """Devices and sites of an ``AsyncClient``."""

    async def create(
        self, hostname: str, *, role: str, site: str, **fields: Any
    ) -> Device:
        """Create a device."""
        params = {"hostname": hostname, "role": role, "site": site, **fields}
        result: Device = await self._call("devices.create", params)
        return result

    async def get(self, id_or_hostname: str) -> Device:
        """Return a device by id or hostname."""
        result: Device = await self._call("devices.get", {"id": id_or_hostname})
        return result

    async def list(
        self, *, page: int = 1, per_page: int = 50, **filters: Any
    ) -> Page[Device]:
        """List devices; filters are site, role and has_drift."""
        result: Page[Device] = await self._call(
            "devices.list", {**_params(**filters), "page": page, "per_page": per_page}
        )
        return result

    async def update(self, device_id: str, changes: Mapping[str, Any]) -> Device:
        """Update a device."""
        result: Device = await self._call(
            "devices.update", {"id": device_id, "changes": dict(changes)}
        )
        return result

    async def reconcile(
        self, device_id: str, strategy: str, fields: Iterable[str] | None = None
    ) -> Job:
        """Start a reconcile job and return it at once."""
        params: dict[str, Any] = {"id": device_id, "strategy": strategy}
        params["fields"] = None if fields is None else builtins.list(fields)
        result: Job = await self._call("devices.reconcile", params)
        return result

    async def decide(self, job_id: str, decisions: Mapping[str, str]) -> Job:
        """Apply decisions to an interactive reconcile job."""
        result: Job = await self._call(
            "devices.decide", {"job_id": job_id, "decisions": dict(decisions)}
        )
        return result


class AsyncDrift(_Async):
    """Drift events of an ``AsyncClient``."""

    async def events(
        self, *, page: int = 1, per_page: int = 50, **filters: Any
    ) -> Page[DriftEvent]:
        """List drift events; filters are device, status and field."""
        result: Page[DriftEvent] = await self._call(
            "drift.events", {**_params(**filters), "page": page, "per_page": per_page}
        )
        return result

    async def ignore(self, event_id: str, *, reason: str | None = None) -> DriftEvent:
        """Mark an open event ignored."""
        result: DriftEvent = await self._call(
            "drift.ignore", {"id": event_id, **_params(reason=reason)}
        )
        return result

    async def rescore_all(self) -> dict[str, Any]:
        """Score every device and sync its events."""
        result: dict[str, Any] = await self._call("drift.rescore_all", {})
        return result


class AsyncDiscovery(_Async):
    """Discovery ingest of an ``AsyncClient``."""

    async def ingest(self, format: str, data: Any, **options: Any) -> IngestReport:
        """Ingest discovery output; options are platform, command and hostname."""
        result: IngestReport = await self._call(
            "discovery.ingest", {"format": format, "data": data, **_params(**options)}
        )
        return result


class AsyncTopology(_Async):
    """Topology of an ``AsyncClient``."""

    async def graph(self, **options: Any) -> TopologyGraph:
        """Return the topology; options as in :meth:`Topology.graph`."""
        result: TopologyGraph = await self._call("topology.graph", _params(**options))
        return result

    async def path(
        self, source: str, target: str, *, kinds: Iterable[str] = ("intended",)
    ) -> TopologyPath:
        """Return the cheapest path between two devices."""
        result: TopologyPath = await self._call(
            "topology.path",
            {"source": source, "target": target, "kinds": tuple(kinds)},
        )
        return result

    async def blast_radius(self, target: str, **options: Any) -> BlastRadiusResult:
        """Return what a failure of the device or link cuts off."""
        result: BlastRadiusResult = await self._call(
            "topology.blast_radius", {"target": target, **_params(**options)}
        )
        return result


class _SampleClient(Protocol):
    devices: Devices
    topology: Topology


def load_sample_devices(client: _SampleClient, network: SampleNetwork) -> int:
    """Create the sample network's devices and cables; return the device count.

    Devices that already exist (by hostname) are skipped, and so are their
    cables, so loading twice is safe. Twin states hold the host label,
    model, OS version, serial and the cabled interfaces.

    Examples
    --------
    >>> import omnitwin
    >>> from omnitwin.sample import generate_fabric
    >>> with omnitwin.Client() as client:
    ...     load_sample_devices(client, generate_fabric(sites=1, leaves=2))
    10
    """
    existing: set[str] = set()
    page = 1
    while True:
        listing = client.devices.list(page=page, per_page=200)
        existing |= {d.hostname for d in listing.data}
        if page >= listing.pages:
            break
        page += 1
    twins = sample_twin_state(network)
    items = [
        {
            "hostname": d.hostname,
            "role": d.role,
            "site": d.site,
            "rack": d.rack,
            "serial": d.serial,
            "management_address": d.management_address,
            "model": d.model,
            "platform": "linux" if d.role == "server" else "eos",
            "twin_state": twins[d.hostname],
        }
        for d in network.devices
        if d.hostname not in existing
    ]
    created = client.devices.create_many(items)
    new = {d.hostname for d in created}
    links = [
        {
            "a": link.a,
            "port_a": link.port_a,
            "b": link.b,
            "port_b": link.port_b,
            "cable": link.cable,
        }
        for link in network.links
        if link.a in new or link.b in new
    ]
    client.topology.add_links(links)
    return len(created)
