"""Procedures of a vertebroplasty programme: type, approach, guidance, anaesthesia, treated levels.

Sources for the rules: the approaches per level follow the project's clinical background
(transpedicular or parapedicular in the thoracolumbar spine and sacrum; at the upper cervical
spine anterolateral, transoral or posterolateral -- Sun et al., Pain Physician 2013, for the
anterolateral approach at C2). The transoral route reaches only the atlas and axis (C1-C2).

Cement volume: a vertebral body takes a few millilitres of PMMA (typically 2-8 ml, rarely more
than 10 ml in a large lumbar body), and pulmonary cement embolism rises with volume; 15 ml is
therefore the plausibility ceiling for one vertebra -- larger values are refused as data-entry
errors, not as clinical judgement. Needle gauge: vertebroplasty needles are 8-13 G, cervical and
laser-disc needles up to 22 G, so 8-22 G is accepted.

>>> TreatedLevel("L1", Approach.TRANSPEDICULAR, needle_gauge=11, cement_volume_ml=4.5).level
<VertebralLevel.L1: 'L1'>
"""

from __future__ import annotations

import enum
import math
import numbers
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from spinewatch.core._enum import parse_enum
from spinewatch.core.errors import InputError
from spinewatch.core.levels import LevelError, Region, VertebralLevel

__all__ = [
    "CEMENT_WARNING_RANGE_ML",
    "MAX_CEMENT_VOLUME_ML",
    "NEEDLE_GAUGE_RANGE",
    "AblationModality",
    "Anaesthesia",
    "Approach",
    "BiopsyResult",
    "CementType",
    "CementoplastySite",
    "DiscLevel",
    "Guidance",
    "PedicleAccess",
    "ProcedureError",
    "ProcedureType",
    "TreatedLevel",
    "cement_volume_warning",
    "validate_procedure",
]

T = TypeVar("T")

MAX_CEMENT_VOLUME_ML = 15.0
"""Largest cement volume accepted for one vertebra (ml); see the module docstring."""
NEEDLE_GAUGE_RANGE = (8, 22)
"""Accepted needle gauges (G), inclusive."""

CEMENT_WARNING_RANGE_ML: dict[Region, tuple[float, float]] = {
    Region.CERVICAL: (0.5, 4.0),
    Region.THORACIC: (0.5, 8.0),
    Region.LUMBAR: (1.0, 12.0),
    Region.SACRAL: (1.0, 12.0),
}
"""Cement volumes (ml) outside which a level's entry is questioned (not refused), by region.

An engineering choice, not a published range: it brackets the volumes reported for one body --
a cervical body takes a few millilitres at most, thoracic bodies typically 2-6 ml and lumbar
bodies 3-8 ml (the figures usually quoted from Belkoff et al., Spine 2001, who restored the
strength of thoracic and thoracolumbar bodies with 2 ml and their stiffness with 4-6 ml) -- with
room for the large lytic bodies of myeloma. A value outside it is more often a typing slip
(``45`` for ``4.5``) than a clinical fact, so the form asks the operator to confirm it."""


class ProcedureError(InputError):
    """An unknown procedure vocabulary value or an invalid treated level.

    ``field`` names the offending argument: a :class:`TreatedLevel` field (``"approach"``), or
    for :func:`validate_procedure` ``"site"``, ``"disc"``, ``"treated_levels"`` or
    ``"treated_levels[1].ablation"``.
    """


class ProcedureType(enum.Enum):
    """What was done."""

    VERTEBROPLASTY = "vertebroplasty"
    KYPHOPLASTY = "kyphoplasty"
    CEMENTOPLASTY = "cementoplasty"
    ABLATION_VERTEBROPLASTY = "ablation_vertebroplasty"
    LASER_DISC_DECOMPRESSION = "laser_disc_decompression"

    @property
    def label(self) -> str:
        """Human-readable name."""
        return {
            "vertebroplasty": "Vertebroplasty",
            "kyphoplasty": "Kyphoplasty",
            "cementoplasty": "Extraspinal cementoplasty",
            "ablation_vertebroplasty": "Thermal ablation followed by vertebroplasty",
            "laser_disc_decompression": "Percutaneous laser disc decompression (PLDD)",
        }[self.value]

    @property
    def requires_site(self) -> bool:
        """True for cementoplasty (an extraspinal site instead of vertebral levels)."""
        return self is ProcedureType.CEMENTOPLASTY

    @property
    def requires_ablation(self) -> bool:
        """True for ablation followed by cement (each treated level needs a modality)."""
        return self is ProcedureType.ABLATION_VERTEBROPLASTY

    @property
    def at_disc(self) -> bool:
        """True for laser disc decompression (treats a disc level, no cement)."""
        return self is ProcedureType.LASER_DISC_DECOMPRESSION

    @property
    def treats_vertebrae(self) -> bool:
        """True for the procedures that put cement into vertebral bodies."""
        return self in (
            ProcedureType.VERTEBROPLASTY,
            ProcedureType.KYPHOPLASTY,
            ProcedureType.ABLATION_VERTEBROPLASTY,
        )

    @classmethod
    def parse(cls, value: ProcedureType | str) -> ProcedureType:
        """A member, its value or name (any case); else :class:`ProcedureError`."""
        return parse_enum(cls, value, what="procedure type", error=ProcedureError)


class AblationModality(enum.Enum):
    """Thermal ablation done through the vertebroplasty needle before the cement."""

    RADIOFREQUENCY = "radiofrequency"
    MICROWAVE = "microwave"
    CRYO = "cryo"

    @property
    def label(self) -> str:
        """Human-readable name."""
        return {
            "radiofrequency": "Radiofrequency ablation",
            "microwave": "Microwave ablation",
            "cryo": "Cryoablation",
        }[self.value]

    @classmethod
    def parse(cls, value: AblationModality | str) -> AblationModality:
        """A member, its value or name (any case); else :class:`ProcedureError`."""
        return parse_enum(cls, value, what="ablation modality", error=ProcedureError)


class CementoplastySite(enum.Enum):
    """Extraspinal cementoplasty site."""

    PELVIS = "pelvis"
    ACETABULUM = "acetabulum"
    SACRUM = "sacrum"
    FEMUR = "femur"
    HUMERUS = "humerus"
    RIB = "rib"
    STERNUM = "sternum"
    OTHER = "other"

    @property
    def label(self) -> str:
        """Human-readable name."""
        return self.value.capitalize()

    @classmethod
    def parse(cls, value: CementoplastySite | str) -> CementoplastySite:
        """A member, its value or name (any case); else :class:`ProcedureError`."""
        return parse_enum(cls, value, what="cementoplasty site", error=ProcedureError)


_CERVICAL_ONLY = {"anterolateral", "posterolateral"}
_TRANSORAL_LEVELS = (VertebralLevel.C1, VertebralLevel.C2)
_PEDICULAR_REGIONS = (Region.THORACIC, Region.LUMBAR, Region.SACRAL)


class Approach(enum.Enum):
    """Needle route into the vertebral body."""

    TRANSPEDICULAR = "transpedicular"
    PARAPEDICULAR = "parapedicular"
    ANTEROLATERAL = "anterolateral"
    TRANSORAL = "transoral"
    POSTEROLATERAL = "posterolateral"

    @property
    def label(self) -> str:
        """Human-readable name."""
        return self.value.capitalize()

    def allowed_at(self, level: VertebralLevel | str) -> bool:
        """Whether this approach is used at ``level``.

        Anterolateral and posterolateral: cervical only; transoral: C1-C2 only; transpedicular
        and parapedicular: thoracic, lumbar and sacral. (See the module docstring for sources.)
        """
        lv = VertebralLevel.parse(level)
        if self is Approach.TRANSORAL:
            return lv in _TRANSORAL_LEVELS
        if self.value in _CERVICAL_ONLY:
            return lv.region is Region.CERVICAL
        return lv.region in _PEDICULAR_REGIONS

    @classmethod
    def parse(cls, value: Approach | str) -> Approach:
        """A member, its value or name (any case); else :class:`ProcedureError`."""
        return parse_enum(cls, value, what="approach", error=ProcedureError)


class Guidance(enum.Enum):
    """Imaging guidance."""

    FLUOROSCOPY = "fluoroscopy"
    CT = "ct"
    CT_FLUOROSCOPY = "ct_fluoroscopy"

    @property
    def label(self) -> str:
        """Human-readable name."""
        return {"fluoroscopy": "Fluoroscopy", "ct": "CT", "ct_fluoroscopy": "CT-fluoroscopy"}[
            self.value
        ]

    @classmethod
    def parse(cls, value: Guidance | str) -> Guidance:
        """A member, its value or name (any case; ``"CT-fluoroscopy"`` too); else
        :class:`ProcedureError`."""
        return parse_enum(cls, value, what="guidance", error=ProcedureError)


class Anaesthesia(enum.Enum):
    """Anaesthesia."""

    LOCAL = "local"
    LOCAL_WITH_SEDATION = "local_with_sedation"
    GENERAL = "general"

    @property
    def label(self) -> str:
        """Human-readable name."""
        return {
            "local": "Local anaesthesia",
            "local_with_sedation": "Local anaesthesia with sedation",
            "general": "General anaesthesia",
        }[self.value]

    @classmethod
    def parse(cls, value: Anaesthesia | str) -> Anaesthesia:
        """A member, its value or name (any case); else :class:`ProcedureError`."""
        return parse_enum(cls, value, what="anaesthesia", error=ProcedureError)


class CementType(enum.Enum):
    """The cement injected (one per session)."""

    PMMA = "pmma"
    PMMA_HIGH_VISCOSITY = "pmma_high_viscosity"
    CALCIUM_PHOSPHATE = "calcium_phosphate"
    OTHER = "other"

    @property
    def label(self) -> str:
        return {
            "pmma": "PMMA (standard viscosity)",
            "pmma_high_viscosity": "PMMA, high viscosity",
            "calcium_phosphate": "Calcium phosphate",
            "other": "Other",
        }[self.value]

    @classmethod
    def parse(cls, value: CementType | str) -> CementType:
        """A member, its value or name (any case); else :class:`ProcedureError`."""
        return parse_enum(cls, value, what="cement type", error=ProcedureError)


class PedicleAccess(enum.Enum):
    """One needle (unipedicular) or two (bipedicular) into the body of a treated level."""

    UNIPEDICULAR = "unipedicular"
    BIPEDICULAR = "bipedicular"

    @property
    def label(self) -> str:
        return self.value.capitalize()

    @classmethod
    def parse(cls, value: PedicleAccess | str) -> PedicleAccess:
        """A member, its value or name (any case); else :class:`ProcedureError`."""
        return parse_enum(cls, value, what="pedicle access", error=ProcedureError)


class BiopsyResult(enum.Enum):
    """The histology of a biopsy taken through the vertebroplasty needle."""

    PENDING = "pending"
    MYELOMA = "myeloma"
    METASTASIS = "metastasis"
    OTHER_MALIGNANCY = "other_malignancy"
    BENIGN = "benign"
    NON_DIAGNOSTIC = "non_diagnostic"

    @property
    def label(self) -> str:
        return {
            "pending": "Pending",
            "myeloma": "Myeloma / plasmacytoma",
            "metastasis": "Metastasis",
            "other_malignancy": "Other malignancy",
            "benign": "Benign (e.g. osteoporotic fracture)",
            "non_diagnostic": "Non-diagnostic",
        }[self.value]

    @classmethod
    def parse(cls, value: BiopsyResult | str) -> BiopsyResult:
        """A member, its value or name (any case); else :class:`ProcedureError`."""
        return parse_enum(cls, value, what="biopsy result", error=ProcedureError)


def cement_volume_warning(level: VertebralLevel | str, volume_ml: float) -> str | None:
    """A question for the operator when ``volume_ml`` is unusual for ``level``, else None.

    See :data:`CEMENT_WARNING_RANGE_ML` (an engineering choice, documented there).
    """
    lv = VertebralLevel.parse(level)
    low, high = CEMENT_WARNING_RANGE_ML[lv.region]
    if volume_ml > high:
        return (
            f"{volume_ml:g} ml of cement at {lv} is more than the {high:g} ml expected at most "
            f"for a {lv.region.value} vertebra: please check the volume"
        )
    if volume_ml < low:
        return (
            f"{volume_ml:g} ml of cement at {lv} is less than the {low:g} ml expected at least "
            f"for a {lv.region.value} vertebra: please check the volume"
        )
    return None


def _positive(value: object, field: str, unit: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ProcedureError(
            f"{field} {value!r} is not a number; expected a positive {unit}", field=field
        )
    result = float(value)
    if not math.isfinite(result) or result <= 0.0:
        raise ProcedureError(
            f"{field} {value!r} is invalid; expected a positive {unit}", field=field
        )
    return result


@dataclass(frozen=True)
class TreatedLevel:
    """One vertebra treated with cement (optionally after thermal ablation).

    ``needle_gauge`` in G (8-22); ``cement_volume_ml`` in ml (0 < v <= 15, see the module
    docstring); ``ablation`` the modality or None; ``ablation_power_w`` (W) and
    ``ablation_duration_s`` (s) are positive numbers, given only with an ablation;
    ``access`` unipedicular/bipedicular (transpedicular or parapedicular approaches only);
    ``biopsy`` whether a biopsy was taken, ``biopsy_result`` its histology when known. Level and
    enum fields accept their names; everything is validated here (:class:`ProcedureError`,
    or :class:`~spinewatch.core.levels.LevelError` for a non-level).
    """

    level: VertebralLevel
    approach: Approach
    needle_gauge: int
    cement_volume_ml: float
    ablation: AblationModality | None = None
    ablation_power_w: float | None = None
    ablation_duration_s: float | None = None
    access: PedicleAccess | None = None
    biopsy: bool = False
    biopsy_result: BiopsyResult | None = None

    def __post_init__(self) -> None:
        try:
            level = VertebralLevel.parse(self.level)
        except LevelError as exc:
            raise ProcedureError(f"level: {exc}", field="level") from None
        object.__setattr__(self, "level", level)
        approach = _named("approach", Approach.parse, self.approach)
        object.__setattr__(self, "approach", approach)
        if not approach.allowed_at(level):
            raise ProcedureError(
                f"approach {approach.value!r} is not used at level {level}; expected one of "
                + ", ".join(repr(a.value) for a in Approach if a.allowed_at(level)),
                field="approach",
            )
        gauge = self.needle_gauge
        low, high = NEEDLE_GAUGE_RANGE
        if (
            isinstance(gauge, bool)
            or not isinstance(gauge, numbers.Integral)
            or not low <= gauge <= high
        ):
            raise ProcedureError(
                f"needle_gauge {gauge!r} is invalid; expected an integer gauge from {low} to "
                f"{high} G",
                field="needle_gauge",
            )
        object.__setattr__(self, "needle_gauge", int(gauge))
        volume = _positive(self.cement_volume_ml, "cement_volume_ml", "volume in ml")
        if volume > MAX_CEMENT_VOLUME_ML:
            raise ProcedureError(
                f"cement_volume_ml {self.cement_volume_ml!r} is invalid; expected at most "
                f"{MAX_CEMENT_VOLUME_ML:g} ml for one vertebra",
                field="cement_volume_ml",
            )
        object.__setattr__(self, "cement_volume_ml", volume)
        if self.ablation is not None:
            object.__setattr__(
                self, "ablation", _named("ablation", AblationModality.parse, self.ablation)
            )
        for field, unit in (
            ("ablation_power_w", "power in W"),
            ("ablation_duration_s", "time in s"),
        ):
            value = getattr(self, field)
            if value is None:
                continue
            if self.ablation is None:
                raise ProcedureError(
                    f"{field} {value!r} given without an ablation modality; expected "
                    "ablation to be set",
                    field=field,
                )
            object.__setattr__(self, field, _positive(value, field, unit))
        self._check_access_and_biopsy()

    def _check_access_and_biopsy(self) -> None:
        if self.access is not None:
            access = _named("access", PedicleAccess.parse, self.access)
            object.__setattr__(self, "access", access)
            if self.approach not in (Approach.TRANSPEDICULAR, Approach.PARAPEDICULAR):
                raise ProcedureError(
                    f"access {access.value!r} given for the {self.approach.value} approach; "
                    "unipedicular/bipedicular is only expected for a transpedicular or "
                    "parapedicular approach",
                    field="access",
                )
        if not isinstance(self.biopsy, bool):
            raise ProcedureError(f"biopsy {self.biopsy!r}: expected true or false", field="biopsy")
        if self.biopsy_result is not None:
            result = _named("biopsy_result", BiopsyResult.parse, self.biopsy_result)
            object.__setattr__(self, "biopsy_result", result)
            if not self.biopsy:
                raise ProcedureError(
                    f"biopsy_result {self.biopsy_result.value!r} given without a biopsy; "
                    "expected biopsy to be true",
                    field="biopsy_result",
                )


_DISC = re.compile(r"(?:disc_)?(?P<upper>[A-Za-z]\d{1,2})\s*[-/]\s*(?P<lower>(?:[A-Za-z])?\d{1,2})")


@dataclass(frozen=True)
class DiscLevel:
    """An intervertebral disc between two adjacent vertebrae (``L4-L5``), for laser disc
    decompression. ``lower`` must be the vertebra directly caudal to ``upper`` (variants T13/L6
    allowed where present)."""

    upper: VertebralLevel
    lower: VertebralLevel

    def __post_init__(self) -> None:
        upper = VertebralLevel.parse(self.upper)
        lower = VertebralLevel.parse(self.lower)
        object.__setattr__(self, "upper", upper)
        object.__setattr__(self, "lower", lower)
        ok = _adjacent(upper, lower)
        if not ok:
            raise ProcedureError(
                f"disc level {upper}-{lower} is invalid; expected two adjacent vertebrae, "
                "upper first (e.g. 'L4-L5')"
            )

    def __str__(self) -> str:
        return f"{self.upper}-{self.lower}"

    @classmethod
    def parse(cls, value: DiscLevel | str) -> DiscLevel:
        """``"L4-L5"``, ``"L4/L5"``, ``"L4-5"``, ``"l5-s1"``; else :class:`ProcedureError`."""
        if isinstance(value, DiscLevel):
            return value
        match = _DISC.fullmatch(value.strip()) if isinstance(value, str) else None
        if match is None:
            raise ProcedureError(
                f"disc level {value!r} is not recognised; expected two adjacent vertebrae such "
                "as 'L4-L5' or 'L5-S1'"
            )
        upper_text, lower_text = match["upper"], match["lower"]
        if lower_text[0].isdigit():
            lower_text = upper_text[0] + lower_text
        try:
            return cls(VertebralLevel.parse(upper_text), VertebralLevel.parse(lower_text))
        except LevelError as exc:
            raise ProcedureError(f"disc level {value!r}: {exc}") from None


def _adjacent(upper: VertebralLevel, lower: VertebralLevel) -> bool:
    if lower.rank - upper.rank == 1:
        return True
    # Skipping a variant: T12-L1 without T13, L5-S1 without L6.
    return lower.rank - upper.rank == 2 and (
        (upper is VertebralLevel.T12 and lower is VertebralLevel.L1)
        or (upper is VertebralLevel.L5 and lower is VertebralLevel.S1)
    )


def validate_procedure(
    procedure_type: ProcedureType | str,
    *,
    treated_levels: Sequence[TreatedLevel] = (),
    site: CementoplastySite | str | None = None,
    disc: DiscLevel | str | None = None,
) -> ProcedureType:
    """Check that a procedure's parts fit its type; return the parsed type.

    * vertebroplasty, kyphoplasty: at least one treated level, no site, no disc, no ablation;
    * ablation followed by vertebroplasty: at least one treated level, each with a modality;
    * cementoplasty: a site, no treated vertebral levels, no disc;
    * laser disc decompression: a disc level, nothing else.

    Each treated level appears once. Raises :class:`ProcedureError` naming what is wrong.
    """
    ptype = _named("procedure_type", ProcedureType.parse, procedure_type)
    levels = list(treated_levels)
    for i, tl in enumerate(levels):
        if not isinstance(tl, TreatedLevel):
            raise ProcedureError(
                f"treated level {tl!r} is not a TreatedLevel", field=f"treated_levels[{i}]"
            )
    if site is not None:
        site = _named("site", CementoplastySite.parse, site)
    if disc is not None:
        disc = _named("disc", DiscLevel.parse, disc)
    name = ptype.value
    if ptype.requires_site:
        if site is None:
            raise ProcedureError(
                f"procedure {name!r} needs a cementoplasty site; got none", field="site"
            )
    elif site is not None:
        raise ProcedureError(
            f"cementoplasty site {site.value!r} given for procedure {name!r}; a site is only "
            "expected for 'cementoplasty'",
            field="site",
        )
    if ptype.at_disc:
        if disc is None:
            raise ProcedureError(
                f"procedure {name!r} needs a disc level (e.g. 'L4-L5'); got none", field="disc"
            )
    elif disc is not None:
        raise ProcedureError(
            f"disc level {disc} given for procedure {name!r}; a disc is only expected for "
            "'laser_disc_decompression'",
            field="disc",
        )
    if ptype.treats_vertebrae:
        if not levels:
            raise ProcedureError(
                f"procedure {name!r} needs at least one treated level; got none",
                field="treated_levels",
            )
    elif levels:
        raise ProcedureError(
            f"treated levels {[str(tl.level) for tl in levels]} given for procedure {name!r}; "
            "expected none",
            field="treated_levels",
        )
    _check_levels_of(ptype, levels)
    return ptype


def _check_levels_of(ptype: ProcedureType, levels: Sequence[TreatedLevel]) -> None:
    """Each level once; an ablation modality exactly when the procedure type needs one."""
    name = ptype.value
    seen: set[VertebralLevel] = set()
    for i, tl in enumerate(levels):
        if tl.level in seen:
            raise ProcedureError(
                f"level {tl.level} is treated twice in one procedure",
                field=f"treated_levels[{i}].level",
            )
        seen.add(tl.level)
        if ptype.requires_ablation and tl.ablation is None:
            raise ProcedureError(
                f"level {tl.level}: procedure {name!r} needs an ablation modality; expected one "
                "of " + ", ".join(repr(m.value) for m in AblationModality),
                field=f"treated_levels[{i}].ablation",
            )
        if not ptype.requires_ablation and tl.ablation is not None:
            raise ProcedureError(
                f"level {tl.level}: ablation {tl.ablation.value!r} given for procedure "
                f"{name!r}; expected 'ablation_vertebroplasty'",
                field=f"treated_levels[{i}].ablation",
            )


def _named(field: str, parse: Callable[[Any], T], value: object) -> T:
    """``parse(value)``; its error (unknown vocabulary value) names ``field``."""
    try:
        return parse(value)
    except InputError as exc:
        if exc.field is not None:
            raise
        raise ProcedureError(str(exc), field=field) from exc
