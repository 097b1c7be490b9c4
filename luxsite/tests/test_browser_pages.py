"""The site's pages in a real browser: an ordinary user's day, and pages that fit the window they are read in.

The site runs on pytest-django's ``live_server`` and Chromium is driven through Playwright's sync API,
whose event loop forbids ORM calls in this thread, so the data is made in the fixtures and checked
through the pages only.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import transaction
from playwright.sync_api import Page, expect
from pytest_django.live_server_helper import LiveServer

from beings import services
from beings.evolution import being_evolve
from beings.executions.queue import execution_wait
from beings.executions.selectors import target_resolve
from beings.executions.services import execution_start
from beings.models import BaseBeing
from luxsite.tests.browser import chromium_page, screenshot_on_failure
from relations.services import relationship_link

ADMIN, ADMIN_PASSWORD = "pages-admin", "pages-password-1"
USER, USER_PASSWORD = "olga", "olga-password-1"
# Defaults for every parameter, so the run form's defaults run it; one long line, as real code has.
SOURCE = (
    "def run(x=20, y=22):\n"
    '    note = "a long line of the kind real code has, longer than a phone is wide, and then some more words"\n'
    "    return {'sum': x + y, 'note_length': len(note)}\n"
)
RUN_TIMEOUT_MS = 60_000

FITS = "document.documentElement.scrollWidth <= window.innerWidth"


@pytest.fixture
def admin_user(transactional_db: None, django_user_model: type[User]) -> User:
    return django_user_model.objects.create_superuser(ADMIN, password=ADMIN_PASSWORD)


@pytest.fixture
def olga(transactional_db: None, django_user_model: type[User]) -> User:
    """An ordinary user: no staff flag, no global permission; the owner of the beings she makes."""
    return django_user_model.objects.create_user(USER, password=USER_PASSWORD)


@pytest.fixture
def adder(olga: User) -> BaseBeing:
    """olga's being at v2, so that its page has a diff to show."""
    being = services.being_create(
        data={"genesis": {"name": "wide-adder", "type": "function", "source": SOURCE}}, actor=olga
    )
    being_evolve(
        being=being,
        source=SOURCE + "LIMIT = 'another rather long constant that a narrow screen cannot hold'\n",
        reason="a limit",
        actor=olga,
    )
    table = services.being_create(
        data={"genesis": {"name": "lookup-table-with-a-long-name", "type": "data"}}, actor=olga
    )
    relationship_link(source=being, target=table, actor=olga, data={"tags": ["reads", "configuration"]})
    being.refresh_from_db()
    return being


def log_in(page: Page, username: str, password: str) -> None:
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()


@pytest.mark.usefixtures("celery_worker")
def test_an_ordinary_user_logs_in_opens_their_being_runs_it_and_sees_the_result(
    live_server: LiveServer, adder: BaseBeing
) -> None:
    """A non-staff owner logs in at /accounts/login/, runs their being from its page and reads the result."""
    with chromium_page(live_server.url) as page, screenshot_on_failure(page):
        page.goto("/accounts/login/")
        log_in(page, USER, USER_PASSWORD)
        expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
        expect(page.locator("header nav")).to_contain_text(USER)
        expect(page.locator("header nav").get_by_role("link", name="Admin")).to_have_count(0)

        page.get_by_role("link", name="wide-adder", exact=True).click()
        expect(page.get_by_role("heading", name="wide-adder")).to_be_visible()
        page.get_by_role("button", name="Run", exact=True).click()

        expect(page.locator("#execution-status")).to_have_text("succeeded", timeout=RUN_TIMEOUT_MS)
        expect(page.locator("#execution-result")).to_contain_text('"sum": 42')

        page.get_by_role("button", name="Log out").click()
        expect(page.get_by_role("heading", name="Welcome to LuxOS")).to_be_visible()


@pytest.fixture
def runs(celery_worker: Any, admin_user: User, adder: BaseBeing, olga: User) -> None:
    """Finished runs: worker, queue, timings, every column has something to show."""
    target = target_resolve(ref=str(adder.soul), user=olga)
    finished = []
    for number in range(3):
        with transaction.atomic():
            finished.append(execution_start(target=target, kwargs={"x": number}, actor=olga))
    for execution in finished:
        assert execution_wait(execution=execution, timeout=60).status == "succeeded"


@pytest.fixture
def page(live_server: LiveServer, admin_user: User, adder: BaseBeing) -> Iterator[Page]:
    with chromium_page(live_server.url) as page:
        yield page


@pytest.mark.usefixtures("runs")
def test_the_admins_executions_list_fits_a_1400_pixel_window(page: Page) -> None:
    """The executions changelist, every column shown, needs no horizontal scroll at 1400 pixels."""
    with screenshot_on_failure(page):
        page.set_viewport_size({"width": 1400, "height": 900})
        page.goto("/admin/beings/execution/")
        log_in(page, ADMIN, ADMIN_PASSWORD)
        expect(page.locator("#result_list tbody tr")).to_have_count(3)
        assert page.evaluate(FITS), page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
        # The admin scrolls a wide list inside its box instead of the page: the list must fit that box too.
        results = page.locator("#changelist .results")
        assert results.evaluate("box => box.scrollWidth <= box.clientWidth"), results.evaluate(
            "box => [box.scrollWidth, box.clientWidth]"
        )


def test_the_being_page_and_its_diff_fit_420_pixels(page: Page, adder: BaseBeing, olga: Any) -> None:
    """At 420 pixels the being page needs no horizontal scroll; its code and diff boxes scroll on their own."""
    with screenshot_on_failure(page):
        page.set_viewport_size({"width": 420, "height": 900})
        page.goto("/accounts/login/")
        log_in(page, USER, USER_PASSWORD)
        page.goto(f"/beings/{adder.soul}/#diff")
        expect(page.locator("#diff .side-by-side table.diff")).to_be_visible()
        expect(page.locator("#relationships")).to_contain_text("lookup-table-with-a-long-name")
        assert page.evaluate(FITS), page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
        # The diff is still all there, in a box that scrolls sideways.
        box = page.locator("#diff .side-by-side")
        assert box.evaluate("element => element.scrollWidth > element.clientWidth")
        expect(box).to_contain_text("another rather long constant")
