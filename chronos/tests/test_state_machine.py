"""Random histories of real service writes, checkpoints, restores, branches and switches come back byte for byte.

A hypothesis state machine drives the services a user drives (create, update, evolve, mutate,
delete, link, relink, unlink, runs) and time travel between them. The model keeps the dump of both
tables at every checkpoint and at every timeline's head when it was left; after every restore and
every switch the tables equal, byte for byte, the dump of the point travelled to.
"""

from __future__ import annotations

import copy
import uuid
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.contrib.contenttypes.models import ContentType
from django.core.management import call_command
from django.db.models import QuerySet
from django.utils import timezone
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from beings import kinds
from beings.evolution import being_evolve
from beings.executions.selectors import target_resolve
from beings.executions.services import execution_create, limits_snapshot, run_record
from beings.models import BaseBeing, Execution
from beings.services import being_create, being_delete, being_update
from chronos.models import Checkpoint, Timeline
from chronos.services import checkpoint_create, checkpoint_restore, timeline_create, timeline_switch
from chronos.tests.helpers import tables_dump
from relations.models import Relationship
from relations.services import relationship_delete, relationship_link, relationship_update

pytestmark = pytest.mark.django_db(transaction=True)

Dump = dict[str, str]

NAMES = st.sampled_from(["ada", "bo", "cy", "di", "ed"])
KEYS = st.sampled_from(["a", "b", "c", "deep", "list"])
TAGS = st.lists(st.sampled_from(["red", "green", "blue", "x", "y"]), max_size=4)
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-1000, 1000), st.text("abcé \"'\\{}[]", max_size=8))
JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(KEYS, inner, max_size=3),
    max_leaves=8,
)
EVENTS = st.lists(
    st.fixed_dictionaries({"event": st.sampled_from(["seen", "said"]), "n": st.integers(0, 99)}), max_size=3
)
SOURCE = "def run():\n    return 'hi'\n"


def document_edit(document: Any, data: st.DataObject) -> dict[str, Any]:
    """``document`` with a few edits: keys set, dropped or nested, an array grown at its tail and cut at its head."""
    edited: dict[str, Any] = copy.deepcopy(document) if isinstance(document, dict) else {}
    for _ in range(data.draw(st.integers(1, 3))):
        edit = data.draw(st.sampled_from(["set", "drop", "nest", "tail"]))
        key = data.draw(KEYS)
        if edit == "set":
            edited[key] = data.draw(JSON)
        elif edit == "drop" and edited:
            del edited[data.draw(st.sampled_from(sorted(edited)))]
        elif edit == "nest":
            inner = edited.get(key)
            edited[key] = {**(inner if isinstance(inner, dict) else {}), data.draw(KEYS): data.draw(JSON)}
        else:
            edited["list"] = array_shift(edited.get("list"), data)
    return edited


def array_shift(array: Any, data: st.DataObject) -> list[Any]:
    """An array that lost some of its first elements and gained some at its end."""
    old = array if isinstance(array, list) else []
    dropped = data.draw(st.integers(0, len(old)))
    return [*old[dropped:], *data.draw(st.lists(SCALARS, max_size=3))]


def beings_found(*, unlinked: bool = False) -> QuerySet[BaseBeing]:
    """The beings the services may change (not the core ones), optionally only those without links."""
    found = BaseBeing.objects.exclude(soul__in=kinds.CORE_SOULS).order_by("soul")
    if unlinked:
        found = found.filter(outgoing__isnull=True, incoming__isnull=True)
    return found


class TimeTravel(RuleBasedStateMachine):
    """Writes through the services, interleaved with time travel; the model is the dump of every point."""

    def __init__(self) -> None:
        super().__init__()
        self.root = User.objects.create_superuser("root", password="root-password-1")
        self.checkpoints: list[tuple[Checkpoint, Dump]] = []
        self.heads: dict[str, Dump] = {}
        self.serial = 0
        self.order: dict[uuid.UUID, int] = {}

    def teardown(self) -> None:
        # Every example starts from an empty database, main alone and live (as a transactional test does).
        call_command("flush", "--no-input", verbosity=0)
        ContentType.objects.clear_cache()

    def name(self, prefix: str) -> str:
        self.serial += 1
        return f"{prefix}{self.serial}"

    # --- what there is to act on --------------------------------------------------------------

    def known(self, row: BaseBeing | Relationship) -> None:
        self.order.setdefault(row.pk, len(self.order))

    def beings(self, *, unlinked: bool = False) -> list[BaseBeing]:
        # In the order this example made them: souls are random, and hypothesis replays its draws.
        return sorted(beings_found(unlinked=unlinked), key=lambda being: self.order[being.pk])

    def relationships(self) -> list[Relationship]:
        return sorted(Relationship.objects.all(), key=lambda relationship: self.order[relationship.pk])

    def live(self) -> Timeline:
        return Timeline.objects.get(live=True)

    def arrived(self, expected: Dump, where: str) -> None:
        assert tables_dump() == expected, f"the tables differ from their dump at {where}"

    # --- writes, through the services ---------------------------------------------------------

    @initialize(count=st.integers(0, 3), data=st.data())
    def some_beings(self, count: int, data: st.DataObject) -> None:
        for _ in range(count):
            self.create(data)

    @rule(data=st.data())
    def create(self, data: st.DataObject) -> None:
        being = being_create(
            data={
                "genesis": {"name": data.draw(NAMES), "type": "function", "source": SOURCE},
                "tags": data.draw(TAGS),
                "attributes": document_edit({}, data),
                "memories": data.draw(EVENTS),
            },
            actor=self.root,
        )
        self.known(being)

    @precondition(lambda self: beings_found().exists())
    @rule(data=st.data())
    def update(self, data: st.DataObject) -> None:
        being = data.draw(st.sampled_from(self.beings()))
        fields = data.draw(st.sets(st.sampled_from(["tags", "attributes", "memories", "self_awareness"]), min_size=1))
        changes: dict[str, Any] = {}
        if "tags" in fields:
            changes["tags"] = data.draw(TAGS)
        if "attributes" in fields:
            changes["attributes"] = document_edit(being.attributes, data)
        if "self_awareness" in fields:
            changes["self_awareness"] = document_edit(being.self_awareness, data)
        if "memories" in fields:
            changes["memories"] = array_shift(being.memories, data) + data.draw(EVENTS)
        being_update(being=being, data=changes, actor=self.root)

    @precondition(lambda self: beings_found().exists())
    @rule(data=st.data(), mutate=st.booleans())
    def evolve(self, data: st.DataObject, mutate: bool) -> None:
        """A line added is an evolution in place; a line changed, a mutation (a new being linked to its parent)."""
        being = data.draw(st.sampled_from(self.beings()))
        source = being.genesis["source"]
        self.serial += 1
        if mutate:
            source = source.replace("return", f"return {self.serial} and", 1)
        else:
            source = f"{source}v{self.serial} = {self.serial}\n"
        evolution = being_evolve(being=being, source=source, reason="the state machine", actor=self.root)
        assert evolution.kind == ("mutation" if mutate else "evolution")
        self.known(evolution.being)
        for relationship in Relationship.objects.filter(source=being, target=evolution.being):
            self.known(relationship)

    @precondition(lambda self: beings_found().exists())
    @rule(data=st.data(), succeeded=st.booleans())
    def run(self, data: st.DataObject, succeeded: bool) -> None:
        """A finished run writes to its being as the worker has it write (run_record); no worker is needed."""
        being = data.draw(st.sampled_from(self.beings()))
        target = target_resolve(user=self.root, ref=being)
        execution = execution_create(
            target=target, args=[], kwargs={}, actor=self.root, parent=None, limits=limits_snapshot()
        )
        now = timezone.now()
        status = Execution.Status.SUCCEEDED if succeeded else Execution.Status.FAILED
        error = None if succeeded else {"type": "ValueError", "message": "no"}
        Execution.objects.filter(pk=execution.pk).update(
            status=status, started_at=now, finished_at=now, duration_ms=data.draw(st.integers(1, 500)), error=error
        )
        run_record(Execution.objects.get(pk=execution.pk))

    @precondition(lambda self: beings_found(unlinked=True).exists())
    @rule(data=st.data())
    def delete(self, data: st.DataObject) -> None:
        being_delete(being=data.draw(st.sampled_from(self.beings(unlinked=True))), actor=self.root)

    @precondition(lambda self: beings_found().count() >= 2)
    @rule(data=st.data())
    def link(self, data: st.DataObject) -> None:
        source, target = data.draw(st.lists(st.sampled_from(self.beings()), min_size=2, max_size=2, unique=True))
        relationship = relationship_link(
            source=source,
            target=target,
            actor=self.root,
            data={"tags": data.draw(TAGS), "attributes": document_edit({}, data)},
        )
        self.known(relationship)

    @precondition(lambda self: Relationship.objects.exists())
    @rule(data=st.data())
    def relink(self, data: st.DataObject) -> None:
        relationship = data.draw(st.sampled_from(self.relationships()))
        changes = {
            "attributes": document_edit(relationship.attributes, data),
            "energy_level": data.draw(st.integers(0, 100)),
        }
        relationship_update(relationship=relationship, data=changes, actor=self.root)

    @precondition(lambda self: Relationship.objects.exists())
    @rule(data=st.data())
    def unlink(self, data: st.DataObject) -> None:
        relationship = data.draw(st.sampled_from(self.relationships()))
        relationship_delete(relationship=relationship, actor=self.root)

    # --- time travel --------------------------------------------------------------------------

    @rule()
    def checkpoint(self) -> None:
        self.checkpoints.append((checkpoint_create(name=self.name("cp"), actor=self.root), tables_dump()))

    @precondition(lambda self: self.on_live())
    @rule(data=st.data())
    def restore(self, data: st.DataObject) -> None:
        """Any checkpoint of the live timeline, older or newer than a restore made since, comes back exactly."""
        checkpoint, dump = data.draw(st.sampled_from(self.on_live()))
        before = tables_dump()
        report = checkpoint_restore(checkpoint=checkpoint, actor=self.root)
        self.arrived(dump, f"checkpoint {checkpoint.name}")
        assert report.safety is not None
        self.checkpoints.append((report.safety, before))

    def on_live(self) -> list[tuple[Checkpoint, Dump]]:
        live = self.live()
        return [(checkpoint, dump) for checkpoint, dump in self.checkpoints if checkpoint.timeline_id == live.id]

    @rule(data=st.data(), now=st.booleans())
    def branch(self, data: st.DataObject, now: bool) -> None:
        """A timeline forked from now, or from any checkpoint (of any timeline): its head is the dump there."""
        name = self.name("t")
        if now or not self.checkpoints:
            dump = tables_dump()
            timeline = timeline_create(name=name, actor=self.root)
            assert timeline.fork is not None
            self.checkpoints.append((timeline.fork, dump))
        else:
            checkpoint, dump = data.draw(st.sampled_from(self.checkpoints))
            timeline_create(name=name, from_checkpoint=checkpoint, actor=self.root)
        self.heads[name] = dump

    def elsewhere(self) -> list[str]:
        live = self.live()
        return sorted(name for name in self.heads if name != live.name)

    @precondition(lambda self: self.elsewhere())
    @rule(data=st.data())
    def switch(self, data: st.DataObject) -> None:
        live = self.live()
        name = data.draw(st.sampled_from(self.elsewhere()))
        before = tables_dump()
        report = timeline_switch(name=name, actor=self.root)
        self.arrived(self.heads[name], f"the head of {name}")
        self.heads[live.name] = before
        assert report.safety is not None
        self.checkpoints.append((report.safety, before))

    # --- what always holds --------------------------------------------------------------------

    @invariant()
    def one_live_timeline(self) -> None:
        assert Timeline.objects.filter(live=True, deleted_at__isnull=True).count() == 1


def test_random_histories_travel_exactly() -> None:
    """Any interleaving of service writes with checkpoints, restores, forks and switches reproduces every point."""
    run_state_machine_as_test(
        TimeTravel,
        settings=settings(
            max_examples=60,
            stateful_step_count=50,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
