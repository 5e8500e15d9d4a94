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


def test_leak_just_outside_the_body_counts_but_far_away_does_not() -> None:
    syn = make_vertebra(noise_hu_sd=0.0)
    hu = syn.hu.copy()
    mask = syn.region.mask
    from scipy import ndimage

    dist = ndimage.distance_transform_edt(~mask, sampling=syn.region.grid.spacing_mm)
    near = (dist > 0) & (dist <= 2.0)
    far = dist > CEMENT_SEARCH_MARGIN_MM + 2.0
    hu[near] = 2000.0
    hu[far] = 3000.0  # e.g. a neighbour's cement or a screw outside the search zone
    c = detect_cement(hu, syn.region)
    assert c.volume_ml == pytest.approx(near.sum() * syn.region.grid.voxel_volume_ml)
    assert c.max_hu == 2000.0


def test_presence_threshold_boundary() -> None:
    syn = make_vertebra(noise_hu_sd=0.0)
    body_idx = np.argwhere(syn.region.body)
    voxel_ml = syn.region.grid.voxel_volume_ml
    n_min = round(MIN_CEMENT_ML / voxel_ml)
    for n, present in ((n_min - 1, False), (n_min, True)):
        hu = syn.hu.copy()
        sel = body_idx[:n]
        hu[tuple(sel.T)] = 1600.0
        c = detect_cement(hu, syn.region)
        assert c.present is present
        assert c.volume_ml == pytest.approx(n * voxel_ml)
    hu = syn.hu.copy()
    hu[tuple(body_idx[: n_min * 2].T)] = CEMENT_HU  # exactly 1500 HU is not above it
    assert not detect_cement(hu, syn.region).present


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
