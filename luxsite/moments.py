"""Times given from outside (the API, the agent, commands, forms), made safe to compare in PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

from django.utils import timezone


def moment_utc(moment: datetime) -> datetime:
    """The same instant in UTC; a naive time is read in the current time zone (UTC by default).

    ISO 8601 and Python allow offsets up to 23:59, PostgreSQL only up to 15:59, so a time is always
    handed to the database in UTC. Raises ValueError when the instant falls outside the years 1 to
    9999 in UTC (year 1 at +23:00 does).
    """
    try:
        aware = moment if timezone.is_aware(moment) else timezone.make_aware(moment)
        return aware.astimezone(UTC)
    except (OverflowError, ValueError):
        raise ValueError(f"{moment.isoformat()} is outside the years 1 to 9999 in UTC") from None
