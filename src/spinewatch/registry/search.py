"""Finding patients by name, hospital number or study id, through indexed columns.

:func:`patient_search` turns what was typed into a filter: every word must occur in the
patient's normalised identity text (:attr:`~spinewatch.registry.models.PatientIdentity.
search_text`: names and hospital number, accents stripped, case folded) or in the study id. On
PostgreSQL both are served by pg_trgm GIN indexes (migration 0007), so a search does not read
every identity: at 100,000 patients the ``icontains`` over four joined columns it replaces
scanned every row of both tables.
"""

from __future__ import annotations

from django.db.models import Q

from spinewatch.core.identifiers import search_key
from spinewatch.registry import models as m

__all__ = ["patient_search"]


def patient_search(text: str, *, patient_path: str = "") -> Q:
    """A filter keeping the patients matching every word of ``text`` (all for blank text).

    ``patient_path``: the path from the queried model to its patient, with the trailing
    ``__`` (``"procedure__patient__"`` for follow-ups; ``""`` for patients).
    """
    condition = Q()
    for word in text.split():
        key = search_key(word)
        identities = m.PatientIdentity.objects.filter(search_text__contains=key).values(
            "patient_id"
        )
        condition &= Q(**{f"{patient_path}pk__in": identities}) | Q(
            **{f"{patient_path}study_id__icontains": word}
        )
    return condition
