"""Edit checks: rules across items and forms whose failure opens an automatic query.

An edit check's rule states what the data must satisfy (`diastolic_bp_mmhg lt {item:
systolic_bp_mmhg}`); a finding is raised when the rule is *not met*. Missing data raises nothing:
the query would ask for a value the form does not have yet, which `missing` already lists. A rule
reading a repeating group's items is checked on each row, and its finding names the row's item
(`concomitant_medications.2.stop_date`).

Built in, for every form: `visit_date_window`, the visit done outside its window [earliest,
latest]: the form's visit-date item when it has one, else the visit's `done_on`. Out of window is
a finding and not a refusal: such a visit happened and is recorded (`done_out_of_window`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date

from cartrial.domain.ecrf.definitions import EditCheck, FormDef, GroupDef, rule_items, shown
from cartrial.domain.ecrf.values import FormContext, facts, row_facts
from cartrial.domain.rules import Outcome, evaluate_rule
from cartrial.domain.text import N_, Message

VISIT_DATE_WINDOW = "visit_date_window"


@dataclass(frozen=True)
class Finding:
    """An edit check that fails: its code, the item the query is attached to, and what is wrong."""

    code: str
    item: str
    message: Message


def _row_group(form: FormDef, check: EditCheck) -> GroupDef | None:
    for name in check.rule.items:
        if form.has_item(name) and form.group_of(name).repeating:
            return form.group_of(name)
    return None


def _finding(check: EditCheck, item: str, explanation: Message) -> Finding:
    message = Message(N_("{check}: {explanation}"), {"check": shown(check.message), "explanation": explanation})
    return Finding(check.code, item, message)


def _window_finding(form: FormDef, values: Mapping[str, object], context: FormContext) -> Finding | None:
    item_name, done_on = "", context.done_on
    for item in form.items:
        if item.visit_date and isinstance(values.get(item.name), str):
            item_name, done_on = item.name, date.fromisoformat(str(values[item.name]))
            break
    if done_on is None or context.earliest is None or context.latest is None:
        return None
    if context.earliest <= done_on <= context.latest:
        return None
    message = Message(
        N_("Visit {visit} done on {date}, outside its window {earliest} to {latest}."),
        {"visit": context.visit_code, "date": done_on, "earliest": context.earliest, "latest": context.latest},
    )
    return Finding(VISIT_DATE_WINDOW, item_name, message)


def edit_check_findings(form: FormDef, values: Mapping[str, object], context: FormContext) -> list[Finding]:
    """The findings of the form's edit checks on cleaned values (from `form_values_check`), in protocol order."""
    findings: list[Finding] = []
    window = _window_finding(form, values, context)
    if window is not None:
        findings.append(window)
    base = facts(form, values, context)
    for check in form.edit_checks:
        group = _row_group(form, check)
        items = rule_items(form, group)
        if group is None:
            result = evaluate_rule(check.rule, base, items)
            if result.outcome is Outcome.NOT_MET:
                findings.append(_finding(check, check.items[0] if check.items else "", result.explanation))
            continue
        rows = values.get(group.name)
        for index, row in enumerate(rows if isinstance(rows, list) else []):
            result = evaluate_rule(check.rule, row_facts(form, group, row, base), items)
            if result.outcome is Outcome.NOT_MET:
                attached = check.items[0] if check.items else ""
                path = f"{group.name}.{index}.{attached}" if form.group_of(attached).repeating else attached
                findings.append(_finding(check, path, result.explanation))
    return findings
