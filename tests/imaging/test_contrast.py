"""spinewatch.imaging.contrast: the contrast phase from the user, the DICOM header or the image.

Header rules on pydicom datasets built here; image detection on REAL backgrounds: the native
TotalSegmentator example CT (its real aorta, label 52, measures 43 HU) with the aorta's own
voxels raised to portal-venous and arterial values, a tube inserted beside the spine, and
decoys (an unenhanced tube, a calcified ring, a bone fragment); the real CTA must come out as
contrast, the real native CTs and the phantoms must not.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from pydicom.dataset import Dataset

from spinewatch.core.acquisition import Acquisition, AcquisitionError, ContrastPhase, Modality
from spinewatch.core.conventions import LabelConvention
from spinewatch.imaging.anatomy import find_vertebrae
from spinewatch.imaging.contrast import (
    MIN_LUMEN_HU,
    decide_contrast_at_input,
    detect_contrast,
    phase_from_dicom,
    phase_from_text,
    resolve_contrast,
)
from spinewatch.imaging.io import load_study
from spinewatch.imaging.phantom import PhantomSpec, make_spine_phantom
from spinewatch.imaging.volume import CtVolume, LabelVolume

# -- free text ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "phase"),
    [
        ("ABD PV 3mm", ContrastPhase.PORTAL_VENOUS),
        ("Abdomen portalvenös 1.0 Br40", ContrastPhase.PORTAL_VENOUS),
        ("TAP veineux", ContrastPhase.PORTAL_VENOUS),
        ("Thorax arteriell", ContrastPhase.ARTERIAL),
        ("CTA Aorta", ContrastPhase.ARTERIAL),
        ("Late arterial liver", ContrastPhase.ARTERIAL),
        ("phase artérielle", ContrastPhase.ARTERIAL),
        ("Spätphase Niere", ContrastPhase.DELAYED),
        ("temps tardif", ContrastPhase.DELAYED),
        ("Abdomen nativ", ContrastPhase.NATIVE),
        ("CT abdomen NON CONTRAST", ContrastPhase.NATIVE),
        ("Thorax ohne KM", ContrastPhase.NATIVE),
        ("TDM sans injection", ContrastPhase.NATIVE),
        ("w/o contrast", ContrastPhase.NATIVE),
        ("Thorax mit KM", ContrastPhase.UNKNOWN_PHASE),
        ("CT C+ chest", ContrastPhase.UNKNOWN_PHASE),
        ("FDG_TK_KM", ContrastPhase.UNKNOWN_PHASE),
        ("abdomen injecté", ContrastPhase.UNKNOWN_PHASE),
        ("arterial + portal venous", ContrastPhase.UNKNOWN_PHASE),
    ],
)
def test_phase_keywords_in_english_german_and_french(text: str, phase: ContrastPhase) -> None:
    assert phase_from_text(text) is phase


@pytest.mark.parametrize("text", ["", "CT Body 3.0", "T2 sag", "Wirbelsäule Knochen", "Cartilage"])
def test_text_without_contrast_words_says_nothing(text: str) -> None:
    assert phase_from_text(text) is None


# -- the DICOM header ---------------------------------------------------------------------------


def _ds(**tags: object) -> Dataset:
    ds = Dataset()
    for keyword, value in tags.items():
        setattr(ds, keyword, value)
    return ds


def test_the_structured_agent_phase_comes_first() -> None:
    ds = _ds(ContrastBolusAgentPhase="PORTAL_VENOUS", SeriesDescription="arterial")
    assert phase_from_dicom(ds) == (
        ContrastPhase.PORTAL_VENOUS,
        "DICOM ContrastBolusAgentPhase 'PORTAL_VENOUS'",
    )
    nested = _ds(ContrastBolusUsageSequence=[_ds(ContrastBolusAgentPhase="PRE_CONTRAST")])
    assert phase_from_dicom(nested) is not None
    assert phase_from_dicom(nested)[0] is ContrastPhase.NATIVE


def test_series_description_then_protocol_name() -> None:
    phase, evidence = phase_from_dicom(_ds(SeriesDescription="ABD PV", ProtocolName="Routine"))
    assert phase is ContrastPhase.PORTAL_VENOUS
    assert evidence == "DICOM SeriesDescription 'ABD PV'"
    phase, evidence = phase_from_dicom(_ds(SeriesDescription="Body 3.0", ProtocolName="FDG_TK_KM"))
    assert phase is ContrastPhase.UNKNOWN_PHASE and "ProtocolName 'FDG_TK_KM'" in evidence


def test_a_native_description_beats_an_agent_copied_to_every_series() -> None:
    ds = _ds(SeriesDescription="Abdomen nativ", ContrastBolusAgent="IMERON 350")
    assert phase_from_dicom(ds)[0] is ContrastPhase.NATIVE


def test_the_agent_alone_means_contrast_unless_oral_or_empty() -> None:
    phase, evidence = phase_from_dicom(_ds(ContrastBolusAgent="OMNIPAQUE 350"))
    assert phase is ContrastPhase.UNKNOWN_PHASE
    assert evidence == "DICOM ContrastBolusAgent (0018,0010) 'OMNIPAQUE 350'"
    oral = phase_from_dicom(_ds(ContrastBolusAgent="GASTROGRAFIN", ContrastBolusRoute="ORAL"))
    assert oral is not None and oral[0] is ContrastPhase.NATIVE and "no intravenous" in oral[1]
    for nothing in ("", "NONE", "n/a", "Keine"):
        assert phase_from_dicom(_ds(ContrastBolusAgent=nothing)) is None
    assert phase_from_dicom(_ds(SeriesDescription="CT Body 3.0")) is None


def test_the_user_wins_and_the_header_is_quoted() -> None:
    header = _ds(SeriesDescription="ABD PV")
    d = decide_contrast_at_input("arterial", modality=Modality.CT, header=header)
    assert (d.phase, d.source) == (ContrastPhase.ARTERIAL, "user")
    assert "SeriesDescription 'ABD PV' suggested portal-venous" in d.evidence
    d = decide_contrast_at_input("auto", modality=Modality.CT, header=header)
    assert (d.phase, d.source) == (ContrastPhase.PORTAL_VENOUS, "dicom")
    d = decide_contrast_at_input("auto", modality=Modality.CT, header=None)
    assert (d.phase, d.source) == (ContrastPhase.NATIVE, "assumed")
    assert d.evidence == "no contrast information in a NIfTI file"


def test_an_mri_has_no_ct_phase() -> None:
    d = decide_contrast_at_input("auto", modality=Modality.MR, header=_ds(ContrastBolusAgent="Gd"))
    assert (d.phase, d.source) == (ContrastPhase.NATIVE, "assumed")
    d = decide_contrast_at_input("arterial", modality=Modality.MR)
    with pytest.raises(AcquisitionError, match="an MRI has none"):
        Acquisition(modality=Modality.MR, contrast_phase=d.phase, contrast_source=d.source)


# -- the image ---------------------------------------------------------------------------------


def _sites(labels: LabelVolume, convention: str = "totalsegmentator") -> list:
    regions = find_vertebrae(labels, LabelConvention.parse(convention))
    return [(r.level, r.frame, r.label) for r in regions]


@pytest.fixture(scope="module")
def native(shared_file):
    """The native TotalSegmentator example CT (3 mm, T11-L2 labelled) and its label map."""
    ts = "ct/totalseg-example/"
    ct, labels = load_study(
        shared_file(f"{ts}example_ct_sm.nii.gz"),
        shared_file(f"{ts}example_seg.nii.gz"),
    )
    assert isinstance(ct, CtVolume)
    return ct, labels, _sites(labels)


@pytest.mark.shared_data
def test_the_native_real_ct_shows_no_contrast(native) -> None:
    ct, labels, sites = native
    aorta = labels.labels == 52  # TotalSegmentator "aorta"
    assert 35 <= np.median(ct.hu[aorta]) <= 50  # unenhanced blood
    assert detect_contrast(ct.hu, ct.grid, labels.labels, sites) is None


@pytest.mark.shared_data
@pytest.mark.parametrize(("raise_hu", "found"), [(120.0, True), (300.0, True), (40.0, False)])
def test_the_real_aorta_raised_to_phase_values_is_found(native, raise_hu, found) -> None:
    """Portal-venous (+120 HU) and arterial (+300 HU) enhancement of the real aorta and IVC."""
    ct, labels, sites = native
    hu = ct.hu.astype(np.float32)
    vessels = np.isin(labels.labels, (52, 63))  # aorta, inferior vena cava
    hu[vessels] += raise_hu
    finding = detect_contrast(hu, ct.grid, labels.labels, sites)
    assert (finding is not None) is found
    if finding is not None:
        assert finding.median_hu >= MIN_LUMEN_HU
        assert 15 <= finding.diameter_mm <= 35


def _tube_mask(ct: CtVolume, sites: list, radius_mm: float, shell_mm: float = 0.0) -> np.ndarray:
    """A vertical tube 30 mm anterior and 15 mm left of the vertebrae's centroids (world mm)."""
    centre = np.mean([frame.origin_mm for _, frame, _ in sites], axis=0)
    ijk = np.indices(ct.grid.shape).reshape(3, -1).T
    xyz = ct.grid.to_world(ijk).reshape((*ct.grid.shape, 3))
    r = np.hypot(xyz[..., 0] - (centre[0] - 15.0), xyz[..., 1] - (centre[1] + 30.0))
    return (r <= radius_mm) & (r >= radius_mm - shell_mm) if shell_mm else r <= radius_mm


@pytest.mark.shared_data
def test_an_enhanced_tube_inserted_beside_the_real_spine_is_found_decoys_are_not(native) -> None:
    ct, labels, sites = native
    hu = ct.hu.astype(np.float32)
    tube = _tube_mask(ct, sites, 11.0)
    rng = np.random.default_rng(3)

    enhanced = hu.copy()
    enhanced[tube] = 250.0 + rng.normal(0, 20, tube.sum())
    finding = detect_contrast(enhanced, ct.grid, labels.labels, sites)
    assert finding is not None and finding.side == "left" and 200 <= finding.median_hu <= 300

    unenhanced = hu.copy()
    unenhanced[tube] = 42.0 + rng.normal(0, 20, tube.sum())
    assert detect_contrast(unenhanced, ct.grid, labels.labels, sites) is None

    calcified = hu.copy()  # a calcified wall around unenhanced blood: a ring, not a lumen
    calcified[tube] = 42.0
    calcified[_tube_mask(ct, sites, 11.0, shell_mm=3.0)] = 600.0
    assert detect_contrast(calcified, ct.grid, labels.labels, sites) is None

    bone = hu.copy()  # a bone fragment: cortex and marrow, not a homogeneous lumen
    bone[tube] = np.where(rng.random(tube.sum()) < 0.5, 900.0, 120.0)
    assert detect_contrast(bone, ct.grid, labels.labels, sites) is None


@pytest.mark.shared_data
def test_the_real_cta_comes_out_as_contrast(shared_file) -> None:
    """The CTA crop: its binary T12 mask relabelled as TotalSegmentator T12 (32) in code."""
    cta = "ct/totalseg-aorta-cta/"
    ct, labels = load_study(
        shared_file(f"{cta}ct_cropped.nii.gz"), shared_file(f"{cta}vertebrae_T12.nii.gz")
    )
    assert isinstance(ct, CtVolume)
    assert ct.acquisition.contrast_source == "assumed"  # NIfTI: nothing said yet
    t12 = LabelVolume(np.where(labels.labels > 0, 32, 0).astype(np.uint8), labels.grid, "T12")
    resolved = resolve_contrast(ct.acquisition, ct.hu, ct.grid, t12.labels, _sites(t12))
    assert resolved.contrast_phase is ContrastPhase.UNKNOWN_PHASE
    assert resolved.contrast_source == "detected"
    assert "anterior" in resolved.contrast_evidence and "of T12" in resolved.contrast_evidence


@pytest.mark.shared_data
def test_the_real_native_crop_and_the_dicom_header(shared_file) -> None:
    tpt = "ct/tptbox-ct/"
    ct, labels = load_study(
        shared_file(f"{tpt}sub-ct_label-22_ct.nii.gz"),
        shared_file(f"{tpt}sub-ct_seg-vert_label-22_msk.nii.gz"),
    )
    resolved = resolve_contrast(
        ct.acquisition, ct.hu, ct.grid, labels.labels, _sites(labels, "verse")
    )
    assert (resolved.contrast_phase, resolved.contrast_source) == (ContrastPhase.NATIVE, "assumed")
    assert "no contrast-filled aorta or IVC found in front of L2-L4" in resolved.contrast_evidence

    ts = "ct/totalseg-example/"
    series, seg = load_study(
        shared_file(f"{ts}dicom"), shared_file(f"{ts}example_seg_dicom.nii.gz")
    )
    acq = series.acquisition
    assert (acq.contrast_phase, acq.contrast_source) == (ContrastPhase.UNKNOWN_PHASE, "dicom")
    assert acq.contrast_evidence == "DICOM ProtocolName 'FDG_TK_KM'"
    # the pixels agree with the header: an enhanced vessel in front of the spine
    assert detect_contrast(series.hu, series.grid, seg.labels, _sites(seg)) is not None
    # a phase from the header is never replaced by the image check
    assert resolve_contrast(acq, series.hu, series.grid, seg.labels, _sites(seg)) is acq


def test_phantoms_show_no_contrast_and_mri_or_stated_phases_are_left_alone() -> None:
    phantom = make_spine_phantom(
        PhantomSpec(levels=("T12", "L1", "L2"), spacing_mm=(1.5, 1.5, 1.5))
    )
    sites = _sites(phantom.labels)
    ct = phantom.ct
    assert detect_contrast(ct.hu, ct.grid, phantom.labels.labels, sites) is None
    stated = replace(Acquisition(), contrast_phase=ContrastPhase.ARTERIAL, contrast_source="user")
    assert resolve_contrast(stated, ct.hu, ct.grid, phantom.labels.labels, sites) is stated
    mri = Acquisition(modality=Modality.MR)
    assert resolve_contrast(mri, ct.hu, ct.grid, phantom.labels.labels, sites) is mri


def test_no_vertebra_between_t4_and_l4_means_nothing_to_look_beside() -> None:
    phantom = make_spine_phantom(PhantomSpec(levels=("C3", "C4"), spacing_mm=(1.5, 1.5, 1.5)))
    sites = _sites(phantom.labels)
    ct = phantom.ct
    resolved = resolve_contrast(Acquisition(), ct.hu, ct.grid, phantom.labels.labels, sites)
    assert resolved.contrast_source == "assumed"
    assert "no vertebra between T4 and L4" in resolved.contrast_evidence
