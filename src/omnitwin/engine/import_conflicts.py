"""Conflict detection and resolution for import plans.

An import plan is a list of :class:`PlanItem` (one per record to write) and a
list of :class:`FoundConflict`. Subnet conflicts are found in DuckDB SQL over
a staged table of the imported networks, both against the store and inside
the file, so that a file of a million prefixes is checked in a few joins.
Addresses, VLANs and devices are checked with hash lookups.

Conflict kinds, with their resolutions (the first one is the suggestion):

``duplicate``
    The same CIDR in the same VRF (or the same address, the same VLAN ID in
    the same site and group) already exists, in the store or on an earlier
    row. ``skip`` drops the imported row; ``merge`` keeps the existing object
    and fills its empty fields from the row (tags are added, existing keys
    kept).
``cidr_overlap``
    A network would nest inside, or around, a network that is not a
    container. ``mark_as_child`` makes the outer network a container and nests
    the inner one in it; ``skip`` drops the imported row.
``ownership_mismatch``
    A duplicate has another owner. ``keep_existing`` or ``use_imported``
    decides the owner when the duplicate is merged.
``duplicate_hostname``
    A device name already exists, in the store or on an earlier row.
    ``skip`` drops the row; ``merge`` keeps the existing device.

Nesting inside a container is not a conflict. Each conflict has a ``key``
built from its kind, line and subject, so that the resolution a user chose
survives the re-planning that a commit does.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import duckdb
import numpy as np

from omnitwin.engine.cidr import canonical_ipv4
from omnitwin.engine.importers.records import (
    AddressRecord,
    DeviceRecord,
    SubnetRecord,
    VlanRecord,
)

__all__ = [
    "RESOLUTIONS",
    "FoundConflict",
    "PlanItem",
    "apply_resolutions",
    "detect_conflicts",
    "stage_subnets",
    "staged_subnet_conflicts",
    "write_stage_table",
]

#: Allowed resolutions per conflict kind; the first one is the suggestion.
RESOLUTIONS: dict[str, tuple[str, ...]] = {
    "duplicate": ("skip", "merge"),
    "cidr_overlap": ("mark_as_child", "skip"),
    "ownership_mismatch": ("keep_existing", "use_imported"),
    "duplicate_hostname": ("skip", "merge"),
}
# How many related networks a conflict names; the count is always exact.
_RELATED_LIMIT = 5


@dataclass(slots=True)
class PlanItem:
    """One imported record and what the commit does with it.

    ``action`` is ``create``, ``update`` (merge into ``target_id``) or
    ``skip``. ``containerize`` lists existing subnet ids that become
    containers before this item is created. ``merged`` lists later rows of
    the file whose fields are merged into this item.
    """

    index: int
    kind: str
    line: int
    record: Any
    action: str = "create"
    target_id: str | None = None
    target: dict[str, Any] = field(default_factory=dict)
    containerize: list[str] = field(default_factory=list)
    merged: list[int] = field(default_factory=list)
    use_imported_owner: bool = False
    extra: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class FoundConflict:
    """A conflict found while planning, before it is stored with an id."""

    key: str
    kind: str
    item: int
    line: int
    subject: str
    message: str
    existing: dict[str, Any]

    @property
    def suggestion(self) -> str:
        """The suggested resolution."""
        return RESOLUTIONS[self.kind][0]

    @property
    def options(self) -> tuple[str, ...]:
        """Every allowed resolution."""
        return RESOLUTIONS[self.kind]


class _ItemRef(Protocol):
    @property
    def index(self) -> int: ...

    @property
    def line(self) -> int: ...

    @property
    def kind(self) -> str: ...


def _conflict(
    kind: str, item: _ItemRef, subject: str, message: str, existing: dict[str, Any]
) -> FoundConflict:
    key = f"{kind}|{item.kind}|{item.line}|{subject}"
    return FoundConflict(key, kind, item.index, item.line, subject, message, existing)


def detect_conflicts(
    conn: duckdb.DuckDBPyConnection,
    workspace: str,
    items: Sequence[PlanItem],
    *,
    stage_name: str,
    device_names: Iterable[str] = (),
) -> list[FoundConflict]:
    """Find every conflict of a plan, against the store and inside the file.

    Parameters
    ----------
    conn : duckdb.DuckDBPyConnection
        The store connection; the caller holds the store lock.
    workspace : str
        The workspace the import writes to.
    items : sequence of PlanItem
        The plan, with ``index`` equal to the position in the sequence.
    stage_name : str
        A name for the temporary table of staged networks, unique per job.
    device_names : iterable of str
        Lower-case names of the devices already stored; device names are
        unique without case.

    Returns
    -------
    list of FoundConflict
        Conflicts in line order.
    """
    found = _subnet_conflicts(conn, workspace, items, stage_name)
    found += _address_conflicts(conn, workspace, items)
    found += _vlan_conflicts(conn, workspace, items)
    found += _device_conflicts(items, set(device_names))
    found.sort(key=lambda c: (c.line, c.kind, c.subject))
    return found


# Subnets, in SQL over a staged table


@dataclass(frozen=True, slots=True)
class _Ref:
    """The plan item a conflict belongs to, as a staged row names it."""

    index: int
    line: int
    kind: str = "subnet"


def stage_subnets(
    conn: duckdb.DuckDBPyConnection, items: Sequence[PlanItem], stage: str
) -> int:
    """Write the subnet items of a plan into the temporary table ``stage``.

    ``idx`` is the item's index. Return the number of rows written.
    """
    subnets = [item for item in items if item.kind == "subnet"]
    write_stage_table(
        conn,
        stage,
        [item.index for item in subnets],
        [item.line for item in subnets],
        [item.record for item in subnets],
    )
    return len(subnets)


def write_stage_table(
    conn: duckdb.DuckDBPyConnection,
    table: str,
    indexes: Sequence[int],
    lines: Sequence[int],
    records: Sequence[SubnetRecord],
) -> None:
    """Create the temporary table ``table`` of subnet ``records``.

    Its columns are those the conflict queries read:
    ``idx, line, vrf, version, first, last, plen, container, cidr, owner``.
    """
    intervals = [_interval(r.cidr) for r in records]
    conn.execute(
        f"CREATE OR REPLACE TEMP TABLE {table} AS SELECT "
        "unnest(?::BIGINT[]) AS idx, unnest(?::BIGINT[]) AS line, "
        "unnest(?::VARCHAR[]) AS vrf, unnest(?::TINYINT[]) AS version, "
        'CAST(unnest(?::VARCHAR[]) AS UHUGEINT) AS "first", '
        'CAST(unnest(?::VARCHAR[]) AS UHUGEINT) AS "last", '
        "unnest(?::SMALLINT[]) AS plen, unnest(?::BOOLEAN[]) AS container, "
        "unnest(?::VARCHAR[]) AS cidr, unnest(?::VARCHAR[]) AS owner",
        [
            list(indexes),
            list(lines),
            [r.vrf for r in records],
            [version for version, _, _, _ in intervals],
            [str(first) for _, first, _, _ in intervals],
            [str(last) for _, _, last, _ in intervals],
            [prefix_length for _, _, _, prefix_length in intervals],
            [r.is_container for r in records],
            [r.cidr for r in records],
            [r.owner for r in records],
        ],
    )


def _interval(cidr: str) -> tuple[int, int, int, int]:
    """Return the version, first and last address and prefix length of ``cidr``."""
    canonical = canonical_ipv4(cidr)
    if canonical is not None:
        first, prefix_length = canonical
        return 4, first, first | ((1 << (32 - prefix_length)) - 1), prefix_length
    network = ipaddress.ip_network(cidr)
    first, last = int(network.network_address), int(network.broadcast_address)
    return network.version, first, last, network.prefixlen


# Store duplicates: the same interval in the same VRF.
_STORE_DUPLICATES = """
SELECT s.idx, s.line, s.cidr, s.vrf, s.owner, e.id, e.owner, e.is_container
FROM {stage} s JOIN subnets e
  ON e.workspace = ? AND e.vrf = s.vrf AND e.version = s.version
 AND e."first" = s."first" AND e."last" = s."last"
ORDER BY s.idx
"""

# Store overlaps: a stored leaf around an imported row, or an imported leaf
# around stored rows. Rows that duplicate a stored network are left out.
_STORE_OVERLAPS = """
WITH dup AS (
  SELECT s.idx FROM {stage} s JOIN subnets e
    ON e.workspace = ? AND e.vrf = s.vrf AND e.version = s.version
   AND e."first" = s."first" AND e."last" = s."last"
)
SELECT s.idx, s.line, s.cidr,
       e."first" <= s."first" AND e."last" >= s."last" AS existing_outer,
       count(*) AS n,
       list(e.id ORDER BY e."first", e.prefix_length)[1:{limit}] AS ids,
       list(e.cidr ORDER BY e."first", e.prefix_length)[1:{limit}] AS cidrs
FROM {stage} s JOIN subnets e
  ON e.workspace = ? AND e.vrf = s.vrf AND e.version = s.version
 AND e."first" <= s."last" AND e."last" >= s."first"
WHERE s.idx NOT IN (SELECT idx FROM dup)
  AND ((e."first" <= s."first" AND e."last" >= s."last" AND NOT e.is_container)
    OR (s."first" <= e."first" AND s."last" >= e."last" AND NOT s.container))
GROUP BY ALL
ORDER BY s.idx
"""

# One sorted pass over the staged rows marks the rows that the in-file
# checks need. Inside one VRF and family, sorted by first address, prefix
# length and index, the copies of a network follow its first row, and the
# rows inside a network follow it. So a row is a later copy when the previous
# row has the same network, and it lies inside an earlier leaf when the
# running max of the leaves' last addresses before it reaches its first
# address. Copies are marked because the duplicate check reports them. The
# marks are a superset, and the queries below keep only the exact rows. The
# marks table has every column of the staged rows, so those queries read
# only the marks.
_FILE_MARKS = """
CREATE OR REPLACE TEMP TABLE {marks} AS
SELECT * FROM (
  SELECT idx, line, vrf, version, "first", "last", plen, container, cidr, owner,
         coalesce(lag("first") OVER w = "first" AND lag(plen) OVER w = plen, false)
           AS later_copy,
         coalesce(lead("first") OVER w = "first" AND lead(plen) OVER w = plen, false)
           AS has_copies,
         coalesce(NOT container AND lead("first") OVER w <= "last", false)
           AS outer_leaf,
         coalesce(max(CASE WHEN NOT container THEN "last" END) OVER (
           w ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) >= "first", false)
           AS inside_leaf
  FROM {stage}
  WINDOW w AS (PARTITION BY vrf, version ORDER BY "first", plen, idx)
) WHERE later_copy OR has_copies OR outer_leaf OR inside_leaf
"""

# The rows of an IPv4-only staged table in the order of _FILE_MARKS, for
# marking them with NumPy. ``grp`` numbers the VRFs in sorted order.
_IPV4_ORDER = """
SELECT s.idx, g.grp, s."first"::UBIGINT AS "first", s."last"::UBIGINT AS "last",
       s.plen, s.container
FROM {stage} s
JOIN (SELECT vrf, row_number() OVER (ORDER BY vrf) AS grp
      FROM (SELECT DISTINCT vrf FROM {stage})) g USING (vrf)
ORDER BY g.grp, s."first", s.plen, s.idx
"""

# The rows of an IPv4-only staged table with one VRF, in no order.
_IPV4_ROWS_ONE_VRF = """
SELECT idx, 0 AS grp, "first"::UBIGINT AS "first", "last"::UBIGINT AS "last",
       plen, container
FROM {stage}
"""

# The staged rows that NumPy marked, with their marks. The columns are
# those of _FILE_MARKS.
_IPV4_MARKS = """
CREATE OR REPLACE TEMP TABLE {marks} AS
SELECT s.idx, s.line, s.vrf, s.version, s."first", s."last", s.plen, s.container,
       s.cidr, s.owner, f.later_copy, f.has_copies, f.outer_leaf, f.inside_leaf
FROM {stage} s JOIN (
  SELECT unnest(?::BIGINT[]) AS idx, unnest(?::BOOLEAN[]) AS later_copy,
         unnest(?::BOOLEAN[]) AS has_copies, unnest(?::BOOLEAN[]) AS outer_leaf,
         unnest(?::BOOLEAN[]) AS inside_leaf
) f USING (idx)
"""

# Later rows of the file with the same network as an earlier row. The
# marks contain every copy of such a network.
_FILE_DUPLICATES = """
WITH groups AS (
  SELECT vrf, version, "first", "last", min(idx) AS original
  FROM {marks} WHERE later_copy OR has_copies GROUP BY ALL
)
SELECT d.idx, d.line, d.cidr, d.vrf, d.owner, o.idx, o.line, o.owner
FROM {marks} d
JOIN groups g USING (vrf, version, "first", "last")
JOIN {marks} o ON o.idx = g.original
WHERE d.later_copy
ORDER BY d.idx
"""

# Leaf rows of the file that contain other rows, leaving out later copies of
# a network. Only marked rows take part in the join: the leaves whose next
# row starts inside them, and the rows inside a leaf.
_FILE_OVERLAPS = """
WITH u AS (
  SELECT * FROM {marks} WHERE NOT later_copy AND (outer_leaf OR inside_leaf)
)
SELECT o.idx, o.line, o.cidr, count(*) AS n,
       list(i.line ORDER BY i."first", i.plen)[1:{limit}] AS lines,
       list(i.cidr ORDER BY i."first", i.plen)[1:{limit}] AS cidrs
FROM u o JOIN u i
  ON i.vrf = o.vrf AND i.version = o.version AND i.idx <> o.idx
 AND i."first" >= o."first" AND i."last" <= o."last"
WHERE o.outer_leaf AND i.inside_leaf
GROUP BY o.idx, o.line, o.cidr
ORDER BY o.idx
"""


def _subnet_conflicts(
    conn: duckdb.DuckDBPyConnection,
    workspace: str,
    items: Sequence[PlanItem],
    stage: str,
) -> list[FoundConflict]:
    if not stage_subnets(conn, items, stage):
        conn.execute(f"DROP TABLE IF EXISTS {stage}")
        return []
    try:
        return staged_subnet_conflicts(conn, workspace, stage)
    finally:
        conn.execute(f"DROP TABLE IF EXISTS {stage}")


def staged_subnet_conflicts(
    conn: duckdb.DuckDBPyConnection, workspace: str, stage: str
) -> list[FoundConflict]:
    """Find the subnet conflicts of a staged table, against the store and itself.

    ``idx`` of each staged row is the plan item index the conflicts point to.
    """
    found = _store_subnet_conflicts(conn, workspace, stage)
    found += _file_subnet_conflicts(conn, stage)
    return found


def _store_subnet_conflicts(
    conn: duckdb.DuckDBPyConnection, workspace: str, stage: str
) -> list[FoundConflict]:
    found: list[FoundConflict] = []
    sql = _STORE_DUPLICATES.format(stage=stage)
    for (
        idx,
        line,
        cidr,
        vrf,
        owner,
        existing_id,
        current_owner,
        container,
    ) in conn.execute(sql, [workspace]).fetchall():
        ref = _Ref(idx, line)
        existing = {
            "id": existing_id,
            "cidr": cidr,
            "owner": current_owner,
            "is_container": bool(container),
            "in": "store",
        }
        message = (
            f"{cidr} already exists in VRF {vrf!r} as subnet {existing_id}; skip "
            f"the row or merge it into {existing_id}"
        )
        found.append(_conflict("duplicate", ref, cidr, message, existing))
        found += _owner_conflict(ref, cidr, owner, current_owner, existing)
    sql = _STORE_OVERLAPS.format(stage=stage, limit=_RELATED_LIMIT)
    for idx, line, cidr, existing_outer, count, ids, cidrs in conn.execute(
        sql, [workspace, workspace]
    ).fetchall():
        existing = {
            "in": "store",
            "role": "existing_outer" if existing_outer else "import_outer",
            "ids": list(ids),
            "cidrs": list(cidrs),
            "count": int(count),
        }
        if existing_outer:
            message = (
                f"{cidr} overlaps {cidrs[0]} (subnet {ids[0]}), which is not a "
                f"container; mark_as_child makes {cidrs[0]} a container and nests "
                f"{cidr} in it"
            )
        else:
            message = (
                f"{cidr} overlaps {count} stored subnet(s) by containing them, "
                f"starting with {cidrs[0]}; mark_as_child imports {cidr} as a "
                "container of them"
            )
        found.append(
            _conflict("cidr_overlap", _Ref(idx, line), cidr, message, existing)
        )
    return found


def _file_subnet_conflicts(
    conn: duckdb.DuckDBPyConnection, stage: str
) -> list[FoundConflict]:
    marks = f"{stage}_marks"
    if not _mark_ipv4_rows(conn, stage, marks):
        conn.execute(_FILE_MARKS.format(stage=stage, marks=marks))
    try:
        duplicates = conn.execute(_FILE_DUPLICATES.format(marks=marks)).fetchall()
        sql = _FILE_OVERLAPS.format(marks=marks, limit=_RELATED_LIMIT)
        overlaps = conn.execute(sql).fetchall()
    finally:
        conn.execute(f"DROP TABLE IF EXISTS {marks}")
    found: list[FoundConflict] = []
    for idx, line, cidr, vrf, owner, first_idx, first_line, first_owner in duplicates:
        ref = _Ref(idx, line)
        existing = {
            "in": "file",
            "line": first_line,
            "item": first_idx,
            "cidr": cidr,
            "owner": first_owner,
        }
        message = (
            f"{cidr} in VRF {vrf!r} repeats line {first_line}; skip this row or "
            f"merge it into line {first_line}"
        )
        found.append(_conflict("duplicate", ref, cidr, message, existing))
        found += _owner_conflict(ref, cidr, owner, first_owner, existing)
    for idx, line, cidr, count, lines, cidrs in overlaps:
        existing = {
            "in": "file",
            "role": "import_outer",
            "lines": list(lines),
            "cidrs": list(cidrs),
            "count": int(count),
        }
        message = (
            f"{cidr} contains {count} other row(s) of the file, starting with "
            f"{cidrs[0]} on line {lines[0]}, but is not a container; "
            f"mark_as_child imports {cidr} as a container"
        )
        found.append(
            _conflict("cidr_overlap", _Ref(idx, line), cidr, message, existing)
        )
    return found


def _mark_ipv4_rows(conn: duckdb.DuckDBPyConnection, stage: str, marks: str) -> bool:
    """Create the marks table of _FILE_MARKS with NumPy, or return False on IPv6.

    The rows are sorted, and NumPy's running max over them takes less time
    than the window functions of _FILE_MARKS on large files. IPv6 addresses
    do not fit 64-bit integers, so tables with IPv6 rows use the SQL.
    """
    counts = conn.execute(
        f"SELECT count(*) FILTER (WHERE version <> 4), count(DISTINCT vrf) FROM {stage}"
    ).fetchone()
    ipv6_rows, vrfs = (int(counts[0]), int(counts[1])) if counts else (0, 0)
    if ipv6_rows:
        return False
    if vrfs <= 1:
        rows = _sorted_one_vrf(conn.execute(_IPV4_ROWS_ONE_VRF.format(stage=stage)))
    else:
        rows = conn.execute(_IPV4_ORDER.format(stage=stage)).fetchnumpy()
    idx = np.asarray(rows["idx"], dtype=np.int64)
    plen = np.asarray(rows["plen"], dtype=np.int64)
    container = np.asarray(rows["container"], dtype=bool)
    # IPv4 addresses are below 2**32, so adding the VRF's number times 2**33
    # puts the addresses of each VRF above those of every VRF before it.
    offset = np.asarray(rows["grp"], dtype=np.int64) << 33
    first = np.asarray(rows["first"], dtype=np.int64) + offset
    last = np.asarray(rows["last"], dtype=np.int64) + offset
    same_vrf = offset[1:] == offset[:-1]
    count = len(idx)
    later_copy = np.zeros(count, dtype=bool)
    later_copy[1:] = same_vrf & (first[1:] == first[:-1]) & (plen[1:] == plen[:-1])
    has_copies = np.zeros(count, dtype=bool)
    has_copies[:-1] = later_copy[1:]
    outer_leaf = np.zeros(count, dtype=bool)
    outer_leaf[:-1] = ~container[:-1] & same_vrf & (first[1:] <= last[:-1])
    # The max last address of the leaves up to each row. Containers count as
    # -1, below every address.
    leaf_last = np.maximum.accumulate(np.where(container, -1, last))
    inside_leaf = np.zeros(count, dtype=bool)
    inside_leaf[1:] = leaf_last[:-1] >= first[1:]
    marked = later_copy | has_copies | outer_leaf | inside_leaf
    conn.execute(
        _IPV4_MARKS.format(stage=stage, marks=marks),
        [
            idx[marked].tolist(),
            later_copy[marked].tolist(),
            has_copies[marked].tolist(),
            outer_leaf[marked].tolist(),
            inside_leaf[marked].tolist(),
        ],
    )
    return True


def _sorted_one_vrf(result: duckdb.DuckDBPyConnection) -> dict[str, np.ndarray]:
    """Return the columns of _IPV4_ROWS_ONE_VRF sorted by first, plen and idx.

    The sort key is the first address in the high 32 bits, then the prefix
    length in 6 bits, then the index in 26 bits.
    """
    rows = result.fetchnumpy()
    idx = np.asarray(rows["idx"], dtype=np.uint64)
    first = np.asarray(rows["first"], dtype=np.uint64)
    plen = np.asarray(rows["plen"], dtype=np.uint64)
    if len(idx) and int(idx.max()) >= 1 << 26:
        order = np.lexsort((idx, plen, first))
    else:
        key = (first << 32) | (plen << 26) | idx
        # Files are often sorted by network. Measured on 1,000,000 rows
        # here, the stable sort (timsort) took 2 ms on sorted keys and 130 ms
        # on shuffled ones, the default quicksort 35 ms and 70 ms.
        descents = np.count_nonzero(key[1:] < key[:-1])
        order = np.argsort(key, kind="stable" if descents * 100 < len(key) else None)
    return {name: np.asarray(column)[order] for name, column in rows.items()}


def _owner_conflict(
    item: _ItemRef,
    subject: str,
    imported: str | None,
    current: str | None,
    existing: dict[str, Any],
) -> list[FoundConflict]:
    if not imported or not current or imported == current:
        return []
    message = (
        f"{subject} is owned by {current!r} but the import says {imported!r}; "
        "keep_existing or use_imported decides the owner if the rows are merged"
    )
    details = {**existing, "owner": current, "imported_owner": imported}
    return [_conflict("ownership_mismatch", item, subject, message, details)]


# Addresses, VLANs and devices, with hash lookups


def _address_key(record: AddressRecord) -> tuple[str, int, int]:
    ip = ipaddress.ip_interface(record.address).ip
    return record.vrf, ip.version, int(ip)


def _address_conflicts(
    conn: duckdb.DuckDBPyConnection, workspace: str, items: Sequence[PlanItem]
) -> list[FoundConflict]:
    addresses = [item for item in items if item.kind == "address"]
    if not addresses:
        return []
    stored = {
        (str(vrf), int(version), int(value)): str(address_id)
        for address_id, vrf, version, value in conn.execute(
            "SELECT id, vrf, version, value FROM addresses WHERE workspace = ?",
            [workspace],
        ).fetchall()
    }
    seen: dict[tuple[str, int, int], PlanItem] = {}
    found: list[FoundConflict] = []
    for item in addresses:
        record: AddressRecord = item.record
        key = _address_key(record)
        subject = record.address.split("/")[0]
        if key in stored:
            message = (
                f"{subject} is already assigned in VRF {record.vrf!r} as "
                f"{stored[key]}; skip the row or merge it into {stored[key]}"
            )
            existing: dict[str, Any] = {"in": "store", "id": stored[key]}
            found.append(_conflict("duplicate", item, subject, message, existing))
        elif key in seen:
            first = seen[key]
            message = (
                f"{subject} in VRF {record.vrf!r} repeats line {first.line}; skip "
                f"this row or merge it into line {first.line}"
            )
            existing = {
                "in": "file",
                "line": first.line,
                "item": first.index,
            }
            found.append(_conflict("duplicate", item, subject, message, existing))
        else:
            seen[key] = item
    return found


def _vlan_conflicts(
    conn: duckdb.DuckDBPyConnection, workspace: str, items: Sequence[PlanItem]
) -> list[FoundConflict]:
    vlans = [item for item in items if item.kind == "vlan"]
    if not vlans:
        return []
    stored = {
        (int(vid), str(site or ""), str(group or "")): (str(vlan_id), tenant)
        for vlan_id, vid, site, group, tenant in conn.execute(
            'SELECT id, vid, site, "group", tenant FROM vlans WHERE workspace = ?',
            [workspace],
        ).fetchall()
    }
    seen: dict[tuple[int, str, str], PlanItem] = {}
    found: list[FoundConflict] = []
    for item in vlans:
        record: VlanRecord = item.record
        key = (record.vid, record.site, record.group)
        scope = f"site {record.site!r}" if record.site else "the global scope"
        if record.group:
            scope += f", group {record.group!r}"
        subject = f"vlan {record.vid}"
        if key in stored:
            vlan_id, tenant = stored[key]
            message = (
                f"VLAN {record.vid} already exists in {scope} as {vlan_id}; skip "
                f"the row or merge it into {vlan_id}"
            )
            existing: dict[str, Any] = {"in": "store", "id": vlan_id, "owner": tenant}
            found.append(_conflict("duplicate", item, subject, message, existing))
            found += _owner_conflict(item, subject, record.owner, tenant, existing)
        elif key in seen:
            first = seen[key]
            message = (
                f"VLAN {record.vid} in {scope} repeats line {first.line}; skip this "
                f"row or merge it into line {first.line}"
            )
            existing = {
                "in": "file",
                "line": first.line,
                "item": first.index,
            }
            found.append(_conflict("duplicate", item, subject, message, existing))
        else:
            seen[key] = item
    return found


def _device_conflicts(
    items: Sequence[PlanItem], stored: set[str]
) -> list[FoundConflict]:
    seen: dict[str, PlanItem] = {}
    found: list[FoundConflict] = []
    for item in items:
        if item.kind != "device":
            continue
        record: DeviceRecord = item.record
        name = record.name.lower()
        if name in stored:
            message = (
                f"a device named {record.name!r} already exists; skip the row or "
                "merge it into the existing device"
            )
            existing: dict[str, Any] = {"in": "store", "name": record.name}
            found.append(
                _conflict("duplicate_hostname", item, record.name, message, existing)
            )
        elif name in seen:
            first = seen[name]
            message = (
                f"device name {record.name!r} repeats line {first.line}; rename one "
                "of them in the source, or skip this row"
            )
            existing = {
                "in": "file",
                "line": first.line,
                "item": first.index,
            }
            found.append(
                _conflict("duplicate_hostname", item, record.name, message, existing)
            )
        else:
            seen[name] = item
    return found


# Resolutions


def apply_resolutions(
    items: Mapping[int, PlanItem] | Sequence[PlanItem],
    conflicts: Sequence[FoundConflict],
    chosen: dict[str, str],
) -> None:
    """Set each item's action from the resolution of its conflicts.

    Parameters
    ----------
    items : list of PlanItem
        The plan; items are changed in place.
    conflicts : sequence of FoundConflict
        The conflicts of the plan.
    chosen : dict of str to str
        Resolutions by conflict key; a conflict without one takes its
        suggestion.
    """
    owner_choice: dict[int, str] = {}
    for conflict in conflicts:
        if conflict.kind == "ownership_mismatch":
            owner_choice[conflict.item] = chosen.get(conflict.key, conflict.suggestion)
    for conflict in conflicts:
        resolution = chosen.get(conflict.key, conflict.suggestion)
        item = items[conflict.item]
        if conflict.kind == "ownership_mismatch":
            continue
        if resolution == "skip":
            item.action = "skip"
        elif resolution == "merge":
            _merge(items, item, conflict.existing)
            item.use_imported_owner = owner_choice.get(item.index) == "use_imported"
        elif resolution == "mark_as_child":
            _mark_as_child(item, conflict.existing)


def _merge(
    items: Mapping[int, PlanItem] | Sequence[PlanItem],
    item: PlanItem,
    existing: dict[str, Any],
) -> None:
    if item.action == "skip":
        return
    if existing.get("in") == "store":
        item.action = "update"
        item.target_id = existing.get("id")
        item.target = existing
        return
    first = items[existing["item"]]
    first.merged.append(item.index)
    item.action = "skip"


def _mark_as_child(item: PlanItem, existing: dict[str, Any]) -> None:
    if existing.get("role") == "existing_outer":
        item.containerize.extend(existing["ids"][:1])
    elif item.record is not None:
        # The SQL planner parses only the records that the preview shows.
        item.record = dataclasses.replace(item.record, is_container=True)
