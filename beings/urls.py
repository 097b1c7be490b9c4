"""URLs of the soul registry's HTML pages."""

from django.urls import path

from beings import views

urlpatterns = [
    path("beings/<uuid:soul>/", views.being_detail, name="being_detail"),
]
