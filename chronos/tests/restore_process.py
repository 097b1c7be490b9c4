"""One checkpoint restore in a process of its own, for the tests that kill it (``-m chronos.tests.restore_process ID``).

It prints ``restoring <backend pid>`` just before the restore starts and ``restored <entries undone>`` once it
has committed. The database is the one ``DATABASE_URL`` names (the tests pass theirs); the actor is ``root``.
"""

from __future__ import annotations

import os
import sys

import django


def main(checkpoint_id: str) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "luxsite.settings")
    django.setup()
    from django.contrib.auth.models import User
    from django.db import connection

    from chronos.models import Checkpoint
    from chronos.services import checkpoint_restore

    actor = User.objects.get(username="root")
    checkpoint = Checkpoint.objects.get(id=checkpoint_id)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (backend,) = cursor.fetchone()
    print(f"restoring {backend}", flush=True)
    report = checkpoint_restore(checkpoint=checkpoint, actor=actor)
    print(f"restored {report.undone}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
