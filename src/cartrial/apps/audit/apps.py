from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "cartrial.apps.audit"
    label = "audit"
    verbose_name = "Audit trail"
