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

from pathlib import Path

import numpy as np
import pytest

from spinewatch.imaging.density import trabecular_density
from spinewatch.imaging.lesions import detect_lytic_lesions
from spinewatch.validation import LesionSpec, insert_lesion
from spinewatch.validation.lesion_matrix import (
    REAL_KEYS,
    Case,
    check_untouched,
    insert_matrix,
    load_real_vertebrae,
    real_files,
)

pytestmark = pytest.mark.shared_data

#: Lesions are drawn at least this far below their own bone (HU): fainter, a soft-tissue region
#: is not what makes a lesion lytic-looking (at 60 HU in 75 HU bone there is nothing to find).
MIN_CONTRAST_HU = 60.0
#: The issue's targets are asserted for lesions at least this far below their bone; between
#: MIN_CONTRAST_HU and this, a lower detection rate is asserted (and reported).
TARGET_CONTRAST_HU = 70.0


@pytest.fixture(scope="module")
def vertebrae(shared_data: Path, shared_file):  # type: ignore[no-untyped-def]
    """Every real vertebra (``spinewatch.validation.lesion_matrix``: the same set and reading
    as the validation document's lesion section)."""
    for key in REAL_KEYS:
        for rel in real_files(key):
            shared_file(rel)  # fails (not skips) in CI when a file is missing
    return load_real_vertebrae(shared_data)


@pytest.fixture(scope="module")
def real(vertebrae):  # type: ignore[no-untyped-def]
    return {name: (v.region, v.hu) for name, v in vertebrae.items()}


# --- no false lesions in untouched real vertebrae ---------------------------------------------
def test_no_false_lesions_in_untouched_real_vertebrae(vertebrae) -> None:  # type: ignore[no-untyped-def]
    assert set(vertebrae) >= {"ts3mm/T12", "ts3mm/L1", "ts3mm/L2", "dicom/T12", "tptbox/L3"}
    assert {"tptbox/L2", "tptbox/L4", "cta/T12", "verse/L2", "verse+disc/L2"} <= set(vertebrae)
    checks = check_untouched(vertebrae)
    assert {c.background for c in checks} == {"native", "75 HU", "200 HU"}
    for c in checks:
        assert c.largest_ml < 0.3, c
        if c.vertebra.startswith("ts3mm") and c.background == "native":  # the issue's scan
            assert c.n_lesions == 0 and not c.posterior_wall, c
        if c.background == "native":
            assert not c.pedicle, c


# --- the inserted matrix ----------------------------------------------------------------------
INSERT_INTO = ("ts3mm/L1", "ts3mm/L2", "dicom/T12", "tptbox/L3", "cta/T12", "verse/L2")
SHAPES = ("sphere", "ellipsoid", "lobulated")
PLACES = ("central", "posterior_wall", "central", "pedicle_left", "pedicle_right")
PER_BACKGROUND = 5


def _target(c: Case) -> bool:
    return c.sized and c.contrast_hu >= TARGET_CONTRAST_HU


@pytest.fixture(scope="module")
def cases(vertebrae) -> list[Case]:  # type: ignore[no-untyped-def]
    return insert_matrix(
        vertebrae, INSERT_INTO, per_background=PER_BACKGROUND, min_contrast_hu=MIN_CONTRAST_HU
    )


def _report(cases: list[Case]) -> str:
    return "\n".join(str(c) for c in cases)


def test_matrix_covers_the_issue(cases: list[Case]) -> None:
    assert len(cases) >= 50
    assert {c.spec.shape for c in cases} == set(SHAPES)
    assert {c.spec.place for c in cases} == set(PLACES)
    assert {c.background for c in cases} == {"native", "osteoporotic", "normal"}
    assert {c.voxel_max_mm for c in cases} >= {1.0, 1.5, 2.0, 3.0}
    assert sum(_target(c) for c in cases) >= 30


def test_detection_rate_of_target_lesions(cases: list[Case]) -> None:
    targets = [c for c in cases if _target(c)]
    missed = [c for c in targets if not c.found]
    assert len(missed) <= 0.05 * len(targets), _report(missed)
    # 60-70 HU below the bone: found less often (noisy, correlated or textured bone), still most
    faint = [c for c in cases if c.sized and not _target(c)]
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
