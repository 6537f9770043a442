"""The SQL planner of subnet CSVs against the parser, on the job API."""

from __future__ import annotations

import csv
import ipaddress
import random
from typing import Any

import pytest

from omnitwin.engine.context import Context
from omnitwin.engine.engine import Engine
from omnitwin.engine.import_conflicts import (
    _IPV4_ROWS_ONE_VRF,
    FoundConflict,
    _sorted_one_vrf,
)
from omnitwin.engine.import_fast import plan_staged_csv
from omnitwin.engine.import_plan import summarize_plan
from omnitwin.engine.import_sources import parse_source
from omnitwin.models import ImportJob

HEADER = "cidr,status,purpose,owner,vlan,vrf\n"

# Rows the SQL planner stages itself, rows it hands to the parser (IPv6, host
# bits, leading zeros, padding, tags and parents, bad values, surplus cells)
# and every kind of in-file and store conflict.
TRICKY = (
    "10.1.0.0/16,container,campus,team:net,,\n"
    "10.1.1.0/24,,users,team:a,110,\n"
    "10.1.1.0/24,reserved,users again,team:b,,\n"
    "10.1.1.0/24,Container,third copy,team:a,,\n"
    "10.1.2.0/24,allocated,stored,team:d,,\n"
    "10.1.3.5/24,,host bits,,,\n"
    "010.1.4.0/24,,leading zero,,,\n"
    "10.1.5.0/33,,long prefix,,,\n"
    "10.1.5.0/24,bogus,,,,\n"
    "10.1.6.0/24,,,,5000,\n"
    "10.1.6.0/24,,vlan zero,,0,\n"
    "10.1.7.0/24,,zero padded vlan,,0100,\n"
    "10.1.8.0/24,,padded vlan,, 12,\n"
    "  10.1.9.0/24 , Reserved ,  spaced  ,  team:s ,,\n"
    "10.1.10.0/24,,,,,,extra\n"
    "10.2.0.0/16,,leaf,,,red\n"
    "10.2.0.0/20,,leaf in leaf,,,red\n"
    "10.2.1.0/24,,in both,,,red\n"
    "10.2.0.0/16,,copy of the leaf,team:x,,red\n"
    "10.2.0.0/16,,same net other vrf,,,\n"
    "10.3.0.0/16,,leaf whose copy is a container,,,\n"
    "10.3.0.0/16,container,,,,\n"
    "10.3.4.0/24,,,,,\n"
    "10.9.4.0/24,,inside a stored leaf,,,\n"
    "10.0.0.0/8,,around a stored leaf,,,\n"
    "0.0.0.0/0,container,everything,,,\n"
    "255.255.255.255/32,,,,,\n"
    "2001:db8::/48,,v6,,,\n"
    "2001:db8:0:1::/64,,v6 child,,,\n"
    "2001:db8::/48,,v6 copy,team:z,,\n"
    "2001:DB8:0:2::/64,,upper case v6,,,\n"
    "10.4.0.0/24,,,,,,\n"
    "   \n"
    ",,,,,\n"
    "10.4.1.0/24,,tags,,,\n"
    "10.4.2.0/24,,,,,\n"
    "10.10.1.0/24,,in a stored container,,,\n"
    "\n"
    "\n"
)


def with_tags_and_parent() -> str:
    return (
        "cidr,tags,parent,status\n"
        "10.5.0.0/16,,,container\n"
        "10.5.1.0/24,env=lab|rack=r1,10.5.0.0/16,\n"
        "10.5.2.0/24,,10.6.0.0/16,\n"
        "10.5.3.0/24,broken,,\n"
        "10.5.4.0/24,,,\n"
    )


CASES: dict[str, tuple[bytes, bool]] = {
    "tricky": ((HEADER + TRICKY).encode(), True),
    "bom crlf semicolon": (
        b"\xef\xbb\xbf"
        + (HEADER + TRICKY).replace(",", ";").replace("\n", "\r\n").encode(),
        True,
    ),
    "no final newline": (
        (HEADER + "10.7.0.0/24,,,,,\n10.7.1.0/24,,,,,").encode(),
        True,
    ),
    "tags and parent": (with_tags_and_parent().encode(), True),
    "header only": (HEADER.encode(), True),
    "ipv4 only": (
        (
            HEADER
            + "".join(
                line + "\n"
                for line in TRICKY.splitlines()
                if not line.lower().startswith("2001:")
            )
        ).encode(),
        True,
    ),
    "numbers out of range": (
        (
            HEADER + "300.1.1.0/24,,,,,\n10.1.1.0/240,,,,,\n1.2.3.4.5/24,,,,,\n"
            "10.1.1.0/24,,,,,\n10.1.1.0/24,,,,,\n"
        ).encode(),
        True,
    ),
    "two surplus cells": (
        (HEADER + "10.8.5.0/24,,,,,\n10.8.6.0/24,,,,,,a,b\n").encode(),
        False,
    ),
    "empty line inside": (
        (HEADER + "10.8.0.0/24,,,,,\n\n10.8.1.0/24,,,,,\n").encode(),
        False,
    ),
    "quoted line break": (
        (HEADER + '10.8.2.0/24,,"two\nlines",,,\n10.8.2.0/24,,,,,\n').encode(),
        False,
    ),
    "bare carriage return": ((HEADER + "10.8.3.0/24,,a\rb,,,\n").encode(), False),
    "carriage return at the end": ((HEADER + "10.8.3.0/24,,,,,\r").encode(), False),
    "tab in a value": ((HEADER + "10.8.3.0/24,,a\tb,,,\n").encode(), False),
    "delete character": ((HEADER + "10.8.3.0/24,,a\x7fb,,,\n").encode(), False),
    "not ascii": ((HEADER + "10.8.4.0/24,,café,,,\n").encode(), False),
    # A row handed to the parser is line 2 of the file the parser reads, so
    # its messages are renumbered. Values with the same words must stay.
    "line words in values": (
        (
            HEADER
            + "".join(f"10.9.{i}.0/24,,,,,\n" for i in range(8))
            + "10.0.0.0/24,,,,,,see line 2 here\n"
            + "line 2 x,,,,,\n"
            + "10.0.1.0/24,,,,line 2 5,\n"
        ).encode(),
        True,
    ),
}


def seed_store(engine: Engine, ctx: Context) -> None:
    engine.subnets.create(ctx, "10.1.2.0/24", owner="team:c")
    engine.subnets.create(ctx, "10.9.0.0/16")
    engine.subnets.create(ctx, "10.10.0.0/16", is_container=True)


def dry_run(engine: Engine, ctx: Context, data: bytes) -> tuple[ImportJob, list[Any]]:
    job = engine.imports.start(ctx, "csv", data, dry_run=True)
    job = engine.imports.wait(ctx, job.id, timeout=120)
    assert job.status == "awaiting_review", job.error
    conflicts = [
        comparable(c.line, c.kind, c.subject, c.message, c.suggestion, c.options,
                   c.existing)
        for c in engine.imports.conflicts(ctx, job.id)
    ]  # fmt: skip
    conflicts.sort(key=repr)
    return job, conflicts


def comparable(*fields: Any) -> tuple[Any, ...]:
    # "item" in a planned conflict's existing is the plan index of the first
    # row. The SQL planner numbers rows by line, the parser from 0, so only
    # the line is compared. Stored conflicts leave it out.
    *rest, existing = fields
    return (*rest, {k: v for k, v in existing.items() if k != "item"})


def found(conflicts: list[FoundConflict]) -> list[Any]:
    rows = [
        comparable(c.line, c.kind, c.subject, c.message, c.suggestion,
                   tuple(c.options), c.existing)
        for c in conflicts
    ]  # fmt: skip
    rows.sort(key=repr)
    return rows


@pytest.mark.parametrize("name", list(CASES))
def test_sql_plan_equals_parser_plan(engine: Engine, ctx: Context, name: str) -> None:
    data, staged = CASES[name]
    seed_store(engine, ctx)
    # Both planners run directly on the same store: the SQL one as the job
    # API runs it first, the parser one as it runs when SQL declines a file.
    with engine.store.lock:
        planned = plan_staged_csv(engine.store.conn, ctx.workspace, data, "sql", {})
    parsed = parse_source("csv", data)
    draft = engine.imports._plan(ctx, "im_parser", parsed, stage="parser")

    assert (planned is not None) == staged
    if planned is None:
        return
    plan, conflicts, result = planned
    assert plan.to_dict() == summarize_plan(draft).to_dict()
    assert found(conflicts) == found(draft.conflicts)
    assert result.errors == parsed.result.errors


def test_sql_plan_reports_tricky_rows(engine: Engine, ctx: Context) -> None:
    seed_store(engine, ctx)
    job, conflicts = dry_run(engine, ctx, (HEADER + TRICKY).encode())
    assert job.plan is not None
    assert [e["line"] for e in job.plan.row_errors] == [7, 8, 9, 10, 11, 12, 16]
    assert job.plan.total_rows == 35
    found = {(line, kind, subject) for line, kind, subject, *_ in conflicts}
    assert (4, "duplicate", "10.1.1.0/24") in found
    assert (4, "ownership_mismatch", "10.1.1.0/24") in found
    assert (6, "duplicate", "10.1.2.0/24") in found
    assert (17, "cidr_overlap", "10.2.0.0/16") in found
    assert (18, "cidr_overlap", "10.2.0.0/20") in found
    assert (20, "duplicate", "10.2.0.0/16") in found
    assert (22, "cidr_overlap", "10.3.0.0/16") in found
    assert (25, "cidr_overlap", "10.9.4.0/24") in found
    assert (26, "cidr_overlap", "10.0.0.0/8") in found
    assert (29, "cidr_overlap", "2001:db8::/48") in found


@pytest.mark.parametrize("line", [5, 32])
def test_value_over_field_limit_fails_job(
    engine: Engine, ctx: Context, line: int
) -> None:
    # The csv module rejects a value over its field size limit, so the SQL
    # planner must not accept the file either.
    rows = [f"10.20.{i}.0/24,,,,,\n" for i in range(40)]
    rows[line - 2] = f"10.0.0.0/24,,{'x' * (csv.field_size_limit() + 1)},,,\n"
    data = (HEADER + "".join(rows)).encode()

    job = engine.imports.start(ctx, "csv", data, dry_run=True)
    job = engine.imports.wait(ctx, job.id, timeout=120)

    assert job.status == "failed"
    assert job.error is not None
    assert f"line {line} cannot be read as CSV" in job.error


def test_stored_conflicts_omit_item_index(engine: Engine, ctx: Context) -> None:
    seed_store(engine, ctx)
    # The first file takes the SQL planner, the second (with tags) the parser.
    for data in [(HEADER + TRICKY).encode(), with_tags_and_parent().encode() * 2]:
        job = engine.imports.start(ctx, "csv", data, dry_run=True)
        job = engine.imports.wait(ctx, job.id, timeout=120)
        conflicts = engine.imports.conflicts(ctx, job.id)
        assert any(c.existing.get("in") == "file" for c in conflicts)
        assert all("item" not in c.existing for c in conflicts)


# In-file conflicts against a direct computation


def random_rows(
    seed: int, count: int, ipv6_share: float = 0.2, vrfs: tuple[str, ...] = ("", "red")
) -> list[tuple[str, str, str, str]]:
    """Return (cidr, status, owner, vrf) rows that nest and repeat often."""
    rng = random.Random(seed)
    rows = []
    for _ in range(count):
        # Networks from the first quarter of a small block, so they collide.
        if rng.random() < ipv6_share:
            block = ipaddress.ip_network("2001:db8::/40")
            plen = rng.choice([40, 44, 48, 48, 56])
        else:
            block = ipaddress.ip_network("10.0.0.0/15")
            plen = rng.choice([16, 20, 22, 23, 24, 24, 24, 25])
        size = 1 << (block.max_prefixlen - plen)
        choices = max(1, (block.num_addresses // size) // 4)
        first = int(block.network_address) + rng.randrange(choices) * size
        network = ipaddress.ip_network((first, plen))
        status = "container" if rng.random() < 0.3 else ""
        owner = rng.choice(["", "team:a", "team:b"])
        vrf = rng.choice(vrfs) if rng.random() < 0.25 else vrfs[0]
        rows.append((str(network), status, owner, vrf))
    return rows


def expected_file_conflicts(
    rows: list[tuple[str, str, str, str]],
) -> set[tuple[int, str, str, str]]:
    """Compute in-file duplicates and overlaps pair by pair."""
    nets = [
        (
            line,
            ipaddress.ip_network(cidr),
            status == "container",
            owner,
            vrf or "global",
        )
        for line, (cidr, status, owner, vrf) in enumerate(rows, start=2)
    ]
    found: set[tuple[int, str, str, str]] = set()
    first_copy: dict[tuple[str, Any], tuple[int, str]] = {}
    unique = []
    for line, net, container, owner, vrf in nets:
        key = (vrf, net)
        if key in first_copy:
            first_line, first_owner = first_copy[key]
            found.add((line, "duplicate", str(net), f"line {first_line}"))
            if owner and first_owner and owner != first_owner:
                found.add((line, "ownership_mismatch", str(net), f"line {first_line}"))
        else:
            first_copy[key] = (line, owner)
            unique.append((line, net, container, vrf))
    for line, net, container, vrf in unique:
        if container:
            continue
        inside = sorted(
            (inner.network_address, inner.prefixlen, other)
            for other, inner, _, other_vrf in unique
            if other != line
            and other_vrf == vrf
            and inner.version == net.version
            and inner.subnet_of(net)  # type: ignore[arg-type]
        )
        if inside:
            detail = f"{len(inside)} from line {inside[0][2]}"
            found.add((line, "cidr_overlap", str(net), detail))
    return found


# Files without IPv6 rows take the NumPy marking, the others the SQL window.
@pytest.mark.parametrize(
    ("seed", "ipv6_share", "vrfs"),
    [
        (1, 0.2, ("", "red")),
        (2, 0.2, ("", "red")),
        (3, 0.2, ("", "red")),
        (4, 0.0, ("", "red")),
        (5, 0.0, ("", "red", "blue")),
        (6, 0.0, ("",)),
        (7, 0.0, ("red",)),
    ],
)
def test_in_file_conflicts_match_pairwise(
    engine: Engine, ctx: Context, seed: int, ipv6_share: float, vrfs: tuple[str, ...]
) -> None:
    rows = random_rows(seed, 400, ipv6_share, vrfs)
    job, found = in_file_conflicts(engine, ctx, rows)

    expected = expected_file_conflicts(rows)
    assert job.plan is not None and job.plan.row_errors == []
    assert {kind for _, kind, _, _ in expected} == {
        "duplicate", "ownership_mismatch", "cidr_overlap"
    }  # fmt: skip
    assert found == expected


def test_in_file_conflicts_of_sorted_file(engine: Engine, ctx: Context) -> None:
    # A file sorted by network takes the planner's presorted path.
    rows = random_rows(8, 400, 0.0, ("",))
    rows.sort(key=lambda row: ipaddress.ip_network(row[0]))
    job, found = in_file_conflicts(engine, ctx, rows)

    expected = expected_file_conflicts(rows)
    assert job.plan is not None
    assert job.plan.row_errors == []
    assert {kind for _, kind, _, _ in expected} == {
        "duplicate", "ownership_mismatch", "cidr_overlap"
    }  # fmt: skip
    assert found == expected


def in_file_conflicts(
    engine: Engine, ctx: Context, rows: list[tuple[str, str, str, str]]
) -> tuple[ImportJob, set[tuple[int, str, str, str]]]:
    text = HEADER + "".join(
        f"{cidr},{status},row,{owner},,{vrf}\n" for cidr, status, owner, vrf in rows
    )
    job = engine.imports.start(ctx, "csv", text.encode(), dry_run=True)
    job = engine.imports.wait(ctx, job.id, timeout=120)
    found = set()
    for c in engine.imports.conflicts(ctx, job.id):
        if c.kind == "cidr_overlap":
            detail = f"{c.existing['count']} from line {c.existing['lines'][0]}"
        else:
            detail = f"line {c.existing['line']}"
        found.add((c.line, c.kind, c.subject, detail))
    return job, found


@pytest.mark.parametrize("shuffled", [False, True])
@pytest.mark.parametrize("base", [2, 1 << 26])
def test_sort_of_one_vrf_rows(engine: Engine, shuffled: bool, base: int) -> None:
    # Indexes from 2**26 up do not fit the packed sort key.
    rng = random.Random(base + shuffled)
    rows = [
        (base + i, rng.randrange(1 << 32), rng.choice((8, 16, 24, 32)), False)
        for i in range(3000)
    ]
    rows += [(base + 3000 + i, first, plen, True) for i, (_, first, plen, _) in
             enumerate(rows[:500])]  # fmt: skip
    if shuffled:
        rng.shuffle(rows)
    else:
        rows.sort(key=lambda row: (row[1], row[2], row[0]))
    conn = engine.store.conn
    conn.execute(
        "CREATE TEMP TABLE sorted_rows AS SELECT unnest(?::BIGINT[]) AS idx, "
        'unnest(?::UBIGINT[]) AS "first", unnest(?::UBIGINT[]) AS "last", '
        "unnest(?::SMALLINT[]) AS plen, unnest(?::BOOLEAN[]) AS container",
        [
            [r[0] for r in rows],
            [r[1] for r in rows],
            [r[1] for r in rows],
            [r[2] for r in rows],
            [r[3] for r in rows],
        ],
    )
    query = _IPV4_ROWS_ONE_VRF.format(stage="sorted_rows")

    result = _sorted_one_vrf(conn.execute(query))

    expected = sorted(rows, key=lambda row: (row[1], row[2], row[0]))
    assert result["idx"].tolist() == [r[0] for r in expected]
    assert result["plen"].tolist() == [r[2] for r in expected]
    assert result["container"].tolist() == [r[3] for r in expected]
