"""Who does what in the trial (DESIGN §1): roles, and the pathway steps and other actions each may take.

Everything a user may do to a subject is either a pathway `Step` or an `Action` (a record between
steps, a read that is its own permission); `ROLES_FOR` says who may do each, and the access module
is the only place that reads it.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

from cartrial.domain.errors import Refused
from cartrial.domain.pathway import STATE_LABELS, STEP_LABELS, State, Step
from cartrial.domain.text import N_, label


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


ROLE_LABELS: dict[Role, str] = {
    Role.INVESTIGATOR: N_("Investigator"),
    Role.COORDINATOR: N_("Coordinator (CRA/TEC)"),
    Role.APHERESIS: N_("Apheresis unit"),
    Role.PHARMACIST: N_("Pharmacist (PUI)"),
    Role.MANUFACTURING: N_("Manufacturing lab"),
    Role.MONITOR: N_("Monitor (CRA)"),
    Role.DATA_MANAGER: N_("Data manager"),
    Role.SPONSOR_ADMIN: N_("Sponsor administrator"),
}


class Action(StrEnum):
    """What a user does to a subject besides a pathway step; stable codes (URLs, API, audit)."""

    REGISTER_SUBJECT = "register_subject"
    READ_SCREENING = "read_screening"
    ENTER_SCREENING_DATA = "enter_screening_data"
    RECORD_RECONSENT = "record_reconsent"
    WITHDRAW_CONSENT = "withdraw_consent"
    RECEIVE_MATERIAL = "receive_material"
    RECORD_QC = "record_qc"
    IMPORT_TEMPERATURE_LOG = "import_temperature_log"
    DOCUMENT_OOS_EXCEPTION = "document_oos_exception"
    DECIDE_NO_INFUSION = "decide_no_infusion"
    THAW = "thaw"
    PRINT_LABELS = "print_labels"
    ENTER_KINETIC_RESULTS = "enter_kinetic_results"
    READ_AUDIT = "read_audit"
    MANAGE_DEVIATION = "manage_deviation"
    # Corrections of stored records (domain/corrections.py): one action per kind of record, and one
    # per signed record for a correction that voids its signature and signs again.
    CORRECT_SCREENING_DATA = "correct_screening_data"
    CORRECT_LAB_RESULT = "correct_lab_result"
    CORRECT_CONSENT_DATE = "correct_consent_date"
    CORRECT_APHERESIS_DATE = "correct_apheresis_date"
    CORRECT_COLLECTION = "correct_collection"
    CORRECT_MATERIAL_SHIPMENT = "correct_material_shipment"
    CORRECT_LAB_RECEIPT = "correct_lab_receipt"
    CORRECT_QC_RESULT = "correct_qc_result"
    CORRECT_PRODUCT_SHIPMENT = "correct_product_shipment"
    CORRECT_PRODUCT_RECEIPT = "correct_product_receipt"
    CORRECT_THAW = "correct_thaw"
    CORRECT_INFUSION_DATE = "correct_infusion_date"
    CORRECT_DEATH_DATE = "correct_death_date"
    CORRECT_SIGNED_INCLUSION = "correct_signed_inclusion"
    CORRECT_SIGNED_RELEASE = "correct_signed_release"
    # The casebook after inclusion (issue 9): visits, eCRF forms, queries, SDV, lock, signature.
    READ_CASEBOOK = "read_casebook"
    ENTER_FORM_DATA = "enter_form_data"
    RAISE_QUERY = "raise_query"
    ANSWER_QUERY = "answer_query"
    CLOSE_QUERY = "close_query"
    VERIFY_SOURCE = "verify_source"
    LOCK_DATA = "lock_data"
    SIGN_CASEBOOK = "sign_casebook"
    # The study dashboard (issue 10): figures over the subjects of the user's centers.
    READ_STUDY_DASHBOARD = "read_study_dashboard"
    # Alerts (issue 10): the notifications page, and acknowledging an alert one must act on.
    READ_ALERTS = "read_alerts"
    ACKNOWLEDGE_ALERT = "acknowledge_alert"
    # Safety (issue 10): adverse events, SAE reports, relatedness, DLT decisions.
    READ_SAFETY = "read_safety"
    RECORD_ADVERSE_EVENT = "record_adverse_event"
    ASSESS_RELATEDNESS = "assess_relatedness"
    DECIDE_DLT = "decide_dlt"
    # CRS and ICANS daily assessments, episodes and ICAHT after the infusion (issue 10).
    READ_TOXICITY = "read_toxicity"
    RECORD_TOXICITY_ASSESSMENT = "record_toxicity_assessment"
    CORRECT_TOXICITY_ASSESSMENT = "correct_toxicity_assessment"
    # Calendars of the pathway (issue 11): each role reads its service's events, pseudonymously.
    READ_CALENDAR = "read_calendar"
    # The network simulation (issue 11): capacity planning of the trial, no patient data.
    RUN_SIMULATION = "run_simulation"
    # Long jobs (issue 11): one's own jobs; every job of the study; the audit-chain walk as a job.
    READ_JOBS = "read_jobs"
    READ_STUDY_JOBS = "read_study_jobs"
    VERIFY_AUDIT_TRAIL = "verify_audit_trail"
    # Capacities and booking of the vein-to-vein calendar (issue 11).
    READ_BOOKINGS = "read_bookings"
    BOOK_SLOTS = "book_slots"
    MANAGE_CAPACITIES = "manage_capacities"
    # Re-planning (issue 11, item 4).
    DECIDE_REPLAN = "decide_replan"
    DECIDE_NETWORK_REPLAN = "decide_network_replan"
    # The planner page (issue 11): plan the network's waiting subjects as a background job.
    PLAN_NETWORK = "plan_network"
    # Standards exports (issue 12): a center's staff export their center, the data manager the study.
    EXPORT_DATA = "export_data"
    # Administration in the app (issue 13): centers, users and their roles, suspension, API tokens;
    # and the study-wide audit trail, a permission of its own (not a subject's trail).
    ADMINISTER = "administer"
    READ_STUDY_AUDIT = "read_study_audit"


# Staff of a hospital center: they care for the patient and may see who the patient is.
CENTER_STAFF: frozenset[Role] = frozenset({Role.INVESTIGATOR, Role.COORDINATOR, Role.APHERESIS, Role.PHARMACIST})
# Sponsor-side roles: pseudonymous data only, read-only on the pathway.
SPONSOR_ROLES: frozenset[Role] = frozenset({Role.MONITOR, Role.DATA_MANAGER, Role.SPONSOR_ADMIN})

# Roles whose holders sign in with a second factor (TOTP, docs/adr/0006): those who sign inclusions,
# releases and infusions, dispense the product, or read and lock every center's data. A person
# holding one of them at any center enrols before anything else; the coordinators and the
# apheresis unit may enrol of their own accord (then they give a code too).
TWO_FACTOR_ROLES: frozenset[Role] = frozenset(
    {Role.INVESTIGATOR, Role.PHARMACIST, Role.MANUFACTURING, Role.MONITOR, Role.DATA_MANAGER, Role.SPONSOR_ADMIN}
)


def two_factor_required(roles: Iterable[Role | str]) -> bool:
    """True when one of a person's roles (at any center) requires the second factor at sign-in."""
    return any(Role(role) in TWO_FACTOR_ROLES for role in roles)


_CLINICAL = frozenset({Role.INVESTIGATOR, Role.COORDINATOR})
_LAB = frozenset({Role.MANUFACTURING})

STEP_ROLES: dict[Step, frozenset[Role]] = {
    Step.START_SCREENING: _CLINICAL,
    Step.CONFIRM_ELIGIBILITY: _CLINICAL,
    Step.FAIL_SCREENING: _CLINICAL,
    Step.INCLUDE: frozenset({Role.INVESTIGATOR}),
    Step.SCHEDULE_APHERESIS: _CLINICAL | {Role.APHERESIS},
    Step.COLLECT_APHERESIS: frozenset({Role.APHERESIS}),
    Step.SHIP_MATERIAL: frozenset({Role.APHERESIS}),
    Step.START_MANUFACTURING: _LAB,
    Step.RELEASE_PRODUCT: _LAB,
    Step.FAIL_MANUFACTURING: _LAB,
    Step.REMANUFACTURE: _LAB,
    Step.REPEAT_APHERESIS: _CLINICAL,
    Step.SHIP_PRODUCT: _LAB,
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

ACTION_ROLES: dict[Action, frozenset[Role]] = {
    Action.REGISTER_SUBJECT: _CLINICAL,
    # Screening data and consent pages: the center's clinical staff and the sponsor's monitoring
    # roles (pseudonymous); not the lab, the apheresis unit or the pharmacy, who have no use for them.
    Action.READ_SCREENING: _CLINICAL | {Role.MONITOR, Role.DATA_MANAGER},
    Action.ENTER_SCREENING_DATA: _CLINICAL,
    Action.RECORD_RECONSENT: _CLINICAL,
    Action.WITHDRAW_CONSENT: _CLINICAL,
    Action.RECEIVE_MATERIAL: _LAB,
    Action.RECORD_QC: _LAB,
    Action.IMPORT_TEMPERATURE_LOG: frozenset({Role.APHERESIS, Role.MANUFACTURING, Role.PHARMACIST, Role.COORDINATOR}),
    Action.DOCUMENT_OOS_EXCEPTION: frozenset({Role.INVESTIGATOR}),
    Action.DECIDE_NO_INFUSION: frozenset({Role.INVESTIGATOR}),
    Action.THAW: frozenset({Role.PHARMACIST}),
    Action.PRINT_LABELS: frozenset(
        {Role.APHERESIS, Role.MANUFACTURING, Role.PHARMACIST, Role.COORDINATOR, Role.INVESTIGATOR}
    ),
    # Kinetic results are follow-up data: the authority of the follow-up steps.
    Action.ENTER_KINETIC_RESULTS: _CLINICAL,
    # A subject's audit trail is its own permission: the center's investigators, the monitors
    # and the data managers (not the lab, not the other center staff).
    Action.READ_AUDIT: frozenset({Role.INVESTIGATOR, Role.MONITOR, Role.DATA_MANAGER}),
    # Deviations are acknowledged, commented and closed by the center's clinical staff and the lab
    # (each for what it owns, see `deviations.deviation_owners`), and by the monitors.
    Action.MANAGE_DEVIATION: frozenset(
        {Role.INVESTIGATOR, Role.COORDINATOR, Role.APHERESIS, Role.PHARMACIST, Role.MANUFACTURING, Role.MONITOR}
    ),
    # A record is corrected by the roles that record it (the authority of its step or action); the
    # sponsor's roles raise queries, they never change a center's or the lab's data.
    Action.CORRECT_SCREENING_DATA: _CLINICAL,
    Action.CORRECT_LAB_RESULT: _CLINICAL,
    Action.CORRECT_CONSENT_DATE: _CLINICAL,
    Action.CORRECT_APHERESIS_DATE: _CLINICAL | {Role.APHERESIS},
    Action.CORRECT_COLLECTION: frozenset({Role.APHERESIS}),
    Action.CORRECT_MATERIAL_SHIPMENT: frozenset({Role.APHERESIS}),
    Action.CORRECT_LAB_RECEIPT: _LAB,
    Action.CORRECT_QC_RESULT: _LAB,
    Action.CORRECT_PRODUCT_SHIPMENT: _LAB,
    Action.CORRECT_PRODUCT_RECEIPT: frozenset({Role.PHARMACIST}),
    Action.CORRECT_THAW: frozenset({Role.PHARMACIST}),
    Action.CORRECT_DEATH_DATE: _CLINICAL,
    # A signed record is corrected only by a role that may sign it: the investigator for the
    # inclusion and for D0 (the bedside check covers the infusion), the lab's QP for the release.
    Action.CORRECT_INFUSION_DATE: frozenset({Role.INVESTIGATOR}),
    Action.CORRECT_SIGNED_INCLUSION: frozenset({Role.INVESTIGATOR}),
    Action.CORRECT_SIGNED_RELEASE: _LAB,
    # The casebook is clinical data: the center's investigators and coordinators enter it and
    # answer queries; the monitors verify it against the source and raise queries; the data
    # managers raise queries and lock; the investigator signs. Not the lab, the apheresis unit or
    # the pharmacy. Closing and reopening a query is the raiser's side (monitor, data manager).
    Action.READ_CASEBOOK: _CLINICAL | {Role.MONITOR, Role.DATA_MANAGER},
    Action.ENTER_FORM_DATA: _CLINICAL,
    Action.RAISE_QUERY: frozenset({Role.MONITOR, Role.DATA_MANAGER}),
    Action.ANSWER_QUERY: _CLINICAL,
    Action.CLOSE_QUERY: frozenset({Role.MONITOR, Role.DATA_MANAGER}),
    Action.VERIFY_SOURCE: frozenset({Role.MONITOR}),
    Action.LOCK_DATA: frozenset({Role.DATA_MANAGER}),
    Action.SIGN_CASEBOOK: frozenset({Role.INVESTIGATOR}),
    # The study dashboard: efficacy figures from the casebook, pseudonymous codes only. The center's
    # clinical staff read their center's, the monitors their assigned centers', the data managers and
    # the sponsor's administrator every center they are members of. Not the manufacturing lab (it
    # follows products, not patients' disease activity), nor the apheresis unit or the pharmacy.
    Action.READ_STUDY_DASHBOARD: _CLINICAL | {Role.MONITOR, Role.DATA_MANAGER, Role.SPONSOR_ADMIN},
    # Every role has a notifications page (it lists the alerts its role must act on, maybe none);
    # an alert is acknowledged by the roles it names and the center's investigators
    # (`domain.alerts.may_acknowledge` decides per alert).
    Action.READ_ALERTS: frozenset(Role),
    Action.ACKNOWLEDGE_ALERT: _CLINICAL | {Role.MONITOR},
    # Safety: the center's clinical staff record AEs and SAE reports; only the investigator judges
    # causality and decides (and signs) a DLT; the sponsor's roles read pseudonymously.
    Action.READ_SAFETY: _CLINICAL | SPONSOR_ROLES,
    Action.RECORD_ADVERSE_EVENT: _CLINICAL,
    Action.ASSESS_RELATEDNESS: frozenset({Role.INVESTIGATOR}),
    Action.DECIDE_DLT: frozenset({Role.INVESTIGATOR}),
    # CRS/ICANS assessments are clinical data recorded at the bedside by the center's investigators
    # and coordinators; the sponsor's roles read them pseudonymously (safety is the primary endpoint);
    # not the lab, the apheresis unit or the pharmacy.
    Action.READ_TOXICITY: _CLINICAL | {Role.MONITOR, Role.DATA_MANAGER, Role.SPONSOR_ADMIN},
    Action.RECORD_TOXICITY_ASSESSMENT: _CLINICAL,
    Action.CORRECT_TOXICITY_ASSESSMENT: _CLINICAL,
    # Every role has a calendar: the apheresis unit its aphereses, the lab its arrivals, batches,
    # releases and shipments, the pharmacy its products, thaws and infusions, the clinical team and
    # the sponsor every event (`domain.calendars.kinds_for`); pseudonymous codes only.
    Action.READ_CALENDAR: frozenset(Role),
    # The network simulation is the sponsor's capacity planning (how many patients the centers and
    # the lab can treat): the sponsor's administrator, who sets the capacities up, and the data
    # managers, who report recruitment. Not the monitors (site visits and source verification) nor the
    # centers or the lab, who book real slots. It shows no patient, and it costs CPU: kept narrow.
    Action.RUN_SIMULATION: frozenset({Role.SPONSOR_ADMIN, Role.DATA_MANAGER}),
    # Everyone follows the jobs they asked for; the sponsor's roles follow every job of the study
    # (their results are plans, simulations and checks: pseudonymous codes at most). The walk of
    # the whole audit chain is a check of the study's data integrity: the sponsor's roles.
    Action.READ_JOBS: frozenset(Role),
    Action.READ_STUDY_JOBS: SPONSOR_ROLES,
    Action.VERIFY_AUDIT_TRAIL: SPONSOR_ROLES,
    # The center's clinical staff book the chain of their subjects (the authority of scheduling the
    # apheresis, which needs it); the apheresis unit and the lab read the reservations (the lab its
    # manufacturing slots, as the manufacturing site of the subject); the sponsor's administrator
    # sets the capacities up.
    Action.READ_BOOKINGS: _CLINICAL | {Role.APHERESIS, Role.MANUFACTURING, Role.SPONSOR_ADMIN},
    Action.BOOK_SLOTS: _CLINICAL,
    Action.MANAGE_CAPACITIES: frozenset({Role.SPONSOR_ADMIN}),
    # Re-planning: one center's proposal is decided by its coordinator; one across centers by the sponsor admin.
    Action.DECIDE_REPLAN: frozenset({Role.COORDINATOR}),
    Action.DECIDE_NETWORK_REPLAN: frozenset({Role.SPONSOR_ADMIN}),
    # The planner page plans every waiting subject of the network against the shared capacities: the
    # sponsor's administrator, who sets them up, and the data managers. Not the centers'
    # coordinators: a plan of one center's subjects alone would ignore the others on the same lines
    # (they book their subjects' chains on the booking page); pseudonymous codes only.
    Action.PLAN_NETWORK: frozenset({Role.SPONSOR_ADMIN, Role.DATA_MANAGER}),
    # The investigator answers for the center's data; the data manager delivers the study's to the
    # statisticians. Identity goes only to the center's own staff (`identity_visible`).
    Action.EXPORT_DATA: frozenset({Role.INVESTIGATOR, Role.DATA_MANAGER}),
    # Centers, users, roles, suspensions and API tokens are the sponsor's administrator's alone: the
    # one role that answers for who may reach the trial, and none of whose work is a patient's data.
    Action.ADMINISTER: frozenset({Role.SPONSOR_ADMIN}),
    # The study-wide audit trail (every entry of the centers one is a member of, and the study's own
    # entries: accounts, tokens, centers): the sponsor's administrator, who answers for access, and
    # the data managers, who answer for the data's integrity. Not the monitors (they read a
    # subject's trail at their assigned centers) nor the centers' staff or the lab.
    Action.READ_STUDY_AUDIT: frozenset({Role.SPONSOR_ADMIN, Role.DATA_MANAGER}),
}

ACTION_LABELS: dict[Action, str] = {
    Action.REGISTER_SUBJECT: N_("Register a subject"),
    Action.READ_SCREENING: N_("Read screening and consent"),
    Action.ENTER_SCREENING_DATA: N_("Enter screening data"),
    Action.RECORD_RECONSENT: N_("Record re-consent"),
    Action.WITHDRAW_CONSENT: N_("Record the withdrawal of consent"),
    Action.RECEIVE_MATERIAL: N_("Receive the apheresis material at the lab"),
    Action.RECORD_QC: N_("Record a QC result"),
    Action.IMPORT_TEMPERATURE_LOG: N_("Import a temperature log"),
    Action.DOCUMENT_OOS_EXCEPTION: N_("Sign an out-of-specification exception"),
    Action.DECIDE_NO_INFUSION: N_("Decide: no infusion"),
    Action.THAW: N_("Record the thaw"),
    Action.PRINT_LABELS: N_("Print labels"),
    Action.ENTER_KINETIC_RESULTS: N_("Enter kinetic results"),
    Action.READ_AUDIT: N_("Read the audit trail"),
    Action.MANAGE_DEVIATION: N_("Manage deviations"),
    Action.CORRECT_SCREENING_DATA: N_("Correct screening data"),
    Action.CORRECT_LAB_RESULT: N_("Correct a lab result"),
    Action.CORRECT_CONSENT_DATE: N_("Correct the date a consent was signed"),
    Action.CORRECT_APHERESIS_DATE: N_("Correct the planned apheresis date"),
    Action.CORRECT_COLLECTION: N_("Correct a collection"),
    Action.CORRECT_MATERIAL_SHIPMENT: N_("Correct a shipment of apheresis material"),
    Action.CORRECT_LAB_RECEIPT: N_("Correct the receipt of material at the lab"),
    Action.CORRECT_QC_RESULT: N_("Correct a QC result"),
    Action.CORRECT_PRODUCT_SHIPMENT: N_("Correct a shipment of the product"),
    Action.CORRECT_PRODUCT_RECEIPT: N_("Correct the receipt of the product at the pharmacy"),
    Action.CORRECT_THAW: N_("Correct the thaw"),
    Action.CORRECT_INFUSION_DATE: N_("Correct the infusion date (D0)"),
    Action.CORRECT_DEATH_DATE: N_("Correct the date of death"),
    Action.CORRECT_SIGNED_INCLUSION: N_("Correct a record covered by the inclusion signature"),
    Action.CORRECT_SIGNED_RELEASE: N_("Correct a record covered by the release signature"),
    Action.READ_CASEBOOK: N_("Read the casebook"),
    Action.ENTER_FORM_DATA: N_("Enter visits and eCRF forms"),
    Action.RAISE_QUERY: N_("Raise a data query"),
    Action.ANSWER_QUERY: N_("Answer a data query"),
    Action.CLOSE_QUERY: N_("Close or reopen a data query"),
    Action.VERIFY_SOURCE: N_("Verify data against the source (SDV)"),
    Action.LOCK_DATA: N_("Lock or unlock forms"),
    Action.SIGN_CASEBOOK: N_("Sign the casebook"),
    Action.READ_STUDY_DASHBOARD: N_("Read the study dashboard"),
    Action.READ_ALERTS: N_("Read alerts"),
    Action.ACKNOWLEDGE_ALERT: N_("Acknowledge an alert"),
    Action.READ_SAFETY: N_("Read adverse events and DLTs"),
    Action.RECORD_ADVERSE_EVENT: N_("Record adverse events and SAE reports"),
    Action.ASSESS_RELATEDNESS: N_("Assess the relatedness of an adverse event"),
    Action.DECIDE_DLT: N_("Confirm or rule out a dose-limiting toxicity"),
    Action.READ_TOXICITY: N_("Read CRS/ICANS assessments and ICAHT"),
    Action.RECORD_TOXICITY_ASSESSMENT: N_("Record a daily CRS/ICANS assessment"),
    Action.CORRECT_TOXICITY_ASSESSMENT: N_("Correct a daily CRS/ICANS assessment"),
    Action.READ_CALENDAR: N_("Read the calendars"),
    Action.RUN_SIMULATION: N_("Simulate the trial network"),
    Action.READ_JOBS: N_("Follow one's long jobs"),
    Action.READ_STUDY_JOBS: N_("Follow every long job of the study"),
    Action.VERIFY_AUDIT_TRAIL: N_("Verify the audit trail's hash chain"),
    Action.READ_BOOKINGS: N_("Read the booked slots"),
    Action.BOOK_SLOTS: N_("Book apheresis, manufacturing and infusion slots"),
    Action.MANAGE_CAPACITIES: N_("Set up the network's capacities"),
    Action.DECIDE_REPLAN: N_("Accept or reject the re-planning of a center's subjects"),
    Action.DECIDE_NETWORK_REPLAN: N_("Accept or reject a re-planning across centers"),
    Action.PLAN_NETWORK: N_("Plan the network's calendar"),
    Action.EXPORT_DATA: N_("Export the trial's data in the standards of the field"),
    Action.ADMINISTER: N_("Administer centers, users and API tokens"),
    Action.READ_STUDY_AUDIT: N_("Read the study's audit trail"),
}


def roles_for(action: Step | Action) -> frozenset[Role]:
    """The roles that may take `action` (a pathway step or another action)."""
    return STEP_ROLES[action] if isinstance(action, Step) else ACTION_ROLES[action]


def action_label(action: Step | Action) -> str:
    """The label (msgid) of a step or an action."""
    return STEP_LABELS[action] if isinstance(action, Step) else ACTION_LABELS[action]


# Roles that may take part in the two-person bedside identity check before infusion.
BEDSIDE_CHECKERS: frozenset[Role] = frozenset({Role.INVESTIGATOR, Role.PHARMACIST})


def role_label(role: Role) -> str:
    """The role's label (a msgid: adapters translate it)."""
    return ROLE_LABELS[role]


# The stages at which an action outside the pathway steps makes sense (the others: any stage).
ACTION_STATES: dict[Action, frozenset[State]] = {
    Action.RECEIVE_MATERIAL: frozenset({State.MATERIAL_SHIPPED}),
    Action.RECORD_QC: frozenset({State.MANUFACTURING}),
    Action.DOCUMENT_OOS_EXCEPTION: frozenset({State.MANUFACTURING}),
    Action.DECIDE_NO_INFUSION: frozenset({State.MANUFACTURING_FAILED}),
    Action.THAW: frozenset({State.LYMPHODEPLETION}),
    Action.ENTER_SCREENING_DATA: frozenset({State.SCREENING, State.ELIGIBLE}),
}


def action_state_check(action: Action, state: State) -> None:
    """Refuses an action at a stage of the pathway where it has no place (e.g. a thaw before lymphodepletion)."""
    allowed = ACTION_STATES.get(action)
    if allowed is not None and state not in allowed:
        raise Refused(
            "“{action}” is not possible while the subject is “{state}”; expected: {expected}.",
            code="logistics_wrong_state",
            action=label(ACTION_LABELS[action]),
            state=label(STATE_LABELS[state]),
            expected=[label(STATE_LABELS[s]) for s in sorted(allowed)],
        )
