"""Key management through a running server's ``/v1/keys`` routes.

``omnitwin keys ... --url URL`` uses :class:`KeyAdminClient`, because a
running server holds the write lock of its database file. Requests are built
from :data:`~omnitwin.server._admin.KEY_ROUTES` and decoded by the HTTP
backend's functions, so errors become the same exception classes.
"""

from __future__ import annotations

import logging
import time
from typing import Any
from urllib.parse import quote

import httpx

from omnitwin import __version__
from omnitwin.client._http import RequestSpec, decode_response, retry_delay
from omnitwin.client._routes import Route
from omnitwin.errors import ServerError
from omnitwin.models import Page
from omnitwin.server._admin import KEY_ROUTES
from omnitwin.server._keys import ApiKey, CreatedApiKey

__all__ = ["KeyAdminClient", "base_url"]

logger = logging.getLogger("omnitwin.client")

_ROUTES = {route.operation: route for route in KEY_ROUTES}
_MAX_PER_PAGE = 200


def base_url(url: str) -> str:
    """Return ``url`` ending in ``/v1``, the prefix of every route."""
    url = url.rstrip("/")
    return url if url.endswith("/v1") else url + "/v1"


class KeyAdminClient:
    """Create, list and revoke keys on a server with an admin key.

    A 429 is retried after its ``Retry-After`` (at most 30 s, 3 times),
    because the server did not run the request.
    """

    def __init__(
        self,
        url: str,
        api_key: str,
        *,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = base_url(url)
        self._http = httpx.Client(
            base_url=self.url,
            headers={
                "Authorization": f"Bearer {api_key}",
                "User-Agent": f"omnitwin-keys/{__version__}",
            },
            timeout=timeout,
            transport=transport,
        )

    def __enter__(self) -> KeyAdminClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._http.close()

    def create(
        self,
        workspace: str | None,
        *,
        read_only: bool = False,
        name: str | None = None,
        admin: bool = False,
    ) -> CreatedApiKey:
        """Create a key and return it with its secret (shown only once)."""
        body: dict[str, Any] = {"read_only": read_only, "admin": admin}
        if workspace is not None:
            body["workspace"] = workspace
        if name is not None:
            body["name"] = name
        result: CreatedApiKey = self._call("keys.create", "/keys", body=body)
        return result

    def list(self, workspace: str | None = None) -> list[ApiKey]:
        """Return every key, oldest first, optionally of one workspace."""
        keys: list[ApiKey] = []
        page_number = 1
        while True:
            query: dict[str, Any] = {"page": page_number, "per_page": _MAX_PER_PAGE}
            if workspace is not None:
                query["workspace"] = workspace
            page: Page[ApiKey] = self._call("keys.list", "/keys", query=query)
            keys.extend(page.data)
            if page_number >= page.pages or not page.data:
                return keys
            page_number += 1

    def revoke(self, key_id: str) -> ApiKey:
        """Revoke a key by id and return it."""
        path = "/keys/" + quote(key_id, safe="")
        result: ApiKey = self._call("keys.revoke", path)
        return result

    def _call(
        self,
        operation: str,
        path: str,
        *,
        query: dict[str, Any] | None = None,
        body: dict[str, Any] | None = None,
    ) -> Any:
        route: Route = _ROUTES[operation]
        spec = RequestSpec(route.method, path, query or {}, body, route)
        attempt = 0
        while True:
            try:
                response = self._http.request(
                    spec.method, spec.path, params=spec.query, json=spec.json
                )
            except httpx.TransportError as exc:
                message = (
                    f"{spec.method} {self.url}{spec.path} failed: {exc}; check "
                    "that 'omnitwin serve' is running and that --url is its "
                    "address, e.g. http://127.0.0.1:8000/v1"
                )
                raise ServerError(message) from exc
            wait = retry_delay(spec, attempt, response=response)
            if response.status_code != 429 or wait is None:
                return decode_response(spec, response)
            logger.warning(
                "%s %s got 429; retrying in %.1f s", spec.method, spec.path, wait
            )
            time.sleep(wait)
            attempt += 1
