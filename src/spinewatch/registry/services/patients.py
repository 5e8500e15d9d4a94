"""Patients, their identity (kept apart) and their diagnoses."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass, fields
from typing import Any

from django.contrib.auth import get_user_model
from django.db import IntegrityError, connection, transaction

from spinewatch.core.diagnoses import Diagnosis as CoreDiagnosis
from spinewatch.core.identifiers import hospital_number_key, names_match, tidy_hospital_number
from spinewatch.registry import models as m
from spinewatch.registry.choices import ContactBy, Sex
from spinewatch.registry.errors import RegistryError
from spinewatch.registry.services._base import (
    UNCHANGED,
    Unchanged,
    changed,
    check_date,
    created,
    get,
    parse_field,
)

__all__ = [
    "STUDY_ID_PATTERN",
    "IdentityData",
    "add_diagnosis",
    "create_patient",
    "find_by_hospital_number",
    "near_duplicates",
    "next_study_id",
    "take_study_ids",
    "update_patient",
    "update_patient_identity",
    "validate_study_id",
]

#: A study id: letters, digits, ``.``, ``_``, ``-``; 1-64 characters (``/`` is reserved for
#: numbering a patient's procedures in cohort tables: ``SW-000012/2``).
STUDY_ID_PATTERN = re.compile(r"[A-Za-z0-9._-]{1,64}")
_GENERATED = re.compile(r"SW-(\d+)")


@dataclass(frozen=True)
class IdentityData:
    """Input schema of the identifying data (the ``PatientIdentity`` row)."""

    family_name: str
    given_name: str
    hospital_number: str
    birth_date: dt.date | None = None
    sex: str = Sex.UNKNOWN.value
    phone: str = ""
    email: str = ""
    contact_by: str = ContactBy.NONE.value


def validate_study_id(value: object) -> str:
    """A study id as given (stripped) or RegistryError naming it and the accepted form."""
    if not isinstance(value, str) or not STUDY_ID_PATTERN.fullmatch(value.strip()):
        raise RegistryError(
            f"study_id {value!r}: expected 1-64 letters, digits, '.', '_' or '-' "
            "(e.g. 'SW-000123')",
            field="study_id",
        )
    return value.strip()


_COUNTER = "study_id"


def highest_generated_study_id() -> int:
    """The highest number of a generated study id (``SW-`` and digits) in use, 0 when none.

    Reads every such id: used once, to start the counter (:func:`next_study_id`)."""
    used = m.Patient.objects.filter(study_id__regex=r"^SW-[0-9]+$").values_list(
        "study_id", flat=True
    )
    return max((int(match.group(1)) for s in used if (match := _GENERATED.fullmatch(s))), default=0)


def _seed_counter() -> None:
    try:
        with transaction.atomic():
            m.IdCounter.objects.get_or_create(
                name=_COUNTER, defaults={"value": highest_generated_study_id()}
            )
    except IntegrityError:  # a concurrent writer seeded it first
        pass


def take_study_ids(n: int) -> list[str]:
    """Take ``n`` consecutive generated study ids (``SW-`` and at least six digits) at once.

    One atomic ``UPDATE ... RETURNING`` of the counter row (:class:`~spinewatch.registry.models.
    IdCounter`; PostgreSQL locks the row to the end of the caller's transaction, SQLite
    serialises writers), so two writers never get the same number and no study id is read. The
    numbers are taken even if the caller's transaction later rolls back outside its own
    (a gap, never a duplicate). A study id typed by hand that the counter later reaches is
    refused by the unique column (:func:`create_patient` then takes the next number).
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise RegistryError(f"n {n!r}: expected a number of study ids >= 0")
    if n == 0:
        return []
    table = connection.ops.quote_name(m.IdCounter._meta.db_table)
    sql = f"UPDATE {table} SET value = value + %s WHERE name = %s RETURNING value"
    for _attempt in range(2):
        with connection.cursor() as cursor:
            cursor.execute(sql, [n, _COUNTER])
            row = cursor.fetchone()
        if row is not None:
            last = int(row[0])
            return [f"SW-{k:06d}" for k in range(last - n + 1, last + 1)]
        _seed_counter()
    raise RegistryError("the study id counter could not be started; try again")


def note_study_ids(study_ids: Iterable[str]) -> None:
    """Study ids given by hand that look generated (``SW-000041``) move the counter up to
    them, so generated ids stay one above the highest in use. One UPDATE (none when no id
    looks generated)."""
    highest = max(
        (int(match.group(1)) for s in study_ids if (match := _GENERATED.fullmatch(s))), default=0
    )
    if highest == 0:
        return
    table = connection.ops.quote_name(m.IdCounter._meta.db_table)
    sql = f"UPDATE {table} SET value = CASE WHEN value < %s THEN %s ELSE value END WHERE name = %s"
    with connection.cursor() as cursor:
        cursor.execute(sql, [highest, highest, _COUNTER])
        if cursor.rowcount == 0:
            _seed_counter()


def next_study_id() -> str:
    """Take the next generated study id (:func:`take_study_ids` of one)."""
    return take_study_ids(1)[0]


def _check_user(field: str, user: object) -> Any:
    user_model = get_user_model()
    if user is None:
        return None
    if not isinstance(user, user_model) or user.pk is None:
        raise RegistryError(
            f"{field} {user!r}: expected a saved {user_model.__name__} or None", field=field
        )
    return user


_SEXES = frozenset(Sex.values)
_CONTACTS = frozenset(ContactBy.values)


def _identity_values(data: IdentityData, *, today_is: dt.date | None = None) -> dict[str, Any]:
    values = {f.name: getattr(data, f.name) for f in fields(data)}
    for name in ("family_name", "given_name", "hospital_number", "phone", "email"):
        if not isinstance(values[name], str):
            raise RegistryError(f"{name} {values[name]!r}: expected text", field=name)
        values[name] = values[name].strip()
    for name in ("family_name", "given_name", "hospital_number"):
        if not values[name]:
            raise RegistryError(f"{name} {getattr(data, name)!r}: must not be empty", field=name)
    values["hospital_number"] = parse_field(
        "hospital_number", tidy_hospital_number, values["hospital_number"]
    )
    values["hospital_number_key"] = hospital_number_key(values["hospital_number"])
    values["search_text"] = m.identity_search_text(
        values["family_name"], values["given_name"], values["hospital_number"]
    )
    check_date(
        "birth_date", values["birth_date"], allow_none=True, not_future=True, today_is=today_is
    )
    if values["sex"] not in _SEXES:
        raise RegistryError(
            f"sex {values['sex']!r}: expected one of {', '.join(Sex.values)}", field="sex"
        )
    if values["contact_by"] not in _CONTACTS:
        raise RegistryError(
            f"contact_by {values['contact_by']!r}: expected one of {', '.join(ContactBy.values)}",
            field="contact_by",
        )
    if values["contact_by"] == ContactBy.EMAIL and not values["email"]:
        raise RegistryError(
            "contact_by 'email': the patient has no e-mail address", field="contact_by"
        )
    if values["contact_by"] == ContactBy.SMS and not values["phone"]:
        raise RegistryError("contact_by 'sms': the patient has no phone number", field="contact_by")
    return values


def find_by_hospital_number(number: str) -> m.Patient | None:
    """The patient whose hospital number is ``number`` however it is spelt (case, spaces,
    dashes), or None."""
    key = hospital_number_key(number) if isinstance(number, str) else ""
    if not key:
        return None
    return (
        m.Patient.objects.select_related("identity")
        .filter(identity__hospital_number_key=key)
        .first()
    )


def _check_number_free(values: dict[str, Any], patient_pk: int | None) -> None:
    taken = find_by_hospital_number(values["hospital_number"])
    if taken is not None and taken.pk != patient_pk:
        state = " (voided)" if taken.voided_at is not None else ""
        raise RegistryError(
            f"hospital_number {values['hospital_number']!r} is already the number of patient "
            f"{taken.study_id}{state} ({taken.identity.hospital_number}): one number, one patient",
            field="hospital_number",
        )


def near_duplicates(
    *,
    family_name: str,
    given_name: str,
    birth_date: dt.date | None,
    exclude: m.Patient | int | None = None,
) -> list[m.Patient]:
    """Patients (not voided) who may be the same person: same birth date and the same family
    and given names when case, accents, spaces and hyphens are ignored."""
    if birth_date is None:
        return []
    rows = m.Patient.objects.select_related("identity").filter(
        identity__birth_date=birth_date, voided_at__isnull=True
    )
    if exclude is not None:
        rows = rows.exclude(pk=getattr(exclude, "pk", exclude))
    return [
        p
        for p in rows.order_by("study_id")
        if names_match(p.identity.family_name, family_name)
        and names_match(p.identity.given_name, given_name)
    ]


def create_patient(
    *,
    study_id: str | None = None,
    case_manager: Any = None,
    identity: IdentityData | None = None,
) -> m.Patient:
    """Create a patient; ``study_id`` is generated (``SW-000123``) when not given.

    ``identity`` is optional: a pseudonymous patient (an imported cohort, a research copy) has
    none. A duplicate study id or hospital number raises RegistryError naming it.
    """
    _check_user("case_manager", case_manager)
    values = _identity_values(identity) if identity is not None else None
    if values is not None:
        _check_number_free(values, None)
    given = validate_study_id(study_id) if study_id is not None else None
    for _attempt in range(20):
        candidate = given or next_study_id()
        try:
            with transaction.atomic():
                # a generated id is unique by the counter (a clash with an id typed by hand is
                # refused by the database and retried below); the number was checked above
                patient = created(
                    m.Patient(study_id=candidate, case_manager=case_manager),
                    check_unique=given is not None,
                )
                if given is not None:
                    note_study_ids([given])
                if values is not None:
                    created(m.PatientIdentity(patient=patient, **values), check_unique=False)
                return patient
        except RegistryError:
            clash = m.Patient.objects.filter(study_id=candidate).exists()
            if given is not None or not clash:
                raise
            # a concurrent writer took the generated id: generate the next one
    raise RegistryError("could not generate a unique study id; try again")


def update_patient(
    *, patient: m.Patient | int, expected_version: int, case_manager: Any = UNCHANGED
) -> m.Patient:
    """Change the patient's case manager (the only editable field besides the identity)."""
    with transaction.atomic():
        row = get(m.Patient, patient, "patient")
        changes: dict[str, Any] = {}
        if not isinstance(case_manager, Unchanged):
            changes["case_manager"] = _check_user("case_manager", case_manager)
        return changed(
            row, what=f"patient {row.study_id}", changes=changes, expected_version=expected_version
        )


def update_patient_identity(
    *,
    patient: m.Patient | int,
    expected_version: int,
    family_name: str | Unchanged = UNCHANGED,
    given_name: str | Unchanged = UNCHANGED,
    hospital_number: str | Unchanged = UNCHANGED,
    birth_date: dt.date | Unchanged | None = UNCHANGED,
    sex: str | Unchanged = UNCHANGED,
    phone: str | Unchanged = UNCHANGED,
    email: str | Unchanged = UNCHANGED,
    contact_by: str | Unchanged = UNCHANGED,
) -> m.Patient:
    """Change (or add) the patient's identifying data under the patient's version.

    The identity has no version of its own: it is part of the patient, whose ``version`` is
    checked and bumped. Adding an identity to a pseudonymous patient needs family name, given
    name and hospital number. Returns the patient at its new version.
    """
    with transaction.atomic():
        row = get(m.Patient, patient, "patient")
        what = f"patient {row.study_id}"
        given = {
            "family_name": family_name,
            "given_name": given_name,
            "hospital_number": hospital_number,
            "birth_date": birth_date,
            "sex": sex,
            "phone": phone,
            "email": email,
            "contact_by": contact_by,
        }
        given = {k: v for k, v in given.items() if not isinstance(v, Unchanged)}
        identity = m.PatientIdentity.objects.filter(patient=row).first()
        if identity is None:
            base = {
                "birth_date": None,
                "sex": Sex.UNKNOWN.value,
                "phone": "",
                "email": "",
                "contact_by": ContactBy.NONE.value,
            }
            missing = [
                k for k in ("family_name", "given_name", "hospital_number") if k not in given
            ]
            if missing:
                raise RegistryError(
                    f"{what} has no identity yet: {', '.join(missing)} must be given"
                )
        else:
            base = {f.name: getattr(identity, f.name) for f in fields(IdentityData)}
        values = _identity_values(IdentityData(**{**base, **given}))
        _check_number_free(values, row.pk)
        row = changed(row, what=what, changes={}, expected_version=expected_version)
        if identity is None:
            created(m.PatientIdentity(patient=row, **values))
        else:
            changed(identity, what=f"identity of {what}", changes=values, expected_version=None)
        return row


def add_diagnosis(
    *,
    patient: m.Patient | int,
    kind: str,
    primary_tumour: str | None = None,
    diagnosed_on: dt.date | None = None,
    notes: str = "",
) -> m.Diagnosis:
    """Record a diagnosis (core ``Diagnosis``: the primary tumour is required iff metastasis)."""
    diagnosis = parse_field(
        "diagnosis", lambda _: CoreDiagnosis.parse(kind, primary_tumour), (kind, primary_tumour)
    )
    check_date("diagnosed_on", diagnosed_on, allow_none=True, not_future=True)
    if not isinstance(notes, str):
        raise RegistryError(f"notes {notes!r}: expected text", field="notes")
    with transaction.atomic():
        row = get(m.Patient, patient, "patient")
        return created(
            m.Diagnosis(
                patient=row,
                kind=diagnosis.kind.value,
                primary_tumour=diagnosis.primary.value if diagnosis.primary else None,
                diagnosed_on=diagnosed_on,
                notes=notes,
            )
        )
