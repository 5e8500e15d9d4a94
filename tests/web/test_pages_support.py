"""Builders for the pages tests (patient list, patient page, procedure form); holds no tests.

Everything goes through the registry's services, with fictional identities distinctive enough to
search the HTML for.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.contrib.auth.hashers import make_password

from spinewatch.accounts.testing import signed_in
from spinewatch.core.procedures import TreatedLevel
from spinewatch.registry import services

__all__ = ["analysed_report", "client_for", "make_patient", "make_user", "vertebra"]

TODAY = dt.date.today()


def make_user(role: str, username: str, **fields: Any) -> Any:
    from django.contrib.auth import get_user_model

    from spinewatch.accounts.roles import set_role

    user = get_user_model().objects.create(
        username=username, password=make_password(None), **fields
    )
    set_role(user, role)
    return user


def client_for(client: Any, user: Any) -> Any:
    return signed_in(client, user)


def make_patient(
    n: int,
    *,
    family: str | None = None,
    case_manager: Any = None,
    diagnosis: str = "myeloma",
    birth: dt.date = dt.date(1950, 6, 15),
) -> Any:
    patient = services.create_patient(
        case_manager=case_manager,
        identity=services.IdentityData(
            family_name=family or f"Quillfeather{n}",
            given_name=f"Ottoline{n}",
            hospital_number=f"HX-{n:05d}",
            birth_date=birth,
            sex="female",
        ),
    )
    services.add_diagnosis(
        patient=patient,
        kind=diagnosis,
        primary_tumour="breast" if diagnosis == "metastasis" else None,
        diagnosed_on=TODAY - dt.timedelta(days=400),
    )
    return patient


def add_procedure(patient: Any, *, days_ago: int = 100, level: str = "L1") -> Any:
    return services.record_procedure(
        patient=patient,
        performed_on=TODAY - dt.timedelta(days=days_ago),
        procedure_type="vertebroplasty",
        guidance="fluoroscopy",
        anaesthesia="local",
        day_case=True,
        operator="Dr Testoperator",
        levels=[
            TreatedLevel(
                level=level, approach="transpedicular", needle_gauge=11, cement_volume_ml=3.5
            )
        ],
    )


def vertebra(level: str, **values: Any) -> dict[str, Any]:
    entry = {
        "level": level,
        "height_anterior_mm": 24.0,
        "height_middle_mm": 24.0,
        "height_posterior_mm": 24.0,
        "genant_grade": 0,
        "deformity": "none",
        "trabecular_hu_median": 180.0,
        "lytic_volume_ml": 0.0,
        "lytic_fraction": 0.0,
        "posterior_wall_involved": False,
        "collapse_risk": "low",
        "reasons": ["no lytic lesion"],
        "sins_imaging": {
            "location": "mobile",
            "bone_lesion": "lytic",
            "collapse": "under_50_pct",
            "posterolateral": "unilateral",
            "points": 7,
            "possible_total_range": [7, 14],
        },
    }
    entry.update(values)
    return entry


def analysed_report(*vertebrae: dict[str, Any], analysed_at: str | None = None) -> dict[str, Any]:
    scan: dict[str, Any] = {"labels": "synthetic"}
    if analysed_at:
        scan["analysed_at"] = analysed_at
    return {"scan": scan, "vertebrae": list(vertebrae)}


def add_analysed_study(patient: Any, days_ago: int, *vertebrae: dict[str, Any]) -> Any:
    return services.add_imaging_study(
        patient=patient,
        study_date=TODAY - dt.timedelta(days=days_ago),
        description=f"CT spine {days_ago}",
        report=analysed_report(*vertebrae),
    )
