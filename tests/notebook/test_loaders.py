"""DataFrame and networkx loaders over the public client."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import networkx as nx
import pandas as pd
import pyarrow as pa
import pytest

import omnitwin
from omnitwin.engine.subnet_export import EXPORT_COLUMNS, frame_from_arrow
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
from omnitwin.notebook.loaders import SCHEMAS, subnets_frame


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


def test_audit_limit_keeps_newest() -> None:
    with omnitwin.connect(":memory:") as twin:
        for index in range(450):
            twin.subnets.create(f"10.{index // 256}.{index % 256}.0/24")
        everything = read_audit_events(twin)["position"].tolist()
        # 200 events fit on a page, so these limits end inside, at and across
        # page boundaries, and past the total.
        assert len(everything) == 450
        for limit in (1, 7, 200, 201, 401, 450, 453):
            newest = read_audit_events(twin, limit=limit)["position"].tolist()
            assert newest == everything[-limit:], limit


def test_audit_limit_zero_is_invalid(client: omnitwin.Client) -> None:
    with pytest.raises(ValueError, match="limit must be at least 1, got 0"):
        read_audit_events(client, limit=0)


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


# Runs in a child interpreter where importing pyarrow fails, as on an install
# without it, so that the local export takes DuckDB's ``.df()`` path.
_WITHOUT_PYARROW = """
import pickle, sys
sys.modules["pyarrow"] = None
import omnitwin
with omnitwin.connect(sys.argv[1], read_only=True) as client:
    frame = client.subnets.to_pandas()
with open(sys.argv[2], "wb") as out:
    pickle.dump(frame, out)
"""


def test_bulk_read_same_without_pyarrow(tmp_path: Path) -> None:
    db = tmp_path / "twin.duckdb"
    with omnitwin.connect(str(db)) as twin:
        load_sample_twin(twin, sites=2)
        twin.subnets.create("10.250.0.0/24", tags={"note": "a b", "site": "x"})
    with omnitwin.connect(str(db), read_only=True) as twin:
        with_arrow = twin.subnets.to_pandas()
    pickled = tmp_path / "frame.pickle"
    subprocess.run(
        [sys.executable, "-c", _WITHOUT_PYARROW, str(db), str(pickled)],
        check=True,
        timeout=120,
    )
    without_arrow = pd.read_pickle(pickled)
    assert_schema(with_arrow, "Subnet")
    assert_schema(without_arrow, "Subnet")
    # The string columns and the column index differ only in storage (Arrow
    # or Python objects), which the schema check above does not look at.
    pd.testing.assert_frame_equal(
        with_arrow, without_arrow, check_dtype=False, check_column_type=False
    )
    added = with_arrow.loc[with_arrow["cidr"] == "10.250.0.0/24", "tags"]
    assert added.tolist() == [{"note": "a b", "site": "x"}]


def test_bulk_read_tags_are_separate_dicts(client: omnitwin.Client) -> None:
    frame = client.subnets.to_pandas()
    sites = frame["tags"][frame["tags"].map(bool)]
    first, second = sites.iloc[0], sites.iloc[1]
    assert first == second
    first["changed"] = "yes"
    assert "changed" not in second


def test_arrow_timestamps_from_text() -> None:
    columns = {name: pa.array([None, None], pa.string()) for name in EXPORT_COLUMNS}
    columns["prefix_length"] = pa.array([24, 64], pa.int16())
    columns["tags"] = pa.array(['{"site": "a"}', None])
    columns["created_at"] = pa.array(["", "2026-12-04T10:00:00.5+01:00"])
    # Arrow rejects a text without a zone, so the loader's schema parses it.
    columns["updated_at"] = pa.array(["2026-12-04T10:00:00", "2026-12-04"])
    frame = subnets_frame(frame_from_arrow(pa.table(columns)))
    assert_schema(frame, "Subnet")
    assert frame["created_at"].isna().tolist() == [True, False]
    assert frame["created_at"][1] == pd.Timestamp("2026-12-04T09:00:00.5Z")
    assert frame["updated_at"][0] == pd.Timestamp("2026-12-04T10:00:00Z")
    assert frame["updated_at"][1] == pd.Timestamp("2026-12-04T00:00:00Z")
    assert frame["prefix_length"].tolist() == [24, 64]
    assert frame["tags"].tolist() == [{"site": "a"}, {}]
