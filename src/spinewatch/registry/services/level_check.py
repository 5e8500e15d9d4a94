"""The level check of an analysed study: confirmed as labelled, or corrected (audited).

:func:`confirm_levels` records that the radiologist saw the labelled sagittal view and agrees.
:func:`record_level_shift` records a correction (:mod:`spinewatch.core.level_check`) with the
renaming it causes and marks it ``pending`` until the re-analysis with the relabelled map is
stored (:func:`finish_level_shift`, called in the same transaction as that store).
"""

from __future__ import annotations

from collections.abc import Mapping

from django.db import transaction
from django.utils import timezone

from spinewatch.core.level_check import LevelCheckError, renamed_levels
from spinewatch.core.levels import VertebralLevel
from spinewatch.registry import models as m
from spinewatch.registry.errors import RegistryError
from spinewatch.registry.models_pacs import LevelCheckOutcome
from spinewatch.registry.services._base import changed, created, get

__all__ = ["confirm_levels", "finish_level_shift", "plan_level_shift", "record_level_shift"]


def _save(
    study: m.ImagingStudy, expected_version: int | None, values: Mapping[str, object]
) -> m.LevelCheck:
    existing = m.LevelCheck.objects.filter(study=study).first()
    what = f"level check of imaging study {study.pk}"
    if existing is None:
        if expected_version is not None:
            raise RegistryError(f"{what}: none recorded yet; expected no version")
        return created(m.LevelCheck(study=study, **values))
    if expected_version is None:
        raise RegistryError(f"{what}: already recorded; pass the version you read")
    return changed(existing, what=what, changes=dict(values), expected_version=expected_version)


def _levels_of(study: m.ImagingStudy) -> list[VertebralLevel]:
    report = study.spine_report()
    return [] if report is None else [v.level for v in report.vertebrae]


def confirm_levels(
    *,
    study: m.ImagingStudy | int,
    checked_by: object = None,
    expected_version: int | None = None,
    note: str = "",
) -> m.LevelCheck:
    """Record that the study's levels are right as labelled."""
    with transaction.atomic():
        row = get(m.ImagingStudy, study, "imaging study")
        if not row.report:
            raise RegistryError(f"imaging study {row.pk}: not analysed; nothing to confirm")
        check = m.LevelCheck.objects.filter(study=row).first()
        if check is not None and check.pending:
            raise RegistryError(
                f"imaging study {row.pk}: the re-analysis after the level shift is still running"
            )
        return _save(
            row,
            expected_version,
            {
                "outcome": LevelCheckOutcome.CONFIRMED.value,
                "shift": 0,
                "variant": "",
                "renamed": {},
                "pending": False,
                "checked_by": checked_by if getattr(checked_by, "pk", None) else None,
                "checked_at": timezone.now(),
                "note": str(note).strip(),
            },
        )


def plan_level_shift(*, study: m.ImagingStudy | int, shift: int, variant: str) -> dict[str, str]:
    """Old -> new level names the correction gives the study's analysed vertebrae."""
    row = get(m.ImagingStudy, study, "imaging study")
    levels = _levels_of(row)
    if not levels:
        raise RegistryError(f"imaging study {row.pk}: not analysed; no levels to shift")
    try:
        mapping = renamed_levels(levels, shift=shift, variant=variant)
    except LevelCheckError as exc:
        raise RegistryError(str(exc)) from exc
    if all(old is new for old, new in mapping.items()):
        raise RegistryError("the correction changes no level; confirm the levels instead")
    return {str(old): str(new) for old, new in mapping.items()}


def record_level_shift(
    *,
    study: m.ImagingStudy | int,
    shift: int,
    variant: str,
    checked_by: object = None,
    expected_version: int | None = None,
    note: str = "",
) -> m.LevelCheck:
    """Record a correction; the re-analysis is queued by the caller (pending until stored)."""
    with transaction.atomic():
        row = get(m.ImagingStudy, study, "imaging study")
        renamed = plan_level_shift(study=row, shift=shift, variant=variant)
        return _save(
            row,
            expected_version,
            {
                "outcome": LevelCheckOutcome.SHIFTED.value,
                "shift": shift,
                "variant": variant,
                "renamed": renamed,
                "pending": True,
                "checked_by": checked_by if getattr(checked_by, "pk", None) else None,
                "checked_at": timezone.now(),
                "note": str(note).strip(),
            },
        )


def finish_level_shift(*, study: m.ImagingStudy | int) -> m.LevelCheck | None:
    """Clear ``pending`` once the relabelled analysis is stored (None without a pending shift)."""
    with transaction.atomic():
        check = m.LevelCheck.objects.filter(study_id=getattr(study, "pk", study)).first()
        if check is None or not check.pending:
            return None
        return changed(
            check,
            what=f"level check of imaging study {check.study_id}",
            changes={"pending": False},
            expected_version=check.version,
        )
