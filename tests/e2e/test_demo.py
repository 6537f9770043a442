"""The README's main job: ``omnitwin demo`` on the embedded default."""

from __future__ import annotations

from pathlib import Path

import pytest

import omnitwin
from omnitwin.cli import main


def test_demo_writes_reports(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "twin.duckdb"
    out = tmp_path / "out"
    assert main(["demo", "--db", str(db), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "Drift: 6 open events on 5 devices" in printed
    assert "missing 'Ethernet50/1 spine-02 Ethernet2/1'" in printed
    assert "unexpected 'Ethernet48/1 leaf-04 Ethernet48/1'" in printed
    assert "hash chain intact" in printed

    drift_page = (out / "drift-summary.html").read_text()
    assert "6 open drift events" in drift_page
    assert "os_version" in drift_page
    report = (out / "blast-radius.html").read_text()
    assert "leaf-02.nyc1" in report
    assert "srv-02-01.nyc1" in report

    with omnitwin.Client(f"local:{db}", read_only=True) as client:
        radius = client.topology.blast_radius("leaf-02.nyc1")
        assert radius.hostnames == ["leaf-02.nyc1", "srv-02-01.nyc1", "srv-02-02.nyc1"]
        assert client.audit.verify().ok


def test_demo_twice_is_idempotent(tmp_path: Path) -> None:
    db = tmp_path / "twin.duckdb"
    args = ["demo", "--db", str(db), "--out", str(tmp_path / "out"), "--sites", "1"]
    assert main(args) == 0
    assert main(args) == 0
    with omnitwin.Client(f"local:{db}", read_only=True) as client:
        assert client.devices.list().total == 2 + 2 + 4 + 8
        assert client.drift.events(status="open").total == 6
