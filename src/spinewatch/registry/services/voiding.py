"""Voiding: a record entered in error is marked, with a reason, instead of being deleted.

A voided patient, scan, procedure or follow-up visit stays in the registry and in the audit
trail, shown struck through with its reason, but leaves every worklist and every result (the
cohort table, the plan's risk, the PACS matching). Side effects, each audited:

- a voided **procedure** re-opens the decisions its levels had closed ("treated" -> no decision,
  the note saying why), so the vertebrae come back to the decision worklist;
- a voided **scan** frees its DICOM series (the same files can be uploaded again) and the
  surveillance plan moves back to the latest scan that remains;
- a voided **patient** voids nothing else but is no longer listed, matched or counted.

A voided record cannot be voided again or edited.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from spinewatch.registry import models as m
from spinewatch.registry.choices import Decision
from spinewatch.registry.errors import RegistryError
from spinewatch.registry.services._base import changed, get
from spinewatch.registry.services.patients import _check_user
from spinewatch.registry.services.surveillance import advance_plan

__all__ = ["VOIDABLE", "void_record"]

#: What can be voided: model -> the words used in messages.
VOIDABLE: dict[type[Any], str] = {
    m.Patient: "patient",
    m.ImagingStudy: "imaging study",
    m.Procedure: "procedure",
    m.FollowUp: "follow-up",
}


def _what(row: Any) -> str:
    if isinstance(row, m.Patient):
        return f"patient {row.study_id}"
    if isinstance(row, m.FollowUp):
        return f"follow-up {row.timepoint} of procedure {row.procedure_id}"
    return f"{VOIDABLE[type(row)]} {row.pk}"


def _reopen_decisions(procedure: m.Procedure) -> None:
    when = procedure.performed_on.isoformat()
    for finding in m.VertebraFinding.objects.filter(treated_by__procedure=procedure):
        changed(
            finding,
            what=f"finding {finding.level} of imaging study {finding.study_id}",
            changes={
                "decision": Decision.NONE.value,
                "decision_note": f"re-opened: the procedure of {when} was voided",
                "treated_by": None,
            },
            expected_version=finding.version,
        )


def void_record(
    *,
    record: m.Patient | m.ImagingStudy | m.Procedure | m.FollowUp,
    expected_version: int,
    reason: str,
    voided_by: Any = None,
) -> Any:
    """Void ``record`` (a patient, imaging study, procedure or follow-up row) with ``reason``.

    ``expected_version`` is the version the person saw. Returns the row as saved.
    """
    model = type(record)
    if model not in VOIDABLE:
        raise RegistryError(
            f"record {record!r}: expected a patient, imaging study, procedure or follow-up"
        )
    if not isinstance(reason, str) or not reason.strip():
        raise RegistryError("reason '': say why the record is voided (e.g. 'wrong patient')")
    user = _check_user("voided_by", voided_by)
    with transaction.atomic():
        row = get(model, record, VOIDABLE[model])
        what = _what(row)
        if row.voided_at is not None:
            raise RegistryError(f"{what} is already voided ({row.void_reason})")
        saved = changed(
            row,
            what=what,
            changes={
                "voided_at": timezone.now(),
                "void_reason": reason.strip(),
                "voided_by": user,
            },
            expected_version=expected_version,
        )
        if isinstance(saved, m.Procedure):
            _reopen_decisions(saved)
        patient_id = (
            saved.pk
            if isinstance(saved, m.Patient)
            else saved.procedure.patient_id
            if isinstance(saved, m.FollowUp)
            else saved.patient_id
        )
        advance_plan(patient_id)
        return saved
