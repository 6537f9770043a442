"""The agent's tools: engine operations with a name, a JSON Schema and a description.

Both planners (the deterministic one and the optional LLM one) produce calls
to these tools, and the runtime validates every call against the tool's
``parameters`` schema (JSON Schema draft 2020-12) before it runs. A tool
runs one engine service call with the caller's :class:`Context` and returns
a record, a page or plain JSON data.
"""

from __future__ import annotations

import difflib
import json
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import jsonschema

from omnitwin.engine import cidr
from omnitwin.engine.context import Context
from omnitwin.engine.reconcile import STRATEGIES
from omnitwin.errors import NotFound, ValidationError
from omnitwin.models import Page, Record

if TYPE_CHECKING:
    from omnitwin.engine.engine import Engine

__all__ = ["TOOLS", "Tool", "ToolRegistry", "find_subnet_id", "to_json"]

MAX_LIMIT = 1000

ToolFunction = Callable[["Engine", Context, dict[str, Any]], Any]


def to_json(value: Any) -> Any:
    """Return a tool result as JSON-ready data (records and pages as dicts)."""
    if isinstance(value, Record | Page):
        return value.to_dict()
    if isinstance(value, dict):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_json(v) for v in value]
    return value


@dataclass(frozen=True, slots=True)
class Tool:
    """One tool: its name, what it does, its argument schema and its function.

    ``write`` marks tools that change the store; the deterministic planner
    calls them only when the command parses without ambiguity.
    """

    name: str
    description: str
    parameters: dict[str, Any]
    function: ToolFunction
    write: bool = False

    def spec(self) -> dict[str, Any]:
        """Return the tool in the OpenAI chat-completions ``tools`` format."""
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": self.parameters,
            },
        }


class ToolRegistry:
    """The tools by name, with argument validation.

    Examples
    --------
    >>> registry = ToolRegistry(TOOLS)
    >>> registry.validate("device_get", {"device": "spine-01.nyc1"})
    {'device': 'spine-01.nyc1'}
    """

    def __init__(self, tools: Iterable[Tool]) -> None:
        self._tools = {tool.name: tool for tool in tools}

    @property
    def names(self) -> list[str]:
        """The tool names in registration order."""
        return list(self._tools)

    def __iter__(self) -> Any:
        return iter(self._tools.values())

    def get(self, name: str) -> Tool:
        """Return a tool, or raise ValidationError naming the closest tools."""
        tool = self._tools.get(name)
        if tool is None:
            close = difflib.get_close_matches(str(name), self._tools, n=3, cutoff=0.5)
            if close:
                message = f"unknown tool {name!r}; did you mean {', '.join(close)}?"
            else:
                message = f"unknown tool {name!r}; use one of {', '.join(self._tools)}"
            raise ValidationError(message, details={"tool": name, "close": close})
        return tool

    def validate(self, name: str, args: Any) -> dict[str, Any]:
        """Return ``args`` after checking them against the tool's schema.

        Raises
        ------
        ValidationError
            Unknown tool, or arguments that break the schema; the message
            names the argument and the rule it breaks.
        """
        tool = self.get(name)
        if not isinstance(args, dict):
            message = f"arguments of {name} must be a JSON object, not {args!r}"
            raise ValidationError(message, details={"tool": name})
        validator = jsonschema.Draft202012Validator(tool.parameters)
        errors = sorted(validator.iter_errors(args), key=lambda e: list(e.path))
        if errors:
            first = errors[0]
            where = ".".join(str(p) for p in first.absolute_path) or "arguments"
            message = f"invalid {where} for {name}: {first.message}"
            raise ValidationError(message, details={"tool": name, "field": where})
        return dict(args)

    def specs(self) -> list[dict[str, Any]]:
        """Return every tool in the OpenAI ``tools`` format."""
        return [tool.spec() for tool in self._tools.values()]


# --- argument helpers -------------------------------------------------------------


def _string(description: str, **extra: Any) -> dict[str, Any]:
    return {"type": "string", "minLength": 1, "description": description, **extra}


def _integer(description: str, low: int, high: int) -> dict[str, Any]:
    return {
        "type": "integer",
        "minimum": low,
        "maximum": high,
        "description": description,
    }


def _object(
    properties: dict[str, Any], required: Iterable[str] = (), **extra: Any
) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": list(required),
        "additionalProperties": False,
        **extra,
    }


_PREFIX = _integer("prefix length of the blocks, e.g. 24 or 64", 0, 128)
_PARENT_CIDR = _string("parent CIDR, e.g. 10.128.0.0/16 or 2001:db8::/32")
_PARENT_ID = _string("parent subnet id, e.g. sn_01J9...")
_ONE_PARENT = {"oneOf": [{"required": ["cidr"]}, {"required": ["subnet_id"]}]}
_LIMIT = _integer("maximum number of items returned", 1, MAX_LIMIT)
_TAGS = {"type": "object", "additionalProperties": {"type": "string"}}


def find_subnet_id(engine: Engine, ctx: Context, subnet: str) -> str:
    """Return the id of a subnet given by id or CIDR.

    Raises
    ------
    InvalidCIDR
        A CIDR with host bits set or a malformed one.
    NotFound
        No subnet of the workspace has that id or CIDR.
    """
    if subnet.startswith("sn_"):
        return engine.subnets.get(ctx, subnet).subnet.id
    network = str(cidr.parse_network(subnet))
    page = engine.subnets.list(ctx, within=network, per_page=5)
    for candidate in page.data:
        if candidate.cidr == network:
            return candidate.id
    message = f"subnet {subnet} not found; search free space or list subnets first"
    raise NotFound(message, details={"cidr": subnet})


def _parent(engine: Engine, ctx: Context, args: dict[str, Any]) -> dict[str, Any]:
    if "subnet_id" in args:
        return {"subnet_id": args["subnet_id"]}
    return {"cidr_text": args["cidr"]}


# --- tool functions ---------------------------------------------------------------


def _ipam_search(engine: Engine, ctx: Context, args: dict[str, Any]) -> Any:
    return engine.subnets.available(
        ctx,
        args["prefix_length"],
        limit=args.get("limit", 20),
        **_parent(engine, ctx, args),
    )


def _ipam_allocate(engine: Engine, ctx: Context, args: dict[str, Any]) -> Any:
    fields = {
        name: args[name]
        for name in ("purpose", "owner", "tags", "status", "policy")
        if name in args
    }
    return engine.subnets.allocate(
        ctx, args["prefix_length"], **_parent(engine, ctx, args), **fields
    )


def _subnet_get(engine: Engine, ctx: Context, args: dict[str, Any]) -> Any:
    return engine.subnets.get(ctx, find_subnet_id(engine, ctx, args["subnet"]))


def _subnet_update(engine: Engine, ctx: Context, args: dict[str, Any]) -> Any:
    subnet_id = find_subnet_id(engine, ctx, args["subnet"])
    return engine.subnets.update(ctx, subnet_id, args["changes"])


def _usage_row(engine: Engine, ctx: Context, subnet_id: str) -> dict[str, Any]:
    detail = engine.subnets.get(ctx, subnet_id)
    return {
        "id": detail.subnet.id,
        "cidr": detail.subnet.cidr,
        "purpose": detail.subnet.purpose,
        "status": detail.subnet.status,
        "region": detail.subnet.tags.get("region"),
        "site": detail.subnet.tags.get("site"),
        "total_ips": detail.total_ips,
        "used_ips": detail.used_ips,
        "utilization": round(detail.utilization, 6),
        "children": len(detail.children),
    }


def _utilization_report(engine: Engine, ctx: Context, args: dict[str, Any]) -> Any:
    limit = args.get("limit", 50)
    if "subnet" in args:
        subnet_id = find_subnet_id(engine, ctx, args["subnet"])
        detail = engine.subnets.get(ctx, subnet_id)
        rows = [_usage_row(engine, ctx, subnet_id)]
        rows += [_usage_row(engine, ctx, c.id) for c in detail.children[:limit]]
        return {"scope": detail.subnet.cidr, "rows": rows}
    filters = {k: args[k] for k in ("region", "site") if k in args}
    sql = (
        "SELECT id, tags FROM subnets WHERE workspace = ? AND is_container "
        "ORDER BY version, first, prefix_length"
    )
    chosen = [
        subnet_id
        for subnet_id, tags in engine.store.fetchall(sql, [ctx.workspace])
        if all(json.loads(tags).get(key) == value for key, value in filters.items())
    ]
    rows = [_usage_row(engine, ctx, subnet_id) for subnet_id in chosen[:limit]]
    scope = ", ".join(f"{k}={v}" for k, v in filters.items()) or "all containers"
    return {"scope": scope, "rows": rows}


def _device_get(engine: Engine, ctx: Context, args: dict[str, Any]) -> Any:
    return engine.devices.get(ctx, args["device"])


def _drift_show(engine: Engine, ctx: Context, args: dict[str, Any]) -> Any:
    status = args.get("status", "open")
    limit = min(args.get("limit", 100), 200)
    if "device" in args:
        device = engine.devices.get(ctx, args["device"])
        events = engine.drift.events(
            ctx, device=device.id, status=status, per_page=limit
        )
        return {
            "device": device.hostname,
            "drift_score": device.drift_score,
            "total": events.total,
            "events": to_json(events.data),
        }
    site = args.get("site")
    devices = engine.devices.list(ctx, site=site, has_drift=True, per_page=limit)
    rows = []
    for device in devices.data:
        events = engine.drift.events(ctx, device=device.id, status=status, per_page=1)
        rows.append(
            {
                "device": device.hostname,
                "site": device.site,
                "drift_score": device.drift_score,
                "open_events": events.total,
            }
        )
    return {"site": site, "total": devices.total, "devices": rows}


def _reconcile(engine: Engine, ctx: Context, args: dict[str, Any]) -> Any:
    return engine.reconcile.reconcile(
        ctx, args["device"], args["strategy"], args.get("fields")
    )


def _topology_path(engine: Engine, ctx: Context, args: dict[str, Any]) -> Any:
    kinds = args.get("kinds", ["intended"])
    return engine.topology.path(ctx, args["source"], args["target"], kinds=kinds)


def _topology_subgraph(engine: Engine, ctx: Context, args: dict[str, Any]) -> Any:
    return engine.topology.graph(
        ctx,
        scope=args["scope"],
        depth=args.get("depth", 2),
        annotate_drift=args.get("annotate_drift", True),
        max_elements=args.get("max_elements", 500),
    )


def _blast_radius(engine: Engine, ctx: Context, args: dict[str, Any]) -> Any:
    return engine.topology.blast_radius(ctx, args["target"], roots=args.get("roots"))


def _audit_subject(engine: Engine, ctx: Context, subject: str) -> str:
    if subject.startswith(("sn_", "dv_")):
        return subject
    if "/" in subject:
        return find_subnet_id(engine, ctx, subject)
    try:
        return engine.devices.get(ctx, subject).id
    except NotFound:
        return subject


def _audit_show(engine: Engine, ctx: Context, args: dict[str, Any]) -> Any:
    limit = min(args.get("limit", 20), 200)
    subject = args.get("subject")
    if subject is not None:
        subject = _audit_subject(engine, ctx, subject)
    actor = args.get("actor")
    first = engine.audit.list(
        ctx.workspace, subject=subject, actor=actor, per_page=limit
    )
    last_page = max(1, math.ceil(first.total / limit))
    events = list(first.data) if last_page == 1 else []
    if last_page > 1:
        for page in (last_page - 1, last_page):
            events += engine.audit.list(
                ctx.workspace, subject=subject, actor=actor, page=page, per_page=limit
            ).data
    newest_first = list(reversed(events[-limit:]))
    return {
        "subject": subject,
        "actor": args.get("actor"),
        "total": first.total,
        "events": to_json(newest_first),
    }


def _import_status(engine: Engine, ctx: Context, args: dict[str, Any]) -> Any:
    if "import_id" in args:
        return engine.imports.get(ctx, args["import_id"])
    rows = engine.store.fetchall(
        "SELECT id FROM import_jobs WHERE workspace = ? "
        "ORDER BY created_at DESC LIMIT ?",
        [ctx.workspace, args.get("limit", 10)],
    )
    return {"imports": [to_json(engine.imports.get(ctx, row[0])) for row in rows]}


TOOLS: tuple[Tool, ...] = (
    Tool(
        "ipam_search",
        "List free blocks of one prefix length inside a parent CIDR or subnet, "
        "in address order.",
        _object(
            {
                "prefix_length": _PREFIX,
                "cidr": _PARENT_CIDR,
                "subnet_id": _PARENT_ID,
                "limit": _LIMIT,
            },
            ["prefix_length"],
            **_ONE_PARENT,
        ),
        _ipam_search,
    ),
    Tool(
        "ipam_allocate",
        "Allocate the next free block of one prefix length inside a parent "
        "container (first fit by default) and record it as a new subnet.",
        _object(
            {
                "prefix_length": _PREFIX,
                "cidr": _PARENT_CIDR,
                "subnet_id": _PARENT_ID,
                "purpose": _string("what the block is for, e.g. payments service"),
                "owner": _string("e.g. team:payments"),
                "tags": _TAGS,
                "status": {"enum": ["allocated", "reserved"]},
                "policy": {"enum": ["first_fit", "best_fit", "last_fit"]},
            },
            ["prefix_length"],
            **_ONE_PARENT,
        ),
        _ipam_allocate,
        write=True,
    ),
    Tool(
        "subnet_get",
        "Show one subnet (by id or CIDR) with its usage and children.",
        _object({"subnet": _string("subnet id or CIDR")}, ["subnet"]),
        _subnet_get,
    ),
    Tool(
        "subnet_update",
        "Change the status, purpose, owner, VLAN or tags of a subnet; tags are merged.",
        _object(
            {
                "subnet": _string("subnet id or CIDR"),
                "changes": _object(
                    {
                        "status": {
                            "enum": ["allocated", "reserved", "available", "deprecated"]
                        },
                        "purpose": {"type": ["string", "null"]},
                        "owner": {"type": ["string", "null"]},
                        "vlan_id": {
                            "type": ["integer", "null"],
                            "minimum": 1,
                            "maximum": 4094,
                        },
                        "tags": {
                            "type": "object",
                            "additionalProperties": {"type": ["string", "null"]},
                        },
                    },
                    minProperties=1,
                ),
            },
            ["subnet", "changes"],
        ),
        _subnet_update,
        write=True,
    ),
    Tool(
        "utilization_report",
        "Report address utilization of a subnet and its children, or of every "
        "container, optionally only those of one region or site.",
        _object(
            {
                "subnet": _string("subnet id or CIDR"),
                "region": _string("region tag, e.g. us-east"),
                "site": _string("site tag, e.g. nyc1"),
                "limit": _LIMIT,
            }
        ),
        _utilization_report,
    ),
    Tool(
        "device_get",
        "Show one device by id or hostname, with its twin and detected state.",
        _object({"device": _string("device id or hostname")}, ["device"]),
        _device_get,
    ),
    Tool(
        "drift_show",
        "Show the drift events of one device, or the devices of a site (or of "
        "the whole network) that have drift.",
        _object(
            {
                "device": _string("device id or hostname"),
                "site": _string("site name, e.g. nyc1"),
                "status": {"enum": ["open", "reconciled", "ignored"]},
                "limit": _integer("maximum number of rows", 1, 200),
            }
        ),
        _drift_show,
    ),
    Tool(
        "reconcile",
        "Start reconciling a device's open drift with a strategy; returns a job "
        "whose progress streams as events.",
        _object(
            {
                "device": _string("device id or hostname"),
                "strategy": {"enum": list(STRATEGIES)},
                "fields": {
                    "type": "array",
                    "items": {"type": "string", "minLength": 1},
                    "minItems": 1,
                },
            },
            ["device", "strategy"],
        ),
        _reconcile,
        write=True,
    ),
    Tool(
        "topology_path",
        "Find the cheapest path between two devices, hop by hop with ports and cables.",
        _object(
            {
                "source": _string("device id or hostname"),
                "target": _string("device id or hostname"),
                "kinds": {
                    "type": "array",
                    "items": {"enum": ["intended", "detected"]},
                    "minItems": 1,
                },
            },
            ["source", "target"],
        ),
        _topology_path,
    ),
    Tool(
        "topology_subgraph",
        "Return the topology within a number of hops of a device, site, subnet "
        "or address, annotated with drift.",
        _object(
            {
                "scope": _string("device, site, subnet or address at the centre"),
                "depth": _integer("hops from the scope", 1, 5),
                "annotate_drift": {"type": "boolean"},
                "max_elements": _integer("maximum nodes plus edges", 1, 100_000),
            },
            ["scope"],
        ),
        _topology_subgraph,
    ),
    Tool(
        "blast_radius",
        "Find what loses its path to the rest of the network when a device or "
        "link fails: devices, subnets, addresses and sites.",
        _object(
            {
                "target": _string("device id or hostname, or a link id lk_..."),
                "roots": {
                    "type": "array",
                    "items": {"type": "string", "minLength": 1},
                },
            },
            ["target"],
        ),
        _blast_radius,
    ),
    Tool(
        "audit_show",
        "Show who changed what: the newest audit events of a subject (subnet id "
        "or CIDR, device) or of an actor.",
        _object(
            {
                "subject": _string("subnet id or CIDR, device id or hostname"),
                "actor": _string("e.g. user:alice@example.com or key:ak_..."),
                "limit": _integer("maximum number of events", 1, 200),
            }
        ),
        _audit_show,
    ),
    Tool(
        "import_status",
        "Show the status, progress and conflicts count of an import job, or "
        "the most recent imports.",
        _object(
            {
                "import_id": _string("import id, e.g. imp_01J9..."),
                "limit": _integer("number of recent imports", 1, 100),
            }
        ),
        _import_status,
    ),
)
