"""The ``omnitwin keys`` command: create, list and revoke API keys.

With ``--db`` the command writes the database file directly, which works only
while no server runs on it, because a running ``omnitwin serve`` holds the
file's write lock. With ``--url`` and an admin key it goes through the running
server's ``/v1/keys`` routes instead.
"""

from __future__ import annotations

import argparse
import os
import shlex
from typing import Any

from omnitwin.errors import StoreLocked, ValidationError

__all__ = ["DEFAULT_DB", "add_keys_command", "local_actor"]

DEFAULT_DB = "omnitwin.duckdb"
# The address of 'omnitwin serve' with its default host and port, shown in
# the example command of the locked-file error.
EXAMPLE_URL = "http://127.0.0.1:8000/v1"
API_KEY_ENV = "OMNITWIN_API_KEY"


def _print_key(record: Any) -> None:
    state = f"revoked {record.revoked_at}" if record.revoked_at else "active"
    print(
        f"{record.id}  {record.kind:<7} {record.workspace:<16} {record.access:<15} "
        f"{state:<10} {record.name or ''}"
    )


def _print_created(record: Any, secret: str) -> None:
    if record.admin:
        print(f"created admin key {record.id} ({record.access})")
    else:
        print(
            f"created key {record.id} for workspace {record.workspace} "
            f"({record.access})"
        )
    print("the key is shown only once; store it now:")
    print(secret)


def _remote_command(args: argparse.Namespace) -> str:
    """Return the ``--url`` form of the command in ``args``, for error messages."""
    words = ["omnitwin", "keys", args.action, "--url", EXAMPLE_URL]
    words += ["--api-key", "ADMIN_KEY"]
    if args.action == "create":
        if args.admin:
            words.append("--admin")
        else:
            words += ["--workspace", args.workspace]
        if args.read_only:
            words.append("--read-only")
        if args.name is not None:
            words += ["--name", args.name]
    elif args.action == "revoke":
        words.append(args.key_id)
    elif args.workspace is not None:
        words += ["--workspace", args.workspace]
    return shlex.join(words)


def _locked_error(args: argparse.Namespace, db: str, exc: StoreLocked) -> StoreLocked:
    create_admin = shlex.join(["omnitwin", "keys", "create", "--admin", "--db", db])
    message = (
        f"the database {db} is locked by another process, such as a running "
        "'omnitwin serve', so 'omnitwin keys' cannot write it. Manage keys "
        "through that server with an admin key (use the server's address; "
        f"set {API_KEY_ENV} instead of --api-key to keep the key out of the "
        f"shell history):\n  {_remote_command(args)}\nWithout an admin key, "
        f"stop the server once and run: {create_admin}"
    )
    return StoreLocked(message, details={"path": db})


def _run_local(args: argparse.Namespace) -> int:
    from omnitwin.engine.engine import open_engine
    from omnitwin.server._keys import KeyKind, KeyStore

    db = args.db or DEFAULT_DB
    try:
        engine = open_engine(db)
    except StoreLocked as exc:
        raise _locked_error(args, db, exc) from exc
    keys = KeyStore(engine.store, engine.audit)
    actor = local_actor()
    if args.action == "create":
        kind: KeyKind = "sandbox" if args.sandbox else "live"
        record, secret = keys.create(
            args.workspace,
            read_only=args.read_only,
            name=args.name,
            kind=kind,
            admin=args.admin,
            actor=actor,
        )
        _print_created(record, secret)
    elif args.action == "revoke":
        _print_key(keys.revoke(args.key_id, actor=actor))
    else:
        for record in keys.list(args.workspace):
            _print_key(record)
    return 0


def local_actor() -> str:
    """Return the audit actor of key changes made on this machine, ``user:<login>``."""
    import getpass

    try:
        return f"user:{getpass.getuser()}"
    except (KeyError, OSError):
        # getuser() raises when no login name is set and the uid has no
        # passwd entry, as in some containers.
        return "user:local"


def _run_remote(args: argparse.Namespace) -> int:
    from omnitwin.server._keys_remote import KeyAdminClient

    api_key = args.api_key or os.environ.get(API_KEY_ENV, "").strip()
    if not api_key:
        raise ValidationError(
            f"--url needs an admin key; pass --api-key or set {API_KEY_ENV}"
        )
    if args.db is not None:
        raise ValidationError("use --db or --url, not both")
    if args.action == "create" and args.sandbox:
        raise ValidationError(
            "--sandbox applies to --db only; a server creates keys of the kind "
            "it accepts (ot_sandbox_ keys when it runs with --sandbox)"
        )
    with KeyAdminClient(args.url, api_key) as client:
        if args.action == "create":
            created = client.create(
                args.workspace,
                read_only=args.read_only,
                name=args.name,
                admin=args.admin,
            )
            _print_created(created, created.secret)
        elif args.action == "revoke":
            _print_key(client.revoke(args.key_id))
        else:
            for record in client.list(args.workspace):
                _print_key(record)
    return 0


def _cmd_keys(args: argparse.Namespace) -> int:
    if args.url is not None:
        return _run_remote(args)
    return _run_local(args)


def add_keys_command(commands: Any) -> None:
    """Add the ``keys`` subcommand to the ``omnitwin`` parser."""
    keys = commands.add_parser(
        "keys",
        help="create, revoke and list API keys, in a database file (--db) or "
        "through a running server (--url)",
    )
    actions = keys.add_subparsers(dest="action", required=True)

    create = actions.add_parser("create", help="create a key and print it once")
    scope = create.add_mutually_exclusive_group(required=True)
    scope.add_argument("--workspace", help="workspace of the key")
    scope.add_argument(
        "--admin",
        action="store_true",
        help="create an admin key, which manages keys of every workspace "
        "through /v1/keys and reads no workspace data",
    )
    create.add_argument("--read-only", action="store_true", help="reject writes")
    create.add_argument("--name", help="a label for the key")
    create.add_argument(
        "--sandbox", action="store_true", help="create an ot_sandbox_ key (--db only)"
    )

    revoke = actions.add_parser("revoke", help="revoke a key by id")
    revoke.add_argument("key_id", help="key id, e.g. key_01J9...")

    listing = actions.add_parser("list", help="list keys without their secrets")
    listing.add_argument(
        "--workspace", help="only keys of this workspace; * lists admin keys"
    )

    for parser in (create, revoke, listing):
        parser.add_argument(
            "--db",
            help=f"DuckDB file to write while no server runs on it (default: "
            f"{DEFAULT_DB})",
        )
        parser.add_argument(
            "--url",
            help="base URL of a running server, e.g. http://127.0.0.1:8000/v1; "
            "needs an admin key",
        )
        parser.add_argument(
            "--api-key",
            help=f"admin key for --url (default: the {API_KEY_ENV} environment "
            "variable)",
        )
    keys.set_defaults(handler=_cmd_keys)
