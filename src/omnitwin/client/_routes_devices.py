"""REST routes of the device, site, drift, discovery and topology operations.

:mod:`omnitwin.client._routes` merges :data:`DEVICE_ROUTES` into its table.
"""

from __future__ import annotations

from omnitwin.client._routes import _PAGING as PAGING
from omnitwin.client._routes import Param, ResultSpec, Route
from omnitwin.client._routes import _body as body_param
from omnitwin.client._routes import _path as path_param
from omnitwin.client._routes import _query as query_param
from omnitwin.engine.jobs import Job
from omnitwin.models import (
    DRIFT_STATUSES,
    AuditEvent,
    BlastRadiusResult,
    Device,
    DriftEvent,
    IngestReport,
    Site,
    TopologyGraph,
    TopologyLink,
    TopologyPath,
)

__all__ = ["DEVICE_ROUTES"]

_DEVICE_ID = path_param("id", "device id or hostname, e.g. leaf-01.fra1")
_LINK_KINDS = ("intended", "detected")
_KINDS = query_param(
    "kinds",
    "string_list",
    enum=_LINK_KINDS,
    description="link kinds to walk, one query parameter per kind",
)
_INGEST_FORMATS = ("napalm", "cli", "nmap", "batfish")
_STRATEGIES = ("trust_detected", "trust_twin", "interactive")
_INTENT = body_param("intent", description="reason stored in the audit event")

_DEVICE_FIELDS = (
    body_param("role", description="free text, e.g. switch or router"),
    body_param("site", description="site name, created when missing"),
    body_param("rack", nullable=True),
    body_param("serial", nullable=True),
    body_param("management_address", nullable=True, description="e.g. 10.0.0.1"),
    body_param("platform", nullable=True, description="e.g. eos or linux"),
    body_param("model", nullable=True),
    body_param("owner", nullable=True),
    body_param("twin_state", "object", nullable=True, description="intended state"),
)


def _required(param: Param) -> Param:
    return Param(
        param.name, param.type, param.location, True, description=param.description
    )


def _grouped(param: Param, group: str) -> Param:
    return Param(
        param.name,
        param.type,
        param.location,
        nullable=param.nullable,
        description=param.description,
        group=group,
    )


_DEVICE = ResultSpec("record", Device)
_DEVICES = ResultSpec("list", Device)
_LINKS = ResultSpec("list", TopologyLink)
_DRIFT_EVENTS = ResultSpec("page", DriftEvent)
_DRIFT_FILTERS = (
    query_param("status", enum=DRIFT_STATUSES),
    query_param("field", description="dotted path, e.g. os_version"),
    *PAGING,
)

DEVICE_ROUTES: dict[str, tuple[Route, ...]] = {
    "devices.list": (
        Route(
            "devices.list",
            "GET",
            "/devices",
            (
                query_param("site"),
                query_param("role"),
                query_param("has_drift", "boolean"),
                *PAGING,
            ),
            ResultSpec("page", Device),
            summary="List devices by hostname",
        ),
    ),
    "devices.create": (
        Route(
            "devices.create",
            "POST",
            "/devices",
            (
                body_param("hostname", required=True, description="e.g. leaf-01"),
                *(
                    _required(p) if p.name in ("role", "site") else p
                    for p in _DEVICE_FIELDS
                ),
                _INTENT,
            ),
            _DEVICE,
            status=201,
            write=True,
            summary="Create a device",
        ),
    ),
    "devices.create_many": (
        Route(
            "devices.create_many",
            "POST",
            "/devices/bulk",
            (
                body_param(
                    "items",
                    "object_list",
                    required=True,
                    description="devices, each with the fields of POST /devices",
                ),
                _INTENT,
            ),
            _DEVICES,
            status=201,
            write=True,
            summary="Create devices in one transaction: all or none",
        ),
    ),
    "devices.get": (
        Route(
            "devices.get",
            "GET",
            "/devices/{id}",
            (_DEVICE_ID,),
            _DEVICE,
            summary="Get a device with its twin and detected state",
        ),
    ),
    "devices.update": (
        Route(
            "devices.update",
            "PATCH",
            "/devices/{id}",
            (
                _DEVICE_ID,
                _grouped(body_param("hostname"), "changes"),
                *(_grouped(p, "changes") for p in _DEVICE_FIELDS),
                _INTENT,
            ),
            _DEVICE,
            write=True,
            rest_into="changes",
            summary="Update a device; 'twin_state.<path>' fields set one value",
        ),
    ),
    "devices.audit": (
        Route(
            "devices.audit",
            "GET",
            "/devices/{id}/audit",
            (_DEVICE_ID, *PAGING),
            ResultSpec("page", AuditEvent),
            summary="List the audit events of a device",
        ),
    ),
    "devices.reconcile": (
        Route(
            "devices.reconcile",
            "POST",
            "/devices/{id}/reconcile",
            (
                _DEVICE_ID,
                body_param("strategy", required=True, enum=_STRATEGIES),
                body_param(
                    "fields",
                    "string_list",
                    nullable=True,
                    description="dotted paths to reconcile, or null for every field",
                ),
                _INTENT,
            ),
            ResultSpec("record", Job),
            status=202,
            write=True,
            summary="Start reconciling a device's open drift; returns the job",
        ),
    ),
    "devices.decide": (
        Route(
            "devices.decide",
            "POST",
            "/jobs/{job_id}/decisions",
            (
                path_param("job_id", "interactive reconcile job id"),
                body_param(
                    "decisions",
                    "string_map",
                    required=True,
                    description="field to twin, detected or ignore",
                ),
                _INTENT,
            ),
            ResultSpec("record", Job),
            status=202,
            write=True,
            summary="Apply decisions to an interactive reconcile job",
        ),
    ),
    "devices.remediation_plans": (
        Route(
            "devices.remediation_plans",
            "GET",
            "/devices/{id}/remediation-plans",
            (_DEVICE_ID,),
            ResultSpec("list", item_type="object"),
            summary="List a device's remediation plans, newest first",
        ),
        Route(
            "devices.remediation_plans",
            "GET",
            "/remediation-plans",
            (),
            ResultSpec("list", item_type="object"),
            summary="List remediation plans recorded by trust_twin, newest first",
        ),
    ),
    "sites.list": (
        Route(
            "sites.list",
            "GET",
            "/sites",
            (),
            ResultSpec("list", Site),
            summary="List sites by name",
        ),
    ),
    "sites.create": (
        Route(
            "sites.create",
            "POST",
            "/sites",
            (
                body_param("name", required=True, description="e.g. fra1"),
                body_param("region", nullable=True),
                body_param("owner", nullable=True),
                body_param("description", nullable=True),
                _INTENT,
            ),
            ResultSpec("record", Site),
            status=201,
            write=True,
            summary="Create a site",
        ),
    ),
    "drift.events": (
        Route(
            "drift.events",
            "GET",
            "/devices/{device}/drift",
            (path_param("device", "device id or hostname"), *_DRIFT_FILTERS),
            _DRIFT_EVENTS,
            summary="List a device's drift events, newest first",
        ),
        Route(
            "drift.events",
            "GET",
            "/drift/events",
            (query_param("device"), *_DRIFT_FILTERS),
            _DRIFT_EVENTS,
            summary="List drift events, newest first",
        ),
    ),
    "drift.get": (
        Route(
            "drift.get",
            "GET",
            "/drift/events/{id}",
            (path_param("id", "drift event id"),),
            ResultSpec("record", DriftEvent),
            summary="Get a drift event",
        ),
    ),
    "drift.ignore": (
        Route(
            "drift.ignore",
            "POST",
            "/drift/events/{id}/ignore",
            (
                path_param("id", "drift event id"),
                body_param("reason", nullable=True),
                _INTENT,
            ),
            ResultSpec("record", DriftEvent),
            write=True,
            summary="Mark an open drift event ignored",
        ),
    ),
    "drift.rescore_all": (
        Route(
            "drift.rescore_all",
            "POST",
            "/drift/rescore",
            (_INTENT,),
            ResultSpec("json"),
            write=True,
            summary="Score every device and sync its drift events",
        ),
    ),
    "drift.links": (
        Route(
            "drift.links",
            "GET",
            "/drift/links",
            (),
            ResultSpec("groups", TopologyLink),
            summary="List missing and unexpected links",
        ),
    ),
    "discovery.ingest": (
        Route(
            "discovery.ingest",
            "POST",
            "/discovery/ingest",
            (
                body_param("format", required=True, enum=_INGEST_FORMATS),
                body_param(
                    "data",
                    "any",
                    required=True,
                    description="NAPALM getter output (JSON), CLI text, Nmap XML, "
                    "or a Batfish snapshot as a map of its files",
                ),
                body_param("platform", description="for cli, e.g. cisco_ios"),
                body_param("command", description="for cli, e.g. show version"),
                body_param("hostname", description="the device the output is from"),
                _INTENT,
            ),
            ResultSpec("record", IngestReport),
            write=True,
            summary="Ingest discovery output and update detected state and drift",
        ),
    ),
    "discovery.unmatched": (
        Route(
            "discovery.unmatched",
            "GET",
            "/discovery/unmatched",
            (query_param("limit", "integer", minimum=1, maximum=10_000),),
            ResultSpec("list", item_type="object"),
            summary="List stored observations that matched no device",
        ),
    ),
    "topology.links": (
        Route(
            "topology.links",
            "GET",
            "/topology/links",
            (
                query_param("kind", enum=_LINK_KINDS),
                query_param("device", description="device id or hostname"),
            ),
            _LINKS,
            summary="List links",
        ),
    ),
    "topology.add_link": (
        Route(
            "topology.add_link",
            "POST",
            "/topology/links",
            (
                body_param("a", required=True, description="device id or hostname"),
                body_param("port_a", nullable=True, description="e.g. Ethernet1/1"),
                body_param("b", required=True, description="device id or hostname"),
                body_param("port_b", nullable=True),
                body_param("cable", nullable=True),
                body_param("kind", enum=_LINK_KINDS),
                body_param("weight", "number", description="path cost of the link"),
                _INTENT,
            ),
            ResultSpec("record", TopologyLink),
            status=201,
            write=True,
            summary="Add a link between two device ports",
        ),
    ),
    "topology.add_links": (
        Route(
            "topology.add_links",
            "POST",
            "/topology/links/bulk",
            (
                body_param(
                    "links",
                    "object_list",
                    required=True,
                    description="links, each with the fields of POST /topology/links",
                ),
                _INTENT,
            ),
            _LINKS,
            status=201,
            write=True,
            summary="Add links in one transaction: all or none",
        ),
    ),
    "topology.graph": (
        Route(
            "topology.graph",
            "GET",
            "/topology/graph",
            (
                query_param("scope", description="device, site, subnet or address"),
                query_param("depth", "integer", minimum=0, maximum=16),
                query_param("annotate_drift", "boolean"),
                query_param("max_elements", "integer", minimum=1, maximum=100_000),
            ),
            ResultSpec("record", TopologyGraph),
            summary="Get the topology graph, or the part around a scope",
        ),
    ),
    "topology.path": (
        Route(
            "topology.path",
            "GET",
            "/topology/path/{source}/{target}",
            (
                path_param("source", "device id or hostname"),
                path_param("target", "device id or hostname"),
                _KINDS,
            ),
            ResultSpec("record", TopologyPath),
            summary="Get the cheapest path between two devices",
        ),
    ),
    "topology.blast_radius": (
        Route(
            "topology.blast_radius",
            "GET",
            "/topology/blast-radius/{target}",
            (
                path_param("target", "device id or hostname, or a link id"),
                query_param(
                    "roots",
                    "string_list",
                    description="devices that stand for the outside world",
                ),
                _KINDS,
            ),
            ResultSpec("record", BlastRadiusResult),
            summary="Get what a failure of a device or link cuts off",
        ),
    ),
}
