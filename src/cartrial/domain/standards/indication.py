"""The condition a protocol studies, coded: the protocol file's `study.indication`.

The codes are data of the protocol (an amendment may add one), written by the exports that carry an
indication (USDM `Indication`); each names its code system and version so no export guesses them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Coding:
    """One code of a code system (`system` is its URI, `version` the edition the code is taken from)."""

    system: str
    version: str
    code: str
    decode: str


@dataclass(frozen=True)
class Indication:
    """The condition studied: its name ({en, fr}), whether it is a rare disease, its codes."""

    label: Mapping[str, str]
    rare_disease: bool
    codes: tuple[Coding, ...]


def indication_parse(raw: Mapping[str, Any]) -> Indication:
    """The `study.indication` section, already checked by the protocol schema."""
    return Indication(
        label={"en": str(raw["label"]["en"]), "fr": str(raw["label"]["fr"])},
        rare_disease=bool(raw["rare_disease"]),
        codes=tuple(
            Coding(system=str(c["system"]), version=str(c["version"]), code=str(c["code"]), decode=str(c["decode"]))
            for c in raw["codes"]
        ),
    )
