"""Completing the SINS of a vertebra: the imaging part from the analysis plus pain and alignment.

:func:`imaging_part_of` reads the four imaging components of a finding from its study's report
(``vertebrae[i].sins_imaging``); :func:`score_for` completes them (core
:class:`~spinewatch.core.sins.SinsScore`); :func:`record_sins_assessment` stores the result (a new
:class:`~spinewatch.registry.models.SinsAssessment` row, through the audited write funnel).
When a report carries only the imaging points (no components), the total is points + pain +
alignment and the category follows from the total. Components the analysis could not assess
(``not_assessed``: an MRI or no CT for the bone lesion and posterolateral involvement, no heights
for the collapse) are read from the images by the clinician and given here; the stored
``imaging_points`` are then those of the completed imaging part.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import transaction

from spinewatch.core.errors import InputError
from spinewatch.core.sins import (
    SinsAlignment,
    SinsCategory,
    SinsImagingPart,
    SinsPain,
    SinsScore,
)
from spinewatch.registry import models as rm
from spinewatch.registry.errors import RegistryError
from spinewatch.registry.models import SinsAssessment
from spinewatch.registry.services._base import created, get, parse_field
from spinewatch.registry.services.patients import _check_user

__all__ = [
    "SinsResult",
    "imaging_part_of",
    "imaging_points_of",
    "record_sins_assessment",
    "score_for",
]


@dataclass(frozen=True)
class SinsResult:
    """A completed SINS: the imaging points, the clinical parts and the total and category."""

    imaging_points: int
    pain: SinsPain
    alignment: SinsAlignment
    total: int
    category: SinsCategory
    score: SinsScore | None  # None when the report had the imaging points only


def imaging_part_of(finding: rm.VertebraFinding) -> SinsImagingPart | None:
    """The four imaging components of ``finding`` from its study's report (None if absent)."""
    try:
        report = finding.study.spine_report()
        sins = None if report is None else report.vertebra(finding.level).risk.sins_imaging
    except (KeyError, InputError):
        return None
    if sins is None:
        return None
    parts = (sins.location, sins.bone_lesion, sins.collapse, sins.posterolateral)
    if any(p is None for p in parts):
        return None  # a report with the imaging points only
    try:
        return SinsImagingPart(*parts)  # type: ignore[arg-type]
    except InputError:
        return None


def imaging_points_of(finding: rm.VertebraFinding) -> int | None:
    """The imaging points of ``finding`` (0-11): its stored points, else the report's part."""
    if finding.sins_imaging_points is not None:
        return int(finding.sins_imaging_points)
    part = imaging_part_of(finding)
    return part.points if part is not None else None


def score_for(
    finding: rm.VertebraFinding,
    *,
    pain: object,
    alignment: object,
    readings: dict[str, object] | None = None,
) -> SinsResult:
    """Complete the SINS of ``finding``; RegistryError when it has no imaging part or bad input.

    ``readings``: the clinician's values of the imaging components the analysis did not assess
    (``{"bone_lesion": "lytic", ...}``); each such component must be given.
    """
    pain_value = parse_field("pain", SinsPain.parse, pain)
    alignment_value = parse_field("alignment", SinsAlignment.parse, alignment)
    part = imaging_part_of(finding)
    if part is not None:
        given = {k: v for k, v in (readings or {}).items() if v not in (None, "")}
        missing = [name for name in part.unassessed if name not in given]
        if missing:
            names = ", ".join(name.replace("_", " ") for name in missing)
            raise RegistryError(
                f"SINS of {finding.level}: {names} not assessed by the imaging analysis (MRI, "
                "no CT or no heights): read it from the images and enter it",
                field=missing[0],
            )
        try:
            score = SinsScore.from_imaging(
                part, pain=pain_value, alignment=alignment_value, **given
            )
        except InputError as exc:
            raise RegistryError(str(exc), field=exc.field) from exc
        imaging = score.imaging_part.points
        return SinsResult(imaging, pain_value, alignment_value, score.total, score.category, score)
    points = finding.sins_imaging_points
    if points is None:
        raise RegistryError(
            f"finding {finding.level} of imaging study {finding.study_id} has no SINS imaging "
            "part: analyse the scan first"
        )
    total = int(points) + pain_value.points + alignment_value.points
    return SinsResult(
        int(points), pain_value, alignment_value, total, SinsCategory.from_total(total), None
    )


def record_sins_assessment(
    *,
    finding: rm.VertebraFinding | int,
    pain: SinsPain | str,
    alignment: SinsAlignment | str,
    assessed_by: Any = None,
    readings: dict[str, object] | None = None,
) -> SinsAssessment:
    """Store a completed SINS for ``finding`` (a new row; earlier ones are kept as history).

    ``readings``: see :func:`score_for`. ``assessed_by``: a saved user or None. Raises
    RegistryError (with the offending field) for bad input, NotFoundError for an unknown finding.
    """
    user = _check_user("assessed_by", assessed_by)
    with transaction.atomic():
        row = get(rm.VertebraFinding, finding, "finding")
        result = score_for(row, pain=pain, alignment=alignment, readings=readings)
        return created(
            SinsAssessment(
                finding=row,
                pain=result.pain.value,
                alignment=result.alignment.value,
                imaging_points=result.imaging_points,
                total=result.total,
                category=result.category.value,
                assessed_by=user,
            )
        )
