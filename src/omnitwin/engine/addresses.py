"""Assigned IP addresses and the next usable addresses of a subnet."""

from __future__ import annotations

from typing import Any

from omnitwin._ids import new_id
from omnitwin.engine import cidr
from omnitwin.engine.audit import AuditEntry, AuditLog
from omnitwin.engine.context import Context
from omnitwin.engine.store import Store, utc_now
from omnitwin.engine.subnets import (
    GLOBAL_VRF,
    SubnetService,
    validate_text,
    validate_vrf,
)
from omnitwin.errors import Duplicate, NotFound, ValidationError
from omnitwin.models import Address, Page

__all__ = ["ADDRESS_STATUSES", "AddressService"]

ADDRESS_STATUSES = ("active", "reserved", "dhcp", "deprecated")

_COLUMNS = (
    "id, address, prefix_length, vrf, subnet_id, status, hostname, device_id, "
    "interface, created_at"
)


def _to_address(row: tuple[Any, ...]) -> Address:
    return Address(
        id=row[0],
        address=row[1],
        prefix_length=int(row[2]),
        vrf=row[3],
        subnet_id=row[4],
        status=row[5],
        hostname=row[6],
        device_id=row[7],
        interface=row[8],
        created_at=row[9],
    )


class AddressService:
    """Assign and list IP addresses; each lands in its smallest containing subnet."""

    def __init__(self, store: Store, audit: AuditLog, subnets: SubnetService) -> None:
        self.store = store
        self.audit = audit
        self.subnets = subnets

    def create(
        self,
        ctx: Context,
        address: str,
        *,
        vrf: str | None = None,
        status: str = "active",
        hostname: str | None = None,
        device_id: str | None = None,
        interface: str | None = None,
    ) -> Address:
        """Assign an address such as ``"10.0.0.5"`` or ``"2001:db8::1/127"``.

        Any address of a network may be assigned, including the IPv4 network
        and broadcast addresses, but those do not count towards utilization.
        """
        iface = cidr.parse_interface(address)
        vrf_name = validate_vrf(vrf)
        if status not in ADDRESS_STATUSES:
            message = f"invalid status {status!r}; use one of {ADDRESS_STATUSES}"
            raise ValidationError(message, details={"field": "status"})
        value = int(iface.ip)
        with self.store.transaction() as conn:
            existing = conn.execute(
                "SELECT id FROM addresses WHERE workspace = ? AND vrf = ? "
                "AND version = ? AND value = CAST(? AS UHUGEINT)",
                [ctx.workspace, vrf_name, iface.version, value],
            ).fetchone()
            if existing is not None:
                message = (
                    f"{iface.ip} is already assigned in VRF {vrf_name!r} as "
                    f"{existing[0]}; update that address instead"
                )
                raise Duplicate(message, details={"existing": existing[0]})
            subnet_id = self._containing_subnet(ctx.workspace, vrf_name, iface)
            record = Address(
                id=new_id("ip"),
                address=str(iface.ip),
                prefix_length=iface.network.prefixlen,
                vrf=vrf_name,
                subnet_id=subnet_id,
                status=status,
                hostname=validate_text("hostname", hostname),
                device_id=device_id,
                interface=validate_text("interface", interface),
                created_at=utc_now(),
            )
            conn.execute(
                "INSERT INTO addresses VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    record.id,
                    ctx.workspace,
                    record.address,
                    iface.version,
                    value,
                    record.prefix_length,
                    record.vrf,
                    record.subnet_id,
                    record.status,
                    record.hostname,
                    record.device_id,
                    record.interface,
                    record.created_at,
                ],
            )
            self.audit.append(
                conn,
                ctx.workspace,
                AuditEntry(
                    record.id,
                    "address.create",
                    ctx.actor,
                    ctx.intent,
                    {"before": None, "after": record.to_dict()},
                ),
            )
        return record

    def _containing_subnet(
        self, workspace: str, vrf: str, iface: cidr.Interface
    ) -> str | None:
        value = int(iface.ip)
        vrfs = [vrf] if vrf == GLOBAL_VRF else [vrf, GLOBAL_VRF]
        for name in vrfs:
            row = self.store.fetchone(
                "SELECT id FROM subnets WHERE workspace = ? AND vrf = ? "
                "AND version = ? AND first <= CAST(? AS UHUGEINT) "
                "AND last >= CAST(? AS UHUGEINT) "
                "ORDER BY prefix_length DESC LIMIT 1",
                [workspace, name, iface.version, value, value],
            )
            if row is not None:
                return str(row[0])
        return None

    def get(self, ctx: Context, address_id: str) -> Address:
        """Return one assigned address by id."""
        row = self.store.fetchone(
            f"SELECT {_COLUMNS} FROM addresses WHERE workspace = ? AND id = ?",
            [ctx.workspace, address_id],
        )
        if row is None:
            raise NotFound(
                f"address {address_id!r} not found", details={"id": address_id}
            )
        return _to_address(row)

    def available(self, ctx: Context, subnet_id: str, *, limit: int = 16) -> list[str]:
        """Return the first ``limit`` usable, unassigned addresses of a subnet."""
        if (
            isinstance(limit, bool)
            or not isinstance(limit, int)
            or not (1 <= limit <= 4096)
        ):
            raise ValidationError(f"invalid limit {limit!r}; use 1 to 4096")
        detail = self.subnets.get(ctx, subnet_id)
        network = cidr.parse_network(detail.subnet.cidr)
        interval = cidr.Interval.of(network)
        rows = self.store.fetchall(
            "SELECT value FROM addresses WHERE workspace = ? AND vrf = ? "
            "AND version = ? AND value BETWEEN CAST(? AS UHUGEINT) "
            "AND CAST(? AS UHUGEINT) ORDER BY value",
            [
                ctx.workspace,
                detail.subnet.vrf,
                network.version,
                interval.first,
                interval.last,
            ],
        )
        used = [_address(network.version, int(r[0])) for r in rows]
        found = cidr.usable_addresses(
            network, used, limit=limit, pool=detail.subnet.is_pool
        )
        return [str(a) for a in found]

    def list(
        self,
        ctx: Context,
        *,
        subnet_id: str | None = None,
        vrf: str | None = None,
        hostname: str | None = None,
        page: int = 1,
        per_page: int = 50,
    ) -> Page[Address]:
        """List assigned addresses in address order."""
        if page < 1 or not 1 <= per_page <= 200:
            raise ValidationError("page starts at 1 and per_page is 1 to 200")
        where = ["workspace = ?"]
        params: list[Any] = [ctx.workspace]
        for column, value in (("subnet_id", subnet_id), ("hostname", hostname)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        if vrf is not None:
            where.append("vrf = ?")
            params.append(validate_vrf(vrf))
        clause = " AND ".join(where)
        total = self.store.fetchone(
            f"SELECT count(*) FROM addresses WHERE {clause}", params
        )
        rows = self.store.fetchall(
            f"SELECT {_COLUMNS} FROM addresses WHERE {clause} "
            "ORDER BY version, value LIMIT ? OFFSET ?",
            [*params, per_page, (page - 1) * per_page],
        )
        return Page(
            [_to_address(r) for r in rows],
            int(total[0]) if total else 0,
            page,
            per_page,
        )


def _address(version: int, value: int) -> cidr.Address:
    import ipaddress

    if version == 4:
        return ipaddress.IPv4Address(value)
    return ipaddress.IPv6Address(value)
