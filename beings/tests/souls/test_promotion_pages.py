"""Promotion pages: any version promoted from the being page, the board's beings and owners, the confirmations.

A promotion names the being that runs it and shows whose it is; replacing another owner's being
under an alias needs a confirmation that says so; someone who does not manage environments sees
only the promotions of beings they may view.
"""

from __future__ import annotations

import html
import re
from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from beings.evolution import being_evolve
from beings.models import BaseBeing, Promotion
from beings.souls import selectors as soul_selectors
from beings.souls import services as soul_services
from luxsite.tests.fixtures import BeingMaker, logged_in

# Production asks for evidence before a promotion; these tests promote to set the scene, the gate is tested on its own.
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("promotion_evidence_waived")]

BOARD = "/souls/"
SOURCE = "def run(x):\n    doubled = x * 2\n    return doubled\n"


def page(being: BaseBeing) -> str:
    return reverse("being_detail", args=[being.soul])


def promote_url(hash: str, environment: str = "production", **query: str) -> str:
    url = reverse("soul_promote", args=[environment, hash])
    return f"{url}?{'&'.join(f'{key}={value}' for key, value in query.items())}" if query else url


def text(response) -> str:
    """The page as a reader sees its text: entities decoded, tags and runs of blanks collapsed."""
    words = re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", response.content.decode())))
    return re.sub(r" ([,.:;)])", r"\1", words)


def board_row(response, alias: str, environment: str = "production"):
    board = next(board for board in response.context["boards"] if board.environment == environment)
    return next(row for row in board.rows if row.alias == alias)


def candidate_html(content: str, being: BaseBeing) -> str:
    """The HTML of every board line of ``being`` (one per environment), joined."""
    lines = re.findall(rf'<tr class="candidate[^"]*" data-soul="{being.soul}">.*?</tr>', content, re.S)
    assert lines, f"no board line for being {being.soul}"
    return "".join(lines)


@pytest.fixture
def carol(django_user_model: type[User]) -> User:
    return django_user_model.objects.create_user("carol", password="carol-password-1")


@pytest.fixture
def promoter(root: User) -> Client:
    """A superuser: may promote, and view every being."""
    return logged_in(root)


@pytest.fixture
def evolved(alice: User, root: User, make_being: BeingMaker) -> BaseBeing:
    """alice's ``doubler`` at v3: v2 by alice ("a constant"), v3 by root ("third")."""
    being = make_being("doubler", genesis={"source": SOURCE})
    being_evolve(being=being, source=SOURCE + "TWO = 2\n", reason="a constant", actor=alice)
    being_evolve(being=being, source=SOURCE + "TWO = 2\nTHREE = 3\n", reason="third", actor=root)
    being.refresh_from_db()
    return being


@pytest.fixture
def job_of_two_owners(alice: User, carol: User, root: User, make_being: BeingMaker) -> tuple[BaseBeing, BaseBeing]:
    """alice's ``alice-job`` runs in production; later carol created a being of the same name."""
    alices = make_being("alice-job", genesis={"source": SOURCE})
    soul_services.soul_promote(hash=alices.hash, actor=root, note="alice's release", soul=alices.soul)
    carols = make_being("alice-job", genesis={"source": "def run(x):\n    return 'carol'\n"}, actor=carol)
    return alices, carols


# The being page


def test_being_page_offers_each_version_to_each_environment_to_a_promoter(
    promoter: Client, api: Client, root: User, evolved: BaseBeing
) -> None:
    """Every version has a promote link per environment naming the being; one already there has none; alice has none."""
    first = evolved.genesis["ancestors"][0]["hash"]
    soul_services.soul_promote(hash=first, environment="staging", actor=root, soul=evolved.soul)
    hashes = [first, evolved.genesis["ancestors"][1]["hash"], evolved.hash]

    content = promoter.get(page(evolved)).content.decode()

    for number, hash in enumerate(hashes, start=1):
        for environment in ("production", "staging"):
            link = (
                f'href="{promote_url(hash, environment)}?soul={evolved.soul}" '
                f'aria-label="Promote v{number} to {environment}"'
            )
            assert (link in content) is not (number == 1 and environment == "staging"), (number, environment)
    alices = api.get(page(evolved)).content.decode()
    assert "/promote/" not in alices and "<th>Promote</th>" not in alices


def test_versions_table_shows_each_versions_author_and_reason(api: Client, evolved: BaseBeing) -> None:
    """v3 was made by root for "third", v2 by alice for "a constant", v1 by alice when she created the being."""
    response = api.get(page(evolved))

    rows = response.context["rows"]
    assert [(row.version.version, row.actor, row.reason) for row in rows] == [
        (3, "root", "third"),
        (2, "alice", "a constant"),
        (1, "alice", ""),
    ]
    content = response.content.decode()
    assert '<td class="author">root</td>\n          <td class="reason">third</td>' in content
    assert '<td class="author">alice</td>\n          <td class="reason">—</td>' in content


def test_promoting_an_older_version_from_the_being_page_records_that_being(
    promoter: Client, evolved: BaseBeing
) -> None:
    """The link of v1 opens a confirmation naming the being, its owner and that it is an older version; confirming
    promotes v1 of that being."""
    first = evolved.genesis["ancestors"][0]["hash"]

    confirm = promoter.get(promote_url(first, soul=str(evolved.soul)))

    assert confirm.status_code == 200
    seen = text(confirm)
    assert "Promote doubler to production?" in seen
    assert f"Being doubler {evolved.soul}" in seen and "Owner alice" in seen
    assert "v1 genesis (an older version: the being is at v3)" in seen
    assert f'<input type="hidden" name="soul" value="{evolved.soul}">' in confirm.content.decode()

    response = promoter.post(promote_url(first), {"confirm": "yes", "soul": str(evolved.soul), "alias": "doubler"})

    assert response.status_code == 302
    promotion = Promotion.objects.get()
    assert (promotion.hash, promotion.version, promotion.soul, promotion.alias) == (first, 1, evolved.soul, "doubler")


def test_promoting_a_data_being_whose_hash_others_share_promotes_that_being(
    promoter: Client, bob: User, make_being: BeingMaker
) -> None:
    """Two data beings have one genotype, so one hash: from the second's page, the second is the one promoted."""
    colours = make_being("colours", kind="data", attributes={"red": 1})
    sizes = make_being("sizes", kind="data", attributes={"small": 1}, actor=bob)
    assert colours.hash == sizes.hash
    link = f"{promote_url(sizes.hash)}?soul={sizes.soul}"
    assert link in promoter.get(page(sizes)).content.decode()

    confirm = promoter.get(link)
    response = promoter.post(link, {"confirm": "yes", "soul": str(sizes.soul), "alias": "sizes"}, follow=True)

    seen = text(confirm)
    assert "Owner bob" in seen
    assert "1 other being you may view holds this hash (colours" in seen
    assert "the same genotype, so the same soul hash" in seen
    assert [str(message) for message in response.context["messages"]] == [
        f"Promoted sizes v1 {sizes.hash[:12]} to production."
    ]
    assert Promotion.objects.get().soul == sizes.soul


def test_confirmation_without_a_being_lists_the_beings_that_hold_the_hash(
    promoter: Client, bob: User, make_being: BeingMaker
) -> None:
    """Asked for a hash several beings hold, the page lists them with their owners and offers no form."""
    colours = make_being("colours", kind="data", attributes={"red": 1})
    sizes = make_being("sizes", kind="data", attributes={"small": 1}, actor=bob)

    response = promoter.get(promote_url(colours.hash))

    assert response.status_code == 200
    seen = text(response)
    assert "2 beings you may view hold hash" in seen
    assert f"colours {colours.soul} v1, owned by alice" in seen and f"sizes {sizes.soul} v1, owned by bob" in seen
    content = response.content.decode()
    assert 'name="confirm"' not in content
    assert f'href="?soul={sizes.soul}&amp;alias=colours"' in content


# The board


def test_board_lists_an_alias_by_being_and_owner(
    promoter: Client, job_of_two_owners: tuple[BaseBeing, BaseBeing]
) -> None:
    """alice's running being and carol's later one are two candidates of alias-job, each with its owner; carol's is
    marked as another owner's, not offered as alice's next version."""
    alices, carols = job_of_two_owners

    response = promoter.get(BOARD)

    row = board_row(response, "alice-job")
    assert (row.active.soul, row.active_owners) == (alices.soul, ["alice"])
    assert [(item.being.soul, item.owners, item.runs, item.other_owner) for item in row.candidates] == [
        (alices.soul, ["alice"], True, False),
        (carols.soul, ["carol"], False, True),
    ]
    content = response.content.decode()
    alice_line, carol_line = candidate_html(content, alices), candidate_html(content, carols)
    assert '<td class="owner">alice</td>' in alice_line and "up to date" in alice_line
    assert "carol" in carol_line and "another owner" in carol_line and "another being" in carol_line
    assert '<td class="owner active-owner">alice</td>' in content


def test_board_names_each_candidates_being_and_its_parent(promoter: Client, alice: User, evolved: BaseBeing) -> None:
    """A mutant is listed under its alias by its short soul, as a mutant of the being it came from."""
    mutant = being_evolve(being=evolved, source=SOURCE.replace("* 2", "* 4"), actor=alice).being

    response = promoter.get(BOARD)

    row = board_row(response, "doubler")
    assert {item.being.soul: item.mutant_of for item in row.candidates} == {mutant.soul: "doubler", evolved.soul: None}
    line = candidate_html(response.content.decode(), mutant)
    assert f"{str(mutant.soul)[:8]}…" in line and "mutant of doubler" in line


def test_board_version_picker_offers_every_version_and_opens_its_confirmation(
    promoter: Client, evolved: BaseBeing
) -> None:
    """The picker of a being lists v3, v2 and v1; choosing v1 opens the confirmation of v1 of that being."""
    first = evolved.genesis["ancestors"][0]["hash"]

    board = promoter.get(BOARD)

    line = candidate_html(board.content.decode(), evolved)
    assert re.findall(r'<option value="([0-9a-f]{64})">v(\d)', line)[:3] == [
        (evolved.hash, "3"),
        (evolved.genesis["ancestors"][1]["hash"], "2"),
        (first, "1"),
    ]
    chooser = reverse("soul_promote_choose", args=["production"])
    assert f'action="{chooser}"' in line
    response = promoter.get(chooser, {"hash": first, "soul": str(evolved.soul), "alias": "doubler"})
    assert response.status_code == 302
    location = urlsplit(response["Location"])
    assert location.path == reverse("soul_promote", args=["production", first])
    assert parse_qs(location.query) == {"soul": [str(evolved.soul)], "alias": ["doubler"]}
    confirm = promoter.get(response["Location"])
    assert confirm.context["plan"].version.version == 1
    assert confirm.context["plan"].version.holder.soul == evolved.soul


def test_board_says_why_two_data_beings_show_the_same_hash(promoter: Client, bob: User, make_being: BeingMaker) -> None:
    """Data beings with one genotype share their hash: the board says so beside it, naming the other being."""
    colours = make_being("colours", kind="data", attributes={"red": 1})
    sizes = make_being("sizes", kind="data", attributes={"small": 1}, actor=bob)

    content = promoter.get(BOARD).content.decode()

    for being, other in ((colours, sizes), (sizes, colours)):
        line = html.unescape(candidate_html(content, being))
        assert f'title="{being.hash}">{being.hash[:12]}</a>' in line
        assert f"same hash as {other.name}" in line and "same genotype, same soul hash" in line


def test_board_shows_someone_who_is_not_a_promoter_only_promotions_of_beings_they_may_view(
    carol: User, job_of_two_owners: tuple[BaseBeing, BaseBeing]
) -> None:
    """carol named a being alice-job: her board lists her being, but nothing of alice's promotion or its history."""
    alices, carols = job_of_two_owners

    response = logged_in(carol).get(BOARD)

    row = board_row(response, "alice-job")
    assert row.active is None
    assert [item.being.soul for item in row.candidates] == [carols.soul]
    assert response.context["boards"][0].history == []
    content = response.content.decode()
    assert alices.hash[:12] not in content and str(alices.soul)[:8] not in content
    assert "alice&#x27;s release" not in content and "alice's release" not in content


# The confirmation pages


def test_promoting_another_owners_being_needs_an_explicit_confirmation(
    promoter: Client, job_of_two_owners: tuple[BaseBeing, BaseBeing]
) -> None:
    """Replacing alice's being with carol's asks for a checkbox that says so; refused without it, nothing written."""
    alices, carols = job_of_two_owners
    url = promote_url(carols.hash, soul=str(carols.soul), alias="alice-job")
    sentence = "I understand this replaces alice's being with carol's"

    confirm = promoter.get(url)

    seen = text(confirm)
    assert sentence in seen and "Owner carol" in seen
    assert f"That hash belongs to another being: {alices.soul}, owned by alice." in seen
    assert 'name="replace_owner"' in confirm.content.decode()

    form = {"confirm": "yes", "soul": str(carols.soul), "alias": "alice-job", "note": "carol's turn"}
    refused = promoter.post(url, form)

    assert refused.status_code == 409
    assert "owner_change_unconfirmed" in refused.content.decode()
    assert f'tick "{sentence}" to promote it' in text(refused)
    assert "carol's turn" in text(refused)  # the note is kept for the second try
    assert Promotion.objects.count() == 1
    assert soul_selectors.promotions_active(environment="production").get(alias="alice-job").soul == alices.soul

    response = promoter.post(url, {**form, "replace_owner": "yes"})

    assert response.status_code == 302
    active = soul_selectors.promotions_active(environment="production").get(alias="alice-job")
    assert (active.soul, active.hash, active.note) == (carols.soul, carols.hash, "carol's turn")


def test_confirmation_warns_when_the_alias_runs_another_being_of_the_same_owner(
    promoter: Client, alice: User, root: User, evolved: BaseBeing
) -> None:
    """Promoting alice's mutant over alice's running parent says it replaces another being; no checkbox is needed."""
    soul_services.soul_promote(hash=evolved.hash, actor=root, soul=evolved.soul)
    mutant = being_evolve(being=evolved, source=SOURCE.replace("* 2", "* 4"), actor=alice).being
    url = promote_url(mutant.hash, soul=str(mutant.soul))

    confirm = promoter.get(url)

    seen = text(confirm)
    assert f"That hash belongs to another being: {evolved.soul}, owned by alice." in seen
    assert "(both are alice's)" in seen
    assert 'name="replace_owner"' not in confirm.content.decode()
    assert promoter.post(url, {"confirm": "yes", "soul": str(mutant.soul)}).status_code == 302
    assert soul_selectors.promotions_active(environment="production").get(alias="doubler").soul == mutant.soul


def test_demote_confirmation_and_history_show_the_owner(
    promoter: Client, job_of_two_owners: tuple[BaseBeing, BaseBeing]
) -> None:
    """The demote page names the being that runs and its owner; the board's history names each event's owner."""
    alices, _carols = job_of_two_owners

    confirm = promoter.get(reverse("soul_demote", args=["production", alices.hash]))
    board = promoter.get(BOARD)

    assert f"Being {alices.soul} Owner alice" in text(confirm)
    assert [item.owners for item in board.context["boards"][0].history] == [["alice"]]
    assert f"{str(alices.soul)[:8]}… (alice)" in text(board)
