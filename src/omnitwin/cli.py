"""The ``omnitwin`` command line.

``omnitwin demo`` builds a twin of the generated sample network and prints
what it holds; the ``subnets`` and ``audit`` commands work on any database.
Errors print one line to standard error and exit with status 2 (bad input) or
1 (anything else).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from omnitwin import __version__
from omnitwin.cli_import import add_import_command
from omnitwin.client import Client
from omnitwin.engine import ingest
from omnitwin.errors import OmniTwinError, ValidationError
from omnitwin.sample import SampleNetwork, generate_fabric

__all__ = ["load_sample", "main"]

DEFAULT_DB = "omnitwin.duckdb"


def _print_json(value: Any) -> None:
    data = value.to_dict() if hasattr(value, "to_dict") else value
    print(json.dumps(data, indent=2, sort_keys=True))


def _count(value: int) -> str:
    return f"{value:,}" if value < 10**9 else f"2^{value.bit_length() - 1}"


def load_sample(client: Client, network: SampleNetwork) -> int:
    """Create the sample network's subnets through ``client``; return the count.

    Subnets that already exist are left as they are, so loading twice is safe.
    """
    created = 0
    existing = {s.cidr for s in client.subnets.iter()}
    for subnet in network.subnets:
        if subnet.cidr in existing:
            continue
        client.subnets.create(
            subnet.cidr,
            purpose=subnet.purpose,
            is_container=subnet.is_container,
            status=subnet.status,
            vlan_id=subnet.vlan_id,
            tags=subnet.tags,
            owner=subnet.owner,
            intent="load generated sample network",
        )
        created += 1
    return created


def _cmd_demo(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    network = generate_fabric(
        sites=args.sites,
        spines=args.spines,
        leaves=args.leaves,
        servers_per_leaf=args.servers,
    )
    with Client(f"local:{args.db}") as client:
        created = load_sample(client, network)
        summary = network.summary()
        print(f"omnitwin {__version__}: sample twin in {args.db}")
        print(
            f"  sites {summary['sites']}, devices {summary['devices']} "
            f"{summary['roles']}, links {summary['links']}"
        )
        print(f"  subnets: {created} created, {client.subnets.list().total} stored")
        print("\nSite blocks (utilization of allocated and reserved children):")
        for site_block in client.subnets.list(purpose="site block", vrf="global"):
            detail = client.subnets.get(site_block.id)
            print(
                f"  {site_block.cidr:<22} {site_block.tags.get('region', ''):<14} "
                f"{detail.used_ips:>7}/{detail.total_ips:<7} "
                f"{detail.utilization:6.1%}"
            )
        first_site = network.sites[0]
        pool = next(iter(client.subnets.list(purpose=f"{first_site} service pool")))
        free = client.subnets.available(24, subnet_id=pool.id, limit=4)
        print(
            f"\nFree /24 blocks in {pool.cidr} ({first_site} service pool): "
            f"{free.total_free} in all; first {', '.join(free.blocks)}"
        )
        allocated = client.subnets.allocate(
            24,
            subnet_id=pool.id,
            purpose="payments service",
            intent="demo: allocate a /24 for payments",
        )
        print(f"Allocated {allocated.cidr} ({allocated.id}) for the payments service")
        verification = client.audit.verify()
        state = "intact" if verification.ok else f"BROKEN: {verification.reason}"
        print(f"Audit trail: {verification.checked} events, hash chain {state}")
    print(f"\nDone in {time.perf_counter() - started:.1f} s. Open the database with:")
    print(
        f"  python -c \"import omnitwin; c = omnitwin.connect('local:{args.db}'); "
        'print(c.subnets.list().total)"'
    )
    return 0


def _cmd_subnets(args: argparse.Namespace) -> int:
    with Client(
        f"local:{args.db}", read_only=args.action in ("list", "get", "free")
    ) as client:
        if args.action == "list":
            page = client.subnets.list(
                within=args.within,
                status=args.status,
                purpose=args.purpose,
                vrf=args.vrf,
                page=args.page,
                per_page=args.per_page,
            )
            if args.json:
                _print_json(page)
            else:
                for s in page:
                    print(
                        f"{s.id}  {s.cidr:<24} {s.status:<10} {s.vrf:<8} "
                        f"{s.purpose or ''}"
                    )
                print(f"-- page {page.page} of {page.pages}, {page.total} subnets")
        elif args.action == "get":
            _print_json(client.subnets.get(args.id))
        elif args.action == "create":
            tags = dict(t.split("=", 1) for t in args.tag) if args.tag else None
            _print_json(
                client.subnets.create(
                    args.cidr,
                    purpose=args.purpose,
                    vrf=args.vrf,
                    status=args.status,
                    is_container=args.container,
                    vlan_id=args.vlan,
                    owner=args.owner,
                    tags=tags,
                )
            )
        elif args.action == "free":
            _print_json(
                client.subnets.available(
                    args.length, cidr=args.cidr, vrf=args.vrf, limit=args.limit
                )
            )
        elif args.action == "allocate":
            _print_json(
                client.subnets.allocate(
                    args.length,
                    cidr=args.cidr,
                    vrf=args.vrf,
                    policy=args.policy,
                    purpose=args.purpose,
                )
            )
    return 0


def _cmd_audit(args: argparse.Namespace) -> int:
    with Client(f"local:{args.db}", read_only=True) as client:
        if args.action == "verify":
            result = client.audit.verify()
            _print_json(result)
            return 0 if result.ok else 1
        _print_json(client.audit.list(subject=args.subject, page=args.page))
    return 0


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="omnitwin", description="A network digital twin: IPAM, drift, topology."
    )
    parser.add_argument("--version", action="version", version=__version__)
    commands = parser.add_subparsers(dest="command", required=True)

    demo = commands.add_parser(
        "demo", help="build a twin of the generated sample network and print a summary"
    )
    demo.add_argument(
        "--db", default=DEFAULT_DB, help="DuckDB file to write (default: %(default)s)"
    )
    demo.add_argument("--sites", type=int, default=3, help="number of sites")
    demo.add_argument("--spines", type=int, default=2, help="spines per site")
    demo.add_argument("--leaves", type=int, default=4, help="leaves per site")
    demo.add_argument("--servers", type=int, default=2, help="servers per leaf")
    demo.set_defaults(handler=_cmd_demo)

    subnets = commands.add_parser(
        "subnets", help="list, show, create, search and allocate subnets"
    )
    subnets.add_argument(
        "action", choices=["list", "get", "create", "free", "allocate"]
    )
    subnets.add_argument(
        "target", nargs="?", help="subnet id (get) or CIDR (create, free, allocate)"
    )
    subnets.add_argument("--db", default=DEFAULT_DB, help="DuckDB file")
    subnets.add_argument(
        "--length", type=int, help="prefix length to search or allocate, e.g. 24"
    )
    subnets.add_argument("--within", help="list only subnets inside this CIDR")
    subnets.add_argument("--status", help="subnet status")
    subnets.add_argument("--purpose", help="purpose (substring when listing)")
    subnets.add_argument("--vrf", help="VRF name (default: global)")
    subnets.add_argument("--owner", help="owner, e.g. team:platform")
    subnets.add_argument("--vlan", type=int, help="VLAN id 1-4094")
    subnets.add_argument("--tag", action="append", help="tag KEY=VALUE (repeatable)")
    subnets.add_argument(
        "--container",
        action="store_true",
        help="create the subnet as a container of child subnets",
    )
    subnets.add_argument(
        "--policy", default="first_fit", choices=["first_fit", "best_fit", "last_fit"]
    )
    subnets.add_argument("--limit", type=int, default=20, help="blocks to list")
    subnets.add_argument("--page", type=int, default=1)
    subnets.add_argument("--per-page", type=int, default=50)
    subnets.add_argument("--json", action="store_true", help="print JSON")
    subnets.set_defaults(handler=_cmd_subnets)

    audit = commands.add_parser("audit", help="list or verify the audit trail")
    audit.add_argument("action", choices=["list", "verify"])
    audit.add_argument("--db", default=DEFAULT_DB, help="DuckDB file")
    audit.add_argument("--subject", help="only events of this object id")
    audit.add_argument("--page", type=int, default=1)
    audit.set_defaults(handler=_cmd_audit)

    add_import_command(commands, default_db=DEFAULT_DB)
    ingest.add_cli_commands(commands)
    return parser


def _check_subnet_args(
    parser: argparse.ArgumentParser, args: argparse.Namespace
) -> None:
    if args.command != "subnets":
        return
    needs_target = {
        "get": "a subnet id",
        "create": "a CIDR",
        "free": "a CIDR",
        "allocate": "a CIDR",
    }
    if args.action in needs_target and not args.target:
        parser.error(f"subnets {args.action} needs {needs_target[args.action]}")
    if args.action in ("free", "allocate") and args.length is None:
        parser.error(f"subnets {args.action} needs --length, e.g. --length 24")
    args.id = args.cidr = args.target


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    parser = _build_parser()
    args = parser.parse_args(argv)
    _check_subnet_args(parser, args)
    if hasattr(args, "db"):
        Path(args.db).expanduser().parent.mkdir(parents=True, exist_ok=True)
    try:
        status: int = args.handler(args)
    except ValidationError as exc:
        print(f"omnitwin: error: {exc}", file=sys.stderr)
        return 2
    except OmniTwinError as exc:
        print(f"omnitwin: error: {exc}", file=sys.stderr)
        return 1
    return status


if __name__ == "__main__":
    sys.exit(main())
