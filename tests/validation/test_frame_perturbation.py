"""Header corruption and body-only cuts (:mod:`spinewatch.validation.frame_perturbation`) on a
phantom: the transforms do what they say, and the frame comparison sees a wrong frame."""

from __future__ import annotations

import numpy as np
import pytest

from spinewatch.imaging.anatomy import find_vertebrae
from spinewatch.imaging.phantom import POSTERIOR_HU, PhantomSpec, make_spine_phantom
from spinewatch.validation.frame_perturbation import (
    FLIP_Y,
    angle_deg,
    cut_to_bodies,
    frame_angles_deg,
    reheader,
    rotation,
    voxel_axis_swap,
)

CONV = "totalsegmentator"


@pytest.fixture(scope="module")
def phantom():
    spec = PhantomSpec(levels=("L1", "L2", "L3"), spacing_mm=(1.25, 1.25, 1.25), noise_hu_sd=0.0)
    return make_spine_phantom(spec)


def test_rotation_is_a_proper_rotation() -> None:
    r = rotation(2, 90.0)
    np.testing.assert_allclose(r[:3, :3] @ [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(r[:3, :3] @ r[:3, :3].T, np.eye(3), atol=1e-12)
    assert np.linalg.det(r[:3, :3]) == pytest.approx(1.0)
    assert angle_deg([1.0, 0.0, 0.0], [-1.0, 0.0, 0.0]) == pytest.approx(180.0)


def test_voxel_axis_swap_swaps_the_voxel_axes(phantom) -> None:
    labels = phantom.labels
    swapped = reheader(labels, voxel_axis_swap(labels.grid, (0, 1)))
    np.testing.assert_allclose(
        swapped.grid.to_world([[7.0, 3.0, 5.0]]), labels.grid.to_world([[3.0, 7.0, 5.0]])
    )
    assert swapped.labels is labels.labels


def test_frame_angles_find_the_same_frame_and_see_a_wrong_one(phantom) -> None:
    ref = find_vertebrae(phantom.labels, CONV)
    flipped = find_vertebrae(reheader(phantom.labels, FLIP_Y), CONV)
    same = frame_angles_deg(flipped, ref, FLIP_Y)
    assert [a.level for a in same] == ["L1", "L2", "L3"]
    assert max(max(a.anterior_deg, a.superior_deg) for a in same) < 1.0
    assert max(a.origin_mm for a in same) < 0.01
    # compared without the transform, the flipped header's anterior points backwards
    wrong = frame_angles_deg(flipped, ref)
    assert min(a.anterior_deg for a in wrong) > 150.0


def test_cut_to_bodies_keeps_the_bodies_only(phantom) -> None:
    regions = find_vertebrae(phantom.labels, CONV)
    bodies = cut_to_bodies(phantom.labels, regions)
    kept = bodies.labels > 0
    assert kept.any()
    assert np.array_equal(bodies.labels[kept], phantom.labels.labels[kept])
    # the phantom draws its posterior elements at exactly POSTERIOR_HU; the cut in front of the
    # canal keeps the pedicles' roots (measured: 13 % of the posterior voxels) and the body
    posterior = (phantom.ct.hu == POSTERIOR_HU) & (phantom.labels.labels > 0)
    body = (phantom.labels.labels > 0) & ~posterior
    assert np.count_nonzero(kept & posterior) < 0.2 * np.count_nonzero(posterior)
    assert np.count_nonzero(kept & body) > 0.9 * np.count_nonzero(body)
