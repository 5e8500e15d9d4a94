"""The lesion scale space on a decimated grid (``PYRAMID_STEP_MM``) against the full-resolution
one: the documented tolerance of issue 13's speed-up, shown on sub-millimetre vertebrae.

On voxels of 0.5 mm the scales of 2-4 mm are smoothed on a 1 mm grid and brought back by cubic
convolution (:func:`~spinewatch.imaging._bone_statistics.smooth_scales`). The tolerance held here:

* the smoothed HU on the support within :data:`SMOOTH_TOL_HU` of the full-resolution value at every
  scale (the 1 mm scale is not decimated: equal);
* the findings of :func:`~spinewatch.imaging.lesions.detect_lytic_lesions`: the same number of
  lesions, the same posterior-wall and pedicle flags, the lesion volume within
  :data:`VOLUME_TOL_REL` (or :data:`VOLUME_TOL_ML`), the background and the lesion's HU within
  :data:`HU_TOL`;

on the drawn vertebra at 0.5 mm with the noise of a thin-slice CT (80 HU per voxel) and a
lesion of the insertion toolkit in every shape and place (40 HU; 0.5 ml, 1 ml at a pedicle;
found by both), and with none. On these the findings came out equal, lesion masks voxel for
voxel: the tolerances are the bound the tests hold, not the differences seen. Voxels larger
than 0.5 mm along every axis take the full-resolution path, value for value.
"""

from __future__ import annotations

import numpy as np
import pytest
from _lesions_support import make_vertebra, rotation

import spinewatch.imaging._bone_statistics as bone_statistics
from spinewatch.imaging._bone_statistics import _upsample, pyramid_factors, smooth_scales
from spinewatch.imaging.lesions import SCALES_MM, detect_lytic_lesions
from spinewatch.validation import PLACES, SHAPES, LesionSpec, insert_lesion

SMOOTH_TOL_HU = 1.5
VOLUME_TOL_REL = 0.05
VOLUME_TOL_ML = 0.02
HU_TOL = 1.0


@pytest.fixture(scope="module")
def vertebra():  # type: ignore[no-untyped-def]
    return make_vertebra(spacing_mm=(0.5, 0.5, 0.5), noise_hu_sd=80.0, rot=rotation(10), seed=7)


def _exact(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bone_statistics, "PYRAMID_STEP_MM", 0.0)


def test_decimation_only_on_sub_millimetre_axes() -> None:
    assert pyramid_factors((0.5, 0.5, 0.5), SCALES_MM) == (2, 2, 2)
    assert pyramid_factors((0.4, 0.5, 1.0), SCALES_MM) == (2, 2, 1)
    assert pyramid_factors((0.7, 0.7, 1.0), SCALES_MM) == (1, 1, 1)
    assert pyramid_factors((0.5, 0.5, 0.5), (1.0, 1.5)) == (1, 1, 1)  # 1.5 mm < two steps


def test_upsample_is_exact_on_samples_and_on_quadratics() -> None:
    i, j, k = np.meshgrid(np.arange(21), np.arange(16), np.arange(9), indexing="ij")
    full = (0.3 * i * i - 2.0 * i * j + 0.5 * k * k + 7.0 * j + 3.0).astype(np.float32)
    coarse = full[::2, ::2, :]
    up = _upsample(coarse, (2, 2, 1), [(0, 21), (0, 16), (0, 9)])
    assert np.array_equal(up[::2, ::2], coarse)
    # cubic convolution (Keys) reproduces a quadratic away from the ends
    np.testing.assert_allclose(up[2:-3, 2:-3], full[2:-3, 2:-3], rtol=1e-5, atol=1e-3)
    # a box of the output is the same box of the whole output
    part = _upsample(coarse, (2, 2, 1), [(3, 14), (5, 12), (2, 7)])
    assert np.array_equal(part, up[3:14, 5:12, 2:7])


def test_smoothed_hu_within_tolerance(vertebra, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    region = vertebra.region
    spec = LesionSpec(volume_ml=1.0, hu=25.0, shape="lobulated", place="posterior_wall")
    hu = insert_lesion(vertebra.hu, region, spec, seed=3).hu
    body = np.asarray(region.body)
    fast = smooth_scales(hu, body, region.grid.spacing_mm, SCALES_MM)
    _exact(monkeypatch)
    full = smooth_scales(hu, body, region.grid.spacing_mm, SCALES_MM)
    assert np.array_equal(fast[0], full[0])
    for sigma, a, b in zip(SCALES_MM[1:], fast[1:], full[1:], strict=True):
        err = float(np.abs(a - b)[body].max())
        assert 0.0 < err <= SMOOTH_TOL_HU, (sigma, err)


def test_coarse_voxels_take_the_full_resolution_path(monkeypatch: pytest.MonkeyPatch) -> None:
    syn = make_vertebra(spacing_mm=(0.7, 0.7, 1.0), noise_hu_sd=15.0, seed=2)
    body = np.asarray(syn.region.body)
    fast = smooth_scales(syn.hu, body, syn.region.grid.spacing_mm, SCALES_MM)
    _exact(monkeypatch)
    full = smooth_scales(syn.hu, body, syn.region.grid.spacing_mm, SCALES_MM)
    assert all(np.array_equal(a, b) for a, b in zip(fast, full, strict=True))


def _assert_within_tolerance(fast, full) -> None:  # type: ignore[no-untyped-def]
    assert fast.n_lesions == full.n_lesions
    assert fast.posterior_wall_involved == full.posterior_wall_involved
    assert fast.pedicle_left_involved == full.pedicle_left_involved
    assert fast.pedicle_right_involved == full.pedicle_right_involved
    tol_ml = max(VOLUME_TOL_REL * full.volume_ml, VOLUME_TOL_ML)
    assert abs(fast.volume_ml - full.volume_ml) <= tol_ml, (fast.volume_ml, full.volume_ml)
    assert abs(fast.largest_ml - full.largest_ml) <= tol_ml
    assert fast.background_hu == pytest.approx(full.background_hu, abs=HU_TOL)
    if full.lesion_hu is None:
        assert fast.lesion_hu is None
    else:
        assert fast.lesion_hu == pytest.approx(full.lesion_hu, abs=HU_TOL)


@pytest.mark.parametrize("place", PLACES)
@pytest.mark.parametrize("shape", SHAPES)
def test_lesion_findings_within_tolerance(  # type: ignore[no-untyped-def]
    vertebra, monkeypatch: pytest.MonkeyPatch, shape: str, place: str
) -> None:
    region = vertebra.region
    volume_ml = 1.0 if place.startswith("pedicle") else 0.5  # most of it in the body
    spec = LesionSpec(volume_ml=volume_ml, hu=40.0, shape=shape, place=place)
    hu = insert_lesion(vertebra.hu, region, spec, seed=5).hu
    fast = detect_lytic_lesions(hu, region, density=None)
    _exact(monkeypatch)
    full = detect_lytic_lesions(hu, region, density=None)
    assert full.n_lesions >= 1  # the comparison is between two findings, not two empty ones
    _assert_within_tolerance(fast, full)


def test_no_lesion_found_either_way(vertebra, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    fast = detect_lytic_lesions(vertebra.hu, vertebra.region, density=None)
    _exact(monkeypatch)
    full = detect_lytic_lesions(vertebra.hu, vertebra.region, density=None)
    assert fast.n_lesions == full.n_lesions == 0
    _assert_within_tolerance(fast, full)
