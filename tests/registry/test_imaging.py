"""add_imaging_study / store_analysis (report -> findings, replaced atomically) / decisions."""

from __future__ import annotations

import copy
import datetime as dt

import pytest

from spinewatch.registry import models as m
from spinewatch.registry.services import (
    RegistryError,
    StaleEditError,
    add_imaging_study,
    set_finding_decision,
    store_analysis,
)

pytestmark = pytest.mark.django_db


def _vertebra(name, **kw):
    v = {
        "level": name,
        "label": 31,
        "body_centroid_mm": [1.0, -20.5, 100.0],
        "height_anterior_mm": 18.2,
        "height_middle_mm": 20.1,
        "height_posterior_mm": 24.0,
        "reference_height_mm": 24.5,
        "genant_grade": 2,
        "deformity": "wedge",
        "height_loss_pct": 24.2,
        "truncated": False,
        "trabecular_hu_median": 95.0,
        "lytic_volume_ml": 2.35,
        "lytic_fraction": 0.21,
        "posterior_wall_involved": True,
        "pedicle_left_involved": False,
        "pedicle_right_involved": None,
        "collapse_risk": "high",
        "reasons": ["lytic 21% of body", "posterior wall"],
        "sins_imaging": {"location": "junctional", "points": 8, "possible_total_range": [8, 15]},
    }
    v.update(kw)
    return v


def _report(*vertebrae, series="1.2.3.4"):
    return {
        "scan": {"series_uid": series, "analysed_at": "2024-05-01T10:00:00+00:00"},
        "vertebrae": list(vertebrae),
    }


def test_study_with_report_creates_findings(patient):
    report = _report(
        _vertebra("T12", genant_grade=0, deformity="none", collapse_risk="low"), _vertebra("L1")
    )
    study = add_imaging_study(
        patient=patient,
        study_date=dt.date(2024, 5, 1),
        modality="ct",
        series_instance_uid="1.2.3.4",
        report=report,
    )
    assert study.report == report
    assert study.analysed_at == dt.datetime(2024, 5, 1, 10, tzinfo=dt.UTC)
    f = study.findings.get(level="L1")
    assert (f.genant_grade, f.deformity, f.lytic_fraction, f.collapse_risk) == (
        2,
        "wedge",
        0.21,
        "high",
    )
    assert (f.height_anterior_mm, f.body_centroid_mm, f.sins_imaging_points) == (
        18.2,
        [1.0, -20.5, 100.0],
        8,
    )
    assert (f.posterior_wall_involved, f.pedicle_right_involved, f.decision) == (True, None, "none")
    assert f.reasons == ["lytic 21% of body", "posterior wall"]


def test_study_without_report(patient):
    s = add_imaging_study(patient=patient, study_date=dt.date(2024, 1, 1), modality="mr")
    assert s.report is None and s.findings.count() == 0 and s.version == 1


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"level": "L9"}, "L9"),
        ({"lytic_fraction": 1.5}, r"vertebrae\[0\].lytic_fraction: expected .* \[0, 1\] .*got 1.5"),
        ({"height_anterior_mm": "18"}, "height_anterior_mm"),
        ({"genant_grade": 5}, "genant_grade"),
        ({"deformity": "twisted"}, "twisted"),
        ({"collapse_risk": "extreme"}, "extreme"),
        ({"reasons": "lytic"}, "reasons"),
        ({"truncated": "no"}, "truncated"),
        ({"body_centroid_mm": [1, 2]}, "body_centroid_mm"),
        ({"height_middle_mm": float("nan")}, "JSON"),
        (
            {"treat_signal": "yes"},
            r"vertebrae\[0\].treat_signal: expected true, false or null, got 'yes'",
        ),
        (
            {"treat_signal_reasons": "grew"},
            "treat_signal_reasons: expected a list of strings, got 'grew'",
        ),
        (
            {"confidence": "certain"},
            "confidence: expected one of 'high', 'medium', 'low', got 'certain'",
        ),
        ({"confidence_reasons": [1]}, "confidence_reasons"),
    ],
)
def test_bad_report_refused_and_nothing_written(patient, change, match):
    with pytest.raises(RegistryError, match=match):
        add_imaging_study(
            patient=patient,
            study_date=dt.date(2024, 5, 1),
            report=_report(_vertebra("L1", **change)),
        )
    assert not m.ImagingStudy.objects.exists()


def test_duplicate_level_and_wrong_series_refused(patient):
    with pytest.raises(RegistryError, match=r"vertebrae\[1\].level: 'L1' appears twice"):
        add_imaging_study(
            patient=patient,
            study_date=dt.date(2024, 5, 1),
            report=_report(_vertebra("L1"), _vertebra("l1")),
        )
    with pytest.raises(RegistryError, match="series"):
        add_imaging_study(
            patient=patient,
            study_date=dt.date(2024, 5, 1),
            series_instance_uid="9.9",
            report=_report(_vertebra("L1")),
        )
    assert not m.ImagingStudy.objects.exists()


def test_reanalysis_replaces_findings_and_keeps_decisions(patient):
    study = add_imaging_study(
        patient=patient,
        study_date=dt.date(2024, 5, 1),
        report=_report(_vertebra("T12"), _vertebra("L1")),
    )
    l1 = study.findings.get(level="L1")
    l1 = set_finding_decision(finding=l1, expected_version=1, decision="treat", note="next week")
    assert (l1.decision, l1.version) == ("treat", 2)
    new = _report(_vertebra("L1", lytic_fraction=0.3), _vertebra("L2"))
    study = store_analysis(study=study, expected_version=study.version, report=new)
    assert sorted(study.findings.values_list("level", flat=True)) == ["L1", "L2"]
    l1 = study.findings.get(level="L1")
    assert (l1.lytic_fraction, l1.decision, l1.decision_note) == (0.3, "treat", "next week")
    assert study.report == new


def test_bad_reanalysis_keeps_old_findings(patient):
    study = add_imaging_study(
        patient=patient, study_date=dt.date(2024, 5, 1), report=_report(_vertebra("L1"))
    )
    bad = _report(_vertebra("L1"), _vertebra("L2", lytic_volume_ml=-1))
    with pytest.raises(RegistryError, match="lytic_volume_ml"):
        store_analysis(study=study, expected_version=study.version, report=bad)
    assert list(study.findings.values_list("level", flat=True)) == ["L1"]
    with pytest.raises(StaleEditError):
        store_analysis(study=study, expected_version=study.version + 5, report=_report())


def test_decision_validation_and_stale(patient):
    study = add_imaging_study(
        patient=patient,
        study_date=dt.date(2024, 5, 1),
        report=_report(copy.deepcopy(_vertebra("L1"))),
    )
    f = study.findings.get()
    with pytest.raises(RegistryError, match="operate"):
        set_finding_decision(finding=f, expected_version=1, decision="operate")
    set_finding_decision(finding=f, expected_version=1, decision="watch")
    with pytest.raises(StaleEditError, match="finding L1"):
        set_finding_decision(finding=f, expected_version=1, decision="treat")


def test_study_field_validation(patient):
    with pytest.raises(RegistryError, match="modality"):
        add_imaging_study(patient=patient, study_date=dt.date(2024, 5, 1), modality="pet")
    with pytest.raises(RegistryError, match="study_date"):
        add_imaging_study(patient=patient, study_date=None)


def _with_modality(report, modality):
    out = copy.deepcopy(report)
    out["scan"]["modality"] = modality
    return out


def test_the_report_modality_sets_the_study_modality(patient):
    """The analysis reads the modality from the file; the study follows it (issue 7)."""
    study = add_imaging_study(patient=patient, study_date=dt.date(2024, 5, 1), modality="mr")
    stored = store_analysis(
        study=study,
        expected_version=study.version,
        report=_with_modality(_report(_vertebra("L1")), "CT"),
    )
    assert stored.modality == "ct" and stored.version == study.version + 1
    mr = add_imaging_study(
        patient=patient,
        study_date=dt.date(2024, 6, 1),
        report=_with_modality(_report(_vertebra("L1"), series="5.6"), "MR"),
    )
    assert mr.modality == "mr"  # taken from the report when not given
    old = add_imaging_study(patient=patient, study_date=dt.date(2024, 7, 1), modality="mr")
    v1 = store_analysis(study=old, expected_version=1, report=_report(_vertebra("L1"), series=""))
    assert v1.modality == "mr"  # a version 1 report does not record it: left as registered


def test_a_report_modality_that_contradicts_or_is_unknown_is_refused(patient):
    with pytest.raises(RegistryError, match=r"report scan.modality 'MR': the study is registered"):
        add_imaging_study(
            patient=patient,
            study_date=dt.date(2024, 5, 1),
            modality="ct",
            report=_with_modality(_report(_vertebra("L1")), "MR"),
        )
    with pytest.raises(
        RegistryError, match=r"report: scan.modality: expected one of 'CT', 'MR', got 'PT'"
    ):
        add_imaging_study(
            patient=patient,
            study_date=dt.date(2024, 5, 1),
            report=_with_modality(_report(_vertebra("L1")), "PT"),
        )
    assert not m.ImagingStudy.objects.exists()


def test_not_assessable_signal_and_confidence_are_stored(patient):
    report = _report(
        _vertebra(
            "T12",
            genant_grade=None,
            deformity=None,
            truncated=True,
            collapse_risk="not_assessable",
            reasons=["not assessable: heights not measured (vertebra cut by the scan edge)"],
            confidence="low",
            confidence_reasons=["vertebra cut by the scan edge (partial body, no heights)"],
            treat_signal=None,
            treat_signal_reasons=["not on the prior scan: no comparison"],
        ),
        _vertebra(
            "L1",
            treat_signal=True,
            treat_signal_reasons=["new lytic lesion: 2.35 ml (prior 0.00 ml)"],
            confidence="high",
            confidence_reasons=["no quality concern"],
        ),
    )
    study = add_imaging_study(patient=patient, study_date=dt.date(2024, 5, 1), report=report)
    t12, l1 = study.findings.get(level="T12"), study.findings.get(level="L1")
    assert (t12.collapse_risk, t12.confidence, t12.treat_signal) == ("not_assessable", "low", None)
    assert t12.get_collapse_risk_display() == "Not assessable"
    assert t12.confidence_reasons == ["vertebra cut by the scan edge (partial body, no heights)"]
    assert (l1.treat_signal, l1.confidence) == (True, "high")
    assert l1.treat_signal_reasons == ["new lytic lesion: 2.35 ml (prior 0.00 ml)"]


def test_a_report_written_before_the_new_keys_still_stores(patient):
    study = add_imaging_study(
        patient=patient, study_date=dt.date(2024, 5, 1), report=_report(_vertebra("L1"))
    )
    f = study.findings.get()
    assert (f.treat_signal, f.treat_signal_reasons, f.confidence, f.confidence_reasons) == (
        None,
        [],
        None,
        [],
    )


def test_the_database_refuses_an_unknown_risk_or_confidence(patient):
    from django.db import IntegrityError, transaction

    study = add_imaging_study(
        patient=patient, study_date=dt.date(2024, 5, 1), report=_report(_vertebra("L1"))
    )
    for field, value in (("collapse_risk", "unknowable"), ("confidence", "certain")):
        with pytest.raises(IntegrityError), transaction.atomic():
            m.VertebraFinding.objects.filter(study=study).update(**{field: value})
    m.VertebraFinding.objects.filter(study=study).update(collapse_risk="not_assessable")
