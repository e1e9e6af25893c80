"""URL map: pages, the JSON API under /api/, language switch; static files via whitenoise."""

from django.urls import include, path
from django.views.i18n import set_language

from cartrial.config.api import api

urlpatterns = [
    path("", include("cartrial.apps.calendars.urls")),
    path("", include("cartrial.apps.pathway.urls")),
    path("", include("cartrial.apps.clinical.urls")),
    path("accounts/", include("cartrial.apps.accounts.urls")),
    path("logistics/", include("cartrial.apps.logistics.urls")),
    path("biology/", include("cartrial.apps.biology.urls")),
    path("casebook/", include("cartrial.apps.casebook.urls")),
    path("dashboards/", include("cartrial.apps.dashboards.urls")),
    path("alerts/", include("cartrial.apps.alerts.urls")),
    path("safety/", include("cartrial.apps.safety.urls")),
    path("toxicity/", include("cartrial.apps.toxicity.urls")),
    path("simulation/", include("cartrial.apps.simulation.urls")),
    path("jobs/", include("cartrial.apps.jobs.urls")),
    path("exports/", include("cartrial.apps.exports.urls")),
    path("planning/", include("cartrial.apps.planning.urls")),
    path("administration/", include("cartrial.apps.administration.urls")),
    path("i18n/setlang/", set_language, name="set_language"),
    path("api/v1/", api.urls),
]

handler403 = "cartrial.config.errors.forbidden"
handler404 = "cartrial.config.errors.not_found"
handler500 = "cartrial.config.errors.server_error"
