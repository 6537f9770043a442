"""The headless blast-radius report: execution, recorded inputs, offline rendering."""

from __future__ import annotations

import hashlib
import json
import re
import shlex
from importlib import metadata
from pathlib import Path
from typing import Any

import nbformat
import pytest
from _browser import chromium_available, chromium_page, painted_pixels

import omnitwin
from omnitwin.cli import main
from omnitwin.notebook import load_sample_twin
from omnitwin.notebook.report import inject_parameters, render_report

needs_chromium = pytest.mark.skipif(
    not chromium_available(), reason="needs /usr/bin/chromium and playwright"
)
CANVAS = '.omnitwin-cytoscape canvas[data-id="layer2-node"]'


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("db") / "twin.duckdb"
    with omnitwin.connect(f"local:{path}") as client:
        load_sample_twin(client, sites=2)
    return path


@pytest.fixture(scope="module")
def report(database: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("report") / "report.html"
    status = main(
        [
            "report",
            "blast-radius",
            "leaf-01.nyc1",
            "--out",
            str(out),
            "--db",
            str(database),
        ]
    )
    assert status == 0
    return out


def recorded_inputs(report: Path) -> dict[str, Any]:
    text = report.read_text(encoding="utf-8")
    match = re.search(
        r"<script type='application/json' id='omnitwin-report-inputs'>(.*?)</script>",
        text,
        re.S,
    )
    assert match is not None
    data: dict[str, Any] = json.loads(match.group(1))
    return data


def test_inject_after_parameters_cell() -> None:
    cells = [
        nbformat.v4.new_markdown_cell("title"),
        nbformat.v4.new_code_cell("x = 1"),
        nbformat.v4.new_code_cell("print(x)"),
    ]
    cells[1].metadata["tags"] = ["parameters"]
    notebook = nbformat.v4.new_notebook(cells=cells)
    injected = inject_parameters(notebook, {"x": 2, "name": "lab A", "db": None})
    assert injected.cells[2].source == "# Parameters\nx = 2\nname = 'lab A'\ndb = None"
    assert injected.cells[2].metadata["tags"] == ["injected-parameters"]
    assert len(notebook.cells) == 3


def test_inject_rejects_objects() -> None:
    notebook = nbformat.v4.new_notebook()
    with pytest.raises(TypeError, match="parameter x has type list"):
        inject_parameters(notebook, {"x": [1]})


def test_report_records_database(report: Path, database: Path) -> None:
    inputs = recorded_inputs(report)
    snapshot = inputs["database"]
    assert snapshot["path"] == str(database.resolve())
    assert snapshot["sha256"] == hashlib.sha256(database.read_bytes()).hexdigest()
    assert snapshot["counts"]["devices"] == 30
    assert snapshot["counts"]["open_drift_events"] > 0


def test_report_records_parameters_and_versions(report: Path) -> None:
    inputs = recorded_inputs(report)
    assert inputs["parameters"]["target"] == "leaf-01.nyc1"
    assert inputs["parameters"]["max_elements"] == 300
    assert inputs["versions"]["omnitwin"] == omnitwin.__version__
    assert inputs["versions"]["anywidget"] == metadata.version("anywidget")
    assert "--db" in inputs["command"]


def test_report_loads_nothing_remote(report: Path) -> None:
    text = report.read_text(encoding="utf-8")
    assert re.search(r"<script[^>]*src=\"https?://", text) is None
    assert re.search(r"<link[^>]*href=\"https?://", text) is None
    assert "application/vnd.jupyter.widget-state+json" in text


def test_report_names_anywidget_module(report: Path) -> None:
    text = report.read_text(encoding="utf-8")
    assert 'define("anywidget", ["@jupyter-widgets/base"], widget_default);' in text
    assert 'define(["@jupyter-widgets/base"], widget_default);' not in text


def test_report_shows_blast_radius(report: Path) -> None:
    text = report.read_text(encoding="utf-8")
    assert "cuts off <strong>3</strong> devices" in text
    assert "srv-01-02.nyc1" in text


def test_report_reads_locked_database(database: Path, tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    with omnitwin.connect(f"local:{database}") as writer:
        writer.subnets.create("192.0.2.0/24", purpose="added while open")
        inputs = render_report("blast-radius", "leaf-02.nyc1", out, db=str(database))
    assert inputs["database"]["counts"]["subnets"] > 0
    assert out.stat().st_size > 1_000_000


def test_report_rejects_unknown_report(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown report 'nope'"):
        render_report("nope", "x", tmp_path / "r.html")


@needs_chromium
def test_report_renders_offline(report: Path) -> None:
    with chromium_page() as (page, blocked):
        page.goto(report.as_uri())
        page.wait_for_selector(CANVAS, state="attached", timeout=60_000)
        page.wait_for_timeout(1_500)
        counts = painted_pixels(page)
        inputs_table = page.locator("#omnitwin-report-inputs-table").inner_text()
    assert counts
    assert max(counts) > 1_000
    assert blocked.urls == []
    assert "sha256" in inputs_table


HOSTILE = "ev</script><script>window.injected=1</script>"


@pytest.fixture(scope="module")
def hostile_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A report whose target's hostname is HTML that would run a script."""
    folder = tmp_path_factory.mktemp("hostile")
    db = folder / "twin.duckdb"
    with omnitwin.connect(f"local:{db}") as client:
        load_sample_twin(client, sites=1)
        client.devices.create(HOSTILE, role="leaf", site="nyc1")
        client.topology.add_link(HOSTILE, "e1", "leaf-02.nyc1", "e99")
    out = folder / "report.html"
    render_report("blast-radius", HOSTILE, out, db=str(db))
    return out


def test_report_escapes_hostnames(hostile_report: Path) -> None:
    text = hostile_report.read_text(encoding="utf-8")
    # JSON script elements (widget state, recorded inputs) may carry the name
    # with "</" escaped; everywhere else it must be HTML-escaped.
    outside_json = re.sub(r"<script type=[^>]*>.*?</script>", "", text, flags=re.S)
    assert "<script>window.injected" not in outside_json
    assert "&lt;script&gt;window.injected=1&lt;/script&gt;" in outside_json
    inputs = re.search(r"id='omnitwin-report-inputs'>(.*?)</script>", text, re.S)
    assert inputs is not None
    assert "<" not in inputs.group(1)


def test_report_command_is_shell_quoted(hostile_report: Path) -> None:
    command = recorded_inputs(hostile_report)["command"]
    assert shlex.split(command)[:4] == ["omnitwin", "report", "blast-radius", HOSTILE]


@needs_chromium
def test_hostile_report_runs_no_script(hostile_report: Path) -> None:
    with chromium_page() as (page, blocked):
        page.goto(hostile_report.as_uri())
        page.wait_for_selector(CANVAS, state="attached", timeout=60_000)
        injected = page.evaluate("window.injected")
    assert injected is None
    assert blocked.urls == []


def test_out_must_not_be_the_database(database: Path) -> None:
    before = database.read_bytes()
    with pytest.raises(ValueError, match="is the database the report reads"):
        render_report("blast-radius", "leaf-01.nyc1", database, db=str(database))
    assert database.read_bytes() == before


def test_out_must_not_overwrite_other_files(tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("keep me")
    with pytest.raises(ValueError, match="exists and is not an HTML file"):
        render_report("blast-radius", "leaf-01.nyc1", notes, sites=1)
    assert notes.read_text() == "keep me"


def test_out_folder_must_exist(tmp_path: Path) -> None:
    out = tmp_path / "missing" / "report.html"
    with pytest.raises(ValueError, match="folder .*missing does not exist"):
        render_report("blast-radius", "leaf-01.nyc1", out, sites=1)
    assert not out.parent.exists()


def test_sample_target_checked_first(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "report.html"
    status = main(["report", "blast-radius", "nosuch", "--out", str(out)])
    error = capsys.readouterr().err
    assert status == 1
    assert error.count("\n") == 1
    assert "node 'nosuch' not found" in error
    assert not out.exists()


def test_report_rewrites_its_own_html(report: Path, database: Path) -> None:
    inputs = render_report("blast-radius", "leaf-02.nyc1", report, db=str(database))
    assert inputs["target_label"] == "leaf-02.nyc1"
    assert "<title>omnitwin blast-radius report: leaf-02.nyc1</title>" in (
        report.read_text(encoding="utf-8")
    )
    assert not list(report.parent.glob(".*.partial"))


def test_out_database_with_home_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    database = tmp_path / "twin.duckdb"
    omnitwin.connect(f"local:{database}").close()
    with pytest.raises(ValueError, match="is the database the report reads"):
        render_report("blast-radius", "x", database, db="~/twin.duckdb")
