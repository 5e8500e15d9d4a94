"""The lesion-insertion toolkit (spinewatch.validation): truth, partial volume, noise, placement.

Checked on the drawn vertebra of ``_lesions_support`` (known geometry); the real scans use it in
``test_lesions_real.py``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from _lesions_support import make_vertebra, rotation
from scipy import ndimage

from spinewatch.core.errors import InputError
from spinewatch.imaging.anatomy import local_coordinates
from spinewatch.validation import (
    PLACES,
    SHAPES,
    InsertionError,
    LesionSpec,
    NoiseModel,
    estimate_noise,
    insert_lesion,
    posterior_distance_mm,
    synthesize_noise,
    with_trabecular_background,
)
from spinewatch.validation.lesion_insertion import (
    CENTRAL_WALL_GAP_MM,
    PEDICLE_REACH_MM,
    WALL_ZONE_MM,
)

QUIET = NoiseModel(sd_hu=0.0, lag1_correlation=(0.0, 0.0, 0.0), n_voxels=0, source="test")


@pytest.fixture(scope="module")
def vertebra():  # type: ignore[no-untyped-def]
    return make_vertebra(spacing_mm=(1.0, 1.0, 1.0), noise_hu_sd=15.0, rot=rotation(10), seed=4)


def _local(region, mask):  # type: ignore[no-untyped-def]
    return local_coordinates(region.grid, region.frame, np.argwhere(mask))


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("place", PLACES)
def test_truth_volume_placement_and_confinement(vertebra, shape: str, place: str) -> None:  # type: ignore[no-untyped-def]
    region = vertebra.region
    spec = LesionSpec(volume_ml=2.0, hu=25.0, shape=shape, place=place)
    les = insert_lesion(vertebra.hu, region, spec, seed=11, noise=QUIET)
    vox = region.grid.voxel_volume_ml
    f = les.fraction
    assert f.min() >= 0.0 and f.max() <= 1.0
    assert les.volume_ml == pytest.approx(float(f.sum(dtype=np.float64)) * vox)
    assert les.volume_ml == pytest.approx(2.0, rel=0.02)
    # partial volume: the edge voxels hold fractions strictly between 0 and 1
    assert np.count_nonzero((f > 0.05) & (f < 0.95)) > 50
    body, posterior = region.body, region.mask & ~region.body
    if place.startswith("pedicle_"):
        side = place.removeprefix("pedicle_")
        right_mm = _local(region, f > 0)[:, 0]
        in_post = (f > 0)[tuple(np.argwhere(f > 0).T)] & posterior[tuple(np.argwhere(f > 0).T)]
        # posterior-element voxels that carry lesion are on the chosen side only
        assert np.all(np.sign(right_mm[in_post]) == (-1.0 if side == "left" else 1.0))
        to_body = ndimage.distance_transform_edt(~body, sampling=region.grid.spacing_mm)
        assert np.all(to_body[(f > 0) & posterior] <= PEDICLE_REACH_MM + 1e-6)
        assert getattr(les, f"pedicle_{side}_involved")
        assert not getattr(les, f"pedicle_{'right' if side == 'left' else 'left'}_involved")
        assert les.body_volume_ml > 0.2 * les.volume_ml
    else:
        assert not np.any(f[~body])  # confined to the body
        assert les.body_volume_ml == pytest.approx(les.volume_ml)
        assert not (les.pedicle_left_involved or les.pedicle_right_involved)
    if place == "central":
        assert not les.posterior_wall_involved
        assert les.wall_zone_ml == 0.0
        assert les.posterior_wall_gap_mm >= CENTRAL_WALL_GAP_MM
    if place == "posterior_wall":
        assert les.posterior_wall_involved and les.posterior_wall_gap_mm <= 0.25
        assert les.wall_zone_ml >= 0.1 * les.volume_ml


def test_partial_volume_blend_is_exact_without_noise(vertebra) -> None:  # type: ignore[no-untyped-def]
    region = vertebra.region
    les = insert_lesion(vertebra.hu, region, LesionSpec(1.0, -10.0), seed=3, noise=QUIET)
    f = les.fraction.astype(np.float64)
    old = vertebra.hu.astype(np.float64)
    np.testing.assert_allclose(les.hu, (1 - f) * old + f * -10.0, atol=1e-3)
    # the integrated HU deficit is the volume times the contrast, voxel by voxel
    deficit = float(np.sum(old - les.hu))
    assert deficit == pytest.approx(float(np.sum(f * (old + 10.0))), rel=1e-5)


def test_sphere_radius_matches_its_volume(vertebra) -> None:  # type: ignore[no-untyped-def]
    les = insert_lesion(vertebra.hu, vertebra.region, LesionSpec(1.5, 20.0), seed=5, noise=QUIET)
    (part,) = les.parts
    expected = (1.5e3 * 3 / (4 * math.pi)) ** (1 / 3)
    assert part.radii_mm == pytest.approx([expected] * 3, rel=0.02)


def test_lesion_carries_the_scan_noise(vertebra) -> None:  # type: ignore[no-untyped-def]
    model = NoiseModel(sd_hu=20.0, lag1_correlation=(0.0, 0.0, 0.0), n_voxels=1, source="test")
    les = insert_lesion(vertebra.hu, vertebra.region, LesionSpec(5.0, 30.0), seed=8, noise=model)
    inside = les.fraction >= 0.999
    assert np.std(les.hu[inside]) == pytest.approx(20.0, rel=0.12)
    assert np.mean(les.hu[inside]) == pytest.approx(30.0, abs=3.0)
    # outside the lesion nothing changed
    assert np.array_equal(les.hu[les.fraction == 0], vertebra.hu[les.fraction == 0])


def test_deterministic_with_a_seed(vertebra) -> None:  # type: ignore[no-untyped-def]
    spec = LesionSpec(3.0, 15.0, "lobulated", "posterior_wall")
    a = insert_lesion(vertebra.hu, vertebra.region, spec, seed=21)
    b = insert_lesion(vertebra.hu, vertebra.region, spec, seed=21)
    c = insert_lesion(vertebra.hu, vertebra.region, spec, seed=22)
    assert np.array_equal(a.hu, b.hu) and np.array_equal(a.fraction, b.fraction)
    assert not np.array_equal(a.fraction, c.fraction)


def test_posterior_distance_follows_the_drawn_wall() -> None:
    syn = make_vertebra(noise_hu_sd=0.0)  # b = 16 mm: the wall at local anterior -16 mm
    region = syn.region
    dist = posterior_distance_mm(region.body, region)
    idx = np.argwhere(region.body)
    loc = local_coordinates(region.grid, region.frame, idx)
    mid = (np.abs(loc[:, 0]) < 3) & (np.abs(loc[:, 2]) < 5) & (loc[:, 1] < 0)
    # along the midline the distance to the wall is anterior + 16 mm (within a voxel)
    got = dist[tuple(idx[mid].T)]
    np.testing.assert_allclose(got, loc[mid, 1] + 16.0, atol=1.0)
    assert np.isinf(dist[~region.body]).all()


def test_noise_estimate_recovers_known_noise() -> None:
    rng = np.random.default_rng(0)
    shape = (70, 70, 40)
    white = rng.normal(0.0, 1.0, shape)
    vertebra = np.zeros(shape, dtype=bool)
    vertebra[25:45, 25:45, 10:30] = True
    for sigma_vox, rho in ((0.0, 0.0), (1.0, math.exp(-0.25))):
        n = ndimage.gaussian_filter(white, sigma_vox) if sigma_vox else white
        n = n / n.std() * 20.0
        hu = np.where(vertebra, 300.0, 40.0) + n
        model = estimate_noise(hu, vertebra, (1.0, 1.0, 1.0))
        assert model.source == "soft tissue"
        assert model.sd_hu == pytest.approx(20.0, rel=0.12)
        assert model.lag1_correlation == pytest.approx((rho,) * 3, abs=0.1)


def test_noise_estimate_on_a_masked_crop_uses_the_bone() -> None:
    syn = make_vertebra(noise_hu_sd=15.0)
    masked = np.where(syn.region.mask, syn.hu, 0.0)  # a crop with zeros outside the label
    model = estimate_noise(masked, syn.region.mask, syn.region.grid.spacing_mm)
    assert model.source == "bone residual"
    assert model.sd_hu == pytest.approx(15.0, rel=0.2)


def test_synthesized_noise_matches_its_model() -> None:
    model = NoiseModel(sd_hu=25.0, lag1_correlation=(0.6, 0.3, 0.0), n_voxels=1, source="test")
    n = synthesize_noise((60, 60, 60), model, np.random.default_rng(1))
    assert n.std() == pytest.approx(25.0, rel=0.05)
    for axis, rho in enumerate(model.lag1_correlation):
        a = np.moveaxis(n, axis, 0)
        r = np.corrcoef(a[:-1].ravel(), a[1:].ravel())[0, 1]
        assert r == pytest.approx(rho, abs=0.06)


def test_trabecular_background_moves_keeping_texture() -> None:
    syn = make_vertebra(noise_hu_sd=15.0, trabecular_hu=200.0)
    region = syn.region
    new, shift = with_trabecular_background(syn.hu, region, 80.0)
    assert shift.original_hu == pytest.approx(200.0, abs=3.0)
    assert shift.alpha == pytest.approx(0.4, abs=0.01)
    core = region.body & (region.body_depth_mm > 4.0)
    assert float(np.median(new[core])) == pytest.approx(80.0, abs=3.0)
    # the voxel-to-voxel texture (noise) is kept; the cortex and the outside are untouched
    assert np.std(new[core] - syn.hu[core]) < 2.0
    assert np.array_equal(new[~region.mask], syn.hu[~region.mask])
    cortex = region.body & (syn.hu > 600)
    assert np.array_equal(new[cortex], syn.hu[cortex])
    # raising a background keeps the variation as it is (alpha never above 1)
    _up, up = with_trabecular_background(syn.hu, region, 300.0)
    assert up.alpha == 1.0


def test_errors_are_typed_and_name_the_value() -> None:
    syn = make_vertebra(noise_hu_sd=0.0)
    for bad in (
        lambda: LesionSpec(0.0, 20.0),
        lambda: LesionSpec(1.0, float("nan")),
        lambda: LesionSpec(1.0, 20.0, shape="cube"),
        lambda: LesionSpec(1.0, 20.0, place="lamina"),
        lambda: with_trabecular_background(syn.hu, syn.region, 5.0),
    ):
        with pytest.raises(InsertionError) as info:
            bad()
        assert isinstance(info.value, InputError) and isinstance(info.value, ValueError)
    with pytest.raises(InsertionError, match="cube"):
        LesionSpec(1.0, 20.0, shape="cube")
    # no room for a lesion that must keep clear of the wall in this body
    with pytest.raises(InsertionError, match="cannot place"):
        insert_lesion(syn.hu, syn.region, LesionSpec(25.0, 20.0), seed=1, noise=QUIET)
    assert WALL_ZONE_MM > 0


def test_channel_look_alike_runs_forward_from_the_wall(vertebra) -> None:  # type: ignore[no-untyped-def]
    region = vertebra.region
    spec = LesionSpec(0.3, 10.0, "channel", "posterior_wall")
    les = insert_lesion(vertebra.hu, region, spec, seed=4, noise=QUIET)
    assert les.posterior_wall_involved
    loc = _local(region, les.fraction >= 0.5)
    spans = np.ptp(loc, axis=0)  # right, anterior, superior (mm)
    assert spans[1] > 2.5 * spans[0] and spans[1] > 2.5 * spans[2]  # the wall cuts its back end
