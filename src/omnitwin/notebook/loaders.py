"""Load omnitwin records into pandas DataFrames and topology into networkx.

Every loader goes through the public client, so it works on the embedded
engine and on a remote server alike. Columns have explicit dtypes: ids,
CIDRs, hostnames and other text are ``string``, counts and VLAN ids are
nullable ``Int64`` (a missing VLAN stays an integer column), scores are
``Float64``, flags are ``boolean`` and timestamps are ``datetime64[ns, UTC]``.
Nested maps (tags, twin state, audit changes) stay Python objects.

Examples
--------
>>> import omnitwin
>>> from omnitwin.notebook.loaders import read_subnets
>>> client = omnitwin.connect(":memory:")
>>> _ = client.subnets.create("10.0.0.0/24", vlan_id=100)
>>> df = read_subnets(client, progress=False)
>>> df[["cidr", "vlan_id", "prefix_length"]].dtypes.astype(str).tolist()
['string', 'Int64', 'Int64']
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, Protocol, cast

import networkx as nx
import pandas as pd

from omnitwin.models import (
    Device,
    FreeBlocks,
    Page,
    Record,
    Subnet,
    TopologyGraph,
    TopologyLink,
)
from omnitwin.notebook._optional import require

__all__ = [
    "SCHEMAS",
    "iter_records",
    "last_records",
    "load_sample_twin",
    "read_audit_events",
    "read_devices",
    "read_drift_events",
    "read_sessions",
    "read_subnets",
    "read_topology",
    "require",
    "subnets_frame",
    "to_networkx",
    "to_pandas",
]

_TIME: Any = "datetime64[ns, UTC]"

# Column order and dtype of each record type. Columns that a record does not
# have (an older server) are added as missing values of the same dtype.
SCHEMAS: dict[str, dict[str, str]] = {
    "Subnet": {
        "id": "string",
        "cidr": "string",
        "prefix_length": "Int64",
        "version": "Int64",
        "status": "string",
        "purpose": "string",
        "vrf": "string",
        "vlan_id": "Int64",
        "owner": "string",
        "parent_id": "string",
        "is_container": "boolean",
        "is_pool": "boolean",
        "tags": "object",
        "created_at": _TIME,
        "updated_at": _TIME,
    },
    "Device": {
        "id": "string",
        "hostname": "string",
        "role": "string",
        "site": "string",
        "rack": "string",
        "model": "string",
        "platform": "string",
        "serial": "string",
        "management_address": "string",
        "owner": "string",
        "drift_score": "Float64",
        "last_seen": _TIME,
        "twin_state": "object",
        "detected_state": "object",
        "created_at": _TIME,
        "updated_at": _TIME,
    },
    "DriftEvent": {
        "id": "string",
        "device_id": "string",
        "hostname": "string",
        "field": "string",
        "status": "string",
        "resolution": "string",
        "twin_value": "object",
        "actual_value": "object",
        "detected_at": _TIME,
        "last_seen_at": _TIME,
        "resolved_at": _TIME,
    },
    "AuditEvent": {
        "position": "Int64",
        "subject": "string",
        "seq": "Int64",
        "action": "string",
        "actor": "string",
        "at": _TIME,
        "intent": "string",
        "changes": "object",
        "prev_hash": "string",
        "hash": "string",
    },
    "Session": {
        "id": "string",
        "status": "string",
        "command": "string",
        "actor": "string",
        "model": "string",
        "turns": "Int64",
        "events": "Int64",
        "tool_calls": "Int64",
        "total_tokens": "Int64",
        "duration_ms": "Float64",
        "created_at": _TIME,
        "updated_at": _TIME,
        "expires_at": _TIME,
    },
    "Address": {
        "id": "string",
        "address": "string",
        "prefix_length": "Int64",
        "vrf": "string",
        "subnet_id": "string",
        "status": "string",
        "hostname": "string",
        "device_id": "string",
        "interface": "string",
        "created_at": _TIME,
    },
    "Vlan": {
        "id": "string",
        "vid": "Int64",
        "name": "string",
        "site": "string",
        "group": "string",
        "status": "string",
        "tenant": "string",
        "created_at": _TIME,
        "updated_at": _TIME,
    },
    "Site": {
        "name": "string",
        "region": "string",
        "owner": "string",
        "description": "string",
        "created_at": _TIME,
    },
    "TopologyLink": {
        "id": "string",
        "kind": "string",
        "a": "string",
        "a_hostname": "string",
        "port_a": "string",
        "b": "string",
        "b_hostname": "string",
        "port_b": "string",
        "cable": "string",
        "weight": "Float64",
        "reported_by": "string",
        "created_at": _TIME,
    },
    "FreeBlock": {"cidr": "string", "prefix_length": "Int64", "parent": "string"},
}

_PER_PAGE = 200


# --- records to rows -----------------------------------------------------------


def _subnet_row(record: Subnet) -> dict[str, Any]:
    row = record.to_dict()
    network = ipaddress.ip_network(record.cidr, strict=False)
    row["prefix_length"] = network.prefixlen
    row["version"] = network.version
    return row


def _device_row(record: Device) -> dict[str, Any]:
    row = record.to_dict()
    row["last_seen"] = record.detected_state.get("last_seen")
    return row


def _session_row(record: Any) -> dict[str, Any]:
    row: dict[str, Any] = record.to_dict()
    telemetry = row.pop("telemetry", None) or {}
    for name in ("tool_calls", "total_tokens", "duration_ms"):
        row[name] = telemetry.get(name)
    return row


def _free_block_rows(blocks: FreeBlocks) -> list[dict[str, Any]]:
    return [
        {"cidr": cidr, "prefix_length": blocks.prefix_length, "parent": blocks.parent}
        for cidr in blocks.blocks
    ]


_ROW_BUILDERS: dict[str, Callable[[Any], dict[str, Any]]] = {
    "Subnet": _subnet_row,
    "Device": _device_row,
    "Session": _session_row,
}


def _schema_name(records: Sequence[Any], kind: str | None) -> str | None:
    if kind is not None:
        if kind not in SCHEMAS:
            known = ", ".join(sorted(SCHEMAS))
            raise ValueError(f"unknown record kind {kind!r}; use one of {known}")
        return kind
    if not records:
        return None
    name = type(records[0]).__name__
    return name if name in SCHEMAS else None


def _rows(records: Sequence[Any], name: str | None) -> list[dict[str, Any]]:
    builder = _ROW_BUILDERS.get(name or "")
    rows = []
    for record in records:
        if builder is not None:
            rows.append(builder(record))
        elif isinstance(record, Record):
            rows.append(record.to_dict())
        elif isinstance(record, Mapping):
            rows.append(dict(record))
        else:
            raise TypeError(
                f"cannot convert {type(record).__name__} to a DataFrame row; "
                "pass omnitwin records or mappings"
            )
    return rows


def _apply_schema(frame: pd.DataFrame, schema: Mapping[str, str]) -> pd.DataFrame:
    columns: dict[str, Any] = {}
    for column, dtype in schema.items():
        if column in frame.columns:
            values = frame[column]
        else:
            values = pd.Series([None] * len(frame), index=frame.index, dtype="object")
        if dtype == _TIME and isinstance(values.dtype, pd.DatetimeTZDtype):
            columns[column] = values.astype(_TIME)
        elif dtype == _TIME:
            text = values.where(values.astype("string").str.len() > 0)
            parsed = pd.to_datetime(text, utc=True, format="ISO8601")
            columns[column] = cast(Any, parsed).astype(_TIME)
        elif dtype == "object":
            columns[column] = values.astype("object")
        else:
            columns[column] = cast(Any, values).astype(dtype)
    extra = [c for c in frame.columns if c not in schema]
    result = pd.DataFrame(columns, index=frame.index)
    for column in extra:
        result[column] = frame[column]
    return result


def to_pandas(
    records: Iterable[Any] | Page[Any] | FreeBlocks, *, kind: str | None = None
) -> pd.DataFrame:
    """Convert omnitwin records to a DataFrame with explicit dtypes.

    Parameters
    ----------
    records : iterable of records, Page or FreeBlocks
        Records of one type (``Subnet``, ``Device``, ``DriftEvent``,
        ``AuditEvent``, ``Session`` ...), a page of them, or free blocks.
    kind : str, optional
        The schema to apply (a key of :data:`SCHEMAS`); needed only to give an
        empty list the right columns.

    Returns
    -------
    pandas.DataFrame
        One row per record, columns in the order of the record's schema.
        Records of an unknown type keep the dtypes pandas infers.

    Raises
    ------
    TypeError
        If an item is neither a record nor a mapping.

    Examples
    --------
    >>> from omnitwin.models import Subnet
    >>> df = to_pandas([Subnet(id="sn_1", cidr="10.0.0.0/24", vlan_id=None)])
    >>> str(df["vlan_id"].dtype), str(df["cidr"].dtype)
    ('Int64', 'string')
    """
    if isinstance(records, FreeBlocks):
        items: list[Any] = _free_block_rows(records)
        kind = kind or "FreeBlock"
    else:
        items = list(records)
    name = _schema_name(items, kind)
    frame = pd.DataFrame(_rows(items, name))
    if name is None:
        return frame
    return _apply_schema(frame, SCHEMAS[name]).reset_index(drop=True)


# --- reading through a client --------------------------------------------------


class _Lister(Protocol):
    def __call__(self, *, page: int, per_page: int) -> Page[Any]: ...


def _progress_bar(total: int, description: str, progress: bool | None) -> Any:
    from tqdm.auto import tqdm

    # By default a bar appears only when a load takes several pages.
    disable = not progress if progress is not None else total <= _PER_PAGE * 5
    return tqdm(total=total, desc=description, unit="rows", disable=disable)


def iter_records(
    lister: _Lister,
    *,
    description: str,
    progress: bool | None = None,
    limit: int | None = None,
) -> Iterator[Any]:
    """Yield the records of every page of ``lister``, up to ``limit``.

    ``lister(page=..., per_page=...)`` returns a :class:`~omnitwin.models.Page`,
    e.g. ``functools.partial(client.devices.list, site="nyc1")``.
    """
    first = lister(page=1, per_page=_PER_PAGE)
    total = first.total if limit is None else min(first.total, limit)
    with _progress_bar(total, description, progress) as bar:
        page, result, count = 1, first, 0
        while True:
            for item in result.data:
                if limit is not None and count >= limit:
                    return
                yield item
                count += 1
            bar.update(len(result.data))
            if page >= result.pages:
                return
            page += 1
            result = lister(page=page, per_page=_PER_PAGE)


def last_records(
    lister: _Lister,
    *,
    limit: int,
    description: str,
    progress: bool | None = None,
) -> list[Any]:
    """Return the last ``limit`` records of ``lister``'s pages, in their order.

    Only the first page and the pages that hold those records are read, so
    the newest 20 of a million audit events cost two or three page requests
    rather than 5,000. Records added
    while the pages are read can move the window, so the result is the last
    ``limit`` records of what was read.
    """
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    first = lister(page=1, per_page=_PER_PAGE)
    start = max(first.total - limit, 0)
    page = start // _PER_PAGE + 1
    result = first if page == 1 else lister(page=page, per_page=_PER_PAGE)
    records = list(result.data[start % _PER_PAGE :])
    with _progress_bar(min(first.total, limit), description, progress) as bar:
        bar.update(len(records))
        while page < result.pages:
            page += 1
            result = lister(page=page, per_page=_PER_PAGE)
            records.extend(result.data)
            bar.update(len(result.data))
    return records[-limit:]


def subnets_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Apply the subnet schema to a DataFrame from a bulk export."""
    return _apply_schema(frame, SCHEMAS["Subnet"]).reset_index(drop=True)


_BULK_FILTERS = frozenset({"within", "status", "vrf"})


def read_subnets(
    client: Any,
    *,
    site: str | None = None,
    limit: int | None = None,
    progress: bool | None = None,
    **filters: Any,
) -> pd.DataFrame:
    """Read subnets into a DataFrame.

    The read is one bulk query (``client.subnets.to_pandas``) when no
    ``limit`` and no filters other than ``within``, ``status`` and ``vrf``
    are given. Otherwise it goes page by page through ``client.subnets.list``.

    Parameters
    ----------
    client : omnitwin.Client
        The client to read through.
    site : str, optional
        Keep only subnets whose ``site`` tag equals this value.
    limit : int, optional
        Maximum number of subnets to read.
    progress : bool, optional
        Show a tqdm progress bar; by default only for more than 1,000 rows.
    **filters
        ``within``, ``contains``, ``status``, ``purpose``, ``vrf`` and
        ``owner``, as in ``client.subnets.list``.
    """

    bulk = getattr(client.subnets, "to_pandas", None)
    chosen = {k: v for k, v in filters.items() if v is not None}
    if bulk is not None and limit is None and set(chosen) <= _BULK_FILTERS:
        frame: pd.DataFrame = bulk(**chosen)
    else:

        def lister(*, page: int, per_page: int) -> Page[Any]:
            result: Page[Any] = client.subnets.list(
                page=page, per_page=per_page, **filters
            )
            return result

        records = iter_records(
            lister, description="subnets", progress=progress, limit=limit
        )
        frame = to_pandas(list(records), kind="Subnet")
    if site is not None:
        keep = [tags.get("site") == site for tags in frame["tags"]]
        frame = frame[keep].reset_index(drop=True)
    return frame


def read_devices(
    client: Any,
    *,
    limit: int | None = None,
    progress: bool | None = None,
    **filters: Any,
) -> pd.DataFrame:
    """Read devices into a DataFrame; ``filters`` are site, role and has_drift."""

    def lister(*, page: int, per_page: int) -> Page[Any]:
        result: Page[Any] = client.devices.list(page=page, per_page=per_page, **filters)
        return result

    devices = list(
        iter_records(lister, description="devices", progress=progress, limit=limit)
    )
    return to_pandas(devices, kind="Device")


def read_drift_events(
    client: Any,
    *,
    limit: int | None = None,
    progress: bool | None = None,
    **filters: Any,
) -> pd.DataFrame:
    """Read drift events, newest first; ``filters`` are device, status and field."""

    def lister(*, page: int, per_page: int) -> Page[Any]:
        result: Page[Any] = client.drift.events(page=page, per_page=per_page, **filters)
        return result

    events = list(
        iter_records(lister, description="drift events", progress=progress, limit=limit)
    )
    return to_pandas(events, kind="DriftEvent")


def read_audit_events(
    client: Any,
    *,
    limit: int | None = None,
    progress: bool | None = None,
    **filters: Any,
) -> pd.DataFrame:
    """Read audit events, oldest first; ``filters`` are subject, actor, action.

    With ``limit``, the result is the most recent ``limit`` events, still
    oldest first.
    """

    def lister(*, page: int, per_page: int) -> Page[Any]:
        result: Page[Any] = client.audit.list(page=page, per_page=per_page, **filters)
        return result

    description = "audit events"
    if limit is None:
        events = list(iter_records(lister, description=description, progress=progress))
    else:
        events = last_records(
            lister, limit=limit, description=description, progress=progress
        )
    return to_pandas(events, kind="AuditEvent")


def read_sessions(client: Any, **filters: Any) -> pd.DataFrame:
    """Read agent sessions into a DataFrame.

    Raises
    ------
    AttributeError
        If the client has no ``agents`` namespace (an older omnitwin).
    """
    agents = getattr(client, "agents", None)
    if agents is None:
        raise AttributeError(
            "this client has no agents namespace; upgrade omnitwin to read sessions"
        )
    result = agents.sessions(**filters)
    sessions = result.data if isinstance(result, Page) else list(result)
    return to_pandas(sessions, kind="Session")


# --- topology ------------------------------------------------------------------


def to_networkx(graph: TopologyGraph | Iterable[TopologyLink]) -> nx.MultiGraph[str]:
    """Convert a topology graph or a list of links to a ``networkx.MultiGraph``.

    Nodes keep their attributes (``kind``, ``label``, ``role``, ``drift_score``
    ...); edges keep ``relation``, ``kind``, ports, cable and weight, keyed by
    link id. Links become edges between device ids with hostnames as labels.

    Examples
    --------
    >>> from omnitwin.models import TopologyLink
    >>> link = TopologyLink("lk_1", "intended", "dv_a", "e1", "dv_b", "e2")
    >>> sorted(to_networkx([link]).edges(keys=True))
    [('dv_a', 'dv_b', 'lk_1')]
    """
    if isinstance(graph, TopologyGraph):
        result: nx.MultiGraph[str] = graph.to_networkx()
        return result
    multigraph: nx.MultiGraph[str] = nx.MultiGraph()
    for link in graph:
        multigraph.add_node(link.a, kind="device", label=link.a_hostname or link.a)
        multigraph.add_node(link.b, kind="device", label=link.b_hostname or link.b)
        attrs = link.to_dict()
        link_id = attrs.pop("id")
        multigraph.add_edge(
            link.a, link.b, key=link_id, relation="connected_to", **attrs
        )
    return multigraph


def read_topology(
    client: Any,
    *,
    scope: str | None = None,
    depth: int = 2,
    max_elements: int | None = None,
    annotate_drift: bool = True,
) -> nx.MultiGraph[str]:
    """Read the topology, or the part around ``scope``, as a networkx graph.

    Pruning to ``max_elements`` happens on the engine or server side, and
    ``graph.graph`` contains the scope and the pruned node and edge counts.
    """
    topology = client.topology.graph(
        scope=scope,
        depth=depth,
        annotate_drift=annotate_drift,
        max_elements=max_elements,
    )
    return to_networkx(topology)


# --- the sample twin -------------------------------------------------------------


def load_sample_twin(
    client: Any, *, sites: int = 3, leaves: int = 4, servers_per_leaf: int = 2
) -> dict[str, int]:
    """Load the generated sample network through ``client`` and ingest its state.

    Creates the subnets, devices and cables of
    :func:`omnitwin.sample.generate_fabric`, then ingests the sample's
    discovery output, which differs from the twin in a few places of the
    first site so that drift has something to show. Loading twice is safe:
    existing subnets and devices are skipped.

    Returns
    -------
    dict
        ``subnets`` and ``devices`` created, ``drift_opened`` and
        ``detected_links`` from the ingest.

    Examples
    --------
    >>> import omnitwin
    >>> counts = load_sample_twin(omnitwin.connect(":memory:"), sites=1, leaves=4)
    >>> counts["devices"], counts["drift_opened"] > 0
    (16, True)
    """
    from omnitwin.cli import load_sample
    from omnitwin.client._devices import load_sample_devices, sample_detected_state
    from omnitwin.sample import generate_fabric

    network = generate_fabric(
        sites=sites, leaves=leaves, servers_per_leaf=servers_per_leaf
    )
    subnets = load_sample(client, network)
    devices = load_sample_devices(client, network)
    report = client.discovery.ingest("napalm", sample_detected_state(network))
    return {
        "subnets": subnets,
        "devices": devices,
        "drift_opened": report.drift_opened,
        "detected_links": report.detected_links,
    }
