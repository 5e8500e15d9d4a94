"""The column's curve, a body's cross-section and the anatomical anterior (imaging.column).

Synthetic truth built here: centroids on circular arcs, bodies voxelised on a 1 mm world grid
in arbitrary orientations. The real scans are in ``test_frames.py``.
"""

from __future__ import annotations

import numpy as np
import pytest

from spinewatch.core.levels import VertebralLevel
from spinewatch.imaging.column import (
    BodyShape,
    axis_name,
    body_shape,
    expected_curvature_sign,
    fit_column_curve,
    header_rotation_deg,
    orient_column,
)


def _deg(a: np.ndarray, b: np.ndarray) -> float:
    cos = float(a @ b) / float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(np.degrees(np.arccos(np.clip(cos, -1.0, 1.0))))


def _rotation(seed: int) -> np.ndarray:
    """A random proper rotation (3x3)."""
    q, r = np.linalg.qr(np.random.default_rng(seed).normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    return q if np.linalg.det(q) > 0 else -q


def _arc(radius_mm: float, n: int, step_mm: float, rot: np.ndarray) -> tuple[np.ndarray, ...]:
    """n points going caudally on a circle of ``radius_mm`` (centre at local +y): positions,
    superior tangents and unit directions to the centre, all rotated by ``rot``."""
    phi = (np.arange(n) - (n - 1) / 2) * step_mm / radius_mm
    local = np.column_stack([np.zeros(n), radius_mm * (1 - np.cos(phi)), -radius_mm * np.sin(phi)])
    # going caudally (-z) the tangent is (0, sin, -cos); superior is its opposite
    sup = np.column_stack([np.zeros(n), -np.sin(phi), np.cos(phi)])
    centre = np.array([0.0, radius_mm, 0.0]) - local
    centre /= np.linalg.norm(centre, axis=1)[:, None]
    return local @ rot.T, sup @ rot.T, centre @ rot.T


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_curve_tangent_and_curvature_on_a_circle(seed: int) -> None:
    rot = _rotation(seed)
    pts, sup, to_centre = _arc(300.0, 9, 32.0, rot)
    curve = fit_column_curve(pts)
    assert curve is not None and not curve.outliers.any()
    for k in range(9):
        assert _deg(curve.superior[k], sup[k]) < 1.0
        kappa = curve.curvature_per_mm[k]
        assert float(np.linalg.norm(kappa)) == pytest.approx(1 / 300.0, rel=0.1)
        assert _deg(kappa, to_centre[k]) < 3.0


def test_curve_leaves_one_outlier_out() -> None:
    rot = _rotation(3)
    pts, sup, to_centre = _arc(250.0, 8, 30.0, rot)
    bad = pts.copy()
    bad[4] += 15.0 * np.cross(sup[4], to_centre[4])  # 15 mm sideways: a fragment's centroid
    clean = fit_column_curve(pts)
    curve = fit_column_curve(bad)
    assert clean is not None and curve is not None
    assert curve.outliers.tolist() == [i == 4 for i in range(8)]
    for k in range(8):  # the outlier's own tangent comes from the others
        assert _deg(curve.superior[k], sup[k]) < 1.5


def test_curve_drops_a_cut_piece_at_the_end() -> None:
    """A piece of the top vertebra cut by the scan's edge (its posterior elements only) sits
    40 mm behind the column: with four centroids it is still found."""
    pts, sup, to_centre = _arc(400.0, 4, 33.0, np.eye(3))
    pts[0] = pts[0] - 40.0 * to_centre[0]
    curve = fit_column_curve(pts, weights=[0.1, 0.5, 1.0, 0.5])
    assert curve is not None and curve.outliers.tolist() == [True, False, False, False]
    assert max(_deg(curve.superior[k], sup[k]) for k in range(4)) < 3.0


def test_curve_with_two_points_and_one() -> None:
    curve = fit_column_curve([[0.0, 0.0, 10.0], [0.0, 3.0, -20.0]])
    assert curve is not None
    np.testing.assert_allclose(curve.superior[0], curve.superior[1])
    assert _deg(curve.superior[0], np.array([0.0, -3.0, 30.0])) < 1e-6
    assert not curve.curvature_per_mm.any()
    assert fit_column_curve([[1.0, 2.0, 3.0]]) is None


def _voxelised_body(
    rot: np.ndarray, kind: str, half_width: float = 22.0, half_depth: float = 17.0
) -> np.ndarray:
    """Voxel centres (1 mm world grid) of a body in a local frame (u right, v anterior, w
    superior) rotated by ``rot``; ``kind``: ``kidney`` (convex anterior wall, concave posterior
    wall), ``d`` (flat posterior wall) or ``ellipse`` (symmetric front to back)."""
    r = int(np.ceil(np.hypot(np.hypot(half_width, half_depth), 13.0))) + 2
    grid = np.stack(np.meshgrid(*[np.arange(-r, r + 1.0)] * 3, indexing="ij"), -1).reshape(-1, 3)
    grid = grid + 0.37  # voxel centres off the local axes
    u, v, w = (grid @ rot).T
    inside = (u / half_width) ** 2 + (v / half_depth) ** 2 <= 1.0
    inside &= np.abs(w) <= 12.0
    if kind == "kidney":
        inside &= v >= -0.8 * half_depth + 3.0 * (1.0 - (u / half_width) ** 2)
    elif kind == "d":
        inside &= v >= -0.8 * half_depth
    return np.asarray(grid[inside])


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("kind", ["kidney", "d"])
def test_body_shape_axis_and_convex_anterior_wall(seed: int, kind: str) -> None:
    rot = _rotation(10 + seed)
    shape = body_shape(_voxelised_body(rot, kind), rot[:, 2], 1.0)
    assert shape is not None
    anterior = rot[:, 1]
    assert min(_deg(shape.axis, anterior), _deg(shape.axis, -anterior)) < 2.0
    signed = shape.convexity_mm * float(np.sign(shape.axis @ anterior))
    assert signed > 2.0  # the anterior wall bulges, the posterior one is flat or concave
    assert shape.weight > 0.9


def test_body_shape_of_an_ellipse_takes_the_minor_axis_without_a_side() -> None:
    rot = _rotation(20)
    shape = body_shape(_voxelised_body(rot, "ellipse"), rot[:, 2], 1.0)
    assert shape is not None
    assert min(_deg(shape.axis, rot[:, 1]), _deg(shape.axis, -rot[:, 1])) < 2.0
    assert abs(shape.convexity_mm) < 1.0  # front and back alike: no vote
    assert shape.ratio == pytest.approx(22.0 / 17.0, rel=0.05)
    round_body = body_shape(_voxelised_body(rot, "ellipse", 18.0, 18.0), rot[:, 2], 1.0)
    assert round_body is not None and round_body.weight < 0.3  # a disc shows no axis


def _ellipse_shape(axis: np.ndarray) -> BodyShape:
    return BodyShape(axis=axis, weight=1.0, convexity_mm=0.0, resolution_mm=1.0, ratio=1.3)


LUMBAR = [VertebralLevel.parse(x) for x in ("L1", "L2", "L3", "L4", "L5")]


def test_orient_column_signs_symmetric_bodies_by_the_lordosis() -> None:
    """Bodies symmetric front to back: only the curvature (centre posterior in the lordosis)
    tells which way is anterior -- whatever the header says (the world here is rotated)."""
    rot = _rotation(30)
    sup = np.tile(rot[:, 2], (5, 1))
    ant = rot[:, 1]
    shapes = [_ellipse_shape(-ant if i % 2 else ant) for i in range(5)]
    lordosis = np.tile(-ant / 150.0, (5, 1))  # centre of curvature behind the column
    got = orient_column(LUMBAR, sup, [None] * 5, shapes, lordosis)
    assert [e.source for e in got] == ["body_shape"] * 5
    assert all(_deg(e.anterior, ant) < 1e-6 for e in got)
    kyphotic = orient_column(LUMBAR, sup, [None] * 5, shapes, -lordosis)
    assert all(_deg(e.anterior, -ant) < 1e-6 for e in kyphotic)  # the vote decides


def test_orient_column_falls_back_to_the_header_and_says_so() -> None:
    sup = np.tile([0.0, 0.0, 1.0], (5, 1))
    shapes = [_ellipse_shape(np.array([0.0, -1.0, 0.0]))] * 5
    got = orient_column(LUMBAR, sup, [None] * 5, shapes, None)
    assert [e.source for e in got] == ["header"] * 5
    assert all(_deg(e.anterior, np.array([0.0, 1.0, 0.0])) < 1e-6 for e in got)
    nothing = orient_column(LUMBAR, sup, [None] * 5, [None] * 5, None)
    assert [e.source for e in nothing] == ["header"] * 5


def test_orient_column_replaces_a_posterior_outlier() -> None:
    sup = np.tile([0.0, 0.0, 1.0], (5, 1))
    ant = np.array([0.0, 1.0, 0.0])
    posterior: list[np.ndarray | None] = [ant.copy() for _ in range(5)]
    posterior[2] = np.array([1.0, 0.0, 0.0])  # a mislabelled neighbour's arch
    got = orient_column(LUMBAR, sup, posterior, [None] * 5, None)
    assert [e.source for e in got] == [
        "posterior_elements",
        "posterior_elements",
        "outlier",
        "posterior_elements",
        "posterior_elements",
    ]
    assert all(_deg(e.anterior, ant) < 1e-6 for e in got)


def test_orient_column_signs_body_only_vertebrae_from_posterior_ones() -> None:
    sup = np.tile([0.0, 0.0, 1.0], (5, 1))
    ant = np.array([0.0, -1.0, 0.0])  # anterior is world -y: a flipped header
    posterior: list[np.ndarray | None] = [ant, None, None, None, ant]
    shapes = [None, *[_ellipse_shape(-ant) for _ in range(3)], None]
    got = orient_column(LUMBAR, sup, posterior, shapes, None)
    assert all(_deg(e.anterior, ant) < 1e-6 for e in got)
    assert [e.source for e in got][1:4] == ["body_shape"] * 3


def test_expected_curvature_sign() -> None:
    signs = {x: expected_curvature_sign(VertebralLevel.parse(x)) for x in ("C5", "T1", "T6")}
    signs |= {x: expected_curvature_sign(VertebralLevel.parse(x)) for x in ("T12", "L1", "L4")}
    assert signs == {"C5": 0, "T1": 0, "T6": 1, "T12": 0, "L1": 0, "L4": -1}


def test_header_rotation_and_axis_names() -> None:
    x, y, z = np.eye(3)
    assert header_rotation_deg(x, y, z) == pytest.approx(0.0)
    assert header_rotation_deg(-x, -y, z) == pytest.approx(180.0)  # a flipped y (and x)
    assert header_rotation_deg(y, -x, z) == pytest.approx(90.0)  # a 90-degree in-plane turn
    tilt = np.deg2rad(30.0)
    sup = np.array([0.0, np.sin(tilt), np.cos(tilt)])
    ant = np.cross(sup, x)
    assert header_rotation_deg(x, ant, sup) == pytest.approx(30.0)  # lordosis, not a fault
    assert axis_name([0.1, -0.9, 0.2]) == "-y (posterior)"
    assert axis_name([0.0, 0.3, 0.9]) == "+z (superior)"
