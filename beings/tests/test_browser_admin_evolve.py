"""Evolving a being in the admin, version after version, in a real browser, then reading it on the being page.

The site runs on pytest-django's ``live_server`` and Chromium is driven through Playwright's sync API,
whose event loop forbids ORM calls in this thread, so the being is made in the fixtures and checked
through the pages only.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import Page, expect
from pytest_django.live_server_helper import LiveServer

from beings import services
from beings.models import BaseBeing
from luxsite.tests.browser import chromium_page, screenshot_on_failure

USERNAME, PASSWORD = "evolve-admin", "evolve-password-1"
SOURCE = "def run(a, b):\n    return a + b\n"
# Each edit adds one line: few enough added lines to be an evolution (same soul, next version).
ADDED = ("LIMIT = 10", "FLOOR = 0", "CEILING = 99")


@pytest.fixture
def admin_user(transactional_db: None, django_user_model: type[User]) -> User:
    return django_user_model.objects.create_superuser(USERNAME, password=PASSWORD)


@pytest.fixture
def adder(admin_user: User) -> BaseBeing:
    return services.being_create(
        data={"genesis": {"name": "adder", "type": "function", "source": SOURCE}}, actor=admin_user
    )


@pytest.fixture
def page(live_server: LiveServer, admin_user: User, adder: BaseBeing) -> Iterator[Page]:
    with chromium_page(live_server.url) as page:
        yield page


def test_evolve_a_being_three_times_in_the_admin_then_see_v4_and_its_diff(page: Page, adder: BaseBeing) -> None:
    """Three new sources saved in the admin's change form make v2, v3, v4; the being page shows v4 and its diff."""
    with screenshot_on_failure(page):
        page.goto(f"/admin/beings/basebeing/{adder.soul}/change/")
        page.get_by_label("Username").fill(USERNAME)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()

        source = SOURCE
        for version, line in enumerate(ADDED, start=2):
            source += line + "\n"
            page.locator("#id_source").fill(source)
            page.get_by_label("Reason").fill(f"add {line.split()[0]}")
            page.get_by_role("button", name="Save and continue editing").click()
            expect(page.locator(".messagelist")).to_contain_text(f"Evolution: now version {version}.")
            expect(page.locator(".messagelist .error")).to_have_count(0)
            expect(page.locator("#id_source")).to_have_value(source)

        page.goto(f"/beings/{adder.soul}/")
        expect(page.get_by_role("heading", name="adder")).to_be_visible()
        expect(page.locator(".facts")).to_contain_text("v4")
        for version in (1, 2, 3, 4):
            expect(page.locator(f"#v{version}")).to_be_visible()
        # The diff the page opens with: v3 against v4, the added line marked.
        diff = page.locator("#diff .side-by-side")
        expect(diff).to_contain_text("v3")
        expect(diff).to_contain_text("v4")
        expect(diff.locator(".diff_add")).to_contain_text("CEILING = 99")
