"""The ``omnitwin`` command line.

``omnitwin demo`` builds a twin of the generated sample network, an export
or a Batfish snapshot and prints what it holds; the ``subnets`` and ``audit``
commands work on any database.
Errors print one line to standard error and exit with status 2 (bad input) or
1 (anything else).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import duckdb

from omnitwin import __version__
from omnitwin.cli_import import NewDatabase, add_import_command
from omnitwin.client import Client
from omnitwin.engine import ingest
from omnitwin.engine.import_sources import SOURCES
from omnitwin.engine.store import is_database_file
from omnitwin.errors import (
    Duplicate,
    NodeNotFound,
    NotFound,
    OmniTwinError,
    ValidationError,
)
from omnitwin.notebook.report import add_report_command
from omnitwin.sample import SampleNetwork, generate_fabric
from omnitwin.server import add_server_commands

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
    if args.source != "batfish" and (args.detected or args.layer1):
        raise ValidationError(
            "--detected and --layer1 apply only to --source batfish; "
            f"--source {args.source} does not read a second snapshot"
        )
    if args.source != "sample":
        return _demo_source(args)
    if args.path is not None:
        raise ValidationError(
            f"{args.path!r} needs a source; for a NetBox export run "
            f"omnitwin demo --source netbox {args.path}"
        )
    args.db = args.db or DEFAULT_DB
    return _demo_sample(args)


def _demo_sample(args: argparse.Namespace) -> int:
    from omnitwin.client._devices import load_sample_devices
    from omnitwin.engine.ingest import sample_detected_state

    started = time.perf_counter()
    network = generate_fabric(
        sites=args.sites,
        spines=args.spines,
        leaves=args.leaves,
        servers_per_leaf=args.servers,
    )
    out = _out_folder(args.out)
    with Client(f"local:{args.db}") as client:
        created = load_sample(client, network)
        devices = load_sample_devices(client, network)
        for getters in sample_detected_state(network):
            client.discovery.ingest("napalm", getters)
        summary = network.summary()
        print(f"omnitwin {__version__}: sample twin in {args.db}")
        print(
            f"  sites {summary['sites']}, devices {summary['devices']} "
            f"{summary['roles']}, links {summary['links']}"
        )
        print(
            f"  subnets: {created} created, {client.subnets.list().total} stored; "
            f"devices: {devices} created"
        )
        _print_ipam(client, network)
        drift_rows = _print_drift(client)
        target = args.target or f"leaf-02.{network.sites[0]}"
        radius = client.topology.blast_radius(target)
        print(
            f"\nBlast radius of {target}: {len(radius.hostnames)} devices "
            f"({', '.join(radius.hostnames[:6])}"
            f"{', ...' if len(radius.hostnames) > 6 else ''}), "
            f"{len(radius.subnet_cidrs)} subnets, {len(radius.sites)} sites affected"
        )
        drift_page = out / "drift-summary.html"
        _write_drift_page(drift_page, drift_rows, client)
        print(f"\nDrift summary written to {drift_page.resolve()}")
        verification = client.audit.verify()
        state = "intact" if verification.ok else f"BROKEN: {verification.reason}"
        print(f"Audit trail: {verification.checked} events, hash chain {state}")
    # The report's kernel opens the database in another process, so this
    # process must have closed it first.
    report = out / "blast-radius.html"
    if _write_report(args, target, report):
        print(f"Blast-radius report written to {report.resolve()}")
    print(
        f"\nDone in {time.perf_counter() - started:.1f} s. To explore a sample twin "
        "in JupyterLab: pip install jupyterlab && jupyter lab notebooks/ (in a "
        f"notebook, %omnitwin connect {args.db} opens this one)"
    )
    return 0


def _out_folder(text: str) -> Path:
    """Create the folder for the demo's HTML reports and return its path."""
    out = Path(text)
    if out.exists() and not out.is_dir():
        raise ValidationError(
            f"--out {out} is a file, but --out names the folder for the HTML "
            "reports; pass a folder, e.g. --out out, and name the database file "
            "with --db"
        )
    out.mkdir(parents=True, exist_ok=True)
    return out


def _demo_source(args: argparse.Namespace) -> int:
    """Build a new twin from an export or a Batfish snapshot, then print and report.

    Both sources share this flow and differ only in how they fill the twin:
    an export runs through an import job, a Batfish snapshot through the
    client's device, subnet, link and discovery calls.
    """
    started = time.perf_counter()
    source_path = _source_path(args)
    out = _out_folder(args.out)
    args.db = args.db or str(out / f"{args.source}.duckdb")
    new_database = NewDatabase(args.db)
    # Until the twin is built, a failure removes the database file that this
    # command created, so that a second run does not find a half-built twin.
    # Later failures keep it, because their messages give the command that
    # reports on the built twin.
    built = False
    try:
        with Client(f"local:{args.db}", actor="user:demo") as client:
            stored = (client.devices.list().total, client.subnets.list().total)
            if any(stored):
                raise ValidationError(
                    f"{args.db} already contains a twin ({stored[0]} devices, "
                    f"{stored[1]} subnets); pass --db with a new file, or delete "
                    f"{args.db} to rebuild it"
                )
            print(f"omnitwin {__version__}: twin of {source_path} in {args.db}")
            if args.source == "batfish":
                _load_batfish(client, args, source_path)
            elif not _import_export(client, args.source, source_path):
                return 1
            built = True
            target, roots = _report_twin(client, args, out)
    finally:
        if not built:
            new_database.remove()
    report = out / "blast-radius.html"
    if target is not None and _write_report(args, target, report, roots=roots):
        print(f"Blast-radius report written to {report.resolve()}")
    print(f"\nDone in {time.perf_counter() - started:.1f} s.")
    return 0


def _report_twin(
    client: Client, args: argparse.Namespace, out: Path
) -> tuple[str | None, list[str] | None]:
    """Print the built twin and its blast radius, write the drift summary page.

    Return the blast-radius target (None when the twin has no devices) and
    the roots it is measured against.
    """
    from omnitwin.notebook.report import split_names

    _print_twin(client)
    _print_prefixes(client)
    roots = split_names(args.roots) or _core_devices(client)
    target = None
    if client.devices.list(per_page=1).total:
        target = args.target or _missing_link(client)
        target = target or _default_target(client, roots)
        _check_target(client, args, target, roots)
        _print_blast_radius(client, target, roots)
    else:
        print("\nNo devices in this twin, so there is no blast radius to report.")
    drift_rows = _print_drift(client)
    drift_page = out / "drift-summary.html"
    _write_drift_page(drift_page, drift_rows, client)
    print(f"\nDrift summary written to {drift_page.resolve()}")
    return target, roots


def _check_target(
    client: Client, args: argparse.Namespace, target: str, roots: list[str] | None
) -> None:
    """Raise a one-line error for an unknown target or root that keeps the twin.

    The twin is already built at this point, so the message gives the
    command that reports on it without importing again.
    """
    try:
        client.topology.blast_radius(target, roots=roots)
    except (NodeNotFound, NotFound) as exc:
        retry = f"omnitwin report blast-radius TARGET --db {args.db} --out REPORT.html"
        raise ValidationError(
            f"{exc}. The twin is built in {args.db}; report on it with: {retry}"
        ) from exc


def _source_path(args: argparse.Namespace) -> Path:
    """Check the demo's source arguments; return the export file or snapshot folder."""
    batfish = args.source == "batfish"
    if args.path is None:
        if batfish:
            raise ValidationError(
                "--source batfish needs the snapshot folder, e.g. omnitwin demo "
                "--source batfish live --detected live-with-interface-outage"
            )
        raise ValidationError(
            f"--source {args.source} needs the export file, e.g. "
            f"omnitwin demo --source {args.source} export.json"
        )
    path = Path(args.path)
    if batfish and not path.is_dir():
        raise ValidationError(
            f"{path} is not a folder; give the Batfish snapshot folder, which "
            "contains configs/"
        )
    if not batfish and not path.is_file():
        raise ValidationError(f"{path} not found; give the path of the export")
    return path


def _import_export(client: Client, source: str, export: Path) -> bool:
    """Import an export as a job; return whether it committed."""
    from omnitwin.cli_import import follow_import, print_import_report

    job = follow_import(client, client.imports.start(source, export).id)
    if job.status == "awaiting_review":
        print("  conflicts found: accepting the suggested resolutions")
        client.imports.commit(job.id, accept_suggestions=True)
        job = follow_import(client, job.id)
    print_import_report(job, [c.to_dict() for c in client.imports.conflicts(job.id)])
    return job.status == "committed"


def _assign_interface_addresses(
    client: Client, items: list[dict[str, str]], intent: str
) -> int:
    """Assign the interface addresses of a snapshot; return how many.

    An address that two interfaces share is a configuration error that the
    twin should show, so it is printed and the first interface keeps it.
    """
    owners: dict[str, str] = {}
    for item in items:
        where = f"{item['hostname']} {item['interface']}"
        try:
            client.addresses.create(
                item["address"],
                hostname=item["hostname"],
                interface=item["interface"],
                intent=intent,
            )
        except Duplicate:
            print(
                f"  duplicate address {item['address']} on "
                f"{owners[item['address']]} and {where}: kept the first"
            )
            continue
        owners[item["address"]] = where
    return len(owners)


def _load_batfish(client: Client, args: argparse.Namespace, folder: Path) -> None:
    """Build the twin from a Batfish snapshot, then ingest ``--detected`` if given."""
    from omnitwin.engine.discovery.batfish import (
        load_snapshot,
        parse_snapshot,
        read_snapshot,
    )

    snapshot = load_snapshot(folder, args.layer1)
    # Read and check the detected snapshot before writing, so that an error in
    # it leaves the database empty and the command can run again.
    detected = None
    if args.detected is not None:
        detected = read_snapshot(args.detected, args.layer1)
        parse_snapshot(detected)
    intent = f"build the twin of Batfish snapshot {snapshot.name}"
    for subnet in snapshot.subnets:
        client.subnets.create(
            subnet["cidr"], is_container=subnet["is_container"], intent=intent
        )
    client.devices.create_many(snapshot.devices)
    assigned = _assign_interface_addresses(client, snapshot.addresses, intent)
    client.topology.add_links(snapshot.links)
    print(
        f"  {len(snapshot.devices)} devices, {len(snapshot.subnets)} subnets, "
        f"{assigned} interface addresses and {len(snapshot.cables)} cables "
        f"from {folder}"
    )
    if snapshot.skipped_cables:
        print(
            f"  left out {len(snapshot.skipped_cables)} cables to devices the "
            "snapshot does not have"
        )
    if detected is None:
        return
    report = client.discovery.ingest("batfish", detected)
    print(
        f"  detected state of {args.detected}: {len(report.matched)} devices "
        f"matched, {report.detected_links} neighbour entries (each end reports "
        f"its links), {report.drift_opened} drift events opened"
    )


def _missing_link(client: Client) -> str | None:
    """Return the id of the first intended link that discovery did not see."""
    missing = client.drift.links()["missing"]
    return missing[0].id if missing else None


def _print_twin(client: Client) -> None:
    devices = list(client.devices.iter())
    roles = Counter(device.role or "(none)" for device in devices)
    sites = {device.site for device in devices if device.site}
    links = client.topology.links(kind="intended")
    # Each end reports the cables it detects, so count distinct pairs of ends.
    seen = {
        tuple(sorted([(link.a, link.port_a or ""), (link.b, link.port_b or "")]))
        for link in client.topology.links(kind="detected")
    }
    # An intended link is one cabled path: two cables joined by a circuit
    # count once, so the number can be below the imported cable count.
    print(
        f"\nTwin: {len(devices)} devices at {len(sites)} sites, "
        f"{_plural(len(links), 'intended link')}, "
        f"{client.subnets.list().total} subnets"
        + (f"; discovery reported {_plural(len(seen), 'link')}" if seen else "")
    )
    if roles:
        print("  roles: " + ", ".join(f"{role} {n}" for role, n in roles.most_common()))


def _print_prefixes(client: Client) -> None:
    subnets = list(client.subnets.iter())
    top = [subnet for subnet in subnets if subnet.parent_id is None]
    print("\nTop-level prefixes (utilization of children and addresses):")
    for subnet in top[:12]:
        detail = client.subnets.get(subnet.id)
        print(
            f"  {subnet.cidr:<18} {subnet.vrf:<10} {_count(detail.used_ips):>9} of "
            f"{_count(detail.total_ips):<9} {detail.utilization:7.2%}"
        )
    if len(top) > 12:
        print(f"  ... and {len(top) - 12} more")
    containers = [s for s in subnets if s.is_container and ":" not in s.cidr]
    if containers:
        largest = min(containers, key=lambda s: (int(s.cidr.split("/")[1]), s.cidr))
        free = client.subnets.available(24, subnet_id=largest.id, limit=4)
        print(
            f"Free /24 blocks in {largest.cidr} ({largest.vrf}): {free.total_free:,} "
            f"in all; first {', '.join(free.blocks) or 'none'}"
        )


def _core_devices(client: Client) -> list[str] | None:
    """Return the hostnames of devices whose role names the core, if any."""
    cores = sorted(
        device.hostname
        for device in client.devices.iter()
        if device.role and "core" in device.role.lower()
    )
    return cores or None


def _default_target(client: Client, roots: list[str] | None) -> str:
    """Pick the first root, else the device with the most links."""
    if roots:
        return roots[0]
    degree: Counter[str] = Counter()
    for link in client.topology.links():
        degree.update(end for end in (link.a_hostname, link.b_hostname) if end)
    if not degree:
        raise ValidationError("the twin has no links; pass --target DEVICE")
    return min(degree, key=lambda name: (-degree[name], name))


def _print_blast_radius(client: Client, target: str, roots: list[str] | None) -> None:
    radius = client.topology.blast_radius(target, roots=roots)
    reference = f"the roots {', '.join(roots)}" if roots else "the rest of the network"
    print(
        f"\nBlast radius of {_describe_target(client, target)}, measured against "
        f"{reference}:"
    )
    names = ""
    if radius.hostnames:
        more = ", ..." if len(radius.hostnames) > 6 else ""
        names = f" ({', '.join(radius.hostnames[:6])}{more})"
    print(
        f"  cuts off {_plural(len(radius.hostnames), 'device')}{names}, "
        f"{_plural(len(radius.subnets), 'subnet')}, "
        f"{_plural(len(radius.vlans), 'VLAN')}, {_plural(len(radius.sites), 'site')}"
    )
    for point in radius.new_single_points:
        count = len(point["cuts_off"])
        print(
            f"  {point['hostname']} becomes the only path for "
            f"{count} device{'' if count == 1 else 's'}"
            f": {', '.join(point['cuts_off'][:6])}"
            f"{', ...' if len(point['cuts_off']) > 6 else ''}"
        )


def _tag_options(values: list[str]) -> dict[str, str]:
    """Turn ``--tag KEY=VALUE`` options into a dict.

    Raises
    ------
    ValidationError
        If an option has no ``=`` or no key, or a key is given twice.
    """
    tags: dict[str, str] = {}
    for value in values:
        key, equals, text = value.partition("=")
        key = key.strip()
        if not equals or not key:
            raise ValidationError(f"invalid --tag {value!r}; write KEY=VALUE")
        if key in tags:
            raise ValidationError(f"--tag {key} is given twice; give each key once")
        tags[key] = text.strip()
    return tags


def _plural(count: int, noun: str) -> str:
    """Return ``count`` with ``noun``, adding an s unless the count is one."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _describe_target(client: Client, target: str) -> str:
    """Name a link target by its two ends; return other targets unchanged."""
    for link in client.topology.links():
        if link.id == target:
            return (
                f"link {link.a_hostname} {link.port_a} - {link.b_hostname} "
                f"{link.port_b} ({link.id})"
            )
    return target


def _print_ipam(client: Client, network: SampleNetwork) -> None:
    print("\nSite blocks (utilization of allocated and reserved children):")
    for site_block in client.subnets.list(purpose="site block", vrf="global"):
        detail = client.subnets.get(site_block.id)
        print(
            f"  {site_block.cidr:<18} {site_block.tags.get('region', ''):<10} "
            f"{_count(detail.used_ips):>9} of {_count(detail.total_ips):<9} "
            f"{detail.utilization:7.2%}"
        )
    first_site = network.sites[0]
    pool = next(iter(client.subnets.list(purpose=f"{first_site} service pool")))
    free = client.subnets.available(24, subnet_id=pool.id, limit=4)
    print(
        f"Free /24 blocks in {pool.cidr} ({first_site} service pool): "
        f"{free.total_free:,} in all; first {', '.join(free.blocks)}"
    )


def _print_drift(client: Client) -> list[dict[str, Any]]:
    rows = []
    for event in client.drift.events(status="open", per_page=200):
        rows.append(
            {
                "device": event.hostname or event.device_id,
                "field": event.field,
                "twin": event.twin_value,
                "detected": event.actual_value,
                "since": event.detected_at,
            }
        )
    drifting = client.devices.list(has_drift=True, per_page=200)
    print(f"\nDrift: {len(rows)} open events on {drifting.total} devices")
    for row in rows[:8]:
        print(f"  {row['device']:<16} {row['field']:<32} {_difference(row)}")
    return rows


def _difference(row: dict[str, Any]) -> str:
    """Describe a drift: set changes for lists of names, else both values."""
    twin, detected = row["twin"], row["detected"]
    if isinstance(twin, list) and isinstance(detected, list):
        missing = sorted(set(map(str, twin)) - set(map(str, detected)))
        extra = sorted(set(map(str, detected)) - set(map(str, twin)))
        parts = [f"missing {m!r}" for m in missing] + [
            f"unexpected {e!r}" for e in extra
        ]
        return "; ".join(parts) or "same names, different order"
    return f"twin={_short(twin)} detected={_short(detected)}"


def _short(value: Any, width: int = 28) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= width else text[: width - 3] + "..."


def _write_drift_page(path: Path, rows: list[dict[str, Any]], client: Client) -> None:
    import html

    import pandas as pd

    links = client.drift.links()
    # Without detected state there is nothing to compare, and "0 open drift
    # events" would read as a clean bill of health.
    observed = any(device.detected_state for device in client.devices.iter())

    frame = pd.DataFrame(rows, columns=["device", "field", "twin", "detected", "since"])
    for column in ("twin", "detected"):
        frame[column] = frame[column].map(lambda v: json.dumps(v, default=str))
    link_rows = [
        {
            "kind": kind,
            "a": link.a_hostname or link.a,
            "port_a": link.port_a,
            "b": link.b_hostname or link.b,
            "port_b": link.port_b,
            "link_id": link.id,
        }
        for kind, items in links.items()
        for link in items
    ]
    link_frame = pd.DataFrame(
        link_rows, columns=["kind", "a", "port_a", "b", "port_b", "link_id"]
    )
    generated = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    summary = f"{len(frame)} open drift events."
    if not observed:
        summary = (
            "No device has detected state yet, so nothing was compared: ingest "
            "discovery output with omnitwin discover to find drift."
        )
    body = (
        "<h1>omnitwin drift summary</h1>"
        f"<p>{html.escape(summary)} Generated {generated}.</p>"
        "<h2>Missing and unexpected links</h2>"
        + link_frame.to_html(index=False)
        + "<h2>Open drift events</h2>"
        + frame.to_html(index=False)
    )
    temporary = path.with_suffix(".tmp")
    temporary.write_text(
        f"<!doctype html><meta charset='utf-8'><title>omnitwin drift"
        f"</title><body>{body}</body>"
    )
    temporary.replace(path)


def _write_report(
    args: argparse.Namespace, target: str, out: Path, roots: list[str] | None = None
) -> bool:
    """Run the blast-radius report notebook if the notebook layer is installed."""
    try:
        from omnitwin.notebook.report import render_report
    except ImportError:
        print("(install omnitwin[notebook] to also write the blast-radius report)")
        return False
    render_report("blast-radius", target, out, db=args.db, roots=roots)
    return True


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
            tags = _tag_options(args.tag) if args.tag else None
            fields = {
                "purpose": args.purpose,
                "vrf": args.vrf,
                "status": args.status,
                "vlan_id": args.vlan,
                "owner": args.owner,
                "tags": tags,
            }
            # Options not given keep the engine's defaults (status allocated,
            # VRF global) instead of being sent as None.
            chosen = {
                name: value for name, value in fields.items() if value is not None
            }
            _print_json(
                client.subnets.create(
                    args.cidr,
                    is_container=args.container,
                    normalize=args.normalize,
                    **chosen,
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
        "demo",
        help="build a twin of the generated sample network, an export or a "
        "Batfish snapshot, and write its drift summary and blast-radius report",
    )
    demo.add_argument(
        "path",
        nargs="?",
        help="the export file to import, or the Batfish snapshot folder (with "
        "--source)",
    )
    demo.add_argument(
        "--source",
        choices=["sample", "batfish", *sorted(SOURCES)],
        default="sample",
        help="what to build the twin from (default: %(default)s)",
    )
    demo.add_argument(
        "--db",
        help=f"DuckDB file to write (default: {DEFAULT_DB} for the sample, "
        "OUT/SOURCE.duckdb for an export or snapshot, which must be new or empty)",
    )
    demo.add_argument(
        "--roots",
        help="comma-separated devices that stand for the outside world in the "
        "blast radius (default for an export: devices whose role names the core)",
    )
    demo.add_argument(
        "--detected",
        help="with --source batfish: a second snapshot folder whose state is "
        "ingested as the detected state, e.g. one with an interface_blacklist",
    )
    demo.add_argument(
        "--layer1",
        help="with --source batfish: the layer-1 cabling file for snapshots "
        "without batfish/layer1_topology.json",
    )
    demo.add_argument("--sites", type=int, default=3, help="number of sites")
    demo.add_argument("--spines", type=int, default=2, help="spines per site")
    demo.add_argument("--leaves", type=int, default=4, help="leaves per site")
    demo.add_argument("--servers", type=int, default=2, help="servers per leaf")
    demo.add_argument(
        "--out",
        default="out",
        help="folder for the HTML reports (default: %(default)s)",
    )
    demo.add_argument(
        "--target",
        help="device or link id whose blast radius to report (default: leaf-02 "
        "of the first site; for an export or snapshot the first missing link, "
        "else the first root, else the device with the most links)",
    )
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
        "--normalize",
        action="store_true",
        help="create: clear host bits (10.0.83.196/26 becomes 10.0.83.192/26) "
        "instead of rejecting the CIDR",
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
    add_server_commands(commands)
    ingest.add_cli_commands(commands)
    add_report_command(commands)
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
    if args.command != "serve":
        # The commands print a failed job's error themselves, so the job
        # runner's warning would repeat it on stderr. The server keeps it.
        logging.getLogger("omnitwin.engine.jobs").setLevel(logging.ERROR)
    stdout = sys.stdout
    sys.stdout = _PipeSafeStdout(stdout)
    try:
        _check_database(args)
        status: int = args.handler(args)
        sys.stdout.flush()
    except ValidationError as exc:
        print(f"omnitwin: error: {exc}", file=sys.stderr)
        return 2
    except OmniTwinError as exc:
        print(f"omnitwin: error: {exc}", file=sys.stderr)
        return 1
    except ValueError as exc:
        # Raised by the report layer for an invalid path or report name.
        print(f"omnitwin: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # The reader (e.g. head) closed the pipe; stop without a traceback.
        sys.stderr.close()
        return 0
    except OSError as exc:
        # A path that is a folder, a file where a folder belongs, no access.
        print(f"omnitwin: error: {exc}", file=sys.stderr)
        return 2
    except duckdb.Error as exc:
        print(f"omnitwin: error: {exc}; check --db", file=sys.stderr)
        return 2
    finally:
        sys.stdout = stdout
    return status


class _PipeSafeStdout:
    """Standard output that discards the rest of the output once its reader exits.

    A reader such as ``head`` may close the pipe while a command still has
    files to write, so a BrokenPipeError must stop the printing only.
    """

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return int(self._stream.write(text))
        except BrokenPipeError:
            self._discard()
            return len(text)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except BrokenPipeError:
            self._discard()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)

    def _discard(self) -> None:
        # Point the file descriptor at os.devnull, as the "Note on SIGPIPE" in
        # Python's signal documentation does, so that later writes and the
        # flush at exit succeed too.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, self._stream.fileno())
        os.close(devnull)


# Commands that create their database when it is missing. The others read or
# change an existing twin, so a mistyped --db must not make a new, empty one.
_CREATES_DATABASE = frozenset({"demo", "import", "serve", "keys"})


def _check_database(args: argparse.Namespace) -> None:
    db = getattr(args, "db", None)
    if not db or db == ":memory:":
        return
    path = Path(db).expanduser()
    if path.is_file() and not is_database_file(path):
        raise ValidationError(
            f"{path} is not a DuckDB database file; check --db, and pass an "
            "omnitwin database such as one that omnitwin demo or omnitwin "
            "import wrote"
        )
    if args.command in _CREATES_DATABASE:
        path.parent.mkdir(parents=True, exist_ok=True)
    elif not path.exists():
        raise ValidationError(
            f"database {path} not found; check --db, or build a twin first with "
            "omnitwin demo or omnitwin import"
        )


if __name__ == "__main__":
    sys.exit(main())
