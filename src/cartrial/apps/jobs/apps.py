from django.apps import AppConfig


class JobsConfig(AppConfig):
    name = "cartrial.apps.jobs"
    label = "jobs"
    verbose_name = "Long jobs: requested, queued, run by a worker with progress, audited"

    def ready(self) -> None:
        # The one kind the jobs app owns itself: the audit app is below it and cannot register.
        from cartrial.apps.jobs import kinds

        kinds.register_audit_verify()
