from django.apps import AppConfig


class PlanningConfig(AppConfig):
    name = "cartrial.apps.planning"
    label = "planning"
    verbose_name = "Planning: capacities and booking of the vein-to-vein calendar"
