"""The ``omnitwin serve`` command, and registration of ``omnitwin keys``."""

from __future__ import annotations

import argparse
import errno
import logging
import math
import socket
import sys
from collections.abc import Callable
from typing import Any, TypeVar

from omnitwin.errors import ValidationError
from omnitwin.server._keys_cli import DEFAULT_DB, add_keys_command, local_actor

__all__ = ["add_server_commands"]

logger = logging.getLogger("omnitwin.server")

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
MAX_PORT = 65535

_N = TypeVar("_N", int, float)


def _number(
    text: str, parse: Callable[[str], _N], valid: Callable[[_N], bool], message: str
) -> _N:
    """Parse an option value with ``parse``; raise ``message`` unless ``valid``."""
    try:
        value = parse(text)
    except ValueError:
        raise argparse.ArgumentTypeError(message) from None
    if not valid(value):
        raise argparse.ArgumentTypeError(message)
    return value


def _positive_int(text: str) -> int:
    message = f"invalid number {text!r}; give a whole number of 1 or more"
    return _number(text, int, lambda value: value >= 1, message)


def _port(text: str) -> int:
    message = f"invalid port {text}; give 1 to {MAX_PORT}, or 0 to pick a free port"
    return _number(text, int, lambda value: 0 <= value <= MAX_PORT, message)


def _positive_float(text: str) -> float:
    message = f"invalid number {text!r}; give a positive number such as 60"
    # NaN and infinity parse as floats but break the rate limiter's sums.
    return _number(
        text, float, lambda value: math.isfinite(value) and value > 0, message
    )


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


def _bind(host: str, port: int) -> socket.socket:
    """Bind a TCP socket to ``host`` and ``port`` before anything else starts.

    Binding first turns a busy port into one error line, before the server
    opens the database and logs that it started.
    """
    try:
        family, kind, protocol, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except socket.gaierror as exc:
        raise ValidationError(
            f"invalid --host {host}: {exc.strerror}; pass an address of this "
            "machine, e.g. 127.0.0.1"
        ) from exc
    sock = socket.socket(family, kind, protocol)
    # The same option as uvicorn's own socket, so that a restarted server can
    # bind while connections of the previous one are in TIME_WAIT.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise ValidationError(_bind_error(host, port, exc)) from exc
    return sock


def _bind_error(host: str, port: int, exc: OSError) -> str:
    if exc.errno == errno.EADDRINUSE:
        return (
            f"port {port} on {host} is in use; pass --port with a free port, or "
            "stop the process that listens on it"
        )
    if exc.errno == errno.EACCES:
        return (
            f"permission denied to listen on port {port} on {host}; pass --port "
            "1024 or higher"
        )
    if exc.errno == errno.EADDRNOTAVAIL:
        return (
            f"{host} is not an address of this machine; pass --host with a local "
            "address, e.g. 127.0.0.1"
        )
    return f"failed to listen on port {port} on {host} ({exc}); check --host and --port"


def _url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    if sock.family == socket.AF_INET6:
        host = f"[{host}]"
    return f"http://{host}:{port}/v1"


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
    with _bind(args.host, args.port) as sock:
        logging.basicConfig(
            level=logging.INFO,
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
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
        logger.info("serving %s", _url(sock))
        server = uvicorn.Server(
            uvicorn.Config(
                create_app(config),
                log_config=None,
                access_log=False,
                timeout_graceful_shutdown=args.shutdown_timeout,
            )
        )
        server.run(sockets=[sock])
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
        "--port",
        type=_port,
        default=DEFAULT_PORT,
        help="TCP port, or 0 to pick a free one (default: %(default)s)",
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
