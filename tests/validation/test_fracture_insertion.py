"""Fractures built into a label map (:mod:`spinewatch.validation.fracture_insertion`) on a
phantom whose heights are known: each kind lowers the heights it should, by the drawn loss,
and leaves everything else alone."""

from __future__ import annotations

import numpy as np
import pytest

from spinewatch.imaging.anatomy import find_vertebrae
from spinewatch.imaging.heights import body_heights
from spinewatch.imaging.phantom import PhantomSpec, make_spine_phantom
from spinewatch.validation.fracture_insertion import DeformationError, deform_body

CONV = "totalsegmentator"


@pytest.fixture(scope="module")
def phantom():
    return make_spine_phantom(PhantomSpec(levels=("T12", "L1", "L2"), spacing_mm=(1.0, 1.0, 1.0)))


def _heights(labels, level: str):
    (region,) = [r for r in find_vertebrae(labels, CONV) if str(r.level.value) == level]
    h = body_heights(region)
    assert h is not None
    return h


@pytest.mark.parametrize(
    ("kind", "factors"),
    [
        ("wedge", (0.70, 0.85, 1.0)),
        ("biconcave", (1.0, 0.70, 1.0)),
        ("crush", (0.70, 0.70, 0.70)),
    ],
)
def test_each_kind_lowers_its_heights_by_the_loss(phantom, kind: str, factors) -> None:
    labels, before = deform_body(phantom.labels, CONV, "L1", kind, 0.30)
    after = _heights(labels, "L1")
    got = (after.anterior_mm, after.middle_mm, after.posterior_mm)
    ref = (before.anterior_mm, before.middle_mm, before.posterior_mm)
    for g, r, f in zip(got, ref, factors, strict=True):
        assert g == pytest.approx(r * f, abs=1.0), (kind, got, ref)
    # the original heights are the phantom's drawn ones
    assert before.posterior_mm == pytest.approx(phantom.truth["L1"].height_posterior_mm, abs=1.0)


def test_only_the_deformed_body_changes(phantom) -> None:
    labels, _ = deform_body(phantom.labels, CONV, "L1", "crush", 0.4)
    original = phantom.labels.labels
    changed = labels.labels != original
    l1 = phantom.truth["L1"].label
    assert changed.any()
    # only L1 and background trade voxels (L1 mostly loses them); no other label changes
    assert set(np.unique(original[changed])) <= {0, l1}
    assert set(np.unique(labels.labels[changed])) <= {0, l1}
    assert np.count_nonzero(labels.labels == l1) < 0.8 * np.count_nonzero(original == l1)
    assert not np.shares_memory(labels.labels, original)
    # the neighbours' voxels are untouched; their frames follow the column through L1's moved
    # centroid, so their heights may move by a fraction of a voxel
    for level in ("T12", "L2"):
        assert _heights(labels, level).posterior_mm == pytest.approx(
            _heights(phantom.labels, level).posterior_mm, abs=0.5
        )


@pytest.mark.parametrize(
    ("level", "kind", "loss", "message"),
    [
        ("L1", "squash", 0.3, "expected one of wedge, biconcave, crush"),
        ("L1", "wedge", 1.2, "expected a fraction between 0 and 1"),
        ("C3", "wedge", 0.3, "level 'C3' not in the map"),
    ],
)
def test_bad_requests_are_typed_errors(phantom, level, kind, loss, message) -> None:
    with pytest.raises(DeformationError, match=message):
        deform_body(phantom.labels, CONV, level, kind, loss)
