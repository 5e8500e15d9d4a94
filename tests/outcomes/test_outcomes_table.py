"""outcome_table against independent scipy / numpy / statsmodels computations written here."""

from __future__ import annotations

import csv
import io
import json
import math

import numpy as np
import pandas as pd
import pytest
from outcomes_cohorts import reference_like_cohort, write_cohort_csv
from scipy import stats
from statsmodels.stats.multitest import multipletests

from spinewatch.core.errors import InputError
from spinewatch.core.protocol import FollowUpProtocol, TimePoint
from spinewatch.outcomes.cohort_file import read_cohort_csv
from spinewatch.outcomes.table import CSV_COLUMNS, CohortFrameError, outcome_table

CODES = ("pre", "3d", "1m", "3m", "6m", "12m")


def _wide(frame: pd.DataFrame) -> pd.DataFrame:
    """patients x time points, NaN where missing -- the independent pairing."""
    return frame.pivot(index="patient_id", columns="timepoint", values="vas")


@pytest.fixture(scope="module")
def reference_cohort() -> pd.DataFrame:

    return reference_like_cohort(seed=3)


@pytest.fixture(scope="module")
def table_t(reference_cohort):
    return outcome_table(reference_cohort, mixed_model=False)


def test_rows_in_protocol_order_even_when_the_frame_is_shuffled(reference_cohort):
    shuffled = reference_cohort.sample(frac=1.0, random_state=1)
    table = outcome_table(shuffled, mixed_model=False)
    assert [row.timepoint for row in table.rows] == list(CODES)
    assert [row.label for row in table.rows][:2] == ["Pre-operative", "3 days"]
    assert table.n_patients == 13


def test_file_and_frame_give_the_same_table(reference_cohort, tmp_path):
    path = write_cohort_csv(tmp_path / "cohort.csv", reference_cohort)
    from_file = outcome_table(read_cohort_csv(path), mixed_model=False).to_json_dict()
    assert from_file == outcome_table(reference_cohort, mixed_model=False).to_json_dict()


def test_descriptives_match_numpy(reference_cohort, table_t):
    wide = _wide(reference_cohort)
    for row in table_t.rows:
        values = wide[row.timepoint].dropna().to_numpy()
        assert row.n == values.size
        assert row.mean == pytest.approx(values.mean(), abs=1e-12)
        assert row.sd == pytest.approx(values.std(ddof=1), abs=1e-12)
        assert row.median == pytest.approx(np.median(values), abs=1e-12)
        q1, q3 = pd.Series(values).quantile([0.25, 0.75])  # pandas: linear, like R type 7
        assert (row.q1, row.q3) == (pytest.approx(q1, abs=1e-12), pytest.approx(q3, abs=1e-12))
    # the reference shape: all 13 at baseline, fewer at 6 and 12 months
    assert [row.n for row in table_t.rows] == [13, 13, 13, 13, 10, 6]


def test_paired_change_ci_and_t_test_match_scipy(reference_cohort, table_t):
    wide = _wide(reference_cohort)
    for row in table_t.rows[1:]:
        both = wide[["pre", row.timepoint]].dropna()
        result = stats.ttest_rel(both[row.timepoint], both["pre"])
        ci = result.confidence_interval(confidence_level=0.95)
        assert row.n_paired == len(both)
        assert row.mean_change == pytest.approx((both[row.timepoint] - both["pre"]).mean())
        assert row.ci95 == (pytest.approx(ci.low), pytest.approx(ci.high))
        assert row.p_value == pytest.approx(result.pvalue, rel=1e-9)
        assert row.test == "paired-t"
        assert row.note is None
    assert table_t.rows[0].n_paired is None and table_t.rows[0].p_value is None


def test_wilcoxon_switch_matches_scipy(reference_cohort):
    table = outcome_table(reference_cohort, test="wilcoxon", mixed_model=False)
    wide = _wide(reference_cohort)
    assert table.test == "wilcoxon"
    for row in table.rows[1:]:
        both = wide[["pre", row.timepoint]].dropna()
        # differences rounded to 9 decimals (documented: float noise must not break ties)
        expected = stats.wilcoxon(np.round(both[row.timepoint] - both["pre"], 9)).pvalue
        assert row.test == "wilcoxon"
        assert row.p_value == pytest.approx(expected, rel=1e-9)
    t_table = outcome_table(reference_cohort, mixed_model=False)
    assert [r.p_value for r in table.rows[1:]] != [r.p_value for r in t_table.rows[1:]]


def test_holm_matches_multipletests_and_a_hand_computation(table_t):
    raw = [row.p_value for row in table_t.rows[1:]]
    expected = multipletests(raw, method="holm")[1]
    assert [row.p_holm for row in table_t.rows[1:]] == pytest.approx(list(expected), rel=1e-12)
    # Holm by hand: sort, multiply by (m - rank), running max, cap at 1
    m = len(raw)
    order = np.argsort(raw)
    by_hand = np.empty(m)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * raw[i]))
        by_hand[i] = running
    assert [row.p_holm for row in table_t.rows[1:]] == pytest.approx(list(by_hand), rel=1e-12)


def test_holm_on_a_cohort_with_moderate_p_values():
    """Small effects so the adjustment is visible (p_holm > p), against multipletests."""
    rng = np.random.default_rng(12)
    rows = []
    for p in range(12):
        base = float(np.round(rng.uniform(4, 8), 1))
        rows.append((f"p{p}", "pre", base))
        for code, shift in (("3d", -0.2), ("1m", -0.6), ("3m", -1.2)):
            rows.append(
                (
                    f"p{p}",
                    code,
                    float(np.clip(np.round(base + shift + rng.normal(0, 1.5), 1), 0, 10)),
                )
            )
    frame = pd.DataFrame(rows, columns=["patient_id", "timepoint", "vas"])
    table = outcome_table(frame, mixed_model=False)
    raw = [r.p_value for r in table.rows[1:]]
    assert all(p is not None and 1e-4 < p < 1 for p in raw)
    assert [r.p_holm for r in table.rows[1:]] == pytest.approx(
        list(multipletests(raw, method="holm")[1])
    )
    assert any(r.p_holm > r.p_value for r in table.rows[1:])
    # the step-down's running maximum: 1m (0.0275 * 3) lifts 3m above its own 0.0366 * 2
    assert table.row("3m").p_holm == pytest.approx(table.row("1m").p_holm)
    assert table.row("3m").p_holm > 2 * table.row("3m").p_value


def test_responders_by_hand(reference_cohort, table_t):
    wide = _wide(reference_cohort)
    for row in table_t.rows[1:]:
        both = wide[["pre", row.timepoint]].dropna()
        count = 0
        for base, follow in zip(both["pre"], both[row.timepoint], strict=True):
            improvement = base - follow
            if improvement >= 2.0 - 1e-9 or (base > 0 and improvement / base >= 0.30 - 1e-9):
                count += 1
        assert row.responders == count
        assert row.responder_pct == pytest.approx(100.0 * count / len(both))


def test_responder_boundaries_exactly_two_points_and_thirty_percent():
    frame = pd.DataFrame(
        {
            "patient_id": ["a", "a", "b", "b", "c", "c", "d", "d", "e", "e"],
            "timepoint": ["pre", "3d"] * 5,
            # a: 7.6->5.6 = exactly 2 points; b: 5->3.5 = exactly 30%; c: 9->7.1 (1.9, 21%);
            # d: 0->0 (no pain, no improvement); e: 3->2.2 (0.8 points, 26.7%)
            "vas": [7.6, 5.6, 5.0, 3.5, 9.0, 7.1, 0.0, 0.0, 3.0, 2.2],
        }
    )
    row = outcome_table(frame, mixed_model=False).row("3d")
    assert row.responders == 2
    assert row.responder_pct == pytest.approx(40.0)


def test_only_present_points_but_always_the_baseline():
    frame = pd.DataFrame(
        {"patient_id": ["a", "b", "c"], "timepoint": ["3m", "3m", "3m"], "vas": [1.0, 2.0, 3.0]}
    )
    table = outcome_table(frame, mixed_model=False)
    assert [r.timepoint for r in table.rows] == ["pre", "3m"]
    pre, three = table.rows
    assert pre.n == 0 and pre.mean is None and pre.sd is None and pre.median is None
    assert "no baseline" in pre.note
    assert three.n == 3 and three.n_paired == 0 and three.mean_change is None
    assert three.responders == 0 and three.responder_pct is None
    assert three.p_holm is None
    json.dumps(table.to_json_dict(), allow_nan=False)


def test_fewer_than_two_pairs_gives_none_with_a_note():
    frame = pd.DataFrame(
        {
            "patient_id": ["a", "a", "b", "b", "c", "c", "a"],
            "timepoint": ["pre", "3d", "pre", "3d", "pre", "3d", "12m"],
            "vas": [8.0, 3.0, 7.0, 2.0, 6.0, 2.5, 1.0],
        }
    )
    table = outcome_table(frame, mixed_model=False)
    row = table.row("12m")
    assert row.n == 1 and row.n_paired == 1
    assert row.mean_change is None and row.ci95 is None and row.p_value is None
    assert row.p_holm is None
    assert row.sd is None  # one value: SD undefined
    assert "only 1 patient" in row.note
    assert row.responders == 1 and row.responder_pct == 100.0
    # Holm over the points that have a p: just 3d, so p_holm == p
    assert table.row("3d").p_holm == pytest.approx(table.row("3d").p_value)


@pytest.mark.parametrize("test", ["paired-t", "wilcoxon"])
def test_all_differences_zero_gives_no_p_and_no_warning(test):
    frame = pd.DataFrame(
        {
            "patient_id": ["a", "a", "b", "b", "c", "c"],
            "timepoint": ["pre", "1m"] * 3,
            "vas": [5.0, 5.0, 3.0, 3.0, 7.5, 7.5],
        }
    )
    row = outcome_table(frame, test=test).row("1m")  # pytest turns any warning into an error
    assert row.p_value is None and row.p_holm is None
    assert row.mean_change == 0.0 and row.ci95 == (0.0, 0.0)
    assert "all differences are zero" in row.note


def test_constant_nonzero_difference_t_undefined_wilcoxon_exact():
    frame = pd.DataFrame(
        {
            "patient_id": [f"p{i}" for i in range(6) for _ in range(2)],
            "timepoint": ["pre", "3d"] * 6,
            "vas": [v for base in (8.0, 7.0, 6.0, 9.0, 5.0, 7.5) for v in (base, base - 3.0)],
        }
    )
    t_row = outcome_table(frame, mixed_model=False).row("3d")
    assert t_row.p_value is None and "zero variance" in t_row.note
    assert t_row.mean_change == pytest.approx(-3.0)
    w_row = outcome_table(frame, test="wilcoxon", mixed_model=False).row("3d")
    assert w_row.p_value == pytest.approx(stats.wilcoxon([-3.0] * 6).pvalue)
    assert w_row.p_value == pytest.approx(2 / 2**6)  # exact: both tails of 2^6 sign patterns


def test_unknown_test_is_an_input_error(reference_cohort):
    with pytest.raises(
        InputError, match="unknown test 'anova'; expected one of paired-t, wilcoxon"
    ):
        outcome_table(reference_cohort, test="anova")


def test_string_and_categorical_timepoints_give_the_same_table(reference_cohort):
    categorical = reference_cohort.assign(
        timepoint=pd.Categorical(reference_cohort["timepoint"], categories=list(CODES))
    )
    a = outcome_table(reference_cohort, mixed_model=False).to_json_dict()
    b = outcome_table(categorical, mixed_model=False).to_json_dict()
    assert a == b


def test_custom_protocol():
    protocol = FollowUpProtocol(
        name="pldd",
        timepoints=(
            TimePoint("base", "Baseline", 0, 30, 0, baseline=True),
            TimePoint("6w", "6 weeks", 42, 7, 7),
        ),
    )
    frame = pd.DataFrame(
        {"patient_id": ["a", "a", "b", "b"], "timepoint": ["6w", "base"] * 2, "vas": [2, 6, 3, 8]}
    )
    table = outcome_table(frame, protocol=protocol, mixed_model=False)
    assert [r.timepoint for r in table.rows] == ["base", "6w"]
    assert table.row("6w").mean_change == pytest.approx(-4.5)
    assert table.protocol_name == "pldd"


@pytest.mark.parametrize(
    ("frame", "fragment"),
    [
        (pd.DataFrame({"patient_id": ["a"], "timepoint": ["pre"]}), "lacks column(s) vas"),
        (pd.DataFrame({"patient_id": [], "timepoint": [], "vas": []}), "has no rows"),
        (pd.DataFrame({"patient_id": ["a"], "timepoint": ["2w"], "vas": [3.0]}), "'2w'"),
        (pd.DataFrame({"patient_id": ["a"], "timepoint": ["pre"], "vas": [11.0]}), "VAS 11.0"),
        (pd.DataFrame({"patient_id": ["a"], "timepoint": ["pre"], "vas": [math.nan]}), "VAS nan"),
        (pd.DataFrame({"patient_id": ["a"], "timepoint": ["pre"], "vas": ["x"]}), "VAS 'x'"),
        (pd.DataFrame({"patient_id": [" "], "timepoint": ["pre"], "vas": [3.0]}), "patient_id"),
        (pd.DataFrame({"patient_id": [pd.NA], "timepoint": ["pre"], "vas": [3.0]}), "patient_id"),
        (pd.DataFrame({"patient_id": ["a"], "timepoint": [None], "vas": [3.0]}), "time point ''"),
        (pd.DataFrame({"patient_id": ["a"], "timepoint": ["pre"], "vas": [pd.NA]}), "VAS <NA>"),
        (
            pd.DataFrame(
                {"patient_id": ["a", "a"], "timepoint": ["pre", "pre"], "vas": [3.0, 4.0]}
            ),
            "duplicate time point 'pre' for patient 'a'",
        ),
    ],
)
def test_bad_frames_are_refused(frame, fragment):
    with pytest.raises(CohortFrameError) as info:
        outcome_table(frame)
    assert isinstance(info.value, InputError)
    assert fragment in str(info.value)


def test_bad_frame_names_the_file_line_when_known():
    frame = pd.DataFrame(
        {"patient_id": ["a", "a"], "timepoint": ["pre", "3d"], "vas": [3.0, -1.0], "line": [2, 9]}
    )
    with pytest.raises(CohortFrameError, match="line 9, column vas"):
        outcome_table(frame)


# -- output formats ---------------------------------------------------------------------------

BASE_KEYS = {"timepoint", "label", "n", "mean", "sd", "median", "iqr"}
LMM_KEYS = {"lmm_estimate", "lmm_se", "lmm_ci95", "note"}
POST_KEYS = {
    "n_paired",
    "mean_change",
    "ci95",
    "p_value",
    "p_holm",
    "test",
    "responders",
    "responder_pct",
}


def test_json_shape_order_and_plain_types(reference_cohort):
    table = outcome_table(reference_cohort)
    data = json.loads(json.dumps(table.to_json_dict(), allow_nan=False))
    assert set(data) == {"timepoints", "test", "n_patients", "n_series", "protocol", "mixed_model"}
    assert data["test"] == "paired-t" and data["n_patients"] == data["n_series"] == 13
    assert [tp["timepoint"] for tp in data["timepoints"]] == list(CODES)
    assert set(data["timepoints"][0]) == BASE_KEYS | LMM_KEYS
    for tp in data["timepoints"][1:]:
        assert set(tp) == BASE_KEYS | LMM_KEYS | POST_KEYS
        assert tp["test"] == "paired-t"
        assert len(tp["ci95"]) == 2 and tp["ci95"][0] < tp["mean_change"] < tp["ci95"][1]
    first = data["timepoints"][0]
    assert first["n"] == 13 and len(first["iqr"]) == 2
    assert first["lmm_estimate"] is not None and len(first["lmm_ci95"]) == 2
    mm = data["mixed_model"]
    assert mm["fitted"] is True and mm["n_obs"] == len(reference_cohort)
    assert mm["n_patients"] == 13 and mm["formula"] == "vas ~ C(timepoint)"
    # plain python types straight from to_json_dict (no numpy scalars)
    raw = table.to_json_dict()
    for tp in raw["timepoints"]:
        for key in ("mean", "sd", "median", "mean_change", "p_value", "lmm_estimate"):
            if key in tp and tp[key] is not None:
                assert type(tp[key]) is float
        assert type(tp["n"]) is int


def test_json_nulls_never_nan():
    frame = pd.DataFrame(
        {"patient_id": ["a", "a", "b"], "timepoint": ["pre", "6m", "pre"], "vas": [5.0, 1.0, 4.0]}
    )
    data = outcome_table(frame).to_json_dict()
    text = json.dumps(data, allow_nan=False)
    assert "NaN" not in text
    six = data["timepoints"][1]
    assert six["mean_change"] is None and six["ci95"] is None and six["p_value"] is None
    assert six["sd"] is None
    assert data["mixed_model"]["fitted"] is False and data["mixed_model"]["note"]


def test_no_mixed_model_leaves_lmm_fields_null(reference_cohort):
    data = outcome_table(reference_cohort, mixed_model=False).to_json_dict()
    assert all(tp["lmm_estimate"] is None and tp["lmm_ci95"] is None for tp in data["timepoints"])
    assert data["mixed_model"]["fitted"] is False


def test_csv_round_trips_the_numbers(table_t):
    rows = list(csv.DictReader(io.StringIO(table_t.to_csv())))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert [r["timepoint"] for r in rows] == list(CODES)
    for parsed, row in zip(rows, table_t.rows, strict=True):
        assert float(parsed["mean"]) == row.mean
        assert int(parsed["n"]) == row.n
        if row.is_baseline:
            assert parsed["p_value"] == "" and parsed["mean_change"] == ""
        else:
            assert float(parsed["p_value"]) == row.p_value
            assert float(parsed["ci95_lo"]) == row.ci95[0]
            assert int(parsed["responders"]) == row.responders


def test_text_table_is_aligned_and_readable(reference_cohort):
    table = outcome_table(reference_cohort)
    text = table.to_text()
    lines = text.splitlines()
    header = next(line for line in lines if line.startswith("Time point"))
    body = [line for line in lines if line.split(" ")[0] in {"Pre-operative", "3", "1", "6", "12"}]
    assert len(body) == 6
    for column in ("Mean +/- SD", "Median [IQR]", "Change (95% CI)", "p Holm", "LMM (95% CI)"):
        assert column in header
    pre = table.rows[0]
    assert f"{pre.mean:.1f} +/- {pre.sd:.1f}" in body[0]
    three_d = table.rows[1]
    assert f"{three_d.mean_change:.1f} ({three_d.ci95[0]:.1f} to {three_d.ci95[1]:.1f})" in body[1]
    assert f"{three_d.responders}/{three_d.n_paired}" in body[1]
    # right-aligned numeric columns: every body line has the same length as the header
    assert {len(line) for line in body[1:]} == {len(header)}
    assert "13 patients" in lines[0] and lines[1].startswith("Paired t-test vs baseline")


def test_patients_and_treatment_series_counted_apart() -> None:
    """The registry's frame names a second procedure "SW-1/2" and keeps the patient in study_id."""
    frame = pd.DataFrame(
        {
            "patient_id": ["SW-1", "SW-1", "SW-1/2", "SW-1/2", "SW-2", "SW-2", "SW-3", "SW-3"],
            "study_id": ["SW-1", "SW-1", "SW-1", "SW-1", "SW-2", "SW-2", "SW-3", "SW-3"],
            "timepoint": ["pre", "3d"] * 4,
            "vas": [8.0, 2.0, 7.0, 3.0, 6.0, 1.0, 9.0, 4.0],
        }
    )
    table = outcome_table(frame, mixed_model=False)
    assert (table.n_patients, table.n_series) == (3, 4)
    assert "3 patients, 4 treatment series" in table.to_text()
    assert table.to_json_dict()["n_series"] == 4
