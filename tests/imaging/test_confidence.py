"""Confidence per vertebra: the class rules; the CT noise estimate on phantoms and real scans."""

from __future__ import annotations

import numpy as np
import pytest

from spinewatch.imaging.confidence import (
    LOW_FLAGS,
    MEDIUM_FLAGS,
    ConfidenceClass,
    assess_confidence,
    estimate_noise_hu,
    noise_around,
    superior_voxel_mm,
)

HIGH, MEDIUM, LOW = ConfidenceClass.HIGH, ConfidenceClass.MEDIUM, ConfidenceClass.LOW


def conf(**kw):  # type: ignore[no-untyped-def]
    args = {
        "superior_voxel_mm": 1.0,
        "truncated": False,
        "quality_flags": (),
        "noise_hu": 15.0,
        "modality": "CT",
        "has_ct": True,
    }
    args.update(kw)
    return assess_confidence(**args)


# --- the class -----------------------------------------------------------------------------


def test_a_clean_thin_slice_ct_is_high_and_says_what_was_checked() -> None:
    c = conf()
    assert c.level is HIGH
    assert c.reasons == (
        "no quality concern",
        "voxel 1.0 mm along the superior axis",
        "noise SD 15 HU",
    )


@pytest.mark.parametrize(
    ("voxel", "expected"),
    [(0.5, HIGH), (1.5, HIGH), (1.51, MEDIUM), (3.0, MEDIUM), (3.0000001, MEDIUM), (3.01, LOW)],
)
def test_voxel_size_along_the_superior_axis(voxel: float, expected: ConfidenceClass) -> None:
    c = conf(superior_voxel_mm=voxel)
    assert c.level is expected
    if expected is not HIGH:
        assert c.reasons[0].startswith(f"voxel {voxel:.1f} mm along the superior axis (>")


def test_truncated_is_low() -> None:
    c = conf(truncated=True)
    assert c.level is LOW
    assert c.reasons[0] == "vertebra cut by the scan edge (partial body, no heights)"


@pytest.mark.parametrize("flag", sorted(LOW_FLAGS))
def test_low_flags(flag: str) -> None:
    c = conf(quality_flags=(flag,))
    assert c.level is LOW and c.reasons[0].endswith(f"[{flag}]")


@pytest.mark.parametrize("flag", sorted(MEDIUM_FLAGS))
def test_medium_flags(flag: str) -> None:
    c = conf(quality_flags=(flag,))
    assert c.level is MEDIUM and c.reasons[0].endswith(f"[{flag}]")


def test_findings_are_not_doubts_and_unknown_flags_are() -> None:
    assert conf(quality_flags=("cement_present",)).level is HIGH
    c = conf(quality_flags=("some_new_check",))
    assert c.level is MEDIUM
    assert c.reasons[0] == "unrecognised quality flag [some_new_check]"


def test_coarse_slices_flag_is_not_counted_twice() -> None:
    c = conf(superior_voxel_mm=2.5, quality_flags=("coarse_slices",))
    assert c.level is MEDIUM
    assert not any("coarse_slices" in r for r in c.reasons)


@pytest.mark.parametrize(
    ("noise", "expected"), [(50.0, HIGH), (50.5, MEDIUM), (100.0, MEDIUM), (101.0, LOW)]
)
def test_noise(noise: float, expected: ConfidenceClass) -> None:
    c = conf(noise_hu=noise)
    assert c.level is expected
    assert any(r.startswith(f"noise SD {noise:.0f} HU") for r in c.reasons)


def test_noise_not_estimated_is_said_without_lowering() -> None:
    c = conf(noise_hu=None)
    assert c.level is HIGH
    assert "noise not estimated (too little soft tissue in view)" in c.reasons


def test_mri_and_label_map_only_are_at_most_medium() -> None:
    mri = conf(modality="MR", noise_hu=None)
    assert mri.level is MEDIUM
    assert mri.reasons[0] == "MRI: geometry only (no HU: no density, lesions)"
    assert not any("noise" in r for r in mri.reasons)  # no HU noise figure on an MRI
    labels_only = conf(has_ct=False, noise_hu=None)
    assert labels_only.level is MEDIUM
    assert labels_only.reasons[0] == "label map only: no density, lesions"


def test_the_worst_factor_wins_and_every_one_is_listed() -> None:
    c = conf(superior_voxel_mm=2.0, quality_flags=("implausible_size",), noise_hu=70.0)
    assert c.level is LOW
    assert c.reasons[0].endswith("[implausible_size]")  # the low reasons first
    assert len(c.reasons) == 3


def test_superior_voxel() -> None:
    axial = np.eye(3)
    assert superior_voxel_mm((0.7, 0.7, 5.0), axial, (0, 0, 1)) == pytest.approx(5.0)
    # isotropic voxels: the voxel size, whatever the direction
    assert superior_voxel_mm((2.0, 2.0, 2.0), axial, (1, 1, 1)) == pytest.approx(2.0)
    # a sagittal grid (PIR): the superior axis is the second voxel axis
    pir = np.array([[0.0, -1.0, 0.0], [0.0, 0.0, -1.0], [1.0, 0.0, 0.0]]).T  # columns: P, I, R
    assert superior_voxel_mm((1.0, 2.0, 1.0), pir, (0, 0, 1)) == pytest.approx(2.0)


# --- the noise estimate on phantoms --------------------------------------------------------


def _tissue(shape=(80, 80, 16), seed=0):  # type: ignore[no-untyped-def]
    """Muscle (50 HU) with a block of fat (-100 HU) and one of bone (400 HU): anatomy's edges."""
    base = np.full(shape, 50.0)
    base[:20] = -100.0
    base[60:, 60:] = 400.0
    return base, np.random.default_rng(seed)


@pytest.mark.parametrize("sd", [8.0, 20.0, 45.0, 90.0])
def test_known_noise_is_recovered_despite_edges(sd: float) -> None:
    base, rng = _tissue()
    hu = base + rng.normal(0.0, sd, base.shape)
    got = estimate_noise_hu(hu, np.zeros(hu.shape, bool), (0.8, 0.8, 3.0))
    assert got == pytest.approx(sd, rel=0.05)


def test_slice_plane_is_the_two_finest_axes() -> None:
    base, rng = _tissue((80, 80, 16))
    base = np.moveaxis(base, 2, 0)  # the coarse axis first
    hu = base + rng.normal(0.0, 20.0, base.shape)
    # a smooth trend across the coarse axis 0 must not enter the in-plane windows
    hu += np.linspace(0.0, 60.0, 16)[:, None, None]
    got = estimate_noise_hu(hu, np.zeros(hu.shape, bool), (3.0, 0.8, 0.8))
    assert got == pytest.approx(20.0, rel=0.05)


def test_excluded_voxels_and_padding_are_not_used() -> None:
    base, rng = _tissue()
    hu = base + rng.normal(0.0, 20.0, base.shape)
    noisy = np.zeros(hu.shape, bool)
    noisy[20:50] = True
    hu[noisy] += rng.normal(0.0, 80.0, np.count_nonzero(noisy))  # e.g. a labelled vertebra
    assert estimate_noise_hu(hu, noisy, (0.8, 0.8, 3.0)) == pytest.approx(20.0, rel=0.05)
    # a crop masked to the vertebra (outside filled with 0): no soft tissue, no figure
    masked = np.zeros((80, 80, 16))
    masked[30:50, 30:50] = 250.0 + rng.normal(0.0, 40.0, (20, 20, 16))
    assert estimate_noise_hu(masked, np.zeros(masked.shape, bool), (1.0, 1.0, 1.0)) is None
    # too small a box: no figure
    assert estimate_noise_hu(hu[:3, :3], np.zeros((3, 3, 16), bool), (1.0, 1.0, 1.0)) is None


# --- the noise estimate on real scans: Gaussian noise added to the real background -----------

REAL = [
    "ct/totalseg-example/example_ct.nii.gz",  # 3 mm abdominal CT
    "ct/tptbox-ct/sub-ct_label-22_ct.nii.gz",  # 1.5 mm crop
    "ct/totalseg-aorta-cta/ct_cropped.nii.gz",  # 1.5 mm CT angiography crop
]


@pytest.mark.shared_data
@pytest.mark.parametrize("path", REAL)
def test_added_noise_is_measured_on_real_backgrounds(shared_file, path: str) -> None:
    from spinewatch.imaging.io import load_ct

    ct = load_ct(shared_file(path))
    hu = np.asarray(ct.hu, dtype=np.float64)
    none = np.zeros(hu.shape, bool)
    own = estimate_noise_hu(hu, none, ct.grid.spacing_mm)
    assert own is not None and 10.0 < own < 100.0
    rng = np.random.default_rng(7)
    for added in (20.0, 40.0):
        got = estimate_noise_hu(hu + rng.normal(0.0, added, hu.shape), none, ct.grid.spacing_mm)
        assert got is not None
        # independent noise adds in quadrature
        assert np.sqrt(got**2 - own**2) == pytest.approx(added, rel=0.2), (path, own, got)


@pytest.mark.shared_data
def test_noise_around_a_real_vertebra(shared_file) -> None:
    from spinewatch.imaging.analysis import find_vertebrae, resolve_convention
    from spinewatch.imaging.io import load_study

    ct, labels = load_study(
        shared_file("ct/totalseg-example/example_ct_sm.nii.gz"),
        shared_file("ct/totalseg-example/example_seg.nii.gz"),
    )
    regions = {str(r.level): r for r in find_vertebrae(labels, resolve_convention(labels, "auto"))}
    l1 = regions["L1"]
    ids = [r.label for r in regions.values()]
    around = noise_around(ct.hu, labels.labels, l1.bbox, ct.grid.spacing_mm, exclude_labels=ids)
    whole = estimate_noise_hu(
        np.asarray(ct.hu, float), np.isin(labels.labels, ids), ct.grid.spacing_mm
    )
    assert around is not None and whole is not None
    # next to the spine (muscle/fat interfaces at 3 mm) somewhat above the whole-scan figure
    assert 0.9 * whole <= around < 2.0 * whole
