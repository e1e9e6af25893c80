from django.apps import AppConfig


class SafetyConfig(AppConfig):
    name = "cartrial.apps.safety"
    label = "safety"
    verbose_name = "Safety: adverse events, SAE reporting clock, lab-proposed grades, DLT window"
