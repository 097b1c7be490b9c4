"""The site in a real browser: log into the admin, add a being, find it in the list and on the dashboard.

The site runs on pytest-django's ``live_server`` (a real server thread over the
test database, so the test commits: ``transactional_db``); Chromium is driven
through Playwright's sync API. That API runs an event loop in this thread, and
Django refuses ORM calls while one runs, so every database step happens in the
fixtures before the browser starts.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import Page, expect
from pytest_django.live_server_helper import LiveServer

from luxsite.tests.browser import chromium_page, screenshot_on_failure

USERNAME, PASSWORD = "browser-admin", "browser-password-1"


@pytest.fixture
def admin_user(transactional_db: None, django_user_model: type[User]) -> User:
    return django_user_model.objects.create_superuser(USERNAME, password=PASSWORD)


@pytest.fixture
def page(live_server: LiveServer, admin_user: User) -> Iterator[Page]:
    """A Chromium page on the live site; the admin user exists before the browser (and its event loop) starts."""
    with chromium_page(live_server.url) as page:
        yield page


def test_admin_user_adds_a_being_and_finds_it_in_the_list_and_on_the_dashboard(page: Page) -> None:
    """Someone logs into the admin, adds a being through its form, then sees it in the list and opens its page."""
    with screenshot_on_failure(page):
        page.goto("/admin/")
        page.get_by_label("Username").fill(USERNAME)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        expect(page.get_by_role("heading", name="Living code registry")).to_be_visible()

        page.locator("#beings-basebeing").get_by_role("link", name="Beings").click()
        page.get_by_role("link", name="Add being").click()
        page.get_by_label("Name").fill("browser-adder")
        page.get_by_label("Kind").select_option("function")
        page.locator("#id_source").fill("def run(a, b):\n    return a + b\n")
        page.get_by_label("Tags").fill("browser, math")
        page.get_by_role("button", name="Save", exact=True).click()

        expect(page.locator(".messagelist")).to_contain_text("was added successfully")
        page.get_by_placeholder("has tag…").fill("browser")
        page.get_by_placeholder("has tag…").press("Enter")
        rows = page.locator("#result_list tbody tr")
        expect(rows).to_have_count(1)
        expect(rows.first).to_contain_text("browser-adder")
        expect(rows.first).to_contain_text("browser, math")

        rows.first.get_by_role("link", name="browser-adder").click()
        expect(page.locator(".lux-source")).to_contain_text("return a + b")

        page.goto("/")
        expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
        being = page.locator("table.beings").get_by_role("link", name="browser-adder")
        expect(being).to_be_visible()
        being.click()  # the dashboard opens the being's own page
        expect(page.get_by_role("heading", level=1)).to_contain_text("browser-adder")
        expect(page.get_by_role("heading", name="Current source")).to_be_visible()
