"""NetBox ``dumpdata`` JSON (a list of ``{"model", "pk", "fields"}``), v3.6.

The models read are tenants, sites, racks, devices, interfaces, front and rear
ports, cables with their ``dcim.cabletermination`` rows, VRFs, prefixes, IP
ranges, IP addresses and VLANs. Other models (templates, power panels,
virtual machines, cable path caches ...) are looked up for names only and are
not counted in ``total_rows``. ``line`` is the position of the object in the
dump, counting from 1.

Names and references:

- A device without a name gets ``<device type slug>-<pk>``, e.g.
  ``48-port-patch-panel-74``, which stays the same across exports of the
  same database.
- Owners are ``tenant:<slug>``. NetBox tags become tag keys with empty values.
- A prefix's site becomes its ``site`` tag, which the topology uses to find
  the prefixes of a site that a failure cuts off.
- A prefix with status ``container`` is a container with status ``allocated``;
  ``active`` becomes ``allocated``; ``reserved`` and ``deprecated`` stay.
- A cable end on a circuit termination is written with the circuit ID as the
  device and the termination side (``A`` or ``Z``) as the port.

Besides one record per physical cable, every chain of cables that runs from a
device port through patch panels (front port to rear port, by position) and
circuits to another device port gives one record with ``kind`` ``path``.
"""

from __future__ import annotations

import ipaddress
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from omnitwin.engine.importers.records import (
    AddressRecord,
    CableHop,
    CableRecord,
    DeviceRecord,
    InterfaceRecord,
    ParseResult,
    PortRecord,
    RackRecord,
    RangeRecord,
    Record,
    RowError,
    SiteRecord,
    SubnetRecord,
    TenantRecord,
    VlanRecord,
    VrfRecord,
    check_field,
    parse_address,
    parse_mac,
    parse_network,
)
from omnitwin.errors import ValidationError

__all__ = ["parse_netbox_dump", "unnamed_device_name"]

_PREFIX_STATUS = {"active": "allocated", "container": "allocated"}
# NetBox termination models and the end types written on cable records.
_END_TYPES = {
    "interface": "interface",
    "frontport": "front_port",
    "rearport": "rear_port",
    "consoleport": "console_port",
    "consoleserverport": "console_server_port",
    "powerport": "power_port",
    "poweroutlet": "power_outlet",
    "powerfeed": "power_feed",
    "circuittermination": "circuit_termination",
}
_PASS_THROUGH = {"frontport", "rearport", "circuittermination"}


@dataclass(frozen=True, slots=True)
class _End:
    model: str
    pk: int


class _Dump:
    """Objects of a dump by model and primary key, with their line numbers."""

    def __init__(self, document: Any) -> None:
        if not isinstance(document, list):
            raise ValidationError(
                "a NetBox dump is a JSON list of {model, pk, fields} objects; export"
                " it with 'manage.py dumpdata'",
            )
        self.objects: dict[str, dict[int, dict[str, Any]]] = defaultdict(dict)
        self.lines: dict[tuple[str, int], int] = {}
        for line, item in enumerate(document, start=1):
            if isinstance(item, dict) and "model" in item and "pk" in item:
                model = str(item["model"])
                self.objects[model][item["pk"]] = item.get("fields") or {}
                self.lines[(model, item["pk"])] = line

    def items(self, model: str) -> list[tuple[int, int, dict[str, Any]]]:
        """Return ``(line, pk, fields)`` of one model in dump order."""
        rows = [
            (self.lines[(model, pk)], pk, f) for pk, f in self.objects[model].items()
        ]
        return sorted(rows, key=lambda row: row[0])

    def field(self, model: str, pk: Any, name: str) -> str:
        """Return a field of a referenced object, or ``""`` for a null reference."""
        if pk is None or pk not in self.objects[model]:
            return ""
        return str(self.objects[model][pk].get(name) or "")


def unnamed_device_name(device_type_slug: str, pk: int) -> str:
    """Return the stable name given to a NetBox device that has none.

    Examples
    --------
    >>> unnamed_device_name("48-port-patch-panel", 74)
    '48-port-patch-panel-74'
    """
    return f"{device_type_slug}-{pk}"


def parse_netbox_dump(document: Any) -> ParseResult:
    """Parse a NetBox v3.6 ``dumpdata`` export into inventory and IPAM records.

    Parameters
    ----------
    document : list of dict
        The decoded JSON dump.

    Returns
    -------
    ParseResult
        Tenant, site, rack, device, interface, port, cable (physical and
        ``path``), VRF, VLAN, subnet, range and address records, with a row
        error per invalid object.

    Raises
    ------
    ValidationError
        If the document is not a list of dump objects.

    Examples
    --------
    >>> site = {"name": "Lab", "slug": "lab"}
    >>> dump = [{"model": "dcim.site", "pk": 1, "fields": site}]
    >>> parse_netbox_dump(dump).records[0].name
    'Lab'
    """
    dump = _Dump(document)
    names = _Names(dump)
    result = ParseResult()
    for builder in (
        _tenants, _sites, _racks, _devices, _interfaces, _ports, _cables,
        _vrfs, _vlans, _prefixes, _ranges, _addresses,
    ):  # fmt: skip
        builder(dump, names, result)
    result.records.extend(_paths(dump, names))
    return result


class _Names:
    """Display names of referenced objects, tags and owners."""

    def __init__(self, dump: _Dump) -> None:
        self.dump = dump
        self.devices: dict[int, str] = {}
        used_names = {
            str(f.get("name")) for _, _, f in dump.items("dcim.device") if f.get("name")
        }
        for _, pk, fields in dump.items("dcim.device"):
            name = fields.get("name")
            if not name:
                slug = dump.field("dcim.devicetype", fields.get("device_type"), "slug")
                name = unnamed_device_name(slug or "device", pk)
                while name in used_names:
                    name += "-unnamed"
                used_names.add(name)
            self.devices[pk] = str(name)
        self.tags: dict[tuple[str, int], dict[str, str]] = defaultdict(dict)
        for _, _, fields in dump.items("extras.taggeditem"):
            app_model = ".".join(fields.get("content_type") or [])
            slug = dump.field("extras.tag", fields.get("tag"), "slug")
            self.tags[(app_model, fields.get("object_id", 0))][slug] = ""

    def owner(self, tenant_pk: Any) -> str:
        slug = self.dump.field("tenancy.tenant", tenant_pk, "slug")
        return f"tenant:{slug}" if slug else ""

    def port(self, model: str, pk: Any) -> str:
        return self.dump.field(f"dcim.{model}", pk, "name")

    def end(self, end: _End) -> tuple[str, str]:
        """Return the (device, port) names of a cable end."""
        if end.model == "circuittermination":
            fields = self.dump.objects["circuits.circuittermination"].get(end.pk, {})
            cid = self.dump.field("circuits.circuit", fields.get("circuit"), "cid")
            return cid, str(fields.get("term_side", ""))
        fields = self.dump.objects[f"dcim.{end.model}"].get(end.pk, {})
        if end.model == "powerfeed":
            panel = self.dump.field(
                "dcim.powerpanel", fields.get("power_panel"), "name"
            )
            return panel, str(fields.get("name", ""))
        return self.devices.get(fields.get("device", 0), ""), str(
            fields.get("name", "")
        )


def _tenants(dump: _Dump, names: _Names, result: ParseResult) -> None:
    for line, pk, f in dump.items("tenancy.tenant"):
        group = dump.field("tenancy.tenantgroup", f.get("group"), "name")
        result.records.append(TenantRecord(line, f["name"], f["slug"], group, str(pk)))
        result.total_rows += 1


def _sites(dump: _Dump, names: _Names, result: ParseResult) -> None:
    for line, pk, f in dump.items("dcim.site"):
        result.total_rows += 1
        result.records.append(
            SiteRecord(
                line,
                f["name"],
                slug=f.get("slug", ""),
                status=f.get("status", ""),
                region=dump.field("dcim.region", f.get("region"), "name"),
                facility=f.get("facility") or "",
                owner=names.owner(f.get("tenant")),
                source_id=str(pk),
            )
        )


def _racks(dump: _Dump, names: _Names, result: ParseResult) -> None:
    for line, pk, f in dump.items("dcim.rack"):
        result.total_rows += 1
        result.records.append(
            RackRecord(
                line,
                f["name"],
                site=dump.field("dcim.site", f.get("site"), "name"),
                location=dump.field("dcim.location", f.get("location"), "name"),
                status=f.get("status", ""),
                role=dump.field("dcim.rackrole", f.get("role"), "slug"),
                u_height=f.get("u_height"),
                owner=names.owner(f.get("tenant")),
                source_id=str(pk),
            )
        )


def _devices(dump: _Dump, names: _Names, result: ParseResult) -> None:
    for line, pk, f in dump.items("dcim.device"):
        result.total_rows += 1
        result.records.append(
            DeviceRecord(
                line,
                names.devices[pk],
                role=dump.field("dcim.devicerole", f.get("role"), "slug"),
                site=dump.field("dcim.site", f.get("site"), "name"),
                rack=dump.field("dcim.rack", f.get("rack"), "name"),
                serial=f.get("serial") or "",
                platform=dump.field("dcim.platform", f.get("platform"), "slug"),
                tenant=names.owner(f.get("tenant")),
                device_type=dump.field("dcim.devicetype", f.get("device_type"), "slug"),
                status=f.get("status", ""),
                source_id=str(pk),
            )
        )


def _interfaces(dump: _Dump, names: _Names, result: ParseResult) -> None:
    for line, pk, f in dump.items("dcim.interface"):
        result.total_rows += 1
        errors: list[RowError] = []
        mac = ""
        if f.get("mac_address"):
            mac = (
                check_field(errors, line, "mac_address", f["mac_address"], parse_mac)
                or ""
            )
        result.errors.extend(errors)
        if errors:
            continue
        result.records.append(
            InterfaceRecord(
                line,
                names.devices.get(f.get("device", 0), ""),
                f["name"],
                type=f.get("type", ""),
                enabled=bool(f.get("enabled", True)),
                mgmt_only=bool(f.get("mgmt_only", False)),
                mac=mac,
                mtu=f.get("mtu"),
                parent=names.port("interface", f.get("parent")),
                lag=names.port("interface", f.get("lag")),
                description=f.get("description", ""),
                source_id=str(pk),
            )
        )


def _ports(dump: _Dump, names: _Names, result: ParseResult) -> None:
    for model, kind in (("frontport", "front_port"), ("rearport", "rear_port")):
        for line, pk, f in dump.items(f"dcim.{model}"):
            result.total_rows += 1
            result.records.append(
                PortRecord(
                    line,
                    names.devices.get(f.get("device", 0), ""),
                    f["name"],
                    kind,
                    type=f.get("type", ""),
                    rear_port=names.port("rearport", f.get("rear_port")),
                    rear_port_position=f.get("rear_port_position"),
                    positions=f.get("positions"),
                    source_id=str(pk),
                )
            )


def _cable_ends(dump: _Dump) -> dict[int, dict[str, list[_End]]]:
    ends: dict[int, dict[str, list[_End]]] = defaultdict(lambda: {"A": [], "B": []})
    for _, _, f in dump.items("dcim.cabletermination"):
        model = (f.get("termination_type") or ["", ""])[1]
        side = ends[f["cable"]].get(f.get("cable_end", ""))
        if side is not None:
            side.append(_End(model, f["termination_id"]))
    return ends


def _cables(dump: _Dump, names: _Names, result: ParseResult) -> None:
    ends = _cable_ends(dump)
    for line, pk, f in dump.items("dcim.cable"):
        result.total_rows += 1
        a_ends, b_ends = ends[pk]["A"], ends[pk]["B"]
        if not a_ends or not b_ends or len(a_ends) != len(b_ends):
            message = (
                f"cable {pk} has {len(a_ends)} A and {len(b_ends)} B terminations;"
                " each A end needs a B end, so terminate it in NetBox and export again"
            )
            result.errors.append(RowError(line, "terminations", str(pk), message))
            continue
        for a_end, b_end in zip(a_ends, b_ends, strict=True):
            (a_device, a_port), (b_device, b_port) = names.end(a_end), names.end(b_end)
            result.records.append(
                CableRecord(
                    line, a_device, a_port, b_device, b_port,
                    label=f.get("label") or "",
                    a_type=_END_TYPES.get(a_end.model, a_end.model),
                    b_type=_END_TYPES.get(b_end.model, b_end.model),
                    source_id=str(pk),
                )
            )  # fmt: skip


def _vrfs(dump: _Dump, names: _Names, result: ParseResult) -> None:
    for line, pk, f in dump.items("ipam.vrf"):
        result.total_rows += 1
        owner = names.owner(f.get("tenant"))
        result.records.append(
            VrfRecord(line, f["name"], f.get("rd") or "", owner, str(pk))
        )


def _vlans(dump: _Dump, names: _Names, result: ParseResult) -> None:
    for line, pk, f in dump.items("ipam.vlan"):
        result.total_rows += 1
        result.records.append(
            VlanRecord(
                line,
                int(f["vid"]),
                f["name"],
                site=dump.field("dcim.site", f.get("site"), "name"),
                group=dump.field("ipam.vlangroup", f.get("group"), "name"),
                status=f.get("status", ""),
                role=dump.field("ipam.role", f.get("role"), "slug"),
                owner=names.owner(f.get("tenant")),
                source_id=str(pk),
            )
        )


def _vrf_name(dump: _Dump, pk: Any) -> str:
    return dump.field("ipam.vrf", pk, "name") or "global"


def _prefixes(dump: _Dump, names: _Names, result: ParseResult) -> None:
    for line, pk, f in dump.items("ipam.prefix"):
        result.total_rows += 1
        errors: list[RowError] = []
        cidr = check_field(
            errors, line, "prefix", str(f.get("prefix", "")), parse_network
        )
        result.errors.extend(errors)
        if cidr is None:
            continue
        vid = dump.field("ipam.vlan", f.get("vlan"), "vid")
        status = str(f.get("status", ""))
        result.records.append(
            SubnetRecord(
                line,
                cidr,
                vrf=_vrf_name(dump, f.get("vrf")),
                status=_PREFIX_STATUS.get(status, status),
                purpose=dump.field("ipam.role", f.get("role"), "slug")
                or f.get("description", ""),
                vlan_id=int(vid) if vid else None,
                owner=names.owner(f.get("tenant")),
                tags=_prefix_tags(dump, names, pk, f),
                is_container=status == "container",
                source_id=str(pk),
            )
        )


def _prefix_tags(
    dump: _Dump, names: _Names, pk: Any, fields: dict[str, Any]
) -> dict[str, str]:
    """Return the NetBox tags of a prefix, plus ``site`` when it has one."""
    tags = dict(names.tags.get(("ipam.prefix", pk), {}))
    site = dump.field("dcim.site", fields.get("site"), "name")
    if site:
        tags["site"] = site
    return tags


def _ranges(dump: _Dump, names: _Names, result: ParseResult) -> None:
    for line, pk, f in dump.items("ipam.iprange"):
        result.total_rows += 1
        errors: list[RowError] = []
        start = check_field(
            errors, line, "start_address", f["start_address"], parse_address
        )
        end = check_field(errors, line, "end_address", f["end_address"], parse_address)
        result.errors.extend(errors)
        if start is None or end is None:
            continue
        network = parse_network(_network_of(start))
        result.records.append(
            RangeRecord(
                line,
                start.split("/")[0],
                end.split("/")[0],
                vrf=_vrf_name(dump, f.get("vrf")),
                network_cidr=network,
                purpose=f.get("description", ""),
                source_id=str(pk),
            )
        )


def _network_of(address: str) -> str:
    return str(ipaddress.ip_interface(address).network)


def _addresses(dump: _Dump, names: _Names, result: ParseResult) -> None:
    for line, pk, f in dump.items("ipam.ipaddress"):
        result.total_rows += 1
        errors: list[RowError] = []
        address = check_field(errors, line, "address", f["address"], parse_address)
        result.errors.extend(errors)
        if address is None:
            continue
        device, interface = _assigned(dump, names, f)
        result.records.append(
            AddressRecord(
                line,
                address,
                vrf=_vrf_name(dump, f.get("vrf")),
                hostname=f.get("dns_name") or "",
                status=f.get("status", ""),
                owner=names.owner(f.get("tenant")),
                device=device,
                interface=interface,
                tags=dict(names.tags.get(("ipam.ipaddress", pk), {})),
                source_id=str(pk),
            )
        )


def _assigned(dump: _Dump, names: _Names, fields: dict[str, Any]) -> tuple[str, str]:
    kind = fields.get("assigned_object_type") or []
    if list(kind) != ["dcim", "interface"]:
        return "", ""
    return names.end(_End("interface", fields.get("assigned_object_id") or 0))


# End-to-end paths


class _Tracer:
    """Follows cables through panels and circuits from one device port."""

    def __init__(self, dump: _Dump, names: _Names) -> None:
        self.dump = dump
        self.names = names
        self.cable_of: dict[_End, tuple[int, str]] = {}
        self.ends = _cable_ends(dump)
        for cable, sides in self.ends.items():
            for side, side_ends in sides.items():
                for end in side_ends:
                    self.cable_of[end] = (cable, side)
        self.front_of: dict[tuple[int, int], int] = {}
        for _, pk, f in dump.items("dcim.frontport"):
            self.front_of[(f["rear_port"], f["rear_port_position"])] = pk
        self.other_side: dict[int, int] = {}
        by_circuit: dict[tuple[int, str], int] = {}
        for _, pk, f in dump.items("circuits.circuittermination"):
            by_circuit[(f["circuit"], f["term_side"])] = pk
        for (circuit, side), pk in by_circuit.items():
            other = by_circuit.get((circuit, "Z" if side == "A" else "A"))
            if other is not None:
                self.other_side[pk] = other

    def trace(self, start: _End) -> tuple[_End, list[CableHop], list[int]] | None:
        """Return the far port, the hops and the cables, or None at a dead end."""
        current = start
        hops: list[CableHop] = []
        cables: list[int] = []
        positions: list[int] = []
        while current in self.cable_of and len(cables) <= len(self.cable_of):
            cable, side = self.cable_of[current]
            far_ends = self.ends[cable]["B" if side == "A" else "A"]
            if len(far_ends) != 1:
                return None
            cables.append(cable)
            far = far_ends[0]
            if far.model not in _PASS_THROUGH:
                return far, hops, cables
            step = self._pass(far, hops, positions)
            if step is None:
                return None
            current = step
        return None

    def _pass(
        self, end: _End, hops: list[CableHop], positions: list[int]
    ) -> _End | None:
        if end.model == "circuittermination":
            hops.append(CableHop("circuit", *self.names.end(end)))
            other = self.other_side.get(end.pk)
            return None if other is None else _End("circuittermination", other)
        fields = self.dump.objects[f"dcim.{end.model}"][end.pk]
        hops.append(CableHop(_END_TYPES[end.model], *self.names.end(end)))
        if end.model == "frontport":
            positions.append(int(fields["rear_port_position"]))
            rear = _End("rearport", fields["rear_port"])
            hops.append(CableHop("rear_port", *self.names.end(rear)))
            return rear
        if positions:
            position = positions.pop()
        elif fields.get("positions", 1) == 1:
            position = 1
        else:
            return None  # A multi-position rear port reached first: ambiguous.
        front = self.front_of.get((end.pk, position))
        if front is None:
            return None
        hops.append(CableHop("front_port", *self.names.end(_End("frontport", front))))
        return _End("frontport", front)


def _paths(dump: _Dump, names: _Names) -> list[Record]:
    tracer = _Tracer(dump, names)
    seen: set[frozenset[_End]] = set()
    paths: list[Record] = []
    for cable, sides in sorted(tracer.ends.items()):
        for start in sides["A"] + sides["B"]:
            if start.model in _PASS_THROUGH:
                continue
            traced = tracer.trace(start)
            if traced is None or not traced[1]:
                continue
            far, hops, cables = traced
            key = frozenset((start, far))
            if key in seen:
                continue
            seen.add(key)
            (a_device, a_port), (b_device, b_port) = names.end(start), names.end(far)
            line = dump.lines[("dcim.cable", cable)]
            paths.append(
                CableRecord(
                    line, a_device, a_port, b_device, b_port,
                    kind="path",
                    a_type=_END_TYPES.get(start.model, start.model),
                    b_type=_END_TYPES.get(far.model, far.model),
                    through=tuple(hops),
                    source_id="cables:" + ",".join(str(c) for c in cables),
                )
            )  # fmt: skip
    return paths
