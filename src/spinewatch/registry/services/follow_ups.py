"""Follow-up visits: recording the pain score (VAS 0-10) and analgesic use of a scheduled visit."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.db import transaction

from spinewatch.core.follow_up_outcome import VisitOutcome
from spinewatch.core.pain import PainScore
from spinewatch.registry import models as m
from spinewatch.registry.choices import AnalgesicUse, EnteredVia
from spinewatch.registry.errors import NotFoundError, RegistryError
from spinewatch.registry.services._base import changed, check_date, get, parse_field
from spinewatch.registry.services.patients import _check_user
from spinewatch.registry.services.procedures import procedure_protocol

__all__ = ["FollowUpResult", "find_follow_up", "record_follow_up", "record_visit_outcome"]


@dataclass(frozen=True)
class FollowUpResult:
    """The saved follow-up and the warnings a person should see (e.g. completed out of window)."""

    follow_up: m.FollowUp
    warnings: tuple[str, ...]


def find_follow_up(*, procedure: m.Procedure | int, timepoint: str) -> m.FollowUp:
    """The scheduled visit ``timepoint`` (a protocol code, e.g. ``"3m"``) of ``procedure``."""
    row = get(m.Procedure, procedure, "procedure")
    found = m.FollowUp.objects.filter(procedure=row, timepoint=timepoint).first()
    if found is None:
        codes = ", ".join(row.follow_ups.order_by("due_date").values_list("timepoint", flat=True))
        raise NotFoundError(
            f"timepoint {timepoint!r}: procedure {row.pk} has no such visit; "
            f"expected one of {codes}"
        )
    return found


def record_follow_up(
    *,
    follow_up: m.FollowUp | int,
    expected_version: int,
    completed_on: dt.date,
    vas: float | int | str | None,
    analgesic_use: str | None = None,
    entered_by: Any = None,
    entered_via: str = EnteredVia.STAFF.value,
) -> FollowUpResult:
    """Complete (or correct) a scheduled visit.

    ``vas`` is parsed by the core (``PainScore.parse``: 0-10, decimals allowed; ``None`` when the
    visit took place without a pain score). ``completed_on`` must be a real date, not in the
    future, and -- for a post-operative visit -- not before the procedure. A date outside the
    visit's window is accepted but returned as a warning, because late data are better than none.
    ``analgesic_use``: none / non_opioid / weak_opioid / strong_opioid, or None (not asked).
    """
    when = check_date("completed_on", completed_on, not_future=True)
    assert when is not None
    score = None if vas is None else parse_field("vas", PainScore.parse, vas).value
    if analgesic_use is not None and analgesic_use not in AnalgesicUse.values:
        raise RegistryError(
            f"analgesic_use {analgesic_use!r}: expected one of {', '.join(AnalgesicUse.values)} "
            "or None",
            field="analgesic_use",
        )
    if entered_via not in EnteredVia.values:
        raise RegistryError(
            f"entered_via {entered_via!r}: expected one of {', '.join(EnteredVia.values)}"
        )
    user = _check_user("entered_by", entered_by)
    with transaction.atomic():
        row = get(m.FollowUp, follow_up, "follow_up")
        procedure = row.procedure
        what = (
            f"follow-up {row.timepoint} of procedure {procedure.pk} ({procedure.patient.study_id})"
        )
        if row.voided_at is not None:
            raise RegistryError(f"{what} is voided ({row.void_reason}): nothing can be recorded")
        is_baseline = bool(procedure_protocol(procedure).timepoint(row.timepoint).baseline)
        if not is_baseline and when < procedure.performed_on:
            raise RegistryError(
                f"completed_on {when.isoformat()}: the {row.timepoint} visit cannot precede the "
                f"procedure ({procedure.performed_on.isoformat()})",
                field="completed_on",
            )
        warnings = []
        if not row.window_start <= when <= row.window_end:
            warnings.append(
                f"{what} completed on {when.isoformat()}, outside its window "
                f"{row.window_start.isoformat()}..{row.window_end.isoformat()}"
            )
        saved = changed(
            row,
            what=what,
            changes={
                "completed_on": when,
                "vas": score,
                "analgesic_use": analgesic_use,
                "entered_by": user,
                "entered_via": entered_via,
                "outcome": None,
                "outcome_on": None,
            },
            expected_version=expected_version,
        )
        return FollowUpResult(saved, tuple(warnings))


def record_visit_outcome(
    *,
    follow_up: m.FollowUp | int,
    expected_version: int,
    outcome: VisitOutcome | str,
    outcome_on: dt.date,
    entered_by: Any = None,
) -> list[m.FollowUp]:
    """Record why a visit has no value: died, lost to follow-up, withdrew (these end the
    patient's follow-up: this visit and every open visit of the patient due on or after it whose
    window ends on or after ``outcome_on`` take it) or declined (this visit only).
    ``outcome_on``: the date of death, of the last contact, of the withdrawal or of the
    refusal -- not in the future.
    Returns the visits changed, the given one first. Completed visits keep their value.
    """
    parsed = parse_field("outcome", VisitOutcome.parse, outcome)
    when = check_date("outcome_on", outcome_on, not_future=True)
    assert when is not None
    user = _check_user("entered_by", entered_by)
    with transaction.atomic():
        row = get(m.FollowUp, follow_up, "follow_up")
        patient = row.procedure.patient
        what = f"follow-up {row.timepoint} of procedure {row.procedure_id} ({patient.study_id})"
        if row.voided_at is not None or row.completed_on is not None:
            state = "voided" if row.voided_at is not None else "completed"
            raise RegistryError(f"{what} is {state}: it has no outcome to record")
        values = {"outcome": parsed.value, "outcome_on": when, "entered_by": user}
        saved = [changed(row, what=what, changes=values, expected_version=expected_version)]
        if parsed.ends_follow_up:
            later = (
                m.FollowUp.objects.filter(
                    procedure__patient=patient,
                    completed_on__isnull=True,
                    voided_at__isnull=True,
                    outcome__isnull=True,
                    due_date__gte=row.due_date,
                    window_end__gte=when,
                )
                .exclude(pk=row.pk)
                .order_by("due_date", "pk")
            )
            for visit in later:
                saved.append(
                    changed(
                        visit,
                        what=f"follow-up {visit.timepoint} of procedure {visit.procedure_id}",
                        changes=values,
                        expected_version=visit.version,
                    )
                )
        return saved
