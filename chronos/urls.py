"""URLs of chronos' HTML pages under /chronos/: the dashboard, checkpoints, timelines, diffs and queued tasks."""

from django.urls import path

from chronos import views
from chronos.dreams import views as dream_views
from chronos.lessons import views as lesson_views
from chronos.merges import views as merge_views

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
    path("dreams/", dream_views.dream_list, name="chronos_dreams"),
    path("dreams/compare/", dream_views.dream_compare, name="chronos_dream_compare"),
    path("dreams/<uuid:id>/", dream_views.dream_detail, name="chronos_dream"),
    path("merges/", merge_views.merge_start, name="chronos_merge_start"),
    path("merges/<uuid:id>/", merge_views.merge_detail, name="chronos_merge"),
    path("merges/<uuid:id>/conflicts/<int:conflict_id>/", merge_views.conflict_resolve, name="chronos_merge_conflict"),
    path("merges/<uuid:id>/apply/", merge_views.merge_apply, name="chronos_merge_apply"),
    path("lessons/", lesson_views.lesson_list, name="chronos_lessons"),
    path("lessons/<int:id>/resolve/", lesson_views.lesson_resolve, name="chronos_lesson_resolve"),
]
