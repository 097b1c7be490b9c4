"""WSGI entry point served by gunicorn."""

import os

from django.core.wsgi import get_wsgi_application

from luxsite.embedded import ensure_services

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "luxsite.settings")
ensure_services()
application = get_wsgi_application()
