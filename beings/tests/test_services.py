"""Writes to beings through the services: validation, permissions, change context, import."""

import json
import uuid

import pytest
from guardian.shortcuts import assign_perm, get_perms

from beings import services
from beings.exceptions import (
    BeingExistsError,
    BeingHasRelationshipsError,
    BeingNotFoundError,
    CoreBeingError,
    DocumentTooLargeError,
    EnergyWriteError,
    GenesisInvalidError,
    ImportLineError,
    SourceSyntaxError,
    TagsInvalidError,
)
from beings.kinds import core_soul
from beings.models import BaseBeing
from chronos.context import change_context
from chronos.models import Change
from luxsite.errors import PermissionDenied
from luxsite.permissions import visible

pytestmark = pytest.mark.django_db

BIG = "x" * (256 * 1024)


def test_create_stores_fields_and_grants_owner(alice):
    """A created being holds what was given and its creator may view, change and delete it."""
    being = services.being_create(
        data={
            "genesis": {"name": " greet ", "type": "function", "source": "def run():\n    return 1\n"},
            "tags": ["a", "b", "a"],
            "attributes": {"team": "x"},
        },
        actor=alice,
    )
    stored = BaseBeing.objects.get(soul=being.soul)
    assert stored.genesis["name"] == "greet"
    assert stored.tags == ["a", "b"]
    assert (stored.energy_level, stored.attributes) == (0, {"team": "x"})
    assert (stored.memories, stored.self_awareness) == ([], {})
    assert stored.created_at is not None
    assert set(get_perms(alice, stored)) == {"view_basebeing", "change_basebeing", "delete_basebeing", "execute_being"}


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({"genesis": {"type": "function"}}, GenesisInvalidError),
        ({"genesis": {"name": "x"}}, GenesisInvalidError),
        ({"genesis": {"name": "", "type": "data"}}, GenesisInvalidError),
        ({"genesis": {"name": "x", "type": "spaceship"}}, GenesisInvalidError),
        ({"genesis": {"name": 5, "type": "data"}}, GenesisInvalidError),
        ({"genesis": {"name": "x", "type": "function", "source": "def run(:\n"}}, SourceSyntaxError),
        ({"genesis": {"name": "x", "type": "function", "source": "a\x00b"}}, SourceSyntaxError),
        ({"genesis": {"name": "x", "type": "function", "source": "#" * (64 * 1024 + 1)}}, DocumentTooLargeError),
        ({"genesis": {"name": "x", "type": "data", "blob": BIG}}, DocumentTooLargeError),
        ({"genesis": {"name": "x", "type": "data"}, "attributes": {"blob": BIG}}, DocumentTooLargeError),
        ({"genesis": {"name": "x", "type": "data"}, "memories": [BIG]}, DocumentTooLargeError),
        ({"genesis": {"name": "x", "type": "data"}, "tags": [f"t{i}" for i in range(65)]}, TagsInvalidError),
        ({"genesis": {"name": "x", "type": "data"}, "tags": ["t" * 65]}, TagsInvalidError),
        ({"genesis": {"name": "x", "type": "data"}, "tags": "notalist"}, TagsInvalidError),
        ({"genesis": {"name": "x", "type": "data"}, "energy_level": "high"}, GenesisInvalidError),
        ({"genesis": {"name": "x", "type": "data"}, "attributes": []}, GenesisInvalidError),
        ({"genesis": {"name": "x", "type": "data"}, "colour": "red"}, GenesisInvalidError),
        ({"genesis": "not an object"}, GenesisInvalidError),
    ],
)
def test_create_refuses_bad_input_and_stores_nothing(alice, unchanged, data, error):
    """Each kind of bad input is refused with its own error, and nothing is written."""
    with unchanged(), pytest.raises(error):
        services.being_create(data=data, actor=alice)


def test_limits_accept_the_boundary(alice):
    """Exactly 64 tags of 64 characters and a 64 KiB source are accepted."""
    source = "#" * (64 * 1024 - 1) + "\n"
    being = services.being_create(
        data={
            "genesis": {"name": "edge", "type": "function", "source": source},
            "tags": [f"{i:02d}" + "t" * 62 for i in range(64)],
        },
        actor=alice,
    )
    assert being.tags is not None and len(being.tags) == 64


def test_create_with_existing_soul_is_a_conflict(alice, make_being, unchanged):
    """Naming a soul that exists is refused as a conflict."""
    being = make_being()
    with unchanged(), pytest.raises(BeingExistsError):
        services.being_create(data={"soul": str(being.soul), "genesis": {"name": "x", "type": "data"}}, actor=alice)


def test_writes_record_actor_and_door(alice, make_being):
    """The change log records who wrote and through which door."""
    with change_context(door="command", reason="demo"):
        being = make_being()
    change = Change.objects.filter(row_id=being.soul).get()
    assert change.operation == "INSERT"
    assert change.context["actor"] == "alice"
    assert change.context["door"] == "command"
    assert change.context["operation"] == "being_create"
    assert change.context["reason"] == "demo"
    assert change.data["genesis"]["name"] == "hello"


def test_update_changes_only_given_fields(alice, make_being):
    """A partial update changes the named fields, and the log records only what changed, both ways."""
    being = make_being(tags=["old"], attributes={"a": 1})
    services.being_update(being=being, data={"tags": ["new"], "energy_level": 0}, actor=alice)
    being.refresh_from_db()
    assert (being.tags, being.attributes, being.genesis["name"]) == (["new"], {"a": 1}, "hello")
    change = Change.objects.filter(row_id=being.soul, operation="UPDATE").get()
    assert change.data == {"k": {"tags": {"o": ["old"], "n": ["new"]}}}


def test_update_needs_change_permission(bob, make_being, unchanged):
    """Someone else's being cannot be changed, and for whoever may not view it, it does not exist."""
    being = make_being()
    with unchanged(), pytest.raises(BeingNotFoundError, match=f"no being has soul {being.soul}"):
        services.being_update(being=being, data={"tags": ["mine"]}, actor=bob)
    assign_perm("view_basebeing", bob, being)
    with unchanged(), pytest.raises(PermissionDenied):
        services.being_update(being=being, data={"tags": ["mine"]}, actor=bob)


@pytest.mark.parametrize(("energy", "refused"), [(0, False), (5, True), (-1, True)])
def test_only_a_superuser_writes_energy(alice, root, make_being, unchanged, energy, refused):
    """Energy is a run's queue priority, earned by runs: an owner setting it gets a 422 saying so."""
    if refused:
        with unchanged(), pytest.raises(EnergyWriteError, match="only a superuser"):
            services.being_create(
                data={"genesis": {"name": "pushy", "type": "data"}, "energy_level": energy}, actor=alice
            )
        being = make_being()
        with unchanged(), pytest.raises(EnergyWriteError):
            services.being_update(being=being, data={"energy_level": energy}, actor=alice)
        with unchanged(), pytest.raises(EnergyWriteError, match="line 1"):
            services.beings_import(
                lines=[json.dumps({"genesis": {"name": "pushy", "type": "data"}, "energy_level": energy})],
                actor=alice,
            )
    being = make_being("kept")
    services.being_update(being=being, data={"energy_level": energy}, actor=root)
    being.refresh_from_db()
    assert being.energy_level == energy


def test_core_beings_never_change(root, unchanged):
    """Core beings refuse updates and deletes, even from a superuser."""
    kernel = BaseBeing.objects.get(soul=core_soul("Kernel"))
    with unchanged():
        with pytest.raises(CoreBeingError):
            services.being_update(being=kernel, data={"tags": ["x"]}, actor=root)
        with pytest.raises(CoreBeingError):
            services.being_delete(being=kernel, actor=root)


def test_delete_removes_the_being_and_keeps_its_rights_for_a_restore(alice, make_being):
    """Deleting a being removes it; the rights on it stay (they open nothing while it is gone) for a restore."""
    being = make_being()
    soul = being.soul
    services.being_delete(being=being, actor=alice)
    assert not BaseBeing.objects.filter(soul=soul).exists()
    assert not visible(user=alice, queryset=BaseBeing.objects.all()).exists()
    assert alice.beinguserobjectpermission_set.filter(content_object_id=soul).exists()
    assert Change.objects.filter(row_id=soul, operation="DELETE").exists()


def test_delete_refuses_a_linked_being(alice, make_being, make_link, unchanged):
    """A being with relationships cannot be deleted until they are."""
    source, target = make_being("a"), make_being("b")
    make_link(source, target)
    with unchanged(), pytest.raises(BeingHasRelationshipsError):
        services.being_delete(being=target, actor=alice)


def lines_of(*beings):
    return [json.dumps(being).encode() for being in beings]


def test_import_creates_all_lines_with_owner(alice):
    """A JSON Lines import creates every being, skips blank lines and grants the importer."""
    soul = uuid.uuid4()
    report = services.beings_import(
        lines=[
            *lines_of(
                {"soul": str(soul), "genesis": {"name": "one", "type": "data"}, "tags": ["i"]},
                {"genesis": {"name": "two", "type": "function", "source": "def run():\n    pass\n"}},
            ),
            b"  ",
        ],
        actor=alice,
    )
    assert report.created == 2
    assert soul in report.souls
    imported = BaseBeing.objects.filter(soul__in=report.souls)
    assert sorted(imported.values_list("genesis__name", flat=True)) == ["one", "two"]
    assert all(alice.has_perm("beings.change_basebeing", being) for being in imported)
    assert Change.objects.filter(transaction__context__operation="beings_import").count() == 2


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        ([b'{"genesis": {"name": "ok", "type": "data"}}', b"{not json"], "line 2: not valid JSON"),
        ([b"[1, 2]"], "line 1: each line must be a JSON object"),
        (
            [
                b'{"genesis": {"name": "ok", "type": "data"}}',
                b'{"genesis": {"name": "x", "type": "function", "source": "def ("}}',
            ],
            "line 2: genesis.source is not valid Python",
        ),
        (
            [b'{"soul": "3c1e0f4e-7a5b-4d2e-9f00-000000000001", "genesis": {"name": "a", "type": "data"}}'] * 2,
            "the same soul more than once",
        ),
    ],
)
def test_import_is_all_or_nothing(alice, unchanged, lines, message):
    """One bad line refuses the whole file, names the line, and stores nothing."""
    with unchanged(), pytest.raises((ImportLineError, SourceSyntaxError)) as raised:
        services.beings_import(lines=lines, actor=alice)
    assert message in raised.value.detail


def test_import_refuses_existing_souls(alice, make_being, unchanged):
    """Importing a soul that already exists is a conflict and stores nothing."""
    being = make_being()
    with unchanged(), pytest.raises(BeingExistsError):
        services.beings_import(
            lines=lines_of(
                {"genesis": {"name": "new", "type": "data"}},
                {"soul": str(being.soul), "genesis": {"name": "dup", "type": "data"}},
            ),
            actor=alice,
        )
