"""The HTML doors of executions: the run form on the being page, the live monitor, a run's page, the admin."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from guardian.shortcuts import assign_perm

from beings.evolution import being_evolve
from beings.executions.queue import execution_wait
from beings.executions.selectors import target_resolve
from beings.executions.services import execution_cancel, execution_start
from beings.models import BaseBeing, Execution
from luxsite.tests.fixtures import logged_in

pytestmark = pytest.mark.django_db

SOURCE = 'def run(x=1, y=2):\n    print("adding", x, y)\n    return {"sum": x + y}\n'
WAIT_SECONDS = 60.0


@pytest.fixture
def adder(alice: User, make_being: Callable[..., BaseBeing]) -> BaseBeing:
    """alice's being at v2; as its owner she may execute it."""
    being = make_being("adder", genesis={"source": SOURCE})
    being_evolve(being=being, source=SOURCE + "LIMIT = 10\n", reason="a limit", actor=alice)
    being.refresh_from_db()
    return being


@pytest.fixture
def viewer(bob: User, adder: BaseBeing) -> Client:
    """bob, who may view adder but not execute it."""
    assign_perm("beings.view_basebeing", bob, adder)
    return logged_in(bob)


def run_url(being: BaseBeing) -> str:
    return reverse("being_run", args=[being.soul])


def started(alice: User, being: BaseBeing, **kwargs: Any) -> Execution:
    """A run of ``being`` queued by alice (never picked up: no worker runs in a ``db`` test)."""
    target = target_resolve(ref=str(being.soul), user=alice)
    return execution_start(target=target, kwargs=kwargs, actor=alice)


# The run form on the being page


def test_being_page_shows_the_run_form_with_every_version(api: Client, adder: BaseBeing) -> None:
    """Someone who may execute the being finds a form posting to its run URL, with v1 among the versions."""
    response = api.get(reverse("being_detail", args=[adder.soul]))

    content = response.content.decode()
    assert response.status_code == 200
    assert f'action="{run_url(adder)}"' in content
    assert 'name="kwargs"' in content
    v1 = adder.genesis["ancestors"][0]["hash"]
    assert f'<option value="{v1}">v1' in content


def test_being_page_says_who_may_not_run_it(viewer: Client, adder: BaseBeing) -> None:
    """Someone who may only view the being sees why there is no form."""
    response = viewer.get(reverse("being_detail", args=[adder.soul]))

    content = response.content.decode()
    assert response.status_code == 200
    assert f'action="{run_url(adder)}"' not in content
    assert "not run it" in content


def test_run_form_starts_a_run_and_opens_its_page(api: Client, alice: User, adder: BaseBeing) -> None:
    """The form queues a run of the current hash with the typed kwargs and redirects to the run's page."""
    response = api.post(run_url(adder), {"kwargs": '{"x": 40, "y": 2}', "hash": ""})

    execution = Execution.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("execution_detail", args=[execution.id])
    assert (execution.being_id, execution.hash, execution.version) == (adder.soul, adder.hash, 2)
    assert (execution.kwargs, execution.args, execution.actor_id) == ({"x": 40, "y": 2}, [], alice.pk)
    assert execution.status == Execution.Status.QUEUED


def test_run_form_runs_the_chosen_version(api: Client, adder: BaseBeing) -> None:
    """Choosing v1 in the form pins the run to v1's hash."""
    v1 = adder.genesis["ancestors"][0]["hash"]

    response = api.post(run_url(adder), {"kwargs": "{}", "hash": v1})

    assert response.status_code == 302
    assert Execution.objects.values_list("hash", "version").get() == (v1, 1)


SIGNED = "def run(name, greeting='hello', count=2, *, loud: bool = False, shape=(1, 2), **more):\n    return greeting\n"


def field(content: str, name: str) -> re.Match[str] | None:
    """The input of the run form's field for parameter ``name``."""
    return re.search(rf'<input type="text" id="run-param-{name}" name="param-{name}" value="([^"]*)"', content)


def form_fields(content: str) -> dict[str, str]:
    return dict(re.findall(r'<input type="text" id="run-param-\w+" name="param-(\w+)" value="([^"]*)"', content))


@pytest.fixture
def signed(make_being: Callable[..., BaseBeing]) -> BaseBeing:
    """A being whose entrypoint takes several kinds of parameters; attributes.arguments sets count."""
    return make_being("signed", genesis={"source": SIGNED}, attributes={"arguments": {"count": 5}})


def test_run_form_has_a_field_per_parameter_prefilled(api: Client, signed: BaseBeing) -> None:
    """A field per parameter, prefilled from attributes.arguments, else the default when JSON holds it; none for
    **more; the JSON box is the advanced mode, closed; a hint says how fields are read."""
    content = api.get(reverse("being_detail", args=[signed.soul])).content.decode()

    assert form_fields(content) == {"name": "", "greeting": "hello", "count": "5", "loud": "false", "shape": ""}
    assert 'placeholder="(1, 2)"' in content  # a tuple is not JSON: shown, not sent
    assert "(required)" in content
    assert "<summary>Advanced: JSON</summary>" in content
    assert "<details open" not in content
    assert "read as JSON when it parses" in content and "otherwise as text" in content
    assert "<code>**more</code>" in content


def test_class_being_fields_are_the_methods_parameters_without_self(
    api: Client, make_being: Callable[..., BaseBeing]
) -> None:
    """For a class being, the entrypoint method of its class, without self."""
    source = "class Counter:\n    def run(self, step=1, label='n'):\n        return step\n"
    being = make_being("counter", kind="class", genesis={"source": source})

    content = api.get(reverse("being_detail", args=[being.soul])).content.decode()

    assert form_fields(content) == {"step": "1", "label": "n"}


def test_run_form_without_a_readable_signature_opens_the_json_box(
    api: Client, make_being: Callable[..., BaseBeing]
) -> None:
    """An entrypoint the AST does not show (made at run time) leaves the JSON box open, without fields."""
    being = make_being("made", genesis={"source": "def make():\n    return lambda: 1\nrun = make()\n"})

    content = api.get(reverse("being_detail", args=[being.soul])).content.decode()

    assert form_fields(content) == {}
    assert "<details open>" in content


@pytest.mark.parametrize(
    ("typed", "passed"),
    [
        ("42", 42),
        ("2.5", 2.5),
        ("true", True),
        ("null", None),
        ("[1, 2]", [1, 2]),
        ('{"a": 1}', {"a": 1}),
        ("Ada", "Ada"),
        ('"42"', "42"),
        ("NaN", "NaN"),
        ("[1, 2", "[1, 2"),
        ("two words", "two words"),
    ],
)
def test_fields_are_read_as_json_when_they_parse_and_as_text_otherwise(
    api: Client, signed: BaseBeing, typed: str, passed: Any
) -> None:
    """What a field passes: its JSON value when the text parses as JSON, else the text as typed."""
    response = api.post(run_url(signed), {"param-name": typed, "param-greeting": "hi", "kwargs": "{}"})

    assert response.status_code == 302
    assert Execution.objects.get().kwargs == {"name": passed, "greeting": "hi"}


def test_empty_fields_pass_nothing_and_the_json_box_wins(api: Client, signed: BaseBeing) -> None:
    """An empty field leaves the default to apply; keys of the JSON box win over the fields and add to them."""
    response = api.post(
        run_url(signed),
        {
            "param-name": "Ada",
            "param-count": "",
            "param-loud": "true",
            "kwargs": '{"loud": false, "extra": 1}',
        },
    )

    assert response.status_code == 302
    assert Execution.objects.get().kwargs == {"name": "Ada", "loud": False, "extra": 1}


def test_positional_only_parameters_and_star_args_go_as_args(api: Client, make_being: Callable[..., BaseBeing]) -> None:
    """A positional-only parameter is passed by position; *args takes a JSON list, appended."""
    being = make_being("positional", genesis={"source": "def run(a, /, b=0, *rest, c=1):\n    return a\n"})

    response = api.post(run_url(being), {"param-a": "1", "param-b": "2", "param-rest": "[3, 4]", "param-c": "5"})

    assert response.status_code == 302
    assert Execution.objects.values_list("args", "kwargs").get() == ([1, 2, 3, 4], {"c": 5})


def test_a_refused_run_keeps_the_being_page_around_the_form(
    api: Client, signed: BaseBeing, unchanged: Callable[..., Any]
) -> None:
    """Bad JSON in the box: the being page again (its source and versions), with the error and what was typed."""
    with unchanged():
        response = api.post(run_url(signed), {"param-name": "Ada", "param-count": "7", "kwargs": '{"x": '})

    content = response.content.decode()
    assert response.status_code == 400
    assert '<section id="source">' in content and '<section id="versions">' in content
    assert "<h1>signed" in content
    assert "<strong>bad_json</strong>" in content
    assert form_fields(content)["name"] == "Ada" and form_fields(content)["count"] == "7"
    assert "<details open>" in content  # the box that holds the mistake is shown
    assert "{&quot;x&quot;: </textarea>" in content


def test_run_again_fills_the_form_with_the_runs_arguments_and_version(
    api: Client, alice: User, signed: BaseBeing
) -> None:
    """The run page's Run again opens the being page with the run's inputs in the fields, the rest in the box."""
    being_evolve(being=signed, source=SIGNED + "LIMIT = 1\n", reason="a limit", actor=alice)
    signed.refresh_from_db()
    v1 = signed.genesis["ancestors"][0]["hash"]
    target = target_resolve(ref=str(signed.soul), user=alice, hash=v1)
    execution = execution_start(
        target=target, kwargs={"name": "Ada", "count": 7, "greeting": "42", "other": [1]}, actor=alice
    )

    run_page = api.get(reverse("execution_detail", args=[execution.id])).content.decode()
    again = f"{reverse('being_detail', args=[signed.soul])}?again={execution.id}#run"
    assert f'href="{again}"' in run_page
    content = api.get(again.split("#")[0]).content.decode()

    assert form_fields(content) == {
        "name": "Ada",
        "greeting": "&quot;42&quot;",
        "count": "7",
        "loud": "",
        "shape": "",
    }
    assert "{&quot;other&quot;: [1]}</textarea>" in content
    assert f'<option value="{v1}" selected>' in content


def test_run_again_of_a_run_one_may_not_see_starts_afresh(
    bob_api: Client, bob: User, alice: User, signed: BaseBeing
) -> None:
    """?again= naming someone else's run, or no run, leaves the form as it starts."""
    assign_perm("beings.view_basebeing", bob, signed)
    assign_perm("beings.execute_being", bob, signed)
    execution = started(alice, signed, name="secret")

    for again in (str(execution.id), "nonsense", str(uuid.uuid4())):
        content = bob_api.get(reverse("being_detail", args=[signed.soul]), {"again": again}).content.decode()
        assert form_fields(content)["name"] == ""


@pytest.mark.parametrize(
    ("kwargs", "hash", "status", "code"),
    [
        ('{"x": ', "", 400, "bad_json"),
        ("[1, 2]", "", 422, "execution_input_invalid"),
        ('"x"', "", 422, "execution_input_invalid"),
        ("{}", "not-a-hash", 422, None),
        ("{}", "0" * 64, 404, None),
    ],
)
def test_bad_run_input_shows_the_form_again_with_the_error(
    api: Client, adder: BaseBeing, unchanged: Callable[..., Any], kwargs: str, hash: str, status: int, code: str | None
) -> None:
    """Bad JSON, JSON that is not an object or an unknown hash: the form again, what was typed kept, no run."""
    with unchanged():
        response = api.post(run_url(adder), {"kwargs": kwargs, "hash": hash})

    content = response.content.decode()
    assert response.status_code == status
    assert 'role="alert"' in content
    if code:
        assert f"<strong>{code}</strong>" in content
    assert f'action="{run_url(adder)}"' in content
    typed = re.search(r'<textarea[^>]*name="kwargs"[^>]*>([^<]*)</textarea>', content)
    assert typed is not None and typed.group(1) == kwargs.replace('"', "&quot;")
    assert not Execution.objects.exists()


def test_run_without_execute_permission_is_403(viewer: Client, adder: BaseBeing, unchanged: Callable[..., Any]) -> None:
    """bob may view adder but not execute it: 403, and no run."""
    with unchanged():
        response = viewer.post(run_url(adder), {"kwargs": "{}"})

    assert response.status_code == 403
    assert not Execution.objects.exists()


def test_run_of_a_being_one_may_not_view_or_that_does_not_exist(bob_api: Client, adder: BaseBeing) -> None:
    """Someone else's being is 404, as on the being page and as a soul no being has; neither is run."""
    assert bob_api.post(run_url(adder), {"kwargs": "{}"}).status_code == 404
    assert bob_api.post(reverse("being_run", args=[uuid.uuid4()]), {"kwargs": "{}"}).status_code == 404
    assert not Execution.objects.exists()


def test_run_needs_a_post_a_session_and_a_csrf_token(alice: User, adder: BaseBeing) -> None:
    """GET goes on to the being page (with its query); an anonymous POST goes to the login page; a POST without
    the CSRF token is 403."""
    got = logged_in(alice).get(run_url(adder), {"from": "a", "to": "b"})
    assert got.status_code == 302
    assert got["Location"] == reverse("being_detail", args=[adder.soul]) + "?from=a&to=b"
    anonymous = Client().post(run_url(adder), {"kwargs": "{}"})
    assert anonymous.status_code == 302 and anonymous["Location"].startswith("/accounts/login/")
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(alice)
    assert strict.post(run_url(adder), {"kwargs": "{}"}).status_code == 403
    assert not Execution.objects.exists()


# The monitor


def test_monitor_lists_the_runs_one_may_see(api: Client, bob_api: Client, alice: User, adder: BaseBeing) -> None:
    """alice sees her run, live; bob, who may not view adder, sees none."""
    execution = started(alice, adder, x=1)

    mine = api.get(reverse("execution_monitor")).content.decode()
    theirs = bob_api.get(reverse("execution_monitor")).content.decode()

    assert f'data-execution="{execution.id}"' in mine
    assert 'hx-trigger="every 1s"' in mine
    assert "beings/htmx.min.js" in mine
    assert f'data-execution="{execution.id}"' not in theirs
    assert "No runs" in theirs


def test_monitor_filters_by_status(api: Client, alice: User, adder: BaseBeing) -> None:
    """?status=queued lists the queued run, ?status=succeeded does not."""
    execution = started(alice, adder)

    queued = api.get(reverse("execution_monitor"), {"status": "queued"}).content.decode()
    succeeded = api.get(reverse("execution_monitor"), {"status": "succeeded"}).content.decode()

    assert f'data-execution="{execution.id}"' in queued
    assert f'data-execution="{execution.id}"' not in succeeded


@pytest.mark.parametrize(
    ("query", "status"),
    [({"status": "sleeping"}, 400), ({"being": "not-a-uuid"}, 400), ({"being": str(uuid.uuid4())}, 404)],
)
def test_monitor_refuses_bad_filters(api: Client, query: dict[str, str], status: int) -> None:
    """An unknown status or a malformed or unknown soul is an error page, not an empty table."""
    assert api.get(reverse("execution_monitor"), query).status_code == status


def test_rows_partial_returns_only_the_table(api: Client, alice: User, adder: BaseBeing) -> None:
    """The partial htmx polls is the table and its polling attributes, without the page around it."""
    execution = started(alice, adder)

    response = api.get(reverse("execution_rows"), {"being": str(adder.soul)})

    content = response.content.decode()
    assert response.status_code == 200
    assert content.lstrip().startswith('<div id="execution-rows"')
    assert "<html" not in content
    assert f'data-execution="{execution.id}" data-status="queued"' in content
    assert f'hx-get="{reverse("execution_rows")}?being={adder.soul}"' in content


def test_rows_partial_takes_the_same_queries_however_many_runs(api: Client, alice: User, adder: BaseBeing) -> None:
    """The table of one run and of six costs the same number of queries: no query per row."""
    started(alice, adder)
    with CaptureQueriesContext(connection) as one:
        api.get(reverse("execution_rows"))
    for _ in range(5):
        started(alice, adder)
    with CaptureQueriesContext(connection) as six:
        content = api.get(reverse("execution_rows")).content.decode()

    assert content.count("data-execution=") == 6
    assert len(six) == len(one)


def test_partials_send_an_expired_session_to_the_login_page() -> None:
    """Polled without a session, a partial answers 401 with HX-Redirect to the login, back to the page polled from."""
    for url in (reverse("execution_rows"), reverse("execution_panel", args=[uuid.uuid4()])):
        polled = Client().get(
            url, headers={"HX-Request": "true", "HX-Current-URL": "http://testserver/executions/?a=1"}
        )
        opened = Client().get(url)

        assert polled.status_code == 401
        assert polled["HX-Redirect"] == "/accounts/login/?next=/executions/%3Fa%3D1"
        assert opened.status_code == 302 and opened["Location"].startswith("/accounts/login/?next=")


def test_rows_partial_slows_down_when_nothing_is_queued_or_running(api: Client, alice: User, adder: BaseBeing) -> None:
    """Once every run shown has finished, the table polls every 2 s instead of every second: a new run of a few
    seconds is still seen running."""
    execution_cancel(execution=started(alice, adder), actor=alice)

    content = api.get(reverse("execution_rows")).content.decode()

    assert 'hx-trigger="every 2s"' in content
    assert 'data-active="false"' in content


# A run's page


def test_run_page_shows_a_queued_run_live_with_a_cancel_button(api: Client, alice: User, adder: BaseBeing) -> None:
    """A queued run's page polls its panel and offers to cancel it."""
    execution = started(alice, adder, x=3)

    response = api.get(reverse("execution_detail", args=[execution.id]))

    content = response.content.decode()
    assert response.status_code == 200
    assert f'hx-get="{reverse("execution_panel", args=[execution.id])}"' in content
    assert f'action="{reverse("execution_cancel", args=[execution.id])}"' in content
    assert "csrfmiddlewaretoken" in content
    assert "kwargs={&quot;x&quot;: 3}" in content
    panel = api.get(reverse("execution_panel", args=[execution.id])).content.decode()
    assert panel.lstrip().startswith('<div id="execution-panel"') and "<html" not in panel


@pytest.mark.parametrize(
    ("milliseconds", "shown"),
    [(0.42, "0.4 ms"), (820.4, "820 ms"), (5212.8, "5.2 s"), (59_990, "1 min 0 s"), (123_000, "2 min 3 s")],
)
def test_durations_read_as_people_read_them(
    api: Client, alice: User, adder: BaseBeing, milliseconds: float, shown: str
) -> None:
    """The run page and the monitor give a duration in the unit people read it in, the exact value on hover."""
    execution = execution_cancel(execution=started(alice, adder), actor=alice)
    Execution.objects.filter(pk=execution.pk).update(duration_ms=milliseconds)

    panel = api.get(reverse("execution_panel", args=[execution.id])).content.decode()
    rows = api.get(reverse("execution_rows")).content.decode()

    for content in (panel, rows):
        assert f'<span title="{milliseconds:.1f} ms">{shown}</span>' in content
    assert f">{milliseconds:.1f} ms</dd>" not in panel  # the raw number of milliseconds is gone


def test_an_error_is_shown_once(api: Client, alice: User, adder: BaseBeing) -> None:
    """The error's type and message once, then the being's frames: the traceback's last line is not repeated."""
    execution = execution_cancel(execution=started(alice, adder), actor=alice)
    traceback = (
        'Traceback (most recent call last):\n  File "<being>", line 2, in run\n    return 1 / x\n'
        "ZeroDivisionError: division by zero"
    )
    Execution.objects.filter(pk=execution.pk).update(
        status="failed",
        error={"type": "ZeroDivisionError", "message": "division by zero", "traceback": traceback},
    )

    panel = api.get(reverse("execution_panel", args=[execution.id])).content.decode()

    assert panel.count("division by zero") == 1
    assert panel.count("ZeroDivisionError") == 1
    assert "line 2, in run" in panel and "return 1 / x" in panel


def test_cancel_ends_the_run_and_stops_the_polling(api: Client, alice: User, adder: BaseBeing) -> None:
    """Cancelling redirects to the run's page, now finished, with no cancel button and no polling."""
    execution = started(alice, adder)
    url = reverse("execution_detail", args=[execution.id])

    response = api.post(reverse("execution_cancel", args=[execution.id]))

    assert response.status_code == 302 and response["Location"] == url
    execution.refresh_from_db()
    assert execution.finished
    content = api.get(url).content.decode()
    assert "hx-trigger" not in content
    assert reverse("execution_cancel", args=[execution.id]) not in content
    assert "Cancelled" in content


def test_cancel_of_a_finished_run_says_why(api: Client, alice: User, adder: BaseBeing) -> None:
    """A second cancel is refused with a message; the run stays as the first cancel left it."""
    execution = execution_cancel(execution=started(alice, adder), actor=alice)
    status = execution.status

    response = api.post(reverse("execution_cancel", args=[execution.id]), follow=True)

    assert response.status_code == 200
    assert "Not cancelled" in response.content.decode()
    execution.refresh_from_db()
    assert execution.status == status


def test_someone_elses_run_is_404(viewer: Client, alice: User, adder: BaseBeing) -> None:
    """bob, who may view adder but not change it, may neither look at nor cancel alice's run of it: to him it is
    not there (404)."""
    execution = started(alice, adder)

    for response in (
        viewer.get(reverse("execution_detail", args=[execution.id])),
        viewer.get(reverse("execution_panel", args=[execution.id])),
        viewer.post(reverse("execution_cancel", args=[execution.id])),
    ):
        assert response.status_code == 404
    execution.refresh_from_db()
    assert execution.status == Execution.Status.QUEUED


def test_unknown_run_is_404(api: Client) -> None:
    """A run nobody has is a 404 page."""
    assert api.get(reverse("execution_detail", args=[uuid.uuid4()])).status_code == 404


def test_the_site_header_links_to_the_monitor(api: Client) -> None:
    """Every page's navigation has an Executions link."""
    content = api.get(reverse("home")).content.decode()
    assert f'<a href="{reverse("execution_monitor")}">Executions</a>' in content


# The admin


@pytest.fixture
def staff(alice: User) -> User:
    alice.is_staff = True
    alice.save(update_fields=["is_staff"])
    return alice


def test_admin_lists_runs_read_only(staff: User, adder: BaseBeing) -> None:
    """A staff member sees her run in the list and on its page, with no way to add, change or delete runs."""
    execution = started(staff, adder, x=5)
    client = logged_in(staff)

    listing = client.get(reverse("admin:beings_execution_changelist"))
    page = client.get(reverse("admin:beings_execution_change", args=[execution.id]))

    assert listing.status_code == 200 and str(execution.id)[:8] in listing.content.decode()
    content = page.content.decode()
    assert page.status_code == 200
    assert "&quot;x&quot;: 5" in content
    assert reverse("being_detail", args=[adder.soul]) in content
    assert 'name="_save"' not in content
    assert client.get(reverse("admin:beings_execution_add")).status_code == 403
    assert client.post(reverse("admin:beings_execution_delete", args=[execution.id])).status_code == 403
    assert Execution.objects.filter(pk=execution.pk).exists()


def test_admin_shows_others_only_runs_they_may_see(staff: User, bob: User, root: User, adder: BaseBeing) -> None:
    """bob (staff, no view on adder) sees no run; root sees every run."""
    execution = started(staff, adder)
    bob.is_staff = True
    bob.save(update_fields=["is_staff"])

    bobs = logged_in(bob).get(reverse("admin:beings_execution_changelist")).content.decode()
    roots = logged_in(root).get(reverse("admin:beings_execution_changelist")).content.decode()

    assert str(execution.id)[:8] not in bobs
    assert str(execution.id)[:8] in roots
    page = logged_in(bob).get(reverse("admin:beings_execution_change", args=[execution.id]))
    assert page.status_code == 302  # Django's "does not exist" redirect to the admin index


def test_admin_links_only_the_nested_runs_one_may_see(
    staff: User, bob: User, adder: BaseBeing, make_being: Callable[..., BaseBeing]
) -> None:
    """bob's hidden being called alice's, which called it back: on the run of hers alice sees neither of his."""
    hidden = make_being("bobs-secret", genesis={"source": SOURCE}, actor=bob)
    caller, child, callee = started(bob, hidden), started(staff, adder), started(bob, hidden)
    Execution.objects.filter(pk=child.pk).update(parent=caller, root=caller, depth=1, actor=bob, actor_name="bob")
    Execution.objects.filter(pk=callee.pk).update(parent=child, root=caller, depth=2)

    page = logged_in(staff).get(reverse("admin:beings_execution_change", args=[child.id]))

    content = page.content.decode()
    assert page.status_code == 200
    assert "bobs-secret" not in content
    for hers_not in (caller, callee):
        assert reverse("admin:beings_execution_change", args=[hers_not.id]) not in content


def test_admin_search_by_hash_prefix_and_alias(root: User, alice: User, adder: BaseBeing) -> None:
    """A hash prefix of 12 finds the run of that hash; an alias fragment finds it too; a wrong one does not."""
    execution = started(alice, adder)
    client = logged_in(root)
    url = reverse("admin:beings_execution_changelist")

    for term, found in ((adder.hash[:12], True), ("dde", True), ("f" * 12, False), (str(execution.id), True)):
        content = client.get(url, {"q": term}).content.decode()
        assert (str(execution.id)[:8] in content) is found, term


def test_admin_can_not_be_used_by_non_staff(api: Client) -> None:
    """A user who is not staff is sent to the admin's login, never shown the runs."""
    assert api.get(reverse("admin:beings_execution_changelist")).status_code == 302


# Through a real worker


@pytest.mark.usefixtures("transactional_db")
def test_a_run_from_the_form_finishes_on_the_worker_and_its_page_shows_the_result(
    celery_worker: Any, alice: User, adder: BaseBeing
) -> None:
    """The form's run goes through a real worker; the panel then shows succeeded, the result and the output."""
    client = logged_in(alice)
    response = client.post(run_url(adder), {"kwargs": '{"x": 40, "y": 2}'})
    execution = Execution.objects.get()
    assert response.status_code == 302

    finished = execution_wait(execution=execution, timeout=WAIT_SECONDS)

    assert finished.status == Execution.Status.SUCCEEDED, finished.error
    panel = client.get(reverse("execution_panel", args=[execution.id])).content.decode()
    assert 'data-status="succeeded"' in panel
    assert "hx-trigger" not in panel
    assert "&quot;sum&quot;: 42" in panel
    assert "adding 40 2" in panel
    rows = client.get(reverse("execution_rows")).content.decode()
    assert f'data-execution="{execution.id}" data-status="succeeded"' in rows
    assert finished.worker in rows


@pytest.mark.usefixtures("transactional_db")
def test_a_failing_run_shows_its_error_and_traceback(
    celery_worker: Any, alice: User, make_being: Callable[..., BaseBeing]
) -> None:
    """A being that raises ends failed; its page names the error and shows the being's own traceback."""
    being = make_being("divider", genesis={"source": "def run(x=0):\n    return 1 / x\n"})
    client = logged_in(alice)
    client.post(run_url(being), {"kwargs": "{}"})
    execution = Execution.objects.get()

    finished = execution_wait(execution=execution, timeout=WAIT_SECONDS)

    assert finished.status == Execution.Status.FAILED
    panel = client.get(reverse("execution_panel", args=[execution.id])).content.decode()
    assert "ZeroDivisionError" in panel
    assert 'class="traceback"' in panel
    assert "line 2" in panel
    assert panel.count("division by zero") == 1  # the error once, the traceback's frames below it


@pytest.mark.usefixtures("transactional_db")
def test_a_nested_call_is_linked_both_ways_on_the_pages_and_in_the_admin(
    celery_worker: Any, root: User, adder: BaseBeing, make_being: Callable[..., BaseBeing]
) -> None:
    """A being that calls adder through execution(): its run lists the call; the call's page names its caller."""
    caller = make_being("caller", genesis={"source": 'def run():\n    return execution("adder", x=20, y=1)\n'})
    client = logged_in(root)  # a superuser may execute both
    client.post(run_url(caller), {"kwargs": "{}"})
    outer = Execution.objects.get(parent=None)

    finished = execution_wait(execution=outer, timeout=WAIT_SECONDS)

    assert (finished.status, finished.result) == (Execution.Status.SUCCEEDED, {"sum": 21}), finished.error
    inner = Execution.objects.get(parent=outer)
    outer_panel = client.get(reverse("execution_panel", args=[outer.id])).content.decode()
    inner_page = client.get(reverse("execution_detail", args=[inner.id])).content.decode()
    assert reverse("execution_detail", args=[inner.id]) in outer_panel and "adder" in outer_panel
    assert "Called by" in inner_page and reverse("execution_detail", args=[outer.id]) in inner_page
    admin_page = client.get(reverse("admin:beings_execution_change", args=[outer.id])).content.decode()
    assert reverse("admin:beings_execution_change", args=[inner.id]) in admin_page
