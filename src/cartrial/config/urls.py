"""URL map: pages, the JSON API under /api/, static files via whitenoise."""

from django.urls import include, path

urlpatterns = [
    path("", include("cartrial.apps.subjects.urls")),
    path("accounts/", include("cartrial.apps.accounts.urls")),
]
