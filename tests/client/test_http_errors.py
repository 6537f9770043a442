"""Errors of the HTTP client when no server accepts the connection."""

from __future__ import annotations

import pytest

import omnitwin
from omnitwin.client._http import HttpBackend
from omnitwin.errors import ServerError
from serverproc import free_port


def test_connection_refused_names_url() -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    client = omnitwin.Client(backend=HttpBackend(url, max_retries=0))
    with pytest.raises(ServerError) as raised:
        client.subnets.list()
    message = str(raised.value)
    assert message.startswith(f"GET {url}/subnets failed: ")
    assert "Connection refused" in message
    assert message.endswith(f"check that an omnitwin server runs at {url}")
