"""The analysis with the acquisition decided at input: an MRI gives geometry only, never HU; a
contrast CT records its phase; the types keep an MRI's signal away from every HU measurement.

Real data: the TPTBox T2 MRI with its vertebra mask (the SPINEPS discs/endplates, ids >= 100,
are dropped in code: reading that convention is another change) and the CTA crop with its binary
T12 mask relabelled as TotalSegmentator T12.
"""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from spinewatch.core.acquisition import (
    MRI_NOT_ASSESSED,
    Acquisition,
    AcquisitionError,
    ContrastPhase,
    Modality,
)
from spinewatch.imaging.analysis import analyze, analyze_files
from spinewatch.imaging.io import load_study, requested_acquisition
from spinewatch.imaging.phantom import LesionSpec, PhantomSpec, make_spine_phantom
from spinewatch.imaging.render import curved_sagittal, render_sagittal
from spinewatch.imaging.report import NO_IMAGE_NOT_ASSESSED, SpineReport, format_text
from spinewatch.imaging.volume import CtVolume, MrVolume

HU_FIELDS = (
    "trabecular_hu_median",
    "trabecular_hu_mean",
    "erosion_mm",
    "lytic_volume_ml",
    "lytic_fraction",
    "n_lesions",
    "largest_lesion_ml",
    "posterior_wall_involved",
    "pedicle_left_involved",
    "pedicle_right_involved",
    "cement_volume_ml",
    "cement_present",
)


def _phantom():
    return make_spine_phantom(
        PhantomSpec(
            levels=("T12", "L1", "L2"),
            spacing_mm=(1.5, 1.5, 1.5),
            lesions={"L1": (LesionSpec(8.0),)},
        )
    )


def _as_mri(ct: CtVolume) -> MrVolume:
    """The phantom's voxels relabelled as MRI signal: the same numbers, another meaning."""
    return MrVolume(
        signal=ct.hu, grid=ct.grid, source="phantom-as-mri", acquisition=Acquisition(Modality.MR)
    )


def test_the_image_types_cannot_be_confused() -> None:
    ct = _phantom().ct
    with pytest.raises(AcquisitionError, match="a CtVolume holds Hounsfield units"):
        CtVolume(hu=ct.hu, grid=ct.grid, source="x", acquisition=Acquisition(Modality.MR))
    with pytest.raises(AcquisitionError, match="an MrVolume holds MRI signal"):
        MrVolume(signal=ct.hu, grid=ct.grid, source="x", acquisition=Acquisition(Modality.CT))
    assert not hasattr(_as_mri(ct), "hu")


def test_the_same_voxels_as_an_mri_give_geometry_and_no_hu_finding() -> None:
    phantom = _phantom()
    as_ct = analyze(phantom.ct, phantom.labels, convention="totalsegmentator").to_json_dict()
    as_mri = analyze(
        _as_mri(phantom.ct), phantom.labels, convention="totalsegmentator"
    ).to_json_dict()
    assert as_ct["vertebrae"][1]["lytic_volume_ml"] > 0.5  # the CT does see the lesion
    assert as_mri["scan"]["modality"] == "MR"
    for ct_v, mr_v in zip(as_ct["vertebrae"], as_mri["vertebrae"], strict=True):
        assert mr_v["body_centroid_mm"] == ct_v["body_centroid_mm"]
        assert mr_v["height_anterior_mm"] == ct_v["height_anterior_mm"]
        assert mr_v["genant_grade"] == ct_v["genant_grade"]
        assert all(mr_v[k] is None for k in HU_FIELDS), mr_v
        assert mr_v["density_flags"] == []
        assert mr_v["not_assessed"] == [MRI_NOT_ASSESSED]
        assert ct_v["not_assessed"] == []


def test_an_acquisition_cannot_turn_an_mri_into_a_ct() -> None:
    phantom = _phantom()
    with pytest.raises(
        AcquisitionError, match="the image is MRI but the acquisition given says CT"
    ):
        analyze(
            _as_mri(phantom.ct),
            phantom.labels,
            convention="totalsegmentator",
            acquisition=Acquisition(Modality.CT, "user"),
        )


def test_labels_only_say_why_nothing_was_measured_and_keep_what_the_user_said() -> None:
    phantom = _phantom()
    report = analyze(None, phantom.labels, convention="totalsegmentator").to_json_dict()
    assert all(v["not_assessed"] == [NO_IMAGE_NOT_ASSESSED] for v in report["vertebrae"])
    said = analyze(
        None,
        phantom.labels,
        convention="totalsegmentator",
        acquisition=requested_acquisition("mr"),
    ).to_json_dict()
    assert (said["scan"]["modality"], said["scan"]["modality_source"]) == ("MR", "user")
    assert all(v["not_assessed"] == [MRI_NOT_ASSESSED] for v in said["vertebrae"])


def test_an_mri_is_drawn_as_the_picture_background(tmp_path: Path) -> None:
    phantom = _phantom()
    mri = _as_mri(phantom.ct)
    analysis = analyze(mri, phantom.labels, convention="totalsegmentator")
    reformat = curved_sagittal(mri, phantom.labels, analysis)
    assert reformat.hu is None and reformat.signal is not None
    assert np.nanmax(reformat.signal) > 500  # the bone is there, as signal
    png = render_sagittal(mri, phantom.labels, analysis, tmp_path / "mri.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# -- real scans ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tptbox_mri(shared_file, tmp_path_factory) -> tuple[Path, Path]:
    mri = shared_file("mri/tptbox-mri/sub-mri_label-6_T2w.nii.gz")
    seg = nib.load(shared_file("mri/tptbox-mri/sub-mri_seg-vert_label-6_msk.nii.gz"))
    vertebrae = np.asarray(seg.dataobj)
    vertebrae = np.where(vertebrae < 100, vertebrae, 0).astype(np.uint8)  # drop discs/endplates
    path = tmp_path_factory.mktemp("mri") / "vertebrae.nii.gz"
    nib.save(nib.Nifti1Image(vertebrae, seg.affine), path)
    return mri, path


@pytest.mark.shared_data
def test_the_real_t2_mri_gives_no_hu_anywhere_and_says_why(tptbox_mri, tmp_path) -> None:
    mri, labels = tptbox_mri
    # its ids (5-7, VerSe numbering: C5-C7) do not fit the lumbar-sized vertebrae, so the
    # levels are named by the user (the label-map reading refuses the ids as they are)
    report = analyze_files(mri, labels, convention="verse", lowest_level="L2").to_json_dict()
    scan = report["scan"]
    assert (scan["modality"], scan["modality_source"]) == ("MR", "detected")
    assert "0 of 3 labelled structures with a cortical-bone rim" in scan["modality_evidence"]
    assert scan["density_offset_hu"] == 0.0
    assert [v["level"] for v in report["vertebrae"]] == ["T12", "L1", "L2"]
    for v in report["vertebrae"]:
        assert all(v[k] is None for k in HU_FIELDS), v["level"]
        assert v["density_flags"] == []
        assert v["not_assessed"] == [MRI_NOT_ASSESSED]
        assert v["body_centroid_mm"] is not None
    text = json.dumps(report)
    assert "osteopor" not in text.lower()  # no density flag of any kind
    assert format_text(SpineReport.from_json_dict(report)).startswith("MRI: ")
    image, aligned = load_study(mri, labels, convention="verse")
    assert isinstance(image, MrVolume)
    png = render_sagittal(
        image, aligned, SpineReport.from_json_dict(report), tmp_path / "spine.png"
    )
    assert png.stat().st_size > 10_000


@pytest.mark.shared_data
def test_the_real_cta_records_contrast_detected_with_its_offset(shared_file) -> None:
    cta = "ct/totalseg-aorta-cta/"
    ct, labels = load_study(
        shared_file(f"{cta}ct_cropped.nii.gz"), shared_file(f"{cta}vertebrae_T12.nii.gz")
    )
    from spinewatch.imaging.volume import LabelVolume

    t12 = LabelVolume(np.where(labels.labels > 0, 32, 0).astype(np.uint8), labels.grid, "T12")
    report = analyze(ct, t12, convention="totalsegmentator").to_json_dict()
    scan = report["scan"]
    assert (scan["modality"], scan["modality_source"]) == ("CT", "detected")
    assert scan["contrast_phase"] == ContrastPhase.UNKNOWN_PHASE.value
    assert scan["contrast_source"] == "detected"
    assert scan["density_offset_hu"] == 20.0
    assert "tubular blood-pool region" in scan["contrast_evidence"]
    assert report["vertebrae"][0]["trabecular_hu_median"] is not None  # still a CT: measured


@pytest.mark.shared_data
def test_a_stated_native_phase_is_not_second_guessed(shared_file) -> None:
    cta = "ct/totalseg-aorta-cta/"
    ct, _ = load_study(
        shared_file(f"{cta}ct_cropped.nii.gz"),
        shared_file(f"{cta}vertebrae_T12.nii.gz"),
        contrast_phase="native",
    )
    assert (ct.acquisition.contrast_phase, ct.acquisition.contrast_source) == (
        ContrastPhase.NATIVE,
        "user",
    )
