"""Who does what in the trial (DESIGN §1): roles and the pathway steps each may perform."""

from __future__ import annotations

from enum import StrEnum

from cartrial.domain.pathway import Step


class Role(StrEnum):
    """A user's role at one center; stable codes stored in the database."""

    INVESTIGATOR = "investigator"
    COORDINATOR = "coordinator"
    APHERESIS = "apheresis"
    PHARMACIST = "pharmacist"
    MANUFACTURING = "manufacturing"
    MONITOR = "monitor"
    DATA_MANAGER = "data_manager"
    SPONSOR_ADMIN = "sponsor_admin"


ROLE_LABELS: dict[Role, dict[str, str]] = {
    Role.INVESTIGATOR: {"en": "Investigator", "fr": "Investigateur"},
    Role.COORDINATOR: {"en": "Coordinator (CRA/TEC)", "fr": "Coordinateur (ARC/TEC)"},
    Role.APHERESIS: {"en": "Apheresis unit", "fr": "Unité d'aphérèse"},
    Role.PHARMACIST: {"en": "Pharmacist (PUI)", "fr": "Pharmacien (PUI)"},
    Role.MANUFACTURING: {"en": "Manufacturing lab", "fr": "Laboratoire de production"},
    Role.MONITOR: {"en": "Monitor (CRA)", "fr": "Moniteur (ARC promoteur)"},
    Role.DATA_MANAGER: {"en": "Data manager", "fr": "Data manager"},
    Role.SPONSOR_ADMIN: {"en": "Sponsor administrator", "fr": "Administrateur promoteur"},
}

# Staff of a hospital center: they care for the patient and may see who the patient is.
CENTER_STAFF: frozenset[Role] = frozenset({Role.INVESTIGATOR, Role.COORDINATOR, Role.APHERESIS, Role.PHARMACIST})
# Sponsor-side roles: pseudonymous data only, read-only on the pathway.
SPONSOR_ROLES: frozenset[Role] = frozenset({Role.MONITOR, Role.DATA_MANAGER, Role.SPONSOR_ADMIN})
# Roles that may register a new subject at their center.
SUBJECT_CREATORS: frozenset[Role] = frozenset({Role.INVESTIGATOR, Role.COORDINATOR})

_CLINICAL = frozenset({Role.INVESTIGATOR, Role.COORDINATOR})

STEP_ROLES: dict[Step, frozenset[Role]] = {
    Step.START_SCREENING: _CLINICAL,
    Step.CONFIRM_ELIGIBILITY: _CLINICAL,
    Step.FAIL_SCREENING: _CLINICAL,
    Step.INCLUDE: frozenset({Role.INVESTIGATOR}),
    Step.SCHEDULE_APHERESIS: _CLINICAL | {Role.APHERESIS},
    Step.COLLECT_APHERESIS: frozenset({Role.APHERESIS}),
    Step.SHIP_MATERIAL: frozenset({Role.APHERESIS}),
    Step.START_MANUFACTURING: frozenset({Role.MANUFACTURING}),
    Step.RELEASE_PRODUCT: frozenset({Role.MANUFACTURING}),
    Step.FAIL_MANUFACTURING: frozenset({Role.MANUFACTURING}),
    Step.REMANUFACTURE: frozenset({Role.MANUFACTURING}),
    Step.REPEAT_APHERESIS: _CLINICAL,
    Step.SHIP_PRODUCT: frozenset({Role.MANUFACTURING}),
    Step.RECEIVE_PRODUCT: frozenset({Role.PHARMACIST}),
    Step.START_LYMPHODEPLETION: frozenset({Role.INVESTIGATOR}),
    Step.INFUSE: frozenset({Role.INVESTIGATOR, Role.PHARMACIST}),
    Step.START_ACUTE_MONITORING: _CLINICAL,
    Step.START_FOLLOW_UP: _CLINICAL,
    Step.START_LONG_TERM_FOLLOW_UP: _CLINICAL,
    Step.COMPLETE: _CLINICAL,
    Step.WITHDRAW: _CLINICAL,
    Step.MARK_LOST_TO_FOLLOW_UP: _CLINICAL,
    Step.RECORD_DEATH: _CLINICAL,
}

# Roles that may take part in the two-person bedside identity check before infusion.
BEDSIDE_CHECKERS: frozenset[Role] = frozenset({Role.INVESTIGATOR, Role.PHARMACIST})


def role_label(role: Role, language: str = "en") -> str:
    """The role as shown to a user."""
    labels = ROLE_LABELS[role]
    return labels.get(language, labels["en"])
