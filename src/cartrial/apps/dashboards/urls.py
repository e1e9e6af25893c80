from django.urls import path

from cartrial.apps.dashboards import views

app_name = "dashboards"
urlpatterns = [
    path("study/", views.study, name="study"),
    path("safety/", views.safety, name="safety"),
    path("subjects/<str:code>/time-courses/", views.time_courses, name="time_courses"),
]
