"""The client over the embedded engine: targets, types, errors and event loops."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

import omnitwin
from omnitwin.errors import OmniTwinError, ValidationError, error_class_for_code


def test_connect_defaults_to_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OMNITWIN_BASE_URL", raising=False)
    client = omnitwin.connect()
    assert client.backend.engine.path == ":memory:"  # type: ignore[attr-defined]


@pytest.mark.parametrize("prefix", ["local:", ""])
def test_connect_local_file(tmp_path: Path, prefix: str) -> None:
    path = tmp_path / "a.duckdb"
    with omnitwin.connect(f"{prefix}{path}") as client:
        client.subnets.create("10.0.0.0/24")
        client.backend.engine.close()  # type: ignore[attr-defined]
    assert path.exists()


def test_empty_local_path_rejected() -> None:
    with pytest.raises(ValidationError, match="empty database path"):
        omnitwin.connect("local:")


def test_sync_client_inside_running_loop(tmp_path: Path) -> None:
    async def notebook_cell() -> str:
        # Jupyter runs cells inside an event loop; the sync client must work there.
        client = omnitwin.connect(f"local:{tmp_path / 'nb.duckdb'}")
        subnet = client.subnets.create("10.0.0.0/24")
        result = client.subnets.get(subnet.id).subnet.cidr
        client.backend.engine.close()  # type: ignore[attr-defined]
        return result

    assert asyncio.run(notebook_cell()) == "10.0.0.0/24"


def test_async_client_matches_sync(tmp_path: Path) -> None:
    async def main() -> tuple[omnitwin.Subnet, omnitwin.Page[omnitwin.Subnet]]:
        async with omnitwin.AsyncClient(f"local:{tmp_path / 'a.duckdb'}") as client:
            block = await client.subnets.create("10.0.0.0/16", is_container=True)
            child = await client.subnets.allocate(24, subnet_id=block.id)
            listing = await client.subnets.list(within="10.0.0.0/16")
            found = [s.cidr async for s in client.subnets.iter(per_page=1)]
            assert found == ["10.0.0.0/16", "10.0.0.0/24"]
            client.backend.engine.close()  # type: ignore[attr-defined]
            return child, listing

    child, listing = asyncio.run(main())
    assert isinstance(child, omnitwin.Subnet)
    assert child.cidr == "10.0.0.0/24"
    assert listing.total == 2


def test_async_errors_are_typed() -> None:
    async def main() -> None:
        async with omnitwin.AsyncClient() as client:
            await client.subnets.create("10.0.0.1/24")

    with pytest.raises(omnitwin.InvalidCIDR, match="did you mean 10.0.0.0/24"):
        asyncio.run(main())


@pytest.mark.parametrize(
    ("code", "cls"),
    [
        ("invalid_cidr", omnitwin.InvalidCIDR),
        ("cidr_overlap", omnitwin.CIDROverlap),
        ("duplicate", omnitwin.Duplicate),
        ("not_found", omnitwin.NotFound),
        ("invalid_transition", omnitwin.InvalidTransition),
        ("rate_limited", omnitwin.RateLimited),
        ("something_new", OmniTwinError),
    ],
)
def test_error_codes_map_to_classes(code: str, cls: type[OmniTwinError]) -> None:
    assert error_class_for_code(code) is cls


def test_error_body_shape() -> None:
    error = omnitwin.InvalidCIDR("bad", details={"value": "x"}, request_id="req_1")
    assert error.to_dict() == {
        "code": "invalid_cidr",
        "message": "bad",
        "details": {"value": "x"},
        "request_id": "req_1",
    }
    assert isinstance(error, ValueError)
    assert isinstance(omnitwin.NotFound("x"), LookupError)


def test_records_round_trip_through_json(client: omnitwin.Client) -> None:
    block = client.subnets.create("10.0.0.0/16", is_container=True, tags={"a": "b"})
    client.subnets.allocate(24, subnet_id=block.id)
    detail = client.subnets.get(block.id)
    again = omnitwin.SubnetDetail.from_dict(detail.to_dict())
    assert again == detail
    page = client.subnets.list()
    assert omnitwin.Page.from_dict(page.to_dict(), omnitwin.Subnet) == page
    assert omnitwin.Subnet.from_dict({**block.to_dict(), "new_field": 1}) == block
