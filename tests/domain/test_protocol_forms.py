"""The protocol's forms: loaded at start-up, refused with the key of the problem, documented without drift."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from cartrial.domain import lab_catalogue
from cartrial.domain.ecrf import FormDef, parse_forms
from cartrial.domain.scores.sledai2k import DESCRIPTOR_KEYS
from cartrial.protocols import DEFAULT_PROTOCOL_FILE, ProtocolError, load_protocol

DOC = Path(__file__).resolve().parents[2] / "docs" / "ecrf.md"
BEGIN, END = (
    "<!-- forms: generated from the protocol, checked by tests/domain/test_protocol_forms.py -->",
    "<!-- end of forms -->",
)


def _number(value: float) -> str:
    return f"{value:g}"


def forms_table(forms: dict[str, FormDef]) -> str:
    """The forms as docs/ecrf.md lists them: items, types, units, ranges, edit checks."""
    lines = []
    for form in forms.values():
        lines.append(f"### `{form.code}` — {form.label['en']}\n")
        lines.append("| Item | Type | Unit | Range | Required |")
        lines.append("|---|---|---|---|---|")
        for item in form.items:
            group = form.group_of(item.name)
            name = f"`{group.name}[].{item.name}`" if group.repeating else f"`{item.name}`"
            kind = item.type.value
            if item.analyte:
                kind = f"lab `{item.analyte}`"
            if item.derived:
                kind = f"derived `{item.derived}`"
            if item.codelist:
                kind += f" ({len(item.codelist)} codes)"
            unit = ", ".join(item.units) if item.units else item.unit
            if item.minimum is not None and item.maximum is not None:
                rng = f"{_number(item.minimum)}–{_number(item.maximum)}"
            elif item.analyte:
                spec = lab_catalogue.ANALYTES[item.analyte]
                rng = "; ".join(f"{_number(spec.ranges[u][0])}–{_number(spec.ranges[u][1])} {u}" for u in item.units)
            else:
                rng = ""
            req = "yes" if item.required else ("when rule holds" if item.required_when else "")
            lines.append(f"| {name} | {kind} | {unit} | {rng} | {req} |")
        if form.edit_checks:
            lines.append("")
            for check in form.edit_checks:
                lines.append(
                    f"Edit check `{check.code}` on {', '.join(f'`{i}`' for i in check.items)}: {check.message['en']}."
                )
        lines.append("")
    return "\n".join(lines)


def test_the_protocol_declares_the_trials_forms() -> None:
    protocol = load_protocol()
    assert list(protocol.forms) == [
        "vital_signs",
        "haematology",
        "chemistry",
        "immunology",
        "urinalysis",
        "sle_activity",
        "concomitant_medications",
        "lymphodepletion",
        "infusion",
    ]
    assert [item.name for item in protocol.forms["vital_signs"].items] == [
        "temperature_c",
        "heart_rate_bpm",
        "systolic_bp_mmhg",
        "diastolic_bp_mmhg",
        "spo2_pct",
        "weight_kg",
    ]
    assert protocol.forms["sle_activity"].item("sledai2k_descriptors").codes == DESCRIPTOR_KEYS


def test_every_item_has_english_and_french_label_and_help() -> None:
    for form in load_protocol().forms.values():
        for item in form.items:
            assert isinstance(item.label, dict) and item.label["en"] and item.label["fr"], item.name
            assert isinstance(item.help, dict) and item.help["en"] and item.help["fr"], item.name


def test_kinetic_markers_are_entered_under_their_analyte_codes() -> None:
    immunology = load_protocol().forms["immunology"]
    markers = {item.analyte for item in immunology.items if item.analyte in lab_catalogue.ANALYTES}
    kinetic = {spec.code for spec in lab_catalogue.CATALOGUE if spec.kinetic_marker}
    assert kinetic <= markers
    assert {immunology.item(name).unit for name in ("car_t_cells", "car_t_copies")} == {"cells/µL", "copies/µg"}


def test_the_documented_forms_are_the_protocols() -> None:
    text = DOC.read_text(encoding="utf-8")
    documented = text.split(BEGIN, 1)[1].split(END, 1)[0].strip()
    assert documented == forms_table(dict(load_protocol().forms)).strip()


def broken(tmp_path: Path, change: object) -> Path:
    data = yaml.safe_load(DEFAULT_PROTOCOL_FILE.read_text(encoding="utf-8"))
    change(data)  # type: ignore[operator]
    path = tmp_path / "protocol.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def _vitals_item(data: dict, index: int) -> dict:  # type: ignore[type-arg]
    return data["forms"][0]["groups"][0]["items"][index]  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("change", "key", "words"),
    [
        (lambda d: _vitals_item(d, 0).update(minimum=50), "forms.0.groups.0.items.0.minimum", "must be below maximum"),
        (lambda d: _vitals_item(d, 1).update(name="temperature_c"), "forms.0.groups.0.items.1.name", "duplicate name"),
        (lambda d: _vitals_item(d, 2).update(unit="mmhg"), "forms.0.groups.0.items.2.unit", "unknown unit 'mmhg'"),
        (lambda d: _vitals_item(d, 0).update(type="float"), "forms.0.groups.0.items.0.type", "is not one of"),
        (
            lambda d: d["forms"][0]["edit_checks"][0]["rule"].update(item="diastolic_bp"),
            "forms.0.edit_checks.0.rule.item",
            "did you mean 'diastolic_bp_mmhg'",
        ),
        (
            lambda d: d["forms"][2]["groups"][0]["items"][0].update(units=["umol/L", "mmol/L"]),
            "forms.2.groups.0.items.0.units.1",
            "not a unit of creatinine",
        ),
        (
            lambda d: d["forms"][7]["groups"][0]["items"][0].update(codelist=[]),
            "forms.7.groups.0.items.0.codelist",
            "should be non-empty",
        ),
        (
            lambda d: d["forms"][6]["groups"][0]["items"][6].update(required_when={"item": "ongoing", "equals": "no"}),
            "forms.6.groups.0.items.6.required_when.equals",
            "has type boolean",
        ),
        (
            lambda d: d["forms"][1]["groups"][0]["items"][0].update(analyte="neutrophil"),
            "forms.1.groups.0.items.0.analyte",
            "unknown analyte 'neutrophil'",
        ),
        (lambda d: d["forms"].append(dict(d["forms"][0])), "forms.9.code", "duplicate form code 'vital_signs'"),
    ],
)
def test_the_loader_refuses_a_bad_form_with_its_key(tmp_path: Path, change: object, key: str, words: str) -> None:
    with pytest.raises(ProtocolError) as refused:
        load_protocol(broken(tmp_path, change))
    assert refused.value.key == key
    assert words in refused.value.problem


def test_parse_forms_names_a_repeating_groups_item_read_outside_its_rows() -> None:
    data = yaml.safe_load(DEFAULT_PROTOCOL_FILE.read_text(encoding="utf-8"))["forms"]
    meds = data[6]
    meds["groups"].append(
        {
            "name": "review",
            "label": {"en": "Review", "fr": "Revue"},
            "items": [
                {
                    "name": "reviewed",
                    "type": "boolean",
                    "label": {"en": "Reviewed", "fr": "Revu"},
                    "shown_when": {"item": "ongoing", "equals": True},
                }
            ],
        }
    )
    with pytest.raises(Exception) as refused:
        parse_forms(data)
    assert getattr(refused.value, "key", "") == "forms.6.groups.1.items.0.shown_when.item"
