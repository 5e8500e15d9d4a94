"""Pulling CT studies from the PACS (WADO-RS) and the watch for due patients (QIDO-RS).

:func:`pull_study` searches the study's series, retrieves the CT and SEG series (other
modalities are listed, not retrieved) into a staging folder and hands them to
:func:`~.receive.receive_study`; the staging folder is removed whatever happens.
:func:`poll_once` is one pass of the watch: for every patient whose surveillance scan is due, the
PACS is asked for CT studies by PatientID (= hospital number) since the patient's latest study,
and each study SpineWatch has not seen is pulled. One failing study does not stop the pass.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.utils import timezone

from spinewatch.pacs.dicomweb import PacsClient, json_value
from spinewatch.pacs.errors import PacsError, StudyRefusedError
from spinewatch.pacs.receive import Received, receive_study
from spinewatch.pacs.series import SeriesSummary
from spinewatch.registry.models import ImagingStudy, Patient, ReceivedStudy, SurveillancePlan
from spinewatch.registry.models_pacs import ReceivedVia

__all__ = ["PollSummary", "poll_once", "pull_study"]

logger = logging.getLogger(__name__)

_RETRIEVED_MODALITIES = ("CT", "SEG")
_STUDY_UID, _SERIES_UID, _MODALITY = "0020000D", "0020000E", "00080060"
_SERIES_DESCRIPTION, _N_INSTANCES = "0008103E", "00201209"


def _staging() -> Path:
    root = Path(settings.DATA_DIR) / "tmp"
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    return Path(tempfile.mkdtemp(prefix="pull-", dir=root))


def pull_study(
    client: PacsClient,
    study_uid: str,
    *,
    patient: Patient | None = None,
    labels: Path | None = None,
    convention: str = "auto",
    requested_by: object = None,
) -> Received:
    """Retrieve one study and receive it (see the module doc); errors are PacsError."""
    series = client.search_series(study_uid)
    wanted, skipped = [], []
    for item in series:
        modality = json_value(item, _MODALITY)
        uid = json_value(item, _SERIES_UID)
        if modality in _RETRIEVED_MODALITIES:
            wanted.append(uid)
        else:
            n = json_value(item, _N_INSTANCES)
            skipped.append(
                SeriesSummary(
                    uid=uid,
                    modality=modality,
                    description=json_value(item, _SERIES_DESCRIPTION),
                    n_instances=int(n) if n.isdigit() else 0,
                    note=f"not retrieved ({modality or 'no modality'})",
                    retrieved=False,
                )
            )
    if not any(json_value(i, _MODALITY) == "CT" for i in series):
        seen = ", ".join(sorted({s.modality or "?" for s in skipped})) or "none"
        raise StudyRefusedError(
            f"study {study_uid}: no CT series in the PACS (modalities: {seen}); nothing was stored"
        )
    staging = _staging()
    try:
        paths = []
        for uid in wanted:
            for n, ds in enumerate(client.retrieve_series(study_uid, uid)):
                path = staging / f"{len(paths):06d}-{n}.dcm"
                ds.save_as(path, enforce_file_format=False)
                paths.append(path)
        logger.info("pulled %d instances of study %s", len(paths), study_uid)
        return receive_study(
            paths,
            via=ReceivedVia.DICOMWEB.value,
            labels=labels,
            convention=convention,
            expect_patient=patient,
            requested_by=requested_by,
            extra_series=skipped,
        )
    finally:
        shutil.rmtree(staging, ignore_errors=True)


@dataclass
class PollSummary:
    """What one pass of the watch did."""

    patients: int = 0
    pulled: list[str] = field(default_factory=list)
    queued: list[int] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    def describe(self) -> str:
        text = (
            f"{self.patients} due patient(s) searched; {len(self.pulled)} new study(ies) pulled, "
            f"{len(self.queued)} analysis(es) queued"
        )
        if self.failed:
            text += f"; {len(self.failed)} failed: " + "; ".join(self.failed)
        return text


def poll_once(client: PacsClient, *, requested_by: object = None) -> PollSummary:
    """One pass of the watch for the patients whose surveillance scan is due."""
    today = timezone.localdate()
    summary = PollSummary()
    plans = (
        SurveillancePlan.objects.filter(active=True, next_scan_due__lte=today)
        .select_related("patient", "patient__identity")
        .order_by("next_scan_due", "pk")
    )
    known = set(ReceivedStudy.objects.values_list("study_instance_uid", flat=True))
    known |= set(
        ImagingStudy.objects.exclude(study_instance_uid="").values_list(
            "study_instance_uid", flat=True
        )
    )
    for plan in plans:
        identity = getattr(plan.patient, "identity", None)
        if identity is None:
            continue
        summary.patients += 1
        filters = {"PatientID": identity.hospital_number, "ModalitiesInStudy": "CT"}
        latest = plan.patient.imaging_studies.order_by("-study_date").first()
        if latest is not None:
            filters["StudyDate"] = f"{latest.study_date:%Y%m%d}-"
        for item in client.search_studies(filters):
            uid = json_value(item, _STUDY_UID)
            if not uid or uid in known:
                continue
            try:
                received = pull_study(client, uid, patient=plan.patient, requested_by=requested_by)
            except PacsError as exc:
                summary.failed.append(f"{uid}: {exc}")
                logger.warning("poll: study %s of %s: %s", uid, plan.patient.study_id, exc)
                continue
            known.add(uid)
            summary.pulled.append(uid)
            if received.job_id is not None:
                summary.queued.append(received.job_id)
    return summary
