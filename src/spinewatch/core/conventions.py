"""Label-map conventions -> vertebral levels. The ONE place label ids are converted.

Two conventions are supported:

* **TotalSegmentator v2, task "total"** (:attr:`LabelConvention.TOTALSEGMENTATOR`): 1..24 organs,
  25 ``sacrum`` (the sacrum below S1; not a single vertebra, so not a level), 26 ``vertebrae_S1``,
  27 L5, 28 L4, 29 L3, 30 L2, 31 L1, 32 T12, 33 T11 ... 43 T1, 44 C7 ... 50 C1, then 51..117
  heart, vessels, muscles, ribs... No T13 or L6.
* **VerSe** (:attr:`LabelConvention.VERSE`): 1..7 C1..C7, 8..19 T1..T12, 20..25 L1..L6, 26 sacrum
  (read as S1), 28 T13. 27 is not a vertebra (coccyx in some releases; unused here).

>>> level_for_label(31, LabelConvention.TOTALSEGMENTATOR)
<VertebralLevel.L1: 'L1'>
>>> label_for_level("L1", LabelConvention.VERSE)
20
"""

from __future__ import annotations

import enum
from collections.abc import Iterable

from spinewatch.core._enum import parse_enum
from spinewatch.core.errors import InputError
from spinewatch.core.levels import LevelError, VertebralLevel

__all__ = [
    "TOTALSEGMENTATOR_MAX_LABEL",
    "VERSE_MAX_LABEL",
    "ConventionError",
    "LabelConvention",
    "detect_convention",
    "label_for_level",
    "level_for_label",
    "level_from_totalsegmentator_name",
    "totalsegmentator_name",
    "vertebra_labels",
]

TOTALSEGMENTATOR_MAX_LABEL = 117
"""Highest label of the TotalSegmentator v2 "total" task."""
VERSE_MAX_LABEL = 28
"""Highest label VerSe uses (28 = T13)."""


class ConventionError(InputError):
    """An unknown label convention, or a level/label a convention cannot express."""


class LabelConvention(enum.Enum):
    """How integer labels in a vertebra label map name vertebrae."""

    TOTALSEGMENTATOR = "totalsegmentator"
    VERSE = "verse"

    @property
    def label(self) -> str:
        """Human-readable name (``"TotalSegmentator v2 (total)"``)."""
        return (
            "TotalSegmentator v2 (total)" if self is LabelConvention.TOTALSEGMENTATOR else "VerSe"
        )

    @classmethod
    def parse(cls, value: LabelConvention | str) -> LabelConvention:
        """``"totalsegmentator"``, ``"verse"`` (any case) or a member; else ConventionError."""
        return parse_enum(cls, value, what="label convention", error=ConventionError)


_L = VertebralLevel

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
_VERSE_LEVELS: dict[int, VertebralLevel] = {
    **{i: getattr(_L, f"C{i}") for i in range(1, 8)},  # 1..7 C1..C7
    **{7 + i: getattr(_L, f"T{i}") for i in range(1, 13)},  # 8..19 T1..T12
    **{19 + i: getattr(_L, f"L{i}") for i in range(1, 7)},  # 20..25 L1..L6
    26: _L.S1,
    28: _L.T13,
}
_TABLES: dict[LabelConvention, dict[int, VertebralLevel]] = {
    LabelConvention.TOTALSEGMENTATOR: _TS_LEVELS,
    LabelConvention.VERSE: _VERSE_LEVELS,
}
_INVERSE: dict[LabelConvention, dict[VertebralLevel, int]] = {
    convention: {level: label for label, level in table.items()}
    for convention, table in _TABLES.items()
}

_TS_PREFIX = "vertebrae_"


def level_for_label(label: int, convention: LabelConvention | str) -> VertebralLevel | None:
    """The vertebra that ``label`` denotes in ``convention``, or None when it is not a vertebra.

    None is returned for background (0), organs, ribs, TotalSegmentator's ``sacrum`` (25) and any
    unknown integer; nothing is raised for unknown ints.
    """
    conv = LabelConvention.parse(convention)
    if isinstance(label, bool):
        return None
    try:
        as_int = int(label)
    except (TypeError, ValueError, OverflowError):
        return None
    if as_int != label:
        return None
    return _TABLES[conv].get(as_int)


def label_for_level(level: VertebralLevel | str, convention: LabelConvention | str) -> int:
    """The label id of ``level`` in ``convention``.

    Raises :class:`ConventionError` when the convention has no label for it (T13 and L6 in
    TotalSegmentator) and :class:`~spinewatch.core.levels.LevelError` for a non-level.
    """
    conv = LabelConvention.parse(convention)
    lv = VertebralLevel.parse(level)
    try:
        return _INVERSE[conv][lv]
    except KeyError:
        raise ConventionError(
            f"level {lv} cannot be expressed in the {conv.label} convention; expected one of "
            f"{', '.join(str(x) for x in sorted(_INVERSE[conv]))}"
        ) from None


def totalsegmentator_name(level: VertebralLevel | str) -> str:
    """TotalSegmentator's class name of ``level`` (``L1`` -> ``"vertebrae_L1"``).

    Raises :class:`ConventionError` for T13 and L6, which TotalSegmentator does not label.
    """
    lv = VertebralLevel.parse(level)
    label_for_level(lv, LabelConvention.TOTALSEGMENTATOR)  # raises for the variants
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
        if level is not None and level in _INVERSE[LabelConvention.TOTALSEGMENTATOR]:
            return level
    raise ConventionError(
        f"TotalSegmentator name {name!r} is not a vertebra; expected 'vertebrae_C1' .. "
        "'vertebrae_C7', 'vertebrae_T1' .. 'vertebrae_T12', 'vertebrae_L1' .. 'vertebrae_L5' "
        "or 'vertebrae_S1'"
    )


def vertebra_labels(
    labels: Iterable[int], convention: LabelConvention | str
) -> dict[int, VertebralLevel]:
    """The labels of ``labels`` that are vertebrae in ``convention``, mapped to their level.

    Ordered by level (cranial first). Non-vertebra labels are dropped silently (see
    :func:`level_for_label`).
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
        if isinstance(label, bool) or not isinstance(label, int):
            try:
                as_int = int(label)
            except (TypeError, ValueError):
                as_int = None
            if as_int is None or isinstance(label, bool) or as_int != label:
                raise ConventionError(f"label {label!r} is not an integer label id")
            label = as_int
        if label < 0:
            raise ConventionError(f"label {label} is negative; expected label ids >= 0")
        found.add(label)
    found.discard(0)
    return found


def detect_convention(labels: Iterable[int]) -> LabelConvention:
    """Decide the convention of a label map from the set of labels it contains (for ``auto``).

    The rule decides only where one reading is impossible or useless, and otherwise refuses
    (:class:`ConventionError`, telling the user to pass ``--labels-convention``). Background 0 is
    ignored.

    1. No label other than 0 -> refuse (nothing to decide from).
    2. A label above 117 -> refuse (neither convention uses it).
    3. Any label above 28 -> TotalSegmentator: VerSe never uses a label > 28.
    4. All labels within 1..25 -> VerSe *if* they form one run of consecutive ids (VerSe masks label
       the consecutive vertebrae in view, and 1..25 are consecutive levels C1..L6). Read as
       TotalSegmentator such a map would hold no vertebra at all (1..24 are organs, 25 the
       sacrum), so it could not be a vertebra map. With a gap the set could be a handful of
       TotalSegmentator organs -> refuse.
    5. Otherwise (all labels <= 28 with some in 26..28, alone or mixed with lower ones) -> refuse:
       26..28 are S1/L5/L4 in TotalSegmentator but sacrum/-/T13 in VerSe, and a pelvic
       TotalSegmentator map (bowel, bladder, prostate, sacrum, S1, L5, L4) uses only labels
       <= 28 too.

    Examples: the TotalSegmentator example map {30, 31, 32, 33} (with or without organs) is
    TotalSegmentator by rule 3; the VerSe004 mask {16..24} is VerSe by rule 4.
    """
    found = _fix_labels(labels)
    advice = "pass --labels-convention totalsegmentator or --labels-convention verse"
    if not found:
        raise ConventionError(
            f"cannot detect the label convention: the label map holds no label other than "
            f"background 0; {advice}"
        )
    highest = max(found)
    if highest > TOTALSEGMENTATOR_MAX_LABEL:
        raise ConventionError(
            f"cannot detect the label convention: label {highest} is used by neither VerSe "
            f"(1..{VERSE_MAX_LABEL}) nor TotalSegmentator v2 total "
            f"(1..{TOTALSEGMENTATOR_MAX_LABEL}); {advice}"
        )
    if highest > VERSE_MAX_LABEL:
        return LabelConvention.TOTALSEGMENTATOR
    shown = sorted(found)
    if highest <= 25:
        if highest - min(found) + 1 == len(found):
            return LabelConvention.VERSE
        raise ConventionError(
            f"cannot detect the label convention of labels {shown}: they are not consecutive, so "
            f"they may be TotalSegmentator organs rather than VerSe vertebrae; {advice}"
        )
    raise ConventionError(
        f"cannot detect the label convention of labels {shown}: all are <= {VERSE_MAX_LABEL} and "
        f"some are in 26..28 (S1/L5/L4 in TotalSegmentator, sacrum/T13 in VerSe), which both "
        f"conventions use; {advice}"
    )
