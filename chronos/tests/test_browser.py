"""Time travel in a browser: a checkpoint on the dashboard, a being changed in the admin, a restore from the dashboard.

The site runs on pytest-django's ``live_server``, a real Celery worker runs the restore, and Chromium is
driven through Playwright's sync API, whose event loop forbids ORM calls in this thread: the being is
made in the fixtures, and everything after is done and checked through the pages only.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import Page, expect
from pytest_django.live_server_helper import LiveServer

from beings import services
from beings.models import BaseBeing
from luxsite.tests.browser import chromium_page, screenshot_on_failure

USERNAME, PASSWORD = "chronos-admin", "chronos-password-1"
RESTORE_TIMEOUT_MS = 60_000
# Where the test leaves its screenshots of the pages it went through (named in the report).
SCREENSHOTS = Path(tempfile.gettempdir()) / "luxos-chronos-screens"


@pytest.fixture
def admin_user(transactional_db: None, django_user_model: type[User]) -> User:
    return django_user_model.objects.create_superuser(USERNAME, password=PASSWORD)


@pytest.fixture
def painter(admin_user: User) -> BaseBeing:
    return services.being_create(
        data={
            "genesis": {"name": "painter", "type": "function", "source": "def run():\n    return 'paint'\n"},
            "tags": ["red"],
            "attributes": {"colour": "red"},
        },
        actor=admin_user,
    )


@pytest.fixture
def page(live_server: LiveServer, celery_worker: Any, admin_user: User, painter: BaseBeing) -> Iterator[Page]:
    """A Chromium page on the live site, once the data exists and a worker consumes the queues."""
    with chromium_page(live_server.url) as page:
        yield page


def shot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def test_checkpoint_change_in_the_admin_restore_from_the_dashboard(page: Page, painter: BaseBeing) -> None:
    """The old tags and attributes are back in the admin after a restore confirmed on the dashboard, run by a worker."""
    admin_page = f"/admin/beings/basebeing/{painter.soul}/change/"
    with screenshot_on_failure(page):
        page.goto("/chronos/")
        page.get_by_label("Username").fill(USERNAME)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        expect(page.get_by_role("heading", name="Chronos")).to_be_visible()
        expect(page.locator("#live-head")).to_be_visible()

        form = page.locator("#checkpoint-form")
        form.get_by_label("Name").fill("before-blue")
        form.get_by_role("button", name="Take checkpoint").click()
        expect(page.get_by_role("heading", name="Checkpoint before-blue")).to_be_visible()

        page.goto(admin_page)
        page.locator("#id_tags").fill("blue")
        page.locator("#id_attributes").fill('{"colour": "blue"}')
        page.get_by_role("button", name="Save and continue editing").click()
        expect(page.locator(".messagelist .success")).to_be_visible()
        expect(page.locator("#id_attributes")).to_have_value('{\n  "colour": "blue"\n}')
        shot(page, "1-admin-changed")

        page.goto("/chronos/")
        shot(page, "2-dashboard")
        page.locator('tr[data-checkpoint="before-blue"]').get_by_role("link", name="Restore…").click()
        expect(page.get_by_role("heading", name="Restore checkpoint before-blue?")).to_be_visible()
        expect(page.locator("#preview")).to_contain_text("attributes.colour")
        shot(page, "3-restore-preview")
        page.get_by_role("button", name="Restore", exact=True).click()

        state = page.locator("#task-state")
        expect(state).to_have_text("done", timeout=RESTORE_TIMEOUT_MS)
        expect(page.locator("#task-result")).to_contain_text("before-restore-before-blue")
        shot(page, "4-restore-done")

        page.goto(admin_page)
        expect(page.locator("#id_attributes")).to_have_value('{\n  "colour": "red"\n}')
        expect(page.locator("#id_tags")).to_have_value("red")
        expect(page.locator("#being-history")).to_contain_text("checkpoint_restore")
        shot(page, "5-admin-restored")
