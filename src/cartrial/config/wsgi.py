"""WSGI entry point (gunicorn cartrial.config.wsgi)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cartrial.config.settings")
application = get_wsgi_application()
