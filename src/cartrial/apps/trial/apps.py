from django.apps import AppConfig
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


class TrialConfig(AppConfig):
    name = "cartrial.apps.trial"
    label = "trial"
    verbose_name = "Trial set-up"

    def ready(self) -> None:
        """Validate the protocol file at start-up: a broken protocol stops the server."""
        from cartrial.protocols import ProtocolError, active_protocol

        try:
            active_protocol(settings.CARTRIAL_PROTOCOL_FILE or None)
        except ProtocolError as error:
            raise ImproperlyConfigured(f"[{error.code}] {error}") from None
