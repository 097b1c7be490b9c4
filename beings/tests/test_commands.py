"""Operator commands: beings import/list/show and API tokens."""

import io
import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from beings.models import BaseBeing
from chronos.models import Change
from luxsite.models import ApiToken
from luxsite.tokens import token_authenticate

pytestmark = pytest.mark.django_db


def run(*args):
    out, err = io.StringIO(), io.StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_beings_import_file(alice, tmp_path):
    """`beings import FILE` stores every line as the given user, through the command door."""
    path = tmp_path / "beings.jsonl"
    path.write_text("\n".join(json.dumps({"genesis": {"name": f"c{i}", "type": "data"}}) for i in range(4)))
    out, _ = run("beings", "--user", "alice", "import", str(path))
    assert out.startswith("imported 4 beings")
    imported = BaseBeing.objects.filter(genesis__name__startswith="c")
    assert imported.count() == 4
    assert all(alice.has_perm("beings.view_basebeing", being) for being in imported)
    imports = Change.objects.filter(transaction__context__operation="beings_import")
    assert {change.context["door"] for change in imports} == {"command"}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"genesis": {"name": "a", "type": "data"}}\n{broken', "line 2: not valid JSON"),
        ('{"genesis": {"name": "a", "type": "alien"}}', "genesis.type must be one of"),
    ],
)
def test_beings_import_bad_file_fails_and_stores_nothing(alice, tmp_path, unchanged, content, message):
    """A bad line makes the command fail with its line number and store nothing."""
    path = tmp_path / "bad.jsonl"
    path.write_text(content)
    with unchanged(), pytest.raises(CommandError, match=message):
        run("beings", "--user", "alice", "import", str(path))


def test_beings_import_missing_file_and_user(alice, tmp_path):
    """A missing file or unknown user is a clear command error."""
    with pytest.raises(CommandError, match="cannot read"):
        run("beings", "--user", "alice", "import", str(tmp_path / "nope.jsonl"))
    with pytest.raises(CommandError, match="no user named 'ghost'"):
        run("beings", "--user", "ghost", "list")


def test_beings_list_and_show(alice, make_being):
    """`beings list` prints what the user may see; `beings show` prints one being."""
    being = make_being("listed", tags=["cli"])
    out, _ = run("beings", "--user", "alice", "list", "--tag", "cli")
    assert [json.loads(line)["soul"] for line in out.splitlines()] == [str(being.soul)]
    out, _ = run("beings", "--user", "alice", "show", str(being.soul))
    assert json.loads(out)["name"] == "listed"


def test_token_create_list_revoke(alice):
    """`token create` prints a working secret once; `list` never shows it; `revoke` disables it."""
    out, err = run("token", "create", "alice", "--name", "agent")
    secret = out.strip()
    assert token_authenticate(secret) == alice
    assert "not shown again" in err
    token = ApiToken.objects.get(user=alice)
    assert secret not in (token.digest, token.prefix) and token.digest != ""
    listing, _ = run("token", "list")
    assert secret not in listing and token.prefix in listing
    run("token", "revoke", token.prefix)
    assert token_authenticate(secret) is None


def test_token_create_unknown_user_fails():
    """Creating a token for nobody is a command error."""
    with pytest.raises(CommandError, match="no user named"):
        run("token", "create", "ghost")
