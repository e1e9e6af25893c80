from django.urls import path

from cartrial.apps.exports import views

app_name = "exports"

urlpatterns = [
    path("", views.export_list, name="export_list"),
    path("<int:job_id>/file/", views.export_download, name="export_download"),
]
