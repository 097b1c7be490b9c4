"""URLs of chronos' HTML pages under /chronos/: the dashboard, checkpoints, timelines, diffs and queued tasks."""

from django.urls import path

from chronos import views

urlpatterns = [
    path("", views.dashboard, name="chronos_dashboard"),
    path("checkpoints/", views.checkpoint_create, name="chronos_checkpoint_create"),
    path("checkpoints/<uuid:id>/", views.checkpoint_detail, name="chronos_checkpoint"),
    path("checkpoints/<uuid:id>/restore/", views.checkpoint_restore, name="chronos_checkpoint_restore"),
    path("checkpoints/<uuid:id>/export/", views.checkpoint_export, name="chronos_checkpoint_export"),
    path("exports/<str:name>", views.export_download, name="chronos_export_download"),
    path("import/", views.archive_import, name="chronos_import"),
    path("timelines/", views.timeline_create, name="chronos_timeline_create"),
    path("timelines/<str:name>/switch/", views.timeline_switch, name="chronos_timeline_switch"),
    path("diff/", views.diff, name="chronos_diff"),
    path("tasks/<uuid:task_id>/", views.task_detail, name="chronos_task"),
    path("tasks/<uuid:task_id>/panel/", views.task_panel, name="chronos_task_panel"),
]
