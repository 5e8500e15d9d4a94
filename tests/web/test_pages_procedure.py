"""The procedure form: several levels, leakages, complications; all or nothing; stale edits."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from test_pages_support import TODAY, add_procedure, client_for, make_patient, make_user

from spinewatch.core.procedures import Approach
from spinewatch.core.protocol import DEFAULT_PROTOCOL
from spinewatch.registry import models as rm

pytestmark = pytest.mark.django_db

DAY = TODAY - dt.timedelta(days=2)


@pytest.fixture
def clinician(db):
    return make_user("clinician", "dr_proc", first_name="Ivo", last_name="Needleman")


@pytest.fixture
def patient(db):
    return make_patient(7, family="Procedurewright")


def _post_data(levels=(), leakages=(), complications=(), **main):
    data = {
        "performed_on": DAY.isoformat(),
        "procedure_type": "vertebroplasty",
        "operator": "Dr Ivo Needleman",
        "guidance": "fluoroscopy",
        "anaesthesia": "local",
        "day_case": "yes",
        "cementoplasty_site": "",
        "disc_level": "",
        "notes": "",
    }
    data.update(main)
    for prefix, rows, total in (
        ("levels", levels, max(3, len(levels))),
        ("leakages", leakages, max(1, len(leakages))),
        ("complications", complications, max(1, len(complications))),
    ):
        data[f"{prefix}-TOTAL_FORMS"] = str(total)
        data[f"{prefix}-INITIAL_FORMS"] = "0"
        data[f"{prefix}-MIN_NUM_FORMS"] = "0"
        data[f"{prefix}-MAX_NUM_FORMS"] = "30"
        for i, row in enumerate(rows):
            for key, value in row.items():
                data[f"{prefix}-{i}-{key}"] = value
    return data


def _level(level, approach, gauge="11", ml="2.5"):
    return {"level": level, "approach": approach, "needle_gauge": gauge, "cement_volume_ml": ml}


def _counts():
    return (
        rm.Procedure.objects.count(),
        rm.TreatedLevel.objects.count(),
        rm.FollowUp.objects.count(),
        rm.CementLeakage.objects.count(),
        rm.Complication.objects.count(),
    )


def _row_html(html: str, prefix: str, index: int) -> str:
    start = html.index(f'name="{prefix}-{index}-')
    start = html.rindex('class="formset-row', 0, start)
    end = html.find('class="formset-row', start + 10)
    return html[start : end if end > 0 else len(html)]


def test_form_renders_three_empty_level_rows_and_template(client, clinician, patient):
    client_for(client, clinician)
    html = client.get(f"/patients/{patient.study_id}/procedures/new/").content.decode()
    assert re.search(r'name="levels-TOTAL_FORMS" value="3"', html)
    assert 'name="levels-INITIAL_FORMS" value="0"' in html
    assert 'id="levels-template"' in html and "levels-__prefix__-level" in html
    assert 'value="Ivo Needleman"' in html
    assert "<script>" not in html and " style=" not in html


def test_add_level_without_js_keeps_values_and_adds_a_row(client, clinician, patient):
    client_for(client, clinician)
    data = _post_data(levels=[_level("L1", "transpedicular"), _level("L2", "transpedicular")])
    data["add_level"] = "1"
    before = _counts()
    response = client.post(f"/patients/{patient.study_id}/procedures/new/", data)
    assert response.status_code == 200
    html = response.content.decode()
    assert 'name="levels-TOTAL_FORMS" value="4"' in html
    assert re.search(r'<option value="L2" selected>', _row_html(html, "levels", 1))
    assert 'name="levels-3-level"' in html
    assert 'class="errors"' not in html  # nothing validated yet
    assert _counts() == before


def test_two_cervical_levels_saved_with_schedule(client, clinician, patient):
    client_for(client, clinician)
    data = _post_data(
        levels=[_level("C2", "anterolateral", ml="1.5"), _level("C3", "anterolateral", ml="2")],
        leakages=[{"leakage_type": "S", "site": "venous", "level": "C3"}],
        complications=[
            {"sir_class": "A", "description": "transient pain", "occurred_on": DAY.isoformat()}
        ],
    )
    response = client.post(f"/patients/{patient.study_id}/procedures/new/", data)
    assert response.status_code == 302, response.content.decode()[:2000]
    assert response["Location"] == f"/patients/{patient.study_id}/#schedule"
    procedure = rm.Procedure.objects.get(patient=patient)
    assert sorted((t.level, t.approach, t.cement_volume_ml) for t in procedure.levels.all()) == [
        ("C2", "anterolateral", 1.5),
        ("C3", "anterolateral", 2.0),
    ]
    leak = procedure.leakages.get()
    assert (leak.leakage_type, leak.site, leak.symptomatic, leak.treated_level.level) == (
        "S",
        "venous",
        False,
        "C3",
    )
    assert procedure.complications.get().sir_class == "A"
    expected = [(v.timepoint.code, v.due) for v in DEFAULT_PROTOCOL.schedule(DAY)]
    got = [(f.timepoint, f.due_date) for f in procedure.follow_ups.order_by("due_date")]
    assert got == expected
    page = client.get(response["Location"]).content.decode()
    schedule = page[page.index('id="schedule"') :]
    future = [due for _, due in expected if due > TODAY]
    assert future and f"{future[0].day} {future[0]:%b %Y}" in schedule
    assert "follow-up visits scheduled" in page


def test_transpedicular_at_c2_refused_next_to_that_row_and_nothing_written(
    client, clinician, patient
):
    assert not Approach.TRANSPEDICULAR.allowed_at("C2")
    client_for(client, clinician)
    before = _counts()
    data = _post_data(
        levels=[_level("C3", "anterolateral"), _level("C2", "transpedicular")],
        leakages=[{"leakage_type": "B", "site": "other", "level": "C3"}],
    )
    response = client.post(f"/patients/{patient.study_id}/procedures/new/", data)
    assert response.status_code == 400
    html = response.content.decode()
    row = _row_html(html, "levels", 1)
    approach = row[row.index('for="id_levels-1-approach"') :]
    assert "not used at level C2" in approach[: approach.index("<select")]
    assert "not used at level" not in _row_html(html, "levels", 0)
    assert "Nothing was saved" in html
    # everything typed is still there
    assert re.search(r'<option value="C3" selected>', _row_html(html, "levels", 0))
    assert re.search(r'<option value="B" selected>', _row_html(html, "leakages", 0))
    assert _counts() == before


def test_service_error_in_leakage_row_keeps_everything_unsaved(client, clinician, patient):
    client_for(client, clinician)
    before = _counts()
    data = _post_data(
        levels=[_level("L1", "transpedicular"), _level("L2", "parapedicular")],
        leakages=[{"leakage_type": "C", "site": "epidural", "symptomatic": "on", "level": "L4"}],
    )
    response = client.post(f"/patients/{patient.study_id}/procedures/new/", data)
    assert response.status_code == 400
    row = _row_html(response.content.decode(), "leakages", 0)
    assert "not a treated level of this procedure" in row
    assert _counts() == before


def test_duplicate_level_and_missing_fields(client, clinician, patient):
    client_for(client, clinician)
    before = _counts()
    data = _post_data(levels=[_level("L1", "transpedicular"), _level("L1", "transpedicular")])
    response = client.post(f"/patients/{patient.study_id}/procedures/new/", data)
    assert response.status_code == 400
    assert "treated twice" in _row_html(response.content.decode(), "levels", 1)
    data = _post_data(levels=[{"level": "L1", "approach": "transpedicular"}], guidance="")
    response = client.post(f"/patients/{patient.study_id}/procedures/new/", data)
    assert response.status_code == 400
    html = response.content.decode()
    row = _row_html(html, "levels", 0)
    assert row.count("This field is required") == 2  # needle and cement
    guidance = html[html.index('for="id_guidance"') :]
    assert "This field is required" in guidance[: guidance.index("<select")]
    assert _counts() == before


def test_future_date_and_no_level_refused(client, clinician, patient):
    client_for(client, clinician)
    data = _post_data(
        levels=[_level("L1", "transpedicular")],
        performed_on=(TODAY + dt.timedelta(days=3)).isoformat(),
    )
    response = client.post(f"/patients/{patient.study_id}/procedures/new/", data)
    assert response.status_code == 400 and "in the future" in response.content.decode()
    response = client.post(f"/patients/{patient.study_id}/procedures/new/", _post_data())
    assert response.status_code == 400
    assert "needs at least one treated level" in response.content.decode()
    assert rm.Procedure.objects.count() == 0


def test_edit_procedure_and_stale_edit_409(client, clinician, patient):
    procedure = add_procedure(patient, days_ago=40, level="L2")
    client_for(client, clinician)
    html = client.get(f"/procedures/{procedure.pk}/edit/").content.decode()
    assert re.search(r'<option value="L2" selected>', _row_html(html, "levels", 0))
    assert f'name="expected_version" value="{procedure.version}"' in html
    data = _post_data(
        levels=[_level("L2", "transpedicular", ml="4.5"), _level("L3", "transpedicular")],
        performed_on=procedure.performed_on.isoformat(),
    )
    data["expected_version"] = str(procedure.version)
    response = client.post(f"/procedures/{procedure.pk}/edit/", data)
    assert response.status_code == 302
    procedure.refresh_from_db()
    assert sorted((t.level, t.cement_volume_ml) for t in procedure.levels.all()) == [
        ("L2", 4.5),
        ("L3", 2.5),
    ]
    # the same (now stale) form again, with another change
    data["levels-0-cement_volume_ml"] = "6"
    response = client.post(f"/procedures/{procedure.pk}/edit/", data)
    assert response.status_code == 409
    html = response.content.decode()
    assert "Changed by someone else" in html
    assert "L2 transpedicular 11 G 4.5 ml" in html  # what is saved now
    assert "levels 1 · cement volume ml" in html.lower() or "Levels 1 · cement volume ml" in html
    assert f'href="/procedures/{procedure.pk}/edit/"' in html
    procedure.refresh_from_db()
    assert sorted(t.cement_volume_ml for t in procedure.levels.all()) == [2.5, 4.5]


@pytest.mark.parametrize("role", ["case_manager", "researcher", "admin"])
def test_only_clinicians_record_procedures(client, patient, role):
    user = make_user(role, f"u_{role}")
    client_for(client, user)
    before = _counts()
    response = client.post(
        f"/patients/{patient.study_id}/procedures/new/",
        _post_data(levels=[_level("L1", "transpedicular")]),
    )
    assert response.status_code == 403
    assert _counts() == before
