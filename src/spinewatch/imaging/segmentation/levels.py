"""Level names for the segmented vertebrae, with the evidence behind them.

Counting rules (clinical practice; see :mod:`.landmarks` for the variants and their frequency):

* **sacrum in view** (the bone below the lowest disc joins both ilia within a pitch of it): the
  vertebra above it is L5, and upward from there. Confirmed only when the discs counted are
  evenly spaced (no gap between neighbouring discs outside ``GAP_RANGE`` pitches, which would
  mean a disc was missed or a body split) and no rib contradicts the count;
* **ribs** are positive evidence only: a rib found articulating with a vertebra makes it
  thoracic. A rib on a vertebra the sacrum count calls lumbar (11 or 13 rib pairs, a lumbar rib,
  a lumbosacral transitional vertebra, or a miscount) makes every name unconfirmed. Ribs alone
  name the lowest rib-bearing vertebra T12 but stay *unconfirmed*: at 2-3 mm a 12th rib's head
  often breaks up, so "no rib found" is not proof of a lumbar vertebra, and the count would
  silently shift by one;
* **C2 in view** (:mod:`.dens`: the body above the most cranial disc rises without a disc into
  a slender process surrounded by the atlas ring): that body is C2, the ring C1, and the levels
  are counted downward (C3 ... C7, T1 ...). Confirmed only when the dens ends inside the scan and
  its ring is seen, the disc spacing is plausible, and no rib contradicts the count: the first
  rib-bearing vertebra is T1 and C7 has none -- a rib found on a vertebra counted as cervical (a
  cervical rib, a variant, or a miscount) makes every name unconfirmed. With the
  sacrum in view too, both counts must agree (C2..L5 = 23 vertebrae) or nothing is confirmed;
* neither: the names are relative (the most caudal vertebra in view is assumed to be L5) and
  every level is unconfirmed.

A confirmed name is what a reader would write after counting from the same landmark; it is not
proof against an anomaly that the landmark itself hides.
"""

from __future__ import annotations

from dataclasses import dataclass

from spinewatch.core.levels import Region, VertebralLevel

__all__ = ["LevelNaming", "name_levels"]

_ORDER = [lv for lv in VertebralLevel if not lv.is_variant]  # C1 .. L5, S1 (cranial first)


@dataclass(frozen=True)
class LevelNaming:
    """Names for segments 1..n (1 = most caudal): ``levels[i]`` names segment ``i + 1``;
    ``sacrum``: segment 1 is the sacrum (not in ``levels``); ``confirmed``; ``evidence``: one
    line per fact used; ``method``: ``sacrum``, ``ribs``, ``sacrum+ribs``, ``c2``, ``c2+ribs``,
    ``c2+sacrum`` or ``relative``."""

    levels: tuple[VertebralLevel, ...]
    sacrum: bool
    confirmed: bool
    method: str
    evidence: tuple[str, ...]


def _upward_from(level: VertebralLevel, count: int) -> tuple[VertebralLevel, ...] | None:
    i = _ORDER.index(level)
    if i - (count - 1) < 0:
        return None
    return tuple(_ORDER[i - k] for k in range(count))


def _relative(count: int, sacrum: bool, evidence: list[str], anchor: VertebralLevel) -> LevelNaming:
    evidence.append(
        "no sacrum, C2 or rib transition usable: names are relative (most caudal vertebra "
        f"taken as {anchor}), unconfirmed"
    )
    lv = _upward_from(anchor, count)
    if lv is None:
        lv = tuple(_ORDER[len(_ORDER) - 2 - k] for k in range(min(count, len(_ORDER) - 1)))
    return LevelNaming(lv, sacrum, False, "relative", tuple(evidence))


def _check_ribs(
    lv: tuple[VertebralLevel, ...], rib_segments: list[int], first: int, evidence: list[str]
) -> tuple[bool, bool]:
    """(consistent, agree): no rib on a vertebra counted as lumbar; the lowest rib on T12."""
    lumbar_ribs = [lv[k - first] for k in rib_segments if lv[k - first].region is Region.LUMBAR]
    if lumbar_ribs:
        names = ", ".join(str(x) for x in lumbar_ribs)
        evidence.append(
            f"ribs and sacrum disagree: a rib articulates with the vertebra counted as {names} "
            "from the sacrum (a lumbar rib, 11 or 13 rib pairs, a transitional vertebra, or a "
            "miscount); unconfirmed"
        )
        return False, False
    if not rib_segments:
        return True, False
    lowest = lv[min(rib_segments) - first]
    if lowest is VertebralLevel.T12:
        evidence.append("ribs agree: the lowest rib-bearing vertebra found is T12 by the count")
        return True, True
    evidence.append(f"ribs found from {lowest} upward (no contradiction; T12's rib not seen)")
    return True, False


def _downward_from_c2(c2: int, first: int, n_segments: int) -> tuple[VertebralLevel, ...] | None:
    """Names of segments ``first..n_segments`` with segment ``c2`` named C2 (None when the
    count runs past L5 or above C1)."""
    i2 = _ORDER.index(VertebralLevel.C2)
    idx = [i2 + (c2 - k) for k in range(first, n_segments + 1)]
    if min(idx) < 0 or max(idx) > _ORDER.index(VertebralLevel.L5):
        return None
    return tuple(_ORDER[i] for i in idx)


def _check_ribs_from_c2(
    lv: tuple[VertebralLevel, ...], rib_segments: list[int], first: int, evidence: list[str]
) -> tuple[bool, bool]:
    """(consistent, agree): no rib on a vertebra counted as cervical; the most cranial rib on
    T1."""
    cervical = [lv[k - first] for k in rib_segments if lv[k - first].region is Region.CERVICAL]
    if cervical:
        names = ", ".join(str(x) for x in cervical)
        evidence.append(
            f"ribs and C2 disagree: a rib articulates with the vertebra counted as {names} from "
            "C2 (a cervical rib -- a variant -- or a miscount); unconfirmed"
        )
        return False, False
    if not rib_segments:
        return True, False
    highest = lv[max(rib_segments) - first]
    if highest is VertebralLevel.T1:
        evidence.append(
            "ribs agree: the most cranial rib-bearing vertebra found is T1 by the count "
            "(C7 has none)"
        )
        return True, True
    evidence.append(f"ribs found from {highest} downward (no contradiction; T1's rib not seen)")
    return True, False


def _from_c2(
    n_segments: int,
    sacrum: bool,
    rib_segments: list[int],
    c2: int,
    c2_confirmable: bool,
    c2_note: str,
    spacing_problem: str | None,
) -> LevelNaming | None:
    first = 2 if sacrum else 1
    lv = _downward_from_c2(c2, first, n_segments)
    evidence: list[str] = []
    if lv is None:
        return None
    evidence.append(
        "C2 in view" + (f" ({c2_note})" if c2_note else "") + ": counted downward from C2"
    )
    confirmed = c2_confirmable
    if not c2_confirmable:
        evidence.append("the dens is not whole in view or its ring not seen: unconfirmed")
    if spacing_problem:
        evidence.append(f"{spacing_problem}: a disc may be missed; unconfirmed")
        confirmed = False
    consistent, agree = _check_ribs_from_c2(lv, rib_segments, first, evidence)
    confirmed = confirmed and consistent
    method = "c2+ribs" if agree else "c2"
    if sacrum:
        if lv[0] is VertebralLevel.L5:
            evidence.append("sacrum in view too: the vertebra above it is L5 by the count from C2")
            method = "c2+sacrum"
        else:
            evidence.append(
                f"C2 and sacrum disagree: the vertebra above the sacrum is {lv[0]} counting from "
                f"C2 ({c2 - first + 1} vertebrae from C2 down; C2..L5 are 23): a transitional "
                "vertebra, 11 or 13 rib pairs, or a miscount; unconfirmed"
            )
            confirmed = False
    return LevelNaming(lv, sacrum, confirmed, method, tuple(evidence))


def name_levels(
    n_segments: int,
    sacrum: bool,
    ribs: dict[int, bool],
    *,
    spacing_problem: str | None = None,
    sacrum_note: str = "",
    c2: int | None = None,
    c2_confirmable: bool = False,
    c2_note: str = "",
) -> LevelNaming:
    """Name ``n_segments`` segments (1 = most caudal): ``sacrum`` (segment 1 is the sacrum),
    ``ribs`` (segment -> a rib was found articulating with it), ``spacing_problem`` (why the
    disc spacing is implausible, or None), ``sacrum_note`` (the sacrum finding, for the
    evidence); ``c2``: the segment found to be C2 (the segment above it, if any, is C1),
    ``c2_confirmable``: its dens is whole in view and ringed, ``c2_note``: the finding."""
    first = 2 if sacrum else 1
    count = n_segments - first + 1
    evidence: list[str] = []
    rib_segments = sorted(k for k in range(first, n_segments + 1) if ribs.get(k, False))
    if c2 is not None:
        naming = _from_c2(
            n_segments, sacrum, rib_segments, c2, c2_confirmable, c2_note, spacing_problem
        )
        if naming is not None:
            return naming
        evidence.append(
            f"C2 found but the {n_segments - first + 1} vertebrae below it do not fit C1..L5; "
            "not used"
        )
    if sacrum:
        lv = _upward_from(VertebralLevel.L5, count)
        if lv is not None:
            evidence.append(
                "sacrum in view"
                + (f" ({sacrum_note})" if sacrum_note else "")
                + ": the vertebra above it is L5, counted upward"
            )
            confirmed = True
            if spacing_problem:
                evidence.append(f"{spacing_problem}: a disc may be missed; unconfirmed")
                confirmed = False
            consistent, agree = _check_ribs(lv, rib_segments, first, evidence)
            confirmed = confirmed and consistent
            method = "sacrum+ribs" if agree else "sacrum"
            return LevelNaming(lv, True, confirmed, method, tuple(evidence))
    if rib_segments:
        t12_index = min(rib_segments) - first
        caudal = _ORDER.index(VertebralLevel.T12) + t12_index
        if caudal <= _ORDER.index(VertebralLevel.L5):
            lv = _upward_from(_ORDER[caudal], count)
            if lv is not None:
                evidence.append(
                    "lowest vertebra with a rib found articulating with it named T12; without "
                    "the sacrum or C2 in view this is unconfirmed (a 12th rib not seen, or 11 or "
                    "13 rib pairs, would shift every name by one)"
                )
                return LevelNaming(lv, sacrum, False, "ribs", tuple(evidence))
    return _relative(count, sacrum, evidence, VertebralLevel.L5)
