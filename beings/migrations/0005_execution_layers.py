"""Executions record the sandbox layers in force, the calls and summons a run made, and a cut output.

Owners of beings may now execute them: whoever holds ``change`` on a being gets ``execute_being``
too (new beings get it from ``owner_grant``). On a fresh database the permission rows do not exist
yet while migrating (Django creates them afterwards), and there is nobody to grant anything to.
"""

from django.db import migrations, models

EXECUTE_FOR_OWNERS = """
INSERT INTO beings_beinguserobjectpermission (user_id, permission_id, content_object_id)
SELECT grant_row.user_id, execute.id, grant_row.content_object_id
FROM beings_beinguserobjectpermission grant_row
JOIN auth_permission change ON change.id = grant_row.permission_id AND change.codename = 'change_basebeing'
JOIN auth_permission execute ON execute.content_type_id = change.content_type_id AND execute.codename = 'execute_being'
ON CONFLICT DO NOTHING;
"""


class Migration(migrations.Migration):
    dependencies = [
        ("beings", "0004_executions"),
    ]

    operations = [
        migrations.AddField(
            model_name="execution",
            name="calls",
            field=models.PositiveSmallIntegerField(default=0, help_text="execution() requests the run made."),
        ),
        migrations.AddField(
            model_name="execution",
            name="layers",
            field=models.JSONField(default=dict, help_text="The sandbox layers in force for this run: {name: bool}."),
        ),
        migrations.AddField(
            model_name="execution",
            name="output_truncated",
            field=models.BooleanField(default=False, help_text="The being printed more than the output limit."),
        ),
        migrations.AddField(
            model_name="execution",
            name="summons",
            field=models.PositiveSmallIntegerField(default=0, help_text="summon() requests the run made."),
        ),
        migrations.RunSQL(EXECUTE_FOR_OWNERS, reverse_sql=migrations.RunSQL.noop),
    ]
