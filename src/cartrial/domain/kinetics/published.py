"""Published numbers the model is checked against, and the clinical thresholds they depend on.

Sources: kinetics.md §3 and §5 (validation cases V1, V4, V5, V6) and clinical.md §5.1-5.2 and §6.
Numbers tagged uncertain there ([verify], [V-2], [R]) are single named constants here, so a
correction from the primary paper is a one-line change.
"""

from __future__ import annotations

# --- V1: Stein 2019 typical tisagenlecleucel profile (Table 1 and Discussion) ----------------
STEIN_2019_PEAK_COPIES_PER_UG = 24_000.0
STEIN_2019_PEAK_DAY = 9.3
STEIN_2019_INITIAL_LEVEL_COPIES_PER_UG = 6.154  # [derived] Cmax / foldx
STEIN_2019_GROWTH_RATE_PER_DAY = 0.8891  # [derived] ln(foldx) / Tmax
STEIN_2019_DOUBLING_TIME_DAYS = 0.78  # [pub] Discussion
STEIN_2019_FAST_HALF_LIFE_DAYS_PAPER = 4.3  # [pub], exact ln2/α = 4.33
STEIN_2019_SLOW_HALF_LIFE_DAYS_PAPER = 220.0  # [pub] "~220", exact ln2/β = 216.6
STEIN_2019_PEAK_P05_COPIES_PER_UG = 6_371.0  # [derived] 24 000·e^(−1.645·√0.65)
STEIN_2019_PEAK_P95_COPIES_PER_UG = 90_405.0  # [derived] 24 000·e^(+1.645·√0.65)

# --- V4: SLE series --------------------------------------------------------------------------
# Mackensen 2022 (Nat Med 28:2124), n = 5: B-cell reappearance 110 ± 32 days (mean ± SD).
# clinical.md §5.1 tags it [V]; kinetics.md §3 asks to verify the exact wording.
MACKENSEN_2022_B_CELL_REAPPEARANCE_MEAN_DAYS = 110.0
MACKENSEN_2022_B_CELL_REAPPEARANCE_SD_DAYS = 32.0
MACKENSEN_2022_PATIENTS = 5
# Müller 2024 (NEJM 390:687), n = 15, mixed diseases: B-cell aplasia 112 ± 47 days.
# [verify] / [V-2]: every retrieved abstract breaks off before this sentence (clinical.md §5.2).
MULLER_2024_B_CELL_APLASIA_MEAN_DAYS = 112.0
MULLER_2024_B_CELL_APLASIA_SD_DAYS = 47.0
MULLER_2024_PATIENTS = 15
# Two-sided 97.5 % Student t quantiles for the 95 % CI of those means (kinetics.md §5 V4).
STUDENT_T_975_4_DOF = 2.776
STUDENT_T_975_14_DOF = 2.145

# "Reappearance" = detectable CD19+ cells by flow again after aplasia. The papers' exact cut-off
# is an open item (clinical.md §7 item 7); kinetics.md §4.2 gives ~1 cell/µL as the B-cell assay
# limit, which is what we use [verify].
B_CELL_REAPPEARANCE_CELLS_PER_UL = 1.0

# Anti-dsDNA: the typical patient at or below ~25 % of baseline by day 90 (kinetics.md §5 V4);
# assays call ≥ 30 IU/mL positive in most trials (clinical.md §6).
ANTI_DSDNA_DAY_90_MAX_FRACTION_OF_BASELINE = 0.25
ANTI_DSDNA_POSITIVE_IU_PER_ML = 30.0

# Remission range of the normalised inflammation marker [derived]: LLDAS needs SLEDAI-2K ≤ 4
# (Franklyn 2016) and Mackensen's median baseline SLEDAI-2K was 16, so ≤ 4/16 of baseline.
INFLAMMATION_REMISSION_MAX_FRACTION_OF_BASELINE = 4.0 / 16.0
REMISSION_ASSESSMENT_DAY = 90.0

# --- V5: protective antibodies spared (Walti 2019, Blood Adv 3:3590) [pub] -------------------
WALTI_2019_TOTAL_IGG_CHANGE_PERCENT = -17.5
WALTI_2019_MEASLES_IGG_CHANGE_PERCENT = 1.2
WALTI_2019_TOLERANCE_PERCENTAGE_POINTS = 5.0
# kinetics.md §4.2: total IgG is mostly LLPC-made (f_L ≈ 0.8) [prior].
TOTAL_IGG_LLPC_FRACTION_PRIOR = 0.8

# kinetics.md §3: IgG half-life ≈ 21 days, textbook range 18-23 days; the upper end bounds how
# slowly an autoantibody can fall once its CD19+ producers are gone.
IGG_HALF_LIFE_UPPER_DAYS = 23.0

# --- V6: physiological bound: IgG alone decays with t½ = 21 d, A(90)/A(0) = 0.051 ------------
IGG_ONLY_DECAY_FRACTION_AT_DAY_90 = 0.051
