"""The CTCAE v5.0 terms the trial codes adverse events with: a subset relevant to CD19 CAR-T in SLE,
kept as data (`ctcae_terms.json`), searchable in French and English whatever the case or accents.

A term carries its System Organ Class, its MedDRA code where known, the grades CTCAE allows for it
(febrile neutropenia 3–5, death NOS 5 only), the AE-of-special-interest category it falls in and
whether it is haematological (the DLT rules treat those apart). Events that CTCAE v5.0 has no term
for (hypogammaglobulinaemia, ICANS, secondary HLH/MAS) are listed with `ctcae_term: false`: they are
reported under their SOC's "Other, specify" with this label as the specification (docs/safety.md).
"""

from __future__ import annotations

import json
import unicodedata
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from importlib import resources
from types import MappingProxyType

from cartrial.domain.errors import InvalidInput
from cartrial.domain.text import N_


class AesiCategory(StrEnum):
    """Adverse events of special interest after CAR-T (issue 10): derived from the term."""

    CRS = "crs"
    ICANS = "icans"
    INFECTION = "infection"
    PROLONGED_CYTOPENIA = "prolonged_cytopenia"
    HYPOGAMMAGLOBULINEMIA = "hypogammaglobulinemia"
    SECOND_MALIGNANCY = "second_malignancy"
    HLH_MAS = "hlh_mas"


AESI_LABELS: MappingProxyType[AesiCategory, str] = MappingProxyType(
    {
        AesiCategory.CRS: N_("Cytokine release syndrome"),
        AesiCategory.ICANS: N_("Neurotoxicity (ICANS)"),
        AesiCategory.INFECTION: N_("Infection"),
        AesiCategory.PROLONGED_CYTOPENIA: N_("Prolonged cytopenia"),
        AesiCategory.HYPOGAMMAGLOBULINEMIA: N_("Hypogammaglobulinaemia"),
        AesiCategory.SECOND_MALIGNANCY: N_("Second malignancy"),
        AesiCategory.HLH_MAS: N_("Secondary HLH/MAS"),
    }
)


@dataclass(frozen=True)
class CtcaeTerm:
    """One term of the list: code, labels (en, fr), SOC, MedDRA code, allowed grades, AESI category."""

    code: str
    label: MappingProxyType[str, str]
    soc: str
    meddra_code: int | None
    grades: tuple[int, ...]
    aesi: AesiCategory | None
    haematological: bool
    ctcae_term: bool

    def label_in(self, language: str) -> str:
        """The term's label in `language` (English when the language has none)."""
        return self.label.get(language[:2], self.label["en"])


@dataclass(frozen=True)
class TermList:
    """The code list: its CTCAE version and its terms by code."""

    version: str
    terms: MappingProxyType[str, CtcaeTerm]


@cache
def term_list() -> TermList:
    """The packaged term list, read once."""
    text = resources.files(__package__).joinpath("ctcae_terms.json").read_text(encoding="utf-8")
    data = json.loads(text)
    terms = {
        row["code"]: CtcaeTerm(
            code=row["code"],
            label=MappingProxyType(dict(row["label"])),
            soc=row["soc"],
            meddra_code=row["meddra_code"],
            grades=tuple(row["grades"]),
            aesi=AesiCategory(row["aesi"]) if row["aesi"] else None,
            haematological=bool(row["haematological"]),
            ctcae_term=bool(row["ctcae_term"]),
        )
        for row in data["terms"]
    }
    return TermList(version=str(data["version"]), terms=MappingProxyType(terms))


def term_get(code: str, *, item: str = "term") -> CtcaeTerm:
    """The term `code`, or InvalidInput naming the item."""
    term = term_list().terms.get(str(code).strip())
    if term is None:
        raise InvalidInput(
            "{item}: '{value}' is not a term of the CTCAE code list.", code="term_unknown", item=item, value=code
        )
    return term


def folded(text: str) -> str:
    """Lower case without accents, for matching what a person types ("anemie" finds "Anémie")."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def term_search(query: str, *, limit: int = 20) -> list[CtcaeTerm]:
    """Terms whose French or English label, code or MedDRA code holds every word of `query`;
    labels that start with the query come first."""
    words = folded(query).split()
    found: list[tuple[int, str, CtcaeTerm]] = []
    for term in term_list().terms.values():
        haystack = " ".join(
            [folded(term.label["en"]), folded(term.label.get("fr", "")), term.code, str(term.meddra_code or "")]
        )
        if all(word in haystack for word in words):
            starts = any(folded(lab).startswith(" ".join(words)) for lab in term.label.values())
            found.append((0 if starts else 1, folded(term.label["en"]), term))
    found.sort(key=lambda row: (row[0], row[1]))
    return [term for _, _, term in found[:limit]]
