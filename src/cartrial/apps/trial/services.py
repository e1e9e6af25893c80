"""Trial set-up writes: centers and protocol registration, each audited."""

from __future__ import annotations

import hashlib
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.db import transaction

from cartrial.apps.audit.events import AuditEvent
from cartrial.apps.audit.services import Actor, audit_record, changes_between
from cartrial.apps.trial.models import Center, ProtocolVersion
from cartrial.domain.errors import InvalidInput
from cartrial.protocols import Protocol


def center_create(
    *,
    actor: Actor,
    code: str,
    name: str,
    city: str,
    country: str,
    time_zone: str,
    language: str,
    kind: str = Center.Kind.CLINICAL,
) -> Center:
    """Register a center; its code becomes the prefix of its subjects' codes."""
    try:
        ZoneInfo(time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(
            "Unknown time zone '{zone}'.", code="unknown_time_zone", item="time_zone", zone=time_zone
        ) from None
    if Center.objects.filter(code=code).exists():
        raise InvalidInput(
            "A center with code '{center}' already exists.", code="duplicate_center", item="code", center=code
        )
    with transaction.atomic():
        center = Center.objects.create(
            code=code, name=name, city=city, country=country, time_zone=time_zone, language=language, kind=kind
        )
        audit_record(
            actor=actor,
            event=AuditEvent.CENTER_CREATED,
            entity="center",
            entity_id=code,
            changes=changes_between(
                None,
                {"code": code, "name": name, "city": city, "country": country, "time_zone": time_zone, "kind": kind},
            ),
        )
    return center


def protocol_register(*, actor: Actor, protocol: Protocol) -> ProtocolVersion:
    """Record the protocol version in force (idempotent for an unchanged file)."""
    digest = hashlib.sha256(Path(protocol.path).read_bytes()).hexdigest()
    existing = ProtocolVersion.objects.filter(study_code=protocol.code, version=protocol.version).first()
    if existing is not None:
        if existing.file_sha256 != digest:
            raise InvalidInput(
                "Protocol {study} v{version} is already registered with other content: "
                "an amendment needs a new version number.",
                code="protocol_version_reused",
                study=protocol.code,
                version=protocol.version,
            )
        return existing
    with transaction.atomic():
        version = ProtocolVersion.objects.create(
            study_code=protocol.code, version=protocol.version, file_sha256=digest, registered_at=actor.now
        )
        audit_record(
            actor=actor,
            event=AuditEvent.PROTOCOL_REGISTERED,
            entity="protocol",
            entity_id=f"{protocol.code}:{protocol.version}",
            changes=changes_between(None, {"version": protocol.version, "sha256": digest}),
        )
    return version
