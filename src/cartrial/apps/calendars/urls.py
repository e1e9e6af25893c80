from django.urls import path

from cartrial.apps.calendars import views

app_name = "calendars"
urlpatterns = [
    path("calendars/", views.month_view, name="month"),
    path("calendars/week/", views.week_view, name="week"),
    path("calendars/center/<str:code>.ics", views.center_ics, name="center_ics"),
    path("subjects/<str:code>/calendar.ics", views.subject_ics, name="subject_ics"),
]
