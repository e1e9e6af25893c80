from django.urls import path

from cartrial.apps.simulation import views

app_name = "simulation"
urlpatterns = [
    path("", views.simulation, name="page"),
    path("jobs/<int:job_id>/", views.job_result, name="job_result"),
]
