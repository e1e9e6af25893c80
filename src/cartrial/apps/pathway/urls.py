from django.urls import path

from cartrial.apps.clinical.views import screening_page
from cartrial.apps.pathway import views

app_name = "subjects"
urlpatterns = [
    path("", views.home, name="home"),
    path("subjects/", views.subject_list, name="list"),
    path("subjects/new/", views.subject_create, name="create"),
    path("subjects/<str:code>/", views.subject_detail, name="detail"),
    path("subjects/<str:code>/eligibility/", screening_page, name="eligibility"),
    path("subjects/<str:code>/consent/", views.consent_page, name="consent"),
    path("subjects/<str:code>/steps/<str:step>/", views.subject_step, name="step"),
    path("subjects/<str:code>/audit/", views.subject_audit, name="audit"),
    path("subjects/<str:code>/corrections/<str:record>/<str:record_id>/", views.record_corrections, name="correction"),
]
