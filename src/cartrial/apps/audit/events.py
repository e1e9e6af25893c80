"""Typed audit events: an enum with stable codes (never renamed, only added)."""

from __future__ import annotations

from enum import StrEnum


class AuditEvent(StrEnum):
    CENTER_CREATED = "center.created"
    USER_CREATED = "user.created"
    MEMBERSHIP_GRANTED = "membership.granted"
    API_TOKEN_CREATED = "api_token.created"
    PROTOCOL_REGISTERED = "protocol.registered"
    SUBJECT_CREATED = "subject.created"
    SUBJECT_IDENTITY_CHANGED = "subject.identity_changed"
    CONSENT_RECORDED = "consent.recorded"
    ELIGIBILITY_ASSESSED = "eligibility.assessed"
    PATHWAY_STEP = "pathway.step"
    SIGNATURE_APPLIED = "signature.applied"
    SIGNATURE_FAILED = "signature.failed"
    STEP_REFUSED = "pathway.step_refused"
    ACCESS_REFUSED = "access.refused"
    LOGIN_FAILED = "login.failed"
    LAB_OBSERVATION_RECORDED = "lab_observation.recorded"
    SCREENING_DATA_RECORDED = "screening.data_recorded"
    CONSENT_WITHDRAWN = "consent.withdrawn"
