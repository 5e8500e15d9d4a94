"""Apply a level shift: relabel the study's label map and queue its re-analysis (all or nothing).

The level check service records the correction and the renaming
(:func:`spinewatch.registry.services.record_level_shift`); this module writes the relabelled map
(VerSe convention, :func:`spinewatch.imaging.relabel.relabel_vertebrae`) next to the analysed
files and queues the analysis of the same CT with it. The new findings carry the team's
decisions over to each vertebra's new name (the worker passes the renaming to
:func:`~spinewatch.registry.services.store_analysis`).
"""

from __future__ import annotations

import os
import uuid

from django.db import transaction

from spinewatch.core.errors import InputError
from spinewatch.registry import services
from spinewatch.registry.models import ImagingStudy, LevelCheck
from spinewatch.web.scans import jobs
from spinewatch.web.scans.uploads import StoredUpload, upload_dir
from spinewatch.web.viewer.volumes import latest_done_job

__all__ = ["shift_levels"]


def shift_levels(
    *,
    study: ImagingStudy,
    shift: int,
    variant: str,
    checked_by: object,
    note: str = "",
) -> LevelCheck:
    """Record the correction, write the relabelled map and queue the re-analysis."""
    import nibabel as nib

    from spinewatch.imaging.io import load_labels
    from spinewatch.imaging.relabel import relabel_vertebrae

    job = latest_done_job(study)
    if job is None:
        raise InputError(f"scan {study.pk}: no finished analysis with its files to relabel")
    renamed = services.plan_level_shift(study=study, shift=shift, variant=variant)
    directory = upload_dir(job.upload_dir)
    convention = str((study.report or {}).get("scan", {}).get("labels_convention") or "auto")
    source = load_labels(directory / job.labels_file)
    relabelled = relabel_vertebrae(source, convention, renamed)
    name = f"labels-check-{uuid.uuid4().hex[:12]}.nii.gz"
    target = directory / name
    header = nib.load(str(directory / job.labels_file))
    image = nib.Nifti1Image(relabelled.labels, relabelled.grid.affine, header=None)
    image.set_qform(relabelled.grid.affine, code=int(header.header["qform_code"]) or 1)
    image.set_sform(relabelled.grid.affine, code=int(header.header["sform_code"]) or 1)
    nib.save(image, target)
    os.chmod(target, 0o600)
    existing = LevelCheck.objects.filter(study=study).first()
    try:
        with transaction.atomic():
            check = services.record_level_shift(
                study=study,
                shift=shift,
                variant=variant,
                checked_by=checked_by,
                expected_version=existing.version if existing is not None else None,
                note=note,
            )
            jobs.enqueue_analysis(
                study_id=study.pk,
                upload=StoredUpload(
                    job.upload_dir,
                    job.ct_file,
                    name,
                    job.ct_name,
                    f"{job.labels_name} (relabelled)",
                ),
                convention="verse",
                series_uid=job.series_uid,
                requested_by=checked_by,
            )
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    return check
