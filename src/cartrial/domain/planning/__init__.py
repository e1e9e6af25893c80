"""Vein-to-vein planning (issue 11): instance and plan types, solvers, bound, checker."""

from cartrial.domain.planning.check import plan_check
from cartrial.domain.planning.contract import instance_from_json, instance_to_json, plan_from_json, plan_to_json
from cartrial.domain.planning.cpsat import plan_cpsat
from cartrial.domain.planning.greedy import plan_greedy
from cartrial.domain.planning.instance import Center, Facility, Instance, Patient, PatientPlan, Plan, PlanStatus

__all__ = [
    "Center",
    "Facility",
    "Instance",
    "Patient",
    "PatientPlan",
    "Plan",
    "PlanStatus",
    "instance_from_json",
    "instance_to_json",
    "plan_check",
    "plan_cpsat",
    "plan_from_json",
    "plan_greedy",
    "plan_to_json",
]
