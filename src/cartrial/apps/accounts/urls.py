from django.urls import path

from cartrial.apps.accounts import views

urlpatterns = [
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", views.LogoutView.as_view(), name="logout"),
    path("two-factor/", views.otp_security, name="otp_security"),
    path("two-factor/code/", views.otp_verify, name="otp_verify"),
    path("two-factor/enrol/", views.otp_enrol, name="otp_enrol"),
    path("session/refresh/", views.session_refresh, name="session_refresh"),
]
