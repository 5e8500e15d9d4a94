"""Lytic lesions: volume accuracy against drawn truth, no false lesions, involvement flags."""

from __future__ import annotations

import numpy as np
import pytest
from _lesions_support import Sphere, make_vertebra, rotation
from scipy import ndimage

from spinewatch.imaging.density import CropShapeError, trabecular_density
from spinewatch.imaging.lesions import (
    MIN_LESION_ML,
    background_hu,
    detect_lytic_lesions,
    masked_smooth,
    posterior_wall_zone,
)

OBLIQUE = rotation(10)  # the vertebra tilted 10 degrees in the sagittal plane
VOXELS_TURNED = rotation(25, "z")  # voxel axes not aligned with the body's frame


def _detect(syn):
    return detect_lytic_lesions(syn.hu, syn.region, density=trabecular_density(syn.hu, syn.region))


# --- accuracy: lesion radii 4-12 mm, spacing 0.8-1.5 mm, noise 10-25 HU: volume within 15% ----
@pytest.mark.parametrize(
    ("radius_mm", "spacing_mm", "noise_hu_sd"),
    [
        (4.0, (1.5, 1.5, 1.5), 25.0),
        (4.0, (1.0, 1.0, 1.0), 10.0),
        (4.0, (0.8, 0.8, 1.5), 25.0),
        (6.0, (0.8, 0.8, 0.8), 10.0),
        (6.0, (1.5, 1.5, 1.5), 10.0),
        (8.0, (1.0, 1.0, 1.0), 25.0),
        (8.0, (1.5, 1.5, 1.5), 25.0),
        (12.0, (1.0, 1.0, 1.5), 25.0),
        (12.0, (1.5, 1.5, 1.5), 10.0),
    ],
)
def test_lesion_volume_within_15_pct(
    radius_mm: float, spacing_mm: tuple[float, float, float], noise_hu_sd: float
) -> None:
    offset = (3.0, 2.0, -1.0) if radius_mm < 12 else (0.0, 0.0, 0.0)
    syn = make_vertebra(
        spacing_mm=spacing_mm,
        noise_hu_sd=noise_hu_sd,
        seed=int(radius_mm),
        lesions=(Sphere(radius_mm, offset),),
        rot=OBLIQUE,
        voxel_rot=VOXELS_TURNED,
    )
    f = _detect(syn)
    assert f.n_lesions == 1
    assert f.volume_ml == pytest.approx(syn.lesion_ml, rel=0.15)
    assert f.largest_ml == f.volume_ml
    body_ml = syn.body_voxels * syn.region.grid.voxel_volume_ml
    assert f.fraction == pytest.approx(f.volume_ml / body_ml)
    # the mask (partial-volume fraction >= 0.5) overlaps the drawn lesion
    drawn = (syn.hu < 100) & syn.region.body if noise_hu_sd == 0 else None
    assert drawn is None or (f.lesion_mask & drawn).sum() > 0.8 * drawn.sum()
    assert not f.posterior_wall_involved
    assert not (f.pedicle_left_involved or f.pedicle_right_involved)


def test_noise_free_volume_is_exact_to_a_percent() -> None:
    syn = make_vertebra(noise_hu_sd=0.0, lesions=(Sphere(5.0, (2.0, 1.0, 0.0)),))
    f = _detect(syn)
    assert f.volume_ml == pytest.approx(syn.lesion_ml, rel=0.01)
    drawn = (syn.hu < 100) & syn.region.body
    assert np.array_equal(f.lesion_mask, drawn)


# --- no false lesions: intact osteoporotic bone (80-100 HU), noise 20 HU ----------------------
@pytest.mark.parametrize("trabecular_hu", [80.0, 90.0, 100.0])
@pytest.mark.parametrize("spacing_mm", [(0.8, 0.8, 0.8), (1.5, 1.5, 1.5), (1.0, 1.0, 2.0)])
def test_no_false_lesions_in_osteoporotic_bone(
    trabecular_hu: float, spacing_mm: tuple[float, float, float]
) -> None:
    for seed in (1,) if spacing_mm[0] < 1.0 else (1, 2):
        syn = make_vertebra(
            spacing_mm=spacing_mm,
            trabecular_hu=trabecular_hu,
            noise_hu_sd=20.0,
            seed=seed,
            rot=OBLIQUE,
        )
        f = _detect(syn)
        assert (f.n_lesions, f.volume_ml, f.fraction) == (0, 0.0, 0.0)
        assert not f.lesion_mask.any()
        assert not (f.posterior_wall_involved or f.pedicle_left_involved)
        assert not f.pedicle_right_involved
        assert f.background_hu == pytest.approx(trabecular_hu, abs=3.0)


def test_lesion_in_osteoporotic_bone_is_still_found() -> None:
    syn = make_vertebra(trabecular_hu=100.0, noise_hu_sd=15.0, lesions=(Sphere(7.0, hu=10.0),))
    f = _detect(syn)
    assert f.n_lesions == 1
    assert f.volume_ml == pytest.approx(syn.lesion_ml, rel=0.15)


def test_small_focus_below_minimum_is_dropped() -> None:
    # radius 2.5 mm: 0.065 ml < MIN_LESION_ML
    syn = make_vertebra(noise_hu_sd=10.0, lesions=(Sphere(2.5),))
    assert syn.lesion_ml < MIN_LESION_ML
    f = _detect(syn)
    assert f.n_lesions == 0 and f.volume_ml == 0.0


def test_two_lesions_are_counted_separately() -> None:
    syn = make_vertebra(
        noise_hu_sd=15.0,
        lesions=(Sphere(5.0, (-9.0, 4.0, 0.0)), Sphere(7.0, (8.0, 2.0, 0.0))),
    )
    f = _detect(syn)
    assert f.n_lesions == 2
    assert f.volume_ml == pytest.approx(syn.lesion_ml, rel=0.1)
    small = 4 / 3 * np.pi * 5.0**3 / 1000
    big = 4 / 3 * np.pi * 7.0**3 / 1000
    assert f.largest_ml == pytest.approx(big, rel=0.15)
    assert f.largest_ml > small * 1.5


def test_cement_is_not_a_lesion() -> None:
    syn = make_vertebra(noise_hu_sd=10.0, cement=(Sphere(8.0, hu=2500.0),))
    f = _detect(syn)
    assert f.n_lesions == 0


# --- posterior wall and pedicles --------------------------------------------------------------
@pytest.mark.parametrize("spacing_mm", [(1.0, 1.0, 1.0), (1.5, 1.5, 1.5)])
def test_posterior_wall_involvement(spacing_mm: tuple[float, float, float]) -> None:
    at_wall = make_vertebra(
        spacing_mm=spacing_mm, noise_hu_sd=20.0, lesions=(Sphere(6.0, (0, -12, 0)),), rot=OBLIQUE
    )
    f = _detect(at_wall)
    assert f.posterior_wall_involved
    assert not (f.pedicle_left_involved or f.pedicle_right_involved)
    assert f.volume_ml == pytest.approx(at_wall.lesion_ml, rel=0.15)
    # 4 mm of bone left between lesion and wall: not involved
    clear = make_vertebra(
        spacing_mm=spacing_mm, noise_hu_sd=20.0, lesions=(Sphere(6.0, (0, -6, 0)),), rot=OBLIQUE
    )
    assert not _detect(clear).posterior_wall_involved
    # an anterior lesion touching the anterior cortex: not the posterior wall
    anterior = make_vertebra(
        spacing_mm=spacing_mm, noise_hu_sd=20.0, lesions=(Sphere(6.0, (0, 12, 0)),), rot=OBLIQUE
    )
    assert not _detect(anterior).posterior_wall_involved


def test_posterior_wall_zone_is_the_back_of_the_body() -> None:
    syn = make_vertebra(noise_hu_sd=0.0, rot=OBLIQUE, voxel_rot=VOXELS_TURNED)
    region = syn.region
    zone = posterior_wall_zone(region.body, region)
    idx = np.argwhere(zone)
    local = (region.grid.to_world(idx) - region.frame.origin_mm) @ np.stack(
        [region.frame.right, region.frame.anterior, region.frame.superior], axis=1
    )
    assert (local[:, 1] < 0).all()
    # at the midline the zone spans the last 3 mm in front of the wall (b = 16 mm)
    mid = np.abs(local[:, 0]) < 2
    assert local[mid, 1].min() > -16.5
    assert local[mid, 1].max() < -16 + 3 + 1.0


@pytest.mark.parametrize(("side", "sign"), [("left", -1.0), ("right", 1.0)])
@pytest.mark.parametrize("spacing_mm", [(1.0, 1.0, 1.0), (1.5, 1.5, 1.5)])
def test_pedicle_involvement_by_side(
    side: str, sign: float, spacing_mm: tuple[float, float, float]
) -> None:
    syn = make_vertebra(
        spacing_mm=spacing_mm,
        noise_hu_sd=20.0,
        lesions=(Sphere(6.0, (sign * 11.0, -14.0, 0.0)),),
        rot=OBLIQUE,
        voxel_rot=VOXELS_TURNED,
    )
    assert (syn.pedicle_left_voxels > 0) == (side == "left")
    f = _detect(syn)
    assert f.pedicle_left_involved == (side == "left")
    assert f.pedicle_right_involved == (side == "right")
    assert f.posterior_wall_involved
    assert f.volume_ml == pytest.approx(syn.lesion_ml, rel=0.15)


def test_bilateral_pedicles() -> None:
    syn = make_vertebra(
        noise_hu_sd=15.0,
        lesions=(Sphere(5.0, (-11.0, -15.0, 0.0)), Sphere(5.0, (11.0, -15.0, 0.0))),
    )
    f = _detect(syn)
    assert f.pedicle_left_involved and f.pedicle_right_involved


def test_intact_dense_pedicles_are_not_involved() -> None:
    syn = make_vertebra(noise_hu_sd=25.0, trabecular_hu=90.0, lesions=(Sphere(6.0),))
    f = _detect(syn)
    assert f.n_lesions == 1
    assert not (f.pedicle_left_involved or f.pedicle_right_involved)


# --- blastic ---------------------------------------------------------------------------------
def test_blastic_focus_is_measured() -> None:
    syn = make_vertebra(noise_hu_sd=15.0, blastic=(Sphere(6.0, (2.0, 2.0, 0.0), hu=750.0),))
    f = _detect(syn)
    expected = 4 / 3 * np.pi * 6.0**3 / 1000
    assert f.n_lesions == 0
    assert f.blastic_volume_ml == pytest.approx(expected, rel=0.25)
    assert f.blastic_fraction > 0.02
    plain = _detect(make_vertebra(noise_hu_sd=15.0))
    assert plain.blastic_volume_ml == 0.0


# --- helpers against independent computations ------------------------------------------------
def test_masked_smooth_equals_gaussian_on_full_support() -> None:
    rng = np.random.default_rng(0)
    hu = rng.normal(100, 30, size=(20, 22, 18)).astype(np.float32)
    support = np.ones(hu.shape, dtype=bool)
    spacing = (0.5, 1.0, 2.0)
    out = masked_smooth(hu, support, spacing, sigma_mm=1.0)
    ref = ndimage.gaussian_filter(hu, (2.0, 1.0, 0.5))
    # normalised convolution = plain convolution away from the border
    np.testing.assert_allclose(out[6:-6, 4:-4, 3:-3], ref[6:-6, 4:-4, 3:-3], atol=1e-3)


def test_masked_smooth_ignores_values_outside_support() -> None:
    hu = np.full((15, 15, 15), 200.0, dtype=np.float32)
    hu[:, :, 8:] = 900.0  # "cortex", outside the support
    support = np.zeros(hu.shape, dtype=bool)
    support[:, :, :8] = True
    out = masked_smooth(hu, support, (1.0, 1.0, 1.0))
    np.testing.assert_allclose(out[support], 200.0, atol=1e-3)


def test_background_ignores_a_large_lesion() -> None:
    rng = np.random.default_rng(1)
    bone = rng.normal(180.0, 6.0, 3000)
    lesion = rng.normal(35.0, 6.0, 4000)  # more lesion than bone in the core
    bg, spread = background_hu(np.concatenate([bone, lesion]))
    assert bg == pytest.approx(180.0, abs=1.5)
    assert spread == pytest.approx(6.0, rel=0.25)
    with pytest.raises(ValueError, match="at least one"):
        background_hu(np.array([]))


def test_crop_mismatch_and_empty_body() -> None:
    syn = make_vertebra(noise_hu_sd=0.0)
    with pytest.raises(CropShapeError, match="expected the vertebra crop shape"):
        detect_lytic_lesions(syn.hu[:-1], syn.region, density=None)
    region = syn.region
    empty = type(region)(**{**region.__dict__, "body": np.zeros_like(region.body)})
    f = detect_lytic_lesions(syn.hu, empty, density=None)
    assert (f.n_lesions, f.volume_ml, f.background_hu) == (0, 0.0, None)


# --- phantom (spinewatch.imaging.phantom + anatomy.find_vertebrae) ---------------------------
@pytest.mark.parametrize(
    ("spacing_mm", "orientation", "tilt_deg", "noise"),
    [((1.0, 1.0, 1.0), "RAS", 0.0, 10.0), ((1.5, 1.5, 1.5), "PIR", 12.0, 25.0)],
)
def test_phantom_lesion_volumes(
    spacing_mm: tuple[float, float, float], orientation: str, tilt_deg: float, noise: float
) -> None:
    from spinewatch.imaging.anatomy import find_vertebrae
    from spinewatch.imaging.phantom import LesionSpec, PhantomSpec, make_spine_phantom

    spec = PhantomSpec(
        levels=("T12", "L1", "L2", "L3"),
        spacing_mm=spacing_mm,
        orientation=orientation,
        tilt_deg=tilt_deg,
        noise_hu_sd=noise,
        lesions={
            "T12": (LesionSpec(4.0, (3.0, 3.0, 2.0)),),
            "L1": (LesionSpec(8.0),),
            "L2": (LesionSpec(6.0, (0.0, -12.0, 0.0)),),
        },
        trabecular_hu={"L3": 85.0},
    )
    ph = make_spine_phantom(spec)
    found = {}
    for region in find_vertebrae(ph.labels, "totalsegmentator"):
        hu = ph.ct.hu[region.bbox]
        found[str(region.level)] = detect_lytic_lesions(
            hu, region, density=trabecular_density(hu, region)
        )
    for level in ("T12", "L1", "L2"):
        truth = ph.truth[level]
        assert found[level].n_lesions == 1, level
        assert found[level].volume_ml == pytest.approx(truth.lytic_volume_ml, rel=0.15), level
        assert found[level].posterior_wall_involved == truth.posterior_wall_involved, level
    assert found["L3"].n_lesions == 0  # 85 HU osteoporotic, intact


# --- a real scan (../shared/data): TotalSegmentator's example abdominal CT, 3 mm voxels ----------
@pytest.mark.shared_data
def test_real_scan_has_no_false_lesions(shared_file) -> None:  # type: ignore[no-untyped-def]
    """The TotalSegmentator test CT (a routine abdominal scan, no bone lesion reported): at 3 mm
    voxels the detector must not turn partial volume into lesions; the T11 sliver at the scan's
    edge is too thin to analyse and says so (background None)."""
    from spinewatch.imaging.anatomy import find_vertebrae
    from spinewatch.imaging.io import load_study

    ct, labels = load_study(
        shared_file("ct/totalseg-example/example_ct_sm.nii.gz"),
        shared_file("ct/totalseg-example/example_seg.nii.gz"),
    )
    assert ct is not None
    seen = {}
    for region in find_vertebrae(labels, "totalsegmentator"):
        hu = ct.hu[region.bbox]
        d = trabecular_density(hu, region)
        f = detect_lytic_lesions(hu, region, density=d)
        seen[str(region.level)] = f
        assert f.n_lesions == 0, region.level
        assert not (f.posterior_wall_involved or f.pedicle_left_involved), region.level
        assert not f.pedicle_right_involved, region.level
        if f.background_hu is not None:
            assert d is not None and 60.0 < f.background_hu < 300.0
            assert abs(f.background_hu - d.median_hu) < 15.0
    assert {"T12", "L1", "L2"} <= set(seen)
    assert seen["L1"].background_hu is not None
