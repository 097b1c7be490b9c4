"""The promotion board in a real browser: promote a hash, see it in production, demote it.

The site runs on pytest-django's ``live_server`` and Chromium
is driven through Playwright's sync API, whose event loop forbids ORM calls in this thread, so the
beings are made in the fixtures before the browser starts and checked through the pages only.
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

USERNAME, PASSWORD = "board-admin", "board-password-1"
SOURCE = "def run(x):\n    doubled = x * 2\n    return doubled\n"


# Production asks for evidence before a promotion; the gate is tested on its own.
pytestmark = pytest.mark.usefixtures("promotion_evidence_waived")


@pytest.fixture
def admin_user(transactional_db: None, django_user_model: type[User]) -> User:
    return django_user_model.objects.create_superuser(USERNAME, password=PASSWORD)


@pytest.fixture
def doubler(admin_user: User) -> BaseBeing:
    """A being at v2, never promoted."""
    being = services.being_create(
        data={"genesis": {"name": "doubler", "type": "function", "source": SOURCE}}, actor=admin_user
    )
    being_evolve(being=being, source=SOURCE + "TWO = 2\n", reason="a constant", actor=admin_user)
    being.refresh_from_db()
    return being


@pytest.fixture
def page(live_server: LiveServer, admin_user: User, doubler: BaseBeing) -> Iterator[Page]:
    """A Chromium page on the live site, once the data exists."""
    with chromium_page(live_server.url) as page:
        yield page


def test_promote_a_hash_from_the_board_see_it_in_production_then_demote_it(page: Page, doubler: BaseBeing) -> None:
    """An operator promotes doubler's newest hash from the board, finds it as production, then demotes it."""
    short = doubler.hash[:12]
    with screenshot_on_failure(page):
        page.goto("/souls/")
        page.get_by_label("Username").fill(USERNAME)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        expect(page.get_by_role("heading", name="Promotion board")).to_be_visible()

        production = page.locator("section#production")
        row = production.locator('tbody[data-alias="doubler"]')
        candidate = row.locator(f'tr.candidate[data-soul="{doubler.soul}"]')
        expect(row.locator("td.active-hash")).to_have_text("not promoted")
        expect(candidate.locator("td.newest-hash")).to_contain_text(f"{short} v2")
        expect(candidate.locator("td.owner")).to_have_text(USERNAME)
        candidate.get_by_role("button", name="Promote…").click()

        expect(page.get_by_role("heading", name="Promote doubler to production?")).to_be_visible()
        expect(page.locator(".confirm")).to_contain_text(doubler.hash)
        page.get_by_label("Note").fill("first release")
        page.get_by_role("button", name="Promote", exact=True).click()

        expect(page.locator(".messages")).to_contain_text(f"Promoted doubler v2 {short} to production.")
        expect(row.locator("td.active-hash")).to_contain_text(f"{short} v2")
        expect(candidate.locator("td.behind")).to_have_text("up to date")
        history = production.locator("table.history tbody tr")
        expect(history).to_have_count(1)
        expect(history.first).to_contain_text("first release")
        expect(history.first.locator("td.status")).to_have_text("active")
        # Staging is untouched.
        expect(page.locator('section#staging tbody[data-alias="doubler"] td.active-hash')).to_have_text("not promoted")

        row.get_by_role("button", name="Demote").click()
        expect(page.get_by_role("heading", name="Demote doubler from production?")).to_be_visible()
        page.get_by_role("button", name="Demote", exact=True).click()

        expect(page.locator(".messages")).to_contain_text(f"Demoted doubler v2 {short} from production.")
        expect(row.locator("td.active-hash")).to_have_text("not promoted")
        expect(history).to_have_count(2)
        expect(history.first).to_contain_text("demote")
        expect(history.nth(1).locator("td.status")).to_contain_text("demoted")

        # The being page links back: v2 is no longer marked as promoted anywhere.
        candidate.locator("td.being a").click()
        expect(page.get_by_role("heading", name="doubler")).to_be_visible()
        expect(page.locator("#v2 td.promoted")).to_have_text("—")
        expect(page.locator(".lineage-graph svg")).to_be_visible()
