"""The HTTP backend: client operations sent to an omnitwin server over httpx.

Requests are built from the routes table by I/O-free functions
(:func:`build_request`, :func:`decode_response`, :func:`retry_delay`), and two
short paths send them: :meth:`HttpBackend.call` with ``httpx.Client`` and
:meth:`HttpBackend.acall` with ``httpx.AsyncClient``. Error bodies become the
same exception classes that the local backend raises, and JSON results become
the same records.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

from omnitwin import __version__
from omnitwin.client._export import ExportDecoder, export_accept
from omnitwin.client._routes import Route, route_for_call
from omnitwin.client._sse import aiter_envelopes, iter_envelopes
from omnitwin.errors import (
    OmniTwinError,
    RateLimited,
    ServerError,
    ValidationError,
    error_class_for_code,
)
from omnitwin.models import Page

__all__ = ["HttpBackend", "RequestSpec", "build_request", "decode_response"]

logger = logging.getLogger("omnitwin.client")

MAX_RETRY_WAIT_SECONDS = 30.0
MAX_POLL_SECONDS = 1.0
# Bytes of an export body that the async client decodes in one worker thread.
_DECODE_BYTES = 8 * 1_048_576

# Waits have no route, so the backend polls the job instead of holding a request
# open for up to the whole timeout.
_POLLED_WAITS = {"jobs.wait": "jobs.get", "imports.wait": "imports.get"}


@dataclass(frozen=True, slots=True)
class RequestSpec:
    """An HTTP request to send: method, path under the base URL, query, body."""

    method: str
    path: str
    query: dict[str, Any]
    json: dict[str, Any] | None
    route: Route
    form: dict[str, str] | None = None
    files: dict[str, tuple[str, bytes]] | None = None

    @property
    def idempotent(self) -> bool:
        """Whether sending the request twice is safe (GET only)."""
        return self.method == "GET"


def _query_text(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def _form_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value)
    return str(value)


def _as_multipart(spec: RequestSpec) -> RequestSpec:
    """Move the JSON body of an upload route into form fields and file parts."""
    form: dict[str, str] = {}
    files: dict[str, tuple[str, bytes]] = {}
    body = spec.json or {}
    for name, value in body.items():
        param = spec.route.param(name)
        if param is not None and param.type == "binary":
            filename = str(body.get("filename") or name)
            files[name] = (filename, bytes(value))
        elif value is not None:
            form[name] = _form_text(value)
    return RequestSpec(
        spec.method, spec.path, spec.query, None, spec.route, form, files
    )


def build_request(operation: str, params: dict[str, Any]) -> RequestSpec:
    """Return the request of one operation call, placing each parameter.

    Raises
    ------
    ValidationError
        ``params`` lacks the path parameters of every route of the operation.
    """
    try:
        route = route_for_call(operation, params)
    except ValueError as exc:
        raise ValidationError(str(exc)) from exc
    path = route.path
    query: dict[str, Any] = {}
    body: dict[str, Any] | None = {} if route.method != "GET" else None
    for name, value in params.items():
        param = route.param(name)
        if param is not None and param.location == "path":
            safe = "/:" if param.slashes else ""
            path = path.replace("{" + name + "}", quote(str(value), safe=safe))
        elif param is not None and param.location == "query":
            if value is not None:
                query[name] = _query_text(value)
        elif body is not None and name == route.rest_into and isinstance(value, dict):
            body.update(value)
        elif body is not None:
            body[name] = value
        else:
            # Unknown parameters go where the server reports them by name.
            query[name] = _query_text(value)
    spec = RequestSpec(route.method, path, query, body, route)
    if route.content_type == "multipart/form-data":
        return _as_multipart(spec)
    return spec


def _error_from(status: int, headers: httpx.Headers, body: Any) -> OmniTwinError:
    error = body.get("error") if isinstance(body, dict) else None
    request_id = headers.get("x-request-id")
    if not isinstance(error, dict):
        message = f"HTTP {status} from the omnitwin server without an error body"
        return ServerError(message, request_id=request_id)
    code = str(error.get("code", "error"))
    message = str(error.get("message", f"HTTP {status}"))
    details = error.get("details") if isinstance(error.get("details"), dict) else None
    request_id = error.get("request_id") or request_id
    cls = error_class_for_code(code)
    if cls is RateLimited:
        retry_after = _retry_after(headers) or 1.0
        return RateLimited(
            message, retry_after=retry_after, details=details, request_id=request_id
        )
    return cls(message, details=details, request_id=request_id)


def _retry_after(headers: httpx.Headers) -> float | None:
    text = headers.get("retry-after", "")
    try:
        return max(0.0, float(text))
    except ValueError:
        return None


def decode_response(spec: RequestSpec, response: httpx.Response) -> Any:
    """Return the record(s) of a response, or raise its error class."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.status_code >= 400:
        raise _error_from(response.status_code, response.headers, body)
    result = spec.route.result
    if result.kind == "record" and result.model is not None:
        return result.model.from_dict(body)
    if result.kind == "page" and result.model is not None:
        return Page.from_dict(body, result.model)
    if result.kind == "list" and result.model is not None:
        return [result.model.from_dict(item) for item in body]
    if result.kind == "groups" and result.model is not None:
        model = result.model
        return {key: [model.from_dict(i) for i in items] for key, items in body.items()}
    return body


def retry_delay(
    spec: RequestSpec,
    attempt: int,
    *,
    response: httpx.Response | None = None,
    error: Exception | None = None,
    max_retries: int = 3,
) -> float | None:
    """Return how long to wait before retrying, or ``None`` to give up.

    A 429 is retried for every method, because the server did not run the
    request, after its ``Retry-After`` (at most 30 s). A connection error is
    retried for GET only, with exponential backoff from 0.5 s.
    """
    if attempt >= max_retries:
        return None
    if response is not None and response.status_code == 429:
        wait = _retry_after(response.headers)
        return min(MAX_RETRY_WAIT_SECONDS, 1.0 if wait is None else wait)
    if isinstance(error, httpx.TransportError) and spec.idempotent:
        backoff: float = 0.5 * 2**attempt
        return min(MAX_RETRY_WAIT_SECONDS, backoff)
    return None


def _base_url(url: str) -> str:
    url = url.rstrip("/")
    return url if url.endswith("/v1") else url + "/v1"


class HttpBackend:
    """Run client operations on a remote omnitwin server.

    Parameters
    ----------
    base_url : str
        The API root, e.g. ``"http://127.0.0.1:8000/v1"``; ``/v1`` is added
        when missing.
    api_key : str, optional
        Sent as ``Authorization: Bearer <key>``.
    timeout : float
        Seconds to wait for a response.
    max_retries : int
        Retries after a 429 or, for GET, a connection error.
    """

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        timeout: float = 30.0,
        max_retries: int = 3,
    ) -> None:
        self.base_url = _base_url(base_url)
        self.max_retries = max_retries
        self._headers = {"User-Agent": f"omnitwin/{__version__}"}
        if api_key:
            self._headers["Authorization"] = f"Bearer {api_key}"
        self._timeout = timeout
        self._sync: httpx.Client | None = None
        self._async: httpx.AsyncClient | None = None
        self._async_loop: asyncio.AbstractEventLoop | None = None

    def _sync_client(self) -> httpx.Client:
        if self._sync is None:
            self._sync = httpx.Client(
                base_url=self.base_url, headers=self._headers, timeout=self._timeout
            )
        return self._sync

    def _async_client(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        if self._async is None or self._async_loop is not loop:
            # An httpx.AsyncClient's connections belong to one event loop.
            self._async = httpx.AsyncClient(
                base_url=self.base_url, headers=self._headers, timeout=self._timeout
            )
            self._async_loop = loop
        return self._async

    def _log_retry(self, spec: RequestSpec, wait: float, reason: str) -> None:
        logger.info(
            "retrying %s %s in %.1f s: %s", spec.method, spec.path, wait, reason
        )

    def _send(
        self,
        spec: RequestSpec,
        *,
        stream: bool = False,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        client = self._sync_client()
        attempt = 0
        while True:
            request = client.build_request(
                spec.method,
                spec.path,
                params=spec.query,
                json=spec.json,
                data=spec.form,
                files=spec.files,
                headers=headers,
            )
            try:
                response = client.send(request, stream=stream)
            except httpx.TransportError as exc:
                wait = retry_delay(
                    spec, attempt, error=exc, max_retries=self.max_retries
                )
                if wait is None:
                    raise _transport_error(self.base_url, spec, exc) from exc
                self._log_retry(spec, wait, str(exc))
            else:
                wait = retry_delay(
                    spec, attempt, response=response, max_retries=self.max_retries
                )
                if wait is None:
                    return response
                response.close()
                self._log_retry(spec, wait, "rate limited")
            time.sleep(wait)
            attempt += 1

    async def _asend(
        self,
        spec: RequestSpec,
        *,
        stream: bool = False,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        client = self._async_client()
        attempt = 0
        while True:
            request = client.build_request(
                spec.method,
                spec.path,
                params=spec.query,
                json=spec.json,
                data=spec.form,
                files=spec.files,
                headers=headers,
            )
            try:
                response = await client.send(request, stream=stream)
            except httpx.TransportError as exc:
                wait = retry_delay(
                    spec, attempt, error=exc, max_retries=self.max_retries
                )
                if wait is None:
                    raise _transport_error(self.base_url, spec, exc) from exc
                self._log_retry(spec, wait, str(exc))
            else:
                wait = retry_delay(
                    spec, attempt, response=response, max_retries=self.max_retries
                )
                if wait is None:
                    return response
                await response.aclose()
                self._log_retry(spec, wait, "rate limited")
            await asyncio.sleep(wait)
            attempt += 1

    def call(self, operation: str, params: dict[str, Any]) -> Any:
        """Send one operation and return its result."""
        if operation in _POLLED_WAITS:
            return self._wait(operation, params)
        spec = build_request(operation, params)
        if spec.route.result.kind == "table":
            return self._export(spec)
        return decode_response(spec, self._send(spec))

    async def acall(self, operation: str, params: dict[str, Any]) -> Any:
        """Send one operation without blocking the event loop; return its result."""
        if operation in _POLLED_WAITS:
            return await self._await(operation, params)
        spec = build_request(operation, params)
        if spec.route.result.kind == "table":
            return await self._aexport(spec)
        return decode_response(spec, await self._asend(spec))

    def _export(self, spec: RequestSpec) -> Any:
        """Stream a ``table`` route's body into a DataFrame."""
        headers = {"Accept": export_accept()}
        response = self._send(spec, stream=True, headers=headers)
        try:
            if response.status_code >= 400:
                response.read()
                decode_response(spec, response)
            try:
                decoder = ExportDecoder(response.headers.get("content-type", ""))
                for chunk in response.iter_bytes():
                    decoder.feed(chunk)
                return decoder.frame()
            except (httpx.TransportError, ValueError) as exc:
                raise _export_error(spec, exc) from exc
        finally:
            response.close()

    async def _aexport(self, spec: RequestSpec) -> Any:
        """Stream a ``table`` route's body into a DataFrame without blocking.

        Decoding runs in worker threads, on about 8 MB of the body at a time.
        """
        headers = {"Accept": export_accept()}
        response = await self._asend(spec, stream=True, headers=headers)
        try:
            if response.status_code >= 400:
                await response.aread()
                decode_response(spec, response)
            try:
                return await _adecode_export(response)
            except (httpx.TransportError, ValueError) as exc:
                raise _export_error(spec, exc) from exc
        finally:
            await response.aclose()

    def _wait(self, operation: str, params: dict[str, Any]) -> Any:
        """Poll a job until it finishes or waits for review, like the engine."""
        job_id, timeout = params["id"], float(params.get("timeout", 600.0))
        deadline = time.monotonic() + timeout
        delay = 0.05
        while True:
            job = self.call(_POLLED_WAITS[operation], {"id": job_id})
            if _settled(job):
                return job
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"job {job_id} still {job.status} after {timeout} s")
            delay = min(delay * 2, MAX_POLL_SECONDS)
            time.sleep(min(delay, left))

    async def _await(self, operation: str, params: dict[str, Any]) -> Any:
        """Poll a job like :meth:`_wait` without blocking the event loop."""
        job_id, timeout = params["id"], float(params.get("timeout", 600.0))
        deadline = time.monotonic() + timeout
        delay = 0.05
        while True:
            job = await self.acall(_POLLED_WAITS[operation], {"id": job_id})
            if _settled(job):
                return job
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"job {job_id} still {job.status} after {timeout} s")
            delay = min(delay * 2, MAX_POLL_SECONDS)
            await asyncio.sleep(min(delay, left))

    def stream(
        self, operation: str, params: dict[str, Any]
    ) -> Iterator[dict[str, Any]]:
        """Send a streaming operation and yield its event envelopes.

        Raises :class:`~omnitwin.errors.StreamError` when the stream ends
        without its terminal event and ``[DONE]``.
        """
        spec = build_request(operation, params)
        client = self._sync_client()
        headers = {"Accept": "text/event-stream"}
        request = client.build_request(
            spec.method, spec.path, params=spec.query, json=spec.json, headers=headers
        )
        response = client.send(request, stream=True)
        try:
            if response.status_code >= 400:
                response.read()
                decode_response(spec, response)
            yield from iter_envelopes(response.iter_bytes())
        finally:
            response.close()

    async def astream(
        self, operation: str, params: dict[str, Any]
    ) -> AsyncIterator[dict[str, Any]]:
        """Send a streaming operation and yield its envelopes asynchronously."""
        spec = build_request(operation, params)
        client = self._async_client()
        headers = {"Accept": "text/event-stream"}
        request = client.build_request(
            spec.method, spec.path, params=spec.query, json=spec.json, headers=headers
        )
        response = await client.send(request, stream=True)
        try:
            if response.status_code >= 400:
                await response.aread()
                decode_response(spec, response)
            async for envelope in aiter_envelopes(response.aiter_bytes()):
                yield envelope
        finally:
            await response.aclose()

    def close(self) -> None:
        """Close the connection pools."""
        if self._sync is not None:
            self._sync.close()
            self._sync = None
        if self._async is not None:
            client, self._async = self._async, None
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                return
            # close() is synchronous, so the async pool closes in a task.
            self._closing = loop.create_task(client.aclose())

    async def aclose(self) -> None:
        """Close the connection pools from async code."""
        if self._async is not None:
            client, self._async = self._async, None
            await client.aclose()
        self.close()


def _settled(job: Any) -> bool:
    return bool(job.done) or job.status == "awaiting_review"


async def _adecode_export(response: httpx.Response) -> Any:
    decoder = ExportDecoder(response.headers.get("content-type", ""))
    pending: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        pending.append(chunk)
        size += len(chunk)
        if size >= _DECODE_BYTES:
            await asyncio.to_thread(decoder.feed, b"".join(pending))
            pending, size = [], 0
    await asyncio.to_thread(decoder.feed, b"".join(pending))
    return await asyncio.to_thread(decoder.frame)


def _export_error(spec: RequestSpec, exc: Exception) -> OmniTwinError:
    """Return the error of an export body that broke off or could not be read."""
    return ServerError(f"{spec.method} {spec.path}: the export failed to load: {exc}")


def _transport_error(
    base_url: str, spec: RequestSpec, exc: httpx.TransportError
) -> OmniTwinError:
    message = (
        f"{spec.method} {base_url}{spec.path} failed: {exc}; check that an "
        f"omnitwin server runs at {base_url}"
    )
    return ServerError(message, details={"url": base_url})
