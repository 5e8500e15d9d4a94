"""Merging two records of one person (a near-duplicate registered twice).

:func:`merge_patients` moves everything clinical of the *duplicate* onto the record that is
kept -- diagnoses, imaging studies (with their findings), procedures (with their levels,
leakages, complications and follow-up visits), received PACS studies, and the surveillance plan
when the kept record has none -- then voids the duplicate with ``merged_into`` pointing to the
kept record. Each moved row is an audited update (``patient`` old -> new); the duplicate's
identity stays with it (its hospital number stays reserved, so the same person cannot be
registered a third time under it). All or nothing.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from spinewatch.registry import models as m
from spinewatch.registry.errors import RegistryError
from spinewatch.registry.services._base import changed, get
from spinewatch.registry.services.patients import _check_user
from spinewatch.registry.services.surveillance import advance_plan

__all__ = ["MergeSummary", "merge_patients"]


class MergeSummary(dict[str, int]):
    """How many rows of each kind moved (``{"diagnoses": 1, "procedures": 2, ...}``)."""


def _move(rows: Any, keep: m.Patient, what: str, field: str = "patient") -> int:
    n = 0
    for row in rows:
        changed(
            row,
            what=f"{what} {row.pk}",
            changes={field: keep},
            expected_version=getattr(row, "version", None),
        )
        n += 1
    return n


def merge_patients(
    *,
    keep: m.Patient | int,
    duplicate: m.Patient | int,
    keep_version: int,
    duplicate_version: int,
    reason: str,
    merged_by: Any = None,
) -> MergeSummary:
    """Merge ``duplicate`` into ``keep`` (both at the versions the person saw); returns counts."""
    if not isinstance(reason, str) or not reason.strip():
        raise RegistryError("reason '': say why the two records are one person")
    user = _check_user("merged_by", merged_by)
    with transaction.atomic():
        kept = get(m.Patient, keep, "patient")
        dup = get(m.Patient, duplicate, "patient")
        if kept.pk == dup.pk:
            raise RegistryError(f"patient {kept.study_id}: cannot be merged into itself")
        for row in (kept, dup):
            if row.voided_at is not None:
                raise RegistryError(f"patient {row.study_id} is voided: it cannot be merged")
        kept = changed(
            kept, what=f"patient {kept.study_id}", changes={}, expected_version=keep_version
        )
        summary = MergeSummary()
        summary["diagnoses"] = _move(dup.diagnoses.all(), kept, "diagnosis")
        summary["imaging_studies"] = _move(dup.imaging_studies.all(), kept, "imaging study")
        summary["procedures"] = _move(dup.procedures.all(), kept, "procedure")
        summary["received_studies"] = _move(
            m.ReceivedStudy.objects.filter(patient=dup), kept, "received study"
        )
        plan = m.SurveillancePlan.objects.filter(patient=dup).first()
        summary["surveillance_plan"] = 0
        if plan is not None and not m.SurveillancePlan.objects.filter(patient=kept).exists():
            summary["surveillance_plan"] = _move([plan], kept, "surveillance plan")
        elif plan is not None and plan.active:
            changed(
                plan,
                what=f"surveillance plan of {dup.study_id}",
                changes={"active": False},
                expected_version=plan.version,
            )
        changed(
            dup,
            what=f"patient {dup.study_id}",
            changes={
                "merged_into": kept,
                "voided_at": timezone.now(),
                "void_reason": f"merged into {kept.study_id}: {reason.strip()}",
                "voided_by": user,
            },
            expected_version=duplicate_version,
        )
        advance_plan(kept)
        return summary
