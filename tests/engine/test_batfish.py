"""Reading Batfish snapshot folders: parsing rules and error messages."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from omnitwin.engine.context import Context
from omnitwin.engine.discovery.batfish import (
    NO_SITE,
    load_snapshot,
    parse_snapshot,
    read_snapshot,
)
from omnitwin.engine.engine import Engine
from omnitwin.errors import ValidationError

R1 = """\
hostname R1
!
interface Loopback0
 ip address 10.0.0.1 255.255.255.255
!
interface GigabitEthernet0/0
 description to r2
 ip address 10.1.0.1 255.255.255.0
 ip address 10.1.1.1 255.255.255.0 secondary
 mtu 9000
!
interface GigabitEthernet0/1
 no ip address
 shutdown
!
router bgp 65010
 neighbor 10.1.0.2 remote-as 65020
"""

R2 = """\
hostname r2
!
interface Gi0/0
 ip address 10.1.0.2 255.255.255.0
 speed 1000
!
interface Gi0/2
 ip address 10.0.0.0 255.0.0.0
"""


def edge(a: str, port_a: str, b: str, port_b: str) -> dict[str, Any]:
    return {
        "node1": {"hostname": a, "interfaceName": port_a},
        "node2": {"hostname": b, "interfaceName": port_b},
    }


LAYER1 = {
    "edges": [
        edge("r1", "GigabitEthernet0/0", "r2", "GigabitEthernet0/0"),
        edge("r2", "GigabitEthernet0/0", "r1", "GigabitEthernet0/0"),
        edge("r1", "GigabitEthernet0/1", "host1", "eth0"),
        edge("r2", "GigabitEthernet0/1", "isp", "ge-0/0/0"),
    ]
}
HOST1 = {"hostname": "host1", "hostInterfaces": {"eth0": {"prefix": "10.2.0.5/24"}}}


def make_snapshot(
    root: Path, *, layer1: Any = LAYER1, files: dict[str, str] | None = None
) -> Path:
    """Write a two-router, one-host snapshot; ``files`` replace or add files."""
    contents = {
        "configs/r1.cfg": R1,
        "configs/r2.cfg": R2,
        "hosts/host1.json": json.dumps(HOST1),
        "batfish/layer1_topology.json": json.dumps(layer1),
        **(files or {}),
    }
    for name, text in contents.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_devices_sites_and_roles(tmp_path: Path) -> None:
    snapshot = load_snapshot(make_snapshot(tmp_path / "snap"))
    devices = {d["hostname"]: d for d in snapshot.devices}
    assert sorted(devices) == ["host1", "r1", "r2"]
    assert devices["r1"]["site"] == "AS65010"
    assert devices["r1"]["role"] == "router"
    # r2 has no router bgp and takes the site of r1, its cabled neighbour.
    assert devices["r2"]["site"] == "AS65010"
    assert devices["host1"]["site"] == "AS65010"
    assert devices["host1"]["role"] == "host"


def test_interfaces_as_twin_state(tmp_path: Path) -> None:
    snapshot = load_snapshot(make_snapshot(tmp_path / "snap"))
    states = {d["hostname"]: d["twin_state"] for d in snapshot.devices}
    r1 = states["r1"]["interfaces"]
    assert states["r1"]["hostname"] == "r1"
    assert r1["GigabitEthernet0/0"] == {
        "enabled": True,
        "oper_up": True,
        "description": "to r2",
        "ipv4": ["10.1.0.1/24", "10.1.1.1/24"],
        "mtu": 9000,
    }
    assert r1["GigabitEthernet0/1"] == {"enabled": False, "oper_up": False}
    assert states["r2"]["interfaces"]["GigabitEthernet0/0"]["speed_mbps"] == 1000
    assert states["host1"]["interfaces"] == {
        "Ethernet0": {"enabled": True, "oper_up": True, "ipv4": ["10.2.0.5/24"]}
    }


def test_interface_addresses(tmp_path: Path) -> None:
    snapshot = load_snapshot(make_snapshot(tmp_path / "snap"))
    found = [
        (item["hostname"], item["interface"], item["address"])
        for item in snapshot.addresses
    ]
    assert found == [
        ("r1", "GigabitEthernet0/0", "10.1.0.1"),
        ("r1", "GigabitEthernet0/0", "10.1.1.1"),
        ("r1", "Loopback0", "10.0.0.1"),
        ("r2", "GigabitEthernet0/0", "10.1.0.2"),
        ("r2", "GigabitEthernet0/2", "10.0.0.0"),
        ("host1", "Ethernet0", "10.2.0.5"),
    ]


def test_subnets_nest_in_containers(tmp_path: Path) -> None:
    snapshot = load_snapshot(make_snapshot(tmp_path / "snap"))
    subnets = {s["cidr"]: s["is_container"] for s in snapshot.subnets}
    assert subnets == {
        "10.0.0.0/8": True,
        "10.0.0.1/32": False,
        "10.1.0.0/24": False,
        "10.1.1.0/24": False,
        "10.2.0.0/24": False,
    }


def test_cables_deduplicated_and_unknown_skipped(tmp_path: Path) -> None:
    snapshot = load_snapshot(make_snapshot(tmp_path / "snap"))
    assert [(c.a, c.port_a, c.b, c.port_b) for c in snapshot.cables] == [
        ("host1", "eth0", "r1", "GigabitEthernet0/1"),
        ("r1", "GigabitEthernet0/0", "r2", "GigabitEthernet0/0"),
    ]
    assert [c.b for c in snapshot.skipped_cables] == ["r2"]
    assert snapshot.links[0]["port_a"] == "Ethernet0"


def test_blacklist_removes_neighbours(tmp_path: Path) -> None:
    blacklist = [{"hostname": "R1", "interface": "Gi0/0"}]
    files = {"interface_blacklist": json.dumps(blacklist)}
    folder = make_snapshot(tmp_path / "snap", files=files)
    snapshot = load_snapshot(folder)
    assert snapshot.down == {("r1", "GigabitEthernet0/0")}
    observed = {o.hostname: o for o in snapshot.observations()}
    r1 = observed["r1"].state
    assert r1["interfaces"]["GigabitEthernet0/0"]["oper_up"] is False
    assert r1["neighbors"] == ["GigabitEthernet0/1 host1 Ethernet0"]
    assert observed["r2"].state["neighbors"] == []
    assert observed["host1"].source == "batfish"
    # The twin state is left as it was.
    twin = next(d for d in snapshot.devices if d["hostname"] == "r1")
    assert twin["twin_state"]["interfaces"]["GigabitEthernet0/0"]["oper_up"] is True


def test_lone_device_gets_no_site(tmp_path: Path) -> None:
    folder = make_snapshot(tmp_path / "snap", layer1={"edges": []})
    sites = {d["hostname"]: d["site"] for d in load_snapshot(folder).devices}
    assert sites == {"r1": "AS65010", "r2": NO_SITE, "host1": NO_SITE}


def test_inner_layer1_wins_over_explicit(tmp_path: Path) -> None:
    folder = make_snapshot(tmp_path / "snap")
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"edges": []}))
    assert len(load_snapshot(folder, other).cables) == 2


def test_explicit_layer1_used_when_absent(tmp_path: Path) -> None:
    folder = make_snapshot(tmp_path / "snap")
    (folder / "batfish" / "layer1_topology.json").unlink()
    outside = tmp_path / "layer1.json"
    outside.write_text(json.dumps(LAYER1))
    assert len(load_snapshot(folder, outside).cables) == 2


def test_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="snapshot folder .*nowhere not found"):
        read_snapshot(tmp_path / "nowhere")


def test_missing_configs_folder(tmp_path: Path) -> None:
    (tmp_path / "snap").mkdir()
    with pytest.raises(ValidationError, match=r"snap/configs not found.*configs/\*"):
        read_snapshot(tmp_path / "snap")


def test_no_layer1_file(tmp_path: Path) -> None:
    folder = make_snapshot(tmp_path / "snap")
    (folder / "batfish" / "layer1_topology.json").unlink()
    with pytest.raises(ValidationError) as raised:
        read_snapshot(folder)
    assert "no layer-1 file" in str(raised.value)
    assert str(folder / "batfish" / "layer1_topology.json") in str(raised.value)
    assert "--layer1 FILE" in str(raised.value)
    with pytest.raises(ValidationError, match="layer-1 file .*missing.json not"):
        read_snapshot(folder, tmp_path / "missing.json")


@pytest.mark.parametrize(
    "name", ["hosts/host1.json", "batfish/layer1_topology.json", "interface_blacklist"]
)
def test_unreadable_json_names_file(tmp_path: Path, name: str) -> None:
    folder = make_snapshot(tmp_path / "snap", files={name: '{"edges": ['})
    with pytest.raises(ValidationError) as raised:
        read_snapshot(folder)
    assert f"invalid JSON in {folder / name} at line 1" in str(raised.value)


def test_layer1_edge_without_end(tmp_path: Path) -> None:
    bad = {"edges": [{"node1": {"hostname": "r1", "interfaceName": "Gi0/0"}}]}
    folder = make_snapshot(tmp_path / "snap", layer1=bad)
    with pytest.raises(ValidationError, match="edge 1 has no node2"):
        load_snapshot(folder)
    folder = make_snapshot(tmp_path / "other", layer1=[])
    with pytest.raises(ValidationError, match=r'expected \{"edges"'):
        load_snapshot(folder)


def test_blacklist_wrong_shape(tmp_path: Path) -> None:
    files = {"interface_blacklist": '[["r1", "Gi0/0"]]'}
    folder = make_snapshot(tmp_path / "snap", files=files)
    with pytest.raises(ValidationError, match="interface_blacklist: .* is not an"):
        load_snapshot(folder)


def test_host_without_interfaces(tmp_path: Path) -> None:
    files = {"hosts/host1.json": '{"hostname": "h"}'}
    folder = make_snapshot(tmp_path / "snap", files=files)
    with pytest.raises(ValidationError, match="hosts/host1.json: hostInterfaces"):
        load_snapshot(folder)


def test_duplicate_hostname(tmp_path: Path) -> None:
    folder = make_snapshot(tmp_path / "snap", files={"configs/copy.cfg": R1})
    with pytest.raises(ValidationError, match="configs/r1.cfg: device 'r1' is"):
        load_snapshot(folder)


def test_empty_snapshot(tmp_path: Path) -> None:
    (tmp_path / "snap" / "configs").mkdir(parents=True)
    document = {"name": "snap", "configs": {}, "hosts": {}, "layer1_topology": {}}
    with pytest.raises(ValidationError, match="the snapshot has no devices"):
        parse_snapshot(document)


def test_invalid_address(tmp_path: Path) -> None:
    config = "hostname r9\ninterface Gi0/0\n ip address 10.0.0.300 255.255.255.0\n"
    folder = make_snapshot(tmp_path / "snap", files={"configs/r9.cfg": config})
    with pytest.raises(ValidationError, match="configs/r9.cfg: invalid address"):
        load_snapshot(folder)


def test_ingest_rejects_folder_path(engine: Engine, ctx: Context) -> None:
    with pytest.raises(ValidationError, match="not a folder path"):
        engine.discovery.ingest(ctx, "batfish", "/tmp/snapshot")
    with pytest.raises(ValidationError, match="map of the snapshot's files"):
        parse_snapshot([])  # type: ignore[arg-type]
