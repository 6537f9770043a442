"""Bulk subnet creation agrees with creating the same subnets one by one."""

from __future__ import annotations

import contextlib
import ipaddress

from hypothesis import given, settings
from hypothesis import strategies as st

import omnitwin
from omnitwin.engine import cidr
from omnitwin.engine.context import Context
from omnitwin.engine.engine import Engine
from omnitwin.engine.subnets import SubnetInput


@st.composite
def subnet_batches(draw: st.DrawFn) -> tuple[list[SubnetInput], list[SubnetInput]]:
    """Stored subnets and a batch of new ones inside 10.0.0.0/24 or 2001:db8::/120."""
    version = draw(st.sampled_from([4, 6]))
    base = ipaddress.ip_network("10.0.0.0/24" if version == 4 else "2001:db8::/120")
    bits = base.max_prefixlen

    def one() -> SubnetInput:
        length = draw(st.integers(24 if version == 4 else 120, bits))
        offset = draw(st.integers(0, 255)) >> (bits - length) << (bits - length)
        network = ipaddress.ip_network((int(base.network_address) + offset, length))
        return SubnetInput(
            network=network,
            is_container=draw(st.booleans()),
            vrf=draw(st.sampled_from(["global", "global", "red"])),
        )

    stored = [one() for _ in range(draw(st.integers(0, 4)))]
    batch = [one() for _ in range(draw(st.integers(1, 6)))]
    return stored, batch


def _order(values: SubnetInput) -> tuple[int, int, int]:
    return cidr.sort_key(values.network)


def _outcome(engine: Engine, items: list[SubnetInput], bulk: bool) -> object:
    ctx = Context()
    try:
        if bulk:
            created = engine.subnets.create_many(ctx, items)
        else:
            with engine.store.transaction():
                created = [
                    engine.subnets._insert(engine.store.conn, ctx, v)
                    for v in sorted(items, key=_order)
                ]
    except omnitwin.OmniTwinError as exc:
        return type(exc)
    del created
    rows = engine.store.fetchall(
        "SELECT s.cidr, s.vrf, p.cidr FROM subnets s LEFT JOIN subnets p "
        "ON p.id = s.parent_id ORDER BY s.version, s.first, s.prefix_length, s.vrf"
    )
    return rows


def _stored_engine(stored: list[SubnetInput]) -> Engine | None:
    engine = Engine(":memory:")
    for values in sorted(stored, key=_order):
        with contextlib.suppress(omnitwin.OmniTwinError):
            engine.subnets._insert(engine.store.conn, Context(), values)
    return engine


@settings(max_examples=100, deadline=None)
@given(subnet_batches())
def test_bulk_matches_one_by_one(
    batches: tuple[list[SubnetInput], list[SubnetInput]],
) -> None:
    stored, batch = batches
    seen: set[tuple[str, str]] = set()
    unique = []
    for values in batch:
        key = (str(values.network), values.vrf)
        if key not in seen:
            seen.add(key)
            unique.append(values)
    one_by_one = _stored_engine(stored)
    in_bulk = _stored_engine(stored)
    assert one_by_one is not None and in_bulk is not None
    expected = _outcome(one_by_one, unique, bulk=False)
    got = _outcome(in_bulk, unique, bulk=True)
    if isinstance(expected, type):
        # With several faults in one batch, either may be reported first.
        assert isinstance(got, type)
        assert issubclass(got, omnitwin.Conflict)
        assert issubclass(expected, omnitwin.Conflict)
        return
    assert got == expected
    assert in_bulk.audit.verify("default").ok


def test_bulk_rolls_back_on_conflict(engine: Engine, ctx: Context) -> None:
    engine.subnets.create(ctx, "10.0.0.0/24")
    items = [
        SubnetInput(network=cidr.parse_network("10.1.0.0/24")),
        SubnetInput(network=cidr.parse_network("10.0.0.0/24")),
    ]
    try:
        engine.subnets.create_many(ctx, items)
    except omnitwin.Duplicate as exc:
        assert "10.0.0.0/24 already exists" in str(exc)
    else:
        raise AssertionError("duplicate in bulk create was accepted")
    assert engine.store.fetchall("SELECT count(*) FROM subnets") == [(1,)]


def test_bulk_large_batch_indexes_free_space(engine: Engine, ctx: Context) -> None:
    block = engine.subnets.create(ctx, "10.0.0.0/8", is_container=True)
    items = [
        SubnetInput(network=ipaddress.IPv4Network((0x0A000000 + i * 512, 24)))
        for i in range(5000)
    ]
    created = engine.subnets.create_many(ctx, items)
    assert len(created) == 5000
    assert {s.parent_id for s in created} == {block.id}
    free = engine.subnets.available(ctx, 24, subnet_id=block.id, limit=2)
    assert free.blocks == ["10.0.1.0/24", "10.0.3.0/24"]
    assert free.total_free == 65536 - 5000
    assert engine.audit.verify(ctx.workspace).ok
