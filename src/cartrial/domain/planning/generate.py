"""Generated instances for the benchmark and the tests: a network whose capacities barely exceed
its arrivals, so queues form (congested), with unequal weights, shipping times and capacities.
The same seed gives the same instance."""

from __future__ import annotations

import math
import random
from datetime import date, timedelta

from cartrial.domain.planning.instance import Center, Facility, Instance, Patient

COUNTRIES = ("FR", "FR", "FR", "FR", "DE", "ES", "IT", "BE", "CA", "CH")


def generated_instance(
    seed: int, patients: int, centers: int, facilities: int, *, load: float = 0.95, start: date = date(2027, 1, 4)
) -> Instance:
    """`patients` arriving over a period sized for about 5 a day at most, shared by `centers` and
    `facilities` whose capacities are the arrivals divided by `load` (1.0: exactly saturated)."""
    rng = random.Random(seed)  # noqa: S311 (reproducible test data, not secrets)
    spread = max(21, math.ceil(patients / 5.5))
    per_day = patients / spread
    facility_list = []
    for i in range(facilities):
        manufacturing = rng.randint(9, 14)
        share = per_day / facilities
        facility_list.append(
            Facility(
                id=f"F{i + 1}",
                lines=max(1, round(share * manufacturing * 7 / 5 / load * rng.uniform(0.8, 1.2))),
                manufacturing_days=manufacturing,
                qc_days=rng.randint(5, 10),
                closed_weekdays=frozenset({5, 6}),
            )
        )
    shares = [rng.uniform(0.5, 2.0) for _ in range(centers)]
    center_list = []
    for i in range(centers):
        weekly = per_day * 7 * shares[i] / sum(shares)
        apheresis_days = rng.choice([(1, 3), (0, 2, 4), (1, 2, 3), (0, 1, 2, 3, 4)])
        per_slot = max(1, math.ceil(weekly / len(apheresis_days) / load))
        abroad = COUNTRIES[i % len(COUNTRIES)] != "FR"
        center_list.append(
            Center(
                id=f"C{i + 1:02d}",
                country=COUNTRIES[i % len(COUNTRIES)],
                apheresis_weekdays=frozenset(apheresis_days),
                apheresis_per_day=per_slot,
                infusion_weekdays=frozenset(rng.choice([(0, 1, 2, 3), (1, 3), (0, 2, 4), (0, 1, 2, 3, 4)])),
                infusions_per_week=max(1, math.ceil(weekly / load * rng.uniform(0.95, 1.1))),
                ship_days={f.id: rng.randint(2, 4) if abroad else rng.randint(1, 2) for f in facility_list},
            )
        )
    patient_list = []
    for i in range(patients):
        center = rng.choices(center_list, weights=shares)[0]
        burst = rng.random() < 0.3
        day = rng.randint(0, spread // 4) if burst else rng.randint(0, spread - 1)
        patient_list.append(
            Patient(
                id=f"P{i + 1:04d}",
                center=center.id,
                ready_date=start + timedelta(days=day),
                weight=rng.choice([1, 1, 1, 2, 3, 5]),
            )
        )
    return Instance(
        start_date=start,
        horizon_days=spread + 150,
        facilities=tuple(facility_list),
        centers=tuple(center_list),
        patients=tuple(patient_list),
        lymphodepletion_days=3,
        ld_to_infusion_gap_days=(2, 4),
    )
