"""The omnitwin REST and SSE server (``omnitwin serve``).

Needs the ``server`` extra: ``pip install 'omnitwin[server]'``. The package
itself imports no server dependency, so ``omnitwin`` works without it.
"""

from omnitwin.server._cli import add_server_commands

__all__ = ["add_server_commands"]
