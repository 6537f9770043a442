"""One-line summaries of tool results, shown with each ``final_result`` event."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["summarize"]


def _free(r: dict[str, Any]) -> str:
    first_blocks = ", ".join(r["blocks"][:4])
    more = "" if r["total_free"] <= 4 else ", ..."
    return f"{r['total_free']} free /{r['prefix_length']} blocks in {r['parent']}" + (
        f": {first_blocks}{more}" if first_blocks else ""
    )


def _allocated(r: dict[str, Any]) -> str:
    purpose = f" for {r['purpose']}" if r.get("purpose") else ""
    return f"allocated {r['cidr']}{purpose} ({r['id']}, status {r['status']})"


def _subnet(r: dict[str, Any]) -> str:
    subnet = r["subnet"]
    return (
        f"{subnet['cidr']} ({subnet.get('purpose') or 'no purpose'}): "
        f"{r['used_ips']} of {r['total_ips']} addresses used "
        f"({r['utilization']:.1%}), {len(r['children'])} children"
    )


def _updated(r: dict[str, Any]) -> str:
    return f"updated {r['cidr']}: status {r['status']}, owner {r.get('owner')}"


def _usage(r: dict[str, Any]) -> str:
    rows = r["rows"]
    if not rows:
        return f"no containers for {r['scope']}"
    top = max(rows, key=lambda row: row["utilization"])
    return (
        f"{len(rows)} subnets for {r['scope']}; fullest {top['cidr']} at "
        f"{top['utilization']:.1%}"
    )


def _device(r: dict[str, Any]) -> str:
    score = r.get("drift_score")
    drift = "never observed" if score is None else f"drift score {score:.2f}"
    return f"{r['hostname']}: {r['role']} at {r['site']}, {drift}"


def _drift(r: dict[str, Any]) -> str:
    if "device" in r and "events" in r:
        return f"{r['device']}: {r['total']} drift events"
    where = f" at {r['site']}" if r.get("site") else ""
    return f"{r['total']} devices{where} have drift"


def _job(r: dict[str, Any]) -> str:
    return f"reconcile job {r['id']} is {r['status']}"


def _path(r: dict[str, Any]) -> str:
    return f"{len(r['hops'])} hops: {' -> '.join(r['hostnames'])} (cost {r['cost']:g})"


def _graph(r: dict[str, Any]) -> str:
    return f"{len(r['nodes'])} nodes and {len(r['edges'])} edges"


def _count(items: list[Any], noun: str) -> str:
    """Return the number of ``items`` with ``noun`` in the singular or plural."""
    if len(items) == 1:
        return f"1 {noun}"
    suffix = "es" if noun.endswith("s") else "s"
    return f"{len(items)} {noun}{suffix}"


def _target_name(r: dict[str, Any]) -> str:
    """Return the hostname of a device target, else the target's id."""
    target = r["target"]
    devices, hostnames = r.get("devices") or [], r.get("hostnames") or []
    if target in devices and len(hostnames) == len(devices):
        return str(hostnames[devices.index(target)])
    return str(target)


def _blast(r: dict[str, Any]) -> str:
    return (
        f"if {_target_name(r)} fails: {_count(r['devices'], 'device')}, "
        f"{_count(r['subnets'], 'subnet')}, {_count(r['addresses'], 'address')} and "
        f"{_count(r['sites'], 'site')} lose their path"
    )


def _audit(r: dict[str, Any]) -> str:
    events = r["events"]
    if not events:
        return "no audit events"
    latest = events[0]
    return (
        f"{r['total']} audit events; latest {latest['action']} by "
        f"{latest['actor']} at {latest['at']}"
    )


def _imports(r: dict[str, Any]) -> str:
    if "imports" in r:
        return f"{len(r['imports'])} recent imports"
    return f"import {r['id']} is {r['status']} ({r['processed']}/{r['total']} rows)"


_SUMMARIES: dict[str, Callable[[dict[str, Any]], str]] = {
    "ipam_search": _free,
    "ipam_allocate": _allocated,
    "subnet_get": _subnet,
    "subnet_update": _updated,
    "utilization_report": _usage,
    "device_get": _device,
    "drift_show": _drift,
    "reconcile": _job,
    "topology_path": _path,
    "topology_subgraph": _graph,
    "blast_radius": _blast,
    "audit_show": _audit,
    "import_status": _imports,
}


def summarize(tool: str, result: Any) -> str:
    """Return one line that describes a tool's JSON result."""
    function = _SUMMARIES.get(tool)
    if function is None or not isinstance(result, dict):
        return f"{tool} finished"
    try:
        return function(result)
    except (KeyError, TypeError, ValueError):
        return f"{tool} finished"
