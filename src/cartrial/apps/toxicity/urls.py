from django.urls import path

from cartrial.apps.toxicity import views

app_name = "toxicity"
urlpatterns = [
    path("subjects/<str:code>/", views.subject_page, name="subject"),
    path("subjects/<str:code>/assessments/<int:day>/", views.assessment_page, name="assessment"),
]
