"""Failed logins go to the audit trail as well as to django-axes' own table."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.signals import user_login_failed
from django.dispatch import receiver

from cartrial.apps import clock
from cartrial.apps.audit.events import AuditEvent
from cartrial.apps.audit.services import Actor, audit_refusal


@receiver(user_login_failed)
def _record_failed_login(sender: Any, credentials: dict[str, Any], request: Any = None, **kwargs: Any) -> None:
    username = str(credentials.get("username", ""))[:150]
    audit_refusal(
        actor=Actor(user_id=None, username=username or "unknown", role="", center_code="", now=clock.now()),
        event=AuditEvent.LOGIN_FAILED,
        entity="user",
        entity_id=username or "unknown",
        code="login_failed",
        message="wrong username or password",
    )
