"""The key store on a database file: admin keys, migration, audit, CLI --db."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from omnitwin.cli import main
from omnitwin.engine.context import Context
from omnitwin.engine.engine import Engine
from omnitwin.engine.store import Store
from omnitwin.errors import ValidationError
from omnitwin.server._keys import ADMIN_WORKSPACE, KeyStore, hash_key

# The api_keys table of databases created before admin keys existed.
OLD_KEYS_DDL = """
CREATE TABLE api_keys (
    id VARCHAR NOT NULL,
    workspace VARCHAR NOT NULL,
    name VARCHAR,
    kind VARCHAR NOT NULL,
    hash VARCHAR NOT NULL,
    read_only BOOLEAN NOT NULL,
    created_at VARCHAR NOT NULL,
    revoked_at VARCHAR
);
"""
OLD_SECRET = "ot_live_old-key-secret"


def make_old_database(path: Path) -> None:
    conn = duckdb.connect(str(path))
    conn.execute(OLD_KEYS_DDL)
    conn.execute(
        "INSERT INTO api_keys VALUES ('key_old', 'ws-old', 'old', 'live', ?, "
        "true, '2024-01-01T00:00:00.000000Z', NULL)",
        [hash_key(OLD_SECRET)],
    )
    conn.close()


def test_old_table_gets_admin_column(tmp_path: Path) -> None:
    db = tmp_path / "old.duckdb"
    make_old_database(db)
    engine = Engine(db)
    keys = KeyStore(engine.store, engine.audit)
    old = keys.authenticate(OLD_SECRET)
    assert old is not None
    assert old.id == "key_old"
    assert old.admin is False
    assert old.read_only is True
    record, secret = keys.create(None, admin=True)
    assert keys.authenticate(secret) == record
    nullable = engine.store.fetchone(
        "SELECT is_nullable FROM information_schema.columns "
        "WHERE table_name = 'api_keys' AND column_name = 'admin'"
    )
    assert nullable == ("NO",)
    engine.close()
    # Opening the migrated file again must not migrate twice.
    engine = Engine(db)
    listed = KeyStore(engine.store, engine.audit).list()
    assert {k.id: k.admin for k in listed} == {"key_old": False, record.id: True}
    engine.close()


def test_read_only_open_of_old_file(tmp_path: Path) -> None:
    db = tmp_path / "old.duckdb"
    make_old_database(db)
    keys = KeyStore(Store(db, read_only=True))
    [old] = keys.list()
    assert old.admin is False
    assert keys.authenticate(OLD_SECRET) == old


def test_admin_key_has_admin_workspace() -> None:
    keys = KeyStore(Store(":memory:"))
    record, _ = keys.create(None, admin=True, read_only=True)
    assert record.workspace == ADMIN_WORKSPACE
    assert record.access == "admin-read-only"
    assert keys.list(ADMIN_WORKSPACE) == [record]


@pytest.mark.parametrize(
    ("workspace", "admin"),
    [(None, False), ("  ", False), (ADMIN_WORKSPACE, False), ("ws", True)],
)
def test_create_rejects_bad_workspace(workspace: str | None, admin: bool) -> None:
    keys = KeyStore(Store(":memory:"))
    with pytest.raises(ValidationError, match="workspace"):
        keys.create(workspace, admin=admin)
    assert keys.list() == []


def test_key_events_keep_chain_valid() -> None:
    engine = Engine(":memory:")
    keys = KeyStore(engine.store, engine.audit)
    ctx = Context(workspace="ws", actor="user:test")
    engine.subnets.create(ctx, "10.0.0.0/24")
    record, _ = keys.create("ws", actor="key:key_admin")
    engine.subnets.create(ctx, "10.0.1.0/24")
    keys.revoke(record.id, actor="key:key_admin")
    keys.revoke(record.id, actor="key:key_admin")
    events = engine.audit.list("ws", subject=record.id).data
    assert [(e.action, e.actor) for e in events] == [
        ("key.create", "key:key_admin"),
        ("key.revoke", "key:key_admin"),
    ]
    assert engine.audit.verify("ws").ok
    engine.close()


def test_revoke_clears_cached_lookup() -> None:
    keys = KeyStore(Store(":memory:"))
    record, secret = keys.create("ws")
    assert keys.authenticate(secret) == record
    keys.revoke(record.id)
    assert keys.authenticate(secret) is None


def test_page_counts_and_slices() -> None:
    keys = KeyStore(Store(":memory:"))
    created = [keys.create("ws")[0] for _ in range(3)]
    keys.create("other")
    page = keys.page("ws", page=2, per_page=2)
    assert page.total == 3
    assert page.data == created[2:]


def test_cli_db_creates_and_lists_admin_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = str(tmp_path / "cli.duckdb")
    assert main(["keys", "create", "--admin", "--db", db, "--name", "ops"]) == 0
    created = capsys.readouterr().out
    assert created.startswith("created admin key key_")
    assert created.strip().splitlines()[-1].startswith("ot_live_")
    assert main(["keys", "list", "--db", db]) == 0
    listed = capsys.readouterr().out
    assert " * " in listed
    assert " admin " in listed
    assert "ops" in listed


def test_cli_rejects_workspace_with_admin(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = str(tmp_path / "cli.duckdb")
    with pytest.raises(SystemExit):
        main(["keys", "create", "--admin", "--workspace", "w", "--db", db])
    assert "not allowed with argument" in capsys.readouterr().err


def test_cli_rejects_db_and_url(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["keys", "list", "--db", "x.duckdb", "--url", "http://127.0.0.1:9/v1"]
    assert main([*args, "--api-key", "ot_live_x"]) == 2
    assert "--db or --url" in capsys.readouterr().err


@pytest.mark.parametrize(
    "workspace",
    ["evil\n2026-12-04 INFO forged line", "  spaced  ", "a\x00b", "w" * 65, "-lead"],
)
def test_workspace_name_rejected(tmp_path: Path, workspace: str) -> None:
    engine = Engine(tmp_path / "keys.duckdb")
    try:
        with pytest.raises(ValidationError, match="invalid workspace name"):
            KeyStore(engine.store).create(workspace, name="x")
        assert KeyStore(engine.store).list() == []
    finally:
        engine.close()
