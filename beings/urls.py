"""URLs of the soul registry's HTML pages."""

from django.urls import path

from beings import views

urlpatterns = [
    path("souls/", views.souls_board, name="souls_board"),
    path("souls/<str:environment>/<str:hash>/promote/", views.soul_promote_confirm, name="soul_promote"),
    path("souls/<str:environment>/<str:hash>/demote/", views.soul_demote_confirm, name="soul_demote"),
    path("beings/<uuid:soul>/", views.being_detail, name="being_detail"),
]
