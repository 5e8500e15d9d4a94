"""Vocabularies: diagnoses, procedures, leakage, complications, and the shared enum parser."""

from __future__ import annotations

import enum
import math
from typing import Any

import pytest

from spinewatch.core import _enum
from spinewatch.core.complications import ComplicationClass, ComplicationError
from spinewatch.core.diagnoses import Diagnosis, DiagnosisError, DiagnosisKind, PrimaryTumour
from spinewatch.core.errors import InputError
from spinewatch.core.leakage import CementLeakage, LeakageError, LeakageSite, LeakageType
from spinewatch.core.levels import ALL_LEVELS, LevelError, Region, VertebralLevel
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

L = VertebralLevel

# (enum, its module error, the exact values of the brief)
VOCABULARIES: list[tuple[type[enum.Enum], type[InputError], set[str]]] = [
    (
        DiagnosisKind,
        DiagnosisError,
        {"myeloma", "metastasis", "osteoporotic_fracture", "haemangioma", "disc_herniation"},
    ),
    (PrimaryTumour, DiagnosisError, {"lung", "breast", "thyroid", "kidney", "prostate", "other"}),
    (
        ProcedureType,
        ProcedureError,
        {
            "vertebroplasty",
            "kyphoplasty",
            "cementoplasty",
            "ablation_vertebroplasty",
            "laser_disc_decompression",
        },
    ),
    (AblationModality, ProcedureError, {"radiofrequency", "microwave", "cryo"}),
    (
        CementoplastySite,
        ProcedureError,
        {"pelvis", "acetabulum", "sacrum", "femur", "humerus", "rib", "sternum", "other"},
    ),
    (
        Approach,
        ProcedureError,
        {"transpedicular", "parapedicular", "anterolateral", "transoral", "posterolateral"},
    ),
    (Guidance, ProcedureError, {"fluoroscopy", "ct", "ct_fluoroscopy"}),
    (Anaesthesia, ProcedureError, {"local", "local_with_sedation", "general"}),
    (LeakageType, LeakageError, {"B", "S", "C", "D"}),
    (
        LeakageSite,
        LeakageError,
        {"epidural", "foraminal", "paravertebral", "intradiscal", "venous", "pulmonary", "other"},
    ),
    (ComplicationClass, ComplicationError, {"A", "B", "C", "D", "E", "F"}),
]
MEMBERS = [(cls, err, m) for cls, err, _ in VOCABULARIES for m in cls]


@pytest.mark.parametrize(("enum_cls", "error", "values"), VOCABULARIES)
def test_values_as_specified(
    enum_cls: type[enum.Enum], error: type[InputError], values: set[str]
) -> None:
    assert {m.value for m in enum_cls} == values


@pytest.mark.parametrize(("enum_cls", "error", "member"), MEMBERS)
def test_parse_member_value_name_any_case(
    enum_cls: Any, error: type[InputError], member: enum.Enum
) -> None:
    assert enum_cls.parse(member) is member
    assert enum_cls.parse(member.value) is member
    assert enum_cls.parse(f"  {member.value.upper()} ") is member
    assert enum_cls.parse(member.name.lower()) is member
    assert enum_cls.parse(member.name.replace("_", "-").title()) is member
    assert isinstance(member.label, str) and member.label  # type: ignore[attr-defined]


@pytest.mark.parametrize(("enum_cls", "error", "values"), VOCABULARIES)
@pytest.mark.parametrize("bad", ["", "zzz", "  ", 3, None, True])
def test_parse_rejects_naming_value_and_choices(
    enum_cls: Any, error: type[InputError], values: set[str], bad: object
) -> None:
    with pytest.raises(error) as info:
        enum_cls.parse(bad)
    message = str(info.value)
    assert repr(bad) in message
    assert all(repr(v) in message for v in values)
    assert isinstance(info.value, ValueError)


def test_parse_enum_helper_generic() -> None:
    class Colour(enum.Enum):
        DARK_RED = "dark-red"
        TWO = 2

    assert _enum.parse_enum(Colour, "Dark Red", what="colour") is Colour.DARK_RED
    assert _enum.parse_enum(Colour, "dark_red", what="colour") is Colour.DARK_RED
    assert _enum.parse_enum(Colour, 2, what="colour") is Colour.TWO
    assert _enum.parse_enum(Colour, "2", what="colour") is Colour.TWO
    with pytest.raises(InputError, match=r"colour 2\.0 is not recognised; expected one of "):
        _enum.parse_enum(Colour, 2.0, what="colour")
    with pytest.raises(LevelError, match="colour 'blue'"):
        _enum.parse_enum(Colour, "blue", what="colour", error=LevelError)
    # A member of another enum is not silently accepted by value.
    with pytest.raises(ProcedureError):
        Guidance.parse(AblationModality.CRYO)
    assert _enum.normalise_token("  CT -- Fluoroscopy ") == "ct_fluoroscopy"


# -- diagnoses ---------------------------------------------------------------------------------


def test_diagnosis_primary_required_iff_metastasis() -> None:
    d = Diagnosis(DiagnosisKind.METASTASIS, PrimaryTumour.BREAST)
    assert d.label == "Metastasis (breast)" and d.high_risk_for_collapse
    assert Diagnosis.parse("myeloma").label == "Myeloma"
    assert Diagnosis.parse("MYELOMA", "").primary is None
    assert Diagnosis.parse("metastasis", " Kidney ").primary is PrimaryTumour.KIDNEY
    assert Diagnosis("osteoporotic_fracture").label == "Osteoporotic fracture"  # type: ignore[arg-type]
    with pytest.raises(DiagnosisError, match=r"'metastasis' needs a primary.*'lung'"):
        Diagnosis.parse("metastasis")
    with pytest.raises(DiagnosisError, match="primary tumour 'lung' given for diagnosis 'myeloma'"):
        Diagnosis.parse("myeloma", "lung")
    with pytest.raises(DiagnosisError, match="primary tumour 'liver'"):
        Diagnosis.parse("metastasis", "liver")


@pytest.mark.parametrize("kind", list(DiagnosisKind))
def test_high_risk_for_collapse(kind: DiagnosisKind) -> None:
    primary = PrimaryTumour.OTHER if kind is DiagnosisKind.METASTASIS else None
    expected = kind in (DiagnosisKind.MYELOMA, DiagnosisKind.METASTASIS)
    assert Diagnosis(kind, primary).high_risk_for_collapse is expected


# -- procedures --------------------------------------------------------------------------------

CERVICAL = [lv for lv in ALL_LEVELS if lv.region is Region.CERVICAL]


@pytest.mark.parametrize("level", ALL_LEVELS)
def test_approach_allowed_at_every_level(level: VertebralLevel) -> None:
    cervical = level.region is Region.CERVICAL
    assert Approach.ANTEROLATERAL.allowed_at(level) is cervical
    assert Approach.POSTEROLATERAL.allowed_at(level) is cervical
    assert Approach.TRANSORAL.allowed_at(level) is (level in (L.C1, L.C2))
    assert Approach.TRANSPEDICULAR.allowed_at(level) is (not cervical)
    assert Approach.PARAPEDICULAR.allowed_at(str(level)) is (not cervical)


def test_approach_allowed_at_rejects_non_level() -> None:
    with pytest.raises(LevelError, match="'C0'"):
        Approach.TRANSORAL.allowed_at("C0")


def test_treated_level_valid_and_coerced() -> None:
    tl = TreatedLevel("vertebrae_C2", "Anterolateral", 13, 2)  # type: ignore[arg-type]
    assert tl.level is L.C2 and tl.approach is Approach.ANTEROLATERAL
    assert tl.cement_volume_ml == 2.0 and isinstance(tl.cement_volume_ml, float)
    ab = TreatedLevel(
        L.T8,
        Approach.TRANSPEDICULAR,
        needle_gauge=10,
        cement_volume_ml=15,
        ablation="microwave",  # type: ignore[arg-type]
        ablation_power_w=60,
        ablation_duration_s=300,
    )
    assert ab.ablation is AblationModality.MICROWAVE and ab.ablation_power_w == 60.0
    cryo = TreatedLevel(L.L3, Approach.PARAPEDICULAR, 11, 0.5, AblationModality.CRYO)
    assert cryo.ablation_power_w is None


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"level": "L9"}, "level: vertebral level 'L9'"),
        ({"approach": "lateral"}, "approach 'lateral'"),
        ({"approach": "transoral"}, "approach 'transoral' is not used at level L1"),
        ({"level": "C5", "approach": "transpedicular"}, "'transpedicular' is not used at level C5"),
        ({"needle_gauge": 7}, "needle_gauge 7 .*8 to 22"),
        ({"needle_gauge": 23}, "needle_gauge 23"),
        ({"needle_gauge": 11.0}, "needle_gauge 11.0"),
        ({"needle_gauge": True}, "needle_gauge True"),
        ({"cement_volume_ml": 0}, "cement_volume_ml 0 "),
        ({"cement_volume_ml": -1.0}, "cement_volume_ml -1.0"),
        ({"cement_volume_ml": 15.01}, "cement_volume_ml 15.01 .*at most 15 ml"),
        ({"cement_volume_ml": math.nan}, "cement_volume_ml nan"),
        ({"cement_volume_ml": "4"}, "cement_volume_ml '4'"),
        ({"ablation": "laser"}, "ablation modality 'laser'"),
        ({"ablation_power_w": 50}, "ablation_power_w 50 given without an ablation"),
        ({"ablation_duration_s": 60}, "ablation_duration_s 60 given without"),
        ({"ablation": "radiofrequency", "ablation_power_w": 0}, "ablation_power_w 0 "),
        (
            {"ablation": "radiofrequency", "ablation_duration_s": math.inf},
            "ablation_duration_s inf",
        ),
    ],
)
def test_treated_level_rejects(kwargs: dict[str, Any], match: str) -> None:
    fields: dict[str, Any] = {
        "level": "L1",
        "approach": "transpedicular",
        "needle_gauge": 11,
        "cement_volume_ml": 3.0,
    }
    fields.update(kwargs)
    with pytest.raises(ProcedureError, match=match):
        TreatedLevel(**fields)


@pytest.mark.parametrize(
    ("text", "upper", "lower"),
    [
        ("L4-L5", L.L4, L.L5),
        ("L4/L5", L.L4, L.L5),
        ("l4-5", L.L4, L.L5),
        ("L5-S1", L.L5, L.S1),
        (" C5 - C6 ", L.C5, L.C6),
        ("T12-L1", L.T12, L.L1),
        ("T12-T13", L.T12, L.T13),
        ("T13-L1", L.T13, L.L1),
        ("L5-L6", L.L5, L.L6),
        ("L6-S1", L.L6, L.S1),
    ],
)
def test_disc_level_parse(text: str, upper: VertebralLevel, lower: VertebralLevel) -> None:
    disc = DiscLevel.parse(text)
    assert (disc.upper, disc.lower) == (upper, lower)
    assert str(disc) == f"{upper}-{lower}"


@pytest.mark.parametrize("text", ["L5-L4", "L3-L5", "L4", "L4-", "L4-L9", "T11-L1", "", "L4 L5"])
def test_disc_level_rejects(text: str) -> None:
    with pytest.raises(ProcedureError) as info:
        DiscLevel.parse(text)
    assert text.strip() in str(info.value) or repr(text) in str(info.value)


def _tl(level: str, ablation: str | None = None) -> TreatedLevel:
    return TreatedLevel(level, "transpedicular", 11, 3.0, ablation)  # type: ignore[arg-type]


def test_validate_procedure_accepts() -> None:
    assert validate_procedure("vertebroplasty", treated_levels=[_tl("L1"), _tl("L2")]) is (
        ProcedureType.VERTEBROPLASTY
    )
    assert validate_procedure("kyphoplasty", treated_levels=[_tl("T12")])
    assert validate_procedure("ablation_vertebroplasty", treated_levels=[_tl("L3", "cryo")])
    assert validate_procedure("cementoplasty", site="acetabulum")
    assert validate_procedure("laser_disc_decompression", disc="L4-L5")


@pytest.mark.parametrize(
    ("ptype", "kwargs", "match"),
    [
        ("vertebroplasty", {}, "needs at least one treated level"),
        ("vertebroplasty", {"treated_levels": [_tl("L1"), _tl("l1")]}, "L1 is treated twice"),
        ("vertebroplasty", {"treated_levels": [_tl("L1", "microwave")]}, "ablation 'microwave'"),
        ("vertebroplasty", {"treated_levels": [_tl("L1")], "site": "femur"}, "site 'femur'"),
        ("ablation_vertebroplasty", {"treated_levels": [_tl("L1")]}, "needs an ablation"),
        ("cementoplasty", {}, "needs a cementoplasty site"),
        ("cementoplasty", {"site": "pelvis", "treated_levels": [_tl("L1")]}, r"\['L1'\]"),
        ("cementoplasty", {"site": "skull"}, "cementoplasty site 'skull'"),
        ("laser_disc_decompression", {}, "needs a disc level"),
        ("kyphoplasty", {"treated_levels": [_tl("L1")], "disc": "L1-L2"}, "disc level L1-L2"),
        ("laser_disc_decompression", {"disc": "L4-L5", "treated_levels": [_tl("L4")]}, "L4"),
        ("sacroplasty", {}, "procedure type 'sacroplasty'"),
        ("vertebroplasty", {"treated_levels": ["L1"]}, "'L1' is not a TreatedLevel"),
    ],
)
def test_validate_procedure_rejects(ptype: str, kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ProcedureError, match=match):
        validate_procedure(ptype, **kwargs)


def test_procedure_type_flags() -> None:
    assert [p for p in ProcedureType if p.treats_vertebrae] == [
        ProcedureType.VERTEBROPLASTY,
        ProcedureType.KYPHOPLASTY,
        ProcedureType.ABLATION_VERTEBROPLASTY,
    ]
    assert [p for p in ProcedureType if p.requires_site] == [ProcedureType.CEMENTOPLASTY]
    assert [p for p in ProcedureType if p.at_disc] == [ProcedureType.LASER_DISC_DECOMPRESSION]
    assert Guidance.parse("CT-fluoroscopy").label == "CT-fluoroscopy"


# -- leakage and complications -----------------------------------------------------------------


def test_cement_leakage() -> None:
    leak = CementLeakage("b", "Epidural", True)  # type: ignore[arg-type]
    assert leak.type is LeakageType.B and leak.site is LeakageSite.EPIDURAL
    assert leak.label == "Type B (basivertebral vein), epidural, symptomatic"
    assert leak.site.threatens_neural_structures
    assert not LeakageSite.PULMONARY.threatens_neural_structures
    assert LeakageType.D.description == "intradiscal"
    with pytest.raises(LeakageError, match="symptomatic 'no'"):
        CementLeakage(LeakageType.S, LeakageSite.VENOUS, "no")  # type: ignore[arg-type]
    with pytest.raises(LeakageError, match="cement leakage type 'E'"):
        CementLeakage("E", "venous", False)  # type: ignore[arg-type]


@pytest.mark.parametrize("member", list(ComplicationClass))
def test_complication_classes(member: ComplicationClass) -> None:
    assert member.is_major is (member.value in ("C", "D", "E", "F"))
    assert member.description
    assert ComplicationClass.parse(f"SIR {member.value.lower()}") is member
    assert ComplicationClass.parse(f"sir-{member.value}") is member
    assert ("major" in member.label) is member.is_major


def test_complication_descriptions_follow_sir() -> None:
    assert ComplicationClass.F.description == "Death"
    assert "Permanent" in ComplicationClass.E.description
    assert "48 h" in ComplicationClass.C.description
    with pytest.raises(ComplicationError, match="'SIR G'"):
        ComplicationClass.parse("SIR G")
    with pytest.raises(ComplicationError, match="'SIR'"):
        ComplicationClass.parse("SIR")


def test_numpy_scalars_accepted_and_stored_as_builtins() -> None:
    np = pytest.importorskip("numpy")
    tl = TreatedLevel(L.L2, Approach.TRANSPEDICULAR, np.int64(11), np.float32(3.5))
    assert type(tl.needle_gauge) is int and tl.needle_gauge == 11
    assert type(tl.cement_volume_ml) is float and tl.cement_volume_ml == 3.5
