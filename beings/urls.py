"""URLs of the beings' HTML pages: the soul registry, the being page, runs and the execution monitor."""

from django.urls import path

from beings import views
from beings.executions import views as execution_views
from beings.souls import views as soul_views

urlpatterns = [
    path("souls/", soul_views.souls_board, name="souls_board"),
    path("souls/<str:environment>/promote/", soul_views.soul_promote_choose, name="soul_promote_choose"),
    path("souls/<str:environment>/<str:hash>/promote/", soul_views.soul_promote_confirm, name="soul_promote"),
    path("souls/<str:environment>/<str:hash>/demote/", soul_views.soul_demote_confirm, name="soul_demote"),
    path("beings/<uuid:soul>/", views.being_detail, name="being_detail"),
    path("beings/<uuid:soul>/run", execution_views.being_run, name="being_run"),
    path("executions/", execution_views.execution_monitor, name="execution_monitor"),
    path("executions/rows/", execution_views.execution_rows, name="execution_rows"),
    path("executions/<uuid:id>/", execution_views.execution_detail, name="execution_detail"),
    path("executions/<uuid:id>/panel/", execution_views.execution_panel, name="execution_panel"),
    path("executions/<uuid:id>/cancel", execution_views.execution_cancel_view, name="execution_cancel"),
]
