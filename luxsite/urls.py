from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from chronos.agent import views as agent_views
from luxsite.api import api
from luxsite.views import favicon, home

urlpatterns = [
    path("", home, name="home"),
    path("admin/", admin.site.urls),
    # Every user signs in here; the admin's own login admits staff only.
    path("accounts/login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/password/", auth_views.PasswordChangeView.as_view(), name="password_change"),
    path("accounts/password/done/", auth_views.PasswordChangeDoneView.as_view(), name="password_change_done"),
    # Browsers ask for /favicon.ico whatever the page links.
    path("favicon.ico", favicon, name="favicon"),
    path("api/", api.urls),
    path("chronos/", include("chronos.urls")),
    # The agent door (MCP over streamable HTTP), for the bearer of an API token.
    path("mcp", agent_views.mcp_endpoint, name="mcp"),
    path("", include("beings.urls")),
]
