"""The one access module: every read and write of trial data is scoped here (DESIGN §5).

Rules:
- A user reaches a center's subjects only through a membership at that center.
- The manufacturing lab's staff reach the subjects whose material the lab handles, pseudonymously.
- Identity data (name, birth date, hospital number) is shown only to the staff of the
  subject's own center (investigator, coordinator, apheresis, pharmacist).
- A pathway step is allowed only to the roles of `STEP_ROLES`, at the subject's center
  (or the lab for manufacturing steps).
Anything outside a user's scope answers as if it did not exist (404), never 403, so that
codes of other centers cannot be probed.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Exists, OuterRef, Q, QuerySet

from cartrial.apps.accounts.models import Membership, User
from cartrial.apps.audit.events import AuditEvent
from cartrial.apps.audit.services import Actor, audit_refusal
from cartrial.apps.subjects.models import PathwayEvent, Subject
from cartrial.apps.trial.models import Center
from cartrial.domain.errors import DomainError
from cartrial.domain.logistics_actions import LOGISTICS_ACTION_ROLES, LogisticsAction
from cartrial.domain.pathway import Step
from cartrial.domain.roles import CENTER_STAFF, STEP_ROLES, SUBJECT_CREATORS, Role


class AccessDenied(DomainError):
    """The user may not do this; adapters answer 404 for objects, 403 for actions."""

    code = "access_denied"


@dataclass(frozen=True)
class Scope:
    """What one user may reach, computed once per request."""

    user_id: int
    roles_by_center: dict[int, Role]
    center_codes: dict[int, str]

    @property
    def center_ids(self) -> set[int]:
        return set(self.roles_by_center)

    def role_at(self, center_id: int) -> Role | None:
        return self.roles_by_center.get(center_id)

    @property
    def lab_center_ids(self) -> set[int]:
        return {cid for cid, role in self.roles_by_center.items() if role is Role.MANUFACTURING}

    @property
    def clinical_center_ids(self) -> set[int]:
        return {cid for cid, role in self.roles_by_center.items() if role is not Role.MANUFACTURING}


def scope_for(user: User) -> Scope:
    """The user's memberships as a scope; an inactive or anonymous user has none."""
    if not user.is_authenticated or not user.is_active:
        return Scope(user_id=0, roles_by_center={}, center_codes={})
    rows = Membership.objects.filter(user=user, center__active=True).values_list("center_id", "role", "center__code")
    return Scope(
        user_id=user.pk,
        roles_by_center={cid: Role(role) for cid, role, _ in rows},
        center_codes={cid: code for cid, _, code in rows},
    )


def access_subject_filter(scope: Scope) -> Q:
    """The ORM filter of subjects a scope may read (used by every subject selector)."""
    condition = Q(center_id__in=scope.clinical_center_ids)
    if scope.lab_center_ids:
        # The lab reaches, pseudonymously, the subjects whose material was shipped to it at least
        # once: it holds or has held their cells, and keeps seeing them through re-apheresis,
        # release, infusion and follow-up (product-related outcomes concern it); never before.
        shipped = PathwayEvent.objects.filter(subject_id=OuterRef("pk"), step=Step.SHIP_MATERIAL.value)
        condition |= Q(manufacturing_site_id__in=scope.lab_center_ids) & Q(Exists(shipped))
    return condition


def access_can_see_identity(scope: Scope, center_id: int) -> bool:
    """Only the staff of the subject's own center see who the patient is."""
    return scope.role_at(center_id) in CENTER_STAFF


def access_creator_centers(scope: Scope) -> QuerySet[Center]:
    """Centers where the user may register new subjects."""
    ids = [cid for cid, role in scope.roles_by_center.items() if role in SUBJECT_CREATORS]
    return Center.objects.filter(pk__in=ids, kind=Center.Kind.CLINICAL).order_by("code")


def access_create_subject(scope: Scope, user: User, center: Center) -> Actor:
    """The actor registering a subject at `center`, or AccessDenied (recorded as `access.refused`)."""
    role = scope.role_at(center.pk)
    if role not in SUBJECT_CREATORS:
        denied = AccessDenied(f"You cannot register subjects at {center.code}.")
        audit_refusal(
            actor=actor_for_read(scope, user, center.pk),
            event=AuditEvent.ACCESS_REFUSED,
            entity="center",
            entity_id=center.code,
            code=denied.code,
            message=f"register a subject: {denied.message}",
        )
        raise denied
    return Actor(user_id=user.pk, username=user.get_username(), role=role.value, center_code=center.code)


def acting_role_for_step(scope: Scope, step: Step, center_id: int, manufacturing_site_id: int | None) -> Role | None:
    """The role with which the user may perform `step` on a subject, or None."""
    allowed = STEP_ROLES[step]
    role = scope.role_at(center_id)
    if role is not None and role in allowed:
        return role
    if manufacturing_site_id is not None:
        lab_role = scope.role_at(manufacturing_site_id)
        if lab_role is Role.MANUFACTURING and lab_role in allowed:
            return lab_role
    return None


def access_step(
    scope: Scope, user: User, step: Step, *, center_id: int, manufacturing_site_id: int | None, center_code: str
) -> Actor:
    """The actor performing `step`, or AccessDenied naming who may do it."""
    role = acting_role_for_step(scope, step, center_id, manufacturing_site_id)
    if role is None:
        allowed = ", ".join(sorted(r.value for r in STEP_ROLES[step]))
        raise AccessDenied(f"Your role cannot perform this step (allowed: {allowed}).")
    acting_center = center_code
    if role is Role.MANUFACTURING and manufacturing_site_id is not None:
        acting_center = scope.center_codes.get(manufacturing_site_id, center_code)
    return Actor(user_id=user.pk, username=user.get_username(), role=role.value, center_code=acting_center)


def actor_for_read(scope: Scope, user: User, center_id: int) -> Actor:
    """The actor for recording a refusal or a read-side event at a center."""
    role = scope.role_at(center_id)
    return Actor(
        user_id=user.pk if user.is_authenticated else None,
        username=user.get_username() if user.is_authenticated else "anonymous",
        role=role.value if role else "",
        center_code=scope.center_codes.get(center_id, ""),
    )


# --- logistics -----------------------------------------------------------------------------------


def acting_role_for_logistics(
    scope: Scope, action: LogisticsAction, center_id: int, manufacturing_site_id: int | None
) -> Role | None:
    """The role with which the user may perform a logistics action on a subject, or None."""
    allowed = LOGISTICS_ACTION_ROLES[action]
    role = scope.role_at(center_id)
    if role is not None and role in allowed:
        return role
    if manufacturing_site_id is not None:
        lab_role = scope.role_at(manufacturing_site_id)
        if lab_role is Role.MANUFACTURING and lab_role in allowed:
            return lab_role
    return None


def access_logistics_action(
    scope: Scope,
    user: User,
    action: LogisticsAction,
    *,
    center_id: int,
    manufacturing_site_id: int | None,
    center_code: str,
) -> Actor:
    """The actor performing a logistics action, or AccessDenied naming who may do it.

    The subject itself must already have been reached through the scoped selector (404 otherwise).
    """
    role = acting_role_for_logistics(scope, action, center_id, manufacturing_site_id)
    if role is None:
        allowed = ", ".join(sorted(r.value for r in LOGISTICS_ACTION_ROLES[action]))
        raise AccessDenied(f"Your role cannot perform this action (allowed: {allowed}).")
    acting_center = center_code
    if role is Role.MANUFACTURING and manufacturing_site_id is not None:
        acting_center = scope.center_codes.get(manufacturing_site_id, center_code)
    return Actor(user_id=user.pk, username=user.get_username(), role=role.value, center_code=acting_center)


def access_refusal_record(scope: Scope, user: User, subject: Subject, what: str, denied: AccessDenied) -> None:
    """Record a refused action on a subject as `access.refused` (its own transaction: nothing else was written)."""
    audit_refusal(
        actor=actor_for_read(scope, user, subject.center_id),
        event=AuditEvent.ACCESS_REFUSED,
        entity="subject",
        entity_id=subject.code,
        code=denied.code,
        message=f"{what}: {denied.message}",
        subject_code=subject.code,
    )
