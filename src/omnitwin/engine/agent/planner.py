"""The deterministic planner: commands in plain English to tool calls, offline.

A command is first normalised: lower case, ``->`` read as ``to``, and
misspelt keywords corrected with :mod:`difflib`. Keyword patterns then give
its intent. The arguments come from what it names: CIDRs, prefix lengths,
device hostnames, sites, regions and container purposes. ``leaf-03``
resolves to ``leaf-03.nyc1`` when no other device is called ``leaf-03``.

Reads resolve names generously: a misspelt hostname that is close to exactly
one device is used. Writes (``ipam_allocate``, ``subnet_update``,
``reconcile``) never rely on a guess: a write needs one explicit verb, one
parent and exact or unique names, and anything else raises
:class:`CommandNotUnderstood` with suggestions instead of writing.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from omnitwin.engine.agent.catalog import Catalog, device_or_raise
from omnitwin.engine.agent.parents import choose_parent
from omnitwin.engine.agent.refusals import (
    EXAMPLES,
    CommandNotUnderstood,
    closest_examples,
)
from omnitwin.engine.agent.tools import TOOLS, ToolRegistry
from omnitwin.engine.agent.words import (
    Entities,
    Normalized,
    find_entities,
    normalize,
    strategy_of,
)
from omnitwin.errors import ValidationError

__all__ = [
    "CommandNotUnderstood",
    "Plan",
    "ToolCall",
    "plan_command",
    "plan_structured",
]

WRITE_TOOLS = frozenset({"ipam_allocate", "subnet_update", "reconcile"})

_INTENT_PATTERNS: tuple[tuple[str, str], ...] = (
    (
        "reconcile",
        r"\b(?:reconcile|reconciliation|remediate|(?:fix|resolve|repair|clear)"
        r"(?: the| its| all)? drift)\b",
    ),
    (
        "blast_radius",
        r"\bblast radius\b|\bwhat (?:breaks|fails|goes down|is affected|gets "
        r"affected|would break|happens|is impacted|is cut off)\b|\bimpact of\b|"
        r"\bif\b.*\b(?:fails?|failed|goes down|went down|dies|died|breaks|is down|"
        r"is lost|crashes|reboots|is unplugged)\b|\b(?:losing|lose|loses)\b|"
        r"\bfailure (?:of|impact)\b|\baffected by\b|\bsingle point of failure\b",
    ),
    (
        "topology_path",
        r"\b(?:shortest )?paths?\b|\broute (?:from|between)\b|\breach(?:es)?\b|"
        r"\btrace\b|\bhops? (?:from|between)\b|\bget from\b",
    ),
    (
        "audit_show",
        r"\bwho\b.*\b(?:changed|modified|touched|edited|created|allocated|updated|"
        r"made)\b|\baudit\b|\bhistory\b|\bchangelog\b|\bwhat changed\b|"
        r"\bchanges (?:to|on|of|for|by|made)\b|\bwhat did\b",
    ),
    (
        "ipam_allocate",
        r"\b(?:allocate|allocation|reserve|carve(?: out)?|provision|claim|grab|"
        r"give me|get me)\b",
    ),
    (
        "subnet_update",
        r"\b(?:set|change|update|mark|deprecate|rename|retag|tag|untag|relabel)\b",
    ),
    (
        "ipam_search",
        r"\b(?:available|free|unused|unallocated|spare|unassigned)\b|\bfree space\b",
    ),
    (
        "utilization_report",
        r"\butili[sz](?:ation|ed)\b|\busage\b|\bhow full\b|\bcapacity\b|"
        r"\bhow much\b.*\bused\b|\bconsumption\b",
    ),
    (
        "drift_show",
        r"\bdrift(?:ed|s|ing)?\b|\bout of sync\b|\bdiverg|\bmismatch|\bdeviat",
    ),
    (
        "topology_subgraph",
        r"\btopology\b|\bneighbou?r(?:s|hood)?\b|\baround\b|\bsubgraph\b|"
        r"\bconnected to\b|\bhops?\b|\bnearby\b|\bgraph\b",
    ),
    ("import_status", r"\bimports?\b|\bimp_\w+"),
)
_NEGATION = re.compile(r"\b(?:don't|dont|do not|never|not|without)\b")
_QUESTION = re.compile(r"^(?:can|could|should|may) (?:i|we|you)\b|\bis it possible\b")
_SEVERAL = re.compile(r"\b(?:and|then|or|also)\b")


@dataclass(frozen=True, slots=True)
class ToolCall:
    """One call of a tool with validated arguments."""

    tool: str
    args: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """Return the call as ``{"tool": ..., "args": ...}``."""
        return {"tool": self.tool, "args": self.args}


@dataclass(frozen=True, slots=True)
class Plan:
    """The tool calls of a command, and notes on how names were read."""

    calls: list[ToolCall]
    notes: list[str] = field(default_factory=list)

    @property
    def writes(self) -> bool:
        """Whether any call changes the store."""
        return any(call.tool in WRITE_TOOLS for call in self.calls)


def _reject(
    message: str, reason: str, text: str, suggestions: list[str] | None = None
) -> CommandNotUnderstood:
    return CommandNotUnderstood(
        message, reason=reason, suggestions=suggestions or closest_examples(text)
    )


# --- structured commands ----------------------------------------------------------

_REGISTRY = ToolRegistry(TOOLS)


def plan_structured(command: dict[str, Any]) -> Plan:
    """Return the plan of ``{"tool": name, "args": {...}}`` after schema checks."""
    unknown = set(command) - {"tool", "args"}
    if "tool" not in command or unknown:
        message = (
            'a structured command is {"tool": name, "args": {...}}; '
            f"got keys {sorted(command)}"
        )
        raise ValidationError(message, details={"keys": sorted(command)})
    name = str(command["tool"])
    args = _REGISTRY.validate(name, command.get("args", {}))
    return Plan([ToolCall(name, args)], [f"structured call of {name}"])


# --- intents ----------------------------------------------------------------------


def _intents(text: str) -> list[str]:
    return [name for name, pattern in _INTENT_PATTERNS if re.search(pattern, text)]


def _choose_intent(norm: Normalized, found: Entities) -> str:
    text = norm.text
    intents = _intents(text)
    others = [i for i in intents if i != "subnet_update"]
    if "subnet_update" in intents and not found.changes and others:
        # "change" without a value to set is not an update request, so
        # "what did team:data change" reads the audit trail.
        intents = others
    writes = [i for i in intents if i in WRITE_TOOLS]
    if len(writes) > 1:
        raise _reject(
            f"the command asks for several changes ({', '.join(writes)}); send one "
            "change per command",
            "ambiguous",
            text,
            [EXAMPLES[w] for w in writes],
        )
    if writes:
        return _check_write(norm, intents, writes[0])
    for name in intents:
        if name == "topology_subgraph" and len(found.devices) >= 2:
            continue
        return name
    if found.cidrs or found.subnet_ids:
        return "subnet_get"
    if found.device_texts:
        return "device_get"
    raise _reject(
        f"command not understood: {norm.original!r}; try one of the suggestions",
        "unknown_command",
        norm.original,
    )


def _check_write(norm: Normalized, intents: list[str], write: str) -> str:
    text = norm.text
    if _QUESTION.search(text) and write == "ipam_allocate":
        return "ipam_search"
    if _NEGATION.search(text):
        raise _reject(
            f"the command {norm.original!r} contains a negation; it changes "
            "nothing. Rephrase it as the change to make",
            "ambiguous",
            norm.original,
        )
    reads = [i for i in intents if i in ("ipam_search", "utilization_report")]
    listing = re.search(r"\b(?:show|list|find)\b", text)
    if reads and write == "ipam_allocate" and _SEVERAL.search(text) and listing:
        raise _reject(
            "the command asks for a search and an allocation; send them as "
            "two commands",
            "ambiguous",
            norm.original,
            [EXAMPLES["ipam_search"], EXAMPLES["ipam_allocate"]],
        )
    return write


# --- arguments per intent ---------------------------------------------------------


def _limit(found: Entities, default: int | None = None) -> dict[str, Any]:
    value = found.limit if found.limit is not None else default
    return {} if value is None else {"limit": value}


def _one_prefix(norm: Normalized, found: Entities, write: bool) -> int:
    if not found.prefixes:
        raise _reject(
            f"the command names no prefix length; say which size, e.g. "
            f"/24 or /64: {norm.original!r}",
            "missing_argument",
            norm.original,
        )
    distinct = sorted(set(found.prefixes))
    if len(distinct) > 1 and write:
        raise _reject(
            f"the command names several prefix lengths ({distinct}); allocate "
            "one size per command",
            "ambiguous",
            norm.original,
        )
    return found.prefixes[0]


def _parent_args(
    norm: Normalized, found: Entities, catalog: Catalog, prefix: int, write: bool
) -> tuple[dict[str, Any], list[str]]:
    if found.subnet_ids:
        return {"subnet_id": found.subnet_ids[0]}, []
    parents = [c for c in found.cidrs if _prefix_of(c) < prefix]
    if len(set(parents)) > 1 and write:
        raise _reject(
            f"the command names several parents ({', '.join(parents)}); "
            "allocate in one parent per command",
            "ambiguous",
            norm.original,
        )
    if parents:
        return {"cidr": parents[0]}, []
    container = choose_parent(norm, found, catalog, prefix, write=write)
    note = f"parent {container.cidr} ({container.purpose}) chosen by its tags"
    return {"subnet_id": container.id}, [note]


def _prefix_of(cidr: str) -> int:
    return int(cidr.rsplit("/", 1)[1]) if "/" in cidr else 128


def _plan_search(norm: Normalized, found: Entities, catalog: Catalog) -> Plan:
    prefix = _one_prefix(norm, found, write=False)
    parent, notes = _parent_args(norm, found, catalog, prefix, write=False)
    args = {"prefix_length": prefix, **parent, **_limit(found, 20)}
    return Plan([ToolCall("ipam_search", args)], notes)


def _plan_allocate(norm: Normalized, found: Entities, catalog: Catalog) -> Plan:
    prefix = _one_prefix(norm, found, write=True)
    parent, notes = _parent_args(norm, found, catalog, prefix, write=True)
    args: dict[str, Any] = {"prefix_length": prefix, **parent}
    if found.purpose:
        args["purpose"] = found.purpose
    if found.owner:
        args["owner"] = found.owner
    if re.search(r"\breserve\b", norm.text):
        args["status"] = "reserved"
    return Plan([ToolCall("ipam_allocate", args)], notes)


def _one_subnet(norm: Normalized, found: Entities) -> str:
    subjects = list(dict.fromkeys([*found.subnet_ids, *found.cidrs]))
    if len(subjects) != 1:
        what = "no subnet" if not subjects else f"{len(subjects)} subnets"
        raise _reject(
            f"the command names {what}; name exactly one subnet by CIDR or id",
            "missing_argument" if not subjects else "ambiguous",
            norm.original,
        )
    return subjects[0]


def _plan_update(norm: Normalized, found: Entities, catalog: Catalog) -> Plan:
    subnet = _one_subnet(norm, found)
    if not found.changes:
        raise _reject(
            f"the command names no change for {subnet}; say what to set: status, "
            "owner, purpose, VLAN or tags",
            "missing_argument",
            norm.original,
            [
                f"Set the owner of {subnet} to team:payments",
                f"Mark {subnet} as deprecated",
                f"Tag {subnet} with env=prod",
            ],
        )
    args = {"subnet": subnet, "changes": dict(found.changes)}
    return Plan([ToolCall("subnet_update", args)])


def _plan_subnet_get(norm: Normalized, found: Entities, catalog: Catalog) -> Plan:
    return Plan([ToolCall("subnet_get", {"subnet": _one_subnet(norm, found)})])


def _plan_utilization(norm: Normalized, found: Entities, catalog: Catalog) -> Plan:
    subjects = [*found.subnet_ids, *found.cidrs]
    args: dict[str, Any] = {}
    if subjects:
        args["subnet"] = subjects[0]
    elif found.regions:
        args["region"] = found.regions[0]
    elif found.sites:
        args["site"] = found.sites[0]
    return Plan([ToolCall("utilization_report", args | _limit(found))])


def _device(
    norm: Normalized, found: Entities, catalog: Catalog, *, write: bool = False
) -> tuple[str, list[str]]:
    if not found.devices and not found.device_texts:
        raise _reject(
            f"the command names no device: {norm.original!r}",
            "missing_argument",
            norm.original,
        )
    text = found.device_texts[0] if found.device_texts else found.devices[0]
    match = device_or_raise(catalog, text, fuzzy=True, write=write)
    notes = [] if match.method == "exact" else [f"{text} read as {match.hostname}"]
    return match.hostname, notes


def _plan_device_get(norm: Normalized, found: Entities, catalog: Catalog) -> Plan:
    device, notes = _device(norm, found, catalog)
    return Plan([ToolCall("device_get", {"device": device})], notes)


def _plan_drift(norm: Normalized, found: Entities, catalog: Catalog) -> Plan:
    if found.device_texts:
        device, notes = _device(norm, found, catalog)
        return Plan([ToolCall("drift_show", {"device": device})], notes)
    args: dict[str, Any] = {}
    if found.sites:
        args["site"] = found.sites[0]
    return Plan([ToolCall("drift_show", args)])


def _plan_reconcile(norm: Normalized, found: Entities, catalog: Catalog) -> Plan:
    if len(found.device_texts) > 1:
        raise _reject(
            "the command names several devices; reconcile one device per command",
            "ambiguous",
            norm.original,
        )
    device, notes = _device(norm, found, catalog, write=True)
    strategies = strategy_of(norm.text)
    if len(strategies) != 1:
        what = "does not say" if not strategies else "names more than one way"
        raise _reject(
            f"the command {what} how to reconcile {device}; choose one strategy",
            "ambiguous" if strategies else "missing_argument",
            norm.original,
            [
                f"Reconcile {device} trusting the detected state",
                f"Reconcile {device} trusting the twin",
                f"Reconcile {device} interactively",
            ],
        )
    args: dict[str, Any] = {"device": device, "strategy": strategies[0]}
    if found.fields:
        args["fields"] = found.fields
    return Plan([ToolCall("reconcile", args)], notes)


def _plan_path(norm: Normalized, found: Entities, catalog: Catalog) -> Plan:
    ends = found.path_ends or found.device_texts
    if len(ends) < 2:
        raise _reject(
            "a path needs two devices: 'path from A to B'",
            "missing_argument",
            norm.original,
        )
    source = device_or_raise(catalog, ends[0], fuzzy=True)
    target = device_or_raise(catalog, ends[1], fuzzy=True)
    notes = [
        f"{m.text} read as {m.hostname}"
        for m in (source, target)
        if m.method != "exact"
    ]
    args = {"source": source.hostname, "target": target.hostname}
    return Plan([ToolCall("topology_path", args)], notes)


def _plan_subgraph(norm: Normalized, found: Entities, catalog: Catalog) -> Plan:
    notes: list[str] = []
    if found.device_texts:
        scope, notes = _device(norm, found, catalog)
    elif found.cidrs or found.addresses:
        scope = (found.cidrs or found.addresses)[0]
    elif found.sites:
        scope = found.sites[0]
    else:
        raise _reject(
            "name the centre of the topology view: a device, site or subnet",
            "missing_argument",
            norm.original,
        )
    args: dict[str, Any] = {"scope": scope}
    if found.depth is not None:
        args["depth"] = found.depth
    return Plan([ToolCall("topology_subgraph", args)], notes)


def _plan_blast(norm: Normalized, found: Entities, catalog: Catalog) -> Plan:
    if found.link_ids:
        return Plan([ToolCall("blast_radius", {"target": found.link_ids[0]})])
    device, notes = _device(norm, found, catalog)
    return Plan([ToolCall("blast_radius", {"target": device})], notes)


def _plan_audit(norm: Normalized, found: Entities, catalog: Catalog) -> Plan:
    args: dict[str, Any] = {}
    notes: list[str] = []
    subjects = [*found.subnet_ids, *found.cidrs]
    if subjects:
        args["subject"] = subjects[0]
    elif found.device_texts:
        args["subject"], notes = _device(norm, found, catalog)
    if found.actors:
        args["actor"] = found.actors[0]
    return Plan([ToolCall("audit_show", args | _limit(found))], notes)


def _plan_import(norm: Normalized, found: Entities, catalog: Catalog) -> Plan:
    args: dict[str, Any] = {}
    if found.import_ids:
        args["import_id"] = found.import_ids[0]
    return Plan([ToolCall("import_status", args | _limit(found))])


_PLANNERS = {
    "ipam_search": _plan_search,
    "ipam_allocate": _plan_allocate,
    "subnet_get": _plan_subnet_get,
    "subnet_update": _plan_update,
    "utilization_report": _plan_utilization,
    "device_get": _plan_device_get,
    "drift_show": _plan_drift,
    "reconcile": _plan_reconcile,
    "topology_path": _plan_path,
    "topology_subgraph": _plan_subgraph,
    "blast_radius": _plan_blast,
    "audit_show": _plan_audit,
    "import_status": _plan_import,
}


def plan_command(command: str | dict[str, Any], catalog: Catalog) -> Plan:
    """Map a command to tool calls.

    Parameters
    ----------
    command : str or dict
        Plain English, ``{"tool": ..., "args": ...}``, or that object as JSON
        text.
    catalog : Catalog
        The names of the workspace (hostnames, sites, regions, containers).

    Raises
    ------
    CommandNotUnderstood
        No intent matched, a write was ambiguous, or an argument is missing.
    ValidationError
        A structured command breaks its tool's schema.
    NodeNotFound
        A device named in a read matches nothing.

    Examples
    --------
    >>> from omnitwin.engine.agent.catalog import StaticCatalog
    >>> catalog = StaticCatalog(["leaf-03.nyc1", "spine-01.nyc1"], ["nyc1"], [], [])
    >>> plan_command("what breaks if leaf-03 fails?", catalog).calls[0].to_dict()
    {'tool': 'blast_radius', 'args': {'target': 'leaf-03.nyc1'}}
    """
    if isinstance(command, dict):
        return plan_structured(command)
    text = str(command).strip()
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            message = f"the command looks like JSON but does not parse: {exc}"
            raise ValidationError(message) from exc
        if isinstance(data, dict):
            return plan_structured(data)
    if not text:
        raise _reject("the command is empty", "unknown_command", "", None)
    norm = normalize(text, catalog)
    found = find_entities(norm, catalog)
    intent = _choose_intent(norm, found)
    plan = _PLANNERS[intent](norm, found, catalog)
    for call in plan.calls:
        _REGISTRY.validate(call.tool, call.args)
    notes = [*norm.notes, *plan.notes]
    return Plan(plan.calls, notes)
