from django.apps import AppConfig


class PathwayConfig(AppConfig):
    """The patient's pathway: the step engine, its step → effect table, the subject pages and API."""

    name = "cartrial.apps.pathway"
    label = "pathway"
