"""Mistakes a new user makes on the command line: one line, nothing written."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

import omnitwin
from omnitwin.cli import main
from omnitwin.errors import ValidationError
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


def _run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run ``omnitwin`` in a new process and return its exit status and output."""
    command = [sys.executable, "-m", "omnitwin.cli", *args]
    return subprocess.run(
        command, cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )


def _one_error_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    return lines[0]


def _new_database(path: Path) -> Path:
    omnitwin.connect(f"local:{path}").close()
    return path


@pytest.mark.parametrize("port", ["99999", "-1", "http"])
def test_serve_invalid_port(
    port: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "t.duckdb"
    with pytest.raises(SystemExit) as exited:
        main(["serve", "--db", str(db), "--port", port])
    assert exited.value.code == 2
    error = capsys.readouterr().err
    assert f"argument --port: invalid port {port}" in error
    assert "give 1 to 65535, or 0 to pick a free port" in error
    assert not db.exists()


def test_serve_port_in_use(tmp_path: Path) -> None:
    db = tmp_path / "x.duckdb"
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = _run_cli(
            "serve",
            "--db",
            str(db),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            cwd=tmp_path,
        )
    assert result.returncode == 2
    error = _one_error_line(result.stderr)
    assert error == (
        f"omnitwin: error: port {port} on 127.0.0.1 is in use; pass --port with a "
        "free port, or stop the process that listens on it"
    )
    assert result.stdout == ""
    assert not db.exists()


def test_serve_port_zero_logs_chosen_port(tmp_path: Path) -> None:
    db = tmp_path / "x.duckdb"
    command = [sys.executable, "-m", "omnitwin.cli", "serve", "--db", str(db)]
    command += ["--host", "127.0.0.1", "--port", "0"]
    process = subprocess.Popen(
        command,
        cwd=tmp_path,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stderr is not None
        first = process.stderr.readline()
        match = re.search(r"serving (http://127\.0\.0\.1:(\d+)/v1)$", first.strip())
        assert match, first
        assert int(match.group(2)) > 0
        deadline = time.monotonic() + 30
        status = None
        while status is None and time.monotonic() < deadline:
            try:
                status = httpx.get(f"{match.group(1)}/health", timeout=1).status_code
            except httpx.TransportError:
                time.sleep(0.1)
        assert status == 200
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)


def test_serve_file_not_duckdb(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    page = tmp_path / "page.html"
    page.write_text("<html><body>not a database</body></html>")
    assert main(["serve", "--db", str(page), "--port", "0"]) == 2
    error = _one_error_line(capsys.readouterr().err)
    assert error.startswith(f"omnitwin: error: {page} is not a DuckDB database file")
    assert "check --db" in error
    assert page.read_text() == "<html><body>not a database</body></html>"


def test_audit_verify_json_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    export = tmp_path / "SOMEFILE.json"
    export.write_text("{}")
    assert main(["audit", "verify", "--db", str(export)]) == 2
    error = _one_error_line(capsys.readouterr().err)
    assert error.startswith(
        f"omnitwin: error: {export} is not a DuckDB database file; check --db"
    )
    assert export.read_text() == "{}"


def test_connect_file_not_duckdb(tmp_path: Path) -> None:
    page = tmp_path / "page.html"
    page.write_text("<html></html>")
    with pytest.raises(ValidationError, match="page.html is not a DuckDB database"):
        omnitwin.connect(f"local:{page}")
    assert page.read_text() == "<html></html>"


def test_discover_file_not_utf8(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = _new_database(tmp_path / "t.duckdb")
    getters = tmp_path / "getters.json"
    getters.write_bytes(b"\x93facts\x94")
    args = ["discover", str(getters), "--format", "napalm", "--db", str(db)]
    assert main(args) == 2
    error = _one_error_line(capsys.readouterr().err)
    assert error.startswith(f"omnitwin: error: {getters} is not UTF-8 (")
    assert error.endswith("; save it as UTF-8 and retry")


def test_demo_out_is_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "t.duckdb"
    out.write_bytes(b"kept")
    db = tmp_path / "twin.duckdb"
    assert main(["demo", "--out", str(out), "--db", str(db)]) == 2
    error = _one_error_line(capsys.readouterr().err)
    assert error.startswith(f"omnitwin: error: --out {out} is a file")
    assert (
        "pass a folder, e.g. --out out, and name the database file with --db" in error
    )
    assert out.read_bytes() == b"kept"
    assert not db.exists()


def _not_utf8_export(folder: Path) -> Path:
    export = folder / "bad.json"
    export.write_bytes(b"\x93netbox\x94")
    return export


def test_failed_import_removes_new_database(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "i1.duckdb"
    export = _not_utf8_export(tmp_path)
    assert main(["import", "netbox", str(export), "--db", str(db)]) == 1
    assert "save it as UTF-8 and retry" in capsys.readouterr().out
    assert not db.exists()
    assert not (tmp_path / "i1.duckdb.wal").exists()


def test_failed_import_keeps_existing_database(tmp_path: Path) -> None:
    db = _new_database(tmp_path / "kept.duckdb")
    export = _not_utf8_export(tmp_path)
    assert main(["import", "netbox", str(export), "--db", str(db)]) == 1
    assert db.is_file()
    with omnitwin.connect(f"local:{db}", read_only=True) as client:
        assert client.audit.verify().ok


def test_failed_demo_removes_new_database(tmp_path: Path) -> None:
    out = tmp_path / "outbad"
    export = _not_utf8_export(tmp_path)
    assert main(["demo", "--source", "netbox", str(export), "--out", str(out)]) == 1
    assert not (out / "netbox.duckdb").exists()
    assert not (out / "netbox.duckdb.wal").exists()
    # Nothing is left that a second run would take for a built twin.
    assert main(["demo", "--source", "netbox", str(export), "--out", str(out)]) == 1


def test_demo_writes_reports_after_reader_exits(tmp_path: Path) -> None:
    out = tmp_path / "out"
    command = [sys.executable, "-m", "omnitwin.cli", "demo", "--db", "t.duckdb"]
    command += ["--out", str(out), "--sites", "1", "--leaves", "2"]
    # Unbuffered output reaches the pipe line by line, so the demo writes to
    # it again after the reader closed it, as with '| head -2'.
    process = subprocess.Popen(
        command,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert process.stdout is not None
    assert process.stderr is not None
    first_lines = [process.stdout.readline(), process.stdout.readline()]
    process.stdout.close()
    stderr = process.stderr.read()
    assert process.wait(timeout=300) == 0, stderr
    assert first_lines[0].startswith("omnitwin ")
    assert "Traceback" not in stderr
    assert (out / "drift-summary.html").is_file()
    assert (out / "blast-radius.html").is_file()


def test_keys_revoke_unknown_id(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = _new_database(tmp_path / "keys.duckdb")
    assert main(["keys", "revoke", "key_01J9UNKNOWN", "--db", str(db)]) == 1
    error = _one_error_line(capsys.readouterr().err)
    assert error == (
        "omnitwin: error: no API key with id 'key_01J9UNKNOWN'; list the key ids "
        "with omnitwin keys list"
    )


def test_import_wrong_source_one_error(tmp_path: Path) -> None:
    export = data_file("netbox-demo-data", "netbox-demo-v3.6.dcim-ipam.json")
    db = tmp_path / "wrong.duckdb"
    result = _run_cli("import", "infoblox", str(export), "--db", str(db), cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr == ""
    errors = [line for line in result.stdout.splitlines() if "error:" in line]
    assert errors == [
        "  error: the file is a NetBox dumpdata export, not an Infoblox WAPI "
        "response; import it with source 'netbox'"
    ]
    assert not db.exists()


def test_subnet_host_bits_point_to_normalize(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = _new_database(tmp_path / "twin.duckdb")
    create = ["subnets", "create", "10.0.83.196/26", "--db", str(db)]
    assert main(create) == 2
    error = _one_error_line(capsys.readouterr().err)
    assert "did you mean 10.0.83.192/26?" in error
    assert "--normalize" in error
    assert main([*create, "--normalize", "--json"]) == 0
    assert '"cidr": "10.0.83.192/26"' in capsys.readouterr().out


def test_subnet_create_without_options(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = _new_database(tmp_path / "twin.duckdb")
    assert main(["subnets", "create", "10.9.0.0/24", "--db", str(db), "--json"]) == 0
    created = capsys.readouterr().out
    assert '"status": "allocated"' in created
    assert '"vrf": "global"' in created


@pytest.mark.parametrize(
    ("tags", "message"),
    [
        (["noequals"], "invalid --tag 'noequals'; write KEY=VALUE"),
        (["=x"], "invalid --tag '=x'; write KEY=VALUE"),
        (["a=b", "a=c"], "--tag a is given twice"),
    ],
)
def test_subnet_tag_options_checked(
    tags: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = _new_database(tmp_path / "twin.duckdb")
    options = [word for tag in tags for word in ("--tag", tag)]
    assert main(["subnets", "create", "10.9.0.0/24", "--db", str(db), *options]) == 2
    assert message in _one_error_line(capsys.readouterr().err)
    with omnitwin.connect(f"local:{db}", read_only=True) as client:
        assert client.subnets.list().total == 0


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--rate-window-seconds", "nan"),
        ("--rate-window-seconds", "inf"),
        ("--shutdown-timeout", "-1"),
        ("--rate-limit", "abc"),
    ],
)
def test_serve_number_options_checked(
    option: str, value: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "serve.duckdb"
    with pytest.raises(SystemExit) as exit_info:
        main(["serve", "--db", str(db), option, value])
    assert exit_info.value.code == 2
    assert f"invalid number '{value}'" in capsys.readouterr().err
    assert not db.exists()


def test_failed_import_keeps_symlink(tmp_path: Path) -> None:
    link = tmp_path / "link.duckdb"
    link.symlink_to(tmp_path / "target.duckdb")
    export = _not_utf8_export(tmp_path)
    assert main(["import", "netbox", str(export), "--db", str(link)]) == 1
    assert link.is_symlink()
