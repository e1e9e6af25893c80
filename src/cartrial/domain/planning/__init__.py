"""Vein-to-vein planning (issue 11): instance and plan types, solvers, bound, checker."""

from cartrial.domain.planning.instance import Center, Facility, Instance, Patient, PatientPlan, Plan, PlanStatus

__all__ = ["Center", "Facility", "Instance", "Patient", "PatientPlan", "Plan", "PlanStatus"]
