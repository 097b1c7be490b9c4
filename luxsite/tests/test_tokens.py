"""Bearer tokens: who a token authenticates, in how many queries, and whom it no longer does."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test.utils import CaptureQueriesContext

from luxsite.tokens import token_authenticate, token_create, token_revoke

pytestmark = pytest.mark.django_db


def test_a_token_authenticates_its_user_whole_in_one_query(alice, django_assert_num_queries):
    """One statement reads the token and its user; the user's fields are loaded with it, not fetched again."""
    _token, secret = token_create(user=alice, name="script")
    token_authenticate(secret)  # the first use is written; within the minute it is not again
    with django_assert_num_queries(1):
        user = token_authenticate(secret)
        assert isinstance(user, User)
        assert (user.pk, user.get_username(), user.is_active, user.is_superuser) == (alice.pk, "alice", True, False)
        assert user.date_joined == alice.date_joined and user.password == alice.password


def test_the_first_use_is_written_beside_the_lookup(alice):
    """A token never used is marked used by its first request: the lookup and one UPDATE."""
    token, secret = token_create(user=alice)
    with CaptureQueriesContext(connection) as queries:
        assert token_authenticate(secret) == alice
    assert [query["sql"].split()[0] for query in queries.captured_queries] == ["SELECT", "UPDATE"]
    token.refresh_from_db()
    assert token.last_used_at is not None


def test_revoked_unknown_and_inactive_users_tokens_authenticate_nobody(alice, bob):
    """A revoked token, an unknown or unprefixed secret, and the token of an inactive user authenticate no one."""
    revoked, revoked_secret = token_create(user=alice)
    token_revoke(token=revoked)
    _token, bobs_secret = token_create(user=bob)
    bob.is_active = False
    bob.save(update_fields=["is_active"])
    _token, alices_secret = token_create(user=alice)
    for secret in (revoked_secret, bobs_secret, alices_secret[:-1] + "?", alices_secret.removeprefix("lux_")):
        assert token_authenticate(secret) is None
    assert token_authenticate(alices_secret) == alice


def test_a_bearer_request_is_its_token_users_whatever_session_comes_with_it(alice, bob, client, make_being):
    """A request with a token acts as the token's user; with a token that no longer stands, as its session's."""
    _token, secret = token_create(user=alice)
    revoked, revoked_secret = token_create(user=alice)
    token_revoke(token=revoked)
    started = client.post(
        f"/api/beings/{make_being('echo').soul}/execute",
        "{}",
        content_type="application/json",
        headers={"Authorization": f"Bearer {secret}"},
    )
    assert started.status_code == 202, started.content
    client.force_login(bob)

    def listed(secret: str) -> list[str]:
        response = client.get("/api/executions", headers={"Authorization": f"Bearer {secret}"})
        assert response.status_code == 200, response.content
        return [item["id"] for item in response.json()["items"]]

    assert listed(secret) == [started.json()["id"]]
    assert listed(revoked_secret) == []
