"""The opt-in working grid (analysis.FAST_WORKING_RESOLUTION_MM): sub-millimetre scans are
analysed in blocks, with the same accuracy against the phantom's truth."""

from __future__ import annotations

import numpy as np
import pytest

from spinewatch.imaging import analysis
from spinewatch.imaging.anatomy import (
    block_fraction,
    block_grid,
    crop_hu,
    find_vertebrae,
    working_blocks,
)
from spinewatch.imaging.phantom import LesionSpec, PhantomSpec, make_spine_phantom
from spinewatch.imaging.volume import Grid


def _loop_block_mean(arr: np.ndarray, f: tuple[int, int, int]) -> np.ndarray:
    shape = tuple(-(-n // k) for n, k in zip(arr.shape, f, strict=True))
    out = np.zeros(shape)
    for i in range(shape[0]):
        for j in range(shape[1]):
            for k in range(shape[2]):
                blk = arr[
                    i * f[0] : (i + 1) * f[0], j * f[1] : (j + 1) * f[1], k * f[2] : (k + 1) * f[2]
                ]
                out[i, j, k] = blk.mean()
    return out


@pytest.mark.parametrize(
    ("shape", "f"), [((6, 8, 10), (2, 2, 2)), ((7, 5, 9), (3, 1, 2)), ((4, 4, 4), (1, 1, 1))]
)
def test_block_fraction_is_the_block_mean(shape, f) -> None:
    rng = np.random.default_rng(3)
    hu = rng.integers(-1000, 2000, shape).astype(np.int16)
    got = block_fraction(np.asfortranarray(hu), f)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, _loop_block_mean(hu.astype(np.float64), f), atol=1e-3)
    mask = rng.random(shape) < 0.4
    np.testing.assert_allclose(block_fraction(mask, f), _loop_block_mean(mask * 1.0, f), atol=1e-6)


def test_block_grid_centres_are_the_blocks_mean_positions() -> None:
    affine = np.array(
        [[0.0, 0.0, -0.5, 10.0], [0.6, 0.0, 0.0, -3.0], [0.0, -0.7, 0.0, 5.0], [0, 0, 0, 1]]
    )
    grid = Grid((6, 8, 4), affine)
    f = (2, 2, 2)
    coarse = block_grid(grid, f)
    assert coarse.shape == (3, 4, 2)
    np.testing.assert_allclose(coarse.spacing_mm, (1.2, 1.4, 1.0))
    members = np.array([[i, j, k] for i in (2, 3) for j in (4, 5) for k in (0, 1)])
    np.testing.assert_allclose(
        coarse.to_world(np.array([1, 2, 0])), grid.to_world(members).mean(axis=0), atol=1e-9
    )
    assert working_blocks((0.5, 0.7, 1.0), 1.4) == (2, 2, 1)
    assert working_blocks((0.5, 0.5, 0.5), None) == (1, 1, 1)


@pytest.fixture(scope="module")
def fine_phantom():
    spec = PhantomSpec(
        levels=("T12", "L1", "L2", "L3"),
        spacing_mm=(0.6, 0.6, 0.6),
        deformities={"L1": ("wedge", 30.0)},
        lesions={"L2": (LesionSpec(8.0, (0.0, 2.0, 0.0)),)},
        cement=("T12",),
        noise_hu_sd=15.0,
    )
    return make_spine_phantom(spec)


def test_regions_on_the_working_grid(fine_phantom) -> None:
    ph = fine_phantom
    regions = find_vertebrae(ph.labels, "totalsegmentator", working_resolution_mm=1.4)
    for r in regions:
        assert r.block == (2, 2, 2)
        np.testing.assert_allclose(r.grid.spacing_mm, (1.2, 1.2, 1.2))
        hu = crop_hu(ph.ct.hu, r)
        assert hu.shape == r.mask.shape
        # the blocks at least half inside the label, recounted independently
        fine = ph.labels.labels[r.bbox] == r.label
        assert np.array_equal(r.mask, _loop_block_mean(fine * 1.0, r.block) >= 0.5) or (
            "fragmented_label" in r.quality_flags
        )


def test_working_grid_meets_the_phantom_truth(fine_phantom) -> None:
    ph = fine_phantom
    rep = analysis.analyze(
        ph.ct,
        ph.labels,
        convention="totalsegmentator",
        working_resolution_mm=analysis.FAST_WORKING_RESOLUTION_MM,
    ).to_json_dict()
    got = {v["level"]: v for v in rep["vertebrae"]}
    assert list(got) == list(ph.truth)
    for name, t in ph.truth.items():
        v = got[name]
        assert np.linalg.norm(np.subtract(v["body_centroid_mm"], t.body_centroid_mm)) < 1.0
        for side in ("anterior", "middle", "posterior"):
            assert v[f"height_{side}_mm"] == pytest.approx(
                getattr(t, f"height_{side}_mm"), abs=1.0
            ), (name, side)
        assert (v["genant_grade"], v["deformity"]) == (t.genant_grade, t.deformity), name
    assert got["L2"]["lytic_volume_ml"] == pytest.approx(ph.truth["L2"].lytic_volume_ml, rel=0.15)
    assert got["L2"]["n_lesions"] == 1
    for name in ("T12", "L1", "L3"):
        assert got[name]["n_lesions"] == 0, name  # no false lesion
    assert "cement_present" in got["T12"]["quality_flags"]
    assert got["T12"]["cement_volume_ml"] == pytest.approx(
        ph.truth["T12"].cement_volume_ml, rel=0.2
    )
    assert got["L3"]["trabecular_hu_median"] == pytest.approx(200, abs=10)
