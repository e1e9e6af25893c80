from django.apps import AppConfig


class BiologyConfig(AppConfig):
    name = "cartrial.apps.biology"
    label = "biology"
    verbose_name = "Expected biology: kinetic observations, fits, bands and flags"
