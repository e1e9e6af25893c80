"""The pathway engine and its one table: for each step, its form, what it establishes, and its effect.

To know what a step does, read its line in `STEPS` and the function it names: e.g. a
pharmacist's receipt (`Step.RECEIVE_PRODUCT`) is `logistics.services.product_receive`, which
takes the product from the courier (custody, CoI scanned), marks the shipment arrived and
records the storage location; the engine then moves the subject to `product_received`.

`step_perform` runs one step, all or nothing, inside the caller's transaction (`Reach.run`):
1. lock the subject; gather the facts the guards read (`selectors.subject_facts`);
2. `establishes(call)`: the facts the step itself brings (the signature it will carry, the
   scans it checks, the dates it sets), which may refuse before anything is written; the
   milestones it dates are checked against the subject's known ones (`domain.chronology`: in the
   pathway's order, nothing that happened in the future, a planned date within the protocol's
   horizon), a date out of order refused naming both dates;
3. the domain's guard (`domain.pathway.attempt`, with the protocol's durations and windows);
4. `effect(call)`: the records of the step, written by the app that owns them;
5. the subject's new state and its timeline event, one audit entry.

Two actions take a step under another name: the "no infusion" decision after a failed batch and
the withdrawal of consent both withdraw the subject, with their own records.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

from django import forms

from cartrial.apps.access import Reach, acting_role, scope_for
from cartrial.apps.accounts.models import ElectronicSignature, User
from cartrial.apps.accounts.services import signature_apply
from cartrial.apps.audit.services import Actor
from cartrial.apps.clinical.selectors import screening_evaluation
from cartrial.apps.fields import at_center
from cartrial.apps.logistics import services as logistics
from cartrial.apps.logistics.selectors import logistics_facts
from cartrial.apps.pathway import forms as step_forms
from cartrial.apps.pathway.selectors import latest_assessment, subject_facts
from cartrial.apps.planning.models import ReplanProposal
from cartrial.apps.planning.replanning import replan_propose_quietly
from cartrial.apps.planning.selectors import apheresis_booking_check
from cartrial.apps.subjects import services as subjects
from cartrial.apps.subjects.models import PathwayEvent, Subject
from cartrial.apps.subjects.services import local_today
from cartrial.domain.bedside import bedside_checkers_check
from cartrial.domain.chronology import Milestone, Moment
from cartrial.domain.errors import InvalidInput
from cartrial.domain.pathway import CONSENT_EXEMPT_STEPS, State, Step, attempt, steps_from
from cartrial.domain.roles import Action, action_state_check
from cartrial.domain.shipping import DispatchInput
from cartrial.domain.text import N_
from cartrial.protocols import Protocol

INCLUSION_MEANING = N_("I confirm this patient meets all eligibility criteria")


@dataclass(frozen=True)
class StepCall:
    """One step being performed: who, on which (locked) subject, with which cleaned form data."""

    actor: Actor
    user: User
    subject: Subject
    protocol: Protocol
    data: Mapping[str, Any]

    def at_center(self, name: str) -> Any:
        """A typed time of the form as an instant: naive values are the center's wall-clock time."""
        return at_center(self.data.get(name), self.subject.center.time_zone)


@dataclass(frozen=True)
class Established:
    """What a step brings before its guard is asked: facts, pathway dates it sets, timeline details,
    and what was computed for its effect (`prepared`, e.g. the verdict to sign), so nothing is read twice."""

    facts: dict[str, Any] = field(default_factory=dict)
    dates: dict[str, date] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    prepared: dict[str, Any] = field(default_factory=dict)
    # The pathway's milestones this step dates, each with the input item that gave it (None: the
    # action's own time), checked for order before the guard.
    milestones: dict[Milestone, tuple[Moment, str | None]] = field(default_factory=dict)


Establish = Callable[[StepCall], Established]
Effect = Callable[[StepCall, Established], ElectronicSignature | None]


@dataclass(frozen=True)
class StepSpec:
    """A line of the table: the pathway step taken, its form, what it establishes, what it writes."""

    step: Step
    form: type[forms.Form]
    establishes: Establish | None = None
    effect: Effect | None = None


# --- what each step establishes and writes ------------------------------------------------------


def _start_screening(call: StepCall) -> Established:
    version, language = call.data["document_version"], call.data["language"]
    subjects.consent_document_check(call.protocol, version, language)
    current = call.protocol.current_consent_versions().get(language) == version
    return Established(
        facts={"consent_signed": True, "consent_current": current},
        milestones={Milestone.CONSENT: (call.data["signed_on"], "signed_on")},
        details={
            "consent_version": version,
            "consent_language": language,
            "consent_signed_on": call.data["signed_on"],
        },
    )


def _record_consent(call: StepCall, established: Established) -> None:
    subjects.consent_record(
        actor=call.actor,
        subject=call.subject,
        protocol=call.protocol,
        document_version=call.data["document_version"],
        language=call.data["language"],
        signed_on=call.data["signed_on"],
    )


def _confirm_eligibility(call: StepCall) -> Established:
    # Recomputed, not read from the latest assessment: a lab added since the last save counts.
    computed = screening_evaluation(subject=call.subject, protocol=call.protocol).verdict.verdict.value
    latest = latest_assessment(call.subject)
    return Established(
        facts={"eligibility_verdict": computed},
        details={"assessment_id": latest.pk if latest else None, "verdict": computed},
    )


def _fail_screening(call: StepCall) -> Established:
    latest = latest_assessment(call.subject)
    criteria = latest.result_json.get("criteria", []) if latest else []
    return Established(details={"failed_criteria": [c["id"] for c in criteria if c["outcome"] == "not_met"]})


def _include(call: StepCall) -> Established:
    """The verdict computed now is what the guard reads and what the investigator signs."""
    computed = screening_evaluation(subject=call.subject, protocol=call.protocol).as_dict()
    latest = latest_assessment(call.subject)
    return Established(
        facts={"inclusion_signed": True, "eligibility_verdict": computed["verdict"]},
        details={
            "assessment_id": latest.pk if latest else None,
            "meaning": INCLUSION_MEANING,
            "signed_verdict": computed["verdict"],
        },
        prepared={"verdict": computed},
    )


def _sign_inclusion(call: StepCall, established: Established) -> ElectronicSignature:
    signature = signature_apply(
        actor=call.actor,
        user=call.user,
        password=call.data["password"],
        otp_code=call.data.get("otp_code", ""),
        meaning=INCLUSION_MEANING,
        entity="subject",
        entity_id=call.subject.code,
        subject_code=call.subject.code,
        content={"subject": call.subject.code, "verdict": established.prepared["verdict"]},
    )
    # The chain of identity starts at inclusion, before any apheresis (logistics.md §6 rule 1).
    logistics.coi_ensure(actor=call.actor, subject=call.subject)
    return signature


def _apheresis_date(call: StepCall) -> Established:
    planned = call.data["apheresis_date"]
    return Established(
        facts={"apheresis_date": planned},
        dates={"apheresis_date": planned},
        milestones={Milestone.APHERESIS_PLANNED: (planned, "apheresis_date")},
    )


def _booked_apheresis_date(call: StepCall) -> Established:
    """Scheduling the apheresis: the planned day must be the booked one where capacities are set."""
    apheresis_booking_check(call.subject, call.data["apheresis_date"])
    return _apheresis_date(call)


def _allocate_coi(call: StepCall, established: Established) -> None:
    logistics.coi_ensure(actor=call.actor, subject=call.subject)


def _collected(call: StepCall) -> Established:
    ended_at = call.at_center("ended_at")
    local_day = ended_at.astimezone(ZoneInfo(call.subject.center.time_zone)).date()
    return Established(
        facts={"apheresis_date": local_day},
        dates={"apheresis_date": local_day},
        details={k: call.data.get(k) for k in ("volume_ml", "tnc_e9", "cd3_cells_e9")},
        milestones={
            Milestone.COLLECTION_STARTED: (call.at_center("started_at"), "started_at"),
            Milestone.COLLECTION_ENDED: (ended_at, "ended_at"),
        },
    )


def _record_collection(call: StepCall, established: Established) -> None:
    logistics.collection_record(
        actor=call.actor,
        subject=call.subject,
        data=logistics.CollectionInput(
            call.at_center("started_at"),
            call.at_center("ended_at"),
            call.data["volume_ml"],
            call.data.get("tnc_e9"),
            call.data.get("cd3_cells_e9"),
        ),
    )


def _dispatch(call: StepCall, condition: str) -> DispatchInput:
    return DispatchInput(
        courier=call.data["courier"],
        shipper_id=call.data["shipper_id"],
        planned_departure_at=call.at_center("planned_departure_at"),
        planned_arrival_at=call.at_center("planned_arrival_at"),
        actual_departure_at=call.at_center("actual_departure_at") or call.actor.now,
        scanned_code=call.data["scanned_code"],
        condition=condition,
        arrival_confirmed=bool(call.data.get("arrival_confirmed")),
    )


def _shipment_details(call: StepCall, milestone: Milestone) -> Established:
    keys = ("courier", "shipper_id", "condition", "arrival_confirmed")
    departed = call.at_center("actual_departure_at") or call.actor.now
    return Established(
        details={k: call.data[k] for k in keys if k in call.data},
        milestones={milestone: (departed, "actual_departure_at")},
    )


def _material_shipment(call: StepCall) -> Established:
    return _shipment_details(call, Milestone.MATERIAL_SHIPPED)


def _product_shipment(call: StepCall) -> Established:
    return _shipment_details(call, Milestone.PRODUCT_SHIPPED)


def _ship_material(call: StepCall, established: Established) -> None:
    logistics.material_dispatch(
        actor=call.actor, subject=call.subject, protocol=call.protocol, data=_dispatch(call, call.data["condition"])
    )


def _start_batch(call: StepCall, established: Established) -> None:
    logistics.batch_start(actor=call.actor, subject=call.subject)


def _release(call: StepCall, established: Established) -> ElectronicSignature:
    return logistics.batch_release(
        actor=call.actor,
        user=call.user,
        subject=call.subject,
        protocol=call.protocol,
        password=call.data["password"],
        otp_code=call.data.get("otp_code", ""),
        scanned_code=call.data["bag_code"],
    )


def _release_details(call: StepCall) -> Established:
    return Established(details={"meaning": logistics.RELEASE_MEANING})


def _fail_batch(call: StepCall, established: Established) -> None:
    logistics.batch_fail(actor=call.actor, subject=call.subject, reason=call.data["reason"])
    # Re-planning (issue 11, item 4): the failed batch's chain is proposed again; nothing moves
    # until a coordinator accepts it.
    replan_propose_quietly(
        actor=call.actor,
        user_id=call.user.pk,
        affected=[call.subject],
        trigger=ReplanProposal.Trigger.QC_FAILURE,
        detail=call.data["reason"],
        protocol=call.protocol,
        today=local_today(call.subject.center, call.actor.now),
    )


def _remanufacture(call: StepCall, established: Established) -> None:
    logistics.batch_remanufacture(actor=call.actor, subject=call.subject, reason=call.data.get("reason", ""))


def _re_apheresis(call: StepCall, established: Established) -> None:
    logistics.batch_re_apheresis(actor=call.actor, subject=call.subject, reason=call.data.get("reason", ""))


def _no_infusion(call: StepCall) -> Established:
    action_state_check(Action.DECIDE_NO_INFUSION, State(call.subject.state))
    return Established(details={"branch": "no_infusion"})


def _decide_no_infusion(call: StepCall, established: Established) -> None:
    logistics.batch_no_infusion(actor=call.actor, subject=call.subject, reason=call.data["reason"])


def _ship_product(call: StepCall, established: Established) -> None:
    logistics.product_dispatch(
        actor=call.actor, subject=call.subject, protocol=call.protocol, data=_dispatch(call, "cryopreserved")
    )


def _receipt_details(call: StepCall) -> Established:
    received = call.at_center("received_at") or call.actor.now
    return Established(
        details={"storage_location": call.data["storage_location"]},
        milestones={Milestone.PRODUCT_RECEIVED: (received, "received_at")},
    )


def _receive_product(call: StepCall, established: Established) -> None:
    logistics.product_receive(
        actor=call.actor,
        subject=call.subject,
        scanned_code=call.data["scanned_code"],
        storage_location=call.data["storage_location"],
        received_at=call.at_center("received_at"),
    )


def _lymphodepletion(call: StepCall) -> Established:
    planned = call.data["planned_infusion_date"]
    confirmed = logistics_facts(call.subject, call.protocol, now=call.actor.now, planned_infusion_date=planned)
    return Established(
        facts={
            "planned_infusion_date": planned,
            "product_arrival_confirmed_before_d0": confirmed["product_arrival_confirmed_before_d0"],
        },
        details={"planned_infusion_date": planned},
        milestones={
            Milestone.LYMPHODEPLETION_STARTED: (call.actor.now, None),
            Milestone.INFUSION_PLANNED: (planned, "planned_infusion_date"),
        },
    )


def _bedside_checks(call: StepCall) -> tuple[logistics.BedsideCheck, logistics.BedsideCheck]:
    second = User.objects.filter(username__iexact=call.data["second_username"].strip(), is_active=True).first()
    if second is None:
        raise InvalidInput(
            "Unknown user '{username}'.",
            code="unknown_checker",
            item="second_username",
            username=call.data["second_username"],
        )
    # The second person's role comes from the access rules, like anyone's: the role with which they
    # may take part in the infusion at this subject's center (none: the domain refuses them).
    second_role = acting_role(scope_for(second), Step.INFUSE, call.subject)
    return (
        logistics.BedsideCheck(
            call.user,
            call.actor.role,
            call.data["password"],
            call.data["bag_code"],
            call.data["wristband_code"],
            otp_code=call.data.get("otp_code", ""),
        ),
        logistics.BedsideCheck(
            second,
            second_role.value if second_role else "",
            call.data["second_password"],
            call.data["second_bag_code"],
            call.data["second_wristband_code"],
            otp_code=call.data.get("second_otp_code", ""),
        ),
    )


def _infuse(call: StepCall) -> Established:
    """Both people qualified and their scans matching this patient's bag and wristband, or a hard stop."""
    checks = _bedside_checks(call)
    bedside_checkers_check([c.scan() for c in checks], call.subject.center.code)
    logistics.bedside_identity_check(actor=call.actor, subject=call.subject, checks=checks)
    infused_on = call.data["infused_on"]
    return Established(
        facts={"identity_check_passed": True, "identity_check_people": 2, "infusion_date": infused_on},
        dates={"infusion_date": infused_on},
        details={"checkers": [c.user.get_username() for c in checks]},
        prepared={"checks": checks},
        milestones={Milestone.INFUSED: (infused_on, "infused_on")},
    )


def _record_infusion(call: StepCall, established: Established) -> ElectronicSignature:
    return logistics.infusion_record(actor=call.actor, subject=call.subject, checks=established.prepared["checks"])


def _death(call: StepCall) -> Established:
    return Established(
        details={"death_date": call.data["death_date"]},
        milestones={Milestone.DEATH: (call.data["death_date"], "death_date")},
    )


def _consent_withdrawal(call: StepCall) -> Established:
    subjects.consent_withdrawal_check(
        actor=call.actor, subject=call.subject, withdrawn_on=call.data["withdrawn_on"], reason=call.data["reason"]
    )
    return Established(
        details={"consent_withdrawn_on": call.data["withdrawn_on"], "stops": withdrawal_stops(call.subject)},
        milestones={Milestone.CONSENT_WITHDRAWN: (call.data["withdrawn_on"], "withdrawn_on")},
    )


def _record_withdrawal(call: StepCall, established: Established) -> None:
    subjects.consent_withdrawal_record(
        actor=call.actor,
        subject=call.subject,
        withdrawn_on=call.data["withdrawn_on"],
        reason=call.data["reason"],
        stops=withdrawal_stops(call.subject),
        exited_study=call.protocol.pathway_rules.consent_withdrawal_exits_study,
    )


def withdrawal_stops(subject: Subject) -> list[str]:
    """What a withdrawal of consent stops: the steps still ahead (but the exits) and data collection."""
    stops = [step.value for step in steps_from(State(subject.state)) if step not in CONSENT_EXEMPT_STEPS]
    return [*stops, "data_collection"]


_f = step_forms
STEPS: dict[Step | Action, StepSpec] = {
    Step.START_SCREENING: StepSpec(Step.START_SCREENING, _f.StartScreeningForm, _start_screening, _record_consent),
    Step.CONFIRM_ELIGIBILITY: StepSpec(Step.CONFIRM_ELIGIBILITY, _f.NoInputForm, _confirm_eligibility),
    Step.FAIL_SCREENING: StepSpec(Step.FAIL_SCREENING, _f.ReasonForm, _fail_screening),
    Step.INCLUDE: StepSpec(Step.INCLUDE, _f.IncludeForm, _include, _sign_inclusion),
    Step.SCHEDULE_APHERESIS: StepSpec(
        Step.SCHEDULE_APHERESIS, _f.ScheduleApheresisForm, _booked_apheresis_date, _allocate_coi
    ),
    Step.COLLECT_APHERESIS: StepSpec(Step.COLLECT_APHERESIS, _f.CollectApheresisForm, _collected, _record_collection),
    Step.SHIP_MATERIAL: StepSpec(Step.SHIP_MATERIAL, _f.ShipMaterialForm, _material_shipment, _ship_material),
    Step.START_MANUFACTURING: StepSpec(Step.START_MANUFACTURING, _f.StartManufacturingForm, None, _start_batch),
    Step.RELEASE_PRODUCT: StepSpec(Step.RELEASE_PRODUCT, _f.ReleaseProductForm, _release_details, _release),
    Step.FAIL_MANUFACTURING: StepSpec(Step.FAIL_MANUFACTURING, _f.ReasonForm, None, _fail_batch),
    Step.REMANUFACTURE: StepSpec(Step.REMANUFACTURE, _f.ReasonForm, None, _remanufacture),
    Step.REPEAT_APHERESIS: StepSpec(Step.REPEAT_APHERESIS, _f.RepeatApheresisForm, _apheresis_date, _re_apheresis),
    Step.SHIP_PRODUCT: StepSpec(Step.SHIP_PRODUCT, _f.ShipProductForm, _product_shipment, _ship_product),
    Step.RECEIVE_PRODUCT: StepSpec(Step.RECEIVE_PRODUCT, _f.ReceiveProductForm, _receipt_details, _receive_product),
    Step.START_LYMPHODEPLETION: StepSpec(Step.START_LYMPHODEPLETION, _f.StartLymphodepletionForm, _lymphodepletion),
    Step.INFUSE: StepSpec(Step.INFUSE, _f.InfuseForm, _infuse, _record_infusion),
    Step.START_ACUTE_MONITORING: StepSpec(Step.START_ACUTE_MONITORING, _f.NoInputForm),
    Step.START_FOLLOW_UP: StepSpec(Step.START_FOLLOW_UP, _f.NoInputForm),
    Step.START_LONG_TERM_FOLLOW_UP: StepSpec(Step.START_LONG_TERM_FOLLOW_UP, _f.NoInputForm),
    Step.COMPLETE: StepSpec(Step.COMPLETE, _f.NoInputForm),
    Step.WITHDRAW: StepSpec(Step.WITHDRAW, _f.ReasonForm),
    Step.MARK_LOST_TO_FOLLOW_UP: StepSpec(Step.MARK_LOST_TO_FOLLOW_UP, _f.ReasonForm),
    Step.RECORD_DEATH: StepSpec(Step.RECORD_DEATH, _f.RecordDeathForm, _death),
    Action.DECIDE_NO_INFUSION: StepSpec(Step.WITHDRAW, _f.NoInfusionForm, _no_infusion, _decide_no_infusion),
    Action.WITHDRAW_CONSENT: StepSpec(Step.WITHDRAW, _f.ConsentWithdrawalForm, _consent_withdrawal, _record_withdrawal),
}


def step_form(action: Step | Action, protocol: Protocol, data: Any = None) -> forms.Form:
    """The form of a step (or of an action that takes a step), bound to `data` when given."""
    form_class = STEPS[action].form
    if form_class is step_forms.StartScreeningForm:
        return step_forms.StartScreeningForm(data, protocol=protocol)
    return form_class(data)


def _reason(action: Step | Action, data: Mapping[str, Any]) -> str:
    reason = str(data.get("reason") or "")
    if action is Action.WITHDRAW_CONSENT:
        return f"Consent withdrawn: {reason.strip()}" if reason.strip() else ""
    return reason


def step_perform(
    *, actor: Actor, user: User, subject: Subject, action: Step | Action, data: Mapping[str, Any], protocol: Protocol
) -> PathwayEvent:
    """Take one step (see the module's docstring); runs in the caller's transaction."""
    spec = STEPS[action]
    locked = subjects.subject_lock(subject)
    call = StepCall(actor, user, locked, protocol, data)
    reason = _reason(action, data)
    facts = subject_facts(locked, protocol, now=actor.now, reason=reason)
    established = spec.establishes(call) if spec.establishes else Established()
    if established.milestones:
        logistics.milestones_check(
            locked,
            established.milestones,
            now=actor.now,
            planning_horizon_days=protocol.pathway_rules.planning_horizon_days,
        )
    facts = replace(facts, **established.facts)
    target = attempt(State(locked.state), spec.step, facts, protocol.pathway_rules)
    signature = spec.effect(call, established) if spec.effect else None
    event = subjects.pathway_event_record(
        actor=actor,
        subject=locked,
        step=spec.step.value,
        target=target,
        reason=reason,
        details=established.details,
        dates=established.dates,
        signature_id=signature.pk if signature is not None else None,
    )
    subject.refresh_from_db()
    return event


def step_run(reach: Reach, action: Step | Action, data: Mapping[str, Any], protocol: Protocol) -> PathwayEvent:
    """Take a step for a reached subject: one transaction, a refusal recorded after its rollback."""
    return reach.run(
        lambda: step_perform(
            actor=reach.actor, user=reach.user, subject=reach.subject, action=action, data=data, protocol=protocol
        )
    )


def consent_withdraw(reach: Reach, data: Mapping[str, Any], protocol: Protocol) -> PathwayEvent | None:
    """Record a withdrawal of consent: with the protocol's `withdrawal_exits_study`, the subject exits
    (a step); otherwise the pathway is frozen by the consent guard and the exit is recorded later."""
    if protocol.pathway_rules.consent_withdrawal_exits_study:
        return step_run(reach, Action.WITHDRAW_CONSENT, data, protocol)

    def record() -> None:
        locked = subjects.subject_lock(reach.subject)
        _record_withdrawal(StepCall(reach.actor, reach.user, locked, protocol, data), Established())

    reach.run(record, what=Action.WITHDRAW_CONSENT.value)
    return None
