"""Field choices for the registry, generated from the clinical core's enums.

The core enums (``spinewatch.core``) are the single source of every clinical vocabulary; the
database stores their *values* (lower-case strings such as ``"transpedicular"``; ``"B"`` for a
Yeom leakage type; ``"L1"`` for a vertebral level) in ``CharField`` columns. :func:`enum_choices`
turns an enum into Django ``choices`` and :func:`in_choices` into a ``CheckConstraint`` so that
the database itself refuses a value outside the vocabulary -- not only the service layer.

Vocabularies that exist only in the registry (who entered a value, what was decided about a
vertebra, analgesic use ...) are Django ``TextChoices`` defined here.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable

from django.db import models
from django.db.models import Q

from spinewatch.core.collapse_risk import CollapseRisk as ImagingCollapseRisk
from spinewatch.core.collapse_risk import ConfidenceClass
from spinewatch.core.levels import ALL_LEVELS

__all__ = [
    "LEVEL_CHOICES",
    "AnalgesicUse",
    "CollapseRisk",
    "Confidence",
    "ContactBy",
    "Decision",
    "EnteredVia",
    "IntervalSource",
    "Modality",
    "ProcedureStatus",
    "RecordedVia",
    "Sex",
    "enum_choices",
    "in_choices",
]


def _label(member: enum.Enum) -> str:
    label = getattr(member, "label", None)
    if isinstance(label, str) and label:
        return label
    return str(member.name).replace("_", " ").capitalize()


def enum_choices(enum_cls: type[enum.Enum]) -> list[tuple[object, str]]:
    """``[(value, label), ...]`` for a core enum, in the enum's declaration order.

    The stored value is the member's ``value`` (lower-case strings for the vocabularies, ints for
    :class:`~spinewatch.core.genant.GenantGrade`); the label is the member's ``label`` when the core
    gives one, else its name in sentence case.
    """
    return [(member.value, _label(member)) for member in enum_cls]


#: Vertebral levels are stored by name ("C2", "T12", "L1", the variants "T13", "L6"), cranio-caudal.
LEVEL_CHOICES: list[tuple[object, str]] = [(str(level), str(level)) for level in ALL_LEVELS]


def in_choices(
    field: str, choices: Iterable[tuple[object, str]], *, name: str, null: bool = False
) -> models.CheckConstraint:
    """A ``CheckConstraint`` that keeps ``field`` inside ``choices`` (and NULL when ``null``)."""
    condition = Q(**{f"{field}__in": [value for value, _ in choices]})
    if null:
        condition |= Q(**{f"{field}__isnull": True})
    return models.CheckConstraint(condition=condition, name=name)


class Sex(models.TextChoices):
    FEMALE = "female", "Female"
    MALE = "male", "Male"
    OTHER = "other", "Other"
    UNKNOWN = "unknown", "Unknown"


class Modality(models.TextChoices):
    CT = "ct", "CT"
    MR = "mr", "MR"


#: The imaging analysis' impending-collapse estimate: the values of ``imaging.risk.CollapseRisk``
#: (low, not assessable, moderate, high: in its order of concern).
CollapseRisk = models.TextChoices(
    "CollapseRisk", [(r.name, (r.value, r.label)) for r in ImagingCollapseRisk]
)

#: How far one vertebra's findings can be trusted: ``imaging.confidence.ConfidenceClass``.
Confidence = models.TextChoices(
    "Confidence", [(c.name, (c.value, c.label)) for c in ConfidenceClass]
)


class Decision(models.TextChoices):
    """What the team decided about one vertebra at one study."""

    NONE = "none", "No decision"
    WATCH = "watch", "Watch"
    TREAT = "treat", "Treat"
    TREATED = "treated", "Treated"


class AnalgesicUse(models.TextChoices):
    NONE = "none", "None"
    NON_OPIOID = "non_opioid", "Non-opioid"
    WEAK_OPIOID = "weak_opioid", "Weak opioid"
    STRONG_OPIOID = "strong_opioid", "Strong opioid"


class EnteredVia(models.TextChoices):
    """Who typed a follow-up value: staff, the patient through the portal, or a file import."""

    STAFF = "staff", "Staff"
    PORTAL = "portal", "Patient portal"
    IMPORT = "import", "Import"


class RecordedVia(models.TextChoices):
    """How a procedure reached the registry; imported cohorts may lack treated levels."""

    STAFF = "staff", "Staff"
    IMPORT = "import", "Import"


class ProcedureStatus(models.TextChoices):
    """A procedure is planned (a date, planned levels, the pre-operative visit) or performed."""

    PLANNED = "planned", "Planned"
    PERFORMED = "performed", "Performed"


class ContactBy(models.TextChoices):
    """How the patient agreed to receive portal links and reminders."""

    NONE = "none", "Not contacted"
    EMAIL = "email", "E-mail"
    SMS = "sms", "Text message (SMS)"


class IntervalSource(models.TextChoices):
    """Where a surveillance plan's interval comes from."""

    RULE = "rule", "Programme rule"
    CLINICIAN = "clinician", "Set by a clinician"
