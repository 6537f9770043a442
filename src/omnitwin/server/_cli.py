"""The ``omnitwin serve`` command, and registration of ``omnitwin keys``."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

from omnitwin.server._keys_cli import DEFAULT_DB, add_keys_command, local_actor

__all__ = ["add_server_commands"]

logger = logging.getLogger("omnitwin.server")

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

    engine = open_engine(db)
    keys = KeyStore(engine.store, engine.audit)
    active = [k for k in keys.list() if k.kind == "sandbox" and k.revoked_at is None]
    if active:
        print(
            f"sandbox keys: {len(active)} active; list them with 'omnitwin keys list'"
        )
        return
    record, secret = keys.create(
        "sandbox", name="sandbox", kind="sandbox", actor=local_actor()
    )
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


def add_server_commands(commands: Any) -> None:
    """Add the ``serve`` and ``keys`` subcommands to the ``omnitwin`` parser."""
    _add_serve(commands)
    add_keys_command(commands)
