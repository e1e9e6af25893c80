"""The SDTM datasets cartrial writes, described once: each dataset's variables (name, label, type,
length, origin, code list, derivation method, key) and the code lists and methods they refer to.

The Dataset-JSON columns (`datasetjson.py`) and the Define-XML 2.1 document (`define.py`) are both
built from these specs, so the two cannot disagree. The derivations themselves are in `sdtm.py`;
docs/exports.md explains each rule in words.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from functools import cached_property
from types import MappingProxyType

from cartrial.domain.errors import Refused
from cartrial.domain.standards import terminology as ct
from cartrial.domain.standards.terminology import Term

SDTMIG_VERSION = "3.4"
# The CDISC terminology release define.xml names for its CDISC code lists. The codes were written
# from CDISC's published lists; no CT package is at hand offline to check them against (docs/exports.md).
CT_VERSION = "2024-09-27"
# SDTM's limit for a character value (XPT v5): a longer source text is refused, never cut.
TEXT_LIMIT = 200


class SdtmType(StrEnum):
    """A variable's type; `define` and `json` give its Define-XML and Dataset-JSON spellings."""

    TEXT = "text"
    INTEGER = "integer"
    FLOAT = "float"
    DATE = "date"
    # ISO 8601 dates that may carry a time to the minute (EXSTDTC of a chemotherapy day or of the
    # infusion): a datetime of reduced precision.
    DATETIME = "datetime"

    @property
    def define(self) -> str:
        return _DEFINE_TYPES[self]

    @property
    def json(self) -> str:
        return _JSON_TYPES[self]


_DEFINE_TYPES = {
    SdtmType.TEXT: "text",
    SdtmType.INTEGER: "integer",
    SdtmType.FLOAT: "float",
    SdtmType.DATE: "date",
    SdtmType.DATETIME: "partialDatetime",
}
_JSON_TYPES = {
    SdtmType.TEXT: "string",
    SdtmType.INTEGER: "integer",
    SdtmType.FLOAT: "double",
    SdtmType.DATE: "date",
    SdtmType.DATETIME: "datetime",
}
# Define-XML requires a Length for these types.
LENGTH_TYPES = frozenset({SdtmType.TEXT, SdtmType.INTEGER, SdtmType.FLOAT})
_NUMBER_LENGTH = 8


class Origin(StrEnum):
    """Define-XML 2.1 origin types used here."""

    COLLECTED = "Collected"
    DERIVED = "Derived"
    ASSIGNED = "Assigned"
    PROTOCOL = "Protocol"
    NOT_AVAILABLE = "Not Available"


@dataclass(frozen=True)
class Variable:
    """One variable of one dataset. `source` is Define-XML's origin source (Investigator, Sponsor...),
    `codelist` and `method` name entries of `CODELISTS` and `METHODS`, `key` its key sequence,
    `comment` a note for the reviewer (Define-XML CommentDef)."""

    name: str
    label: str
    type: SdtmType
    length: int | None
    origin: Origin
    source: str | None = None
    mandatory: bool = False
    codelist: str | None = None
    method: str | None = None
    key: int | None = None
    comment: str | None = None


@dataclass(frozen=True)
class DatasetSpec:
    """One SDTM dataset: name, label, observation class, structure and variables in order."""

    name: str
    label: str
    observation_class: str
    structure: str
    variables: tuple[Variable, ...]
    reference_data: bool = False

    @property
    def oid(self) -> str:
        return f"IG.{self.name}"

    @property
    def file_name(self) -> str:
        return f"{self.name.lower()}.json"

    def item_oid(self, variable: Variable) -> str:
        return f"IT.{self.name}.{variable.name}"

    @cached_property
    def names(self) -> tuple[str, ...]:
        return tuple(v.name for v in self.variables)

    @cached_property
    def name_set(self) -> frozenset[str]:
        return frozenset(self.names)

    @cached_property
    def text_lengths(self) -> tuple[tuple[int, Variable], ...]:
        """(position, variable) of the text variables: the ones whose length a value may exceed."""
        return tuple((i, v) for i, v in enumerate(self.variables) if v.type is SdtmType.TEXT and v.length)

    @cached_property
    def number_positions(self) -> tuple[tuple[int, Variable], ...]:
        """(position, variable) of the integer and float variables: the ones JSON must hold as numbers."""
        return tuple((i, v) for i, v in enumerate(self.variables) if v.type in (SdtmType.INTEGER, SdtmType.FLOAT))


@dataclass(frozen=True)
class CodeList:
    """A code list: CDISC (with its NCI code) or the sponsor's, or a reference to an external
    dictionary (`dictionary`, `version`) whose values are not listed."""

    oid: str
    name: str
    terms: tuple[Term, ...] = ()
    nci_code: str | None = None
    cdisc: bool = True
    dictionary: str | None = None
    version: str | None = None
    data_type: SdtmType = SdtmType.TEXT


@dataclass(frozen=True)
class Method:
    """A derivation rule: Define-XML MethodDef (its OID is `MT.<key>`)."""

    key: str
    name: str
    description: str

    @property
    def oid(self) -> str:
        return f"MT.{self.key}"


# --- methods: every derived variable names one --------------------------------------------------

METHODS: MappingProxyType[str, Method] = MappingProxyType(
    {
        m.key: m
        for m in (
            Method("USUBJID", "Unique subject identifier", "STUDYID, a hyphen, then SUBJID (the subject code)."),
            Method(
                "SEQ",
                "Sequence number",
                "The subject's records of the dataset numbered 1, 2, ... in the dataset's key order.",
            ),
            Method(
                "STUDYDAY",
                "Study day",
                "Date minus the date of RFSTDTC (the CAR-T infusion), plus 1 on or after that day (no day 0); "
                "empty when the subject is not infused or the date is missing. Dates are the center's calendar.",
            ),
            Method(
                "EPOCH",
                "Epoch of a date",
                "SCREENING before the inclusion date; TREATMENT from the inclusion to the infusion day included; "
                "FOLLOW-UP after the infusion day; LONG-TERM FOLLOW-UP from the day the subject entered long-term "
                "follow-up. Empty when the date is missing.",
            ),
            Method(
                "VISITNUM",
                "Visit number",
                "Scheduled visits are numbered 1, 2, ... in protocol order; an unscheduled visit takes the number "
                "of the last scheduled visit done on or before its date plus 0.01 per unscheduled visit after it.",
            ),
            Method(
                "VISITDY",
                "Planned study day",
                "For a visit anchored on the infusion (D0): its protocol day plus 1 when on or after D0, the "
                "protocol day before it; empty for visits anchored on the inclusion (screening, apheresis).",
            ),
            Method("AGE", "Age", "Completed years from the birth date to RFICDTC (the birth date is not exported)."),
            Method(
                "RFSTDTC", "Reference start", "Start of the CAR-T infusion (center time), from the infusion record."
            ),
            Method(
                "RFENDTC",
                "Reference end",
                "For an included subject who left the study: the date of completion, withdrawal, loss to follow-up "
                "or death; empty while the subject is in the study and for subjects never included.",
            ),
            Method("RFXSTDTC", "First exposure", "The earliest EXSTDTC of the subject (first day of lymphodepletion)."),
            Method("RFXENDTC", "Last exposure", "The latest EXENDTC of the subject (the CAR-T infusion)."),
            Method("RFICDTC", "Informed consent", "The date the first informed consent was signed."),
            Method(
                "RFPENDTC",
                "End of participation",
                "The date of the subject's exit (screen failure, completion, withdrawal, loss to follow-up, death); "
                "empty while the subject is in the study.",
            ),
            Method("DTH", "Death", "DTHDTC is the date of death recorded with the death step; DTHFL is Y when set."),
            Method(
                "ARM",
                "Planned and actual arm",
                "ARMCD/ARM: the single arm once the subject is included; ACTARMCD/ACTARM: the same once infused. "
                "When either is empty, ARMNRS says why: SCREEN FAILURE, NOT ASSIGNED (never included) or "
                "ASSIGNED, NOT TREATED (included, not infused).",
            ),
            Method("SEX", "Sex", "The screening form's sex: female F, male M, not recorded U."),
            Method("COUNTRY", "Country", "The center's country as ISO 3166-1 alpha-3."),
            Method(
                "DSDECOD",
                "Disposition term",
                "Each signed consent: INFORMED CONSENT OBTAINED; inclusion: ENROLLED; infusion: CAR-T CELLS INFUSED; "
                "screen failure: SCREEN FAILURE; completion: COMPLETED; withdrawal with a withdrawal of consent: "
                "WITHDRAWAL BY SUBJECT, any other withdrawal: OTHER; lost to follow-up: LOST TO FOLLOW-UP; "
                "death: DEATH. DSSTDTC is the step's date (center time), the consent's, the withdrawal of "
                "consent's or the death's date when recorded.",
            ),
            Method(
                "EXDTC",
                "Exposure dates",
                "Lymphodepletion: one record per drug of the regimen on the lymphodepletion form (fludarabine "
                "and/or cyclophosphamide, or one record for another regimen), dose in mg/m2 per day, from the "
                "start date over the number of days given (EXENDTC = start + days - 1). CAR-T: one record per "
                "infusion, EXSTDTC = EXENDTC = the start of the infusion from the bedside record (center time) or "
                "else the infusion form's date and start time; the dose in CAR+ viable cells per kg from the form.",
            ),
            Method("AESEV", "Severity from the grade", "CTCAE grade 1 MILD, 2 MODERATE, 3 to 5 SEVERE."),
            Method(
                "AESERFL",
                "Seriousness criteria",
                "For a serious AE, Y for each ICH E2A criterion recorded and N for the others; empty when not serious.",
            ),
            Method(
                "AEACN",
                "Action with the study treatment",
                "The AE's action coded to CDISC ACN; an AE starting after the infusion day is NOT APPLICABLE "
                "(the product is given once).",
            ),
            Method(
                "LBSTRES",
                "Standard lab result",
                "The result converted to the analyte's standard unit by the project's one unit table "
                "(creatinine umol/L, C3/C4/IgG g/L, haemoglobin g/L, UPCR mg/mmol); other analytes keep "
                "the unit reported. A result below the limit of quantification is '<' and the limit.",
            ),
            Method(
                "VSSTRES",
                "Standard vital sign result",
                "The value as entered: the form's units are the standard units (temperature C, heart rate "
                "beats/min, blood pressure mmHg, SpO2 %, weight kg).",
            ),
            Method("LBNRIND", "Reference range indicator", "LOW below the lab's lower limit, HIGH above the upper."),
            Method("LBLOINC", "LOINC code", "The LOINC term of the analyte in the unit reported (none when unknown)."),
            Method(
                "LOBXFL",
                "Last observation before exposure",
                "Y on the subject's last non-missing result of each test dated on or before RFXSTDTC.",
            ),
            Method(
                "CMREC",
                "One record per medication",
                "The medications listed at every visit are merged: rows with the same medication (case aside), "
                "dose, unit, route and start date are one record, its stop date or ongoing status taken from "
                "the latest visit; CMENRTPT is ONGOING and CMENTPT that visit's date when still taken.",
            ),
        )
    }
)

# --- code lists ------------------------------------------------------------------------------------


def _cdisc(oid: str, name: str, terms: tuple[Term, ...], key: str | None = None) -> CodeList:
    return CodeList(f"CL.{oid}", name, terms, nci_code=ct.CODELIST_NCI_CODES.get(key or oid))


def _values(values: Iterable[str]) -> tuple[Term, ...]:
    return tuple(Term(v) for v in dict.fromkeys(values))


_LAB_TESTS = sorted(ct.LAB_CODINGS.values(), key=lambda c: c.lbtestcd)
_VS_TESTS = sorted(ct.VITAL_SIGN_CODINGS.values(), key=lambda c: c.vstestcd)
_DS_TERMS = (
    ct.DS_CONSENT,
    ct.DS_ENROLLED,
    ct.DS_INFUSED,
    ct.DS_SCREEN_FAILURE,
    ct.DS_COMPLETED,
    ct.DS_WITHDRAWN_BY_SUBJECT,
    ct.DS_LOST,
    ct.DS_DEATH,
    ct.DS_OTHER,
)

CODELISTS: MappingProxyType[str, CodeList] = MappingProxyType(
    {
        cl.oid: cl
        for cl in (
            _cdisc("SEX", "Sex", ct.SEX_TERMS),
            _cdisc("AGEU", "Age Unit", (Term(ct.AGE_UNIT_YEARS),)),
            _cdisc("NY", "No Yes Response", ct.NY_TERMS),
            _cdisc("AESEV", "Severity/Intensity Scale for Adverse Events", ct.AESEV_TERMS),
            _cdisc("OUT", "Outcome of Event", _values(ct.AE_OUTCOME_CODES.values())),
            _cdisc("ACN", "Action Taken with Study Treatment", _values(ct.AE_ACTION_CODES.values())),
            _cdisc("ROUTE", "Route of Administration", _values(ct.ROUTE_CODES.values())),
            _cdisc("FRM", "Pharmaceutical Dosage Form", _values(("SOLUTION", "SUSPENSION"))),
            _cdisc("FREQ", "Frequency", _values(("QD", "ONCE"))),
            _cdisc("NRIND", "Reference Range Indicator", ct.NRIND_TERMS),
            _cdisc("EPOCH", "Epoch", _values(ct.EPOCH_BY_PHASE.values())),
            _cdisc(
                "DSCAT",
                "Category for Disposition Event",
                _values((ct.DS_CATEGORY_DISPOSITION, ct.DS_CATEGORY_MILESTONE)),
            ),
            _cdisc(
                "ARMNRS",
                "Reason Arm and/or Actual Arm is Null",
                _values((ct.ARM_NULL_SCREEN_FAILURE, ct.ARM_NULL_NOT_ASSIGNED, ct.ARM_NULL_NOT_TREATED)),
                "ARMNULRS",
            ),
            # One list for both categories (no value-level metadata): terms of CDISC NCOMPLT (disposition
            # events) and PROTMLST (milestones) with the sponsor's milestones, so it is the sponsor's list.
            CodeList(
                "CL.DSDECOD",
                "Standardized Disposition Term (CDISC NCOMPLT and PROTMLST terms, the sponsor's milestones)",
                _DS_TERMS,
                cdisc=False,
            ),
            CodeList(
                "CL.LBTESTCD",
                "Laboratory Test Code",
                tuple(Term(c.lbtestcd, c.lbtest, in_ct=c.lbtestcd_in_ct) for c in _LAB_TESTS),
                nci_code=ct.CODELIST_NCI_CODES["LBTESTCD"],
            ),
            CodeList(
                "CL.LBTEST",
                "Laboratory Test Name",
                tuple(Term(c.lbtest, in_ct=c.lbtestcd_in_ct) for c in _LAB_TESTS),
                nci_code=ct.CODELIST_NCI_CODES["LBTEST"],
            ),
            CodeList(
                "CL.VSTESTCD",
                "Vital Signs Test Code",
                tuple(Term(c.vstestcd, c.vstest) for c in _VS_TESTS),
                nci_code=ct.CODELIST_NCI_CODES["VSTESTCD"],
            ),
            CodeList(
                "CL.VSTEST",
                "Vital Signs Test Name",
                tuple(Term(c.vstest) for c in _VS_TESTS),
                nci_code=ct.CODELIST_NCI_CODES["VSTEST"],
            ),
            CodeList(
                "CL.TSPARMCD",
                "Trial Summary Parameter Test Code",
                tuple(Term(code, name) for code, name in ct.TS_PARAMETERS.items()),
                nci_code=ct.CODELIST_NCI_CODES["TSPARMCD"],
            ),
            CodeList(
                "CL.AEREL",
                "Causality (sponsor's scale)",
                _values(ct.AE_RELATEDNESS_CODES.values()),
                cdisc=False,
            ),
            CodeList("CL.COUNTRY", "Country (ISO 3166-1 alpha-3)", cdisc=False, dictionary="ISO 3166", version="2020"),
            CodeList("CL.LOINC", "LOINC", cdisc=False, dictionary="LOINC", version="2.77"),
            CodeList("CL.CTCAE", "CTCAE terms", cdisc=False, dictionary="CTCAE", version="5.0"),
        )
    }
)


# --- variables ------------------------------------------------------------------------------------

_INV = "Investigator"
_SPONSOR = "Sponsor"


@dataclass(frozen=True)
class _Options:
    """What a variable may add to its name, label, type and origin."""

    mandatory: bool = False
    codelist: str | None = None
    method: str | None = None
    key: int | None = None
    comment: str | None = None


def _variable(
    name: str, label: str, type_: SdtmType, length: int | None, origin: Origin, source: str | None, options: _Options
) -> Variable:
    return Variable(
        name,
        label,
        type_,
        length,
        origin,
        source,
        options.mandatory,
        options.codelist,
        options.method,
        options.key,
        options.comment,
    )


def _text(
    name: str,
    label: str,
    length: int,
    origin: Origin,
    source: str | None = _SPONSOR,
    *,
    mandatory: bool = False,
    codelist: str | None = None,
    method: str | None = None,
    key: int | None = None,
    comment: str | None = None,
) -> Variable:
    options = _Options(mandatory, codelist, method, key, comment)
    return _variable(name, label, SdtmType.TEXT, length, origin, source, options)


def _number(
    name: str,
    label: str,
    type_: SdtmType,
    origin: Origin,
    source: str | None = _SPONSOR,
    *,
    mandatory: bool = False,
    method: str | None = None,
) -> Variable:
    return _variable(name, label, type_, _NUMBER_LENGTH, origin, source, _Options(mandatory, method=method))


def _date(
    name: str, label: str, origin: Origin, source: str | None = _INV, *, time: bool = False, method: str | None = None
) -> Variable:
    type_ = SdtmType.DATETIME if time else SdtmType.DATE
    return _variable(name, label, type_, None, origin, source, _Options(method=method))


def _derived_text(
    name: str,
    label: str,
    length: int,
    method: str,
    *,
    mandatory: bool = False,
    codelist: str | None = None,
    key: int | None = None,
) -> Variable:
    return _text(name, label, length, Origin.DERIVED, mandatory=mandatory, codelist=codelist, method=method, key=key)


def _head(domain: str, *, seq: bool = True) -> tuple[Variable, ...]:
    """STUDYID, DOMAIN, USUBJID and --SEQ: the identifiers every subject-level dataset starts with."""
    head = (
        _text("STUDYID", "Study Identifier", 20, Origin.PROTOCOL, mandatory=True, key=1),
        _text("DOMAIN", "Domain Abbreviation", 2, Origin.ASSIGNED, mandatory=True),
        _derived_text("USUBJID", "Unique Subject Identifier", 40, "USUBJID", mandatory=True, key=2),
    )
    if not seq:
        return head
    return (
        *head,
        _number(f"{domain}SEQ", "Sequence Number", SdtmType.INTEGER, Origin.DERIVED, method="SEQ", mandatory=True),
    )


def _visit() -> tuple[Variable, ...]:
    return (
        _number("VISITNUM", "Visit Number", SdtmType.FLOAT, Origin.DERIVED, method="VISITNUM"),
        _text("VISIT", "Visit Name", 40, Origin.PROTOCOL),
        _number("VISITDY", "Planned Study Day of Visit", SdtmType.INTEGER, Origin.DERIVED, method="VISITDY"),
    )


def _epoch() -> Variable:
    return _derived_text("EPOCH", "Epoch", 20, "EPOCH", codelist="CL.EPOCH")


def _day(name: str, label: str) -> Variable:
    return _number(name, label, SdtmType.INTEGER, Origin.DERIVED, method="STUDYDAY")


def _keyed(variables: tuple[Variable, ...], *names: str) -> tuple[Variable, ...]:
    """The variables with key sequence 3, 4, ... given to `names` in that order (1 and 2 are STUDYID and USUBJID)."""
    return _keys_from(variables, names, 3)


def _keys_from(variables: tuple[Variable, ...], names: tuple[str, ...], first: int) -> tuple[Variable, ...]:
    order = {name: index for index, name in enumerate(names, start=first)}
    return tuple(replace(v, key=order[v.name]) if v.name in order else v for v in variables)


DM = DatasetSpec(
    "DM",
    "Demographics",
    "SPECIAL PURPOSE",
    "One record per subject",
    (
        *_head("DM", seq=False),
        _text("SUBJID", "Subject Identifier for the Study", 16, Origin.ASSIGNED, mandatory=True),
        _date("RFSTDTC", "Subject Reference Start Date/Time", Origin.DERIVED, _SPONSOR, time=True, method="RFSTDTC"),
        _date("RFENDTC", "Subject Reference End Date/Time", Origin.DERIVED, _SPONSOR, method="RFENDTC"),
        _date("RFXSTDTC", "Date/Time of First Study Treatment", Origin.DERIVED, _SPONSOR, time=True, method="RFXSTDTC"),
        _date("RFXENDTC", "Date/Time of Last Study Treatment", Origin.DERIVED, _SPONSOR, time=True, method="RFXENDTC"),
        _date("RFICDTC", "Date/Time of Informed Consent", Origin.DERIVED, _SPONSOR, method="RFICDTC"),
        _date("RFPENDTC", "Date/Time of End of Participation", Origin.DERIVED, _SPONSOR, method="RFPENDTC"),
        _date("DTHDTC", "Date/Time of Death", Origin.DERIVED, _SPONSOR, method="DTH"),
        _derived_text("DTHFL", "Subject Death Flag", 1, "DTH", codelist="CL.NY"),
        _text("SITEID", "Study Site Identifier", 8, Origin.ASSIGNED, mandatory=True),
        _number("AGE", "Age", SdtmType.INTEGER, Origin.DERIVED, method="AGE"),
        _text("AGEU", "Age Units", 5, Origin.ASSIGNED, codelist="CL.AGEU"),
        _derived_text("SEX", "Sex", 1, "SEX", mandatory=True, codelist="CL.SEX"),
        _text(
            "RACE",
            "Race",
            40,
            Origin.NOT_AVAILABLE,
            None,
            comment="Not collected: French law restricts recording ethnic or racial origin; always empty.",
        ),
        _derived_text("ARMCD", "Planned Arm Code", 8, "ARM"),
        _derived_text("ARM", "Description of Planned Arm", 40, "ARM"),
        _derived_text("ACTARMCD", "Actual Arm Code", 8, "ARM"),
        _derived_text("ACTARM", "Description of Actual Arm", 40, "ARM"),
        _derived_text("ARMNRS", "Reason Arm and/or Actual Arm is Null", 40, "ARM", codelist="CL.ARMNRS"),
        _derived_text("COUNTRY", "Country", 3, "COUNTRY", mandatory=True, codelist="CL.COUNTRY"),
    ),
)

DS = DatasetSpec(
    "DS",
    "Disposition",
    "EVENTS",
    "One record per disposition status or protocol milestone per subject",
    _keyed(
        (
            *_head("DS"),
            _text(
                "DSTERM", "Reported Term for the Disposition Event", TEXT_LIMIT, Origin.COLLECTED, _INV, mandatory=True
            ),
            _derived_text(
                "DSDECOD", "Standardized Disposition Term", 40, "DSDECOD", mandatory=True, codelist="CL.DSDECOD"
            ),
            _text("DSCAT", "Category for Disposition Event", 20, Origin.ASSIGNED, codelist="CL.DSCAT"),
            _epoch(),
            _date("DSSTDTC", "Start Date/Time of Disposition Event", Origin.COLLECTED),
            _day("DSSTDY", "Study Day of Start of Disposition Event"),
        ),
        "DSSTDTC",
        "DSSEQ",
    ),
)

EX = DatasetSpec(
    "EX",
    "Exposure",
    "INTERVENTIONS",
    "One record per constant dosing interval per subject",
    _keyed(
        (
            *_head("EX"),
            _text("EXTRT", "Name of Treatment", 40, Origin.ASSIGNED, mandatory=True),
            _text("EXCAT", "Category of Treatment", 40, Origin.ASSIGNED),
            _number("EXDOSE", "Dose", SdtmType.FLOAT, Origin.COLLECTED, _INV),
            _text("EXDOSU", "Dose Units", 20, Origin.ASSIGNED),
            _text("EXDOSFRM", "Dose Form", 20, Origin.ASSIGNED, codelist="CL.FRM"),
            _text("EXDOSFRQ", "Dosing Frequency per Interval", 10, Origin.ASSIGNED, codelist="CL.FREQ"),
            _text("EXROUTE", "Route of Administration", 40, Origin.ASSIGNED, codelist="CL.ROUTE"),
            *_visit(),
            _epoch(),
            _date("EXSTDTC", "Start Date/Time of Treatment", Origin.DERIVED, time=True, method="EXDTC"),
            _date("EXENDTC", "End Date/Time of Treatment", Origin.DERIVED, time=True, method="EXDTC"),
            _day("EXSTDY", "Study Day of Start of Treatment"),
            _day("EXENDY", "Study Day of End of Treatment"),
        ),
        "EXTRT",
        "EXSTDTC",
        "EXSEQ",
    ),
)

AE = DatasetSpec(
    "AE",
    "Adverse Events",
    "EVENTS",
    "One record per adverse event per subject",
    _keyed(
        (
            *_head("AE"),
            _text("AETERM", "Reported Term for the Adverse Event", TEXT_LIMIT, Origin.COLLECTED, _INV, mandatory=True),
            _text("AELLT", "Lowest Level Term", TEXT_LIMIT, Origin.ASSIGNED),
            _number("AELLTCD", "Lowest Level Term Code", SdtmType.INTEGER, Origin.ASSIGNED),
            _text(
                "AEDECOD", "Dictionary-Derived Term", TEXT_LIMIT, Origin.ASSIGNED, mandatory=True, codelist="CL.CTCAE"
            ),
            _text("AEBODSYS", "Body System or Organ Class", TEXT_LIMIT, Origin.ASSIGNED),
            _text("AESOC", "Primary System Organ Class", TEXT_LIMIT, Origin.ASSIGNED),
            _text("AECAT", "Category for Adverse Event", 40, Origin.ASSIGNED),
            _text("AESCAT", "Subcategory for Adverse Event", 40, Origin.ASSIGNED),
            _derived_text("AESEV", "Severity/Intensity", 8, "AESEV", codelist="CL.AESEV"),
            _text("AESER", "Serious Event", 1, Origin.COLLECTED, _INV, codelist="CL.NY"),
            _text("AEACN", "Action Taken with Study Treatment", 20, Origin.DERIVED, method="AEACN", codelist="CL.ACN"),
            _text("AEACNOTH", "Other Action Taken", 40, Origin.COLLECTED, _INV),
            _text("AEREL", "Causality", 20, Origin.COLLECTED, _INV, codelist="CL.AEREL"),
            _text("AEOUT", "Outcome of Adverse Event", 40, Origin.COLLECTED, _INV, codelist="CL.OUT"),
            _derived_text("AESCONG", "Congenital Anomaly or Birth Defect", 1, "AESERFL", codelist="CL.NY"),
            _derived_text("AESDISAB", "Persist or Signif Disability/Incapacity", 1, "AESERFL", codelist="CL.NY"),
            _derived_text("AESDTH", "Results in Death", 1, "AESERFL", codelist="CL.NY"),
            _derived_text("AESHOSP", "Requires or Prolongs Hospitalization", 1, "AESERFL", codelist="CL.NY"),
            _derived_text("AESLIFE", "Is Life Threatening", 1, "AESERFL", codelist="CL.NY"),
            _derived_text("AESMIE", "Other Medically Important Serious Event", 1, "AESERFL", codelist="CL.NY"),
            _text("AETOXGR", "Standard Toxicity Grade", 1, Origin.COLLECTED, _INV),
            _epoch(),
            _date("AESTDTC", "Start Date/Time of Adverse Event", Origin.COLLECTED),
            _date("AEENDTC", "End Date/Time of Adverse Event", Origin.COLLECTED),
            _day("AESTDY", "Study Day of Start of Adverse Event"),
            _day("AEENDY", "Study Day of End of Adverse Event"),
        ),
        "AEDECOD",
        "AESTDTC",
        "AESEQ",
    ),
)

LB = DatasetSpec(
    "LB",
    "Laboratory Test Results",
    "FINDINGS",
    "One record per lab test per time point per visit per subject",
    _keyed(
        (
            *_head("LB"),
            _text(
                "LBTESTCD",
                "Lab Test or Examination Short Name",
                8,
                Origin.ASSIGNED,
                mandatory=True,
                codelist="CL.LBTESTCD",
            ),
            _text("LBTEST", "Lab Test or Examination Name", 40, Origin.ASSIGNED, mandatory=True, codelist="CL.LBTEST"),
            _text("LBCAT", "Category for Lab Test", 20, Origin.ASSIGNED),
            _text("LBORRES", "Result or Finding in Original Units", 20, Origin.COLLECTED, _INV),
            _text("LBORRESU", "Original Units", 20, Origin.COLLECTED, _INV),
            _text("LBORNRLO", "Reference Range Lower Limit in Orig Unit", 20, Origin.COLLECTED, _INV),
            _text("LBORNRHI", "Reference Range Upper Limit in Orig Unit", 20, Origin.COLLECTED, _INV),
            _derived_text("LBSTRESC", "Character Result/Finding in Std Format", 20, "LBSTRES"),
            _number(
                "LBSTRESN", "Numeric Result/Finding in Standard Units", SdtmType.FLOAT, Origin.DERIVED, method="LBSTRES"
            ),
            _derived_text("LBSTRESU", "Standard Units", 20, "LBSTRES"),
            _number(
                "LBSTNRLO", "Reference Range Lower Limit-Std Units", SdtmType.FLOAT, Origin.DERIVED, method="LBSTRES"
            ),
            _number(
                "LBSTNRHI", "Reference Range Upper Limit-Std Units", SdtmType.FLOAT, Origin.DERIVED, method="LBSTRES"
            ),
            _derived_text("LBNRIND", "Reference Range Indicator", 8, "LBNRIND", codelist="CL.NRIND"),
            _derived_text("LBLOINC", "LOINC Code", 10, "LBLOINC", codelist="CL.LOINC"),
            _text("LBMETHOD", "Method of Test or Examination", 40, Origin.ASSIGNED),
            _derived_text("LBLOBXFL", "Last Observation Before Exposure Flag", 1, "LOBXFL", codelist="CL.NY"),
            *_visit(),
            _epoch(),
            _date("LBDTC", "Date/Time of Specimen Collection", Origin.COLLECTED, time=True),
            _day("LBDY", "Study Day of Specimen Collection"),
        ),
        "LBTESTCD",
        "LBDTC",
        "LBSEQ",
    ),
)

VS = DatasetSpec(
    "VS",
    "Vital Signs",
    "FINDINGS",
    "One record per vital sign measurement per visit per subject",
    _keyed(
        (
            *_head("VS"),
            _text(
                "VSTESTCD", "Vital Signs Test Short Name", 8, Origin.ASSIGNED, mandatory=True, codelist="CL.VSTESTCD"
            ),
            _text("VSTEST", "Vital Signs Test Name", 40, Origin.ASSIGNED, mandatory=True, codelist="CL.VSTEST"),
            _text("VSPOS", "Vital Signs Position of Subject", 20, Origin.PROTOCOL),
            _text("VSORRES", "Result or Finding in Original Units", 20, Origin.COLLECTED, _INV),
            _text("VSORRESU", "Original Units", 20, Origin.ASSIGNED),
            _text("VSSTRESC", "Character Result/Finding in Std Format", 20, Origin.DERIVED, method="VSSTRES"),
            _number(
                "VSSTRESN", "Numeric Result/Finding in Standard Units", SdtmType.FLOAT, Origin.DERIVED, method="VSSTRES"
            ),
            _text("VSSTRESU", "Standard Units", 20, Origin.ASSIGNED),
            _derived_text("VSLOBXFL", "Last Observation Before Exposure Flag", 1, "LOBXFL", codelist="CL.NY"),
            *_visit(),
            _epoch(),
            _date("VSDTC", "Date/Time of Measurements", Origin.COLLECTED),
            _day("VSDY", "Study Day of Vital Signs"),
        ),
        "VSTESTCD",
        "VISITNUM",
        "VSSEQ",
    ),
)

CM = DatasetSpec(
    "CM",
    "Concomitant/Prior Medications",
    "INTERVENTIONS",
    "One record per recorded medication occurrence or constant-dosing interval per subject",
    _keyed(
        (
            *_head("CM"),
            _text(
                "CMTRT", "Reported Name of Drug, Med, or Therapy", TEXT_LIMIT, Origin.COLLECTED, _INV, mandatory=True
            ),
            _number("CMDOSE", "Dose per Administration", SdtmType.FLOAT, Origin.COLLECTED, _INV),
            _text("CMDOSU", "Dose Units", 20, Origin.COLLECTED, _INV),
            _text("CMROUTE", "Route of Administration", 40, Origin.COLLECTED, _INV, codelist="CL.ROUTE"),
            _date("CMSTDTC", "Start Date/Time of Medication", Origin.COLLECTED),
            _date("CMENDTC", "End Date/Time of Medication", Origin.DERIVED, _SPONSOR, method="CMREC"),
            _derived_text("CMENRTPT", "End Relative to Reference Time Point", 20, "CMREC"),
            _derived_text("CMENTPT", "End Reference Time Point", 40, "CMREC"),
            _day("CMSTDY", "Study Day of Start of Medication"),
            _day("CMENDY", "Study Day of End of Medication"),
        ),
        "CMTRT",
        "CMSTDTC",
        "CMSEQ",
    ),
)

SV = DatasetSpec(
    "SV",
    "Subject Visits",
    "SPECIAL PURPOSE",
    "One record per actual or planned visit per subject",
    _keyed(
        (
            *_head("SV", seq=False),
            *_visit(),
            _text("SVPRESP", "Pre-specified", 1, Origin.ASSIGNED, codelist="CL.NY"),
            _text("SVOCCUR", "Occurrence", 1, Origin.COLLECTED, _INV, codelist="CL.NY"),
            _text("SVREASOC", "Reason for Occur Value", TEXT_LIMIT, Origin.COLLECTED, _INV),
            _epoch(),
            _date("SVSTDTC", "Start Date/Time of Observation", Origin.COLLECTED),
            _date("SVENDTC", "End Date/Time of Observation", Origin.COLLECTED),
            _day("SVSTDY", "Study Day of Start of Observation"),
        ),
        "VISITNUM",
    ),
)


def _trial_head() -> tuple[Variable, ...]:
    return (
        _text("STUDYID", "Study Identifier", 20, Origin.PROTOCOL, mandatory=True, key=1),
        _text("DOMAIN", "Domain Abbreviation", 2, Origin.ASSIGNED, mandatory=True),
    )


def _trial_keyed(variables: tuple[Variable, ...], *names: str) -> tuple[Variable, ...]:
    return _keys_from(variables, names, 2)


TS = DatasetSpec(
    "TS",
    "Trial Summary",
    "TRIAL DESIGN",
    "One record per trial summary parameter value",
    _trial_keyed(
        (
            *_trial_head(),
            _number("TSSEQ", "Sequence Number", SdtmType.INTEGER, Origin.ASSIGNED, mandatory=True),
            _text(
                "TSPARMCD",
                "Trial Summary Parameter Short Name",
                8,
                Origin.ASSIGNED,
                mandatory=True,
                codelist="CL.TSPARMCD",
            ),
            _text("TSPARM", "Trial Summary Parameter", 40, Origin.ASSIGNED, mandatory=True),
            _text("TSVAL", "Parameter Value", TEXT_LIMIT, Origin.PROTOCOL),
        ),
        "TSPARMCD",
        "TSSEQ",
    ),
    reference_data=True,
)

_TRIAL_ELEMENT = (
    _text("ETCD", "Element Code", 8, Origin.PROTOCOL, mandatory=True),
    _text("ELEMENT", "Description of Element", 40, Origin.PROTOCOL, mandatory=True),
)

TA = DatasetSpec(
    "TA",
    "Trial Arms",
    "TRIAL DESIGN",
    "One record per planned Element per Arm",
    _trial_keyed(
        (
            *_trial_head(),
            _text("ARMCD", "Planned Arm Code", 8, Origin.PROTOCOL, mandatory=True),
            _text("ARM", "Description of Planned Arm", 40, Origin.PROTOCOL, mandatory=True),
            _number(
                "TAETORD", "Planned Order of Element within Arm", SdtmType.INTEGER, Origin.PROTOCOL, mandatory=True
            ),
            *_TRIAL_ELEMENT,
            _text("TABRANCH", "Branch", TEXT_LIMIT, Origin.PROTOCOL),
            _text("EPOCH", "Epoch", 20, Origin.PROTOCOL, mandatory=True, codelist="CL.EPOCH"),
        ),
        "ARMCD",
        "TAETORD",
    ),
    reference_data=True,
)

TE = DatasetSpec(
    "TE",
    "Trial Elements",
    "TRIAL DESIGN",
    "One record per planned Element",
    _trial_keyed(
        (
            *_trial_head(),
            *_TRIAL_ELEMENT,
            _text("TESTRL", "Rule for Start of Element", TEXT_LIMIT, Origin.PROTOCOL, mandatory=True),
            _text("TEENRL", "Rule for End of Element", TEXT_LIMIT, Origin.PROTOCOL),
            _text("TEDUR", "Planned Duration of Element", 10, Origin.PROTOCOL),
        ),
        "ETCD",
    ),
    reference_data=True,
)

# Every dataset, in the order a reviewer reads them: trial design, special purpose, then the classes.
DATASETS: tuple[DatasetSpec, ...] = (TS, TA, TE, DM, SV, EX, CM, AE, DS, LB, VS)
SUBJECT_DATASETS: tuple[DatasetSpec, ...] = tuple(d for d in DATASETS if not d.reference_data)
DATASETS_BY_NAME: MappingProxyType[str, DatasetSpec] = MappingProxyType({d.name: d for d in DATASETS})


def row_values(spec: DatasetSpec, row: Mapping[str, object]) -> list[object]:
    """The row's values in the dataset's variable order (None for a variable the row leaves out).

    A name that is not a variable of the dataset is a derivation bug (raised as such); a text longer
    than its declared length is refused naming the dataset, the variable and the subject, since
    SDTM keeps character values within 200 characters and cutting a verbatim text would change it.
    """
    if not spec.name_set.issuperset(row):
        raise ValueError(f"{spec.name}: not variables of the dataset: {sorted(set(row) - spec.name_set)}")
    values = [row.get(name) for name in spec.names]
    for position, variable in spec.text_lengths:
        value = values[position]
        if isinstance(value, str) and len(value) > (variable.length or 0):
            raise Refused(
                "{item}: the value of subject {subject} has {length} characters; SDTM allows {maximum}. "
                "Shorten the source text and export again.",
                code="sdtm_value_too_long",
                item=f"{spec.name}.{variable.name}",
                subject=str(row.get("USUBJID") or ""),
                length=len(value),
                maximum=variable.length,
            )
    return values
