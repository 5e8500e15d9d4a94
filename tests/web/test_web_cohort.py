"""Cohort page: same numbers as outcome_table on cohort_frame, filters, exports, no identities."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
from django.test import Client
from test_worklists_support import (
    IDENTITY_FIELDS,
    complete,
    identity,
    make_user,
    patient_with_procedure,
)

from spinewatch.accounts.testing import signed_in
from spinewatch.audit.models import AuditEvent
from spinewatch.outcomes import outcome_table
from spinewatch.registry.services import cohort_frame
from spinewatch.web.cohort.views import DATA_COLUMNS, display_row

pytestmark = pytest.mark.django_db

BASE = dt.date(2024, 1, 10)
# (n, diagnosis, level, approach, procedure type, offset days, pre, 1m, 3m)
COHORT = [
    (1, "myeloma", "L1", "transpedicular", "vertebroplasty", 0, 8.0, 3.0, 2.0),
    (2, "myeloma", "T12", "parapedicular", "vertebroplasty", 20, 7.5, 4.0, 3.5),
    (3, "metastasis", "L1", "transpedicular", "kyphoplasty", 40, 9.0, 2.5, 2.0),
    (4, "metastasis", "L2", "transpedicular", "vertebroplasty", 60, 6.0, 5.5, 4.0),
    (5, "myeloma", "L1", "transpedicular", "vertebroplasty", 200, 7.0, 2.0, 1.5),
    (6, "metastasis", "T11", "parapedicular", "vertebroplasty", 220, 8.5, 3.5, 3.0),
]


@pytest.fixture
def cohort():
    for n, diag, level, approach, ptype, offset, pre, m1, m3 in COHORT:
        when = BASE + dt.timedelta(days=offset)
        _, proc = patient_with_procedure(
            n,
            performed_on=when,
            diagnosis=diag,
            level=level,
            approach=approach,
            procedure_type=ptype,
        )
        complete(proc, "pre", when - dt.timedelta(days=2), pre)
        complete(proc, "1m", when + dt.timedelta(days=30), m1)
        complete(proc, "3m", when + dt.timedelta(days=91), m3)


def _forbidden():
    values = []
    for n, *_ in COHORT:
        ident = identity(n)
        values += [getattr(ident, f) for f in IDENTITY_FIELDS]
        values += [ident.birth_date.isoformat(), ident.birth_date.strftime("%d %b %Y")]
    for _, _, _, _, _, offset, *_ in COHORT:
        day = BASE + dt.timedelta(days=offset)
        values += [day.isoformat(), f"{day.day} {day:%b %Y}"]
    return values


@pytest.fixture
def researcher():
    return signed_in(Client(), make_user("researcher", "res"))


def _html(client, query=""):
    response = client.get(f"/cohort/{query}")
    assert response.status_code == 200, response.content[:300]
    return response.content.decode()


@pytest.mark.parametrize(
    ("query", "filters"),
    [
        ("", {}),
        ("?diagnosis=myeloma", {"diagnosis": "myeloma"}),
        ("?level=L1&test=wilcoxon", {"level": "L1"}),
        ("?approach=parapedicular", {"approach": "parapedicular"}),
        (
            "?date_from=2024-02-01&date_to=2024-12-31",
            {"date_from": dt.date(2024, 2, 1), "date_to": dt.date(2024, 12, 31)},
        ),
    ],
)
def test_numbers_equal_outcome_table(cohort, researcher, query, filters):
    test = "wilcoxon" if "wilcoxon" in query else "paired-t"
    expected = outcome_table(cohort_frame(**filters), test=test).to_json_dict()
    html = _html(researcher, query)
    for row in expected["timepoints"]:
        cells = display_row(row)
        assert f'data-timepoint="{row["timepoint"]}"' in html
        for key in ("mean_sd", "median_iqr", "change", "p", "p_holm", "responders", "lmm"):
            assert cells[key].replace("<", "&lt;") in html, (key, cells[key])
    assert f"{expected['n_patients']} treatment series" in html


def test_display_row_formats_independently():
    row = {
        "timepoint": "1m",
        "label": "1 month",
        "n": 4,
        "mean": 3.25,
        "sd": 1.0,
        "median": 3.0,
        "iqr": [2.5, 4.0],
        "n_paired": 4,
        "mean_change": -4.5,
        "ci95": [-6.0, -3.0],
        "p_value": 0.0004,
        "p_holm": 0.0123,
        "test": "paired-t",
        "responders": 3,
        "responder_pct": 75.0,
        "lmm_estimate": -4.4,
        "lmm_se": 0.5,
        "lmm_ci95": [-5.4, -3.4],
        "note": None,
    }
    cells = display_row(row)
    assert cells["mean_sd"] == "3.2 \u00b1 1.0"  # 3.25 rounds half to even
    assert cells["median_iqr"] == "3.0 [2.5 to 4.0]"
    assert cells["change"] == "-4.5 (-6.0 to -3.0)"
    assert (cells["p"], cells["p_holm"]) == ("<0.001", "0.012")
    assert cells["responders"] == "3 (75%)"
    assert cells["lmm"] == "-4.4 (-5.4 to -3.4)"


def test_researcher_sees_no_identity_anywhere(cohort, researcher):
    bodies = [
        _html(researcher),
        _html(researcher, "?date_from=2024-01-01"),
        researcher.get("/cohort/table.csv").content.decode(),
        researcher.get("/cohort/data.csv").content.decode(),
    ]
    for body in bodies:
        for value in _forbidden():
            assert value not in body, value


def test_data_csv_content_and_audit(cohort, researcher):
    response = researcher.get("/cohort/data.csv?diagnosis=metastasis")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert tuple(rows[0].keys()) == DATA_COLUMNS
    frame = cohort_frame(diagnosis="metastasis")
    assert len(rows) == len(frame) == 9
    got = sorted(
        (r["study_id"], r["timepoint"], float(r["vas"]), int(r["days_from_index"])) for r in rows
    )
    want = sorted(
        (s, t, v, (c - p).days)
        for s, t, v, c, p in zip(
            frame.study_id,
            frame.timepoint,
            frame.vas,
            frame.completed_on,
            frame.procedure_date,
            strict=True,
        )
    )
    assert got == want
    assert {r["diagnosis"] for r in rows} == {"metastasis"}
    event = AuditEvent.objects.filter(action="export", actor_username="res").last()
    assert event.detail["export"] == "cohort de-identified data"
    assert event.detail["filters"] == {"diagnosis": "metastasis"} and event.detail["rows"] == 9


def test_table_csv_matches_to_csv_and_is_audited(cohort):
    clin = signed_in(Client(), make_user("clinician", "clin"))
    response = clin.get("/cohort/table.csv?procedure_type=vertebroplasty")
    assert response.status_code == 200
    expected = outcome_table(cohort_frame(procedure_type="vertebroplasty")).to_csv()
    assert response.content.decode() == expected
    assert AuditEvent.objects.filter(action="export", actor_username="clin").count() == 1


def test_plot_png(cohort, researcher):
    response = researcher.get("/cohort/plot.png?diagnosis=myeloma")
    assert response.status_code == 200 and response["Content-Type"] == "image/png"
    assert response.content[:8] == b"\x89PNG\r\n\x1a\n"
    assert researcher.get("/cohort/plot.png?diagnosis=haemangioma").status_code == 404


def test_empty_result_is_friendly(cohort, researcher):
    html = _html(researcher, "?diagnosis=haemangioma")
    assert "No completed follow-ups match these filters" in html
    assert researcher.get("/cohort/data.csv?diagnosis=haemangioma").status_code == 200


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("?level=L99", "Select a valid choice"),
        ("?date_from=yesterday", "Expected a date as YYYY-MM-DD"),
        ("?date_from=2024-05-01&date_to=2024-01-01", "expected an end date on or after"),
        ("?test=anova", "Select a valid choice"),
    ],
)
def test_bad_filters_are_400_with_message(researcher, query, message):
    response = researcher.get(f"/cohort/{query}")
    assert response.status_code == 400 and message in response.content.decode()
    assert researcher.get(f"/cohort/data.csv{query}").status_code == 400


def test_permissions():
    assert Client().get("/cohort/").status_code == 302
    for role in ("clinician", "researcher", "admin", "case_manager"):
        c = signed_in(Client(), make_user(role, f"u-{role}"))
        assert c.get("/cohort/").status_code == 200, role


def test_csv_exports_neutralise_spreadsheet_formulas(researcher):
    """Issue 12: a study id such as '-A1' (allowed: letters, digits, '.', '_', '-') is a formula
    to a spreadsheet (=-A1); the de-identified data export writes it as text."""
    from spinewatch.core.procedures import TreatedLevel
    from spinewatch.registry.services import add_diagnosis, create_patient, record_procedure

    patient = create_patient(study_id="-A1", identity=identity(1))
    add_diagnosis(patient=patient, kind="myeloma", diagnosed_on=BASE - dt.timedelta(days=60))
    proc = record_procedure(
        patient=patient,
        performed_on=BASE,
        procedure_type="vertebroplasty",
        guidance="fluoroscopy",
        anaesthesia="local",
        day_case=True,
        levels=[TreatedLevel("L1", "transpedicular", 11, 4.0)],
        operator="Dr Example",
    )
    complete(proc, "pre", BASE - dt.timedelta(days=2), 7.0)
    complete(proc, "1m", BASE + dt.timedelta(days=30), 3.0)
    text = researcher.get("/cohort/data.csv").content.decode()
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == 2 and {r["study_id"] for r in rows} == {"'-A1"}
    assert sorted(float(r["vas"]) for r in rows) == [3.0, 7.0]  # numbers stay numbers
    assert all(int(r["days_from_index"]) in (-2, 30) for r in rows)


def test_results_section_tables_and_figures(cohort, researcher):
    from spinewatch.registry.results import results_report

    html = _html(researcher, "?diagnosis=myeloma")
    tables = results_report(None, diagnosis="myeloma")["tables"]
    for name in ("table1_baseline", "leakage", "complications", "cement_volume", "survival"):
        assert f'data-results="{name}"' in html
    assert tables["table1_baseline"].title in html
    myeloma = next(r for r in tables["table1_baseline"].records() if r["category"] == "myeloma")
    assert f"<td>{myeloma['summary']}</td>" in html
    assert "metastasis</td>" not in html  # the filter reached the results section
    svg = researcher.get("/cohort/results/survival.svg?diagnosis=myeloma")
    assert svg.status_code == 200 and svg["Content-Type"] == "image/svg+xml"
    assert b'id="km:death"' in svg.content
    png = researcher.get("/cohort/results/leakage.png")
    assert png.status_code == 200 and png.content[:4] == b"\x89PNG"
    assert researcher.get("/cohort/results/nothing.png").status_code == 404
    assert researcher.get("/cohort/results/survival.gif").status_code == 404
    assert researcher.get("/cohort/results/survival.svg?level=Q9").status_code == 400
    for value in _forbidden():
        assert value not in html
