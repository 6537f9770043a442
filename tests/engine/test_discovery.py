"""Tests for the discovery parsers, run on third-party data read in place."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from omnitwin.engine.discovery import (
    SUPPORTED_COMMANDS,
    load_napalm_case,
    normalize_hostname,
    normalize_interface,
    normalize_mac,
    parse_cli,
    parse_napalm,
    parse_nmap_xml,
)
from omnitwin.engine.discovery.cli import parse_uptime
from omnitwin.engine.discovery.interfaces import INTERFACE_ALIASES
from omnitwin.errors import ValidationError

REPO = Path(__file__).resolve().parents[2]
DATA = Path(os.environ.get("OMNITWIN_TEST_DATA", REPO.parent / "shared" / "data"))

NAPALM_GETTERS = (
    "get_facts",
    "get_interfaces",
    "get_interfaces_ip",
    "get_lldp_neighbors",
    "get_lldp_neighbors_detail",
)


def data_file(relative: str) -> Path:
    """Return a file under the test data folder, failing if it is absent."""
    path = DATA / relative
    if not path.is_file():
        pytest.fail(f"test data file {path} is missing; set OMNITWIN_TEST_DATA")
    return path


def _collect(pattern: str, folder: str) -> list[Path]:
    root = DATA / folder
    return sorted(root.glob(pattern)) if root.is_dir() else []


def _case_id(path: Path) -> str:
    return "/".join(path.parts[-4:-1])


NAPALM_CASES = [
    path
    for getter in NAPALM_GETTERS
    for path in _collect(f"*/test_{getter}/*/expected_result.json", "napalm")
]
CLI_SAMPLES = [
    path
    for path in _collect("*/*/*.raw", "ntc-templates")
    if path.parent.name.replace("_", " ").replace("-", " ")
    in {
        "show lldp neighbors",
        "show lldp neighbors detail",
        "show lldp neighbors info detail",
        "show lldp info remote device",
        "show cdp neighbors",
        "show cdp neighbors detail",
        "show version",
    }
]
NMAP_FILES = _collect("*.xml", "nmap-libnmap")


def test_data_folders_present() -> None:
    assert NAPALM_CASES, f"no NAPALM cases under {DATA / 'napalm'}"
    assert CLI_SAMPLES, f"no CLI samples under {DATA / 'ntc-templates'}"
    assert NMAP_FILES, f"no Nmap files under {DATA / 'nmap-libnmap'}"


# interface, hostname and MAC normalisation

_ALIAS_PAIRS = [
    (canonical, alias)
    for canonical, aliases in INTERFACE_ALIASES.items()
    for alias in aliases
]
_NUMBERING = st.from_regex(r"\A[0-9]{1,3}(/[0-9]{1,3}){0,3}(\.[0-9]{1,4})?\Z")


@given(
    pair=st.sampled_from(_ALIAS_PAIRS),
    numbering=_NUMBERING,
    case=st.sampled_from(["lower", "upper", "title", "as-is"]),
    space=st.sampled_from(["", " ", "  "]),
)
def test_normalize_interface_short_long_same(
    pair: tuple[str, str], numbering: str, case: str, space: str
) -> None:
    canonical, alias = pair
    spelled = {
        "lower": alias.lower(),
        "upper": alias.upper(),
        "title": alias.title(),
        "as-is": alias,
    }[case]

    short_form = normalize_interface(f"{spelled}{space}{numbering}")
    long_form = normalize_interface(f"{canonical}{numbering}")

    assert short_form == long_form
    assert long_form == f"{canonical}{numbering}"


@given(st.text(max_size=30))
def test_normalize_interface_idempotent(name: str) -> None:
    once = normalize_interface(name)
    assert normalize_interface(once) == once


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Gi1/0/1", "GigabitEthernet1/0/1"),
        ("gi1/0/1", "GigabitEthernet1/0/1"),
        ("GigabitEthernet1/0/1", "GigabitEthernet1/0/1"),
        ("Gig 1/0/10", "GigabitEthernet1/0/10"),
        ("Fas 0/0", "FastEthernet0/0"),
        ("Te1/1/1", "TenGigabitEthernet1/1/1"),
        ("TenGigE0/0/0/1", "TenGigabitEthernet0/0/0/1"),
        ("Fo0/0/0/0", "FortyGigabitEthernet0/0/0/0"),
        ("FortyGigE0/0/0/0", "FortyGigabitEthernet0/0/0/0"),
        ("Fou1/0/22", "FourHundredGigE1/0/22"),
        ("Hu0/0/0/1", "HundredGigE0/0/0/1"),
        ("Twe1/0/1", "TwentyFiveGigE1/0/1"),
        ("Tw1/0/1", "TwoGigabitEthernet1/0/1"),
        ("Et1", "Ethernet1"),
        ("Eth1/52.111", "Ethernet1/52.111"),
        ("Eth 0/1", "Ethernet0/1"),
        ("Po10", "Port-channel10"),
        ("Port-Channel10", "Port-channel10"),
        ("Lo0", "Loopback0"),
        ("mgmt0", "Management0"),
        ("Ma1", "Management1"),
        ("MgmtEth0/RSP0/CPU0/0", "MgmtEth0/RSP0/CPU0/0"),
        ("Vl100", "Vlan100"),
        ("Tu5", "Tunnel5"),
        ("BE100", "Bundle-Ether100"),
        ("ge-0/0/1", "ge-0/0/1"),
        ("xe-0/0/1.0", "xe-0/0/1.0"),
        ("et-0/0/48", "et-0/0/48"),
        ("ae7", "ae7"),
        ("fxp0", "fxp0"),
        ("1/1/1", "1/1/1"),
        ("A24-Trk1", "A24-Trk1"),
        ("  LAN   Port ", "LAN Port"),
    ],
)
def test_normalize_interface_examples(raw: str, expected: str) -> None:
    assert normalize_interface(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Spine2.Company.com", "spine2"),
        ("SW1", "sw1"),
        ("N9K2_TEST.lab.com(SAL1819S6BE)", "n9k2_test"),
        ("10.1.100.1", "10.1.100.1"),
        ("2001:DB8::1", "2001:db8::1"),
        (" router1 ", "router1"),
    ],
)
def test_normalize_hostname_examples(raw: str, expected: str) -> None:
    assert normalize_hostname(raw) == expected


def test_normalize_hostname_empty_rejected() -> None:
    with pytest.raises(ValidationError, match="invalid hostname"):
        normalize_hostname("   ")


@pytest.mark.parametrize(
    "raw",
    [
        "aa:bb:cc:dd:ee:ff",
        "AA:BB:CC:DD:EE:FF",
        "AA-BB-CC-DD-EE-FF",
        "aabb.ccdd.eeff",
        "AABBCCDDEEFF",
        "aa bb cc dd ee ff",
    ],
)
def test_normalize_mac_forms(raw: str) -> None:
    assert normalize_mac(raw) == "aa:bb:cc:dd:ee:ff"


@pytest.mark.parametrize("raw", ["", "None", "Unspecified", "aa:bb:cc", "gg" * 6])
def test_normalize_mac_invalid(raw: str) -> None:
    with pytest.raises(ValidationError, match=r"invalid MAC address .*expected 12"):
        normalize_mac(raw)


# NAPALM


@pytest.mark.parametrize("path", NAPALM_CASES, ids=_case_id)
def test_napalm_case_parses(path: Path) -> None:
    getters = load_napalm_case(path)
    raw: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    getter = next(iter(getters))

    observation = parse_napalm(getters)

    assert getter == path.parent.parent.name.removeprefix("test_")
    assert observation.source == "napalm"
    json.dumps(observation.state)
    _check_napalm_getter(getter, raw, observation.state)


def _check_napalm_getter(
    getter: str, raw: dict[str, Any], state: dict[str, Any]
) -> None:
    if getter == "get_facts":
        assert state["vendor"] == raw["vendor"]
        assert state["hostname"] == normalize_hostname(raw["hostname"])
        if raw["serial_number"]:
            assert state["serial"] == raw["serial_number"]
    elif getter in ("get_interfaces", "get_interfaces_ip"):
        assert len(state["interfaces"]) == len(raw)
    else:
        entries = sum(len(v) for v in raw.values())
        assert 0 < len(state["neighbors"]) <= entries


def test_napalm_interfaces_fields() -> None:
    path = data_file(
        "napalm/nxos_ssh/test_get_interfaces/missing_mtu/expected_result.json"
    )

    state = parse_napalm(load_napalm_case(path)).state

    ethernet = state["interfaces"]["Ethernet2/1"]
    assert ethernet["enabled"] is True
    assert ethernet["oper_up"] is True
    assert ethernet["mac"] == "2c:c2:60:4f:fe:b2"
    assert ethernet["speed_mbps"] == 1000
    assert ethernet["description"] == "Testing port descriptions"
    assert "mtu" not in ethernet  # NAPALM reports -1 for an unknown MTU
    assert "mac" not in state["interfaces"]["Loopback0"]  # empty MAC


def test_napalm_interfaces_ip_prefixes() -> None:
    path = data_file(
        "napalm/nxos_ssh/test_get_interfaces_ip/link_local_dumb_format/"
        "expected_result.json"
    )

    interfaces = parse_napalm(load_napalm_case(path)).state["interfaces"]

    assert interfaces["Ethernet2/2"]["ipv4"] == ["2.2.2.2/27", "3.3.3.3/25"]
    assert "2001:db8::1/10" in interfaces["Ethernet2/3"]["ipv6"]


def test_napalm_lldp_neighbors_normalised() -> None:
    path = data_file(
        "napalm/nxos_ssh/test_get_lldp_neighbors/normal/expected_result.json"
    )

    observation = parse_napalm(load_napalm_case(path))

    assert "Ethernet2/2 nxos2 Ethernet2/2" in observation.state["neighbors"]
    assert "Ethernet1/6 bigip 1/2.1" in observation.state["neighbors"]
    assert len(observation.neighbors) == 5


def test_napalm_lldp_detail_fallbacks() -> None:
    path = data_file(
        "napalm/junos/test_get_lldp_neighbors_detail/missing_port_ids/"
        "expected_result.json"
    )

    names = parse_napalm(load_napalm_case(path)).state["neighbors"]

    assert "fe-0/0/2.0 meraki mx64 lan port 0" in names


def test_napalm_facts_with_interfaces_merged() -> None:
    folder = "napalm/nxos_ssh"
    getters = {
        **load_napalm_case(
            data_file(f"{folder}/test_get_facts/normal/expected_result.json")
        ),
        **load_napalm_case(
            data_file(f"{folder}/test_get_interfaces/missing_mtu/expected_result.json")
        ),
    }

    observation = parse_napalm(getters)

    assert observation.hostname == "nxos1"
    assert observation.serial == "TM6012EC74B"
    assert observation.state["uptime_s"] == 2030983
    assert "Ethernet2/1" in observation.state["interfaces"]


def test_napalm_unknown_getter_rejected() -> None:
    with pytest.raises(ValidationError, match=r"get_arp_table.*supported getters"):
        parse_napalm({"get_arp_table": {}})


def test_napalm_non_object_output_rejected() -> None:
    with pytest.raises(ValidationError, match="expected a JSON object, got list"):
        parse_napalm({"get_interfaces": []})


def test_napalm_case_arp_getter_rejected() -> None:
    path = next(iter(_collect("*/test_get_arp_table/*/expected_result.json", "napalm")))

    with pytest.raises(ValidationError, match="get_arp_table"):
        load_napalm_case(path)


def test_napalm_case_without_layout_needs_getter(tmp_path: Path) -> None:
    path = tmp_path / "facts.json"
    path.write_text("{}", encoding="utf-8")

    with pytest.raises(ValidationError, match="pass getter="):
        load_napalm_case(path)
    assert load_napalm_case(path, getter="get_facts") == {"get_facts": {}}


# CLI output through ntc-templates


def _sample_command(raw: Path) -> tuple[str, str]:
    platform = raw.parent.parent.name
    folder = raw.parent.name.replace("_", " ")
    commands = SUPPORTED_COMMANDS[platform]
    command = folder if folder in commands else folder.replace("-", " ")
    return platform, command


def _sample_rows(raw: Path) -> list[dict[str, Any]]:
    expected = raw.with_suffix(".yml")
    if not expected.is_file():
        pytest.fail(f"parsed sample {expected} is missing")
    rows: list[dict[str, Any]] = yaml.safe_load(expected.read_text())["parsed_sample"]
    return rows


@pytest.mark.parametrize("raw", CLI_SAMPLES, ids=lambda p: p.name)
def test_cli_sample_parses(raw: Path) -> None:
    platform, command = _sample_command(raw)
    rows = _sample_rows(raw)

    observation = parse_cli(platform, command, raw.read_text(encoding="utf-8"))

    assert observation.source == f"textfsm:{platform}"
    json.dumps(observation.state)
    if command == "show version":
        _check_version(observation.state, rows[0])
    else:
        _check_neighbors(observation.state["neighbors"], rows)


def _check_version(state: dict[str, Any], row: dict[str, Any]) -> None:
    hostname = row.get("hostname")
    if hostname:
        assert state["hostname"] == normalize_hostname(hostname)
    for key in ("version", "os", "junos_version"):
        if row.get(key):
            assert state["os_version"] == row[key]
            break
    serial = row.get("serial") or row.get("serial_number")
    if isinstance(serial, list):
        serial = serial[0] if serial else None
    if serial:
        assert state["serial"] == serial
    if row.get("uptime"):
        assert state["uptime_s"] == parse_uptime(row["uptime"])


def _check_neighbors(names: list[str], rows: list[dict[str, Any]]) -> None:
    # Rows without a local port (some IOS versions omit "Local Intf") or
    # without a remote host cannot become neighbours.
    complete = [
        row
        for row in rows
        if row.get("local_interface")
        and any(row.get(k) for k in ("neighbor_name", "neighbor", "chassis_id"))
        and any(row.get(k) for k in ("neighbor_port_id", "neighbor_interface"))
    ]
    local_ports = {name.split(" ", 1)[0] for name in names}

    assert len(names) <= len(complete)
    for row in complete:
        assert normalize_interface(row["local_interface"]) in local_ports


def test_cli_cdp_detail_values() -> None:
    raw = data_file(
        "ntc-templates/cisco_ios/show_cdp_neighbors_detail/"
        "cisco_ios_show_cdp_neighbors_detail.raw"
    )

    observation = parse_cli("cisco_ios", "show cdp neighbors detail", raw.read_text())

    assert (
        "GigabitEthernet1/0/16 desktop-switch GigabitEthernet0/1"
        in observation.state["neighbors"]
    )


def test_cli_cdp_short_names_expanded() -> None:
    raw = data_file(
        "ntc-templates/cisco_ios/show_cdp_neighbors/cisco_ios_show_cdp_neighbors.raw"
    )

    observation = parse_cli("cisco_ios", "show cdp neighbors", raw.read_text())

    assert (
        "GigabitEthernet1/0/10 r1-pbx FastEthernet0/0" in observation.state["neighbors"]
    )


def test_cli_version_values() -> None:
    raw = data_file("ntc-templates/cisco_nxos/show_version/cisco_nxos_show_version.raw")

    state = parse_cli("cisco_nxos", "show version", raw.read_text()).state

    assert state["hostname"] == "n9k1"
    assert state["vendor"] == "Cisco"
    assert state["model"] == "C9396PX"
    assert state["os_version"] == "6.1(2)I3(1)"
    assert state["serial"] == "SAL1819S6LU"
    assert state["uptime_s"] == 123 * 86400 + 5 * 3600 + 15 * 60 + 19


def test_cli_command_spacing_and_case_ignored() -> None:
    raw = data_file("ntc-templates/arista_eos/show_version/arista_eos_show_version.raw")

    state = parse_cli("arista_eos", "  SHOW   Version ", raw.read_text()).state

    assert state["mac"] == "28:03:82:9a:13:47"


def test_cli_unknown_platform_rejected() -> None:
    with pytest.raises(
        ValidationError, match=r"'cisco_wlc'.*supported platforms:.*cisco_ios"
    ):
        parse_cli("cisco_wlc", "show version", "")


def test_cli_unknown_command_rejected() -> None:
    pattern = r"'show ip route'.*'cisco_ios'.*supported commands:.*show cdp neighbors"
    with pytest.raises(ValidationError, match=pattern):
        parse_cli("cisco_ios", "show ip route", "")


def test_cli_unsupported_pair_rejected() -> None:
    with pytest.raises(ValidationError, match="show cdp neighbors'"):
        parse_cli("juniper_junos", "show cdp neighbors", "")


# Nmap XML


@pytest.mark.parametrize("path", NMAP_FILES, ids=lambda p: p.name)
def test_nmap_file_parses(path: Path) -> None:
    text = path.read_text(encoding="utf-8")

    observations = parse_nmap_xml(path)

    assert len(observations) == text.count("<host ") + text.count("<host>")
    for observation in observations:
        assert observation.source == "nmap"
        assert observation.state["status"] in {"up", "down"}
        assert observation.management_address == observation.state["addresses"][0]
        json.dumps(observation.state)


def test_nmap_ping_host_fields() -> None:
    (host,) = parse_nmap_xml(data_file("nmap-libnmap/1_host_ping.xml"))

    assert host.state["addresses"] == ["172.28.1.3"]
    assert host.state["mac"] == "02:42:ac:1c:01:03"
    assert host.state["hostnames"] == ["dionaea"]
    assert host.hostname == "dionaea"
    assert "ports" not in host.state  # a ping scan observes no ports
    assert host.observed_at == "2020-12-06T19:15:35+00:00"


def test_nmap_extraports_expanded() -> None:
    localhost = parse_nmap_xml(data_file("nmap-libnmap/2_hosts.xml"))[0]

    ports = localhost.state["ports"]

    assert len(ports) == 1000
    assert ports["tcp/22"] == "open"
    assert ports["tcp/23"] == "closed"


def test_nmap_extraports_kept_summarised() -> None:
    localhost = parse_nmap_xml(
        data_file("nmap-libnmap/2_hosts.xml"), expand_extraports=False
    )[0]

    assert localhost.state["ports"] == {
        "tcp/22": "open",
        "tcp/25": "open",
        "tcp/111": "open",
        "tcp/631": "open",
        "tcp/3306": "open",
    }


def test_nmap_ambiguous_extraports_not_expanded() -> None:
    # Two <extraports> groups (closed and unknown) cannot be split by port.
    hosts = parse_nmap_xml(data_file("nmap-libnmap/extra_ports.xml"))

    for host in hosts:
        assert len(host.state.get("ports", {})) < 100


def test_nmap_os_match() -> None:
    hosts = parse_nmap_xml(data_file("nmap-libnmap/os_scan6.xml"))

    matched = [host.state["os"] for host in hosts if "os" in host.state]

    assert "Linux 2.6.13 (embedded)" in matched


def test_nmap_text_input() -> None:
    text = data_file("nmap-libnmap/1_host_ping.xml").read_text(encoding="utf-8")

    (host,) = parse_nmap_xml(text)

    assert host.state["addresses"] == ["172.28.1.3"]


def test_nmap_entity_rejected() -> None:
    text = (
        '<?xml version="1.0"?><!DOCTYPE nmaprun [<!ENTITY a "aaaa">]>'
        "<nmaprun>&a;</nmaprun>"
    )
    with pytest.raises(ValidationError, match="declares"):
        parse_nmap_xml(text)


def test_nmap_external_doctype_rejected() -> None:
    text = '<!DOCTYPE nmaprun SYSTEM "http://127.0.0.1/x.dtd"><nmaprun/>'
    with pytest.raises(ValidationError, match="DOCTYPE nmaprun with a DTD"):
        parse_nmap_xml(text)


def test_nmap_wrong_root_rejected() -> None:
    with pytest.raises(ValidationError, match="expected <nmaprun>"):
        parse_nmap_xml("<report/>")


def test_nmap_malformed_rejected() -> None:
    with pytest.raises(ValidationError, match="invalid XML"):
        parse_nmap_xml("<nmaprun><host></nmaprun>")
