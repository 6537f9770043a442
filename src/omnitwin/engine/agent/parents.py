"""Choosing the parent container of a search or an allocation from its location.

"Allocate a /24 for payments in us-east" names no CIDR. The parent is the
container that the location words point at:

1. containers of the right family that are not deprecated and whose prefix
   is shorter than the requested one;
2. whose ``region`` or ``site`` tag is each region and site that the command
   names;
3. whose purpose or tags contain the other location words, such as
   ``service pool``, when any container does;
4. the innermost of those: a container that contains another candidate is
   dropped.

Exactly one container must remain. Otherwise the command is refused and the
suggestions name each remaining candidate by CIDR.
"""

from __future__ import annotations

import ipaddress

from omnitwin.engine.agent.catalog import Catalog, Container
from omnitwin.engine.agent.refusals import CommandNotUnderstood, closest_examples
from omnitwin.engine.agent.words import Entities, Normalized

__all__ = ["choose_parent"]


def _holds(outer: Container, inner: Container) -> bool:
    if outer.version != inner.version or outer.prefix_length >= inner.prefix_length:
        return False
    inner_net, outer_net = (
        ipaddress.ip_network(inner.cidr),
        ipaddress.ip_network(outer.cidr),
    )
    return inner_net.subnet_of(outer_net)  # type: ignore[arg-type]


def _tagged(container: Container, place: str) -> bool:
    values = {container.tags.get(k, "").lower() for k in ("region", "site")}
    return place.lower() in values


def _describes(container: Container, word: str) -> bool:
    text = " ".join([container.purpose, *container.tags.values()]).lower()
    return word in text.split() or word in text


def _candidates(found: Entities, catalog: Catalog, prefix: int) -> list[Container]:
    family = found.family or (6 if prefix > 32 else None)
    places = [*found.regions, *found.sites]
    pool = [
        c
        for c in catalog.containers
        if c.status != "deprecated"
        and c.prefix_length < prefix
        and (family is None or c.version == family)
        and all(_tagged(c, place) for place in places)
    ]
    lowered = {p.lower() for p in places}
    words = [w for w in found.location_terms if w not in lowered]
    described = [c for c in pool if words and all(_describes(c, w) for w in words)]
    pool = described or pool
    return [c for c in pool if not any(_holds(c, other) for other in pool)]


def choose_parent(
    norm: Normalized, found: Entities, catalog: Catalog, prefix: int, *, write: bool
) -> Container:
    """Return the one container that a command's location words point at.

    Raises
    ------
    CommandNotUnderstood
        The command names no location, or the location matches no container
        or several of them.
    """
    if not (found.regions or found.sites or found.location_terms):
        raise CommandNotUnderstood(
            f"the command names no parent for the /{prefix}: give a CIDR, a subnet "
            "id, a region or a site",
            reason="missing_argument",
            suggestions=_suggestions(
                _candidates(Entities(), catalog, prefix)[:3], prefix, found, write
            )
            or closest_examples(norm.original),
        )
    candidates = _candidates(found, catalog, prefix)
    where = " ".join(found.location_terms) or ", ".join([*found.regions, *found.sites])
    if not candidates:
        message = (
            f"no container in {where!r} can hold a /{prefix}; name the parent "
            "CIDR or subnet id"
        )
        raise CommandNotUnderstood(
            message, reason="missing_argument", suggestions=closest_examples(norm.text)
        )
    if len(candidates) > 1:
        listed = ", ".join(f"{c.cidr} ({c.purpose})" for c in candidates[:6])
        message = (
            f"{where!r} matches {len(candidates)} containers that can hold a "
            f"/{prefix}: {listed}; name one by CIDR"
        )
        raise CommandNotUnderstood(
            message,
            reason="ambiguous",
            suggestions=_suggestions(candidates[:6], prefix, found, write),
        )
    return candidates[0]


def _suggestions(
    containers: list[Container], prefix: int, found: Entities, write: bool
) -> list[str]:
    if write:
        purpose = f" for {found.purpose}" if found.purpose else ""
        return [f"Allocate a /{prefix}{purpose} in {c.cidr}" for c in containers]
    return [f"Find available /{prefix} blocks in {c.cidr}" for c in containers]
