"""``spinewatch export fhir|redcap`` and ``spinewatch import fhir|redcap``; the FHIR Bundle's
content, validated with fhir.resources."""

from __future__ import annotations

import copy
import datetime as dt
import json

import pytest
from fhir.resources.R4B.bundle import Bundle

from spinewatch.cli import main
from spinewatch.outcomes.fhir import EXT_VISIT, STUDY_ID_SYSTEM, VERTEBRA_SNOMED

pytestmark = pytest.mark.django_db

TODAY = dt.date(2026, 6, 1)


@pytest.fixture(autouse=True)
def _data_dir(settings, tmp_path):
    settings.DATA_DIR = tmp_path / "data"


@pytest.fixture
def demo():
    from spinewatch.registry import models as m
    from spinewatch.registry import services
    from spinewatch.registry.demo import build_demo_registry

    summary = build_demo_registry(n_patients=6, today=TODAY)
    patient = m.Patient.objects.get(study_id=summary.study_ids[0])
    study = services.add_imaging_study(
        patient=patient,
        study_date=TODAY - dt.timedelta(days=3),
        study_instance_uid="1.2.826.0.1.3680043.10.511.1",
        series_instance_uid="1.2.826.0.1.3680043.10.511.2",
    )
    m.VertebraFinding.objects.create(
        study=study,
        level="L1",
        genant_grade=2,
        height_loss_pct=31.4,
        trabecular_hu_median=72.0,
        collapse_risk="high",
    )
    return summary


def _resources(bundle, kind):
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == kind]


def _export(tmp_path, *args):
    out = tmp_path / "bundle.json"
    assert main(["export", "fhir", *args, "--out", str(out)]) == 0
    return json.loads(out.read_text())


def test_identifiable_bundle_validates_and_holds_each_resource(demo, tmp_path, capsys):
    from spinewatch.registry import models as m

    sid = demo.study_ids[0]
    bundle = _export(tmp_path, sid)
    Bundle.model_validate(bundle)  # fhir.resources: valid FHIR
    patient = _resources(bundle, "Patient")[0]
    assert {"system": STUDY_ID_SYSTEM, "value": sid} in patient["identifier"]
    assert patient["birthDate"] and patient["name"][0]["family"]

    proc = m.Procedure.objects.get(patient__study_id=sid)
    procedure = _resources(bundle, "Procedure")[0]
    assert procedure["performedDateTime"] == proc.performed_on.isoformat()
    assert "coding" not in procedure["code"]  # no unverified SNOMED procedure code
    sites = {c["coding"][0]["code"] for c in procedure["bodySite"]}
    assert sites == {VERTEBRA_SNOMED[t.level][0] for t in proc.levels.all()}

    pains = [o for o in _resources(bundle, "Observation") if o["code"].get("coding")]
    completed = m.FollowUp.objects.filter(procedure=proc, vas__isnull=False)
    assert len(pains) == completed.count() > 0
    assert all(o["code"]["coding"][0]["code"] == "72514-3" for o in pains)
    assert {o["extension"][0]["valueCoding"]["code"] for o in pains} == set(
        completed.values_list("timepoint", flat=True)
    )
    assert {o["valueQuantity"]["value"] for o in pains} == {
        float(v) for v in completed.values_list("vas", flat=True)
    }

    imaging = _resources(bundle, "ImagingStudy")[0]
    assert imaging["identifier"][0]["value"] == "urn:oid:1.2.826.0.1.3680043.10.511.1"
    finding = next(o for o in _resources(bundle, "Observation") if o.get("derivedFrom"))
    assert finding["derivedFrom"][0]["reference"] == f"ImagingStudy/{imaging['id']}"
    assert finding["bodySite"]["coding"][0]["code"] == "66794005"  # L1, DICOM CID 7603

    conditions = _resources(bundle, "Condition")
    assert conditions and all(
        c["subject"]["reference"] == f"Patient/{patient['id']}" for c in conditions
    )


def test_metastasis_uses_mcode_primary_and_secondary_profiles(demo, tmp_path):
    from spinewatch.registry import models as m

    sid = (
        m.Diagnosis.objects.filter(kind="metastasis")
        .values_list("patient__study_id", flat=True)
        .first()
    )
    assert sid is not None
    profiles = {
        p
        for c in _resources(_export(tmp_path, sid), "Condition")
        for p in c.get("meta", {}).get("profile", [])
    }
    assert profiles == {
        "http://hl7.org/fhir/us/mcode/StructureDefinition/mcode-primary-cancer-condition",
        "http://hl7.org/fhir/us/mcode/StructureDefinition/mcode-secondary-cancer-condition",
    }


def test_deidentified_bundle_has_no_identifier_date_or_uid(demo, tmp_path):
    from spinewatch.registry import models as m

    bundle = _export(tmp_path, "--all", "--deidentified")
    Bundle.model_validate(bundle)
    text = json.dumps(bundle)
    assert "DEMO-0" not in text and "birthDate" not in text and "1.2.826" not in text
    assert "DateTime" not in text and '"started"' not in text
    for identity in m.PatientIdentity.objects.all():
        assert identity.family_name not in text
    assert len(_resources(bundle, "Patient")) == 6
    pains = [o for o in _resources(bundle, "Observation") if o["code"].get("coding")]
    assert all(len(o["extension"]) == 2 for o in pains)  # visit + days after procedure


def test_verified_vertebra_codes_equal_dicom_cid_7603():
    from pydicom.sr.codedict import codes

    cid = codes.cid7603
    assert {k: v[0] for k, v in VERTEBRA_SNOMED.items()} == {
        name.removesuffix("Vertebra"): getattr(cid, name).value for name in cid.dir()
    }


def _pain_bundle(sid, timepoint, date, value):
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {
                "resource": {
                    "resourceType": "Patient",
                    "id": "p1",
                    "identifier": [{"system": STUDY_ID_SYSTEM, "value": sid}],
                }
            },
            {
                "resource": {
                    "resourceType": "Observation",
                    "id": "o1",
                    "status": "final",
                    "code": {"coding": [{"system": "http://loinc.org", "code": "72514-3"}]},
                    "subject": {"reference": "Patient/p1"},
                    "effectiveDateTime": date,
                    "extension": [{"url": EXT_VISIT, "valueCoding": {"code": timepoint}}],
                    "valueQuantity": {"value": value},
                }
            },
        ],
    }


def test_import_fhir_pain_bundle_records_the_visit(demo, tmp_path, capsys):
    from spinewatch.registry import models as m

    sid = demo.study_ids[0]
    visit = (
        m.FollowUp.objects.filter(procedure__patient__study_id=sid, vas__isnull=True)
        .order_by("due_date")
        .first()
    )
    if visit is None or visit.due_date > TODAY:
        visit = (
            m.FollowUp.objects.filter(procedure__patient__study_id=sid).order_by("due_date").first()
        )
    date = min(visit.due_date, dt.date.today()).isoformat()
    path = tmp_path / "pain.json"
    path.write_text(json.dumps(_pain_bundle(sid, visit.timepoint, date, 4.5)))
    assert main(["import", "fhir", str(path)]) == 0
    assert "imported 1 pain scores of 1 patients" in capsys.readouterr().out
    visit.refresh_from_db()
    assert (visit.vas, visit.completed_on.isoformat(), visit.entered_via) == (4.5, date, "import")

    # an exported Bundle imports back onto the same visits (a round trip of the pain scores)
    bundle = _export(tmp_path, sid)
    before = sorted(
        m.FollowUp.objects.filter(vas__isnull=False).values_list("pk", "vas", "completed_on")
    )
    out = tmp_path / "again.json"
    out.write_text(json.dumps(bundle))
    assert main(["import", "fhir", str(out)]) == 0
    after = sorted(
        m.FollowUp.objects.filter(vas__isnull=False).values_list("pk", "vas", "completed_on")
    )
    assert after == before


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda b: b["entry"][1]["resource"].update(valueQuantity={"value": 12}),
            "entry 1 (Observation), valueQuantity.value: 12",
        ),
        (
            lambda b: b["entry"][1]["resource"].update(
                extension=[{"url": EXT_VISIT, "valueCoding": {"code": "2w"}}]
            ),
            "entry 1 (Observation), extension",
        ),
        (
            lambda b: b["entry"][0]["resource"].update(
                identifier=[{"system": STUDY_ID_SYSTEM, "value": "SW-999999"}]
            ),
            "study id 'SW-999999' is not in the registry",
        ),
        (
            lambda b: b["entry"][1]["resource"].update(valueQuantity={"value": "seven"}),
            "not valid FHIR: entry.1.resource",
        ),
    ],
)
def test_import_fhir_refuses_with_one_line_and_writes_nothing(
    demo, tmp_path, capsys, change, message
):
    from spinewatch.registry import models as m

    sid = demo.study_ids[0]
    good = _pain_bundle(sid, "pre", "2020-01-01", 5)
    bundle = copy.deepcopy(good)
    extra = copy.deepcopy(good["entry"][1])  # a good entry too: all or nothing
    extra["resource"]["extension"][0]["valueCoding"]["code"] = "3d"
    bundle["entry"].append(extra)
    change(bundle)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(bundle))
    before = m.FollowUp.objects.filter(vas__isnull=False).count()
    assert main(["import", "fhir", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "bad.json" in err[0] and message in err[0], err
    assert m.FollowUp.objects.filter(vas__isnull=False).count() == before


def test_import_fhir_refuses_two_values_for_one_visit(demo, tmp_path, capsys):
    bundle = _pain_bundle(demo.study_ids[0], "pre", "2020-01-01", 5)
    bundle["entry"].append(copy.deepcopy(bundle["entry"][1]))
    path = tmp_path / "twice.json"
    path.write_text(json.dumps(bundle))
    assert main(["import", "fhir", str(path)]) == 2
    assert "entry 2 (Observation): a second value for the 'pre' visit" in capsys.readouterr().err


def test_export_redcap_cli_and_import_back(demo, tmp_path, capsys):
    from spinewatch.audit.models import AuditEvent
    from spinewatch.registry import models as m

    assert main(["export", "redcap", str(tmp_path / "rc")]) == 0
    printed = capsys.readouterr().out.split()
    assert [p.rsplit("/", 1)[1] for p in printed] == [
        "data_dictionary.csv",
        "events.csv",
        "instrument_event_mapping.csv",
        "records.csv",
    ]
    assert AuditEvent.objects.filter(action="export", detail__export="redcap").exists()
    n = m.FollowUp.objects.filter(vas__isnull=False).count()
    m.Patient.objects.all().delete()
    assert (
        main(
            ["import", "redcap", str(tmp_path / "rc" / "records.csv"), "--index-date", "2024-01-01"]
        )
        == 0
    )
    assert m.FollowUp.objects.filter(vas__isnull=False).count() == n
    assert main(["import", "redcap", str(tmp_path / "rc" / "records.csv")]) == 2
    assert "already has procedures" in capsys.readouterr().err


def test_outcomes_results_cli_writes_the_files(demo, tmp_path, capsys):
    assert main(["outcomes", "results", str(tmp_path / "res"), "--diagnosis", "myeloma"]) == 0
    printed = capsys.readouterr().out.split()
    assert any(p.endswith("table1_baseline.csv") for p in printed)
    assert any(p.endswith("survival.svg") for p in printed)
    table1 = (tmp_path / "res" / "table1_baseline.csv").read_text()
    assert "Diagnosis,myeloma" in table1 and "metastasis" not in table1
    assert main(["outcomes", "results", str(tmp_path / "none"), "--from", "2099-01-01"]) == 2
    assert "no performed procedure" in capsys.readouterr().err


def test_import_sizes_are_checked_before_reading(tmp_path, capsys, monkeypatch):
    import spinewatch.outcomes.fhir as fhir
    import spinewatch.outcomes.redcap as redcap

    monkeypatch.setattr(fhir, "MAX_BUNDLE_BYTES", 10)
    monkeypatch.setattr(redcap, "MAX_RECORDS_BYTES", 10)
    big = tmp_path / "big.json"
    big.write_text('{"resourceType": "Bundle", "type": "collection"}')
    assert main(["import", "fhir", str(big)]) == 2
    assert "expected a Bundle of at most 10 bytes" in capsys.readouterr().err
    records = tmp_path / "records.csv"
    records.write_text("record_id,redcap_event_name\n")
    assert main(["import", "redcap", str(records)]) == 2
    assert "expected a records file of at most 10 bytes" in capsys.readouterr().err
    assert main(["import", "fhir", str(tmp_path / "missing.json")]) == 2
