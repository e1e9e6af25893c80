from django.urls import path

from cartrial.apps.safety import views

app_name = "safety"
urlpatterns = [
    path("terms/", views.term_options, name="terms"),
    path("subjects/<str:code>/", views.subject_safety, name="subject"),
    path("subjects/<str:code>/adverse-events/new/", views.adverse_event_new, name="new"),
    path("subjects/<str:code>/adverse-events/<int:ae_id>/", views.adverse_event_page, name="adverse_event"),
]
