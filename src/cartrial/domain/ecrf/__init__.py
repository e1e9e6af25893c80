"""The eCRF engine: forms declared in the protocol file, their values checked and edit-checked.

`definitions` reads the protocol's `forms:` section (`parse_forms`), `values` converts and checks a
form's submitted values (`form_values_check`), `checks` runs the edit checks (`edit_check_findings`).
Pure: no Django; the casebook app stores what these functions return.
"""

from cartrial.domain.ecrf.checks import VISIT_DATE_WINDOW, Finding, edit_check_findings
from cartrial.domain.ecrf.definitions import (
    CODELIST_HELP,
    CODELIST_SOURCES,
    DERIVATIONS,
    ITEM_UNITS,
    EditCheck,
    FormDef,
    FormDefinitionError,
    FormStatus,
    GroupDef,
    ItemDef,
    ItemType,
    Label,
    parse_forms,
    shown,
)
from cartrial.domain.ecrf.values import (
    CleanedValues,
    FormContext,
    derived_values,
    form_values_check,
    lab_number,
    lab_range,
    required_check,
)

__all__ = [
    "CODELIST_HELP",
    "CODELIST_SOURCES",
    "DERIVATIONS",
    "ITEM_UNITS",
    "VISIT_DATE_WINDOW",
    "CleanedValues",
    "EditCheck",
    "Finding",
    "FormContext",
    "FormDef",
    "FormDefinitionError",
    "FormStatus",
    "GroupDef",
    "ItemDef",
    "ItemType",
    "Label",
    "derived_values",
    "edit_check_findings",
    "form_values_check",
    "lab_number",
    "lab_range",
    "parse_forms",
    "required_check",
    "shown",
]
