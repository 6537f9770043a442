"""The main job on the Batfish example: ``omnitwin demo --source batfish``.

The twin comes from the ``live`` snapshot and the detected state from
``live-with-interface-outage``, whose interface blacklist takes one cable
down. Counts come from the snapshot files and the blast radius of the missing
link from a networkx graph of the layer-1 file, both read here without the
product's parser.
"""

from __future__ import annotations

import contextlib
import html
import io
import json
import re
from pathlib import Path

import networkx as nx
import pytest

import omnitwin
from omnitwin.cli import main
from omnitwin.engine.discovery import normalize_interface
from omnitwin.models import TopologyLink
from testdata import data_file

EXAMPLE = "batfish-example"
LIVE = (EXAMPLE, "live")
OUTAGE = (EXAMPLE, "live-with-interface-outage")
LAYER1 = (EXAMPLE, "example_layer1_topology.json")

Port = tuple[str, str]


@pytest.fixture(scope="module")
def job(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """Run the demo once; return the output folder and what it printed."""
    out = tmp_path_factory.mktemp("batfish") / "out"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        status = main(
            [
                "demo",
                "--source",
                "batfish",
                str(data_file(*LIVE)),
                "--detected",
                str(data_file(*OUTAGE)),
                "--layer1",
                str(data_file(*LAYER1)),
                "--out",
                str(out),
            ]
        )
    assert status == 0, printed.getvalue()
    return out, printed.getvalue()


def connect(out: Path) -> omnitwin.Client:
    return omnitwin.connect(f"local:{out / 'batfish.duckdb'}", read_only=True)


def cables() -> set[frozenset[Port]]:
    """The distinct cables of the layer-1 file, which lists each in both directions.

    Ports are in the twin's normalised form: ``eth0`` becomes ``Ethernet0``.
    """
    layer1 = json.loads(data_file(*LAYER1).read_text())
    return {
        frozenset(
            (edge[node]["hostname"], normalize_interface(edge[node]["interfaceName"]))
            for node in ("node1", "node2")
        )
        for edge in layer1["edges"]
    }


def blacklist() -> set[Port]:
    path = data_file(*OUTAGE, "interface_blacklist")
    return {(i["hostname"], i["interface"]) for i in json.loads(path.read_text())}


def ends(link: TopologyLink) -> set[Port]:
    return {
        (str(link.a_hostname), str(link.port_a)),
        (str(link.b_hostname), str(link.port_b)),
    }


def missing_link(out: Path) -> TopologyLink:
    with connect(out) as client:
        (link,) = client.drift.links()["missing"]
    return link


def layer1_graph() -> nx.MultiGraph[str]:
    graph: nx.MultiGraph[str] = nx.MultiGraph()
    for cable in cables():
        (a, port_a), (b, port_b) = sorted(cable)
        graph.add_edge(a, b, key=f"{a}:{port_a}|{b}:{port_b}")
    return graph


def cut_off(graph: nx.MultiGraph[str], component: set[str]) -> set[str]:
    """Devices of ``component`` outside its largest pieces in ``graph``."""
    pieces = [c for c in nx.connected_components(graph) if c <= component]
    largest = max((len(c) for c in pieces), default=0)
    return component - set().union(*(c for c in pieces if len(c) == largest))


def without_device(graph: nx.MultiGraph[str], device: str) -> set[str]:
    """What a device's failure cuts off from the rest of its component."""
    component = nx.node_connected_component(graph, device)
    after = graph.copy()
    after.remove_node(device)
    return cut_off(after, component - {device}) | {device}


def report_text(path: Path) -> str:
    page = path.read_text(encoding="utf-8")
    page = re.sub(r"<script.*?</script>|<style.*?</style>", "", page, flags=re.S)
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", page)))


def test_twin_counts_match_files(job: tuple[Path, str]) -> None:
    out, printed = job
    configs = list(data_file(*LIVE, "configs").glob("*.cfg"))
    hosts = list(data_file(*LIVE, "hosts").glob("*.json"))
    with connect(out) as client:
        devices = list(client.devices.iter())
        intended = client.topology.links(kind="intended")
    assert len(devices) == len(configs) + len(hosts)
    assert {d.hostname for d in devices} >= {p.stem for p in configs}
    assert sorted(d.role for d in devices).count("host") == len(hosts)
    assert len(intended) == len(cables())
    assert {frozenset(ends(link)) for link in intended} == cables()
    assert f"{len(configs) + len(hosts)} devices" in printed


def config_addresses() -> dict[str, list[tuple[str, str]]]:
    """Return {address: [(hostname, interface)]} from the configs' own lines."""
    found: dict[str, list[tuple[str, str]]] = {}
    for config in sorted(data_file(*LIVE, "configs").glob("*.cfg")):
        hostname, interface = config.stem, ""
        for line in config.read_text().splitlines():
            if line.startswith("hostname "):
                hostname = line.split()[1]
            elif line.startswith("interface "):
                interface = line.split()[1]
            elif line.startswith(" ip address ") and len(line.split()) >= 4:
                found.setdefault(line.split()[2], []).append((hostname, interface))
    return found


def test_interface_addresses_assigned(job: tuple[Path, str]) -> None:
    out, printed = job
    expected = config_addresses()
    shared = {
        address: owners for address, owners in expected.items() if len(owners) > 1
    }
    with connect(out) as client:
        page = client.addresses.list(per_page=200)
        stored = {a.address: (a.hostname, a.interface) for a in page.data}
        subnet = client.subnets.list(within="1.0.1.0/24").data[0]
        used = client.subnets.get(subnet.id).used_ips
    # Every config address is stored once; a shared one keeps its first owner.
    assert page.total == len(stored)
    assert set(stored) >= set(expected)
    for address, owners in expected.items():
        assert stored[address] in owners
    assert shared, "the example snapshot has an address on two loopbacks"
    for address in shared:
        assert f"duplicate address {address} on " in printed
    assert used > 0


def test_one_missing_link_at_blacklist(job: tuple[Path, str]) -> None:
    out, printed = job
    with connect(out) as client:
        drift = client.drift.links()
    assert len(drift["missing"]) == 1
    assert drift["unexpected"] == []
    ((host, interface),) = blacklist()
    assert (host, interface) in ends(drift["missing"][0])
    assert f"Blast radius of link {drift['missing'][0].a_hostname}" in printed


def test_drift_events_on_both_ends(job: tuple[Path, str]) -> None:
    out, printed = job
    link = missing_link(out)
    ((host, interface),) = blacklist()
    (other,) = {hostname for hostname, _ in ends(link)} - {host}
    with connect(out) as client:
        events = list(client.drift.events(status="open", per_page=200))
    fields: dict[str, set[str]] = {}
    for event in events:
        fields.setdefault(str(event.hostname), set()).add(event.field)
    assert fields == {
        host: {"neighbors", f"interfaces.{interface}.oper_up"},
        other: {"neighbors"},
    }
    assert "Drift: 3 open events on 2 devices" in printed


def test_missing_link_blast_radius_brute_force(job: tuple[Path, str]) -> None:
    out, _ = job
    link = missing_link(out)
    with connect(out) as client:
        radius = client.topology.blast_radius(link.id)
    assert radius.target_kind == "link"
    assert link.id in radius.links

    graph = layer1_graph()
    a, b = str(link.a_hostname), str(link.b_hostname)
    (key,) = (
        k
        for k in graph[a][b]
        if {tuple(end.split(":", 1)) for end in k.split("|")} == ends(link)
    )
    component = nx.node_connected_component(graph, a)
    after = graph.copy()
    after.remove_edge(a, b, key)
    affected = cut_off(after, component)
    assert set(radius.hostnames) == affected

    # The redundancy used up: devices whose own failure now cuts off more.
    survivors = component - affected
    rest = after.subgraph(survivors).copy()
    expected = {}
    for device in survivors:
        now = without_device(rest, device)
        if now - without_device(graph, device) - {device}:
            expected[device] = now - {device}
    found = {p["hostname"]: set(p["cuts_off"]) for p in radius.new_single_points}
    assert expected
    assert found == expected


def test_pages_show_missing_link(job: tuple[Path, str]) -> None:
    out, _ = job
    link = missing_link(out)
    drift_page = report_text(out / "drift-summary.html")
    report = report_text(out / "blast-radius.html")
    row = f"{link.a_hostname} {link.port_a} {link.b_hostname} {link.port_b}"
    assert f"missing {row} {link.id}" in drift_page
    ends = f"{link.a_hostname} {link.port_a} - {link.b_hostname} {link.port_b}"
    assert f"{ends} failing cuts off" in report
    assert row in report


def test_demo_batfish_needs_a_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["demo", "--source", "batfish", "--out", str(tmp_path)]) == 2
    assert "--source batfish needs the snapshot folder" in capsys.readouterr().err
    layer1 = str(data_file(*LAYER1))
    assert main(["demo", "--source", "batfish", layer1, "--out", str(tmp_path)]) == 2
    assert "is not a folder" in capsys.readouterr().err


def test_demo_batfish_without_layer1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["demo", "--source", "batfish", str(data_file(*LIVE))]
    assert main([*args, "--out", str(tmp_path)]) == 2
    error = capsys.readouterr().err
    assert "batfish/layer1_topology.json not found" in error
    assert "--layer1 FILE" in error


def test_detected_needs_batfish_source(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["demo", "--detected", str(data_file(*OUTAGE)), "--out", str(tmp_path)]
    assert main(args) == 2
    assert "apply only to --source batfish" in capsys.readouterr().err


def test_bad_detected_leaves_no_database(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["demo", "--source", "batfish", str(data_file(*LIVE))]
    args += ["--detected", str(tmp_path / "nowhere"), "--out", str(tmp_path)]
    assert main([*args, "--layer1", str(data_file(*LAYER1))]) == 2
    assert "nowhere not found" in capsys.readouterr().err
    assert list(tmp_path.glob("batfish.duckdb*")) == []
