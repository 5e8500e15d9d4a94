"""The mixed model against direct statsmodels MixedLM fits written here."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from outcomes_cohorts import CODES, reference_like_cohort

from spinewatch.outcomes.models import fit_mixed_model
from spinewatch.outcomes.table import outcome_table


def _direct_cell_means(frame: pd.DataFrame, method: str | None = None):
    """MixedLM with one mean per time point (no intercept): its coefficients ARE the means."""
    data = frame.copy()
    present = [c for c in CODES if (data["timepoint"] == c).any()]
    data["timepoint"] = pd.Categorical(data["timepoint"], categories=present)
    kwargs = {"reml": True} if method is None else {"reml": True, "method": method}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = smf.mixedlm("vas ~ 0 + C(timepoint)", data, groups=data["patient_id"]).fit(
            **kwargs
        )
    names = [f"C(timepoint)[{c}]" for c in present]
    ci = result.conf_int().loc[names]
    return (
        dict(zip(present, result.fe_params[names], strict=True)),
        dict(zip(present, result.bse_fe[names], strict=True)),
        {c: (ci.loc[n, 0], ci.loc[n, 1]) for c, n in zip(present, names, strict=True)},
        result,
    )


@pytest.mark.parametrize("seed", [0, 3, 4])
def test_estimates_se_and_ci_match_a_direct_mixedlm_fit(seed):
    """Seeds where statsmodels' default optimizer converges on its own."""
    frame = reference_like_cohort(seed=seed)
    result = fit_mixed_model(frame, codes=CODES)
    means, ses, cis, direct = _direct_cell_means(frame)
    assert direct.converged
    assert result.fitted and result.converged and result.optimizer == "default"
    assert result.n_obs == len(frame) and result.n_patients == 13
    assert [e.timepoint for e in result.estimates] == list(CODES)
    for e in result.estimates:
        assert e.estimate == pytest.approx(means[e.timepoint], abs=1e-5)
        assert e.se == pytest.approx(ses[e.timepoint], rel=1e-3)
        assert e.ci95[0] == pytest.approx(cis[e.timepoint][0], abs=1e-4)
        assert e.ci95[1] == pytest.approx(cis[e.timepoint][1], abs=1e-4)
    assert result.group_var == pytest.approx(float(direct.cov_re.iloc[0, 0]), rel=1e-3)
    assert result.residual_var == pytest.approx(float(direct.scale), rel=1e-4)


def test_boundary_case_falls_back_and_beats_the_default_likelihood():
    """Seed 1: the between-patient variance is near 0 and the default optimizers give up."""
    frame = reference_like_cohort(seed=1, intercept_sd=0.7)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        default = smf.mixedlm("vas ~ C(timepoint)", frame, groups=frame["patient_id"]).fit(
            reml=True
        )
    result = fit_mixed_model(frame, codes=CODES)  # no warning may escape (pytest: error)
    assert not default.converged  # the situation this test is about
    assert result.fitted and result.converged
    assert result.optimizer in {"powell", "nm"}
    assert "did not converge cleanly" in result.note
    assert result.log_likelihood >= float(default.llf) - 1e-9
    means, _, _, _ = _direct_cell_means(frame, method=result.optimizer)
    for e in result.estimates:
        assert e.estimate == pytest.approx(means[e.timepoint], abs=1e-3)


def test_zero_between_patient_variance_gives_ols_cell_means_and_a_note():
    """At the boundary (group variance 0) the model is OLS: estimates are the raw means."""
    frame = reference_like_cohort(seed=1, intercept_sd=0.3)
    result = fit_mixed_model(frame, codes=CODES)
    assert result.fitted
    assert result.group_var < 1e-6 * result.residual_var
    assert "boundary" in result.note
    raw = frame.groupby("timepoint")["vas"].mean()
    counts = frame.groupby("timepoint")["vas"].size()
    for e in result.estimates:
        assert e.estimate == pytest.approx(raw[e.timepoint], abs=1e-4)
        # OLS standard error of a cell mean, sqrt(residual variance / n); MixedLM's comes from
        # the observed information at the boundary, so agreement is close, not exact
        assert e.se == pytest.approx(np.sqrt(result.residual_var / counts[e.timepoint]), rel=1e-2)


def test_complete_balanced_data_lmm_means_equal_raw_means():
    frame = reference_like_cohort(seed=5, reach=[6] * 13)
    result = fit_mixed_model(frame, codes=CODES)
    raw = frame.groupby("timepoint")["vas"].mean()
    for e in result.estimates:
        assert e.estimate == pytest.approx(raw[e.timepoint], abs=1e-6)
    assert result.n_obs == 78


def test_with_dropout_lmm_differs_from_raw_means_where_it_should():
    """Patients who dropped out had higher pain: the model pulls late means up."""
    rows = []
    rng = np.random.default_rng(9)
    for p in range(16):
        level = 2.0 if p < 8 else -2.0  # first 8 patients: more pain, and they leave after 3m
        reach = 4 if p < 8 else 6
        for i, code in enumerate(CODES[:reach]):
            value = np.clip(5.0 - 0.5 * i + level + rng.normal(0, 0.5), 0, 10)
            rows.append((f"p{p}", code, float(np.round(value, 1))))
    frame = pd.DataFrame(rows, columns=["patient_id", "timepoint", "vas"])
    result = fit_mixed_model(frame, codes=CODES)
    raw = frame.groupby("timepoint")["vas"].mean()
    twelve = result.estimate_for("12m")
    assert twelve is not None and twelve.estimate > raw["12m"] + 1.0
    pre = result.estimate_for("pre")
    assert pre.estimate == pytest.approx(raw["pre"], abs=0.05)


@pytest.mark.parametrize(
    ("rows", "fragment"),
    [
        (
            [("a", "pre", 5.0), ("a", "3d", 2.0), ("b", "pre", 6.0), ("b", "3d", 1.0)],
            "too few patients",
        ),
        (
            [("a", "pre", 5.0), ("b", "pre", 6.0), ("c", "3d", 1.0), ("d", "3d", 2.0)],
            "more than one value",
        ),
        (
            [
                ("a", "pre", 5.0),
                ("a", "3d", 2.0),
                ("b", "1m", 6.0),
                ("b", "3m", 1.0),
                ("c", "6m", 7.0),
            ],
            "too few values (5) for 5 time point means",
        ),
    ],
)
def test_unfittable_models_are_refused_with_a_reason(rows, fragment):
    frame = pd.DataFrame(rows, columns=["patient_id", "timepoint", "vas"])
    result = fit_mixed_model(frame, codes=CODES)
    assert not result.fitted
    assert fragment in result.note
    assert result.estimates == () and result.group_var is None
    table = outcome_table(frame)
    assert all(row.lmm_estimate is None for row in table.rows)
    assert table.to_json_dict()["mixed_model"]["note"] == result.note


def test_zero_residual_variance_is_noted():
    """Within-patient changes identical for everyone: the residual variance goes to 0."""
    frame = pd.DataFrame(
        [
            ("a", "pre", 5.0),
            ("a", "3d", 5.0),
            ("b", "pre", 4.0),
            ("b", "3d", 4.0),
            ("c", "pre", 8.0),
            ("c", "12m", 2.0),
        ],
        columns=["patient_id", "timepoint", "vas"],
    )
    result = fit_mixed_model(frame, codes=CODES)
    assert result.fitted
    assert result.residual_var < 1e-6
    assert "residual) variance is estimated at 0" in result.note
    # the within-patient contrasts are exact: 3d = pre, 12m = pre - 6
    pre, three, twelve = (result.estimate_for(c).estimate for c in ("pre", "3d", "12m"))
    assert three == pytest.approx(pre, abs=1e-3)
    assert twelve == pytest.approx(pre - 6.0, abs=1e-3)


def test_no_variation_is_refused_without_warnings():
    """Identical values at each time point: zero residual variance, nothing to estimate."""
    frame = pd.DataFrame(
        [(f"p{i}", code, v) for i in range(5) for code, v in (("pre", 8.0), ("3d", 2.0))],
        columns=["patient_id", "timepoint", "vas"],
    )
    result = fit_mixed_model(frame, codes=CODES)
    assert not result.fitted
    assert "do not vary" in result.note


def test_optimizer_errors_are_caught_and_reported(monkeypatch):
    """Every attempt raising (e.g. a singular matrix) gives a refused model, not a crash."""
    from statsmodels.regression.mixed_linear_model import MixedLM

    def broken_fit(self, *args, **kwargs):
        raise np.linalg.LinAlgError("Singular matrix")

    monkeypatch.setattr(MixedLM, "fit", broken_fit)
    result = fit_mixed_model(reference_like_cohort(seed=0), codes=CODES)
    assert not result.fitted
    assert result.note.startswith("no optimizer converged (tried default, powell, nm)")
    assert "LinAlgError: Singular matrix" in result.note


def test_table_carries_the_lmm_estimates():
    frame = reference_like_cohort(seed=0)
    table = outcome_table(frame)
    result = fit_mixed_model(frame, codes=CODES)
    for row in table.rows:
        e = result.estimate_for(row.timepoint)
        assert row.lmm_estimate == pytest.approx(e.estimate)
        assert row.lmm_se == pytest.approx(e.se)
        assert row.lmm_ci95 == pytest.approx(e.ci95)
