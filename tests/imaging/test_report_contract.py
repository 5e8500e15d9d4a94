"""The report's two-way JSON contract: ``SpineReport.to_json_dict`` / ``from_json_dict``.

Every reader of a report (compare, render, batch, the registry, the pages) reads it through
``SpineReport.from_json_dict``; a report read and written back must be the report that was read
-- for reports the analysis writes today (phantoms with fractures, lesions and cement; a label
map alone; a real CT), for version 1 reports as stored in existing registries, and for the
partial documents the tests and older writers produce.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from typing import Any

import pytest

from spinewatch.core.collapse_risk import CollapseRisk, ConfidenceClass
from spinewatch.core.errors import InputError
from spinewatch.core.genant import DeformityType, GenantGrade
from spinewatch.imaging.analysis import analyze, analyze_files
from spinewatch.imaging.compare import apply_comparison, compare_reports
from spinewatch.imaging.phantom import LesionSpec, PhantomSpec, make_spine_phantom
from spinewatch.imaging.report import (
    READABLE_VERSIONS,
    REPORT_VERSION,
    ReportFormatError,
    ReportVersionError,
    SpineReport,
)


def _round_trip(data: dict[str, Any]) -> None:
    report = SpineReport.from_json_dict(copy.deepcopy(data))
    again = report.to_json_dict()
    assert again == data
    # key order too: the file written back reads like the file read
    assert json.dumps(again) == json.dumps(data)
    assert SpineReport.from_json_dict(again) == report


@pytest.fixture(scope="module")
def phantom_reports() -> dict[str, dict[str, Any]]:
    spec = PhantomSpec(
        levels=("T12", "L1", "L2", "L3"),
        spacing_mm=(1.5, 1.5, 1.5),
        deformities={"L1": ("wedge", 30.0)},
        lesions={"L2": (LesionSpec(6.0, (0.0, -5.0, 0.0)),)},
        cement=("L3",),
        seed=3,
    )
    ph = make_spine_phantom(spec)
    with_ct = analyze(ph.ct, ph.labels, convention="totalsegmentator").to_json_dict()
    labels_only = analyze(None, ph.labels, convention="totalsegmentator").to_json_dict()
    return {"ct": with_ct, "labels_only": labels_only}


def test_phantom_reports_round_trip(phantom_reports: dict[str, dict[str, Any]]) -> None:
    ct = phantom_reports["ct"]
    by_level = {v["level"]: v for v in ct["vertebrae"]}
    # the phantom exercises every finding: a fracture, a lesion, cement
    assert by_level["L1"]["genant_grade"] >= 2
    assert by_level["L2"]["lytic_volume_ml"] > 0.2
    assert by_level["L3"]["cement_present"] is True
    for data in phantom_reports.values():
        _round_trip(data)


def test_typed_findings_of_a_phantom(phantom_reports: dict[str, dict[str, Any]]) -> None:
    report = SpineReport.from_json_dict(phantom_reports["ct"])
    l1, l2 = report.vertebra("L1"), report.vertebra("L2")
    assert l1.genant.grade is GenantGrade(phantom_reports["ct"]["vertebrae"][1]["genant_grade"])
    assert l1.genant.deformity is DeformityType.WEDGE
    assert l1.collapse_risk is CollapseRisk.HIGH
    assert l2.lesions.volume_ml == phantom_reports["ct"]["vertebrae"][2]["lytic_volume_ml"]
    assert isinstance(l2.confidence.confidence, ConfidenceClass)
    assert report.scan.acquisition is not None and report.version == REPORT_VERSION


def test_compared_reports_round_trip(phantom_reports: dict[str, dict[str, Any]]) -> None:
    report = SpineReport.from_json_dict(phantom_reports["ct"])
    compared = apply_comparison(report, compare_reports(report, report))
    data = compared.to_json_dict()
    assert data["scan"]["compared_with"]["source"] == "prior report"
    _round_trip(data)


@pytest.mark.shared_data
def test_real_scan_reports_round_trip(shared_file) -> None:
    ct = shared_file("ct/tptbox-ct/sub-ct_label-22_ct.nii.gz")
    seg = shared_file("ct/tptbox-ct/sub-ct_seg-vert_label-22_msk.nii.gz")
    data = analyze_files(ct, seg).to_json_dict()
    assert [v["level"] for v in data["vertebrae"]] == ["L2", "L3", "L4"]
    _round_trip(data)


VERSION_1 = {
    "scan": {
        "ct": "ct.nii.gz",
        "labels": "seg.nii.gz",
        "labels_convention": "totalsegmentator",
        "shape": [120, 100, 110],
        "spacing_mm": [1.0, 1.0, 2.0],
        "orientation": "RAS",
        "series_uid": None,
        "spinewatch_version": "0.3.0",
        "analysed_at": "2024-02-01T09:00:00+00:00",
    },
    "vertebrae": [
        {
            "level": "L1",
            "label": 31,
            "body_centroid_mm": [1.0, -20.5, 100.0],
            "body_volume_ml": 25.4,
            "frame": {"superior": [0.0, 0.0, 1.0], "anterior": [0.0, 1.0, 0.0]},
            "height_anterior_mm": 18.2,
            "height_middle_mm": 20.1,
            "height_posterior_mm": 24.0,
            "reference_height_mm": 24.5,
            "genant_grade": 2,
            "deformity": "wedge",
            "height_loss_pct": 24.2,
            "truncated": False,
            "trabecular_hu_median": 95.0,
            "trabecular_hu_mean": 97.0,
            "erosion_mm": 4.0,
            "density_flags": ["osteoporosis_hu_le_110"],
            "lytic_volume_ml": 0.0,
            "lytic_fraction": 0.0,
            "n_lesions": 0,
            "largest_lesion_ml": 0.0,
            "posterior_wall_involved": False,
            "pedicle_left_involved": False,
            "pedicle_right_involved": False,
            "cement_volume_ml": 0.0,
            "cement_present": False,
            "collapse_risk": "high",
            "reasons": ["Genant grade 2 wedge deformity"],
            "sins_imaging": {
                "location": "junctional",
                "bone_lesion": "blastic",
                "collapse": "under_50_pct",
                "posterolateral": "none",
                "points": 5,
                "possible_total_range": [5, 12],
            },
            "quality_flags": [],
        }
    ],
}

#: Shapes the tests and older writers store: a registry fixture, a comparison fixture, the
#: fuzzer's seed with keys this reader does not know.
PARTIAL = [
    {
        "scan": {"series_uid": "1.2.3.4", "analysed_at": "2024-05-01T10:00:00+00:00"},
        "vertebrae": [
            {
                "level": "L1",
                "genant_grade": 2,
                "collapse_risk": "high",
                "sins_imaging": {"location": "junctional", "points": 8},
            }
        ],
    },
    {"scan": {"labels": "a.nii.gz"}, "vertebrae": [{"level": "T12", "lytic_volume_ml": 1.2}]},
    {
        "report_version": 2,
        "scan": {"modality": "MR", "source": "pacs", "study_date": "2024-03-01"},
        "vertebrae": [
            {
                "level": "L2",
                "pedicles_involved": [],
                "sins_imaging": {"points": 3, "components": {}},
            }
        ],
        "comparison": {"levels": []},
    },
]


def test_version_1_reports_are_read_and_written_back_as_version_1() -> None:
    _round_trip(VERSION_1)
    report = SpineReport.from_json_dict(VERSION_1)
    assert report.version == 1 and report.scan.acquisition is None and report.scan.modality is None
    l1 = report.vertebra("L1")
    assert l1.risk.sins_imaging is not None and l1.risk.sins_imaging.points == 5
    assert l1.change.treat_signal is None and l1.confidence.confidence is None


def test_comparing_a_version_1_report_adds_the_comparison_keys() -> None:
    report = SpineReport.from_json_dict(VERSION_1)
    data = apply_comparison(report, compare_reports(report, report)).to_json_dict()
    l1 = data["vertebrae"][0]
    assert (l1["treat_signal"], l1["change_flags"]) == (False, [])
    assert data["scan"]["compared_with"]["interval_days"] is None


@pytest.mark.parametrize("data", PARTIAL, ids=["registry", "compare", "unknown_keys"])
def test_partial_reports_round_trip_with_unknown_keys_kept(data: dict[str, Any]) -> None:
    _round_trip(data)


@pytest.mark.parametrize("version", [3, 99, "2", True, None, 0])
def test_other_versions_are_refused_naming_the_version(version: object) -> None:
    data = {"report_version": version, "scan": {}, "vertebrae": []}
    with pytest.raises(ReportVersionError, match="report_version") as info:
        SpineReport.from_json_dict(data, source="old.json")
    assert info.value.version == version and info.value.field == "report_version"
    assert "old.json" in str(info.value) and isinstance(info.value, InputError)
    assert READABLE_VERSIONS == (1, 2)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"lytic_fraction": 1.5}, "vertebrae[0].lytic_fraction"),
        ({"height_anterior_mm": -1.0}, "vertebrae[0].height_anterior_mm"),
        ({"genant_grade": 4}, "vertebrae[0].genant_grade"),
        ({"collapse_risk": "extreme"}, "vertebrae[0].collapse_risk"),
        ({"sins_imaging": {"points": 30}}, "vertebrae[0].sins_imaging.points"),
        ({"frame": {"superior": [0, 0, 1]}}, "vertebrae[0].frame"),
        ({"reasons": [1]}, "vertebrae[0].reasons"),
    ],
)
def test_a_refused_value_names_its_field(change: dict[str, Any], field: str) -> None:
    data = {"scan": {}, "vertebrae": [{"level": "L1", **change}]}
    with pytest.raises(ReportFormatError) as info:
        SpineReport.from_json_dict(data, source="r.json")
    assert info.value.field == field
    assert str(info.value).startswith(f"r.json: {field}")


def test_reading_a_report_in_the_registry_pulls_in_no_scipy() -> None:
    """The registry reads reports (and their CollapseRisk) without the analysis' scipy code."""
    code = (
        "import sys, django\n"
        "django.setup()\n"
        "import spinewatch.registry.models, spinewatch.registry.services.imaging\n"
        "from spinewatch.imaging.report import SpineReport\n"
        "SpineReport.from_json_dict({'scan': {}, 'vertebrae': [{'level': 'L1'}]})\n"
        "print(sorted(m for m in ('scipy', 'spinewatch.imaging.risk') if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "spinewatch.web.settings"},
    ).stdout.strip()
    assert out == "[]"


def test_the_report_contract_imports_no_numpy() -> None:
    code = (
        "import sys, spinewatch.imaging.report\n"
        "print(sorted(m for m in ('numpy', 'scipy', 'django') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    ).stdout.strip()
    assert out == "[]"
