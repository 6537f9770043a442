"""Auth matrix, error bodies and headers of a live server, over raw HTTP."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

import omnitwin
from omnitwin.client._devices import load_sample_devices
from omnitwin.client._routes import Route, routes_of
from omnitwin.engine.ingest import sample_detected_state
from omnitwin.sample import generate_fabric
from omnitwin.server._admin import KEY_ROUTES
from serverproc import ServerProcess

SITE = "nyc1"

SAMPLE_BODIES = {
    "subnets.create": {"cidr": "172.16.0.0/24"},
    "subnets.update": {"purpose": "x"},
    "subnets.allocate": {"prefix_length": 28},
    "addresses.create": {"address": "172.20.0.9"},
    "agents.command": {"command": "show subnet 172.20.0.0/16"},
    "devices.create": {"hostname": "auth-01", "role": "switch", "site": SITE},
    "devices.create_many": {"items": []},
    "devices.update": {"owner": "team:auth"},
    "devices.reconcile": {"strategy": "trust_detected"},
    "devices.decide": {"decisions": {"os_version": "twin"}},
    "sites.create": {"name": "auth-site"},
    "discovery.ingest": {"format": "napalm", "data": []},
    "topology.add_link": {"a": "core-01", "port_a": None, "b": "core-02"},
    "topology.add_links": {"links": []},
    "imports.resolve": {"resolution": "skip"},
    "keys.create": {"workspace": "ws-auth"},
}
CSV_UPLOAD = {"file": ("auth.csv", b"cidr\n172.20.0.0/16\n")}


@pytest.fixture(scope="module")
def objects(server: ServerProcess) -> dict[str, str]:
    """Objects of workspace ws-a that the matrix addresses by id."""
    headers = auth(server.keys["a"].secret)
    with httpx.Client(base_url=server.url, headers=headers) as http:
        block = http.post(
            "/subnets", json={"cidr": "172.20.0.0/16", "is_container": True}
        )
        assert block.status_code == 201, block.text
        address = http.post("/addresses", json={"address": "172.20.0.5"})
        assert address.status_code == 201, address.text
        command = http.post("/agents/command", json=SAMPLE_BODIES["agents.command"])
        assert command.status_code == 200, command.text
        sessions = http.get("/agents/sessions").json()["data"]
    objects = {
        "key": server.keys["revoked"].id,
        "subnet": block.json()["id"],
        "address": address.json()["id"],
        "session": sessions[0]["id"],
    }
    with omnitwin.Client(server.url, api_key=server.keys["a"].secret) as client:
        objects.update(sample_objects(client))
    return objects


def sample_objects(client: omnitwin.Client) -> dict[str, str]:
    """Load the sample network and start the jobs that the matrix reads."""
    network = generate_fabric(sites=1, spines=2, leaves=4, servers_per_leaf=1)
    load_sample_devices(client, network)
    for getters in sample_detected_state(network):
        client.discovery.ingest("napalm", getters)
    device = client.devices.get(f"leaf-01.{SITE}")
    event = client.drift.events(device=device.id).data[0]
    job = client.devices.reconcile(device.id, "interactive")
    assert client.jobs.wait(job.id, timeout=30).status == "awaiting_review"
    upload = client.imports.start("csv", b"cidr\n172.20.0.0/16\n", dry_run=True)
    assert client.imports.wait(upload.id, timeout=30).status == "awaiting_review"
    conflict = client.imports.conflicts(upload.id)[0]
    return {
        "device": device.id,
        "drift_event": event.id,
        "job": job.id,
        "import": upload.id,
        "conflict": conflict.id,
    }


def auth(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def concrete_path(route: Route, objects: dict[str, str]) -> str:
    by_kind = {"addresses": objects["address"], "agents": objects["session"]}
    by_kind.update(
        devices=objects["device"],
        drift=objects["drift_event"],
        imports=objects["import"],
        jobs=objects["job"],
        keys=objects["key"],
    )
    values = {
        "id": by_kind.get(route.operation.split(".")[0], objects["subnet"]),
        "subnet_id": objects["subnet"],
        "cidr": "172.20.0.0/16",
        "device": objects["device"],
        "job_id": objects["job"],
        "conflict_id": objects["conflict"],
        "source": objects["device"],
        "target": f"leaf-02.{SITE}",
    }
    path = route.path
    for param in route.path_params:
        path = path.replace("{" + param.name + "}", values[param.name])
    query = (
        "?prefix_length=28"
        if route.param("prefix_length") and route.method == "GET"
        else ""
    )
    return path + query


def send(
    http: httpx.Client, route: Route, objects: dict[str, str], secret: str | None
) -> httpx.Response:
    headers = auth(secret) if secret else {}
    path = concrete_path(route, objects)
    if route.content_type == "multipart/form-data":
        form = {"source": "csv", "dry_run": "true"}
        return http.post(path, data=form, files=CSV_UPLOAD, headers=headers)
    body = SAMPLE_BODIES.get(route.operation) if route.method != "GET" else None
    return http.request(route.method, path, json=body, headers=headers)


@pytest.fixture(scope="module")
def http(server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url) as client:
        yield client


# Workspace routes take workspace keys; the /keys routes take admin keys only.
WORKSPACE_ROUTES = routes_of()
ALL_ROUTES = [*WORKSPACE_ROUTES, *KEY_ROUTES]
WRITE_ROUTES = [r for r in ALL_ROUTES if r.write]
OBJECT_PARAMS = ("id", "subnet_id", "device", "job_id", "source", "target")
OBJECT_ROUTES = [
    r for r in WORKSPACE_ROUTES if any(p.name in OBJECT_PARAMS for p in r.path_params)
]


def route_id(route: Route) -> str:
    return f"{route.method} {route.path}"


@pytest.mark.parametrize("route", ALL_ROUTES, ids=route_id)
def test_no_key_is_401(
    http: httpx.Client, objects: dict[str, str], route: Route
) -> None:
    response = send(http, route, objects, None)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"


@pytest.mark.parametrize("route", ALL_ROUTES, ids=route_id)
def test_revoked_key_is_401(
    http: httpx.Client, server: ServerProcess, objects: dict[str, str], route: Route
) -> None:
    response = send(http, route, objects, server.keys["revoked"].secret)
    assert response.status_code == 401


def test_unknown_key_is_401(http: httpx.Client) -> None:
    response = http.get("/subnets", headers=auth("ot_live_not-a-real-key"))
    assert response.status_code == 401


@pytest.mark.parametrize("route", WRITE_ROUTES, ids=route_id)
def test_read_only_key_write_is_403(
    http: httpx.Client, server: ServerProcess, objects: dict[str, str], route: Route
) -> None:
    response = send(http, route, objects, server.keys["a_read_only"].secret)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden"


@pytest.mark.parametrize("route", OBJECT_ROUTES, ids=route_id)
def test_other_workspace_is_404(
    http: httpx.Client, server: ServerProcess, objects: dict[str, str], route: Route
) -> None:
    response = send(http, route, objects, server.keys["b"].secret)
    assert response.status_code == 404
    # Topology routes name the missing graph node: NodeNotFound is a NotFound.
    assert response.json()["error"]["code"] in ("not_found", "node_not_found")


@pytest.mark.parametrize(
    "route", [r for r in WORKSPACE_ROUTES if not r.write], ids=route_id
)
def test_read_only_key_reads(
    http: httpx.Client, server: ServerProcess, objects: dict[str, str], route: Route
) -> None:
    response = send(http, route, objects, server.keys["a_read_only"].secret)
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("route", KEY_ROUTES, ids=route_id)
@pytest.mark.parametrize("key_name", ["a", "a_read_only", "b"])
def test_workspace_key_on_key_route_is_403(
    http: httpx.Client,
    server: ServerProcess,
    objects: dict[str, str],
    route: Route,
    key_name: str,
) -> None:
    response = send(http, route, objects, server.keys[key_name].secret)
    assert response.status_code == 403
    error = response.json()["error"]
    assert error["code"] == "forbidden"
    assert "not an admin key" in error["message"]


@pytest.mark.parametrize("route", WORKSPACE_ROUTES, ids=route_id)
@pytest.mark.parametrize("key_name", ["admin", "admin_read_only"])
def test_admin_key_on_workspace_route_is_403(
    http: httpx.Client,
    server: ServerProcess,
    objects: dict[str, str],
    route: Route,
    key_name: str,
) -> None:
    response = send(http, route, objects, server.keys[key_name].secret)
    assert response.status_code == 403
    error = response.json()["error"]
    assert error["code"] == "forbidden"
    assert "is an admin key" in error["message"]


@pytest.mark.parametrize("route", [r for r in KEY_ROUTES if r.write], ids=route_id)
def test_read_only_admin_key_write_is_403(
    http: httpx.Client, server: ServerProcess, objects: dict[str, str], route: Route
) -> None:
    response = send(http, route, objects, server.keys["admin_read_only"].secret)
    assert response.status_code == 403
    assert "read-only" in response.json()["error"]["message"]


def test_read_only_admin_key_lists(http: httpx.Client, server: ServerProcess) -> None:
    response = http.get("/keys", headers=auth(server.keys["admin_read_only"].secret))
    assert response.status_code == 200, response.text
    listed = {key["id"] for key in response.json()["data"]}
    assert server.keys["a"].id in listed


def test_x_omnitwin_key_header(http: httpx.Client, server: ServerProcess) -> None:
    response = http.get("/subnets", headers={"X-OmniTwin-Key": server.keys["a"].secret})
    assert response.status_code == 200


def test_write_actor_is_key_id(
    http: httpx.Client, server: ServerProcess, objects: dict[str, str]
) -> None:
    key = server.keys["a"]
    response = http.get(f"/subnets/{objects['subnet']}/audit", headers=auth(key.secret))
    actors = {event["actor"] for event in response.json()["data"]}
    assert actors == {f"key:{key.id}"}


def test_key_never_logged(server: ServerProcess) -> None:
    log = server.log()
    for key in server.keys.values():
        assert key.secret not in log


def test_every_response_has_request_id(
    http: httpx.Client, server: ServerProcess
) -> None:
    for response in (
        http.get("/health"),
        http.get("/subnets"),
        http.get("/nowhere"),
        http.get("/subnets", headers=auth(server.keys["a"].secret)),
    ):
        assert response.headers["X-Request-Id"].startswith("req_")


def test_rate_limit_headers(http: httpx.Client, server: ServerProcess) -> None:
    response = http.get("/subnets", headers=auth(server.keys["b"].secret))
    assert response.headers["X-RateLimit-Limit"] == "1000"
    assert int(response.headers["X-RateLimit-Remaining"]) < 1000
    assert 1 <= int(response.headers["X-RateLimit-Reset"]) <= 60


def error_of(response: httpx.Response) -> dict[str, str]:
    error: dict[str, str] = response.json()["error"]
    assert error["request_id"] == response.headers["X-Request-Id"]
    return error


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ('{"cidr": "10.0.0.0/8",', None),
        ("[1, 2]", None),
        ('{"cidr": "10.0.0.0/8", "colour": "red"}', "colour"),
        ('{"cidr": 10}', "cidr"),
        ('{"cidr": "10.0.0.0/8", "vlan_id": "12"}', "vlan_id"),
        ('{"cidr": "10.0.0.0/8", "is_container": "yes"}', "is_container"),
        ('{"cidr": "10.0.0.0/8", "tags": {"a": 1}}', "tags"),
        ("{}", "cidr"),
    ],
)
def test_bad_body_is_400(
    http: httpx.Client, server: ServerProcess, body: str, field: str | None
) -> None:
    headers = {**auth(server.keys["b"].secret), "Content-Type": "application/json"}
    response = http.post("/subnets", content=body, headers=headers)
    assert response.status_code == 400
    error = error_of(response)
    if field is not None:
        assert field in error["message"]


def test_bad_query_is_400(http: httpx.Client, server: ServerProcess) -> None:
    headers = auth(server.keys["b"].secret)
    assert http.get("/subnets?page=x", headers=headers).status_code == 400
    unknown = http.get("/subnets?colour=red", headers=headers)
    assert unknown.status_code == 400
    assert "colour" in error_of(unknown)["message"]


def test_unknown_route_is_404(http: httpx.Client) -> None:
    response = http.get("/nowhere")
    assert response.status_code == 404
    assert error_of(response)["code"] == "not_found"


def test_wrong_method_is_405(http: httpx.Client) -> None:
    response = http.delete("/subnets")
    assert response.status_code == 405
    assert error_of(response)["code"] == "method_not_allowed"
    assert "GET" in response.headers["Allow"]


def test_openapi_lists_every_route(http: httpx.Client) -> None:
    document = http.get("/openapi.json").json()
    assert document["openapi"].startswith("3.")
    for route in ALL_ROUTES:
        operation = document["paths"][route.path][route.method.lower()]
        assert str(route.status) in operation["responses"]
    create = document["paths"]["/subnets"]["post"]
    schema = create["requestBody"]["content"]["application/json"]["schema"]
    assert schema["properties"]["vlan_id"]["type"] == "integer"
    assert "Subnet" in document["components"]["schemas"]


def test_request_logged_at_info(http: httpx.Client, server: ServerProcess) -> None:
    request_id = http.get("/health").headers["X-Request-Id"]
    # The access line is written after the response is sent, so wait for it.
    deadline = time.monotonic() + 10
    while True:
        logged = any(
            "GET /v1/health 200" in line and request_id in line
            for line in server.log().splitlines()
        )
        if logged or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert logged


def test_import_upload_is_202(http: httpx.Client, server: ServerProcess) -> None:
    headers = auth(server.keys["b"].secret)
    form = {"source": "csv", "dry_run": "true", "options": '{"on_error": "skip"}'}
    response = http.post("/import", data=form, files=CSV_UPLOAD, headers=headers)
    assert response.status_code == 202, response.text
    job = response.json()
    assert job["filename"] == "auth.csv"
    assert job["dry_run"] is True
    fetched = http.get(f"/import/{job['id']}", headers=headers)
    assert fetched.status_code == 200


@pytest.mark.parametrize(
    ("form", "field"),
    [
        ({"source": "csv", "options": "{not json"}, "options"),
        ({"source": "csv", "dry_run": "maybe"}, "dry_run"),
        ({"source": "spreadsheet"}, "source"),
        ({"source": "csv", "colour": "red"}, "colour"),
    ],
)
def test_import_bad_form_is_400(
    http: httpx.Client, server: ServerProcess, form: dict[str, str], field: str
) -> None:
    headers = auth(server.keys["b"].secret)
    response = http.post("/import", data=form, files=CSV_UPLOAD, headers=headers)
    assert response.status_code == 400
    assert field in error_of(response)["message"]


def test_import_without_file_is_400(http: httpx.Client, server: ServerProcess) -> None:
    headers = auth(server.keys["b"].secret)
    as_json = http.post("/import", json={"source": "csv"}, headers=headers)
    assert as_json.status_code == 400
    assert "multipart/form-data" in error_of(as_json)["message"]
    no_file = http.post(
        "/import", data={"source": "csv"}, files={"x": ("a", b"")}, headers=headers
    )
    assert no_file.status_code == 400


def test_device_create_201_reconcile_202(
    http: httpx.Client, server: ServerProcess
) -> None:
    headers = auth(server.keys["b"].secret)
    body = {"hostname": "edge-9", "role": "router", "site": "b-site"}
    created = http.post("/devices", json=body, headers=headers)
    assert created.status_code == 201, created.text
    device_id = created.json()["id"]
    job = http.post(
        f"/devices/{device_id}/reconcile",
        json={"strategy": "trust_detected"},
        headers=headers,
    )
    assert job.status_code == 202, job.text
    assert job.json()["kind"] == "reconcile"
    assert http.get(f"/jobs/{job.json()['id']}", headers=headers).status_code == 200


def test_list_query_repeats(
    http: httpx.Client, server: ServerProcess, objects: dict[str, str]
) -> None:
    headers = auth(server.keys["a"].secret)
    path = f"/topology/path/leaf-01.{SITE}/leaf-02.{SITE}"
    both = http.get(f"{path}?kinds=intended&kinds=detected", headers=headers)
    assert both.status_code == 200, both.text
    unknown = http.get(f"{path}?kinds=wireless", headers=headers)
    assert unknown.status_code == 400
    assert "wireless" in error_of(unknown)["message"]
    twice = http.get("/topology/graph?depth=1&depth=2", headers=headers)
    assert twice.status_code == 400
    assert "depth" in error_of(twice)["message"]
