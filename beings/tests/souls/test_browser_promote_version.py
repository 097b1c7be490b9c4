"""Promoting an older version from the being page, in a real browser: v1 of a being at v2 goes to production.

The site runs on pytest-django's ``live_server`` and Chromium is driven through Playwright's sync
API, whose event loop forbids ORM calls in this thread, so the being is made in the fixtures before
the browser starts and checked through the pages only.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import Page, expect
from pytest_django.live_server_helper import LiveServer

from beings import services
from beings.evolution import being_evolve
from beings.models import BaseBeing
from luxsite.tests.browser import chromium_page, screenshot_on_failure

USERNAME, PASSWORD = "release-admin", "release-password-1"
SOURCE = "def run(x):\n    return x + 1\n"


# Production asks for evidence before a promotion; the gate is tested on its own.
pytestmark = pytest.mark.usefixtures("promotion_evidence_waived")


@pytest.fixture
def admin_user(transactional_db: None, django_user_model: type[User]) -> User:
    return django_user_model.objects.create_superuser(USERNAME, password=PASSWORD)


@pytest.fixture
def incrementer(admin_user: User) -> BaseBeing:
    """A being evolved to v2, never promoted."""
    being = services.being_create(
        data={"genesis": {"name": "incrementer", "type": "function", "source": SOURCE}}, actor=admin_user
    )
    being_evolve(being=being, source=SOURCE + "STEP = 1\n", reason="a named step", actor=admin_user)
    being.refresh_from_db()
    return being


@pytest.fixture
def page(live_server: LiveServer, incrementer: BaseBeing) -> Iterator[Page]:
    """A Chromium page on the live site, once the data exists."""
    with chromium_page(live_server.url) as page:
        yield page


def test_promote_an_older_version_from_the_being_page(page: Page, incrementer: BaseBeing) -> None:
    """From the versions table, v1 of a being at v2 is promoted to production; the board shows v1 running."""
    first = incrementer.genesis["ancestors"][0]["hash"]
    with screenshot_on_failure(page):
        page.goto(f"/beings/{incrementer.soul}/")
        page.get_by_label("Username").fill(USERNAME)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        expect(page.get_by_role("heading", name="incrementer")).to_be_visible()

        v2 = page.locator("#v2")
        expect(v2.locator("td.reason")).to_have_text("a named step")
        expect(v2.locator("td.author")).to_have_text(USERNAME)
        page.locator("#v1").get_by_role("link", name="Promote v1 to production").click()

        expect(page.get_by_role("heading", name="Promote incrementer to production?")).to_be_visible()
        confirm = page.locator(".confirm")
        expect(confirm).to_contain_text(first)
        expect(confirm).to_contain_text("an older version: the being is at v2")
        expect(confirm.locator("dd.owner")).to_have_text(USERNAME)
        page.get_by_label("Note").fill("roll back to v1")
        page.get_by_role("button", name="Promote", exact=True).click()

        expect(page.locator(".messages")).to_contain_text(f"Promoted incrementer v1 {first[:12]} to production.")
        row = page.locator('section#production tbody[data-alias="incrementer"]')
        expect(row.locator("td.active-hash")).to_contain_text(f"{first[:12]} v1")
        expect(row.locator(f'tr.candidate[data-soul="{incrementer.soul}"] td.behind')).to_have_text("1 behind")
        expect(page.locator("section#production table.history tbody tr").first).to_contain_text("roll back to v1")

        # Back on the being page, v1 is marked as running in production and offers only staging now.
        page.goto(f"/beings/{incrementer.soul}/")
        expect(page.locator("#v1 td.promoted")).to_have_text("production")
        expect(page.locator("#v1").get_by_role("link", name="Promote v1 to production")).to_have_count(0)
        expect(page.locator("#v1").get_by_role("link", name="Promote v1 to staging")).to_be_visible()
