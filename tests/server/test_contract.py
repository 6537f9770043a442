"""One contract suite run on the local backend and on a live server."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import pandas.testing as pdt
import pytest

import omnitwin
from omnitwin import (
    Address,
    AuditEvent,
    CIDROverlap,
    Duplicate,
    FreeBlocks,
    ImmutableField,
    InvalidAddress,
    InvalidCIDR,
    InvalidTransition,
    NoFreeSpace,
    NotFound,
    Page,
    Subnet,
    SubnetDetail,
    ValidationError,
)
from omnitwin.cli import load_sample
from omnitwin.client import _http
from omnitwin.client._devices import load_sample_devices
from omnitwin.client._export import ARROW_STREAM, NDJSON
from omnitwin.engine.context import DEFAULT_WORKSPACE
from omnitwin.engine.ingest import sample_detected_state
from omnitwin.engine.jobs import Job
from omnitwin.errors import Conflict, NodeNotFound, NoPath
from omnitwin.models import (
    BlastRadiusResult,
    Device,
    DriftEvent,
    ImportConflict,
    ImportJob,
    IngestReport,
    Site,
    TopologyGraph,
    TopologyLink,
    TopologyPath,
)
from omnitwin.notebook import loaders
from omnitwin.sample import generate_fabric
from serverproc import make_keys, start_server

REPO = Path(__file__).resolve().parents[2]
DATA = Path(os.environ.get("OMNITWIN_TEST_DATA", REPO.parent / "shared" / "data"))
INFOBLOX_EXPORT = ("infoblox", "ibx-sdk_csvexport_networks.csv")


def data_file(*parts: str) -> Path:
    """Return a file of the shared data folder, failing with its name if absent."""
    path = DATA.joinpath(*parts)
    if not path.exists():
        pytest.fail(f"test data file {path} is missing; set OMNITWIN_TEST_DATA")
    return path


def is_http(client: omnitwin.Client | omnitwin.AsyncClient) -> bool:
    return type(client.backend).__name__ == "HttpBackend"


def test_create_returns_subnet(client: omnitwin.Client) -> None:
    subnet = client.subnets.create(
        "10.20.0.0/16", purpose="lab", vlan_id=120, tags={"env": "dev"}
    )
    assert isinstance(subnet, Subnet)
    assert subnet.id.startswith("sn_")
    assert subnet.cidr == "10.20.0.0/16"
    assert subnet.vlan_id == 120
    assert subnet.tags == {"env": "dev"}


def test_get_returns_detail(client: omnitwin.Client) -> None:
    parent = client.subnets.create("10.0.0.0/16", is_container=True)
    child = client.subnets.create("10.0.1.0/24")
    detail = client.subnets.get(parent.id)
    assert isinstance(detail, SubnetDetail)
    assert detail.subnet == parent
    assert detail.total_ips == 65536
    assert [c.id for c in detail.children] == [child.id]
    assert detail.used_ips == 256


def test_list_pages(client: omnitwin.Client) -> None:
    for third in range(5):
        client.subnets.create(f"192.168.{third}.0/24")
    page = client.subnets.list(page=2, per_page=2)
    assert isinstance(page, Page)
    assert page.total == 5
    assert page.page == 2
    assert page.per_page == 2
    assert [s.cidr for s in page] == ["192.168.2.0/24", "192.168.3.0/24"]
    assert len(list(client.subnets.iter(per_page=2))) == 5


def test_list_filters(client: omnitwin.Client) -> None:
    client.subnets.create("10.1.0.0/16", status="reserved", purpose="web tier")
    client.subnets.create("10.2.0.0/16", purpose="db tier")
    assert [s.cidr for s in client.subnets.list(status="reserved")] == ["10.1.0.0/16"]
    assert client.subnets.list(purpose="db").total == 1
    assert client.subnets.list(within="10.0.0.0/8").total == 2


def test_host_bits_raise_invalid_cidr(client: omnitwin.Client) -> None:
    with pytest.raises(InvalidCIDR) as caught:
        client.subnets.create("10.0.83.196/26")
    assert "10.0.83.192/26" in caught.value.message
    assert caught.value.status == 400


def test_duplicate_and_overlap_raise(client: omnitwin.Client) -> None:
    client.subnets.create("10.9.0.0/24")
    with pytest.raises(Duplicate):
        client.subnets.create("10.9.0.0/24")
    client.subnets.create("10.9.1.0/25")
    with pytest.raises(CIDROverlap):
        client.subnets.create("10.9.1.0/24")


def test_get_missing_raises_not_found(client: omnitwin.Client) -> None:
    with pytest.raises(NotFound) as caught:
        client.subnets.get("sn_00000000000000000000000000")
    assert caught.value.code == "not_found"
    if is_http(client):
        assert caught.value.request_id is not None
        assert caught.value.request_id.startswith("req_")


def test_update_merges_tags(client: omnitwin.Client) -> None:
    subnet = client.subnets.create("10.3.0.0/24", tags={"a": "1", "b": "2"})
    updated = client.subnets.update(
        subnet.id, tags={"b": None, "c": "3"}, purpose="edge", intent="relabel"
    )
    assert updated.tags == {"a": "1", "c": "3"}
    assert updated.purpose == "edge"


def test_update_errors(client: omnitwin.Client) -> None:
    subnet = client.subnets.create("10.4.0.0/24", status="deprecated")
    with pytest.raises(ImmutableField):
        client.subnets.update(subnet.id, cidr="10.5.0.0/24")
    with pytest.raises(InvalidTransition):
        client.subnets.update(subnet.id, status="allocated")
    with pytest.raises(ValidationError) as caught:
        client.subnets.update(subnet.id, colour="red")
    assert "colour" in caught.value.message


def test_available_and_allocate_by_id(client: omnitwin.Client) -> None:
    block = client.subnets.create("10.128.0.0/22", is_container=True)
    free = client.subnets.available(24, subnet_id=block.id, limit=2)
    assert isinstance(free, FreeBlocks)
    assert free.blocks == ["10.128.0.0/24", "10.128.1.0/24"]
    assert free.total_free == 4
    allocated = client.subnets.allocate(24, subnet_id=block.id, purpose="payments")
    assert allocated.cidr == "10.128.0.0/24"
    assert allocated.parent_id == block.id
    assert allocated.purpose == "payments"


def test_available_and_allocate_by_cidr(client: omnitwin.Client) -> None:
    client.subnets.create("2001:db8::/48", is_container=True)
    free = client.subnets.available(64, cidr="2001:db8::/48", limit=1)
    assert free.blocks == ["2001:db8::/64"]
    allocated = client.subnets.allocate(64, cidr="2001:db8::/48", policy="last_fit")
    assert allocated.cidr == "2001:db8:0:ffff::/64"


def test_allocate_full_raises_no_free_space(client: omnitwin.Client) -> None:
    block = client.subnets.create("10.7.0.0/23", is_container=True)
    client.subnets.allocate(24, subnet_id=block.id)
    client.subnets.allocate(24, subnet_id=block.id)
    with pytest.raises(NoFreeSpace):
        client.subnets.allocate(24, subnet_id=block.id)


def test_available_needs_parent(client: omnitwin.Client) -> None:
    with pytest.raises(ValidationError):
        client.subnets.available(24)


def test_available_addresses(client: omnitwin.Client) -> None:
    subnet = client.subnets.create("192.0.2.0/30")
    assert client.subnets.available_addresses(subnet.id) == ["192.0.2.1", "192.0.2.2"]
    p2p = client.subnets.create("198.51.100.0/31")
    assert client.subnets.available_addresses(p2p.id, limit=1) == ["198.51.100.0"]


def test_addresses_create_get_list(client: omnitwin.Client) -> None:
    subnet = client.subnets.create("192.0.2.0/24")
    address = client.addresses.create("192.0.2.10/24", hostname="web-01")
    assert isinstance(address, Address)
    assert address.subnet_id == subnet.id
    assert client.addresses.get(address.id) == address
    listed = client.addresses.list(subnet_id=subnet.id)
    assert [a.id for a in listed] == [address.id]
    assert client.addresses.list(hostname="nope").total == 0


def test_invalid_address_raises(client: omnitwin.Client) -> None:
    with pytest.raises(InvalidAddress):
        client.addresses.create("192.0.2.999")
    with pytest.raises(NotFound):
        client.addresses.get("ad_00000000000000000000000000")


def test_audit_records_actor_and_intent(client: omnitwin.Client) -> None:
    subnet = client.subnets.create("10.50.0.0/24", intent="new lab")
    client.subnets.update(subnet.id, purpose="lab")
    trail = client.subnets.audit(subnet.id)
    assert isinstance(trail.data[0], AuditEvent)
    assert [e.action for e in trail] == ["subnet.create", "subnet.update"]
    assert trail.data[0].intent == "new lab"
    actor = trail.data[0].actor
    if is_http(client):
        assert actor.startswith("key:key_")
        assert "ot_live_" not in actor
    else:
        assert actor == "user:local"
    assert client.audit.list(subject=subnet.id).total == 2
    assert client.audit.list(action="subnet.update").total == 1


def test_audit_verify(client: omnitwin.Client) -> None:
    # Over HTTP the chain already has the key.create event of the test's key.
    before = client.audit.verify().checked
    client.subnets.create("10.60.0.0/24")
    result = client.audit.verify()
    assert result.ok is True
    assert result.checked == before + 1


def test_subnet_audit_missing_raises(client: omnitwin.Client) -> None:
    with pytest.raises(NotFound):
        client.subnets.audit("sn_00000000000000000000000000")


def test_bad_page_raises(client: omnitwin.Client) -> None:
    with pytest.raises(ValidationError):
        client.subnets.list(per_page=500)


def test_async_client_round_trip(async_client: omnitwin.AsyncClient) -> None:
    async def scenario() -> tuple[str, int, list[str]]:
        async with async_client as client:
            block = await client.subnets.create("10.70.0.0/23", is_container=True)
            allocated = await client.subnets.allocate(24, subnet_id=block.id)
            page = await client.subnets.list()
            with pytest.raises(Duplicate):
                await client.subnets.create("10.70.0.0/23")
            free = await client.subnets.available(24, subnet_id=block.id)
            return allocated.cidr, page.total, free.blocks

    cidr, total, blocks = asyncio.run(scenario())
    assert cidr == "10.70.0.0/24"
    assert total == 2
    assert blocks == ["10.70.1.0/24"]


def test_concurrent_allocations_unique(async_client: omnitwin.AsyncClient) -> None:
    async def scenario() -> list[str]:
        async with async_client as client:
            block = await client.subnets.create("10.80.0.0/20", is_container=True)
            results = await asyncio.gather(
                *(client.subnets.allocate(24, subnet_id=block.id) for _ in range(16))
            )
            return [s.cidr for s in results]

    cidrs = asyncio.run(scenario())
    assert len(set(cidrs)) == 16


# --- bulk export into pandas -------------------------------------------------

EXPORT_FILTERS: list[dict[str, str]] = [
    {},
    {"within": "10.0.0.0/8"},
    {"status": "reserved"},
    {"vrf": "red"},
    {"within": "2001:db8::/32", "vrf": "red"},
    {"within": "192.0.2.0/24"},
]


def fill_export_sample(client: omnitwin.Client) -> None:
    """Create subnets that cover every column of an export, in two VRFs."""
    block = client.subnets.create(
        "10.0.0.0/8", is_container=True, owner="team:net", tags={"region": "us"}
    )
    client.subnets.create("10.1.0.0/16", status="reserved", vlan_id=110)
    client.subnets.allocate(
        24, subnet_id=block.id, purpose="payments", tags={"app": "pay", "tier": "1"}
    )
    client.subnets.create("10.2.0.0/31", is_pool=True, purpose="p2p link")
    client.subnets.create("10.3.0.0/16", vrf="red", status="reserved")
    client.subnets.create("2001:db8::/32", vrf="red", is_container=True)
    client.subnets.create("2001:db8:1::/48", vrf="red", status="available")
    client.subnets.update(block.id, purpose="aggregate", tags={"region": "us-east"})


def test_to_pandas_matches_records(client: omnitwin.Client) -> None:
    fill_export_sample(client)
    for filters in EXPORT_FILTERS:
        frame = client.subnets.to_pandas(**filters)
        records = list(client.subnets.iter(**filters))
        expected = loaders.to_pandas(records, kind="Subnet")
        assert len(frame) == len(records), filters
        pdt.assert_frame_equal(frame, expected, obj=f"to_pandas({filters})")


def test_to_pandas_invalid_filter_raises(client: omnitwin.Client) -> None:
    with pytest.raises(InvalidCIDR):
        client.subnets.to_pandas(within="10.0.0.1/8")
    with pytest.raises(ValidationError):
        client.subnets.to_pandas(status="retired")


def test_async_to_pandas(async_client: omnitwin.AsyncClient) -> None:
    async def scenario() -> tuple[Any, Any]:
        async with async_client as client:
            await client.subnets.create("10.9.0.0/16", is_container=True)
            await client.subnets.create("10.9.1.0/24", vlan_id=9, tags={"a": "b"})
            frame = await client.subnets.to_pandas(within="10.9.0.0/16")
            records = [s async for s in client.subnets.iter()]
            return frame, loaders.to_pandas(records, kind="Subnet")

    frame, expected = asyncio.run(scenario())
    pdt.assert_frame_equal(frame, expected)


@pytest.mark.parametrize("media_type", [ARROW_STREAM, NDJSON])
def test_to_pandas_same_on_both_backends(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, media_type: str
) -> None:
    """One database read by the embedded engine, then served over HTTP."""
    db = tmp_path / "export.duckdb"
    with omnitwin.connect(f"local:{db}") as local:
        fill_export_sample(local)
        expected = [local.subnets.to_pandas(**f) for f in EXPORT_FILTERS]
    key = make_keys(db, {"reader": (DEFAULT_WORKSPACE, True)})["reader"]
    monkeypatch.setattr(_http, "export_accept", lambda: media_type)
    proc = start_server(tmp_path, db=db)
    try:
        with omnitwin.Client(proc.url, api_key=key.secret) as remote:
            for filters, local_frame in zip(EXPORT_FILTERS, expected, strict=True):
                frame = remote.subnets.to_pandas(**filters)
                pdt.assert_frame_equal(frame, local_frame, obj=f"{filters}")
    finally:
        proc.stop()
    assert " 500 " not in proc.log()


# --- devices, drift, discovery, topology, jobs and imports --------------------

SITE = "nyc1"


def load_network(client: omnitwin.Client) -> list[IngestReport]:
    """Load the sample network's subnets, devices and detected state."""
    network = generate_fabric(sites=1, spines=2, leaves=4, servers_per_leaf=1)
    assert load_sample(client, network) == 23
    assert load_sample_devices(client, network) == 12
    return [
        client.discovery.ingest("napalm", getters)
        for getters in sample_detected_state(network)
    ]


def test_devices_create_get_update(client: omnitwin.Client) -> None:
    site = client.devices.create_site("fra1", region="eu-central")
    assert isinstance(site, Site)
    device = client.devices.create(
        "edge-01", role="router", site="fra1", management_address="192.0.2.1"
    )
    assert isinstance(device, Device)
    assert device.id.startswith("dv_")
    assert client.devices.get("EDGE-01") == device
    updated = client.devices.update(device.id, {"twin_state.os_version": "4.30"})
    assert updated.twin_state == {"os_version": "4.30"}
    trail = client.devices.audit(device.id)
    assert [e.action for e in trail] == ["device.create", "device.update"]
    assert [s.name for s in client.devices.list_sites()] == ["fra1"]


def test_devices_list_and_errors(client: omnitwin.Client) -> None:
    created = client.devices.create_many(
        [{"hostname": f"sw-{i}", "role": "switch", "site": "lab"} for i in range(3)]
    )
    assert [d.hostname for d in created] == ["sw-0", "sw-1", "sw-2"]
    page = client.devices.list(site="lab", per_page=2)
    assert page.total == 3
    assert [d.hostname for d in page] == ["sw-0", "sw-1"]
    with pytest.raises(Duplicate):
        client.devices.create("sw-0", role="switch", site="lab")
    with pytest.raises(NotFound):
        client.devices.get("dv_00000000000000000000000000")
    with pytest.raises(ImmutableField):
        client.devices.update(created[0].id, {"drift_score": 0.5})


def test_sample_network_drift(client: omnitwin.Client) -> None:
    reports = load_network(client)
    assert all(isinstance(r, IngestReport) for r in reports)
    assert sum(r.drift_opened for r in reports) == 6
    events = client.drift.events(device=f"leaf-01.{SITE}")
    assert isinstance(events.data[0], DriftEvent)
    assert [(e.field, e.twin_value, e.actual_value) for e in events] == [
        ("os_version", "4.30.1F", "4.31.0F")
    ]
    assert client.drift.events(status="open").total == 6
    assert client.devices.list(has_drift=True).total == 5
    event = client.drift.get(events.data[0].id)
    assert event == events.data[0]
    ignored = client.drift.ignore(event.id, reason="lab upgrade")
    assert ignored.status == "ignored"
    with pytest.raises(InvalidTransition):
        client.drift.ignore(event.id)
    assert client.drift.rescore_all()["devices"] == 12


def test_drift_links(client: omnitwin.Client) -> None:
    load_network(client)
    links = client.drift.links()
    assert sorted(links) == ["missing", "unexpected"]
    missing = links["missing"]
    assert all(isinstance(link, TopologyLink) for link in missing)
    assert [(m.a_hostname, m.b_hostname) for m in missing] == [
        (f"spine-02.{SITE}", f"leaf-02.{SITE}")
    ]
    unexpected = links["unexpected"][0]
    assert {unexpected.a_hostname, unexpected.b_hostname} == {
        f"leaf-03.{SITE}",
        f"leaf-04.{SITE}",
    }


def test_discovery_nmap_file_unmatched(client: omnitwin.Client) -> None:
    xml = data_file("nmap-libnmap", "2_hosts.xml").read_text()
    report = client.discovery.ingest("nmap", xml)
    assert report.observations == 2
    assert report.matched == []
    assert len(report.unmatched) == 2
    assert len(client.discovery.unmatched(limit=1)) == 1
    with pytest.raises(ValidationError):
        client.discovery.ingest("cli", "hostname x")


def test_discovery_batfish_snapshot(client: omnitwin.Client) -> None:
    from omnitwin.engine.discovery import load_snapshot, read_snapshot

    layer1 = data_file("batfish-example", "example_layer1_topology.json")
    twin = load_snapshot(data_file("batfish-example", "live"), layer1)
    client.devices.create_many(twin.devices)
    client.topology.add_links(twin.links)
    outage = data_file("batfish-example", "live-with-interface-outage")
    report = client.discovery.ingest("batfish", read_snapshot(outage, layer1))
    assert report.format == "batfish"
    assert len(report.matched) == 15
    (missing,) = client.drift.links()["missing"]
    assert ("as2border2", "GigabitEthernet0/0") in {
        (missing.a_hostname, missing.port_a),
        (missing.b_hostname, missing.port_b),
    }


def test_topology_graph_path_blast_radius(client: omnitwin.Client) -> None:
    load_network(client)
    graph = client.topology.graph()
    assert isinstance(graph, TopologyGraph)
    assert len(graph.nodes) == 19
    scoped = client.topology.graph(scope=f"leaf-01.{SITE}", depth=1)
    assert len(scoped.nodes) < len(graph.nodes)
    path = client.topology.path(f"leaf-01.{SITE}", f"leaf-02.{SITE}")
    assert isinstance(path, TopologyPath)
    assert path.hostnames[0] == f"leaf-01.{SITE}"
    assert path.hostnames[-1] == f"leaf-02.{SITE}"
    assert path.cost == 2.0
    detected = client.topology.path(
        f"leaf-03.{SITE}", f"leaf-04.{SITE}", kinds=["detected"]
    )
    assert detected.cost == 1.0
    radius = client.topology.blast_radius(f"leaf-01.{SITE}")
    assert isinstance(radius, BlastRadiusResult)
    assert radius.hostnames == [f"leaf-01.{SITE}", f"srv-01-01.{SITE}"]
    rooted = client.topology.blast_radius(f"leaf-01.{SITE}", roots=["core-01"])
    assert rooted.roots is not None
    with pytest.raises(NodeNotFound):
        client.topology.path("nowhere", f"leaf-01.{SITE}")


def test_topology_links(client: omnitwin.Client) -> None:
    a = client.devices.create("r1", role="router", site="lab")
    b = client.devices.create("r2", role="router", site="lab")
    client.devices.create("r3", role="router", site="lab")
    link = client.topology.add_link("r1", "Ethernet1", "r2", "Ethernet1")
    assert isinstance(link, TopologyLink)
    assert {link.a, link.b} == {a.id, b.id}
    added = client.topology.add_links(
        [{"a": "r2", "port_a": "Ethernet2", "b": "r3", "port_b": "Ethernet1"}]
    )
    assert len(added) == 1
    assert len(client.topology.links(kind="intended")) == 2
    assert len(client.topology.links(device="r1")) == 1
    assert client.topology.path("r1", "r3").cost == 2.0
    client.devices.create("r4", role="router", site="lab")
    with pytest.raises(NoPath):
        client.topology.path("r1", "r4")


def test_reconcile_trust_detected(client: omnitwin.Client) -> None:
    load_network(client)
    job = client.devices.reconcile(f"leaf-01.{SITE}", "trust_detected")
    assert isinstance(job, Job)
    assert job.kind == "reconcile"
    assert client.jobs.get(job.id).id == job.id
    done = client.jobs.wait(job.id, timeout=30)
    assert done.status == "completed"
    device = client.devices.get(f"leaf-01.{SITE}")
    assert device.twin_state["os_version"] == "4.31.0F"
    with pytest.raises(ValidationError):
        client.devices.reconcile(f"leaf-01.{SITE}", "guess")
    with pytest.raises(NotFound):
        client.jobs.get("job_00000000000000000000000000")


def test_reconcile_interactive_decide(client: omnitwin.Client) -> None:
    load_network(client)
    job = client.devices.reconcile(f"leaf-01.{SITE}", "interactive")
    review = client.jobs.wait(job.id, timeout=30)
    assert review.status == "awaiting_review"
    assert [p["field"] for p in review.result["proposals"]] == ["os_version"]
    decided = client.devices.decide(job.id, {"os_version": "twin"})
    assert decided.id == job.id
    assert client.jobs.wait(job.id, timeout=30).status == "completed"
    plans = client.devices.remediation_plans(f"leaf-01.{SITE}")
    assert len(plans) == 1
    assert client.devices.remediation_plans() == plans


def test_import_real_file_review_commit(client: omnitwin.Client) -> None:
    client.subnets.create("100.64.50.0/24", purpose="lab")
    path = data_file(*INFOBLOX_EXPORT)
    job = client.imports.start("infoblox", path, dry_run=True)
    assert isinstance(job, ImportJob)
    assert job.filename == path.name
    review = client.imports.wait(job.id, timeout=30)
    assert review.status == "awaiting_review"
    assert review.plan is not None
    assert review.plan.create == {"subnet": 1}
    conflicts = client.imports.conflicts(job.id)
    assert isinstance(conflicts[0], ImportConflict)
    assert [(c.kind, c.subject) for c in conflicts] == [("duplicate", "100.64.50.0/24")]
    with pytest.raises(Conflict):
        client.imports.commit(job.id)
    resolved = client.imports.resolve(job.id, conflicts[0].id, "merge")
    assert resolved.resolution == "merge"
    assert client.imports.conflicts(job.id, open_only=True) == []
    client.imports.commit(job.id)
    assert client.imports.wait(job.id, timeout=30).status == "committed"
    assert client.subnets.list().total == 2


def test_import_bytes_and_errors(client: omnitwin.Client) -> None:
    data = b"cidr,purpose\n10.44.0.0/24,lab\n10.44.1.0/24,lab\n"
    job = client.imports.start("csv", data, filename="lab.csv")
    assert client.imports.get(job.id).filename == "lab.csv"
    assert client.imports.wait(job.id, timeout=30).status == "committed"
    assert client.subnets.list(within="10.44.0.0/16").total == 2
    with pytest.raises(ValidationError):
        client.imports.start("spreadsheet", data)
    with pytest.raises(NotFound):
        client.imports.get("imp_00000000000000000000000000")


def test_async_devices_topology_imports(async_client: omnitwin.AsyncClient) -> None:
    async def scenario() -> tuple[Device, TopologyGraph, ImportJob, Job]:
        async with async_client as client:
            await client.devices.create("r1", role="router", site="lab")
            device = await client.devices.create("r2", role="router", site="lab")
            await client.devices.update(device.id, {"twin_state.os_version": "1"})
            with pytest.raises(NotFound):
                await client.devices.get("r9")
            graph = await client.topology.graph(scope="r2", depth=1)
            job = await client.imports.start("csv", b"cidr\n10.45.0.0/24\n")
            done = await client.imports.wait(job.id, timeout=30)
            report = await client.discovery.ingest(
                "napalm",
                {"get_facts": {"hostname": "r2", "os_version": "2"}},
            )
            assert report.drift_opened == 1
            reconcile = await client.devices.reconcile("r2", "trust_twin")
            finished = await client.jobs.wait(reconcile.id, timeout=30)
            return device, graph, done, finished

    device, graph, done, finished = asyncio.run(scenario())
    assert device.hostname == "r2"
    assert device.id in {node["id"] for node in graph.nodes}
    assert done.status == "committed"
    assert finished.status == "completed"
