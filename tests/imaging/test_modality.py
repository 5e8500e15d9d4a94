"""spinewatch.imaging.modality: CT or MRI from the DICOM tag, the user or the voxel values.

Synthetic arrays check each rule and its refusal; every real scan in ../shared/data is
classified (all CTs -> CT, both MRIs -> MR, crops included); the phantoms are CT.
"""

from __future__ import annotations

import doctest

import nibabel as nib
import numpy as np
import pytest

from spinewatch.core.acquisition import AcquisitionError, Modality
from spinewatch.imaging import modality as modality_module
from spinewatch.imaging.io import load_image, load_study
from spinewatch.imaging.modality import (
    ModalityUndecidedError,
    decide_modality,
    detect_modality,
    value_figures,
    vertebra_figures,
)
from spinewatch.imaging.phantom import PhantomSpec, make_spine_phantom
from spinewatch.imaging.volume import CtVolume, MrVolume


def _rng() -> np.random.Generator:
    return np.random.default_rng(7)


def _torso_ct(shape=(40, 40, 30)) -> np.ndarray:
    """Air outside an elliptic body of fat, muscle and a bony core, in HU."""
    rng = _rng()
    i, j, _k = np.indices(shape)
    r = np.hypot((i - shape[0] / 2) / (shape[0] * 0.45), (j - shape[1] / 2) / (shape[1] * 0.4))
    hu = np.where(r < 1, 40.0, -1000.0)
    hu[(r > 0.8) & (r < 1)] = -100.0
    hu[r < 0.2] = 400.0
    return hu + rng.normal(0, 15, shape)


def _mri(shape=(40, 40, 30), scale=400.0) -> np.ndarray:
    """Non-negative signal: dark background, brighter tissues (arbitrary units)."""
    rng = _rng()
    i, j, _k = np.indices(shape)
    r = np.hypot((i - shape[0] / 2) / (shape[0] * 0.45), (j - shape[1] / 2) / (shape[1] * 0.4))
    signal = np.where(r < 1, 0.35, 0.02) * scale
    signal[r < 0.2] = 0.6 * scale
    return np.abs(signal + rng.normal(0, 0.02 * scale, shape))


def _masked_vertebra(rim: float, core: float, shape=(40, 40, 40)) -> np.ndarray:
    """A masked crop: a sphere (rim ``rim``, core ``core``) and exact zeros around it."""
    rng = _rng()
    i, j, k = np.indices(shape) - np.array(shape)[:, None, None, None] / 2
    r = np.sqrt(i**2 + j**2 + k**2)
    out = np.zeros(shape)
    out[r < 14] = core + rng.normal(0, 20, np.count_nonzero(r < 14))
    out[(r >= 12) & (r < 14)] = rim
    return out


def test_a_ct_with_air_is_ct_and_the_evidence_gives_the_figures() -> None:
    decision = detect_modality(_torso_ct(), where="torso.nii.gz")
    assert decision.modality is Modality.CT and decision.source == "detected"
    assert "air/lung" in decision.evidence and "% at -1100..-500" in decision.evidence


def test_a_ct_crop_without_air_is_told_by_its_fat() -> None:
    hu = _torso_ct()
    crop = hu[12:28, 12:28, :]  # inside the body: fat ring cut, no air
    crop[:3] = -100.0  # paraspinal fat at one side
    decision = detect_modality(crop, where="crop")
    assert decision.modality is Modality.CT
    assert "fat and soft tissue" in decision.evidence


def _labels(shape=(40, 40, 30)) -> np.ndarray:
    """Two "vertebrae" (VerSe L1, L2) in the bony core of the synthetic volumes."""
    i, j, k = np.indices(shape)
    r = np.hypot((i - shape[0] / 2) / (shape[0] * 0.45), (j - shape[1] / 2) / (shape[1] * 0.4))
    out = np.zeros(shape, np.uint8)
    out[(r < 0.3) & (k >= 2) & (k < 14)] = 20
    out[(r < 0.3) & (k >= 16) & (k < 28)] = 21
    return out


def _figures(values: np.ndarray) -> object:
    return vertebra_figures(values, _labels(values.shape), [20, 21])


@pytest.mark.parametrize("scale", [1.0, 400.0, 4095.0])
def test_non_negative_signal_at_any_scale_with_dark_vertebra_rims_is_mri(scale: float) -> None:
    signal = _mri(scale=scale)
    decision = detect_modality(signal, where="t2.nii.gz", vertebrae=_figures(signal))
    assert decision.modality is Modality.MR
    assert "non-negative signal" in decision.evidence
    assert "0 of 2 labelled structures with a cortical-bone rim" in decision.evidence


def test_resampling_overshoot_below_zero_still_reads_as_mri() -> None:
    signal = _mri()
    signal.flat[::5000] = -40.0  # a few interpolation undershoots (0.02 %)
    decision = detect_modality(signal, where="x", vertebrae=_figures(signal))
    assert decision.modality is Modality.MR


def test_without_air_fat_or_a_label_map_the_image_is_refused() -> None:
    """A tight CT crop of soft tissue and bone and an MRI look alike without their labels."""
    for values in (_mri(), _bone_and_soft_tissue_ct()):
        with pytest.raises(ModalityUndecidedError, match="no label map to look for cortical"):
            detect_modality(values, where="x")


def _bone_and_soft_tissue_ct(shape=(40, 40, 30)) -> np.ndarray:
    """A CT crop of muscle (40 HU) with vertebrae: cortex 850 HU around 200 HU trabecular bone."""
    from scipy import ndimage

    labels = _labels(shape)
    hu = np.full(shape, 40.0)
    bone = labels > 0
    hu[bone] = 200.0
    hu[bone & ~ndimage.binary_erosion(bone)] = 850.0
    return hu + _rng().normal(0, 10, shape)


def test_a_ct_crop_without_air_or_fat_is_told_by_its_vertebrae_cortical_rims() -> None:
    hu = _bone_and_soft_tissue_ct()
    decision = detect_modality(hu, where="crop", vertebrae=_figures(hu))
    assert decision.modality is Modality.CT
    assert "bright cortical rims" in decision.evidence


def test_bright_vertebra_borders_that_are_not_the_brightest_tissue_are_not_ct() -> None:
    """Fat-suppressed MRI: vertebra borders catch bright fluid, but fluid is brightest."""
    from scipy import ndimage

    hu = _bone_and_soft_tissue_ct()
    hu[ndimage.binary_dilation(_labels(hu.shape) > 0, iterations=3) & (_labels(hu.shape) == 0)] = (
        2000.0
    )
    with pytest.raises(ModalityUndecidedError, match="2 of 2 labelled structures"):
        detect_modality(hu, where="stir", vertebrae=_figures(hu))


def test_masked_crops_are_judged_by_their_rim() -> None:
    ct = detect_modality(_masked_vertebra(rim=700.0, core=150.0), where="ct-crop")
    assert ct.modality is Modality.CT and "rim is brighter" in ct.evidence
    mr = detect_modality(_masked_vertebra(rim=20.0, core=300.0), where="mr-crop")
    assert mr.modality is Modality.MR and "rim is darker" in mr.evidence


def test_a_masked_crop_with_a_weak_rim_is_refused() -> None:
    # a rim brighter than its core but far too faint for cortical bone: neither rule holds
    with pytest.raises(ModalityUndecidedError, match=r"masked: .* exactly 0"):
        detect_modality(_masked_vertebra(rim=200.0, core=100.0), where="crop")


def test_a_crop_with_neither_air_nor_fat_but_negative_values_is_refused_naming_figures() -> None:
    rng = _rng()
    values = rng.uniform(-25.0, 300.0, size=(30, 30, 30))
    values.flat[::100] = -60.0  # 1 % below -30: neither MRI nor a fat population
    with pytest.raises(ModalityUndecidedError) as info:
        detect_modality(values, where="odd.nii.gz")
    message = str(info.value)
    assert message.startswith("odd.nii.gz: cannot tell CT from MRI")
    assert "1.0% at -190..-30 (fat)" in message and "--modality ct|mr" in message
    assert "\n" not in message


def test_a_constant_image_is_refused() -> None:
    with pytest.raises(ModalityUndecidedError, match="0 varying voxels"):
        detect_modality(np.zeros((20, 20, 20)), where="blank")


def test_large_volumes_are_judged_on_a_bounded_subsample(monkeypatch) -> None:
    monkeypatch.setattr(modality_module, "MAX_SAMPLE_VOXELS", 5_000)
    figures = value_figures(_torso_ct((60, 60, 40)))
    assert figures.n_voxels <= 5_000 and figures.air_fraction > 0.1


def test_dicom_tag_decides_and_a_contradicting_request_is_refused() -> None:
    d = decide_modality("auto", where="series", header_value="MR", from_dicom=True)
    assert (d.modality, d.source, d.evidence) == (
        Modality.MR,
        "dicom",
        "DICOM Modality (0008,0060) 'MR'",
    )
    assert decide_modality("mr", where="s", header_value="MR", from_dicom=True).source == "dicom"
    with pytest.raises(AcquisitionError, match=r"Modality \(0008,0060\) is 'MR' but CT was"):
        decide_modality("ct", where="s", header_value="MR", from_dicom=True)


def test_an_empty_dicom_tag_falls_back_to_the_user_then_the_values() -> None:
    user = decide_modality("mr", where="s", header_value="", from_dicom=True)
    assert user.source == "user" and user.evidence.startswith("DICOM Modality (0008,0060) is empty")
    signal = _mri()
    found = decide_modality(
        None,
        where="s",
        header_value=None,
        from_dicom=True,
        values=signal,
        vertebrae=_figures(signal),
    )
    assert found.modality is Modality.MR and found.source == "detected"
    assert found.evidence.startswith("DICOM Modality (0008,0060) is empty; detected")
    with pytest.raises(ModalityUndecidedError, match="no voxel values"):
        decide_modality("auto", where="s", from_dicom=True)


def test_the_user_decides_for_nifti_and_bad_words_are_refused() -> None:
    d = decide_modality("CT", where="x.nii.gz", values=_mri())
    assert (d.modality, d.source) == (Modality.CT, "user")
    with pytest.raises(AcquisitionError, match="modality"):
        decide_modality("pet", where="x.nii.gz")


@pytest.mark.parametrize("spacing", [0.6, 1.5, 2.0])
def test_phantoms_with_their_labels_are_ct(tmp_path, spacing: float) -> None:
    """The phantoms have neither air nor fat in view: their vertebrae's cortex decides."""
    from spinewatch.imaging.phantom import write_phantom

    phantom = make_spine_phantom(PhantomSpec(levels=("T12", "L1", "L2"), spacing_mm=(spacing,) * 3))
    ct_path, labels_path, _ = write_phantom(phantom, tmp_path)
    image, _labels_volume = load_study(ct_path, labels_path)
    assert isinstance(image, CtVolume)
    assert "bright cortical rims" in image.acquisition.modality_evidence


def test_docstring_examples_run() -> None:
    from spinewatch.imaging import contrast, report

    for module in (modality_module, contrast, report):
        result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
        assert result.failed == 0, module.__name__


# -- every real scan ----------------------------------------------------------------------------

TPT_MRI = "mri/tptbox-mri/sub-mri_label-6_T2w.nii.gz"
TS = "ct/totalseg-example/"
VERSE = "ct/verse004-L2-crop/sub-verse004_0000_vertebra_21_"
REAL_IMAGES = [
    (f"{TS}example_ct.nii.gz", None, Modality.CT),
    (f"{TS}example_ct_sm.nii.gz", f"{TS}example_seg.nii.gz", Modality.CT),
    (f"{TS}dicom", f"{TS}example_seg_dicom.nii.gz", Modality.CT),
    ("ct/tptbox-ct/sub-ct_label-22_ct.nii.gz", "ct/tptbox-ct/sub-ct_seg-vert_label-22_msk.nii.gz",
     Modality.CT),
    ("ct/totalseg-aorta-cta/ct_cropped.nii.gz", "ct/totalseg-aorta-cta/vertebrae_T12.nii.gz",
     Modality.CT),
    (f"{VERSE}im.nii.gz", f"{VERSE}seg.nii.gz", Modality.CT),
    (TPT_MRI, "mri/tptbox-mri/sub-mri_seg-vert_label-6_msk.nii.gz", Modality.MR),
    (TPT_MRI, "mri/tptbox-mri/sub-mri_seg-subreg_label-6_msk.nii.gz", Modality.MR),
    ("mri/totalseg-example-mr/example_mr_sm.nii.gz",
     "mri/totalseg-example-mr/example_seg_mr.nii.gz", Modality.MR),
]  # fmt: skip


@pytest.mark.shared_data
@pytest.mark.parametrize(("relative", "labels", "expected"), REAL_IMAGES)
def test_every_real_scan_is_classified(
    shared_file, relative: str, labels: str | None, expected: Modality
) -> None:
    if labels is None:
        image = load_image(shared_file(relative))
    else:
        image, _ = load_study(shared_file(relative), shared_file(labels))
    assert image.acquisition.modality is expected
    assert isinstance(image, CtVolume if expected is Modality.CT else MrVolume)
    source = "dicom" if relative.endswith("dicom") else "detected"
    assert image.acquisition.modality_source == source
    if expected is Modality.MR:
        assert not hasattr(image, "hu")  # an MRI can never be read as HU


@pytest.mark.shared_data
def test_a_real_mri_without_its_label_map_is_refused_not_guessed(shared_file) -> None:
    with pytest.raises(ModalityUndecidedError, match="no label map to look for cortical"):
        load_image(shared_file(TPT_MRI))
    image = load_image(shared_file(TPT_MRI), modality="mr")
    assert isinstance(image, MrVolume) and image.acquisition.modality_source == "user"


@pytest.mark.shared_data
def test_the_real_ct_detection_rests_on_the_rule_expected(shared_file) -> None:
    """Each real CT is recognised for the reason its content gives, not by accident."""
    evidence = {
        rel: load_image(shared_file(rel)).acquisition.modality_evidence
        for rel, _labels_rel, expected in REAL_IMAGES
        if rel.endswith(".nii.gz") and expected is Modality.CT
    }
    assert "air/lung" in evidence["ct/totalseg-aorta-cta/ct_cropped.nii.gz"]
    assert "fat and soft tissue" in evidence["ct/tptbox-ct/sub-ct_label-22_ct.nii.gz"]
    verse = evidence[f"{VERSE}im.nii.gz"]
    assert "rim is brighter" in verse and "masked: 92%" in verse


@pytest.mark.shared_data
def test_a_real_mri_stripped_of_its_background_is_still_not_ct(shared_file, tmp_path) -> None:
    """The tptbox T2 MRI with every voxel outside its vertebrae blanked: a masked MRI crop.

    Its vertebra rims are dark (cortical bone has no MR signal), so it must never pass as CT.
    """
    img = nib.load(shared_file("mri/tptbox-mri/sub-mri_label-6_T2w.nii.gz"))
    seg = np.asarray(
        nib.load(shared_file("mri/tptbox-mri/sub-mri_seg-vert_label-6_msk.nii.gz")).dataobj
    )
    masked = np.where((seg > 0) & (seg < 100), np.asarray(img.dataobj), 0)
    try:
        decision = detect_modality(masked, where="masked-mri")
    except ModalityUndecidedError:
        return  # refusing is acceptable; calling it CT is not
    assert decision.modality is Modality.MR
