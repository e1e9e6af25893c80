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
    from django.db import transaction

    with transaction.atomic():
        return screening_record(
            actor=world.actor(username),
            subject=subject,
            protocol=world.protocol,
            data={**DEMO_SCREENING_DATA, **changes},
            labs=labs(cd3=cd3),
            reason=reason,
        )


def form_post(*, cd3: str = "650", sampled_at: str = "2024-01-05T08:30", **overrides: object) -> dict[str, object]:
    """The screening page's form as a browser posts it (the demo's patient), with `overrides`."""
    data: dict[str, object] = {
        "sex": "female",
        "ana_titer": "640",
        "sledai2k_lookback_days": "30",
        "sledai2k_descriptors": ["proteinuria", "hematuria", "low_complement", "increased_dna_binding"],
        "sledai2k_descriptors_complete": "on",
        "eular_acr_criteria": ["lupus_nephritis_class_4", "anti_dsdna", "low_c3", "low_c4"],
        "eular_acr_criteria_complete": "on",
        "organ_involvement": ["renal"],
        "organ_involvement_complete": "on",
        "glucocorticoids_failed": "yes",
        "immunosuppressants_failed": ["mycophenolate", "belimumab"],
        "immunosuppressants_failed_complete": "on",
        "infection_active": "no",
        "prior_cart": "no",
        "prior_gene_therapy": "no",
        "creatinine_value": "71",
        "creatinine_unit": "umol/L",
        "creatinine_lower_limit": "45",
        "creatinine_upper_limit": "90",
        "creatinine_sampled_at": sampled_at,
        "cd3_value": cd3,
        "cd3_unit": "cells/µL",
        "cd3_lower_limit": "700",
        "cd3_upper_limit": "2100",
        "cd3_sampled_at": sampled_at,
    }
    data.update(overrides)
    return {key: value for key, value in data.items() if value is not None}


def api_payload(*, cd3: float = 650.0, sampled_at: str = "2024-01-05T08:30:00+01:00", **changes: object) -> dict:
    """The API's screening body (the demo's patient), with `changes` to the data."""
    return {
        "data": {**DEMO_SCREENING_DATA, **changes},
        "labs": [
            {
                "analyte": "creatinine",
                "value": 71.0,
                "unit": "umol/L",
                "sampled_at": sampled_at,
                "lower_limit": 45,
                "upper_limit": 90,
            },
            {
                "analyte": "cd3",
                "value": cd3,
                "unit": "cells/µL",
                "sampled_at": sampled_at,
                "lower_limit": 700,
                "upper_limit": 2100,
            },
        ],
    }
