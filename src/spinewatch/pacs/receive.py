"""Receiving a DICOM study (C-STORE or DICOMweb): store, choose the series, match, analyse.

:func:`receive_study` takes the files of ONE study (already on local disk, e.g. the staging
folder of an association or a pull) and, all or nothing:

1. moves them under ``DATA_DIR/uploads/<id>/dicom/<series>/<instance>.dcm`` (mode 0700, never
   served statically), merging with the files of the same study received earlier (a segmentation
   node often sends its SEG in a later association);
2. summarises the series and chooses the one to analyse (:mod:`.series`); a study without an
   axial CT series is refused (:class:`~.errors.StudyRefusedError`) and nothing is kept;
3. matches the patient by PatientID (+ issuer) (:mod:`.matching`); no match -> the
   reconciliation list (status ``unmatched``), never a new patient;
4. finds the vertebra label map: a label file given by the caller, else a vertebra SEG in the
   study that references the chosen series
   (:func:`~spinewatch.imaging.dicom_export.labels_from_seg`, written as ``labels.nii.gz`` in
   the VerSe convention), else -- when the setting ``SPINEWATCH_PACS_WITHOUT_LABELS`` is
   ``segment`` (the default) -- none: the worker segments the CT with the segmenter
   ``SPINEWATCH_SEGMENTER`` names, as for a CT uploaded alone (``wait``: the study stays
   matched until a SEG arrives);
5. for a matched study with a label map, or to be segmented: registers the imaging study and
   queues its analysis (the same persisted job as an upload) -- status ``queued``.

With ``segment``, a SEG that a segmentation node sends after the CT's analysis was queued is
refused like any study received again (:class:`~.errors.AlreadyReceivedError`): a site whose
segmentation node sends SEGs sets ``wait``.

Any error undoes the database writes (one transaction) and removes the files this call added.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import shutil
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.db import transaction
from django.utils import timezone
from pydicom import Dataset, dcmread
from pydicom.errors import InvalidDicomError

from spinewatch.pacs.errors import (
    AlreadyReceivedError,
    PacsError,
    PatientMismatchError,
    StudyRefusedError,
)
from spinewatch.pacs.matching import Match, match_patient
from spinewatch.pacs.series import SeriesSummary, choose_series, summarise_series
from spinewatch.registry import services
from spinewatch.registry.models import Patient, ReceivedStudy
from spinewatch.registry.models_pacs import ReceivedStatus
from spinewatch.web.scans import jobs
from spinewatch.web.scans.uploads import StoredUpload, check_labels_file, upload_dir, uploads_root

__all__ = [
    "DICOM_DIR",
    "Received",
    "analyse_received_study",
    "read_dicom_headers",
    "receive_study",
    "study_files",
]

logger = logging.getLogger(__name__)

DICOM_DIR = "dicom"
_LABEL_FILES = ("labels.nii.gz", "labels.nii")
NO_LABELS = (
    "no vertebra label map: send a vertebra SEG of the chosen series into the study (e.g. from "
    "the segmentation node), or pull again with --labels"
)


@dataclass(frozen=True)
class Received:
    """The outcome of :func:`receive_study`: the row and the analysis job (None: not queued)."""

    study: ReceivedStudy
    job_id: int | None


def read_dicom_headers(paths: Sequence[Path]) -> list[tuple[Path, Dataset]]:
    """(path, header without pixel data) of every DICOM file among ``paths`` (others skipped)."""
    out = []
    for path in paths:
        try:
            out.append((path, dcmread(path, stop_before_pixels=True)))
        except (InvalidDicomError, OSError, EOFError, ValueError) as exc:
            logger.warning("%s: not a readable DICOM file (%s); skipped", path, exc)
    return out


def study_files(storage_dir: str) -> list[Path]:
    """Every stored file of a received study."""
    root = upload_dir(storage_dir) / DICOM_DIR
    return sorted(p for p in root.rglob("*.dcm") if p.is_file()) if root.is_dir() else []


def _safe(uid: str) -> str:
    return "".join(c for c in uid if c.isdigit() or c == ".")[:64] or "unknown"


def _date(value: object) -> dt.date | None:
    text = str(value or "").strip()
    try:
        return dt.datetime.strptime(text[:8], "%Y%m%d").date() if text else None
    except ValueError:
        return None


def _place(headers: list[tuple[Path, Dataset]], storage: Path, added: list[Path]) -> None:
    """Copy the files into ``storage/dicom/<series>/<sop>.dcm``, listing each in ``added`` as
    soon as it is written (so a failure half-way can be undone)."""
    for path, ds in headers:
        target = (
            storage
            / DICOM_DIR
            / _safe(str(ds.SeriesInstanceUID))
            / (_safe(str(ds.SOPInstanceUID)) + ".dcm")
        )
        if target.exists():
            continue  # the same instance sent again
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        added.append(target)
        shutil.copyfile(path, target)
        os.chmod(target, 0o600)


def _references_series(seg: Dataset, series_uid: str) -> bool:
    for item in seg.get("ReferencedSeriesSequence") or []:
        if str(item.get("SeriesInstanceUID", "")) == series_uid:
            return True
    return False


def _labels_from_study_seg(
    storage: Path, headers: list[tuple[Path, Dataset]], series_uid: str
) -> tuple[str, str] | None:
    """Write ``labels.nii.gz`` from a vertebra SEG of the chosen series; (file, source) or None."""
    import nibabel as nib

    from spinewatch.imaging.dicom_export import SegReadError, labels_from_seg
    from spinewatch.imaging.io import load_ct

    segs = [
        (p, ds)
        for p, ds in headers
        if str(ds.get("Modality", "")) == "SEG" and _references_series(ds, series_uid)
    ]
    if not segs:
        return None
    ct = load_ct(storage / DICOM_DIR, series_uid=series_uid)
    ct_headers = [ds for _, ds in headers if str(ds.get("SeriesInstanceUID", "")) == series_uid]
    for path, ds in sorted(
        segs, key=lambda item: str(item[1].get("ContentDate", "")), reverse=True
    ):
        try:
            labels = labels_from_seg(path, ct.grid, ct_headers)
        except SegReadError as exc:
            logger.info("%s: not usable as the label map (%s)", path, exc)
            continue
        image = nib.Nifti1Image(labels.labels, ct.grid.affine)
        image.set_qform(ct.grid.affine, code=1)
        image.set_sform(ct.grid.affine, code=1)
        nib.save(image, storage / "labels.nii.gz")
        os.chmod(storage / "labels.nii.gz", 0o600)
        return "labels.nii.gz", f"SEG {ds.SeriesInstanceUID} ({ds.get('SeriesDescription', '')})"
    return None


def _segmenter_without_labels() -> str | None:
    """The segmenter the worker runs on a study received without a label map, or None when
    such a study waits for a SEG (``SPINEWATCH_PACS_WITHOUT_LABELS=wait``)."""
    from django.conf import settings

    if getattr(settings, "SPINEWATCH_PACS_WITHOUT_LABELS", "segment") == "wait":
        return None
    return str(settings.SPINEWATCH_SEGMENTER)


def _copy_labels(storage: Path, labels: Path) -> tuple[str, str]:
    with labels.open("rb") as fh:
        suffix = check_labels_file(fh, labels.name)
    target = storage / f"labels{suffix}"
    shutil.copyfile(labels, target)
    os.chmod(target, 0o600)
    return target.name, labels.name


def _one_study(headers: list[tuple[Path, Dataset]]) -> Dataset:
    if not headers:
        raise PacsError("no DICOM file received")
    uids = {str(ds.get("StudyInstanceUID", "")) for _, ds in headers}
    if len(uids) != 1 or "" in uids:
        raise PacsError(
            f"the files belong to {len(uids)} studies ({', '.join(sorted(uids))[:200]}); "
            "expected one study with a StudyInstanceUID"
        )
    return headers[0][1]


def receive_study(
    paths: Sequence[Path],
    *,
    via: str,
    calling_ae: str = "",
    labels: Path | None = None,
    convention: str = "auto",
    expect_patient: Patient | None = None,
    requested_by: object = None,
    extra_series: Sequence[SeriesSummary] = (),
) -> Received:
    """Store, match and (when possible) queue the analysis of one study; see the module doc."""
    headers = read_dicom_headers(paths)
    first = _one_study(headers)
    study_uid = str(first.StudyInstanceUID)
    existing = ReceivedStudy.objects.filter(study_instance_uid=study_uid).first()
    if existing is not None and (
        existing.imaging_study_id is not None
        or existing.status in (ReceivedStatus.REFUSED, ReceivedStatus.DISMISSED)
    ):
        scan = f" (scan {existing.imaging_study_id})" if existing.imaging_study_id else ""
        raise AlreadyReceivedError(
            f"study {study_uid} was received before and is {existing.get_status_display().lower()}"
            f"{scan}; nothing was stored again"
        )
    new_dir = existing is None or not existing.storage_dir
    dir_name = uuid.uuid4().hex if new_dir else existing.storage_dir  # type: ignore[union-attr]
    storage = upload_dir(dir_name)
    if new_dir:
        uploads_root().mkdir(parents=True, exist_ok=True, mode=0o700)
        storage.mkdir(mode=0o700)
    added: list[Path] = []
    try:
        _place(headers, storage, added)
        with _label_files_undone(storage):
            return _register(
                existing,
                dir_name,
                storage,
                first,
                via=via,
                calling_ae=calling_ae,
                labels=labels,
                convention=convention,
                expect_patient=expect_patient,
                requested_by=requested_by,
                extra_series=extra_series,
            )
    except BaseException:
        if new_dir:
            shutil.rmtree(storage, ignore_errors=True)
        else:
            for path in added:
                path.unlink(missing_ok=True)
        raise


def _register(
    existing: ReceivedStudy | None,
    dir_name: str,
    storage: Path,
    first: Dataset,
    *,
    via: str,
    calling_ae: str,
    labels: Path | None,
    convention: str,
    expect_patient: Patient | None,
    requested_by: object,
    extra_series: Sequence[SeriesSummary],
) -> Received:
    study_uid = str(first.StudyInstanceUID)
    all_headers = read_dicom_headers(study_files(dir_name))
    summaries = summarise_series(ds for _, ds in all_headers)
    known = {s.uid for s in summaries}
    summaries += [s for s in extra_series if s.uid not in known]
    choice = choose_series(summaries)
    if choice.uid is None:
        raise StudyRefusedError(f"study {study_uid}: {choice.reason}; nothing was stored")
    pid = str(first.get("PatientID", "") or "")
    issuer = str(first.get("IssuerOfPatientID", "") or "")
    match = match_patient(pid, issuer)
    if existing is not None and existing.patient is not None:  # assigned by reconciliation
        match = Match(existing.patient, f"assigned to {existing.patient.study_id}")
    if expect_patient is not None and (
        match.patient is None or match.patient.pk != expect_patient.pk
    ):
        raise PatientMismatchError(
            f"study {study_uid}: PatientID {pid!r} ({match.reason}) is not patient "
            f"{expect_patient.study_id}; nothing was stored"
        )
    found = _copy_labels(storage, labels) if labels is not None else None
    if found is None:
        found = _labels_from_study_seg(storage, all_headers, choice.uid)
        if found is not None:
            convention = "verse"
    segmenter = _segmenter_without_labels() if found is None else None
    if segmenter is not None:
        # no label file: the worker segments the CT (StoredUpload with an empty labels_file)
        found = ("", f"none received: segmented from the CT ({segmenter})")
    fields: dict[str, Any] = {
        "series": [s.to_json() for s in summaries],
        "chosen_series_uid": choice.uid,
        "labels_source": found[1] if found else "",
        "storage_dir": dir_name,
    }
    with transaction.atomic():
        job_id = None
        if match.patient is None:
            status, message = ReceivedStatus.UNMATCHED, match.reason
        elif found is None:
            status, message = ReceivedStatus.MATCHED, f"{match.reason}; {NO_LABELS}"
        else:
            imaging, job_id = _queue(
                match.patient, first, choice.uid, dir_name, found, convention, requested_by
            )
            fields["imaging_study"] = imaging
            status, message = ReceivedStatus.QUEUED, f"{match.reason}; analysis queued"
            if segmenter is not None:
                message += f" (no vertebra SEG: the CT is segmented by {segmenter})"
        fields.update(status=status.value, message=message, patient=match.patient)
        row = _save_row(existing, first, fields, via=via, calling_ae=calling_ae)
    logger.info("received study %s via %s: %s", study_uid, via, message)
    return Received(row, job_id)


def _queue(
    patient: Patient,
    first: Dataset,
    series_uid: str,
    dir_name: str,
    labels: tuple[str, str],
    convention: str,
    requested_by: object,
) -> tuple[Any, int]:
    """Register the imaging study and queue its analysis (inside the caller's transaction)."""
    today = timezone.localdate()
    imaging = services.add_imaging_study(
        patient=patient,
        study_date=min(_date(first.get("StudyDate")) or today, today),
        study_instance_uid=str(first.StudyInstanceUID),
        series_instance_uid=series_uid,
        description=str(first.get("StudyDescription", "") or "")[:200],
    )
    job = jobs.enqueue_analysis(
        study_id=imaging.pk,
        upload=StoredUpload(
            dir_name, DICOM_DIR, labels[0], f"DICOM series {series_uid}", labels[1]
        ),
        convention=convention,
        series_uid=series_uid,
        requested_by=requested_by,
    )
    return imaging, job.pk


def _save_row(
    existing: ReceivedStudy | None,
    first: Dataset,
    fields: dict[str, Any],
    *,
    via: str,
    calling_ae: str,
) -> ReceivedStudy:
    if existing is not None:
        return services.update_received_study(
            received=existing, expected_version=existing.version, changes=fields
        )
    return services.record_received_study(
        study_instance_uid=str(first.StudyInstanceUID),
        dicom_patient_id=str(first.get("PatientID", "") or ""),
        issuer_of_patient_id=str(first.get("IssuerOfPatientID", "") or ""),
        dicom_patient_name=str(first.get("PatientName", "") or ""),
        study_date=_date(first.get("StudyDate")),
        study_description=str(first.get("StudyDescription", "") or ""),
        accession_number=str(first.get("AccessionNumber", "") or ""),
        received_via=via,
        calling_ae_title=calling_ae,
        **fields,
    )


@contextlib.contextmanager
def _label_files_undone(storage: Path) -> Iterator[None]:
    """Remove the label files written inside the block when it fails."""
    before = {n for n in _LABEL_FILES if (storage / n).exists()}
    try:
        yield
    except BaseException:
        for name in _LABEL_FILES:
            if name not in before:
                (storage / name).unlink(missing_ok=True)
        raise


def analyse_received_study(
    received: ReceivedStudy,
    *,
    labels: Path | None = None,
    convention: str = "auto",
    requested_by: object = None,
) -> Received:
    """Queue the analysis of a stored study that is matched (e.g. after reconciliation) but was
    not analysed yet -- with a label file now given, or a vertebra SEG received since."""
    if received.imaging_study_id is not None:
        raise AlreadyReceivedError(
            f"study {received.study_instance_uid} is already analysed (scan "
            f"{received.imaging_study_id})"
        )
    if received.status != ReceivedStatus.MATCHED or received.patient_id is None:
        raise PacsError(
            f"study {received.study_instance_uid} is {received.get_status_display().lower()}; "
            "assign it to a patient first"
        )
    files = study_files(received.storage_dir)
    headers = read_dicom_headers(files[:1])
    if not headers:
        raise PacsError(f"study {received.study_instance_uid}: its stored files are missing")
    storage = upload_dir(received.storage_dir)
    with _label_files_undone(storage):
        return _register(
            received,
            received.storage_dir,
            storage,
            headers[0][1],
            via=received.received_via,
            calling_ae=received.calling_ae_title,
            labels=labels,
            convention=convention,
            expect_patient=None,
            requested_by=requested_by,
            extra_series=[],
        )
