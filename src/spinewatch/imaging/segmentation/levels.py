"""Level names for the segmented vertebrae, with the evidence behind them.

Counting rules (clinical practice; see :mod:`.landmarks` for the variants and their frequency):

* **sacrum in view**: the vertebra above it is L5, and upward from there;
* **ribs**: the last rib-bearing vertebra is T12 when a rib-free vertebra follows it in view;
* both: they must agree (five rib-free vertebrae between the last rib and the sacrum); when they
  do not -- 11 or 13 rib pairs, or a lumbosacral transitional vertebra -- the names are counted
  from the sacrum and marked unconfirmed, the disagreement stated;
* neither: the names are relative (the most caudal vertebra in view is assumed to be L5 when no
  rib is seen, T12 when all bear ribs) and every level is unconfirmed.

A confirmed name is what a reader would write after counting from the same landmark; it is not
proof against an anomaly that the landmark itself hides.
"""

from __future__ import annotations

from dataclasses import dataclass

from spinewatch.core.levels import VertebralLevel

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


def name_levels(n_segments: int, sacrum: bool, ribs: dict[int, bool]) -> LevelNaming:
    """Name ``n_segments`` segments (1 = most caudal) from the sacrum flag and rib flags."""
    first = 2 if sacrum else 1
    count = n_segments - first + 1
    evidence: list[str] = []
    # ribs: the lowest rib-bearing segment with a rib-free segment directly below it, scanning
    # from the top down through the contiguous run of rib-bearing segments
    last_rib: int | None = None
    top = n_segments
    if ribs.get(top, False):
        k = top
        while k > first and ribs.get(k - 1, False):
            k -= 1
        if k > first:
            last_rib = k
    if sacrum:
        evidence.append("sacrum in view: the vertebra above it is L5")
        lv = _upward_from(VertebralLevel.L5, count)
        method = "sacrum"
        confirmed = lv is not None
        if last_rib is not None:
            lumbar = last_rib - first
            if lumbar == 5:
                evidence.append("last rib-bearing vertebra is the 6th above the sacrum: T12")
                method = "sacrum+ribs"
            else:
                evidence.append(
                    f"ribs and sacrum disagree: {lumbar} rib-free vertebrae above the sacrum "
                    "(11 or 13 rib pairs, or a lumbosacral transitional vertebra); named from "
                    "the sacrum, unconfirmed"
                )
                confirmed = False
        if lv is not None:
            return LevelNaming(lv, True, confirmed, method, tuple(evidence))
    if last_rib is not None:
        evidence.append("last rib-bearing vertebra (a rib-free one below it) named T12")
        t12_index = last_rib - first  # 0-based from the most caudal named segment
        caudal = _ORDER.index(VertebralLevel.T12) + t12_index
        if caudal < len(_ORDER) - 1:  # S1 is not a free vertebra
            lv = _upward_from(_ORDER[caudal], count)
            if lv is not None:
                return LevelNaming(lv, False, True, "ribs", tuple(evidence))
    any_rib = any(ribs.get(k, False) for k in range(first, n_segments + 1))
    anchor = (
        VertebralLevel.T12
        if any_rib and all(ribs.get(k, False) for k in range(first, n_segments + 1))
        else VertebralLevel.L5
    )
    evidence.append(
        "no sacrum, C2 or rib transition in view: names are relative (most caudal vertebra "
        f"taken as {anchor}), unconfirmed"
    )
    lv = _upward_from(anchor, count)
    if lv is None:
        lv = tuple(_ORDER[len(_ORDER) - 2 - k] for k in range(min(count, len(_ORDER) - 1)))
    return LevelNaming(lv, sacrum, False, "relative", tuple(evidence))
