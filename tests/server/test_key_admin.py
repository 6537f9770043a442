"""Key management on a running server: /v1/keys and 'omnitwin keys --url'."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from serverproc import ServerProcess, make_keys, start_server

WORKSPACE = "ws-k"


@pytest.fixture(scope="module")
def keyserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server of its own, so that revocations here touch no other test."""
    tmp = tmp_path_factory.mktemp("keyserver")
    db = tmp / "keys.duckdb"
    specs: dict[str, tuple[str | None, bool]] = {
        "admin": (None, False),
        "admin_read_only": (None, True),
        "user": (WORKSPACE, False),
    }
    keys = make_keys(db, specs)
    proc = start_server(tmp, db=db)
    proc.keys = keys
    yield proc
    proc.stop()


@pytest.fixture
def http(keyserver: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=keyserver.url) as client:
        yield client


def auth(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def admin_headers(server: ServerProcess) -> dict[str, str]:
    return auth(server.keys["admin"].secret)


def create_key(http: httpx.Client, server: ServerProcess, **body: Any) -> Any:
    response = http.post("/keys", json=body, headers=admin_headers(server))
    assert response.status_code == 201, response.text
    return response.json()


def error_of(response: httpx.Response) -> dict[str, str]:
    error: dict[str, str] = response.json()["error"]
    assert error["request_id"] == response.headers["X-Request-Id"]
    return error


def run_cli(*args: str, api_key: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "OMNITWIN_API_KEY"}
    if api_key is not None:
        env["OMNITWIN_API_KEY"] = api_key
    return subprocess.run(
        [sys.executable, "-m", "omnitwin.cli", "keys", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


def test_created_key_works_at_once(
    http: httpx.Client, keyserver: ServerProcess
) -> None:
    response = http.post(
        "/keys",
        json={"workspace": "ws-new", "name": "ci"},
        headers=admin_headers(keyserver),
    )
    assert response.status_code == 201, response.text
    assert response.headers["Cache-Control"] == "no-store"
    assert "X-RateLimit-Remaining" in response.headers
    created = response.json()
    assert created["secret"].startswith("ot_live_")
    assert created["id"].startswith("key_")
    assert created["workspace"] == "ws-new"
    assert created["name"] == "ci"
    assert created["read_only"] is False
    assert created["admin"] is False
    assert created["revoked_at"] is None
    headers = auth(created["secret"])
    subnet = http.post("/subnets", json={"cidr": "10.9.0.0/24"}, headers=headers)
    assert subnet.status_code == 201, subnet.text
    listed = http.get("/subnets", headers=headers)
    assert [s["cidr"] for s in listed.json()["data"]] == ["10.9.0.0/24"]


def test_create_is_audited_with_admin_actor(
    http: httpx.Client, keyserver: ServerProcess
) -> None:
    created = create_key(http, keyserver, workspace="ws-audit")
    response = http.get(
        "/audit", params={"subject": created["id"]}, headers=auth(created["secret"])
    )
    assert response.status_code == 200, response.text
    events = response.json()["data"]
    assert [e["action"] for e in events] == ["key.create"]
    assert events[0]["actor"] == f"key:{keyserver.keys['admin'].id}"
    assert "secret" not in events[0]["changes"]["after"]
    verify = http.get("/audit/verify", headers=auth(created["secret"]))
    assert verify.json()["ok"] is True


def test_created_read_only_key_rejects_writes(
    http: httpx.Client, keyserver: ServerProcess
) -> None:
    created = create_key(http, keyserver, workspace=WORKSPACE, read_only=True)
    headers = auth(created["secret"])
    assert http.get("/subnets", headers=headers).status_code == 200
    write = http.post("/subnets", json={"cidr": "10.8.0.0/24"}, headers=headers)
    assert write.status_code == 403


def test_list_has_no_secrets(http: httpx.Client, keyserver: ServerProcess) -> None:
    created = create_key(http, keyserver, workspace="ws-list")
    response = http.get("/keys", headers=admin_headers(keyserver))
    assert response.status_code == 200, response.text
    page = response.json()
    by_id = {key["id"]: key for key in page["data"]}
    assert created["id"] in by_id
    assert keyserver.keys["user"].id in by_id
    assert by_id[keyserver.keys["admin"].id]["admin"] is True
    assert by_id[keyserver.keys["admin"].id]["workspace"] == "*"
    for key in page["data"]:
        assert "secret" not in key
        assert "hash" not in key
    assert created["secret"] not in response.text


def test_list_filters_and_pages(http: httpx.Client, keyserver: ServerProcess) -> None:
    first = create_key(http, keyserver, workspace="ws-pages")
    second = create_key(http, keyserver, workspace="ws-pages")
    headers = admin_headers(keyserver)
    listed = http.get("/keys", params={"workspace": "ws-pages"}, headers=headers)
    assert [k["id"] for k in listed.json()["data"]] == [first["id"], second["id"]]
    page = http.get(
        "/keys",
        params={"workspace": "ws-pages", "per_page": 1, "page": 2},
        headers=headers,
    )
    assert [k["id"] for k in page.json()["data"]] == [second["id"]]
    assert page.json()["meta"] == {"total": 2, "page": 2, "per_page": 1}
    admins = http.get("/keys", params={"workspace": "*"}, headers=headers)
    assert {k["admin"] for k in admins.json()["data"]} == {True}


def test_revoked_key_gets_401_next_call(
    http: httpx.Client, keyserver: ServerProcess
) -> None:
    created = create_key(http, keyserver, workspace="ws-revoke")
    witness = create_key(http, keyserver, workspace="ws-revoke")
    headers = auth(created["secret"])
    # Call once first, so that the server caches the key and the 401 below
    # shows that revoking clears that cache.
    assert http.get("/subnets", headers=headers).status_code == 200
    revoked = http.delete(f"/keys/{created['id']}", headers=admin_headers(keyserver))
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["revoked_at"] is not None
    assert revoked.json()["id"] == created["id"]
    after = http.get("/subnets", headers=headers)
    assert after.status_code == 401
    assert error_of(after)["code"] == "unauthorized"
    events = http.get(
        "/audit", params={"subject": created["id"]}, headers=auth(witness["secret"])
    ).json()["data"]
    assert [e["action"] for e in events] == ["key.create", "key.revoke"]
    assert events[1]["actor"] == f"key:{keyserver.keys['admin'].id}"


def test_revoke_twice_keeps_first_time(
    http: httpx.Client, keyserver: ServerProcess
) -> None:
    created = create_key(http, keyserver, workspace="ws-twice")
    path = f"/keys/{created['id']}"
    first = http.delete(path, headers=admin_headers(keyserver)).json()
    second = http.delete(path, headers=admin_headers(keyserver))
    assert second.status_code == 200
    assert second.json()["revoked_at"] == first["revoked_at"]


def test_revoke_unknown_key_is_404(
    http: httpx.Client, keyserver: ServerProcess
) -> None:
    response = http.delete("/keys/key_missing", headers=admin_headers(keyserver))
    assert response.status_code == 404
    assert error_of(response)["code"] == "not_found"


def test_revoke_own_key_is_409(http: httpx.Client, keyserver: ServerProcess) -> None:
    own = keyserver.keys["admin"].id
    response = http.delete(f"/keys/{own}", headers=admin_headers(keyserver))
    assert response.status_code == 409
    assert "itself" in error_of(response)["message"]
    assert http.get("/keys", headers=admin_headers(keyserver)).status_code == 200


def test_key_routes_reject_workspace_key(
    http: httpx.Client, keyserver: ServerProcess
) -> None:
    headers = auth(keyserver.keys["user"].secret)
    requests = [
        http.post("/keys", json={"workspace": WORKSPACE}, headers=headers),
        http.get("/keys", headers=headers),
        http.delete(f"/keys/{keyserver.keys['user'].id}", headers=headers),
    ]
    for response in requests:
        assert response.status_code == 403
        assert error_of(response)["code"] == "forbidden"
    # The workspace key was not revoked by its own DELETE.
    assert http.get("/subnets", headers=headers).status_code == 200


@pytest.mark.parametrize("secret", [None, "ot_live_not-a-real-key"])
def test_key_routes_need_known_key(http: httpx.Client, secret: str | None) -> None:
    headers = auth(secret) if secret else {}
    for response in (
        http.get("/keys", headers=headers),
        http.post("/keys", json={"workspace": "w"}, headers=headers),
        http.delete("/keys/key_x", headers=headers),
    ):
        assert response.status_code == 401
        assert error_of(response)["code"] == "unauthorized"


def test_read_only_admin_may_only_list(
    http: httpx.Client, keyserver: ServerProcess
) -> None:
    headers = auth(keyserver.keys["admin_read_only"].secret)
    assert http.get("/keys", headers=headers).status_code == 200
    create = http.post("/keys", json={"workspace": "w"}, headers=headers)
    assert create.status_code == 403
    assert "read-only" in error_of(create)["message"]
    revoke = http.delete(f"/keys/{keyserver.keys['user'].id}", headers=headers)
    assert revoke.status_code == 403


def test_admin_creates_admin_key(http: httpx.Client, keyserver: ServerProcess) -> None:
    created = create_key(http, keyserver, admin=True, name="rotation")
    assert created["admin"] is True
    assert created["workspace"] == "*"
    headers = auth(created["secret"])
    assert http.get("/keys", headers=headers).status_code == 200
    assert http.get("/subnets", headers=headers).status_code == 403
    # The new admin key may revoke another admin key, the rotation use case.
    spare = create_key(http, keyserver, admin=True)
    revoked = http.delete(f"/keys/{spare['id']}", headers=headers)
    assert revoked.status_code == 200, revoked.text


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "workspace"),
        ({"workspace": ""}, "workspace"),
        ({"workspace": "*"}, "workspace"),
        ({"admin": True, "workspace": "ws"}, "workspace"),
        ({"workspace": "ws", "read_only": "yes"}, "read_only"),
        ({"workspace": "ws", "colour": "red"}, "colour"),
    ],
)
def test_create_bad_body_is_400(
    http: httpx.Client, keyserver: ServerProcess, body: dict[str, Any], field: str
) -> None:
    response = http.post("/keys", json=body, headers=admin_headers(keyserver))
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "validation_error"
    assert field in error["message"]


def test_openapi_has_key_routes(http: httpx.Client) -> None:
    paths = http.get("/openapi.json").json()["paths"]
    assert set(paths["/keys"]) == {"get", "post"}
    assert "201" in paths["/keys"]["post"]["responses"]
    assert "403" in paths["/keys"]["post"]["responses"]
    assert "200" in paths["/keys/{id}"]["delete"]["responses"]


def test_cli_url_create_list_revoke(
    http: httpx.Client, keyserver: ServerProcess
) -> None:
    admin_secret = keyserver.keys["admin"].secret
    created = run_cli(
        "create",
        "--url",
        keyserver.url,
        "--workspace",
        "ws-cli",
        "--name",
        "from-cli",
        api_key=admin_secret,
    )
    assert created.returncode == 0, created.stderr
    secret = created.stdout.strip().splitlines()[-1]
    assert secret.startswith("ot_live_")
    assert created.stdout.startswith("created key key_")
    key_id = created.stdout.split()[2]
    assert http.get("/subnets", headers=auth(secret)).status_code == 200

    listed = run_cli(
        "list",
        "--url",
        keyserver.url,
        "--api-key",
        admin_secret,
        "--workspace",
        "ws-cli",
    )
    assert listed.returncode == 0, listed.stderr
    assert key_id in listed.stdout
    assert "from-cli" in listed.stdout
    assert secret not in listed.stdout

    revoked = run_cli("revoke", "--url", keyserver.url, key_id, api_key=admin_secret)
    assert revoked.returncode == 0, revoked.stderr
    assert "revoked" in revoked.stdout
    assert http.get("/subnets", headers=auth(secret)).status_code == 401


def test_cli_url_rejects_workspace_key(keyserver: ServerProcess) -> None:
    result = run_cli(
        "list", "--url", keyserver.url, api_key=keyserver.keys["user"].secret
    )
    assert result.returncode == 1
    assert "not an admin key" in result.stderr


def test_cli_url_without_key_is_error(keyserver: ServerProcess) -> None:
    result = run_cli("list", "--url", keyserver.url)
    assert result.returncode == 2
    assert "OMNITWIN_API_KEY" in result.stderr


def test_cli_on_locked_file_names_url_command(keyserver: ServerProcess) -> None:
    db = str(keyserver.log_path.parent / "keys.duckdb")
    result = run_cli("create", "--db", db, "--workspace", "ws-x", "--read-only")
    assert result.returncode == 1
    assert db in result.stderr
    assert (
        "omnitwin keys create --url http://127.0.0.1:8000/v1 --api-key ADMIN_KEY "
        "--workspace ws-x --read-only"
    ) in result.stderr
    assert f"omnitwin keys create --admin --db {db}" in result.stderr
    revoke = run_cli("revoke", "--db", db, "key_abc")
    assert revoke.returncode == 1
    assert "omnitwin keys revoke --url" in revoke.stderr


def test_key_routes_count_against_rate_limit(tmp_path: Path) -> None:
    db = tmp_path / "limited.duckdb"
    keys = make_keys(db, {"admin": (None, False), "user": ("ws-r", False)})
    proc = start_server(tmp_path, "--rate-limit", "2", db=db)
    try:
        headers = auth(keys["admin"].secret)
        with httpx.Client(base_url=proc.url) as client:
            statuses = [
                client.get("/keys", headers=headers).status_code for _ in range(3)
            ]
            assert statuses == [200, 200, 429]
            limited = client.post("/keys", json={"workspace": "w"}, headers=headers)
            assert limited.status_code == 429
            assert int(limited.headers["Retry-After"]) >= 1
            assert error_of(limited)["code"] == "rate_limited"
            # Admin keys have their own budget, the workspace "*".
            user = client.get("/subnets", headers=auth(keys["user"].secret))
            assert user.status_code == 200
    finally:
        proc.stop()
