"""spinewatch.core -- the clinical concepts as types (standard library only).

Levels and label conventions, Genant grading, SINS, pain scores, the follow-up protocol and the
vocabularies of diagnoses, procedures, cement leakage and complications. Every value is parsed
once at the boundary into these types; a wrong value raises an :class:`InputError` subclass
whose message names it and what was expected.
"""

from spinewatch.core.complications import ComplicationClass, ComplicationError
from spinewatch.core.conventions import (
    ConventionError,
    LabelConvention,
    detect_convention,
    label_for_level,
    level_for_label,
    level_from_totalsegmentator_name,
    totalsegmentator_name,
    vertebra_labels,
)
from spinewatch.core.diagnoses import Diagnosis, DiagnosisError, DiagnosisKind, PrimaryTumour
from spinewatch.core.errors import InputError
from spinewatch.core.genant import (
    DeformityType,
    GenantAssessment,
    GenantError,
    GenantGrade,
    assess_vertebra,
    height_loss_pct,
    reference_height_mm,
)
from spinewatch.core.leakage import CementLeakage, LeakageError, LeakageSite, LeakageType
from spinewatch.core.level_check import VARIANTS, LevelCheckError, renamed_levels
from spinewatch.core.levels import (
    ALL_LEVELS,
    STANDARD_LEVELS,
    LevelError,
    Region,
    SinsLocation,
    VertebralLevel,
    neighbours,
    parse_level,
)
from spinewatch.core.pain import PainScore, PainScoreError, is_responder, pain_change
from spinewatch.core.procedures import (
    AblationModality,
    Anaesthesia,
    Approach,
    CementoplastySite,
    DiscLevel,
    Guidance,
    ProcedureError,
    ProcedureType,
    TreatedLevel,
    validate_procedure,
)
from spinewatch.core.protocol import (
    DEFAULT_PROTOCOL,
    FollowUpProtocol,
    ProtocolError,
    ScheduledVisit,
    TimePoint,
)
from spinewatch.core.sins import (
    SinsAlignment,
    SinsBoneLesion,
    SinsCategory,
    SinsCollapse,
    SinsError,
    SinsImagingPart,
    SinsPain,
    SinsPosterolateral,
    SinsScore,
    sins_collapse_from,
)

__all__ = [
    "ALL_LEVELS",
    "DEFAULT_PROTOCOL",
    "STANDARD_LEVELS",
    "VARIANTS",
    "AblationModality",
    "Anaesthesia",
    "Approach",
    "CementLeakage",
    "CementoplastySite",
    "ComplicationClass",
    "ComplicationError",
    "ConventionError",
    "DeformityType",
    "Diagnosis",
    "DiagnosisError",
    "DiagnosisKind",
    "DiscLevel",
    "FollowUpProtocol",
    "GenantAssessment",
    "GenantError",
    "GenantGrade",
    "Guidance",
    "InputError",
    "LabelConvention",
    "LeakageError",
    "LeakageSite",
    "LeakageType",
    "LevelCheckError",
    "LevelError",
    "PainScore",
    "PainScoreError",
    "PrimaryTumour",
    "ProcedureError",
    "ProcedureType",
    "ProtocolError",
    "Region",
    "ScheduledVisit",
    "SinsAlignment",
    "SinsBoneLesion",
    "SinsCategory",
    "SinsCollapse",
    "SinsError",
    "SinsImagingPart",
    "SinsLocation",
    "SinsPain",
    "SinsPosterolateral",
    "SinsScore",
    "TimePoint",
    "TreatedLevel",
    "VertebralLevel",
    "assess_vertebra",
    "detect_convention",
    "height_loss_pct",
    "is_responder",
    "label_for_level",
    "level_for_label",
    "level_from_totalsegmentator_name",
    "neighbours",
    "pain_change",
    "parse_level",
    "reference_height_mm",
    "renamed_levels",
    "sins_collapse_from",
    "totalsegmentator_name",
    "validate_procedure",
    "vertebra_labels",
]
