"""The soul registry's HTML pages: the being page (versions, diff, lineage graph) and the promotion board."""

from __future__ import annotations

import re
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from beings import services
from beings.models import BaseBeing
from luxsite.tests.fixtures import logged_in

pytestmark = pytest.mark.django_db

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
    services.being_evolve(being=being, source=SOURCE + "TWO = 2\n", reason="a constant", actor=alice)
    services.being_evolve(being=being, source=SOURCE + "TWO = 2\nTHREE = 3\n", actor=alice)
    being.refresh_from_db()
    return being


@pytest.fixture
def mutant(alice: User, evolved: BaseBeing) -> BaseBeing:
    """A mutant of ``evolved``: one line of its v3 changed."""
    source = evolved.genesis["source"].replace("* 2", "* 4")
    return services.being_evolve(being=evolved, source=source, actor=alice).being


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


def test_being_page_of_an_unknown_soul_is_404(api: Client) -> None:
    """A soul no being has gives the 404 error page."""
    response = api.get(page(uuid.uuid4()))

    assert response.status_code == 404
    assert "being_not_found" in response.content.decode()


def test_being_page_with_a_malformed_soul_is_404(api: Client) -> None:
    """A path that is not a uuid matches no page."""
    assert api.get("/beings/not-a-uuid/").status_code == 404


def test_being_page_of_someone_elses_being_is_403(bob: User, evolved: BaseBeing) -> None:
    """Bob may not view alice's being: 403, and nothing of it on the page."""
    response = logged_in(bob).get(page(evolved))

    assert response.status_code == 403
    content = response.content.decode()
    assert "permission_denied" in content
    assert evolved.hash not in content and "THREE" not in content


def test_being_page_sends_an_anonymous_visitor_to_log_in(client: Client, evolved: BaseBeing) -> None:
    """A visitor who is not signed in is redirected to the admin login, coming back to the page after."""
    response = client.get(page(evolved))

    assert response.status_code == 302
    assert response["Location"] == f"{reverse('admin:login')}?next={page(evolved)}"


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
