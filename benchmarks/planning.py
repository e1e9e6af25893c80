"""Planning benchmark (issue 11): greedy versus CP-SAT on generated congested instances.

Prints, per size, the greedy objective and time, the CP-SAT objective, its proven bound, the gap,
the time, and PASS/FAIL for the issue's targets: 200 patients optimal or ≤ 1 % gap in ≤ 30 s; the
optimizer never worse than greedy; 2,000 patients a valid plan in ≤ 120 s; every plan checked by
`plan_check`. Run from the project root:

    PYTHONPATH=src .venv/bin/python benchmarks/planning.py
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import ortools

from cartrial.domain.planning import PlanStatus, plan_check, plan_cpsat, plan_greedy
from cartrial.domain.planning.generate import generated_instance

# (patients, centers, facilities, CP-SAT time limit in seconds)
SIZES = [(20, 4, 1, 30), (50, 6, 1, 30), (100, 8, 2, 30), (200, 8, 2, 28), (500, 12, 2, 60), (1000, 16, 3, 90),
         (2000, 20, 3, 100)]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--load", type=float, default=0.95, help="arrivals / capacity (1.0: saturated)")
    parser.add_argument("--max-patients", type=int, default=2000)
    args = parser.parse_args()
    print("Planning benchmark (benchmarks/planning.py)")
    print(f"  machine: {platform.machine()}, {os.cpu_count()} CPUs; Python {platform.python_version()}, "
          f"OR-Tools {ortools.__version__}; CP-SAT num_workers=2")  # fmt: skip
    print(f"  load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())} (shared machine)")
    print(f"  instances: generated_instance(seed={args.seed}, load={args.load}), unequal weights 1-5, shipping 1-4 d")
    print()
    header = (
        f"{'patients':>8} {'ctr':>3} {'fac':>3} | {'greedy':>8} {'time':>6} | {'CP-SAT':>8} {'bound':>8} {'gap':>6} "
        f"{'time':>6} {'status':>8} | {'vs greedy':>9} | checked"
    )
    print(header)
    print("-" * len(header))
    verdicts: list[tuple[str, bool]] = []
    all_valid = True
    never_worse = True
    for patients, centers, facilities, limit in SIZES:
        if patients > args.max_patients:
            continue
        instance = generated_instance(args.seed, patients, centers, facilities, load=args.load)
        began = time.perf_counter()
        greedy = plan_greedy(instance)
        greedy_s = time.perf_counter() - began
        began = time.perf_counter()
        optimum = plan_cpsat(instance, time_limit_s=limit)
        cpsat_s = time.perf_counter() - began
        problems = plan_check(instance, greedy) + plan_check(instance, optimum)
        all_valid &= not problems
        g, o, b = greedy.objective_days, optimum.objective_days, optimum.lower_bound_days
        gap = (o - b) / o * 100 if o and b is not None else 0.0
        better = (g - o) / g * 100 if g and o is not None else 0.0
        if g is not None and (o is None or o > g):
            never_worse = False
        print(
            f"{patients:>8} {centers:>3} {facilities:>3} | {g!s:>8} {greedy_s:>5.2f}s | {o!s:>8} {b!s:>8} "
            f"{gap:>5.2f}% {cpsat_s:>5.1f}s {optimum.status:>8} | {-better:>+8.1f}% | "
            f"{'valid' if not problems else f'{len(problems)} violations'}"
        )
        if patients == 200:
            ok = (optimum.status == PlanStatus.OPTIMAL or gap <= 1.0) and cpsat_s <= 30
            verdicts.append((f"200 patients optimal or gap <= 1 % in <= 30 s (gap {gap:.2f} %, {cpsat_s:.1f} s)", ok))
        if patients == 2000:
            ok = optimum.status in (PlanStatus.OPTIMAL, PlanStatus.FEASIBLE) and not problems and cpsat_s <= 120
            verdicts.append((f"2,000 patients valid plan in <= 120 s ({cpsat_s:.1f} s)", ok))
    verdicts.append(("optimizer never worse than greedy", never_worse))
    verdicts.append(("every plan valid by plan_check", all_valid))
    print()
    print(f"  load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    for text, ok in verdicts:
        print(f"  {'PASS' if ok else 'FAIL'}  {text}")


if __name__ == "__main__":
    main()
