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
    "FreeBlocks",
    "Page",
    "Subnet",
    "SubnetDetail",
]

T = TypeVar("T", bound="Record")

SUBNET_STATUSES = ("allocated", "reserved", "available", "deprecated")


def _to_json(value: Any) -> Any:
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


class Record:
    """Base of the typed records: JSON conversion helpers."""

    __slots__ = ()
    _hints: ClassVar[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        """Return the record as plain JSON-compatible data."""
        return {
            f.name: _to_json(getattr(self, f.name))
            for f in dataclasses.fields(self)  # type: ignore[arg-type]
        }

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

    @classmethod
    def from_dict(cls, data: dict[str, Any], item_type: type[T]) -> Page[T]:
        """Build a page from the API shape, converting each item."""
        meta = data["meta"]
        items = [item_type.from_dict(item) for item in data["data"]]
        return cls(items, meta["total"], meta["page"], meta["per_page"])
