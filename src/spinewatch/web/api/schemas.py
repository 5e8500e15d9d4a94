"""The JSON API's schemas: separate INPUT, UPDATE and OUTPUT schemas (house style 7).

- ``...In``: what a client sends to create something. Vocabularies are the clinical core's enums
  (their values: ``"vertebroplasty"``, ``"L1"``, ``"B"`` ...), bounds come from the core's
  constants, so the OpenAPI document states the same rules the core enforces; the registry
  services check everything again (a value the schema allows but the programme refuses -- a date
  in the future, an approach not used at that level -- is a 400 naming the value).
- ``...Update``: what a client sends to change something: ``expected_version`` (the version it
  read) and only the fields to change. A field left out is unchanged; a field sent as ``null``
  is set to null where that means something (``birth_date``, ``cementoplasty_site``,
  ``disc_level``) and refused (400) where it does not.
- ``...Out``: what the API returns, built from the registry rows by :mod:`._present`; never the
  ORM models themselves.

Text fields refuse the NUL character (PostgreSQL cannot store it) and have a maximum length, in
the schema itself, so that no request the schema allows can fail in the database.
Units: ``_ml``, ``_mm``, ``_hu``, ``_pct``, ``_w``, ``_s`` as in the registry; dates are ISO
calendar dates (``YYYY-MM-DD``), times ISO 8601 with time zone.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from ninja import Field, Schema
from pydantic import StringConstraints

from spinewatch.core.complications import ComplicationClass
from spinewatch.core.diagnoses import DiagnosisKind, PrimaryTumour
from spinewatch.core.follow_up_outcome import VisitOutcome
from spinewatch.core.leakage import LeakageSite, LeakageType
from spinewatch.core.levels import VertebralLevel
from spinewatch.core.pain import PAIN_MAX, PAIN_MIN
from spinewatch.core.procedures import (
    MAX_CEMENT_VOLUME_ML,
    NEEDLE_GAUGE_RANGE,
    AblationModality,
    Anaesthesia,
    Approach,
    BiopsyResult,
    CementoplastySite,
    CementType,
    Guidance,
    PedicleAccess,
    ProcedureType,
)
from spinewatch.registry.choices import AnalgesicUse, Decision, Sex

__all__ = [
    "MAX_ID",
    "MAX_OFFSET",
    "NO_NUL",
    "ComplicationIn",
    "ComplicationOut",
    "ConflictOut",
    "DeidentifiedPatientPageOut",
    "DiagnosisIn",
    "DiagnosisOut",
    "ErrorOut",
    "FindingDecisionUpdate",
    "FindingOut",
    "FollowUpOut",
    "FollowUpRecordIn",
    "FollowUpRecordOut",
    "IdentityIn",
    "IdentityOut",
    "IdentityUpdate",
    "ImagingStudyOut",
    "ImagingStudySummaryOut",
    "LeakageIn",
    "LeakageOut",
    "OutcomeFiltersIn",
    "OutcomeTableOut",
    "PatientIn",
    "PatientOut",
    "PatientPageOut",
    "PatientSummaryOut",
    "PatientUpdate",
    "ProcedureIn",
    "ProcedureOut",
    "ProcedureUpdate",
    "SearchText",
    "TimePointOut",
    "TreatedLevelIn",
    "TreatedLevelOut",
    "ValidationErrorOut",
    "VisitOutcomeIn",
    "VoidIn",
]

#: Largest id accepted in a path (a signed 64-bit integer, the database's key type).
MAX_ID = 2**63 - 1
#: Largest pagination offset accepted.
MAX_OFFSET = 1_000_000
#: Regular expression of text without the NUL character.
NO_NUL = r"^[^\x00]*$"


def _text(max_length: int) -> Any:
    """``str`` of at most ``max_length`` characters without NUL."""
    return Annotated[str, StringConstraints(max_length=max_length, pattern=NO_NUL)]


Name = _text(150)
ShortText = _text(64)
PhoneText = _text(40)
EmailText = _text(254)
LongText = _text(10_000)
SearchText = _text(100)


Version = Annotated[int, Field(ge=1, le=2**31 - 1, description="the version the client read")]
StudyIdText = Annotated[
    str,
    StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$"),
]
Username = Annotated[str, StringConstraints(min_length=1, max_length=150, pattern=NO_NUL)]
Score = Annotated[float, Field(ge=PAIN_MIN, le=PAIN_MAX, description="pain score (VAS) 0-10")]
Gauge = Annotated[
    int,
    Field(ge=NEEDLE_GAUGE_RANGE[0], le=NEEDLE_GAUGE_RANGE[1], description="needle gauge (G)"),
]
CementMl = Annotated[
    float, Field(gt=0, le=MAX_CEMENT_VOLUME_ML, description="cement volume of the level (ml)")
]
Positive = Annotated[float, Field(gt=0, le=1e6)]
DiscText = Annotated[
    str, StringConstraints(min_length=1, max_length=16, pattern=NO_NUL), Field(examples=["L4-L5"])
]


# --- errors ---------------------------------------------------------------------------------


class ErrorOut(Schema):
    """An error: ``detail`` says what was refused and why (naming the value)."""

    detail: str


class ConflictOut(Schema):
    """409: the record changed since the client read it; re-read it and redo the edit."""

    detail: str
    current_version: int
    expected_version: int


class ValidationErrorOut(Schema):
    """422: the request does not match the schema (one entry per problem, pydantic style)."""

    detail: list[dict[str, Any]]


# --- patients --------------------------------------------------------------------------------


class IdentityIn(Schema):
    """Who the patient is (identifiable data, kept apart from the clinical record)."""

    family_name: Name
    given_name: Name
    hospital_number: ShortText
    birth_date: dt.date | None = None
    sex: Sex = Sex.UNKNOWN
    phone: PhoneText = ""
    email: EmailText = ""


class PatientIn(Schema):
    """A new patient; ``study_id`` is generated (``SW-000123``) when left out."""

    study_id: StudyIdText | None = None
    case_manager: Username | None = Field(
        None, description="username of the patient's case manager (a user with that role)"
    )
    identity: IdentityIn | None = None


class PatientUpdate(Schema):
    """Assign (or, with null, remove) the patient's case manager."""

    expected_version: Version
    case_manager: Username | None


class IdentityUpdate(Schema):
    """Change the identity; only the fields given change (the patient's version is checked)."""

    expected_version: Version
    family_name: Name | None = None
    given_name: Name | None = None
    hospital_number: ShortText | None = None
    birth_date: dt.date | None = None
    sex: Sex | None = None
    phone: PhoneText | None = None
    email: EmailText | None = None


class DiagnosisIn(Schema):
    """A diagnosis; ``primary_tumour`` is required for a metastasis and refused otherwise."""

    kind: DiagnosisKind
    primary_tumour: PrimaryTumour | None = None
    diagnosed_on: dt.date | None = None
    notes: LongText = ""


class IdentityOut(Schema):
    family_name: str
    given_name: str
    hospital_number: str
    birth_date: dt.date | None
    sex: str
    phone: str
    email: str


class DiagnosisOut(Schema):
    id: int
    kind: str
    primary_tumour: str | None
    diagnosed_on: dt.date | None
    notes: str


class PatientSummaryOut(Schema):
    """One line of the patient list (identifiable)."""

    id: int
    study_id: str
    family_name: str | None
    given_name: str | None
    hospital_number: str | None
    birth_date: dt.date | None
    case_manager: str | None = Field(description="username of the case manager")
    version: int


class PatientOut(Schema):
    """A patient with identity and diagnoses (identifiable)."""

    id: int
    study_id: str
    case_manager: str | None
    created_at: dt.datetime
    version: int
    identity: IdentityOut | None
    diagnoses: list[DiagnosisOut]


class PatientPageOut(Schema):
    """A page of the patient list: ``count`` matching patients, ``items`` from ``offset``."""

    count: int
    limit: int
    offset: int
    items: list[PatientSummaryOut]


class DeidentifiedPatientPageOut(Schema):
    """A page of de-identified patients (``spinewatch.registry.deid.deidentified_patient``)."""

    count: int
    limit: int
    offset: int
    items: list[dict[str, Any]]


# --- imaging ---------------------------------------------------------------------------------


class FindingOut(Schema):
    """One vertebra of an analysed study (heights mm, HU, ml, fractions 0..1)."""

    id: int
    level: str
    height_anterior_mm: float | None
    height_middle_mm: float | None
    height_posterior_mm: float | None
    reference_height_mm: float | None
    genant_grade: int | None
    deformity: str | None
    height_loss_pct: float | None
    truncated: bool
    trabecular_hu_median: float | None
    lytic_volume_ml: float | None
    lytic_fraction: float | None
    posterior_wall_involved: bool | None
    pedicle_left_involved: bool | None
    pedicle_right_involved: bool | None
    collapse_risk: str | None = Field(
        description="low, not_assessable (something needed to call it low was not measured: "
        "see reasons), moderate or high"
    )
    reasons: list[str]
    sins_imaging_points: int | None
    treat_signal: bool | None = Field(
        description="the comparison with the prior analysed study says treat before collapse; "
        "null when not compared"
    )
    treat_signal_reasons: list[str]
    confidence: str | None = Field(description="high, medium or low: trust in the findings")
    confidence_reasons: list[str]
    diffuse_infiltration: bool | None = Field(
        default=None,
        description="the body far below the patient's own other vertebrae (the myeloma pattern); "
        "null when not assessable or analysed before the finding existed",
    )
    diffuse_infiltration_hu_below_own: float | None = Field(
        default=None, description="HU below the patient's own other vertebrae (median)"
    )
    decision: str
    decision_note: str
    version: int


class ImagingStudySummaryOut(Schema):
    id: int
    patient_id: int
    study_date: dt.date
    modality: str = Field(description="ct or mr; set from the analysed file once analysed")
    contrast_phase: str | None = Field(
        default=None,
        description="a CT's contrast phase from its analysis (native, arterial, portal_venous, "
        "delayed, contrast_unknown_phase); null for an MRI or before the analysis",
    )
    acquisition: str | None = Field(
        default=None,
        description="one line: modality, contrast phase and where they came from, e.g. "
        '"CT, portal-venous (DICOM SeriesDescription \'ABD PV\')" or "MRI: geometry only"',
    )
    description: str
    analysed_at: dt.datetime | None
    version: int
    high_risk_levels: list[str] = Field(description="levels rated high collapse risk")
    not_assessable_levels: list[str] = Field(
        description="levels whose collapse risk could not be assessed"
    )
    treat_signal_levels: list[str] = Field(
        description="levels with the signal to treat before collapse (vs the prior study)"
    )


class ImagingStudyOut(ImagingStudySummaryOut):
    """A study with its analysis report (``SpineReport`` JSON) and per-vertebra findings."""

    study_instance_uid: str
    series_instance_uid: str
    report: dict[str, Any] | None
    findings: list[FindingOut]


class FindingDecisionUpdate(Schema):
    """The team's decision about one vertebra."""

    expected_version: Version
    decision: Decision
    note: LongText = ""


# --- procedures ------------------------------------------------------------------------------


class TreatedLevelIn(Schema):
    """One treated vertebra; ablation settings only with an ablation modality."""

    level: VertebralLevel
    approach: Approach
    needle_gauge: Gauge
    cement_volume_ml: CementMl
    ablation_modality: AblationModality | None = None
    ablation_power_w: Positive | None = None
    ablation_duration_s: Positive | None = None
    access: PedicleAccess | None = None
    biopsy: bool = False
    biopsy_result: BiopsyResult | None = None


class LeakageIn(Schema):
    """A cement leakage (Yeom type B/S/C/D, site); ``level``: the treated level it came from."""

    leakage_type: LeakageType
    site: LeakageSite
    symptomatic: bool = False
    level: VertebralLevel | None = None


class ComplicationIn(Schema):
    """A complication graded by the SIR classes A-F."""

    sir_class: ComplicationClass
    description: LongText = ""
    occurred_on: dt.date | None = None


class ProcedureIn(Schema):
    """One treatment session; saving it creates the follow-up schedule of the protocol.

    ``operator`` defaults to the authenticated user's name.
    """

    performed_on: dt.date
    procedure_type: ProcedureType
    guidance: Guidance
    anaesthesia: Anaesthesia
    day_case: bool
    levels: list[TreatedLevelIn] = Field(default_factory=list, max_length=30)
    leakages: list[LeakageIn] = Field(default_factory=list, max_length=60)
    complications: list[ComplicationIn] = Field(default_factory=list, max_length=30)
    operator: Name = ""
    cementoplasty_site: CementoplastySite | None = None
    disc_level: DiscText | None = None
    notes: LongText = ""
    cement_type: CementType | None = None
    fluoroscopy_time_s: Annotated[float, Field(ge=0, le=1e6)] | None = None
    dose_area_product_gycm2: Annotated[float, Field(ge=0, le=1e6)] | None = None


class ProcedureUpdate(Schema):
    """Correct a procedure; ``levels``, ``leakages`` and ``complications`` replace the lists."""

    expected_version: Version
    performed_on: dt.date | None = None
    procedure_type: ProcedureType | None = None
    guidance: Guidance | None = None
    anaesthesia: Anaesthesia | None = None
    day_case: bool | None = None
    operator: Name | None = None
    cementoplasty_site: CementoplastySite | None = None
    disc_level: DiscText | None = None
    notes: LongText | None = None
    levels: list[TreatedLevelIn] | None = Field(None, max_length=30)
    leakages: list[LeakageIn] | None = Field(None, max_length=60)
    complications: list[ComplicationIn] | None = Field(None, max_length=30)
    cement_type: CementType | None = None
    fluoroscopy_time_s: Annotated[float, Field(ge=0, le=1e6)] | None = None
    dose_area_product_gycm2: Annotated[float, Field(ge=0, le=1e6)] | None = None


class VoidIn(Schema):
    """Void a record entered in error (it stays, struck through, out of lists and results)."""

    expected_version: Version
    reason: Annotated[str, StringConstraints(min_length=1, max_length=500, pattern=NO_NUL)]


class VisitOutcomeIn(Schema):
    """Why a visit has no value; died / lost / withdrew also close the later open visits."""

    expected_version: Version
    outcome: VisitOutcome
    outcome_on: dt.date


class TreatedLevelOut(Schema):
    level: str
    approach: str
    needle_gauge: int
    cement_volume_ml: float
    ablation_modality: str | None
    ablation_power_w: float | None
    ablation_duration_s: float | None
    access: str | None = None
    biopsy: bool = False
    biopsy_result: str | None = None


class LeakageOut(Schema):
    leakage_type: str
    site: str
    symptomatic: bool
    level: str | None


class ComplicationOut(Schema):
    sir_class: str
    description: str
    occurred_on: dt.date | None


class FollowUpOut(Schema):
    """One scheduled visit; completed when ``completed_on`` is set."""

    id: int
    procedure_id: int
    patient_id: int
    study_id: str
    timepoint: str
    due_date: dt.date
    window_start: dt.date
    window_end: dt.date
    completed_on: dt.date | None
    vas: float | None
    analgesic_use: str | None
    entered_via: str | None
    version: int
    outcome: str | None = None
    outcome_on: dt.date | None = None
    voided: bool = False


class ProcedureOut(Schema):
    id: int
    patient_id: int
    study_id: str
    performed_on: dt.date
    procedure_type: str
    guidance: str | None
    anaesthesia: str | None
    day_case: bool | None
    cementoplasty_site: str | None
    disc_level: str | None
    operator: str
    recorded_via: str
    notes: str
    protocol: str = Field(description="name of the follow-up protocol stored with it")
    version: int
    status: str = "performed"
    cement_type: str | None = None
    fluoroscopy_time_s: float | None = None
    dose_area_product_gycm2: float | None = None
    voided: bool = False
    void_reason: str = ""
    levels: list[TreatedLevelOut]
    leakages: list[LeakageOut]
    complications: list[ComplicationOut]
    follow_ups: list[FollowUpOut]


# --- follow-ups ------------------------------------------------------------------------------


class FollowUpRecordIn(Schema):
    """Complete (or correct) a visit: VAS 0-10 (null: no score taken) and analgesic use."""

    expected_version: Version
    completed_on: dt.date
    vas: Score | None
    analgesic_use: AnalgesicUse | None = None


class FollowUpRecordOut(Schema):
    """The saved visit and warnings (e.g. completed outside its window)."""

    follow_up: FollowUpOut
    warnings: list[str]


# --- outcomes --------------------------------------------------------------------------------


class TimePointOut(Schema):
    """One time point of the outcome table (VAS points; post-operative fields null at baseline)."""

    timepoint: str
    label: str
    n: int
    mean: float | None
    sd: float | None
    median: float | None
    iqr: list[float] | None
    n_paired: int | None = None
    mean_change: float | None = None
    ci95: list[float] | None = None
    p_value: float | None = None
    p_holm: float | None = None
    test: str | None = None
    responders: int | None = None
    responder_pct: float | None = None
    lmm_estimate: float | None
    lmm_se: float | None
    lmm_ci95: list[float] | None
    note: str | None


class OutcomeFiltersIn(Schema):
    """Query of ``GET /api/outcomes``: which procedures' follow-ups make the table (AND)."""

    diagnosis: DiagnosisKind | None = Field(None, description="patients with this diagnosis")
    level: VertebralLevel | None = Field(None, description="procedures treating this level")
    approach: Approach | None = Field(None, description="procedures using this approach")
    procedure_type: ProcedureType | None = Field(None, description="procedures of this type")
    date_from: dt.date | None = Field(None, description="procedures on or after this date")
    date_to: dt.date | None = Field(None, description="procedures on or before this date")
    test: Literal["paired-t", "wilcoxon"] = Field("paired-t", description="test vs baseline")
    mixed_model: bool = Field(True, description="also fit the linear mixed model")


class OutcomeTableOut(Schema):
    """``spinewatch.outcomes.OutcomeTable.to_json_dict()``: the cohort's VAS results."""

    timepoints: list[TimePointOut]
    test: Literal["paired-t", "wilcoxon"]
    n_patients: int
    n_series: int
    protocol: str
    mixed_model: dict[str, Any]
