"""Headless Chromium for the browser tests: Debian's ``chromium`` driven through Playwright's sync API.

That API runs an event loop in the test's thread, and Django refuses ORM calls while one runs,
so a test makes its data in fixtures before it opens a page, and checks through the pages only.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, sync_playwright

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS = 15_000


@contextlib.contextmanager
def chromium_page(base_url: str) -> Iterator[Page]:
    """A page of a fresh headless Chromium whose relative URLs go to ``base_url``; the browser closes after."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run bin/ensure-system-packages to install Chromium for the browser tests")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(base_url=base_url, viewport={"width": 1280, "height": 900})
            page = context.new_page()
            page.set_default_timeout(TIMEOUT_MS)
            yield page
        finally:
            browser.close()


@contextlib.contextmanager
def screenshot_on_failure(page: Page) -> Iterator[None]:
    """Keep a screenshot of the page when the block fails, and say where it is."""
    try:
        yield
    except BaseException:
        path = Path(tempfile.mkdtemp(prefix="luxos-browser-")) / "failure.png"
        with contextlib.suppress(Exception):
            page.screenshot(path=str(path), full_page=True)
            print(f"screenshot of the failing page: {path}")
        raise
