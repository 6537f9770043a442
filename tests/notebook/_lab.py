"""Start JupyterLab on 127.0.0.1 in a temporary home, for browser tests and benches.

Configuration, runtime files, settings and caches all go under one temporary
folder, so nothing lands in the real home folder. The news feed, the update
check and the extension manager are off. The server runs with a random
token and ``--expose-app-in-browser`` so that a test can drive it through
``window.jupyterapp``.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat

JUPYTER = str(Path(sys.executable).with_name("jupyter"))


@dataclass(frozen=True)
class Lab:
    """A running JupyterLab: its base URL, token and notebook folder."""

    url: str
    token: str
    root: Path

    def notebook_url(self, name: str) -> str:
        """Return the URL that opens notebook ``name`` in the root folder."""
        return f"{self.url}/lab/tree/{name}?token={self.token}"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def lab_environment(home: Path) -> dict[str, str]:
    """Return an environment whose Jupyter folders are all under ``home``."""
    env = dict(os.environ)
    for name, sub in (
        ("JUPYTER_CONFIG_DIR", "config"),
        ("JUPYTER_RUNTIME_DIR", "runtime"),
        ("JUPYTER_DATA_DIR", "data"),
        ("JUPYTERLAB_SETTINGS_DIR", "settings"),
        ("JUPYTERLAB_WORKSPACES_DIR", "workspaces"),
        ("XDG_CONFIG_HOME", "xdg-config"),
        ("XDG_CACHE_HOME", "xdg-cache"),
        ("IPYTHONDIR", "ipython"),
        ("MPLCONFIGDIR", "matplotlib"),
    ):
        folder = home / sub
        folder.mkdir(parents=True, exist_ok=True)
        env[name] = str(folder)
    env["JUPYTER_PLATFORM_DIRS"] = "1"
    # Without this setting JupyterLab 4 shows a toast that offers to fetch news.
    notification = home / "settings" / "@jupyterlab" / "apputils-extension"
    notification.mkdir(parents=True, exist_ok=True)
    (notification / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false"})
    )
    return env


def disable_extension(home: Path, name: str) -> None:
    """Disable a lab extension in the temporary configuration only."""
    subprocess.run(
        [JUPYTER, "labextension", "disable", "--level=user", name],
        env=lab_environment(home),
        check=True,
        capture_output=True,
        timeout=120,
    )


def _wait_ready(url: str, token: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"jupyter lab exited with status {process.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2):
                return
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.3)
    raise TimeoutError(f"jupyter lab at {url} did not answer within 90 s")


@contextlib.contextmanager
def jupyter_lab(home: Path, root: Path) -> Iterator[Lab]:
    """Run JupyterLab serving ``root``, with its configuration under ``home``."""
    port = _free_port()
    token = secrets.token_hex(16)
    command = [
        JUPYTER,
        "lab",
        "--no-browser",
        "--ip=127.0.0.1",
        f"--port={port}",
        f"--ServerApp.root_dir={root}",
        f"--IdentityProvider.token={token}",
        "--expose-app-in-browser",
        "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        "--LabApp.extension_manager=readonly",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")
    log = (home / "lab.log").open("wb")
    process = subprocess.Popen(
        command, env=lab_environment(home), stdout=log, stderr=subprocess.STDOUT
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(url, token, process)
        yield Lab(url, token, root)
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def write_notebook(path: Path, sources: list[str]) -> None:
    """Write a notebook of code cells with a python3 kernelspec."""
    cells = [nbformat.v4.new_code_cell(source) for source in sources]
    metadata: dict[str, Any] = {
        "kernelspec": {
            "display_name": "Python 3",
            "language": "python",
            "name": "python3",
        }
    }
    notebook = nbformat.v4.new_notebook(cells=cells, metadata=metadata)
    nbformat.write(notebook, path)


# Records, in order, whether an agent output showed a status line without the
# final result yet ("status") and when the final result appeared ("final").
WATCH_AGENT_JS = """
() => {
  window.omnitwinSeen = [];
  const check = () => {
    for (const run of document.querySelectorAll('.omnitwin-agent')) {
      const status = run.querySelector('.omnitwin-status') !== null;
      const final = run.querySelector('.omnitwin-final') !== null;
      const state = final ? 'final' : status ? 'status' : 'empty';
      const seen = window.omnitwinSeen;
      if (seen[seen.length - 1] !== state) { seen.push(state); }
    }
  };
  new MutationObserver(check).observe(document.body, {childList: true, subtree: true});
}
"""

# Starts Run All without waiting for it: the command's promise resolves only
# when every cell has finished, and page.evaluate has no timeout of its own.
RUN_ALL_JS = "() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }"

KERNEL_IDLE_JS = """
() => {
  const widget = window.jupyterapp.shell.currentWidget;
  const kernel = widget && widget.sessionContext && widget.sessionContext.session
    && widget.sessionContext.session.kernel;
  return kernel ? kernel.status : 'none';
}
"""


def run_all_and_wait(page: Any, cells: int, timeout: float = 120.0) -> None:
    """Run every cell of the open notebook and wait until the kernel is idle."""
    page.wait_for_function(
        "() => window.jupyterapp && window.jupyterapp.shell.currentWidget"
        " && window.jupyterapp.shell.currentWidget.sessionContext"
        " && window.jupyterapp.shell.currentWidget.sessionContext.session"
        " && window.jupyterapp.shell.currentWidget.sessionContext.session.kernel"
        " && window.jupyterapp.shell.currentWidget.sessionContext.session.kernel"
        ".status === 'idle'",
        timeout=timeout * 1000,
    )
    page.evaluate(RUN_ALL_JS)
    done = (
        "() => { const p = document.querySelectorAll('.jp-InputArea-prompt');"
        f" return p.length >= {cells} && Array.from(p).every("
        "e => /\\[\\d+\\]/.test(e.textContent)); }"
    )
    page.wait_for_function(done, timeout=timeout * 1000)


def page_config(home: Path) -> dict[str, Any]:
    """Return the lab page configuration written under ``home``, if any."""
    path = home / "config" / "labconfig" / "page_config.json"
    if not path.exists():
        return {}
    data: dict[str, Any] = json.loads(path.read_text())
    return data
