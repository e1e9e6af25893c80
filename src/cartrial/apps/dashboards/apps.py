from django.apps import AppConfig


class DashboardsConfig(AppConfig):
    name = "cartrial.apps.dashboards"
    label = "dashboards"
    verbose_name = (
        "Dashboards: a subject's time courses, the study's inclusions, flow, remission rates and swimmer plot"
    )
