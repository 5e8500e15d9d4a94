"""What the patient page shows: one timeline (newest first), the latest scan analysis with the
changes since the prior analysed scan, the follow-up schedule and the pain series.

Pure read functions over the registry (no writes, no requests): the view formats them.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from dataclasses import dataclass, field
from typing import Any

from spinewatch.core.errors import InputError
from spinewatch.registry import models as rm
from spinewatch.registry.models import SinsAssessment
from spinewatch.web.followup_status import VisitStatus, visit_label, visit_status

__all__ = [
    "Analysis",
    "FindingRow",
    "PainPoint",
    "ScheduleGroup",
    "TimelineEntry",
    "follow_up_schedule",
    "imaging_title",
    "latest_analysis",
    "pain_series",
    "patient_timeline",
    "upcoming_follow_ups",
]

log = logging.getLogger(__name__)

_KIND_ORDER = {"follow-up": 0, "procedure": 1, "imaging": 2, "diagnosis": 3}


@dataclass(frozen=True)
class TimelineEntry:
    """One event: ``kind`` is diagnosis / imaging / procedure / follow-up; ``obj`` the row."""

    date: dt.date | None
    kind: str
    title: str
    obj: Any
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class FindingRow:
    """A vertebra of the latest analysis, with its latest SINS assessment."""

    finding: rm.VertebraFinding
    lytic_pct: float | None
    sins: SinsAssessment | None
    sins_possible: bool

    @property
    def is_high(self) -> bool:
        """High collapse risk, or the comparison's signal to treat before collapse."""
        return self.finding.collapse_risk == "high" or self.finding.treat_signal is True


@dataclass(frozen=True)
class Analysis:
    """The latest analysed study of a patient, and the comparison with the prior one."""

    study: rm.ImagingStudy
    rows: list[FindingRow]
    prior: rm.ImagingStudy | None
    changes: list[dict[str, Any]] | None
    changes_error: str | None


@dataclass(frozen=True)
class PainPoint:
    """A VAS score on a date (a completed follow-up)."""

    date: dt.date
    vas: float
    timepoint: str
    procedure_id: int
    label: str = ""  # the protocol's label of the time point ("3 months")


def patient_timeline(patient: rm.Patient, today: dt.date) -> list[TimelineEntry]:
    """Diagnoses, imaging studies, procedures and follow-ups (completed, or due by today),
    newest first. Visits still in the future are in the schedule, not the timeline."""
    entries: list[TimelineEntry] = []
    for d in patient.diagnoses.all():
        entries.append(TimelineEntry(d.diagnosed_on, "diagnosis", str(d), d))
    for s in patient.imaging_studies.all():
        title = imaging_title(s.get_modality_display(), s.description)
        entries.append(TimelineEntry(s.study_date, "imaging", title, s))
    procedures = (
        patient.procedures.prefetch_related(
            "levels", "leakages__treated_level", "complications", "follow_ups"
        )
        .select_related("operator_user")
        .all()
    )
    for p in procedures:
        levels = list(p.levels.all())
        entries.append(
            TimelineEntry(
                p.performed_on,
                "procedure",
                p.get_procedure_type_display(),
                p,
                {
                    "levels": levels,
                    "cement_total_ml": round(sum(t.cement_volume_ml for t in levels), 1),
                    "leakages": list(p.leakages.all()),
                    "complications": list(p.complications.all()),
                    "follow_ups": list(p.follow_ups.all()),
                },
            )
        )
    visits = rm.FollowUp.objects.filter(procedure__patient=patient).select_related(
        "entered_by", "procedure"
    )
    for fu in visits:
        if fu.completed_on is not None:
            entries.append(TimelineEntry(fu.completed_on, "follow-up", fu.timepoint, fu))
        elif fu.due_date <= today:
            entries.append(TimelineEntry(fu.due_date, "follow-up", fu.timepoint, fu))
    undated = [e for e in entries if e.date is None]
    dated = [e for e in entries if e.date is not None]
    dated.sort(key=lambda e: (e.date, -_KIND_ORDER[e.kind], e.obj.pk), reverse=True)
    return dated + undated


def imaging_title(modality: str, description: str) -> str:
    """``CT thoraco-lumbar spine``: the modality once, even when the description names it
    (``"CT thoraco-lumbar spine"``, ``"Phantom CT, prior scan"``): then the description alone."""
    modality = (modality or "").strip()
    description = (description or "").strip()
    if modality and re.search(rf"(?<!\w){re.escape(modality)}(?!\w)", description, re.IGNORECASE):
        return description
    return f"{modality} {description}".strip()


def upcoming_follow_ups(patient: rm.Patient, today: dt.date) -> list[rm.FollowUp]:
    """Open (not completed) visits, the soonest due first."""
    return list(
        rm.FollowUp.objects.filter(procedure__patient=patient, completed_on__isnull=True)
        .select_related("procedure")
        .order_by("due_date", "pk")
    )


@dataclass(frozen=True)
class ScheduleGroup:
    """The open visits of one procedure, for the schedule grouped by procedure."""

    procedure: rm.Procedure
    levels: list[str]
    visits: list[rm.FollowUp]

    @property
    def heading(self) -> str:
        """``Vertebroplasty · T12, L1`` (the date is formatted by the template)."""
        p = self.procedure
        kind = p.get_procedure_type_display()
        if self.levels:
            return f"{kind} · {', '.join(self.levels)}"
        if p.cementoplasty_site:
            return f"{kind} · {p.get_cementoplasty_site_display()}"
        if p.disc_level:
            return f"{kind} · disc {p.disc_level}"
        return kind


def follow_up_schedule(patient: rm.Patient, today: dt.date) -> list[ScheduleGroup]:
    """The open visits grouped by procedure; the group with the soonest actionable visit first
    (a baseline never recorded is not actionable), each group's visits by due date."""
    from spinewatch.core.levels import VertebralLevel

    groups: dict[int, list[rm.FollowUp]] = {}
    procedures: dict[int, rm.Procedure] = {}
    for fu in upcoming_follow_ups(patient, today):
        groups.setdefault(fu.procedure_id, []).append(fu)
        procedures[fu.procedure_id] = fu.procedure
    levels: dict[int, list[str]] = {}
    for pid, level in rm.TreatedLevel.objects.filter(procedure_id__in=list(groups)).values_list(
        "procedure_id", "level"
    ):
        levels.setdefault(pid, []).append(level)

    def rank(level: str) -> int:
        try:
            return VertebralLevel.parse(level).rank
        except InputError:
            return 10_000

    out = [
        ScheduleGroup(
            procedure=procedures[pid],
            levels=sorted(set(levels.get(pid, [])), key=rank),
            visits=visits,
        )
        for pid, visits in groups.items()
    ]

    def first_actionable(group: ScheduleGroup) -> tuple[bool, dt.date, dt.date, int]:
        open_ = [v for v in group.visits if visit_status(v, today) is not VisitStatus.MISSED]
        due = open_[0].due_date if open_ else dt.date.max
        return (not open_, due, group.procedure.performed_on, group.procedure.pk)

    out.sort(key=first_actionable)
    return out


def _latest_sins(finding_ids: list[int]) -> dict[int, SinsAssessment]:
    out: dict[int, SinsAssessment] = {}
    for a in SinsAssessment.objects.filter(finding_id__in=finding_ids).order_by(
        "assessed_at", "pk"
    ):
        out[a.finding_id] = a
    return out


def latest_analysis(patient: rm.Patient) -> Analysis | None:
    """The latest analysed study (by date), its findings, and changes since the prior one."""
    studies = list(
        patient.imaging_studies.filter(analysed_at__isnull=False, report__isnull=False).order_by(
            "study_date", "pk"
        )
    )
    if not studies:
        return None
    study = studies[-1]
    prior = studies[-2] if len(studies) > 1 else None
    findings = list(study.findings.all())
    sins = _latest_sins([f.pk for f in findings])
    changes = None
    error = None
    try:
        report = study.spine_report()
        if prior is not None:
            from spinewatch.imaging.compare import compare_reports

            prior_report = prior.spine_report()
            if prior_report is not None and report is not None:
                changes = compare_reports(prior_report, report)["levels"]
    except InputError as exc:
        report = None
        error = str(exc)
        log.warning(
            "cannot compare studies %s and %s: %s", getattr(prior, "pk", None), study.pk, exc
        )
    report_sins = {
        str(v.level) for v in (report.vertebrae if report else ()) if v.risk.sins_imaging
    }
    rows = [
        FindingRow(
            finding=f,
            lytic_pct=None if f.lytic_fraction is None else round(f.lytic_fraction * 100, 1),
            sins=sins.get(f.pk),
            sins_possible=f.sins_imaging_points is not None or f.level in report_sins,
        )
        for f in findings
    ]
    return Analysis(study=study, rows=rows, prior=prior, changes=changes, changes_error=error)


def pain_series(patient: rm.Patient) -> list[PainPoint]:
    """Completed follow-ups with a VAS, oldest first."""
    visits = (
        rm.FollowUp.objects.filter(
            procedure__patient=patient, completed_on__isnull=False, vas__isnull=False
        )
        .select_related("procedure")
        .order_by("completed_on", "pk")
    )
    return [
        PainPoint(fu.completed_on, float(fu.vas), fu.timepoint, fu.procedure_id, visit_label(fu))
        for fu in visits
        if fu.completed_on is not None and fu.vas is not None
    ]
