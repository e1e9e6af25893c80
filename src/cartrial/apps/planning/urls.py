from django.urls import path

from cartrial.apps.planning import views

app_name = "planning"
urlpatterns = [
    path("capacities/", views.capacities_page, name="capacities"),
    path("plan/", views.plan_page, name="plan"),
    path("plan/<int:job_id>/", views.plan_result, name="plan_result"),
    path("reservations/", views.reservations_page, name="reservations"),
    path("replanning/", views.replanning_page, name="replanning"),
    path("subjects/<str:code>/", views.booking_page, name="booking"),
]
