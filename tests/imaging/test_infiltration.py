"""Diffuse infiltration: a level far below the patient's own spine, robust to the gradient."""

from __future__ import annotations

import numpy as np
import pytest

from spinewatch.core.levels import VertebralLevel
from spinewatch.imaging.infiltration import (
    MIN_DROP_HU,
    LevelDensity,
    assess_diffuse_infiltration,
    repeated_median_line,
)

T8_L5 = [VertebralLevel.parse(n) for n in ("T8", "T9", "T10", "T11", "T12", "L1", "L2", "L3")]
T8_L5 += [VertebralLevel.L4, VertebralLevel.L5]


def _spine(
    slope_hu_per_level: float = -4.0,
    top_hu: float = 190.0,
    drops: dict[str, float] | None = None,
    noise_hu: float = 6.0,
    seed: int = 0,
    unreliable: tuple[str, ...] = (),
) -> list[LevelDensity]:
    rng = np.random.default_rng(seed)
    out = []
    for i, lv in enumerate(T8_L5):
        hu = top_hu + slope_hu_per_level * i + float(rng.normal(0.0, noise_hu))
        hu -= (drops or {}).get(str(lv), 0.0)
        out.append(LevelDensity(lv, hu, str(lv) not in unreliable))
    return out


def _infiltrated(found) -> set[str]:  # type: ignore[no-untyped-def]
    return {str(lv) for lv, f in found.items() if f.infiltrated}


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("slope", [0.0, -4.0, -8.0])
def test_normal_spine_with_a_gradient_has_no_infiltration(seed: int, slope: float) -> None:
    # -8 HU per level: T8 190 HU, L5 118 HU (72 HU apart): the gradient is not a finding
    found = assess_diffuse_infiltration(_spine(slope, seed=seed))
    assert _infiltrated(found) == set()
    assert all(f.infiltrated is False for f in found.values())
    assert all((f.hu_below_own or 0.0) < 25.0 for f in found.values())


@pytest.mark.parametrize("slope", [0.0, -8.0])
@pytest.mark.parametrize("level", ["T8", "T12", "L5"])
def test_one_infiltrated_level_is_found(slope: float, level: str) -> None:
    found = assess_diffuse_infiltration(_spine(slope, drops={level: 70.0}))
    assert _infiltrated(found) == {level}
    f = found[VertebralLevel.parse(level)]
    assert f.hu_below_own == pytest.approx(70.0, abs=20.0)
    assert f.n_reference == len(T8_L5) - 1


def test_several_infiltrated_levels_do_not_hide_each_other() -> None:
    drops = {"T10": 80.0, "L1": 70.0, "L3": 90.0}
    found = assess_diffuse_infiltration(_spine(-6.0, drops=drops, seed=3))
    assert _infiltrated(found) == set(drops)


def test_a_modest_dip_is_not_infiltration() -> None:
    found = assess_diffuse_infiltration(_spine(-4.0, drops={"L2": 25.0}, noise_hu=2.0))
    assert found[VertebralLevel.L2].infiltrated is False
    assert found[VertebralLevel.L2].hu_below_own == pytest.approx(25.0, abs=8.0)
    assert found[VertebralLevel.L2].threshold_hu >= MIN_DROP_HU


def test_not_assessable_without_enough_whole_levels() -> None:
    few = [
        LevelDensity(VertebralLevel.T12, 150.0, True),
        LevelDensity(VertebralLevel.L1, 60.0, True),
        LevelDensity(VertebralLevel.L2, 150.0, True),
        LevelDensity(VertebralLevel.L3, 150.0, False),  # truncated: not a reference
    ]
    found = assess_diffuse_infiltration(few)
    assert all(f.infiltrated is None for f in found.values())
    assert found[VertebralLevel.L1].n_reference == 2
    # a fourth whole level makes L1 assessable (and L1 is 90 HU below the others)
    found = assess_diffuse_infiltration([*few, LevelDensity(VertebralLevel.L4, 150.0, True)])
    assert found[VertebralLevel.L1].infiltrated is True
    assert found[VertebralLevel.L3].infiltrated is None  # unreliable levels get no verdict


def test_unreliable_and_unmeasured_levels_are_not_references() -> None:
    levels = _spine(0.0, drops={"L2": 100.0}, unreliable=("L2",))
    levels.append(LevelDensity(VertebralLevel.S1, None, True))
    found = assess_diffuse_infiltration(levels)
    assert found[VertebralLevel.L2].infiltrated is None
    assert found[VertebralLevel.S1].infiltrated is None
    assert _infiltrated(found) == set()
    assert found[VertebralLevel.L1].n_reference == len(T8_L5) - 2


def test_repeated_median_line() -> None:
    pts = [(float(x), 3.0 - 2.0 * x) for x in range(8)]
    assert repeated_median_line(pts) == pytest.approx((-2.0, 3.0))
    # three of eight points far off: the line does not move
    bad = [(x, y - (90.0 if int(x) in (1, 4, 6) else 0.0)) for x, y in pts]
    assert repeated_median_line(bad) == pytest.approx((-2.0, 3.0))
    with pytest.raises(ValueError, match="distinct"):
        repeated_median_line([(1.0, 2.0), (1.0, 3.0)])


def test_analysis_reports_diffuse_infiltration_and_raises_risk() -> None:
    from spinewatch.imaging.analysis import analyze
    from spinewatch.imaging.phantom import PhantomSpec, make_spine_phantom

    spec = PhantomSpec(
        levels=("T11", "T12", "L1", "L2", "L3"),
        spacing_mm=(1.5, 1.5, 1.5),
        trabecular_hu={"L1": 120.0},  # 80 HU below its own spine, above Pickhardt's 110 HU
    )
    ph = make_spine_phantom(spec)
    rep = analyze(ph.ct, ph.labels, convention="totalsegmentator").to_json_dict()
    got = {v["level"]: v for v in rep["vertebrae"]}
    assert got["L1"]["diffuse_infiltration"] is True
    assert got["L1"]["diffuse_infiltration_hu_below_own"] == pytest.approx(80.0, abs=10.0)
    assert got["L1"]["collapse_risk"] == "moderate"
    assert any(r.startswith("diffuse infiltration") for r in got["L1"]["reasons"])
    for name in ("T11", "T12", "L2", "L3"):
        assert got[name]["diffuse_infiltration"] is False, name
        assert abs(got[name]["diffuse_infiltration_hu_below_own"]) < 10.0, name
    no_ct = analyze(None, ph.labels, convention="totalsegmentator").to_json_dict()
    assert all(v["diffuse_infiltration"] is None for v in no_ct["vertebrae"])
