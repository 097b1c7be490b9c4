"""Fixtures shared by the apps' tests: users, API clients, beings built through the services."""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client

from beings.models import BaseBeing
from beings.services import being_create, being_update
from luxsite.tokens import token_create
from relations.models import Relationship
from relations.services import relationship_link

BeingMaker = Callable[..., BaseBeing]


@pytest.fixture
def alice(django_user_model: type[User]) -> User:
    return django_user_model.objects.create_user("alice", password="alice-password-1")


@pytest.fixture
def bob(django_user_model: type[User]) -> User:
    return django_user_model.objects.create_user("bob", password="bob-password-1")


@pytest.fixture
def root(django_user_model: type[User]) -> User:
    return django_user_model.objects.create_superuser("root", password="root-password-1")


def logged_in(user: User) -> Client:
    """A test client with a session of ``user``."""
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def api(alice: User) -> Client:
    """A client logged in (session) as alice."""
    return logged_in(alice)


@pytest.fixture
def bob_api(bob: User) -> Client:
    return logged_in(bob)


@pytest.fixture
def make_being(alice: User, django_user_model: type[User]) -> BeingMaker:
    """Create a being through the service (alice by default); an ``energy_level`` is set as a superuser sets it."""

    def make(name: str = "hello", kind: str = "function", actor: User | None = None, **fields: Any) -> BaseBeing:
        genesis = {"name": name, "type": kind, **fields.pop("genesis", {})}
        if kind == "function":
            genesis.setdefault("source", "def run():\n    return 'hi'\n")
        energy = fields.pop("energy_level", None)
        being = being_create(data={"genesis": genesis, **fields}, actor=actor or alice)
        if energy is not None:
            # Energy is earned by runs; only a superuser writes it by hand.
            keeper, _ = django_user_model.objects.get_or_create(
                username="energy-keeper", defaults={"is_superuser": True, "is_staff": True}
            )
            being = being_update(being=being, data={"energy_level": energy}, actor=keeper)
        return being

    return make


@pytest.fixture
def make_link(alice: User) -> Callable[..., Relationship]:
    def make(source: BaseBeing, target: BaseBeing, actor: User | None = None, **data: Any) -> Relationship:
        return relationship_link(source=source, target=target, actor=actor or alice, data=data)

    return make


@pytest.fixture
def bearer(alice: User) -> dict[str, str]:
    """Headers carrying a fresh API token of alice's."""
    _token, secret = token_create(user=alice, name="tests")
    return {"Authorization": f"Bearer {secret}"}


STATE_TABLES = (
    ("base_beings", "soul"),
    ("relationships", "id"),
    ("chronos_change", "id"),
    ("beings_beinguserobjectpermission", "id"),
    ("relations_relationshipuserobjectpermission", "id"),
)


def database_state() -> dict[str, str]:
    """A digest of every row of the tables a write may touch, to prove a refused write changed nothing."""
    state = {}
    with connection.cursor() as cursor:
        for table, key in STATE_TABLES:
            cursor.execute(f"SELECT count(*), coalesce(string_agg(t::text, '|' ORDER BY t.{key}), '') FROM {table} t")
            count, rows = cursor.fetchone()
            state[table] = f"{count}:{hashlib.sha256(rows.encode()).hexdigest()}"
    return state


@pytest.fixture
def unchanged() -> Callable[[], contextlib.AbstractContextManager[None]]:
    """``with unchanged(): ...``: the block may be refused, but must leave the database exactly as it was."""

    @contextlib.contextmanager
    def block() -> Iterator[None]:
        before = database_state()
        yield
        assert database_state() == before, "a refused operation changed the database"

    return block


@pytest.fixture
def promotion_evidence_waived(settings: Any) -> None:
    """No environment asks for evidence before a promotion: for tests about the rest of the registry.

    Production is gated by default (``LUXOS_PROMOTION_EVIDENCE``); the gate itself is tested in
    ``beings/tests/souls/test_promotion_evidence.py``.
    """
    settings.LUXOS_PROMOTION_EVIDENCE = {}
