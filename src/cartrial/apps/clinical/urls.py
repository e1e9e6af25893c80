from django.urls import path

from cartrial.apps.clinical import views

app_name = "clinical"
urlpatterns = [
    path("calculators/", views.calculator_list, name="calculators"),
    path("calculators/<str:name>/", views.calculator_page, name="calculator"),
    path("screening-log/", views.screening_log_page, name="screening_log"),
    path("screening-log.csv", views.screening_log_export, name="screening_log_csv"),
    path("dashboard/consort/", views.consort_page, name="consort"),
    path("consent/reconsent/", views.reconsent_list, name="reconsent"),
]
