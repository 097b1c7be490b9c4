"""The soul registry's HTML pages: the being page (versions, diff, lineage graph) and the promotion board."""

from __future__ import annotations

import re
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from django.contrib.auth.models import Permission, User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from beings.evolution import being_evolve
from beings.models import BaseBeing, Execution, Promotion
from beings.souls import board
from beings.souls import services as soul_services
from luxsite.tests.fixtures import logged_in

# Production asks for evidence before a promotion; these tests promote to set the scene, the gate is tested on its own.
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("promotion_evidence_waived")]

SVG = "{http://www.w3.org/2000/svg}"

SOURCE = '''\
def run(x):
    """Double a number, then add one."""
    doubled = x * 2
    result = doubled + 1
    return result
'''


def page(being: BaseBeing | uuid.UUID | str) -> str:
    soul = being.soul if isinstance(being, BaseBeing) else being
    return reverse("being_detail", args=[soul])


def lineage_svg(content: str) -> ET.Element:
    """The lineage graph embedded in a page, parsed."""
    match = re.search(r"<svg.*?</svg>", content, re.S)
    assert match, "the page embeds no SVG"
    return ET.fromstring(match.group(0))


@pytest.fixture
def evolved(alice: User, make_being) -> BaseBeing:
    """A being at v3: two evolutions of SOURCE, each adding one line."""
    being = make_being("doubler", genesis={"source": SOURCE}, tags=["math", "demo"])
    being_evolve(being=being, source=SOURCE + "TWO = 2\n", reason="a constant", actor=alice)
    being_evolve(being=being, source=SOURCE + "TWO = 2\nTHREE = 3\n", actor=alice)
    being.refresh_from_db()
    return being


@pytest.fixture
def mutant(alice: User, evolved: BaseBeing) -> BaseBeing:
    """A mutant of ``evolved``: one line of its v3 changed."""
    source = evolved.genesis["source"].replace("* 2", "* 4")
    return being_evolve(being=evolved, source=source, actor=alice).being


# The being page


def test_being_page_shows_the_being_and_every_version(api: Client, evolved: BaseBeing) -> None:
    """The page names the being, shows its current source highlighted and lists v3, v2, v1 with their hashes."""
    versions = [*evolved.genesis["ancestors"], {"version": 3, "hash": evolved.hash}]

    response = api.get(page(evolved))

    content = response.content.decode()
    assert response.status_code == 200
    assert "<h1>doubler" in content
    assert str(evolved.soul) in content
    assert evolved.hash in content
    assert 'class="lux-source"' in content and "THREE" in content
    rows = [row.version for row in response.context["rows"]]
    assert [(version.version, version.hash) for version in rows] == [
        (entry["version"], entry["hash"]) for entry in reversed(versions)
    ]
    assert [version.kind for version in rows] == ["evolution", "evolution", "genesis"]
    for entry in versions:
        assert f'title="{entry["hash"]}">{entry["hash"][:12]}…' in content
        assert f'id="v{entry["version"]}"' in content
    assert '<span class="tag">math</span>' in content


def test_being_page_diffs_the_previous_version_with_the_current_by_default(api: Client, evolved: BaseBeing) -> None:
    """Without a choice, the diff shows v2 beside v3: the line v3 added is marked as added."""
    response = api.get(page(evolved))

    diff = response.context["diff"]
    assert (diff.older.version, diff.newer.version) == (2, 3)
    table = str(diff.table)
    assert re.search(r'<span class="diff_add">THREE&nbsp;=&nbsp;3</span>', table)
    assert "TWO&nbsp;=&nbsp;2" in table  # context around the change
    assert response.context["diff_from"] == evolved.genesis["ancestors"][1]["hash"]
    assert response.context["diff_to"] == evolved.hash


def test_being_page_diffs_two_chosen_versions(api: Client, evolved: BaseBeing) -> None:
    """Choosing v1 and v3 (by full hash and by 12-character prefix) shows both added lines side by side."""
    first = evolved.genesis["ancestors"][0]["hash"]

    response = api.get(page(evolved), {"from": first, "to": evolved.hash[:12]})

    assert response.status_code == 200
    diff = response.context["diff"]
    assert (diff.older.hash, diff.newer.hash) == (first, evolved.hash)
    table = str(diff.table)
    assert table.count('class="diff_add"') == 2
    assert f"v1 · {first[:12]}" in table and f"v3 · {evolved.hash[:12]}" in table
    content = response.content.decode()
    assert f'<option value="{first}" selected>' in content


def test_being_page_diffs_across_a_mutation(api: Client, evolved: BaseBeing, mutant: BaseBeing) -> None:
    """A mutant's page compares its parent's inherited version with its own: the changed line is marked."""
    parent_v3 = mutant.genesis["ancestors"][-1]["hash"]

    response = api.get(page(mutant), {"from": parent_v3, "to": mutant.hash})

    table = str(response.context["diff"].table)
    assert '<span class="diff_chg">' in table
    content = response.content.decode()
    assert "inherited from" in content
    assert page(evolved) in content  # "mutated from" and the inherited versions link to the parent


def test_being_page_of_a_single_version_has_nothing_to_compare(api: Client, make_being) -> None:
    """A being with one version shows it and says there is nothing to compare yet."""
    being = make_being("single", genesis={"source": SOURCE})

    response = api.get(page(being))

    assert response.status_code == 200
    assert "diff" not in response.context
    assert "nothing to compare yet" in response.content.decode()


@pytest.mark.parametrize(
    ("query", "status", "code"),
    [
        ({"from": "not-a-hash", "to": "0" * 64}, 422, "hash_invalid"),
        ({"from": "abc", "to": "abc"}, 422, "hash_invalid"),
        ({"from": "0" * 64, "to": "0" * 12}, 404, "soul_not_found"),
        ({"from": "0" * 64}, 400, "diff_incomplete"),
        ({"to": "f" * 64}, 400, "diff_incomplete"),
    ],
)
def test_being_page_explains_a_bad_diff_choice(
    api: Client, evolved: BaseBeing, query: dict[str, str], status: int, code: str
) -> None:
    """A hash that is malformed, unknown to this lineage, or missing gives the page with the reason and a 4xx."""
    response = api.get(page(evolved), query)

    assert response.status_code == status
    content = response.content.decode()
    assert f'<p class="form-error" role="alert"><strong>{code}</strong>' in content
    assert "diff" not in response.context
    assert "<h1>doubler" in content  # the rest of the page is still there


def test_being_page_does_not_find_a_hash_of_another_being(api: Client, evolved: BaseBeing, make_being) -> None:
    """Only versions of this being's lineage can be compared: another being's hash is not found here."""
    other = make_being("other", genesis={"source": "def run():\n    return 0\n"})

    response = api.get(page(evolved), {"from": other.hash, "to": evolved.hash})

    assert response.status_code == 404
    assert "has no version with hash" in response.content.decode()


def test_being_page_draws_the_lineage_with_its_mutants(api: Client, evolved: BaseBeing, mutant: BaseBeing) -> None:
    """The SVG holds a node per version of the parent and of its mutant, linked to their pages, and a mutation edge."""
    response = api.get(page(evolved))

    svg = lineage_svg(response.content.decode())
    texts = [element.text for element in svg.iter(f"{SVG}text")]
    for entry in [*evolved.genesis["ancestors"], {"hash": evolved.hash}, {"hash": mutant.hash}]:
        assert entry["hash"][:12] in texts
    assert texts.count("v1") == 2 and "v3" in texts
    assert "mutation" in texts and "evolution" in texts
    links = {element.get("{http://www.w3.org/1999/xlink}href") for element in svg.iter(f"{SVG}a")}
    assert {f"{page(evolved)}#v1", f"{page(evolved)}#v3", f"{page(mutant)}#v1", page(mutant)} <= links


def test_being_page_without_graphviz_says_so_and_shows_the_rest(
    api: Client, evolved: BaseBeing, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """With no dot program installed, the page explains why there is no graph instead of failing."""
    monkeypatch.setenv("PATH", str(tmp_path))

    response = api.get(page(evolved))

    content = response.content.decode()
    assert response.status_code == 200
    assert "<svg" not in content
    assert "Graphviz is not installed" in content
    assert response.context["diff"].newer.hash == evolved.hash


def test_being_page_of_a_data_being_has_no_run_button_and_says_why(api: Client, make_being) -> None:
    """A data being holds no code: its page offers no run form but says why, and a run posted anyway is a 409."""
    data = make_being("greetings", kind="data", attributes={"en": "Hello"})
    run_url = reverse("being_run", args=[data.soul])

    response = api.get(page(data))

    content = response.content.decode()
    assert response.status_code == 200
    assert run_url not in content and 'name="kwargs"' not in content
    assert "A data being holds no code to run: only function and class beings run." in content
    refused = api.post(run_url, {"kwargs": "{}"})
    assert refused.status_code == 409
    assert "<strong>not_runnable</strong>" in refused.content.decode()
    assert not Execution.objects.exists()


def test_being_page_of_an_unknown_soul_is_404(api: Client) -> None:
    """A soul no being has gives the 404 error page."""
    response = api.get(page(uuid.uuid4()))

    assert response.status_code == 404
    assert "being_not_found" in response.content.decode()


def test_being_page_with_a_malformed_soul_is_404(api: Client) -> None:
    """A path that is not a uuid matches no page."""
    assert api.get("/beings/not-a-uuid/").status_code == 404


def test_being_page_of_someone_elses_being_is_404(bob: User, evolved: BaseBeing) -> None:
    """Bob may not view alice's being: for him it does not exist (404), and nothing of it is on the page."""
    response = logged_in(bob).get(page(evolved))

    assert response.status_code == 404
    content = response.content.decode()
    assert "being_not_found" in content
    assert evolved.hash not in content and "THREE" not in content


def test_being_page_sends_an_anonymous_visitor_to_log_in(client: Client, evolved: BaseBeing) -> None:
    """A visitor who is not signed in is redirected to the admin login, coming back to the page after."""
    response = client.get(page(evolved))

    assert response.status_code == 302
    assert response["Location"] == f"{reverse('login')}?next={page(evolved)}"


def test_being_page_refuses_post(api: Client, evolved: BaseBeing) -> None:
    """The being page only reads: a POST is 405."""
    assert api.post(page(evolved)).status_code == 405


def test_admin_change_page_and_dashboard_link_to_the_being_page(root: User, make_being) -> None:
    """The admin's "View on site" and the dashboard's version column lead to the being page."""
    being = make_being("linked", genesis={"source": SOURCE}, actor=root)
    client = logged_in(root)

    change = client.get(reverse("admin:beings_basebeing_change", args=[being.soul])).content.decode()
    home = client.get("/").content.decode()

    assert f'href="{page(being)}" class="viewsitelink"' in change
    assert f'<a href="{page(being)}" title="Versions, diffs and lineage">v1</a>' in home


# The promotion board

BOARD = "/souls/"


def promote_url(hash: str, environment: str = "production") -> str:
    return reverse("soul_promote", args=[environment, hash])


def demote_url(hash: str, environment: str = "production") -> str:
    return reverse("soul_demote", args=[environment, hash])


def row_html(content: str, alias: str) -> str:
    """The HTML of the first board group of ``alias``: what runs, then each being that carries it."""
    match = re.search(rf'<tbody class="alias" data-alias="{re.escape(alias)}">.*?</tbody>', content, re.S)
    assert match, f"no board row for {alias}"
    return match.group(0)


def board_row(response, alias: str, environment: str = "production"):
    """The row of ``alias`` on the board of ``environment``."""
    board = next(board for board in response.context["boards"] if board.environment == environment)
    return next(row for row in board.rows if row.alias == alias)


def candidate(row, being: BaseBeing):
    """The candidate of a board row that is ``being``."""
    return next(candidate for candidate in row.candidates if candidate.being.soul == being.soul)


def board_history(response, environment: str = "production") -> list[tuple[str, str, str | None]]:
    """(action, hash, action of the event that ended it) of each history event, newest first."""
    board = next(board for board in response.context["boards"] if board.environment == environment)
    return [
        (item.event.action, item.event.hash, item.ended_by.action if item.ended_by else None) for item in board.history
    ]


@pytest.fixture
def promoter(alice: User) -> User:
    """alice, allowed to promote and demote souls (the global permission)."""
    alice.user_permissions.add(Permission.objects.get(codename="promote_soul"))
    return alice


def test_board_lists_aliases_with_their_production_hash_newest_hash_and_distance(
    promoter: User, api: Client, make_being
) -> None:
    """Each alias shows what production runs and each being that carries it: its newest hash, the versions between."""
    behind = make_being("behind", genesis={"source": SOURCE})
    soul_services.soul_promote(hash=behind.hash, actor=promoter)
    being_evolve(being=behind, source=SOURCE + "TWO = 2\n", actor=promoter)
    being_evolve(being=behind, source=SOURCE + "TWO = 2\nTHREE = 3\n", actor=promoter)
    current = make_being("current", genesis={"source": SOURCE + "CURRENT = 1\n"})
    soul_services.soul_promote(hash=current.hash, actor=promoter)
    parent = make_being("mutated", genesis={"source": SOURCE + "MUTATED = 1\n"})
    soul_services.soul_promote(hash=parent.hash, actor=promoter)
    mutant = being_evolve(being=parent, source=SOURCE.replace("* 2", "* 5"), actor=promoter).being
    diverged = make_being("diverged", genesis={"source": SOURCE + "OLD = 1\n"})
    soul_services.soul_promote(hash=diverged.hash, actor=promoter)
    replacement = make_being("diverged", genesis={"source": "def run():\n    return 'new'\n"})
    fresh = make_being("fresh", genesis={"source": SOURCE + "FRESH = 1\n"})

    response = api.get(BOARD)

    assert response.status_code == 200
    behind.refresh_from_db()
    rows = {alias: board_row(response, alias) for alias in ("behind", "current", "mutated", "diverged", "fresh")}
    behind_candidate = candidate(rows["behind"], behind)
    assert (rows["behind"].active.hash, behind_candidate.being.hash, behind_candidate.behind) == (
        behind.genesis["ancestors"][0]["hash"],
        behind.hash,
        2,
    )
    assert candidate(rows["current"], current).up_to_date and candidate(rows["current"], current).behind == 0
    # The mutant is another being, one version after the promoted parent, across the mutation; the parent runs.
    assert [item.being.soul for item in rows["mutated"].candidates] == [parent.soul, mutant.soul]
    assert (candidate(rows["mutated"], mutant).runs, candidate(rows["mutated"], mutant).behind) == (False, 1)
    assert candidate(rows["mutated"], parent).up_to_date
    assert (candidate(rows["diverged"], replacement).runs, candidate(rows["diverged"], replacement).diverged) == (
        False,
        True,
    )
    assert (rows["fresh"].active, [item.being.hash for item in rows["fresh"].candidates]) == (None, [fresh.hash])
    assert [row.alias for row in response.context["boards"][0].rows][:4] == ["behind", "current", "diverged", "mutated"]

    content = response.content.decode()
    for alias, newest, badge in [
        ("behind", behind, "2 behind"),
        ("current", current, "up to date"),
        ("mutated", mutant, "1 version after"),
        ("diverged", replacement, "another being"),
    ]:
        html = row_html(content, alias)
        assert badge in html
        assert f'title="{rows[alias].active.hash}">{rows[alias].active.hash[:12]}</a>' in html
        assert f'title="{newest.hash}">{newest.hash[:12]}</a>' in html
    fresh_html = row_html(content, "fresh")
    assert "not promoted" in fresh_html and "Promote…" in fresh_html and "Demote" not in fresh_html
    assert "the 200 aliases you may view that were created most recently" in content


def test_board_shows_every_environment(promoter: User, api: Client, make_being) -> None:
    """One section per configured environment; a promotion to staging shows on staging only."""
    being = make_being("staged", genesis={"source": SOURCE})
    soul_services.soul_promote(hash=being.hash, environment="staging", actor=promoter)

    response = api.get(BOARD)

    assert [board.environment for board in response.context["boards"]] == ["production", "staging"]
    assert board_row(response, "staged", "staging").active.hash == being.hash
    assert board_row(response, "staged", "production").active is None
    content = response.content.decode()
    assert 'id="production"' in content and 'id="staging"' in content


def test_promote_from_the_board_asks_for_confirmation_first(
    promoter: User, api: Client, evolved: BaseBeing, unchanged
) -> None:
    """The board's promote button leads to a confirmation page and writes nothing."""
    with unchanged():
        response = api.post(promote_url(evolved.hash), {"alias": "doubler"})

    assert response.status_code == 200
    assert Promotion.objects.count() == 0
    content = response.content.decode()
    assert "Promote doubler to production?" in content
    assert evolved.hash in content
    assert 'name="csrfmiddlewaretoken"' in content and 'name="confirm" value="yes"' in content


def test_promote_confirmed_records_it_and_the_board_lists_it_as_production(
    promoter: User, api: Client, evolved: BaseBeing
) -> None:
    """Confirming promotes the hash with its note; the board then lists it as production, up to date."""
    response = api.post(promote_url(evolved.hash), {"alias": "doubler", "confirm": "yes", "note": "ship it"})

    assert response.status_code == 302
    assert response["Location"] == f"{BOARD}#production"
    promotion = Promotion.objects.get()
    assert (promotion.hash, promotion.alias, promotion.version, promotion.note, promotion.actor_name) == (
        evolved.hash,
        "doubler",
        3,
        "ship it",
        "alice",
    )
    board = api.get(response["Location"])
    assert candidate(board_row(board, "doubler"), evolved).up_to_date
    assert [str(message) for message in board.context["messages"]] == [
        f"Promoted doubler v3 {evolved.hash[:12]} to production."
    ]
    assert board_history(board) == [("promote", evolved.hash, None)]


def test_promoting_another_hash_supersedes_the_active_one(promoter: User, api: Client, evolved: BaseBeing) -> None:
    """With v1 in production, promoting v3 says it supersedes v1, records that, and shows it in the history."""
    first = evolved.genesis["ancestors"][0]["hash"]
    soul_services.soul_promote(hash=first, actor=promoter)

    confirm = api.get(promote_url(evolved.hash))
    response = api.post(promote_url(evolved.hash), {"alias": "doubler", "confirm": "yes"}, follow=True)

    assert f'Production runs v1 <span class="mono" title="{first}">{first[:12]}</span>' in confirm.content.decode()
    assert [str(message) for message in response.context["messages"]] == [
        f"Promoted doubler v3 {evolved.hash[:12]} to production, superseding v1 {first[:12]}."
    ]
    assert board_row(response, "doubler").active.hash == evolved.hash
    assert board_history(response) == [("promote", evolved.hash, None), ("promote", first, "promote")]
    content = response.content.decode()
    assert f'superseding <span class="mono" title="{first}">' in content
    assert "superseded" in content


def test_demote_asks_for_confirmation_then_records_it(
    promoter: User, api: Client, evolved: BaseBeing, unchanged
) -> None:
    """Demoting from the board confirms first; confirmed, production runs nothing for the alias, as the history says."""
    soul_services.soul_promote(hash=evolved.hash, actor=promoter)

    with unchanged():
        confirm = api.post(demote_url(evolved.hash))
    assert Promotion.objects.count() == 1
    assert "Demote doubler from production?" in confirm.content.decode()

    response = api.post(demote_url(evolved.hash), {"confirm": "yes", "note": "rollback"}, follow=True)

    assert [str(message) for message in response.context["messages"]] == [
        f"Demoted doubler v3 {evolved.hash[:12]} from production."
    ]
    row = board_row(response, "doubler")
    assert row.active is None and [item.being.hash for item in row.candidates] == [evolved.hash]
    assert board_history(response) == [("demote", evolved.hash, None), ("promote", evolved.hash, "demote")]
    assert Promotion.objects.filter(action="demote", note="rollback").count() == 1


@pytest.mark.parametrize(
    ("action", "hash", "message"),
    [
        ("promote", "already", "Not promoted (already_promoted)"),
        ("promote", "not-a-hash", "Not promoted (hash_invalid)"),
        ("promote", "0" * 64, "Not promoted (soul_not_found)"),
        ("demote", "current-inactive", "Not demoted (not_promoted)"),
        ("demote", "xyz", "Not demoted (hash_invalid)"),
    ],
)
def test_a_refused_promotion_or_demotion_is_a_message_on_the_board_and_writes_nothing(
    promoter: User, api: Client, evolved: BaseBeing, unchanged, action: str, hash: str, message: str
) -> None:
    """The registry's refusal comes back as an error message on the board; nothing is written."""
    soul_services.soul_promote(hash=evolved.genesis["ancestors"][0]["hash"], actor=promoter)
    if hash == "already":
        hash = evolved.genesis["ancestors"][0]["hash"]
    elif hash == "current-inactive":
        hash = evolved.hash
    count = Promotion.objects.count()
    url = promote_url(hash) if action == "promote" else demote_url(hash)

    with unchanged():
        response = api.post(url, {"alias": "doubler", "confirm": "yes"}, follow=True)

    assert Promotion.objects.count() == count
    messages = [(str(item), item.tags) for item in response.context["messages"]]
    assert len(messages) == 1 and messages[0][0].startswith(message) and messages[0][1] == "error"
    assert response.redirect_chain == [(f"{BOARD}#production", 302)]


@pytest.mark.parametrize(
    ("url", "status", "code"),
    [
        (lambda being: promote_url("not-a-hash"), 422, "hash_invalid"),
        (lambda being: promote_url("0" * 64), 404, "soul_not_found"),
        (lambda being: promote_url(being.hash, "moon"), 422, "environment_unknown"),
        (lambda being: demote_url(being.hash), 409, "not_promoted"),
        (lambda being: demote_url(being.hash, "moon"), 422, "environment_unknown"),
    ],
)
def test_a_confirmation_page_for_a_bad_hash_or_environment_is_an_error_page(
    promoter: User, api: Client, evolved: BaseBeing, url, status: int, code: str
) -> None:
    """Asking to confirm something that cannot be done shows the error page with its status."""
    response = api.get(url(evolved))

    assert response.status_code == status
    assert code in response.content.decode()


def test_a_user_without_the_permission_sees_no_buttons_and_is_refused(
    alice: User, api: Client, evolved: BaseBeing, unchanged
) -> None:
    """Without promote_soul the board has no promote or demote button; posting anyway is a 403 that writes nothing."""
    board = api.get(BOARD)
    assert board.status_code == 200
    assert board.context["promoter"] is False
    content = board.content.decode()
    assert "Promote…" not in content and "Actions" not in content
    assert [item.being.hash for item in board_row(board, "doubler").candidates] == [evolved.hash]

    with unchanged():
        responses = [
            api.post(promote_url(evolved.hash), {"alias": "doubler", "confirm": "yes"}),
            api.post(demote_url(evolved.hash), {"confirm": "yes"}),
            api.get(promote_url(evolved.hash)),
        ]

    assert [response.status_code for response in responses] == [403, 403, 403]
    assert "permission_denied" in responses[0].content.decode()
    assert Promotion.objects.count() == 0


def test_an_anonymous_visitor_is_sent_to_log_in_and_writes_nothing(client: Client, evolved: BaseBeing) -> None:
    """The board and its forms redirect a visitor who is not signed in to the login page."""
    for response in (client.get(BOARD), client.post(promote_url(evolved.hash), {"confirm": "yes"})):
        assert response.status_code == 302
        assert response["Location"].startswith(f"{reverse('login')}?next=")
    assert Promotion.objects.count() == 0


def test_a_promotion_without_the_csrf_token_is_refused(promoter: User, evolved: BaseBeing) -> None:
    """The confirmation form is CSRF protected: a forged POST is a 403 and writes nothing."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(promoter)

    response = client.post(promote_url(evolved.hash), {"alias": "doubler", "confirm": "yes"})

    assert response.status_code == 403
    assert Promotion.objects.count() == 0


def test_the_board_shows_only_aliases_the_user_may_view(
    promoter: User, bob: User, evolved: BaseBeing, make_being
) -> None:
    """Bob sees his own alias, not alice's, nor her promotions in the history."""
    soul_services.soul_promote(hash=evolved.hash, actor=promoter)
    make_being("bobs-own", actor=bob)

    response = logged_in(bob).get(BOARD)

    aliases = [row.alias for row in response.context["boards"][0].rows]
    assert aliases == ["bobs-own"]
    assert board_history(response) == []
    assert "doubler" not in response.content.decode()


def test_a_promoter_sees_a_promoted_alias_outside_the_newest_ones(
    promoter: User, api: Client, evolved: BaseBeing, make_being, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only the newest aliases are listed, but an alias running in an environment always is."""
    soul_services.soul_promote(hash=evolved.hash, actor=promoter)
    make_being("newer", genesis={"source": SOURCE + "NEWER = 1\n"})
    monkeypatch.setattr(board, "BOARD_ALIASES", 1)

    response = api.get(BOARD)

    assert [row.alias for row in response.context["boards"][0].rows] == ["doubler", "newer"]
    assert [row.alias for row in response.context["boards"][1].rows] == ["doubler", "newer"]


def test_the_board_shows_the_last_validation_of_each_environment(
    promoter: User, api: Client, evolved: BaseBeing
) -> None:
    """A failed validation shows as failed with its problem; an environment never validated says so."""
    soul_services.soul_promote(hash=evolved.hash, actor=promoter)
    soul_services.environment_validate(environment="production", actor=promoter)
    # Someone writes a promotion straight into the table, with a genotype that is not its hash's.
    Promotion.objects.create(
        environment="production",
        action="promote",
        hash="a" * 64,
        alias="forged",
        soul=evolved.soul,
        version=1,
        genotype={"type": "function", "source": "evil"},
        actor_name="mallory",
    )
    soul_services.environment_validate(environment="production", actor=promoter)

    response = api.get(BOARD)

    production, staging = response.context["boards"]
    assert (production.validation.ok, production.validation.checked) == (False, 2)
    content = response.content.decode()
    section = content[content.index('id="production"') : content.index('id="staging"')]
    assert '<span class="badge failed">failed</span>' in section
    assert "a" * 64 in section and "stored genotype mismatch" in section
    assert staging.validation is None
    assert "This environment has not been validated yet." in content[content.index('id="staging"') :]


def test_the_board_takes_the_same_number_of_queries_for_more_aliases(promoter: User, api: Client, make_being) -> None:
    """The board reads aliases, promotions, history and validations in a fixed number of queries."""
    for number in range(2):
        soul_services.soul_promote(
            hash=make_being(f"alias-{number}", genesis={"source": f"X = {number}\n"}).hash, actor=promoter
        )
    with CaptureQueriesContext(connection) as few:
        api.get(BOARD)
    for number in range(2, 8):
        soul_services.soul_promote(
            hash=make_being(f"alias-{number}", genesis={"source": f"X = {number}\n"}).hash, actor=promoter
        )

    with CaptureQueriesContext(connection) as many:
        response = api.get(BOARD)

    assert len(response.context["boards"][0].rows) == 8
    assert len(many) == len(few)


def test_being_page_shows_where_its_versions_are_promoted(promoter: User, api: Client, evolved: BaseBeing) -> None:
    """A version promoted to an environment is marked with it in the versions table."""
    soul_services.soul_promote(hash=evolved.genesis["ancestors"][0]["hash"], environment="staging", actor=promoter)

    response = api.get(page(evolved))

    assert [row.environments for row in response.context["rows"]] == [[], [], ["staging"]]
    assert '<span class="badge ok">staging</span>' in response.content.decode()


def test_the_board_only_reads(api: Client) -> None:
    """A POST to the board itself is 405."""
    assert api.post(BOARD).status_code == 405
