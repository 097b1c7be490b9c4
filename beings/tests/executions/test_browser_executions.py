"""Running a being from its page in a real browser, and watching the run, and its output, go on without reloading.

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
SOURCE = """\
def run(n=1):
    total = 0
    for i in range(n):
        total += i
    print("counted", n)
    return {"total": total}
"""
# Prints, waits a few seconds (being code has no time.sleep: it watches the clock), then prints again.
TALKER = """\
from datetime import datetime, timedelta

def run(greeting="hello", seconds=1):
    print(greeting, "from the start")
    end = datetime.now() + timedelta(seconds=seconds)
    while datetime.now() < end:
        pass
    print("done after", seconds, "s")
    return {"waited": seconds}
"""
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
def talker(admin_user: User) -> BaseBeing:
    return services.being_create(
        data={"genesis": {"name": "talker", "type": "function", "source": TALKER}}, actor=admin_user
    )


@pytest.fixture
def page(
    live_server: LiveServer, celery_worker: Any, admin_user: User, counter: BaseBeing, talker: BaseBeing
) -> Iterator[Page]:
    """A Chromium page on the live site, once the data exists and a worker consumes the queues."""
    with chromium_page(live_server.url) as page:
        yield page


def log_in(page: Page) -> None:
    page.get_by_label("Username").fill(USERNAME)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()


def test_run_a_being_from_its_page_and_watch_the_run_finish_live(page: Page, counter: BaseBeing) -> None:
    """Submit the run form; the run page starts unfinished and turns succeeded, showing the result, by itself."""
    with screenshot_on_failure(page):
        page.goto(f"/beings/{counter.soul}/")
        log_in(page)
        expect(page.get_by_role("heading", name="counter")).to_be_visible()

        page.get_by_text("Advanced: JSON").click()
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


def test_run_through_the_signature_form_and_see_its_output_before_it_ends(page: Page, talker: BaseBeing) -> None:
    """The form has a field per parameter, prefilled with its default; what the run prints first shows on its page
    while it is still running, the rest when it ends; Run again brings the arguments back into the form."""
    with screenshot_on_failure(page):
        page.goto(f"/beings/{talker.soul}/")
        log_in(page)
        expect(page.get_by_role("heading", name="talker")).to_be_visible()
        greeting, seconds = page.locator("#run-param-greeting"), page.locator("#run-param-seconds")
        expect(greeting).to_have_value("hello")
        expect(seconds).to_have_value("1")
        expect(page.get_by_label("Keyword arguments")).to_be_hidden()  # the JSON box is the advanced mode

        greeting.fill("bonjour")
        seconds.fill("4")
        page.get_by_role("button", name="Run", exact=True).click()

        expect(page.get_by_role("heading", name="Run of talker")).to_be_visible()
        # One rendering of the panel shows both: the first line printed, and the run not finished.
        page.wait_for_function(
            """() => {
                const output = document.querySelector("#execution-output");
                const status = document.querySelector("#execution-status");
                return output && output.textContent.includes("bonjour from the start")
                    && !output.textContent.includes("done after") && status.textContent.trim() === "running";
            }""",
            timeout=RUN_TIMEOUT_MS,
        )
        expect(page.locator("#execution-status")).to_have_text("succeeded", timeout=RUN_TIMEOUT_MS)
        expect(page.locator("#execution-output")).to_contain_text("done after 4 s")
        expect(page.locator("#execution-result")).to_contain_text('"waited": 4')
        expect(page.locator("#execution-duration")).to_contain_text(" s")

        page.get_by_role("link", name="Run again").click()
        expect(page.locator("#run-param-greeting")).to_have_value("bonjour")
        expect(page.locator("#run-param-seconds")).to_have_value("4")
