"""The synthetic spine phantom: geometry truth, orientation invariance, conventions, files."""

from __future__ import annotations

import json
import math

import nibabel as nib
import numpy as np
import pytest
from nibabel import orientations as nio

from spinewatch.core.conventions import LabelConvention, label_for_level
from spinewatch.core.errors import InputError
from spinewatch.core.vertebral_shape import normal_shape, posterior_scale
from spinewatch.imaging.phantom import (
    CEMENT_HU,
    LesionSpec,
    PhantomSpec,
    PhantomSpecError,
    make_spine_phantom,
    write_phantom,
)

SMALL = ("T12", "L1", "L2")


def _spec(**kw: object) -> PhantomSpec:
    base: dict[str, object] = {"levels": SMALL, "spacing_mm": (1.25, 1.25, 1.25)}
    base.update(kw)
    return PhantomSpec(**base)  # type: ignore[arg-type]


def _world_centroid(ph, label: int) -> np.ndarray:
    idx = np.argwhere(ph.labels.labels == label)
    return ph.labels.grid.to_world(idx.mean(axis=0))


def test_labels_follow_the_convention() -> None:
    for conv in ("totalsegmentator", "verse"):
        ph = make_spine_phantom(_spec(convention=conv))
        present = set(np.unique(ph.labels.labels).tolist()) - {0}
        expected = {label_for_level(x, LabelConvention(conv)) for x in SMALL}
        assert present == expected
        for name, t in ph.truth.items():
            assert t.label == label_for_level(name, LabelConvention(conv))


def test_body_volume_matches_the_elliptic_cylinder() -> None:
    ph = make_spine_phantom(_spec(spacing_mm=(0.8, 0.8, 0.8), noise_hu_sd=0.0))
    from spinewatch.imaging.phantom import _spine_geometry

    geo = {g.level: g for g in _spine_geometry()}
    for name, t in ph.truth.items():
        g = geo[name]
        analytic_ml = math.pi * g.a * g.b * g.h / 1000.0
        # the rounded rim and the normal endplate concavity remove a little; voxels add +-1 %
        assert 0.93 * analytic_ml < t.body_volume_ml < 1.01 * analytic_ml, name


def test_truth_heights_follow_the_deformity() -> None:
    ph = make_spine_phantom(
        _spec(
            deformities={"T12": ("wedge", 30.0), "L1": ("biconcave", 22.0), "L2": ("crush", 45.0)}
        )
    )
    t12, l1, l2 = ph.truth["T12"], ph.truth["L1"], ph.truth["L2"]
    # deformities are relative to the level's normal shape
    r_a = {name: normal_shape(name).anterior_ratio.mean for name in SMALL}
    assert t12.height_anterior_mm == pytest.approx(0.70 * r_a["T12"] * t12.height_posterior_mm)
    assert t12.height_posterior_mm == pytest.approx(t12.normal_posterior_mm)
    assert (t12.deformity, t12.genant_grade) == ("wedge", 2)
    assert l1.height_middle_mm == pytest.approx(0.78 * l1.normal_middle_mm)
    assert l1.height_anterior_mm == pytest.approx(r_a["L1"] * l1.height_posterior_mm)
    assert (l1.deformity, l1.genant_grade) == ("biconcave", 1)
    for key in ("anterior", "middle", "posterior"):
        assert getattr(l2, f"height_{key}_mm") == pytest.approx(
            0.55 * getattr(l2, f"normal_{key}_mm")
        )
    assert (l2.deformity, l2.genant_grade) == ("crush", 3)


def test_normal_shapes_follow_the_published_ratios() -> None:
    """Undeformed bodies: Ha/Hp of the level (L5 taller in front, T7 lower in front), the
    normal endplate concavity, and posterior heights growing by the normal step T9..L1."""
    ph = make_spine_phantom(
        _spec(levels=("T6", "T7", "T8", "T9", "T10", "T11", "T12", "L1", "L2", "L3", "L4", "L5"))
    )
    for name, t in ph.truth.items():
        shape = normal_shape(name)
        assert t.height_anterior_mm / t.height_posterior_mm == pytest.approx(
            shape.anterior_ratio.mean
        ), name
        walls = (t.height_anterior_mm + t.height_posterior_mm) / 2
        assert t.height_middle_mm / walls == pytest.approx(shape.middle_ratio.mean), name
        assert t.nominal_height_mm == pytest.approx(walls)
    assert ph.truth["L5"].height_anterior_mm > 1.05 * ph.truth["L5"].height_posterior_mm
    assert ph.truth["T7"].height_anterior_mm < 0.95 * ph.truth["T7"].height_posterior_mm
    for upper, lower in (("T9", "T10"), ("T11", "T12"), ("T12", "L1"), ("L3", "L4")):
        ratio = ph.truth[lower].height_posterior_mm / ph.truth[upper].height_posterior_mm
        assert ratio == pytest.approx(posterior_scale(upper, lower)), (upper, lower)


def test_drawn_heights_match_truth_on_the_midline() -> None:
    """Voxel extent along the body's superior axis through the 15 % / 85 % columns."""
    ph = make_spine_phantom(
        _spec(
            spacing_mm=(0.5, 0.5, 0.5),
            levels=("L1",),
            deformities={"L1": ("wedge", 40.0)},
            noise_hu_sd=0.0,
        )
    )
    t = ph.truth["L1"]
    sup, ant = np.array(t.superior), np.array(t.anterior)
    # without noise the body is exactly the labelled voxels at trabecular or cortical HU
    body = (ph.labels.labels == t.label) & np.isin(ph.ct.hu, (200, 850))
    world = ph.labels.grid.to_world(np.argwhere(body))
    rel = world - np.array(t.body_centroid_mm)
    u, v, w = rel[:, 0], rel @ ant, rel @ sup
    mid = (np.abs(u) < 0.3) & (np.abs(w) < 2)
    v_front, v_back = v[mid].max() + 0.25, v[mid].min() - 0.25
    for frac, expected in ((0.15, t.height_anterior_mm), (0.85, t.height_posterior_mm)):
        v0 = v_front - frac * (v_front - v_back)
        sel = (np.abs(u) < 0.3) & (np.abs(v - v0) < 0.3)
        measured = w[sel].max() - w[sel].min() + 0.5
        assert measured == pytest.approx(expected, abs=0.6), frac


def test_orientation_only_reorders_voxels() -> None:
    base = make_spine_phantom(_spec(spacing_mm=(1.0, 1.5, 2.0)))
    for code in ("LPS", "PIR", "SAL"):
        spacing = tuple(
            (1.0, 1.5, 2.0)[int(ax)] for ax, _ in nio.axcodes2ornt(tuple(code), ("RL", "AP", "SI"))
        )
        other = make_spine_phantom(_spec(orientation=code, spacing_mm=spacing))
        assert nib.aff2axcodes(other.ct.grid.affine) == tuple(code)
        img = nib.as_closest_canonical(nib.Nifti1Image(other.ct.hu, other.ct.grid.affine))
        np.testing.assert_array_equal(np.asarray(img.dataobj), base.ct.hu)
        np.testing.assert_allclose(img.affine, base.ct.grid.affine, atol=1e-6)
        for name, t in base.truth.items():
            np.testing.assert_allclose(
                other.truth[name].body_centroid_mm, t.body_centroid_mm, atol=1e-6
            )
            np.testing.assert_allclose(
                _world_centroid(other, t.label), _world_centroid(base, t.label), atol=1e-6
            )


def test_tilt_gives_an_oblique_affine_with_the_same_anatomy() -> None:
    straight = make_spine_phantom(_spec(spacing_mm=(1.0, 1.0, 1.0)))
    tilted = make_spine_phantom(_spec(spacing_mm=(1.0, 1.0, 1.0), tilt_deg=12.0))
    dirs = tilted.ct.grid.axis_directions
    assert np.max(np.abs(dirs - np.eye(3))) > 0.1  # really oblique
    for name, t in straight.truth.items():
        np.testing.assert_allclose(
            tilted.truth[name].body_centroid_mm, t.body_centroid_mm, atol=0.3
        )
        assert tilted.truth[name].body_volume_ml == pytest.approx(t.body_volume_ml, rel=0.02)


def test_lesion_volume_is_the_replaced_voxels() -> None:
    r = 6.0
    ph = make_spine_phantom(
        _spec(
            spacing_mm=(0.8, 0.8, 0.8), noise_hu_sd=0.0, lesions={"L1": (LesionSpec(r, (0, 2, 0)),)}
        )
    )
    t = ph.truth["L1"]
    sphere_ml = 4 / 3 * math.pi * r**3 / 1000
    assert t.lytic_volume_ml == pytest.approx(sphere_ml, rel=0.06)  # fully inside the body
    n_30 = np.count_nonzero((ph.ct.hu == 30) & (ph.labels.labels == t.label))
    assert n_30 * ph.ct.grid.voxel_volume_ml == pytest.approx(t.lytic_volume_ml, rel=1e-9)
    assert not t.posterior_wall_involved
    assert ph.truth["T12"].lytic_volume_ml == 0.0


def test_lesion_clipped_to_body_and_reaching_wall_and_pedicle() -> None:
    big = LesionSpec(10.0, (6.0, -12.0, 3.0))
    ph = make_spine_phantom(_spec(noise_hu_sd=0.0, lesions={"L2": (big,)}))
    t = ph.truth["L2"]
    assert t.lytic_volume_ml < 4 / 3 * math.pi * 1000 / 1000  # clipped
    assert t.posterior_wall_involved
    assert t.pedicle_right_involved and not t.pedicle_left_involved


def test_hu_values_cement_and_trabecular() -> None:
    ph = make_spine_phantom(
        _spec(noise_hu_sd=10.0, cement=("L1",), trabecular_hu={"T12": 90.0}, seed=3)
    )
    assert ph.ct.hu.dtype == np.int16
    lab = ph.labels.labels
    l1 = lab == ph.truth["L1"].label
    assert np.count_nonzero(ph.ct.hu[l1] > 1500) * ph.ct.grid.voxel_volume_ml == pytest.approx(
        ph.truth["L1"].cement_volume_ml, rel=0.05
    )
    assert ph.truth["L1"].cement and not ph.truth["L2"].cement
    assert CEMENT_HU > 1500
    # the body core: median near the spec
    for name, want in (("T12", 90.0), ("L2", 200.0)):
        c = ph.labels.grid.to_voxel(ph.truth[name].body_centroid_mm).round().astype(int)
        core = ph.ct.hu[c[0] - 3 : c[0] + 4, c[1] - 3 : c[1] + 4, c[2] - 3 : c[2] + 4]
        assert float(np.median(core)) == pytest.approx(want, abs=5)
        assert 5 < float(np.std(core)) < 15
    # soft tissue around, air at a corner
    assert ph.ct.hu[0, 0, 0] < -900 or ph.ct.hu[0, 0, 0] > 0


def test_truncate_top_marks_only_the_top_level() -> None:
    ph = make_spine_phantom(_spec(truncate_top=True))
    assert ph.truth["T12"].truncated
    assert not ph.truth["L1"].truncated and not ph.truth["L2"].truncated
    assert not any(t.truncated for t in make_spine_phantom(_spec()).truth.values())


def test_noise_is_seeded() -> None:
    a = make_spine_phantom(_spec(seed=1))
    b = make_spine_phantom(_spec(seed=1))
    c = make_spine_phantom(_spec(seed=2))
    np.testing.assert_array_equal(a.ct.hu, b.ct.hu)
    assert not np.array_equal(a.ct.hu, c.ct.hu)


def test_explicit_shape() -> None:
    ph = make_spine_phantom(_spec(shape=(60, 70, 80), orientation="LPS"))
    assert ph.ct.hu.shape == (60, 70, 80) == ph.labels.labels.shape


def test_write_phantom_round_trip(tmp_path) -> None:
    ph = make_spine_phantom(_spec(orientation="PIR", lesions={"L1": (LesionSpec(5.0),)}))
    ct_path, lab_path, truth_path = write_phantom(ph, tmp_path / "out")
    ct = nib.load(ct_path)
    np.testing.assert_array_equal(np.asarray(ct.dataobj), ph.ct.hu)
    np.testing.assert_allclose(ct.affine, ph.ct.grid.affine, atol=1e-5)
    np.testing.assert_array_equal(np.asarray(nib.load(lab_path).dataobj), ph.labels.labels)
    truth = json.loads(truth_path.read_text())
    assert [v["level"] for v in truth["vertebrae"]] == list(SMALL)
    assert truth["vertebrae"][1]["lytic_volume_ml"] == pytest.approx(ph.truth["L1"].lytic_volume_ml)


@pytest.mark.parametrize(
    ("kw", "needle"),
    [
        ({"levels": ("L1", "T12")}, "cranio-caudal"),
        ({"levels": ("T12", "L2")}, "contiguous"),
        ({"levels": ("S1",)}, "'S1'"),
        ({"levels": ("X9",)}, "X9"),
        ({"deformities": {"L1": ("squash", 30.0)}}, "'squash'"),
        ({"deformities": {"L1": ("wedge", 90.0)}}, "90.0"),
        ({"deformities": {"L5": ("wedge", 30.0)}}, "'L5'"),
        ({"orientation": "RAX"}, "'RAX'"),
        ({"orientation": "RRS"}, "'RRS'"),
        ({"spacing_mm": (0.0, 1.0, 1.0)}, "spacing_mm"),
        ({"tilt_deg": 45.0}, "45.0"),
    ],
)
def test_bad_specs_are_refused(kw: dict[str, object], needle: str) -> None:
    with pytest.raises(InputError, match=needle.replace("(", r"\(")) as exc:
        make_spine_phantom(_spec(**kw))
    assert needle in str(exc.value)
    if "levels" not in kw or kw["levels"] != ("X9",):
        assert isinstance(exc.value, PhantomSpecError)


def test_atlas_is_a_ring_around_the_dens_without_a_disc() -> None:
    # C1 has no body: on the axis through C2's body the atlas label is absent (the dens is
    # there, labelled C2), while the ring surrounds it on both sides and behind
    p = make_spine_phantom(
        PhantomSpec(levels=("C1", "C2", "C3"), atlas=True, spacing_mm=(0.8, 0.8, 0.8))
    )
    hu = np.asarray(p.ct.hu)
    lab = np.asarray(p.labels.labels)
    c1, c2 = (label_for_level(x, LabelConvention.TOTALSEGMENTATOR) for x in ("C1", "C2"))
    ring_z = np.flatnonzero((lab == c1).any(axis=(0, 1)))
    mid = int(np.median(ring_z))
    centre = p.ct.grid.to_voxel(np.array([p.truth["C2"].body_centroid_mm]))[0]
    x, y = round(centre[0]), round(centre[1])
    assert lab[x, y, mid] == c2  # the dens on the axis, inside the ring
    row = lab[:, y, mid]
    assert (row[:x] == c1).any() and (row[x:] == c1).any()  # lateral masses on both sides
    assert (lab[x, :y, mid] == c1).any()  # the posterior arch behind the cord's space
    # no disc tissue (80 HU) on the axis between the C2 body and the dens's tip
    column = hu[x, y, : int(ring_z.max())]
    top_c2_body = int(np.flatnonzero(lab[x, y, :] == c2).min())
    assert (column[top_c2_body : int(np.flatnonzero(lab[x, y, :] == c2).max())] >= 150).all()


def test_ribs_are_drawn_unlabelled_on_thoracic_levels_only() -> None:
    p = make_spine_phantom(
        PhantomSpec(levels=("C6", "C7", "T1", "T2"), ribs=True, spacing_mm=(1.5, 1.5, 1.5))
    )
    hu = np.asarray(p.ct.hu)
    lab = np.asarray(p.labels.labels)
    for level, bears in (("C7", False), ("T1", True), ("T2", True)):
        centre = p.ct.grid.to_voxel(np.array([p.truth[level].body_centroid_mm]))[0]
        x, z = round(centre[0]), round(centre[2])
        far = round(60.0 / 1.5)  # 60 mm lateral of the body's centre, within 6 mm of its level
        band = hu[x + far, :, max(z - 4, 0) : z + 5]
        band_l = hu[x - far, :, max(z - 4, 0) : z + 5]
        assert bool((band >= 400).any() and (band_l >= 400).any()) is bears, level
    assert not lab[hu >= 400].all()  # the ribs' bone carries no vertebra label


def test_default_phantom_ignores_the_atlas_options_off() -> None:
    a = make_spine_phantom(_spec())
    b = make_spine_phantom(_spec(atlas=False, ribs=False))
    assert np.array_equal(np.asarray(a.ct.hu), np.asarray(b.ct.hu))
