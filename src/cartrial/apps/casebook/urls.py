from django.urls import path

from cartrial.apps.casebook import views

app_name = "casebook"
urlpatterns = [
    path("", views.study_grid, name="grid"),
    path("worklist/", views.worklist, name="worklist"),
    path("queries/", views.query_inbox, name="queries"),
    path("subjects/<str:code>/", views.subject_casebook, name="subject"),
    path("subjects/<str:code>/visits/<str:visit>/", views.visit_page, name="visit"),
    path("subjects/<str:code>/visits/<str:visit>/forms/<str:form>/", views.form_page, name="form"),
    path("subjects/<str:code>/visits/<str:visit>/forms/<str:form>/verify/", views.form_verify_page, name="verify"),
    path("subjects/<str:code>/visits/<str:visit>/forms/<str:form>/history/", views.form_history, name="history"),
]
