from django.urls import path

from cartrial.apps.biology import views

app_name = "biology"
urlpatterns = [
    path("cohort/", views.cohort_page, name="cohort"),
    path("subjects/<str:code>/", views.subject_kinetics_page, name="subject"),
    path("subjects/<str:code>/panel/", views.subject_panel, name="panel"),
    path("subjects/<str:code>/observations/new/", views.observation_entry, name="entry"),
    path("subjects/<str:code>/observations/import/", views.observation_import, name="import"),
]
