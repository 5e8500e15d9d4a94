"""The series of a received study, summarised from their headers, and the one to analyse.

Rule (:func:`choose_series`): among the CT image series that are axial (slice normal within 25
degrees of the body's long axis), not localizers, with at least :data:`MIN_SLICES` images, take
those **covering the spine**: a z-extent of at least :data:`COVERAGE_FRACTION` of the longest such
series (a reconstruction of the whole acquisition, not a targeted recon of one level); among them
the **thinnest** (smallest slice step, then slice thickness, then the most images). Every other
series is listed with why it was not chosen. Thresholds are engineering choices, not published
figures: 25 degrees admits gantry-tilted axials; 90 % tolerates recons trimmed by a few slices.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field

from pydicom import Dataset
from pydicom.uid import CTImageStorage, SegmentationStorage

__all__ = [
    "COVERAGE_FRACTION",
    "MIN_SLICES",
    "SeriesChoice",
    "SeriesSummary",
    "choose_series",
    "summarise_series",
]

MIN_SLICES = 2
COVERAGE_FRACTION = 0.9
_AXIAL_COS = math.cos(math.radians(25.0))


@dataclass
class SeriesSummary:
    """One series of a study, as far as its headers tell (mm along the patient's z axis)."""

    uid: str
    modality: str
    description: str = ""
    n_instances: int = 0
    sop_classes: list[str] = field(default_factory=list)
    axial: bool = False
    localizer: bool = False
    slice_step_mm: float | None = None
    slice_thickness_mm: float | None = None
    z_extent_mm: float | None = None
    note: str = ""
    chosen: bool = False
    retrieved: bool = True

    def to_json(self) -> dict[str, object]:
        return asdict(self)

    def describe(self) -> str:
        step = f"{self.slice_step_mm:.2g} mm" if self.slice_step_mm else "?"
        extent = f"{self.z_extent_mm:.0f} mm" if self.z_extent_mm is not None else "?"
        return (
            f"{self.modality} {self.description or '(no description)'!r}: {self.n_instances} "
            f"images, step {step}, extent {extent}"
        )

    @property
    def is_ct_image(self) -> bool:
        return self.modality == "CT" and CTImageStorage in self.sop_classes

    @property
    def is_seg(self) -> bool:
        return SegmentationStorage in self.sop_classes


def _floats(value: object, n: int) -> list[float] | None:
    try:
        out = [float(v) for v in value]  # type: ignore[attr-defined]
    except (TypeError, ValueError):
        return None
    return out if len(out) == n and all(math.isfinite(v) for v in out) else None


def _geometry(images: list[Dataset], summary: SeriesSummary) -> None:
    iop = _floats(images[0].get("ImageOrientationPatient"), 6)
    if iop is None:
        return
    row, col = iop[:3], iop[3:]
    normal = [
        row[1] * col[2] - row[2] * col[1],
        row[2] * col[0] - row[0] * col[2],
        row[0] * col[1] - row[1] * col[0],
    ]
    summary.axial = abs(normal[2]) >= _AXIAL_COS
    positions = []
    for ds in images:
        ipp = _floats(ds.get("ImagePositionPatient"), 3)
        if ipp is not None:
            positions.append(sum(p * n for p, n in zip(ipp, normal, strict=True)))
    positions.sort()
    if len(positions) >= 2:
        steps = [b - a for a, b in itertools.pairwise(positions)]
        summary.slice_step_mm = round(sorted(steps)[len(steps) // 2], 3)
        summary.z_extent_mm = round(positions[-1] - positions[0], 1)
    thickness = images[0].get("SliceThickness")
    try:
        summary.slice_thickness_mm = float(thickness) if thickness not in (None, "") else None
    except (TypeError, ValueError):
        summary.slice_thickness_mm = None


def summarise_series(datasets: Iterable[Dataset]) -> list[SeriesSummary]:
    """One summary per SeriesInstanceUID of the headers given, in UID order."""
    groups: dict[str, list[Dataset]] = {}
    for ds in datasets:
        groups.setdefault(str(ds.get("SeriesInstanceUID", "")), []).append(ds)
    out = []
    for uid in sorted(groups):
        images = groups[uid]
        first = images[0]
        image_type = [str(t).upper() for t in (first.get("ImageType") or [])]
        summary = SeriesSummary(
            uid=uid,
            modality=str(first.get("Modality", "")),
            description=str(first.get("SeriesDescription", "")),
            n_instances=len(images),
            sop_classes=sorted({str(ds.get("SOPClassUID", "")) for ds in images}),
            localizer="LOCALIZER" in image_type,
        )
        if "Rows" in first and summary.modality == "CT":
            _geometry(images, summary)
        out.append(summary)
    return out


@dataclass(frozen=True)
class SeriesChoice:
    """The series to analyse (None when no series qualifies) and why."""

    uid: str | None
    reason: str


def choose_series(summaries: list[SeriesSummary]) -> SeriesChoice:
    """Pick the thinnest axial CT reconstruction covering the spine; mark every summary's note
    (and ``chosen``) with the outcome."""
    candidates = []
    for s in summaries:
        s.chosen = False
        if not s.is_ct_image:
            s.note = "not a CT image series" if not s.is_seg else "segmentation"
        elif s.localizer:
            s.note = "localizer"
        elif not s.axial:
            s.note = "not axial (a reformat)"
        elif s.n_instances < MIN_SLICES or s.z_extent_mm is None:
            s.note = f"fewer than {MIN_SLICES} positioned slices"
        else:
            candidates.append(s)
    if not candidates:
        seen = ", ".join(sorted({s.modality or "?" for s in summaries})) or "none"
        return SeriesChoice(None, f"no axial CT image series in the study (modalities: {seen})")
    longest = max(s.z_extent_mm or 0.0 for s in candidates)
    covering = [s for s in candidates if (s.z_extent_mm or 0.0) >= COVERAGE_FRACTION * longest]
    for s in candidates:
        if s not in covering:
            s.note = f"covers {s.z_extent_mm:.0f} of {longest:.0f} mm"
    best = min(
        covering,
        key=lambda s: (
            s.slice_step_mm or math.inf,
            s.slice_thickness_mm or math.inf,
            -s.n_instances,
            s.uid,
        ),
    )
    for s in covering:
        if s is not best:
            s.note = f"thicker than the chosen series ({s.slice_step_mm} mm step)"
    best.chosen = True
    best.note = "chosen: thinnest axial CT covering the scanned range"
    return SeriesChoice(best.uid, best.describe())
