"""Shared helpers of the JSON API tests: users with tokens, a JSON client, a small registry.

Imported by ``tests/web/test_api*.py`` (``from _api_support import ...``); fixtures are defined
in the test modules that use them, from the plain functions here.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from django.test import Client

from spinewatch.accounts.tokens import create_token
from spinewatch.accounts.users import create_user
from spinewatch.core.procedures import TreatedLevel
from spinewatch.registry import services

PASSWORD = "correct horse battery staple 42"
TODAY = dt.date.today()
PROCEDURE_DAY = TODAY - dt.timedelta(days=120)

#: A small analysis report in the ``SpineReport.to_json_dict()`` shape (two vertebrae).
REPORT: dict[str, Any] = {
    "scan": {"series_uid": "", "analysed_at": "2025-01-02T03:04:05+00:00"},
    "vertebrae": [
        {
            "level": "L1",
            "height_anterior_mm": 14.0,
            "height_middle_mm": 20.0,
            "height_posterior_mm": 25.0,
            "reference_height_mm": 25.0,
            "genant_grade": 3,
            "deformity": "wedge",
            "height_loss_pct": 44.0,
            "trabecular_hu_median": 60.0,
            "lytic_volume_ml": 3.2,
            "lytic_fraction": 0.4,
            "posterior_wall_involved": True,
            "collapse_risk": "high",
            "reasons": ["lytic fraction 40 %"],
            "sins_imaging": {"points": 5},
        },
        {
            "level": "L2",
            "height_anterior_mm": 25.0,
            "height_middle_mm": 25.0,
            "height_posterior_mm": 25.5,
            "genant_grade": 0,
            "collapse_risk": "low",
            "reasons": [],
        },
    ],
}


@dataclass
class ApiUser:
    """A user of one role and a client that sends their bearer token."""

    user: Any
    token: str
    client: JsonClient


class JsonClient:
    """A Django test client speaking JSON, with an optional bearer token."""

    def __init__(self, token: str | None = None, client: Client | None = None) -> None:
        self.client = client or Client()
        self.headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}

    def _send(self, method: str, path: str, body: Any = None, **extra: Any) -> Any:
        kwargs = {**self.headers, **extra}
        if body is not None:
            kwargs["data"] = json.dumps(body)
            kwargs["content_type"] = "application/json"
        return getattr(self.client, method)(path, **kwargs)

    def get(self, path: str, **extra: Any) -> Any:
        return self._send("get", path, **extra)

    def post(self, path: str, body: Any, **extra: Any) -> Any:
        return self._send("post", path, body, **extra)

    def patch(self, path: str, body: Any, **extra: Any) -> Any:
        return self._send("patch", path, body, **extra)

    def put(self, path: str, body: Any, **extra: Any) -> Any:
        return self._send("put", path, body, **extra)


def make_api_user(role: str, username: str) -> ApiUser:
    """A user with a token; an admin first sets up an authenticator and confirms the token with
    a current code (tokens of users who need a second factor require it, issue 12)."""
    user = create_user(username=username, password=PASSWORD, role=role)
    token = create_token(user, name="tests", totp_code=enrol_second_factor(user)).token
    return ApiUser(user=user, token=token, client=JsonClient(token))


def enrol_second_factor(user: Any) -> str | None:
    """For a user who must use a second factor: a confirmed authenticator, and a fresh code of
    it (None for anyone else)."""
    import time

    import pyotp

    from spinewatch.accounts import totp

    if not totp.requires_second_factor(user):
        return None
    device = totp.start_enrolment(user)
    earlier = time.time() - 30  # confirmed one step ago: the current code is still unused
    assert totp.confirm(device, pyotp.TOTP(device.secret).at(earlier), for_time=earlier)
    return pyotp.TOTP(device.secret).now()


def seed_patient(
    *,
    family_name: str = "Quixotewright",
    hospital_number: str = "HN-100",
    case_manager: Any = None,
    with_procedure: bool = True,
    with_study: bool = True,
    vas: tuple[float, ...] = (8.0, 3.0),
) -> dict[str, Any]:
    """A patient (identity, myeloma), a two-level procedure 120 days ago with its follow-ups
    (the baseline and 1-week visits completed with ``vas``) and an analysed study."""
    patient = services.create_patient(
        case_manager=case_manager,
        identity=services.IdentityData(
            family_name=family_name,
            given_name="Philomena",
            hospital_number=hospital_number,
            birth_date=dt.date(1950, 6, 15),
            sex="female",
        ),
    )
    services.add_diagnosis(patient=patient, kind="myeloma")
    out: dict[str, Any] = {"patient": patient}
    if with_procedure:
        procedure = services.record_procedure(
            patient=patient,
            performed_on=PROCEDURE_DAY,
            procedure_type="vertebroplasty",
            guidance="fluoroscopy",
            anaesthesia="local",
            day_case=True,
            levels=[
                TreatedLevel("L1", "transpedicular", 11, 4.5),
                TreatedLevel("L2", "parapedicular", 13, 3.0),
            ],
            operator="Dr Zebedee",
        )
        visits = list(procedure.follow_ups.order_by("due_date", "pk"))
        for visit, score in zip(visits, vas, strict=False):
            services.record_follow_up(
                follow_up=visit,
                expected_version=visit.version,
                completed_on=min(visit.due_date, TODAY),
                vas=score,
            )
        out["procedure"] = procedure
    if with_study:
        out["study"] = services.add_imaging_study(
            patient=patient, study_date=PROCEDURE_DAY - dt.timedelta(days=7), report=REPORT
        )
    return out
