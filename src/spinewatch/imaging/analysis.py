"""The CT spine analysis: label map (+ CT) in, :class:`~spinewatch.imaging.report.SpineReport` out.

First the label map is read (:func:`spinewatch.imaging.label_reading.prepare_labels`): its
convention given or detected from the ids and the geometry, SPINEPS endplates merged into their
vertebrae, levels named by the user when asked, and every label named a vertebra checked for
its level -- a label that fails is not analysed and is listed in the report's
``scan.rejected_labels``.

Then per vertebra (:func:`analyze`), in cranio-caudal order:

1. :func:`spinewatch.imaging.anatomy.find_vertebrae` -- crop, body vs posterior elements, frame
   (from the anatomy; when the header disagrees with it or had to be used, the scan record gets
   :func:`~spinewatch.imaging.anatomy.orientation_note` as ``orientation_note``), truncation,
   quality flags;
2. :func:`spinewatch.imaging.heights.body_heights` -- anterior/middle/posterior heights (not for a
   truncated vertebra);
3. Genant grades of the whole spine (:func:`spinewatch.imaging.grading.grade_spine`): each
   vertebra against its level's normal shape and the posterior height expected from its
   nearest unfractured neighbours, scaled by the normal level-to-level ratios;
4. with a CT: trabecular density (Pickhardt flags raised by the contrast phase's offset), cement
   (> 1500 HU; reported, never called bone), lytic lesions, and the image noise around the
   vertebra (:func:`spinewatch.imaging.confidence.noise_around`); with an MRI
   (:class:`~spinewatch.imaging.volume.MrVolume`, signal units) or no image, none of them: those
   fields are null and each vertebra's ``not_assessed`` says why
   (:data:`~spinewatch.core.acquisition.MRI_NOT_ASSESSED`); then, over all levels, diffuse
   infiltration (:mod:`spinewatch.imaging.infiltration`: a body far below the patient's own
   other vertebrae);
5. collapse risk (low / moderate / high, or not assessable when something needed to call it low
   was not measured) and the imaging part of SINS;
6. the confidence class (:mod:`spinewatch.imaging.confidence`): voxel size along the vertebra,
   truncation, quality flags, noise, modality.

The scan's acquisition (modality, contrast phase) comes with the image; a contrast phase nobody
stated is checked against the image once the vertebrae are found
(:func:`spinewatch.imaging.contrast.resolve_contrast`).

Only the crop of each vertebra is read from the CT, so memory stays near the CT's own size.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from spinewatch import __version__
from spinewatch.core.acquisition import MRI_NOT_ASSESSED, Acquisition, AcquisitionError, Modality
from spinewatch.core.conventions import LabelConvention
from spinewatch.core.levels import VertebralLevel
from spinewatch.imaging.anatomy import (
    Boxes,
    VertebraRegion,
    crop_hu,
    find_vertebrae,
    label_bounding_boxes,
    orientation_note,
)
from spinewatch.imaging.anatomy import present_labels as anatomy_present_labels
from spinewatch.imaging.grading import grade_spine
from spinewatch.imaging.heights import BodyHeights, body_heights
from spinewatch.imaging.label_reading import PreparedLabels, prepare_labels
from spinewatch.imaging.report import (
    NO_IMAGE_NOT_ASSESSED,
    ScanInfo,
    SpineReport,
    VertebraReport,
)
from spinewatch.imaging.threads import analysis_threads, ordered_imap
from spinewatch.imaging.volume import CtVolume, GeometryError, LabelVolume, MrVolume

__all__ = [
    "FAST_WORKING_RESOLUTION_MM",
    "analyze",
    "analyze_files",
    "known_modality",
    "present_labels",
    "resolve_convention",
]

logger = logging.getLogger(__name__)

Progress = Callable[[int, int], None]

#: Suggested working resolution (mm) for fast runs on sub-millimetre scans (``analyze(...,
#: working_resolution_mm=FAST_WORKING_RESOLUTION_MM)``, ``spinewatch analyze --fast``). Off by
#: default: on the full-spine benchmark phantom it is 2.5x faster (0.5 mm lumbar: 4.4x) but moves
#: heights by up to 0.6 mm, enough to flip a vertebra sitting on a Genant boundary (T8 drawn at
#: 25 % biconcave read 24 %, grade 1), so exact analysis stays the default.
#: Voxels finer than this are grouped
#: into blocks of at most this size per axis (0.5 mm -> 2 x 2 x 2 blocks of 1.0 mm; 0.7 mm ->
#: 2 voxels, 1.4 mm; 1.0 mm and coarser: unchanged) before the body separation, frame,
#: heights, density, lesion and cement steps: the vertebra mask is the blocks at least half
#: inside the label, the CT the block means (float32 HU, so partial volumes of lesions are
#: kept as mean HU); see :func:`spinewatch.imaging.anatomy.find_vertebrae`. The body, lesion and
#: cement volumes are then counted in blocks; heights are still sampled on the full-resolution
#: label. None analyses every voxel of the scan as it is.
FAST_WORKING_RESOLUTION_MM = 1.4


def present_labels(labels: LabelVolume) -> list[int]:
    """The non-zero label ids of ``labels`` (one pass over the array)."""
    return anatomy_present_labels(label_bounding_boxes(labels))


def known_modality(acquisition: Acquisition | None) -> Modality | None:
    """The scan's modality when it is known (from DICOM, the user or detection); None when it
    was only assumed -- a label map is then judged without a modality."""
    if acquisition is None or acquisition.modality_source == "assumed":
        return None
    return acquisition.modality


def resolve_convention(
    labels: LabelVolume,
    convention: LabelConvention | str,
    *,
    boxes: Boxes | None = None,
    modality: Modality | str | None = None,
) -> LabelConvention:
    """``convention`` itself, or for ``"auto"`` the one detected from the ids and the geometry
    (:func:`spinewatch.imaging.label_reading.prepare_labels`; raises its
    :class:`~spinewatch.imaging.label_reading.LabelMapRefused` when the map cannot be read).

    ``boxes``: :func:`~spinewatch.imaging.anatomy.label_bounding_boxes` when already computed;
    ``modality``: the scan's modality when known.
    """
    if isinstance(convention, str) and convention.strip().lower() == "auto":
        return prepare_labels(labels, "auto", boxes=boxes, modality=modality).convention
    return LabelConvention.parse(convention)


def _orientation(affine: Any) -> str:
    from spinewatch.imaging.io import orientation_code

    return orientation_code(affine)


def _ct_findings(
    ct: CtVolume,
    labels: LabelVolume,
    region: VertebraRegion,
    contrast_offset_hu: float,
    vertebra_labels: list[int],
) -> tuple[Any, Any, Any, float | None]:
    from spinewatch.imaging.cement import detect_cement
    from spinewatch.imaging.confidence import noise_around
    from spinewatch.imaging.density import trabecular_density
    from spinewatch.imaging.lesions import detect_lytic_lesions

    hu = crop_hu(ct.hu, region)
    density = trabecular_density(hu, region, contrast_offset_hu=contrast_offset_hu)
    cement = detect_cement(hu, region)
    lytic = detect_lytic_lesions(hu, region, density=density)
    noise = noise_around(
        ct.hu, labels.labels, region.bbox, ct.grid.spacing_mm, exclude_labels=vertebra_labels
    )
    return density, lytic, cement, noise


# -- modality and contrast (issue 7): which measurements the image allows ----------------------


def _acquisition_of(
    image: CtVolume | MrVolume | None, acquisition: Acquisition | None
) -> Acquisition:
    """The image's own acquisition, or ``acquisition`` when given (it must not change the
    modality: an MrVolume's values are never HU, whatever a caller says)."""
    if image is None:
        return acquisition if acquisition is not None else Acquisition()
    if acquisition is None:
        return image.acquisition
    if acquisition.modality is not image.acquisition.modality:
        raise AcquisitionError(
            f"{image.source}: the image is {image.acquisition.modality.label} but the "
            f"acquisition given says {acquisition.modality.label}"
        )
    return acquisition


def _not_assessed(image: CtVolume | MrVolume | None, acquisition: Acquisition) -> tuple[str, ...]:
    """Why density, lesions and cement are null for every vertebra (empty: measured)."""
    if isinstance(image, MrVolume) or acquisition.modality is Modality.MR:
        return (MRI_NOT_ASSESSED,)
    if image is None:
        return (NO_IMAGE_NOT_ASSESSED,)
    return ()


def _with_contrast(
    acquisition: Acquisition, ct: CtVolume | None, labels: LabelVolume, regions: list[Any]
) -> Acquisition:
    if ct is None:
        return acquisition
    from spinewatch.imaging.contrast import resolve_contrast

    sites = [(r.level, r.frame, r.label) for r in regions]
    return resolve_contrast(acquisition, ct.hu, ct.grid, labels.labels, sites)


# -- the analysis -------------------------------------------------------------------------------


def _infiltration(
    regions: list[VertebraRegion],
    findings: dict[VertebralLevel, tuple[Any, Any, Any, float | None]],
) -> dict[VertebralLevel, Any]:
    """Diffuse infiltration per level (:mod:`spinewatch.imaging.infiltration`) from each body's
    lesion-robust trabecular background (``LyticFindings.background_hu``); a level is a reliable
    reference when its body is whole (not truncated) and holds no cement."""
    from spinewatch.imaging.infiltration import LevelDensity, assess_diffuse_infiltration

    levels = []
    for region in regions:
        _density, lytic, cement, _noise = findings[region.level]
        bg = None if lytic is None else lytic.background_hu
        treated = cement is not None and cement.present
        levels.append(LevelDensity(region.level, bg, not region.truncated and not treated))
    return dict(assess_diffuse_infiltration(levels))


def analyze(
    ct: CtVolume | MrVolume | None,
    labels: LabelVolume | PreparedLabels,
    *,
    convention: LabelConvention | str,
    progress: Progress | None = None,
    ct_path: str | None = None,
    labels_path: str | None = None,
    working_resolution_mm: float | None = None,
    acquisition: Acquisition | None = None,
    lowest_level: VertebralLevel | str | None = None,
    level: VertebralLevel | str | None = None,
    threads: int | None = None,
) -> SpineReport:
    """Analyse every vertebra of ``labels`` (and the image ``ct`` when given; same grid).

    ``ct`` is a :class:`CtVolume` (every measurement) or an :class:`MrVolume` (geometry only:
    density, lesions and cement null, ``not_assessed`` = ["MRI: not assessed"]).

    ``labels`` is a label map, or one already read by
    :func:`~spinewatch.imaging.label_reading.prepare_labels` (then ``convention`` must be
    ``"auto"`` or its convention, and ``lowest_level``/``level`` None).

    ``acquisition``: overrides the image's own acquisition (same modality only); without an
    image, the default is CT, native, assumed. An *assumed* contrast phase is checked against
    the CT (an enhanced aorta makes it "contrast, phase unknown", *detected*). Recorded in the
    report's ``scan`` record; a known modality also rules out label conventions made for the
    other modality.

    ``lowest_level`` / ``level``: levels named by the user for a map whose ids do not name
    them (``--lowest-level``, ``--level``; see :mod:`spinewatch.imaging.label_reading`).

    ``working_resolution_mm`` (None: every voxel as it is) trades exactness for speed on
    sub-millimetre scans; see :data:`FAST_WORKING_RESOLUTION_MM`.

    ``threads``: vertebrae measured at once (:func:`~spinewatch.imaging.threads.analysis_threads`:
    None reads ``SPINEWATCH_ANALYSIS_THREADS``, default the machine's cores); the report is the
    same for any count.

    ``convention`` may be ``"auto"``. ``progress(done, total)`` is called after each vertebra.
    ``ct_path``/``labels_path`` only fill the report's ``scan`` record.
    """
    from spinewatch.imaging.confidence import assess_confidence, superior_voxel_mm
    from spinewatch.imaging.risk import assess_collapse_risk

    image = ct
    acquisition = _acquisition_of(image, acquisition)
    ct = image if isinstance(image, CtVolume) else None  # only HU reach the CT findings
    not_assessed = _not_assessed(image, acquisition)
    prepared = _prepared(
        image, labels, convention, acquisition=acquisition, lowest_level=lowest_level, level=level
    )
    labels = prepared.labels
    boxes = prepared.boxes if prepared.boxes is not None else label_bounding_boxes(labels)
    n_threads = analysis_threads(threads)
    regions = find_vertebrae(
        labels,
        prepared.analysis_convention,
        boxes=boxes,
        working_resolution_mm=working_resolution_mm,
        threads=n_threads,
    )
    acquisition = _with_contrast(acquisition, ct, labels, regions)
    offset_hu = acquisition.contrast_phase.density_offset_hu
    total = len(regions)
    measured: dict[VertebralLevel, BodyHeights] = {}
    heights_of: dict[VertebralLevel, BodyHeights | None] = {}
    findings: dict[VertebralLevel, tuple[Any, Any, Any, float | None]] = {}
    vertebra_labels = [r.label for r in regions]

    def measure(
        region: VertebraRegion,
    ) -> tuple[BodyHeights | None, tuple[Any, Any, Any, float | None] | None]:
        # heights and the CT findings share the region's derived arrays (body voxels, their
        # local coordinates, the body depth): both run while they are cached, then they go
        h = body_heights(region)
        found = None if ct is None else _ct_findings(ct, labels, region, offset_hu, vertebra_labels)
        region.drop_cached()  # one vertebra's derived arrays per thread in memory at a time
        return h, found

    # vertebrae in parallel threads, results in cranio-caudal order (see imaging.threads)
    results = ordered_imap(measure, regions, n_threads)
    for done, (region, (h, found)) in enumerate(zip(regions, results, strict=True), start=1):
        heights_of[region.level] = h
        if h is not None:
            measured[region.level] = h
        if found is not None:
            findings[region.level] = found
        if progress is not None:
            progress(done, total)

    grades = grade_spine(measured)
    infiltration = _infiltration(regions, findings) if ct is not None else {}
    records: list[VertebraReport] = []
    for region in regions:
        h = heights_of[region.level]
        graded = grades.get(region.level)
        genant = None if graded is None else graded.assessment
        reference = None if graded is None else graded.reference_mm
        flags = list(region.quality_flags)
        density = lytic = cement = noise = None
        if ct is not None:
            density, lytic, cement, noise = findings[region.level]
            if cement is not None and cement.present:
                flags.append("cement_present")
        infiltrated = infiltration.get(region.level)
        risk = assess_collapse_risk(
            level=region.level,
            genant=genant,
            lytic=lytic,
            density=density,
            cement=cement,
            acquisition=acquisition,
            truncated=region.truncated,
            quality_flags=flags,
            has_ct=ct is not None,
            infiltration=infiltrated,
        )
        f = region.frame
        confidence = assess_confidence(
            superior_voxel_mm=superior_voxel_mm(
                labels.grid.spacing_mm, labels.grid.axis_directions, f.superior
            ),
            truncated=region.truncated,
            quality_flags=flags,
            noise_hu=noise,
            modality=acquisition.modality,
            has_ct=image is not None,
        )
        records.append(
            VertebraReport(
                level=region.level,
                label=region.label,
                body_centroid_mm=(
                    float(f.origin_mm[0]),
                    float(f.origin_mm[1]),
                    float(f.origin_mm[2]),
                ),
                body_volume_ml=region.body_volume_ml,
                superior=(float(f.superior[0]), float(f.superior[1]), float(f.superior[2])),
                anterior=(float(f.anterior[0]), float(f.anterior[1]), float(f.anterior[2])),
                truncated=region.truncated,
                quality_flags=tuple(dict.fromkeys(flags)),
                height_anterior_mm=None if h is None else h.anterior_mm,
                height_middle_mm=None if h is None else h.middle_mm,
                height_posterior_mm=None if h is None else h.posterior_mm,
                reference_height_mm=reference,
                reference_levels=()
                if graded is None
                else tuple(str(lv.value) for lv in graded.reference_levels),
                genant=genant,
                density=density,
                lytic=lytic,
                cement=cement,
                risk=risk,
                has_ct=ct is not None,
                not_assessed=not_assessed,
                confidence=confidence,
                noise_hu=noise,
                infiltration=infiltrated,
            )
        )

    grid = image.grid if image is not None else labels.grid
    sp = grid.spacing_mm
    note = orientation_note(regions)
    scan = ScanInfo(
        ct=ct_path if ct_path is not None else (image.source if image is not None else None),
        labels=labels_path if labels_path is not None else labels.source,
        labels_convention=prepared.convention.value,
        shape=grid.shape,
        spacing_mm=(sp[0], sp[1], sp[2]),
        orientation=_orientation(grid.affine),
        series_uid=None if image is None else image.meta.get("series_uid"),
        spinewatch_version=__version__,
        analysed_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        acquisition=acquisition,
        # how the labels were read; where the frames came from when the header disagrees
        extra={
            **prepared.scan_fields(),
            **({} if note is None else {"orientation_note": note}),
        },
    )
    return SpineReport(scan=scan, vertebrae=tuple(records))


def _prepared(
    ct: CtVolume | MrVolume | None,
    labels: LabelVolume | PreparedLabels,
    convention: LabelConvention | str,
    *,
    acquisition: Acquisition | None,
    lowest_level: VertebralLevel | str | None,
    level: VertebralLevel | str | None,
) -> PreparedLabels:
    """The label map read for analysis, on the CT's grid."""
    if isinstance(labels, PreparedLabels):
        auto = isinstance(convention, str) and convention.strip().lower() == "auto"
        if (not auto and LabelConvention.parse(convention) is not labels.convention) or (
            lowest_level is not None or level is not None
        ):
            raise ValueError(
                "analyze() got a prepared label map: pass convention='auto' (or its own) and "
                "no lowest_level/level"
            )
        if ct is not None and not ct.grid.same_as(labels.labels.grid):
            from dataclasses import replace

            from spinewatch.imaging.io import align_labels

            return replace(labels, labels=align_labels(labels.labels, ct.grid), boxes=None)
        return labels
    if ct is not None and not ct.grid.same_as(labels.grid):
        from spinewatch.imaging.io import align_labels

        labels = align_labels(labels, ct.grid)
    return prepare_labels(
        labels,
        convention,
        modality=known_modality(acquisition),
        lowest_level=lowest_level,
        level=level,
    )


def analyze_files(
    ct_path: Path | str | None,
    labels_path: Path | str,
    *,
    convention: LabelConvention | str = "auto",
    series_uid: str | None = None,
    progress: Progress | None = None,
    working_resolution_mm: float | None = None,
    lowest_level: VertebralLevel | str | None = None,
    level: VertebralLevel | str | None = None,
    modality: str = "auto",
    contrast_phase: str = "auto",
) -> SpineReport:
    """Read the study (:func:`spinewatch.imaging.io.load_study`, with ``modality`` and
    ``contrast_phase``) and :func:`analyze` it."""
    from spinewatch.imaging.io import load_study, requested_acquisition

    image, labels = load_study(
        ct_path,
        labels_path,
        series_uid=series_uid,
        modality=modality,
        contrast_phase=contrast_phase,
        convention=convention,
    )
    try:
        return analyze(
            image,
            labels,
            convention=convention,
            progress=progress,
            ct_path=None if ct_path is None else str(ct_path),
            labels_path=str(labels_path),
            working_resolution_mm=working_resolution_mm,
            lowest_level=lowest_level,
            level=level,
            acquisition=None
            if image is not None
            else requested_acquisition(modality, contrast_phase),
        )
    except GeometryError as exc:  # pragma: no cover - load_study validates grids
        from spinewatch.imaging.io import GridMismatchError

        raise GridMismatchError(str(exc)) from exc
