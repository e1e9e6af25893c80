"""`cartrial endpoints` (issue 10): each visit's SLEDAI-2K, DORIS, drug-free DORIS, LLDAS and SRI-4, and
the visit from which DORIS is sustained. Expected values are worked by hand from the definitions
(weights of the SLEDAI-2K, clinical.md §3), never read back from the code under test."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import event, find, given, settings
from hypothesis import strategies as st

from cartrial.domain import endpoints
from cartrial.domain.endpoints import (
    VISIT_KEYS,
    Visit,
    doris_sustained_from,
    endpoints_report,
    parse_endpoints_input,
)
from cartrial.domain.errors import InvalidInput
from cartrial.domain.scores.remission import assess_doris_2021
from cartrial.locale import render

SEROLOGY = ["low_complement", "increased_dna_binding"]


def visit(code: str, descriptors: list[str], pga: float, prednisone: float, /, **changes: Any) -> dict[str, Any]:
    """A visit of the contract: stable standard maintenance, no haemolysis, no GI activity, no new BILAG."""
    sent: dict[str, Any] = {
        "code": code,
        "sledai_descriptors": descriptors,
        "pga": pga,
        "prednisone_mg_per_day": prednisone,
        "maintenance_therapy_stable": True,
        "standard_maintenance_only": True,
        "hemolytic_anemia": False,
        "gi_activity": False,
        "new_bilag_a": 0,
        "new_bilag_b": 0,
        "immunosuppressants": [],
    }
    sent.update(changes)
    return sent


def payload(baseline: list[str], baseline_pga: float, *visits: dict[str, Any]) -> dict[str, Any]:
    return {"baseline": {"sledai_descriptors": baseline, "pga": baseline_pga}, "visits": list(visits)}


# Baseline: arthritis 4 + rash 2 + proteinuria 4 + low complement 2 + DNA binding 2 = SLEDAI-2K 14, PGA 2.0.
BASELINE = ["arthritis", "rash", "proteinuria", *SEROLOGY]
COURSE = payload(
    BASELINE,
    2.0,
    # arthritis 4 + low complement 2 = 6, clinical 4: no DORIS (cSLEDAI 4), no LLDAS (6 > 4);
    # SRI-4: 14 - 6 = 8 ≥ 4, PGA 1.0 - 2.0 < 0.3 → responder.
    visit("M1", ["arthritis", "low_complement"], 1.0, 10.0, immunosuppressants=["mycophenolate"]),
    # serology only: 4, clinical 0; DORIS (PGA 0.3 < 0.5, 5 ≤ 5, stable) but prednisone 5 → not drug-free;
    # LLDAS fails on a new feature: increased DNA binding was absent at M1; SRI-4: 14 - 4 = 10, 1 new B → responder.
    visit("M3", SEROLOGY, 0.3, 5.0, immunosuppressants=["mycophenolate"], new_bilag_b=1),
    # nothing: 0; DORIS, drug-free (0 mg, no immunosuppressant), LLDAS, SRI-4.
    visit("M6", [], 0.0, 0.0),
    # still nothing, but one new BILAG A domain: SRI-4 fails, the rest holds.
    visit("M12", [], 0.2, 0.0, new_bilag_a=1),
)


def rows(report: dict[str, Any]) -> list[tuple[Any, ...]]:
    return [tuple(row.values()) for row in report["visits"]]


# --- the contract's shape -----------------------------------------------------------------------


def test_the_report_has_the_contract_keys_in_order() -> None:
    report = endpoints_report(COURSE)
    assert list(report) == ["visits", "doris_sustained_from"]
    assert [list(row) for row in report["visits"]] == [
        ["code", "sledai", "clinical_sledai", "doris", "drug_free_doris", "lldas", "sri4"]
    ] * 4


def test_every_field_of_a_course_worked_by_hand() -> None:
    assert rows(endpoints_report(COURSE)) == [
        # code, sledai, clinical, doris, drug-free, lldas, sri4
        ("M1", 6, 4, False, False, False, True),
        ("M3", 4, 0, True, False, False, True),
        ("M6", 0, 0, True, True, True, True),
        ("M12", 0, 0, True, True, True, False),
    ]
    assert endpoints_report(COURSE)["doris_sustained_from"] == "M3"


def test_no_visit_gives_no_rows_and_no_sustained_doris() -> None:
    assert endpoints_report(payload([], 0.0)) == {"visits": [], "doris_sustained_from": None}


def test_sledai_and_clinical_sledai_count_the_weights_and_leave_serology_out_of_the_clinical_score() -> None:
    # seizure 8 + vasculitis 8 + pyuria 4 + alopecia 2 + low complement 2 + DNA binding 2 + fever 1 = 27;
    # clinical 27 - 4 = 23.
    sent = visit("M1", ["seizure", "vasculitis", "pyuria", "alopecia", *SEROLOGY, "fever"], 2.0, 20.0)
    row = endpoints_report(payload([], 0.0, sent))["visits"][0]
    assert (row["sledai"], row["clinical_sledai"]) == (27, 23)


# --- DORIS and drug-free DORIS ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sent", "doris"),
    [
        (visit("V", SEROLOGY, 0.4, 5.0), True),  # cSLEDAI 0 (serology ignored), 0.4 < 0.5, 5 ≤ 5
        (visit("V", ["thrombocytopenia"], 0.0, 0.0), False),  # cSLEDAI 1
        (visit("V", [], 0.5, 0.0), False),  # PGA must be < 0.5
        (visit("V", [], 0.0, 5.5), False),  # prednisone > 5
        (visit("V", [], 0.0, 0.0, maintenance_therapy_stable=False), False),
    ],
)
def test_doris_follows_the_2021_definition(sent: dict[str, Any], doris: bool) -> None:
    assert endpoints_report(payload([], 0.0, sent))["visits"][0]["doris"] is doris


@pytest.mark.parametrize(
    ("sent", "drug_free"),
    [
        (visit("V", SEROLOGY, 0.2, 0.0), True),  # DORIS, no glucocorticoid, no immunosuppressant
        (visit("V", [], 0.2, 2.5), False),  # DORIS but 2.5 mg/day of prednisone
        (visit("V", [], 0.2, 0.0, immunosuppressants=["rituximab"]), False),  # DORIS but a biologic
        (visit("V", [], 1.0, 0.0), False),  # off drugs, but PGA 1.0: no DORIS, so no drug-free DORIS
        (visit("V", [], 0.2, 0.0, maintenance_therapy_stable=False), False),  # DORIS's own criterion fails
    ],
)
def test_drug_free_doris_is_doris_without_prednisone_or_immunosuppressant(
    sent: dict[str, Any], drug_free: bool
) -> None:
    assert endpoints_report(payload([], 0.0, sent))["visits"][0]["drug_free_doris"] is drug_free


def test_a_therapy_the_sap_tolerates_does_not_break_drug_free_doris(monkeypatch: pytest.MonkeyPatch) -> None:
    on_hcq = payload([], 0.0, visit("V", [], 0.0, 0.0, immunosuppressants=["Hydroxychloroquine"]))
    assert endpoints_report(on_hcq)["visits"][0]["drug_free_doris"] is False
    monkeypatch.setattr(endpoints, "DRUG_FREE_TOLERATED_THERAPIES", frozenset({"hydroxychloroquine"}))
    assert endpoints_report(on_hcq)["visits"][0]["drug_free_doris"] is True


def in_doris(code: str) -> dict[str, Any]:
    return visit(code, [], 0.0, 0.0)


def not_in_doris(code: str) -> dict[str, Any]:
    return visit(code, ["arthritis"], 0.0, 0.0)


@pytest.mark.parametrize(
    ("visits", "expected"),
    [
        ([in_doris("M1"), in_doris("M3"), in_doris("M6")], "M1"),  # from the first visit on
        ([not_in_doris("M1"), in_doris("M3"), in_doris("M6")], "M3"),
        ([in_doris("M1"), not_in_doris("M3"), in_doris("M6"), in_doris("M9")], "M6"),  # the trailing run only
        ([in_doris("M1"), in_doris("M3"), not_in_doris("M6")], None),  # the last visit is not in DORIS
        ([not_in_doris("M1")], None),
        ([in_doris("M12")], "M12"),  # a single visit in DORIS, the last one
    ],
)
def test_doris_sustained_from_is_the_start_of_the_trailing_run(visits: list[dict[str, Any]], expected: str) -> None:
    assert endpoints_report(payload([], 0.0, *visits))["doris_sustained_from"] == expected


def test_doris_sustained_from_on_codes_and_verdicts() -> None:
    assert doris_sustained_from([]) is None
    assert doris_sustained_from([("A", True), ("B", False), ("C", True), ("D", True)]) == "C"
    assert doris_sustained_from([("A", True), ("B", True), ("C", False)]) is None


# --- LLDAS: the previous assessment --------------------------------------------------------------


def test_the_first_visits_lldas_compares_with_the_baseline() -> None:
    first = visit("M1", ["low_complement"], 0.5, 5.0)  # SLEDAI 2 ≤ 4, PGA ≤ 1, 5 ≤ 7.5
    # low complement absent at baseline: a new feature, no LLDAS.
    assert endpoints_report(payload([], 0.0, first))["visits"][0]["lldas"] is False
    # present at baseline: nothing new, LLDAS.
    assert endpoints_report(payload(["low_complement"], 0.0, first))["visits"][0]["lldas"] is True


def test_a_later_visits_lldas_compares_with_the_visit_before_not_the_baseline() -> None:
    course = payload(
        [],
        0.0,
        visit("M1", ["low_complement"], 0.5, 5.0),  # new since baseline: no LLDAS
        visit("M3", ["low_complement"], 0.5, 5.0),  # present at M1: LLDAS (though new since baseline)
    )
    assert [row["lldas"] for row in endpoints_report(course)["visits"]] == [False, True]


@pytest.mark.parametrize(
    ("changes", "lldas"),
    [
        ({}, True),  # alopecia 2 + mucosal ulcers 2 = 4 ≤ 4, PGA 1.0, 7.5 mg
        ({"hemolytic_anemia": True}, False),
        ({"gi_activity": True}, False),
        ({"pga": 1.1}, False),
        ({"prednisone_mg_per_day": 8.0}, False),
        ({"standard_maintenance_only": False}, False),
        ({"sledai_descriptors": ["alopecia", "mucosal_ulcers", "leukopenia"]}, False),  # 5 > 4
        ({"sledai_descriptors": ["fever"]}, False),  # 1 point, but fever is a major organ activity
    ],
)
def test_lldas_takes_every_field_of_the_visit(changes: dict[str, Any], lldas: bool) -> None:
    descriptors = ["alopecia", "mucosal_ulcers", "leukopenia", "fever"]  # at baseline: nothing is new
    sent = visit("M1", ["alopecia", "mucosal_ulcers"], 1.0, 7.5, **changes)
    assert endpoints_report(payload(descriptors, 0.0, sent))["visits"][0]["lldas"] is lldas


# --- SRI-4: against the baseline -----------------------------------------------------------------


def test_sri4_compares_every_visit_with_the_baseline_not_the_visit_before() -> None:
    course = payload(
        BASELINE,  # 14
        2.0,
        visit("M1", ["arthritis", "low_complement"], 1.0, 10.0),  # 6: reduction 8
        visit("M3", ["arthritis", "low_complement"], 1.0, 10.0),  # 6 again: still 8 below baseline
    )
    assert [row["sri4"] for row in endpoints_report(course)["visits"]] == [True, True]


@pytest.mark.parametrize(
    ("current", "pga", "changes", "responder"),
    [
        (["arthritis", "rash", "proteinuria"], 2.0, {}, True),  # 14 → 10: reduction exactly 4
        (["arthritis", "rash", "proteinuria", "fever"], 2.0, {}, False),  # 14 → 11: reduction 3
        ([], 2.2, {}, True),  # PGA +0.2 < 0.3
        ([], 2.3, {}, False),  # PGA +0.3 is a worsening (decimal, not binary, arithmetic)
        ([], 1.0, {"new_bilag_a": 1}, False),
        ([], 1.0, {"new_bilag_b": 1}, True),
        ([], 1.0, {"new_bilag_b": 2}, False),
    ],
)
def test_sri4_follows_its_three_components(
    current: list[str], pga: float, changes: dict[str, Any], responder: bool
) -> None:
    sent = visit("M6", current, pga, 0.0, **changes)
    assert endpoints_report(payload(BASELINE, 2.0, sent))["visits"][0]["sri4"] is responder


# --- bad input ----------------------------------------------------------------------------------


def with_visit(**changes: Any) -> dict[str, Any]:
    return payload([], 1.0, visit("M1", [], 0.0, 0.0), visit("M3", [], 0.0, 0.0, **changes))


def without(key: str) -> dict[str, Any]:
    sent = with_visit()
    del sent["visits"][1][key]
    return sent


@pytest.mark.parametrize(
    ("sent", "code", "item"),
    [
        (with_visit(sledai_descriptors=["arthritis", "lupus_nephritis"]), "descriptor_unknown",
         "visits[1].sledai_descriptors[1]"),
        (payload(["Rash"], 1.0), "descriptor_unknown", "baseline.sledai_descriptors[0]"),
        (with_visit(sledai_descriptors=["rash", "rash"]), "descriptor_duplicate", "visits[1].sledai_descriptors[1]"),
        (with_visit(sledai_descriptors="rash"), "type_invalid", "visits[1].sledai_descriptors"),
        (with_visit(sledai_descriptors=[4]), "type_invalid", "visits[1].sledai_descriptors[0]"),
        (with_visit(pga=3.1), "pga_out_of_range", "visits[1].pga"),
        (with_visit(pga=-0.1), "pga_out_of_range", "visits[1].pga"),
        (with_visit(pga=math.nan), "pga_out_of_range", "visits[1].pga"),
        (payload([], 4.0), "pga_out_of_range", "baseline.pga"),
        (with_visit(pga="0.3"), "type_invalid", "visits[1].pga"),
        (with_visit(pga=True), "type_invalid", "visits[1].pga"),
        (with_visit(prednisone_mg_per_day=-2.5), "dose_out_of_range", "visits[1].prednisone_mg_per_day"),
        (with_visit(prednisone_mg_per_day=2000.5), "dose_out_of_range", "visits[1].prednisone_mg_per_day"),
        (with_visit(prednisone_mg_per_day=None), "type_invalid", "visits[1].prednisone_mg_per_day"),
        (with_visit(maintenance_therapy_stable=1), "type_invalid", "visits[1].maintenance_therapy_stable"),
        (with_visit(standard_maintenance_only="yes"), "type_invalid", "visits[1].standard_maintenance_only"),
        (with_visit(hemolytic_anemia=None), "type_invalid", "visits[1].hemolytic_anemia"),
        (with_visit(gi_activity=0), "type_invalid", "visits[1].gi_activity"),
        (with_visit(new_bilag_a=1.0), "type_invalid", "visits[1].new_bilag_a"),
        (with_visit(new_bilag_b=False), "type_invalid", "visits[1].new_bilag_b"),
        (with_visit(new_bilag_a=-1), "bilag_out_of_range", "visits[1].new_bilag_a"),
        (with_visit(new_bilag_b=10), "bilag_out_of_range", "visits[1].new_bilag_b"),
        (with_visit(new_bilag_a=5, new_bilag_b=5), "bilag_out_of_range", "visits[1].new_bilag_b"),
        (with_visit(immunosuppressants="mycophenolate"), "type_invalid", "visits[1].immunosuppressants"),
        (with_visit(immunosuppressants=["mycophenolate", 3]), "type_invalid", "visits[1].immunosuppressants[1]"),
        (with_visit(immunosuppressants=[" "]), "value_empty", "visits[1].immunosuppressants[0]"),
        (with_visit(code=3), "type_invalid", "visits[1].code"),
        (with_visit(code=""), "value_empty", "visits[1].code"),
        (with_visit(code="M1"), "visit_code_duplicate", "visits[1].code"),
        (with_visit(prednisone=5.0), "key_unknown", "visits[1].prednisone"),
        (without("gi_activity"), "key_missing", "visits[1].gi_activity"),
        (without("code"), "key_missing", "visits[1].code"),
        ({**payload([], 1.0), "subject": "BDX-001"}, "key_unknown", "subject"),
        ({"visits": []}, "key_missing", "baseline"),
        ({"baseline": {"sledai_descriptors": [], "pga": 1.0}}, "key_missing", "visits"),
        ({"baseline": {"sledai_descriptors": []}, "visits": []}, "key_missing", "baseline.pga"),
        ({"baseline": {"sledai_descriptors": [], "pga": 1.0, "date": "2026-01-05"}, "visits": []}, "key_unknown",
         "baseline.date"),
        ({"baseline": [], "visits": []}, "type_invalid", "baseline"),
        ({**payload([], 1.0), "visits": {"M1": visit("M1", [], 0.0, 0.0)}}, "visits_malformed", "visits"),
        ({**payload([], 1.0), "visits": None}, "visits_malformed", "visits"),
        ({**payload([], 1.0), "visits": ["M1"]}, "type_invalid", "visits[0]"),
    ],
)  # fmt: skip
def test_bad_input_is_refused_naming_the_item(sent: dict[str, Any], code: str, item: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        endpoints_report(sent)
    assert (refused.value.code, refused.value.item) == (code, item)
    text = str(refused.value)
    assert "\n" not in text and "{" not in text
    assert item in text


@pytest.mark.parametrize("sent", [[], "baseline", None])
def test_an_input_that_is_not_an_object_is_refused(sent: Any) -> None:
    with pytest.raises(InvalidInput) as refused:
        endpoints_report(sent)
    assert refused.value.code == "input_not_object"


@pytest.mark.parametrize(
    ("sent", "english", "french"),
    [
        (
            with_visit(sledai_descriptors=["lupus_nephritis"]),
            "visits[1].sledai_descriptors[0]: 'lupus_nephritis' is not a SLEDAI-2K descriptor.",
            "visits[1].sledai_descriptors[0] : « lupus_nephritis » n'est pas un descripteur du SLEDAI-2K.",
        ),
        (
            with_visit(pga=3.5),
            "visits[1].pga must be from 0 to 3, got 3.5.",
            "visits[1].pga doit aller de 0 à 3, reçu 3,5.",
        ),
        (
            with_visit(prednisone_mg_per_day=-2.5),
            "visits[1].prednisone_mg_per_day must be from 0 to 2000 mg/day, got -2.5.",
            "visits[1].prednisone_mg_per_day doit aller de 0 à 2000 mg/jour, reçu -2,5.",
        ),
        (
            with_visit(gi_activity="no"),
            "visits[1].gi_activity must be true or false, got string.",
            "visits[1].gi_activity doit être true ou false, reçu string.",
        ),
        (
            without("new_bilag_b"),
            "The input lacks the key visits[1].new_bilag_b.",
            "L'entrée n'a pas la clé visits[1].new_bilag_b.",
        ),
    ],
)
def test_a_refusal_reads_in_english_and_in_french(sent: dict[str, Any], english: str, french: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        endpoints_report(sent)
    assert (str(refused.value), render(refused.value.message, "fr")) == (english, french)


# --- property: agreement with the calculators over generated courses -----------------------------

DESCRIPTOR_SETS = st.one_of(
    st.lists(st.sampled_from(SEROLOGY), unique=True),  # clinically quiet: DORIS within reach
    st.lists(st.sampled_from(["arthritis", "rash", "fever", "proteinuria", "alopecia", *SEROLOGY]), unique=True),
)
VISITS = st.builds(
    dict,
    code=st.just(""),
    sledai_descriptors=DESCRIPTOR_SETS,
    pga=st.sampled_from([0.0, 0.2, 0.4, 0.5, 1.0, 2.5, 3.0]),
    prednisone_mg_per_day=st.sampled_from([0.0, 2.5, 5.0, 5.5, 7.5, 20.0]),
    maintenance_therapy_stable=st.booleans(),
    standard_maintenance_only=st.booleans(),
    hemolytic_anemia=st.booleans(),
    gi_activity=st.booleans(),
    new_bilag_a=st.integers(0, 2),
    new_bilag_b=st.integers(0, 3),
    immunosuppressants=st.lists(st.sampled_from(["mycophenolate", "rituximab", "belimumab"]), max_size=2),
)
COURSES = st.builds(
    lambda baseline, pga, visits: payload(
        baseline, pga, *({**sent, "code": f"V{index}"} for index, sent in enumerate(visits))
    ),
    DESCRIPTOR_SETS,
    st.sampled_from([0.0, 1.0, 2.0, 3.0]),
    st.lists(VISITS, max_size=6),
)


def calculators_doris(sent: dict[str, Any]) -> bool:
    return assess_doris_2021(
        sledai_descriptors=sent["sledai_descriptors"],
        pga=sent["pga"],
        prednisone_mg_per_day=sent["prednisone_mg_per_day"],
        maintenance_therapy_stable=sent["maintenance_therapy_stable"],
    ).remission


def test_the_generator_reaches_visits_in_and_out_of_doris() -> None:
    assert calculators_doris(find(VISITS, calculators_doris))
    assert not calculators_doris(find(VISITS, lambda sent: not calculators_doris(sent)))


@settings(max_examples=150)
@given(COURSES)
def test_every_course_agrees_with_the_calculators_and_its_own_definitions(course: dict[str, Any]) -> None:
    report = endpoints_report(course)
    assert [row["code"] for row in report["visits"]] == [sent["code"] for sent in course["visits"]]
    for sent, row in zip(course["visits"], report["visits"], strict=True):
        event("DORIS" if row["doris"] else "not DORIS")
        assert row["doris"] is calculators_doris(sent)
        assert row["clinical_sledai"] <= row["sledai"]
        assert row["drug_free_doris"] is (
            row["doris"] and sent["prednisone_mg_per_day"] == 0 and not sent["immunosuppressants"]
        )
        if row["lldas"]:
            assert row["sledai"] <= 4
    flags = [row["doris"] for row in report["visits"]]
    start = report["doris_sustained_from"]
    if start is None:
        assert not flags or not flags[-1]
    else:
        index = [row["code"] for row in report["visits"]].index(start)
        assert all(flags[index:])
        assert index == 0 or not flags[index - 1]


def test_the_parsed_visit_keeps_every_contract_key() -> None:
    _, visits = parse_endpoints_input(COURSE)
    assert tuple(Visit.__dataclass_fields__) == VISIT_KEYS
    assert visits[1].immunosuppressants == ("mycophenolate",) and visits[1].new_bilag_b == 1
