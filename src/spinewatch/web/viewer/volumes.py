"""The volumes the in-browser viewer loads: CT, vertebra labels and lytic lesions as NIfTI.

Built from the files of a study's latest finished analysis (the CT as uploaded or received -- a
DICOM series or a NIfTI file -- and the label map it was analysed with, relabelled after a level
shift), all on the CT's grid so NiiVue overlays them voxel for voxel:

- ``ct``: int16 HU (the scanner's values; float32 when they are not whole numbers);
- ``labels``: the vertebra label map aligned to the CT (other structures of a segmenter's map,
  organs and ribs, left out);
- ``lesions``: :func:`~spinewatch.imaging.lesion_map.lytic_lesion_map` (vertebra label values at
  lesion voxels).

They are written once per analysis job next to its files (``view-<kind>-<job>.nii.gz``, mode
0600, never served as static files), under a per-job lock so the viewer's three parallel
requests build them once.
"""

from __future__ import annotations

import fcntl
import logging
import os
from pathlib import Path
from typing import Any

from spinewatch.core.errors import InputError
from spinewatch.registry.models import ImagingStudy
from spinewatch.web.scans.models import AnalysisJob, JobStatus
from spinewatch.web.scans.uploads import upload_dir

__all__ = ["KINDS", "latest_done_job", "viewer_volume"]

logger = logging.getLogger(__name__)

KINDS = ("ct", "labels", "lesions")


def latest_done_job(study: ImagingStudy) -> AnalysisJob | None:
    """The study's latest finished analysis whose files are still there, or None."""
    for job in AnalysisJob.objects.filter(study=study, status=JobStatus.DONE).order_by(
        "-finished_at", "-id"
    )[:5]:
        try:
            folder = upload_dir(job.upload_dir)
        except InputError:  # a job row without a real upload folder (imported, damaged)
            continue
        if job.ct_file and (folder / job.labels_file).is_file() and (folder / job.ct_file).exists():
            return job
    return None


def _path(job: AnalysisJob, kind: str) -> Path:
    return upload_dir(job.upload_dir) / f"view-{kind}-{job.pk}.nii.gz"


def _save(array: Any, affine: Any, target: Path) -> None:
    import nibabel as nib

    image = nib.Nifti1Image(array, affine)
    image.set_qform(affine, code=1)
    image.set_sform(affine, code=1)
    temporary = target.parent / f"tmp-{target.name}"
    nib.save(image, temporary)
    os.chmod(temporary, 0o600)
    os.replace(temporary, target)


def _build(job: AnalysisJob, convention: str) -> None:
    from spinewatch.imaging.io import align_labels, load_ct, load_labels
    from spinewatch.imaging.lesion_map import lytic_lesion_map

    directory = upload_dir(job.upload_dir)
    ct = load_ct(directory / job.ct_file, series_uid=job.series_uid or None)
    labels = align_labels(load_labels(directory / job.labels_file), ct.grid)
    lesions = lytic_lesion_map(ct, labels, convention=convention)
    _save(_vertebrae_only(labels.labels, convention), ct.grid.affine, _path(job, "labels"))
    _save(lesions, ct.grid.affine, _path(job, "lesions"))
    _save(ct.hu, ct.grid.affine, _path(job, "ct"))  # last: its presence means "all built"
    logger.info("viewer volumes of job %s built", job.pk)


def _vertebrae_only(labels: Any, convention: str) -> Any:
    """The label map without organs, ribs and the sacrum: the overlay shows the vertebrae."""
    import numpy as np

    from spinewatch.core.conventions import level_for_label

    values = [int(v) for v in np.unique(labels) if v != 0]
    keep = [v for v in values if level_for_label(v, convention) is not None]
    return np.where(np.isin(labels, keep), labels, 0).astype(labels.dtype)


def viewer_volume(study: ImagingStudy, kind: str) -> Path | None:
    """The NIfTI file of ``kind`` for the study's latest analysis (built on first use)."""
    if kind not in KINDS:
        return None
    job = latest_done_job(study)
    if job is None or not study.report:
        return None
    target = _path(job, kind)
    if _path(job, "ct").is_file():
        return target
    convention = str((study.report.get("scan") or {}).get("labels_convention") or "auto")
    lock = upload_dir(job.upload_dir) / f"view-{job.pk}.lock"
    with lock.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            if not _path(job, "ct").is_file():
                _build(job, convention)
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
    return target
