"""The ``omnitwin serve`` and ``omnitwin keys`` commands."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

__all__ = ["add_server_commands"]

logger = logging.getLogger("omnitwin.server")

DEFAULT_DB = "omnitwin.duckdb"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not a positive integer")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{value} is not a positive number")
    return value


def _ensure_sandbox_key(db: str) -> None:
    """Create and print a sandbox key when the database has no active one."""
    from omnitwin.engine.engine import open_engine
    from omnitwin.server._keys import KeyStore

    keys = KeyStore(open_engine(db).store)
    active = [k for k in keys.list() if k.kind == "sandbox" and k.revoked_at is None]
    if active:
        print(
            f"sandbox keys: {len(active)} active; list them with 'omnitwin keys list'"
        )
        return
    record, secret = keys.create("sandbox", name="sandbox", kind="sandbox")
    print(f"sandbox key {record.id} (workspace sandbox), shown once: {secret}")


def _cmd_serve(args: argparse.Namespace) -> int:
    try:
        import uvicorn

        from omnitwin.server._app import ServerConfig, create_app
    except ImportError as exc:
        message = (
            "omnitwin serve needs the server extra: "
            f"pip install 'omnitwin[server]' ({exc})"
        )
        print(f"omnitwin: error: {message}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if args.sandbox:
        _ensure_sandbox_key(args.db)
    config = ServerConfig(
        db=args.db,
        sandbox=args.sandbox,
        rate_limit=args.rate_limit,
        rate_window=args.rate_window_seconds,
        sandbox_reset_minutes=args.sandbox_reset_minutes,
    )
    logger.info("serving http://%s:%d/v1", args.host, args.port)
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(config),
            host=args.host,
            port=args.port,
            log_config=None,
            access_log=False,
            timeout_graceful_shutdown=args.shutdown_timeout,
        )
    )
    server.run()
    return 0


def _print_key(record: Any) -> None:
    state = f"revoked {record.revoked_at}" if record.revoked_at else "active"
    access = "read-only" if record.read_only else "read-write"
    print(
        f"{record.id}  {record.kind:<7} {record.workspace:<16} {access:<10} "
        f"{state:<10} {record.name or ''}"
    )


def _cmd_keys(args: argparse.Namespace) -> int:
    from omnitwin.engine.engine import open_engine
    from omnitwin.server._keys import KeyKind, KeyStore

    keys = KeyStore(open_engine(args.db).store)
    if args.action == "create":
        kind: KeyKind = "sandbox" if args.sandbox else "live"
        record, secret = keys.create(
            args.workspace, read_only=args.read_only, name=args.name, kind=kind
        )
        print(f"created key {record.id} for workspace {record.workspace}")
        print("the key is shown only once; store it now:")
        print(secret)
    elif args.action == "revoke":
        _print_key(keys.revoke(args.key_id))
    else:
        for record in keys.list(args.workspace):
            _print_key(record)
    return 0


def _add_serve(commands: Any) -> None:
    serve = commands.add_parser("serve", help="serve the REST and SSE API under /v1")
    serve.add_argument(
        "--db", default=DEFAULT_DB, help="DuckDB file to serve (default: %(default)s)"
    )
    serve.add_argument(
        "--host",
        default=DEFAULT_HOST,
        help="address to listen on (default: %(default)s)",
    )
    serve.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help="TCP port (default: %(default)s)"
    )
    serve.add_argument(
        "--sandbox",
        action="store_true",
        help="serve seeded sample data per workspace; accepts ot_sandbox_ keys only",
    )
    serve.add_argument(
        "--sandbox-reset-minutes",
        type=_positive_float,
        help="reset every sandbox workspace every this many minutes",
    )
    serve.add_argument(
        "--rate-limit",
        type=_positive_int,
        default=1000,
        help="requests per workspace in each window (default: %(default)s)",
    )
    serve.add_argument(
        "--rate-window-seconds",
        type=_positive_float,
        default=60.0,
        help="length of the rate-limit window in seconds (default: %(default)s)",
    )
    serve.add_argument(
        "--shutdown-timeout",
        type=_positive_float,
        default=10.0,
        help="seconds to let open requests finish on shutdown (default: %(default)s)",
    )
    serve.set_defaults(handler=_cmd_serve)


def _add_keys(commands: Any) -> None:
    keys = commands.add_parser(
        "keys", help="create, revoke and list API keys (stop the server first)"
    )
    actions = keys.add_subparsers(dest="action", required=True)
    create = actions.add_parser("create", help="create a key and print it once")
    create.add_argument("--workspace", required=True, help="workspace of the key")
    create.add_argument("--read-only", action="store_true", help="reject writes")
    create.add_argument("--name", help="a label for the key")
    create.add_argument(
        "--sandbox", action="store_true", help="create an ot_sandbox_ key"
    )
    revoke = actions.add_parser("revoke", help="revoke a key by id")
    revoke.add_argument("key_id", help="key id, e.g. key_01J9...")
    listing = actions.add_parser("list", help="list keys without their secrets")
    listing.add_argument("--workspace", help="only keys of this workspace")
    for parser in (create, revoke, listing):
        parser.add_argument(
            "--db", default=DEFAULT_DB, help="DuckDB file (default: %(default)s)"
        )
    keys.set_defaults(handler=_cmd_keys)


def add_server_commands(commands: Any) -> None:
    """Add the ``serve`` and ``keys`` subcommands to the ``omnitwin`` parser."""
    _add_serve(commands)
    _add_keys(commands)
