"""Label-map conventions -> vertebral levels. The ONE place label ids are converted.

A label map's integer ids mean nothing without their convention. Supported:

* **TotalSegmentator v2, task "total"** (CT; :attr:`LabelConvention.TOTALSEGMENTATOR`): 1..24
  organs, 25 ``sacrum`` (not a level), 26 ``vertebrae_S1``, 27 L5, 28 L4, 29 L3, 30 L2, 31 L1,
  32 T12 ... 43 T1, 44 C7 ... 50 C1, then 51..117 heart, vessels, muscles (86/87 autochthon =
  the erector spinae), ribs... Unchanged in every v2 release (v2.0.0 .. v2.18.0 of
  ``totalsegmentator/map_to_binary.py`` in wasserth/TotalSegmentator; only the rib ids 92..107
  were reordered in v2.2.0).
* **TotalSegmentator "total_mr"** (MRI; :attr:`~LabelConvention.TOTALSEGMENTATOR_MR`): all
  vertebrae share ONE label, 19 ``vertebrae``; 18 ``sacrum``, 20 ``intervertebral_discs``,
  21 ``spinal_cord``. Two id tables exist -- v2.2.0..v2.4.x (56 classes: 44/45 autochthon,
  46/47 iliopsoas) and v2.5.0+ (50 classes: 46/47 autochthon, 48/49 iliopsoas) -- and both put
  the vertebrae at 19. Its vertebrae must be split and named (``--lowest-level``).
* **TotalSegmentator "vertebrae_mr"** (MRI, v2.5.0+; :attr:`~LabelConvention.
  TOTALSEGMENTATOR_VERTEBRAE_MR`): 1 ``sacrum``, 2 L5, 3 L4 ... 6 L1, 7 T12 ... 18 T1, 19 C7 ...
  25 C1 -- the ids run *cranially*, the opposite of VerSe, over the same range 1..25.
* **TotalSegmentator "vertebrae_body"** (:attr:`~LabelConvention.
  TOTALSEGMENTATOR_VERTEBRAE_BODY`): 1 ``vertebrae_body`` (every vertebral body, one label),
  2 ``intervertebral_discs`` (v2.5.0+; v2.2.0..v2.4.x had label 1 only).
* **VerSe** (:attr:`~LabelConvention.VERSE`): 1..7 C1..C7, 8..19 T1..T12, 20..25 L1..L6,
  26 sacrum (read as S1), 28 T13. 27 is not a vertebra.
* **SPINEPS/TPTBox instance maps** (:attr:`~LabelConvention.TPTBOX`; Hendrik-code/TPTBox
  ``TPTBox/core/vert_constants.py``): vertebrae as VerSe (27 coccyx, 29..33 S2..S6 are not
  levels), ribs 40..53 (vertebra + 32), intervertebral discs 100 + id of the vertebra above,
  endplates 200 + id. An endplate label lies on both sides of its disc (the inferior endplate
  of vertebra *id* and the superior endplate of the next): :func:`endplate_of` names the
  vertebrae it belongs to, and the imaging code gives each endplate voxel back to its vertebra.
* **Binary masks** (:attr:`~LabelConvention.BINARY`): one label for vertebral tissue whose level
  the ids cannot tell.

SPINEPS/TPTBox *subregion* maps (41..48 posterior elements, 49/50 vertebral body, 60/61 cord and
canal, 100 discs) name parts of vertebrae, not levels: they are recognised (reading
``"tptbox_subregion"``) and refused.

Detection (:func:`candidate_readings`, :func:`detect_convention`) works from the ids alone
(plus the modality and the file's own label table when known); the imaging code adds the
geometry (:mod:`spinewatch.imaging.label_check`).

>>> level_for_label(31, LabelConvention.TOTALSEGMENTATOR)
<VertebralLevel.L1: 'L1'>
>>> label_for_level("L1", LabelConvention.VERSE)
20
>>> level_for_label(6, "totalsegmentator_vertebrae_mr")
<VertebralLevel.L1: 'L1'>
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from spinewatch.core._enum import parse_enum
from spinewatch.core.acquisition import Modality
from spinewatch.core.errors import InputError
from spinewatch.core.levels import LevelError, VertebralLevel

__all__ = [
    "SUBREGION_READING",
    "TOTALSEGMENTATOR_MAX_LABEL",
    "TOTALSEGMENTATOR_MR_MAX_LABEL",
    "VERSE_MAX_LABEL",
    "ConventionError",
    "LabelConvention",
    "Reading",
    "candidate_readings",
    "detect_convention",
    "endplate_of",
    "group_labels",
    "ids_text",
    "is_subregion_map",
    "label_for_level",
    "label_role",
    "level_for_label",
    "level_from_totalsegmentator_name",
    "merge_equivalent",
    "subregion_refusal",
    "totalsegmentator_name",
    "vertebra_labels",
]

TOTALSEGMENTATOR_MAX_LABEL = 117
"""Highest label of the TotalSegmentator v2 "total" task."""
VERSE_MAX_LABEL = 28
"""Highest label VerSe uses (28 = T13)."""
TOTALSEGMENTATOR_MR_MAX_LABEL = 56
"""Highest label of TotalSegmentator "total_mr" (56 in v2.2.0..v2.4.x, 50 from v2.5.0)."""
SUBREGION_READING = "tptbox_subregion"
"""Key of the (always refused) reading of a SPINEPS/TPTBox subregion map."""


class ConventionError(InputError):
    """An unknown label convention, or a level/label a convention cannot express."""


class LabelConvention(enum.Enum):
    """How integer labels in a vertebra label map name vertebrae."""

    TOTALSEGMENTATOR = "totalsegmentator"
    TOTALSEGMENTATOR_MR = "totalsegmentator_mr"
    TOTALSEGMENTATOR_VERTEBRAE_MR = "totalsegmentator_vertebrae_mr"
    TOTALSEGMENTATOR_VERTEBRAE_BODY = "totalsegmentator_vertebrae_body"
    VERSE = "verse"
    TPTBOX = "tptbox"
    BINARY = "binary"

    @property
    def label(self) -> str:
        """Human-readable name (``"TotalSegmentator v2 (total)"``)."""
        return _LABELS[self]

    @property
    def names_levels(self) -> bool:
        """True when each vertebra has its own id naming its level (False: one label holds
        every vertebra and the levels must be named by the user)."""
        return self in _LEVEL_TABLES

    @property
    def modality(self) -> Modality | None:
        """The modality the convention's segmenter is made for (None: any)."""
        return _MODALITY.get(self)

    @classmethod
    def parse(cls, value: LabelConvention | str) -> LabelConvention:
        """A member or its value (``"verse"``, ``"totalsegmentator_mr"``... any case, ``-`` as
        ``_``); else ConventionError."""
        return parse_enum(cls, value, what="label convention", error=ConventionError)


_L = VertebralLevel
_TS = LabelConvention.TOTALSEGMENTATOR
_TS_MR = LabelConvention.TOTALSEGMENTATOR_MR
_TS_VMR = LabelConvention.TOTALSEGMENTATOR_VERTEBRAE_MR
_TS_VB = LabelConvention.TOTALSEGMENTATOR_VERTEBRAE_BODY
_VERSE = LabelConvention.VERSE
_TPTBOX = LabelConvention.TPTBOX
_BINARY = LabelConvention.BINARY

_LABELS = {
    _TS: "TotalSegmentator v2 (total)",
    _TS_MR: "TotalSegmentator (total_mr)",
    _TS_VMR: "TotalSegmentator (vertebrae_mr)",
    _TS_VB: "TotalSegmentator (vertebrae_body)",
    _VERSE: "VerSe",
    _TPTBOX: "SPINEPS/TPTBox instance",
    _BINARY: "binary mask",
}
_MODALITY = {_TS: Modality.CT, _TS_MR: Modality.MR, _TS_VMR: Modality.MR}

_TS_LEVELS: dict[int, VertebralLevel] = {
    26: _L.S1,
    27: _L.L5,
    28: _L.L4,
    29: _L.L3,
    30: _L.L2,
    31: _L.L1,
    **{32 + i: getattr(_L, f"T{12 - i}") for i in range(12)},  # 32 T12 ... 43 T1
    **{44 + i: getattr(_L, f"C{7 - i}") for i in range(7)},  # 44 C7 ... 50 C1
}
_TS_VMR_LEVELS: dict[int, VertebralLevel] = {
    **{2 + i: getattr(_L, f"L{5 - i}") for i in range(5)},  # 2 L5 ... 6 L1
    **{7 + i: getattr(_L, f"T{12 - i}") for i in range(12)},  # 7 T12 ... 18 T1
    **{19 + i: getattr(_L, f"C{7 - i}") for i in range(7)},  # 19 C7 ... 25 C1
}
_VERSE_LEVELS: dict[int, VertebralLevel] = {
    **{i: getattr(_L, f"C{i}") for i in range(1, 8)},  # 1..7 C1..C7
    **{7 + i: getattr(_L, f"T{i}") for i in range(1, 13)},  # 8..19 T1..T12
    **{19 + i: getattr(_L, f"L{i}") for i in range(1, 7)},  # 20..25 L1..L6
    26: _L.S1,
    28: _L.T13,
}
_LEVEL_TABLES: dict[LabelConvention, dict[int, VertebralLevel]] = {
    _TS: _TS_LEVELS,
    _TS_VMR: _TS_VMR_LEVELS,
    _VERSE: _VERSE_LEVELS,
    _TPTBOX: _VERSE_LEVELS,
}
_INVERSE: dict[LabelConvention, dict[VertebralLevel, int]] = {
    convention: {level: label for label, level in table.items()}
    for convention, table in _LEVEL_TABLES.items()
}
#: Labels that hold every vertebra of the map in one label.
_GROUPS: dict[LabelConvention, frozenset[int]] = {
    _TS_MR: frozenset({19}),
    _TS_VB: frozenset({1}),
}
#: Highest id each convention uses.
_MAX_LABEL = {
    _TS: TOTALSEGMENTATOR_MAX_LABEL,
    _TS_MR: TOTALSEGMENTATOR_MR_MAX_LABEL,
    _TS_VMR: 25,
    _TS_VB: 2,
    _VERSE: VERSE_MAX_LABEL,
}
# TPTBox: vertebra ids (VerSe), coccyx 27, sacral segments S2..S6 29..33, ribs vertebra + 32
# (T1 40 ... T12 51, T13 53), discs 100 + id, endplates 200 + id.
_TPTBOX_VERTEBRAE = frozenset(_VERSE_LEVELS)
_TPTBOX_OTHER = frozenset({27, *range(29, 34), *range(40, 54)})
_DISC_OFFSET = 100
_ENDPLATE_OFFSET = 200
# SPINEPS/TPTBox subregion ids (TPTBox ``Location``): 40 whole vertebra, 41..48 posterior
# elements, 49 corpus border, 50 corpus, 51 dens, 52/53 endplates, 58/59 disc parts, 60 cord,
# 61 canal, 62 endplate, 63/64 ribs, 70..74 sacrum parts, 80 metal, 81..91 muscle inserts,
# 100 disc, 126 canal at disc level.
_SUBREGION_IDS = frozenset(
    {*range(40, 54), *range(58, 65), *range(70, 75), *range(80, 92), 100, 126}
)
_SUBREGION_POSTERIOR = frozenset(range(41, 49))
_SUBREGION_BODY = frozenset({49, 50})

# Names of the TotalSegmentator classes that say something about vertebrae (for a file's own
# label table): every task's vertebra names are "vertebrae_<level>", "vertebrae" (total_mr) or
# "vertebrae_body" (vertebrae_body).
_TS_PREFIX = "vertebrae_"
_GROUP_NAMES = {"vertebrae": _TS_MR, "vertebrae_body": _TS_VB}

_ADVICE = (
    "pass --labels-convention (totalsegmentator, totalsegmentator_mr, "
    "totalsegmentator_vertebrae_mr, totalsegmentator_vertebrae_body, verse, tptbox or binary)"
)


def _as_label(label: object) -> int | None:
    if isinstance(label, bool):
        return None
    try:
        as_int: int = int(label)  # type: ignore[call-overload]
    except (TypeError, ValueError, OverflowError):
        return None
    if as_int != label:
        return None
    return as_int


def level_for_label(label: int, convention: LabelConvention | str) -> VertebralLevel | None:
    """The vertebra that ``label`` denotes in ``convention``, or None when it is not a vertebra.

    None is returned for background (0), organs, ribs, discs, endplates, TotalSegmentator's
    ``sacrum`` (25), every label of a convention that holds all vertebrae in one label
    (total_mr, vertebrae_body, binary) and any unknown integer; nothing is raised for unknown
    ints.
    """
    conv = LabelConvention.parse(convention)
    as_int = _as_label(label)
    if as_int is None:
        return None
    return _LEVEL_TABLES.get(conv, {}).get(as_int)


def label_for_level(level: VertebralLevel | str, convention: LabelConvention | str) -> int:
    """The label id of ``level`` in ``convention``.

    Raises :class:`ConventionError` when the convention has no label for it (T13 and L6 in
    TotalSegmentator; every level in the one-label conventions) and
    :class:`~spinewatch.core.levels.LevelError` for a non-level.
    """
    conv = LabelConvention.parse(convention)
    lv = VertebralLevel.parse(level)
    if conv not in _INVERSE:
        raise ConventionError(
            f"the {conv.label} convention has no per-level labels (one label holds every "
            f"vertebra), so level {lv} has no id in it"
        )
    try:
        return _INVERSE[conv][lv]
    except KeyError:
        raise ConventionError(
            f"level {lv} cannot be expressed in the {conv.label} convention; expected one of "
            f"{', '.join(str(x) for x in sorted(_INVERSE[conv]))}"
        ) from None


def group_labels(labels: Iterable[int], convention: LabelConvention | str) -> tuple[int, ...]:
    """The labels of ``labels`` that hold several (unnamed) vertebrae in ``convention``:
    19 in total_mr, 1 in vertebrae_body, the single non-zero label of a binary mask."""
    conv = LabelConvention.parse(convention)
    present = sorted({x for x in (_as_label(v) for v in labels) if x})
    if conv is _BINARY:
        return tuple(present) if len(present) == 1 else ()
    return tuple(x for x in present if x in _GROUPS.get(conv, frozenset()))


def endplate_of(label: int, convention: LabelConvention | str) -> int | None:
    """For a TPTBox endplate label (200 + id), the vertebra id ``id`` it is numbered after;
    None for every other label and convention. The endplate label covers both endplates of the
    disc 100 + id: the imaging code gives each voxel to the vertebra it touches."""
    conv = LabelConvention.parse(convention)
    as_int = _as_label(label)
    if conv is not _TPTBOX or as_int is None:
        return None
    owner = as_int - _ENDPLATE_OFFSET
    return owner if owner in _TPTBOX_VERTEBRAE else None


def label_role(label: int, convention: LabelConvention | str) -> str:
    """What ``label`` is in ``convention``, for messages: ``"L1"``, ``"all vertebrae"``,
    ``"disc below T12"``, ``"endplates of disc below T12"``, ``"sacrum"``, ``"rib"``,
    ``"not a vertebra"`` or ``"unknown id"``."""
    conv = LabelConvention.parse(convention)
    as_int = _as_label(label)
    if as_int is None:
        return "unknown id"
    level = level_for_label(as_int, conv)
    if level is not None:
        return str(level)
    if as_int in group_labels([as_int], conv):
        return "all vertebrae"
    if conv is _TPTBOX:
        for offset, what in ((_DISC_OFFSET, "disc"), (_ENDPLATE_OFFSET, "endplates of disc")):
            above = _VERSE_LEVELS.get(as_int - offset)
            if above is not None:
                return f"{what} below {above}"
        if as_int in _TPTBOX_OTHER:
            return "rib" if as_int >= 40 else "sacrum/coccyx"
        return "unknown id"
    if (conv is _TS_MR and as_int == 20) or (conv is _TS_VB and as_int == 2):
        return "intervertebral discs"
    if (conv, as_int) in {(_TS, 25), (_TS_MR, 18), (_TS_VMR, 1)}:
        return "sacrum"
    if as_int > _MAX_LABEL.get(conv, 0) or as_int < 0:
        return "unknown id"
    return "not a vertebra"


def totalsegmentator_name(level: VertebralLevel | str) -> str:
    """TotalSegmentator's class name of ``level`` (``L1`` -> ``"vertebrae_L1"``).

    Raises :class:`ConventionError` for T13 and L6, which TotalSegmentator does not label.
    """
    lv = VertebralLevel.parse(level)
    label_for_level(lv, _TS)  # raises for the variants
    return f"{_TS_PREFIX}{lv.value}"


def level_from_totalsegmentator_name(name: str) -> VertebralLevel:
    """The level of a TotalSegmentator class name (``"vertebrae_L1"`` -> ``L1``).

    Exactly ``vertebrae_<level>`` (surrounding whitespace ignored, level letters any case) with a
    level TotalSegmentator labels; ``"sacrum"``, organ names, ``"vertebrae_T13"`` and anything
    else raise :class:`ConventionError`.
    """
    text = name.strip() if isinstance(name, str) else None
    if text is not None and text.lower().startswith(_TS_PREFIX):
        try:
            level = VertebralLevel.parse(text[len(_TS_PREFIX) :])
        except LevelError:
            level = None
        if level is not None and level in _INVERSE[_TS]:
            return level
    raise ConventionError(
        f"TotalSegmentator name {name!r} is not a vertebra; expected 'vertebrae_C1' .. "
        "'vertebrae_C7', 'vertebrae_T1' .. 'vertebrae_T12', 'vertebrae_L1' .. 'vertebrae_L5' "
        "or 'vertebrae_S1'"
    )


def vertebra_labels(
    labels: Iterable[int], convention: LabelConvention | str
) -> dict[int, VertebralLevel]:
    """The labels of ``labels`` that name a vertebra in ``convention``, mapped to their level.

    Ordered by level (cranial first). Non-vertebra labels are dropped silently (see
    :func:`level_for_label`); so are the one-label conventions' labels (see
    :func:`group_labels`).
    """
    conv = LabelConvention.parse(convention)
    mapped = {}
    for label in set(labels):
        level = level_for_label(label, conv)
        if level is not None:
            mapped[int(label)] = level
    return dict(sorted(mapped.items(), key=lambda item: item[1].rank))


def _fix_labels(labels: Iterable[int]) -> set[int]:
    found: set[int] = set()
    for label in labels:
        as_int = _as_label(label)
        if as_int is None:
            raise ConventionError(f"label {label!r} is not an integer label id")
        if as_int < 0:
            raise ConventionError(f"label {as_int} is negative; expected label ids >= 0")
        found.add(as_int)
    found.discard(0)
    return found


# -- readings -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reading:
    """One way of reading a label map's ids.

    ``key`` is the convention's value (or :data:`SUBREGION_READING`); ``possible`` False with the
    ``reason`` when the ids (or the modality, or the file's own label table) rule it out;
    ``vertebrae``: label -> level of the labels it names; ``group``: labels holding several
    unnamed vertebrae; ``endplates``: endplate label -> the vertebra id it is numbered after;
    ``ruled_by``: what ruled it out (``"ids"``, ``"modality"``, ``"names"``; empty if possible).
    """

    key: str
    convention: LabelConvention | None
    possible: bool
    reason: str
    vertebrae: dict[int, VertebralLevel] = field(default_factory=dict)
    group: tuple[int, ...] = ()
    endplates: dict[int, int] = field(default_factory=dict)
    ruled_by: str = ""

    @property
    def title(self) -> str:
        """Human-readable name of the reading."""
        if self.convention is None:
            return "SPINEPS/TPTBox subregion map"
        return self.convention.label

    def summary(self) -> str:
        """What the reading makes of the labels (``"30=L2, 31=L1"``)."""
        parts = [f"{k}={v}" for k, v in sorted(self.vertebrae.items())]
        parts += [f"{k}=all vertebrae" for k in self.group]
        return ", ".join(parts) if parts else "no vertebra"


def _names_conflict(conv: LabelConvention, found: set[int], names: Mapping[int, str]) -> str | None:
    """Why the file's own label table contradicts ``conv`` (None when it does not)."""
    for label in sorted(found):
        name = names.get(label)
        if name is None:
            continue
        text = name.strip()
        lower = text.lower()
        level = level_for_label(label, conv)
        grouped = label in group_labels(found, conv) if conv is not _BINARY else False
        if lower in _GROUP_NAMES:
            if not grouped:
                return f"the file's label table names {label} {text!r}"
            continue
        named: VertebralLevel | None = None
        if lower.startswith(_TS_PREFIX):
            try:
                named = VertebralLevel.parse(text[len(_TS_PREFIX) :])
            except LevelError:
                named = None
        if named is not None and level is not named:
            return f"the file's label table names {label} {text!r}"
        if named is None and (level is not None or grouped):
            return f"the file's label table names {label} {text!r}, not a vertebra"
    return None


def _tptbox_extra(found: set[int]) -> set[int]:
    return {x for x in found if x > VERSE_MAX_LABEL}


def _reading(conv: LabelConvention, found: set[int], modality: Modality | None) -> Reading:
    r = _id_reading(conv, found, modality)
    if r.possible or r.ruled_by:
        return r
    return Reading(r.key, r.convention, False, r.reason, ruled_by="ids")


def _id_reading(conv: LabelConvention, found: set[int], modality: Modality | None) -> Reading:
    key = conv.value
    vertebrae = vertebra_labels(found, conv)
    group = group_labels(found, conv)
    wanted = conv.modality
    if wanted is not None and modality is not None and modality is not wanted:
        made_for = f"{_article(wanted.label)} {wanted.label} convention"
        return Reading(
            key,
            conv,
            False,
            f"{made_for}, and this scan is {modality.label}",
            ruled_by="modality",
        )
    if conv is _BINARY:
        if len(found) != 1:
            return Reading(key, conv, False, f"{len(found)} labels, a binary mask has one")
        return Reading(key, conv, True, "one label", group=group)
    if conv is _TPTBOX:
        unknown = sorted(
            x
            for x in found
            if x not in _TPTBOX_VERTEBRAE
            and x not in _TPTBOX_OTHER
            and (x - _DISC_OFFSET) not in _TPTBOX_VERTEBRAE
            and (x - _ENDPLATE_OFFSET) not in _TPTBOX_VERTEBRAE
        )
        if unknown:
            return Reading(key, conv, False, f"it has no label {ids_text(unknown)}")
        if not _tptbox_extra(found):
            return Reading(key, conv, False, "no disc/endplate/rib id: the same as VerSe")
        if not vertebrae:
            return Reading(key, conv, False, "no vertebra id (1..26, 28)")
        endplates = {x: owner for x in found if (owner := endplate_of(x, conv)) is not None}
        return Reading(key, conv, True, "", vertebrae, endplates=endplates)
    top = _MAX_LABEL[conv]
    beyond = sorted(x for x in found if x > top)
    if beyond:
        return Reading(key, conv, False, f"its ids end at {top}, the map has {ids_text(beyond)}")
    if not vertebrae and not group:
        return Reading(key, conv, False, "no label of it is a vertebra")
    return Reading(key, conv, True, "", vertebrae, group)


def _subregion_reading(found: set[int]) -> Reading:
    posterior = found & _SUBREGION_POSTERIOR
    if found <= _SUBREGION_IDS and found & _SUBREGION_BODY and len(posterior) >= 2:
        return Reading(
            SUBREGION_READING,
            None,
            True,
            "SPINEPS/TPTBox subregion ids (41-48 posterior elements, 49/50 vertebral body)",
        )
    return Reading(SUBREGION_READING, None, False, "not the subregion ids 41-50", ruled_by="ids")


def _article(word: str) -> str:
    return "an" if word[:1] in "AEIMO" else "a"


def ids_text(ids: Iterable[int]) -> str:
    """``"1, 2, 5"`` (at most 12 ids shown) for messages."""
    shown = sorted(ids)
    text = ", ".join(str(x) for x in shown[:12])
    return text + (f" ... ({len(shown)} labels)" if len(shown) > 12 else "")


def candidate_readings(
    labels: Iterable[int],
    *,
    modality: Modality | str | None = None,
    names: Mapping[int, str] | None = None,
) -> tuple[Reading, ...]:
    """Every reading of the label ids ``labels`` (background 0 ignored), possible or not.

    ``modality``: the scan's modality when known (None: unknown) -- a CT task's map on an MRI
    (or the reverse) is ruled out. ``names``: the file's own id -> class-name table when it has
    one (TotalSegmentator writes it into the NIfTI header); a reading that contradicts it is
    ruled out. Geometry is not looked at here (see :mod:`spinewatch.imaging.label_check`).
    """
    found = _fix_labels(labels)
    mod = None if modality is None else Modality.parse(modality)
    readings = [_reading(conv, found, mod) for conv in LabelConvention]
    readings.append(_subregion_reading(found))
    if names:
        checked = []
        for r in readings:
            conflict = (
                _names_conflict(r.convention, found, names)
                if r.possible and r.convention is not None
                else None
            )
            checked.append(
                r
                if conflict is None
                else Reading(
                    r.key, r.convention, False, conflict, r.vertebrae, r.group, ruled_by="names"
                )
            )
        readings = checked
    return tuple(readings)


def _same_tissue(a: Reading, b: Reading) -> bool:
    """True when two group readings take the same labels as the (unnamed) vertebrae."""
    return not a.vertebrae and not b.vertebrae and bool(a.group) and a.group == b.group


def merge_equivalent(readings: Iterable[Reading]) -> list[Reading]:
    """Drop readings that say the same as another: several one-label readings of the same label
    (a binary mask or TotalSegmentator vertebrae_body with label 1) are one reading, kept as
    the plainer "binary mask" unless that one was ruled out."""
    kept: list[Reading] = []
    for r in readings:
        twin = next((i for i, k in enumerate(kept) if _same_tissue(r, k)), None)
        if twin is None:
            kept.append(r)
        elif r.convention is _BINARY:
            kept[twin] = r
    return kept


def is_subregion_map(labels: Iterable[int]) -> bool:
    """True when the ids are those of a SPINEPS/TPTBox subregion map (41-48 posterior elements
    with 49/50 vertebral body, and no other id)."""
    return _subregion_reading(_fix_labels(labels)).possible


def _refusal_text(found: Iterable[int], readings: Iterable[Reading]) -> str:
    """``labels 1, 2: VerSe rejected (...); ...`` for a refusal message."""
    parts = [f"{r.title}: {r.reason}" for r in readings]
    return f"labels {ids_text(found)}; readings considered -- " + "; ".join(parts)


def detect_convention(
    labels: Iterable[int],
    *,
    modality: Modality | str | None = None,
    names: Mapping[int, str] | None = None,
) -> LabelConvention:
    """Decide the convention of a label map from its ids alone (for ``auto``).

    Decides only when exactly one reading of :func:`candidate_readings` is possible (readings
    that take the same label as all vertebrae count once); otherwise raises
    :class:`ConventionError` naming the labels, every reading considered and why it was ruled
    out, and telling the user to pass ``--labels-convention``. A subregion map is refused with
    what it is. The ids cannot tell VerSe from TotalSegmentator vertebrae_mr (both use 1..25)
    without the modality, nor a one-label map's convention: the imaging code decides those
    from the geometry (:func:`spinewatch.imaging.analysis.resolve_convention`).

    Examples: the TotalSegmentator example map {30, 31, 32, 33} is TotalSegmentator total (no
    other convention has a vertebra among those ids); the VerSe004 mask {16..24} with
    ``modality="CT"`` is VerSe (vertebrae_mr is an MRI task).
    """
    found = _fix_labels(labels)
    if not found:
        raise ConventionError(
            "cannot detect the label convention: the label map holds no label other than "
            f"background 0; {_ADVICE}"
        )
    readings = candidate_readings(found, modality=modality, names=names)
    possible = merge_equivalent(r for r in readings if r.possible)
    if len(possible) == 1 and possible[0].convention is not None:
        return possible[0].convention
    if len(possible) == 1:
        raise ConventionError(subregion_refusal(found))
    if not possible:
        raise ConventionError(
            "cannot detect the label convention: no convention reads these labels as vertebrae "
            f"({_refusal_text(found, readings)}); {_ADVICE}"
        )
    shown = "; ".join(f"{r.title} ({r.summary()})" for r in possible)
    raise ConventionError(
        f"cannot detect the label convention of labels {ids_text(found)} from the ids alone: "
        f"{len(possible)} readings are possible -- {shown}; {_ADVICE}"
    )


def subregion_refusal(found: Iterable[int]) -> str:
    """The message that refuses a SPINEPS/TPTBox subregion map as a vertebra label map."""
    return (
        f"labels {ids_text(set(found))} are a SPINEPS/TPTBox subregion map: they name parts of "
        "vertebrae (41-48 posterior elements, 49/50 vertebral body, 60/61 spinal cord/canal), "
        "not levels, so no vertebra can be named from it; give the instance map instead "
        "(the '..._seg-vert_...' file: vertebra ids 1-28, discs 100 + id, endplates 200 + id)"
    )
