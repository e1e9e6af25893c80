"""Refusals of logistics actions, worded in French and English (the user's language is chosen at raise)."""

from __future__ import annotations

from cartrial.domain.custody import ScanDeviation
from cartrial.domain.errors import DomainError


class LogisticsRefused(DomainError):
    """A logistics action refused; `code` is stable, the message is in the user's language."""

    code = "logistics_refused"

    def __init__(self, code: str, *, en: str, fr: str, language: str = "en") -> None:
        self.messages = {"en": en, "fr": fr}
        super().__init__(self.messages.get(language, en), code=code)

    def message_in(self, language: str) -> str:
        return self.messages.get(language, self.messages["en"])


class ScanRefused(LogisticsRefused):
    """The scanned code is not the item's: the step is refused and a deviation recorded."""

    def __init__(self, deviation: ScanDeviation, *, step: str, language: str = "en") -> None:
        self.deviation = deviation
        self.step = step
        scanned = deviation.scanned_content or deviation.scanned_code
        super().__init__(
            "custody_scan_mismatch",
            en=f"Identity check failed: {deviation.reason} Stop: do not hand the item over; a deviation is recorded.",
            fr=f"Contrôle d'identité en échec : le code scanné « {scanned} » ne correspond pas à "
            f"{deviation.expected_code}, l'identifiant de cet article ({_reason_fr(deviation.reason_code)}). "
            "Arrêt : ne pas remettre l'article ; une déviation est enregistrée.",
            language=language,
        )


def _reason_fr(reason_code: str) -> str:
    return {
        "scan_unreadable": "code illisible ou caractère de contrôle faux",
        "scan_wrong_kind": "un DIN à la place du CoI, ou l'inverse",
        "scan_other_identifier": "identifiant d'un autre produit",
    }.get(reason_code, reason_code)


def refuse(code: str, language: str, en: str, fr: str) -> LogisticsRefused:
    return LogisticsRefused(code, en=en, fr=fr, language=language)
