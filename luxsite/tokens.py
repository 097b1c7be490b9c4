"""API tokens: created with their secret shown once, looked up by digest, revocable."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from django.contrib.auth.models import AbstractBaseUser, User
from django.db import transaction
from django.utils import timezone

from luxsite.errors import Invalid
from luxsite.models import ApiToken

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
    """The active user a token belongs to, or None; records when it was last used, to the minute."""
    if not secret.startswith(TOKEN_PREFIX):
        return None
    token = (
        ApiToken.objects.select_related("user")
        .filter(digest=token_digest(secret), revoked_at__isnull=True, user__is_active=True)
        .first()
    )
    if token is None:
        return None
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at >= LAST_USED_EVERY:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token.user


def token_revoke(*, token: ApiToken) -> ApiToken:
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
    return token
