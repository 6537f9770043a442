"""The caller context of an engine call: actor, workspace and intent."""

from __future__ import annotations

from dataclasses import dataclass, replace

__all__ = ["DEFAULT_ACTOR", "DEFAULT_WORKSPACE", "Context"]

DEFAULT_WORKSPACE = "default"
DEFAULT_ACTOR = "user:local"


@dataclass(frozen=True, slots=True)
class Context:
    """The caller of an engine operation.

    ``actor`` is recorded on every audit event, e.g. ``"user:alice@example.com"``,
    ``"key:ot_live_ab12"`` or ``"agent:sess_01J..."``. ``intent`` is a free-text
    reason stored with the event, such as the agent command that caused it.
    """

    workspace: str = DEFAULT_WORKSPACE
    actor: str = DEFAULT_ACTOR
    intent: str | None = None

    def with_intent(self, intent: str | None) -> Context:
        """Return a copy of this context with another intent."""
        return replace(self, intent=intent)
