from django.apps import AppConfig


class AlertsConfig(AppConfig):
    name = "cartrial.apps.alerts"
    label = "alerts"
    verbose_name = "Alerts: what must be acted on, who must act, e-mailed after commit and acknowledged"
