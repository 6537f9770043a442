"""Headless reports: run a parameterised notebook into one offline HTML file.

``omnitwin report blast-radius TARGET --out report.html`` injects the
parameters after the notebook's cell tagged ``parameters``, as papermill
does. It executes the notebook with nbclient and exports it with nbconvert.
The widget JavaScript (require.js, ``@jupyter-widgets/html-manager`` and
``anywidget``, vendored from npm) is inlined, and the topology widget's state
carries its own front end and cytoscape.js, so the file renders the widget
with no network access. The page also records its inputs: the
database path, its SHA-256 and object counts, the parameters and the package
versions, visibly and as JSON in ``<script id="omnitwin-report-inputs">``.
"""

from __future__ import annotations

import argparse
import copy
import datetime
import hashlib
import html
import json
import logging
import os
import platform
import re
import shlex
import shutil
import sys
import tempfile
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

from omnitwin.notebook._assets import asset_path
from omnitwin.notebook._optional import require

__all__ = [
    "REPORTS",
    "add_report_command",
    "inject_parameters",
    "render_blast_radius_report",
    "render_report",
    "target_label",
]

logger = logging.getLogger(__name__)

REPORTS = {"blast-radius": "blast-radius-report.ipynb"}

_PACKAGES = (
    "omnitwin",
    "duckdb",
    "pandas",
    "networkx",
    "ipywidgets",
    "anywidget",
    "ipykernel",
    "nbclient",
    "nbconvert",
    "matplotlib",
)
_REQUIRE_MARKER = "omnitwin-inline-require.js"
# The last line of anywidget's AMD build. An anonymous define() works only
# in a file that require.js loads by URL, so the inlined copy gets a name.
_ANYWIDGET_DEFINE = 'define(["@jupyter-widgets/base"], widget_default);'

_REMOTE_SCRIPT = re.compile(r"<script[^>]*\ssrc=\"https?://[^\"]*\"[^>]*>\s*</script>")


def inject_parameters(notebook: Any, parameters: Mapping[str, Any]) -> Any:
    """Return a copy of ``notebook`` with a cell that sets ``parameters``.

    The new cell, tagged ``injected-parameters``, goes right after the cell
    tagged ``parameters`` (or first, if there is none), so that it overrides
    the defaults. Values must be Python literals: str, int, float, bool,
    None, or a list of str.

    Examples
    --------
    >>> import nbformat
    >>> nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")])
    >>> inject_parameters(nb, {"x": 2}).cells[0].source
    '# Parameters\\nx = 2'
    """
    nbformat = require("nbformat")
    lines = ["# Parameters"]
    for name, value in parameters.items():
        if not name.isidentifier():
            raise ValueError(f"parameter name {name!r} is not a Python identifier")
        is_names = isinstance(value, list) and all(isinstance(v, str) for v in value)
        if not is_names and not isinstance(
            value, str | int | float | bool | type(None)
        ):
            raise TypeError(
                f"parameter {name} has type {type(value).__name__}; "
                "use str, int, float, bool, None or a list of str"
            )
        lines.append(f"{name} = {value!r}")
    cell = nbformat.v4.new_code_cell("\n".join(lines))
    cell.metadata["tags"] = ["injected-parameters"]
    result = copy.deepcopy(notebook)
    position = 0
    for index, existing in enumerate(result.cells):
        if "parameters" in existing.get("metadata", {}).get("tags", []):
            position = index + 1
            break
    result.cells.insert(position, cell)
    return result


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _counts(client: Any) -> dict[str, int]:
    return {
        "subnets": client.subnets.list(per_page=1).total,
        "devices": client.devices.list(per_page=1).total,
        "open_drift_events": client.drift.events(status="open", per_page=1).total,
        "audit_events": client.audit.list(per_page=1).total,
        "intended_links": len(client.topology.links(kind="intended")),
        "detected_links": len(client.topology.links(kind="detected")),
    }


def _snapshot_file(db: str, workdir: Path) -> tuple[dict[str, Any], Path]:
    """Copy a database (and its WAL) into ``workdir``; return its record and copy.

    The report reads the copy, so a process that holds the original open for
    writing (which locks it) does not block the report's kernel. The copy is
    opened once with write access, which replays the WAL into it.
    """
    import omnitwin

    path = Path(db).expanduser().resolve()
    if not path.is_file():
        raise FileNotFoundError(f"database {path} not found; check --db")
    with path.open("rb") as handle:
        # DuckDB files carry the magic bytes DUCK at offset 8.
        if handle.read(12)[8:] != b"DUCK":
            raise ValueError(f"{path} is not a DuckDB database; check --db")
    copy = workdir / path.name
    shutil.copyfile(path, copy)
    snapshot: dict[str, Any] = {
        "kind": "file",
        "path": str(path),
        "sha256": _sha256(path),
        "bytes": path.stat().st_size,
    }
    wal = path.with_name(path.name + ".wal")
    if wal.is_file():
        shutil.copyfile(wal, copy.with_name(copy.name + ".wal"))
        snapshot["wal_sha256"] = _sha256(wal)
    with omnitwin.connect(f"local:{copy}") as client:
        snapshot["counts"] = _counts(client)
    return snapshot, copy


def _snapshot_server(url: str, api_key: str | None) -> dict[str, Any]:
    import omnitwin

    with omnitwin.connect(url, api_key=api_key) as client:
        return {"kind": "server", "url": url, "counts": _counts(client)}


def _check_target(
    source: str,
    api_key: str | None,
    target: str,
    roots: list[str] | None,
    *,
    sites: int | None = None,
) -> str:
    """Check the target and roots before any kernel starts; return the label.

    An unknown target or root raises the engine's error here, so a typo costs
    one line rather than a notebook traceback. With ``sites``, ``source`` must
    be ``:memory:``, and the generated sample network is loaded first, as the
    report notebook does.
    """
    import omnitwin
    from omnitwin.notebook import load_sample_twin

    with omnitwin.connect(source, api_key=api_key) as client:
        if sites is not None:
            load_sample_twin(client, sites=sites)
        radius = client.topology.blast_radius(target, roots=roots)
        return target_label(client, radius)


def target_label(client: Any, radius: Any) -> str:
    """Return a readable name for the target of a blast radius.

    A device is named by its hostname and a link by its two ends, since
    their ids mean nothing to a reader.
    """
    if radius.target_kind != "link":
        return str(client.devices.get(radius.target).hostname)
    for link in client.topology.links():
        if link.id == radius.target:
            return f"{link.a_hostname} {link.port_a} - {link.b_hostname} {link.port_b}"
    return str(radius.target)


def _check_out(out: Path, db: str | None) -> None:
    """Reject an ``--out`` that would overwrite something other than a report.

    Raises
    ------
    ValueError
        If ``out`` is a folder, lies in a missing folder, is the database the
        report reads, or is an existing file that is not HTML.
    """
    if out.is_dir():
        raise ValueError(f"{out} is a folder; give --out an HTML file name")
    if not out.parent.is_dir():
        raise ValueError(
            f"folder {out.parent} does not exist; create it or give --out a path "
            "in an existing folder"
        )
    if not out.exists():
        return
    database = Path(db).expanduser() if db is not None else None
    if database is not None and database.exists() and out.samefile(database):
        raise ValueError(
            f"--out {out} is the database the report reads; give another file name"
        )
    with out.open("rb") as existing:
        start = existing.read(512).lstrip().lower()
    if not start.startswith((b"<!doctype html", b"<html")):
        raise ValueError(
            f"{out} exists and is not an HTML file; remove it or give another --out"
        )


def _versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def _vendor_text(name: str) -> str:
    return asset_path(f"vendor/{name}").read_text(encoding="utf-8")


def _inline_script(text: str) -> str:
    return "<script>\n" + text.replace("</script", "<\\/script") + "\n</script>"


def _anywidget_script() -> str:
    """Return anywidget's front end as a script that defines module ``anywidget``."""
    text = _vendor_text("anywidget.js")
    if text.count(_ANYWIDGET_DEFINE) != 1:
        raise RuntimeError(
            f"widgets/vendor/anywidget.js has no single line {_ANYWIDGET_DEFINE!r}"
            " to name; update _ANYWIDGET_DEFINE for its version"
        )
    named = _ANYWIDGET_DEFINE.replace("define(", 'define("anywidget", ', 1)
    return _inline_script(text.replace(_ANYWIDGET_DEFINE, named))


def _inputs_html(inputs: Mapping[str, Any]) -> str:
    rows = "".join(
        f"<tr><th style='text-align:left;vertical-align:top'>{html.escape(key)}</th>"
        f"<td><pre style='margin:0'>"
        f"{html.escape(json.dumps(value, indent=1, sort_keys=True))}</pre></td></tr>"
        for key, value in inputs.items()
    )
    # Escaping every "<" keeps "</script>" and "<!--" in a value (a hostname,
    # say) from ending or changing the parsing of the script element.
    data = json.dumps(inputs, sort_keys=True).replace("<", "\\u003c")
    return (
        "<section id='omnitwin-report-inputs-table' style='margin:1em 2em'>"
        "<h2>Report inputs</h2>"
        "<p>Run the same command with these inputs to reproduce this report.</p>"
        f"<table>{rows}</table></section>"
        f"<script type='application/json' id='omnitwin-report-inputs'>{data}</script>"
    )


def _export(notebook: Any, inputs: Mapping[str, Any]) -> str:
    exporter = require("nbconvert").HTMLExporter(template_name="lab")
    exporter.exclude_input = True
    exporter.exclude_input_prompt = True
    exporter.exclude_output_prompt = True
    exporter.require_js_url = _REQUIRE_MARKER
    # The template inserts a script tag for the widget renderer; the real one
    # is inlined below, so that tag gets a script that does nothing.
    exporter.widget_renderer_url = "data:text/javascript,void%200"
    target = inputs.get("target_label") or inputs["parameters"]["target"]
    title = f"omnitwin {inputs['report']} report: {target}"
    body, _ = exporter.from_notebook_node(
        notebook, resources={"metadata": {"name": title}}
    )
    tag = f'<script src="{_REQUIRE_MARKER}"></script>'
    if tag not in body:
        raise RuntimeError("the nbconvert template has no require.js script tag")
    # Order matters. require.js comes first. anywidget's named define()
    # follows, so the widget manager's require() call finds it without a CDN.
    # The manager comes last and renders once the page has loaded.
    scripts = (
        _inline_script(_vendor_text("require.js"))
        + _anywidget_script()
        + _inline_script(_vendor_text("html-manager-embed-amd.js"))
    )
    body = body.replace(tag, scripts, 1)
    # MathJax and other CDN scripts cannot load offline; the report needs none.
    body = _REMOTE_SCRIPT.sub("", body)
    return body.replace("<body", "<body data-omnitwin-report='1'", 1).replace(
        "</main>", _inputs_html(inputs) + "</main>", 1
    )


def _inputs(
    report: str, parameters: Mapping[str, Any], database: Mapping[str, Any]
) -> dict[str, Any]:
    return {
        "report": report,
        "generated_at": datetime.datetime.now(datetime.UTC).isoformat(),
        "parameters": dict(parameters),
        "database": dict(database),
        "versions": _versions(),
        "command": _shell_command(
            ["omnitwin", "report", *_command_words(parameters, report)]
        ),
    }


def _execute(notebook: Any, workdir: Path, api_key: str | None, timeout: float) -> None:
    """Run every cell of ``notebook`` in a fresh python3 kernel, in place."""
    env = dict(os.environ)
    if api_key:
        env["OMNITWIN_API_KEY"] = api_key
    # IPC sockets in the work folder: the kernel opens no TCP port, and
    # ipykernel does not warn about unencrypted TCP on every run.
    manager = require("jupyter_client.manager").KernelManager(
        kernel_name="python3", transport="ipc", ip=str(workdir / "kernel")
    )
    runner = require("nbclient").NotebookClient(
        notebook,
        km=manager,
        timeout=int(timeout),
        kernel_name="python3",
        resources={"metadata": {"path": str(workdir)}},
    )
    try:
        runner.execute(env=env)
    finally:
        # The client shuts down only kernels it started itself.
        if manager.has_kernel:
            manager.shutdown_kernel()


def render_report(
    report: str,
    target: str,
    out: str | Path,
    *,
    db: str | None = None,
    url: str | None = None,
    api_key: str | None = None,
    roots: list[str] | None = None,
    sites: int = 3,
    max_elements: int = 300,
    free_length: int = 24,
    timeout: float = 600.0,
) -> dict[str, Any]:
    """Execute a report notebook headless and write one self-contained HTML file.

    Parameters
    ----------
    report : str
        The report to run; ``blast-radius`` is the one available.
    target : str
        The device (id or hostname) or link whose failure the report studies.
    out : str or Path
        Where to write the HTML file.
    db, url : str, optional
        A DuckDB file or a server URL. The report reads a copy of the file,
        so a process that has it open does not block the report. With
        neither, the report runs on the generated sample network in memory.
    api_key : str, optional
        The server's API key; it reaches the kernel through
        ``OMNITWIN_API_KEY`` and is not written to the report.
    roots : list of str, optional
        Devices that stand for the outside world; without them the blast
        radius is measured against the rest of the network.
    sites : int
        Sites of the generated sample network when neither db nor url is set.
    max_elements : int
        Upper bound on nodes plus edges of the topology widget.
    free_length : int
        Prefix length of the free blocks listed for the largest container.
    timeout : float
        Seconds one cell may run.

    Returns
    -------
    dict
        The inputs recorded in the report.

    Raises
    ------
    ValueError
        If the report is unknown or both ``db`` and ``url`` are given.
    """
    if report not in REPORTS:
        raise ValueError(f"unknown report {report!r}; use one of {', '.join(REPORTS)}")
    if db is not None and url is not None:
        raise ValueError("give --db or --url, not both")
    out_path = Path(out).expanduser().resolve()
    _check_out(out_path, db)
    with tempfile.TemporaryDirectory(prefix="omnitwin-report-") as folder:
        workdir = Path(folder)
        database: dict[str, Any] = {"kind": "generated sample network (in memory)"}
        copy = None
        if db is not None:
            database, copy = _snapshot_file(db, workdir)
            label = _check_target(f"local:{copy}", None, target, roots)
        elif url is not None:
            database = _snapshot_server(url, api_key)
            label = _check_target(url, api_key, target, roots)
        else:
            label = _check_target(":memory:", None, target, roots, sites=sites)
        parameters: dict[str, Any] = {
            "target": target,
            "roots": list(roots) if roots else None,
            "db": database.get("path"),
            "url": url,
            "sites": sites,
            "max_elements": max_elements,
            "free_length": free_length,
        }
        inputs = _inputs(report, parameters, database)
        inputs["target_label"] = label
        notebook = inject_parameters(
            require("nbformat").read(asset_path(REPORTS[report]), as_version=4),
            {**parameters, "db": str(copy) if copy else None},
        )
        logger.info("executing report %s for %s", report, target)
        _execute(notebook, workdir, api_key, timeout)
    # A file in the same folder, renamed over the target, so that a failed
    # write never leaves half a report.
    partial = out_path.with_name(f".{out_path.name}.partial")
    try:
        partial.write_text(_export(notebook, inputs), encoding="utf-8")
        os.replace(partial, out_path)
    finally:
        partial.unlink(missing_ok=True)
    logger.info("wrote report %s", out_path)
    return inputs


def render_blast_radius_report(
    target: str, out: str | Path, **options: Any
) -> dict[str, Any]:
    """Write the blast-radius report of ``target``; see :func:`render_report`."""
    return render_report("blast-radius", target, out, **options)


# The recorded command names the key's environment variable, never the key.
_API_KEY_VARIABLE = '"$OMNITWIN_API_KEY"'


def _shell_command(words: list[str]) -> str:
    """Join ``words`` into a POSIX shell command, quoting each one as needed.

    The API key variable stays in double quotes, so that the shell expands it.
    """
    return " ".join(
        word if word == _API_KEY_VARIABLE else shlex.quote(word) for word in words
    )


def _command_words(parameters: Mapping[str, Any], report: str) -> list[str]:
    words = [report, str(parameters["target"]), "--out", "REPORT.html"]
    if parameters["roots"]:
        words += ["--roots", ",".join(parameters["roots"])]
    if parameters["db"]:
        words += ["--db", str(parameters["db"])]
    if parameters["url"]:
        words += ["--url", str(parameters["url"]), "--api-key", _API_KEY_VARIABLE]
    if not parameters["db"] and not parameters["url"]:
        words += ["--sites", str(parameters["sites"])]
    words += ["--max-elements", str(parameters["max_elements"])]
    words += ["--free-length", str(parameters["free_length"])]
    return words


def _cmd_report(args: argparse.Namespace) -> int:
    inputs = render_report(
        args.report,
        args.target,
        args.out,
        db=args.db,
        url=args.url,
        api_key=args.api_key or os.environ.get("OMNITWIN_API_KEY"),
        roots=split_names(args.roots),
        sites=args.sites,
        max_elements=args.max_elements,
        free_length=args.free_length,
        timeout=args.timeout,
    )
    counts = inputs["database"].get("counts")
    source = (
        ", ".join(f"{name} {count}" for name, count in counts.items())
        if counts
        else inputs["database"]["kind"]
    )
    print(f"wrote {args.out} ({source})")
    return 0


def split_names(text: str | None) -> list[str] | None:
    """Split a comma-separated list of device names; None or empty gives None.

    >>> split_names("core1, core2")
    ['core1', 'core2']
    """
    names = [name.strip() for name in (text or "").split(",") if name.strip()]
    return names or None


def add_report_command(commands: Any) -> None:
    """Add ``omnitwin report`` to the command line's subcommands."""
    report = commands.add_parser(
        "report", help="run a report notebook headless into one offline HTML file"
    )
    report.add_argument("report", choices=sorted(REPORTS), help="which report")
    report.add_argument("target", help="device id or hostname, or link id")
    report.add_argument("--out", required=True, help="HTML file to write")
    source = report.add_mutually_exclusive_group()
    source.add_argument("--db", help="DuckDB file to read (the report reads a copy)")
    source.add_argument("--url", help="server URL, e.g. http://127.0.0.1:8000/v1")
    report.add_argument("--api-key", help="server API key (default: OMNITWIN_API_KEY)")
    report.add_argument(
        "--sites", type=int, default=3, help="sample sites when no --db or --url"
    )
    report.add_argument(
        "--roots", help="comma-separated devices that stand for the outside world"
    )
    report.add_argument(
        "--max-elements", type=int, default=300, help="graph nodes plus edges shown"
    )
    report.add_argument(
        "--free-length",
        type=int,
        default=24,
        help="prefix length of the free blocks listed (default: %(default)s)",
    )
    report.add_argument(
        "--timeout", type=float, default=600.0, help="seconds one cell may run"
    )
    report.set_defaults(handler=_cmd_report)


def main() -> None:
    """Run ``omnitwin report`` on its own (``python -m omnitwin.notebook.report``)."""
    parser = argparse.ArgumentParser(prog="omnitwin")
    add_report_command(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args()
    sys.exit(args.handler(args))


if __name__ == "__main__":
    main()
