"""The main job on the NetBox demo export: ``omnitwin demo --source netbox``.

Counts, utilization, free blocks and blast radii are checked against values
recomputed from the export itself, with a brute-force graph built from its
cable terminations (patch panels are devices, as in the twin).
"""

from __future__ import annotations

import html
import ipaddress
import json
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

import networkx as nx
import pytest

import omnitwin
from omnitwin.cli import main
from omnitwin.notebook.report import render_report
from serverproc import make_keys, start_server
from testdata import data_file

EXPORT = ("netbox-demo-data", "netbox-demo-v3.6.dcim-ipam.json")
CORES = ["ncsu-coreswitch1", "ncsu-coreswitch2"]
DATA_PORTS = {"interface": "dcim.interface", "frontport": "dcim.frontport"}
DATA_PORTS["rearport"] = "dcim.rearport"


def objects(dump: list[dict[str, Any]], model: str) -> dict[int, dict[str, Any]]:
    return {o["pk"]: o["fields"] for o in dump if o["model"] == model}


@pytest.fixture(scope="module")
def dump() -> list[dict[str, Any]]:
    return json.loads(data_file(*EXPORT).read_text())  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def job(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """Run the demo once; return the output folder and what it printed."""
    import contextlib
    import io

    out = tmp_path_factory.mktemp("netbox") / "out"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        status = main(
            ["demo", "--source", "netbox", str(data_file(*EXPORT)), "--out", str(out)]
        )
    assert status == 0, printed.getvalue()
    return out, printed.getvalue()


def device_names(dump: list[dict[str, Any]]) -> dict[int, str]:
    """Return each device's hostname as the import documents it.

    An unnamed device is ``<type slug>-<pk>``, and a name used at more than
    one site becomes ``<name>.<site slug>``.
    """
    types = objects(dump, "dcim.devicetype")
    slugs = {pk: f["slug"] for pk, f in objects(dump, "dcim.site").items()}
    devices = objects(dump, "dcim.device")
    sites_of: dict[str, set[int]] = defaultdict(set)
    for f in devices.values():
        if f["name"]:
            sites_of[f["name"]].add(f["site"])
    names = {}
    for pk, f in devices.items():
        if not f["name"]:
            names[pk] = f"{types[f['device_type']]['slug']}-{pk}"
        elif len(sites_of[f["name"]]) > 1:
            names[pk] = f"{f['name']}.{slugs[f['site']]}"
        else:
            names[pk] = f["name"]
    return names


def brute_graph(dump: list[dict[str, Any]]) -> nx.Graph[str]:
    """Build the device graph from the cable terminations of the export.

    Every cable whose ends are all data ports joins its two devices, and so
    does a circuit with such a cable on both sides.
    """
    names = device_names(dump)
    owners = {
        model: {pk: names[f["device"]] for pk, f in objects(dump, model).items()}
        for model in DATA_PORTS.values()
    }
    ends: dict[int, list[tuple[str, int]]] = defaultdict(list)
    for f in objects(dump, "dcim.cabletermination").values():
        ends[f["cable"]].append((f["termination_type"][1], f["termination_id"]))

    graph: nx.Graph[str] = nx.Graph()
    graph.add_nodes_from(names.values())
    circuit_of = {
        pk: f["circuit"]
        for pk, f in objects(dump, "circuits.circuittermination").items()
    }
    circuit_ends: dict[int, set[str]] = defaultdict(set)
    for pairs in ends.values():
        data = [(m, pk) for m, pk in pairs if m in DATA_PORTS]
        devices = {owners[DATA_PORTS[m]][pk] for m, pk in data}
        circuits = [circuit_of[pk] for m, pk in pairs if m == "circuittermination"]
        if len(data) == len(pairs) and len(devices) == 2:
            graph.add_edge(*sorted(devices))
        elif len(circuits) == 1 and len(devices) == 1:
            circuit_ends[circuits[0]] |= devices
    # A circuit cabled to a device port on both sides joins the two devices.
    for devices in circuit_ends.values():
        if len(devices) == 2:
            graph.add_edge(*sorted(devices))
    return graph


def reaching(graph: nx.Graph[str], roots: list[str], down: set[str]) -> set[str]:
    alive = graph.subgraph(set(graph) - down)
    found: set[str] = set()
    for root in roots:
        if root in alive:
            found |= nx.node_connected_component(alive, root)
    return found


def cut_off(graph: nx.Graph[str], roots: list[str], down: set[str]) -> set[str]:
    return (reaching(graph, roots, set()) - reaching(graph, roots, down)) | down


def test_job_imports_every_object(
    job: tuple[Path, str], dump: list[dict[str, Any]]
) -> None:
    out, _ = job
    with omnitwin.connect(f"local:{out / 'netbox.duckdb'}", read_only=True) as client:
        assert client.devices.list().total == len(objects(dump, "dcim.device"))
        assert client.subnets.list().total == len(objects(dump, "ipam.prefix"))
        assert client.addresses.list().total == len(objects(dump, "ipam.ipaddress"))
        links = client.topology.links()
    pairs = {tuple(sorted((link.a_hostname, link.b_hostname))) for link in links}
    assert pairs == {tuple(sorted(edge)) for edge in brute_graph(dump).edges}


def test_core_switch_blast_radius_matches_brute_force(
    job: tuple[Path, str], dump: list[dict[str, Any]]
) -> None:
    out, _ = job
    graph = brute_graph(dump)
    with omnitwin.connect(f"local:{out / 'netbox.duckdb'}", read_only=True) as client:
        radius = client.topology.blast_radius(CORES[0], roots=CORES)
    assert set(radius.hostnames) == cut_off(graph, CORES, {CORES[0]})
    assert radius.sites == []


def test_core_switch_leaves_single_point(
    job: tuple[Path, str], dump: list[dict[str, Any]]
) -> None:
    out, _ = job
    graph = brute_graph(dump)
    with omnitwin.connect(f"local:{out / 'netbox.duckdb'}", read_only=True) as client:
        radius = client.topology.blast_radius(CORES[0], roots=CORES)
    expected = {}
    for device in reaching(graph, CORES, {CORES[0]}):
        alone = cut_off(graph, CORES, {device})
        after = cut_off(graph, CORES, {CORES[0], device}) - {CORES[0]}
        if after - alone:
            expected[device] = sorted(after - {device})
    found = {p["hostname"]: p["cuts_off"] for p in radius.new_single_points}
    assert found == expected
    assert len(found["ncsu-coreswitch2"]) == 9


def test_patch_panel_cuts_off_building(
    job: tuple[Path, str], dump: list[dict[str, Any]]
) -> None:
    out, _ = job
    graph = brute_graph(dump)
    with omnitwin.connect(f"local:{out / 'netbox.duckdb'}", read_only=True) as client:
        radius = client.topology.blast_radius("PP:B117", roots=CORES)
    expected = cut_off(graph, CORES, {"PP:B117"})
    assert set(radius.hostnames) == expected
    assert "ncsu117-distswitch1" in expected
    assert radius.sites == ["D. S. Weaver Labs"]


def test_branch_router_cuts_off_prefixes_and_vlans(
    job: tuple[Path, str], dump: list[dict[str, Any]]
) -> None:
    out, _ = job
    graph = brute_graph(dump)
    names = device_names(dump)
    roles = {pk: f["slug"] for pk, f in objects(dump, "dcim.devicerole").items()}
    routers = sorted(
        names[pk]
        for pk, f in objects(dump, "dcim.device").items()
        if roles[f["role"]] == "router"
    )
    sites = {pk: f["name"] for pk, f in objects(dump, "dcim.site").items()}
    akron = next(pk for pk, name in sites.items() if name == "DM-Akron")
    with omnitwin.connect(f"local:{out / 'netbox.duckdb'}", read_only=True) as client:
        radius = client.topology.blast_radius("dmi01-akron-rtr01", roots=routers)
    assert set(radius.hostnames) == cut_off(graph, routers, {"dmi01-akron-rtr01"})
    assert radius.sites == ["DM-Akron"]
    prefixes = {
        f["prefix"] for f in objects(dump, "ipam.prefix").values() if f["site"] == akron
    }
    assert set(radius.subnet_cidrs) == prefixes
    vlans = {
        f"{f['name']} ({f['vid']}) at DM-Akron"
        for f in objects(dump, "ipam.vlan").values()
        if f["site"] == akron
    }
    assert set(radius.vlan_names) == vlans


def test_container_utilization_and_free_blocks(
    job: tuple[Path, str], dump: list[dict[str, Any]]
) -> None:
    out, printed = job
    container = ipaddress.ip_network("10.112.0.0/15")
    inside = [
        ipaddress.ip_network(f["prefix"])
        for f in objects(dump, "ipam.prefix").values()
        if f["vrf"] is None
        and ipaddress.ip_network(f["prefix"]).version == 4
        and ipaddress.ip_network(f["prefix"]) != container
        and ipaddress.ip_network(f["prefix"]).subnet_of(container)  # type: ignore[arg-type]
    ]
    used = sum(n.num_addresses for n in ipaddress.collapse_addresses(inside))
    free = [
        block
        for block in container.subnets(new_prefix=24)
        if not any(block.overlaps(n) for n in inside)
    ]
    with omnitwin.connect(f"local:{out / 'netbox.duckdb'}", read_only=True) as client:
        top = next(s for s in client.subnets.iter() if s.cidr == str(container))
        detail = client.subnets.get(top.id)
        found = client.subnets.available(24, subnet_id=top.id, limit=4)
    assert detail.used_ips == used
    assert found.total_free == len(free)
    assert found.blocks == [str(b) for b in free[:4]]
    assert f"Free /24 blocks in {container} (global): {len(free)} in all" in printed


def report_text(out: Path, name: str = "blast-radius.html") -> str:
    page = (out / name).read_text(encoding="utf-8")
    page = re.sub(r"<script.*?</script>|<style.*?</style>", "", page, flags=re.S)
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", page)))


def test_report_shows_the_job(job: tuple[Path, str]) -> None:
    out, printed = job
    text = report_text(out)
    assert "ncsu-coreswitch1 failing cuts off 1 device" in text
    assert "from the roots ncsu-coreswitch1, ncsu-coreswitch2" in text
    assert "ncsu-coreswitch2 9 PP:B117, PP:B118" in text
    assert "10.112.0.0/15 global" in text
    assert "has 256 free /24 blocks" in text
    assert "ncsu-coreswitch2 becomes the only path for 9 devices" in printed


def test_drift_page_says_nothing_was_observed(job: tuple[Path, str]) -> None:
    out, _ = job
    page = (out / "drift-summary.html").read_text(encoding="utf-8")
    assert "No device has detected state yet, so nothing was compared" in page
    assert "open drift events" not in page


def test_demo_rejects_a_used_database(
    job: tuple[Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    out, _ = job
    db = out / "netbox.duckdb"
    before = db.stat().st_size
    args = ["demo", "--source", "netbox", str(data_file(*EXPORT)), "--out", str(out)]
    assert main(args) == 2
    assert (
        f"{db} already contains a twin (72 devices, 90 subnets)"
        in capsys.readouterr().err
    )
    assert db.stat().st_size == before


def test_demo_source_needs_a_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--source", "netbox"]) == 2
    assert "--source netbox needs the export file" in capsys.readouterr().err


def report_body(text: str) -> str:
    """Return the report from its title to the recorded inputs."""
    start = text.index("Blast radius report")
    return text[start : text.index("Report inputs", start)]


def test_report_same_through_server(job: tuple[Path, str], tmp_path: Path) -> None:
    out, _ = job
    db = tmp_path / "served.duckdb"
    db.write_bytes((out / "netbox.duckdb").read_bytes())
    key = make_keys(db, {"demo": ("default", True)})["demo"]
    server = start_server(tmp_path, db=db)
    try:
        render_report(
            "blast-radius",
            CORES[0],
            tmp_path / "served.html",
            url=server.url,
            api_key=key.secret,
            roots=CORES,
        )
    finally:
        server.stop()
    served = report_body(report_text(tmp_path, "served.html"))
    local = report_body(report_text(out))
    assert "ncsu-coreswitch2" in served
    assert served == local


def test_importing_again_changes_nothing(
    job: tuple[Path, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out, _ = job
    db = tmp_path / "again.duckdb"
    db.write_bytes((out / "netbox.duckdb").read_bytes())
    with omnitwin.connect(f"local:{db}", read_only=True) as client:
        before = (client.devices.list().total, len(client.topology.links()))
    args = ["import", "netbox", str(data_file(*EXPORT)), "--db", str(db)]
    assert main([*args, "--accept-suggestions"]) == 0
    printed = capsys.readouterr().out
    assert "committed" in printed
    assert "the site is already stored" in printed
    assert "this cable is already stored as a link" in printed
    with omnitwin.connect(f"local:{db}", read_only=True) as client:
        after = (client.devices.list().total, len(client.topology.links()))
    assert after == before


def test_import_missing_file_creates_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "new.duckdb"
    missing = tmp_path / "export.json"
    assert main(["import", "netbox", str(missing), "--db", str(db)]) == 2
    assert (
        f"{missing} not found; give the path of the export" in capsys.readouterr().err
    )
    assert not db.exists()


def test_site_with_working_devices_not_cut_off(job: tuple[Path, str]) -> None:
    out, _ = job
    with omnitwin.connect(f"local:{out / 'netbox.duckdb'}", read_only=True) as client:
        # The PDU has no data links; the router and switch of its site stay up.
        alone = client.topology.blast_radius("dmi01-akron-pdu01")
        # DM-Akron never reached the core roots, so the failure cuts off nothing.
        unrooted = client.topology.blast_radius("dmi01-akron-sw01", roots=CORES)
    assert alone.hostnames == ["dmi01-akron-pdu01"]
    assert alone.sites == []
    assert alone.subnets == []
    assert alone.vlans == []
    assert unrooted.sites == []
    assert unrooted.subnets == []


def test_import_again_skips_interfaces(
    job: tuple[Path, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out, _ = job
    db = tmp_path / "again.duckdb"
    db.write_bytes((out / "netbox.duckdb").read_bytes())
    args = ["import", "netbox", str(data_file(*EXPORT)), "--db", str(db)]
    assert main([*args, "--accept-suggestions"]) == 0
    printed = capsys.readouterr().out
    assert "create:" not in printed
    assert "the interface's device row is skipped" in printed
