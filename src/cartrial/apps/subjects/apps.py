from django.apps import AppConfig


class SubjectsConfig(AppConfig):
    name = "cartrial.apps.subjects"
    label = "subjects"
    verbose_name = "Subjects and pathway"
