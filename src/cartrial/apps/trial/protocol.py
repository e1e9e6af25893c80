"""The protocol in force for this deployment: one home for reading it (the file named by settings)."""

from __future__ import annotations

from django.conf import settings

from cartrial.protocols import Protocol, active_protocol


def protocol_in_force() -> Protocol:
    """The validated protocol of `CARTRIAL_PROTOCOL_FILE` (the packaged one by default), loaded once."""
    return active_protocol(settings.CARTRIAL_PROTOCOL_FILE or None)
