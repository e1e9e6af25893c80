"""Logistics actions outside the pathway steps, and the roles that perform them (DESIGN §1).

The steps themselves (collect, ship, release, receive, infuse...) are in `roles.STEP_ROLES`;
these are the records between them: the lab scanning the material in, QC results, temperature
logs, the documented out-of-specification exception, the thaw, the no-infusion decision, labels.
"""

from __future__ import annotations

from enum import StrEnum

from cartrial.domain.roles import Role


class LogisticsAction(StrEnum):
    RECEIVE_MATERIAL = "receive_material"
    RECORD_QC = "record_qc"
    IMPORT_TEMPERATURE_LOG = "import_temperature_log"
    DOCUMENT_OOS_EXCEPTION = "document_oos_exception"
    DECIDE_NO_INFUSION = "decide_no_infusion"
    THAW = "thaw"
    PRINT_LABELS = "print_labels"


LOGISTICS_ACTION_ROLES: dict[LogisticsAction, frozenset[Role]] = {
    LogisticsAction.RECEIVE_MATERIAL: frozenset({Role.MANUFACTURING}),
    LogisticsAction.RECORD_QC: frozenset({Role.MANUFACTURING}),
    LogisticsAction.IMPORT_TEMPERATURE_LOG: frozenset(
        {Role.APHERESIS, Role.MANUFACTURING, Role.PHARMACIST, Role.COORDINATOR}
    ),
    LogisticsAction.DOCUMENT_OOS_EXCEPTION: frozenset({Role.INVESTIGATOR}),
    LogisticsAction.DECIDE_NO_INFUSION: frozenset({Role.INVESTIGATOR}),
    LogisticsAction.THAW: frozenset({Role.PHARMACIST}),
    LogisticsAction.PRINT_LABELS: frozenset(
        {Role.APHERESIS, Role.MANUFACTURING, Role.PHARMACIST, Role.COORDINATOR, Role.INVESTIGATOR}
    ),
}

ACTION_LABELS: dict[LogisticsAction, dict[str, str]] = {
    LogisticsAction.RECEIVE_MATERIAL: {
        "en": "Receive the apheresis material at the lab",
        "fr": "Réceptionner le matériel d'aphérèse au laboratoire",
    },
    LogisticsAction.RECORD_QC: {"en": "Record a QC result", "fr": "Saisir un résultat de contrôle qualité"},
    LogisticsAction.IMPORT_TEMPERATURE_LOG: {
        "en": "Import a temperature log",
        "fr": "Importer un relevé de température",
    },
    LogisticsAction.DOCUMENT_OOS_EXCEPTION: {
        "en": "Sign an out-of-specification exception",
        "fr": "Signer une dérogation hors spécification",
    },
    LogisticsAction.DECIDE_NO_INFUSION: {"en": "Decide: no infusion", "fr": "Décider : pas de perfusion"},
    LogisticsAction.THAW: {"en": "Record the thaw", "fr": "Enregistrer la décongélation"},
    LogisticsAction.PRINT_LABELS: {"en": "Print labels", "fr": "Imprimer les étiquettes"},
}
