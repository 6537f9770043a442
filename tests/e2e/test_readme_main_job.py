"""The README's first set-up command, run verbatim in a fresh virtual environment.

The command installs omnitwin with its notebook extras from a copy of the
working tree (so the test never touches the repository's own ``.venv``) and
runs the main job. Its dependencies come from the package registry or pip's
cache.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from testdata import REPO


def readme_commands() -> list[str]:
    """Return the commands of the README's set-up section, in order."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split("## Set up", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sh\n(.+?)\n```", section)


def copy_tree(target: Path) -> None:
    """Copy the files that git tracks, as they are in the working tree."""
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = REPO / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)


def test_readme_has_two_setup_commands() -> None:
    commands = readme_commands()
    assert len(commands) == 2
    assert "omnitwin demo" in commands[0]
    assert commands[1].endswith("pytest")


@pytest.mark.slow
def test_main_job_in_fresh_venv(tmp_path: Path) -> None:
    command = readme_commands()[0]
    checkout = tmp_path / "omnitwin"
    copy_tree(checkout)
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")
    }
    result = subprocess.run(
        ["bash", "-c", command],
        cwd=checkout,
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    installed = subprocess.run(
        [
            str(checkout / ".venv/bin/python"),
            "-c",
            "import omnitwin; print(omnitwin.__file__)",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert str(checkout / ".venv") in installed
    assert "Drift: 6 open events on 5 devices" in result.stdout
    assert "Blast-radius report written to" in result.stdout
    drift_page = (checkout / "out/drift-summary.html").read_text(encoding="utf-8")
    assert "6 open drift events" in drift_page
    report = (checkout / "out/blast-radius.html").read_text(encoding="utf-8")
    assert "leaf-02.nyc1" in report
    assert "srv-02-01.nyc1" in report
