"""Running a being from its page in a real browser, and watching the run finish without reloading.

The site runs on pytest-django's ``live_server`` and Chromium is
driven through Playwright's sync API, whose event loop forbids ORM calls in this thread, so the being
is made in the fixtures before the browser starts and the run is followed through the pages only.
A real Celery worker (the ``celery_worker`` fixture) runs it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import Page, expect
from pytest_django.live_server_helper import LiveServer

from beings import services
from beings.models import BaseBeing
from luxsite.tests.browser import chromium_page, screenshot_on_failure

USERNAME, PASSWORD = "runner-admin", "runner-password-1"
# Slow enough that the page shows the run unfinished first, well within the sandbox's CPU and wall limits.
SOURCE = '''\
def run(n=1):
    total = 0
    for i in range(n):
        total += i
    print("counted", n)
    return {"total": total}
'''
N = 8_000_000
TOTAL = N * (N - 1) // 2
RUN_TIMEOUT_MS = 60_000


@pytest.fixture
def admin_user(transactional_db: None, django_user_model: type[User]) -> User:
    return django_user_model.objects.create_superuser(USERNAME, password=PASSWORD)


@pytest.fixture
def counter(admin_user: User) -> BaseBeing:
    return services.being_create(
        data={"genesis": {"name": "counter", "type": "function", "source": SOURCE}}, actor=admin_user
    )


@pytest.fixture
def page(live_server: LiveServer, celery_worker: Any, admin_user: User, counter: BaseBeing) -> Iterator[Page]:
    """A Chromium page on the live site, once the data exists and a worker consumes the queues."""
    with chromium_page(live_server.url) as page:
        yield page


def test_run_a_being_from_its_page_and_watch_the_run_finish_live(page: Page, counter: BaseBeing) -> None:
    """Submit the run form; the run page starts unfinished and turns succeeded, showing the result, by itself."""
    with screenshot_on_failure(page):
        page.goto(f"/beings/{counter.soul}/")
        page.get_by_label("Username").fill(USERNAME)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        expect(page.get_by_role("heading", name="counter")).to_be_visible()

        page.get_by_label("Keyword arguments").fill(f'{{"n": {N}}}')
        page.get_by_role("button", name="Run", exact=True).click()

        expect(page.get_by_role("heading", name="Run of counter")).to_be_visible()
        status = page.locator("#execution-status")
        # The page as the redirect rendered it: the worker is still on the run (it counts for a while).
        assert status.inner_text() in ("queued", "running")
        expect(page.get_by_role("button", name="Cancel")).to_be_visible()
        # A reload would forget this mark: it proves the page is updated in place.
        page.evaluate("window.luxosMark = 'same page'")

        expect(status).to_have_text("succeeded", timeout=RUN_TIMEOUT_MS)
        expect(page.locator("#execution-result")).to_contain_text(f'"total": {TOTAL}')
        expect(page.locator("#execution-output")).to_contain_text(f"counted {N}")
        expect(page.get_by_role("button", name="Cancel")).to_have_count(0)
        assert page.evaluate("window.luxosMark") == "same page"

        page.get_by_role("link", name="All executions").click()
        row = page.locator("#execution-rows tbody tr").first
        expect(row.locator("td.status")).to_have_text("succeeded")
        expect(row.locator("td.alias")).to_contain_text("counter")
