"""Trabecular density: erosion in mm, exclusions, Pickhardt flags, phantom truth."""

from __future__ import annotations

import numpy as np
import pytest
from _lesions_support import Sphere, make_region_obj, make_vertebra, rotation
from scipy import ndimage

from spinewatch.core.errors import InputError
from spinewatch.core.levels import VertebralLevel
from spinewatch.imaging.density import (
    DEFAULT_EROSION_MM,
    CropShapeError,
    ErosionError,
    depth_mm,
    eroded_mask,
    trabecular_density,
)
from spinewatch.imaging.volume import Grid


def _box_region(shape, spacing, lo, hi, level="L1"):
    grid = Grid(shape, np.diag([*spacing, 1.0]))
    body = np.zeros(shape, dtype=bool)
    body[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]] = True
    return make_region_obj(
        level=VertebralLevel.parse(level),
        grid=grid,
        mask=body.copy(),
        body=body,
        origin_mm=grid.to_world(np.array(shape) / 2.0),
        superior=np.array([0.0, 0.0, 1.0]),
        anterior=np.array([0.0, 1.0, 0.0]),
    )


def test_depth_matches_scipy_on_padded_mask() -> None:
    mask = np.zeros((12, 14, 9), dtype=bool)
    mask[2:10, 3:12, 1:8] = True
    spacing = (0.7, 1.1, 2.0)
    ref = ndimage.distance_transform_edt(np.pad(mask, 1), sampling=spacing)[1:-1, 1:-1, 1:-1]
    np.testing.assert_allclose(depth_mm(mask, spacing), ref)


def test_erosion_is_in_mm_with_anisotropic_spacing() -> None:
    # 30 x 30 x 30 mm box at 0.5 x 1 x 2 mm voxels: a 4 mm erosion removes 8, 4 and 2 voxels
    shape = (64, 34, 19)
    mask = np.zeros(shape, dtype=bool)
    mask[2:62, 2:32, 2:17] = True
    out = eroded_mask(mask, (0.5, 1.0, 2.0), 4.0)
    idx = np.argwhere(out)
    assert tuple(idx.min(axis=0)) == (2 + 8, 2 + 4, 2 + 2)
    assert tuple(idx.max(axis=0)) == (61 - 8, 31 - 4, 16 - 2)
    # compared with a voxel-count erosion, which is wrong on anisotropic grids
    naive = ndimage.binary_erosion(mask, iterations=4)
    assert out.sum() != naive.sum()


def test_eroded_mask_zero_is_identity_and_bad_values_refused() -> None:
    mask = np.zeros((5, 5, 5), dtype=bool)
    mask[1:4, 1:4, 1:4] = True
    assert np.array_equal(eroded_mask(mask, (1.0, 1.0, 1.0), 0.0), mask)
    for bad in (-1.0, float("nan"), float("inf")):
        with pytest.raises(ErosionError, match=str(bad)):
            eroded_mask(mask, (1.0, 1.0, 1.0), bad)


def test_median_mean_and_count_against_numpy() -> None:
    syn = make_vertebra(noise_hu_sd=15.0, seed=3, rot=rotation(12), voxel_rot=rotation(30, "z"))
    d = trabecular_density(syn.hu, syn.region)
    assert d is not None
    assert d.erosion_mm == DEFAULT_EROSION_MM
    core = eroded_mask(syn.region.body, syn.region.grid.spacing_mm, DEFAULT_EROSION_MM)
    vals = syn.hu[core]
    assert d.n_voxels == vals.size
    assert d.median_hu == pytest.approx(float(np.median(vals)))
    assert d.mean_hu == pytest.approx(float(vals.mean()))
    assert abs(d.median_hu - 200.0) < 3.0  # cortex (850 HU) eroded away
    assert d.flags == ()


def test_small_body_shrinks_erosion_and_reports_it() -> None:
    # a cervical-size body: 14 x 10 mm section, 12 mm high -> depth ~5-6 mm
    syn = make_vertebra(level="C4", a_mm=7.0, b_mm=5.0, h_mm=12.0, noise_hu_sd=5.0)
    d = trabecular_density(syn.hu, syn.region)
    assert d is not None
    assert 1.0 < d.erosion_mm < DEFAULT_EROSION_MM
    assert abs(d.median_hu - 200.0) < 5.0


def test_too_small_or_empty_body_gives_none() -> None:
    tiny = _box_region((10, 10, 10), (1.0, 1.0, 1.0), (4, 4, 4), (7, 7, 7))
    assert trabecular_density(np.full((10, 10, 10), 200.0), tiny) is None
    empty = _box_region((10, 10, 10), (1.0, 1.0, 1.0), (0, 0, 0), (0, 0, 0))
    assert trabecular_density(np.full((10, 10, 10), 200.0), empty) is None


def test_cement_and_its_surroundings_are_excluded() -> None:
    plain = make_vertebra(noise_hu_sd=0.0)
    treated = make_vertebra(noise_hu_sd=0.0, cement=(Sphere(7.0, (0, 0, 0), hu=2500.0),))
    d0 = trabecular_density(plain.hu, plain.region)
    d1 = trabecular_density(treated.hu, treated.region)
    assert d0 is not None and d1 is not None
    assert d1.median_hu == d0.median_hu == 200.0
    assert d1.mean_hu == pytest.approx(200.0)  # no cement voxel in the mean
    assert d1.n_voxels < d0.n_voxels - treated.extra["n_cement"]


@pytest.mark.parametrize(
    ("hu", "flags"),
    [
        (161.0, ()),
        (160.0, ("osteoporosis_likely_hu_le_160",)),
        (145.5, ("osteoporosis_likely_hu_le_160",)),
        (145.0, ("osteoporosis_likely_hu_le_160", "fracture_risk_hu_le_145")),
        (110.5, ("osteoporosis_likely_hu_le_160", "fracture_risk_hu_le_145")),
        (
            110.0,
            ("osteoporosis_likely_hu_le_160", "fracture_risk_hu_le_145", "osteoporosis_hu_le_110"),
        ),
    ],
)
def test_pickhardt_flag_boundaries(hu: float, flags: tuple[str, ...]) -> None:
    region = _box_region((30, 30, 30), (1.0, 1.0, 1.0), (2, 2, 2), (28, 28, 28))
    d = trabecular_density(np.full((30, 30, 30), hu, dtype=np.float32), region)
    assert d is not None
    assert d.median_hu == hu
    assert d.flags == flags


def test_crop_shape_mismatch_is_an_input_error() -> None:
    region = _box_region((20, 20, 20), (1.0, 1.0, 1.0), (2, 2, 2), (18, 18, 18))
    with pytest.raises(CropShapeError, match=r"\(20, 20, 19\).*\(20, 20, 20\)"):
        trabecular_density(np.zeros((20, 20, 19)), region)
    assert issubclass(CropShapeError, InputError)
    with pytest.raises(ErosionError, match="-2"):
        trabecular_density(np.zeros((20, 20, 20)), region, erosion_mm=-2.0)


def test_phantom_levels_match_truth() -> None:
    from spinewatch.imaging.anatomy import find_vertebrae
    from spinewatch.imaging.phantom import PhantomSpec, make_spine_phantom

    spec = PhantomSpec(
        levels=("T12", "L1", "L2"),
        spacing_mm=(1.2, 1.2, 1.5),
        orientation="LPS",
        noise_hu_sd=20.0,
        trabecular_hu={"T12": 95.0, "L1": 140.0, "L2": 230.0},
        cement=("L2",),
    )
    ph = make_spine_phantom(spec)
    regions = find_vertebrae(ph.labels, "totalsegmentator")
    assert [str(r.level) for r in regions] == ["T12", "L1", "L2"]
    for r in regions:
        d = trabecular_density(ph.ct.hu[r.bbox], r)
        truth = ph.truth[str(r.level)].trabecular_hu
        assert d is not None
        assert abs(d.median_hu - truth) <= 4.0, (r.level, d.median_hu, truth)
    flags = {str(r.level): trabecular_density(ph.ct.hu[r.bbox], r).flags for r in regions}  # type: ignore[union-attr]
    assert "osteoporosis_hu_le_110" in flags["T12"]
    assert "fracture_risk_hu_le_145" in flags["L1"] and "osteoporosis_hu_le_110" not in flags["L1"]
    assert flags["L2"] == ()
