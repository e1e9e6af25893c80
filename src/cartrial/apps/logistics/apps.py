from django.apps import AppConfig


class LogisticsConfig(AppConfig):
    name = "cartrial.apps.logistics"
    label = "logistics"
    verbose_name = "Logistics: chain of identity, custody and condition"
