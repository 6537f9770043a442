"""In-process handlers of the device, drift, discovery and topology operations."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from omnitwin.engine.context import Context
from omnitwin.engine.engine import Engine

__all__ = ["DEVICE_OPERATIONS"]

_Handler = Callable[[Engine, Context, dict[str, Any]], Any]


def _devices_create(engine: Engine, ctx: Context, p: dict[str, Any]) -> Any:
    hostname = p.pop("hostname")
    return engine.devices.create(ctx, hostname, **p)


def _sites_create(engine: Engine, ctx: Context, p: dict[str, Any]) -> Any:
    name = p.pop("name")
    return engine.devices.create_site(ctx, name, **p)


def _discovery_ingest(engine: Engine, ctx: Context, p: dict[str, Any]) -> Any:
    fmt, data = p.pop("format"), p.pop("data")
    return engine.discovery.ingest(ctx, fmt, data, **p)


def _topology_add_link(engine: Engine, ctx: Context, p: dict[str, Any]) -> Any:
    # Ports are optional over HTTP, where a missing port means no port.
    ends = [p.pop("a"), p.pop("port_a", None), p.pop("b"), p.pop("port_b", None)]
    return engine.topology.add_link(ctx, *ends, **p)


def _topology_blast_radius(engine: Engine, ctx: Context, p: dict[str, Any]) -> Any:
    target = p.pop("target")
    return engine.topology.blast_radius(ctx, target, **p)


def _topology_path(engine: Engine, ctx: Context, p: dict[str, Any]) -> Any:
    source, target = p.pop("source"), p.pop("target")
    return engine.topology.path(ctx, source, target, **p)


DEVICE_OPERATIONS: dict[str, _Handler] = {
    "devices.create": _devices_create,
    "devices.create_many": lambda e, c, p: e.devices.create_many(c, p["items"]),
    "devices.get": lambda e, c, p: e.devices.get(c, p["id"]),
    "devices.list": lambda e, c, p: e.devices.list(c, **p),
    "devices.update": lambda e, c, p: e.devices.update(c, p["id"], p["changes"]),
    "devices.audit": lambda e, c, p: e.devices.audit_trail(
        c, p["id"], page=p.get("page", 1), per_page=p.get("per_page", 50)
    ),
    "devices.reconcile": lambda e, c, p: e.reconcile.reconcile(
        c, p["id"], p["strategy"], p.get("fields")
    ),
    "devices.decide": lambda e, c, p: e.reconcile.decide(
        c, p["job_id"], p["decisions"]
    ),
    "devices.remediation_plans": lambda e, c, p: e.reconcile.remediation_plans(
        c, p.get("id")
    ),
    "sites.create": _sites_create,
    "sites.list": lambda e, c, p: e.devices.list_sites(c),
    "drift.events": lambda e, c, p: e.drift.events(c, **p),
    "drift.get": lambda e, c, p: e.drift.get_event(c, p["id"]),
    "drift.ignore": lambda e, c, p: e.drift.ignore(c, p["id"], reason=p.get("reason")),
    "drift.rescore_all": lambda e, c, p: e.drift.rescore_all(c),
    "drift.links": lambda e, c, p: e.topology.link_drift(c),
    "discovery.ingest": _discovery_ingest,
    "discovery.unmatched": lambda e, c, p: e.discovery.unmatched(c, **p),
    "topology.add_link": _topology_add_link,
    "topology.add_links": lambda e, c, p: e.topology.add_links(c, p["links"]),
    "topology.links": lambda e, c, p: e.topology.list_links(c, **p),
    "topology.graph": lambda e, c, p: e.topology.graph(c, **p),
    "topology.path": _topology_path,
    "topology.blast_radius": _topology_blast_radius,
}
