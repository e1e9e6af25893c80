from django.apps import AppConfig


class BiologyConfig(AppConfig):
    name = "cartrial.apps.biology"
    label = "biology"
    verbose_name = "Expected biology: kinetic observations, fits, bands and flags"

    def ready(self) -> None:
        """Kinetic results alert their new flags whichever app stored them (casebook form, this app's
        entry, a correction): the store below both signals each write."""
        from cartrial.apps.biology.services import kinetic_flag_alerts_on_record
        from cartrial.apps.clinical.signals import lab_observations_recorded

        lab_observations_recorded.connect(kinetic_flag_alerts_on_record, dispatch_uid="biology.kinetic_flag_alerts")
