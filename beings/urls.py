"""URLs of the beings' HTML pages: the soul registry, the being page, runs and the execution monitor."""

from django.urls import path

from beings import views, views_executions

urlpatterns = [
    path("souls/", views.souls_board, name="souls_board"),
    path("souls/<str:environment>/promote/", views.soul_promote_choose, name="soul_promote_choose"),
    path("souls/<str:environment>/<str:hash>/promote/", views.soul_promote_confirm, name="soul_promote"),
    path("souls/<str:environment>/<str:hash>/demote/", views.soul_demote_confirm, name="soul_demote"),
    path("beings/<uuid:soul>/", views.being_detail, name="being_detail"),
    path("beings/<uuid:soul>/run", views_executions.being_run, name="being_run"),
    path("executions/", views_executions.execution_monitor, name="execution_monitor"),
    path("executions/rows/", views_executions.execution_rows, name="execution_rows"),
    path("executions/<uuid:id>/", views_executions.execution_detail, name="execution_detail"),
    path("executions/<uuid:id>/panel/", views_executions.execution_panel, name="execution_panel"),
    path("executions/<uuid:id>/cancel", views_executions.execution_cancel_view, name="execution_cancel"),
]
