"""The omnitwin client: one API over the embedded engine or a remote server."""

from omnitwin.client._client import AsyncClient, Client, connect

__all__ = ["AsyncClient", "Client", "connect"]
