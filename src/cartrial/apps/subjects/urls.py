from django.urls import path

app_name = "subjects"
urlpatterns: list = []
