"""Refused commands: the error class and the example commands it suggests."""

from __future__ import annotations

import difflib
from typing import Any

from omnitwin.errors import ValidationError

__all__ = ["EXAMPLES", "EXTRA_EXAMPLES", "CommandNotUnderstood", "closest_examples"]

#: One example per tool; an error suggests the closest of these.
EXAMPLES = {
    "ipam_search": "Find available /24 blocks in 10.128.0.0/16",
    "ipam_allocate": "Allocate a /24 for the payments service in us-east",
    "subnet_get": "Show subnet 10.1.16.0/24",
    "subnet_update": "Set the owner of 10.1.16.0/24 to team:payments",
    "utilization_report": "Show utilization of 10.1.0.0/16",
    "device_get": "Show device spine-01.nyc1",
    "drift_show": "Show drift on spine-01.nyc1",
    "reconcile": "Reconcile leaf-01.nyc1 trusting the detected state",
    "topology_path": "Path from leaf-01.nyc1 to leaf-02.nyc1",
    "topology_subgraph": "Show the topology around spine-01.nyc1 within 2 hops",
    "blast_radius": "What breaks if leaf-03 fails?",
    "audit_show": "Who changed 10.128.16.0/20?",
    "import_status": "Show the status of import imp_01J9...",
}
EXTRA_EXAMPLES = (
    "Which devices at nyc1 have drift?",
    "Find free /64 blocks in 2001:db8::/32",
    "Blast radius of core-01",
)


class CommandNotUnderstood(ValidationError):
    """A command that maps to no tool call, or to more than one reading.

    ``reason`` is ``unknown_command``, ``ambiguous`` or ``missing_argument``;
    ``suggestions`` lists commands that would work.
    """

    def __init__(
        self, message: str, *, reason: str, suggestions: list[str] | None = None
    ) -> None:
        self.reason = reason
        self.suggestions = list(suggestions or [])
        details: dict[str, Any] = {"reason": reason}
        if self.suggestions:
            details["suggestions"] = self.suggestions
        super().__init__(message, details=details)


def closest_examples(text: str, count: int = 3) -> list[str]:
    """Return the example commands most similar to ``text``.

    Examples
    --------
    >>> closest_examples("blast raduis of core-01", 1)
    ['Blast radius of core-01']
    """
    examples = [*EXAMPLES.values(), *EXTRA_EXAMPLES]
    lowered = text.lower()
    ranked = sorted(
        examples,
        key=lambda e: difflib.SequenceMatcher(None, lowered, e.lower()).ratio(),
        reverse=True,
    )
    return ranked[:count]
