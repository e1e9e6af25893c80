"""The one access entry point: every page, API endpoint and command reaches trial data through here.

`reach_subject(user, code, action)` does, in one call, what every adapter needs before touching
a subject: find it within the user's scope (404 `NotFound` otherwise, never revealing that it
exists elsewhere), authorise the pathway step or action for the user's role there (403
`AccessDenied`, the attempt recorded in the audit trail), and return a `Reach` whose `actor`
carries the one `now` of this user action. `Reach.run(work)` runs the change in one
transaction and records a refusal after its rollback.

Rules (DESIGN §1):
- A user reaches a center's subjects only through a membership at that center.
- The manufacturing lab reaches, pseudonymously, the subjects whose material was shipped to it.
- Identity (name, birth date, hospital number) is shown only to the staff of the subject's center.
- What each role may do is `domain.roles.ROLES_FOR` (steps and actions alike).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from django.db.models import Exists, OuterRef, Q, QuerySet

from cartrial.apps import clock
from cartrial.apps.accounts.models import Membership, User, membership_current
from cartrial.apps.audit.events import AuditEvent
from cartrial.apps.audit.services import Actor, audit_refusal, audited_attempt
from cartrial.apps.subjects.identity_crypto import identity_decrypt
from cartrial.apps.subjects.models import PathwayEvent, Subject
from cartrial.apps.trial.models import Center
from cartrial.domain.errors import AccessDenied, NotFound
from cartrial.domain.pathway import Step
from cartrial.domain.roles import CENTER_STAFF, ROLE_LABELS, Action, Role, action_label, roles_for
from cartrial.domain.text import label

T = TypeVar("T")

# Actions whose refusals are recorded as logistics refusals (stable audit event codes).
LOGISTICS_ACTIONS: frozenset[Action] = frozenset(
    {
        Action.RECEIVE_MATERIAL,
        Action.RECORD_QC,
        Action.IMPORT_TEMPERATURE_LOG,
        Action.DOCUMENT_OOS_EXCEPTION,
        Action.DECIDE_NO_INFUSION,
        Action.THAW,
        Action.PRINT_LABELS,
        Action.MANAGE_DEVIATION,
    }
)


@dataclass(frozen=True)
class Scope:
    """What one user may reach, computed once per request."""

    user_id: int
    roles_by_center: dict[int, Role]
    center_codes: dict[int, str]

    @property
    def center_ids(self) -> set[int]:
        return set(self.roles_by_center)

    def role_at(self, center_id: int | None) -> Role | None:
        return self.roles_by_center.get(center_id) if center_id is not None else None

    @property
    def lab_center_ids(self) -> set[int]:
        return {cid for cid, role in self.roles_by_center.items() if role is Role.MANUFACTURING}

    @property
    def clinical_center_ids(self) -> set[int]:
        return {cid for cid, role in self.roles_by_center.items() if role is not Role.MANUFACTURING}


def scope_for(user: Any) -> Scope:
    """The user's memberships in force as a scope; an inactive (suspended) or anonymous user has
    none, nor has a membership whose end has passed (as if it did not exist: 404 on its subjects)."""
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return Scope(user_id=0, roles_by_center={}, center_codes={})
    current = Membership.objects.filter(membership_current(clock.now()), user=user, center__active=True)
    rows = current.values_list("center_id", "role", "center__code")
    return Scope(
        user_id=user.pk,
        roles_by_center={cid: Role(role) for cid, role, _ in rows},
        center_codes={cid: code for cid, _, code in rows},
    )


def subject_filter(scope: Scope) -> Q:
    """The ORM filter of the subjects a scope may read (every scoped read uses it)."""
    condition = Q(center_id__in=scope.clinical_center_ids)
    if scope.lab_center_ids:
        # The lab reaches the subjects whose material was shipped to it at least once: it holds or has
        # held their cells, and keeps seeing them through re-apheresis, release, infusion and follow-up.
        shipped = PathwayEvent.objects.filter(subject_id=OuterRef("pk"), step=Step.SHIP_MATERIAL.value)
        condition |= Q(manufacturing_site_id__in=scope.lab_center_ids) & Q(Exists(shipped))
    return condition


def subjects_in_scope(scope: Scope, *, center_code: str | None = None, state: str | None = None) -> QuerySet[Subject]:
    """The subjects the user may see, with their center, optionally filtered."""
    queryset = Subject.objects.filter(subject_filter(scope)).select_related("center")
    if center_code:
        queryset = queryset.filter(center__code=center_code)
    if state:
        queryset = queryset.filter(state=state)
    return queryset.order_by("center__code", "number")


def acting_role(scope: Scope, action: Step | Action, subject: Subject) -> Role | None:
    """The role with which the user may take `action` on `subject`: at its center, or the lab's."""
    allowed = roles_for(action)
    role = scope.role_at(subject.center_id)
    if role is not None and role in allowed:
        return role
    lab_role = scope.role_at(subject.manufacturing_site_id)
    if lab_role is Role.MANUFACTURING and lab_role in allowed:
        return lab_role
    return None


def can(scope: Scope, action: Step | Action, subject: Subject) -> bool:
    """Whether to offer `action` (a button, a form): the same rule the entry point enforces."""
    return acting_role(scope, action, subject) is not None


def identity_visible(scope: Scope, subject: Subject) -> bool:
    """Only the staff of the subject's own center see who the patient is."""
    return scope.role_at(subject.center_id) in CENTER_STAFF


def subject_identity(scope: Scope, subject: Subject) -> dict[str, Any] | None:
    """Decrypted identity for the center's own staff; None for everyone else (pseudonymous view)."""
    if not identity_visible(scope, subject):
        return None
    return identity_decrypt(subject.identity.ciphertext)


def _actor(scope: Scope, user: Any, center_id: int | None, role: Role | None) -> Actor:
    return Actor(
        user_id=user.pk if getattr(user, "is_authenticated", False) else None,
        username=user.get_username() if getattr(user, "is_authenticated", False) else "anonymous",
        role=role.value if role else "",
        center_code=scope.center_codes.get(center_id, "") if center_id is not None else "",
        now=clock.now(),
    )


def refusal_event(action: Step | Action | None) -> AuditEvent:
    """The audit event under which a refused `action` is recorded."""
    if isinstance(action, Step):
        return AuditEvent.STEP_REFUSED
    if action in LOGISTICS_ACTIONS:
        return AuditEvent.LOGISTICS_REFUSED
    return AuditEvent.ACTION_REFUSED


@dataclass(frozen=True)
class Reach:
    """A subject reached within scope, for one user action by `actor` (who, role, center, now)."""

    scope: Scope
    user: User
    subject: Subject
    actor: Actor
    action: Step | Action | None

    def run(self, work: Callable[[], T], *, what: str = "") -> T:
        """Run the change in one transaction; a refusal is recorded after the rollback."""
        return audited_attempt(
            actor=self.actor,
            event=refusal_event(self.action),
            entity="subject",
            entity_id=self.subject.code,
            what=what or (self.action.value if self.action else "action"),
            subject_code=self.subject.code,
            work=work,
        )

    @property
    def identity(self) -> dict[str, Any] | None:
        return subject_identity(self.scope, self.subject)


def _denied(action: Step | Action, where: str) -> AccessDenied:
    return AccessDenied(
        "Your role cannot do this here ({action} at {center}); allowed: {roles}.",
        action=label(action_label(action)),
        center=where,
        roles=[label(ROLE_LABELS[r]) for r in sorted(roles_for(action))],
    )


def reach_subject(user: Any, code: str, action: Step | Action | None = None, *, record: bool = True) -> Reach:
    """The subject `code` within the user's scope, authorised for `action` (None: reading it).

    Outside the scope: NotFound. A role that may not take `action`: AccessDenied, recorded as an
    attempt unless `record` is False (opening a form one may not submit is not an attempt to act).
    """
    scope = scope_for(user)
    subject = (
        Subject.objects.filter(subject_filter(scope))
        .select_related("center", "manufacturing_site", "protocol_version")
        .filter(code=str(code).strip().upper())
        .first()
    )
    if subject is None:
        raise NotFound("No subject '{subject}' in your scope.", code="not_found", subject=code)
    if action is None:
        role = scope.role_at(subject.center_id) or scope.role_at(subject.manufacturing_site_id)
        return Reach(scope, user, subject, _actor(scope, user, subject.center_id, role), None)
    role = acting_role(scope, action, subject)
    if role is None:
        denied = _denied(action, subject.center.code)
        if not record:
            raise denied
        refused_by = _actor(scope, user, subject.center_id, scope.role_at(subject.center_id))
        audit_refusal(
            actor=refused_by,
            event=AuditEvent.ACCESS_REFUSED,
            entity="subject",
            entity_id=subject.code,
            code=denied.code,
            message=f"{action.value}: {denied}",
            said=denied.message,
            what=action.value,
            subject_code=subject.code,
        )
        raise denied
    acting_center = subject.manufacturing_site_id if role is Role.MANUFACTURING else subject.center_id
    return Reach(scope, user, subject, _actor(scope, user, acting_center, role), action)


@dataclass(frozen=True)
class CenterReach:
    """A center of the user's scope, for one action by `actor`."""

    scope: Scope
    user: User
    center: Center
    actor: Actor


def creator_centers(scope: Scope) -> QuerySet[Center]:
    """Centers where the user may register new subjects."""
    allowed = roles_for(Action.REGISTER_SUBJECT)
    ids = [cid for cid, role in scope.roles_by_center.items() if role in allowed]
    return Center.objects.filter(pk__in=ids, kind=Center.Kind.CLINICAL).order_by("code")


def reach_center(user: Any, center_code: str, action: Action) -> CenterReach:
    """A center of the user's scope, authorised for `action` (recorded when refused)."""
    scope = scope_for(user)
    center = Center.objects.filter(code=str(center_code).strip().upper(), pk__in=scope.center_ids).first()
    if center is None:
        raise NotFound("No center '{center}' in your scope.", code="not_found", center=center_code)
    role = scope.role_at(center.pk)
    if role not in roles_for(action):
        denied = _denied(action, center.code)
        audit_refusal(
            actor=_actor(scope, user, center.pk, role),
            event=AuditEvent.ACCESS_REFUSED,
            entity="center",
            entity_id=center.code,
            code=denied.code,
            message=f"{action.value}: {denied}",
            said=denied.message,
            what=action.value,
        )
        raise denied
    return CenterReach(scope, user, center, _actor(scope, user, center.pk, role))


def centers_for(scope: Scope, action: Step | Action) -> set[int]:
    """The centers where the user's role may take `action` (for lists across centers)."""
    allowed = roles_for(action)
    return {cid for cid, role in scope.roles_by_center.items() if role in allowed}


def scope_narrowed(scope: Scope, action: Step | Action) -> Scope:
    """The scope cut down to the centers where the user's role may take `action`: a figure across
    centers (a dashboard) passes it to selectors that read any center of a scope, so that a center
    where the user holds another role never counts."""
    centers = centers_for(scope, action)
    return Scope(
        user_id=scope.user_id,
        roles_by_center={cid: role for cid, role in scope.roles_by_center.items() if cid in centers},
        center_codes={cid: code for cid, code in scope.center_codes.items() if cid in centers},
    )


def require_somewhere(user: Any, action: Action, page: str) -> Scope:
    """A page across centers (screening log, CONSORT): the user's role must allow `action` at one
    center at least; otherwise AccessDenied, recorded."""
    scope = scope_for(user)
    if centers_for(scope, action):
        return scope
    denied = _denied(action, ", ".join(sorted(scope.center_codes.values())) or "—")
    audit_refusal(
        actor=_actor(scope, user, None, None),
        event=AuditEvent.ACCESS_REFUSED,
        entity="page",
        entity_id=page,
        code=denied.code,
        message=f"{action.value}: {denied}",
        said=denied.message,
        what=action.value,
    )
    raise denied


def require_at(user: Any, center_id: int, action: Action, page: str) -> Actor:
    """A record of one center reached through a list across centers (a re-planning proposal): the
    user's role at that center must allow `action`, wherever the record was seen; otherwise
    AccessDenied, recorded. The actor acts at that center."""
    scope = scope_for(user)
    role = scope.role_at(center_id)
    if role in roles_for(action):
        return _actor(scope, user, center_id, role)
    denied = _denied(action, scope.center_codes.get(center_id) or "—")
    audit_refusal(
        actor=_actor(scope, user, None, None),
        event=AuditEvent.ACCESS_REFUSED,
        entity="page",
        entity_id=page,
        code=denied.code,
        message=f"{action.value}: {denied}",
        said=denied.message,
        what=action.value,
    )
    raise denied


def actor_somewhere(user: Any, action: Action, page: str) -> Actor:
    """`require_somewhere`, then the actor of this study-wide action (a long job's request): the
    user's role at the first center (by code) where that role allows `action`."""
    scope = require_somewhere(user, action, page)
    center_id = min(centers_for(scope, action), key=lambda cid: scope.center_codes[cid])
    return _actor(scope, user, center_id, scope.role_at(center_id))


def reach_network(user: Any, action: Action, page: str) -> tuple[Scope, Actor]:
    """A set-up page of the whole network (the capacities): like `require_somewhere`, and the actor
    acts in the role that allows `action`, at no center (the change is the network's)."""
    scope = require_somewhere(user, action, page)
    allowed = roles_for(action)
    role = next(r for _, r in sorted(scope.roles_by_center.items()) if r in allowed)
    return scope, _actor(scope, user, None, role)
