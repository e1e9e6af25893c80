"""Expected biology after CD19 CAR-T in SLE: Tier-1 kinetics model, virtual cohorts, fits, flags.

Spec: the project's kinetics.md §4 (Tier 1). Pure NumPy/SciPy, no Django, no I/O.
"""
