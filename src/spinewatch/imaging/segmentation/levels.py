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
    line per fact used; ``method``: ``sacrum``, ``ribs``, ``sacrum+ribs`` or ``relative``."""

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


def name_levels(
    n_segments: int,
    sacrum: bool,
    ribs: dict[int, bool],
    *,
    spacing_problem: str | None = None,
    sacrum_note: str = "",
) -> LevelNaming:
    """Name ``n_segments`` segments (1 = most caudal): ``sacrum`` (segment 1 is the sacrum),
    ``ribs`` (segment -> a rib was found articulating with it), ``spacing_problem`` (why the
    disc spacing is implausible, or None), ``sacrum_note`` (the sacrum finding, for the
    evidence)."""
    first = 2 if sacrum else 1
    count = n_segments - first + 1
    evidence: list[str] = []
    rib_segments = sorted(k for k in range(first, n_segments + 1) if ribs.get(k, False))
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
