"""Names of a workspace that the deterministic planner resolves in commands.

A :class:`Catalog` lists device hostnames, sites, regions and container
subnets. :class:`EngineCatalog` reads them from an engine lazily, once per
command, so a command that names no device never lists devices.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Protocol

from omnitwin.engine.context import Context
from omnitwin.errors import NodeNotFound, ValidationError

if TYPE_CHECKING:
    from omnitwin.engine.engine import Engine

__all__ = [
    "Catalog",
    "Container",
    "DeviceMatch",
    "EngineCatalog",
    "StaticCatalog",
    "resolve_device",
]

FUZZY_CUTOFF = 0.8
FUZZY_MARGIN = 0.05


@dataclass(frozen=True, slots=True)
class Container:
    """A container subnet that an allocation may use as its parent."""

    id: str
    cidr: str
    version: int
    prefix_length: int
    purpose: str
    status: str
    tags: dict[str, str]


@dataclass(frozen=True, slots=True)
class DeviceMatch:
    """A device name resolved from a command; ``method`` is exact, label or fuzzy."""

    text: str
    hostname: str
    method: str


class Catalog(Protocol):
    """Names of one workspace that commands may mention."""

    @property
    def hostnames(self) -> list[str]: ...

    @property
    def sites(self) -> list[str]: ...

    @property
    def regions(self) -> list[str]: ...

    @property
    def containers(self) -> list[Container]: ...


@dataclass
class StaticCatalog:
    """A catalog from plain lists, for tests and offline use."""

    hostnames: list[str]
    sites: list[str]
    regions: list[str]
    containers: list[Container]


class EngineCatalog:
    """The catalog of one workspace of an engine, read on first use."""

    def __init__(self, engine: Engine, ctx: Context) -> None:
        self._engine = engine
        self._ctx = ctx

    @cached_property
    def hostnames(self) -> list[str]:
        """Every device hostname of the workspace, sorted."""
        rows = self._engine.store.fetchall(
            "SELECT hostname FROM devices WHERE workspace = ? ORDER BY hostname_key",
            [self._ctx.workspace],
        )
        return [str(row[0]) for row in rows]

    @cached_property
    def sites(self) -> list[str]:
        """Site names: declared sites, sites of devices and ``site`` tags."""
        names = {site.name for site in self._engine.devices.list_sites(self._ctx)}
        rows = self._engine.store.fetchall(
            "SELECT DISTINCT site FROM devices WHERE workspace = ?",
            [self._ctx.workspace],
        )
        names |= {str(row[0]) for row in rows if row[0]}
        names |= {c.tags["site"] for c in self.containers if c.tags.get("site")}
        return sorted(names)

    @cached_property
    def regions(self) -> list[str]:
        """Region names: regions of sites and ``region`` tags of containers."""
        names = {
            site.region
            for site in self._engine.devices.list_sites(self._ctx)
            if site.region
        }
        names |= {c.tags["region"] for c in self.containers if c.tags.get("region")}
        return sorted(names)

    @cached_property
    def containers(self) -> list[Container]:
        """Container subnets in address order."""
        rows = self._engine.store.fetchall(
            "SELECT id, cidr, version, prefix_length, purpose, status, tags "
            "FROM subnets WHERE workspace = ? AND is_container "
            "ORDER BY version, first, prefix_length",
            [self._ctx.workspace],
        )
        return [
            Container(
                str(row[0]),
                str(row[1]),
                int(row[2]),
                int(row[3]),
                str(row[4] or ""),
                str(row[5]),
                dict(json.loads(row[6])),
            )
            for row in rows
        ]


def _label(hostname: str) -> str:
    return hostname.lower().split(".", 1)[0]


def resolve_device(
    catalog: Catalog, name: str, *, fuzzy: bool
) -> DeviceMatch | list[str] | None:
    """Resolve a device name: exact hostname, then a unique host label, then fuzzy.

    Returns the match, the list of candidates when the name matches several
    devices, or None when nothing matches. ``leaf-03`` matches
    ``leaf-03.nyc1`` when no other device has the label ``leaf-03``. With
    ``fuzzy``, a misspelt name such as ``spine01.nyc1`` matches the one
    hostname that :mod:`difflib` finds close enough (ratio 0.8 or more).
    """
    key = name.strip().lower()
    if key.startswith("dv_"):
        return DeviceMatch(name, name, "exact")
    by_key = {h.lower(): h for h in catalog.hostnames}
    if key in by_key:
        return DeviceMatch(name, by_key[key], "exact")
    labelled = [h for h in catalog.hostnames if _label(h) == key]
    if len(labelled) == 1:
        return DeviceMatch(name, labelled[0], "label")
    if labelled:
        return labelled
    if not fuzzy:
        return None
    return _closest_hostname(catalog.hostnames, key)


def _closest_hostname(hostnames: list[str], key: str) -> DeviceMatch | list[str] | None:
    """Return the hostname or host label clearly closest to ``key``.

    A candidate wins when its :class:`difflib.SequenceMatcher` ratio is at
    least :data:`FUZZY_CUTOFF` and beats the runner-up by
    :data:`FUZZY_MARGIN`; close candidates without a clear winner are
    returned as a list.
    """
    scored: dict[str, float] = {}
    matcher = difflib.SequenceMatcher()
    matcher.set_seq2(key)
    for hostname in hostnames:
        best = 0.0
        for form in (hostname.lower(), _label(hostname)):
            matcher.set_seq1(form)
            if matcher.real_quick_ratio() >= FUZZY_CUTOFF:
                best = max(best, matcher.ratio())
        if best >= FUZZY_CUTOFF:
            scored[hostname] = best
    ranked = sorted(scored.items(), key=lambda item: item[1], reverse=True)
    if not ranked:
        return None
    if len(ranked) == 1 or ranked[0][1] - ranked[1][1] >= FUZZY_MARGIN:
        return DeviceMatch(key, ranked[0][0], "fuzzy")
    return [hostname for hostname, _ in ranked[:8]]


def device_or_raise(
    catalog: Catalog, name: str, *, fuzzy: bool, write: bool = False
) -> DeviceMatch:
    """Resolve a device name or raise an error that lists the candidates.

    Raises
    ------
    ValidationError
        The name matches several devices, or (for a write) only a fuzzy one.
    NodeNotFound
        Nothing matches.
    """
    found = resolve_device(catalog, name, fuzzy=fuzzy or write)
    if isinstance(found, DeviceMatch):
        if write and found.method == "fuzzy":
            message = (
                f"device {name!r} not found; did you mean {found.hostname}? "
                "Repeat the command with the exact hostname to change it"
            )
            raise ValidationError(
                message, details={"reason": "ambiguous", "candidates": [found.hostname]}
            )
        return found
    if found:
        listed = ", ".join(found[:8])
        message = f"device {name!r} is ambiguous: it matches {listed}; name one of them"
        raise ValidationError(
            message, details={"reason": "ambiguous", "candidates": found[:8]}
        )
    message = f"device {name!r} not found; list devices to find its hostname"
    raise NodeNotFound(message, details={"node": name})
