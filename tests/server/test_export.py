"""GET /v1/subnets/export on a live server, over raw HTTP, and its parts."""

from __future__ import annotations

import ipaddress
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pandas as pd
import pyarrow as pa
import pytest

from omnitwin.client._export import ARROW_STREAM, NDJSON, ExportDecoder
from omnitwin.client._http import HttpBackend
from omnitwin.engine.context import Context
from omnitwin.engine.engine import Engine
from omnitwin.engine.subnet_export import EXPORT_COLUMNS, SubnetExport
from omnitwin.errors import NotAcceptable, ServerError
from omnitwin.notebook.loaders import SCHEMAS, subnets_frame
from omnitwin.server._export import choose_media_type
from serverproc import Key, ServerProcess, make_keys, start_server

X_SUBNETS = 40
Y_SUBNETS = 7


def auth(key: Key) -> dict[str, str]:
    return {"Authorization": f"Bearer {key.secret}"}


def create_subnets(server_url: str, key: Key, cidrs: list[str]) -> list[str]:
    ids = []
    with httpx.Client(base_url=server_url, headers=auth(key)) as http:
        for cidr in cidrs:
            response = http.post("/subnets", json={"cidr": cidr, "status": "reserved"})
            assert response.status_code == 201, response.text
            ids.append(response.json()["id"])
    return ids


@pytest.fixture(scope="module")
def export_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server with workspaces ws-x (40 subnets) and ws-y (7 subnets).

    Both workspaces hold subnets of the same CIDRs, so that a leak between
    them shows up as an id of the other workspace.
    """
    tmp = tmp_path_factory.mktemp("export")
    db = tmp / "export.duckdb"
    keys = make_keys(
        db,
        {"x": ("ws-x", False), "x_read_only": ("ws-x", True), "y": ("ws-y", False)},
    )
    proc = start_server(tmp, db=db)
    proc.keys = keys
    x_cidrs = [f"10.{index}.0.0/16" for index in range(X_SUBNETS)]
    create_subnets(proc.url, keys["x"], x_cidrs)
    create_subnets(proc.url, keys["y"], x_cidrs[:Y_SUBNETS])
    yield proc
    proc.stop()


def get_export(
    proc: ServerProcess, key: Key | None, accept: str | None = None, **query: str
) -> httpx.Response:
    headers = auth(key) if key else {}
    if accept is not None:
        headers["Accept"] = accept
    return httpx.get(f"{proc.url}/subnets/export", params=query, headers=headers)


def ndjson_rows(response: httpx.Response) -> list[dict[str, object]]:
    assert response.text.endswith("\n")
    return [json.loads(line) for line in response.text.splitlines()]


def test_ndjson_has_one_line_per_subnet(export_server: ServerProcess) -> None:
    response = get_export(export_server, export_server.keys["x"], NDJSON)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == NDJSON
    lines = response.text.splitlines()
    assert len(lines) == X_SUBNETS
    rows = [json.loads(line) for line in lines]
    assert all(tuple(row) == EXPORT_COLUMNS for row in rows)
    assert rows[0]["cidr"] == "10.0.0.0/16"
    assert rows[0]["tags"] == {}


def test_ndjson_is_default(export_server: ServerProcess) -> None:
    for accept in (None, "*/*", "application/*", "text/html, */*;q=0.1"):
        response = get_export(export_server, export_server.keys["x"], accept)
        assert response.status_code == 200, accept
        assert response.headers["content-type"] == NDJSON, accept
        assert len(response.text.splitlines()) == X_SUBNETS, accept


def test_ndjson_filters(export_server: ServerProcess) -> None:
    key = export_server.keys["x"]
    within = get_export(export_server, key, NDJSON, within="10.0.0.0/12")
    assert [row["cidr"] for row in ndjson_rows(within)] == [
        f"10.{index}.0.0/16" for index in range(16)
    ]
    reserved = get_export(export_server, key, NDJSON, status="reserved")
    assert len(ndjson_rows(reserved)) == X_SUBNETS
    empty = get_export(export_server, key, NDJSON, vrf="red")
    assert empty.status_code == 200
    assert empty.text == ""


def test_arrow_stream_rows(export_server: ServerProcess) -> None:
    response = get_export(export_server, export_server.keys["x"], ARROW_STREAM)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == ARROW_STREAM
    assert response.headers["vary"] == "Accept"
    table = pa.ipc.open_stream(response.content).read_all()
    assert table.num_rows == X_SUBNETS
    assert tuple(table.column_names) == EXPORT_COLUMNS
    assert table.column("cidr")[0].as_py() == "10.0.0.0/16"


def test_arrow_stream_empty(export_server: ServerProcess) -> None:
    response = get_export(
        export_server, export_server.keys["x"], ARROW_STREAM, vrf="red"
    )
    assert response.status_code == 200
    table = pa.ipc.open_stream(response.content).read_all()
    assert table.num_rows == 0
    assert tuple(table.column_names) == EXPORT_COLUMNS


def decoded_frame(response: httpx.Response) -> pd.DataFrame:
    decoder = ExportDecoder(response.headers["content-type"])
    for chunk in response.iter_bytes(1000):
        decoder.feed(chunk)
    return subnets_frame(decoder.frame())


@pytest.mark.parametrize("vrf", [None, "red"], ids=["all rows", "no rows"])
def test_arrow_and_ndjson_decode_alike(
    export_server: ServerProcess, vrf: str | None
) -> None:
    query = {"vrf": vrf} if vrf else {}
    key = export_server.keys["x"]
    arrow = decoded_frame(get_export(export_server, key, ARROW_STREAM, **query))
    ndjson = decoded_frame(get_export(export_server, key, NDJSON, **query))
    assert len(arrow) == (0 if vrf else X_SUBNETS)
    dtypes = {column: str(arrow[column].dtype) for column in arrow.columns}
    assert dtypes == SCHEMAS["Subnet"]
    pd.testing.assert_frame_equal(arrow, ndjson)


@pytest.mark.parametrize(
    "accept",
    ["text/csv", "application/json", f"{NDJSON};q=0, {ARROW_STREAM};q=0", "image/*"],
)
def test_bad_accept_is_406(export_server: ServerProcess, accept: str) -> None:
    response = get_export(export_server, export_server.keys["x"], accept)
    assert response.status_code == 406
    error = response.json()["error"]
    assert error["code"] == "not_acceptable"
    assert NDJSON in error["message"]
    assert error["request_id"] == response.headers["x-request-id"]


def test_no_key_is_401(export_server: ServerProcess) -> None:
    response = get_export(export_server, None, NDJSON)
    assert response.status_code == 401
    error = response.json()["error"]
    assert error["code"] == "unauthorized"
    assert error["request_id"]


def test_read_only_key_exports(export_server: ServerProcess) -> None:
    response = get_export(export_server, export_server.keys["x_read_only"], NDJSON)
    assert response.status_code == 200
    assert len(response.text.splitlines()) == X_SUBNETS
    assert int(response.headers["x-ratelimit-limit"]) > 0


def test_bad_filter_is_400(export_server: ServerProcess) -> None:
    key = export_server.keys["x"]
    response = get_export(export_server, key, NDJSON, within="10.0.0.1/8")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_cidr"
    response = get_export(export_server, key, NDJSON, status="retired")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "validation_error"


def test_other_workspace_never_appears(export_server: ServerProcess) -> None:
    keys = export_server.keys
    exported = {}
    for name in ("x", "y"):
        with httpx.Client(base_url=export_server.url, headers=auth(keys[name])) as http:
            listed = http.get("/subnets", params={"per_page": 200}).json()["data"]
        own_ids = {subnet["id"] for subnet in listed}
        for accept in (NDJSON, ARROW_STREAM):
            response = get_export(export_server, keys[name], accept)
            if accept == NDJSON:
                ids = {row["id"] for row in ndjson_rows(response)}
            else:
                table = pa.ipc.open_stream(response.content).read_all()
                ids = set(table.column("id").to_pylist())
            assert ids == own_ids, (name, accept)
        exported[name] = own_ids
    assert len(exported["x"]) == X_SUBNETS
    assert len(exported["y"]) == Y_SUBNETS
    assert not exported["x"] & exported["y"]


def test_openapi_lists_export_formats(export_server: ServerProcess) -> None:
    document = httpx.get(f"{export_server.url}/openapi.json").json()
    responses = document["paths"]["/subnets/export"]["get"]["responses"]
    assert set(responses["200"]["content"]) == {NDJSON, ARROW_STREAM}
    assert "406" in responses


# --- the parts, without a server ------------------------------------------------


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (None, NDJSON),
        ("", NDJSON),
        ("*/*", NDJSON),
        (ARROW_STREAM, ARROW_STREAM),
        (f"{ARROW_STREAM}, {NDJSON};q=0.5", ARROW_STREAM),
        (f"{NDJSON};q=0.4, {ARROW_STREAM};q=0.9", ARROW_STREAM),
        (f"{ARROW_STREAM};q=0.1, */*", NDJSON),
        (f"*/*;q=0.5, {NDJSON};q=0", ARROW_STREAM),
        ("APPLICATION/X-NDJSON", NDJSON),
    ],
)
def test_choose_media_type(accept: str | None, expected: str) -> None:
    assert choose_media_type(accept, (NDJSON, ARROW_STREAM)) == expected


def test_choose_media_type_rejects() -> None:
    with pytest.raises(NotAcceptable):
        choose_media_type(ARROW_STREAM, (NDJSON,))
    with pytest.raises(NotAcceptable):
        choose_media_type(f"{NDJSON};q=abc", (NDJSON,))


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = Engine(tmp_path / "parts.duckdb")
    ctx = Context(workspace="parts")
    for index in range(25):
        engine.subnets.create(ctx, f"10.{index}.0.0/16")
    yield engine
    engine.close()


def test_json_lines_batches(engine: Engine) -> None:
    export = SubnetExport(engine, Context(workspace="parts"))
    try:
        chunks = list(export.json_lines(10))
    finally:
        export.close()
    assert [chunk.count(b"\n") for chunk in chunks] == [10, 10, 5]


def test_export_reads_snapshot_without_lock(engine: Engine) -> None:
    ctx = Context(workspace="parts")
    export = SubnetExport(engine, ctx)
    try:
        chunks = export.json_lines(10)
        first = next(chunks)
        # Another thread takes the store lock and writes between two batches.
        result: list[bool] = []

        def write() -> None:
            got_lock = engine.store.lock.acquire(timeout=5)
            result.append(got_lock)
            if got_lock:
                engine.store.lock.release()
                engine.subnets.create(ctx, "10.200.0.0/16")

        writer = threading.Thread(target=write)
        writer.start()
        writer.join(timeout=10)
        rest = list(chunks)
    finally:
        export.close()
    assert result == [True]
    lines = (first + b"".join(rest)).splitlines()
    cidrs = [json.loads(line)["cidr"] for line in lines]
    assert len(cidrs) == 25
    assert "10.200.0.0/16" not in cidrs
    assert cidrs == sorted(cidrs, key=lambda c: ipaddress.ip_network(c))


class BrokenBody(httpx.SyncByteStream):
    """A response body that breaks off after one line, as a dropped connection."""

    def __iter__(self) -> Iterator[bytes]:
        yield b'{"id": "sn_1", "cidr": "10.0.0.0/24"}\n'
        raise httpx.RemoteProtocolError("peer closed connection mid-body")


@pytest.mark.parametrize(
    "body",
    [BrokenBody(), httpx.ByteStream(b'{"id": "sn_1", "cidr": "10.0')],
    ids=["dropped connection", "partial line"],
)
def test_broken_export_body_raises(body: httpx.SyncByteStream) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": NDJSON}, stream=body)

    # The mock transport responds in process, so nothing listens on the URL.
    backend = HttpBackend("http://127.0.0.1:9/v1")
    backend._sync = httpx.Client(
        base_url=backend.base_url, transport=httpx.MockTransport(handler)
    )
    with pytest.raises(ServerError, match="the export failed to load"):
        backend.call("subnets.export", {})
    backend.close()
