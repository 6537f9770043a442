"""The deterministic planner: a corpus of phrasings and their tool calls.

Every command runs against a real engine (a DuckDB file) loaded with the
sample network of ``_agentdata``. Expected arguments name parents as
``@CIDR``; the test replaces that with the subnet's id.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from _agentdata import load_agent_sample

import omnitwin
from omnitwin.engine.agent.catalog import EngineCatalog
from omnitwin.engine.agent.planner import CommandNotUnderstood, plan_command
from omnitwin.engine.agent.refusals import EXAMPLES, EXTRA_EXAMPLES
from omnitwin.engine.context import Context
from omnitwin.engine.engine import Engine
from omnitwin.errors import NodeNotFound, ValidationError

POOL = "@10.1.128.0/17"
V6_SITE = "@2001:db8:1::/48"
ANALYTICS = "@10.128.0.0/16"

# (command, tool, arguments)
CORPUS: list[tuple[Any, str, dict[str, Any]]] = [
    # free-space search
    (
        "Find available /24 blocks in 10.128.0.0/16",
        "ipam_search",
        {"prefix_length": 24, "cidr": "10.128.0.0/16", "limit": 20},
    ),
    (
        "find availble /24 blocks in 10.128.0.0/16",
        "ipam_search",
        {"prefix_length": 24, "cidr": "10.128.0.0/16", "limit": 20},
    ),
    (
        "show me free /26s in 10.1.128.0/17",
        "ipam_search",
        {"prefix_length": 26, "cidr": "10.1.128.0/17", "limit": 20},
    ),
    (
        "list the first 5 unused /24 blocks inside 10.128.0.0/16 please",
        "ipam_search",
        {"prefix_length": 24, "cidr": "10.128.0.0/16", "limit": 5},
    ),
    (
        "Find free /64 blocks in 2001:db8::/32",
        "ipam_search",
        {"prefix_length": 64, "cidr": "2001:db8::/32", "limit": 20},
    ),
    (
        "any spare /56 in 2001:db8:1::/48?",
        "ipam_search",
        {"prefix_length": 56, "cidr": "2001:db8:1::/48", "limit": 20},
    ),
    (
        "what /24 blocks are free in us-east",
        "ipam_search",
        {"prefix_length": 24, "subnet_id": POOL, "limit": 20},
    ),
    (
        "free /64 blocks in the nyc1 IPv6 site block",
        "ipam_search",
        {"prefix_length": 64, "subnet_id": V6_SITE, "limit": 20},
    ),
    (
        "can I allocate a /24 in 10.128.0.0/16?",
        "ipam_search",
        {"prefix_length": 24, "cidr": "10.128.0.0/16", "limit": 20},
    ),
    (
        "how many free /20 blocks are in 10.129.0.0/16",
        "ipam_search",
        {"prefix_length": 20, "cidr": "10.129.0.0/16", "limit": 20},
    ),
    # allocation
    (
        "Allocate a /24 for the payments service in us-east",
        "ipam_allocate",
        {"prefix_length": 24, "subnet_id": POOL, "purpose": "payments service"},
    ),
    (
        "alocate a /24 for payments in 10.128.0.0/16",
        "ipam_allocate",
        {"prefix_length": 24, "cidr": "10.128.0.0/16", "purpose": "payments"},
    ),
    (
        "please carve out a /26 for the web tier from 10.1.128.0/17",
        "ipam_allocate",
        {"prefix_length": 26, "cidr": "10.1.128.0/17", "purpose": "web tier"},
    ),
    (
        "allocate a /64 for the payments service in us-east",
        "ipam_allocate",
        {"prefix_length": 64, "subnet_id": V6_SITE, "purpose": "payments service"},
    ),
    (
        "reserve a /24 for future growth in 10.129.0.0/16",
        "ipam_allocate",
        {
            "prefix_length": 24,
            "cidr": "10.129.0.0/16",
            "purpose": "future growth",
            "status": "reserved",
        },
    ),
    (
        "Allocate a /22 for reporting in the eu-west analytics pool owned by team:data",
        "ipam_allocate",
        {
            "prefix_length": 22,
            "subnet_id": ANALYTICS,
            "purpose": "reporting",
            "owner": "team:data",
        },
    ),
    (
        "grab a /28 for the vpn gateway from 10.128.16.0/20",
        "ipam_allocate",
        {"prefix_length": 28, "cidr": "10.128.16.0/20", "purpose": "vpn gateway"},
    ),
    (
        "provision a /24 for the payments service in the nyc1 service pool",
        "ipam_allocate",
        {"prefix_length": 24, "subnet_id": POOL, "purpose": "payments service"},
    ),
    (
        "Allocate a /24 for payments service in US-EAST",
        "ipam_allocate",
        {"prefix_length": 24, "subnet_id": POOL, "purpose": "payments service"},
    ),
    # one subnet
    ("show subnet 10.1.16.0/24", "subnet_get", {"subnet": "10.1.16.0/24"}),
    ("details of 2001:db8:1:1::/64", "subnet_get", {"subnet": "2001:db8:1:1::/64"}),
    ("10.1.0.0/24", "subnet_get", {"subnet": "10.1.0.0/24"}),
    ("what is 10.128.16.0/20?", "subnet_get", {"subnet": "10.128.16.0/20"}),
    # subnet changes
    (
        "Set the owner of 10.1.16.0/24 to team:payments",
        "subnet_update",
        {"subnet": "10.1.16.0/24", "changes": {"owner": "team:payments"}},
    ),
    (
        "deprecate 10.1.17.0/24",
        "subnet_update",
        {"subnet": "10.1.17.0/24", "changes": {"status": "deprecated"}},
    ),
    (
        "mark 10.1.18.0/24 as reserved",
        "subnet_update",
        {"subnet": "10.1.18.0/24", "changes": {"status": "reserved"}},
    ),
    (
        "tag 10.1.19.0/24 with env=prod",
        "subnet_update",
        {"subnet": "10.1.19.0/24", "changes": {"tags": {"env": "prod"}}},
    ),
    (
        "change the purpose of 10.128.16.0/20 to analytics cluster",
        "subnet_update",
        {"subnet": "10.128.16.0/20", "changes": {"purpose": "analytics cluster"}},
    ),
    (
        "set vlan of 10.1.16.0/24 to 210",
        "subnet_update",
        {"subnet": "10.1.16.0/24", "changes": {"vlan_id": 210}},
    ),
    (
        "updte owner of 2001:db8:1:1::/64 to team:platform",
        "subnet_update",
        {"subnet": "2001:db8:1:1::/64", "changes": {"owner": "team:platform"}},
    ),
    # utilization
    (
        "show utilization of 10.1.0.0/16",
        "utilization_report",
        {"subnet": "10.1.0.0/16"},
    ),
    ("how full is us-east", "utilization_report", {"region": "us-east"}),
    ("usage report for nyc1", "utilization_report", {"site": "nyc1"}),
    ("utilisation", "utilization_report", {}),
    (
        "what's the utilizaton of 10.0.0.0/8",
        "utilization_report",
        {"subnet": "10.0.0.0/8"},
    ),
    # devices
    ("show device spine-01.nyc1", "device_get", {"device": "spine-01.nyc1"}),
    ("describe core-01", "device_get", {"device": "core-01"}),
    ("tell me about leaf-02", "device_get", {"device": "leaf-02.nyc1"}),
    ("srv-01-02.nyc1", "device_get", {"device": "srv-01-02.nyc1"}),
    ("info on spine01.nyc1", "device_get", {"device": "spine-01.nyc1"}),
    # drift
    ("show drift on spine-01.nyc1", "drift_show", {"device": "spine-01.nyc1"}),
    ("which devices at nyc1 have drift", "drift_show", {"site": "nyc1"}),
    ("is leaf-01 out of sync?", "drift_show", {"device": "leaf-01.nyc1"}),
    ("list drifted devices", "drift_show", {}),
    ("show me the drfit for leaf-02.nyc1", "drift_show", {"device": "leaf-02.nyc1"}),
    ("any mismatches at nyc1?", "drift_show", {"site": "nyc1"}),
    # reconcile
    (
        "reconcile leaf-01.nyc1 trusting the detected state",
        "reconcile",
        {"device": "leaf-01.nyc1", "strategy": "trust_detected"},
    ),
    (
        "fix drift on leaf-02 by keeping the twin",
        "reconcile",
        {"device": "leaf-02.nyc1", "strategy": "trust_twin"},
    ),
    (
        "reconcile leaf-03.nyc1 interactively",
        "reconcile",
        {"device": "leaf-03.nyc1", "strategy": "interactive"},
    ),
    (
        "reconcile leaf-01.nyc1 using detected, only os_version",
        "reconcile",
        {
            "device": "leaf-01.nyc1",
            "strategy": "trust_detected",
            "fields": ["os_version"],
        },
    ),
    (
        "reconcle leaf-04.nyc1 trust twin",
        "reconcile",
        {"device": "leaf-04.nyc1", "strategy": "trust_twin"},
    ),
    # paths
    (
        "path from leaf-01.nyc1 to leaf-02.nyc1",
        "topology_path",
        {"source": "leaf-01.nyc1", "target": "leaf-02.nyc1"},
    ),
    (
        "shortest route between core-01 and srv-01-01.nyc1",
        "topology_path",
        {"source": "core-01", "target": "srv-01-01.nyc1"},
    ),
    (
        "how does leaf-03 reach spine-02?",
        "topology_path",
        {"source": "leaf-03.nyc1", "target": "spine-02.nyc1"},
    ),
    (
        "trace srv-02-01.nyc1 -> core-02",
        "topology_path",
        {"source": "srv-02-01.nyc1", "target": "core-02"},
    ),
    # topology around a node
    (
        "show the topology around spine-01.nyc1 within 3 hops",
        "topology_subgraph",
        {"scope": "spine-01.nyc1", "depth": 3},
    ),
    ("neighbors of leaf-04", "topology_subgraph", {"scope": "leaf-04.nyc1"}),
    ("topology of nyc1", "topology_subgraph", {"scope": "nyc1"}),
    (
        "graph around 10.1.16.0/24 two hops",
        "topology_subgraph",
        {"scope": "10.1.16.0/24", "depth": 2},
    ),
    # blast radius
    ("what breaks if leaf-03 fails", "blast_radius", {"target": "leaf-03.nyc1"}),
    ("What breaks if leaf-03 fails?", "blast_radius", {"target": "leaf-03.nyc1"}),
    ("blast raduis of core-01", "blast_radius", {"target": "core-01"}),
    (
        "what is the impact of losing spine-02.nyc1",
        "blast_radius",
        {"target": "spine-02.nyc1"},
    ),
    (
        "if spine-01.nyc1 goes down what is affected",
        "blast_radius",
        {"target": "spine-01.nyc1"},
    ),
    # audit
    ("who changed 10.128.16.0/20", "audit_show", {"subject": "10.128.16.0/20"}),
    (
        "Who modified 2001:db8:1:1::/64?",
        "audit_show",
        {"subject": "2001:db8:1:1::/64"},
    ),
    ("audit trail for leaf-01", "audit_show", {"subject": "leaf-01.nyc1"}),
    ("what did team:data change", "audit_show", {"actor": "team:data"}),
    (
        "show the last 5 changes by user:test",
        "audit_show",
        {"actor": "user:test", "limit": 5},
    ),
    # imports
    (
        "status of import imp_01ABCDEF",
        "import_status",
        {"import_id": "imp_01ABCDEF"},
    ),
    ("show recent imports", "import_status", {}),
    # structured commands
    (
        {"tool": "ipam_search", "args": {"prefix_length": 24, "cidr": "10.128.0.0/16"}},
        "ipam_search",
        {"prefix_length": 24, "cidr": "10.128.0.0/16"},
    ),
    (
        '{"tool": "device_get", "args": {"device": "core-01"}}',
        "device_get",
        {"device": "core-01"},
    ),
]

# (command, exception class, reason in details or None)
REFUSED: list[tuple[Any, type[Exception], str | None]] = [
    ("allocate a /24 for payments", CommandNotUnderstood, "missing_argument"),
    (
        "allocate some space for payments in us-east",
        CommandNotUnderstood,
        "missing_argument",
    ),
    ("reconcile leaf-01.nyc1", CommandNotUnderstood, "missing_argument"),
    ("make me a sandwich", CommandNotUnderstood, "unknown_command"),
    ("", CommandNotUnderstood, "unknown_command"),
    ("hello", CommandNotUnderstood, "unknown_command"),
    ("what's the weather in nyc1", CommandNotUnderstood, "unknown_command"),
    ("i need a /24 for payments in us-east", CommandNotUnderstood, "unknown_command"),
    ("allocate a /24 in eu-west", CommandNotUnderstood, "ambiguous"),
    ("don't allocate a /24 in 10.128.0.0/16", CommandNotUnderstood, "ambiguous"),
    ("reconcile fw-01 trusting detected", ValidationError, "ambiguous"),
    ("reconcile leaf01.nyc1 trusting detected", ValidationError, "ambiguous"),
    ("deprecate the payments subnet", CommandNotUnderstood, "missing_argument"),
    (
        "allocate a /24 and deprecate 10.1.16.0/24",
        CommandNotUnderstood,
        "ambiguous",
    ),
    (
        "show free /24 blocks and allocate one in 10.128.0.0/16",
        CommandNotUnderstood,
        "ambiguous",
    ),
    ("set the owner of 10.1.16.0/24", CommandNotUnderstood, "missing_argument"),
    ("blast radius of fw-01", ValidationError, "ambiguous"),
    ("path from leaf-01.nyc1", CommandNotUnderstood, "missing_argument"),
    ("allocate a /24 and a /26 in 10.128.0.0/16", CommandNotUnderstood, "ambiguous"),
    (
        "reconcile leaf-01.nyc1 trusting detected and the twin",
        CommandNotUnderstood,
        "ambiguous",
    ),
    ({"tool": "ipam_allocate", "args": {"prefix_length": 24}}, ValidationError, None),
    ({"tool": "alocate", "args": {}}, ValidationError, None),
    ("path from leaf-01.nyc1 to nowhere-99", NodeNotFound, None),
]


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """An engine on a DuckDB file with the agent sample network."""
    path = tmp_path_factory.mktemp("agent") / "twin.duckdb"
    client = omnitwin.Client(f"local:{path}", actor="user:test")
    load_agent_sample(client)
    engine = client.backend.engine  # type: ignore[attr-defined]
    assert isinstance(engine, Engine)
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def ctx() -> Context:
    return Context(actor="user:test")


def _resolve(engine: Engine, ctx: Context, args: dict[str, Any]) -> dict[str, Any]:
    resolved = dict(args)
    subnet = resolved.get("subnet_id")
    if isinstance(subnet, str) and subnet.startswith("@"):
        page = engine.subnets.list(ctx, within=subnet[1:], per_page=1)
        resolved["subnet_id"] = page.data[0].id
    return resolved


def _case_id(command: Any) -> str:
    return str(command)[:60] or "<empty>"


def test_corpus_has_sixty_phrasings() -> None:
    assert len(CORPUS) + len(REFUSED) >= 60
    tools = {tool for _, tool, _ in CORPUS}
    assert len(tools) == 13


@pytest.mark.parametrize(
    ("command", "tool", "args"), CORPUS, ids=[_case_id(c[0]) for c in CORPUS]
)
def test_planner_maps_phrasing(
    engine: Engine, ctx: Context, command: Any, tool: str, args: dict[str, Any]
) -> None:
    plan = plan_command(command, EngineCatalog(engine, ctx))
    assert len(plan.calls) == 1
    assert plan.calls[0].tool == tool
    assert plan.calls[0].args == _resolve(engine, ctx, args)


@pytest.mark.parametrize(
    ("command", "error", "reason"), REFUSED, ids=[_case_id(c[0]) for c in REFUSED]
)
def test_planner_refuses(
    engine: Engine,
    ctx: Context,
    command: Any,
    error: type[Exception],
    reason: str | None,
) -> None:
    with pytest.raises(error) as caught:
        plan_command(command, EngineCatalog(engine, ctx))
    if reason is not None:
        assert isinstance(caught.value, ValidationError)
        assert caught.value.details["reason"] == reason


@pytest.mark.parametrize(
    ("command", "word", "keyword"),
    [
        ("alocate a /24 for payments in 10.128.0.0/16", "alocate", "allocate"),
        ("find availble /24 blocks in 10.128.0.0/16", "availble", "available"),
        ("blast raduis of core-01", "raduis", "radius"),
    ],
)
def test_planner_notes_spelling(
    engine: Engine, ctx: Context, command: str, word: str, keyword: str
) -> None:
    plan = plan_command(command, EngineCatalog(engine, ctx))
    assert f"read {word!r} as {keyword!r}" in plan.notes


def test_refusal_suggests_commands(engine: Engine, ctx: Context) -> None:
    with pytest.raises(CommandNotUnderstood) as caught:
        plan_command("allocate a /24 in eu-west", EngineCatalog(engine, ctx))
    assert caught.value.suggestions == [
        "Allocate a /24 in 10.128.0.0/16",
        "Allocate a /24 in 10.129.0.0/16",
    ]


def test_unknown_command_suggests_examples(engine: Engine, ctx: Context) -> None:
    with pytest.raises(CommandNotUnderstood) as caught:
        plan_command("what is the blast zone", EngineCatalog(engine, ctx))
    examples = [*EXAMPLES.values(), *EXTRA_EXAMPLES]
    assert len(caught.value.suggestions) == 3
    assert set(caught.value.suggestions) <= set(examples)


def test_words_do_not_become_routers(engine: Engine, ctx: Context) -> None:
    plan = plan_command("which routers have drift", EngineCatalog(engine, ctx))
    assert plan.notes == []
    assert plan.calls[0].tool == "drift_show"


# --- event order for every command of the corpus ----------------------------------


async def _collect(engine: Engine, ctx: Context, command: Any) -> list[dict[str, Any]]:
    return [event async for event in engine.agents.command(ctx, command)]


@pytest.fixture(scope="module")
def streams(tmp_path_factory: pytest.TempPathFactory) -> list[list[dict[str, Any]]]:
    """The events of every corpus command, run on a fresh sample engine."""
    path = tmp_path_factory.mktemp("agent-streams") / "twin.duckdb"
    client = omnitwin.Client(f"local:{path}", actor="user:test")
    load_agent_sample(client)
    engine = client.backend.engine  # type: ignore[attr-defined]
    ctx = Context(actor="user:test")
    commands = [c[0] for c in CORPUS] + [c[0] for c in REFUSED]
    try:
        return [asyncio.run(_collect(engine, ctx, c)) for c in commands]
    finally:
        engine.close()


def test_every_stream_starts_with_status(
    streams: list[list[dict[str, Any]]],
) -> None:
    for events in streams:
        assert events[0]["type"] == "agent_status"


def test_every_stream_has_one_terminal_last(
    streams: list[list[dict[str, Any]]],
) -> None:
    for events in streams:
        terminals = [e for e in events if e["type"] in ("final_result", "error")]
        assert len(terminals) == 1, events
        assert events[-1] is terminals[0]


def test_every_stream_seq_increases(streams: list[list[dict[str, Any]]]) -> None:
    for events in streams:
        seqs = [e["seq"] for e in events]
        assert seqs == list(range(1, len(events) + 1))
        assert len({e["session"] for e in events}) == 1


def test_refused_commands_end_in_error(streams: list[list[dict[str, Any]]]) -> None:
    for events in streams[len(CORPUS) :]:
        assert events[-1]["type"] == "error"
        assert not any(e["type"] == "agent_tool_call" for e in events)


def test_refused_error_names_suggestions(
    streams: list[list[dict[str, Any]]],
) -> None:
    for (command, error, _), events in zip(
        REFUSED, streams[len(CORPUS) :], strict=True
    ):
        if error is CommandNotUnderstood:
            assert events[-1]["body"]["suggestions"], command


def test_corpus_streams_use_tools(streams: list[list[dict[str, Any]]]) -> None:
    for (_, tool, _), events in zip(CORPUS, streams[: len(CORPUS)], strict=True):
        calls = [e["body"]["fn"] for e in events if e["type"] == "agent_tool_call"]
        assert calls == [tool]
