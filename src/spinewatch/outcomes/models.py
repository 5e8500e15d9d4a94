"""A linear mixed model of VAS over the follow-up time points, using every available value.

Follow-up length varies (fewer patients reach 6 and 12 months), so the per-time-point raw
means describe different patients. The model ``vas ~ C(timepoint)`` with a random intercept per
patient (statsmodels :class:`~statsmodels.regression.mixed_linear_model.MixedLM`, REML) uses
every value and borrows each patient's level from their other visits: a patient who dropped out
after 3 months still informs the 6- and 12-month estimates through their intercept.

Per time point the model gives the estimated mean VAS (the fixed-effect contrast
``intercept + effect``), its standard error from the fixed-effects covariance, and a Wald 95%
CI with the normal quantile (as statsmodels' ``conf_int``).

Fitting robustly: the REML surface of a small cohort often has its optimum at or near a zero
random-intercept variance, where statsmodels' default gradient optimisers stop short. The
default fit is tried first; if it does not converge cleanly, Powell's and Nelder-Mead's
derivative-free methods are tried and the converged fit with the highest REML log-likelihood is
kept. The kept fit is then polished: BFGS restarted from its optimum with a tight gradient
tolerance (``gtol`` 1e-9), kept when it converges without lowering the REML log-likelihood.
statsmodels' default stopping rule leaves the variance components up to ~5e-5 (relative) from
the optimum; the polished fit equals R's lme4 (``lmer(vas ~ timepoint + (1 | patient_id),
REML = TRUE)``) to ~1e-8 relative in fixed effects and variance components
(``tests/outcomes/test_outcomes_lme4.py`` runs R). Warnings never escape: they are recorded in
``note``. A model that cannot be fitted
(too few patients or values, an error, no converged fit) gives ``fitted=False`` with the reason.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as sps

__all__ = [
    "FORMULA",
    "MixedModelEstimate",
    "MixedModelResult",
    "fit_mixed_model",
]

FORMULA = "vas ~ C(timepoint)"
_CONFIDENCE = 0.95
_OPTIMIZERS: tuple[str | None, ...] = (None, "powell", "nm")  # None = statsmodels' default
_POLISH_GTOL = 1e-9  # gradient tolerance of the final BFGS polish (see the module docstring)
_BOUNDARY_RATIO = 1e-6  # group variance / residual variance below this = on the boundary
#: Above this many patients the REML fit is the closed-form profile (:func:`_profile_fit`):
#: statsmodels' MixedLM evaluates its likelihood group by group in Python (minutes at 100,000).
PROFILE_ABOVE_PATIENTS = 1000


@dataclass(frozen=True)
class MixedModelEstimate:
    """The model's mean VAS (points 0-10) at one time point, its SE and Wald 95% CI."""

    timepoint: str
    estimate: float
    se: float
    ci95: tuple[float, float]


@dataclass(frozen=True)
class MixedModelResult:
    """A fitted (or refused) random-intercept model.

    ``estimates`` are in the order of the time points present; ``group_var`` is the
    between-patient (random intercept) variance and ``residual_var`` the within-patient
    variance, both in VAS points squared. When ``fitted`` is False every numeric field is None
    and ``note`` says why.
    """

    fitted: bool
    formula: str
    method: str
    n_obs: int
    n_patients: int
    estimates: tuple[MixedModelEstimate, ...]
    group_var: float | None
    residual_var: float | None
    log_likelihood: float | None
    converged: bool | None
    optimizer: str | None
    note: str | None

    def estimate_for(self, code: str) -> MixedModelEstimate | None:
        """The estimate at time point ``code``, or ``None`` (not fitted / not present)."""
        for estimate in self.estimates:
            if estimate.timepoint == code:
                return estimate
        return None

    def to_json_dict(self) -> dict[str, Any]:
        """JSON-able summary (without the per-time-point estimates, which live in the rows)."""
        return {
            "fitted": self.fitted,
            "formula": self.formula,
            "random_effects": "intercept per patient",
            "method": self.method,
            "n_obs": self.n_obs,
            "n_patients": self.n_patients,
            "group_var": self.group_var,
            "residual_var": self.residual_var,
            "log_likelihood": self.log_likelihood,
            "converged": self.converged,
            "optimizer": self.optimizer,
            "ci_method": "Wald, normal quantile",
            "note": self.note,
        }


def _refused(n_obs: int, n_patients: int, note: str) -> MixedModelResult:
    return MixedModelResult(
        fitted=False,
        formula=FORMULA,
        method="REML",
        n_obs=n_obs,
        n_patients=n_patients,
        estimates=(),
        group_var=None,
        residual_var=None,
        log_likelihood=None,
        converged=None,
        optimizer=None,
        note=note,
    )


@dataclass(frozen=True)
class _Attempt:
    optimizer: str
    result: Any
    warnings: tuple[str, ...]


def _try_fit(
    data: pd.DataFrame, optimizer: str | None, *, polish_from: Any = None
) -> _Attempt | str:
    import statsmodels.formula.api as smf

    name = optimizer or "default"
    kwargs: dict[str, Any] = {"reml": True}
    if optimizer is not None:
        kwargs["method"] = optimizer
    if polish_from is not None:
        kwargs.update(
            method="bfgs", start_params=polish_from.params_object, gtol=_POLISH_GTOL, maxiter=200
        )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            model = smf.mixedlm(FORMULA, data, groups=data["patient_id"])
            result = model.fit(**kwargs)
        except (np.linalg.LinAlgError, ValueError, ZeroDivisionError) as exc:
            return f"{name}: {type(exc).__name__}: {exc}"
    texts: list[str] = []
    for w in caught:
        text = f"{w.category.__name__}: {w.message}"
        if text not in texts:
            texts.append(text)
    return _Attempt(optimizer=name, result=result, warnings=tuple(texts))


def _usable(attempt: _Attempt) -> bool:
    result = attempt.result
    if not bool(result.converged) or not math.isfinite(float(result.llf)):
        return False
    k_fe = int(result.model.k_fe)
    cov = np.asarray(result.cov_params(), dtype=float)[:k_fe, :k_fe]
    return bool(np.all(np.isfinite(cov)) and np.all(np.diag(cov) > 0))


def _boundary_fit(
    data: pd.DataFrame, present: list[str], ssr: float, n_patients: int
) -> MixedModelResult:
    """The REML fit when its optimum is the zero between-patient variance, in closed form.

    At a random-intercept variance of 0 the model is ordinary least squares of the time point
    means: each estimate is the time point's mean, its SE ``sqrt(s2 / n_t)`` with the REML
    residual variance ``s2 = SSR / (N - p)``. Whether 0 is the optimum is read from the REML
    score at 0, which for this design is ``sum_i (sum_j r_ij)^2 - SSR`` (up to a positive
    factor; ``r`` the residuals from the time point means): not positive -> the likelihood
    falls as the variance leaves 0. Computed in milliseconds where statsmodels' gradient
    optimiser stops short of the boundary and the derivative-free fall-backs took 23 s at 500
    patients (and loop over every patient in Python)."""
    n_obs = len(data)
    k_fe = len(present)
    s2 = ssr / (n_obs - k_fe)
    groups = data.groupby("timepoint", observed=True)["vas"]
    means, counts = groups.mean(), groups.size()
    z = float(sps.norm.ppf(0.5 + _CONFIDENCE / 2.0))
    estimates = []
    for code in present:
        estimate = float(means[code])
        se = math.sqrt(s2 / float(counts[code]))
        estimates.append(
            MixedModelEstimate(
                timepoint=code,
                estimate=estimate,
                se=se,
                ci95=(estimate - z * se, estimate + z * se),
            )
        )
    dof = n_obs - k_fe
    log_likelihood = -0.5 * (
        dof * math.log(2.0 * math.pi * s2) + float(np.log(counts.to_numpy(dtype=float)).sum()) + dof
    )
    return MixedModelResult(
        fitted=True,
        formula=FORMULA,
        method="REML",
        n_obs=n_obs,
        n_patients=n_patients,
        estimates=tuple(estimates),
        group_var=0.0,
        residual_var=s2,
        log_likelihood=log_likelihood,
        converged=True,
        optimizer="closed form",
        note=(
            "the between-patient variance is estimated at 0 (boundary: the REML score at 0 is "
            "not positive, so no patient effect is found): the estimates equal ordinary least "
            "squares, computed in closed form instead of by the iterative fit"
        ),
    )


def _profile_terms(
    counts: np.ndarray, sums: np.ndarray, ys: np.ndarray, sq: float, n_t: np.ndarray, g: float
) -> tuple[float, np.ndarray, np.ndarray]:
    """For variance ratio ``g`` (between / within): ``Q`` (the GLS residual sum of squares in
    units of the within variance), ``A`` (X' V^-1 X times the within variance) and beta."""
    n_i = counts.sum(axis=1)
    w = g / (1.0 + n_i * g)
    a = np.diag(n_t) - counts.T @ (w[:, None] * counts)
    b = ys - counts.T @ (w * sums)
    beta = np.linalg.solve(a, b)
    q = sq - float(w @ (sums * sums)) - float(b @ beta)
    return q, a, beta


def _profile_fit(data: pd.DataFrame, present: list[str], n_patients: int) -> MixedModelResult:
    """REML of the random-intercept model by its closed-form profile likelihood.

    With one value per patient and time point the model's covariance is ``s2 (I + g J)`` per
    patient, whose inverse is known in closed form; the REML log-likelihood profiled over the
    fixed effects and ``s2`` is a function of the variance ratio ``g`` alone, computed from
    per-patient sums in a few matrix products (``p x p``, p time points), and maximised over
    ``log g`` (scipy's bounded scalar minimiser). Same model, same REML criterion as statsmodels'
    MixedLM (checked against it in the tests), without its Python loop over the patients."""
    from scipy.optimize import minimize_scalar

    codes = data["timepoint"].astype(str).to_numpy()
    column = {code: i for i, code in enumerate(present)}
    index = np.array([column[c] for c in codes])
    patients, group = np.unique(data["patient_id"].to_numpy(), return_inverse=True)
    y = data["vas"].to_numpy(dtype=float)
    k = len(present)
    counts = np.zeros((len(patients), k))
    np.add.at(counts, (group, index), 1.0)
    sums = np.bincount(group, weights=y, minlength=len(patients))
    ys = np.bincount(index, weights=y, minlength=k)
    n_t = np.bincount(index, minlength=k).astype(float)
    sq = float(y @ y)
    n_obs = len(y)
    dof = n_obs - k
    n_i = counts.sum(axis=1)

    def minus_llf(log_g: float) -> float:
        g = math.exp(log_g)
        q, a, _ = _profile_terms(counts, sums, ys, sq, n_t, g)
        _sign, logdet = np.linalg.slogdet(a)
        return 0.5 * (
            dof * math.log(2.0 * math.pi * q / dof)
            + float(np.log1p(n_i * g).sum())
            + float(logdet)
            + dof
        )

    found = minimize_scalar(minus_llf, bounds=(math.log(1e-8), math.log(1e4)), method="bounded")
    g = math.exp(float(found.x))
    q, a, beta = _profile_terms(counts, sums, ys, sq, n_t, g)
    s2 = q / dof
    cov = s2 * np.linalg.inv(a)
    z = float(sps.norm.ppf(0.5 + _CONFIDENCE / 2.0))
    estimates = []
    for i, code in enumerate(present):
        estimate, se = float(beta[i]), math.sqrt(float(cov[i, i]))
        estimates.append(
            MixedModelEstimate(
                timepoint=code,
                estimate=estimate,
                se=se,
                ci95=(estimate - z * se, estimate + z * se),
            )
        )
    return MixedModelResult(
        fitted=True,
        formula=FORMULA,
        method="REML",
        n_obs=n_obs,
        n_patients=n_patients,
        estimates=tuple(estimates),
        group_var=g * s2,
        residual_var=s2,
        log_likelihood=-float(found.fun),
        converged=bool(found.success),
        optimizer="profile",
        note=(
            f"fitted by the closed-form REML profile of the random intercept ({n_patients} "
            "patients: statsmodels' patient-by-patient fit would take minutes)"
        ),
    )


def fit_mixed_model(frame: pd.DataFrame, *, codes: tuple[str, ...]) -> MixedModelResult:
    """Fit ``vas ~ C(timepoint)`` + random intercept per patient (REML) to a long frame.

    ``frame`` has columns ``patient_id``, ``timepoint`` (codes) and ``vas`` (points 0-10), one
    row per patient and time point. ``codes`` is the protocol order; the time points present are
    modelled in that order (the first present one is the reference level; the estimated means
    do not depend on that choice).
    """
    data, present = _model_data(frame, codes)
    n_obs = len(data)
    sizes = data.groupby("patient_id").size()
    n_patients = int(sizes.size)
    k_fe = len(present)

    why_not = _why_not_fittable(data, n_patients, k_fe)
    if why_not is not None:
        return _refused(n_obs, n_patients, why_not)
    cell_means = data.groupby("timepoint", observed=True)["vas"].transform("mean")
    residuals = data["vas"].to_numpy() - cell_means.to_numpy()
    ssr = float(residuals @ residuals)
    per_patient = pd.Series(residuals).groupby(data["patient_id"].to_numpy()).sum().to_numpy()
    if float(per_patient @ per_patient) <= ssr * (1.0 + 1e-9):
        return _boundary_fit(data, present, ssr, n_patients)
    if n_patients > PROFILE_ABOVE_PATIENTS:
        return _profile_fit(data, present, n_patients)

    attempts: list[_Attempt] = []
    failures: list[str] = []
    for optimizer in _OPTIMIZERS:
        outcome = _try_fit(data, optimizer)
        if isinstance(outcome, str):
            failures.append(outcome)
            continue
        attempts.append(outcome)
        if optimizer is None and _usable(outcome) and not outcome.warnings:
            break  # the default fit converged cleanly: nothing to improve on
    usable = [a for a in attempts if _usable(a)]
    if not usable:
        tried = ", ".join(o or "default" for o in _OPTIMIZERS)
        reasons = list(dict.fromkeys(failures + [w for a in attempts for w in a.warnings]))
        detail = "; ".join(reasons[:3]) + (" ..." if len(reasons) > 3 else "")
        return _refused(
            n_obs,
            n_patients,
            f"no optimizer converged (tried {tried})" + (f": {detail}" if detail else ""),
        )

    best = max(usable, key=lambda a: float(a.result.llf))
    polished = _try_fit(data, best.optimizer, polish_from=best.result)
    if (
        isinstance(polished, _Attempt)
        and _usable(polished)
        and float(polished.result.llf) >= float(best.result.llf)
    ):
        best = _Attempt(best.optimizer, polished.result, best.warnings)
    return _fitted_result(best, data, present, n_patients)


def _model_data(frame: pd.DataFrame, codes: tuple[str, ...]) -> tuple[pd.DataFrame, list[str]]:
    """The model's frame (time points categorical in protocol order, rows by patient) and the
    codes present, in protocol order."""
    data = pd.DataFrame(
        {
            "patient_id": frame["patient_id"].astype(str).to_numpy(),
            "timepoint": frame["timepoint"].astype(str).to_numpy(),
            "vas": frame["vas"].astype(float).to_numpy(),
        }
    )
    present = [c for c in codes if (data["timepoint"] == c).any()]
    data["timepoint"] = pd.Categorical(data["timepoint"], categories=present, ordered=True)
    data = data.sort_values(["patient_id", "timepoint"], kind="stable").reset_index(drop=True)
    return data, present


def _why_not_fittable(data: pd.DataFrame, n_patients: int, k_fe: int) -> str | None:
    """Why the random-intercept model cannot be fitted to ``data`` (None: it can)."""
    n_obs = len(data)
    sizes = data.groupby("patient_id").size()
    if n_patients < 3:
        return f"too few patients for a random intercept ({n_patients}; need 3)"
    if int((sizes >= 2).sum()) < 2:
        return (
            "fewer than 2 patients have more than one value; the between- and within-patient "
            "variances cannot be separated"
        )
    if n_obs <= k_fe + 1:
        return f"too few values ({n_obs}) for {k_fe} time point means and 2 variances"

    cell_means = data.groupby("timepoint", observed=True)["vas"].transform("mean")
    if float(np.max(np.abs(data["vas"].to_numpy() - cell_means.to_numpy()))) < 1e-9:
        return (
            "the values do not vary around the time point means; the variances cannot be estimated"
        )
    return None


def _fitted_result(
    best: _Attempt, data: pd.DataFrame, present: list[str], n_patients: int
) -> MixedModelResult:
    """The estimated mean per time point (normal 95 % CI) and the variances of the best fit,
    with notes on the optimizer used and on variances at the boundary."""
    n_obs = len(data)
    k_fe = len(present)
    result = best.result
    notes: list[str] = list(best.warnings)
    if best.optimizer != "default":
        notes.insert(
            0,
            f"statsmodels' default optimizer did not converge cleanly; used {best.optimizer} "
            "(highest REML log-likelihood)",
        )

    fe = np.asarray(result.fe_params, dtype=float)
    cov = np.asarray(result.cov_params(), dtype=float)[:k_fe, :k_fe]
    exog = np.asarray(result.model.exog, dtype=float)
    z = float(sps.norm.ppf(0.5 + _CONFIDENCE / 2.0))
    estimates: list[MixedModelEstimate] = []
    timepoints = data["timepoint"].astype(str).to_numpy()
    for code in present:
        row = exog[int(np.flatnonzero(timepoints == code)[0])]
        estimate = float(row @ fe)
        se = math.sqrt(float(row @ cov @ row))
        estimates.append(
            MixedModelEstimate(
                timepoint=code,
                estimate=estimate,
                se=se,
                ci95=(estimate - z * se, estimate + z * se),
            )
        )

    group_var = float(np.asarray(result.cov_re, dtype=float)[0, 0])
    residual_var = float(result.scale)
    if residual_var <= _BOUNDARY_RATIO * max(group_var, 1.0):
        notes.append(
            "the within-patient (residual) variance is estimated at 0: the values fit the model "
            "exactly, so the SEs and CIs rest on the between-patient variance alone"
        )
    if group_var <= _BOUNDARY_RATIO * residual_var:
        notes.append(
            "the between-patient variance is estimated at 0 (boundary): the estimates equal "
            "ordinary least squares"
        )
    return MixedModelResult(
        fitted=True,
        formula=FORMULA,
        method="REML",
        n_obs=n_obs,
        n_patients=n_patients,
        estimates=tuple(estimates),
        group_var=group_var,
        residual_var=residual_var,
        log_likelihood=float(result.llf),
        converged=bool(result.converged),
        optimizer=best.optimizer,
        note="; ".join(dict.fromkeys(notes)) if notes else None,
    )
