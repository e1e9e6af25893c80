from django.urls import path

from cartrial.apps.administration import views

app_name = "administration"
urlpatterns = [
    path("centers/", views.centers_page, name="centers"),
    path("centers/<str:code>/", views.center_page, name="center"),
    path("users/", views.users_page, name="users"),
    path("users/<str:username>/", views.user_page, name="user"),
    path("tokens/", views.tokens_page, name="tokens"),
    path("audit/", views.audit_page, name="audit"),
    path("audit.csv", views.audit_csv, name="audit_csv"),
]
