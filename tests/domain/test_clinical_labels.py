"""Every clinical key a screening form or a calculator offers has a label, translated in the catalog."""

from __future__ import annotations

import gettext

import pytest

from cartrial.domain.clinical_labels import LABELLED_KEYS, clinical_label, clinical_labels
from cartrial.domain.eligibility import (
    EULAR_ACR_2019_CRITERIA,
    IMMUNOSUPPRESSANTS,
    ORGAN_DOMAINS,
    SLEDAI2K_DESCRIPTORS,
)
from cartrial.domain.scores.ctcae import CtcaeLabTerm
from cartrial.domain.scores.eular_acr_2019 import DOMAINS
from cartrial.domain.text import label
from cartrial.locale import LOCALE_DIR, render

# The compiled French catalog, to tell a translated label from a msgid gettext hands back unchanged.
FRENCH = gettext.translation("django", localedir=LOCALE_DIR, languages=["fr"])

OFFERED = sorted(
    {
        *SLEDAI2K_DESCRIPTORS,
        *EULAR_ACR_2019_CRITERIA,
        *ORGAN_DOMAINS,
        *IMMUNOSUPPRESSANTS,
        *DOMAINS,
        *(term.value for term in CtcaeLabTerm),
    }
)


@pytest.mark.parametrize("key", OFFERED)
def test_every_offered_key_is_labelled_in_both_languages(key: str) -> None:
    assert key in LABELLED_KEYS
    english, french = render(label(clinical_label(key)), "en"), render(label(clinical_label(key)), "fr")
    assert "_" not in english and "_" not in french
    assert clinical_label(key) in FRENCH._catalog  # type: ignore[attr-defined]


def test_examples_and_unknown_key() -> None:
    assert render(label(clinical_label("organic_brain_syndrome")), "fr") == "Syndrome cérébral organique"
    assert render(label(clinical_label("lupus_nephritis_class_3")), "en") == "Lupus nephritis class III"
    assert render(label(clinical_label("mycophenolate")), "fr") == "Mycophénolate"
    assert clinical_label("not_a_key") == "not a key"


def test_a_list_of_keys_reads_as_its_labels_in_order() -> None:
    assert [render(m, "fr") for m in clinical_labels(["rituximab", "belimumab"])] == ["Rituximab", "Bélimumab"]
    assert clinical_labels(None) == []
