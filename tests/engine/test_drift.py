"""Tests for the drift comparison, including drift between real Nmap scans."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from omnitwin.engine.discovery import parse_nmap_xml
from omnitwin.engine.drift import (
    DEFAULT_IGNORED,
    Difference,
    compare,
    flatten,
    join_path,
    split_path,
)
from omnitwin.errors import ValidationError

REPO = Path(__file__).resolve().parents[2]
DATA = Path(os.environ.get("OMNITWIN_TEST_DATA", REPO.parent / "shared" / "data"))


def data_file(relative: str) -> Path:
    """Return a file under the test data folder, failing if it is absent."""
    path = DATA / relative
    if not path.is_file():
        pytest.fail(f"test data file {path} is missing; set OMNITWIN_TEST_DATA")
    return path


def fields(twin: dict[str, Any], detected: dict[str, Any], **kwargs: Any) -> set[str]:
    return {d.field for d in compare(twin, detected, **kwargs).differences}


# flatten and paths


def test_flatten_nested_maps_dotted() -> None:
    state = {"interfaces": {"Ethernet1": {"mtu": 9000, "enabled": True}}}

    assert flatten(state) == {
        "interfaces.Ethernet1.mtu": 9000,
        "interfaces.Ethernet1.enabled": True,
    }


def test_flatten_escapes_dots_in_keys() -> None:
    state = {"interfaces": {"Ethernet1/1.2003": {"mtu": 1500}}}

    (path,) = flatten(state)

    assert path == "interfaces.Ethernet1/1\\.2003.mtu"
    assert split_path(path) == ["interfaces", "Ethernet1/1.2003", "mtu"]


def test_join_split_round_trip() -> None:
    segments = ["a.b", "c\\d", "", "e"]

    assert split_path(join_path(segments)) == segments


def test_flatten_scalar_list_sorted_set() -> None:
    assert flatten({"neighbors": ["b", "a", "b"]}) == {"neighbors": ["a", "b"]}


def test_flatten_list_of_maps_kept() -> None:
    value = [{"b": 1}, {"a": 2}]

    assert flatten({"routes": value}) == {"routes": value}


def test_flatten_skips_none_and_empty_maps() -> None:
    assert flatten({"serial": None, "interfaces": {}}) == {}


def test_flatten_skips_metadata() -> None:
    state = {
        "source": "nmap",
        "last_seen": "2024-01-01",
        "observed_at": "2024-01-01",
        "interfaces": {"Ethernet1": {"source": "x", "mtu": 1}},
    }

    assert flatten(state) == {"interfaces.Ethernet1.mtu": 1}


# compare: one test per rule


def test_compare_changed_value_is_drift() -> None:
    report = compare({"model": "vEOS"}, {"model": "cEOSLab"})

    assert report.differences == [Difference("model", "vEOS", "cEOSLab")]
    assert report.compared == 1
    assert report.score == 1.0
    assert report.drifted


def test_compare_equal_state_no_drift() -> None:
    state = {"hostname": "sw1", "interfaces": {"Ethernet1": {"mtu": 1500}}}

    report = compare(state, state)

    assert report.differences == []
    assert report.compared == 2
    assert report.score == 0.0
    assert not report.drifted


def test_compare_missing_in_detected_not_compared() -> None:
    report = compare({"hostname": "sw1", "serial": "FOC1"}, {"hostname": "sw1"})

    assert report.differences == []
    assert report.compared == 1


def test_compare_none_in_detected_not_compared() -> None:
    report = compare({"serial": "FOC1"}, {"serial": None, "hostname": "x"})

    assert report.compared == 0


def test_compare_detected_only_is_enrichment() -> None:
    report = compare({"hostname": "sw1"}, {"hostname": "sw1", "serial": "FOC1"})

    assert report.differences == []
    assert report.compared == 1


def test_compare_detected_empty_score_none() -> None:
    report = compare({"hostname": "sw1"}, {})

    assert report.score is None
    assert report.compared == 0


def test_compare_detected_none_score_none() -> None:
    assert compare({"hostname": "sw1"}, None).score is None


def test_compare_no_overlap_score_none() -> None:
    assert compare({"hostname": "sw1"}, {"serial": "FOC1"}).score is None


def test_compare_metadata_never_compared() -> None:
    twin = {"hostname": "sw1", "source": "napalm", "last_seen": "a", "observed_at": "a"}
    seen = {"hostname": "sw1", "source": "nmap", "last_seen": "b", "observed_at": "b"}

    report = compare(twin, seen, ignore=())

    assert report.differences == []
    assert report.compared == 1


def test_compare_uptime_ignored_by_default() -> None:
    report = compare({"uptime_s": 10}, {"uptime_s": 99})

    assert "uptime_s" in DEFAULT_IGNORED
    assert report.compared == 0


def test_compare_uptime_compared_without_default() -> None:
    assert fields({"uptime_s": 10}, {"uptime_s": 99}, ignore=()) == {"uptime_s"}


def test_compare_ignore_exact_path() -> None:
    twin = {"model": "a", "serial": "1"}
    seen = {"model": "b", "serial": "2"}

    assert fields(twin, seen, ignore=["model"]) == {"serial"}


def test_compare_ignore_glob() -> None:
    twin = {"interfaces": {"Ethernet1": {"description": "a", "mtu": 1500}}}
    seen = {"interfaces": {"Ethernet1": {"description": "b", "mtu": 9000}}}

    found = fields(twin, seen, ignore=["interfaces.*.description"])

    assert found == {"interfaces.Ethernet1.mtu"}


def test_compare_ignore_subtree() -> None:
    twin = {"model": "a", "interfaces": {"Ethernet1": {"mtu": 1500}}}
    seen = {"model": "b", "interfaces": {"Ethernet1": {"mtu": 9000}}}

    assert fields(twin, seen, ignore=["interfaces"]) == {"model"}


def test_compare_ignore_escaped_path() -> None:
    twin = {"interfaces": {"Ethernet1/1.2003": {"mtu": 1500}}}
    seen = {"interfaces": {"Ethernet1/1.2003": {"mtu": 9000}}}
    path = join_path(["interfaces", "Ethernet1/1.2003"])

    assert fields(twin, seen, ignore=[path]) == set()


def test_compare_set_order_and_duplicates_ignored() -> None:
    report = compare({"neighbors": ["a", "b"]}, {"neighbors": ["b", "a", "a"]})

    assert report.differences == []
    assert report.compared == 1


def test_compare_set_missing_element_is_drift() -> None:
    report = compare({"neighbors": ["a", "b"]}, {"neighbors": ["a"]})

    assert report.differences == [Difference("neighbors", ["a", "b"], ["a"])]


def test_compare_set_extra_element_is_drift() -> None:
    assert fields({"neighbors": ["a"]}, {"neighbors": ["a", "c"]}) == {"neighbors"}


def test_compare_set_observed_empty_is_drift() -> None:
    assert fields({"neighbors": ["a"]}, {"neighbors": []}) == {"neighbors"}


def test_compare_set_not_observed_not_compared() -> None:
    assert compare({"neighbors": ["a"]}, {"hostname": "x"}).compared == 0


def test_compare_bool_not_equal_int() -> None:
    twin = {"interfaces": {"Ethernet1": {"enabled": True}}}
    seen = {"interfaces": {"Ethernet1": {"enabled": 1}}}

    assert fields(twin, seen) == {"interfaces.Ethernet1.enabled"}


def test_compare_int_equals_float() -> None:
    assert fields({"mtu": 1500}, {"mtu": 1500.0}) == set()


def test_compare_score_weighted_share() -> None:
    twin = {"model": "a", "serial": "1", "hostname": "h"}
    seen = {"model": "b", "serial": "1", "hostname": "h"}

    report = compare(twin, seen)

    assert report.score == pytest.approx(1 / 3)


def test_compare_weights_exact_path() -> None:
    twin = {"model": "a", "serial": "1"}
    seen = {"model": "b", "serial": "1"}

    report = compare(twin, seen, weights={"model": 3.0})

    assert report.score == pytest.approx(3 / 4)


def test_compare_weights_glob() -> None:
    twin = {"hostname": "h", "interfaces": {"E1": {"mtu": 1}, "E2": {"mtu": 1}}}
    seen = {"hostname": "x", "interfaces": {"E1": {"mtu": 1}, "E2": {"mtu": 1}}}

    report = compare(twin, seen, weights={"interfaces.*": 0.5})

    assert report.score == pytest.approx(1 / 2)


def test_compare_weights_exact_beats_glob() -> None:
    twin = {"interfaces": {"E1": {"mtu": 1}, "E2": {"mtu": 1}}}
    seen = {"interfaces": {"E1": {"mtu": 2}, "E2": {"mtu": 1}}}
    weights = {"interfaces.*": 1.0, "interfaces.E1.mtu": 3.0}

    report = compare(twin, seen, weights=weights)

    assert report.score == pytest.approx(3 / 4)


def test_compare_zero_weights_score_none() -> None:
    report = compare({"model": "a"}, {"model": "b"}, weights={"model": 0})

    assert report.compared == 1
    assert report.score is None


@pytest.mark.parametrize("weight", [-1.0, float("nan"), float("inf"), "2", True])
def test_compare_invalid_weight_rejected(weight: Any) -> None:
    with pytest.raises(ValidationError, match="invalid drift weight"):
        compare({"model": "a"}, {"model": "b"}, weights={"model": weight})


def test_compare_differences_sorted() -> None:
    twin = {"z": 1, "a": 1, "m": 1}
    seen = {"z": 2, "a": 2, "m": 2}

    report = compare(twin, seen)

    assert [d.field for d in report.differences] == ["a", "m", "z"]


# drift between real Nmap scans


def test_nmap_mac_change_only_mac_drifts() -> None:
    (before,) = parse_nmap_xml(data_file("nmap-libnmap/1_host_ping.xml"))
    (after,) = parse_nmap_xml(
        data_file("nmap-libnmap/diff_1_host_ping_mac_changed.xml")
    )

    report = compare(before.state, after.state)

    assert report.differences == [
        Difference("mac", "02:42:ac:1c:01:03", "02:42:ac:1c:01:04")
    ]


def test_nmap_port_change_exact_fields() -> None:
    # In 2_hosts_achange.xml localhost lists tcp/23 open and tcp/25 closed,
    # and tcp/111 is no longer listed, so it falls into the 995 closed ports.
    before = parse_nmap_xml(data_file("nmap-libnmap/2_hosts.xml"))
    after = parse_nmap_xml(data_file("nmap-libnmap/2_hosts_achange.xml"))

    localhost = compare(before[0].state, after[0].state)
    scanme = compare(before[1].state, after[1].state)

    assert {(d.field, d.twin_value, d.actual_value) for d in localhost.differences} == {
        ("ports.tcp/23", "closed", "open"),
        ("ports.tcp/25", "open", "closed"),
        ("ports.tcp/111", "open", "closed"),
    }
    assert scanme.differences == []


def test_nmap_port_change_listed_only() -> None:
    # Without the expanded summaries, only the listed tcp/25 is observed in
    # both scans. Then tcp/23 is enrichment and tcp/111 is not observed.
    before = parse_nmap_xml(
        data_file("nmap-libnmap/2_hosts.xml"), expand_extraports=False
    )
    after = parse_nmap_xml(
        data_file("nmap-libnmap/2_hosts_achange.xml"), expand_extraports=False
    )

    assert fields(before[0].state, after[0].state) == {"ports.tcp/25"}
