"""Schemathesis against the served OpenAPI document: no 500, no response that
breaks the document's own schema."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from serverproc import make_keys, start_server

MAX_EXAMPLES = 15


@pytest.mark.slow
def test_schemathesis_finds_no_failures(tmp_path: Path) -> None:
    binary = shutil.which("schemathesis") or str(
        Path(sys.executable).with_name("schemathesis")
    )
    if not Path(binary).exists():
        pytest.fail("schemathesis is missing; pip install -e '.[dev]'")
    db = tmp_path / "fuzz.duckdb"
    key = make_keys(db, {"fuzz": ("fuzz", False)})["fuzz"]
    proc = start_server(tmp_path, "--rate-limit", "1000000", db=db)
    try:
        headers = {"Authorization": f"Bearer {key.secret}"}
        block = httpx.post(
            f"{proc.url}/subnets",
            json={"cidr": "10.0.0.0/8", "is_container": True},
            headers=headers,
        )
        assert block.status_code == 201
        result = subprocess.run(
            [
                binary,
                "run",
                f"{proc.url}/openapi.json",
                "--url",
                proc.url,
                "--header",
                f"Authorization: Bearer {key.secret}",
                "--checks",
                "not_a_server_error,status_code_conformance,"
                "content_type_conformance,response_schema_conformance",
                "--max-examples",
                str(MAX_EXAMPLES),
                "--phases",
                "examples,coverage,fuzzing",
                # One worker, because hypothesis calls ast.parse from each
                # thread and CPython 3.11.7 raised SystemError on that in CI.
                "--workers",
                "1",
                "--seed",
                "1",
                "--no-color",
            ],
            capture_output=True,
            text=True,
            timeout=240,
            cwd=tmp_path,
        )
    finally:
        proc.stop()
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert " 500 " not in proc.log()
