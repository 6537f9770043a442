"""Import jobs end to end: real files, a real DuckDB file, the job API."""

from __future__ import annotations

import ipaddress
import json
import threading
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest
import zstandard

import omnitwin
from omnitwin.engine.context import Context
from omnitwin.engine.engine import Engine
from omnitwin.engine.import_sources import qualify_netbox_device_names
from omnitwin.engine.importers import CableRecord, parse_netbox_dump
from omnitwin.errors import Conflict, EngineClosed, ValidationError
from omnitwin.models import ImportJob
from testdata import data_file, load_cases

NETBOX = ("netbox-demo-data", "netbox-demo-v3.6.dcim-ipam.json")
# Power and console cables carry no traffic, so they never become links.
DATA_PORTS = {"interface", "frontport", "rearport"}


def run_import(
    engine: Engine, ctx: Context, source: str, data: bytes, **kwargs: Any
) -> ImportJob:
    job = engine.imports.start(ctx, source, data, **kwargs)
    return engine.imports.wait(ctx, job.id, timeout=120)


def store_counts(engine: Engine) -> dict[str, int]:
    counts = {}
    for table in ("subnets", "addresses", "vlans", "devices", "sites", "links"):
        row = engine.store.fetchone(f"SELECT count(*) FROM {table}")
        counts[table] = int(row[0]) if row else 0
    return counts


def audit_head(engine: Engine) -> tuple[int, str | None]:
    row = engine.store.fetchone(
        "SELECT count(*), max_by(hash, position) FROM audit_events"
    )
    assert row is not None
    return int(row[0]), row[1]


# NetBox


@pytest.fixture(scope="module")
def netbox_dump() -> list[dict[str, Any]]:
    return json.loads(data_file(*NETBOX).read_text())  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def netbox_engine(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Engine, ImportJob]]:
    """One DuckDB file with the NetBox demo export imported, shared by the module."""
    engine = Engine(tmp_path_factory.mktemp("netbox") / "twin.duckdb")
    ctx = Context(actor="user:test")
    job = run_import(engine, ctx, "netbox", data_file(*NETBOX).read_bytes())
    yield engine, job
    engine.close()


def objects(dump: list[dict[str, Any]], model: str) -> dict[int, dict[str, Any]]:
    return {o["pk"]: o["fields"] for o in dump if o["model"] == model}


def test_netbox_commits_every_object(
    netbox_engine: tuple[Engine, ImportJob], netbox_dump: list[dict[str, Any]]
) -> None:
    engine, job = netbox_engine
    counts = store_counts(engine)
    assert job.status == "committed", job.error
    assert job.plan is not None and job.plan.row_errors == []
    assert counts["sites"] == len(objects(netbox_dump, "dcim.site"))
    assert counts["devices"] == len(objects(netbox_dump, "dcim.device"))
    assert counts["subnets"] == len(objects(netbox_dump, "ipam.prefix"))
    assert counts["vlans"] == len(objects(netbox_dump, "ipam.vlan"))
    assert counts["addresses"] == len(objects(netbox_dump, "ipam.ipaddress"))


def test_netbox_interfaces_in_twin_state(
    netbox_engine: tuple[Engine, ImportJob],
    netbox_dump: list[dict[str, Any]],
    ctx: Context,
) -> None:
    engine, _ = netbox_engine
    devices = engine.devices.list(ctx, per_page=200).data
    stored = sum(len(d.twin_state.get("interfaces", {})) for d in devices)
    assert stored == len(objects(netbox_dump, "dcim.interface"))


def expected_links(dump: list[dict[str, Any]]) -> int:
    """Count cables between device ports, plus circuits cabled on both sides."""
    ends: dict[int, list[tuple[str, int]]] = {}
    for fields in objects(dump, "dcim.cabletermination").values():
        model = fields["termination_type"][1]
        ends.setdefault(fields["cable"], []).append((model, fields["termination_id"]))
    direct = sum(1 for pairs in ends.values() if all(m in DATA_PORTS for m, _ in pairs))
    cabled_terminations = {
        pk for pairs in ends.values() for m, pk in pairs if m == "circuittermination"
    }
    sides: Counter[int] = Counter(
        fields["circuit"]
        for pk, fields in objects(dump, "circuits.circuittermination").items()
        if pk in cabled_terminations
    )
    return direct + sum(1 for n in sides.values() if n == 2)


def test_netbox_cables_become_links(
    netbox_engine: tuple[Engine, ImportJob], netbox_dump: list[dict[str, Any]]
) -> None:
    engine, _ = netbox_engine
    assert store_counts(engine)["links"] == expected_links(netbox_dump)


def test_netbox_power_cables_skipped_with_reason(
    netbox_engine: tuple[Engine, ImportJob], netbox_dump: list[dict[str, Any]]
) -> None:
    _, job = netbox_engine
    models: dict[int, set[str]] = {}
    for fields in objects(netbox_dump, "dcim.cabletermination").values():
        models.setdefault(fields["cable"], set()).add(fields["termination_type"][1])
    power = {"powerport", "poweroutlet", "powerfeed"}
    power |= {"consoleport", "consoleserverport"}
    expected = sum(1 for kinds in models.values() if kinds & power)
    assert job.plan is not None
    reasons = Counter(str(row["reason"]) for row in job.plan.skipped_rows)
    assert expected > 0
    reason = "power and console cables carry no traffic, so they are not links"
    assert reasons[reason] == expected


def test_netbox_prefix_site_becomes_tag(
    netbox_engine: tuple[Engine, ImportJob], netbox_dump: list[dict[str, Any]]
) -> None:
    engine, _ = netbox_engine
    sites = {pk: f["name"] for pk, f in objects(netbox_dump, "dcim.site").items()}
    expected = sorted(
        (f["prefix"], sites.get(f["site"]) or "")
        for f in objects(netbox_dump, "ipam.prefix").values()
    )
    stored = engine.store.fetchall(
        "SELECT cidr, coalesce(json_extract_string(tags, '$.site'), '') FROM subnets"
    )
    assert sorted((cidr, site) for cidr, site in stored) == expected


def expected_parent(
    prefix: str, vrf: str, containers: list[tuple[str, str]]
) -> str | None:
    """The engine rule: smallest container of the VRF, else smallest global one."""
    network = ipaddress.ip_network(prefix)
    for scope in (vrf, "global"):
        outer = [
            ipaddress.ip_network(c)
            for c, v in containers
            if v == scope
            and ipaddress.ip_network(c).version == network.version
            and ipaddress.ip_network(c) != network
            and network.subnet_of(ipaddress.ip_network(c))  # type: ignore[arg-type]
        ]
        if outer:
            return str(max(outer, key=lambda n: n.prefixlen))
    return None


def test_netbox_prefix_parents_and_vrfs(
    netbox_engine: tuple[Engine, ImportJob],
    netbox_dump: list[dict[str, Any]],
    ctx: Context,
) -> None:
    engine, _ = netbox_engine
    vrf_names = {pk: f["name"] for pk, f in objects(netbox_dump, "ipam.vrf").items()}
    prefixes = [
        (f["prefix"], vrf_names.get(f["vrf"], "global"), f["status"] == "container")
        for f in objects(netbox_dump, "ipam.prefix").values()
    ]
    containers = [(p, v) for p, v, is_container in prefixes if is_container]
    stored = {(s.cidr, s.vrf): s for s in engine.subnets.list(ctx, per_page=200)}
    by_id = {s.id: s for s in stored.values()}
    assert {(p, v) for p, v, _ in prefixes} == set(stored)
    for prefix, vrf, is_container in prefixes:
        subnet = stored[(prefix, vrf)]
        parent = by_id[subnet.parent_id].cidr if subnet.parent_id else None
        assert parent == expected_parent(prefix, vrf, containers), prefix
        assert subnet.is_container == is_container, prefix


def test_netbox_patch_panels_qualified(
    netbox_engine: tuple[Engine, ImportJob], ctx: Context
) -> None:
    engine, _ = netbox_engine
    names = [d.hostname for d in engine.devices.list(ctx, per_page=200).data]
    panels = sorted(n for n in names if n.startswith("PP:MDF"))
    assert len(panels) == 3
    assert "PP:MDF" not in panels
    assert all(n.startswith("PP:MDF.") for n in panels)


def test_netbox_paths_connected_through_panels(
    netbox_engine: tuple[Engine, ImportJob],
    netbox_dump: list[dict[str, Any]],
    ctx: Context,
) -> None:
    engine, _ = netbox_engine
    parsed = parse_netbox_dump(qualify_netbox_device_names(netbox_dump))
    paths = [r for r in parsed.of_type(CableRecord) if r.kind == "path"]
    assert paths
    for record in paths:
        path = engine.topology.path(ctx, record.a_device, record.b_device)
        panels = {hop.name for hop in record.through if hop.kind != "circuit"}
        assert path.hostnames[0] == record.a_device
        assert path.hostnames[-1] == record.b_device
        assert panels <= set(path.hostnames), record.source_id


def test_netbox_audit_chain_verifies(netbox_engine: tuple[Engine, ImportJob]) -> None:
    engine, _ = netbox_engine
    assert engine.audit.verify("default").ok


# Infoblox and BlueCat files


def vendor_files(folder: str, pattern: str) -> list[Path]:
    root = data_file(folder)
    files = sorted(root.glob(pattern))
    assert files, f"no {pattern} files in {root}"
    return files


INFOBLOX = [
    *[("infoblox", p.name) for p in vendor_files("infoblox", "*.csv")],
    *[
        ("nautobot-ssot-fixtures/infoblox", p.name)
        for p in vendor_files("nautobot-ssot-fixtures/infoblox", "*.json")
    ],
]
BLUECAT = [("bluecat", p.name) for p in vendor_files("bluecat", "*.[cj]s*")]


@pytest.mark.parametrize(
    ("source", "folder", "name"),
    [("infoblox", *f) for f in INFOBLOX] + [("bluecat", *f) for f in BLUECAT],
)
def test_vendor_file_imports(
    engine: Engine, ctx: Context, source: str, folder: str, name: str
) -> None:
    job = run_import(engine, ctx, source, data_file(folder, name).read_bytes())
    assert job.status in ("committed", "awaiting_review"), job.error
    assert job.plan is not None
    for error in job.plan.row_errors:
        assert error["line"] >= 0, error
        assert error["message"], error
    if job.status == "committed":
        written = engine.subnets.list(ctx).total
        assert written == job.plan.create.get("subnet", 0)


def test_infoblox_range_end_before_start(engine: Engine, ctx: Context) -> None:
    data = data_file("nautobot-ssot-fixtures/infoblox", "get_all_ranges.json")
    job = run_import(engine, ctx, "infoblox", data.read_bytes(), dry_run=True)
    assert job.plan is not None
    messages = [e["message"] for e in job.plan.row_errors if e["line"] == 1]
    assert any("precedes its start" in m for m in messages)
    assert job.plan.skipped_rows  # the valid ranges are reported, not stored


def test_bluecat_ranges_outside_network(engine: Engine, ctx: Context) -> None:
    data = data_file("bluecat", "gw_bulk_register_dhcp_range.csv").read_bytes()
    job = run_import(engine, ctx, "bluecat", data)
    assert job.plan is not None
    errors = {(e["line"], e["field"], e["message"].split(";")[0])
              for e in job.plan.row_errors}  # fmt: skip
    assert (4, "end", "range end 10.112.203.253 is outside its network "
            "10.114.203.0/24") in errors  # fmt: skip
    assert (5, "end", "range end 10.112.205.253 precedes its start "
            "10.114.205.30") in errors  # fmt: skip
    assert job.status == "committed"
    block = engine.subnets.list(ctx, within="10.112.0.0/16").data
    assert [s.cidr for s in block] == [
        "10.112.0.0/16", "10.112.194.0/24", "10.112.200.0/24"
    ]  # fmt: skip
    assert block[1].parent_id == block[0].id
    assert engine.subnets.list(ctx, within="10.114.0.0/16").total == 0


def test_on_error_fail_rejects_file(engine: Engine, ctx: Context) -> None:
    data = data_file("bluecat", "gw_bulk_register_dhcp_range.csv").read_bytes()
    job = run_import(engine, ctx, "bluecat", data, options={"on_error": "fail"})
    assert job.status == "failed"
    assert job.error is not None and "line 4" in job.error
    assert store_counts(engine)["subnets"] == 0


# Field cases


def test_b17_overlap_duplicate_and_nesting(client: omnitwin.Client) -> None:
    case = load_cases("import")["B17"]
    assert "overlap" in case["expected"]
    leaf = client.subnets.create("10.0.0.0/24")
    block = client.subnets.create("10.16.0.0/16", is_container=True)
    client.subnets.create("10.16.0.0/20", is_container=True)
    data = b"cidr,status\n10.0.0.0/23,\n10.0.0.0/24,\n10.16.16.0/20,container\n"
    job = client.imports.wait(client.imports.start("csv", data, dry_run=True).id)
    found = client.imports.conflicts(job.id)
    conflicts = {(c.subject, c.existing["in"]): c for c in found}

    assert job.status == "awaiting_review"
    # The /23 contains the stored /24 and also the /24 row of the file.
    assert set(conflicts) == {
        ("10.0.0.0/23", "store"), ("10.0.0.0/23", "file"), ("10.0.0.0/24", "store")
    }  # fmt: skip
    against_store = conflicts[("10.0.0.0/23", "store")]
    assert against_store.kind == "cidr_overlap"
    assert against_store.existing["ids"] == [leaf.id]
    assert against_store.suggestion == "mark_as_child"
    assert conflicts[("10.0.0.0/23", "file")].kind == "cidr_overlap"
    assert conflicts[("10.0.0.0/24", "store")].kind == "duplicate"
    assert conflicts[("10.0.0.0/24", "store")].existing["id"] == leaf.id

    job = client.imports.commit(job.id, accept_suggestions=True)
    job = client.imports.wait(job.id)
    assert job.status == "committed", job.error
    outer = client.subnets.list(within="10.0.0.0/23").data
    assert [(s.cidr, s.is_container) for s in outer] == [
        ("10.0.0.0/23", True), ("10.0.0.0/24", False)
    ]  # fmt: skip
    assert client.subnets.get(leaf.id).subnet.parent_id == outer[0].id
    new_block = client.subnets.list(within="10.16.16.0/20").data[0]
    assert new_block.parent_id == block.id


def test_b13_bom_headers_through_jobs(client: omnitwin.Client) -> None:
    assert "B13" in load_cases("import")
    data = (
        b"\xef\xbb\xbfdevice,type,name,enabled\r\n"
        b"sw-lab-01,1000base-t,Management 1,TRUE\r\n"
    )
    job = client.imports.wait(client.imports.start("csv", data, dry_run=True).id)
    assert job.plan is not None
    assert job.plan.row_errors == []
    assert job.plan.preview[0]["device"] == "sw-lab-01"
    assert job.plan.preview[0]["name"] == "Management 1"

    quoted = b'\xef\xbb\xbf"name","site"\r\n"sw1","lab-a"\r\n'
    job = client.imports.wait(client.imports.start("csv", quoted).id)
    assert job.status == "committed", job.error
    assert job.plan is not None and job.plan.preview[0]["site"] == "lab-a"

    job = client.imports.wait(client.imports.start("csv", data).id)
    assert job.status == "committed"
    assert job.plan is not None and job.plan.skipped_rows == [
        {"line": 2, "reason": "device 'sw-lab-01' not found; import the device first"}
    ]


def test_b14_semicolon_trailing_delimiter(client: omnitwin.Client) -> None:
    assert "B14" in load_cases("import")
    data = b'role;site;name;description;\r\nrouter;lab-a;rtr-01;"Core, Row 1";\r\n'
    job = client.imports.wait(client.imports.start("csv", data).id)
    assert job.status == "committed", job.error
    assert job.plan is not None
    assert job.plan.preview[0]["description"] == "Core, Row 1"
    assert job.plan.create == {"device": 1}


# Review, commit and atomicity


def test_dry_run_plan_equals_commit_plan(engine: Engine, ctx: Context) -> None:
    data = data_file(*NETBOX).read_bytes()
    dry = run_import(engine, ctx, "netbox", data, dry_run=True)
    assert dry.status == "awaiting_review"
    assert store_counts(engine)["subnets"] == 0
    engine.imports.commit(ctx, dry.id)
    done = engine.imports.wait(ctx, dry.id)
    assert done.status == "committed", done.error
    assert dry.plan is not None and done.plan is not None
    assert done.plan.create == dry.plan.create
    assert done.plan.skip == dry.plan.skip
    assert done.plan.row_errors == dry.plan.row_errors


def test_crash_mid_commit_rolls_back(engine: Engine, ctx: Context) -> None:
    engine.subnets.create(ctx, "192.0.2.0/24")
    before_counts, before_head = store_counts(engine), audit_head(engine)

    def crash(written: int) -> None:
        if written >= 100:
            raise RuntimeError(f"injected failure after {written} rows")

    engine.imports.commit_row_hook = crash
    job = run_import(engine, ctx, "netbox", data_file(*NETBOX).read_bytes())
    engine.imports.commit_row_hook = None

    assert job.status == "failed"
    assert job.error is not None and "injected failure" in job.error
    assert store_counts(engine) == before_counts
    assert audit_head(engine) == before_head
    assert engine.audit.verify(ctx.workspace).ok


def test_store_rule_violation_rolls_back(engine: Engine, ctx: Context) -> None:
    before = audit_head(engine)
    data = b"cidr,vlan\n10.50.0.0/24,\n10.51.0.0/24,\n"
    job = run_import(engine, ctx, "csv", data, dry_run=True)
    # A subnet created after the review makes the commit meet a new conflict.
    engine.subnets.create(ctx, "10.51.0.0/16")
    engine.imports.commit(ctx, job.id)
    job = engine.imports.wait(ctx, job.id)
    assert job.status == "awaiting_review"
    assert [c.kind for c in engine.imports.conflicts(ctx, job.id)] == ["cidr_overlap"]
    assert store_counts(engine)["subnets"] == 1
    assert audit_head(engine)[0] == before[0] + 1


def test_in_file_duplicate_merge(engine: Engine, ctx: Context) -> None:
    data = (
        b"cidr,purpose,owner,tags\n"
        b"10.60.0.0/24,web,team:a,env=prod\n"
        b"10.60.0.0/24,,team:b,site=x\n"
    )
    job = run_import(engine, ctx, "csv", data)
    conflicts = {c.kind: c for c in engine.imports.conflicts(ctx, job.id)}
    assert job.status == "awaiting_review"
    assert set(conflicts) == {"duplicate", "ownership_mismatch"}
    assert conflicts["duplicate"].existing["line"] == 2

    engine.imports.resolve(ctx, job.id, conflicts["duplicate"].id, "merge")
    engine.imports.resolve(
        ctx, job.id, conflicts["ownership_mismatch"].id, "use_imported"
    )
    engine.imports.commit(ctx, job.id)
    job = engine.imports.wait(ctx, job.id)
    subnet = engine.subnets.list(ctx).data[0]
    assert job.status == "committed", job.error
    assert (subnet.purpose, subnet.owner) == ("web", "team:b")
    assert subnet.tags == {"env": "prod", "site": "x"}


def test_store_duplicate_merge_fills_fields(engine: Engine, ctx: Context) -> None:
    existing = engine.subnets.create(ctx, "10.70.0.0/24", owner="team:a")
    data = b"cidr,purpose,owner,vlan\n10.70.0.0/24,voice,team:b,70\n"
    job = run_import(engine, ctx, "csv", data)
    conflicts = {c.kind: c for c in engine.imports.conflicts(ctx, job.id)}
    engine.imports.resolve(ctx, job.id, conflicts["duplicate"].id, "merge")
    engine.imports.commit(ctx, job.id, accept_suggestions=True)
    job = engine.imports.wait(ctx, job.id)
    merged = engine.subnets.get(ctx, existing.id).subnet
    assert job.status == "committed", job.error
    assert job.plan is not None and job.plan.update == {"subnet": 1}
    assert (merged.purpose, merged.vlan_id, merged.owner) == ("voice", 70, "team:a")


def test_resolve_rejects_unknown_resolution(engine: Engine, ctx: Context) -> None:
    engine.subnets.create(ctx, "10.80.0.0/24")
    job = run_import(engine, ctx, "csv", b"cidr\n10.80.0.0/24\n")
    conflict = engine.imports.conflicts(ctx, job.id)[0]
    with pytest.raises(ValidationError, match="use one of skip, merge"):
        engine.imports.resolve(ctx, job.id, conflict.id, "mark_as_child")


def test_commit_with_open_conflicts_rejected(engine: Engine, ctx: Context) -> None:
    engine.subnets.create(ctx, "10.90.0.0/24")
    job = run_import(engine, ctx, "csv", b"cidr\n10.90.0.0/24\n")
    with pytest.raises(Conflict, match="1 open conflict"):
        engine.imports.commit(ctx, job.id)


def test_committed_job_cannot_commit_again(engine: Engine, ctx: Context) -> None:
    job = run_import(engine, ctx, "csv", b"cidr\n10.91.0.0/24\n")
    assert job.status == "committed"
    with pytest.raises(ValidationError, match="not awaiting_review"):
        engine.imports.commit(ctx, job.id)


def test_unknown_source_rejected(engine: Engine, ctx: Context) -> None:
    with pytest.raises(ValidationError, match="unknown import source 'nmap'"):
        engine.imports.start(ctx, "nmap", b"")


def test_async_client_imports(db_path: Path) -> None:
    import asyncio

    async def main() -> ImportJob:
        async with omnitwin.AsyncClient(f"local:{db_path}") as client:
            job = await client.imports.start("csv", b"cidr\n10.99.0.0/24\n")
            return await client.imports.wait(job.id)

    job = asyncio.run(main())
    assert job.status == "committed"
    assert job.plan is not None and job.plan.create == {"subnet": 1}


MIXED_CSV = (
    "\ufeffcidr, status ,purpose,owner,vlan,tags,vrf,parent\n"
    "10.1.0.0/16,container,campus,team:net,,,,\n"
    "10.1.1.0/24,,users,team:a,110,,,\n"
    "\n"
    "10.1.1.0/24,reserved,users again,team:b,,,,\n"
    "10.1.2.0/24,allocated,,,,env=lab|rack=r1,,10.1.0.0/16\n"
    "10.1.3.5/24,,host bits,,,,,\n"
    "010.1.4.0/24,,leading zero,,,,,\n"
    "10.1.5.0/24,bogus,,,,,,\n"
    "10.1.6.0/24,,,,5000,,,\n"
    "2001:db8::/48,,v6,,,,,\n"
    "2001:db8:0:1::/64,,v6 child,,,,,\n"
    "10.2.0.0/16,,leaf,,,,red,\n"
    "10.2.1.0/24,,in leaf,,,,red,\n"
    "10.1.7.0/24,,,,,,,,extra\n"
    "  10.1.8.0/24 , Reserved ,  spaced  ,,0100,,,\n"
)


def test_sql_plan_matches_parser_plan(engine: Engine, ctx: Context) -> None:
    engine.subnets.create(ctx, "10.1.2.0/24", owner="team:c")
    data = MIXED_CSV.encode()
    dry = run_import(engine, ctx, "csv", data, dry_run=True)
    keys = sorted(
        (c.kind, c.line, c.subject) for c in engine.imports.conflicts(ctx, dry.id)
    )
    engine.imports.commit(ctx, dry.id, accept_suggestions=True)
    done = engine.imports.wait(ctx, dry.id)
    assert dry.plan is not None and done.plan is not None
    assert done.status == "committed", done.error
    assert dry.plan.row_errors == done.plan.row_errors
    assert [e["line"] for e in dry.plan.row_errors] == [7, 8, 9, 10, 15]
    assert dry.plan.total_rows == done.plan.total_rows == 14
    assert dry.plan.create == done.plan.create
    assert dry.plan.update == done.plan.update
    assert dry.plan.skip == done.plan.skip
    assert dry.plan.conflicts == done.plan.conflicts
    assert dry.plan.preview == done.plan.preview
    assert keys == [
        ("cidr_overlap", 11, "2001:db8::/48"),
        ("cidr_overlap", 13, "10.2.0.0/16"),
        ("duplicate", 5, "10.1.1.0/24"),
        ("duplicate", 6, "10.1.2.0/24"),
        ("ownership_mismatch", 5, "10.1.1.0/24"),
    ]


UPLOAD = b"cidr,status,purpose\n10.70.0.0/16,container,block\n10.70.1.0/24,,users\n"


def test_upload_stored_compressed(tmp_path: Path, ctx: Context) -> None:
    engine = Engine(tmp_path / "twin.duckdb")
    try:
        job = run_import(engine, ctx, "csv", UPLOAD * 200, dry_run=True)
        row = engine.store.fetchone(
            "SELECT data, data_encoding FROM import_uploads WHERE id = ?", [job.id]
        )
        job_row = engine.store.fetchone(
            "SELECT data, data_encoding FROM import_jobs WHERE id = ?", [job.id]
        )
    finally:
        engine.close()
    assert job_row is not None
    assert job_row[0] == b""
    assert job_row[1] == "import_uploads"
    assert row is not None
    assert row[1] == "zstd"
    assert zstandard.decompress(bytes(row[0])) == UPLOAD * 200
    assert len(row[0]) < len(UPLOAD * 200) / 10


def dry_run_upload(path: Path, ctx: Context) -> str:
    """Dry-run UPLOAD into a new twin at ``path``, close it, return the import id."""
    engine = Engine(path)
    job = run_import(engine, ctx, "csv", UPLOAD, dry_run=True)
    engine.close()
    return job.id


def rewrite(path: Path, *statements: tuple[str, list[Any]]) -> None:
    """Run SQL statements with their parameters on the closed twin at ``path``."""
    connection = duckdb.connect(str(path))
    for statement, parameters in statements:
        connection.execute(statement, parameters)
    connection.close()


def commit_reopened(
    path: Path, ctx: Context, import_id: str
) -> tuple[ImportJob, list[str]]:
    """Reopen the twin, commit the import, and return the job and stored CIDRs."""
    engine = Engine(path)
    try:
        committed = engine.imports.commit(ctx, import_id, accept_suggestions=True)
        committed = engine.imports.wait(ctx, committed.id, timeout=120)
        cidrs = sorted(s.cidr for s in engine.subnets.list(ctx).data)
    finally:
        engine.close()
    return committed, cidrs


@pytest.mark.parametrize(
    ("encoding", "encode"),
    [
        ("zlib", lambda data: zlib.compress(data, 1)),
        ("identity", lambda data: data),
    ],
)
def test_upload_earlier_encoding_commits(
    tmp_path: Path, ctx: Context, encoding: str, encode: Callable[[bytes], bytes]
) -> None:
    path = tmp_path / "twin.duckdb"
    import_id = dry_run_upload(path, ctx)
    # Rewrite the rows as an earlier version stored them.
    rewrite(
        path,
        (
            "UPDATE import_jobs SET data = ?, data_encoding = ? WHERE id = ?",
            [encode(UPLOAD), encoding, import_id],
        ),
        ("DELETE FROM import_uploads WHERE id = ?", [import_id]),
    )

    committed, cidrs = commit_reopened(path, ctx, import_id)

    assert committed.status == "committed", committed.error
    assert cidrs == ["10.70.0.0/16", "10.70.1.0/24"]


@pytest.mark.parametrize(
    ("encoding", "message"),
    [
        ("brotli", "unsupported encoding 'brotli'"),
        ("import_uploads", "start the import again"),
    ],
)
def test_upload_not_readable_fails(
    tmp_path: Path, ctx: Context, encoding: str, message: str
) -> None:
    path = tmp_path / "twin.duckdb"
    import_id = dry_run_upload(path, ctx)
    # "import_uploads" without an upload row is the state of a job whose
    # first run stopped before it stored the file.
    rewrite(
        path,
        (
            "UPDATE import_jobs SET data_encoding = ? WHERE id = ?",
            [encoding, import_id],
        ),
        ("DELETE FROM import_uploads WHERE id = ?", [import_id]),
    )

    committed, cidrs = commit_reopened(path, ctx, import_id)

    assert committed.status == "failed"
    assert committed.error is not None
    assert message in committed.error
    assert cidrs == []


def test_upload_of_older_store_commits(tmp_path: Path, ctx: Context) -> None:
    path = tmp_path / "twin.duckdb"
    import_id = dry_run_upload(path, ctx)
    # Rewrite the row as a store from before data_encoding kept it: raw
    # bytes, no such column and no import_uploads table.
    rewrite(
        path,
        ("ALTER TABLE import_jobs DROP COLUMN data_encoding", []),
        ("DROP TABLE import_uploads", []),
        ("UPDATE import_jobs SET data = ? WHERE id = ?", [UPLOAD, import_id]),
    )

    committed, cidrs = commit_reopened(path, ctx, import_id)

    assert committed.status == "committed", committed.error
    assert cidrs == ["10.70.0.0/16", "10.70.1.0/24"]


def test_start_after_shutdown_writes_nothing(tmp_path: Path, ctx: Context) -> None:
    engine = Engine(tmp_path / "twin.duckdb")
    try:
        engine.jobs.shutdown()
        with pytest.raises(EngineClosed) as info:
            engine.imports.start(ctx, "csv", UPLOAD, dry_run=True)
        jobs = engine.store.fetchone("SELECT count(*) FROM jobs")
        imports = engine.store.fetchone("SELECT count(*) FROM import_jobs")
    finally:
        engine.close()
    assert "engine is closed" in info.value.message
    assert jobs == (0,)
    assert imports == (0,)


def test_start_racing_close_loses_no_job(tmp_path: Path, ctx: Context) -> None:
    path = tmp_path / "twin.duckdb"
    engine = Engine(path)
    data = "cidr\n" + "".join(f"10.{i >> 8}.{i & 255}.0/24\n" for i in range(5000))
    started: list[str] = []
    errors: list[BaseException] = []

    def start_until_closed() -> None:
        for _ in range(500):
            try:
                started.append(engine.imports.start(ctx, "csv", data.encode()).id)
            except EngineClosed as exc:
                errors.append(exc)
                return
            except duckdb.ConnectionException:
                # The job was queued, and the store closed before start()
                # read it back.
                return

    starter = threading.Thread(target=start_until_closed)
    starter.start()
    while len(started) < 3:
        time.sleep(0.01)
    engine.close()
    starter.join(60)

    engine = Engine(path)
    try:
        statuses = engine.store.fetchall("SELECT DISTINCT status FROM jobs")
        missing = engine.store.fetchall(
            "SELECT j.id FROM import_jobs j LEFT JOIN import_uploads u USING (id) "
            "WHERE u.id IS NULL"
        )
        imports = engine.store.fetchone("SELECT count(*) FROM import_jobs")
    finally:
        engine.close()
    assert not starter.is_alive()
    assert imports is not None and imports[0] >= len(started)
    assert {status for (status,) in statuses} <= {"committed", "awaiting_review"}
    assert missing == []
