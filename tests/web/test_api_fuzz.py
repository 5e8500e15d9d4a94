"""Fuzz the JSON API from its own OpenAPI document: no request the schema allows gets a 5xx.

Schemathesis loads ``/api/openapi.json`` from the Django WSGI application in-process and, for
every operation, generates requests that conform to the schema (Hypothesis, derandomized, a
bounded number of examples, no deadline), sends them with a real bearer token, and checks

- ``not_a_server_error``: every response is 2xx or 4xx, never 5xx;
- ``response_schema_conformance``: a documented status code's JSON body matches its schema.

Each operation runs four ways: as a clinician with generated ids (mostly 404s), as a clinician
with the ids of real seeded records fixed (so generated bodies reach the service layer: 200/201,
400, 409), as a researcher (403 on identifiable routes; outcomes and de-identified data
answered), and -- a few examples, "never a 5xx" only -- with schema-INVALID requests
(schemathesis' negative mode: expected 4xx, mostly 422). The WSGI app runs in the test's thread, so
the ``db`` fixture's transaction holds everything; Django's per-request connection closing is
switched off meanwhile, exactly as Django's own test client does.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from typing import Any

import pytest
import schemathesis
from _api_support import make_api_user, seed_patient
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from spinewatch.registry import models as m

pytestmark = [pytest.mark.django_db, pytest.mark.slow]

log = logging.getLogger(__name__)

#: Examples per operation and run. Clinician with real ids (or no ids): MAX_EXAMPLES; clinician
#: with generated ids (mostly 404s) and researcher (mostly 403s): fewer; schema-INVALID requests
#: (negative mode, expected 4xx): a few per operation, only "never a 5xx" checked.
MAX_EXAMPLES = 25
MAX_EXAMPLES_GENERATED_IDS = 10
MAX_EXAMPLES_RESEARCHER = 10
MAX_EXAMPLES_NEGATIVE = 8
CHECKS = [not_a_server_error, response_schema_conformance]


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def wsgi_app():
    """Django's WSGI application, without closing the test transaction's connection."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield WSGIHandler()
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.fixture
def registry():
    """Two patients with procedures, follow-ups (baseline and one more visit) and a study."""
    manager = make_api_user("case_manager", "mona")
    first = seed_patient(case_manager=manager.user)
    second = seed_patient(family_name="Other", hospital_number="HN-200", vas=(6.0, 2.0))
    finding = m.VertebraFinding.objects.filter(study=first["study"]).first()
    follow_up = first["procedure"].follow_ups.order_by("due_date").last()
    return {
        "patient_id": first["patient"].pk,
        "procedure_id": first["procedure"].pk,
        "imaging_study_id": first["study"].pk,
        "finding_id": finding.pk,
        "follow_up_id": follow_up.pk,
        "study_id": second["patient"].study_id,
        # the void route: the second patient's procedure (nothing else fuzzed depends on it)
        "kind": "procedures",
        "record_id": second["procedure"].pk,
    }


def _fuzz(
    operation: Any,
    token: str,
    examples: int,
    counts: Counter,
    *,
    fixed: dict[str, Any] | None = None,
    negative: bool = False,
) -> None:
    mode = GenerationMode.NEGATIVE if negative else GenerationMode.POSITIVE
    strategy = operation.as_strategy(mode, path_parameters=fixed)
    checks = [not_a_server_error] if negative else CHECKS

    @settings(
        max_examples=examples,
        derandomize=True,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
        suppress_health_check=[HealthCheck.too_slow],  # every example is a database request
    )
    @given(case=strategy)
    def run(case: Any) -> None:
        response = case.call(headers={"Authorization": f"Bearer {token}"})
        counts[response.status_code] += 1
        counts["examples"] += 1
        case.validate_response(response, checks=checks)

    run()


def test_no_schema_valid_request_gets_a_server_error(wsgi_app, registry):
    clinician = make_api_user("clinician", "cara")
    researcher = make_api_user("researcher", "rhea")
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", wsgi_app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 19

    counts: Counter = Counter()
    timings: dict[str, float] = {}
    started = time.monotonic()
    for operation in operations:
        op_started = time.monotonic()
        fixed = {p.name: registry[p.name] for p in operation.path_parameters}
        if fixed:
            _fuzz(operation, clinician.token, MAX_EXAMPLES_GENERATED_IDS, counts)
        _fuzz(operation, clinician.token, MAX_EXAMPLES, counts, fixed=fixed)
        _fuzz(operation, researcher.token, MAX_EXAMPLES_RESEARCHER, counts)
        _fuzz(operation, clinician.token, MAX_EXAMPLES_NEGATIVE, counts, fixed=fixed, negative=True)
        timings[operation.label] = round(time.monotonic() - op_started, 1)
    elapsed = time.monotonic() - started

    log.warning(
        "API fuzz: %d operations, %d examples in %.1f s; responses by status: %s; "
        "seconds per operation: %s",
        len(operations),
        counts["examples"],
        elapsed,
        dict(sorted((k, v) for k, v in counts.items() if k != "examples")),
        timings,
    )
    assert not [code for code in counts if code != "examples" and code >= 500]
    # the fuzz reached the service layer: successes, refusals, stale edits and 403s all occurred
    assert counts[200] > 0 and counts[201] > 0
    assert counts[400] > 0 and counts[403] > 0 and counts[404] > 0 and counts[409] > 0
    assert counts[422] > 0  # the negative mode's schema-invalid requests
