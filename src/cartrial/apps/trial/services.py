"""Trial set-up writes: centers and protocol registration, each audited."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.db import transaction

from cartrial.apps.audit.events import AuditEvent
from cartrial.apps.audit.services import Actor, audit_record, changes_between
from cartrial.apps.trial.models import Center, ProtocolVersion
from cartrial.domain.errors import InvalidInput, Refused
from cartrial.protocols import Protocol

CENTER_CODE = re.compile(r"[A-Z]{2,6}")
COUNTRY_CODE = re.compile(r"[A-Z]{2}")
# The languages a center's staff see by default: those of the translation catalogs.
CENTER_LANGUAGES = ("fr", "en")


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
    if not CENTER_CODE.fullmatch(code):
        raise InvalidInput(
            "A center's code is 2 to 6 capital letters (BDX), not '{center}'.",
            code="invalid_center_code",
            item="code",
            center=code,
        )
    _center_values_check(country=country, time_zone=time_zone, language=language, kind=kind)
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


def _center_values_check(*, country: str, time_zone: str, language: str, kind: str) -> None:
    """The values of a center that the database would store but the trial could not use."""
    try:
        ZoneInfo(time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(
            "Unknown time zone '{zone}'.", code="unknown_time_zone", item="time_zone", zone=time_zone
        ) from None
    if not COUNTRY_CODE.fullmatch(country):
        raise InvalidInput(
            "A country is its two-letter ISO 3166 code (FR), not '{country}'.",
            code="invalid_country",
            item="country",
            country=country,
        )
    if language not in CENTER_LANGUAGES:
        raise InvalidInput(
            "The center's language is one of {languages}, not '{language}'.",
            code="invalid_language",
            item="language",
            languages=list(CENTER_LANGUAGES),
            language=language,
        )
    if kind not in Center.Kind.values:
        raise InvalidInput(
            "A center's kind is one of {kinds}, not '{kind}'.",
            code="invalid_center_kind",
            item="kind",
            kinds=list(Center.Kind.values),
            kind=kind,
        )


def center_update(
    *,
    actor: Actor,
    center: Center,
    name: str,
    city: str,
    country: str,
    time_zone: str,
    language: str,
    kind: str,
    active: bool,
) -> Center:
    """Change a center's name, place, time zone, language, kind or whether it is active (an inactive
    center gives nobody access). Its code never changes: it prefixes its subjects' codes. Its kind
    changes only while nobody holds a role there and it has no subject (roles depend on the kind)."""
    _center_values_check(country=country, time_zone=time_zone, language=language, kind=kind)
    if not name.strip():
        raise InvalidInput("A center needs a name.", code="name_required", item="name")
    with transaction.atomic():
        locked = Center.objects.select_for_update().get(pk=center.pk)
        if kind != locked.kind and (locked.memberships.exists() or locked.subjects.exists()):
            raise Refused(
                "The kind of {center} cannot change: people hold roles there or it has subjects.",
                code="center_kind_in_use",
                item="kind",
                center=locked.code,
            )
        fields = ("name", "city", "country", "time_zone", "language", "kind", "active")
        before = {f: getattr(locked, f) for f in fields}
        after = {
            "name": name.strip(),
            "city": city.strip(),
            "country": country,
            "time_zone": time_zone,
            "language": language,
            "kind": kind,
            "active": active,
        }
        changes = [c for c in changes_between(before, after) if c.old != c.new]
        if not changes:
            return locked
        for field, value in after.items():
            setattr(locked, field, value)
        locked.save(update_fields=list(fields))
        audit_record(
            actor=actor,
            event=AuditEvent.CENTER_CHANGED,
            entity="center",
            entity_id=locked.code,
            center_code=locked.code,
            changes=changes,
        )
    return locked


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
