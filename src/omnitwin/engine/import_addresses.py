"""Bulk creation of imported IP addresses.

:func:`insert_addresses` follows :meth:`AddressService.create
<omnitwin.engine.addresses.AddressService.create>` for many addresses at once:
each address lands in the smallest subnet of its VRF that contains it, or,
for a VRF other than ``global`` with no such subnet, in the smallest global
one. Duplicates are found by the import plan before this runs.
"""

from __future__ import annotations

import ipaddress
from typing import Any

import duckdb

from omnitwin._ids import new_id
from omnitwin.engine.audit import AuditEntry, AuditLog
from omnitwin.engine.context import Context
from omnitwin.engine.importers.records import AddressRecord
from omnitwin.engine.store import utc_now
from omnitwin.models import Address

__all__ = ["ADDRESS_STATUS", "insert_addresses"]

#: Address statuses of the sources mapped to omnitwin's; None means the row
#: describes a free address and is not imported.
ADDRESS_STATUS: dict[str, str | None] = {
    "": "active",
    "active": "active",
    "used": "active",
    "static": "active",
    "gateway": "active",
    "slaac": "active",
    "dhcp": "dhcp",
    "reserved": "reserved",
    "deprecated": "deprecated",
    "offline": "deprecated",
    "unused": None,
    "free": None,
}

# The smallest subnet containing each staged address: one of its own VRF
# first, then a global one.
_CONTAINING = """
SELECT a.i, arg_max(s.id, (s.vrf = a.vrf)::INTEGER * 1000 + s.prefix_length)
FROM (
  SELECT unnest(?::BIGINT[]) AS i, unnest(?::VARCHAR[]) AS vrf,
         unnest(?::TINYINT[]) AS version,
         CAST(unnest(?::VARCHAR[]) AS UHUGEINT) AS value
) a
JOIN subnets s
  ON s.workspace = ? AND s.version = a.version
 AND s."first" <= a.value AND s."last" >= a.value
 AND (s.vrf = a.vrf OR s.vrf = 'global')
GROUP BY a.i
"""


def insert_addresses(
    conn: duckdb.DuckDBPyConnection,
    audit: AuditLog,
    ctx: Context,
    records: list[AddressRecord],
) -> list[Address]:
    """Insert imported addresses and their audit events in the open transaction.

    Parameters
    ----------
    conn : duckdb.DuckDBPyConnection
        The store connection inside a transaction.
    audit : AuditLog
        The audit trail to append ``address.create`` events to.
    ctx : Context
        The caller.
    records : list of AddressRecord
        Addresses that the plan found free of duplicates.

    Returns
    -------
    list of Address
        The created addresses, in the order of ``records``.
    """
    interfaces = [ipaddress.ip_interface(r.address) for r in records]
    subnet_of = dict(
        conn.execute(
            _CONTAINING,
            [
                list(range(len(records))),
                [r.vrf for r in records],
                [i.version for i in interfaces],
                [str(int(i.ip)) for i in interfaces],
                ctx.workspace,
            ],
        ).fetchall()
    )
    now = utc_now()
    created = [
        Address(
            id=new_id("ip"),
            address=str(iface.ip),
            prefix_length=iface.network.prefixlen,
            vrf=record.vrf,
            subnet_id=subnet_of.get(index),
            status=ADDRESS_STATUS.get(record.status.lower()) or "active",
            hostname=record.hostname.strip() or None,
            interface=record.interface.strip() or None,
            created_at=now,
        )
        for index, (record, iface) in enumerate(zip(records, interfaces, strict=True))
    ]
    columns: dict[str, list[Any]] = {
        "id": [a.id for a in created],
        "workspace": [ctx.workspace] * len(created),
        "address": [a.address for a in created],
        "version": [i.version for i in interfaces],
        "value": [int(i.ip) for i in interfaces],
        "prefix_length": [a.prefix_length for a in created],
        "vrf": [a.vrf for a in created],
        "subnet_id": [a.subnet_id for a in created],
        "status": [a.status for a in created],
        "hostname": [a.hostname for a in created],
        "device_id": [None] * len(created),
        "interface": [a.interface for a in created],
        "created_at": [now] * len(created),
    }
    audit.store.bulk_insert(conn, "addresses", columns, casts={"value": "UHUGEINT"})
    entries = [
        AuditEntry(
            a.id,
            "address.create",
            ctx.actor,
            ctx.intent,
            {"before": None, "after": a.to_dict()},
        )
        for a in created
    ]
    audit.append_many(conn, ctx.workspace, entries, new_subjects=True)
    return created
