"""Headless Chromium helpers shared by the browser tests and the widget bench.

The browser is Debian's ``/usr/bin/chromium`` driven by Playwright; every
request that does not go to 127.0.0.1 (or a ``file:``, ``data:`` or ``blob:``
URL) is
aborted and recorded, so a test can also assert that a page made none.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

# Counts the painted (non-transparent) pixels of every cytoscape node layer.
PAINTED_PIXELS_JS = """
() => Array.from(document.querySelectorAll('canvas[data-id="layer2-node"]')).map(c => {
  const ctx = c.getContext('2d');
  if (!c.width || !c.height) { return 0; }
  const data = ctx.getImageData(0, 0, c.width, c.height).data;
  let painted = 0;
  for (let i = 3; i < data.length; i += 4) { if (data[i] > 0) { painted++; } }
  return painted;
})
"""


def chromium_available() -> bool:
    """Return whether Debian's Chromium and the Playwright package are installed."""
    try:
        import playwright  # noqa: F401
    except ImportError:
        return False
    return shutil.which(CHROMIUM) is not None


@dataclass
class BlockedRequests:
    """URLs the browser tried to load and the route handler aborted."""

    urls: list[str] = field(default_factory=list)


def _allowed(url: str) -> bool:
    parts = urlsplit(url)
    if parts.scheme in ("data", "blob", "about", "file"):
        return True
    return parts.hostname in ("127.0.0.1", "::1")


@contextlib.contextmanager
def chromium_page(
    *, viewport: tuple[int, int] = (1280, 1000)
) -> Iterator[tuple[Any, BlockedRequests]]:
    """Yield a Playwright page whose requests may reach only 127.0.0.1."""
    from playwright.sync_api import sync_playwright

    blocked = BlockedRequests()

    def route(request_route: Any) -> None:
        url = request_route.request.url
        if _allowed(url):
            request_route.continue_()
        else:
            blocked.urls.append(url)
            request_route.abort()

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS
        )
        try:
            context = browser.new_context(
                viewport={"width": viewport[0], "height": viewport[1]}
            )
            context.route("**/*", route)
            page = context.new_page()
            yield page, blocked
        finally:
            browser.close()


def painted_pixels(page: Any) -> list[int]:
    """Return the painted pixel count of each cytoscape node layer on the page."""
    counts: list[int] = page.evaluate(PAINTED_PIXELS_JS)
    return counts
