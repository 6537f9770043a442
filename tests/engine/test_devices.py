"""Tests for the device service, sites, drift scoring and the sample loader."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

import omnitwin
from omnitwin.client._devices import load_sample_devices, sample_detected_state
from omnitwin.engine.context import Context
from omnitwin.engine.devices import set_path
from omnitwin.engine.engine import Engine
from omnitwin.errors import (
    Duplicate,
    ImmutableField,
    InvalidAddress,
    InvalidTransition,
    NotFound,
    ValidationError,
)
from omnitwin.models import Device
from omnitwin.sample import generate_fabric


def make(
    engine: Engine, ctx: Context, hostname: str = "spine-01", **kw: object
) -> Device:
    fields: dict[str, object] = {"role": "switch", "site": "nyc1", **kw}
    return engine.devices.create(ctx, hostname, **fields)  # type: ignore[arg-type]


# --- create and read ----------------------------------------------------------


def test_create_returns_device(engine: Engine, ctx: Context) -> None:
    device = make(engine, ctx, management_address="10.0.0.1/32", role="Switch")
    assert device.id.startswith("dv_")
    assert device.role == "switch"
    assert device.management_address == "10.0.0.1"
    assert device.drift_score is None
    assert device.detected_state == {}


def test_get_by_id_and_hostname(engine: Engine, ctx: Context) -> None:
    device = make(engine, ctx, "Spine-01.NYC1")
    assert engine.devices.get(ctx, device.id) == device
    assert engine.devices.get(ctx, "spine-01.nyc1") == device


def test_get_unknown_raises(engine: Engine, ctx: Context) -> None:
    with pytest.raises(NotFound):
        engine.devices.get(ctx, "nowhere")


def test_duplicate_hostname_rejected(engine: Engine, ctx: Context) -> None:
    make(engine, ctx, "leaf-01")
    with pytest.raises(Duplicate):
        make(engine, ctx, "LEAF-01")


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"role": ""}, ValidationError),
        ({"site": None}, ValidationError),
        ({"management_address": "10.0.0.300"}, InvalidAddress),
        ({"twin_state": ["not", "a", "map"]}, ValidationError),
        ({"rack": 7}, ValidationError),
    ],
)
def test_create_rejects_invalid(
    engine: Engine, ctx: Context, fields: dict[str, object], error: type[Exception]
) -> None:
    with pytest.raises(error):
        make(engine, ctx, **fields)


def test_create_many_is_atomic(engine: Engine, ctx: Context) -> None:
    items = [
        {"hostname": "a", "role": "switch", "site": "lab"},
        {"hostname": "b", "role": "switch", "site": "lab"},
        {"hostname": "A", "role": "switch", "site": "lab"},
    ]
    with pytest.raises(Duplicate):
        engine.devices.create_many(ctx, items)
    assert engine.devices.list(ctx).total == 0


def test_create_many_joins_open_transaction(engine: Engine, ctx: Context) -> None:
    with pytest.raises(RuntimeError), engine.store.transaction():
        engine.devices.create_many(ctx, [{"hostname": "a", "role": "pdu", "site": "x"}])
        raise RuntimeError("roll back")
    assert engine.devices.list(ctx).total == 0


def test_list_filters_and_pages(engine: Engine, ctx: Context) -> None:
    for i in range(5):
        make(engine, ctx, f"leaf-{i}", site="nyc1" if i % 2 else "sfo1")
    make(engine, ctx, "fw-1", role="firewall", site="nyc1")
    assert engine.devices.list(ctx, site="nyc1").total == 3
    assert engine.devices.list(ctx, role="FIREWALL").total == 1
    page = engine.devices.list(ctx, per_page=2, page=3)
    assert [d.hostname for d in page] == ["leaf-3", "leaf-4"]
    assert page.total == 6
    with pytest.raises(ValidationError):
        engine.devices.list(ctx, per_page=201)


def test_sites_created_with_devices(engine: Engine, ctx: Context) -> None:
    engine.devices.create_site(ctx, "ams1", region="eu-west", owner="team:dc")
    make(engine, ctx, site="nyc1")
    sites = engine.devices.list_sites(ctx)
    assert [s.name for s in sites] == ["ams1", "nyc1"]
    assert sites[0].region == "eu-west"
    with pytest.raises(Duplicate):
        engine.devices.create_site(ctx, "ams1")


# --- update -------------------------------------------------------------------


def test_update_fields_and_audit(engine: Engine, ctx: Context) -> None:
    device = make(engine, ctx, rack="r1")
    updated = engine.devices.update(ctx, device.id, {"rack": "r2", "owner": "team:net"})
    assert (updated.rack, updated.owner) == ("r2", "team:net")
    trail = engine.devices.audit_trail(ctx, device.id).data
    assert [e.action for e in trail] == ["device.create", "device.update"]
    assert trail[1].changes == {
        "before": {"rack": "r1", "owner": None},
        "after": {"rack": "r2", "owner": "team:net"},
    }


def test_update_twin_state_dotted_path_merges(engine: Engine, ctx: Context) -> None:
    twin = {"os_version": "4.30", "interfaces": {"Ethernet1": {"mtu": 1500}}}
    device = make(engine, ctx, twin_state=twin)
    updated = engine.devices.update(
        ctx,
        device.id,
        {"twin_state.interfaces.Ethernet1.mtu": 9000, "twin_state.os_version": None},
    )
    assert updated.twin_state == {"interfaces": {"Ethernet1": {"mtu": 9000}}}


def test_update_twin_state_map_replaces(engine: Engine, ctx: Context) -> None:
    device = make(engine, ctx, twin_state={"os_version": "4.30", "model": "x"})
    updated = engine.devices.update(ctx, device.id, {"twin_state": {"model": "y"}})
    assert updated.twin_state == {"model": "y"}


def test_update_rejects_detected_state(engine: Engine, ctx: Context) -> None:
    device = make(engine, ctx)
    with pytest.raises(ImmutableField):
        engine.devices.update(ctx, device.id, {"detected_state": {}})
    with pytest.raises(ValidationError):
        engine.devices.update(ctx, device.id, {"colour": "red"})


def test_update_hostname_checks_duplicates(engine: Engine, ctx: Context) -> None:
    make(engine, ctx, "a")
    b = make(engine, ctx, "b")
    with pytest.raises(Duplicate):
        engine.devices.update(ctx, b.id, {"hostname": "A"})
    assert engine.devices.update(ctx, b.id, {"hostname": "B"}).hostname == "B"


def test_update_without_change_adds_no_audit(engine: Engine, ctx: Context) -> None:
    device = make(engine, ctx, rack="r1")
    engine.devices.update(ctx, device.id, {"rack": "r1"})
    assert engine.devices.audit_trail(ctx, device.id).total == 1


def test_set_path_escaped_key() -> None:
    state = set_path({}, r"interfaces.Ethernet1/1\.200.mtu", 9000)
    assert state == {"interfaces": {"Ethernet1/1.200": {"mtu": 9000}}}


# --- drift over the store -----------------------------------------------------


def observe(
    engine: Engine, ctx: Context, hostname: str, state: dict[str, object]
) -> None:
    from omnitwin.engine.discovery import Observation

    engine.discovery.ingest_observations(
        ctx, [Observation("test", hostname, state=state)]
    )


def test_twin_update_closes_drift(engine: Engine, ctx: Context) -> None:
    device = make(engine, ctx, twin_state={"os_version": "4.30"})
    observe(engine, ctx, "spine-01", {"os_version": "4.31", "vendor": "Arista"})
    assert engine.devices.get(ctx, device.id).drift_score == 1.0
    engine.devices.update(ctx, device.id, {"twin_state.os_version": "4.31"})
    (event,) = engine.drift.events(ctx, device=device.id).data
    assert (event.status, event.resolution) == ("reconciled", "converged")
    assert engine.devices.get(ctx, device.id).drift_score == 0.0


def test_removing_twin_field_closes_event(engine: Engine, ctx: Context) -> None:
    device = make(engine, ctx, twin_state={"os_version": "4.30"})
    observe(engine, ctx, "spine-01", {"os_version": "4.31"})
    engine.devices.update(ctx, device.id, {"twin_state.os_version": None})
    (event,) = engine.drift.events(ctx, device=device.id).data
    assert event.resolution == "twin_changed"


def test_unobserved_field_keeps_event_open(engine: Engine, ctx: Context) -> None:
    device = make(engine, ctx, twin_state={"os_version": "4.30", "model": "x"})
    observe(engine, ctx, "spine-01", {"os_version": "4.31"})
    engine.store.conn.execute(
        'UPDATE devices SET detected_state = \'{"model": "x"}\', '
        "detected_flat = NULL WHERE id = ?",
        [device.id],
    )
    engine.drift.rescore_all(ctx)
    assert engine.drift.events(ctx, device=device.id, status="open").total == 1


def test_changed_divergence_updates_same_event(engine: Engine, ctx: Context) -> None:
    make(engine, ctx, twin_state={"os_version": "4.30"})
    observe(engine, ctx, "spine-01", {"os_version": "4.31"})
    observe(engine, ctx, "spine-01", {"os_version": "4.32"})
    (event,) = engine.drift.events(ctx).data
    assert event.actual_value == "4.32"
    assert event.status == "open"


def test_ignore_twice_is_invalid(engine: Engine, ctx: Context) -> None:
    make(engine, ctx, twin_state={"os_version": "4.30"})
    observe(engine, ctx, "spine-01", {"os_version": "4.31"})
    (event,) = engine.drift.events(ctx).data
    assert engine.drift.ignore(ctx, event.id).status == "ignored"
    with pytest.raises(InvalidTransition):
        engine.drift.ignore(ctx, event.id)
    observe(engine, ctx, "spine-01", {"os_version": "4.32"})
    assert engine.drift.events(ctx, status="open").total == 1


def test_has_drift_filter(engine: Engine, ctx: Context) -> None:
    make(engine, ctx, "a", twin_state={"os_version": "1"})
    make(engine, ctx, "b", twin_state={"os_version": "1"})
    make(engine, ctx, "c", twin_state={"os_version": "1"})
    observe(engine, ctx, "a", {"os_version": "2"})
    observe(engine, ctx, "b", {"os_version": "1"})
    assert [d.hostname for d in engine.devices.list(ctx, has_drift=True)] == ["a"]
    assert [d.hostname for d in engine.devices.list(ctx, has_drift=False)] == ["b", "c"]


def test_rescore_all_matches_per_device(engine: Engine, ctx: Context) -> None:
    network = generate_fabric(sites=2, leaves=4, servers_per_leaf=1)
    with omnitwin.Client(backend=_backend(engine, ctx)) as client:
        load_sample_devices(client, network)
        client.discovery.ingest("napalm", sample_detected_state(network))
    before = {d.id: d.drift_score for d in engine.devices.list(ctx, per_page=200)}
    events_before = engine.drift.events(ctx, per_page=200).total
    engine.store.conn.execute("UPDATE devices SET drift_score = NULL")
    summary = engine.drift.rescore_all(ctx)
    after = {d.id: d.drift_score for d in engine.devices.list(ctx, per_page=200)}
    assert after == before
    assert summary["devices"] == len(network.devices)
    assert summary["opened"] == 0
    assert engine.drift.events(ctx, per_page=200).total == events_before


def _backend(engine: Engine, ctx: Context) -> omnitwin.client._local.LocalBackend:
    from omnitwin.client._local import LocalBackend

    return LocalBackend(engine, ctx)


# --- the sample network -------------------------------------------------------


def test_sample_detected_state_is_deterministic() -> None:
    network = generate_fabric(sites=2)
    assert sample_detected_state(network) == sample_detected_state(network)


def test_sample_drift_has_the_four_changes(client: omnitwin.Client) -> None:
    network = generate_fabric(sites=2)
    assert load_sample_devices(client, network) == len(network.devices)
    report = client.discovery.ingest("napalm", sample_detected_state(network))
    assert len(report.matched) == len(network.devices)
    assert report.unresolved_neighbors == []

    fields = {(e.hostname, e.field) for e in client.drift.events(per_page=200)}
    assert fields == {
        ("leaf-01.nyc1", "os_version"),
        ("leaf-02.nyc1", "interfaces.Ethernet50/1.oper_up"),
        ("leaf-02.nyc1", "neighbors"),
        ("spine-02.nyc1", "neighbors"),
        ("leaf-03.nyc1", "neighbors"),
        ("leaf-04.nyc1", "neighbors"),
    }
    links = client.drift.links()
    assert [(m.a_hostname, m.b_hostname) for m in links["missing"]] == [
        ("spine-02.nyc1", "leaf-02.nyc1")
    ]
    assert len(links["unexpected"]) == 1


def test_sample_load_twice_is_safe(client: omnitwin.Client) -> None:
    network = generate_fabric(sites=1, leaves=2, servers_per_leaf=1)
    load_sample_devices(client, network)
    assert load_sample_devices(client, network) == 0
    assert len(client.topology.links(kind="intended")) == len(network.links)


def test_async_client_namespaces(db_path: Path) -> None:
    async def scenario() -> tuple[str, int]:
        async with omnitwin.AsyncClient(f"local:{db_path}") as client:
            await client.devices.create("r1", role="router", site="lab")
            device = await client.devices.get("R1")
            listing = await client.devices.list(role="router")
            return device.hostname, listing.total

    assert asyncio.run(scenario()) == ("r1", 1)


def test_stored_comparison_matches_compare(engine: Engine, ctx: Context) -> None:
    from omnitwin.engine.drift import compare, flatten
    from omnitwin.engine.driftstore import detected_view, effective_twin

    network = generate_fabric(sites=1, leaves=4, servers_per_leaf=1)
    with omnitwin.Client(backend=_backend(engine, ctx)) as client:
        load_sample_devices(client, network)
        client.discovery.ingest("napalm", sample_detected_state(network))
    for device in engine.devices.list(ctx, per_page=200):
        links = engine.topology.list_links(ctx, kind="intended", device=device.id)
        names = [
            f"{link.port_a} {link.b_hostname.split('.')[0]} {link.port_b}"
            if link.a == device.id
            else f"{link.port_b} {link.a_hostname.split('.')[0]} {link.port_a}"
            for link in links
        ]
        twin = effective_twin(device.twin_state, names)
        detected = detected_view(device.detected_state)
        expected = compare(twin, detected)
        differences, score = engine.drift._compare_flat(
            flatten(twin), flatten(detected)
        )
        assert score == expected.score, device.hostname
        assert [d[0] for d in differences] == [d.field for d in expected.differences]
