"""Database-level constraints (a raw save cannot store what the services refuse) and migrations."""

from __future__ import annotations

import datetime as dt
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import IntegrityError, transaction

from spinewatch.core.procedures import ProcedureType
from spinewatch.registry import models as m
from spinewatch.registry.choices import LEVEL_CHOICES, enum_choices

pytestmark = pytest.mark.django_db


def _raw_fails(obj):
    with pytest.raises(IntegrityError), transaction.atomic():
        obj.save()


def test_migrations_are_up_to_date():
    out = StringIO()
    call_command("makemigrations", "registry", "--check", "--dry-run", stdout=out)
    assert "No changes detected" in out.getvalue()


def test_choices_come_from_the_core_enums():
    assert enum_choices(ProcedureType)[0] == ("vertebroplasty", "Vertebroplasty")
    assert [v for v, _ in enum_choices(ProcedureType)] == [t.value for t in ProcedureType]
    assert ("T13", "T13") in LEVEL_CHOICES and LEVEL_CHOICES[0][0] == "C1"
    field = m.TreatedLevel._meta.get_field("approach")
    assert "transpedicular" in dict(field.choices)


def test_vas_outside_0_10_refused_by_the_database(procedure):
    fu = procedure.follow_ups.get(timepoint="3d")
    fu.completed_on = dt.date(2024, 3, 4)
    fu.vas = 10.5
    _raw_fails(fu)
    fu.vas = -0.1
    _raw_fails(fu)
    fu.vas = 10.0
    fu.save()  # the bound itself is allowed


def test_vas_without_completion_refused(procedure):
    fu = procedure.follow_ups.get(timepoint="1m")
    fu.vas = 3
    _raw_fails(fu)


def test_duplicate_follow_up_timepoint_refused(procedure):
    fu = procedure.follow_ups.get(timepoint="1m")
    _raw_fails(
        m.FollowUp(
            procedure=procedure,
            timepoint="1m",
            due_date=fu.due_date,
            window_start=fu.window_start,
            window_end=fu.window_end,
        )
    )


def test_due_date_outside_window_refused(procedure):
    fu = procedure.follow_ups.get(timepoint="1m")
    fu.window_end = fu.due_date - dt.timedelta(days=1)
    _raw_fails(fu)


def test_duplicate_treated_level_refused(procedure):
    _raw_fails(
        m.TreatedLevel(
            procedure=procedure,
            level="L1",
            approach="transpedicular",
            needle_gauge=11,
            cement_volume_ml=2.0,
        )
    )


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("level", "L9"),
        ("approach", "sideways"),
        ("needle_gauge", 30),
        ("cement_volume_ml", 0.0),
        ("ablation_power_w", 20.0),  # settings without a modality
    ],
)
def test_treated_level_constraints(procedure, field, value):
    row = m.TreatedLevel(
        procedure=procedure,
        level="T12",
        approach="transpedicular",
        needle_gauge=11,
        cement_volume_ml=2.0,
    )
    setattr(row, field, value)
    _raw_fails(row)


def test_enum_value_outside_vocabulary_refused(procedure):
    procedure.guidance = "ultrasound"
    _raw_fails(procedure)


def test_primary_tumour_iff_metastasis(patient):
    _raw_fails(m.Diagnosis(patient=patient, kind="metastasis"))
    _raw_fails(m.Diagnosis(patient=patient, kind="myeloma", primary_tumour="lung"))
    m.Diagnosis(patient=patient, kind="metastasis", primary_tumour="lung").save()


def test_site_only_for_cementoplasty(procedure):
    procedure.cementoplasty_site = "pelvis"
    _raw_fails(procedure)


def test_duplicate_study_id_and_hospital_number_refused(patient):
    _raw_fails(m.Patient(study_id=patient.study_id))
    a = m.Patient.objects.create(study_id="A")
    b = m.Patient.objects.create(study_id="B")
    m.PatientIdentity.objects.create(
        patient=a, family_name="X", given_name="Y", hospital_number="H1"
    )
    _raw_fails(m.PatientIdentity(patient=b, family_name="X", given_name="Z", hospital_number="H1"))


def test_finding_constraints(patient):
    study = m.ImagingStudy.objects.create(patient=patient, study_date=dt.date(2024, 1, 1))
    m.VertebraFinding.objects.create(study=study, level="L1")
    _raw_fails(m.VertebraFinding(study=study, level="L1"))
    _raw_fails(m.VertebraFinding(study=study, level="L2", lytic_fraction=1.5))
    _raw_fails(m.VertebraFinding(study=study, level="L3", decision="operate"))


def test_version_must_be_positive(patient):
    patient.version = 0
    _raw_fails(patient)


def test_surveillance_interval_bounds(patient):
    _raw_fails(
        m.SurveillancePlan(patient=patient, interval_days=0, next_scan_due=dt.date(2024, 1, 1))
    )


def test_constraint_violation_through_the_write_funnel_is_a_registry_error(procedure):
    from spinewatch.registry.services import RegistryError
    from spinewatch.registry.services._base import changed

    fu = procedure.follow_ups.get(timepoint="3d")
    with pytest.raises(RegistryError, match=r"follow.up"), transaction.atomic():
        changed(
            fu, what="x", changes={"vas": 12.0, "completed_on": fu.due_date}, expected_version=1
        )
    assert m.FollowUp.objects.get(pk=fu.pk).vas is None
