"""Rules the database holds, declared on the models with django-pgtrigger so a reader of the model sees them."""

from __future__ import annotations

import pgtrigger

APPEND_ONLY_MESSAGE = (
    "RAISE EXCEPTION '% is append-only: its rows are never updated, deleted or truncated', TG_TABLE_NAME;"
)


def append_only() -> list[pgtrigger.Trigger]:
    """Refuse UPDATE, DELETE and TRUNCATE of a table whose rows, once written, are history.

    TRUNCATE fires no row trigger, so it has a statement trigger of its own. The one place allowed
    past them is ``pgtrigger.ignore`` with the model's trigger URIs (``append_only_uris``).
    """
    return [
        pgtrigger.Trigger(
            name="append_only",
            when=pgtrigger.Before,
            operation=pgtrigger.Update | pgtrigger.Delete,
            func=APPEND_ONLY_MESSAGE,
        ),
        pgtrigger.Trigger(
            name="append_only_truncate",
            level=pgtrigger.Statement,
            when=pgtrigger.Before,
            operation=pgtrigger.Truncate,
            func=APPEND_ONLY_MESSAGE,
        ),
    ]


def append_only_uris(*labels: str) -> list[str]:
    """The trigger URIs of ``append_only`` on the models named ``app_label.Model``, for ``pgtrigger.ignore``."""
    return [f"{label}:{name}" for label in labels for name in ("append_only", "append_only_truncate")]
