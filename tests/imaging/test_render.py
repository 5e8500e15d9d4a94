"""render: the curved sagittal reformat -- geometry against analytic fields, and the PNG."""

from __future__ import annotations

import math
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from matplotlib.colors import to_rgb
from matplotlib.image import imread
from scipy import ndimage

from spinewatch.core.errors import InputError
from spinewatch.imaging.phantom import LesionSpec, PhantomSpec, make_spine_phantom
from spinewatch.imaging.render import (
    RISK_COLOURS,
    RenderError,
    curved_sagittal,
    ellipsize_middle,
    render_sagittal,
    spine_curve,
)
from spinewatch.imaging.report import ReportFormatError, SpineReport, VertebraReport
from spinewatch.imaging.volume import CtVolume, Grid, LabelVolume

# -- synthetic volumes with an analytic HU field -----------------------------------------------

_AXES = {
    "R": (0, 1.0),
    "L": (0, -1.0),
    "A": (1, 1.0),
    "P": (1, -1.0),
    "S": (2, 1.0),
    "I": (2, -1.0),
}


def make_grid(orientation: str, spacing: tuple[float, float, float], tilt_deg: float = 0.0) -> Grid:
    """A grid covering world x in [-25, 25], y in [-70, 70], z in [-70, 70] mm (+ 10 mm margin)."""
    half = np.array([25.0, 70.0, 70.0])
    rot = np.zeros((3, 3))
    for col, code in enumerate(orientation):
        axis, sign = _AXES[code]
        rot[axis, col] = sign * spacing[col]
    t = math.radians(tilt_deg)
    tilt = np.array([[1, 0, 0], [0, math.cos(t), -math.sin(t)], [0, math.sin(t), math.cos(t)]])
    m = tilt @ rot
    extent = np.abs(np.linalg.inv(m)) @ (half + 10.0)  # voxels needed per axis (half range)
    shape = tuple(int(2 * e) + 1 for e in extent)
    centre_index = (np.array(shape) - 1) / 2.0
    affine = np.eye(4)
    affine[:3, :3] = m
    affine[:3, 3] = -m @ centre_index
    return Grid(shape, affine)  # type: ignore[arg-type]


def world_coordinate(grid: Grid, axis: int) -> np.ndarray:
    """World coordinate ``axis`` (0 x, 1 y, 2 z) of every voxel, by broadcasting (float32)."""
    a = grid.affine
    i, j, k = (np.arange(n, dtype=np.float32) for n in grid.shape)
    return (
        np.float32(a[axis, 0]) * i[:, None, None]
        + np.float32(a[axis, 1]) * j[None, :, None]
        + np.float32(a[axis, 2]) * k[None, None, :]
        + np.float32(a[axis, 3])
    )


def linear_ct(grid: Grid) -> CtVolume:
    hu = 2.0 * world_coordinate(grid, 1) + 0.5 * world_coordinate(grid, 2)
    return CtVolume(hu.astype(np.float32), grid, "linear field")


def box_labels(grid: Grid) -> LabelVolume:
    """Label 31 (TotalSegmentator L1) in the world box |x|<20, |y|<15, |z|<12 mm."""
    inside = np.abs(world_coordinate(grid, 0)) < 20
    inside &= np.abs(world_coordinate(grid, 1)) < 15
    inside &= np.abs(world_coordinate(grid, 2)) < 12
    return LabelVolume(np.where(inside, 31, 0).astype(np.uint8), grid, "box labels")


def _read(report: dict[str, Any]) -> SpineReport:
    """A hand-written report dict through the report's one reader (as every caller does)."""
    return SpineReport.from_json_dict(report, source="test report")


def _vertebra(fields: dict[str, Any]) -> VertebraReport:
    """One vertebra (L1) of a hand-written report with ``fields``."""
    return _read({"scan": {}, "vertebrae": [{"level": "L1", **fields}]}).vertebrae[0]


def straight_report(risk: str = "low") -> dict[str, Any]:
    frame = {"superior": [0.0, 0.0, 1.0], "anterior": [0.0, 1.0, 0.0]}
    return {
        "scan": {"ct": "ct.nii.gz", "labels": "labels.nii.gz"},
        "vertebrae": [
            {
                "level": level,
                "label": label,
                "body_centroid_mm": [0.0, 0.0, z],
                "frame": frame,
                "collapse_risk": risk,
                "genant_grade": 0,
                "lytic_fraction": 0.0,
            }
            for level, label, z in (("T12", 32, 30.0), ("L1", 31, 0.0), ("L2", 30, -30.0))
        ],
    }


# -- the curve ---------------------------------------------------------------------------------


def test_straight_curve_is_sampled_at_equal_arc_length_and_extended() -> None:
    centroids = np.array([[0.0, 0.0, z] for z in (60.0, 30.0, 0.0, -30.0, -60.0)])
    points, tangents = spine_curve(centroids, px_mm=0.5, extend_mm=20.0)
    steps = np.linalg.norm(np.diff(points, axis=0), axis=1)
    np.testing.assert_allclose(steps, 0.5, atol=1e-6)
    assert points[0, 2] == pytest.approx(80.0, abs=1e-6)  # 20 mm above the first centroid
    assert points[-1, 2] == pytest.approx(-80.0, abs=0.5)
    np.testing.assert_allclose(points[:, :2], 0.0, atol=1e-6)
    np.testing.assert_allclose(tangents, np.tile([0.0, 0.0, 1.0], (len(tangents), 1)), atol=1e-6)


def test_curve_follows_a_circular_kyphosis() -> None:
    radius = 300.0
    angles = np.radians(np.linspace(20, -20, 9))  # cranial first
    centroids = np.stack(
        [np.zeros_like(angles), radius * np.cos(angles) - radius, radius * np.sin(angles)], axis=1
    )
    points, tangents = spine_curve(centroids, px_mm=1.0, extend_mm=0.0)
    dist = np.linalg.norm(points[:, 1:] - np.array([-radius, 0.0]), axis=1)
    np.testing.assert_allclose(dist, radius, atol=0.5)
    # Tangents are perpendicular to the radius and point cranially (+z).
    radial = (points[:, 1:] - np.array([-radius, 0.0])) / dist[:, None]
    np.testing.assert_allclose(np.sum(tangents[:, 1:] * radial, axis=1), 0.0, atol=0.02)
    assert np.all(tangents[:, 2] > 0)
    arc = radius * np.radians(40)
    assert len(points) == pytest.approx(arc + 1, abs=2)


def test_one_centroid_gives_a_line_along_its_superior_axis() -> None:
    sup = np.array([0.0, math.sin(0.2), math.cos(0.2)])
    points, tangents = spine_curve([[1.0, 2.0, 3.0]], px_mm=1.0, extend_mm=10.0, superior=sup)
    np.testing.assert_allclose(tangents, np.tile(sup, (len(points), 1)), atol=1e-9)
    np.testing.assert_allclose(points[0], np.array([1.0, 2.0, 3.0]) + 11.0 * sup, atol=1e-6)


def test_curve_refuses_nonsense() -> None:
    with pytest.raises(RenderError, match="no body centroid"):
        spine_curve(np.zeros((0, 3)))
    with pytest.raises(RenderError, match="px_mm"):
        spine_curve([[0, 0, 0], [0, 0, 10]], px_mm=0.0)


# -- sampling ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("orientation", "spacing", "tilt"),
    [
        ("RAS", (1.0, 1.0, 1.0), 0.0),
        ("LPS", (0.8, 0.8, 2.0), 0.0),
        ("PIR", (1.0, 2.0, 1.0), 0.0),
        ("RAS", (1.0, 1.0, 1.5), 15.0),
    ],
)
def test_reformat_samples_the_world_not_the_voxel_order(
    orientation: str, spacing: tuple[float, float, float], tilt: float
) -> None:
    grid = make_grid(orientation, spacing, tilt)
    ct, labels = linear_ct(grid), box_labels(grid)
    ref = curved_sagittal(ct, labels, _read(straight_report()), px_mm=1.0, extend_mm=10.0)
    assert ref.hu is not None
    np.testing.assert_allclose(
        ref.anterior, np.tile([0.0, 1.0, 0.0], (len(ref.anterior), 1)), atol=1e-9
    )
    # Column 0 is the most anterior (+40 mm), the last the most posterior (-60 mm).
    assert ref.offsets_mm[0] == pytest.approx(40.0)
    assert ref.offsets_mm[-1] == pytest.approx(-60.0)
    # Row 0 is cranial: z = 30 + 10 mm.
    assert ref.points_mm[0, 2] == pytest.approx(40.0)
    world = ref.points_mm[:, None, :] + ref.offsets_mm[None, :, None] * ref.anterior[:, None, :]
    expected = 2.0 * world[..., 1] + 0.5 * world[..., 2]  # linear: trilinear sampling is exact
    np.testing.assert_allclose(ref.hu, expected, atol=1e-2)
    # Labels: inside the box (away from its surface by a voxel) is 31, well outside is 0.
    depth = np.minimum.reduce(
        [20 - np.abs(world[..., 0]), 15 - np.abs(world[..., 1]), 12 - np.abs(world[..., 2])]
    )
    assert np.all(ref.labels[depth > max(spacing)] == 31)
    assert np.all(ref.labels[depth < -max(spacing)] == 0)
    assert ref.level_rows == {"T12": 10, "L1": 40, "L2": 70}


def test_points_outside_the_ct_are_nan_and_unlabelled() -> None:
    grid = make_grid("RAS", (2.0, 2.0, 2.0))
    ct, labels = linear_ct(grid), box_labels(grid)
    report = straight_report()
    report["vertebrae"][0]["body_centroid_mm"] = [0.0, 0.0, 85.0]  # the curve leaves the scan
    ref = curved_sagittal(
        ct, labels, _read(report), px_mm=1.0, anterior_mm=100.0, posterior_mm=10.0
    )
    assert ref.hu is not None
    world = ref.points_mm[:, None, :] + ref.offsets_mm[None, :, None] * ref.anterior[:, None, :]
    vox = grid.to_voxel(world)
    outside = np.any((vox < -0.5) | (vox > np.array(grid.shape) - 0.5), axis=-1)
    assert outside.any() and (~outside).any()
    assert np.all(np.isnan(ref.hu[outside]))
    assert not np.any(np.isnan(ref.hu[~outside]))
    assert np.all(ref.labels[outside] == 0)


def test_sampling_never_copies_the_volume() -> None:
    grid = Grid(
        (300, 300, 400),
        np.diag([0.7, 0.7, 0.7, 1.0])
        + np.array([[0, 0, 0, -105], [0, 0, 0, -105], [0, 0, 0, -140], [0, 0, 0, 0]]),
    )
    ct = CtVolume(np.zeros(grid.shape, dtype=np.int16), grid, "zeros")  # 72 MB
    labels = LabelVolume(np.zeros(grid.shape, dtype=np.uint8), grid, "zeros")
    report = straight_report()
    tracemalloc.start()
    try:
        curved_sagittal(ct, labels, _read(report), px_mm=0.75)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert ct.hu.nbytes > 70e6
    assert peak < 12e6, f"peak {peak / 1e6:.1f} MB: the volume was copied or resampled"


def test_bad_reports_are_refused() -> None:
    grid = make_grid("RAS", (2.0, 2.0, 2.0))
    labels = box_labels(grid)
    with pytest.raises(RenderError, match="no vertebra with a body centroid"):
        curved_sagittal(None, labels, _read({"scan": {}, "vertebrae": [{"level": "L1"}]}))
    # the JSON is read (and refused) by the report's one reader, not by the renderer
    with pytest.raises(RenderError, match="expected a SpineReport"):
        curved_sagittal(None, labels, straight_report())  # type: ignore[arg-type]
    bad = straight_report()
    bad["vertebrae"][1]["body_centroid_mm"] = [0.0, "y", 0.0]
    with pytest.raises(ReportFormatError, match=r"vertebrae\[1\]"):
        _read(bad)
    with pytest.raises(ReportFormatError, match="vertebrae"):
        _read({"scan": {}})
    odd = straight_report()
    odd["vertebrae"][0]["level"] = "X9"
    with pytest.raises(ReportFormatError, match="'X9'"):
        _read(odd)


# -- phantoms and the picture ------------------------------------------------------------------


def phantom_report(phantom: Any, risks: dict[str, str]) -> dict[str, Any]:
    return {
        "scan": {
            "ct": "phantom.nii.gz",
            "labels": "labels.nii.gz",
            "labels_convention": "totalsegmentator",
        },
        "vertebrae": [
            {
                "level": name,
                "label": t.label,
                "body_centroid_mm": list(t.body_centroid_mm),
                "frame": {"superior": list(t.superior), "anterior": list(t.anterior)},
                "genant_grade": t.genant_grade,
                "deformity": t.deformity,
                "lytic_fraction": t.lytic_volume_ml / t.body_volume_ml,
                "collapse_risk": risks.get(name, "low"),
                "truncated": t.truncated,
            }
            for name, t in phantom.truth.items()
        ],
    }


@pytest.mark.parametrize(("orientation", "tilt"), [("RAS", 0.0), ("PIR", 12.0)])
def test_phantom_body_is_anterior_and_head_up(orientation: str, tilt: float) -> None:
    phantom = make_spine_phantom(
        PhantomSpec(
            levels=("T12", "L1", "L2"),
            orientation=orientation,
            tilt_deg=tilt,
            spacing_mm=(1.2, 1.2, 1.2),
        )
    )
    ref = curved_sagittal(phantom.ct, phantom.labels, _read(phantom_report(phantom, {})), px_mm=1.0)
    assert ref.hu is not None
    col = {round(float(o)): i for i, o in enumerate(ref.offsets_mm)}
    rows = ref.level_rows
    assert rows["T12"] < rows["L1"] < rows["L2"]  # head at the top
    for name, truth in phantom.truth.items():
        r = rows[name]
        assert ref.labels[r, col[0]] == truth.label  # body centre on the curve
        assert ref.labels[r, col[35]] == 0  # soft tissue in front of the body
        # Trabecular bone at the body centre, in HU (noise 10 HU, linear interpolation).
        assert ref.hu[r, col[0]] == pytest.approx(truth.trabecular_hu, abs=40)
        # Posterior elements lie to the right (posterior) of the body in the picture.
        posterior_cols = np.flatnonzero(ref.labels[r - 8 : r + 8] == truth.label) % len(col)
        assert posterior_cols.max() > col[-30]


def _count_colour(png: np.ndarray, colour: str) -> int:
    rgb = np.asarray(to_rgb(colour))
    return int(np.sum(np.all(np.abs(png[..., :3] - rgb) < 0.04, axis=-1)))


def test_render_png_is_coloured_by_risk(tmp_path: Path) -> None:
    phantom = make_spine_phantom(
        PhantomSpec(
            levels=("T12", "L1", "L2"),
            spacing_mm=(1.5, 1.5, 1.5),
            lesions={"L1": (LesionSpec(radius_mm=7.0),)},
        )
    )
    all_low = render_sagittal(
        phantom.ct,
        phantom.labels,
        _read(phantom_report(phantom, {})),
        tmp_path / "low.png",
        convention="totalsegmentator",
    )
    l1_high = render_sagittal(
        phantom.ct,
        phantom.labels,
        _read(phantom_report(phantom, {"L1": "high"})),
        tmp_path / "sub" / "high.png",
        convention="totalsegmentator",
    )
    assert all_low == tmp_path / "low.png"
    assert l1_high.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    low_img, high_img = imread(all_low), imread(l1_high)
    assert low_img.shape[0] > 500 and low_img.shape[1] > 400
    red = RISK_COLOURS["high"]
    # The legend shows every colour; only the high-risk picture draws red outlines and text.
    assert _count_colour(high_img, red) > 3 * _count_colour(low_img, red) + 100


def test_not_assessable_is_grey_never_green_with_its_legend(tmp_path: Path) -> None:
    assert RISK_COLOURS["not_assessable"] not in (RISK_COLOURS["low"], RISK_COLOURS[None])
    phantom = make_spine_phantom(
        PhantomSpec(levels=("T12", "L1", "L2"), spacing_mm=(1.5, 1.5, 1.5))
    )
    grey, green = RISK_COLOURS["not_assessable"], RISK_COLOURS["low"]
    pictures = {}
    for name, risks in (("low", {}), ("na", dict.fromkeys(("T12", "L1", "L2"), "not_assessable"))):
        out = render_sagittal(
            None, phantom.labels, _read(phantom_report(phantom, risks)), tmp_path / f"{name}.png"
        )
        pictures[name] = imread(out)
    # the not-assessable picture: the grey fill, outline and legend, and green only in the legend
    assert _count_colour(pictures["na"], grey) > 3 * _count_colour(pictures["low"], grey) + 100
    assert _count_colour(pictures["na"], green) < 0.05 * _count_colour(pictures["low"], green)


def test_detail_line_and_confidence_marker() -> None:
    from spinewatch.imaging.render import CONFIDENCE_MARKERS, _detail

    v = {
        "collapse_risk": "not_assessable",
        "truncated": True,
        "lytic_fraction": 0.0,
        "treat_signal": True,
    }
    assert _detail(_vertebra(v)) == "not assessable  treat signal\ncut by scan edge  lytic 0%"
    # short enough: one line (an MRI or a label map alone: every vertebra not assessable)
    na = _vertebra({"collapse_risk": "not_assessable", "genant_grade": 0})
    assert _detail(na) == "not assessable  G0"
    assert _detail(_vertebra({"collapse_risk": "low", "genant_grade": 0})) == "G0"
    assert [m.count("\u25cf") for m in CONFIDENCE_MARKERS.values()] == [3, 2, 1]


def test_detail_line_names_diffuse_infiltration() -> None:
    from spinewatch.imaging.render import _detail

    v = {"collapse_risk": "moderate", "genant_grade": 0, "diffuse_infiltration": True}
    assert _detail(_vertebra(v)) == "diffuse infiltration  G0"
    assert _detail(_vertebra({**v, "diffuse_infiltration": False})) == "G0"
    assert _detail(_vertebra({**v, "diffuse_infiltration": None})) == "G0"


def test_ellipsize_middle_keeps_both_ends() -> None:
    name = "2026-11-22_ACCESSION-00012345_CT_THORACOLUMBAR_SPINE_series-7.nii.gz"
    for n in (1, 2, 3, 10, 25, len(name) - 1):
        cut = ellipsize_middle(name, n)
        assert len(cut) == n and "…" in cut
        head, _, tail = cut.partition("…")
        assert name.startswith(head) and name.endswith(tail)
        assert abs(len(head) - len(tail)) <= 1
    assert ellipsize_middle(name, len(name)) == name
    assert ellipsize_middle("", 5) == ""
    with pytest.raises(InputError, match="max_chars 0"):
        ellipsize_middle(name, 0)


def test_a_long_source_name_is_not_cut_off_at_the_edges(tmp_path: Path) -> None:
    phantom = make_spine_phantom(PhantomSpec(levels=("L1", "L2"), spacing_mm=(1.5, 1.5, 1.5)))
    report = phantom_report(phantom, {})
    report["scan"]["ct"] = "/export/" + "VERY_LONG_SERIES_DESCRIPTION_" * 8 + "end.nii.gz"
    report["scan"].update(
        study_date="2026-11-22",
        spacing_mm=[1.5, 1.5, 1.5],
        orientation="RAS",
        analysed_at="2026-11-22T15:49:00",
        spinewatch_version="0.1.0-with-a-long-local-version-tag+g0123456789abcdef",
    )
    img = imread(render_sagittal(phantom.ct, phantom.labels, _read(report), tmp_path / "long.png"))
    background = np.asarray(to_rgb("#101418"))
    ink = np.any(np.abs(img[..., :3] - background) > 0.08, axis=-1)
    # the title and subtitle band (top 1.15 in at 150 dpi): text, but none in the outer margins
    band = ink[: int(1.15 * 150)]
    assert band.sum() > 2000
    assert not band[:, :10].any() and not band[:, -10:].any()
    # the footer and legend band likewise
    assert not ink[-int(0.95 * 150) :, :10].any() and not ink[-int(0.95 * 150) :, -10:].any()


def test_render_without_ct_draws_the_mask(tmp_path: Path) -> None:
    phantom = make_spine_phantom(PhantomSpec(levels=("L1", "L2"), spacing_mm=(1.5, 1.5, 1.5)))
    report = phantom_report(phantom, {"L2": "moderate"})
    out = render_sagittal(
        None, phantom.labels, _read(report), tmp_path / "mask.png", convention="totalsegmentator"
    )
    img = imread(out)
    assert _count_colour(img, RISK_COLOURS["moderate"]) > 500


def test_labels_of_other_structures_are_not_overlaid() -> None:
    grid = make_grid("RAS", (2.0, 2.0, 2.0))
    labels = box_labels(grid)
    arr = labels.labels.copy()
    arr[:, :, : grid.shape[2] // 3] = 79  # spinal cord in TotalSegmentator: not a vertebra
    labels = LabelVolume(arr, grid, "with cord")
    from spinewatch.imaging.render import _label_levels

    report = _read(straight_report())
    ref = curved_sagittal(None, labels, report, px_mm=1.0)
    names = _label_levels(np.unique(ref.labels), report.vertebrae, "totalsegmentator")
    assert 79 in np.unique(ref.labels)
    assert names == {31: "L1"}


# -- real data ---------------------------------------------------------------------------------


@pytest.mark.shared_data
def test_real_example_reformat_lands_on_bone(shared_file: Any, tmp_path: Path) -> None:
    from spinewatch.core.conventions import vertebra_labels
    from spinewatch.imaging.io import load_study

    ct, labels = load_study(
        shared_file("ct/totalseg-example/example_ct_sm.nii.gz"),
        shared_file("ct/totalseg-example/example_seg.nii.gz"),
    )
    vertebrae = []
    for value, level in vertebra_labels(np.unique(labels.labels), "totalsegmentator").items():
        centre = ndimage.center_of_mass(labels.labels == value)
        vertebrae.append(
            {
                "level": str(level),
                "label": value,
                "body_centroid_mm": ct.grid.to_world(centre).tolist(),
                "collapse_risk": "low",
                "truncated": str(level) == "T11",
            }
        )
    report = _read({"scan": {"ct": "example_ct_sm.nii.gz"}, "vertebrae": vertebrae})
    ref = curved_sagittal(ct, labels, report)
    assert ref.hu is not None
    bone = ref.labels > 0
    names = vertebra_labels(np.unique(ref.labels[bone]), "totalsegmentator")
    assert {"L1", "L2", "T12"} <= {str(level) for level in names.values()}
    # The sampled vertebrae are bone (aligned map), the rest mostly soft tissue or air.
    vertebra_px = np.isin(ref.labels, list(names))
    assert np.nanmedian(ref.hu[vertebra_px]) > 100
    assert np.nanmedian(ref.hu[~bone]) < np.nanmedian(ref.hu[vertebra_px]) - 60
    out = render_sagittal(ct, labels, report, tmp_path / "real.png", convention="totalsegmentator")
    assert imread(out).shape[0] > 300
