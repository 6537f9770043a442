"""The REST routes of every client operation: one table for server and client.

Each entry of :data:`ROUTES` maps an operation name of the local backend
(``"subnets.get"``) to one or more HTTP routes under ``/v1``: the method, the
path, and where each parameter travels (path, query string or JSON body). The
server builds its routing, input checks and OpenAPI document from this table,
and the HTTP backend builds its requests from it, so the two cannot disagree.
A new engine operation needs one entry here and nothing else.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from omnitwin.models import (
    Address,
    AuditEvent,
    AuditVerification,
    FreeBlocks,
    Record,
    Session,
    Subnet,
    SubnetDetail,
)

__all__ = [
    "ROUTES",
    "Param",
    "ResultSpec",
    "Route",
    "route_for_call",
    "routes_of",
]

Location = Literal["path", "query", "body"]
ParamType = Literal[
    "string",
    "integer",
    "number",
    "boolean",
    "object",
    "string_map",
    "string_list",
    "object_list",
    "any",
    "binary",
]
ResultKind = Literal["record", "page", "list", "groups", "json", "stream", "table"]


@dataclass(frozen=True, slots=True)
class Param:
    """One operation parameter and where it travels in an HTTP request.

    ``group`` collects body fields into one dict parameter, e.g. the fields of
    ``PATCH /subnets/{id}`` into ``changes``. ``enum`` lists allowed strings.
    A ``path`` parameter with ``slashes`` may contain ``/`` (a CIDR). A
    ``string_list`` query parameter is repeated once per value. ``any`` takes
    every JSON value but null; ``binary`` is a file part of a multipart body.
    """

    name: str
    type: ParamType
    location: Location
    required: bool = False
    nullable: bool = False
    description: str = ""
    enum: tuple[str, ...] = ()
    minimum: int | None = None
    maximum: int | None = None
    group: str | None = None
    slashes: bool = False


@dataclass(frozen=True, slots=True)
class ResultSpec:
    """The shape of an operation's result on the wire.

    ``record``: one ``model`` object. ``page``: ``{data: [model], meta}``.
    ``list``: a JSON array of ``model`` objects, or of ``item_type`` values
    without a model. ``groups``: an object of arrays of ``model`` objects.
    ``json``: any JSON value.
    ``stream``: an event stream (SSE) of ``{type, seq, session, ts, body}``.
    ``table``: every matching ``model`` row, streamed as an Arrow IPC stream
    or as NDJSON, whichever the Accept header asks for.
    """

    kind: ResultKind
    model: type[Record] | None = None
    item_type: Literal["string", "integer", "object"] = "string"


@dataclass(frozen=True, slots=True)
class Route:
    """An HTTP route of one operation.

    ``write`` marks routes that change state: read-only keys get 403 on them.
    ``rest_into`` sends undeclared body fields into that dict parameter instead
    of rejecting them, so the engine reports them with its own error class.
    ``content_type`` is the media type of the request body: JSON, or
    ``multipart/form-data`` for a file upload.
    """

    operation: str
    method: Literal["GET", "POST", "PATCH", "PUT", "DELETE"]
    path: str
    params: tuple[Param, ...] = ()
    result: ResultSpec = field(default_factory=lambda: ResultSpec("json"))
    status: int = 200
    write: bool = False
    summary: str = ""
    rest_into: str | None = None
    tag: str = ""
    content_type: str = "application/json"

    @property
    def path_params(self) -> tuple[Param, ...]:
        """The parameters that are part of the path."""
        return tuple(p for p in self.params if p.location == "path")

    def param(self, name: str) -> Param | None:
        """Return the declared parameter called ``name``, or ``None``."""
        for candidate in self.params:
            if candidate.name == name:
                return candidate
        return None

    @property
    def operation_id(self) -> str:
        """A unique OpenAPI operationId, e.g. ``subnets_available_by_cidr``.

        Of two routes of one operation, the one with more path parameters is
        named after them, e.g. ``drift_events_by_device``. A route outside
        :data:`ROUTES` (the server's ``/keys`` routes) is its operation's only
        route.
        """
        names = [p.name for p in self.path_params]
        siblings = ROUTES.get(self.operation, (self,))
        if any(p.slashes for p in self.path_params):
            suffix = "_by_cidr"
        elif any(len(r.path_params) < len(names) for r in siblings):
            suffix = "_by_" + "_".join(names)
        else:
            suffix = ""
        return self.operation.replace(".", "_") + suffix


def _path(name: str, description: str = "", *, slashes: bool = False) -> Param:
    return Param(name, "string", "path", True, description=description, slashes=slashes)


def _query(name: str, type_: ParamType = "string", **options: Any) -> Param:
    return Param(name, type_, "query", **options)


def _body(name: str, type_: ParamType = "string", **options: Any) -> Param:
    return Param(name, type_, "body", **options)


_PAGING: tuple[Param, ...] = (
    # The maximum keeps the row offset (page - 1) * per_page inside a 64-bit
    # integer, which DuckDB requires.
    _query(
        "page",
        "integer",
        minimum=1,
        maximum=1_000_000,
        description="page number, from 1",
    ),
    _query("per_page", "integer", minimum=1, maximum=200, description="items per page"),
)
_INTENT = _body("intent", description="reason stored in the audit event")
_STATUS = ("allocated", "reserved", "available", "deprecated")
_POLICIES = ("first_fit", "best_fit", "last_fit")
_SUBNET_ID = _path("id", "subnet id, e.g. sn_01J9...")

_SUBNET_FIELDS = (
    _body("status", enum=_STATUS),
    _body("purpose", nullable=True),
    _body("owner", nullable=True, description="e.g. team:platform"),
    _body("vlan_id", "integer", nullable=True, minimum=1, maximum=4094),
    _body("tags", "string_map", nullable=True),
)

_FREE_SPACE = (
    _query(
        "prefix_length",
        "integer",
        required=True,
        minimum=0,
        maximum=128,
        description="length of the free blocks, e.g. 24",
    ),
    _query("vrf"),
    _query("scope", enum=("vrf", "pool")),
    _query("limit", "integer", minimum=1, maximum=10_000),
)

_ALLOCATION = (
    _body(
        "prefix_length",
        "integer",
        required=True,
        minimum=0,
        maximum=128,
        description="length of the new block, e.g. 24",
    ),
    _body("vrf", nullable=True),
    _body("scope", enum=("vrf", "pool")),
    _body("policy", enum=_POLICIES),
    *_SUBNET_FIELDS,
    _body("is_container", "boolean"),
    _INTENT,
)

_SUBNET = ResultSpec("record", Subnet)

ROUTES: dict[str, tuple[Route, ...]] = {
    "subnets.list": (
        Route(
            "subnets.list",
            "GET",
            "/subnets",
            (
                _query("within", description="only subnets inside this CIDR"),
                _query("contains", description="only subnets containing this"),
                _query("status", enum=_STATUS),
                _query("purpose", description="substring of the purpose"),
                _query("vrf"),
                _query("owner"),
                *_PAGING,
            ),
            ResultSpec("page", Subnet),
            summary="List subnets in address order",
        ),
    ),
    "subnets.export": (
        Route(
            "subnets.export",
            "GET",
            "/subnets/export",
            (
                _query("within", description="only subnets inside this CIDR"),
                _query("status", enum=_STATUS),
                _query("vrf"),
            ),
            ResultSpec("table", Subnet),
            summary="Export every matching subnet in address order, as an "
            "Arrow IPC stream or NDJSON (Accept header)",
        ),
    ),
    "subnets.create": (
        Route(
            "subnets.create",
            "POST",
            "/subnets",
            (
                _body("cidr", required=True, description="e.g. 10.128.0.0/16"),
                *_SUBNET_FIELDS,
                _body("parent_id", nullable=True),
                _body("vrf", nullable=True),
                _body("is_pool", "boolean"),
                _body("is_container", "boolean"),
                _body("normalize", "boolean", description="clear host bits"),
                _INTENT,
            ),
            _SUBNET,
            status=201,
            write=True,
            summary="Create a subnet",
        ),
    ),
    "subnets.get": (
        Route(
            "subnets.get",
            "GET",
            "/subnets/{id}",
            (_SUBNET_ID,),
            ResultSpec("record", SubnetDetail),
            summary="Get a subnet with its usage and children",
        ),
    ),
    "subnets.update": (
        Route(
            "subnets.update",
            "PATCH",
            "/subnets/{id}",
            (
                _SUBNET_ID,
                *(
                    Param(
                        p.name,
                        p.type,
                        "body",
                        nullable=p.nullable,
                        enum=p.enum,
                        minimum=p.minimum,
                        maximum=p.maximum,
                        group="changes",
                    )
                    for p in _SUBNET_FIELDS
                ),
                _body("is_pool", "boolean", group="changes"),
                _body("is_container", "boolean", group="changes"),
                _INTENT,
            ),
            _SUBNET,
            write=True,
            rest_into="changes",
            summary="Update a subnet; tags are merged, a null tag is removed",
        ),
    ),
    "subnets.audit": (
        Route(
            "subnets.audit",
            "GET",
            "/subnets/{id}/audit",
            (_SUBNET_ID, *_PAGING),
            ResultSpec("page", AuditEvent),
            summary="List the audit events of a subnet",
        ),
    ),
    "subnets.available": (
        Route(
            "subnets.available",
            "GET",
            "/subnets/{subnet_id}/available",
            (_path("subnet_id", "parent subnet id"), *_FREE_SPACE),
            ResultSpec("record", FreeBlocks),
            summary="List free blocks of one prefix length inside a subnet",
        ),
        Route(
            "subnets.available",
            "GET",
            "/cidrs/{cidr}/available",
            (
                _path("cidr", "parent CIDR, e.g. 10.0.0.0/16", slashes=True),
                *_FREE_SPACE,
            ),
            ResultSpec("record", FreeBlocks),
            summary="List free blocks of one prefix length inside a CIDR",
        ),
    ),
    "subnets.allocate": (
        Route(
            "subnets.allocate",
            "POST",
            "/subnets/{subnet_id}/allocate",
            (_path("subnet_id", "parent subnet id"), *_ALLOCATION),
            _SUBNET,
            status=201,
            write=True,
            summary="Allocate the next free block inside a subnet",
        ),
        Route(
            "subnets.allocate",
            "POST",
            "/cidrs/{cidr}/allocate",
            (
                _path("cidr", "parent CIDR, e.g. 10.0.0.0/16", slashes=True),
                *_ALLOCATION,
            ),
            _SUBNET,
            status=201,
            write=True,
            summary="Allocate the next free block inside a CIDR",
        ),
    ),
    "subnets.available_addresses": (
        Route(
            "subnets.available_addresses",
            "GET",
            "/subnets/{id}/available-addresses",
            (_SUBNET_ID, _query("limit", "integer", minimum=1, maximum=4096)),
            ResultSpec("list"),
            summary="List the first usable, unassigned addresses of a subnet",
        ),
    ),
    "addresses.list": (
        Route(
            "addresses.list",
            "GET",
            "/addresses",
            (_query("subnet_id"), _query("vrf"), _query("hostname"), *_PAGING),
            ResultSpec("page", Address),
            summary="List assigned addresses",
        ),
    ),
    "addresses.create": (
        Route(
            "addresses.create",
            "POST",
            "/addresses",
            (
                _body("address", required=True, description="e.g. 10.0.0.5/24"),
                _body("vrf", nullable=True),
                _body("status"),
                _body("hostname", nullable=True),
                _body("device_id", nullable=True),
                _body("interface", nullable=True),
                _INTENT,
            ),
            ResultSpec("record", Address),
            status=201,
            write=True,
            summary="Assign an address",
        ),
    ),
    "addresses.get": (
        Route(
            "addresses.get",
            "GET",
            "/addresses/{id}",
            (_path("id", "address id"),),
            ResultSpec("record", Address),
            summary="Get an assigned address",
        ),
    ),
    "audit.list": (
        Route(
            "audit.list",
            "GET",
            "/audit",
            (_query("subject"), _query("actor"), _query("action"), *_PAGING),
            ResultSpec("page", AuditEvent),
            summary="List audit events, oldest first",
        ),
    ),
    "audit.verify": (
        Route(
            "audit.verify",
            "GET",
            "/audit/verify",
            (),
            ResultSpec("record", AuditVerification),
            summary="Check the audit hash chain",
        ),
    ),
}


# --- agent commands and sessions ----------------------------------------------

_SESSION_ID = _path("id", "agent session id, e.g. sess_01J9...")
_SESSION_STATUSES = ("active", "running", "completed", "failed", "expired")

ROUTES.update(
    {
        "agents.command": (
            Route(
                "agents.command",
                "POST",
                "/agents/command",
                (
                    _body("command", description="the command in plain English"),
                    _body("tool", description="a tool name, instead of command"),
                    _body("args", "object", description="the tool's arguments"),
                    _body("session_id", description="continue this session"),
                    _body("model", description="plan with this LLM"),
                ),
                ResultSpec("stream"),
                # NOTE: read-only keys get 403 on every agent command, reads
                # included, because the runtime cannot see the key's rights.
                write=True,
                summary="Run an agent command: SSE events with Accept: "
                "text/event-stream, else one JSON result",
            ),
        ),
        "agents.sessions": (
            Route(
                "agents.sessions",
                "GET",
                "/agents/sessions",
                (_query("status", enum=_SESSION_STATUSES), *_PAGING),
                ResultSpec("page", Session),
                summary="List agent sessions, most recently active first",
            ),
        ),
        "agents.session": (
            Route(
                "agents.session",
                "GET",
                "/agents/sessions/{id}",
                (_SESSION_ID,),
                ResultSpec("record", Session),
                summary="Get an agent session with its status and telemetry",
            ),
        ),
        "agents.events": (
            Route(
                "agents.events",
                "GET",
                "/agents/sessions/{id}/events",
                (_SESSION_ID, _query("after_seq", "integer", minimum=0)),
                ResultSpec("stream"),
                summary="Replay a session's events; live while a command runs",
            ),
        ),
    }
)


# The device and import modules build their routes with the helpers above, so
# they are imported once those exist.
from omnitwin.client._routes_devices import DEVICE_ROUTES  # noqa: E402
from omnitwin.client._routes_imports import IMPORT_ROUTES  # noqa: E402

ROUTES.update(DEVICE_ROUTES)
ROUTES.update(IMPORT_ROUTES)


def routes_of() -> list[Route]:
    """Return every route, with static paths before parametrised ones."""
    routes = [route for group in ROUTES.values() for route in group]
    return sorted(routes, key=lambda r: ("{" in r.path, r.path.count("/")))


def route_for_call(operation: str, params: dict[str, Any]) -> Route:
    """Return the route of ``operation`` whose path parameters ``params`` has.

    Raises ``KeyError`` for an operation without routes, and ``ValueError``
    when ``params`` lacks the path parameters of every route.
    """
    candidates: Sequence[Route] = ROUTES[operation]
    for route in candidates:
        if all(params.get(p.name) is not None for p in route.path_params):
            return route
    needed = " or ".join(
        "+".join(p.name for p in r.path_params) or "nothing" for r in candidates
    )
    raise ValueError(f"{operation} needs {needed}")
