"""The audit trail: every mutation recorded once, chained, and verifiable."""

from __future__ import annotations

import itertools
import threading
from pathlib import Path

import duckdb
import pytest

import omnitwin
from omnitwin.engine import audit as audit_module


def test_every_mutation_is_audited(client: omnitwin.Client) -> None:
    block = client.subnets.create("10.0.0.0/16", is_container=True, intent="new site")
    child = client.subnets.allocate(24, subnet_id=block.id, intent="payments")
    client.subnets.update(child.id, purpose="payments", intent="label it")
    address = client.addresses.create("10.0.0.10")
    actions = [(e.subject, e.action, e.seq) for e in client.audit.list().data]
    assert actions == [
        (block.id, "subnet.create", 1),
        (child.id, "subnet.create", 1),
        (child.id, "subnet.update", 2),
        (address.id, "address.create", 1),
    ]
    events = client.subnets.audit(child.id).data
    assert [e.intent for e in events] == ["payments", "label it"]
    assert {e.actor for e in events} == {"user:test"}
    assert events[1].changes == {
        "before": {"purpose": None},
        "after": {"purpose": "payments"},
    }
    assert events[0].changes["before"] is None
    assert events[0].changes["after"]["cidr"] == "10.0.0.0/24"


def test_no_op_update_is_not_audited(client: omnitwin.Client) -> None:
    subnet = client.subnets.create("10.0.0.0/24", purpose="x")
    client.subnets.update(subnet.id, purpose="x")
    assert client.subnets.audit(subnet.id).total == 1


def test_rejected_mutation_is_not_audited(client: omnitwin.Client) -> None:
    client.subnets.create("10.0.0.0/24")
    with pytest.raises(omnitwin.Duplicate):
        client.subnets.create("10.0.0.0/24")
    assert client.audit.list().total == 1


def test_chain_links_each_event(client: omnitwin.Client) -> None:
    for index in range(5):
        client.subnets.create(f"10.0.{index}.0/24")
    events = client.audit.list().data
    assert events[0].prev_hash == audit_module.GENESIS_HASH
    for previous, current in itertools.pairwise(events):
        assert current.prev_hash == previous.hash
    verification = client.audit.verify()
    assert verification.ok
    assert verification.checked == 5


def _tamper(path: Path, sql: str) -> None:
    conn = duckdb.connect(str(path))
    conn.execute(sql)
    conn.close()


@pytest.mark.parametrize(
    ("sql", "position", "reason"),
    [
        (
            "UPDATE audit_events SET actor = 'user:mallory' WHERE position = 3",
            3,
            "stored hash",
        ),
        ("UPDATE audit_events SET changes = '{}' WHERE position = 2", 2, "stored hash"),
        ("DELETE FROM audit_events WHERE position = 2", 2, "position 3"),
        (
            "UPDATE audit_events SET prev_hash = repeat('1', 64) WHERE position = 4",
            4,
            "prev_hash",
        ),
    ],
)
def test_verify_finds_first_broken_link(
    db_path: Path, sql: str, position: int, reason: str
) -> None:
    with omnitwin.Client(f"local:{db_path}") as client:
        for index in range(5):
            client.subnets.create(f"10.0.{index}.0/24")
        client.backend.engine.close()  # type: ignore[attr-defined]
    _tamper(db_path, sql)
    with omnitwin.Client(f"local:{db_path}", read_only=True) as client:
        result = client.audit.verify()
        client.backend.engine.close()  # type: ignore[attr-defined]
    assert not result.ok
    assert result.first_broken_position == position
    assert reason in (result.reason or "")


def test_audit_has_no_update_or_delete_path() -> None:
    public = {name for name in dir(audit_module.AuditLog) if not name.startswith("_")}
    assert public == {"append", "append_many", "list", "verify"}
    client_methods = {
        n for n in dir(omnitwin.Client(":memory:").audit) if not n.startswith("_")
    }
    assert client_methods == {"list", "verify"}


def test_concurrent_allocations_are_distinct(client: omnitwin.Client) -> None:
    block = client.subnets.create("10.0.0.0/16", is_container=True)
    results: list[str] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(50)

    def allocate() -> None:
        barrier.wait()
        try:
            subnet = client.subnets.allocate(
                24, subnet_id=block.id, intent="parallel test"
            )
            results.append(subnet.cidr)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=allocate) for _ in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    assert len(results) == 50
    assert len(set(results)) == 50
    assert sorted(results, key=lambda c: int(c.split(".")[2])) == [
        f"10.0.{i}.0/24" for i in range(50)
    ]
    creates = [
        e
        for e in client.audit.list(action="subnet.create", per_page=200).data
        if e.intent == "parallel test"
    ]
    assert len(creates) == 50
    assert len({e.subject for e in creates}) == 50
    assert client.audit.verify().ok
    assert client.subnets.get(block.id).used_ips == 50 * 256


def test_concurrent_async_allocations(db_path: Path) -> None:
    import asyncio

    async def main() -> list[str]:
        async with omnitwin.AsyncClient(f"local:{db_path}") as client:
            block = await client.subnets.create("10.9.0.0/16", is_container=True)
            subnets = await asyncio.gather(
                *[client.subnets.allocate(26, subnet_id=block.id) for _ in range(20)]
            )
            return [s.cidr for s in subnets]

    cidrs = asyncio.run(main())
    assert len(set(cidrs)) == 20
