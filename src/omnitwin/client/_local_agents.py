"""In-process handlers of the ``agents.*`` client operations.

``agents.command`` and ``agents.events`` return the runtime's async
generator of event envelopes; the server sends it as SSE and the clients
iterate it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from omnitwin.engine.context import Context
from omnitwin.engine.engine import Engine
from omnitwin.errors import ValidationError

__all__ = ["AGENT_OPERATIONS"]

_Handler = Callable[[Engine, Context, dict[str, Any]], Any]


def _command(engine: Engine, ctx: Context, p: dict[str, Any]) -> Any:
    command: str | dict[str, Any] | None = p.get("command")
    if command is not None and p.get("tool") is not None:
        message = "send either command text or tool and args, not both"
        raise ValidationError(message, details={"field": "tool"})
    if command is None and p.get("tool") is not None:
        command = {"tool": p["tool"], "args": p.get("args") or {}}
    if command is None:
        message = "missing command: send command text, or tool and args"
        raise ValidationError(message, details={"field": "command"})
    return engine.agents.command(
        ctx, command, session_id=p.get("session_id"), model=p.get("model")
    )


AGENT_OPERATIONS: dict[str, _Handler] = {
    "agents.command": _command,
    "agents.sessions": lambda e, c, p: e.agents.sessions(c, **p),
    "agents.session": lambda e, c, p: e.agents.session(c, p["id"]),
    "agents.events": lambda e, c, p: e.agents.events(
        c, p["id"], after_seq=p.get("after_seq", 0)
    ),
}
