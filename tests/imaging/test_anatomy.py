"""Vertebra finding, body separation and frames: phantom truth and the real VerSe004 mask."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest

from spinewatch.core.conventions import LabelConvention
from spinewatch.core.levels import VertebralLevel
from spinewatch.imaging.anatomy import (
    LabelMapError,
    VertebraFrame,
    crop_grid,
    find_vertebrae,
    separate_body,
)
from spinewatch.imaging.phantom import PhantomSpec, make_spine_phantom
from spinewatch.imaging.volume import Grid, LabelVolume

LEVELS = ("T12", "L1", "L2")


def _angle_deg(a: np.ndarray, b: tuple[float, float, float]) -> float:
    return float(np.degrees(np.arccos(np.clip(a @ np.asarray(b), -1, 1))))


@pytest.mark.parametrize(
    "kw",
    [
        {},
        {"orientation": "PIR", "spacing_mm": (1.0, 2.0, 1.0)},
        {"orientation": "LPS", "tilt_deg": 12.0, "spacing_mm": (1.2, 1.2, 1.0)},
        {"deformities": {"L1": ("wedge", 40.0)}},
        {"deformities": {"L1": ("crush", 45.0)}, "convention": "verse"},
    ],
)
def test_phantom_bodies_and_frames(kw: dict[str, object]) -> None:
    spec = PhantomSpec(levels=LEVELS, **{"spacing_mm": (1.25, 1.25, 1.25), **kw})  # type: ignore[arg-type]
    ph = make_spine_phantom(spec)
    regions = find_vertebrae(ph.labels, spec.convention)
    assert [r.level for r in regions] == [VertebralLevel.parse(x) for x in LEVELS]
    for r in regions:
        t = ph.truth[str(r.level.value)]
        # within one voxel (1.25 mm): the pedicle roots a crushed body keeps in front of the
        # canal pull its centroid back by ~1 mm
        assert np.linalg.norm(r.frame.origin_mm - np.asarray(t.body_centroid_mm)) < 1.25
        # pedicle roots in front of the canal count as body: a few % more for a flat (crushed) body
        assert r.body_volume_ml == pytest.approx(t.body_volume_ml, rel=0.08)
        assert _angle_deg(r.frame.superior, t.superior) < 4.0
        assert _angle_deg(r.frame.anterior, t.anterior) < 4.0
        np.testing.assert_allclose(np.cross(r.frame.anterior, r.frame.superior), r.frame.right)
        assert not r.truncated and r.quality_flags == ()
        # masks: body and posterior partition the vertebra, in the crop's shape
        assert r.mask.shape == r.body.shape == r.posterior.shape
        assert not np.any(r.body & r.posterior)
        np.testing.assert_array_equal(r.body | r.posterior, r.mask)
        # the crop's grid maps crop voxels where the full grid maps the same voxels
        ijk = np.array([1.0, 2.0, 3.0])
        start = np.array([s.start for s in r.bbox])
        np.testing.assert_allclose(r.grid.to_world(ijk), ph.labels.grid.to_world(ijk + start))
        assert np.array_equal(ph.labels.labels[r.bbox] == r.label, r.mask)  # no fragment dropped


def test_frame_to_local_round_trip() -> None:
    f = VertebraFrame.from_axes([1.0, 2.0, 3.0], [0.0, 0.2, 1.0], [0.1, 1.0, 0.0])
    assert f.superior @ f.anterior == pytest.approx(0.0, abs=1e-12)
    pts = np.random.default_rng(0).normal(size=(5, 3)) * 20
    np.testing.assert_allclose(f.to_world(f.to_local(pts)), pts, atol=1e-9)
    np.testing.assert_allclose(f.to_local(f.origin_mm + 3 * f.superior), [0, 0, 3], atol=1e-12)


def test_separate_body_on_a_synthetic_vertebra() -> None:
    """A fat cylinder (body) with a thin rod (pedicle) attached: the rod is removed."""
    z, y, x = np.mgrid[0:40, 0:80, 0:40]
    body = ((x - 20) ** 2 + (y - 20) ** 2 <= 15**2) & (z >= 8) & (z < 32)
    rod = (np.abs(x - 20) <= 2) & (np.abs(z - 20) <= 2) & (y >= 20) & (y < 70)
    got = separate_body(body | rod, (1.0, 1.0, 1.0), 5.0)
    assert not np.any(got & ~(body | rod))
    assert np.count_nonzero(got & rod & ~body) < 2 * 25  # at most ~2 mm of the rod's root
    assert np.count_nonzero(got & body) / np.count_nonzero(body) > 0.95  # rims rounded off
    assert not separate_body(rod, (1.0, 1.0, 1.0), 5.0).any()


def test_truncated_top_vertebra() -> None:
    ph = make_spine_phantom(
        PhantomSpec(levels=LEVELS, spacing_mm=(1.5, 1.5, 1.5), truncate_top=True)
    )
    regions = {str(r.level.value): r for r in find_vertebrae(ph.labels, "totalsegmentator")}
    assert regions["T12"].truncated
    assert not regions["L1"].truncated and not regions["L2"].truncated


def test_fragmented_and_unknown_labels() -> None:
    ph = make_spine_phantom(PhantomSpec(levels=LEVELS, spacing_mm=(1.5, 1.5, 1.5), noise_hu_sd=0))
    arr = ph.labels.labels.copy()
    l1 = ph.truth["L1"].label
    # a far-away blob of L1 voxels (40 % of the label) and an organ label that is no vertebra
    n = int(np.count_nonzero(arr == l1) * 0.4)
    side = round(n ** (1 / 3)) + 1
    arr[:side, :side, :side] = l1
    arr[-3:, -3:, -3:] = 5  # TotalSegmentator organ
    regions = find_vertebrae(
        LabelVolume(arr, ph.labels.grid, "x"), LabelConvention.TOTALSEGMENTATOR
    )
    by = {str(r.level.value): r for r in regions}
    assert set(by) == set(LEVELS)
    assert "fragmented_label" in by["L1"].quality_flags
    t = ph.truth["L1"]
    assert np.linalg.norm(by["L1"].frame.origin_mm - np.asarray(t.body_centroid_mm)) < 1.0


def test_small_label_flag_and_errors() -> None:
    grid = Grid((30, 30, 30), np.eye(4))
    arr = np.zeros((30, 30, 30), dtype=np.int16)
    arr[10:15, 10:15, 10:15] = 31  # a 0.125 ml "L1"
    (r,) = find_vertebrae(LabelVolume(arr, grid, "tiny"), "totalsegmentator")
    assert "small_label" in r.quality_flags
    with pytest.raises(LabelMapError, match="no vertebra label"):
        find_vertebrae(
            LabelVolume(np.full((4, 4, 4), 5, np.int16), grid_4(), "organs"), "totalsegmentator"
        )
    with pytest.raises(LabelMapError, match="float32"):
        find_vertebrae(LabelVolume(np.zeros((4, 4, 4), np.float32), grid_4(), "f"), "verse")  # type: ignore[arg-type]


def grid_4() -> Grid:
    return Grid((4, 4, 4), np.eye(4))


def test_crop_grid() -> None:
    g = Grid(
        (50, 60, 70), np.array([[0, 0, 2.0, 5], [-1.0, 0, 0, 6], [0, 1.5, 0, 7], [0, 0, 0, 1]])
    )
    c = crop_grid(g, (slice(3, 10), slice(4, 8), slice(0, 70)))
    assert c.shape == (7, 4, 70)
    np.testing.assert_allclose(c.to_world([0, 0, 0]), g.to_world([3, 4, 0]))


@pytest.mark.shared_data
def test_verse004_body_centroids_within_2mm(shared_file) -> None:
    mask_path = shared_file("ct/verse004/sub-verse004_seg-vert_msk.nii.gz")
    ctd_path = shared_file("ct/verse004/sub-verse004_seg-subreg_ctd.json")
    img = nib.load(mask_path)
    labels = LabelVolume(
        np.asarray(img.dataobj).astype(np.int16), Grid(img.shape, img.affine), str(mask_path)
    )
    ctd = json.loads(ctd_path.read_text())
    assert ctd[0]["direction"] == list(nib.aff2axcodes(img.affine))
    regions = {r.label: r for r in find_vertebrae(labels, "verse")}
    errors = {}
    for entry in ctd[1:]:
        expert = labels.grid.to_world([entry["X"], entry["Y"], entry["Z"]])
        errors[entry["label"]] = float(
            np.linalg.norm(regions[entry["label"]].frame.origin_mm - expert)
        )
    assert set(errors) == set(range(16, 25))
    assert np.median(list(errors.values())) < 2.0, errors
    assert max(errors.values()) < 3.0, errors  # every level, including the collapsed L1
    # the superior axes point cranially and the anterior axes anteriorly (world +z / +y)
    for r in regions.values():
        assert r.frame.superior[2] > 0.8 and r.frame.anterior[1] > 0.8
