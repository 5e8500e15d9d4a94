"""The mixed model's closed-form fit when there is no patient effect (issue 13): the same
estimates, SEs, variances and REML log-likelihood as statsmodels' iterative fit."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from spinewatch.outcomes.models import FORMULA, fit_mixed_model

CODES = ("pre", "3d", "1m", "3m", "6m", "12m")


def _cohort(n: int, patient_sd: float, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        level = rng.normal(0.0, patient_sd)
        for k, code in enumerate(CODES):
            if rng.random() < 0.8:
                vas = float(np.clip(7 - 0.7 * k + level + rng.normal(0, 1.5), 0, 10))
                rows.append((f"P{i}", code, vas))
    return pd.DataFrame(rows, columns=["patient_id", "timepoint", "vas"])


def test_no_patient_effect_is_fitted_in_closed_form_like_statsmodels():
    import statsmodels.formula.api as smf

    frame = _cohort(60, patient_sd=0.0, seed=1)
    ours = fit_mixed_model(frame, codes=CODES)
    assert ours.optimizer == "closed form" and ours.group_var == 0.0
    assert "between-patient variance is estimated at 0" in (ours.note or "")
    data = frame.copy()
    data["timepoint"] = pd.Categorical(data["timepoint"], categories=list(CODES), ordered=True)
    data = data.sort_values(["patient_id", "timepoint"]).reset_index(drop=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = smf.mixedlm(FORMULA, data, groups=data["patient_id"]).fit(
            reml=True, method="powell"
        )
    assert float(theirs.cov_re.iloc[0, 0]) < 1e-6  # statsmodels agrees: on the boundary
    fe = theirs.fe_params.to_numpy()
    means = np.concatenate([[fe[0]], fe[0] + fe[1:]])
    assert [e.estimate for e in ours.estimates] == pytest.approx(means, abs=1e-4)
    se = float(np.sqrt(theirs.cov_params().iloc[0, 0]))
    assert ours.estimates[0].se == pytest.approx(se, rel=1e-3)  # theirs stops just off 0
    assert ours.residual_var == pytest.approx(theirs.scale, rel=1e-3)
    assert ours.log_likelihood == pytest.approx(theirs.llf, abs=1e-3)


def test_a_patient_effect_still_goes_through_statsmodels():
    result = fit_mixed_model(_cohort(40, patient_sd=2.0, seed=2), codes=CODES)
    assert result.fitted and result.optimizer != "closed form"
    assert result.group_var is not None and result.group_var > 1.0


def test_the_profile_fit_of_a_large_cohort_equals_statsmodels():
    import statsmodels.formula.api as smf

    from spinewatch.outcomes.models import _profile_fit

    frame = _cohort(150, patient_sd=1.5, seed=3)
    data = frame.copy()
    data["timepoint"] = pd.Categorical(data["timepoint"], categories=list(CODES), ordered=True)
    data = data.sort_values(["patient_id", "timepoint"]).reset_index(drop=True)
    ours = _profile_fit(data, list(CODES), 150)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = smf.mixedlm(FORMULA, data, groups=data["patient_id"]).fit(reml=True)
    fe = theirs.fe_params.to_numpy()
    means = np.concatenate([[fe[0]], fe[0] + fe[1:]])
    assert [e.estimate for e in ours.estimates] == pytest.approx(means, abs=1e-3)
    se = float(np.sqrt(theirs.cov_params().iloc[0, 0]))
    assert ours.estimates[0].se == pytest.approx(se, rel=1e-3)
    assert ours.group_var == pytest.approx(float(theirs.cov_re.iloc[0, 0]), rel=1e-3)
    assert ours.residual_var == pytest.approx(theirs.scale, rel=1e-3)
    assert ours.log_likelihood == pytest.approx(theirs.llf, abs=1e-3)
