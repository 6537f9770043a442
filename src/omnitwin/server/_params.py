"""Turn the path, query string and body of a request into call parameters.

Every value is checked against the route's declared parameters, so a wrong
type, an unknown field or malformed JSON is a 400 before the engine runs.
Bodies are JSON objects, or multipart forms on upload routes.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from omnitwin.client._routes import Param, Route
from omnitwin.errors import ValidationError

__all__ = ["parse_form", "parse_params"]

_JSON_TYPES = {
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "object": "an object",
    "string_map": "an object of strings",
    "string_list": "an array of strings",
    "object_list": "an array of objects",
    "any": "a JSON value other than null",
    "binary": "a file part",
}


def _type_error(param: Param, value: Any) -> ValidationError:
    message = (
        f"invalid {param.location} parameter {param.name!r}: expected "
        f"{_JSON_TYPES[param.type]}, got {json.dumps(value)[:80]}"
    )
    return ValidationError(message, details={"field": param.name})


def _is_valid_json_type(param: Param, value: Any) -> bool:
    if value is None:
        return param.nullable
    if param.type == "string":
        return isinstance(value, str)
    if param.type == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if param.type == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if param.type == "boolean":
        return isinstance(value, bool)
    if param.type == "string_map":
        return isinstance(value, dict) and all(
            isinstance(v, str) or v is None for v in value.values()
        )
    if param.type == "string_list":
        return isinstance(value, list) and all(isinstance(v, str) for v in value)
    if param.type == "object_list":
        return isinstance(value, list) and all(isinstance(v, dict) for v in value)
    if param.type == "binary":
        return isinstance(value, bytes)
    if param.type == "any":
        return True
    return isinstance(value, dict)


def _check_value(param: Param, value: Any) -> Any:
    if not _is_valid_json_type(param, value):
        raise _type_error(param, value)
    if value is None:
        return value
    items = value if param.type == "string_list" else [value]
    for item in items:
        if param.enum and item not in param.enum:
            choices = ", ".join(param.enum)
            message = f"invalid {param.name} {item!r}; use one of: {choices}"
            raise ValidationError(message, details={"field": param.name})
    if param.type == "integer":
        low, high = param.minimum, param.maximum
        if (low is not None and value < low) or (high is not None and value > high):
            message = f"{param.name} {value} is out of range {low}..{high}"
            raise ValidationError(message, details={"field": param.name})
    return value


def _from_text(param: Param, text: str) -> Any:
    """Convert a path or query string to the parameter's type."""
    if param.type == "integer":
        stripped = text.strip()
        if not stripped.lstrip("-").isdigit() or not stripped.isascii():
            raise _type_error(param, text)
        return int(stripped)
    if param.type == "boolean":
        if text.lower() not in ("true", "false"):
            raise _type_error(param, text)
        return text.lower() == "true"
    if param.type in ("string", "string_list"):
        return text
    if param.type == "object":
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            raise _type_error(param, text) from None
    if param.type == "number":
        try:
            return float(text)
        except ValueError:
            raise _type_error(param, text) from None
    raise _type_error(param, text)


def _parse_query(route: Route, query: Iterable[tuple[str, str]]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    declared: dict[str, Param] = {}
    for name, text in query:
        param = route.param(name)
        if param is None or param.location != "query":
            message = (
                f"unknown query parameter {name!r} for {route.method} {route.path}"
            )
            raise ValidationError(message, details={"field": name})
        value = _from_text(param, text)
        if param.type == "string_list":
            params.setdefault(name, []).append(value)
        elif name in params:
            message = f"query parameter {name!r} appears more than once; send it once"
            raise ValidationError(message, details={"field": name})
        else:
            params[name] = value
        declared[name] = param
    for name, value in params.items():
        _check_value(declared[name], value)
    return params


def _decode_body(body: bytes) -> dict[str, Any]:
    if not body.strip():
        return {}
    try:
        data = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        message = f"malformed JSON body: {exc}; send a JSON object"
        raise ValidationError(message) from exc
    if not isinstance(data, dict):
        message = f"the JSON body must be an object, not {type(data).__name__}"
        raise ValidationError(message)
    return data


def _parse_body(route: Route, body: bytes) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for name, value in _decode_body(body).items():
        param = route.param(name)
        if param is not None and param.location == "body":
            target = params.setdefault(param.group, {}) if param.group else params
            target[name] = _check_value(param, value)
        elif route.rest_into is not None:
            params.setdefault(route.rest_into, {})[name] = value
        else:
            message = f"unknown field {name!r} for {route.method} {route.path}"
            raise ValidationError(message, details={"field": name})
    if route.rest_into is not None:
        params.setdefault(route.rest_into, {})
    return params


def _check_required(route: Route, params: dict[str, Any]) -> None:
    for param in route.params:
        if param.required and params.get(param.name) is None:
            message = f"missing required {param.location} parameter {param.name!r}"
            raise ValidationError(message, details={"field": param.name})


def parse_params(
    route: Route,
    path_params: Mapping[str, Any],
    query: Iterable[tuple[str, str]],
    body: bytes,
) -> dict[str, Any]:
    """Return the operation parameters of one request, checked and typed.

    Raises
    ------
    ValidationError
        A value has the wrong type or is out of range, a field is unknown or a
        required one is missing, or the body is not a JSON object.
    """
    params = {name: str(value) for name, value in path_params.items()}
    params.update(_parse_query(route, query))
    if route.method in ("POST", "PATCH", "PUT"):
        params.update(_parse_body(route, body))
    elif body.strip():
        message = f"{route.method} {route.path} takes no request body"
        raise ValidationError(message)
    _check_required(route, params)
    return params


def parse_form(
    route: Route,
    path_params: Mapping[str, Any],
    query: Iterable[tuple[str, str]],
    fields: Iterable[tuple[str, str | bytes]],
) -> dict[str, Any]:
    """Return the operation parameters of a multipart request, checked and typed.

    ``fields`` contains text fields as ``str`` and file parts as ``bytes``. Text
    fields are converted like query values, and ``object`` fields are JSON.

    Raises
    ------
    ValidationError
        As :func:`parse_params`, or a field is given twice, or a file part
        arrives where a text field is expected or the reverse.
    """
    params = {name: str(value) for name, value in path_params.items()}
    params.update(_parse_query(route, query))
    for name, value in fields:
        param = route.param(name)
        if param is None or param.location != "body":
            message = f"unknown field {name!r} for {route.method} {route.path}"
            raise ValidationError(message, details={"field": name})
        if name in params:
            message = f"field {name!r} appears more than once; send it once"
            raise ValidationError(message, details={"field": name})
        if isinstance(value, str) and param.type != "binary":
            value = _from_text(param, value)
        params[name] = _check_value(param, value)
    _check_required(route, params)
    return params
