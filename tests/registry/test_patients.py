"""create_patient, update_patient(_identity), add_diagnosis; optimistic locking."""

from __future__ import annotations

import datetime as dt

import pytest

from spinewatch.core.errors import InputError
from spinewatch.registry import models as m
from spinewatch.registry.services import (
    IdentityData,
    RegistryError,
    StaleEditError,
    add_diagnosis,
    create_patient,
    update_patient,
    update_patient_identity,
)
from spinewatch.registry.services._base import today

pytestmark = pytest.mark.django_db


def _identity(**kw):
    base = {"family_name": "Testperson", "given_name": "Fictional", "hospital_number": "H-1"}
    return IdentityData(**{**base, **kw})


def test_generated_study_ids_are_sequential():
    a, b = create_patient(), create_patient()
    assert (a.study_id, b.study_id) == ("SW-000001", "SW-000002")
    create_patient(study_id="SW-000041")
    assert create_patient().study_id == "SW-000042"
    assert a.version == 1


def test_generated_id_taken_by_a_concurrent_writer_is_skipped(monkeypatch):
    from spinewatch.registry.services import patients

    create_patient()  # SW-000001
    stale = iter(["SW-000001"])  # as if another writer took it after our read
    real = patients.next_study_id
    monkeypatch.setattr(patients, "next_study_id", lambda: next(stale, None) or real())
    assert create_patient(identity=_identity()).study_id == "SW-000002"
    assert m.PatientIdentity.objects.get().patient.study_id == "SW-000002"


def test_duplicate_hospital_number_is_not_retried():
    create_patient(identity=_identity())
    with pytest.raises(RegistryError, match="H-1"):
        create_patient(identity=_identity())
    assert m.Patient.objects.count() == 1


def test_given_study_id_and_identity_kept_apart():
    p = create_patient(study_id=" P01 ", identity=_identity(birth_date=dt.date(1950, 5, 1)))
    assert p.study_id == "P01"
    ident = m.PatientIdentity.objects.get(patient=p)
    assert (ident.family_name, ident.hospital_number, ident.sex) == ("Testperson", "H-1", "unknown")


@pytest.mark.parametrize("bad", ["", "has space", "a/b", "x" * 65, 12])
def test_bad_study_id_refused(bad):
    with pytest.raises(RegistryError, match="study_id"):
        create_patient(study_id=bad)
    assert not m.Patient.objects.exists()


def test_duplicate_study_id_refused():
    create_patient(study_id="P01")
    with pytest.raises(RegistryError, match="P01"):
        create_patient(study_id="P01")


def test_duplicate_hospital_number_refused_and_nothing_written():
    create_patient(identity=_identity())
    with pytest.raises(RegistryError, match="H-1"):
        create_patient(identity=_identity(given_name="Other"))
    assert m.Patient.objects.count() == 1


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"family_name": " "}, "family_name"),
        ({"hospital_number": ""}, "hospital_number"),
        ({"sex": "f"}, "sex 'f'"),
        ({"birth_date": "1950-01-01"}, "birth_date"),
        ({"email": "not-an-email"}, "email"),
    ],
)
def test_bad_identity_refused(kw, match):
    with pytest.raises(RegistryError, match=match):
        create_patient(identity=_identity(**kw))
    assert not m.Patient.objects.exists()


def test_birth_date_in_future_refused():
    with pytest.raises(RegistryError, match="future"):
        create_patient(identity=_identity(birth_date=today() + dt.timedelta(days=1)))


def test_case_manager_must_be_a_user(staff):
    p = create_patient(case_manager=staff)
    assert p.case_manager == staff
    with pytest.raises(RegistryError, match="case_manager"):
        create_patient(case_manager="nurse")


def test_update_identity_bumps_patient_version_and_refuses_stale_edit():
    p = create_patient(study_id="SW-000012", identity=_identity())
    p2 = update_patient_identity(patient=p, expected_version=1, phone="0123")
    assert p2.version == 2
    assert m.Patient.objects.get(pk=p.pk).version == 2
    assert m.PatientIdentity.objects.get(patient=p).phone == "0123"
    update_patient_identity(patient=p.pk, expected_version=2, family_name="Renamed")
    with pytest.raises(StaleEditError) as info:
        update_patient_identity(patient=p, expected_version=2, phone="999")
    assert str(info.value) == (
        "changed by someone else: patient SW-000012 is at version 3, "
        "your edit was based on version 2"
    )
    assert isinstance(info.value, InputError)
    ident = m.PatientIdentity.objects.get(patient=p)
    assert (ident.phone, ident.family_name) == ("0123", "Renamed")


def test_update_identity_adds_identity_to_pseudonymous_patient():
    p = create_patient()
    with pytest.raises(RegistryError, match="hospital_number"):
        update_patient_identity(patient=p, expected_version=1, family_name="A", given_name="B")
    assert m.Patient.objects.get(pk=p.pk).version == 1  # refused edit leaves the version
    update_patient_identity(
        patient=p, expected_version=1, family_name="A", given_name="B", hospital_number="H9"
    )
    assert m.PatientIdentity.objects.get(patient=p).hospital_number == "H9"


def test_update_identity_validation_error_leaves_row_and_version():
    p = create_patient(identity=_identity())
    with pytest.raises(RegistryError, match="family_name"):
        update_patient_identity(patient=p, expected_version=1, family_name="")
    assert m.Patient.objects.get(pk=p.pk).version == 1


def test_update_patient_case_manager(staff):
    p = create_patient()
    p = update_patient(patient=p, expected_version=1, case_manager=staff)
    assert (p.case_manager, p.version) == (staff, 2)
    with pytest.raises(StaleEditError):
        update_patient(patient=p, expected_version=1, case_manager=None)
    with pytest.raises(RegistryError, match="expected_version"):
        update_patient(patient=p, expected_version=True, case_manager=None)


def test_unknown_patient_refused():
    with pytest.raises(RegistryError, match="does not exist"):
        update_patient(patient=999_999, expected_version=1)


def test_add_diagnosis_valid_and_invalid(patient):
    d = add_diagnosis(
        patient=patient,
        kind="Metastasis",
        primary_tumour="breast",
        diagnosed_on=dt.date(2023, 1, 2),
    )
    assert (d.kind, d.primary_tumour) == ("metastasis", "breast")
    assert add_diagnosis(patient=patient, kind="myeloma").primary_tumour is None
    with pytest.raises(RegistryError, match="diagnosis"):
        add_diagnosis(patient=patient, kind="metastasis")  # primary required
    with pytest.raises(RegistryError, match="gout"):
        add_diagnosis(patient=patient, kind="gout")
    with pytest.raises(RegistryError, match="diagnosed_on"):
        add_diagnosis(patient=patient, kind="myeloma", diagnosed_on=today() + dt.timedelta(1))
    assert patient.diagnoses.count() == 2
