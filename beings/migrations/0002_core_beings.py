"""Mirror the core beings (fixed souls defined in code) into base_beings."""

import json

from django.db import migrations

from beings import kinds

DESCRIPTIONS = {
    "Kernel": "The core of LuxOS: resolves souls, aliases and hashes.",
    "Factory": "Creates beings from genesis documents.",
    "IOQueue": "The io queue: beings with workload io run here, on threads.",
    "CPUQueue": "The cpu queue: beings with workload cpu run here, one process per core.",
}


def create_core_beings(apps, schema_editor):
    BaseBeing = apps.get_model("beings", "BaseBeing")
    context = {"door": "migration", "operation": "core_beings_create", "actor": None, "actor_id": None}
    schema_editor.execute("SELECT set_config('luxos.context', %s, true)", [json.dumps(context)])
    for name, kind in kinds.CORE_BEINGS.items():
        BaseBeing.objects.get_or_create(
            soul=kinds.core_soul(name),
            defaults={
                "tags": ["core"],
                "energy_level": 100,
                "genesis": {"name": name, "type": kind, "description": DESCRIPTIONS[name], "author": "luxos"},
                "attributes": {"core": True},
                "memories": [],
                "self_awareness": {},
            },
        )


def remove_core_beings(apps, schema_editor):
    BaseBeing = apps.get_model("beings", "BaseBeing")
    BaseBeing.objects.filter(soul__in=[kinds.core_soul(name) for name in kinds.CORE_BEINGS]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("beings", "0001_initial"),
        ("chronos", "0002_capture_triggers"),
    ]

    operations = [migrations.RunPython(create_core_beings, remove_core_beings)]
