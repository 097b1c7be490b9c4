"""Mirror the core beings (fixed souls defined in code) into base_beings."""

import json

from django.db import migrations

from beings import kinds


def create_core_beings(apps, schema_editor):
    context = {"door": "migration", "operation": "core_beings_create", "actor": None, "actor_id": None}
    schema_editor.execute("SELECT set_config('luxos.context', %s, true)", [json.dumps(context)])
    kinds.core_beings_ensure(apps.get_model("beings", "BaseBeing"))


def remove_core_beings(apps, schema_editor):
    BaseBeing = apps.get_model("beings", "BaseBeing")
    BaseBeing.objects.filter(soul__in=kinds.CORE_SOULS).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("beings", "0001_initial"),
        ("chronos", "0002_capture_triggers"),
    ]

    operations = [migrations.RunPython(create_core_beings, remove_core_beings)]
