"""WSGI entry point (gunicorn cartrial.config.wsgi)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cartrial.config.settings")
application = get_wsgi_application()

if os.environ.get("CARTRIAL_WARM_CACHES") == "1":
    # With gunicorn --preload this runs once in the master; workers inherit the cohorts.
    from cartrial.apps.biology.selectors import warm_reference_populations

    warm_reference_populations()
