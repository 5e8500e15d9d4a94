"""DICOM results (SR TID 1500, SEG, secondary capture) built from a report + CT + label map.

Phantoms written as real DICOM CT series and the real TotalSegmentator example series (with a
synthetic lytic lesion inserted into its real L1... T12 background) are analysed, the objects
are built, written to disk and read back with highdicom AND with dcmtk (``dsrdump``,
``dcmdump``): what a PACS or another reader sees, not what our objects hold in memory.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import highdicom as hd
import numpy as np
import pytest
from pydicom.sr.codedict import codes

from _dicom_support import EXAMPLE_DICOM, EXAMPLE_LABELS, example_series_with_uids
from spinewatch.core.errors import InputError
from spinewatch.imaging.analysis import analyze
from spinewatch.imaging.dicom_export import (
    EmptySegmentationError,
    ReportContentError,
    SegReadError,
    SeriesIdentity,
    SourceMismatchError,
    build_lesion_seg,
    build_measurement_report,
    build_secondary_capture,
    build_vertebra_seg,
    labels_from_seg,
    level_code,
    read_headers,
    write_ct_series,
)
from spinewatch.imaging.dicom_export import codes as sw
from spinewatch.imaging.io import align_labels, load_ct, load_labels
from spinewatch.imaging.lesion_map import lytic_lesion_map
from spinewatch.imaging.phantom import LesionSpec, PhantomSpec, make_spine_phantom
from spinewatch.imaging.report import SpineReport

TS = "totalsegmentator"
LESION_RADIUS_MM = 8.0


def _dcmtk(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        import os

        if os.environ.get("SPINEWATCH_REQUIRE_PACS") == "1":
            pytest.fail(f"dcmtk's {tool} is not installed (apt-get install dcmtk)")
        pytest.skip(f"dcmtk's {tool} is not installed")
    return path


@pytest.fixture(scope="module")
def phantom_study(tmp_path_factory: pytest.TempPathFactory):
    """A T12-L2 phantom (T12 wedge 30 %, an 8 mm lytic lesion in L1) as a DICOM series."""
    phantom = make_spine_phantom(
        PhantomSpec(
            levels=("T12", "L1", "L2"),
            spacing_mm=(1.0, 1.0, 1.5),
            deformities={"T12": ("wedge", 30.0)},
            lesions={"L1": (LesionSpec(LESION_RADIUS_MM),)},
        )
    )
    folder = tmp_path_factory.mktemp("phantom-dicom")
    write_ct_series(phantom.ct, folder / "ct", SeriesIdentity(patient_id="H0001"))
    ct = load_ct(folder / "ct")
    labels = align_labels(phantom.labels, ct.grid)
    report = analyze(ct, labels, convention=TS).to_json_dict()
    return {
        "phantom": phantom,
        "folder": folder,
        "ct": ct,
        "labels": labels,
        "report": report,
        "headers": read_headers(folder / "ct"),
    }


def test_written_series_reads_back_as_the_phantom(phantom_study) -> None:
    phantom, ct = phantom_study["phantom"], phantom_study["ct"]
    np.testing.assert_allclose(ct.grid.affine, phantom.ct.grid.affine, atol=1e-3)
    np.testing.assert_array_equal(np.asarray(ct.hu), np.round(phantom.ct.hu).astype(np.int16))
    assert ct.meta["modality"] == "CT"


def test_level_codes_match_the_dicom_standard_dictionary() -> None:
    # Two independent sources: TotalSegmentator's mapping file and pydicom's PS3.16 dictionary.
    assert level_code("T12").code == codes.SCT.T12Vertebra
    assert level_code("L1").code == codes.SCT.L1Vertebra
    assert level_code("L1").code.value == "66794005"
    assert level_code("T12").code.value == "23215003"
    assert level_code("T13").code == codes.SCT.Vertebra  # no code of its own
    assert level_code("L6").code == codes.SCT.Vertebra
    with pytest.raises(InputError):
        level_code("L9")


def _groups(path: Path) -> dict[str, object]:
    sr = hd.sr.srread(path)
    return {g.tracking_identifier: g for g in sr.content.get_image_measurement_groups()}


def test_sr_has_one_group_per_vertebra_read_back_with_highdicom(phantom_study, tmp_path) -> None:
    report, headers = phantom_study["report"], phantom_study["headers"]
    sr = build_measurement_report(SpineReport.from_json_dict(report), headers, series_uid=hd.UID())
    sr.save_as(tmp_path / "sr.dcm")
    groups = _groups(tmp_path / "sr.dcm")
    assert list(groups) == ["SpineWatch T12", "SpineWatch L1", "SpineWatch L2"]
    t12 = groups["SpineWatch T12"]
    assert t12.finding_sites[0].value.value == "23215003"
    heights = {
        m.finding_sites[0].topographical_modifier.meaning: m.value
        for m in t12.get_measurements(name=codes.DCM.Height)
    }
    entry = report["vertebrae"][0]
    assert heights == {
        "Anterior": pytest.approx(entry["height_anterior_mm"]),
        "Central": pytest.approx(entry["height_middle_mm"]),
        "Posterior": pytest.approx(entry["height_posterior_mm"]),
    }
    evaluations = {e.name.value: e.value for e in t12.get_qualitative_evaluations()}
    assert evaluations[sw.GENANT_GRADE.value] == sw.GENANT_GRADE_VALUES[entry["genant_grade"]]
    assert evaluations[sw.GENANT_DEFORMITY.value].meaning == "Wedge deformity"
    assert evaluations[sw.COLLAPSE_RISK.value] == sw.COLLAPSE_RISK_VALUES[entry["collapse_risk"]]
    l1 = groups["SpineWatch L1"]
    (lytic,) = l1.get_measurements(name=sw.LYTIC_VOLUME)
    sphere_ml = 4 / 3 * np.pi * LESION_RADIUS_MM**3 / 1000
    assert lytic.value == pytest.approx(sphere_ml, rel=0.1)
    assert lytic.unit.value == "ml"
    (hu,) = l1.get_measurements(name=codes.DCM.AttenuationCoefficient)
    assert hu.unit == codes.UCUM.HounsfieldUnit
    # same study as the CT, and the CT series is the evidence
    assert sr.StudyInstanceUID == headers[0].StudyInstanceUID
    evidence = sr.CurrentRequestedProcedureEvidenceSequence[0]
    series = evidence.ReferencedSeriesSequence[0]
    assert series.SeriesInstanceUID == headers[0].SeriesInstanceUID
    assert len(series.ReferencedSOPSequence) == len(headers)


def test_sr_read_back_with_dsrdump(phantom_study, tmp_path) -> None:
    dsrdump = _dcmtk("dsrdump")
    sr = build_measurement_report(
        SpineReport.from_json_dict(phantom_study["report"]),
        phantom_study["headers"],
        series_uid=hd.UID(),
    )
    sr.save_as(tmp_path / "sr.dcm")
    out = subprocess.run(
        [dsrdump, "-Ec", str(tmp_path / "sr.dcm")], capture_output=True, text=True, check=True
    ).stdout
    assert "Comprehensive 3D SR" in out
    assert '(66794005,SCT,"L1 vertebra")' in out
    assert '(23215003,SCT,"T12 vertebra")' in out
    assert '(15508007,SCT,"High risk")' in out  # T12, grade 2 wedge
    assert "(mm,UCUM" in out and "(ml,UCUM" in out


def test_sr_tolerates_new_fields_and_null_values(phantom_study, tmp_path) -> None:
    report = {**phantom_study["report"]}
    vertebrae = [dict(v) for v in report["vertebrae"]]
    vertebrae[0]["collapse_risk"] = "not_assessable"
    vertebrae[1]["bone_age_years"] = 71  # a field added by a newer writer: kept, not coded
    vertebrae[2]["collapse_risk"] = None
    vertebrae[2]["height_anterior_mm"] = None
    report["vertebrae"] = vertebrae
    sr = build_measurement_report(
        SpineReport.from_json_dict(report), phantom_study["headers"], series_uid=hd.UID()
    )
    sr.save_as(tmp_path / "sr.dcm")
    groups = _groups(tmp_path / "sr.dcm")
    first = {e.name.value: e.value for e in groups["SpineWatch T12"].get_qualitative_evaluations()}
    assert first[sw.COLLAPSE_RISK.value] == codes.SCT.Indeterminate
    third = groups["SpineWatch L2"]
    assert sw.COLLAPSE_RISK.value not in {e.name.value for e in third.get_qualitative_evaluations()}
    assert len(third.get_measurements(name=codes.DCM.Height)) == 2


def test_sr_refuses_a_report_without_vertebrae(phantom_study) -> None:
    with pytest.raises(ReportContentError, match="vertebrae"):
        build_measurement_report(
            SpineReport.from_json_dict({"scan": {}, "vertebrae": []}),
            phantom_study["headers"],
            series_uid=hd.UID(),
        )


def test_vertebra_and_lesion_seg_read_back(phantom_study, tmp_path) -> None:
    ct, labels, headers = phantom_study["ct"], phantom_study["labels"], phantom_study["headers"]
    series = hd.UID()
    seg = build_vertebra_seg(labels.labels, ct.grid, headers, convention=TS, series_uid=series)
    seg.save_as(tmp_path / "vertebrae.dcm")
    lesions = lytic_lesion_map(ct, labels, convention=TS)
    lseg = build_lesion_seg(lesions, ct.grid, headers, convention=TS, series_uid=series)
    lseg.save_as(tmp_path / "lesions.dcm")

    back = hd.seg.segread(tmp_path / "vertebrae.dcm")
    labels_of = {back.get_segment_description(n).segment_label: n for n in back.segment_numbers}
    assert list(labels_of) == ["T12 vertebra", "L1 vertebra", "L2 vertebra"]
    l1 = back.get_segment_description(labels_of["L1 vertebra"])
    assert l1.segmented_property_type == codes.SCT.L1Vertebra
    # voxel counts per level through the file equal the label map's
    uids = [h.SOPInstanceUID for h in headers]
    pixels = back.get_pixels_by_source_instance(uids, combine_segments=True, relabel=True)
    ts_label = {"T12 vertebra": 32, "L1 vertebra": 31, "L2 vertebra": 30}
    for name, number in labels_of.items():
        assert int((pixels == number).sum()) == int((labels.labels == ts_label[name]).sum())
    assert back.StudyInstanceUID == headers[0].StudyInstanceUID

    lback = hd.seg.segread(tmp_path / "lesions.dcm")
    assert [lback.get_segment_description(n).segment_label for n in lback.segment_numbers] == [
        "Lytic lesion L1"
    ]
    description = lback.get_segment_description(1)
    assert description.segmented_property_type == codes.SCT.Lesion
    assert description.anatomic_regions[0] == codes.SCT.L1Vertebra
    lpix = lback.get_pixels_by_source_instance(uids, combine_segments=True)
    volume_ml = int((lpix > 0).sum()) * ct.grid.voxel_volume_ml
    sphere_ml = 4 / 3 * np.pi * LESION_RADIUS_MM**3 / 1000
    assert volume_ml == pytest.approx(sphere_ml, rel=0.15)


def test_seg_read_back_with_dcmdump(phantom_study, tmp_path) -> None:
    dcmdump = _dcmtk("dcmdump")
    ct, labels, headers = phantom_study["ct"], phantom_study["labels"], phantom_study["headers"]
    seg = build_vertebra_seg(labels.labels, ct.grid, headers, convention=TS, series_uid=hd.UID())
    seg.save_as(tmp_path / "vertebrae.dcm")
    out = subprocess.run(
        [dcmdump, str(tmp_path / "vertebrae.dcm")], capture_output=True, text=True, check=True
    ).stdout
    assert "=SegmentationStorage" in out
    assert "[L1 vertebra]" in out and "[66794005]" in out
    assert "(0062,0008) CS [AUTOMATIC]" in out


def test_lesion_seg_refuses_no_lesions(phantom_study) -> None:
    ct, headers = phantom_study["ct"], phantom_study["headers"]
    empty = np.zeros(ct.grid.shape, dtype=np.uint8)
    with pytest.raises(EmptySegmentationError):
        build_lesion_seg(empty, ct.grid, headers, convention=TS, series_uid=hd.UID())


def test_headers_of_another_grid_are_refused(phantom_study, tmp_path) -> None:
    other = make_spine_phantom(PhantomSpec(levels=("L1", "L2"), spacing_mm=(2.0, 2.0, 2.0)))
    write_ct_series(other.ct, tmp_path / "other", SeriesIdentity(patient_id="H2"))
    ct, labels = phantom_study["ct"], phantom_study["labels"]
    with pytest.raises(SourceMismatchError):
        build_vertebra_seg(
            labels.labels,
            ct.grid,
            read_headers(tmp_path / "other"),
            convention=TS,
            series_uid=hd.UID(),
        )


def test_secondary_capture_of_the_picture(phantom_study, tmp_path) -> None:
    from spinewatch.imaging.render import render_sagittal

    png = tmp_path / "spine.png"
    render_sagittal(
        phantom_study["ct"],
        phantom_study["labels"],
        SpineReport.from_json_dict(phantom_study["report"]),
        png,
        convention=TS,
    )
    sc = build_secondary_capture(png, phantom_study["headers"][0], series_uid=hd.UID())
    sc.save_as(tmp_path / "sc.dcm")
    back = hd.imread(tmp_path / "sc.dcm")
    assert back.StudyInstanceUID == phantom_study["headers"][0].StudyInstanceUID
    assert back.PhotometricInterpretation == "RGB"
    from PIL import Image

    with Image.open(png) as img:
        expected = np.asarray(img.convert("RGB"))
    np.testing.assert_array_equal(back.pixel_array, expected)
    with pytest.raises(InputError, match="cannot read"):
        build_secondary_capture(
            tmp_path / "missing.png", phantom_study["headers"][0], series_uid=hd.UID()
        )


@pytest.mark.shared_data
def test_real_example_series(shared_file, tmp_path) -> None:
    """The real Siemens series (JPEG 2000 lossless, UIDs added) with its TotalSegmentator map:
    SR groups for its two vertebrae, SEG voxel counts equal to the label map's, read back."""
    example = example_series_with_uids(shared_file(EXAMPLE_DICOM), tmp_path / "ct", patient_id="H7")
    ct = load_ct(example.directory)
    labels = align_labels(load_labels(shared_file(EXAMPLE_LABELS)), ct.grid)
    report = analyze(ct, labels, convention=TS)
    headers = read_headers(example.directory)
    sr = build_measurement_report(report, headers, series_uid=hd.UID())
    sr.save_as(tmp_path / "sr.dcm")
    groups = _groups(tmp_path / "sr.dcm")
    assert set(groups) == {"SpineWatch T11", "SpineWatch T12"}
    (hu,) = groups["SpineWatch T12"].get_measurements(name=codes.DCM.AttenuationCoefficient)
    assert hu.value == pytest.approx(report.vertebra("T12").density.median_hu)
    vseg = build_vertebra_seg(labels.labels, ct.grid, headers, convention=TS, series_uid=hd.UID())
    vseg.save_as(tmp_path / "vertebrae.dcm")
    back = hd.seg.segread(tmp_path / "vertebrae.dcm")
    names = [back.get_segment_description(n).segment_label for n in back.segment_numbers]
    assert names == ["T11 vertebra", "T12 vertebra"]
    uids = [h.SOPInstanceUID for h in headers]
    pixels = back.get_pixels_by_source_instance(uids, combine_segments=True, relabel=True)
    assert int((pixels == 2).sum()) == int((labels.labels == 32).sum())
    assert int((pixels == 1).sum()) == int((labels.labels == 33).sum())


def test_vertebra_seg_reads_back_as_a_verse_label_map(phantom_study, tmp_path) -> None:
    ct, labels, headers = phantom_study["ct"], phantom_study["labels"], phantom_study["headers"]
    seg = build_vertebra_seg(labels.labels, ct.grid, headers, convention=TS, series_uid=hd.UID())
    seg.save_as(tmp_path / "vertebrae.dcm")
    back = labels_from_seg(tmp_path / "vertebrae.dcm", ct.grid, headers)
    # TotalSegmentator 32/31/30 (T12/L1/L2) are VerSe 19/20/21
    for ts_value, verse_value in ((32, 19), (31, 20), (30, 21)):
        np.testing.assert_array_equal(back.labels == verse_value, labels.labels == ts_value)
    report = analyze(ct, back, convention="verse").to_json_dict()
    assert [v["level"] for v in report["vertebrae"]] == ["T12", "L1", "L2"]


def test_a_seg_without_vertebrae_is_refused(phantom_study, tmp_path) -> None:
    ct, labels, headers = phantom_study["ct"], phantom_study["labels"], phantom_study["headers"]
    lesions = lytic_lesion_map(ct, labels, convention=TS)
    build_lesion_seg(lesions, ct.grid, headers, convention=TS, series_uid=hd.UID()).save_as(
        tmp_path / "lesions.dcm"
    )
    with pytest.raises(SegReadError, match="no vertebra segment"):
        labels_from_seg(tmp_path / "lesions.dcm", ct.grid, headers)
    (tmp_path / "junk.dcm").write_bytes(b"not dicom")
    with pytest.raises(SegReadError, match="not a readable DICOM SEG"):
        labels_from_seg(tmp_path / "junk.dcm", ct.grid, headers)
