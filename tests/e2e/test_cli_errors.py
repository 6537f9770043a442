"""Mistakes a new user makes on the command line: one line, nothing written."""

from __future__ import annotations

from pathlib import Path

import pytest

from omnitwin.cli import main
from testdata import data_file


@pytest.mark.parametrize(
    "command",
    [
        ["subnets", "list"],
        ["subnets", "allocate", "10.1.128.0/17", "--length", "24"],
        ["audit", "verify"],
        ["report", "blast-radius", "leaf-02.nyc1", "--out", "r.html"],
    ],
)
def test_missing_database_is_not_created(
    command: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "typo" / "twn.duckdb"
    assert main([*command, "--db", str(db)]) == 2
    assert f"database {db} not found; check --db" in capsys.readouterr().err
    assert not db.parent.exists()


def test_demo_on_subnets_only_export(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    export = data_file("infoblox", "ibx-sdk_csvexport_networks.csv")
    out = tmp_path / "out"
    assert main(["demo", "--source", "infoblox", str(export), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "No devices in this twin, so there is no blast radius" in printed
    assert (out / "drift-summary.html").is_file()
    assert not (out / "blast-radius.html").exists()


def test_demo_unknown_root_keeps_twin(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    export = data_file("netbox-demo-data", "netbox-demo-v3.6.dcim-ipam.json")
    out = tmp_path / "out"
    args = ["demo", "--source", "netbox", str(export), "--out", str(out)]
    assert main([*args, "--roots", "ncsu-coreswich2"]) == 2
    error = capsys.readouterr().err
    assert "node 'ncsu-coreswich2' not found" in error
    assert "name a device by id or hostname" in error
    assert f"report on it with: omnitwin report blast-radius TARGET --db {out}" in error
    assert (out / "netbox.duckdb").is_file()
