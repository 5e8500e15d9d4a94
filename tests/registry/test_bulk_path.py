"""The bulk import's row writer (issue 13): no model instances, COPY on PostgreSQL -- but the
same rows, checks and audit events as the service funnel."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from spinewatch.audit.models import AuditEvent
from spinewatch.audit.trail import model_values, verify
from spinewatch.core.procedures import TreatedLevel
from spinewatch.registry import models as m
from spinewatch.registry.errors import RegistryError
from spinewatch.registry.services import IdentityData, add_diagnosis, create_patient
from spinewatch.registry.services._base import inserted_rows
from spinewatch.registry.services.bulk import BulkPatient, BulkProcedure, import_patients

pytestmark = pytest.mark.django_db


def _patients(n: int, start: int = 0, **fields) -> list[BulkPatient]:
    return [
        BulkPatient(
            identity=IdentityData(
                family_name=f"Bulkowa-Zoë {k}",
                given_name="Fictiva",
                hospital_number=f"BP-{k}",
                birth_date=dt.date(1950, 1, 1 + k % 28),
            ),
            diagnosis=("metastasis", "lung") if k % 2 else ("myeloma", None),
            diagnosed_on=dt.date(2023, 12, 1),
            procedures=[
                BulkProcedure(
                    performed_on=dt.date(2024, 1, 1 + k % 28),
                    levels=[TreatedLevel("L1", "transpedicular", 11, 4.5)],
                    vas={"pre": 8.0, "3d": 4.5, "1m": 3},
                    recorded_via="staff",
                    fields={"operator": "Dr Bulk", "guidance": "fluoroscopy", **fields},
                )
            ],
        )
        for k in range(start, start + n)
    ]


_MODELS = (m.Patient, m.PatientIdentity, m.Diagnosis, m.Procedure, m.TreatedLevel, m.FollowUp)


def test_every_create_event_holds_the_row_as_stored():
    import_patients(_patients(12))
    for model in _MODELS:
        rows = list(model.objects.all())
        assert rows, model
        events = {
            e.object_id: e
            for e in AuditEvent.objects.filter(object_type=model._meta.label_lower, action="create")
        }
        assert len(events) == len(rows)
        for row in rows:
            event = events[str(row.pk)]
            assert event.changes == model_values(row), (model, row.pk)
    identity = m.PatientIdentity.objects.select_related("patient").get(hospital_number="BP-3")
    assert identity.search_text == m.identity_search_text("Bulkowa-Zoë 3", "Fictiva", "BP-3")
    assert identity.hospital_number_key == "BP3"
    event = AuditEvent.objects.get(
        object_type="registry.followup",
        object_id=str(
            m.FollowUp.objects.get(procedure__patient=identity.patient, timepoint="1m").pk
        ),
    )
    assert event.patient_study_id == identity.patient.study_id
    assert event.changes["vas"] == 3 and event.changes["entered_via"] == "import"
    assert verify().ok


def test_rows_written_after_a_bulk_import_get_fresh_keys():
    import_patients(_patients(3))
    patient = create_patient(identity=IdentityData("After", "Fictiva", "BP-AFTER"))
    add_diagnosis(patient=patient, kind="myeloma")
    import_patients(_patients(3, start=3))
    assert m.Patient.objects.count() == 7
    assert m.Diagnosis.objects.count() == 7
    assert len(set(m.Patient.objects.values_list("pk", flat=True))) == 7
    assert verify().ok


def test_a_field_refused_by_the_model_fails_the_whole_import():
    before = (m.Patient.objects.count(), AuditEvent.objects.count())
    with pytest.raises(RegistryError, match=r"operator 'x{151}'.*150"):
        import_patients(_patients(3, operator="x" * 151))
    with pytest.raises(RegistryError, match=r"guidance 'telepathy'.*not a valid choice"):
        import_patients(_patients(3) + _patients(1, start=3, guidance="telepathy"))
    with pytest.raises(RegistryError, match=r"no field 'colour'"):
        import_patients(_patients(2, colour="red"))
    assert (m.Patient.objects.count(), AuditEvent.objects.count()) == before


def test_a_row_refused_by_the_database_fails_the_whole_batch():
    import_patients(_patients(1))
    procedure = m.Procedure.objects.get()
    # A write joins its caller's transaction (no savepoint of its own, see the funnel's
    # docstring): the caller's atomic block is what the refusal rolls back.
    with pytest.raises(RegistryError, match="refused by the database"), transaction.atomic():
        inserted_rows(
            m.TreatedLevel,
            [
                {
                    "procedure_id": procedure.pk,
                    "level": "L2",
                    "approach": "transpedicular",
                    "needle_gauge": 11,
                    "cement_volume_ml": 2.0,
                },
                {
                    "procedure_id": procedure.pk,
                    "level": "L3",
                    "approach": "transpedicular",
                    "needle_gauge": 30,
                    "cement_volume_ml": 2.0,
                },  # gauge 8-22: a Meta constraint
            ],
            [None, None],
        )
    assert m.TreatedLevel.objects.count() == 1


def test_the_import_costs_the_same_queries_whatever_its_size():
    import_patients(_patients(1, start=100))  # the counter and the chain exist
    counts = []
    for n, start in ((5, 0), (40, 5)):
        with CaptureQueriesContext(connection) as queries:
            import_patients(_patients(n, start=start))
        counts.append(len(queries.captured_queries))
    assert counts[0] == counts[1], counts
    assert verify().ok
