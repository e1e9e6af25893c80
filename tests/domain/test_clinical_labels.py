"""Every clinical key a screening form offers has a French and an English label."""

from __future__ import annotations

import pytest

from cartrial.domain.clinical_labels import LABELLED_KEYS, clinical_label
from cartrial.domain.eligibility import (
    EULAR_ACR_2019_CRITERIA,
    IMMUNOSUPPRESSANTS,
    ORGAN_DOMAINS,
    SLEDAI2K_DESCRIPTORS,
)


@pytest.mark.parametrize(
    "key", sorted({*SLEDAI2K_DESCRIPTORS, *EULAR_ACR_2019_CRITERIA, *ORGAN_DOMAINS, *IMMUNOSUPPRESSANTS})
)
def test_every_offered_key_is_labelled_in_both_languages(key: str) -> None:
    assert key in LABELLED_KEYS
    assert "_" not in clinical_label(key, "fr") and "_" not in clinical_label(key, "en")


def test_examples_and_unknown_key() -> None:
    assert clinical_label("organic_brain_syndrome", "fr") == "Syndrome cérébral organique"
    assert clinical_label("lupus_nephritis_class_3", "en") == "Lupus nephritis class III"
    assert clinical_label("not_a_key", "fr") == "not a key"
