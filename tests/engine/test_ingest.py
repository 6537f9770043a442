"""Tests for discovery ingest: matching, detected state, drift events, links."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import omnitwin
from omnitwin.cli import main
from omnitwin.engine.context import Context
from omnitwin.engine.discovery import (
    Observation,
    load_napalm_case,
    parse_cli,
    parse_napalm,
    parse_nmap_xml,
)
from omnitwin.engine.engine import Engine
from omnitwin.errors import ValidationError
from testdata import data_file


def nmap_text(name: str) -> str:
    return data_file("nmap-libnmap", name).read_text()


def create_from_scan(engine: Engine, ctx: Context, scan: str) -> dict[str, str]:
    """Create one device per scanned host with the scan as its twin state."""
    ids = {}
    for obs in parse_nmap_xml(nmap_text(scan)):
        assert obs.hostname is not None
        device = engine.devices.create(
            ctx,
            obs.hostname,
            role="server",
            site="lab",
            management_address=obs.management_address,
            twin_state=obs.state,
        )
        ids[obs.hostname] = device.id
    return ids


def open_fields(engine: Engine, ctx: Context, device_id: str) -> set[str]:
    events = engine.drift.events(ctx, device=device_id, status="open", per_page=200)
    return {event.field for event in events}


# --- Nmap drift pairs ---------------------------------------------------------


def test_nmap_mac_change_opens_one_event(engine: Engine, ctx: Context) -> None:
    ids = create_from_scan(engine, ctx, "1_host_ping.xml")
    report = engine.discovery.ingest(
        ctx, "nmap", nmap_text("diff_1_host_ping_mac_changed.xml")
    )
    assert [m["matched_by"] for m in report.matched] == ["hostname"]
    assert open_fields(engine, ctx, ids["dionaea"]) == {"mac"}
    event = engine.drift.events(ctx, device="dionaea").data[0]
    assert (event.twin_value, event.actual_value) == (
        "02:42:ac:1c:01:03",
        "02:42:ac:1c:01:04",
    )


def test_nmap_repeat_does_not_open_second_event(engine: Engine, ctx: Context) -> None:
    ids = create_from_scan(engine, ctx, "1_host_ping.xml")
    changed = nmap_text("diff_1_host_ping_mac_changed.xml")
    engine.discovery.ingest(ctx, "nmap", changed)
    again = engine.discovery.ingest(ctx, "nmap", changed)
    assert again.drift_opened == 0
    assert engine.drift.events(ctx, device=ids["dionaea"]).total == 1


def test_nmap_original_scan_closes_events(engine: Engine, ctx: Context) -> None:
    ids = create_from_scan(engine, ctx, "1_host_ping.xml")
    engine.discovery.ingest(ctx, "nmap", nmap_text("diff_1_host_ping_mac_changed.xml"))
    back = engine.discovery.ingest(ctx, "nmap", nmap_text("1_host_ping.xml"))
    assert back.drift_closed == 1
    assert open_fields(engine, ctx, ids["dionaea"]) == set()
    (event,) = engine.drift.events(ctx, device=ids["dionaea"]).data
    assert (event.status, event.resolution) == ("reconciled", "converged")
    assert engine.devices.get(ctx, "dionaea").drift_score == 0.0


def test_nmap_port_changes_are_exact_fields(engine: Engine, ctx: Context) -> None:
    ids = create_from_scan(engine, ctx, "2_hosts.xml")
    engine.discovery.ingest(ctx, "nmap", nmap_text("2_hosts_achange.xml"))
    assert open_fields(engine, ctx, ids["localhost"]) == {
        "ports.tcp/111",
        "ports.tcp/23",
        "ports.tcp/25",
    }
    assert open_fields(engine, ctx, ids["scanme"]) == set()
    engine.discovery.ingest(ctx, "nmap", nmap_text("2_hosts.xml"))
    assert open_fields(engine, ctx, ids["localhost"]) == set()
    closed = engine.drift.events(ctx, status="reconciled").total
    assert closed == 3


def test_nmap_detected_state_is_stamped(engine: Engine, ctx: Context) -> None:
    create_from_scan(engine, ctx, "1_host_ping.xml")
    engine.discovery.ingest(ctx, "nmap", nmap_text("1_host_ping.xml"))
    detected = engine.devices.get(ctx, "dionaea").detected_state
    assert detected["source"] == "nmap"
    assert detected["last_seen"].startswith("20")
    assert set(detected["sources"]) == {"nmap"}
    assert detected["mac"] == "02:42:ac:1c:01:03"


def test_nmap_matches_by_address_when_name_differs(
    engine: Engine, ctx: Context
) -> None:
    engine.devices.create(
        ctx, "honeypot-7", role="server", site="lab", management_address="172.28.1.3"
    )
    report = engine.discovery.ingest(ctx, "nmap", nmap_text("1_host_ping.xml"))
    assert report.matched[0]["matched_by"] == "management_address"
    assert report.matched[0]["hostname"] == "honeypot-7"


# --- NAPALM and ntc-templates samples -----------------------------------------


NAPALM_FACTS = [
    ("ios", "normal"),
    ("iosxr", "normal"),
    ("junos", "normal"),
    ("nxos", "normal"),
    ("nxos_ssh", "7009_6_2_14"),
]


def napalm_facts(driver: str, case: str) -> dict[str, object]:
    path = data_file("napalm", driver, "test_get_facts", case, "expected_result.json")
    return load_napalm_case(path)


def test_napalm_facts_match_devices(engine: Engine, ctx: Context) -> None:
    getters = [napalm_facts(driver, case) for driver, case in NAPALM_FACTS]
    for item in getters:
        hostname = parse_napalm(item).hostname
        assert hostname is not None
        engine.devices.create(
            ctx, hostname.upper(), role="switch", site="lab", twin_state={}
        )
    report = engine.discovery.ingest(ctx, "napalm", getters)
    assert len(report.matched) == len(NAPALM_FACTS)
    assert report.unmatched == []
    device = engine.devices.get(ctx, "EDGE01")
    assert device.detected_state["serial"] == "FOX1717PLM4"
    assert device.drift_score is None


def test_napalm_twin_serial_mismatch_is_drift(engine: Engine, ctx: Context) -> None:
    engine.devices.create(
        ctx,
        "edge01.example.net",
        role="router",
        site="lab",
        twin_state={"serial": "FOX0000000", "hostname": "edge01"},
    )
    engine.discovery.ingest(ctx, "napalm", napalm_facts("iosxr", "normal"))
    device = engine.devices.get(ctx, "edge01.example.net")
    assert device.drift_score == pytest.approx(0.5)
    assert open_fields(engine, ctx, device.id) == {"serial"}


def test_napalm_unmatched_is_reported_and_kept(engine: Engine, ctx: Context) -> None:
    engine.devices.create(ctx, "nxos-spine1", role="switch", site="lab")
    getters = [napalm_facts("nxos", "normal"), napalm_facts("junos", "normal")]
    report = engine.discovery.ingest(ctx, "napalm", getters)
    assert [m["hostname"] for m in report.matched] == ["nxos-spine1"]
    assert len(report.unmatched) == 1
    assert report.unmatched[0]["hostname"] == "vsrx"
    assert "no device" in report.unmatched[0]["reason"]
    kept = engine.discovery.unmatched(ctx)
    assert [k["hostname"] for k in kept] == ["vsrx"]


def test_napalm_interfaces_merge_with_addresses(engine: Engine, ctx: Context) -> None:
    engine.devices.create(ctx, "r1", role="router", site="lab")
    folder = ("napalm", "ios")
    interfaces = load_napalm_case(
        data_file(*folder, "test_get_interfaces", "normal", "expected_result.json")
    )
    addresses = load_napalm_case(
        data_file(*folder, "test_get_interfaces_ip", "normal", "expected_result.json")
    )
    engine.discovery.ingest(ctx, "napalm", interfaces, hostname="r1")
    engine.discovery.ingest(ctx, "napalm", addresses, hostname="r1")
    detected = engine.devices.get(ctx, "r1").detected_state["interfaces"]
    with_ip = {n for n, i in detected.items() if "ipv4" in i or "ipv6" in i}
    with_mtu = {name for name, i in detected.items() if "mtu" in i}
    assert with_ip == set(parse_napalm(addresses).state["interfaces"])
    assert with_mtu == set(parse_napalm(interfaces).state["interfaces"])


def test_napalm_lldp_becomes_detected_links(engine: Engine, ctx: Context) -> None:
    path = data_file(
        "napalm", "ios", "test_get_lldp_neighbors", "normal", "expected_result.json"
    )
    getters = load_napalm_case(path)
    observation = parse_napalm(getters)
    remotes = sorted({n.remote_host for n in observation.neighbors})
    engine.devices.create(ctx, "access-1", role="switch", site="lab")
    for remote in remotes[:-1]:
        engine.devices.create(ctx, remote, role="switch", site="lab")

    report = engine.discovery.ingest(ctx, "napalm", getters, hostname="access-1")
    known = [n for n in observation.neighbors if n.remote_host != remotes[-1]]
    assert report.detected_links == len(known)
    assert {u["neighbor"].split()[1] for u in report.unresolved_neighbors} == {
        remotes[-1]
    }
    detected = engine.topology.list_links(ctx, kind="detected")
    assert {link.b_hostname for link in detected} == set(remotes[:-1])


def test_cli_show_version_matches(engine: Engine, ctx: Context) -> None:
    text = data_file(
        "ntc-templates", "cisco_ios", "show_version", "cisco_ios_show_version.raw"
    ).read_text()
    engine.devices.create(
        ctx,
        "router1.corp.example",
        role="router",
        site="lab",
        twin_state={"serial": "CAT1451S15C"},
    )
    report = engine.discovery.ingest(
        ctx, "cli", text, platform="cisco_ios", command="show version"
    )
    assert report.matched[0]["hostname"] == "router1.corp.example"
    assert engine.devices.get(ctx, "router1.corp.example").drift_score == 0.0


def test_cli_lldp_needs_local_hostname(engine: Engine, ctx: Context) -> None:
    text = data_file(
        "ntc-templates",
        "cisco_ios",
        "show_lldp_neighbors",
        "cisco_ios_show_lldp_neighbors.raw",
    ).read_text()
    for name in ("access-1", "s2", "cisco-switch-1"):
        engine.devices.create(ctx, name, role="switch", site="lab")
    options = {"platform": "cisco_ios", "command": "show lldp neighbors"}
    blind = engine.discovery.ingest(ctx, "cli", text, **options)
    assert blind.matched == []
    assert len(blind.unmatched) == 1

    report = engine.discovery.ingest(ctx, "cli", text, hostname="access-1", **options)
    assert report.detected_links == 2
    assert len(report.unresolved_neighbors) == 3


def test_ambiguous_label_is_unmatched(engine: Engine, ctx: Context) -> None:
    for site in ("nyc1", "sfo1"):
        engine.devices.create(ctx, f"spine-01.{site}", role="switch", site=site)
    obs = Observation("napalm", "spine-01", state={"os_version": "4.30"})
    report = engine.discovery.ingest_observations(ctx, [obs])
    assert report.matched == []
    assert "matches 2 devices" in report.unmatched[0]["reason"]


def test_ambiguous_label_resolved_by_serial(engine: Engine, ctx: Context) -> None:
    for site, serial in (("nyc1", "S1"), ("sfo1", "S2")):
        engine.devices.create(
            ctx, f"spine-01.{site}", role="switch", site=site, serial=serial
        )
    obs = Observation("napalm", "spine-01", serial="s2", state={"serial": "S2"})
    report = engine.discovery.ingest_observations(ctx, [obs])
    assert report.matched[0]["hostname"] == "spine-01.sfo1"
    assert report.matched[0]["matched_by"] == "serial"


@pytest.mark.parametrize(
    ("fmt", "data", "options"),
    [
        ("snmp", "x", {}),
        ("cli", "text", {"platform": "cisco_ios"}),
        ("nmap", "/etc/passwd", {}),
        ("napalm", "{not json", {}),
    ],
)
def test_ingest_rejects_bad_input(
    engine: Engine, ctx: Context, fmt: str, data: str, options: dict[str, str]
) -> None:
    with pytest.raises(ValidationError):
        engine.discovery.ingest(ctx, fmt, data, **options)


# --- client and command line --------------------------------------------------


def test_client_discovery_ingest(client: omnitwin.Client) -> None:
    client.devices.create("dionaea", role="server", site="lab", twin_state={})
    report = client.discovery.ingest("nmap", nmap_text("1_host_ping.xml"))
    assert report.matched[0]["hostname"] == "dionaea"


def test_cli_discover_command(
    db_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    engine = Engine(db_path)
    engine.devices.create(Context(), "dionaea", role="server", site="lab")
    engine.close()
    scan = data_file("nmap-libnmap", "1_host_ping.xml")
    code = main(["discover", str(scan), "--format", "nmap", "--db", str(db_path)])
    assert code == 0
    body = json.loads(capsys.readouterr().out)
    assert body["matched"][0]["hostname"] == "dionaea"
    assert body["observations"] == 1


def test_cli_discover_napalm_case(
    db_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    case = data_file(
        "napalm", "junos", "test_get_facts", "normal", "expected_result.json"
    )
    Engine(db_path).close()
    code = main(["discover", str(case), "--format", "napalm", "--db", str(db_path)])
    assert code == 0
    body = json.loads(capsys.readouterr().out)
    assert body["unmatched"][0]["hostname"] == "vsrx"


def test_cli_discover_missing_database(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    case = data_file(
        "napalm", "junos", "test_get_facts", "normal", "expected_result.json"
    )
    db = tmp_path / "twn.duckdb"
    code = main(["discover", str(case), "--format", "napalm", "--db", str(db)])
    assert code == 2
    assert f"database {db} not found" in capsys.readouterr().err
    assert not db.exists()


def test_parse_cli_hostname_of_version() -> None:
    text = data_file(
        "ntc-templates", "cisco_ios", "show_version", "cisco_ios_show_version.raw"
    ).read_text()
    assert parse_cli("cisco_ios", "show version", text).hostname == "router1"
