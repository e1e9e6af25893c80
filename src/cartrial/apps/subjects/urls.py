from django.urls import path

from cartrial.apps.subjects import views

app_name = "subjects"
urlpatterns = [
    path("", views.home, name="home"),
    path("subjects/", views.subject_list, name="list"),
    path("subjects/new/", views.subject_create, name="create"),
    path("subjects/<str:code>/", views.subject_detail, name="detail"),
    path("subjects/<str:code>/eligibility/", views.subject_eligibility, name="eligibility"),
    path("subjects/<str:code>/steps/<str:step>/", views.subject_step, name="step"),
    path("subjects/<str:code>/audit/", views.subject_audit, name="audit"),
]
