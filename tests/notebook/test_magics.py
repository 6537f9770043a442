"""The %omnitwin magics through a real IPython shell on the embedded engine."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import networkx as nx
import pandas as pd
import pytest
from IPython import get_ipython
from IPython.core.displaypub import CapturingDisplayPublisher
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from IPython.testing.globalipapp import start_ipython

from omnitwin.notebook.agent_view import AgentRun
from omnitwin.notebook.magics import (
    SUBCOMMANDS,
    OmniTwinMagics,
    parse_line,
    split_line,
)
from omnitwin.notebook.results import GraphResult, TableResult, ValueResult


@pytest.fixture(scope="module")
def shell() -> Iterator[InteractiveShell]:
    # start_ipython returns None once the shared test shell exists.
    ip = start_ipython() or get_ipython()
    assert ip is not None
    ip.run_line_magic("load_ext", "omnitwin")
    ip.run_line_magic("omnitwin", "connect :memory: --sample --sites 2")
    yield ip
    ip.run_line_magic("unload_ext", "omnitwin")


def run(shell: InteractiveShell, line: str) -> Any:
    return shell.run_line_magic("omnitwin", line)


# --- B26: quoted values with spaces -------------------------------------------


@pytest.mark.parametrize(
    "line", ['--site="lab A" 10.0.0.0/8', "--site='lab A' 10.0.0.0/8"]
)
def test_quoted_site_keeps_spaces(line: str) -> None:
    parsed = parse_line(line)
    assert parsed.arguments.site == "lab A"
    assert parsed.arguments.prefixes == ["10.0.0.0/8"]


def test_parenthesis_quote_splits_without_error() -> None:
    assert split_line("print(' ')") == ["print( )"]


def test_parenthesis_line_is_unknown_subcommand() -> None:
    with pytest.raises(UsageError, match="unknown subcommand 'print\\( \\)'"):
        parse_line("print(' ')")


def test_quoted_site_through_shell(shell: InteractiveShell) -> None:
    shell.run_cell("_ = None")
    result = run(shell, "--site='lab A' 10.0.0.0/8")
    assert isinstance(result, TableResult)
    assert result.title == "subnets within 10.0.0.0/8 at site lab A"
    assert len(result) == 0


def test_unclosed_quote_is_usage_error() -> None:
    with pytest.raises(UsageError, match="No closing quotation"):
        split_line("devices --site O'Brien")


# --- assignability and every subcommand ----------------------------------------


def test_assignment_stores_result(shell: InteractiveShell) -> None:
    outcome = shell.run_cell("df = %omnitwin devices --site nyc1")
    assert outcome.success
    result = shell.user_ns["df"]
    assert isinstance(result, TableResult)
    frame = result.to_pandas()
    assert set(frame["site"]) == {"nyc1"}
    assert str(frame["hostname"].dtype) == "string"


def test_devices_filters_role(shell: InteractiveShell) -> None:
    frame = run(shell, "devices --role router").to_pandas()
    assert sorted(frame["hostname"]) == ["core-01", "core-02"]


def test_devices_drift_flag(shell: InteractiveShell) -> None:
    frame = run(shell, "devices --drift").to_pandas()
    assert len(frame) > 0
    assert (frame["drift_score"] > 0).all()


def test_subnets_within_prefix(shell: InteractiveShell) -> None:
    frame = run(shell, "subnets 10.2.0.0/16 --site=sfo1").to_pandas()
    assert len(frame) > 0
    assert frame["cidr"].str.startswith("10.2.").all()
    assert str(frame["vlan_id"].dtype) == "Int64"


def test_prefix_line_lists_subnets(shell: InteractiveShell) -> None:
    result = run(shell, "10.1.16.0/24")
    assert result.to_pandas()["cidr"].tolist() == ["10.1.16.0/24"]


def test_drift_lists_open_events(shell: InteractiveShell) -> None:
    frame = run(shell, "drift").to_pandas()
    assert len(frame) > 0
    assert set(frame["status"]) == {"open"}


def test_drift_of_one_device(shell: InteractiveShell) -> None:
    frame = run(shell, "drift leaf-01.nyc1").to_pandas()
    assert set(frame["hostname"]) == {"leaf-01.nyc1"}


def test_free_lists_blocks(shell: InteractiveShell) -> None:
    result = run(shell, "free 10.1.128.0/17 /24 --limit 3")
    assert result.to_pandas()["cidr"].tolist() == [
        "10.1.128.0/24",
        "10.1.129.0/24",
        "10.1.130.0/24",
    ]
    assert result.total == 128


def test_path_highlights_hops(shell: InteractiveShell) -> None:
    result = run(shell, "path srv-01-01.nyc1 srv-02-01.nyc1")
    assert isinstance(result, GraphResult)
    assert len(result.to_pandas()) == 4
    graph = result.to_networkx()
    assert isinstance(graph, nx.MultiGraph)
    marked = [n for n, data in graph.nodes(data=True) if data.get("highlight")]
    assert len(marked) == 5


def test_blast_radius_lists_devices(shell: InteractiveShell) -> None:
    result = run(shell, "blast-radius leaf-01.nyc1")
    hostnames = sorted(result.to_pandas()["hostname"])
    assert hostnames == ["leaf-01.nyc1", "srv-01-01.nyc1", "srv-01-02.nyc1"]
    assert "<svg" in result._repr_html_()


def test_audit_reads_events(shell: InteractiveShell) -> None:
    result = run(shell, "audit --action subnet.create --limit 5")
    frame = result.to_pandas()
    assert len(frame) == 5
    assert set(frame["action"]) == {"subnet.create"}
    assert result.total > 5


def test_audit_limit_keeps_newest(shell: InteractiveShell) -> None:
    everything = run(shell, "audit --action subnet.create --limit 0").to_pandas()
    newest = run(shell, "audit --action subnet.create --limit 5").to_pandas()
    assert len(everything) > 5
    assert newest["position"].tolist() == everything["position"].tail(5).tolist()


def test_audit_negative_limit(shell: InteractiveShell) -> None:
    with pytest.raises(UsageError, match="invalid --limit -1"):
        run(shell, "audit --limit -1")


def test_audit_negative_configured_limit(shell: InteractiveShell) -> None:
    magics = shell.magics_manager.registry["OmniTwinMagics"]
    saved = magics.limit
    magics.limit = -5
    try:
        with pytest.raises(UsageError, match="invalid OmniTwinMagics.limit -5"):
            run(shell, "audit")
    finally:
        magics.limit = saved


def test_topology_reports_pruning(shell: InteractiveShell) -> None:
    result = run(shell, "topology leaf-01.nyc1 --max-elements 20")
    assert result.graph.meta["pruned_nodes"] > 0
    assert "pruned" in result.summary


def test_sessions_lists_agent_sessions(shell: InteractiveShell) -> None:
    frame = run(shell, "sessions").to_pandas()
    assert list(frame.columns[:3]) == ["id", "status", "command"]


def test_help_lists_subcommand_usage(shell: InteractiveShell) -> None:
    result = run(shell, "help free")
    assert isinstance(result, ValueResult)
    assert "%omnitwin free" in result.to_dict()["free"]


def test_results_render_html(shell: InteractiveShell) -> None:
    for line in ("devices", "drift", "free 10.1.128.0/17 /24", "audit --limit 3"):
        html = run(shell, line)._repr_html_()
        assert "<table" in html, line


def test_connect_to_file(shell: InteractiveShell, tmp_path: Any) -> None:
    magics = shell.magics_manager.registry["OmniTwinMagics"]
    previous = magics.client
    try:
        result = run(shell, f"connect '{tmp_path / 'a b.duckdb'}'")
        assert result.to_dict()["subnets"] == 0
        assert (tmp_path / "a b.duckdb").exists()
    finally:
        magics.client = previous


# --- usage errors ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("", "%omnitwin needs a subcommand"),
        ("nope", "unknown subcommand 'nope'"),
        ("devices --bogus", "unrecognized arguments: --bogus"),
        ("free 10.0.0.0/8", "needs a prefix length"),
        ("free 10.0.0.0/8 /x", "invalid prefix length '/x'"),
        ("path leaf-01.nyc1", "the following arguments are required: target"),
        ("drift no-such-device", "device 'no-such-device' not found"),
        ("drift --status closed", "invalid choice: 'closed'"),
        ("help nope", "unknown subcommand 'nope'"),
    ],
)
def test_mistakes_raise_usage_error(
    shell: InteractiveShell, line: str, message: str
) -> None:
    with pytest.raises(UsageError) as caught:
        run(shell, line)
    text = str(caught.value)
    assert message in text
    assert "\n" not in text


def test_docstring_documents_every_option() -> None:
    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "omnitwin")
    doc = shell.find_line_magic("omnitwin").__doc__
    for command in SUBCOMMANDS.values():
        assert f"  {command.name}: " in doc
        for option in command.options:
            assert option.settings.get("help"), option.flags
            assert f"      {'/'.join(option.flags)}: " in doc, option.flags
    assert "%%omnitwin [--var NAME]" in doc


# --- the cell magic ----------------------------------------------------------------


@pytest.fixture
def published(shell: InteractiveShell) -> Iterator[list[dict[str, Any]]]:
    capture = CapturingDisplayPublisher()
    original = shell.display_pub
    html = shell.display_formatter.formatters["text/html"]
    was_enabled = html.enabled
    html.enabled = True
    shell.display_formatter.active_types.append("text/html")
    shell.display_pub = capture
    try:
        yield capture.outputs
    finally:
        shell.display_pub = original
        shell.display_formatter.active_types.remove("text/html")
        html.enabled = was_enabled


def test_cell_updates_one_display(
    shell: InteractiveShell, published: list[dict[str, Any]]
) -> None:
    shell.run_cell_magic("omnitwin", "--var run", "Show drift on leaf-01.nyc1")
    ids = {output["transient"]["display_id"] for output in published}
    assert len(ids) == 1
    assert published[0]["update"] is False
    updates = [output for output in published if output["update"]]
    assert len(updates) >= 2
    first = updates[0]["data"]["text/html"]
    last = updates[-1]["data"]["text/html"]
    assert "omnitwin-status" in first
    assert "omnitwin-final" not in first
    assert "omnitwin-final" in last
    assert "leaf-01.nyc1" in last


def test_cell_var_stores_run(shell: InteractiveShell) -> None:
    shell.run_cell_magic("omnitwin", "--var freeblocks", "free /24 in 10.1.128.0/17")
    run_result = shell.user_ns["freeblocks"]
    assert isinstance(run_result, AgentRun)
    assert run_result.to_pandas()["blocks"].iloc[0] == "10.1.128.0/24"
    assert run_result.session is not None


def test_cell_blast_radius_is_graph(shell: InteractiveShell) -> None:
    shell.run_cell_magic("omnitwin", "--var br", "What breaks if leaf-03.nyc1 fails?")
    result = shell.user_ns["br"]
    assert isinstance(result.result, GraphResult)
    assert isinstance(result.to_networkx(), nx.MultiGraph)


def test_cell_error_is_shown(
    shell: InteractiveShell, published: list[dict[str, Any]]
) -> None:
    shell.run_cell_magic("omnitwin", "--var bad", "gibberish words")
    result = shell.user_ns["bad"]
    assert result.error is not None
    assert "not understood" in result.error
    assert "omnitwin-error" in published[-1]["data"]["text/html"]


@pytest.mark.parametrize("body", ["", "   \n  "])
def test_empty_cell_is_usage_error(shell: InteractiveShell, body: str) -> None:
    # IPython itself rejects a body that is the empty string.
    with pytest.raises(UsageError, match="needs an agent command|body is empty"):
        shell.run_cell_magic("omnitwin", "", body)


def test_cell_bad_var_is_usage_error(shell: InteractiveShell) -> None:
    with pytest.raises(UsageError, match="not a valid Python name"):
        shell.run_cell_magic("omnitwin", "--var 1x", "Show drift on leaf-01.nyc1")


def test_results_convert_to_pandas(shell: InteractiveShell) -> None:
    frame = run(shell, "devices").to_pandas()
    assert isinstance(frame, pd.DataFrame)
    assert str(frame["drift_score"].dtype) == "Float64"


def test_terminal_text_shows_rows(shell: InteractiveShell) -> None:
    cases = {
        "devices --site nyc1 --limit 3": "devices site=nyc1 (3 rows)",
        "help free": "free: usage: %omnitwin free",
        "path leaf-01.nyc1 leaf-02.nyc1": "leaf-01.nyc1 → spine-0",
        "audit --limit 2": "audit events (2 rows of ",
    }
    for line, expected in cases.items():
        data, _ = shell.display_formatter.format(run(shell, line))
        assert expected in data["text/plain"], line
        assert not data["text/plain"].startswith("<"), line


def test_connect_new_file_says_so(tmp_path: Path) -> None:
    magics = OmniTwinMagics(None)
    created = magics.connect(str(tmp_path / "typo.duckdb")).to_dict()
    magics.client.close()
    opened = magics.connect(str(tmp_path / "typo.duckdb")).to_dict()
    magics.client.close()
    assert "did not exist, so this is a new, empty twin" in created["note"]
    assert "note" not in opened
