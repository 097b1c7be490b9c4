"""A merge in a browser: from the dashboard's timelines to the merge page, one conflict resolved there, applied.

The site runs on pytest-django's ``live_server``; Chromium is driven through Playwright's sync API, whose
event loop forbids ORM calls in this thread: the diverging timelines are made in the fixtures, and
everything after is done and checked through the pages only.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import Page, expect
from pytest_django.live_server_helper import LiveServer

from beings import services
from beings.models import BaseBeing
from chronos.services import timeline_create, timeline_switch
from luxsite.tests.browser import chromium_page, screenshot_on_failure

USERNAME, PASSWORD = "merge-admin", "merge-password-1"


@pytest.fixture
def admin_user(transactional_db: None, django_user_model: type[User]) -> User:
    return django_user_model.objects.create_superuser(USERNAME, password=PASSWORD)


@pytest.fixture
def painter(admin_user: User) -> BaseBeing:
    """The branch paints it blue and makes it bigger; main paints it green: one conflict, on the colour."""
    being = services.being_create(
        data={
            "genesis": {"name": "painter", "type": "function", "source": "def run():\n    return 'paint'\n"},
            "attributes": {"colour": "red", "size": 1},
        },
        actor=admin_user,
    )
    timeline_create(name="blue-idea", actor=admin_user)
    timeline_switch(name="blue-idea", actor=admin_user)
    services.being_update(being=being, data={"attributes": {"colour": "blue", "size": 2}}, actor=admin_user)
    timeline_switch(name="main", actor=admin_user)
    being = BaseBeing.objects.get(soul=being.soul)
    return services.being_update(being=being, data={"attributes": {"colour": "green", "size": 1}}, actor=admin_user)


@pytest.fixture
def page(live_server: LiveServer, painter: BaseBeing) -> Iterator[Page]:
    with chromium_page(live_server.url) as page:
        yield page


def test_merge_a_timeline_resolving_its_conflict_on_the_merge_page(page: Page, painter: BaseBeing) -> None:
    """The branch's size comes in cleanly, the colour conflict is resolved as theirs, and the being shows both."""
    with screenshot_on_failure(page):
        page.goto("/chronos/")
        page.get_by_label("Username").fill(USERNAME)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        page.locator("#timeline-blue-idea").get_by_role("link", name="Merge into live…").click()
        expect(page.get_by_role("heading", name="Merge a timeline")).to_be_visible()
        expect(page.get_by_label("Into")).to_have_value("main")
        page.get_by_role("button", name="Preview merge").click()

        expect(page.get_by_role("heading", name="Merge blue-idea into main")).to_be_visible()
        conflict = page.locator("section.conflict")
        expect(conflict).to_have_count(1)
        expect(conflict).to_have_attribute("data-path", "attributes.colour")
        expect(conflict.locator("pre.base")).to_have_text('"red"')
        expect(conflict.locator("pre.ours")).to_have_text('"green"')
        expect(conflict.locator("pre.theirs")).to_have_text('"blue"')
        expect(page.get_by_role("button", name="Apply merge")).to_be_disabled()

        conflict.get_by_label("Theirs").check()
        conflict.get_by_role("button", name="Resolve").click()
        expect(page.locator(".messages")).to_contain_text("resolved: theirs")
        expect(page.locator("section.conflict")).to_have_attribute("data-resolution", "theirs")
        page.get_by_role("button", name="Apply merge").click()

        expect(page.locator(".messages")).to_contain_text("Merged blue-idea into main")
        expect(page.locator("#merge-status")).to_have_text("applied")
        expect(page.locator("#merge-safety")).to_contain_text("before-merge-blue-idea")

        page.goto(f"/admin/beings/basebeing/{painter.soul}/change/")
        # As jsonb keeps an object: shorter keys first.
        expect(page.locator("#id_attributes")).to_have_value('{\n  "size": 2,\n  "colour": "blue"\n}')
