"""Screening data and labs for integration tests: the demo's eligible patient, variations by keyword."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from cartrial.apps import clock
from cartrial.apps.clinical.services import LabObservationInput, ScreeningSaved, screening_record
from cartrial.demo import DEMO_SCREENING_DATA


def labs(*, creatinine: float = 71.0, creatinine_unit: str = "umol/L", cd3: float = 650.0) -> list[LabObservationInput]:
    sampled_at = clock.now() - timedelta(hours=3)
    return [
        LabObservationInput("creatinine", creatinine, creatinine_unit, sampled_at, lower_limit=45, upper_limit=90),
        LabObservationInput("cd3", cd3, "cells/µL", sampled_at, lower_limit=700, upper_limit=2100),
    ]


def screen(
    world: Any,
    subject: Any,
    username: str = "bdx.coordinator",
    *,
    reason: str = "",
    cd3: float = 650.0,
    **changes: object,
) -> ScreeningSaved:
    """Record screening data (the demo's, with `changes`) and labs through the real service."""
    return screening_record(
        actor=world.actor(username),
        user=world.users[username],
        subject=subject,
        protocol=world.protocol,
        data={**DEMO_SCREENING_DATA, **changes},
        labs=labs(cd3=cd3),
        reason=reason,
    )
