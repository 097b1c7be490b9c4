"""Reads of beings: JSON containment is answered by the GIN indexes, visibility is a SQL filter."""

import json

import pytest
from django.db import connection

from beings.models import BaseBeing
from beings.selectors import BeingFilters, being_counts, being_filter, being_list
from beings.services import beings_import
from luxsite.permissions import visible

pytestmark = pytest.mark.django_db


@pytest.fixture
def crowd(alice):
    """3,000 beings in 1,000 teams, imported through the service, statistics fresh."""
    lines = (
        json.dumps(
            {
                "genesis": {"name": f"b{i}", "type": "data", "source": f"value = {i}\n"},
                "tags": [f"t{i % 500}"],
                "attributes": {"team": f"team-{i % 1000}"},
            }
        )
        for i in range(3000)
    )
    beings_import(lines=lines, actor=alice)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE base_beings")
        # What autovacuum does after a bulk load: move the GIN pending lists into the indexes proper.
        for index in ("idx_base_beings_genesis", "idx_base_beings_attributes", "idx_being_tags"):
            cursor.execute("SELECT gin_clean_pending_list(%s::regclass)", [index])


@pytest.mark.parametrize(
    ("filters", "index"),
    [
        (BeingFilters(attributes={"team": "team-7"}), "idx_base_beings_attributes"),
        (BeingFilters(tags_all=["t7"]), "idx_being_tags"),
        (BeingFilters(kind="data", name="b7"), "idx_base_beings_genesis"),
    ],
)
def test_selective_filters_use_their_gin_index(crowd, root, filters, index):
    """A selective filter's plan reads the GIN index rather than scanning the table."""
    queryset = being_filter(visible(user=root, queryset=BaseBeing.objects.all()), filters)
    plan = queryset.order_by("-created_at", "-soul")[:51].explain()
    assert index in plan
    assert "Seq Scan" not in plan


def test_visibility_is_a_sql_filter(crowd, alice, bob):
    """A non-owner's list is filtered in the query itself: the plan joins guardian's permission table."""
    queryset = visible(user=bob, queryset=BaseBeing.objects.all())
    assert "beings_beinguserobjectpermission" in str(queryset.query)
    assert being_list(user=bob).items == []
    assert len(being_list(user=alice, filters=BeingFilters(attributes={"team": "team-7"})).items) == 3


def test_counts_by_kind_respect_visibility(crowd, alice, bob, root, make_being):
    """Counts per kind include only beings the user may view."""
    make_being("mine", actor=bob)
    assert being_counts(user=bob) == {"function": 1}
    assert being_counts(user=alice) == {"data": 3000}
    assert being_counts(user=root)["queue"] == 2


def test_group_and_global_grants_make_beings_visible(alice, bob, make_being):
    """A being shared with bob's group, or a global view permission, makes it visible to bob."""
    from django.contrib.auth.models import Group, Permission
    from guardian.shortcuts import assign_perm

    shared, private = make_being("shared"), make_being("private")
    team = Group.objects.create(name="team")
    bob.groups.add(team)
    assign_perm("beings.view_basebeing", team, shared)
    assert [being.soul for being in being_list(user=bob).items] == [shared.soul]
    bob.user_permissions.add(Permission.objects.get(codename="view_basebeing"))
    bob = type(bob).objects.get(pk=bob.pk)  # permissions are cached per user object
    assert {being.soul for being in being_list(user=bob).items} >= {shared.soul, private.soul}
