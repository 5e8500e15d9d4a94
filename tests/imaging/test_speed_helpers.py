"""The fast helpers behind analyze() against the straightforward computations they replace."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from spinewatch.imaging import grid
from spinewatch.imaging.anatomy import VertebraFrame, label_bounding_boxes, local_coordinates
from spinewatch.imaging.density import distance_within_mm, mask_box
from spinewatch.imaging.volume import Grid, LabelVolume


def _blobs(shape: tuple[int, int, int], level: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.asarray(ndimage.gaussian_filter(rng.random(shape), 2.0) > level)


@pytest.mark.parametrize(
    ("spacing", "radius"),
    [
        ((1.0, 1.0, 1.0), 2.0),
        ((0.5, 0.5, 0.5), 1.25),
        ((0.7, 0.7, 1.0), 3.0),
        ((1.2, 0.9, 2.5), 3.0),
        ((0.7, 0.7, 1.0), 10.0),  # beyond the window: the feature transform
    ],
)
@pytest.mark.parametrize("level", [0.545, 0.53])
def test_distance_within_matches_scipy_up_to_the_radius(
    spacing: tuple[float, float, float], radius: float, level: float
) -> None:
    src = _blobs((40, 36, 30), level, seed=int(radius * 10))
    ref = ndimage.distance_transform_edt(~src, sampling=spacing)
    got = distance_within_mm(src, spacing, radius)
    near = ref <= radius
    assert near.any() and (~near).any()
    np.testing.assert_array_equal(got <= radius, near)
    np.testing.assert_array_equal(got[near], ref[near])  # bit for bit
    assert np.all(got[~near] > radius)


def test_distance_within_windowed_path_is_taken(monkeypatch: pytest.MonkeyPatch) -> None:
    # the windowed passes, not the fallback, produce the values for a small radius
    calls: list[int] = []
    real = ndimage.distance_transform_edt

    def spy(*args: object, **kwargs: object) -> object:
        calls.append(1)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(grid.ndimage, "distance_transform_edt", spy)
    src = _blobs((30, 30, 30), 0.5, seed=3)
    got = distance_within_mm(src, (1.0, 1.0, 1.0), 2.0)
    assert calls == []
    ref = real(~src, sampling=(1.0, 1.0, 1.0))
    np.testing.assert_array_equal(got[ref <= 2.0], ref[ref <= 2.0])


def test_distance_within_edge_cases() -> None:
    empty = np.zeros((5, 6, 7), dtype=bool)
    assert np.all(distance_within_mm(empty, (1.0, 1.0, 1.0), 2.0) > 2.0)
    full = np.ones((5, 6, 7), dtype=bool)
    assert np.all(distance_within_mm(full, (1.0, 1.0, 1.0), 2.0) == 0.0)
    one = np.zeros((1, 1, 9), dtype=bool)
    one[0, 0, 4] = True
    np.testing.assert_array_equal(
        distance_within_mm(one, (1.0, 1.0, 0.5), 1.0) <= 1.0,
        np.abs(np.arange(9) - 4)[None, None, :] * 0.5 <= 1.0,
    )


@pytest.mark.parametrize("order", ["C", "F"])
def test_mask_box_matches_find_objects(order: str) -> None:
    mask = np.asarray(_blobs((30, 25, 20), 0.53, seed=5), order=order)
    mask[:, :, :3] = False
    assert mask_box(mask) == ndimage.find_objects(mask.view(np.uint8))[0]
    assert mask_box(np.zeros((4, 4, 4), dtype=bool)) is None
    point = np.zeros((4, 5, 6), dtype=bool)
    point[3, 0, 5] = True
    assert mask_box(point) == (slice(3, 4), slice(0, 1), slice(5, 6))


def test_local_coordinates_match_the_frame_transform() -> None:
    rng = np.random.default_rng(7)
    rot, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    affine = np.eye(4)
    affine[:3, :3] = rot @ np.diag([0.7, 0.8, 1.5])
    affine[:3, 3] = [-40.0, 12.5, 300.0]
    grid = Grid((30, 40, 50), affine)
    frame = VertebraFrame.from_axes([-30.0, 20.0, 310.0], [0.1, 0.2, 1.0], [0.0, 1.0, 0.1])
    idx = np.argwhere(rng.random(grid.shape) > 0.7)
    ref = frame.to_local(grid.to_world(idx.astype(np.float64)))
    np.testing.assert_allclose(local_coordinates(grid, frame, idx), ref, rtol=0, atol=1e-9)
    assert local_coordinates(grid, frame, np.zeros((0, 3), dtype=np.intp)).shape == (0, 3)


@pytest.mark.parametrize("order", ["C", "F"])
def test_label_bounding_boxes_match_find_objects(order: str) -> None:
    labels = np.zeros((40, 30, 50), dtype=np.int16)
    labels[5:9, 10:20, 3:7] = 3
    labels[20:21, 0:1, 49:50] = 1
    labels[30:38, 25:30, 10:40] = 7
    arr = np.asarray(labels, order=order)
    got = label_bounding_boxes(LabelVolume(arr, Grid(arr.shape, np.eye(4)), "t"))
    assert got == ndimage.find_objects(labels)
    empty = np.zeros((4, 4, 4), dtype=np.uint8)
    assert label_bounding_boxes(LabelVolume(empty, Grid(empty.shape, np.eye(4)), "t")) == []


@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_largest_component_matches_scipy_label(order: str, seed: int) -> None:
    from spinewatch.imaging.grid import largest_component

    mask = np.asarray(_blobs((40, 30, 25), 0.53, seed=seed), order=order)
    lab, n = ndimage.label(mask, structure=np.ones((3, 3, 3), dtype=bool))
    counts = np.bincount(lab.ravel())
    counts[0] = 0
    assert n > 2
    got, share = largest_component(mask)
    np.testing.assert_array_equal(got, lab == np.argmax(counts))
    assert share == counts.max() / counts.sum()


def test_largest_component_breaks_ties_as_scipy_does() -> None:
    from spinewatch.imaging.grid import largest_component

    mask = np.zeros((9, 9, 9), dtype=bool)
    mask[6:8, 6:8, 6:8] = True  # met second in C order
    mask[0:2, 0:2, 0:2] = True  # met first: scipy's label 1
    got, share = largest_component(np.asfortranarray(mask))
    assert got[0, 0, 0] and not got[7, 7, 7]
    assert share == 0.5
    one = np.zeros((4, 4, 4), dtype=bool)
    one[1, 1, 1] = True
    assert largest_component(one)[1] == 1.0


def test_gaussian_within_is_scipys_filter_bit_for_bit() -> None:
    from spinewatch.imaging.grid import gaussian_within

    rng = np.random.default_rng(0)
    for trial in range(60):
        shape = tuple(int(s) for s in rng.integers(5, 30, 3))
        lo = [int(rng.integers(0, s)) for s in shape]
        hi = [int(rng.integers(a + 1, s + 1)) for a, s in zip(lo, shape, strict=True)]
        arr = np.zeros(shape, np.float32)
        size = [b - a for a, b in zip(lo, hi, strict=True)]
        arr[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]] = rng.normal(size=size)
        sigma = rng.uniform(0.3, 6.0, 3)
        sigma[trial % 3] *= trial % 2  # an axis left alone now and then
        ref = ndimage.gaussian_filter(arr, sigma)
        got, box = gaussian_within(arr, sigma, list(zip(lo, hi, strict=True)))
        np.testing.assert_array_equal(got.view(np.uint32), ref.view(np.uint32))
        outside = np.ones(shape, dtype=bool)
        outside[tuple(slice(a, b) for a, b in box)] = False
        assert not got[outside].any()
        # a cascade from the grown box, as the lesion scales use it
        again, _ = gaussian_within(got, 0.7 * sigma, box)
        expected = ndimage.gaussian_filter(ref, 0.7 * sigma)
        np.testing.assert_array_equal(again.view(np.uint32), expected.view(np.uint32))


@pytest.mark.parametrize("dof", [2.0, 8.0, 26.0, 48.0, 120.0, 1000.0])
def test_chi2_median_without_scipy_stats(dof: float) -> None:
    from scipy import stats
    from scipy.special import chdtri

    assert chdtri(dof, 0.5) == stats.chi2.median(dof)
