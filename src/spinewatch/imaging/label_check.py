"""Does each label named a vertebra look like that vertebra? Geometry of labels, per level.

The ids of a label map say which vertebra a label is only under a convention; a wrong convention
(or a wrong id) turns back muscles into "C4" and a lumbar vertebra into "C6". This module
measures each candidate label (:func:`measure_labels`: volume, centroid, craniocaudal extent,
whether it touches the scan's edge) and judges a reading of the ids (:func:`check_reading`):

* **size for its level**: the label's volume within [V/8, 2.5 V] and its extent along the
  world S axis within [0.2 s, 3 s] (:data:`LEVEL_NORMS`: V the nominal whole-vertebra volume,
  s the nominal centroid spacing of the level). Lower bounds are not applied to a label that
  touches the scan's edge (it may be cut). The bounds are deliberately broad: a body-only label
  or a collapsed vertebra (vertebra plana keeps ~ a quarter of its height) must pass, a back
  muscle (75-190 ml, spanning the whole scan) or a lumbar vertebra read as cervical (53 ml as
  "C6") must not;
* **midline**: the label's centroid within :data:`MAX_MIDLINE_OFFSET_MM` side to side and
  :data:`MAX_AP_OFFSET_MM` front to back of the median centroid of the (up to 4) other
  candidate labels nearest along the column, and not one of a mirror pair (two labels at the
  same height and depth either side of the midline: paired muscles, kidneys, psoas);
* **craniocaudal order**: sorted by level, the labels must descend along world S; labels
  outside the longest descending run are out of order;
* **spacing**: consecutive labels (in level order) must be 0.4..2.0 times the nominal spacing
  of the levels between them apart (the upper bound only when one of them is cut by the scan's
  edge, whose centroid moves towards its neighbour). Labels at one height (the compartments of
  one vertebra, the subregions of a SPINEPS map) fail here.

A reading is plausible when at least one of its labels and at least half of them pass, when the
sizes of at most half of them contradict their levels (else the *numbering* is wrong: e.g.
SPINEPS counts from the top of the image when C2 is not in view) and when at most half of the
spacings are off.

Nominal figures (:data:`LEVEL_NORMS`) are engineering choices set wide around typical adult
anatomy, not published norms: cervical bodies are ~11 mm tall and ~15 x 20-23 mm across
(dry-bone morphometry of typical cervical vertebrae, Eur J Anat 2020;24(1):9-15), mid-thoracic
bodies 17-20 mm tall (Egwu et al., J Anat Soc India 2019;68:110-118); lumbar bodies are about
25-30 mm tall; discs add ~4-10 mm per segment; posterior elements roughly double a body's
volume. The SpineWatch phantom (C1 3.6 ml ... L5 41 ml) and the real maps in ``../shared/data``
(VerSe004 T9-L5 28-60 ml, TotalSegmentator L1 58 ml) lie well inside the bounds.

All coordinates are world RAS+ mm (the label map's affine); +z is superior.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from statistics import median
from typing import Any

import numpy as np

from spinewatch.core.conventions import Reading
from spinewatch.core.levels import ALL_LEVELS, VertebralLevel
from spinewatch.imaging.volume import LabelVolume

__all__ = [
    "LEVEL_NORMS",
    "MAX_AP_OFFSET_MM",
    "MAX_MIDLINE_OFFSET_MM",
    "LabelGeometry",
    "LabelVerdict",
    "LevelNorm",
    "ReadingCheck",
    "check_levels",
    "check_reading",
    "measure_labels",
    "stacked_neighbours",
]

Boxes = Sequence[tuple[slice, ...] | None]

#: A vertebra's centroid lies within this horizontal distance (mm) of the median centroid of its
#: nearest neighbours along the column: about the half-width of a lumbar body, more than the
#: step between neighbours of a scoliotic or lordotic spine, less than the offset of the
#: paraspinal muscles (40-50 mm to the side) or the aorta (30-45 mm in front). Engineering choice.
MAX_MIDLINE_OFFSET_MM = 30.0
#: ... and within this distance (mm) in front of or behind it (not judged for a label cut by the
#: scan's edge, which may be only the posterior elements of a vertebra). Engineering choice.
MAX_AP_OFFSET_MM = 40.0
#: Volume bounds as fractions of the nominal volume; extent bounds as multiples of the nominal
#: spacing (see the module docstring). Engineering choices.
VOLUME_MIN_FRACTION = 1 / 8
VOLUME_MAX_FACTOR = 2.5
EXTENT_MIN_FACTOR = 0.2
EXTENT_MAX_FACTOR = 3.0
SPACING_RANGE = (0.4, 2.0)
#: Mirror pair: two labels within these distances along S and A-P and this far apart in R-L.
_PAIR_MAX_DZ_MM = 15.0
_PAIR_MAX_DY_MM = 20.0
_PAIR_MIN_DX_MM = 30.0
_PAIR_MAX_VOLUME_RATIO = 2.5


@dataclass(frozen=True)
class LevelNorm:
    """Nominal adult figures of one level: whole-vertebra volume (ml), centroid spacing to the
    next level (mm) and the largest plausible craniocaudal extent of its label (mm)."""

    volume_ml: float
    spacing_mm: float
    max_extent_mm: float | None = None

    @property
    def volume_range_ml(self) -> tuple[float, float]:
        return (self.volume_ml * VOLUME_MIN_FRACTION, self.volume_ml * VOLUME_MAX_FACTOR)

    @property
    def extent_range_mm(self) -> tuple[float, float]:
        top = self.max_extent_mm or self.spacing_mm * EXTENT_MAX_FACTOR
        return (self.spacing_mm * EXTENT_MIN_FACTOR, top)


def _norms() -> dict[VertebralLevel, LevelNorm]:
    fixed = {
        "C1": (6, 15),
        "C2": (9, 16),
        "C3": (7, 16),
        "C4": (7, 16),
        "C5": (7, 16),
        "C6": (8, 16),
        "C7": (9, 17),
        "L1": (45, 31),
        "L2": (50, 32),
        "L3": (55, 33),
        "L4": (58, 33),
        "L5": (58, 33),
        "L6": (58, 33),
    }
    out = {VertebralLevel.parse(k): LevelNorm(float(v), float(s)) for k, (v, s) in fixed.items()}
    for n in range(1, 13):  # T1 12 ml / 19 mm ... T12 40 ml / 28 mm
        f = (n - 1) / 11
        out[VertebralLevel.parse(f"T{n}")] = LevelNorm(12 + 28 * f**1.4, 19 + 9 * f)
    out[VertebralLevel.T13] = out[VertebralLevel.T12]
    # VerSe's 26 is the whole sacrum, TotalSegmentator's 26 the S1 segment: one broad range.
    out[VertebralLevel.S1] = LevelNorm(120.0, 33.0, max_extent_mm=160.0)
    return out


LEVEL_NORMS: dict[VertebralLevel, LevelNorm] = _norms()
"""Nominal figures per level (engineering choices, see the module docstring)."""


@dataclass(frozen=True)
class LabelGeometry:
    """One label's size and place: volume (ml), centroid (world mm, shape (3,)), the world S
    coordinates of its top and bottom (mm, voxel extent included), and whether it touches the
    first or last slice of the scan along any axis (it may be cut)."""

    label: int
    volume_ml: float
    centroid_mm: tuple[float, float, float]
    top_mm: float
    bottom_mm: float
    truncated: bool

    @property
    def extent_mm(self) -> float:
        """Craniocaudal extent along world S (mm)."""
        return self.top_mm - self.bottom_mm


def measure_labels(
    labels: LabelVolume, ids: Iterable[int], *, boxes: Boxes | None = None
) -> dict[int, LabelGeometry]:
    """:class:`LabelGeometry` of each label of ``ids`` present in ``labels``.

    ``boxes``: :func:`spinewatch.imaging.anatomy.label_bounding_boxes` of the map (computed when
    None). Each label is measured in its bounding box only.
    """
    from spinewatch.imaging.anatomy import label_bounding_boxes

    arr = labels.labels
    found = label_bounding_boxes(labels) if boxes is None else boxes
    affine = np.asarray(labels.grid.affine, dtype=np.float64)
    half_z = 0.5 * float(np.abs(affine[2, :3]).sum())
    voxel_ml = labels.grid.voxel_volume_ml
    shape = arr.shape
    out: dict[int, LabelGeometry] = {}
    for label in sorted(set(int(x) for x in ids)):
        if label < 1 or label > len(found) or found[label - 1] is None:
            continue
        box = found[label - 1]
        assert box is not None
        idx = np.nonzero(np.asarray(arr[box]) == label)
        offset = np.array([s.start for s in box], dtype=np.float64)
        ijk = np.stack(idx, axis=1).astype(np.float64) + offset
        world_z = ijk @ affine[2, :3] + affine[2, 3]
        centre = affine[:3, :3] @ ijk.mean(axis=0) + affine[:3, 3]
        touch = any(s.start == 0 or s.stop == n for s, n in zip(box, shape, strict=True))
        out[label] = LabelGeometry(
            label=label,
            volume_ml=float(len(world_z) * voxel_ml),
            centroid_mm=(float(centre[0]), float(centre[1]), float(centre[2])),
            top_mm=float(world_z.max()) + half_z,
            bottom_mm=float(world_z.min()) - half_z,
            truncated=bool(touch),
        )
    return out


@dataclass(frozen=True)
class LabelVerdict:
    """The judgement of one label read as ``level``: ``reasons`` is empty when it is plausible;
    ``size_failed`` when its volume or extent contradicts the level."""

    label: int
    level: VertebralLevel | None
    reasons: tuple[str, ...] = ()
    size_failed: bool = False

    @property
    def ok(self) -> bool:
        return not self.reasons

    def as_json(self) -> dict[str, Any]:
        """``{"label", "level", "reason"}`` for the report's ``scan.rejected_labels``."""
        return {
            "label": int(self.label),
            "level": None if self.level is None else str(self.level),
            "reason": "; ".join(self.reasons),
        }


@dataclass(frozen=True)
class ReadingCheck:
    """A reading judged on the geometry: per-label verdicts, plausible or not and why."""

    reading: Reading
    verdicts: dict[int, LabelVerdict] = field(default_factory=dict)
    plausible: bool = False
    reason: str = ""
    numbering_off: bool = False

    @property
    def rejected(self) -> list[LabelVerdict]:
        return [v for v in self.verdicts.values() if not v.ok]


def _size_reasons(g: LabelGeometry, level: VertebralLevel) -> list[str]:
    norm = LEVEL_NORMS[level]
    vmin, vmax = norm.volume_range_ml
    emin, emax = norm.extent_range_mm
    out = []
    if g.volume_ml > vmax or (g.volume_ml < vmin and not g.truncated):
        out.append(
            f"{g.volume_ml:.1f} ml where a {level} is {vmin:.1f}-{vmax:.0f} ml"
            + (" (cut by the scan's edge)" if g.truncated else "")
        )
    if g.extent_mm > emax or (g.extent_mm < emin and not g.truncated):
        out.append(f"{g.extent_mm:.0f} mm tall where a {level} is {emin:.0f}-{emax:.0f} mm")
    return out


def _midline_reasons(geoms: Mapping[int, LabelGeometry]) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {k: [] for k in geoms}
    if len(geoms) < 2:
        return out
    items = list(geoms.values())
    for g in items:
        others = sorted(
            (o for o in items if o.label != g.label),
            key=lambda o: abs(o.centroid_mm[2] - g.centroid_mm[2]),
        )[:4]
        dx = abs(g.centroid_mm[0] - median(o.centroid_mm[0] for o in others))
        dy = abs(g.centroid_mm[1] - median(o.centroid_mm[1] for o in others))
        # a cut label may be only the spinous process of a vertebra: judge it side to side only
        if dx > MAX_MIDLINE_OFFSET_MM or (not g.truncated and dy > MAX_AP_OFFSET_MM):
            out[g.label].append(
                f"{dx:.0f} mm to the side and {dy:.0f} mm in front of or behind the column of "
                f"the other labels (at most {MAX_MIDLINE_OFFSET_MM:.0f} and "
                f"{MAX_AP_OFFSET_MM:.0f} mm): not on the midline"
            )
    for i, a in enumerate(items):
        for b in items[i + 1 :]:
            dx = abs(a.centroid_mm[0] - b.centroid_mm[0])
            dy = abs(a.centroid_mm[1] - b.centroid_mm[1])
            dz = abs(a.centroid_mm[2] - b.centroid_mm[2])
            ratio = max(a.volume_ml, b.volume_ml) / max(min(a.volume_ml, b.volume_ml), 1e-6)
            if (
                dz <= _PAIR_MAX_DZ_MM
                and dy <= _PAIR_MAX_DY_MM
                and dx >= _PAIR_MIN_DX_MM
                and ratio <= _PAIR_MAX_VOLUME_RATIO
            ):
                for x, y in ((a, b), (b, a)):
                    out[x.label].append(
                        f"a mirror pair with label {y.label} ({dx:.0f} mm apart side to side at "
                        "the same height): paired lateral structures, not a vertebra"
                    )
    return out


def _longest_descending(zs: Sequence[float]) -> set[int]:
    """Indices of a longest strictly descending subsequence of ``zs`` (patience sorting)."""
    n = len(zs)
    best = [1] * n
    prev = [-1] * n
    for i in range(n):
        for j in range(i):
            if zs[j] > zs[i] and best[j] + 1 > best[i]:
                best[i], prev[i] = best[j] + 1, j
    if not n:
        return set()
    i = max(range(n), key=lambda k: (best[k], -k))
    keep = set()
    while i >= 0:
        keep.add(i)
        i = prev[i]
    return keep


def _expected_spacing(a: VertebralLevel, b: VertebralLevel) -> float:
    """Nominal centroid distance from level ``a`` down to level ``b`` (a above b)."""
    steps = [
        lv for lv in ALL_LEVELS if a.rank <= lv.rank < b.rank and (not lv.is_variant or lv is a)
    ]
    return sum(LEVEL_NORMS[lv].spacing_mm for lv in steps) or LEVEL_NORMS[a].spacing_mm


def check_levels(
    levels: Mapping[int, VertebralLevel], geoms: Mapping[int, LabelGeometry]
) -> tuple[dict[int, LabelVerdict], list[str], int]:
    """Judge labels named ``levels`` (label -> level) on their geometry.

    Returns the per-label verdicts, the spacing complaints and the number of spacings checked.
    Labels missing from ``geoms`` are skipped.
    """
    named = {k: lv for k, lv in levels.items() if k in geoms}
    reasons: dict[int, list[str]] = {k: _size_reasons(geoms[k], lv) for k, lv in named.items()}
    sized = {k for k, r in reasons.items() if r}
    for k, more in _midline_reasons({k: geoms[k] for k in named}).items():
        reasons[k] += more
    order = sorted(named, key=lambda k: named[k].rank)
    zs = [geoms[k].centroid_mm[2] for k in order]
    keep = _longest_descending(zs)
    for i, k in enumerate(order):
        if i not in keep:
            reasons[k].append(
                f"out of craniocaudal order (centroid at S {zs[i]:.0f} mm does not fit between "
                "the labels of the levels around it)"
            )
    run = [order[i] for i in sorted(keep)]
    complaints = []
    lo, hi = SPACING_RANGE
    for a, b in pairwise(run):
        dz = geoms[a].centroid_mm[2] - geoms[b].centroid_mm[2]
        expected = _expected_spacing(named[a], named[b])
        ratio = dz / expected
        cut = geoms[a].truncated or geoms[b].truncated
        if ratio > hi or (ratio < lo and not cut):
            complaints.append(
                f"{named[a]}-{named[b]} {dz:.0f} mm apart where ~{expected:.0f} mm is expected"
            )
    verdicts = {k: LabelVerdict(k, named[k], tuple(reasons[k]), k in sized) for k in named}
    return verdicts, complaints, max(len(run) - 1, 0)


def stacked_neighbours(
    group: Iterable[int], geoms: Mapping[int, LabelGeometry], others: Iterable[int]
) -> list[int]:
    """Labels of ``others`` that sit in the column above or below the ``group`` labels like
    further vertebrae would: horizontally within :data:`MAX_MIDLINE_OFFSET_MM` of a group label,
    overlapping it along S by less than a third of the shorter one, and of vertebra size
    (0.5-300 ml). A reading that puts *every* vertebra in the group labels is contradicted by
    them (a VerSe map's 19 = T12 is not TotalSegmentator total_mr's "all vertebrae")."""
    found = []
    members = [geoms[g] for g in group if g in geoms]
    for k in others:
        o = geoms.get(k)
        if o is None or not 0.5 <= o.volume_ml <= 300.0:
            continue
        for g in members:
            off = math.hypot(
                o.centroid_mm[0] - g.centroid_mm[0], o.centroid_mm[1] - g.centroid_mm[1]
            )
            overlap = min(o.top_mm, g.top_mm) - max(o.bottom_mm, g.bottom_mm)
            shorter = min(o.extent_mm, g.extent_mm)
            if off <= MAX_MIDLINE_OFFSET_MM and overlap < shorter / 3:
                found.append(k)
                break
    return sorted(found)


def check_reading(reading: Reading, geoms: Mapping[int, LabelGeometry]) -> ReadingCheck:
    """Judge ``reading`` (from :func:`spinewatch.core.conventions.candidate_readings`) on the
    geometry of its labels (``geoms`` must hold its vertebra and group labels, and for a group
    reading the other labels too). See the module docstring for the rules."""
    if not reading.possible:
        return ReadingCheck(reading, plausible=False, reason=reading.reason)
    if reading.convention is None:
        return ReadingCheck(reading, plausible=True, reason=reading.reason)
    if not reading.vertebrae:
        others = [k for k in geoms if k not in reading.group]
        stacked = stacked_neighbours(reading.group, geoms, others)
        if stacked:
            return ReadingCheck(
                reading,
                plausible=False,
                reason=(
                    f"label {', '.join(map(str, reading.group))} would hold every vertebra, but "
                    f"labels {', '.join(map(str, stacked))} lie in the column above or below it "
                    "like further vertebrae"
                ),
            )
        return ReadingCheck(reading, plausible=True, reason="one label holds the vertebrae")
    verdicts, complaints, n_spacings = check_levels(reading.vertebrae, geoms)
    n = len(verdicts)
    failed = [v for v in verdicts.values() if not v.ok]
    sized = [v for v in verdicts.values() if v.size_failed]
    numbering_off = 2 * len(sized) > n
    spacing_off = bool(complaints) and 2 * len(complaints) >= max(n_spacings, 1)
    reason = ""
    if numbering_off:
        reason = (
            "the sizes of "
            + "; ".join(f"{v.label} ({v.level}): {v.reasons[0]}" for v in sized[:3])
            + (" ..." if len(sized) > 3 else "")
            + " do not fit their levels"
        )
    elif spacing_off:
        reason = "the labels' spacing does not fit their levels: " + "; ".join(complaints[:3])
        members = [geoms[k] for k in verdicts]
        union = max(g.top_mm for g in members) - min(g.bottom_mm for g in members)
        if len(members) >= 3 and union <= 1.25 * max(g.extent_mm for g in members):
            reason += (
                " -- all of them lie within the height of the tallest: parts of one structure "
                "(a compartment or subregion map), not a sequence of vertebrae"
            )
    elif not n or 2 * len(failed) > n:
        reason = "; ".join(f"{v.label} ({v.level}): {v.reasons[0]}" for v in failed[:3]) + (
            " ..." if len(failed) > 3 else ""
        )
    plausible = not reason
    return ReadingCheck(
        reading,
        verdicts,
        plausible,
        reason if reason else f"{n - len(failed)} of {n} labels fit their levels",
        numbering_off,
    )
