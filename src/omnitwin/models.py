"""Typed records shared by the engine, the client and the server.

Each record is a frozen dataclass with ``to_dict()`` for JSON and a
``from_dict()`` class method that ignores unknown keys, so that a newer server
can add fields without breaking an older client.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, TypeVar

__all__ = [
    "Address",
    "AuditEvent",
    "AuditVerification",
    "BlastRadiusResult",
    "Device",
    "DriftEvent",
    "FreeBlocks",
    "ImportConflict",
    "ImportJob",
    "ImportPlan",
    "IngestReport",
    "Page",
    "Session",
    "Site",
    "StreamEvent",
    "Subnet",
    "SubnetDetail",
    "Telemetry",
    "TopologyGraph",
    "TopologyHop",
    "TopologyLink",
    "TopologyPath",
    "Vlan",
]

T = TypeVar("T", bound="Record")

SUBNET_STATUSES = ("allocated", "reserved", "available", "deprecated")


_SCALARS = (str, int, float, bool, type(None))


def _to_json(value: Any) -> Any:
    if isinstance(value, _SCALARS):
        return value
    if isinstance(value, Record):
        return value.to_dict()
    if isinstance(value, dict):
        return {k: _to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_to_json(v) for v in value]
    return value


def _record_type(annotation: Any) -> type[Record] | None:
    """Return the Record class inside ``annotation``, e.g. in ``list[Subnet]``."""
    if isinstance(annotation, type) and issubclass(annotation, Record):
        return annotation
    for arg in typing.get_args(annotation):
        found = _record_type(arg)
        if found is not None:
            return found
    return None


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


class Record:
    """Base of the typed records: JSON conversion helpers."""

    __slots__ = ()
    _hints: ClassVar[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        """Return the record as plain JSON-compatible data."""
        names = _FIELD_NAMES.get(type(self))
        if names is None:
            fields = dataclasses.fields(self)  # type: ignore[arg-type]
            names = _FIELD_NAMES[type(self)] = tuple(f.name for f in fields)
        return {name: _to_json(getattr(self, name)) for name in names}

    @classmethod
    def from_dict(cls: type[T], data: dict[str, Any]) -> T:
        """Build the record from JSON data, ignoring keys it does not know."""
        hints = typing.get_type_hints(cls)
        kwargs: dict[str, Any] = {}
        for f in dataclasses.fields(cls):  # type: ignore[arg-type]
            if f.name not in data:
                continue
            value = data[f.name]
            nested = _record_type(hints[f.name])
            if nested is not None and isinstance(value, list):
                value = [nested.from_dict(v) for v in value]
            elif nested is not None and isinstance(value, dict):
                value = nested.from_dict(value)
            kwargs[f.name] = value
        return cls(**kwargs)


@dataclass(frozen=True, slots=True)
class Subnet(Record):
    """A network in the IPAM hierarchy.

    ``vrf`` is ``"global"`` unless the subnet belongs to a named routing table.
    ``is_pool`` marks a range whose every address is assignable, so IPv4
    network and broadcast addresses count as usable. ``is_container`` marks a
    block that holds child subnets rather than hosts.
    """

    id: str
    cidr: str
    status: str = "allocated"
    purpose: str | None = None
    parent_id: str | None = None
    vlan_id: int | None = None
    owner: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    vrf: str = "global"
    is_pool: bool = False
    is_container: bool = False
    created_at: str = ""
    updated_at: str = ""


@dataclass(frozen=True, slots=True)
class SubnetDetail(Record):
    """A subnet with its usage: ``utilization`` is ``used_ips / total_ips`` in 0..1."""

    subnet: Subnet
    total_ips: int
    used_ips: int
    utilization: float
    children: list[Subnet] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class FreeBlocks(Record):
    """Free blocks of one prefix length inside a parent range.

    ``blocks`` lists the first blocks in address order (up to the requested
    limit); ``total_free`` counts every free block of that length.
    """

    parent: str
    prefix_length: int
    blocks: list[str]
    total_free: int
    scope: str
    parent_id: str | None = None


@dataclass(frozen=True, slots=True)
class Address(Record):
    """An IP address assigned in a subnet, with the prefix length it was given."""

    id: str
    address: str
    prefix_length: int
    vrf: str = "global"
    subnet_id: str | None = None
    status: str = "active"
    hostname: str | None = None
    device_id: str | None = None
    interface: str | None = None
    created_at: str = ""


@dataclass(frozen=True, slots=True)
class AuditEvent(Record):
    """One append-only audit entry; ``hash`` chains it to the previous entry."""

    subject: str
    seq: int
    action: str
    actor: str
    at: str
    intent: str | None
    changes: dict[str, Any]
    prev_hash: str
    hash: str
    position: int = 0


@dataclass(frozen=True, slots=True)
class AuditVerification(Record):
    """Result of checking the audit hash chain."""

    ok: bool
    checked: int
    first_broken_position: int | None = None
    first_broken_subject: str | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a listing: ``data`` plus ``total``, ``page`` and ``per_page``."""

    data: list[T]
    total: int
    page: int
    per_page: int

    def __iter__(self) -> Iterator[T]:
        return iter(self.data)

    def __len__(self) -> int:
        return len(self.data)

    @property
    def pages(self) -> int:
        """Number of pages in the whole listing."""
        return max(1, -(-self.total // self.per_page))

    def to_dict(self) -> dict[str, Any]:
        """Return the API shape ``{"data": [...], "meta": {...}}``."""
        meta = {"total": self.total, "page": self.page, "per_page": self.per_page}
        return {"data": [_to_json(item) for item in self.data], "meta": meta}

    def to_pandas(self) -> Any:
        """Return this page's records as a DataFrame with explicit dtypes.

        See :func:`omnitwin.notebook.loaders.to_pandas` for the columns.
        """
        from omnitwin.notebook.loaders import to_pandas

        return to_pandas(self.data)

    @classmethod
    def from_dict(cls, data: dict[str, Any], item_type: type[T]) -> Page[T]:
        """Build a page from the API shape, converting each item."""
        meta = data["meta"]
        items = [item_type.from_dict(item) for item in data["data"]]
        return cls(items, meta["total"], meta["page"], meta["per_page"])


# --- devices, drift and topology ----------------------------------------------

DEVICE_ROLES = ("switch", "router", "server", "firewall", "pdu")
DRIFT_STATUSES = ("open", "reconciled", "ignored")


@dataclass(frozen=True, slots=True)
class Site(Record):
    """A place that contains devices, such as a data centre or a branch."""

    name: str
    region: str | None = None
    owner: str | None = None
    description: str | None = None
    created_at: str = ""


@dataclass(frozen=True, slots=True)
class Device(Record):
    """A device of the twin with its intended and its observed state.

    ``twin_state`` and ``detected_state`` use the canonical device state shape
    of :mod:`omnitwin.engine.discovery.model`. ``detected_state`` also carries
    ``last_seen`` and ``source`` of the latest observation. ``drift_score`` is
    the weighted share of compared fields that diverge (0 aligned, 1 fully
    diverged), or None while the device was never observed.
    """

    id: str
    hostname: str
    role: str
    site: str
    rack: str | None = None
    serial: str | None = None
    management_address: str | None = None
    platform: str | None = None
    model: str | None = None
    owner: str | None = None
    twin_state: dict[str, Any] = field(default_factory=dict)
    detected_state: dict[str, Any] = field(default_factory=dict)
    drift_score: float | None = None
    created_at: str = ""
    updated_at: str = ""


@dataclass(frozen=True, slots=True)
class DriftEvent(Record):
    """One field of a device whose observed value differs from the twin's.

    ``field`` is a dotted path such as ``interfaces.Ethernet1.oper_up``.
    ``status`` is ``open``, ``reconciled`` or ``ignored``. ``resolution``
    records how a closed event was closed (``converged``, ``twin_changed``,
    ``trust_detected``, ``trust_twin`` or ``ignored``).
    """

    id: str
    device_id: str
    field: str
    twin_value: Any
    actual_value: Any
    detected_at: str
    status: str = "open"
    resolution: str | None = None
    last_seen_at: str | None = None
    resolved_at: str | None = None
    hostname: str | None = None


@dataclass(frozen=True, slots=True)
class TopologyGraph(Record):
    """Nodes and edges of the topology, as JSON-ready maps.

    Each node has ``id`` and ``kind`` (``device``, ``site``, ``subnet``,
    ``address``) plus attributes such as ``label``. Each edge has ``source``,
    ``target``, ``key`` and ``relation`` (``connected_to``, ``located_in``,
    ``member_of``); links also carry ``kind``, ports, cable and weight.
    ``meta`` contains the scope, depth and pruning counts.
    """

    nodes: list[dict[str, Any]] = field(default_factory=list)
    edges: list[dict[str, Any]] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)

    def to_networkx(self) -> Any:
        """Return the graph as a ``networkx.MultiGraph``.

        Examples
        --------
        >>> TopologyGraph([{"id": "a", "kind": "device"}]).to_networkx().nodes["a"]
        {'kind': 'device'}
        """
        from omnitwin.engine.topology import graph_from_dict

        data = {"nodes": self.nodes, "edges": self.edges, "graph": self.meta}
        return graph_from_dict(data)


@dataclass(frozen=True, slots=True)
class TopologyHop(Record):
    """One link of a path: from ``source`` out of ``port_a`` into ``port_b``."""

    source: str
    target: str
    source_hostname: str
    target_hostname: str
    port_a: str | None
    port_b: str | None
    cable: str | None
    weight: float
    link_id: str


@dataclass(frozen=True, slots=True)
class TopologyPath(Record):
    """The cheapest path between two devices, hop by hop, and its total cost."""

    source: str
    target: str
    nodes: list[str]
    hostnames: list[str]
    hops: list[TopologyHop]
    cost: float


@dataclass(frozen=True, slots=True)
class BlastRadiusResult(Record):
    """The part of the network that loses its path to the rest when the target fails.

    ``devices`` and ``hostnames`` list the affected devices in the same
    order. ``subnets`` are subnet ids, with their CIDRs in ``subnet_cidrs``.
    ``addresses`` are IP addresses and ``links`` are link ids. ``vlans``
    are VLAN ids, with ``vlan_names`` such as ``Data (100) at DM-Akron``.
    ``new_single_points`` lists the devices that the failure leaves as the
    only path for others: ``{"device", "hostname", "cuts_off"}`` where
    ``cuts_off`` are the hostnames that their failure would cut off next.
    """

    target: str
    target_kind: str
    devices: list[str] = field(default_factory=list)
    hostnames: list[str] = field(default_factory=list)
    subnets: list[str] = field(default_factory=list)
    subnet_cidrs: list[str] = field(default_factory=list)
    addresses: list[str] = field(default_factory=list)
    sites: list[str] = field(default_factory=list)
    vlans: list[str] = field(default_factory=list)
    vlan_names: list[str] = field(default_factory=list)
    links: list[str] = field(default_factory=list)
    roots: list[str] | None = None
    new_single_points: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class IngestReport(Record):
    """The outcome of one discovery ingest.

    ``matched`` has one entry per observation applied to a device (its id,
    hostname and what matched: ``hostname``, ``serial`` or
    ``management_address``). ``unmatched`` keeps every observation that
    matched no device, with the reason. ``unresolved_neighbors`` lists LLDP
    or CDP neighbours whose remote device is unknown.
    """

    format: str
    observations: int
    matched: list[dict[str, Any]] = field(default_factory=list)
    unmatched: list[dict[str, Any]] = field(default_factory=list)
    detected_links: int = 0
    unresolved_neighbors: list[dict[str, Any]] = field(default_factory=list)
    drift_opened: int = 0
    drift_closed: int = 0


@dataclass(frozen=True, slots=True)
class Vlan(Record):
    """A VLAN; its ``vid`` is unique within its ``site`` and ``group``."""

    id: str
    vid: int
    name: str
    site: str | None = None
    group: str | None = None
    status: str = "active"
    tenant: str | None = None
    created_at: str = ""
    updated_at: str = ""


@dataclass(frozen=True, slots=True)
class ImportConflict(Record):
    """A conflict found by an import, with its suggested and chosen resolution.

    ``existing`` describes what the row conflicts with: a stored object
    (``"in": "store"``) or an earlier row of the file (``"in": "file"``).
    """

    id: str
    import_id: str
    kind: str
    line: int
    subject: str
    message: str
    suggestion: str
    options: list[str] = field(default_factory=list)
    existing: dict[str, Any] = field(default_factory=dict)
    resolution: str | None = None
    resolved_by: str | None = None
    resolved_at: str | None = None


@dataclass(frozen=True, slots=True)
class ImportPlan(Record):
    """The writes of an import: counts per object kind and the rows it leaves out.

    ``create``, ``update`` and ``skip`` count objects by kind (``subnet``,
    ``address``, ``vlan`` ...), assuming the chosen resolution of each
    conflict, or its suggestion while it is open. ``row_errors`` lists rows
    that failed validation (``line``, ``field``, ``value``, ``message``);
    ``skipped_rows`` lists valid rows that are not imported, with the reason.
    """

    total_rows: int = 0
    create: dict[str, int] = field(default_factory=dict)
    update: dict[str, int] = field(default_factory=dict)
    skip: dict[str, int] = field(default_factory=dict)
    conflicts: dict[str, int] = field(default_factory=dict)
    row_errors: list[dict[str, Any]] = field(default_factory=list)
    skipped_rows: list[dict[str, Any]] = field(default_factory=list)
    preview: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class ImportJob(Record):
    """An import job: ``queued``, ``processing``, then ``committed``,
    ``awaiting_review`` (plan ready, nothing written) or ``failed``."""

    id: str
    source: str
    status: str
    dry_run: bool = False
    filename: str | None = None
    processed: int = 0
    total: int = 0
    plan: ImportPlan | None = None
    open_conflicts: int = 0
    error: str | None = None
    actor: str = ""
    created_at: str = ""
    updated_at: str = ""

    @property
    def done(self) -> bool:
        """Whether the job has finished: committed, failed or cancelled."""
        return self.status in ("committed", "completed", "failed", "cancelled")


@dataclass(frozen=True, slots=True)
class TopologyLink(Record):
    """A link between two device ports.

    ``kind`` is ``intended`` (a cable of the twin) or ``detected`` (an LLDP or
    CDP neighbour, with ``reported_by`` naming the device that saw it).
    Ports are stored in their normalised long form, e.g. ``Ethernet1/1``.
    """

    id: str
    kind: str
    a: str
    port_a: str | None
    b: str
    port_b: str | None
    cable: str | None = None
    weight: float = 1.0
    a_hostname: str | None = None
    b_hostname: str | None = None
    reported_by: str | None = None
    created_at: str = ""


# --- agent sessions -------------------------------------------------------------

STREAM_EVENT_TYPES = (
    "agent_status",
    "data_chunk",
    "agent_tool_call",
    "final_result",
    "error",
)


@dataclass(frozen=True, slots=True)
class Telemetry(Record):
    """The cost of the commands of an agent session.

    Token counts stay 0 unless an LLM planner ran. ``steps`` has one entry per
    planning step or tool call (``turn``, ``step``, ``latency_ms``).
    ``duration_ms`` adds up the wall time of every command of the session.
    """

    model: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    tool_calls: int = 0
    steps: list[dict[str, Any]] = field(default_factory=list)
    duration_ms: float = 0.0


@dataclass(frozen=True, slots=True)
class Session(Record):
    """An agent session: its commands so far, status and telemetry.

    ``status`` is ``running`` while a command streams, then ``completed`` or
    ``failed`` after the last command, and ``expired`` once the session has
    been idle for 24 hours. ``actor`` issued the commands; ``command`` is the
    latest of ``turns`` commands.
    """

    id: str
    status: str
    command: str
    actor: str
    model: str | None = None
    turns: int = 0
    events: int = 0
    telemetry: Telemetry = field(default_factory=Telemetry)
    created_at: str = ""
    updated_at: str = ""
    expires_at: str = ""


@dataclass(frozen=True, slots=True)
class StreamEvent(Record):
    """One event of an agent stream: the envelope ``{type, seq, session, ts, body}``.

    ``type`` is one of ``agent_status``, ``data_chunk``, ``agent_tool_call``,
    ``final_result`` or ``error``; ``seq`` increases strictly within a
    session.
    """

    type: str
    seq: int
    session: str
    ts: str
    body: Any = None

    @property
    def terminal(self) -> bool:
        """Whether this event ends its command: ``final_result`` or ``error``."""
        return self.type in ("final_result", "error")
