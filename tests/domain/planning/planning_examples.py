"""Small hand-made planning instances whose optimum is worked out by hand in the tests."""

from __future__ import annotations

from typing import Any

ALL_DAYS = [0, 1, 2, 3, 4, 5, 6]


def instance_json(**changes: Any) -> dict[str, Any]:
    """One center, one facility of one line, manufacturing 2 days + QC 1, shipping 1 day each way,
    lymphodepletion 3 days with a gap of 2 to 4 days; from Monday 2027-01-04 (day 0), every day open.

    Alone, a patient ready on day 0 has apheresis on day 0, manufacturing from day 1 (the material
    arrives), release on day 4, the product back on day 5, lymphodepletion on days 4-6 and infusion
    on day 8 at the earliest (the last lymphodepletion day + the smallest gap 2)."""
    data: dict[str, Any] = {
        "start_date": "2027-01-04",
        "horizon_days": 60,
        "facilities": [{"id": "F1", "lines": 1, "manufacturing_days": 2, "qc_days": 1, "closed_weekdays": []}],
        "centers": [
            {
                "id": "BDX",
                "country": "FR",
                "apheresis_weekdays": ALL_DAYS,
                "apheresis_per_day": 1,
                "infusion_weekdays": ALL_DAYS,
                "infusions_per_week": 7,
                "ship_days": {"F1": 1},
            }
        ],
        "patients": [
            {"id": "P1", "center": "BDX", "ready_date": "2027-01-04", "weight": 1},
            {"id": "P2", "center": "BDX", "ready_date": "2027-01-04", "weight": 5},
        ],
        "lymphodepletion_days": 3,
        "ld_to_infusion_gap_days": [2, 4],
    }
    data.update(changes)
    return data


def with_center(**changes: Any) -> dict[str, Any]:
    """The example with its one center changed."""
    data = instance_json()
    data["centers"] = [{**data["centers"][0], **changes}]
    return data
