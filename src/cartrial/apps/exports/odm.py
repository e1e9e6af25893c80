"""The CDISC ODM 1.3.2 export: the casebook of the request's subjects with its whole audit trail.

Reads the database a chunk of subjects at a time (their visits, forms, item histories and casebook
signature) and hands plain histories to the domain's builder (`domain/standards/odm.py`), which
writes each subject's `SubjectData` and forgets it: memory holds the study's metadata, the users and
one chunk, whatever the number of subjects. Identity is never read: ODM is pseudonymous here (the
subject key is the subject code).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from cartrial import __version__
from cartrial.apps.accounts.models import ElectronicSignature, User
from cartrial.apps.audit.events import AuditEvent
from cartrial.apps.audit.models import AuditEntry
from cartrial.apps.audit.selectors import actors_about, first_entries
from cartrial.apps.casebook.models import CasebookSignature, FormRecord, VisitRecord
from cartrial.apps.casebook.selectors import (
    ItemChange,
    RecordHistory,
    casebook_histories,
    casebook_signatures_in_force,
)
from cartrial.apps.exports.request import ExportCounts, ExportRequest, Progress
from cartrial.apps.subjects.models import Subject
from cartrial.apps.trial.models import Center
from cartrial.domain.ecrf import FormStatus
from cartrial.domain.standards import odm
from cartrial.domain.visits import is_unscheduled
from cartrial.locale import translator
from cartrial.protocols import Protocol, active_protocol

# Subjects read and written per round trip to the database: the export holds one chunk's visits,
# forms, item histories and audit entries at a time (a fully followed subject is ~450 ODM records),
# so this bounds its memory (benchmarks/exports.py: about 60 MiB at 200, flat near 20 MiB at 50).
CHUNK_SUBJECTS = 50
# Who a subject's registration is stamped with when the audit trail holds no entry of it.
SYSTEM_USER = "system"
# Ids per `IN (...)` list: well under SQLite's limit on query parameters.
_IDS_PER_QUERY = 900

_LOCATION_TYPES: Mapping[str, odm.LocationType] = {
    Center.Kind.CLINICAL: odm.LocationType.SITE,
    Center.Kind.MANUFACTURING: odm.LocationType.LAB,
    Center.Kind.SPONSOR: odm.LocationType.SPONSOR,
}


def odm_write(request: ExportRequest, out: Path, progress: Progress) -> ExportCounts:
    """Write the request's subjects as one ODM 1.3.2 Transactional, Archival file at `out`."""
    protocol = active_protocol()
    study = study_definition(protocol)
    translations = {language: translator(language) for language in odm.LANGUAGES}
    metadata = odm.study_metadata(study, translations)
    subjects = _subject_keys(request.subject_ids)
    locations, sponsor_code = _locations(protocol)
    codes = [code for _, code in subjects]
    meanings = _meanings(codes)
    users = _users(subjects, sponsor_code, {location.code for location in locations})
    admin = odm.admin_element(study, users, locations, sorted(meanings), translations)
    header = _header(request, study)
    done = 0

    def one_more() -> None:
        nonlocal done
        done += 1
        progress(done, len(subjects))

    progress(0, len(subjects))
    with out.open("wb") as target:
        counts = odm.odm_write(
            target,
            header=header,
            metadata=metadata,
            admin=admin,
            subjects=_histories(protocol, subjects, sponsor_code, {location.code for location in locations}),
            since=request.since,
            written_one=one_more,
        )
    return ExportCounts(subjects=counts.subjects, records=counts.transactions)


def study_definition(protocol: Protocol) -> odm.StudyDefinition:
    """The protocol as the ODM builder reads it."""
    return odm.StudyDefinition(
        code=protocol.code,
        version=protocol.version,
        title=protocol.title,
        sponsor=str(protocol.raw.get("study", {}).get("sponsor") or protocol.code),
        effective_date=protocol.effective_date,
        visits=protocol.visits,
        forms=protocol.forms,
    )


def _chunks[T](items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _subject_keys(subject_ids: frozenset[int]) -> list[tuple[int, str]]:
    """The request's subjects as (id, code), in code order (the file's order)."""
    keys: list[tuple[int, str]] = []
    for ids in _chunks(sorted(subject_ids), _IDS_PER_QUERY):
        keys.extend(Subject.objects.filter(pk__in=list(ids)).values_list("pk", "code"))
    return sorted(keys, key=lambda key: key[1])


def _meanings(codes: Sequence[str]) -> set[str]:
    found: set[str] = set()
    for chunk in _chunks(codes, _IDS_PER_QUERY):
        rows = ElectronicSignature.objects.filter(entity="casebook", entity_id__in=list(chunk))
        found.update(rows.values_list("meaning", flat=True).distinct())
    return found


def _locations(protocol: Protocol) -> tuple[list[odm.Location], str]:
    """Every center, the manufacturing lab and the sponsor (the protocol's, when no center is it)."""
    centers = list(Center.objects.order_by("code"))
    locations = [odm.Location(c.code, c.name, _LOCATION_TYPES.get(c.kind, odm.LocationType.SITE)) for c in centers]
    sponsor = next((c.code for c in centers if c.kind == Center.Kind.SPONSOR), None)
    if sponsor is None:
        sponsor = odm.SPONSOR_LOCATION_CODE
        name = str(protocol.raw.get("study", {}).get("sponsor") or protocol.code)
        locations.append(odm.Location(sponsor, name, odm.LocationType.SPONSOR))
    return locations, sponsor


def _users(subjects: Sequence[tuple[int, str]], sponsor_code: str, locations: set[str]) -> list[odm.User]:
    """Everyone who wrote the subjects' casebook (entries, SDV, locks) or signed it, with their roles and
    centers; the system when a subject's registration is missing from the trail."""
    names: set[str] = set()
    for chunk in _chunks(subjects, _IDS_PER_QUERY):
        ids, codes = [pk for pk, _ in chunk], [code for _, code in chunk]
        names |= actors_about(codes, entities=("form_record", "visit_record"), events=(AuditEvent.SUBJECT_CREATED,))
        names |= set(FormRecord.objects.filter(subject_id__in=ids).values_list("created_by__username", flat=True))
        names |= set(VisitRecord.objects.filter(subject_id__in=ids).values_list("recorded_by__username", flat=True))
        signers = ElectronicSignature.objects.filter(entity="casebook", entity_id__in=codes)
        names |= set(signers.values_list("signer__username", flat=True))
        if len(first_entries(AuditEvent.SUBJECT_CREATED, codes)) < len(codes):
            names.add(SYSTEM_USER)
    people = {
        user.username: user
        for chunk in _chunks(sorted(names), _IDS_PER_QUERY)
        for user in User.objects.filter(username__in=list(chunk)).prefetch_related("memberships__center")
    }
    found = []
    for name in sorted(names):
        user = people.get(name)
        if user is None:
            # The system (set-up commands, scheduled scans) acts under a name, not an account.
            found.append(odm.User(name, name, location_codes=(sponsor_code,)))
            continue
        memberships = list(user.memberships.all())
        centers = tuple(dict.fromkeys(m.center.code for m in memberships if m.center.code in locations))
        found.append(
            odm.User(
                username=name,
                display_name=user.get_full_name() or name,
                first_name=user.first_name,
                last_name=user.last_name,
                kind=odm.user_type(m.role for m in memberships),
                location_codes=centers,
            )
        )
    return found


def _header(request: ExportRequest, study: odm.StudyDefinition) -> odm.FileHeader:
    """The file's id (unique per content asked and time), its breadth and who asked."""
    asked = f"{sorted(request.subject_ids)}|{request.since}|{request.requested_by}|{request.now.isoformat()}"
    digest = hashlib.sha256(asked.encode("utf-8")).hexdigest()[:10]
    granularity = None
    if not request.study_wide and len(request.subject_ids) == 1:
        granularity = "SingleSubject"
    elif len(request.center_ids) == 1:
        granularity = "SingleSite"
    elif request.study_wide:
        granularity = "All"
    since = f", changes after {odm.timestamp(request.since)}" if request.since is not None else ""
    return odm.FileHeader(
        file_oid=f"CARTRIAL.{study.code}.{request.now:%Y%m%dT%H%M%SZ}.{digest}",
        created_at=request.now,
        originator=request.requested_by,
        description=f"{study.code} v{study.version} casebook, {len(request.subject_ids)} subject(s){since}",
        source_version=__version__,
        granularity=granularity,
    )


class _Stamps:
    """Audit entries and changes as the builder's stamps (location and edit point decided once)."""

    def __init__(self, sponsor_code: str, locations: set[str]) -> None:
        self.sponsor_code = sponsor_code
        self.locations = locations

    def location(self, role: str, center_code: str) -> str:
        code = odm.action_location(role, center_code, self.sponsor_code)
        return code if code in self.locations else self.sponsor_code

    def of_entry(self, entry: AuditEntry) -> odm.Stamp:
        return odm.Stamp(
            entry.actor_username,
            self.location(entry.role, entry.center_code),
            entry.occurred_at,
            entry.reason,
            odm.edit_point(entry.role, after_lock=False),
        )

    def of_change(self, change: ItemChange) -> odm.ValueChange:
        stamp = odm.Stamp(
            change.user,
            self.location(change.role, change.center_code),
            change.at,
            change.reason,
            odm.edit_point(change.role, change.after_lock),
        )
        return odm.ValueChange(change.item, change.old, change.new, stamp)


def _visit_order(protocol: Protocol) -> dict[str, int]:
    return {visit.code: index for index, visit in enumerate(protocol.visits)}


def _histories(
    protocol: Protocol, subjects: Sequence[tuple[int, str]], sponsor_code: str, locations: set[str]
) -> Iterator[odm.SubjectHistory]:
    """Each subject's history, read a chunk of subjects at a time."""
    stamps = _Stamps(sponsor_code, locations)
    order = _visit_order(protocol)
    for chunk in _chunks(subjects, CHUNK_SUBJECTS):
        yield from _chunk_histories(protocol, chunk, stamps, order)


def _visit_key(order: Mapping[str, int], code: str) -> tuple[int, int, str]:
    if is_unscheduled(code):
        return (len(order), int(code[1:]), code)
    return (order.get(code, len(order)), 0, code)


def _form_history(
    form: FormRecord, history: RecordHistory | None, stamps: _Stamps, site: str, signed: odm.Signed | None
) -> odm.FormHistory:
    """A form's history from the audit trail; a form whose trail holds no entry (written around the
    services, e.g. a bulk load) is written as it stands, its values inserted by its creator."""
    signature = signed if signed is not None and form.status == FormStatus.SIGNED.value else None
    if history is not None:
        changes = tuple(stamps.of_change(change) for change in history.changes)
        return odm.FormHistory(form.form_code, stamps.of_entry(history.created), changes, signature)
    created = odm.Stamp(form.created_by.username, site, form.created_at)
    values = form.values_json or {}
    return odm.FormHistory(
        form.form_code,
        created,
        tuple(odm.ValueChange(name, None, value, created) for name, value in values.items()),
        signature,
    )


def _visit_history(
    visit: VisitRecord, history: RecordHistory | None, stamps: _Stamps, site: str, forms: Sequence[odm.FormHistory]
) -> odm.VisitHistory:
    """A visit's history from the audit trail, or the visit as it stands (as for a form)."""
    if history is not None:
        changes = tuple(stamps.of_change(change) for change in history.changes)
        return odm.VisitHistory(visit.visit_code, stamps.of_entry(history.created), changes, tuple(forms))
    created = odm.Stamp(visit.recorded_by.username, site, visit.recorded_at)
    fields = {
        "outcome": visit.outcome,
        "done_on": visit.done_on.isoformat() if visit.done_on is not None else None,
        "missed_reason": visit.missed_reason or None,
    }
    stood = tuple(odm.ValueChange(name, None, value, created) for name, value in fields.items())
    return odm.VisitHistory(visit.visit_code, created, stood, tuple(forms))


def _signed(in_force: CasebookSignature | None, stamps: _Stamps) -> odm.Signed | None:
    if in_force is None:
        return None
    signature = in_force.signature
    location = stamps.location(signature.role, signature.center_code)
    return odm.Signed(signature.pk, signature.signer.username, location, signature.meaning, signature.signed_at)


def _chunk_histories(
    protocol: Protocol, chunk: Sequence[tuple[int, str]], stamps: _Stamps, order: Mapping[str, int]
) -> Iterator[odm.SubjectHistory]:
    ids = [pk for pk, _ in chunk]
    codes = [code for _, code in chunk]
    subjects = {s.pk: s for s in Subject.objects.filter(pk__in=ids).select_related("center")}
    histories = casebook_histories(codes)
    registrations = first_entries(AuditEvent.SUBJECT_CREATED, codes)
    signatures = casebook_signatures_in_force(ids)
    visits: dict[int, list[VisitRecord]] = {}
    for visit in VisitRecord.objects.filter(subject_id__in=ids).select_related("recorded_by"):
        visits.setdefault(visit.subject_id, []).append(visit)
    forms: dict[tuple[int, str], list[FormRecord]] = {}
    records = FormRecord.objects.filter(subject_id__in=ids).select_related("created_by")
    for form in records.defer("verified_json", "observations_json").order_by("form_code"):
        forms.setdefault((form.subject_id, form.visit_code), []).append(form)
    for pk, code in chunk:
        subject = subjects[pk]
        site = subject.center.code
        signed = _signed(signatures.get(pk), stamps)
        registration = registrations.get(code)
        created = (
            stamps.of_entry(registration)
            if registration is not None
            else odm.Stamp(SYSTEM_USER, stamps.sponsor_code, subject.created_at)
        )
        visit_histories = []
        for visit in sorted(visits.get(pk, []), key=lambda v: _visit_key(order, v.visit_code)):
            collected = protocol.visit(visit.visit_code).forms if visit.visit_code in order else ()
            in_order = sorted(
                forms.get((pk, visit.visit_code), []),
                key=lambda f: collected.index(f.form_code) if f.form_code in collected else len(collected),
            )
            form_histories = [
                _form_history(form, histories.get(("form_record", form.pk)), stamps, site, signed) for form in in_order
            ]
            history = histories.get(("visit_record", visit.pk))
            visit_histories.append(_visit_history(visit, history, stamps, site, form_histories))
        yield odm.SubjectHistory(code, site, created, tuple(visit_histories), signed)
