"""Writes of alerts: raise one (the one entry point every app calls), acknowledge one.

`raise_alert` runs inside the caller's transaction (the change that calls for the alert): the
alert and its audit entry commit or roll back with it, and the e-mails are sent only after the
commit (`transaction.on_commit`), so a refused or rolled-back change never mails anyone. A failed
send is logged and never breaks the user's action.
"""

from __future__ import annotations

import logging
from datetime import datetime
from functools import partial
from typing import Any

from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.utils import translation

from cartrial.apps import clock
from cartrial.apps.accounts.models import Membership, membership_current
from cartrial.apps.alerts.models import Alert
from cartrial.apps.audit.events import AuditEvent
from cartrial.apps.audit.services import Actor, Change, audit_record
from cartrial.apps.subjects.models import Subject
from cartrial.domain.alerts import SEVERITY_LABELS, AlertKind, alert_message, alert_spec, may_acknowledge
from cartrial.domain.errors import AccessDenied, Refused
from cartrial.domain.roles import ROLE_LABELS, Role
from cartrial.domain.text import Message, label, message_data, params_from_json, params_to_json

logger = logging.getLogger("cartrial.alerts")


def raise_alert(
    *,
    actor: Actor,
    kind: AlertKind,
    subject: Subject,
    link: str,
    params: dict[str, Any],
    due_at: datetime | None = None,
    key: str = "",
) -> Alert | None:
    """Raise an alert on `subject` for the roles its kind names; None if the same kind, subject and
    `key` is already open (unacknowledged). Audited in the caller's transaction; mailed after commit.

    `params` are the kind's message parameters (`domain.alerts.ALERT_SPECS[kind].params`; the
    subject's code is added), as values or `Message`s, stored as message data; `link` is the path
    of the record to act on (e.g. `/casebook/subjects/BDX-001/visits/D7/forms/haematology/`).
    """
    spec = alert_spec(kind)
    missing = sorted(set(spec.params) - {"subject"} - set(params))
    if missing:
        # A caller's bug, not a user's input: the message would show a raw placeholder.
        raise ValueError(f"raise_alert({spec.kind.value}): missing message parameters {missing}")
    if Alert.objects.filter(kind=spec.kind.value, subject=subject, key=key, acknowledged_at__isnull=True).exists():
        return None
    stored = params_to_json({"subject": subject.code, **params})
    try:
        with transaction.atomic():  # a savepoint: a concurrent twin is a skip, not a broken action
            alert = Alert.objects.create(
                kind=spec.kind.value,
                subject=subject,
                center_id=subject.center_id,
                severity=spec.severity.value,
                params=stored,
                link=link,
                roles="," + ",".join(sorted(r.value for r in spec.roles)) + ",",
                key=key,
                due_at=due_at,
                created_at=actor.now,
                raised_by=actor.username,
            )
    except IntegrityError:
        return None
    audit_record(
        actor=actor,
        event=AuditEvent.ALERT_RAISED,
        entity="alert",
        entity_id=str(alert.pk),
        subject_code=subject.code,
        center_code=subject.center.code,
        changes=[
            Change("kind", None, spec.kind.value),
            Change("message", None, message_data(alert_text(alert))),
            Change("roles", None, alert.acting_roles),
            Change("link", None, link),
            *([Change("due_at", None, due_at.isoformat())] if due_at else []),
            *([Change("key", None, key)] if key else []),
        ],
    )
    transaction.on_commit(partial(alert_mail_send, alert.pk))
    return alert


def alert_text(alert: Alert) -> Message:
    """The alert's message, rendered by the reader in their language."""
    return alert_message(alert.kind, params_from_json(alert.params))


def alert_acknowledge(*, actor: Actor, alert: Alert, role: Role | None, note: str = "") -> Alert:
    """Acknowledge an open alert (a role that must act, or the center's investigator), with a note."""
    if not may_acknowledge(role, alert.acting_roles):
        raise AccessDenied(
            "Your role cannot acknowledge this alert; it is for: {roles}.",
            roles=[label(ROLE_LABELS[Role(r)]) for r in alert.acting_roles],
        )
    locked = Alert.objects.select_for_update().get(pk=alert.pk)
    if locked.acknowledged_at is not None:
        raise Refused("This alert was already acknowledged.", code="alert_acknowledged", item="alert")
    locked.acknowledged_by_id = actor.recording_user_id
    locked.acknowledged_at = actor.now
    locked.acknowledgement_note = note.strip()
    locked.save(update_fields=["acknowledged_by", "acknowledged_at", "acknowledgement_note"])
    audit_record(
        actor=actor,
        event=AuditEvent.ALERT_ACKNOWLEDGED,
        entity="alert",
        entity_id=str(locked.pk),
        subject_code=alert.subject.code,
        center_code=alert.subject.center.code,
        changes=[
            Change("acknowledged_at", None, actor.now.isoformat()),
            *([Change("note", None, locked.acknowledgement_note)] if locked.acknowledgement_note else []),
        ],
    )
    return locked


# --- e-mail, after commit -----------------------------------------------------------------------


def alert_recipients(alert: Alert) -> list[tuple[str, str]]:
    """(e-mail, language) of the active users holding a role that must act at the alert's center
    (a monitor's membership at the center is how the sponsor follows it); no e-mail, no mail."""
    rows = (
        Membership.objects.filter(
            membership_current(clock.now()),
            center_id=alert.center_id,
            role__in=alert.acting_roles,
            user__is_active=True,
            center__active=True,
        )
        .exclude(user__email="")
        .values_list("user__email", "user__language", "center__language")
        .order_by("user__email")
    )
    seen: dict[str, str] = {}
    for email, language, center_language in rows:
        seen.setdefault(email, (language or center_language or settings.LANGUAGE_CODE)[:2])
    return list(seen.items())


def alert_mail_send(alert_id: int) -> int:
    """Send the alert to each recipient in their language; returns how many were sent. Runs after the
    commit of the action that raised it: any failure is logged, never raised to the user."""
    sent = 0
    try:
        alert = Alert.objects.select_related("subject", "center").get(pk=alert_id)
        recipients = alert_recipients(alert)
    except Exception:
        logger.exception("alert %s: recipients could not be read; no e-mail sent", alert_id)
        return 0
    for email, language in recipients:
        try:
            subject_line, body = alert_mail(alert, language)
            sent += send_mail(subject_line, body, settings.DEFAULT_FROM_EMAIL, [email], fail_silently=False)
        except Exception:
            logger.exception("alert %s: the e-mail to %s failed", alert_id, email)
    return sent


def alert_mail(alert: Alert, language: str) -> tuple[str, str]:
    """The e-mail's subject line and body in `language`: what, who must act, due, the link."""
    spec = alert_spec(alert.kind)
    with translation.override(language):
        gettext = translation.gettext
        what = alert_text(alert).render(gettext, language)
        roles = ", ".join(gettext(ROLE_LABELS[Role(r)]) for r in alert.acting_roles)
        lines = [
            what,
            "",
            gettext("Who must act: %(roles)s") % {"roles": roles},
            gettext("Severity: %(severity)s") % {"severity": gettext(SEVERITY_LABELS[spec.severity])},
        ]
        if alert.due_at is not None:
            lines.append(gettext("Due: %(due)s UTC") % {"due": alert.due_at.strftime("%Y-%m-%d %H:%M")})
        lines += [
            "",
            gettext("Open the record: %(link)s") % {"link": settings.CARTRIAL_BASE_URL.rstrip("/") + alert.link},
        ]
        subject_line = f"[cartrial] {gettext(spec.label)}: {alert.subject.code}"
    return subject_line, "\n".join(lines) + "\n"
