from django.apps import AppConfig


class ClinicalConfig(AppConfig):
    name = "cartrial.apps.clinical"
    label = "clinical"
    verbose_name = "Clinical data"
