from django.contrib import admin
from django.urls import include, path

from luxsite.api import api
from luxsite.views import home

urlpatterns = [
    path("", home, name="home"),
    path("admin/", admin.site.urls),
    path("api/", api.urls),
    path("", include("beings.urls")),
]
