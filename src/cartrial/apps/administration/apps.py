from django.apps import AppConfig


class AdministrationConfig(AppConfig):
    name = "cartrial.apps.administration"
    label = "administration"
    verbose_name = "Administration"
