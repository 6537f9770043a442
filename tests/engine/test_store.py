"""The DuckDB store: file locking across processes, read-only use, transactions."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import omnitwin
from omnitwin.engine.engine import Engine, open_engine
from omnitwin.errors import PermissionDenied, ValidationError

HOLDER = textwrap.dedent(
    """
    import sys, time
    import omnitwin
    client = omnitwin.connect("local:" + sys.argv[1])
    client.subnets.list()
    print("ready", flush=True)
    sys.stdin.readline()
    """
)

OPENER = textwrap.dedent(
    """
    import sys
    import omnitwin
    try:
        client = omnitwin.connect("local:" + sys.argv[1], read_only=sys.argv[2] == "ro")
        print("opened", client.subnets.list().total)
    except omnitwin.StoreLocked as exc:
        print("locked", exc)
    """
)


def _run_opener(path: Path, mode: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", OPENER, str(path), mode],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return result.stdout.strip()


@pytest.fixture
def held_file(db_path: Path):  # type: ignore[no-untyped-def]
    """A database file held open for writing by another process."""
    Engine(db_path).close()
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(db_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None
    assert holder.stdout.readline().strip() == "ready"
    yield db_path
    holder.communicate("stop\n", timeout=60)


@pytest.mark.parametrize("mode", ["rw", "ro"])
def test_locked_file_error_names_file(held_file: Path, mode: str) -> None:
    output = _run_opener(held_file, mode)
    assert output.startswith("locked")
    assert str(held_file) in output
    assert "read_only=True" in output
    assert "omnitwin serve" in output


def test_two_read_only_processes(db_path: Path) -> None:
    with omnitwin.Client(f"local:{db_path}") as client:
        client.subnets.create("10.0.0.0/24")
    open_engine(db_path).close()
    readers = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                HOLDER.replace(
                    '"local:" + sys.argv[1]', '"local:" + sys.argv[1], read_only=True'
                ),
                str(db_path),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    try:
        for reader in readers:
            assert reader.stdout is not None
            assert reader.stdout.readline().strip() == "ready"
        assert _run_opener(db_path, "ro") == "opened 1"
    finally:
        for reader in readers:
            reader.communicate("stop\n", timeout=60)


def test_same_process_shares_engine(db_path: Path) -> None:
    writer = omnitwin.connect(f"local:{db_path}")
    reader = omnitwin.connect(f"local:{db_path}", read_only=True)
    writer.subnets.create("10.0.0.0/24")
    assert reader.subnets.list().total == 1
    writer.backend.engine.close()  # type: ignore[attr-defined]


def test_read_only_then_write_rejected(db_path: Path) -> None:
    Engine(db_path).close()
    reader = open_engine(db_path, read_only=True)
    try:
        with pytest.raises(ValidationError, match="already open read-only"):
            open_engine(db_path)
        client = omnitwin.Client(f"local:{db_path}", read_only=True)
        with pytest.raises(PermissionDenied, match="open read-only"):
            client.subnets.create("10.0.0.0/24")
    finally:
        reader.close()


def test_failed_mutation_leaves_no_trace(engine: Engine) -> None:
    from omnitwin.engine.context import Context

    context = Context()
    engine.subnets.create(context, "10.0.0.0/16", is_container=True)
    before = engine.store.fetchall("SELECT count(*) FROM audit_events")
    with pytest.raises(omnitwin.CIDROverlap):
        engine.subnets.create_many(
            context,
            [_input("10.0.1.0/24"), _input("10.0.2.0/24"), _input("10.0.0.0/8")],
        )
    assert engine.store.fetchall("SELECT count(*) FROM subnets") == [(1,)]
    assert engine.store.fetchall("SELECT count(*) FROM audit_events") == before
    free = engine.subnets.available(context, 24, cidr_text="10.0.0.0/16", limit=3)
    assert free.blocks == ["10.0.0.0/24", "10.0.1.0/24", "10.0.2.0/24"]


def _input(text: str):  # type: ignore[no-untyped-def]
    from omnitwin.engine import cidr
    from omnitwin.engine.subnets import SubnetInput

    return SubnetInput(network=cidr.parse_network(text))


def test_data_survives_reopen(db_path: Path) -> None:
    with omnitwin.Client(f"local:{db_path}") as client:
        block = client.subnets.create("10.0.0.0/16", is_container=True)
        client.subnets.allocate(24, subnet_id=block.id)
        client.backend.engine.close()  # type: ignore[attr-defined]
    with omnitwin.Client(f"local:{db_path}") as client:
        assert client.subnets.allocate(24, subnet_id=block.id).cidr == "10.0.1.0/24"
        assert client.audit.verify().ok
        client.backend.engine.close()  # type: ignore[attr-defined]


def test_memory_databases_are_private() -> None:
    first = omnitwin.connect(":memory:")
    second = omnitwin.connect(":memory:")
    first.subnets.create("10.0.0.0/24")
    assert second.subnets.list().total == 0
