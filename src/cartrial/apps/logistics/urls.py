from django.urls import path

from cartrial.apps.logistics import views

app_name = "logistics"
urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("subjects/<str:code>/", views.subject_page, name="subject"),
    path("subjects/<str:code>/actions/<str:action>/", views.subject_action, name="action"),
    path("subjects/<str:code>/labels.pdf", views.subject_labels, name="labels"),
    path("subjects/<str:code>/deviations/<int:deviation_id>/<str:move>/", views.deviation_move, name="deviation_move"),
]
