"""What each derived item of the eCRF computes, in words, for the documents that describe the data
(the tables' data dictionary; an ODM or Define-XML method may read the same texts).

One text per derivation of `domain/ecrf/definitions.DERIVATIONS`; the code that computes them is in
`domain/ecrf/values.py` (eGFR) and `domain/ecrf/activity.py` (lupus activity), the sources in the
scores' modules. A derived value is left empty when an input it needs was not entered.
"""

from __future__ import annotations

from types import MappingProxyType

from cartrial.domain.ecrf.definitions import DERIVATIONS
from cartrial.domain.text import N_, Message

_TEXTS: MappingProxyType[str, str] = MappingProxyType(
    {
        "egfr_ckd_epi_2021": N_(
            "Estimated GFR by the CKD-EPI 2021 creatinine equation (without race) from this form's "
            "creatinine and the subject's age and sex, rounded to 0.1; empty when an input is missing "
            "or outside the equation's domain."
        ),
        "sledai2k": N_(
            "SLEDAI-2K (Gladman 2002): the sum of the weights of the descriptors ticked; empty without "
            "the physician global assessment."
        ),
        "clinical_sledai": N_(
            "Clinical SLEDAI-2K: the SLEDAI-2K without its serological descriptors (low complement, "
            "increased DNA binding); empty without the physician global assessment."
        ),
        "doris_2021": N_(
            "DORIS 2021 remission at this visit, from the descriptors, the physician global assessment, "
            "the prednisone dose and the stability of maintenance therapy; empty when one of them is missing."
        ),
        "drug_free_doris": N_(
            "DORIS 2021 remission with no glucocorticoid and no immunosuppressant at this visit; empty "
            "when an input of DORIS is missing."
        ),
        "lldas": N_(
            "Lupus Low Disease Activity State (Franklyn 2016) at this visit, new features judged against "
            "the previous visit with this form; empty at the first visit or when an input is missing."
        ),
        "sri4": N_(
            "SLE Responder Index 4 (Furie 2009) against the baseline visit's form; empty at the baseline "
            "visit, before the baseline is entered, or without the physician global assessment."
        ),
        "new_bilag_a": N_(
            "Number of BILAG-2004 domains graded A now and not A at the baseline visit; empty at the "
            "baseline visit or before it is entered."
        ),
        "new_bilag_b": N_(
            "Number of BILAG-2004 domains graded B now and C, D or E at the baseline visit; empty at the "
            "baseline visit or before it is entered."
        ),
    }
)

assert set(_TEXTS) == set(DERIVATIONS), "every derivation of the eCRF is described"


def derivation_text(name: str) -> Message:
    """What the derivation `name` computes (a msgid, rendered in each reader's language)."""
    return Message(_TEXTS[name])
