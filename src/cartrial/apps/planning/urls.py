from django.urls import path

from cartrial.apps.planning import views

app_name = "planning"
urlpatterns = [
    path("capacities/", views.capacities_page, name="capacities"),
    path("subjects/<str:code>/", views.booking_page, name="booking"),
]
