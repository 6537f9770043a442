"""The key management routes under ``/v1/keys``, open to admin keys only.

They let an operator create, list and revoke keys while ``omnitwin serve``
holds the database file's write lock. The routes use the ``Route`` type of
the client's routes table, so the server checks their parameters and builds
their OpenAPI entries like any other route. They are not in that table,
because the Python client has no key operations.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from omnitwin.client._routes import Param, ResultSpec, Route
from omnitwin.errors import Conflict
from omnitwin.server._keys import ApiKey, CreatedApiKey, KeyKind, KeyStore

__all__ = ["KEY_ROUTES", "run_key_operation"]

logger = logging.getLogger("omnitwin.server")

KEY_ROUTES: tuple[Route, ...] = (
    Route(
        "keys.create",
        "POST",
        "/keys",
        (
            Param(
                "workspace",
                "string",
                "body",
                nullable=True,
                description="workspace of the key; omit it for an admin key",
            ),
            Param(
                "read_only",
                "boolean",
                "body",
                description="the key gets 403 on writes (default false)",
            ),
            Param("name", "string", "body", nullable=True, description="a label"),
            Param(
                "admin",
                "boolean",
                "body",
                description="create an admin key, which manages keys and reads "
                "no workspace data (default false)",
            ),
        ),
        ResultSpec("record", CreatedApiKey),
        status=201,
        write=True,
        summary="Create an API key; the response has its secret, shown only once",
    ),
    Route(
        "keys.list",
        "GET",
        "/keys",
        (
            Param(
                "workspace",
                "string",
                "query",
                description="only keys of this workspace; * lists admin keys",
            ),
            Param(
                "page",
                "integer",
                "query",
                minimum=1,
                maximum=1_000_000,
                description="page number, from 1",
            ),
            Param(
                "per_page",
                "integer",
                "query",
                minimum=1,
                maximum=200,
                description="items per page",
            ),
        ),
        ResultSpec("page", ApiKey),
        summary="List API keys without their secrets, oldest first",
    ),
    Route(
        "keys.revoke",
        "DELETE",
        "/keys/{id}",
        (Param("id", "string", "path", True, description="key id, e.g. key_01J9..."),),
        ResultSpec("record", ApiKey),
        write=True,
        summary="Revoke an API key and return it; the key gets 401 from then on",
    ),
)


def _create(
    keys: KeyStore, caller: ApiKey, params: dict[str, Any], kind: KeyKind
) -> CreatedApiKey:
    record, secret = keys.create(
        params.get("workspace"),
        read_only=params.get("read_only", False),
        name=params.get("name"),
        kind=kind,
        admin=params.get("admin", False),
        actor=caller.actor,
    )
    logger.info(
        "API key %s (%s, workspace %s) created by %s",
        record.id,
        record.access,
        record.workspace,
        caller.actor,
    )
    return CreatedApiKey.of(record, secret)


def _revoke(
    keys: KeyStore, caller: ApiKey, params: dict[str, Any], kind: KeyKind
) -> ApiKey:
    key_id = params["id"]
    if key_id == caller.id:
        # Revoking the calling key could leave the server without an admin
        # key, and creating one then needs the server stopped.
        raise Conflict(
            f"API key {key_id} cannot revoke itself; revoke it with another "
            "admin key (create one with POST /v1/keys and admin true)",
            details={"id": key_id},
        )
    record = keys.revoke(key_id, actor=caller.actor)
    logger.info("API key %s revoked by %s", record.id, caller.actor)
    return record


def _list(keys: KeyStore, caller: ApiKey, params: dict[str, Any], kind: KeyKind) -> Any:
    return keys.page(
        params.get("workspace"),
        page=params.get("page", 1),
        per_page=params.get("per_page", 50),
    )


_OPERATIONS: dict[str, Callable[[KeyStore, ApiKey, dict[str, Any], KeyKind], Any]] = {
    "keys.create": _create,
    "keys.list": _list,
    "keys.revoke": _revoke,
}


def run_key_operation(
    keys: KeyStore,
    caller: ApiKey,
    operation: str,
    params: dict[str, Any],
    kind: KeyKind,
) -> Any:
    """Run one ``keys.*`` operation for the admin key ``caller``.

    New keys get ``kind``, the kind of key that the server accepts. Every
    change is audited with the caller's actor, ``key:<admin key id>``.
    """
    return _OPERATIONS[operation](keys, caller, params, kind)
