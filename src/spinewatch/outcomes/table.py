"""The cohort outcome table a paper reports: VAS per time point, change from baseline, tests.

:func:`outcome_table` turns a long frame (``patient_id``, ``timepoint``, ``vas``: one VAS pain
score, 0-10 points, per patient and time point -- as :func:`read_cohort_csv` or the registry's
``cohort_frame()`` return it) into an :class:`OutcomeTable`: one row per time point, in protocol
order (the time points present, always including the baseline). See
:mod:`spinewatch.outcomes.stats` for the statistical conventions and
:mod:`spinewatch.outcomes.models` for the mixed model.

Example (a tiny synthetic cohort)::

    >>> import pandas as pd
    >>> frame = pd.DataFrame({"patient_id": ["a", "a", "b", "b", "c", "c"],
    ...                       "timepoint": ["pre", "3d"] * 3, "vas": [8, 2, 7, 3, 9, 4]})
    >>> table = outcome_table(frame, mixed_model=False)
    >>> [row.timepoint for row in table.rows], table.rows[1].mean_change
    (['pre', '3d'], -5.0)
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from spinewatch.core.csv_cells import SafeCsvWriter
from spinewatch.core.errors import InputError
from spinewatch.core.protocol import DEFAULT_PROTOCOL, FollowUpProtocol
from spinewatch.outcomes.models import FORMULA, MixedModelResult, fit_mixed_model
from spinewatch.outcomes.stats import (
    PairedComparison,
    describe,
    holm_adjust,
    paired_comparison,
    parse_test,
)

__all__ = [
    "CSV_COLUMNS",
    "CohortFrameError",
    "OutcomeTable",
    "TimePointRow",
    "outcome_table",
    "validate_cohort_frame",
]

TEST_LABELS = {"paired-t": "paired t-test", "wilcoxon": "Wilcoxon signed-rank test"}


class CohortFrameError(InputError):
    """A cohort frame that cannot be tabulated; the message names the column and value."""


@dataclass(frozen=True)
class TimePointRow:
    """One time point of the table. VAS values in points (0-10), percentages in percent.

    Post-operative fields (``n_paired`` .. ``responder_pct``) are ``None`` on the baseline row.
    ``lmm_*`` are ``None`` when the mixed model was not requested or could not be fitted.
    """

    timepoint: str
    label: str
    is_baseline: bool
    n: int
    mean: float | None
    sd: float | None
    median: float | None
    q1: float | None
    q3: float | None
    n_paired: int | None = None
    mean_change: float | None = None
    ci95: tuple[float, float] | None = None
    p_value: float | None = None
    p_holm: float | None = None
    test: str | None = None
    responders: int | None = None
    responder_pct: float | None = None
    lmm_estimate: float | None = None
    lmm_se: float | None = None
    lmm_ci95: tuple[float, float] | None = None
    note: str | None = None

    def to_json_dict(self) -> dict[str, Any]:
        """The row as JSON-able plain Python values (``None`` for missing; never NaN)."""
        out: dict[str, Any] = {
            "timepoint": self.timepoint,
            "label": self.label,
            "n": self.n,
            "mean": _num(self.mean),
            "sd": _num(self.sd),
            "median": _num(self.median),
            "iqr": _pair(self.q1, self.q3),
        }
        if not self.is_baseline:
            out.update(
                {
                    "n_paired": self.n_paired,
                    "mean_change": _num(self.mean_change),
                    "ci95": _pair(*self.ci95) if self.ci95 else None,
                    "p_value": _num(self.p_value),
                    "p_holm": _num(self.p_holm),
                    "test": self.test,
                    "responders": self.responders,
                    "responder_pct": _num(self.responder_pct),
                }
            )
        out.update(
            {
                "lmm_estimate": _num(self.lmm_estimate),
                "lmm_se": _num(self.lmm_se),
                "lmm_ci95": _pair(*self.lmm_ci95) if self.lmm_ci95 else None,
                "note": self.note,
            }
        )
        return out


def _num(value: float | None) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _pair(lo: float | None, hi: float | None) -> list[float] | None:
    a, b = _num(lo), _num(hi)
    return None if a is None or b is None else [a, b]


CSV_COLUMNS: tuple[str, ...] = (
    "timepoint",
    "label",
    "n",
    "mean",
    "sd",
    "median",
    "q1",
    "q3",
    "n_paired",
    "mean_change",
    "ci95_lo",
    "ci95_hi",
    "p_value",
    "p_holm",
    "test",
    "responders",
    "responder_pct",
    "lmm_estimate",
    "lmm_se",
    "lmm_ci95_lo",
    "lmm_ci95_hi",
    "note",
)


@dataclass(frozen=True)
class OutcomeTable:
    """The cohort's results: rows in protocol order, the test used and the mixed model."""

    rows: tuple[TimePointRow, ...]
    test: str
    n_patients: int
    protocol_name: str
    mixed_model: MixedModelResult | None
    n_series: int = 0
    """Treatment series (the frame's ``patient_id``): a patient's second procedure is a second
    series; equal to ``n_patients`` when every patient was treated once."""

    def row(self, code: str) -> TimePointRow:
        """The row of time point ``code``; :class:`KeyError` when absent from the table."""
        for row in self.rows:
            if row.timepoint == code:
                return row
        raise KeyError(code)

    def to_json_dict(self) -> dict[str, Any]:
        """``{"timepoints", "test", "n_patients", "n_series", "protocol", "mixed_model"}``."""
        if self.mixed_model is None:
            mixed: dict[str, Any] = {
                "fitted": False,
                "formula": FORMULA,
                "note": "not requested (--no-mixed-model)",
            }
        else:
            mixed = self.mixed_model.to_json_dict()
        return {
            "timepoints": [row.to_json_dict() for row in self.rows],
            "test": self.test,
            "n_patients": self.n_patients,
            "n_series": self.n_series,
            "protocol": self.protocol_name,
            "mixed_model": mixed,
        }

    def to_csv(self) -> str:
        """One CSV line per time point (columns :data:`CSV_COLUMNS`); missing values empty."""
        buffer = io.StringIO()
        writer = SafeCsvWriter(buffer)  # spreadsheet formulas neutralised (OWASP)
        writer.writerow(CSV_COLUMNS)
        for row in self.rows:
            ci = row.ci95 or (None, None)
            lmm_ci = row.lmm_ci95 or (None, None)
            values = (
                row.timepoint,
                row.label,
                row.n,
                row.mean,
                row.sd,
                row.median,
                row.q1,
                row.q3,
                row.n_paired,
                row.mean_change,
                ci[0],
                ci[1],
                row.p_value,
                row.p_holm,
                row.test,
                row.responders,
                row.responder_pct,
                row.lmm_estimate,
                row.lmm_se,
                lmm_ci[0],
                lmm_ci[1],
                row.note,
            )
            writer.writerow(values)
        return buffer.getvalue()

    def to_text(self) -> str:
        """A readable, aligned results table like a paper's, with notes underneath."""
        return _render_text(self)


# -- text rendering -------------------------------------------------------------------------


def _f(value: float | None, digits: int = 1) -> str:
    return "--" if value is None else f"{value:.{digits}f}"


def _p(value: float | None) -> str:
    if value is None:
        return "--"
    return "<0.001" if value < 0.001 else f"{value:.3f}"


def _render_text(table: OutcomeTable) -> str:
    header = (
        "Time point",
        "n",
        "Mean +/- SD",
        "Median [IQR]",
        "Change (95% CI)",
        "p",
        "p Holm",
        "Responders",
        "LMM (95% CI)",
    )
    lines: list[tuple[str, ...]] = [header]
    footnotes: list[str] = []
    for row in table.rows:
        if row.mean is None:
            mean_sd = "--"
        elif row.sd is None:
            mean_sd = _f(row.mean)  # one value: no SD
        else:
            mean_sd = f"{_f(row.mean)} +/- {_f(row.sd)}"
        median = "--" if row.median is None else f"{_f(row.median)} [{_f(row.q1)}-{_f(row.q3)}]"
        if row.is_baseline:
            change = p = p_holm = responders = ""
        else:
            if row.mean_change is None or row.ci95 is None:
                change = "--"
            else:
                change = f"{_f(row.mean_change)} ({_f(row.ci95[0])} to {_f(row.ci95[1])})"
            p, p_holm = _p(row.p_value), _p(row.p_holm)
            if row.n_paired:
                responders = f"{row.responders}/{row.n_paired} ({row.responder_pct:.0f}%)"
            else:
                responders = "--"
        if row.lmm_estimate is None or row.lmm_ci95 is None:
            lmm = "--"
        else:
            lmm = f"{_f(row.lmm_estimate)} ({_f(row.lmm_ci95[0])} to {_f(row.lmm_ci95[1])})"
        label = row.label
        if row.note:
            footnotes.append(row.note)
            label = f"{label} [{len(footnotes)}]"
        lines.append((label, str(row.n), mean_sd, median, change, p, p_holm, responders, lmm))

    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    left = {0}
    rendered = []
    for line in lines:
        cells = [
            cell.ljust(widths[i]) if i in left else cell.rjust(widths[i])
            for i, cell in enumerate(line)
        ]
        rendered.append("  ".join(cells).rstrip())
    rule = "-" * max(len(r) for r in rendered)

    n_post = sum(1 for row in table.rows if not row.is_baseline)
    counts = count_text(table.n_patients, table.n_series)
    title = f"VAS pain (0-10): {counts}, protocol {table.protocol_name!r}"
    subtitle = (
        f"{TEST_LABELS[table.test].capitalize()} vs baseline; p Holm adjusted over {n_post} "
        f"post-operative time point{'s' if n_post != 1 else ''}"
    )
    out = [title, subtitle, rule, rendered[0], rule, *rendered[1:], rule]
    out.append(
        "Change = follow-up minus baseline over patients with both (95% CI, t distribution); "
        "responder = improvement >= 2 points or >= 30%."
    )
    mm = table.mixed_model
    if mm is None:
        out.append("Mixed model: not requested.")
    elif mm.fitted:
        out.append(
            f"LMM: {mm.formula} + random intercept per patient, REML, {mm.n_obs} values of "
            f"{mm.n_patients} patients; estimated mean with Wald 95% CI."
        )
        if mm.note:
            out.append(f"LMM note: {mm.note}")
    else:
        out.append(f"Mixed model not fitted: {mm.note}")
    for i, note in enumerate(footnotes, start=1):
        out.append(f"[{i}] {note}")
    return "\n".join(out) + "\n"


# -- building the table ---------------------------------------------------------------------


def _missing(value: object) -> bool:
    """None, NaN, NaT or pd.NA (a scalar from a frame)."""
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def validate_cohort_frame(
    frame: pd.DataFrame, *, protocol: FollowUpProtocol = DEFAULT_PROTOCOL
) -> pd.DataFrame:
    """Check a long cohort frame and return a clean copy (patient_id str, timepoint code, vas).

    Refuses (:class:`CohortFrameError`) missing columns, missing or empty patient ids, unknown
    time points, VAS values that are missing, non-numeric or outside 0-10, duplicate
    (patient, time point) pairs and an empty frame. The ``line`` column, when present (frames
    from :func:`read_cohort_csv`), is used to name the offending line.
    """
    missing = [c for c in ("patient_id", "timepoint", "vas") if c not in frame.columns]
    if missing:
        raise CohortFrameError(
            f"cohort frame lacks column(s) {', '.join(missing)}; columns found: "
            f"{', '.join(map(str, frame.columns))}; expected patient_id, timepoint, vas"
        )
    if len(frame) == 0:
        raise CohortFrameError("cohort frame has no rows; expected at least one VAS value")

    def where(position: int) -> str:
        if "line" in frame.columns:
            return f"line {frame['line'].iloc[position]}"
        return f"row {position}"

    codes = tuple(protocol.codes)
    # Column-wise checks (no Python loop over the rows); the first offending row, in row order
    # and in the order patient id -> time point -> VAS -> duplicate, is named as before.
    raw_pid = frame["patient_id"]
    pid_text = raw_pid.astype(str).str.strip()
    bad_pid = (raw_pid.isna() | (pid_text == "")).to_numpy()
    raw_code = frame["timepoint"]
    code_text = raw_code.astype(str).str.strip().where(raw_code.notna(), "")
    bad_code = (~code_text.isin(codes)).to_numpy()
    raw_vas = frame["vas"]
    vas = _numbers(raw_vas)
    bad_vas = ~(np.isfinite(vas) & (vas >= 0.0) & (vas <= 10.0))
    if pd.api.types.is_bool_dtype(raw_vas.dtype):
        bad_vas[:] = True
    elif not pd.api.types.is_numeric_dtype(raw_vas.dtype):
        bad_vas |= np.fromiter(
            (isinstance(v, (bool, np.bool_)) for v in raw_vas), dtype=bool, count=len(raw_vas)
        )
    keys = pd.DataFrame({"p": pid_text.to_numpy(), "c": code_text.to_numpy()})
    dup = keys.duplicated(keep="first").to_numpy()
    bad = bad_pid | bad_code | bad_vas | dup
    if bad.any():
        position = int(np.flatnonzero(bad)[0])
        pid = raw_pid.iloc[position]
        if isinstance(pid, np.generic):
            pid = pid.item()
        if bad_pid[position]:
            raise CohortFrameError(
                f"{where(position)}, column patient_id: empty value {pid!r}; expected an identifier"
            )
        pid = str(pid).strip()
        code = code_text.iloc[position]
        if bad_code[position]:
            raise CohortFrameError(
                f"{where(position)}, column timepoint: unknown time point {code!r}; "
                f"expected one of {', '.join(codes)}"
            )
        if bad_vas[position]:
            value = raw_vas.iloc[position]
            if isinstance(value, np.generic):
                value = value.item()
            raise CohortFrameError(
                f"{where(position)}, column vas: VAS {value!r} for patient {pid!r} at {code!r}; "
                "expected a number from 0 to 10"
            )
        same = np.flatnonzero((keys["p"].to_numpy() == pid) & (keys["c"].to_numpy() == code))
        raise CohortFrameError(
            f"{where(position)}: duplicate time point {code!r} for patient {pid!r} "
            f"(also at {where(int(same[0]))}); expected one VAS per patient and time point"
        )
    return pd.DataFrame(
        {
            "patient_id": pd.Series(pid_text.to_numpy(), dtype="str"),
            "timepoint": pd.Series(code_text.to_numpy(), dtype="str"),
            "vas": pd.Series(vas, dtype="float64"),
        }
    )


def _numbers(values: pd.Series) -> np.ndarray:
    """``float(value)`` of each value, NaN where it is not a number (vectorised; the few
    values pandas cannot convert, e.g. ``" 5 "``, go through ``float`` one by one)."""
    if pd.api.types.is_numeric_dtype(values.dtype) and not pd.api.types.is_bool_dtype(values.dtype):
        return np.array(values.to_numpy(dtype="float64", na_value=np.nan))
    out = np.array(
        pd.to_numeric(values, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    )
    for i in np.flatnonzero(np.isnan(out) & values.notna().to_numpy()):
        try:
            out[i] = float(values.iloc[i])
        except (TypeError, ValueError):
            out[i] = math.nan
    return out


def _by_patient(data: pd.DataFrame, code: str) -> dict[str, float]:
    subset = data[data["timepoint"] == code]
    return dict(zip(subset["patient_id"], subset["vas"].astype(float), strict=True))


def outcome_table(
    frame: pd.DataFrame,
    *,
    protocol: FollowUpProtocol = DEFAULT_PROTOCOL,
    test: str = "paired-t",
    mixed_model: bool = True,
) -> OutcomeTable:
    """Tabulate a cohort: per time point n, mean, SD, median, IQR; change vs baseline; tests.

    ``frame`` is long format with columns ``patient_id``, ``timepoint`` (protocol codes) and
    ``vas`` (points 0-10); other columns are ignored. Rows follow protocol order and cover the
    time points present plus, always, the baseline. ``test`` is ``"paired-t"`` or
    ``"wilcoxon"`` (else :class:`InputError`). Holm's adjustment runs over the post-operative
    points that have a p-value. ``mixed_model=False`` skips the mixed model (its fields stay
    ``None``).
    """
    test = parse_test(test)
    data = validate_cohort_frame(frame, protocol=protocol)
    baseline = protocol.baseline
    present = set(data["timepoint"])
    points = [tp for tp in protocol.timepoints if tp.code in present or tp.code == baseline.code]
    baseline_values = _by_patient(data, baseline.code)

    mm: MixedModelResult | None = None
    if mixed_model:
        mm = fit_mixed_model(data, codes=tuple(protocol.codes))

    comparisons: dict[str, PairedComparison] = {}
    for tp in points:
        if tp.code == baseline.code:
            continue
        values = _by_patient(data, tp.code)
        paired = sorted(set(values) & set(baseline_values))
        comparisons[tp.code] = paired_comparison(
            np.array([baseline_values[p] for p in paired], dtype=float),
            np.array([values[p] for p in paired], dtype=float),
            test=test,
        )
    codes_post = list(comparisons)
    holm = dict(
        zip(codes_post, holm_adjust([comparisons[c].p_value for c in codes_post]), strict=True)
    )

    rows: list[TimePointRow] = []
    for tp in points:
        summary = describe(data.loc[data["timepoint"] == tp.code, "vas"].to_numpy(dtype=float))
        estimate = mm.estimate_for(tp.code) if mm is not None else None
        row = TimePointRow(
            timepoint=tp.code,
            label=tp.label,
            is_baseline=tp.code == baseline.code,
            n=summary.n,
            mean=summary.mean,
            sd=summary.sd,
            median=summary.median,
            q1=summary.q1,
            q3=summary.q3,
            lmm_estimate=estimate.estimate if estimate else None,
            lmm_se=estimate.se if estimate else None,
            lmm_ci95=estimate.ci95 if estimate else None,
        )
        if row.is_baseline:
            if summary.n == 0:
                row = replace(row, note="no baseline values: no change from baseline can be given")
        else:
            comparison = comparisons[tp.code]
            row = replace(
                row,
                n_paired=comparison.n_paired,
                mean_change=comparison.mean_change,
                ci95=comparison.ci95,
                p_value=comparison.p_value,
                p_holm=holm[tp.code],
                test=comparison.test,
                responders=comparison.responders,
                responder_pct=comparison.responder_pct,
                note=comparison.note,
            )
        rows.append(row)
    return OutcomeTable(
        rows=tuple(rows),
        test=test,
        n_patients=count_patients(frame, data),
        protocol_name=protocol.name,
        mixed_model=mm,
        n_series=int(data["patient_id"].nunique()),
    )


def count_patients(frame: pd.DataFrame, data: pd.DataFrame) -> int:
    """Patients, not series: the registry's frame gives each procedure its own series
    (``patient_id`` ``"SW-000012/2"``) and names the patient in ``study_id``; without that
    column each series is a patient. (Every row of ``frame`` is in ``data``: validation refuses
    rather than drops.)"""
    if "study_id" in frame.columns and frame["study_id"].notna().all():
        return int(frame["study_id"].astype(str).nunique())
    return int(data["patient_id"].nunique())


def count_text(n_patients: int, n_series: int) -> str:
    """``8 patients, 9 treatment series``, or ``8 patients`` when every patient was treated once."""
    people = f"{n_patients} patient{'s' if n_patients != 1 else ''}"
    if n_series == n_patients:
        return people
    return f"{people}, {n_series} treatment series"
