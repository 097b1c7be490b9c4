"""Ensure the LuxOS superuser exists, so a fresh ``make run`` can be logged into."""

from __future__ import annotations

import secrets
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction


class Command(BaseCommand):
    help = (
        "Ensure the superuser LUXOS_ADMIN_USER (default admin) exists. Its password is LUXOS_ADMIN_PASSWORD "
        "when set (an existing user's password is reset to it); a new user without one gets a generated "
        "password, printed once."
    )

    @transaction.atomic
    def handle(self, *args: Any, **options: Any) -> None:
        user_model = get_user_model()
        username = settings.LUXOS_ADMIN_USER
        password = settings.LUXOS_ADMIN_PASSWORD
        user = user_model.objects.select_for_update().filter(username=username).first()

        if user is None:
            generated = not password
            if generated:
                password = secrets.token_urlsafe(12)
            user_model.objects.create_superuser(username=username, email="", password=password)
            self.stdout.write(f"created superuser {username}")
            if generated:
                self.stdout.write(f"admin password (shown once): {password}")
        else:
            changed = []
            if password:
                user.set_password(password)
                changed.append("password")
            if not (user.is_active and user.is_staff and user.is_superuser):
                user.is_active = user.is_staff = user.is_superuser = True
                changed += ["is_active", "is_staff", "is_superuser"]
            if changed:
                user.save(update_fields=changed)
            if password:
                self.stdout.write(f"superuser {username}: password reset from LUXOS_ADMIN_PASSWORD")
            else:
                self.stdout.write(f"superuser {username} already exists; its password is unchanged")
        self.stdout.write(f"admin login: {username}")
