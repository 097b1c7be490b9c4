"""Checkpoints and restore: the two tables come back exactly, byte for byte, by undoing only what changed."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from django.contrib.auth.models import User
from django.db import connection

from beings.models import BaseBeing, Promotion
from beings.services import being_delete, being_update
from beings.souls.services import soul_promote
from chronos.exceptions import CheckpointNameTakenError, ChronosNameInvalidError, WriteInProgressError
from chronos.models import Change, Checkpoint
from chronos.services import checkpoint_create, checkpoint_restore, checkpoint_restore_preview
from chronos.tests.helpers import connect, tables_dump
from luxsite.errors import PermissionDenied
from luxsite.permissions import may
from luxsite.tests.helpers import refused, wait_for
from relations.models import Relationship
from relations.services import relationship_delete

pytestmark = pytest.mark.django_db(transaction=True)


def test_restore_undoes_creates_updates_deletes_and_links(
    root: User, make_being: Callable[..., BaseBeing], make_link: Callable[..., Relationship]
) -> None:
    """After a mix of writes of both tables, a restore makes them equal their dump at the checkpoint."""
    kept = make_being("kept", tags=["a"], attributes={"x": 1, "y": [1, 2]})
    doomed = make_being("doomed")
    link = make_link(kept, doomed, tags=["invokes"])
    before = tables_dump()
    checkpoint = checkpoint_create(name="start", actor=root)

    being_update(being=kept, data={"tags": ["b"], "attributes": {"x": 2, "z": None}}, actor=root)
    relationship_delete(relationship=link, actor=root)
    being_delete(being=doomed, actor=root)
    newcomer = make_being("newcomer")
    make_link(newcomer, kept)
    assert tables_dump() != before

    report = checkpoint_restore(checkpoint=checkpoint, actor=root)
    assert tables_dump() == before
    assert report.undone == 5
    assert report.safety is not None and report.safety.name == "before-restore-start"


def test_a_restore_is_undone_by_restoring_its_safety_checkpoint(
    root: User, make_being: Callable[..., BaseBeing]
) -> None:
    """The automatic before-restore checkpoint brings back what the restore undid; the log only grows."""
    being = make_being("one")
    checkpoint = checkpoint_create(name="early", actor=root)
    being_update(being=being, data={"tags": ["later"]}, actor=root)
    later = tables_dump()
    first = checkpoint_restore(checkpoint=checkpoint, actor=root)
    logged = Change.objects.count()
    assert first.safety is not None
    checkpoint_restore(checkpoint=first.safety, actor=root)
    assert tables_dump() == later
    assert Change.objects.count() > logged
    again = checkpoint_restore(checkpoint=checkpoint, actor=root)
    assert again.safety is not None and again.safety.name == "before-restore-early-2"


def test_a_transaction_open_across_a_checkpoint_is_wholly_after_it(
    root: User, make_being: Callable[..., BaseBeing]
) -> None:
    """A writer that wrote before the checkpoint and commits after it is undone entirely by the restore."""
    first = make_being("first")
    second = make_being("second")
    before = tables_dump()
    writer = connect()
    try:
        writer.execute("UPDATE base_beings SET tags = '{half-one}' WHERE soul = %s", [first.soul])
        checkpoint = checkpoint_create(name="mid-write", actor=root)
        writer.execute("UPDATE base_beings SET tags = '{half-two}' WHERE soul = %s", [second.soul])
        writer.commit()
    finally:
        writer.close()
    assert sorted(BaseBeing.objects.filter(soul__in=[first.soul, second.soul]).values_list("tags", flat=True)) == [
        ["half-one"],
        ["half-two"],
    ]
    checkpoint_restore(checkpoint=checkpoint, actor=root)
    assert tables_dump() == before


def test_an_update_logs_only_its_delta(root: User, make_being: Callable[..., BaseBeing]) -> None:
    """Appending one memory to a being holding 1,000 logs the new event and the dropped one, not the list."""
    memories = [{"event": "run", "n": n, "note": "x" * 100} for n in range(1000)]
    being = make_being("busy", memories=memories)
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE base_beings SET memories = (memories - 0) || %s::jsonb WHERE soul = %s",
            ['[{"event": "run", "n": 1000}]', being.soul],
        )
        cursor.execute(
            "SELECT pg_column_size(data) FROM chronos_change WHERE row_id = %s AND operation = 'UPDATE'", [being.soul]
        )
        (size,) = cursor.fetchone()
    assert size < 2048
    checkpoint = Change.objects.filter(row_id=being.soul, operation="UPDATE").get()
    assert checkpoint.data["k"]["memories"]["a"]["p"] == [{"event": "run", "n": 1000}]
    assert checkpoint.data["k"]["memories"]["a"]["d"] == [memories[0]]


def test_checkpoint_names_are_validated(root: User) -> None:
    """An empty, too long or repeated name is refused with a clear error; nothing is stored."""
    refused("name_invalid", lambda: checkpoint_create(name="  ", actor=root))
    refused("name_invalid", lambda: checkpoint_create(name="x" * 101, actor=root))
    checkpoint_create(name="once", actor=root)
    with pytest.raises(CheckpointNameTakenError):
        checkpoint_create(name="once", actor=root)
    assert list(Checkpoint.objects.values_list("name", flat=True)) == ["once"]
    assert ChronosNameInvalidError.status == 422


def test_restore_needs_its_permission(alice: User, root: User, make_being: Callable[..., BaseBeing]) -> None:
    """Restore rewrites everyone's state: a user without chronos.restore_checkpoint gets a 403 and nothing moves."""
    checkpoint = checkpoint_create(name="guarded", actor=root)
    make_being("after")
    before = tables_dump()
    with pytest.raises(PermissionDenied, match=r"chronos\.restore_checkpoint"):
        checkpoint_restore(checkpoint=checkpoint, actor=alice)
    assert tables_dump() == before


def test_a_checkpoint_inside_a_writing_transaction_is_refused(root: User, make_being: Callable[..., BaseBeing]) -> None:
    """A snapshot taken after its own transaction wrote would cut that transaction in half: refused."""
    from django.db import transaction

    with transaction.atomic():
        make_being("inside")
        with pytest.raises(WriteInProgressError):
            checkpoint_create(name="torn", actor=root)


def test_preview_counts_rows_and_shows_fields(root: User, make_being: Callable[..., BaseBeing]) -> None:
    """The preview lists what the restore would remove, bring back and change, with the changed JSON paths."""
    kept = make_being("kept", attributes={"colour": "red"})
    gone = make_being("gone")
    checkpoint = checkpoint_create(name="before", actor=root)
    being_update(being=kept, data={"attributes": {"colour": "blue"}}, actor=root)
    being_delete(being=gone, actor=root)
    make_being("new")
    preview = checkpoint_restore_preview(checkpoint=checkpoint, actor=root)
    diff = preview.diff
    assert (diff.count("base_beings", "added"), diff.count("base_beings", "removed")) == (1, 1)
    assert diff.count("base_beings", "changed") == 1
    changed = next(entry for entry in diff.entries if entry.kind == "changed")
    assert [(f.path, f.old, f.new) for f in changed.fields] == [("attributes.colour", "blue", "red")]
    assert not preview.needs_force


def test_restore_holds_writers_off_and_they_apply_after(root: User, make_being: Callable[..., BaseBeing]) -> None:
    """A write that arrives during a restore waits for it, then lands on the restored state: nothing is lost."""
    being = make_being("contended")
    checkpoint = checkpoint_create(name="calm", actor=root)
    being_update(being=being, data={"attributes": {"n": 1}}, actor=root)
    # An open writer of relationships makes the restore wait holding its lock on base_beings.
    holder = connect()
    holder.execute("LOCK TABLE relationships IN ROW EXCLUSIVE MODE")
    restore = threading.Thread(target=lambda: run_in_thread(checkpoint_restore, checkpoint=checkpoint, actor=root))
    restore.start()
    wait_for(lambda: waiting_on_locks() == 1)

    def write_late() -> None:
        with connect() as late:
            late.execute("UPDATE base_beings SET tags = '{late}' WHERE soul = %s", [being.soul])
            late.commit()

    late = threading.Thread(target=write_late)
    late.start()
    wait_for(lambda: waiting_on_locks() == 2)
    holder.commit()
    holder.close()
    restore.join()
    late.join()
    being.refresh_from_db()
    assert (being.tags, being.attributes) == (["late"], {})


def waiting_on_locks() -> int:
    with connect() as probe:
        row = probe.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        ).fetchone()
    return int(row[0]) if row else 0


def run_in_thread(function: Callable[..., object], **kwargs: object) -> None:
    """Django gives each thread its own connection: close it when done, so the test database can go."""
    try:
        function(**kwargs)
    finally:
        connection.close()


def test_rights_survive_a_delete_and_a_restore(
    root: User, alice: User, bob: User, make_being: Callable[..., BaseBeing]
) -> None:
    """A being deleted after the checkpoint comes back visible and runnable by those who could, and no others."""
    being = make_being("alices")
    checkpoint = checkpoint_create(name="owned", actor=root)
    being_delete(being=being, actor=alice)
    checkpoint_restore(checkpoint=checkpoint, actor=root)
    back = BaseBeing.objects.get(soul=being.soul)
    assert may(user=fresh(alice), action="view", obj=back) and may(user=fresh(alice), action="execute_being", obj=back)
    assert not may(user=fresh(bob), action="view", obj=back)


def fresh(user: User) -> User:
    """The user afresh: Django caches permissions on the instance."""
    return User.objects.get(pk=user.pk)


def test_a_restore_that_deletes_a_promoted_being_needs_force(root: User, make_being: Callable[..., BaseBeing]) -> None:
    """Production's being would vanish: refused (409) and nothing moves; with force it goes, the promotion stays."""
    checkpoint = checkpoint_create(name="before-release", actor=root)
    released = make_being("released")
    promotion = soul_promote(hash=released.hash, actor=root, override_reason="no runs yet")
    preview = checkpoint_restore_preview(checkpoint=checkpoint, actor=root)
    assert preview.needs_force and [p.id for p in preview.promotions_removed] == [promotion.id]
    before = tables_dump()
    refused("promoted_being_affected", lambda: checkpoint_restore(checkpoint=checkpoint, actor=root))
    assert tables_dump() == before
    checkpoint_restore(checkpoint=checkpoint, actor=root, force=True)
    assert not BaseBeing.objects.filter(soul=released.soul).exists()
    assert Promotion.objects.filter(id=promotion.id).exists()
