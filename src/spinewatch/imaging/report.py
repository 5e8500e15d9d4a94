"""The spine report: one record per vertebra, serialised to the JSON contract.

:meth:`SpineReport.to_json_dict` is the contract that ``compare``, ``render``, the registry and the
acceptance checks consume (every key documented in ``docs/report.md``): ``{"scan": {...},
"vertebrae": [...]}`` in cranio-caudal order, world RAS+ mm, ml and HU, floats rounded (0.1 mm,
0.01 ml, 1 HU, 0.1 %, 4 decimals for unit vectors), never NaN (missing values are null). The scan
record carries ``orientation_note`` (a sentence) only when the header's axes disagree with the
anatomy or had to be used for a frame.

Without a CT -- an MRI (geometry only: its signal is not HU) or no image at all -- the density,
lesion and cement fields are null and each vertebra's ``not_assessed`` lists why
(``["MRI: not assessed"]``, ``["No CT: not assessed"]``; empty when they were measured). The
scan record says how the scan was acquired: ``modality`` (``CT``/``MR``), ``contrast_phase``
(``native``, ``arterial``, ``portal_venous``, ``delayed``, ``contrast_unknown_phase``), each with
its ``*_source`` (``dicom``, ``user``, ``detected``, ``assumed``) and ``*_evidence`` (the tag and
value, the detection figures...), and ``density_offset_hu`` (added to native-CT density
thresholds for the phase); :func:`acquisition_summary` puts it in one line.

How the label map was read (:mod:`spinewatch.imaging.label_reading`) is in ``scan``:
``labels_convention`` (``totalsegmentator``, ``totalsegmentator_mr``,
``totalsegmentator_vertebrae_mr``, ``totalsegmentator_vertebrae_body``, ``verse``, ``tptbox`` or
``binary``), ``labels_convention_source`` (``user`` or ``detected``),
``labels_convention_evidence`` (why), ``levels_named_by`` (null, or ``"user: --lowest-level L5"``
when the user named the levels), ``rejected_labels`` (``[{"label", "level", "reason"}]``: labels
named a vertebra that do not look like one for their level; they are not analysed) and
``label_notes`` (endplates merged, pieces split...). A vertebra's ``label`` is its id in the
analysed map -- the VerSe id of its level when the user named the levels.

``diffuse_infiltration`` (true/false/null) says whether the body's trabecular background lies far
below the patient's own other vertebrae (:mod:`spinewatch.imaging.infiltration`; null when not
assessable: no CT, a truncated or cemented body, or fewer than three other whole bodies);
``diffuse_infiltration_hu_below_own`` is the expected minus the measured background (HU; positive
= below its own spine), null likewise.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, TypeAlias, TypeVar, Union

from spinewatch.core.acquisition import (
    SOURCES,
    Acquisition,
    AcquisitionError,
    ContrastPhase,
    Modality,
)
from spinewatch.core.collapse_risk import CollapseRisk, ConfidenceClass
from spinewatch.core.errors import InputError
from spinewatch.core.genant import DeformityType, GenantAssessment, GenantGrade
from spinewatch.core.levels import SinsLocation, VertebralLevel
from spinewatch.core.sins import (
    SinsBoneLesion,
    SinsCollapse,
    SinsImagingPart,
    SinsPosterolateral,
)
from spinewatch.imaging.limits import JsonInputError, check_json_value, current_limits

__all__ = [
    "MAX_MAGNITUDE",
    "NO_IMAGE_NOT_ASSESSED",
    "READABLE_VERSIONS",
    "REPORT_VERSION",
    "CementRecord",
    "ChangeRecord",
    "ComparedWith",
    "ConfidenceRecord",
    "DensityRecord",
    "Frame",
    "GenantRecord",
    "Heights",
    "InfiltrationRecord",
    "JsonValue",
    "LesionRecord",
    "RejectedLabel",
    "ReportFormatError",
    "ReportVersionError",
    "RiskRecord",
    "ScanInfo",
    "SinsImagingRecord",
    "SpineReport",
    "VertebraReport",
    "acquisition_summary",
    "format_text",
]

#: Version of the JSON contract, written as the top-level ``report_version``. Version 1 reports
#: (no such key) are still read. 2: the scan's modality and contrast phase (``scan.modality``,
#: ``scan.contrast_phase`` with their sources and evidence, ``scan.density_offset_hu``); per
#: vertebra ``not_assessed`` (why density, lesion and cement fields are null), ``collapse_risk``
#: may be ``"not_assessable"``, with ``not_measured``, ``confidence``/``confidence_reasons``,
#: ``noise_hu_sd``, and the comparison with a prior report (``treat_signal``,
#: ``treat_signal_reasons``, ``change_flags``; ``scan.compared_with``); how the label map was read
#: (``scan.labels_convention_*``, ``rejected_labels``...), the Genant expected heights and the
#: frame's ``scan.orientation_note``. Keys are only ever added within a version.
REPORT_VERSION = 2

#: The versions :meth:`SpineReport.from_json_dict` reads; any other is refused with
#: :class:`ReportVersionError` (a newer SpineWatch wrote it: this one would misread it).
READABLE_VERSIONS = (1, 2)

#: The reason recorded per vertebra when only a label map was analysed (no image at all).
NO_IMAGE_NOT_ASSESSED = "No CT: not assessed"

#: Largest magnitude a measurement of a report may have (mm, HU, ml, %): far beyond anything a
#: body holds, small enough that differences and percentages stay finite.
MAX_MAGNITUDE = 1e6

#: Any JSON value (what a key this reader does not know may hold; kept as read).
JsonValue: TypeAlias = Union[  # noqa: UP007, RUF036 - a recursive alias needs the string forms
    None, bool, int, float, str, list["JsonValue"], dict[str, "JsonValue"]
]

Vec3 = tuple[float, float, float]
E = TypeVar("E")


class ReportFormatError(InputError):
    """A document that is not a SpineWatch report: names the source, the key path (also in
    ``field``, e.g. ``vertebrae[2].lytic_fraction``) and the value."""


class ReportVersionError(ReportFormatError):
    """A report of a version this SpineWatch cannot read (``version``: the value found)."""

    def __init__(self, message: str, *, version: object, field: str | None = None) -> None:
        super().__init__(message, field=field)
        self.version = version


# -- writing helpers ----------------------------------------------------------------------------


def _r(value: float | None, digits: int) -> float | None:
    if value is None:
        return None
    value = float(value)
    if not math.isfinite(value):
        return None
    out = round(value, digits)
    return 0.0 if out == 0 else out


def _vec(values: Sequence[float] | None, digits: int) -> list[float] | None:
    if values is None:
        return None
    return [_r(float(v), digits) or 0.0 for v in values]


def _ordered(
    full: dict[str, JsonValue],
    keys: tuple[str, ...] | None,
    extra: Mapping[str, JsonValue],
    optional: Iterable[str] = (),
) -> dict[str, JsonValue]:
    """``full`` as written (``keys`` None: every key, ``optional`` ones only when not null) or
    as read (``keys``: the source's keys in its order, unknown ones from ``extra``)."""
    if keys is None:
        skip = {k for k in optional if full.get(k) is None}
        out = {k: v for k, v in full.items() if k not in skip}
        out.update(extra)
        return out
    return {k: (full[k] if k in full else extra[k]) for k in keys if k in full or k in extra}


# -- reading helpers ----------------------------------------------------------------------------


class _Entry:
    """One JSON object being read: typed getters that name ``source: path.key`` on failure and
    treat an absent key as null (reports written before a key existed lack it)."""

    def __init__(self, data: object, path: str, source: str, *, what: str = "an object") -> None:
        if not isinstance(data, Mapping):
            self._raise(source, path, data, what)
        assert isinstance(data, Mapping)
        self.data: Mapping[str, JsonValue] = data
        self.path = path
        self.source = source

    @staticmethod
    def _raise(source: str, path: str, value: object, expected: str) -> None:
        where = f"{source}: {path}" if path else source
        raise ReportFormatError(f"{where}: expected {expected}, got {value!r:.60}", field=path)

    def at(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def fail(self, key: str, expected: str) -> ReportFormatError:
        value = self.data.get(key)
        return ReportFormatError(
            f"{self.source}: {self.at(key)}: expected {expected}, got {value!r:.60}",
            field=self.at(key),
        )

    def keys(self) -> tuple[str, ...]:
        return tuple(str(k) for k in self.data)

    def extra(self, known: Iterable[str]) -> dict[str, JsonValue]:
        known_set = set(known)
        return {str(k): v for k, v in self.data.items() if k not in known_set}

    def number(
        self, key: str, *, low: float = -MAX_MAGNITUDE, high: float = MAX_MAGNITUDE
    ) -> float | None:
        value = self.data.get(key)
        if value is None:
            return None
        if (
            isinstance(value, int | float)
            and not isinstance(value, bool)
            and math.isfinite(value)
            and low <= value <= high
        ):
            return float(value)
        raise self.fail(key, f"a finite number in [{low:g}, {high:g}] or null")

    def integer(self, key: str, *, low: int = 0, high: int = 10**9) -> int | None:
        value = self.data.get(key)
        if value is None:
            return None
        if isinstance(value, int) and not isinstance(value, bool) and low <= value <= high:
            return int(value)
        raise self.fail(key, f"a whole number in [{low}, {high}] or null")

    def flag(self, key: str) -> bool | None:
        value = self.data.get(key)
        if value is None or isinstance(value, bool):
            return value
        raise self.fail(key, "true, false or null")

    def text(self, key: str) -> str | None:
        value = self.data.get(key)
        if value is None or isinstance(value, str):
            return value
        raise self.fail(key, "text or null")

    def texts(self, key: str) -> tuple[str, ...]:
        value = self.data.get(key)
        if value is None:
            return ()
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return tuple(str(v) for v in value)
        raise self.fail(key, "a list of strings")

    def choice(self, key: str, parse: Callable[[str], E], expected: str) -> E | None:
        value = self.data.get(key)
        if value is None:
            return None
        if isinstance(value, str):
            try:
                return parse(value)
            except (InputError, ValueError, KeyError):
                pass
        raise self.fail(key, expected)

    def vec3(self, key: str) -> Vec3 | None:
        value = self.data.get(key)
        if value is None:
            return None
        if (
            isinstance(value, list)
            and len(value) == 3
            and all(
                isinstance(v, int | float)
                and not isinstance(v, bool)
                and math.isfinite(v)
                and abs(v) <= MAX_MAGNITUDE
                for v in value
            )
        ):
            x, y, z = (float(v) for v in value)  # type: ignore[arg-type]
            return (x, y, z)
        raise self.fail(key, "[x, y, z] (finite numbers) or null")

    def child(self, key: str, what: str = "an object or null") -> _Entry | None:
        value = self.data.get(key)
        if value is None:
            return None
        return _Entry(value, self.at(key), self.source, what=what)


def _enum_values(cls: Iterable[object]) -> str:
    return ", ".join(repr(getattr(m, "value", m)) for m in cls)


# -- the finding records ------------------------------------------------------------------------


@dataclass(frozen=True)
class Frame:
    """The vertebra's own frame: unit vectors (world RAS+) fitted to its endplates and body."""

    superior: Vec3
    anterior: Vec3


@dataclass(frozen=True)
class Heights:
    """Body heights along the vertebra's superior axis (mm; None: not measured) and the posterior
    height expected from the unfractured neighbours named in ``reference_levels``."""

    anterior_mm: float | None = None
    middle_mm: float | None = None
    posterior_mm: float | None = None
    reference_mm: float | None = None
    reference_levels: tuple[str, ...] = ()


@dataclass(frozen=True)
class GenantRecord:
    """Genant's grade and deformity, the loss that decided them and the expected heights
    (``docs/report.md``; every field None when not graded)."""

    grade: GenantGrade | None = None
    deformity: DeformityType | None = None
    height_loss_pct: float | None = None
    wedge_loss_pct: float | None = None
    biconcave_loss_pct: float | None = None
    crush_loss_pct: float | None = None
    anterior_loss_pct: float | None = None
    middle_loss_pct: float | None = None
    posterior_loss_pct: float | None = None
    expected_anterior_mm: float | None = None
    expected_middle_mm: float | None = None

    @classmethod
    def from_assessment(cls, g: GenantAssessment | None) -> GenantRecord:
        """The record of an analysis' assessment (None: not graded)."""
        if g is None:
            return cls()
        return cls(
            grade=GenantGrade(int(g.grade)),
            deformity=g.deformity,
            height_loss_pct=g.height_loss_pct,
            wedge_loss_pct=g.wedge_loss_pct,
            biconcave_loss_pct=g.biconcave_loss_pct,
            crush_loss_pct=g.crush_loss_pct,
            anterior_loss_pct=g.anterior_loss_pct,
            middle_loss_pct=g.middle_loss_pct,
            posterior_loss_pct=g.posterior_loss_pct,
            expected_anterior_mm=g.expected_anterior_mm,
            expected_middle_mm=g.expected_middle_mm,
        )


@dataclass(frozen=True)
class DensityRecord:
    """Trabecular attenuation (HU) of the eroded body and the Pickhardt flags it met."""

    median_hu: float | None = None
    mean_hu: float | None = None
    erosion_mm: float | None = None
    flags: tuple[str, ...] = ()


@dataclass(frozen=True)
class LesionRecord:
    """Focal lytic lesions in the body (ml, fraction 0-1) and what they reach."""

    volume_ml: float | None = None
    fraction: float | None = None
    n_lesions: int | None = None
    largest_ml: float | None = None
    posterior_wall_involved: bool | None = None
    pedicle_left_involved: bool | None = None
    pedicle_right_involved: bool | None = None


@dataclass(frozen=True)
class InfiltrationRecord:
    """Diffuse infiltration: the body far below the patient's own other vertebrae (HU)."""

    infiltrated: bool | None = None
    hu_below_own: float | None = None


@dataclass(frozen=True)
class CementRecord:
    """Cement (> 1500 HU) within 3 mm of the vertebra, ml; ``present``: a treated level."""

    volume_ml: float | None = None
    present: bool | None = None


@dataclass(frozen=True)
class SinsImagingRecord:
    """The imaging part of SINS as reported (points as written, not recomputed; a component a
    stored report lacks is None)."""

    location: SinsLocation | None = None
    bone_lesion: SinsBoneLesion | None = None
    collapse: SinsCollapse | None = None
    posterolateral: SinsPosterolateral | None = None
    points: int | None = None
    possible_total_range: tuple[int, int] | None = None
    not_assessed: tuple[str, ...] = ()
    extra: Mapping[str, JsonValue] = field(default_factory=dict)
    keys: tuple[str, ...] | None = field(default=None, compare=False, repr=False)

    @classmethod
    def from_part(cls, part: SinsImagingPart) -> SinsImagingRecord:
        lo, hi = part.possible_total_range
        return cls(
            location=part.location,
            bone_lesion=part.bone_lesion,
            collapse=part.collapse,
            posterolateral=part.posterolateral,
            points=int(part.points),
            possible_total_range=(int(lo), int(hi)),
            not_assessed=tuple(str(n) for n in part.unassessed),
        )

    def to_json_dict(self) -> dict[str, Any]:
        rng = self.possible_total_range
        full: dict[str, JsonValue] = {
            "location": None if self.location is None else str(self.location.value),
            "bone_lesion": None if self.bone_lesion is None else str(self.bone_lesion.value),
            "collapse": None if self.collapse is None else str(self.collapse.value),
            "posterolateral": None
            if self.posterolateral is None
            else str(self.posterolateral.value),
            "points": self.points,
            "possible_total_range": None if rng is None else [int(rng[0]), int(rng[1])],
            "not_assessed": list(self.not_assessed),
        }
        return _ordered(full, self.keys, self.extra)

    @classmethod
    def _read(cls, e: _Entry) -> SinsImagingRecord:
        def component(key: str, enum_cls: Any) -> Any:
            return e.choice(key, enum_cls, f"one of {_enum_values(enum_cls)} or null")

        rng = e.data.get("possible_total_range")
        if rng is not None and not (
            isinstance(rng, list)
            and len(rng) == 2
            and all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 18 for v in rng)
        ):
            raise e.fail("possible_total_range", "[low, high], whole numbers 0-18, or null")
        return cls(
            location=component("location", SinsLocation),
            bone_lesion=component("bone_lesion", SinsBoneLesion),
            collapse=component("collapse", SinsCollapse),
            posterolateral=component("posterolateral", SinsPosterolateral),
            points=e.integer("points", low=0, high=18),
            possible_total_range=None if rng is None else (int(rng[0]), int(rng[1])),  # type: ignore[arg-type]
            not_assessed=e.texts("not_assessed"),
            extra=e.extra(_SINS_KEYS),
            keys=e.keys(),
        )


_SINS_KEYS = (
    "location",
    "bone_lesion",
    "collapse",
    "posterolateral",
    "points",
    "possible_total_range",
    "not_assessed",
)


@dataclass(frozen=True)
class RiskRecord:
    """Collapse risk, every rule that fired in words, what was not measured, SINS' imaging part."""

    collapse_risk: CollapseRisk | None = None
    reasons: tuple[str, ...] = ()
    not_measured: tuple[str, ...] = ()
    sins_imaging: SinsImagingRecord | None = None


@dataclass(frozen=True)
class ConfidenceRecord:
    """How far the vertebra's findings can be trusted, why, and the CT noise around it (HU)."""

    confidence: ConfidenceClass | None = None
    reasons: tuple[str, ...] = ()
    noise_hu_sd: float | None = None


@dataclass(frozen=True)
class ChangeRecord:
    """The comparison with the prior scan: the signal to treat before collapse (None: not
    compared), its reasons and the change flags."""

    treat_signal: bool | None = None
    reasons: tuple[str, ...] = ()
    change_flags: tuple[str, ...] = ()


#: The per-vertebra keys of the contract, in the order they are written.
VERTEBRA_KEYS = (
    "level",
    "label",
    "body_centroid_mm",
    "body_volume_ml",
    "frame",
    "height_anterior_mm",
    "height_middle_mm",
    "height_posterior_mm",
    "reference_height_mm",
    "genant_grade",
    "deformity",
    "height_loss_pct",
    "wedge_loss_pct",
    "biconcave_loss_pct",
    "crush_loss_pct",
    "anterior_loss_pct",
    "middle_loss_pct",
    "posterior_loss_pct",
    "expected_anterior_mm",
    "expected_middle_mm",
    "reference_levels",
    "truncated",
    "trabecular_hu_median",
    "trabecular_hu_mean",
    "erosion_mm",
    "density_flags",
    "lytic_volume_ml",
    "lytic_fraction",
    "n_lesions",
    "largest_lesion_ml",
    "posterior_wall_involved",
    "pedicle_left_involved",
    "pedicle_right_involved",
    "diffuse_infiltration",
    "diffuse_infiltration_hu_below_own",
    "cement_volume_ml",
    "cement_present",
    "collapse_risk",
    "reasons",
    "not_measured",
    "sins_imaging",
    "quality_flags",
    "not_assessed",
    "confidence",
    "confidence_reasons",
    "noise_hu_sd",
    "treat_signal",
    "treat_signal_reasons",
    "change_flags",
)

_COMPARISON_KEYS = ("treat_signal", "treat_signal_reasons", "change_flags")


@dataclass(frozen=True)
class VertebraReport:
    """Everything reported for one vertebra (None = not measured), grouped by finding.

    ``extra``: keys this reader does not know (a newer writer's additions within the
    version), kept as read; ``keys``: the keys of the report it was read from, in their order
    (None: written by this analysis, every key) -- so a report read and written back is the
    report that was read.
    """

    level: VertebralLevel
    label: int | None = None
    body_centroid_mm: Vec3 | None = None
    body_volume_ml: float | None = None
    frame: Frame | None = None
    truncated: bool = False
    quality_flags: tuple[str, ...] = ()
    heights: Heights = field(default_factory=Heights)
    genant: GenantRecord = field(default_factory=GenantRecord)
    density: DensityRecord = field(default_factory=DensityRecord)
    lesions: LesionRecord = field(default_factory=LesionRecord)
    infiltration: InfiltrationRecord = field(default_factory=InfiltrationRecord)
    cement: CementRecord = field(default_factory=CementRecord)
    risk: RiskRecord = field(default_factory=RiskRecord)
    not_assessed: tuple[str, ...] = ()
    confidence: ConfidenceRecord = field(default_factory=ConfidenceRecord)
    change: ChangeRecord = field(default_factory=ChangeRecord)
    extra: Mapping[str, JsonValue] = field(default_factory=dict)
    keys: tuple[str, ...] | None = field(default=None, compare=False, repr=False)

    @property
    def collapse_risk(self) -> CollapseRisk | None:
        """Shorthand for ``risk.collapse_risk``."""
        return self.risk.collapse_risk

    def with_change(
        self, change: ChangeRecord, *, risk: RiskRecord | None = None
    ) -> VertebraReport:
        """This record with the comparison's verdict (and a raised risk), its keys written even
        when the report it was read from predates them."""
        keys = self.keys
        if keys is not None:
            keys = keys + tuple(k for k in _COMPARISON_KEYS if k not in keys)
        return replace(self, change=change, risk=self.risk if risk is None else risk, keys=keys)

    def to_json_dict(self) -> dict[str, Any]:
        h, g, d, ly, ce, rk = (
            self.heights,
            self.genant,
            self.density,
            self.lesions,
            self.cement,
            self.risk,
        )
        inf, cf, ch = self.infiltration, self.confidence, self.change
        full: dict[str, JsonValue] = {
            "level": str(self.level.value),
            "label": None if self.label is None else int(self.label),
            "body_centroid_mm": _vec(self.body_centroid_mm, 1),  # type: ignore[dict-item]
            "body_volume_ml": _r(self.body_volume_ml, 2),
            "frame": None
            if self.frame is None
            else {
                "superior": _vec(self.frame.superior, 4),  # type: ignore[dict-item]
                "anterior": _vec(self.frame.anterior, 4),  # type: ignore[dict-item]
            },
            "height_anterior_mm": _r(h.anterior_mm, 1),
            "height_middle_mm": _r(h.middle_mm, 1),
            "height_posterior_mm": _r(h.posterior_mm, 1),
            "reference_height_mm": _r(h.reference_mm, 1),
            "genant_grade": None if g.grade is None else int(g.grade),
            "deformity": None if g.deformity is None else str(g.deformity.value),
            "height_loss_pct": _r(g.height_loss_pct, 1),
            "wedge_loss_pct": _r(g.wedge_loss_pct, 1),
            "biconcave_loss_pct": _r(g.biconcave_loss_pct, 1),
            "crush_loss_pct": _r(g.crush_loss_pct, 1),
            # each height against its expected value (level's normal shape, unfractured
            # neighbours; spinewatch.core.genant) and what was expected, mm
            "anterior_loss_pct": _r(g.anterior_loss_pct, 1),
            "middle_loss_pct": _r(g.middle_loss_pct, 1),
            "posterior_loss_pct": _r(g.posterior_loss_pct, 1),
            "expected_anterior_mm": _r(g.expected_anterior_mm, 1),
            "expected_middle_mm": _r(g.expected_middle_mm, 1),
            "reference_levels": list(h.reference_levels),
            "truncated": bool(self.truncated),
            "trabecular_hu_median": _r(d.median_hu, 0),
            "trabecular_hu_mean": _r(d.mean_hu, 0),
            "erosion_mm": _r(d.erosion_mm, 1),
            "density_flags": list(d.flags),
            "lytic_volume_ml": _r(ly.volume_ml, 2),
            "lytic_fraction": _r(ly.fraction, 3),
            "n_lesions": ly.n_lesions,
            "largest_lesion_ml": _r(ly.largest_ml, 2),
            "posterior_wall_involved": ly.posterior_wall_involved,
            "pedicle_left_involved": ly.pedicle_left_involved,
            "pedicle_right_involved": ly.pedicle_right_involved,
            "diffuse_infiltration": inf.infiltrated,
            "diffuse_infiltration_hu_below_own": _r(inf.hu_below_own, 0),
            "cement_volume_ml": _r(ce.volume_ml, 2),
            "cement_present": ce.present,
            "collapse_risk": None if rk.collapse_risk is None else rk.collapse_risk.value,
            "reasons": list(rk.reasons),
            "not_measured": list(rk.not_measured),
            "sins_imaging": None if rk.sins_imaging is None else rk.sins_imaging.to_json_dict(),
            "quality_flags": list(self.quality_flags),
            "not_assessed": list(self.not_assessed),
            "confidence": None if cf.confidence is None else cf.confidence.value,
            "confidence_reasons": list(cf.reasons),
            "noise_hu_sd": _r(cf.noise_hu_sd, 1),
            "treat_signal": ch.treat_signal,
            "treat_signal_reasons": list(ch.reasons),
            "change_flags": list(ch.change_flags),
        }
        return _ordered(full, self.keys, self.extra)

    @classmethod
    def from_json_dict(
        cls, data: Mapping[str, JsonValue], *, source: str = "report", path: str = "vertebra"
    ) -> VertebraReport:
        """Read one vertebra of a report (absent keys: null / empty; unknown keys kept)."""
        e = _Entry(data, path, source)
        level = e.choice("level", VertebralLevel.parse, "a level name like 'L1'")
        if level is None:
            raise e.fail("level", "a level name like 'L1'")
        frame = None
        fe = e.child("frame")
        if fe is not None:
            superior, anterior = fe.vec3("superior"), fe.vec3("anterior")
            if superior is None or anterior is None:
                raise ReportFormatError(
                    f"{source}: {fe.path}: expected 'superior' and 'anterior' unit vectors, got "
                    f"{dict(fe.data)!r:.60}",
                    field=fe.path,
                )
            frame = Frame(superior, anterior)
        sins = e.child("sins_imaging")
        grade = e.integer("genant_grade", low=0, high=3)
        pos = {"low": 0.0}
        return cls(
            level=level,
            label=e.integer("label", low=-(2**31), high=2**31),
            body_centroid_mm=e.vec3("body_centroid_mm"),
            body_volume_ml=e.number("body_volume_ml", **pos),
            frame=frame,
            truncated=bool(e.flag("truncated")),
            quality_flags=e.texts("quality_flags"),
            heights=Heights(
                anterior_mm=e.number("height_anterior_mm", **pos),
                middle_mm=e.number("height_middle_mm", **pos),
                posterior_mm=e.number("height_posterior_mm", **pos),
                reference_mm=e.number("reference_height_mm", **pos),
                reference_levels=e.texts("reference_levels"),
            ),
            genant=GenantRecord(
                grade=None if grade is None else GenantGrade(grade),
                deformity=e.choice(
                    "deformity", DeformityType.parse, f"one of {_enum_values(DeformityType)}"
                ),
                height_loss_pct=e.number("height_loss_pct"),
                wedge_loss_pct=e.number("wedge_loss_pct"),
                biconcave_loss_pct=e.number("biconcave_loss_pct"),
                crush_loss_pct=e.number("crush_loss_pct"),
                anterior_loss_pct=e.number("anterior_loss_pct"),
                middle_loss_pct=e.number("middle_loss_pct"),
                posterior_loss_pct=e.number("posterior_loss_pct"),
                expected_anterior_mm=e.number("expected_anterior_mm", **pos),
                expected_middle_mm=e.number("expected_middle_mm", **pos),
            ),
            density=DensityRecord(
                median_hu=e.number("trabecular_hu_median"),
                mean_hu=e.number("trabecular_hu_mean"),
                erosion_mm=e.number("erosion_mm", **pos),
                flags=e.texts("density_flags"),
            ),
            lesions=LesionRecord(
                volume_ml=e.number("lytic_volume_ml", **pos),
                fraction=e.number("lytic_fraction", low=0.0, high=1.0),
                n_lesions=e.integer("n_lesions"),
                largest_ml=e.number("largest_lesion_ml", **pos),
                posterior_wall_involved=e.flag("posterior_wall_involved"),
                pedicle_left_involved=e.flag("pedicle_left_involved"),
                pedicle_right_involved=e.flag("pedicle_right_involved"),
            ),
            infiltration=InfiltrationRecord(
                infiltrated=e.flag("diffuse_infiltration"),
                hu_below_own=e.number("diffuse_infiltration_hu_below_own"),
            ),
            cement=CementRecord(
                volume_ml=e.number("cement_volume_ml", **pos), present=e.flag("cement_present")
            ),
            risk=RiskRecord(
                collapse_risk=e.choice(
                    "collapse_risk", CollapseRisk.parse, f"one of {_enum_values(CollapseRisk)}"
                ),
                reasons=e.texts("reasons"),
                not_measured=e.texts("not_measured"),
                sins_imaging=None if sins is None else SinsImagingRecord._read(sins),
            ),
            not_assessed=e.texts("not_assessed"),
            confidence=ConfidenceRecord(
                confidence=e.choice(
                    "confidence", ConfidenceClass.parse, f"one of {_enum_values(ConfidenceClass)}"
                ),
                reasons=e.texts("confidence_reasons"),
                noise_hu_sd=e.number("noise_hu_sd", **pos),
            ),
            change=ChangeRecord(
                treat_signal=e.flag("treat_signal"),
                reasons=e.texts("treat_signal_reasons"),
                change_flags=e.texts("change_flags"),
            ),
            extra=e.extra(VERTEBRA_KEYS),
            keys=e.keys(),
        )


# -- the scan -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RejectedLabel:
    """A label the map calls a vertebra that does not look like one: not analysed."""

    label: int
    level: str | None
    reason: str

    def to_json_dict(self) -> dict[str, Any]:
        return {"label": int(self.label), "level": self.level, "reason": self.reason}


@dataclass(frozen=True)
class ComparedWith:
    """The prior report a report was compared with (``scan.compared_with``)."""

    source: str | None = None
    study_date: str | None = None
    analysed_at: str | None = None
    interval_days: int | None = None

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "study_date": self.study_date,
            "analysed_at": self.analysed_at,
            "interval_days": self.interval_days,
        }


SCAN_KEYS = (
    "ct",
    "labels",
    "labels_convention",
    "shape",
    "spacing_mm",
    "orientation",
    "series_uid",
    "spinewatch_version",
    "analysed_at",
    "modality",
    "modality_source",
    "modality_evidence",
    "contrast_phase",
    "contrast_source",
    "contrast_evidence",
    "density_offset_hu",
    "compared_with",
    "labels_convention_source",
    "labels_convention_evidence",
    "levels_named_by",
    "rejected_labels",
    "label_notes",
    "orientation_note",
    "study_date",
)
_ACQUISITION_KEYS = SCAN_KEYS[9:16]


@dataclass(frozen=True)
class ScanInfo:
    """Facts about the analysed scan (paths as given, grid of the analysis, how it was
    acquired and how its label map was read).

    ``acquisition`` is None for a version 1 report (it did not record it);
    ``density_offset_hu`` None means the phase's own offset. ``study_date`` (ISO) is added by the
    web worker; ``orientation_note`` only when the header disagrees with the anatomy.
    """

    ct: str | None = None
    labels: str | None = None
    labels_convention: str | None = None
    shape: tuple[int, int, int] | None = None
    spacing_mm: Vec3 | None = None
    orientation: str | None = None
    series_uid: str | None = None
    spinewatch_version: str | None = None
    analysed_at: str | None = None
    acquisition: Acquisition | None = field(default_factory=Acquisition)
    density_offset_hu: float | None = None
    compared_with: ComparedWith | None = None
    labels_convention_source: str | None = None
    labels_convention_evidence: str | None = None
    levels_named_by: str | None = None
    rejected_labels: tuple[RejectedLabel, ...] = ()
    label_notes: tuple[str, ...] = ()
    orientation_note: str | None = None
    study_date: str | None = None
    extra: Mapping[str, JsonValue] = field(default_factory=dict)
    keys: tuple[str, ...] | None = field(default=None, compare=False, repr=False)

    @property
    def modality(self) -> Modality | None:
        """The modality the report records (None: a version 1 report)."""
        return None if self.acquisition is None else self.acquisition.modality

    def with_fields(self, **changes: object) -> ScanInfo:
        """A copy with ``changes`` (field names), their keys written even when the report it
        was read from lacked them."""
        names = {"compared_with": ("compared_with",), "study_date": ("study_date",)}
        keys = self.keys
        if keys is not None:
            for name in changes:
                keys = keys + tuple(k for k in names.get(name, (name,)) if k not in keys)
        return replace(self, keys=keys, **changes)  # type: ignore[arg-type]

    def to_json_dict(self) -> dict[str, Any]:
        a = self.acquisition if self.acquisition is not None else Acquisition()
        offset = (
            self.density_offset_hu
            if self.density_offset_hu is not None
            else a.contrast_phase.density_offset_hu
        )
        full: dict[str, JsonValue] = {
            "ct": self.ct,
            "labels": self.labels,
            "labels_convention": self.labels_convention,
            "shape": None if self.shape is None else [int(s) for s in self.shape],
            "spacing_mm": None if self.spacing_mm is None else [_r(s, 4) for s in self.spacing_mm],
            "orientation": self.orientation,
            "series_uid": self.series_uid,
            "spinewatch_version": self.spinewatch_version,
            "analysed_at": self.analysed_at,
            "modality": a.modality.value,
            "modality_source": a.modality_source,
            "modality_evidence": a.modality_evidence,
            "contrast_phase": a.contrast_phase.value,
            "contrast_source": a.contrast_source,
            "contrast_evidence": a.contrast_evidence,
            "density_offset_hu": _r(offset, 2),
            "compared_with": None
            if self.compared_with is None
            else self.compared_with.to_json_dict(),
            "labels_convention_source": self.labels_convention_source,
            "labels_convention_evidence": self.labels_convention_evidence,
            "levels_named_by": self.levels_named_by,
            "rejected_labels": [r.to_json_dict() for r in self.rejected_labels],
            "label_notes": list(self.label_notes),
            "orientation_note": self.orientation_note,
            "study_date": self.study_date,
        }
        if self.acquisition is None and self.keys is None:
            for key in _ACQUISITION_KEYS:
                del full[key]
        return _ordered(full, self.keys, self.extra, ("orientation_note", "study_date"))

    @classmethod
    def from_json_dict(
        cls, data: Mapping[str, JsonValue], *, source: str = "report", path: str = "scan"
    ) -> ScanInfo:
        """Read a report's ``scan`` record (absent keys: null / empty; unknown keys kept)."""
        e = _Entry(data, path, source)
        shape = e.data.get("shape")
        if shape is not None and not (
            isinstance(shape, list)
            and len(shape) == 3
            and all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in shape)
        ):
            raise e.fail("shape", "[i, j, k] whole numbers")
        compared = e.child("compared_with")
        return cls(
            ct=e.text("ct"),
            labels=e.text("labels"),
            labels_convention=e.text("labels_convention"),
            shape=None if shape is None else (int(shape[0]), int(shape[1]), int(shape[2])),  # type: ignore[arg-type]
            spacing_mm=e.vec3("spacing_mm"),
            orientation=e.text("orientation"),
            series_uid=e.text("series_uid"),
            spinewatch_version=e.text("spinewatch_version"),
            analysed_at=e.text("analysed_at"),
            acquisition=_read_acquisition(e),
            density_offset_hu=e.number("density_offset_hu"),
            compared_with=None
            if compared is None
            else ComparedWith(
                source=compared.text("source"),
                study_date=compared.text("study_date"),
                analysed_at=compared.text("analysed_at"),
                interval_days=compared.integer("interval_days", low=-(10**6), high=10**6),
            ),
            labels_convention_source=e.text("labels_convention_source"),
            labels_convention_evidence=e.text("labels_convention_evidence"),
            levels_named_by=e.text("levels_named_by"),
            rejected_labels=_read_rejected(e),
            label_notes=e.texts("label_notes"),
            orientation_note=e.text("orientation_note"),
            study_date=e.text("study_date"),
            extra=e.extra(SCAN_KEYS),
            keys=e.keys(),
        )


def _read_acquisition(e: _Entry) -> Acquisition | None:
    if not any(k in e.data for k in _ACQUISITION_KEYS[:6]):
        return None  # a version 1 report: not recorded
    values: dict[str, object] = {}
    modality = e.choice("modality", Modality.parse, f"one of {_enum_values(Modality)}")
    phase = e.choice("contrast_phase", ContrastPhase.parse, f"one of {_enum_values(ContrastPhase)}")
    if modality is not None:
        values["modality"] = modality
    if phase is not None:
        values["contrast_phase"] = phase
    for key in ("modality_source", "contrast_source"):
        source = e.choice(key, _source, f"one of {', '.join(map(repr, SOURCES))}")
        if source is not None:
            values[key] = source
    for key in ("modality_evidence", "contrast_evidence"):
        evidence = e.text(key)
        if evidence is not None:
            values[key] = evidence
    try:
        return Acquisition(**values)  # type: ignore[arg-type]
    except AcquisitionError as exc:
        raise ReportFormatError(f"{e.source}: {e.path}: {exc}", field=e.path) from None


def _source(value: str) -> str:
    if value not in SOURCES:
        raise ValueError(value)
    return value


def _read_rejected(e: _Entry) -> tuple[RejectedLabel, ...]:
    value = e.data.get("rejected_labels")
    if value is None:
        return ()
    if not isinstance(value, list):
        raise e.fail("rejected_labels", "a list of {label, level, reason}")
    out = []
    for i, item in enumerate(value):
        r = _Entry(item, f"{e.at('rejected_labels')}[{i}]", e.source)
        label = r.integer("label", low=-(2**31), high=2**31)
        if label is None:
            raise r.fail("label", "a whole number")
        out.append(RejectedLabel(label, r.text("level"), r.text("reason") or ""))
    return tuple(out)


# -- the report ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class SpineReport:
    """The analysis of one study: scan facts and vertebrae in cranio-caudal order.

    The one two-way JSON contract (``docs/report.md``): :meth:`to_json_dict` writes it,
    :meth:`from_json_dict` reads versions 1 and 2 (and refuses any other with
    :class:`ReportVersionError`), checking every key it knows -- the one reader behind
    ``compare``, ``render``, the batch summary, the registry and the pages. A report read and
    written back is the document that was read (unknown keys and key order kept).
    ``extra``: top-level keys besides ``scan`` and ``vertebrae`` (``comparison`` in
    ``spinewatch analyze --prior`` output).
    """

    scan: ScanInfo
    vertebrae: tuple[VertebraReport, ...]
    version: int = REPORT_VERSION
    extra: Mapping[str, JsonValue] = field(default_factory=dict)

    def to_json_dict(self) -> dict[str, Any]:
        """The JSON contract (plain dicts, lists, str, int, float, bool, None; no NaN)."""
        out: dict[str, JsonValue] = {}
        if self.version >= 2:
            out["report_version"] = self.version
        out["scan"] = self.scan.to_json_dict()
        out["vertebrae"] = [v.to_json_dict() for v in self.vertebrae]
        out.update(self.extra)
        return out

    @classmethod
    def from_json_dict(cls, data: object, *, source: str = "report") -> SpineReport:
        """Read a report dict (a stored or loaded ``report.json``); ``source`` names it in
        errors. Raises :class:`ReportFormatError` (a subclass of
        :class:`~spinewatch.core.errors.InputError`) naming the source, the key path and the
        value; :class:`ReportVersionError` for a version other than 1 or 2.

        >>> r = SpineReport.from_json_dict({"report_version": 2, "scan": {"labels": "a.nii"},
        ...     "vertebrae": [{"level": "L1", "height_anterior_mm": 25.0}]})
        >>> r.vertebra("L1").heights.anterior_mm, r.vertebra("L1").genant.grade
        (25.0, None)
        >>> try:
        ...     SpineReport.from_json_dict({"report_version": 3, "scan": {}, "vertebrae": []})
        ... except ReportVersionError as exc:
        ...     print(exc.version, exc.field)
        3 report_version
        """
        if not isinstance(data, Mapping):
            raise ReportFormatError(
                f"{source}: not a SpineWatch report: expected a JSON object with 'scan' and "
                f"'vertebrae', got {type(data).__name__}"
            )
        try:
            check_json_value(data, source=source, max_depth=current_limits().max_json_depth)
        except JsonInputError as exc:
            raise ReportFormatError(str(exc)) from None
        version = data.get("report_version", 1)
        if isinstance(version, bool) or version not in READABLE_VERSIONS:
            raise ReportVersionError(
                f"{source}: report_version {version!r:.40}: this SpineWatch reads versions "
                f"{' and '.join(map(str, READABLE_VERSIONS))} (a newer SpineWatch wrote it?)",
                version=version,
                field="report_version",
            )
        for key in ("scan", "vertebrae"):
            if key not in data:
                raise ReportFormatError(
                    f"{source}: not a SpineWatch report: key {key!r} missing "
                    f"(keys found: {sorted(map(str, data))[:8]})",
                    field=key,
                )
        raw = data["vertebrae"]
        if not isinstance(raw, list):
            raise ReportFormatError(
                f"{source}: vertebrae: expected a list, got {raw!r:.60}", field="vertebrae"
            )
        vertebrae: list[VertebraReport] = []
        seen: dict[VertebralLevel, int] = {}
        for i, entry in enumerate(raw):
            v = VertebraReport.from_json_dict(entry, source=source, path=f"vertebrae[{i}]")
            if v.level in seen:
                raise ReportFormatError(
                    f"{source}: vertebrae[{i}].level: {v.level.value!r} appears twice (also "
                    f"vertebrae[{seen[v.level]}])",
                    field=f"vertebrae[{i}].level",
                )
            seen[v.level] = i
            vertebrae.append(v)
        return cls(
            scan=ScanInfo.from_json_dict(data["scan"], source=source),
            vertebrae=tuple(vertebrae),
            version=int(version),
            extra={
                str(k): v
                for k, v in data.items()
                if k not in ("report_version", "scan", "vertebrae")
            },
        )

    def vertebra(self, level: VertebralLevel | str) -> VertebraReport:
        """The record of ``level`` (KeyError when the level is not in the report)."""
        lv = VertebralLevel.parse(level)
        for v in self.vertebrae:
            if v.level is lv:
                return v
        raise KeyError(str(lv.value))

    def by_level(self) -> dict[VertebralLevel, VertebraReport]:
        """The vertebrae by level (cranio-caudal order)."""
        return {v.level: v for v in self.vertebrae}


def acquisition_summary(scan: ScanInfo | Mapping[str, JsonValue], *, evidence: bool = True) -> str:
    """One line saying how a scan was acquired, from a report's ``scan`` record ("" for a
    version 1 report, which does not record it); ``evidence=False`` leaves out why (the
    picture's subtitle has room for the facts only).

    >>> acquisition_summary({"modality": "CT", "contrast_phase": "portal_venous",
    ...     "contrast_source": "dicom", "contrast_evidence": "DICOM SeriesDescription 'ABD PV'"})
    "CT, portal-venous (DICOM SeriesDescription 'ABD PV')"
    >>> acquisition_summary({"modality": "MR"})
    'MRI: geometry only'
    """
    if isinstance(scan, ScanInfo):
        a = scan.acquisition
        if a is None:
            return ""
        modality: object = a.modality.value
        phase_value: object = a.contrast_phase.value
        source: object = a.contrast_source
        why_value: object = a.contrast_evidence
    else:
        modality = scan.get("modality")
        phase_value = scan.get("contrast_phase")
        source = scan.get("contrast_source")
        why_value = scan.get("contrast_evidence")
    if modality == "MR":
        return "MRI: geometry only"
    if modality != "CT":
        return ""
    try:
        phase = ContrastPhase.parse(str(phase_value or "native"))
    except ValueError:
        return "CT"
    text = f"CT, {phase.label}"
    if source == "assumed":
        text += ", assumed"
    why = str(why_value or "") if evidence else ""
    return f"{text} ({why})" if why else text


def _cell(value: object, spec: str) -> str:
    if value is None:
        digits = "".join(c for c in spec.split(".")[0] if c.isdigit())
        return "-".rjust(int(digits or 0))
    if isinstance(value, bool):
        return "yes" if value else "no"
    return format(value, spec)


def format_text(report: SpineReport) -> str:
    """A readable table of a report (one line per vertebra).

    ``risk`` "not assessable": the reasons say why; ``conf`` the confidence class
    (H/M/L, its reasons after ``confidence:``); ``TREAT`` marks the comparison's signal to treat
    before collapse (its reasons after ``signal:``).
    """
    scan = report.scan
    image = "MRI" if scan.modality is Modality.MR else "CT"
    summary = acquisition_summary(scan) if scan.acquisition is not None else ""
    shape = None if scan.shape is None else list(scan.shape)
    spacing = None if scan.spacing_mm is None else [_r(s, 4) for s in scan.spacing_mm]
    lines = [
        f"{image}: {scan.ct or '(none: geometry only)'}",
        f"labels: {scan.labels} ({scan.labels_convention}), grid {shape} "
        f"at {spacing} mm, {scan.orientation}",
        *([f"acquisition: {summary}"] if summary and scan.ct else []),
        *([f"note: {scan.orientation_note}"] if scan.orientation_note else []),
    ]
    a = scan.acquisition
    if a is not None and a.contrast_phase is not ContrastPhase.NATIVE:
        offset = scan.to_json_dict().get("density_offset_hu")
        lines.append(f"contrast phase: {a.contrast_phase.value} (density thresholds +{offset} HU)")
    if scan.compared_with is not None:
        lines.append(f"compared with: {scan.compared_with.source or scan.compared_with.study_date}")
    lines += [
        "",
        f"{'level':<6}{'Ha':>6}{'Hm':>6}{'Hp':>6}{'ref':>6} {'grade':>5} {'deformity':<10}"
        f"{'loss%':>6}{'HU':>6}{'lytic ml':>9}{'frac':>6} {'PW':<4}{'cement':>7} {'risk':<15}"
        f"{'conf':<5}{'':<6}reasons / flags",
    ]
    for v in report.vertebrae:
        notes = list(v.risk.reasons)
        if v.truncated:
            notes.insert(0, "truncated")
        notes += [f"[{f}]" for f in v.quality_flags]
        notes += [str(r) for r in v.not_assessed if scan.ct]
        if v.change.treat_signal:
            notes.append("signal: " + "; ".join(v.change.reasons))
        conf = v.confidence.confidence
        if conf is not None and conf is not ConfidenceClass.HIGH:
            notes.append("confidence: " + "; ".join(v.confidence.reasons))
        risk = v.risk.collapse_risk
        risk_text = None if risk is None else risk.value.replace("_", " ")
        h, g = v.heights, v.genant
        lines.append(
            f"{v.level.value:<6}{_cell(_r(h.anterior_mm, 1), '6.1f')}"
            f"{_cell(_r(h.middle_mm, 1), '6.1f')}{_cell(_r(h.posterior_mm, 1), '6.1f')}"
            f"{_cell(_r(h.reference_mm, 1), '6.1f')} "
            f"{_cell(None if g.grade is None else int(g.grade), '5d'):>5} "
            f"{_cell(None if g.deformity is None else g.deformity.value, '<10')}"
            f"{_cell(_r(g.height_loss_pct, 1), '6.1f')}"
            f"{_cell(_r(v.density.median_hu, 0), '6.0f')}"
            f"{_cell(_r(v.lesions.volume_ml, 2), '9.2f')}"
            f"{_cell(_r(v.lesions.fraction, 3), '6.2f')} "
            f"{_cell(v.lesions.posterior_wall_involved, '<4')}"
            f"{_cell(_r(v.cement.volume_ml, 2), '7.2f')} {_cell(risk_text, '<15')}"
            f"{(conf.value if conf else '-')[:1].upper():<5}"
            f"{'TREAT' if v.change.treat_signal else '':<6}"
            f"{'; '.join(notes)}"
        )
    return "\n".join(lines)
