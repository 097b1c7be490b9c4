"""API tokens: created with their secret shown once, looked up by digest, revocable."""

from __future__ import annotations

import functools
import hashlib
import secrets
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, User
from django.db import connection, transaction
from django.utils import timezone

from luxsite.errors import Invalid
from luxsite.models import ApiToken
from luxsite.statements import instance_from_row, prepared

TOKEN_PREFIX = "lux_"
# A token's last use is written at most this often: not a write on every request.
LAST_USED_EVERY = timedelta(minutes=1)


def token_digest(secret: str) -> str:
    """Tokens carry 256 random bits, so a plain SHA-256 is enough to store them safely."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


@transaction.atomic
def token_create(*, user: User, name: str = "") -> tuple[ApiToken, str]:
    """Create a token for ``user``; return it with its secret, which is never stored."""
    if not user.is_active:
        raise Invalid(f"user {user.get_username()} is inactive", code="user_inactive")
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(user=user, name=name[:100], prefix=secret[:12], digest=token_digest(secret))
    return token, secret


def token_authenticate(secret: str) -> AbstractBaseUser | None:
    """The active user a token belongs to, or None; records when it was last used, to the minute.

    One prepared statement on every request that carries a token: the user with the token's id and last
    use beside its columns. Built by the ORM, the same lookup cost several times as much to compile as to run.
    """
    if not secret.startswith(TOKEN_PREFIX):
        return None
    with prepared(_lookup_sql(), {"digest": token_digest(secret)}) as cursor:
        row = cursor.fetchone()
    if row is None:
        return None
    model = get_user_model()
    user = instance_from_row(model, model._meta.concrete_fields, row, ("token_id", "token_last_used_at"))
    now = timezone.now()
    last_used_at = user.token_last_used_at  # type: ignore[attr-defined]  # a column of the lookup
    if last_used_at is None or now - last_used_at >= LAST_USED_EVERY:
        ApiToken.objects.filter(pk=user.token_id).update(last_used_at=now)  # type: ignore[attr-defined]
    return user


@functools.cache
def _lookup_sql() -> str:
    """The user of an unrevoked token by its digest, if active, with ``token_id`` and ``token_last_used_at``."""
    model, quote = get_user_model(), connection.ops.quote_name
    columns = ", ".join(f"person.{quote(str(field.column))}" for field in model._meta.concrete_fields)
    return (
        f"SELECT {columns}, token.id AS token_id, token.last_used_at AS token_last_used_at"
        f" FROM {quote(ApiToken._meta.db_table)} token JOIN {quote(model._meta.db_table)} person"
        f" ON person.{quote(model._meta.pk.attname)} = token.user_id"
        " WHERE token.digest = %(digest)s AND token.revoked_at IS NULL AND person.is_active"
    )


def token_revoke(*, token: ApiToken) -> ApiToken:
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
    return token
