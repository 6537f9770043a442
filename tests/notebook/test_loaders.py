"""DataFrame and networkx loaders over the public client."""

from __future__ import annotations

from collections.abc import Iterator

import networkx as nx
import pandas as pd
import pytest

import omnitwin
from omnitwin.models import FreeBlocks, Subnet
from omnitwin.notebook import (
    load_sample_twin,
    read_audit_events,
    read_devices,
    read_drift_events,
    read_sessions,
    read_subnets,
    read_topology,
    to_networkx,
    to_pandas,
)
from omnitwin.notebook.loaders import SCHEMAS


@pytest.fixture(scope="module")
def client() -> Iterator[omnitwin.Client]:
    with omnitwin.connect(":memory:") as twin:
        load_sample_twin(twin, sites=2)
        yield twin


def assert_schema(frame: pd.DataFrame, kind: str) -> None:
    for column, dtype in SCHEMAS[kind].items():
        assert str(frame[column].dtype) == dtype, column


def test_subnets_have_explicit_dtypes(client: omnitwin.Client) -> None:
    frame = read_subnets(client)
    assert_schema(frame, "Subnet")
    assert len(frame) == client.subnets.list().total


def test_missing_vlan_stays_integer(client: omnitwin.Client) -> None:
    frame = read_subnets(client)
    assert frame["vlan_id"].isna().any()
    assert frame["vlan_id"].dropna().gt(0).all()
    assert str(frame["vlan_id"].dtype) == "Int64"


def test_subnets_site_filter(client: omnitwin.Client) -> None:
    frame = read_subnets(client, site="sfo1")
    assert len(frame) > 0
    assert {tags["site"] for tags in frame["tags"]} == {"sfo1"}


def test_subnets_limit(client: omnitwin.Client) -> None:
    assert len(read_subnets(client, limit=7)) == 7


def test_devices_dtypes_and_filter(client: omnitwin.Client) -> None:
    frame = read_devices(client, role="server")
    assert_schema(frame, "Device")
    assert set(frame["role"]) == {"server"}
    assert frame["last_seen"].notna().all()


def test_drift_events_dtypes(client: omnitwin.Client) -> None:
    frame = read_drift_events(client)
    assert_schema(frame, "DriftEvent")
    assert len(frame) > 0


def test_audit_events_dtypes(client: omnitwin.Client) -> None:
    frame = read_audit_events(client, action="device.create")
    assert_schema(frame, "AuditEvent")
    assert frame["seq"].ge(1).all()


def test_sessions_dtypes(client: omnitwin.Client) -> None:
    list(client.agents.command("Show drift on leaf-01.nyc1"))
    frame = read_sessions(client)
    assert_schema(frame, "Session")
    assert frame["tool_calls"].sum() >= 1


def test_empty_list_keeps_columns() -> None:
    frame = to_pandas([], kind="Device")
    assert list(frame.columns) == list(SCHEMAS["Device"])
    assert_schema(frame, "Device")


def test_unknown_kind_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown record kind 'Bogus'"):
        to_pandas([], kind="Bogus")


def test_non_record_is_rejected() -> None:
    with pytest.raises(TypeError, match="cannot convert int"):
        to_pandas([1, 2])


def test_page_to_pandas(client: omnitwin.Client) -> None:
    page = client.subnets.list(per_page=5)
    frame = to_pandas(page)
    assert frame["id"].tolist() == [s.id for s in page]


def test_free_blocks_to_pandas() -> None:
    blocks = FreeBlocks("10.0.0.0/23", 24, ["10.0.0.0/24", "10.0.1.0/24"], 2, "x")
    frame = to_pandas(blocks)
    assert frame["cidr"].tolist() == ["10.0.0.0/24", "10.0.1.0/24"]
    assert str(frame["prefix_length"].dtype) == "Int64"


def test_ipv6_prefix_length() -> None:
    frame = to_pandas([Subnet("sn_1", "2001:db8::/48")])
    assert frame["prefix_length"].tolist() == [48]
    assert frame["version"].tolist() == [6]


def test_topology_to_networkx(client: omnitwin.Client) -> None:
    graph = read_topology(client)
    devices = [n for n, d in graph.nodes(data=True) if d.get("kind") == "device"]
    assert len(devices) == client.devices.list().total
    leaf = next(n for n in devices if graph.nodes[n]["label"] == "leaf-01.nyc1")
    assert graph.nodes[leaf]["role"] == "switch"
    assert "open_drift" in graph.nodes[leaf]


def test_scoped_topology_is_pruned(client: omnitwin.Client) -> None:
    graph = read_topology(client, scope="leaf-01.nyc1", max_elements=15)
    assert graph.number_of_nodes() + graph.number_of_edges() <= 15
    assert graph.graph["pruned_nodes"] > 0


def test_links_to_networkx(client: omnitwin.Client) -> None:
    links = client.topology.links(kind="intended")
    graph = to_networkx(links)
    assert isinstance(graph, nx.MultiGraph)
    assert graph.number_of_edges() == len(links)
    _, _, data = next(iter(graph.edges(data=True)))
    assert data["relation"] == "connected_to"


def test_page_method_to_pandas(client: omnitwin.Client) -> None:
    page = client.devices.list(site="nyc1", per_page=3)
    frame = page.to_pandas()
    assert frame["hostname"].tolist() == [d.hostname for d in page]
    assert str(frame["drift_score"].dtype) == "Float64"


def test_bulk_read_matches_paged(client: omnitwin.Client) -> None:
    bulk = client.subnets.to_pandas()
    paged = read_subnets(client, purpose="")
    pd.testing.assert_frame_equal(bulk, paged)


def test_bulk_read_filters_within(client: omnitwin.Client) -> None:
    frame = client.subnets.to_pandas(within="10.2.0.0/16")
    assert len(frame) > 0
    assert frame["cidr"].str.startswith("10.2.").all()
    assert_schema(frame, "Subnet")
