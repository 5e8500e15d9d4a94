"""Cement/metal detection: volume, search zone, presence threshold."""

from __future__ import annotations

import numpy as np
import pytest
from _lesions_support import Sphere, make_vertebra, rotation

from spinewatch.imaging.cement import (
    CEMENT_HU,
    CEMENT_SEARCH_MARGIN_MM,
    MIN_CEMENT_ML,
    cement_mask,
    detect_cement,
)
from spinewatch.imaging.density import CropShapeError


@pytest.mark.parametrize("spacing_mm", [(1.0, 1.0, 1.0), (0.8, 0.8, 1.5)])
def test_cement_volume_matches_drawn_voxels(spacing_mm: tuple[float, float, float]) -> None:
    syn = make_vertebra(
        spacing_mm=spacing_mm,
        noise_hu_sd=20.0,
        cement=(Sphere(8.0, (2.0, 0.0, 0.0), hu=2400.0),),
        rot=rotation(10),
    )
    c = detect_cement(syn.hu, syn.region)
    expected = syn.extra["n_cement"] * syn.region.grid.voxel_volume_ml
    assert c.present
    assert c.volume_ml == pytest.approx(expected, rel=1e-9)
    assert 2300.0 < c.max_hu < 2500.0
    assert cement_mask(syn.hu, syn.region).sum() == syn.extra["n_cement"]


def test_no_cement_in_untreated_vertebra() -> None:
    syn = make_vertebra(noise_hu_sd=25.0)
    c = detect_cement(syn.hu, syn.region)
    assert (c.present, c.volume_ml) == (False, 0.0)
    assert c.max_hu < CEMENT_HU  # the 850 HU cortex is bone, not cement


def _local_mm(region):  # type: ignore[no-untyped-def]
    """Each voxel's (right, anterior, superior) mm from the body centroid, crop shape + (3,)."""
    shape = region.mask.shape
    ijk = np.stack(np.meshgrid(*(np.arange(n) for n in shape), indexing="ij"), axis=-1)
    return (region.grid.to_world(ijk) - region.frame.origin_mm) @ region.frame.rotation


def test_leak_just_outside_the_body_counts_but_far_away_does_not() -> None:
    """Cement bulging through the anterior cortex counts up to the margin outside the mask; dense
    matter beyond the margin (a neighbour's cement, a screw) neither counts nor is max_hu."""
    from scipy import ndimage

    syn = make_vertebra(noise_hu_sd=0.0, b_mm=16.0)
    region = syn.region
    hu = syn.hu.copy()
    local = _local_mm(region)
    ball = np.linalg.norm(local - np.array([0.0, 16.0, 0.0]), axis=-1) <= 5.0
    hu[ball] = 2400.0
    dist = ndimage.distance_transform_edt(~region.mask, sampling=region.grid.spacing_mm)
    far = dist > CEMENT_SEARCH_MARGIN_MM + 2.0
    hu[far] = 3000.0
    leak = ball & ~region.mask & (dist <= CEMENT_SEARCH_MARGIN_MM)
    assert leak.sum() > 20 and (ball & ~region.mask & (dist > CEMENT_SEARCH_MARGIN_MM)).any()
    c = detect_cement(hu, region)
    expected = np.count_nonzero(ball & (dist <= CEMENT_SEARCH_MARGIN_MM))
    assert c.volume_ml == pytest.approx(expected * region.grid.voxel_volume_ml)
    assert c.max_hu == 2400.0


def test_presence_threshold_boundary() -> None:
    """A compact blob of cement is present from MIN_CEMENT_ML on (50 voxels at 1 mm)."""
    syn = make_vertebra(noise_hu_sd=0.0)
    voxel_ml = syn.region.grid.voxel_volume_ml
    n_min = round(MIN_CEMENT_ML / voxel_ml)
    centre = np.argwhere(syn.region.body).mean(axis=0).astype(int)
    block = np.zeros(syn.hu.shape, dtype=bool)
    i, j, k = centre
    block[i : i + 4, j : j + 4, k : k + 3] = True  # 48 voxels, 3 to 4 thick: a compact core
    extra = [(i + 4, j, k), (i + 4, j + 1, k)]
    for n, present in ((n_min - 1, False), (n_min, True)):
        blob = block.copy()
        for e in extra[: n - 48]:
            blob[e] = True
        assert blob.sum() == n
        hu = syn.hu.copy()
        hu[blob] = 2200.0
        c = detect_cement(hu, syn.region)
        assert c.present is present
        assert c.volume_ml == pytest.approx(n * voxel_ml)
    hu = syn.hu.copy()
    hu[block] = CEMENT_HU  # exactly 1500 HU is not above it
    assert not detect_cement(hu, syn.region).present


def test_dense_cortex_is_not_cement() -> None:
    """A cortex as dense as cement (1800 and even 2600 HU) is a thin shell on the body's
    surface: not cement (the real VerSe004 L2 crop's 1500-1893 HU cortex was called cement)."""
    for cortex_hu in (1800.0, 2600.0):
        syn = make_vertebra(noise_hu_sd=15.0, seed=3)
        hu = syn.hu.copy()
        shell = hu > 700.0
        hu[shell] += np.float32(cortex_hu - 850.0)  # the 1 mm shell and the arch, with noise
        c = detect_cement(hu, syn.region)
        assert (c.present, c.volume_ml) == (False, 0.0), cortex_hu
        assert c.max_hu > CEMENT_HU


def test_less_opacified_cement_counts_inside_the_body_only() -> None:
    """A compact 1700 HU blob (a weakly opacified cement) is cement in the trabecular interior;
    the same density in a blob on the body's surface, where cortex can be that dense, is not --
    at cement density it is, wherever it lies."""
    inside = make_vertebra(noise_hu_sd=10.0, cement=(Sphere(6.0, hu=1700.0),))
    c = detect_cement(inside.hu, inside.region)
    assert c.present
    assert c.volume_ml == pytest.approx(
        inside.extra["n_cement"] * inside.region.grid.voxel_volume_ml, rel=0.02
    )
    for hu_blob, present in ((1700.0, False), (2600.0, True)):
        surface = make_vertebra(noise_hu_sd=10.0, cement=(Sphere(4.0, (0.0, 14.0, 0.0), hu_blob),))
        assert surface.extra["n_cement"] > 100
        assert detect_cement(surface.hu, surface.region).present is present, hu_blob


def test_crop_shape_mismatch() -> None:
    syn = make_vertebra(noise_hu_sd=0.0)
    with pytest.raises(CropShapeError):
        detect_cement(syn.hu[1:], syn.region)


def test_phantom_cement_truth() -> None:
    from spinewatch.imaging.anatomy import find_vertebrae
    from spinewatch.imaging.phantom import PhantomSpec, make_spine_phantom

    ph = make_spine_phantom(
        PhantomSpec(levels=("L1", "L2", "L3"), spacing_mm=(1.5, 1.5, 1.5), cement=("L2",))
    )
    for region in find_vertebrae(ph.labels, "totalsegmentator"):
        c = detect_cement(ph.ct.hu[region.bbox], region)
        truth = ph.truth[str(region.level)]
        assert c.present == truth.cement
        assert c.volume_ml == pytest.approx(truth.cement_volume_ml, rel=0.02, abs=1e-9)
