"""Per-workspace request budgets in fixed windows."""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass

__all__ = ["RateDecision", "RateLimiter"]


@dataclass(frozen=True, slots=True)
class RateDecision:
    """The outcome of one request against its workspace's budget.

    ``reset`` is the number of seconds until the window ends (at least 1).
    """

    allowed: bool
    limit: int
    remaining: int
    reset: int

    def headers(self) -> dict[str, str]:
        """Return the ``X-RateLimit-*`` headers, plus ``Retry-After`` on a 429."""
        headers = {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.reset),
        }
        if not self.allowed:
            headers["Retry-After"] = str(self.reset)
        return headers


class RateLimiter:
    """Allow ``limit`` requests per workspace in each window of ``window`` seconds.

    Windows are fixed and start at the workspace's first request, so a burst
    at the end of one window and the start of the next can reach twice the
    limit in ``window`` seconds.

    Examples
    --------
    >>> limiter = RateLimiter(limit=1, window=60)
    >>> limiter.check("ws").allowed, limiter.check("ws").allowed
    (True, False)
    """

    def __init__(self, limit: int = 1000, window: float = 60.0) -> None:
        if limit < 1 or window <= 0:
            raise ValueError(f"invalid rate limit {limit} per {window} s")
        self.limit = limit
        self.window = window
        self._windows: dict[str, tuple[float, int]] = {}
        self._lock = threading.Lock()

    def check(self, workspace: str) -> RateDecision:
        """Count one request of ``workspace`` and decide whether it may run."""
        now = time.monotonic()
        with self._lock:
            start, count = self._windows.get(workspace, (now, 0))
            if now - start >= self.window:
                start, count = now, 0
            allowed = count < self.limit
            if allowed:
                count += 1
            self._windows[workspace] = (start, count)
        reset = max(1, math.ceil(start + self.window - now))
        return RateDecision(allowed, self.limit, self.limit - count, reset)
