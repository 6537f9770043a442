"""The ASGI application: routing from the routes table, auth, limits, errors.

Every route of :data:`~omnitwin.client._routes.ROUTES` gets one generic
endpoint that authenticates the key, counts the request against the
workspace's budget, checks the parameters and runs the operation through the
same :class:`~omnitwin.client._local.LocalBackend` that embedded clients use.
Routes whose result is a ``table`` stream their rows through
:mod:`omnitwin.server._export` instead. The ``/keys`` routes of
:mod:`omnitwin.server._admin` take admin keys only, and admin keys get 403
on every other route.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount
from starlette.routing import Route as StarletteRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from omnitwin._ids import new_id
from omnitwin.client._local import LocalBackend
from omnitwin.client._routes import Route, routes_of
from omnitwin.engine.context import Context
from omnitwin.engine.engine import Engine, open_engine
from omnitwin.errors import (
    AuthenticationError,
    NotFound,
    OmniTwinError,
    PermissionDenied,
    RateLimited,
    ServerError,
    ValidationError,
)
from omnitwin.models import Page
from omnitwin.server._admin import KEY_ROUTES, run_key_operation
from omnitwin.server._export import (
    choose_media_type,
    export_media_types,
    export_response,
)
from omnitwin.server._keys import KEY_PREFIXES, ApiKey, KeyKind, KeyStore
from omnitwin.server._openapi import build_openapi
from omnitwin.server._params import parse_form, parse_params
from omnitwin.server._ratelimit import RateLimiter
from omnitwin.server._sandbox import SandboxEngines
from omnitwin.server._streams import event_stream_response

__all__ = ["ServerConfig", "create_app"]

logger = logging.getLogger("omnitwin.server")

MAX_BODY_BYTES = 1_048_576
MAX_UPLOAD_BYTES = 64 * 1_048_576


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """Settings of one server process.

    ``rate_limit`` requests per workspace are allowed in each window of
    ``rate_window`` seconds. ``sandbox_reset_minutes`` resets every sandbox
    workspace on that schedule (sandbox mode only; ``None`` never).
    """

    db: str = "omnitwin.duckdb"
    sandbox: bool = False
    rate_limit: int = 1000
    rate_window: float = 60.0
    sandbox_reset_minutes: float | None = None


class _State:
    """The engine, keys, limiter and sandbox engines that the endpoints share."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.engine: Engine | None = None
        self.keys: KeyStore | None = None
        self.limiter = RateLimiter(config.rate_limit, config.rate_window)
        self.sandbox = SandboxEngines() if config.sandbox else None

    def open(self) -> None:
        self.engine = open_engine(self.config.db)
        self.keys = KeyStore(self.engine.store, self.engine.audit)

    async def engine_for(self, key: ApiKey) -> Engine:
        if self.sandbox is not None:
            return await self.sandbox.get(key.workspace)
        assert self.engine is not None, "the server has not started"
        return self.engine

    def close(self) -> None:
        if self.sandbox is not None:
            self.sandbox.close()
        if self.engine is not None:
            self.engine.close()


def request_id_of(request: Request) -> str:
    """Return the request id that the middleware assigned."""
    return str(request.scope.get("omnitwin.request_id", ""))


def error_response(
    error: OmniTwinError, request_id: str, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    """Return the error body ``{"error": {code, message, request_id}}``."""
    body = error.to_dict()
    body["request_id"] = request_id
    status = error.status
    if status >= 500:
        logger.error("request %s failed: %s %s", request_id, error.code, error.message)
    else:
        logger.info("request %s rejected: %s %s", request_id, error.code, error.message)
    return JSONResponse({"error": body}, status_code=status, headers=headers)


def _result_json(result: Any) -> Any:
    if isinstance(result, Page):
        return result.to_dict()
    if hasattr(result, "to_dict"):
        return result.to_dict()
    if isinstance(result, list | tuple):
        return [_result_json(item) for item in result]
    if isinstance(result, dict):
        return {key: _result_json(value) for key, value in result.items()}
    return result


def _run(backend: LocalBackend, operation: str, params: dict[str, Any]) -> Any:
    """Run one operation and return its JSON bytes, or the stream it returned."""
    result = backend.call(operation, params)
    if isinstance(result, AsyncIterator):
        return result
    return json.dumps(_result_json(result), separators=(",", ":")).encode()


def _credential(request: Request) -> str:
    authorization = request.headers.get("authorization", "")
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return request.headers.get("x-omnitwin-key", "").strip()


async def _authenticate(state: _State, request: Request) -> ApiKey:
    secret = _credential(request)
    if not secret:
        raise AuthenticationError(
            "missing API key; send 'Authorization: Bearer ot_live_...' or "
            "'X-OmniTwin-Key', and create a key with 'omnitwin keys create'"
        )
    assert state.keys is not None, "the server has not started"
    found, key = state.keys.cached(secret)
    if not found:
        key = await asyncio.to_thread(state.keys.authenticate, secret)
    if key is None:
        raise AuthenticationError("unknown or revoked API key")
    expected: KeyKind = "sandbox" if state.config.sandbox else "live"
    if key.kind != expected:
        message = (
            f"this server accepts {KEY_PREFIXES[expected]}... keys only; "
            f"create one with 'omnitwin keys create'"
        )
        raise AuthenticationError(message)
    return key


async def _read_body(request: Request) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise ValidationError(f"request body over {MAX_BODY_BYTES} bytes")
    body = await request.body()
    if len(body) > MAX_BODY_BYTES:
        raise ValidationError(f"request body over {MAX_BODY_BYTES} bytes")
    return body


async def _read_form(
    request: Request, route: Route
) -> tuple[list[tuple[str, str | bytes]], str | None]:
    """Return the fields of a multipart body, file parts as bytes, and the
    file name that the upload carried."""
    media_type = request.headers.get("content-type", "").partition(";")[0].strip()
    if media_type.lower() != "multipart/form-data":
        names = ", ".join(p.name for p in route.params if p.location == "body")
        message = (
            f"{route.method} {route.path} takes a multipart/form-data body "
            f"with the fields {names}, not {media_type or 'no body'}"
        )
        raise ValidationError(message)
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_UPLOAD_BYTES:
        raise ValidationError(
            f"upload over {MAX_UPLOAD_BYTES} bytes; send a smaller file"
        )
    try:
        form = await request.form(max_files=1, max_fields=50)
    except (HTTPException, MultiPartException) as exc:
        detail = exc.detail if isinstance(exc, HTTPException) else exc.message
        raise ValidationError(f"malformed multipart body: {detail}") from exc
    fields: list[tuple[str, str | bytes]] = []
    filename = None
    try:
        for name, value in form.multi_items():
            if isinstance(value, str):
                fields.append((name, value))
                continue
            if value.size is not None and value.size > MAX_UPLOAD_BYTES:
                raise ValidationError(
                    f"upload over {MAX_UPLOAD_BYTES} bytes; send a smaller file"
                )
            fields.append((name, await value.read()))
            filename = value.filename or filename
    finally:
        await form.close()
    return fields, filename


async def _params_of(request: Request, route: Route) -> dict[str, Any]:
    query = request.query_params.multi_items()
    if route.content_type == "multipart/form-data":
        fields, filename = await _read_form(request, route)
        params = parse_form(route, request.path_params, query, fields)
        # A filename field of the form wins over the file part's own name.
        if params.get("filename") is None and filename and route.param("filename"):
            params["filename"] = filename
        return params
    body = await _read_body(request)
    return parse_params(route, request.path_params, query, body)


Handler = Callable[[Request, ApiKey, dict[str, str]], Awaitable[Response]]


def _check_access(key: ApiKey, request: Request, *, write: bool, admin: bool) -> None:
    """Raise PermissionDenied unless ``key`` may call this route.

    Admin routes take admin keys only, and admin keys may call nothing else.
    A read-only key, admin or not, may not call a write route.
    """
    target = f"{request.method} {request.url.path}"
    if admin and not key.admin:
        raise PermissionDenied(
            f"API key {key.id} is not an admin key; {target} needs one. Create "
            "one with 'omnitwin keys create --admin'"
        )
    if key.admin and not admin:
        raise PermissionDenied(
            f"API key {key.id} is an admin key, which manages keys under "
            f"/v1/keys and reads no workspace data; use a workspace key for {target}"
        )
    if write and key.read_only:
        raise PermissionDenied(
            f"API key {key.id} is read-only; use a read-write key to {target}"
        )


def _guarded(
    state: _State, handler: Handler, *, write: bool, admin: bool = False
) -> Callable[..., Any]:
    """Wrap ``handler`` with auth, rate limiting and error bodies.

    Admin keys count against the budget of the workspace ``*``.
    """

    async def endpoint(request: Request) -> Response:
        headers: dict[str, str] = {}
        try:
            key = await _authenticate(state, request)
            decision = state.limiter.check(key.workspace)
            headers.update(decision.headers())
            if not decision.allowed:
                message = (
                    f"rate limit of {decision.limit} requests per "
                    f"{state.limiter.window:g} s reached for workspace "
                    f"{key.workspace!r}; retry after {decision.reset} s"
                )
                raise RateLimited(message, retry_after=decision.reset)
            _check_access(key, request, write=write, admin=admin)
            return await handler(request, key, headers)
        except OmniTwinError as exc:
            return error_response(exc, request_id_of(request), headers)
        except Exception:
            request_id = request_id_of(request)
            logger.exception("request %s failed with an unexpected error", request_id)
            error = ServerError(
                f"internal server error; the server log has the details under "
                f"request id {request_id}"
            )
            return error_response(error, request_id, headers)

    return endpoint


def _operation_handler(state: _State, route: Route) -> Handler:
    async def handle(
        request: Request, key: ApiKey, headers: dict[str, str]
    ) -> Response:
        params = await _params_of(request, route)
        engine = await state.engine_for(key)
        backend = LocalBackend(
            engine, Context(workspace=key.workspace, actor=key.actor)
        )
        # One worker thread runs the operation and encodes the JSON, so that
        # neither blocks the event loop.
        result = await asyncio.to_thread(_run, backend, route.operation, params)
        if isinstance(result, AsyncIterator):
            return await event_stream_response(request, result, headers)
        return Response(result, route.status, headers, "application/json")

    return handle


def _export_handler(state: _State, route: Route) -> Handler:
    """Stream the rows of a ``table`` route in the media type of ``Accept``."""

    async def handle(
        request: Request, key: ApiKey, headers: dict[str, str]
    ) -> Response:
        accept = request.headers.get("accept")
        media_type = choose_media_type(accept, export_media_types())
        params = await _params_of(request, route)
        engine = await state.engine_for(key)
        ctx = Context(workspace=key.workspace, actor=key.actor)
        request_id = request_id_of(request)
        return await export_response(
            engine, ctx, params, media_type, headers, request_id
        )

    return handle


def _key_handler(state: _State, route: Route) -> Handler:
    """Run a ``/keys`` route on the server's key store."""

    async def handle(
        request: Request, key: ApiKey, headers: dict[str, str]
    ) -> Response:
        params = await _params_of(request, route)
        assert state.keys is not None, "the server has not started"
        kind: KeyKind = "sandbox" if state.config.sandbox else "live"
        result = await asyncio.to_thread(
            run_key_operation, state.keys, key, route.operation, params, kind
        )
        # The response of POST /keys contains a secret, so caches must not store it.
        headers = {**headers, "Cache-Control": "no-store"}
        return JSONResponse(_result_json(result), route.status, headers)

    return handle


def _sandbox_reset_handler(state: _State) -> Handler:
    async def handle(
        request: Request, key: ApiKey, headers: dict[str, str]
    ) -> Response:
        assert state.sandbox is not None
        await state.sandbox.reset(key.workspace)
        return JSONResponse(
            {"reset": True, "workspace": key.workspace}, headers=headers
        )

    return handle


def _routes(state: _State) -> list[BaseRoute]:
    routes: list[BaseRoute] = []
    for route in routes_of():
        path = route.path
        for param in route.path_params:
            if param.slashes:
                path = path.replace("{" + param.name + "}", "{" + param.name + ":path}")
        if route.result.kind == "table":
            handler = _export_handler(state, route)
        else:
            handler = _operation_handler(state, route)
        endpoint = _guarded(state, handler, write=route.write)
        routes.append(
            StarletteRoute(
                path, endpoint, methods=[route.method], name=route.operation_id
            )
        )
    for route in KEY_ROUTES:
        endpoint = _guarded(
            state, _key_handler(state, route), write=route.write, admin=True
        )
        routes.append(
            StarletteRoute(
                route.path, endpoint, methods=[route.method], name=route.operation_id
            )
        )
    if state.sandbox is not None:
        reset = _guarded(state, _sandbox_reset_handler(state), write=True)
        routes.append(StarletteRoute("/sandbox/reset", reset, methods=["POST"]))
    return routes


async def _health(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


def _openapi_endpoint(document: dict[str, Any]) -> Callable[..., Awaitable[Response]]:
    async def openapi(request: Request) -> Response:
        return JSONResponse(document)

    return openapi


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    request_id = request_id_of(request)
    if exc.status_code == 404:
        message = f"no route {request.method} {request.url.path}; see /v1/openapi.json"
        return error_response(NotFound(message), request_id)
    if exc.status_code == 405:
        allow = (exc.headers or {}).get("Allow", "")
        message = (
            f"method {request.method} not allowed on {request.url.path}; use {allow}"
        )
        logger.info("request %s rejected: method_not_allowed", request_id)
        body = {
            "code": "method_not_allowed",
            "message": message,
            "request_id": request_id,
        }
        return JSONResponse({"error": body}, 405, headers=exc.headers)
    error = ValidationError(str(exc.detail))
    return error_response(error, request_id)


class RequestLogMiddleware:
    """Give each request an id, add ``X-Request-Id`` and log one INFO line."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = new_id("req")
        scope["omnitwin.request_id"] = request_id
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed_ms = (time.perf_counter() - started) * 1000
            logger.info(
                "%s %s %d %.1f ms %s",
                scope["method"],
                scope["path"],
                status,
                elapsed_ms,
                request_id,
            )


async def _reset_on_schedule(state: _State, minutes: float) -> None:
    while True:
        await asyncio.sleep(minutes * 60)
        if state.sandbox is not None:
            state.sandbox.reset_all()


def create_app(config: ServerConfig | None = None) -> Starlette:
    """Build the ASGI application of ``omnitwin serve``.

    Examples
    --------
    >>> app = create_app(ServerConfig(db=":memory:"))
    >>> sorted(route.path for route in app.routes)
    ['/v1']
    """
    config = config or ServerConfig()
    state = _State(config)
    document = build_openapi(sandbox=config.sandbox)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        state.open()
        logger.info(
            "omnitwin server started (db %s, sandbox %s, rate limit %d per %g s)",
            config.db,
            config.sandbox,
            config.rate_limit,
            config.rate_window,
        )
        task = None
        if config.sandbox and config.sandbox_reset_minutes:
            task = asyncio.create_task(
                _reset_on_schedule(state, config.sandbox_reset_minutes)
            )
        try:
            yield
        finally:
            if task is not None:
                task.cancel()
            state.close()
            logger.info("omnitwin server stopped")

    v1: list[BaseRoute] = [
        StarletteRoute("/health", _health, methods=["GET"]),
        StarletteRoute("/openapi.json", _openapi_endpoint(document), methods=["GET"]),
        *_routes(state),
    ]
    app = Starlette(
        routes=[Mount("/v1", routes=v1)],
        exception_handlers={HTTPException: _http_error},
        lifespan=lifespan,
    )
    app.add_middleware(RequestLogMiddleware)
    return app
