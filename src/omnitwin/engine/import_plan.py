"""Import plans: which records an import writes, and how they convert.

:func:`build_items` turns parsed records into plan items, leaving out (with
the reason) the kinds that omnitwin does not store. The helpers below convert
items into the inputs of the subnet, VLAN, device and topology services.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from omnitwin.engine import cidr
from omnitwin.engine.discovery.interfaces import normalize_interface
from omnitwin.engine.import_addresses import ADDRESS_STATUS
from omnitwin.engine.import_conflicts import FoundConflict, PlanItem
from omnitwin.engine.import_sources import Parsed
from omnitwin.engine.importers.records import (
    AddressRecord,
    CableRecord,
    DeviceRecord,
    InterfaceRecord,
    SubnetRecord,
    VlanRecord,
)
from omnitwin.engine.subnets import SubnetInput
from omnitwin.engine.vlans import VlanInput
from omnitwin.models import ImportPlan

__all__ = [
    "ImportPlanDraft",
    "build_items",
    "cable_links",
    "device_values",
    "interfaces_by_device",
    "merged_record",
    "network_order",
    "of_kind",
    "skip_open_circuits",
    "skip_stored_inventory",
    "skip_unknown_devices",
    "subnet_input",
    "subnet_merge",
    "summarize_plan",
    "vlan_input",
]

_PREVIEW_ROWS = 20


@dataclass(slots=True)
class ImportPlanDraft:
    """Plan items, their conflicts, the parse result and the rows left out."""

    items: list[PlanItem]
    conflicts: list[FoundConflict]
    parsed: Parsed
    skipped: list[dict[str, Any]] = field(default_factory=list)


def build_items(
    parsed: Parsed, *, with_devices: bool
) -> tuple[list[PlanItem], list[dict[str, Any]]]:
    """Turn parsed records into plan items and the rows that are not imported.

    Parameters
    ----------
    parsed : Parsed
        The parser output with per-line extras.
    with_devices : bool
        Whether the engine stores devices, sites and cables.

    Returns
    -------
    tuple of (list of PlanItem, list of dict)
        The items in record order, and skipped rows as ``{"line", "reason"}``
        (the parser's own skipped rows first).
    """
    items: list[PlanItem] = []
    skipped = [row.to_dict() for row in parsed.result.skipped]
    for record in parsed.result.records:
        kind, reason = _kind_of(record, with_devices)
        if kind is None:
            skipped.append({"line": record.line, "reason": reason})
            continue
        extra = parsed.extras.get(record.line, {})
        items.append(PlanItem(len(items), kind, record.line, record, extra=extra))
    return items, skipped


_NOT_STORED = {
    "TenantRecord": "tenants become owners (tenant:<slug>) of the objects they own",
    "VrfRecord": "VRFs are stored as the vrf name of subnets and addresses",
    # NOTE: omnitwin has no table for address ranges yet, so ranges are
    # validated (bad ones are row errors) and then listed as skipped rows.
    "RangeRecord": "address ranges are not stored yet",
    "RackRecord": "racks are stored as the rack name of their devices",
    "PortRecord": "patch panel ports are stored as the ports of topology links",
}
_NO_TRAFFIC_ENDS = frozenset(
    {"power_port", "power_outlet", "power_feed", "console_port", "console_server_port"}
)
_DEVICE_KINDS = {
    "DeviceRecord": "device",
    "SiteRecord": "site",
    "CableRecord": "cable",
    "InterfaceRecord": "interface",
}


def _kind_of(record: Any, with_devices: bool) -> tuple[str | None, str]:
    name = type(record).__name__
    if isinstance(record, SubnetRecord):
        return "subnet", ""
    if isinstance(record, VlanRecord):
        return "vlan", ""
    if isinstance(record, AddressRecord):
        status = record.status.lower()
        if status not in ADDRESS_STATUS:
            return None, f"address status {record.status!r} is unknown"
        if ADDRESS_STATUS[status] is None:
            return None, f"address status {record.status!r} means not assigned"
        return "address", ""
    if isinstance(record, CableRecord) and record.kind == "path":
        return None, "end-to-end paths are derived from the cables"
    if (
        isinstance(record, CableRecord)
        and {record.a_type, record.b_type} & _NO_TRAFFIC_ENDS
    ):
        # A PDU would otherwise join every device it powers into one network.
        return None, "power and console cables carry no traffic, so they are not links"
    if name in _DEVICE_KINDS:
        if not with_devices:
            return None, "this engine has no device service to store it"
        return _DEVICE_KINDS[name], ""
    return None, _NOT_STORED.get(name, f"{name} records are not imported")


def skip_unknown_devices(
    items: list[PlanItem], stored: set[str]
) -> list[dict[str, Any]]:
    """Skip interfaces and cables whose device is neither imported nor stored."""
    known = stored | {i.record.name.lower() for i in items if i.kind == "device"}
    skipped: list[dict[str, Any]] = []
    for item in items:
        if item.kind == "interface":
            names = [item.record.device]
        elif item.kind == "cable":
            record: CableRecord = item.record
            names = [
                device
                for device, kind in (
                    (record.a_device, record.a_type),
                    (record.b_device, record.b_type),
                )
                if kind != "circuit_termination"
            ]
        else:
            continue
        missing = [name for name in names if name.lower() not in known]
        if missing and item.action != "skip":
            item.action = "skip"
            reason = f"device {missing[0]!r} not found; import the device first"
            skipped.append({"line": item.line, "reason": reason})
    return skipped


def skip_stored_inventory(
    items: list[PlanItem],
    stored_sites: set[str],
    stored_links: set[tuple[tuple[str, str], tuple[str, str]]],
) -> list[dict[str, Any]]:
    """Skip sites and cables that are already stored, so a file imports twice.

    Interfaces of a device row that is skipped (a duplicate resolved as
    ``skip``) are skipped with it.

    ``stored_links`` contains the ends of stored intended links as sorted pairs
    of (lowercase hostname, normalised port). A cable to a circuit is already
    stored when its device port ends such a link.

    Examples
    --------
    >>> from omnitwin.engine.importers import SiteRecord
    >>> items = [PlanItem(0, "site", 2, SiteRecord(2, "Lab"))]
    >>> skip_stored_inventory(items, {"Lab"}, set())
    [{'line': 2, 'reason': 'the site is already stored'}]
    """
    used_ports = {end for pair in stored_links for end in pair}
    devices = [i for i in items if i.kind == "device"]
    kept_names = {i.record.name.lower() for i in devices if i.action != "skip"}
    # A name with one kept row (a duplicate inside the file) keeps its ports.
    skipped_devices = {
        i.record.name.lower() for i in devices if i.action == "skip"
    } - kept_names
    skipped: list[dict[str, Any]] = []
    for item in items:
        if item.action == "skip":
            continue
        reason = None
        if item.kind == "interface" and item.record.device.lower() in skipped_devices:
            reason = "the interface's device row is skipped"
        elif item.kind == "site" and item.record.name in stored_sites:
            reason = "the site is already stored"
        elif item.kind == "cable":
            ends = _cable_ends(item.record)
            if len(ends) == 2 and tuple(sorted(ends)) in stored_links:
                reason = "this cable is already stored as a link"
            elif len(ends) == 1 and ends[0] in used_ports:
                reason = "this cable's device port already ends a stored link"
        if reason is not None:
            item.action = "skip"
            skipped.append({"line": item.line, "reason": reason})
    return skipped


def skip_open_circuits(items: list[PlanItem]) -> list[dict[str, Any]]:
    """Skip cables to a circuit whose other side has no cable in the file.

    Such a cable joins no two devices, so it gives no link (see
    :func:`cable_links`); planning it as created would overstate the plan.
    """
    sides: dict[str, set[str]] = {}
    for item in items:
        if item.kind == "cable" and item.action != "skip":
            for circuit, side in _circuit_sides(item.record):
                sides.setdefault(circuit, set()).add(side)
    skipped: list[dict[str, Any]] = []
    for item in items:
        if item.kind != "cable" or item.action == "skip":
            continue
        if any(len(sides[c]) < 2 for c, _ in _circuit_sides(item.record)):
            item.action = "skip"
            reason = "the circuit's other side has no cable, so it joins no devices"
            skipped.append({"line": item.line, "reason": reason})
    return skipped


def _circuit_sides(cable: CableRecord) -> list[tuple[str, str]]:
    return [
        (device, port)
        for device, port, kind in (
            (cable.a_device, cable.a_port, cable.a_type),
            (cable.b_device, cable.b_port, cable.b_type),
        )
        if kind == "circuit_termination"
    ]


def _cable_ends(cable: CableRecord) -> list[tuple[str, str]]:
    """Return the (lowercase hostname, normalised port) ends on devices."""
    return [
        (device.lower(), normalize_interface(port) if port.strip() else "")
        for device, port, kind in (
            (cable.a_device, cable.a_port, cable.a_type),
            (cable.b_device, cable.b_port, cable.b_type),
        )
        if kind != "circuit_termination"
    ]


def summarize_plan(plan: ImportPlanDraft) -> ImportPlan:
    create: Counter[str] = Counter()
    update: Counter[str] = Counter()
    skip: Counter[str] = Counter()
    for item in plan.items:
        bucket = {"create": create, "update": update}.get(item.action, skip)
        bucket[item.kind] += 1
    containers = {i for item in plan.items for i in item.containerize}
    if containers:
        update["subnet"] += len(containers)
    preview = [
        {"action": item.action, **item.record.to_dict(), **item.extra}
        for item in plan.items[:_PREVIEW_ROWS]
    ]
    result = plan.parsed.result
    return ImportPlan(
        total_rows=result.total_rows,
        create=dict(create),
        update=dict(update),
        skip=dict(skip),
        conflicts=dict(Counter(c.kind for c in plan.conflicts)),
        row_errors=[error.to_dict() for error in result.errors],
        skipped_rows=plan.skipped,
        preview=preview,
    )


# -- conversions --------------------------------------------------------------


def of_kind(items: list[PlanItem], kind: str) -> Iterator[PlanItem]:
    return (i for i in items if i.kind == kind and i.action != "skip")


def merged_record(items: list[PlanItem], item: PlanItem) -> Any:
    """Return the item's record with empty fields filled from merged rows."""
    record = item.record
    for index in item.merged:
        other = items[index]
        updates: dict[str, Any] = {}
        for name in ("purpose", "owner", "hostname", "interface", "name"):
            if not hasattr(record, name):
                continue
            mine, theirs = getattr(record, name), getattr(other.record, name)
            take = other.use_imported_owner and name == "owner"
            if theirs and (not mine or take):
                updates[name] = theirs
        if getattr(record, "vlan_id", 0) is None:
            updates["vlan_id"] = other.record.vlan_id
        if hasattr(record, "tags"):
            updates["tags"] = {**other.record.tags, **record.tags}
        record = replace(record, **updates)
    return record


def subnet_merge(
    current: dict[str, Any], record: SubnetRecord, item: PlanItem
) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    if record.purpose and not current["purpose"]:
        changes["purpose"] = record.purpose
    if record.vlan_id is not None and current["vlan_id"] is None:
        changes["vlan_id"] = record.vlan_id
    if record.owner and (not current["owner"] or item.use_imported_owner):
        changes["owner"] = record.owner
    new_tags = {k: v for k, v in record.tags.items() if k not in current["tags"]}
    if new_tags:
        changes["tags"] = new_tags
    if record.is_container and not current["is_container"]:
        changes["is_container"] = True
    return {k: v for k, v in changes.items() if current.get(k) != v}


def subnet_input(record: SubnetRecord) -> SubnetInput:
    return SubnetInput(
        network=cidr.parse_network(record.cidr),
        status=record.status,
        purpose=record.purpose or None,
        vlan_id=record.vlan_id,
        owner=record.owner or None,
        tags=dict(record.tags),
        vrf=record.vrf or "global",
        is_container=record.is_container,
    )


def network_order(values: SubnetInput) -> tuple[int, int, int]:
    network = values.network
    return network.version, int(network.network_address), network.prefixlen


def vlan_input(record: VlanRecord) -> VlanInput:
    return VlanInput(
        record.vid,
        record.name,
        record.site or None,
        record.group or None,
        record.status or "active",
        record.owner or None,
    )


def device_values(item: PlanItem, interfaces: dict[str, Any]) -> dict[str, Any]:
    record: DeviceRecord = item.record
    values: dict[str, Any] = {
        "hostname": record.name,
        "role": record.role or "unknown",
        "site": record.site or "unknown",
        "rack": record.rack or None,
        "serial": record.serial or None,
        "platform": record.platform or None,
        "model": record.device_type or None,
        "owner": record.tenant or None,
    }
    if interfaces:
        values["twin_state"] = {"interfaces": interfaces}
    return values


def interfaces_by_device(items: list[PlanItem]) -> dict[str, dict[str, Any]]:
    """Return twin-state interface maps keyed by lower-case device name."""
    by_device: dict[str, dict[str, Any]] = {}
    for item in of_kind(items, "interface"):
        record: InterfaceRecord = item.record
        state: dict[str, Any] = {"enabled": record.enabled}
        if record.mac:
            state["mac"] = record.mac
        if record.mtu is not None:
            state["mtu"] = record.mtu
        if record.description:
            state["description"] = record.description
        name = normalize_interface(record.name)
        by_device.setdefault(record.device.lower(), {})[name] = state
    return by_device


def cable_links(cables: list[CableRecord]) -> list[dict[str, Any]]:
    """Turn cables into topology links between devices.

    A cable between two device ports (interfaces or panel ports) is one
    link named by its label, or ``cable-<id>``. Cables
    that end on the two sides of one circuit become one link between the
    device ports on either side, named ``circuit:<circuit id>``. A circuit
    with only one side cabled gives no link.

    Examples
    --------
    >>> a = CableRecord(1, "r1", "Gi1", "C-7", "A", b_type="circuit_termination")
    >>> b = CableRecord(2, "r2", "Gi1", "C-7", "Z", b_type="circuit_termination")
    >>> [(x["a"], x["b"], x["cable"]) for x in cable_links([a, b])]
    [('r1', 'r2', 'circuit:C-7')]
    """
    links: list[dict[str, Any]] = []
    circuits: dict[str, dict[str, tuple[str, str]]] = {}
    for cable in cables:
        ends = [
            (cable.a_device, cable.a_port, cable.a_type),
            (cable.b_device, cable.b_port, cable.b_type),
        ]
        on_circuit = [e for e in ends if e[2] == "circuit_termination"]
        on_device = [e for e in ends if e[2] != "circuit_termination"]
        if len(on_circuit) == 1:
            circuit, side, _ = on_circuit[0]
            circuits.setdefault(circuit, {})[side] = on_device[0][:2]
        elif not on_circuit:
            name = cable.label or f"cable-{cable.source_id or cable.line}"
            links.append(_link(ends[0][:2], ends[1][:2], name))
    for circuit, sides in circuits.items():
        if "A" in sides and "Z" in sides:
            links.append(_link(sides["A"], sides["Z"], f"circuit:{circuit}"))
    return links


def _link(a: tuple[str, str], b: tuple[str, str], cable: str) -> dict[str, Any]:
    return {"a": a[0], "port_a": a[1], "b": b[0], "port_b": b[1], "cable": cable}
