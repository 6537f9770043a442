"""Build the OpenAPI 3 document of the REST API from the routes table.

Response schemas come from the record dataclasses' type hints, so a field
added to a record appears in the document without further edits.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any

from omnitwin import __version__
from omnitwin.client._routes import Param, Route, routes_of
from omnitwin.errors import OmniTwinError
from omnitwin.models import Record
from omnitwin.server._admin import KEY_ROUTES

__all__ = ["build_openapi"]

_ERROR_STATUSES = {
    400: "Invalid request: malformed JSON, unknown field, wrong type or value",
    401: "Missing, unknown or revoked API key",
    403: "The API key may not perform this operation",
    404: "Not found in this workspace",
    409: "Conflicts with the stored state",
    429: "Rate limit reached; retry after Retry-After seconds",
}

# The media types of a ``table`` result, as served by omnitwin.server._export.
_TABLE_CONTENT = {
    "application/x-ndjson": {
        "schema": {
            "type": "string",
            "description": "one JSON object per line, with the fields of the "
            "record plus prefix_length and version",
        }
    },
    "application/vnd.apache.arrow.stream": {
        "schema": {
            "type": "string",
            "format": "binary",
            "description": "Arrow IPC stream; tags is JSON text and the "
            "timestamps are ISO 8601 strings",
        }
    },
}

_SCALARS: dict[Any, dict[str, Any]] = {
    str: {"type": "string"},
    int: {"type": "integer"},
    float: {"type": "number"},
    bool: {"type": "boolean"},
}


def _schema_for(annotation: Any, components: dict[str, Any]) -> dict[str, Any]:
    """Return the JSON schema of a type hint, registering record components."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if annotation in _SCALARS:
        return dict(_SCALARS[annotation])
    if annotation is Any:
        return {}
    if origin in (typing.Union, types.UnionType):
        options = [a for a in args if a is not type(None)]
        schema = _schema_for(options[0], components) if len(options) == 1 else {}
        if type(None) in args:
            if "$ref" in schema:
                return {"allOf": [schema], "nullable": True}
            schema["nullable"] = True
        return schema
    if origin is list:
        return {"type": "array", "items": _schema_for(args[0], components)}
    if origin is dict:
        return {
            "type": "object",
            "additionalProperties": _schema_for(args[1], components) if args else {},
        }
    if isinstance(annotation, type) and issubclass(annotation, Record):
        return _record_ref(annotation, components)
    return {}


def _record_ref(model: type[Record], components: dict[str, Any]) -> dict[str, Any]:
    name = model.__name__
    if name not in components:
        components[name] = {}
        hints = typing.get_type_hints(model)
        fields = dataclasses.fields(model)  # type: ignore[arg-type]
        components[name] = {
            "type": "object",
            "properties": {
                f.name: _schema_for(hints[f.name], components) for f in fields
            },
            "required": [f.name for f in fields],
        }
    return {"$ref": f"#/components/schemas/{name}"}


_PARAM_SCHEMAS: dict[str, dict[str, Any]] = {
    "string_map": {
        "type": "object",
        "additionalProperties": {"type": "string", "nullable": True},
    },
    "string_list": {"type": "array", "items": {"type": "string"}},
    "object_list": {"type": "array", "items": {"type": "object"}},
    "any": {},
    "binary": {"type": "string", "format": "binary"},
}


def _param_schema(param: Param) -> dict[str, Any]:
    if param.type in _PARAM_SCHEMAS:
        schema = dict(_PARAM_SCHEMAS[param.type])
    else:
        schema = {"type": param.type}
    if param.enum and param.type == "string_list":
        schema["items"] = {"type": "string", "enum": list(param.enum)}
    elif param.enum:
        schema["enum"] = list(param.enum)
    if param.minimum is not None:
        schema["minimum"] = param.minimum
    if param.maximum is not None:
        schema["maximum"] = param.maximum
    if param.nullable:
        schema["nullable"] = True
    return schema


def _result_schema(route: Route, components: dict[str, Any]) -> dict[str, Any]:
    result = route.result
    if result.kind == "record" and result.model is not None:
        return _record_ref(result.model, components)
    if result.kind == "page" and result.model is not None:
        return {
            "type": "object",
            "properties": {
                "data": {
                    "type": "array",
                    "items": _record_ref(result.model, components),
                },
                "meta": {"$ref": "#/components/schemas/PageMeta"},
            },
            "required": ["data", "meta"],
        }
    if result.kind == "list" and result.model is not None:
        return {"type": "array", "items": _record_ref(result.model, components)}
    if result.kind == "list":
        return {"type": "array", "items": {"type": result.item_type}}
    if result.kind == "groups" and result.model is not None:
        items = {"type": "array", "items": _record_ref(result.model, components)}
        return {"type": "object", "additionalProperties": items}
    return {}


def _request_body(route: Route) -> dict[str, Any] | None:
    body = [p for p in route.params if p.location == "body"]
    if not body:
        return None
    schema: dict[str, Any] = {
        "type": "object",
        "properties": {p.name: _param_schema(p) for p in body},
        "additionalProperties": route.rest_into is not None,
    }
    required = [p.name for p in body if p.required]
    if required:
        schema["required"] = required
    media: dict[str, Any] = {"schema": schema}
    objects = [p.name for p in body if p.type == "object"]
    if route.content_type == "multipart/form-data" and objects:
        media["encoding"] = {
            name: {"contentType": "application/json"} for name in objects
        }
    return {"required": bool(required), "content": {route.content_type: media}}


def _link_targets(route: Route) -> list[tuple[Route, str]]:
    """Return the routes that take the id of the object ``route`` creates.

    A created job links to the job routes, and any other created object links
    to the routes of its namespace addressed by ``{id}``.
    """
    model = route.result.model
    if route.result.kind != "record" or model is None or route.status == 200:
        return []
    if "id" not in {f.name for f in dataclasses.fields(model)}:  # type: ignore[arg-type]
        return []
    namespace = route.operation.split(".")[0]
    targets = []
    for target in routes_of():
        names = [p.name for p in target.path_params]
        if model.__name__ == "Job":
            takes_id = names == ["job_id"] or (
                target.operation.startswith("jobs.") and names == ["id"]
            )
        else:
            takes_id = names == ["id"] and target.operation.startswith(namespace + ".")
        if takes_id:
            targets.append((target, names[0]))
    return targets


def _links(route: Route) -> dict[str, Any]:
    return {
        target.operation_id: {
            "operationId": target.operation_id,
            "parameters": {name: "$response.body#/id"},
        }
        for target, name in _link_targets(route)
    }


def _operation(route: Route, components: dict[str, Any]) -> dict[str, Any]:
    rate_headers = {
        name: {"schema": {"type": "integer"}}
        for name in ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset")
    }
    responses: dict[str, Any] = {
        str(route.status): {
            "description": "Success",
            "headers": rate_headers,
            "content": {
                "application/json": {"schema": _result_schema(route, components)}
            },
        }
    }
    if route.result.kind == "table":
        responses[str(route.status)]["content"] = _TABLE_CONTENT
        responses["406"] = {
            "description": "The Accept header lists none of the export formats",
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}
            },
        }
    links = _links(route)
    if links:
        responses[str(route.status)]["links"] = links
    for status, description in _ERROR_STATUSES.items():
        responses[str(status)] = {
            "description": description,
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}
            },
        }
    operation: dict[str, Any] = {
        "operationId": route.operation_id,
        "summary": route.summary or route.operation,
        "tags": [route.operation.split(".")[0]],
        "parameters": [
            {
                "name": p.name,
                "in": p.location,
                "required": p.required,
                "description": p.description,
                "schema": _param_schema(p),
            }
            for p in route.params
            if p.location != "body"
        ],
        "responses": responses,
    }
    body = _request_body(route)
    if body is not None:
        operation["requestBody"] = body
    return operation


def _base_components() -> dict[str, Any]:
    error_codes = sorted({c.code for c in _all_errors(OmniTwinError)})
    return {
        "PageMeta": {
            "type": "object",
            "properties": {
                "total": {"type": "integer"},
                "page": {"type": "integer"},
                "per_page": {"type": "integer"},
            },
            "required": ["total", "page", "per_page"],
        },
        "Error": {
            "type": "object",
            "properties": {
                "error": {
                    "type": "object",
                    "properties": {
                        "code": {"type": "string", "enum": error_codes},
                        "message": {"type": "string"},
                        "request_id": {"type": "string"},
                        "details": {"type": "object"},
                    },
                    "required": ["code", "message", "request_id"],
                }
            },
            "required": ["error"],
        },
    }


def _all_errors(cls: type[OmniTwinError]) -> list[type[OmniTwinError]]:
    found = [cls]
    for sub in cls.__subclasses__():
        found.extend(_all_errors(sub))
    return found


def _extra_paths() -> dict[str, Any]:
    plain = {"application/json": {"schema": {"type": "object"}}}
    return {
        "/health": {
            "get": {
                "operationId": "health",
                "summary": "Report that the server is up",
                "security": [],
                "responses": {"200": {"description": "Up", "content": plain}},
            }
        }
    }


def build_openapi(*, sandbox: bool = False) -> dict[str, Any]:
    """Return the OpenAPI 3.0 document of every route under ``/v1``."""
    components = _base_components()
    paths: dict[str, Any] = _extra_paths()
    for route in (*routes_of(), *KEY_ROUTES):
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(
            route, components
        )
    if sandbox:
        paths["/sandbox/reset"] = {
            "post": {
                "operationId": "sandbox_reset",
                "summary": "Reset this workspace to the seeded sample data",
                "responses": {
                    "200": {
                        "description": "Reset",
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    },
                    **{
                        str(s): {"$ref": "#/components/responses/Error"}
                        for s in (401, 403, 429)
                    },
                },
            }
        }
    return {
        "openapi": "3.0.3",
        "info": {"title": "omnitwin API", "version": __version__},
        "servers": [{"url": "/v1"}],
        "paths": paths,
        "components": {
            "schemas": components,
            "responses": {
                "Error": {
                    "description": "Error",
                    "content": {
                        "application/json": {
                            "schema": {"$ref": "#/components/schemas/Error"}
                        }
                    },
                }
            },
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-OmniTwin-Key"},
            },
        },
        "security": [{"bearer": []}, {"apiKey": []}],
    }
