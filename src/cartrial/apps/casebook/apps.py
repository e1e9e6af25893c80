from django.apps import AppConfig


class CasebookConfig(AppConfig):
    name = "cartrial.apps.casebook"
    label = "casebook"
    verbose_name = "Casebook: visits, eCRF forms, queries, source-data verification, lock and signature"
