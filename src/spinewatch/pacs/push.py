"""Results back into the study: SR (TID 1500), SEG of vertebrae and lytic lesions, and the
sagittal picture as a secondary capture, stored with STOW-RS into the CT's own study.

Only a scan that came from the PACS can be pushed (its CT headers are the SR's evidence and
the SEG's source images). The objects are built from the latest finished analysis: its report,
its label map (relabelled after a level shift) and the lesions found again on it
(:func:`~spinewatch.imaging.lesion_map.lytic_lesion_map`). The SR is marked *final and verified*
(verifying observer = the radiologist) once the levels were confirmed; before that it is
*preliminary, unverified* -- the PACS shows which findings count.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import highdicom as hd
from django.db import transaction
from django.utils import timezone
from pydicom.uid import (
    Comprehensive3DSRStorage,
    SecondaryCaptureImageStorage,
    SegmentationStorage,
)

from spinewatch.pacs.dicomweb import PacsClient
from spinewatch.pacs.errors import PacsError, StudyNotFoundError
from spinewatch.registry import services
from spinewatch.registry.models import ImagingStudy, LevelCheck, ReceivedStudy
from spinewatch.web.scans.models import AnalysisJob, JobStatus
from spinewatch.web.scans.uploads import upload_dir
from spinewatch.web.scans.worker import picture_path

__all__ = ["PushSummary", "build_result_objects", "push_results"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PushSummary:
    """What was stored: one (kind, series UID, SOP instance UID) per object."""

    study_uid: str
    objects: tuple[tuple[str, str, str], ...]
    verified: bool

    def describe(self) -> str:
        kinds = ", ".join(kind for kind, _, _ in self.objects)
        state = "final, verified" if self.verified else "preliminary (levels not confirmed)"
        return f"stored {kinds} into study {self.study_uid} ({state})"


def _source(study: ImagingStudy) -> tuple[ReceivedStudy, AnalysisJob]:
    received = ReceivedStudy.objects.filter(imaging_study=study).first()
    if received is None:
        raise StudyNotFoundError(
            f"scan {study.pk} did not come from the PACS (it was uploaded); only PACS studies "
            "can receive the results"
        )
    job = (
        AnalysisJob.objects.filter(study=study, status=JobStatus.DONE)
        .order_by("-finished_at", "-id")
        .first()
    )
    if job is None or not study.report:
        raise PacsError(f"scan {study.pk} has no finished analysis to send yet")
    return received, job


def build_result_objects(study: ImagingStudy) -> tuple[list[Any], bool]:
    """The SR, SEG(s) and SC of a scan's latest analysis, and whether the levels are confirmed."""
    from spinewatch.imaging.dicom_export import (
        build_lesion_seg,
        build_measurement_report,
        build_secondary_capture,
        build_vertebra_seg,
        read_headers,
    )
    from spinewatch.imaging.io import align_labels, load_ct, load_labels
    from spinewatch.imaging.lesion_map import lytic_lesion_map

    received, job = _source(study)
    directory = upload_dir(job.upload_dir)
    series_uid = job.series_uid or received.chosen_series_uid
    ct = load_ct(directory / job.ct_file, series_uid=series_uid or None)
    labels = align_labels(load_labels(directory / job.labels_file), ct.grid)
    report = study.spine_report()
    if report is None:
        raise ValueError(f"imaging study {study.pk}: not analysed")
    convention = str(report.scan.labels_convention or "")
    headers = read_headers(directory / job.ct_file, series_uid=series_uid or None)
    check = LevelCheck.objects.filter(study=study).first()
    confirmed = check is not None and not check.pending
    verified_by = None
    if confirmed and check is not None:
        who = check.checked_by
        if who is None:
            verified_by = "SpineWatch user"
        elif who.last_name:
            verified_by = f"{who.last_name}^{who.first_name}"  # DICOM PN: Family^Given
        else:
            verified_by = who.username
    sr = build_measurement_report(report, headers, series_uid=hd.UID(), verified_by=verified_by)
    objects: list[Any] = [sr]
    seg_series = hd.UID()
    objects.append(
        build_vertebra_seg(
            labels.labels, ct.grid, headers, convention=convention, series_uid=seg_series
        )
    )
    lesions = lytic_lesion_map(ct, labels, convention=convention)
    if lesions.any():
        objects.append(
            build_lesion_seg(
                lesions, ct.grid, headers, convention=convention, series_uid=seg_series
            )
        )
    picture = picture_path(job)
    if picture is not None:
        objects.append(build_secondary_capture(picture, headers[0], series_uid=hd.UID()))
    return objects, confirmed


_KINDS = {
    Comprehensive3DSRStorage: "SR",
    SegmentationStorage: "SEG",
    SecondaryCaptureImageStorage: "SC",
}


def push_results(client: PacsClient, study: ImagingStudy) -> PushSummary:
    """Build and STOW the results of ``study``; the push is recorded on the received study."""
    received, _ = _source(study)
    objects, confirmed = build_result_objects(study)
    client.store(objects, received.study_instance_uid)
    stored = tuple(
        (
            _KINDS.get(str(o.SOPClassUID), str(o.SOPClassUID)),
            str(o.SeriesInstanceUID),
            str(o.SOPInstanceUID),
        )
        for o in objects
    )
    now = timezone.now()
    with transaction.atomic():
        row = ReceivedStudy.objects.get(pk=received.pk)
        history = list(row.pushed or [])
        history.append(
            {
                "at": now.isoformat(timespec="seconds"),
                "verified": confirmed,
                "objects": [{"kind": k, "series": s, "sop": i} for k, s, i in stored],
            }
        )
        services.update_received_study(
            received=row,
            expected_version=row.version,
            changes={"pushed_at": now, "pushed": history},
        )
    summary = PushSummary(received.study_instance_uid, stored, confirmed)
    logger.info("scan %s: %s", study.pk, summary.describe())
    return summary
