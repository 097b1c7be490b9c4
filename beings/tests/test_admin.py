"""The admin as people use it: forms, lists and actions that go through the services and honour object permissions."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse
from guardian.shortcuts import assign_perm

from beings import kinds
from beings.genotype import genesis_hash
from beings.models import BaseBeing
from chronos.models import Change
from luxsite.models import ApiToken
from luxsite.tests.fixtures import logged_in
from luxsite.tokens import token_authenticate, token_create, token_digest
from relations.models import Relationship

pytestmark = pytest.mark.django_db

ADD_URL = reverse("admin:beings_basebeing_add")
CHANGELIST_URL = reverse("admin:beings_basebeing_changelist")
# The two read-only relationship inlines post their (empty) management forms with every change form.
INLINE_MANAGEMENT = {
    f"{prefix}-{field}": value
    for prefix in ("outgoing", "incoming")
    for field, value in (("TOTAL_FORMS", "0"), ("INITIAL_FORMS", "0"), ("MIN_NUM_FORMS", "0"), ("MAX_NUM_FORMS", "0"))
}


def change_url(being: BaseBeing) -> str:
    return reverse("admin:beings_basebeing_change", args=[being.pk])


def delete_url(being: BaseBeing) -> str:
    return reverse("admin:beings_basebeing_delete", args=[being.pk])


def form_data(**overrides: Any) -> dict[str, Any]:
    """What the add/change form posts for a small function being."""
    return {
        "name": "adder",
        "kind": "function",
        "source": "def run(a, b):\r\n    return a + b\r\n",
        "description": "Adds two numbers.",
        "tags": "math, demo",
        "energy_level": "5",
        "attributes": '{"pure": true}',
        "memories": "",
        "self_awareness": "",
        **INLINE_MANAGEMENT,
        **overrides,
    }


def messages_of(response: Any) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


@pytest.fixture
def staff(alice: User) -> User:
    """alice as a staff member who may add beings and holds object permissions on her own ones only."""
    alice.is_staff = True
    alice.save(update_fields=["is_staff"])
    alice.user_permissions.add(Permission.objects.get(codename="add_basebeing"))
    return alice


@pytest.fixture
def staff_client(staff: User) -> Client:
    return logged_in(staff)


@pytest.fixture
def root_client(root: User) -> Client:
    return logged_in(root)


def test_add_form_creates_being_owned_by_actor_and_logged_as_admin(staff: User, staff_client: Client) -> None:
    """Saving the add form creates the being with its genesis, gives the actor its permissions and logs door admin."""
    response = staff_client.post(ADD_URL, form_data())

    assert response.status_code == 302
    being = BaseBeing.objects.named("adder").get()
    source = "def run(a, b):\n    return a + b\n"
    assert {key: being.genesis[key] for key in ("name", "type", "source", "description", "version", "ancestors")} == {
        "name": "adder",
        "type": "function",
        "source": source,
        "description": "Adds two numbers.",
        "version": 1,
        "ancestors": [],
    }
    assert being.genesis["hash"] == genesis_hash({"type": "function", "source": source})
    assert being.tags == ["math", "demo"]
    assert being.energy_level == 0  # earned by runs: the form of a user who is not a superuser does not set it
    assert being.attributes == {"pure": True}
    assert being.memories == []
    fresh = User.objects.get(pk=staff.pk)
    assert all(fresh.has_perm(f"beings.{action}_basebeing", being) for action in ("view", "change", "delete"))
    change = Change.objects.get(table="base_beings", row_id=being.soul, operation="INSERT")
    assert change.context["door"] == "admin"
    assert change.context["actor"] == "alice"
    assert response["Location"] == CHANGELIST_URL


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"source": "def run(:\n    pass\n"}, "source", "not valid Python"),
        ({"name": "   "}, "name", "This field is required"),
        ({"tags": "ok, " + "x" * 65}, "tags", "longer than"),
        ({"attributes": "[1, 2]"}, "attributes", "must be a JSON object"),
        ({"attributes": "{not json"}, "attributes", "Enter a valid JSON"),
        ({"energy_level": str(2**31)}, "energy_level", "32-bit"),
    ],
)
def test_invalid_add_form_shows_error_on_field_and_creates_nothing(
    root_client: Client, unchanged: Callable[..., Any], overrides: dict[str, str], field: str, message: str
) -> None:
    """A being the service would refuse is shown back with the reason next to the field, and nothing is stored."""
    with unchanged():
        response = root_client.post(ADD_URL, form_data(**overrides))

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert message in " ".join(errors[field])


def test_staff_changelist_shows_only_beings_they_may_view(
    staff: User, bob: User, staff_client: Client, make_being: Callable[..., BaseBeing]
) -> None:
    """A staff member's list holds their own beings, not other people's nor the core beings."""
    make_being("mine-alpha", actor=staff)
    make_being("bobs-secret", actor=bob)

    response = staff_client.get(CHANGELIST_URL)

    assert response.status_code == 200
    names = [being.name for being in response.context["cl"].result_list]
    assert names == ["mine-alpha"]
    assert "bobs-secret" not in response.content.decode()


def test_superuser_changelist_shows_every_being(
    root_client: Client, bob: User, make_being: Callable[..., BaseBeing]
) -> None:
    """A superuser's list holds everyone's beings, the core ones included."""
    make_being("mine-alpha")
    make_being("bobs-secret", actor=bob)

    response = root_client.get(CHANGELIST_URL)

    names = {being.name for being in response.context["cl"].result_list}
    assert {"mine-alpha", "bobs-secret", "Kernel", "IOQueue"} <= names


def test_changelist_search_and_filters_find_beings(root_client: Client, make_being: Callable[..., BaseBeing]) -> None:
    """The list finds beings by part of the name, a whole soul or a tag, and filters by kind, tag and energy."""
    adder = make_being("adder", tags=["math"], energy_level=5)
    table = make_being("lookup-table", kind="data", tags=["tables"], energy_level=100)

    def names(**query: str) -> set[str]:
        return {being.name for being in root_client.get(CHANGELIST_URL, query).context["cl"].result_list}

    assert names(q="DDE") == {"adder"}
    assert names(q=str(table.soul)) == {"lookup-table"}
    assert names(q="math") == {"adder"}
    assert names(kind="data") == {"lookup-table"}
    assert names(tag="math") == {"adder"}
    assert names(energy="low") == {"adder"}
    assert adder.name not in names(energy="full")


def test_staff_cannot_open_someone_elses_being(
    staff_client: Client, bob: User, make_being: Callable[..., BaseBeing]
) -> None:
    """Another person's being does not open for a staff member without permission on it."""
    theirs = make_being("bobs-secret", actor=bob)

    response = staff_client.get(change_url(theirs))

    assert response.status_code == 302
    assert "bobs-secret" not in staff_client.get(response["Location"]).content.decode()


def test_change_page_shows_highlighted_source_and_pretty_genesis(
    root_client: Client, make_being: Callable[..., BaseBeing]
) -> None:
    """The change page shows the source highlighted by Pygments and the genesis as indented JSON."""
    being = make_being("adder", genesis={"source": "def run(a, b):\n    return a + b\n"})

    content = root_client.get(change_url(being)).content.decode()

    assert re.search(r'<span style="[^"]+">def</span>', content)
    assert re.search(r'<span style="[^"]+">run</span>', content)
    assert '<pre class="lux-json">{\n  &quot;hash&quot;: &quot;' in content
    assert str(being.soul) in content


def test_change_form_updates_through_service_and_keeps_other_genesis_keys(
    staff: User, staff_client: Client, make_being: Callable[..., BaseBeing]
) -> None:
    """Saving the change form updates the being, keeps genesis keys the form does not show, and logs door admin."""
    being = make_being(
        "adder",
        actor=staff,
        genesis={"author": "alice", "workload": "cpu", "source": "def run(a, b):\n    return a + b\n"},
    )

    evolved = 'def run(a, b):\n    """Add."""\n    return a + b\n'
    response = staff_client.post(
        change_url(being), form_data(source=evolved, tags="math", energy_level="9", reason="document it")
    )

    assert response.status_code == 302
    being.refresh_from_db()
    assert being.genesis["source"] == evolved
    assert being.version == 2
    assert being.genesis["origin"]["reason"] == "document it"
    assert being.genesis["author"] == "alice"
    assert being.genesis["workload"] == "cpu"
    assert being.tags == ["math"]
    assert being.energy_level == 0  # read-only for a user who is not a superuser
    changes = Change.objects.filter(row_id=being.soul, operation="UPDATE")
    assert {change.context["door"] for change in changes} == {"admin"}


def test_view_only_being_shows_values_without_a_form(
    staff: User, staff_client: Client, bob: User, make_being: Callable[..., BaseBeing]
) -> None:
    """A being the user may only view shows its fields read-only and refuses a posted change."""
    being = make_being("shared", actor=bob, attributes={"colour": "blue"})
    assign_perm("beings.view_basebeing", staff, being)

    response = staff_client.get(change_url(being))

    content = response.content.decode()
    assert response.status_code == 200
    assert 'name="name"' not in content
    assert "&quot;colour&quot;: &quot;blue&quot;" in content
    assert staff_client.post(change_url(being), form_data(name="stolen")).status_code == 403
    being.refresh_from_db()
    assert being.name == "shared"


def test_core_being_is_read_only(root_client: Client, unchanged: Callable[..., Any]) -> None:
    """Even a superuser sees a core being read-only and cannot change or delete it."""
    kernel = BaseBeing.objects.get(soul=kinds.core_soul("Kernel"))

    content = root_client.get(change_url(kernel)).content.decode()

    assert 'name="name"' not in content
    assert "Kernel" in content
    with unchanged():
        assert root_client.post(change_url(kernel), form_data(name="Hacked")).status_code == 403
        assert root_client.post(delete_url(kernel), {"post": "yes"}).status_code == 403


def test_delete_of_being_with_relationships_shows_error_and_deletes_nothing(
    root_client: Client,
    make_being: Callable[..., BaseBeing],
    make_link: Callable[..., Relationship],
    unchanged: Callable[..., Any],
) -> None:
    """Deleting a linked being is refused by the service: the admin says why and the being stays."""
    source, target = make_being("caller"), make_being("callee")
    make_link(source, target, tags=["invokes"])

    with unchanged():
        response = root_client.post(delete_url(source), {"post": "yes"}, follow=True)

    assert response.status_code == 200
    assert any("relationship(s); delete them first" in message for message in messages_of(response))
    assert BaseBeing.objects.filter(pk=source.pk).exists()


def test_delete_of_free_being_goes_through(root_client: Client, make_being: Callable[..., BaseBeing]) -> None:
    """A being without relationships is deleted from its delete page, and the change log says door admin."""
    being = make_being("lonely")

    response = root_client.post(delete_url(being), {"post": "yes"})

    assert response.status_code == 302
    assert not BaseBeing.objects.filter(pk=being.pk).exists()
    assert Change.objects.get(row_id=being.pk, operation="DELETE").context["door"] == "admin"


def test_bulk_delete_deletes_what_it_may_and_reports_each_refusal(
    root_client: Client, make_being: Callable[..., BaseBeing], make_link: Callable[..., Relationship]
) -> None:
    """The bulk delete action deletes free beings and reports each being the service refuses."""
    linked, other, free = make_being("linked"), make_being("other"), make_being("free")
    make_link(linked, other)
    kernel = BaseBeing.objects.get(soul=kinds.core_soul("Kernel"))

    response = root_client.post(
        CHANGELIST_URL,
        {"action": "delete_selected", "post": "yes", "_selected_action": [linked.pk, free.pk, kernel.pk]},
        follow=True,
    )

    remaining = set(BaseBeing.objects.filter(pk__in=[linked.pk, free.pk, kernel.pk]).values_list("pk", flat=True))
    assert remaining == {linked.pk, kernel.pk}
    texts = messages_of(response)
    assert any(text.startswith("linked") and "delete them first" in text for text in texts)
    assert any(text.startswith("Kernel") and "may not delete" in text for text in texts)
    assert "Deleted 1 being." in texts


def test_bulk_delete_asks_for_confirmation_first(root_client: Client, make_being: Callable[..., BaseBeing]) -> None:
    """Choosing the bulk delete action shows a confirmation page and deletes nothing yet."""
    being = make_being("keep-me")

    response = root_client.post(CHANGELIST_URL, {"action": "delete_selected", "_selected_action": [being.pk]})

    assert response.status_code == 200
    assert "Are you sure" in response.content.decode()
    assert BaseBeing.objects.filter(pk=being.pk).exists()


def test_relationships_inlines_show_both_directions(
    root_client: Client, make_being: Callable[..., BaseBeing], make_link: Callable[..., Relationship]
) -> None:
    """A being's page lists relationships out and in, with the other end, the tags and a link to the relationship."""
    caller, callee = make_being("caller"), make_being("callee")
    link = make_link(caller, callee, tags=["invokes"], energy_level=7)
    relationship_url = reverse("admin:relations_relationship_change", args=[link.pk])

    caller_page = root_client.get(change_url(caller)).content.decode()
    callee_page = root_client.get(change_url(callee)).content.decode()

    assert "Outgoing relationships" in caller_page
    assert f'href="{change_url(callee)}">callee</a>' in caller_page
    assert relationship_url in caller_page
    assert "invokes" in caller_page
    assert f'href="{change_url(caller)}">caller</a>' in callee_page
    assert relationship_url in callee_page


def test_object_permissions_page_is_for_superusers(
    staff: User, staff_client: Client, root_client: Client, make_being: Callable[..., BaseBeing]
) -> None:
    """Only a superuser may open a being's object permissions page; its owner may not grant itself more."""
    being = make_being("mine", actor=staff)
    url = reverse("admin:beings_basebeing_permissions", args=[being.pk])

    assert staff_client.get(url).status_code == 403
    assert "Object permissions" not in staff_client.get(change_url(being)).content.decode()
    assert root_client.get(url).status_code == 200


def test_relationship_admin_links_through_service_and_refuses_self_links(
    root_client: Client, make_being: Callable[..., BaseBeing], unchanged: Callable[..., Any]
) -> None:
    """Adding a relationship links two beings through the service; a self-link is refused with a message."""
    source, target = make_being("caller"), make_being("callee")
    add_url = reverse("admin:relations_relationship_add")
    data = {"target": target.pk, "tags": "invokes", "energy_level": "3", "genesis": "", "attributes": "{}"}

    response = root_client.post(add_url, {"source": source.pk, **data})

    assert response.status_code == 302
    link = Relationship.objects.get()
    assert (link.source_id, link.target_id, link.tags, link.energy_level) == (source.pk, target.pk, ["invokes"], 3)
    assert Change.objects.get(row_id=link.pk, operation="INSERT").context["door"] == "admin"
    with unchanged():
        refused = root_client.post(add_url, {"source": target.pk, **data, "target": target.pk}, follow=True)
    assert any("may not link to itself" in message for message in messages_of(refused))


def test_token_admin_shows_secret_once_and_stores_only_its_digest(root: User, root_client: Client) -> None:
    """Adding a token shows its secret in one message; the database keeps only its digest and prefix."""
    response = root_client.post(reverse("admin:luxsite_apitoken_add"), {"user": root.pk, "name": "ci"}, follow=True)

    shown = [text for text in messages_of(response) if "it will not be shown again" in text]
    assert len(shown) == 1
    secret = re.search(r"lux_\S+", shown[0]).group(0)  # type: ignore[union-attr]
    token = ApiToken.objects.get(name="ci")
    assert token.digest == token_digest(secret)
    assert secret not in {token.digest, token.prefix, token.name}
    assert token_authenticate(secret) == root
    page = root_client.get(reverse("admin:luxsite_apitoken_change", args=[token.pk])).content.decode()
    assert secret not in page
    assert 'name="_save"' not in page
    assert secret not in root_client.get(reverse("admin:luxsite_apitoken_changelist")).content.decode()


def test_token_revoke_action_revokes(root: User, root_client: Client) -> None:
    """The revoke action revokes the selected tokens, which then authenticate no one."""
    token, secret = token_create(user=root, name="old")

    root_client.post(reverse("admin:luxsite_apitoken_changelist"), {"action": "revoke", "_selected_action": [token.pk]})

    token.refresh_from_db()
    assert token.revoked_at is not None
    assert token_authenticate(secret) is None


def test_change_log_admin_is_read_only(root_client: Client, make_being: Callable[..., BaseBeing]) -> None:
    """The change log lists captured changes with door and actor, and offers no way to add, edit or delete."""
    being = make_being("logged")
    change = Change.objects.get(row_id=being.soul, operation="INSERT")
    change_page = reverse("admin:chronos_change_change", args=[change.pk])

    listing = root_client.get(reverse("admin:chronos_change_changelist"))
    page = root_client.get(change_page).content.decode()

    assert change in listing.context["cl"].result_list
    assert "alice" in listing.content.decode()
    assert 'name="_save"' not in page
    assert root_client.get(reverse("admin:chronos_change_add")).status_code == 403
    assert (
        root_client.post(reverse("admin:chronos_change_delete", args=[change.pk]), {"post": "yes"}).status_code == 403
    )
    assert root_client.post(change_page, {}).status_code == 403
    assert Change.objects.filter(pk=change.pk).exists()


def test_being_autocomplete_offers_only_beings_the_user_may_view(
    staff: User, staff_client: Client, bob: User, make_being: Callable[..., BaseBeing]
) -> None:
    """Picking the ends of a new relationship offers a staff member their own beings, never other people's."""
    mine = make_being("adder-mine", actor=staff)
    make_being("adder-bobs", actor=bob)

    response = staff_client.get(
        reverse("admin:autocomplete"),
        {"app_label": "relations", "model_name": "relationship", "field_name": "source", "term": "adder"},
    )

    assert response.status_code == 200
    assert [result["id"] for result in response.json()["results"]] == [str(mine.pk)]


ADDER = "def run(a, b):\n    return a + b\n"


def form_being(make_being: Callable[..., BaseBeing], actor: User) -> BaseBeing:
    """A being holding exactly what ``form_data()`` posts, so that a post changes only what it overrides."""
    return make_being(
        "adder",
        actor=actor,
        genesis={"source": ADDER, "description": "Adds two numbers."},
        tags=["math", "demo"],
        energy_level=5,
        attributes={"pure": True},
    )


def test_change_form_mutation_links_to_the_new_being_and_leaves_the_parent(
    staff: User, staff_client: Client, make_being: Callable[..., BaseBeing]
) -> None:
    """A changed line in the form makes a mutant: the message links to it and the parent keeps its code."""
    being = form_being(make_being, staff)
    before = BaseBeing.objects.filter(pk=being.pk).values("genesis", "memories").get()

    response = staff_client.post(
        change_url(being), form_data(source=ADDER.replace("a + b", "a - b"), reason="subtract"), follow=True
    )

    assert response.status_code == 200
    mutant = BaseBeing.objects.get(genesis__contains={"parent": {"soul": str(being.soul)}})
    assert [text for text in messages_of(response) if "mutation" in text] == [
        f'The change was a mutation: it made a new being, <a href="{change_url(mutant)}">{mutant.soul}</a>.'
    ]
    assert mutant.genesis["source"] == ADDER.replace("a + b", "a - b")
    assert mutant.genesis["origin"]["reason"] == "subtract"
    assert BaseBeing.objects.filter(pk=being.pk).values("genesis", "memories").get() == before


def test_change_form_refuses_a_kind_change_and_writes_nothing(
    staff: User, staff_client: Client, make_being: Callable[..., BaseBeing], unchanged: Callable[..., Any]
) -> None:
    """The kind is part of the genotype: changing it in the form is refused with the reason, nothing stored."""
    being = form_being(make_being, staff)

    with unchanged():
        response = staff_client.post(change_url(being), form_data(kind="class", source=ADDER), follow=True)

    assert any("changes only by evolving the being" in text for text in messages_of(response))
    assert BaseBeing.objects.get(pk=being.pk).kind == "function"


def test_change_form_with_the_same_source_makes_no_version(
    staff: User, staff_client: Client, make_being: Callable[..., BaseBeing], unchanged: Callable[..., Any]
) -> None:
    """Saving the form with the same source and a reason does not make a version."""
    being = form_being(make_being, staff)

    with unchanged():
        response = staff_client.post(change_url(being), form_data(source=ADDER, reason="nothing really"))

    assert response.status_code == 302
    assert BaseBeing.objects.get(pk=being.pk).version == 1


@pytest.mark.usefixtures("transactional_db")
def test_change_form_evolves_in_the_background_through_a_worker(
    celery_worker: Any, staff: User, staff_client: Client, make_being: Callable[..., BaseBeing]
) -> None:
    """With "Evolve in the background" ticked the form answers at once and a worker makes the next version."""
    being = form_being(make_being, staff)
    evolved = ADDER + "LIMIT = 10\n"

    response = staff_client.post(change_url(being), form_data(source=evolved, evolve_async="on"), follow=True)

    assert any("handed to a worker" in text for text in messages_of(response))
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and BaseBeing.objects.get(pk=being.pk).version == 1:
        time.sleep(0.1)
    being.refresh_from_db()
    assert (being.version, being.genesis["source"], being.genesis["origin"]["actor"]) == (2, evolved, "alice")


def test_change_form_evolves_a_being_version_after_version(
    staff: User, staff_client: Client, make_being: Callable[..., BaseBeing]
) -> None:
    """Three source edits in a row, each a few added lines, make versions 2, 3 and 4 of the same being."""
    being = form_being(make_being, staff)
    source = ADDER
    for version, line in ((2, "LIMIT = 10\n"), (3, "FLOOR = 0\n"), (4, "CEILING = 99\n")):
        source += line
        response = staff_client.post(
            change_url(being), form_data(source=source, reason=f"add {line.split()[0]}"), follow=True
        )
        assert response.status_code == 200
        assert f"Evolution: now version {version}." in messages_of(response)
    being.refresh_from_db()
    assert (being.version, being.genesis["source"]) == (4, source)
    assert [entry["version"] for entry in being.genesis["ancestors"]] == [1, 2, 3]
    assert being.genesis["origin"]["reason"] == "add CEILING"


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (ADDER + "def broken(:\n", "Source is not valid Python"),
        ("x" * 70_000, "Source is"),
    ],
)
def test_change_form_refuses_a_bad_source_in_the_users_words(
    staff: User,
    staff_client: Client,
    make_being: Callable[..., BaseBeing],
    unchanged: Callable[..., Any],
    source: str,
    message: str,
) -> None:
    """A source that cannot be stored is an error on the source field, worded without genesis keys."""
    being = form_being(make_being, staff)
    staff_client.post(change_url(being), form_data(source=ADDER + "LIMIT = 10\n"))  # version 2

    with unchanged():
        response = staff_client.post(change_url(being), form_data(source=source))

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert list(errors) == ["source"]
    assert errors["source"][0].startswith(message)
    assert "genesis" not in response.content.decode().split("errorlist", 1)[1].split("</ul>", 1)[0]


def test_changelist_shows_version_and_page_and_tells_a_mutant_from_its_parent(
    staff: User, staff_client: Client, make_being: Callable[..., BaseBeing]
) -> None:
    """Each row has its version and a link to its being page; a mutant sharing the alias names its parent."""
    being = form_being(make_being, staff)
    staff_client.post(change_url(being), form_data(source=ADDER + "LIMIT = 10\n"))  # v2
    staff_client.post(change_url(being), form_data(source=ADDER.replace("a + b", "a - b")))  # a mutant
    mutant = BaseBeing.objects.get(genesis__contains={"parent": {"soul": str(being.soul)}})

    rows = re.findall(r"<tr>.*?</tr>", staff_client.get(CHANGELIST_URL).content.decode(), re.S)

    [parent_row] = [row for row in rows if f'href="{reverse("being_detail", args=[being.soul])}"' in row]
    [mutant_row] = [row for row in rows if f'href="{reverse("being_detail", args=[mutant.soul])}"' in row]
    assert ">v2<" in parent_row and "open page" in parent_row and "mutant of" not in parent_row
    assert ">v1<" in mutant_row
    assert f'mutant of <span title="{being.soul}">{str(being.soul)[:8]}…</span> v2' in mutant_row


def test_only_a_superuser_edits_energy_in_the_admin(
    staff: User, staff_client: Client, root_client: Client, make_being: Callable[..., BaseBeing]
) -> None:
    """Energy is earned by runs: staff see it read-only and a posted value is ignored; a superuser sets it."""
    being = make_being("adder", actor=staff, genesis={"source": "def run(a, b):\n    return a + b\n"})
    source = being.genesis["source"].replace("\n", "\r\n")

    page = staff_client.get(change_url(being)).content.decode()
    staff_client.post(change_url(being), form_data(source=source, energy_level="99"))
    being.refresh_from_db()
    assert 'name="energy_level"' not in page
    assert being.energy_level == 0

    root_client.post(change_url(being), form_data(source=source, energy_level="42"))
    being.refresh_from_db()
    assert being.energy_level == 42
