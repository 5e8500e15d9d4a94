"""Lytic lesions in REAL bone: synthetic lesions inserted into the real scans of ../shared/data.

Backgrounds: the TotalSegmentator example (3 mm voxels, L1/L2), its DICOM series (0.98 x 0.98 x
2 mm, T12), the TPTBox CT (1.5 mm, L3), the VerSe L2 crop (1 mm) and the CTA crop (1.5 mm,
contrast phase, T12 touching the crop's edge), each native and with its trabecular background
moved to osteoporotic (75 HU) and to normal (200 HU) density. Lesions: 0.3-10 ml, spheres,
ellipsoids and lobulated, central, at the posterior wall and reaching into either pedicle, at
-20..70 HU but at least :data:`MIN_CONTRAST_HU` below their own bone (a lytic lesion is *markedly*
below its bone; at 60 HU in 75 HU bone there is nothing to find). Targets of issue 7, asserted
over the whole generated matrix:

* >= 95 % of the lesions of >= 1 ml found at voxels up to 2 mm (1 x 1 x 2 mm included), and of
  >= 2 ml at 3 mm, when at least 70 HU below their bone (60-70 HU below: >= 75 %);
* the found ones' volume within 25 % (at most 5 % of them outside -- small lesions in the
  truncated DICOM T12, whose centre is ~20 HU less dense than a few mm out -- none beyond 60 %,
  median error under 8 %);
* posterior wall and pedicle involvement right in >= 90 %;
* no false lesion >= 0.3 ml in any untouched real vertebra.

The VerSe crop (spineFE-benchmark) labels six compartments; the benchmark's README says they are
cortical, trabecular, body, process and *disk* components, and its image is zero outside classes
1-4 (the discs were cropped away): classes 1-4 are the vertebra, 5-6 the disc layers along the
endplates. It is used both ways: classes 1-4 ("verse"), and the union of all six ("verse+disc":
a label that takes in disc, a known source of false lesions along the endplates).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

from spinewatch.imaging.anatomy import VertebraRegion, crop_hu, find_vertebrae
from spinewatch.imaging.density import trabecular_density
from spinewatch.imaging.io import load_study
from spinewatch.imaging.lesions import detect_lytic_lesions
from spinewatch.imaging.volume import LabelVolume
from spinewatch.validation import (
    InsertionError,
    LesionSpec,
    estimate_noise,
    insert_lesion,
    with_trabecular_background,
)

pytestmark = pytest.mark.shared_data

#: Lesions are drawn at least this far below their own bone (HU): fainter, a soft-tissue region
#: is not what makes a lesion lytic-looking (at 60 HU in 75 HU bone there is nothing to find).
MIN_CONTRAST_HU = 60.0
#: The issue's targets are asserted for lesions at least this far below their bone; between
#: MIN_CONTRAST_HU and this, a lower detection rate is asserted (and reported).
TARGET_CONTRAST_HU = 70.0
TS = "ct/totalseg-example/"


def _load(shared_file, key: str) -> list[tuple[str, VertebraRegion, Any]]:  # type: ignore[no-untyped-def]
    if key == "ts3mm":
        ct, labels = load_study(
            shared_file(TS + "example_ct_sm.nii.gz"), shared_file(TS + "example_seg.nii.gz")
        )
        conv = "totalsegmentator"
    elif key == "dicom":
        ct, labels = load_study(
            shared_file(TS + "dicom"), shared_file(TS + "example_seg_dicom.nii.gz")
        )
        conv = "totalsegmentator"
    elif key == "tptbox":
        ct, labels = load_study(
            shared_file("ct/tptbox-ct/sub-ct_label-22_ct.nii.gz"),
            shared_file("ct/tptbox-ct/sub-ct_seg-vert_label-22_msk.nii.gz"),
        )
        conv = "verse"
    elif key == "cta":
        ct, labels = load_study(
            shared_file("ct/totalseg-aorta-cta/ct_cropped.nii.gz"),
            shared_file("ct/totalseg-aorta-cta/vertebrae_T12.nii.gz"),
        )
        t12 = (np.asarray(labels.labels) > 0).astype(np.uint8) * 32  # TotalSegmentator T12
        labels = LabelVolume(t12, labels.grid, labels.source)
        conv = "totalsegmentator"
    else:
        crop = "ct/verse004-L2-crop/sub-verse004_0000_vertebra_21_"
        ct, labels = load_study(shared_file(crop + "im.nii.gz"), shared_file(crop + "seg.nii.gz"))
        classes = np.asarray(labels.labels)
        # "verse": the vertebra (classes 1-4); "verse+disc": all six classes, the disc layers
        # (image zero, i.e. soft-tissue-like) inside the label along both endplates
        keep = classes > 0 if key == "verse+disc" else (classes >= 1) & (classes <= 4)
        labels = LabelVolume(keep.astype(np.uint8) * 21, labels.grid, labels.source)  # VerSe L2
        conv = "verse"
    assert ct is not None
    return [(key, r, crop_hu(ct.hu, r)) for r in find_vertebrae(labels, conv)]


@pytest.fixture(scope="module")
def real(shared_file) -> dict[str, tuple[VertebraRegion, Any]]:  # type: ignore[no-untyped-def]
    out = {}
    for key in ("ts3mm", "dicom", "tptbox", "cta", "verse", "verse+disc"):
        for name, region, hu in _load(shared_file, key):
            out[f"{name}/{region.level}"] = (region, hu)
    return out


# --- no false lesions in untouched real vertebrae ---------------------------------------------
def test_no_false_lesions_in_untouched_real_vertebrae(real) -> None:  # type: ignore[no-untyped-def]
    assert set(real) >= {"ts3mm/T12", "ts3mm/L1", "ts3mm/L2", "dicom/T12", "tptbox/L3"}
    assert {"tptbox/L2", "tptbox/L4", "cta/T12", "verse/L2", "verse+disc/L2"} <= set(real)
    for name, (region, hu) in real.items():
        f = detect_lytic_lesions(hu, region, density=trabecular_density(hu, region))
        assert f.largest_ml < 0.3, (name, f.largest_ml)
        if name.startswith("ts3mm"):  # the issue's scan: nothing at all
            assert f.n_lesions == 0 and not f.posterior_wall_involved, name
        assert not (f.pedicle_left_involved or f.pedicle_right_involved), name
        for target in (75.0, 200.0):
            if f.background_hu is None:
                continue
            moved, _ = with_trabecular_background(hu, region, target)
            g = detect_lytic_lesions(moved, region, density=trabecular_density(moved, region))
            assert g.largest_ml < 0.3, (name, target, g.largest_ml)


# --- the inserted matrix ----------------------------------------------------------------------
INSERT_INTO = ("ts3mm/L1", "ts3mm/L2", "dicom/T12", "tptbox/L3", "cta/T12", "verse/L2")
SIZES_ML = (1.0, 2.0, 4.0, 0.5, 3.0, 8.0, 1.5, 0.3, 6.0, 10.0, 2.5, 1.2)
SHAPES = ("sphere", "ellipsoid", "lobulated")
PLACES = ("central", "posterior_wall", "central", "pedicle_left", "pedicle_right")
PER_BACKGROUND = 5


@dataclass
class Case:
    vertebra: str
    background: str
    seed: int
    bone_hu: float
    voxel_max_mm: float
    spec: LesionSpec
    truth_body_ml: float
    truth_wall: bool
    truth_left: bool
    truth_right: bool
    found: bool
    volume_ml: float
    wall: bool
    left: bool
    right: bool

    @property
    def sized(self) -> bool:
        """Big enough for the issue's targets: >= 1 ml at voxels up to 2 mm, >= 2 ml at 3 mm."""
        need = 1.0 if self.voxel_max_mm <= 2.0 else 2.0
        return self.truth_body_ml >= need

    @property
    def target(self) -> bool:
        return self.sized and self.bone_hu - self.spec.hu >= TARGET_CONTRAST_HU

    def __str__(self) -> str:
        return (
            f"{self.vertebra} {self.background} (seed {self.seed}) bone {self.bone_hu:.0f} HU: "
            f"{self.spec.volume_ml} ml {self.spec.shape} "
            f"{self.spec.place} {self.spec.hu:.0f} HU, truth {self.truth_body_ml:.2f} ml "
            f"wall={self.truth_wall} L={self.truth_left} R={self.truth_right} -> found="
            f"{self.found} {self.volume_ml:.2f} ml wall={self.wall} L={self.left} R={self.right}"
        )


def _backgrounds(region, hu, bone_hu):  # type: ignore[no-untyped-def]
    """The native crop, and its trabecular bone moved to osteoporotic / normal density."""
    yield "native", hu
    if bone_hu > 95.0:
        yield "osteoporotic", with_trabecular_background(hu, region, 75.0)[0]
    if bone_hu < 150.0:
        yield "normal", with_trabecular_background(hu, region, 200.0)[0]


@pytest.fixture(scope="module")
def cases(real) -> list[Case]:  # type: ignore[no-untyped-def]
    out: list[Case] = []
    k = 0
    for name in INSERT_INTO:
        region, hu = real[name]
        noise = estimate_noise(hu, region.mask, region.grid.spacing_mm)
        native_bone = detect_lytic_lesions(hu, region, density=None).background_hu
        assert native_bone is not None, name
        for background, image in _backgrounds(region, hu, native_bone):
            bone = detect_lytic_lesions(image, region, density=None).background_hu
            assert bone is not None
            placed = 0
            while placed < PER_BACKGROUND:
                k += 1
                rng = np.random.default_rng(k)
                size = SIZES_ML[k % len(SIZES_ML)]
                if size > 0.25 * region.body_volume_ml:
                    continue
                top = min(70.0, bone - MIN_CONTRAST_HU)
                if top < -20.0:
                    break  # bone at soft-tissue density: no lytic lesion to draw
                spec = LesionSpec(
                    volume_ml=size,
                    hu=float(rng.uniform(-20.0, top)),
                    shape=SHAPES[k % 3],
                    place=PLACES[k % len(PLACES)],
                )
                try:
                    les = insert_lesion(image, region, spec, seed=k, noise=noise)
                except InsertionError:
                    continue
                placed += 1
                f = detect_lytic_lesions(les.hu, region, density=trabecular_density(les.hu, region))
                truth_mask = (les.fraction >= 0.5) & region.body
                overlap = np.count_nonzero(f.lesion_mask & truth_mask)
                out.append(
                    Case(
                        vertebra=name,
                        background=background,
                        seed=k,
                        bone_hu=bone,
                        voxel_max_mm=max(region.grid.spacing_mm),
                        spec=spec,
                        truth_body_ml=les.body_volume_ml,
                        truth_wall=les.posterior_wall_involved,
                        truth_left=les.pedicle_left_involved,
                        truth_right=les.pedicle_right_involved,
                        found=f.n_lesions > 0 and overlap >= 0.2 * max(1, truth_mask.sum()),
                        volume_ml=f.volume_ml,
                        wall=f.posterior_wall_involved,
                        left=f.pedicle_left_involved,
                        right=f.pedicle_right_involved,
                    )
                )
    return out


def _report(cases: list[Case]) -> str:
    return "\n".join(str(c) for c in cases)


def test_matrix_covers_the_issue(cases: list[Case]) -> None:
    assert len(cases) >= 50
    assert {c.spec.shape for c in cases} == set(SHAPES)
    assert {c.spec.place for c in cases} == set(PLACES)
    assert {c.background for c in cases} == {"native", "osteoporotic", "normal"}
    assert {c.voxel_max_mm for c in cases} >= {1.0, 1.5, 2.0, 3.0}
    assert sum(c.target for c in cases) >= 30


def test_detection_rate_of_target_lesions(cases: list[Case]) -> None:
    targets = [c for c in cases if c.target]
    missed = [c for c in targets if not c.found]
    assert len(missed) <= 0.05 * len(targets), _report(missed)
    # 60-70 HU below the bone: found less often (noisy, correlated or textured bone), still most
    faint = [c for c in cases if c.sized and not c.target]
    assert faint, "the matrix has faint lesions too"
    assert sum(c.found for c in faint) >= 0.75 * len(faint), _report(faint)


def test_volume_of_found_lesions_within_25_pct(cases: list[Case]) -> None:
    found = [c for c in cases if c.sized and c.found]
    off = [c for c in found if abs(c.volume_ml / c.truth_body_ml - 1.0) > 0.25]
    # the few outliers are small lesions in the truncated DICOM T12, whose bone is ~20 HU less
    # dense around the body's centre than a few mm out (and its noise strongly correlated)
    assert len(off) <= 0.05 * len(found), _report(off)
    assert all(abs(c.volume_ml / c.truth_body_ml - 1.0) <= 0.6 for c in found), _report(found)
    errors = [c.volume_ml / c.truth_body_ml - 1.0 for c in found]
    assert abs(float(np.median(errors))) < 0.08


def test_wall_and_pedicle_involvement(cases: list[Case]) -> None:
    found = [c for c in cases if c.found]
    wrong_wall = [c for c in found if c.wall != c.truth_wall]
    wrong_pedicle = [c for c in found if (c.left, c.right) != (c.truth_left, c.truth_right)]
    assert len(wrong_wall) <= 0.1 * len(found), _report(wrong_wall)
    assert len(wrong_pedicle) <= 0.1 * len(found), _report(wrong_pedicle)
    # both kinds of truth occur, so the flags cannot be right by always saying the same thing
    assert any(c.truth_wall for c in found) and any(not c.truth_wall for c in found)
    assert any(c.truth_left for c in found) and any(c.truth_right for c in found)


# --- what must not be called a lesion, and the issue's own report ------------------------------
@pytest.mark.parametrize("name", ["ts3mm/L1", "tptbox/L3", "verse/L2"])
def test_faint_change_is_not_a_lesion(real, name: str) -> None:  # type: ignore[no-untyped-def]
    region, hu = real[name]
    bone = detect_lytic_lesions(hu, region, density=None).background_hu
    assert bone is not None
    for drop in (5.0, 25.0):
        spec = LesionSpec(5.0, bone - drop)
        les = insert_lesion(hu, region, spec, seed=int(drop))
        f = detect_lytic_lesions(les.hu, region, density=None)
        assert f.largest_ml < 0.3, (name, drop, f.largest_ml)


@pytest.mark.parametrize("name", ["verse/L2", "tptbox/L3", "cta/T12", "ts3mm/L1"])
def test_basivertebral_channel_is_not_a_lesion(real, name: str) -> None:  # type: ignore[no-untyped-def]
    """A venous channel entering at the posterior wall (a tube five times as long as wide, 0.3 ml,
    vessel/fat-blood density) is thin: not reported, and no wall involvement from it."""
    region, hu = real[name]
    les = insert_lesion(hu, region, LesionSpec(0.3, 10.0, "channel", "posterior_wall"), seed=2)
    assert les.posterior_wall_involved and les.body_volume_ml > 0.25
    f = detect_lytic_lesions(les.hu, region, density=trabecular_density(les.hu, region))
    assert f.n_lesions == 0 and not f.posterior_wall_involved, (name, f.largest_ml)
    # a blob of twice the volume at the same place is a lesion (at voxels fine enough for it,
    # in bone dense enough to hold a soft-tissue lesion 80 HU below it)
    bone = f.background_hu
    assert bone is not None
    if max(region.grid.spacing_mm) <= 1.5 and bone - 80.0 >= -20.0:
        spec = LesionSpec(0.6, min(10.0, bone - 80.0), "sphere", "posterior_wall")
        blob = insert_lesion(hu, region, spec, seed=2)
        g = detect_lytic_lesions(blob.hu, region, density=trabecular_density(blob.hu, region))
        assert g.n_lesions == 1 and g.posterior_wall_involved, name


@pytest.mark.parametrize("place", ["central", "posterior_wall"])
def test_lesion_found_in_a_label_with_disc_layers(real, place: str) -> None:  # type: ignore[no-untyped-def]
    """With the disc layers in the label (not a lesion, see the no-false-lesion test), a lesion
    in the bone between them is still found and measured."""
    region, hu = real["verse+disc/L2"]
    les = insert_lesion(hu, region, LesionSpec(2.0, 0.0, "sphere", place), seed=5)
    f = detect_lytic_lesions(les.hu, region, density=trabecular_density(les.hu, region))
    assert f.n_lesions == 1
    assert f.volume_ml == pytest.approx(les.body_volume_ml, rel=0.25)
    assert f.posterior_wall_involved == les.posterior_wall_involved


@pytest.mark.parametrize(("volume_ml", "hu"), [(3.0, 0.0), (5.0, 20.0), (7.0, 35.0), (7.0, 0.0)])
def test_issue_7_spheres_in_l1_are_measured(real, volume_ml: float, hu: float) -> None:  # type: ignore[no-untyped-def]
    """The tester's report: 0-35 HU spheres of 3-7 ml in L1 of the 3 mm example all read 0 ml."""
    region, ct = real["ts3mm/L1"]
    les = insert_lesion(ct, region, LesionSpec(volume_ml, hu), seed=7)
    f = detect_lytic_lesions(les.hu, region, density=trabecular_density(les.hu, region))
    assert f.n_lesions == 1
    assert f.volume_ml == pytest.approx(les.body_volume_ml, rel=0.25)
    truth = les.fraction >= 0.5
    assert np.count_nonzero(f.lesion_mask & truth) >= 0.8 * np.count_nonzero(truth)
