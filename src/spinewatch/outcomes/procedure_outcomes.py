"""Procedure outcomes: cement leakage and complication rates with Wilson 95% CIs, cement volume
per level and analgesic use over time.

- :func:`leakage_table` -- per treated level (:data:`LEVEL_COLUMNS`): the share of levels with a
  cement leakage (any Yeom type, and by type B / S / C / D) and with a symptomatic leakage, per
  spinal region and per approach. A leakage recorded without its level cannot be given a region
  or approach; it is counted in the table's note, not guessed.
- :func:`complication_table` -- per procedure (:data:`PROCEDURE_COLUMNS`): the share with a
  complication (SIR class A-F) and with a major one (C-F), per region and approach of the levels
  treated (a procedure treating T12 and L1 counts in both regions).
- :func:`cement_volume_table` -- cement volume (ml) per level: n, mean, SD, median, IQR.
- :func:`analgesic_table` -- per follow-up time point, the patients' analgesics as n (%).

Confidence intervals: Wilson score intervals (statsmodels ``proportion_confint(method="wilson")``),
which keep their coverage for small groups and rates near 0 % or 100 %, where the Wald interval
fails (Brown, Cai & DasGupta 2001).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from spinewatch.core.levels import VertebralLevel
from spinewatch.core.protocol import DEFAULT_PROTOCOL, FollowUpProtocol
from spinewatch.outcomes._results_table import ResultsTable

__all__ = [
    "LEVEL_COLUMNS",
    "PROCEDURE_COLUMNS",
    "analgesic_table",
    "cement_volume_table",
    "complication_table",
    "leakage_table",
    "wilson_ci",
]

LEVEL_COLUMNS = (
    "procedure_id",
    "level",
    "approach",
    "cement_volume_ml",
    "leakage_types",
    "symptomatic",
)
PROCEDURE_COLUMNS = ("procedure_id", "levels", "approaches", "complication_classes")
YEOM_TYPES = ("B", "S", "C", "D")
MAJOR_CLASSES = ("C", "D", "E", "F")
ANALGESICS = ("none", "non_opioid", "weak_opioid", "strong_opioid")

_PCT = {"pct": 1, "ci95_lo": 1, "ci95_hi": 1}


def wilson_ci(successes: int, n: int) -> tuple[float, float] | tuple[None, None]:
    """Wilson 95% CI of ``successes / n`` in percent; ``(None, None)`` when ``n == 0``."""
    if n == 0:
        return None, None
    from statsmodels.stats.proportion import proportion_confint

    lo, hi = proportion_confint(successes, n, alpha=0.05, method="wilson")
    return 100.0 * float(lo), 100.0 * float(hi)


def _rate_row(group_by: str, group: str, outcome: str, k: int, n: int) -> tuple[Any, ...]:
    lo, hi = wilson_ci(k, n)
    pct = None if n == 0 else 100.0 * k / n
    return (group_by, group, outcome, k, n, pct, lo, hi)


def _region(level: str) -> str:
    return VertebralLevel.parse(level).region.label


def _split(text: Any) -> list[str]:
    if text is None or (isinstance(text, float) and np.isnan(text)) or text is pd.NA:
        return []
    return [p for p in str(text).split(";") if p]


RATE_COLUMNS = ("group_by", "group", "outcome", "events", "n", "pct", "ci95_lo", "ci95_hi")


def leakage_table(
    levels: pd.DataFrame,
    *,
    unlinked_leakages: int = 0,
    procedures: pd.DataFrame | None = None,
) -> ResultsTable:
    """Leakage rates per treated level, overall, per region and per approach (Wilson CIs);
    with ``procedures`` (``leakage_types``, ``symptomatic`` per procedure) also per procedure,
    which counts every leakage, with or without its level."""
    data = levels.assign(
        region=[_region(v) for v in levels["level"]],
        types=[set(_split(v)) for v in levels["leakage_types"]],
    )
    rows: list[tuple[Any, ...]] = []
    groupings: list[tuple[str, Iterable[tuple[str, pd.DataFrame]]]] = [
        ("all", [("all levels", data)]),
        ("region", sorted(data.groupby("region"), key=lambda g: g[0])),
        ("approach", sorted(data.groupby("approach"), key=lambda g: g[0])),
    ]
    for group_by, groups in groupings:
        for name, part in groups:
            n = len(part)
            rows.append(
                _rate_row(
                    group_by,
                    str(name),
                    "leakage (any type)",
                    int(sum(bool(t) for t in part["types"])),
                    n,
                )
            )
            rows.append(
                _rate_row(
                    group_by,
                    str(name),
                    "symptomatic leakage",
                    int(part["symptomatic"].astype(bool).sum()),
                    n,
                )
            )
            if group_by == "all":
                for t in YEOM_TYPES:
                    rows.append(
                        _rate_row(
                            group_by,
                            str(name),
                            f"leakage type {t}",
                            int(sum(t in s for s in part["types"])),
                            n,
                        )
                    )
    if procedures is not None and len(procedures):
        types = [set(_split(v)) for v in procedures["leakage_types"]]
        n = len(procedures)
        rows.append(
            _rate_row(
                "procedure", "all procedures", "leakage (any type)", sum(bool(t) for t in types), n
            )
        )
        rows.append(
            _rate_row(
                "procedure",
                "all procedures",
                "symptomatic leakage",
                int(procedures["symptomatic"].astype(bool).sum()),
                n,
            )
        )
    notes = [
        "Per treated level (a leakage recorded without its level counts at the level of a "
        "one-level procedure), then per procedure; Wilson score 95% CI; Yeom types B "
        "(basivertebral), S (segmental vein), C (cortical defect), D (disc)."
    ]
    if unlinked_leakages:
        notes.append(
            f"{unlinked_leakages} leakage(s) of multi-level procedures recorded without their "
            "level are only in the per-procedure rates."
        )
    return ResultsTable("Cement leakage", RATE_COLUMNS, tuple(rows), _PCT, tuple(notes))


def complication_table(procedures: pd.DataFrame) -> ResultsTable:
    """Complication rates per procedure, overall, per region and per approach (Wilson CIs)."""
    records = []
    for row in procedures.itertuples(index=False):
        classes = set(_split(row.complication_classes))
        levels = _split(row.levels)
        records.append(
            {
                "regions": sorted({_region(v) for v in levels}) or ["level not recorded"],
                "approaches": sorted(set(_split(row.approaches))) or ["not recorded"],
                "any": bool(classes),
                "major": bool(classes & set(MAJOR_CLASSES)),
            }
        )
    rows: list[tuple[Any, ...]] = []

    def add(group_by: str, name: str, chosen: list[dict[str, Any]]) -> None:
        n = len(chosen)
        rows.append(
            _rate_row(group_by, name, "complication (SIR A-F)", sum(r["any"] for r in chosen), n)
        )
        rows.append(
            _rate_row(
                group_by, name, "major complication (SIR C-F)", sum(r["major"] for r in chosen), n
            )
        )

    add("all", "all procedures", records)
    for key, group_by in (("regions", "region"), ("approaches", "approach")):
        names = sorted({name for r in records for name in r[key]})
        for name in names:
            add(group_by, name, [r for r in records if name in r[key]])
    return ResultsTable(
        "Complications (SIR classes)",
        RATE_COLUMNS,
        tuple(rows),
        _PCT,
        (
            "Per procedure; a procedure counts in every region and approach of its levels; "
            "Wilson score 95% CI.",
        ),
    )


VOLUME_COLUMNS = ("group", "n", "mean_ml", "sd_ml", "median_ml", "q1_ml", "q3_ml")


def cement_volume_table(levels: pd.DataFrame) -> ResultsTable:
    """Cement volume (ml) per treated level name (cranio-caudal), per region and overall."""
    data = levels.assign(region=[_region(v) for v in levels["level"]])
    rows: list[tuple[Any, ...]] = []

    def add(name: str, values: np.ndarray) -> None:
        x = values.astype(float)
        q1, med, q3 = (float(v) for v in np.percentile(x, [25, 50, 75]))
        sd = float(x.std(ddof=1)) if x.size > 1 else None
        rows.append((name, int(x.size), float(x.mean()), sd, med, q1, q3))

    add("all levels", data["cement_volume_ml"].to_numpy())
    for region, part in sorted(data.groupby("region"), key=lambda g: g[0]):
        add(f"region {region}", part["cement_volume_ml"].to_numpy())
    order = sorted(set(data["level"]), key=lambda v: VertebralLevel.parse(v).rank)
    for level in order:
        add(level, data.loc[data["level"] == level, "cement_volume_ml"].to_numpy())
    digits = {c: 2 for c in VOLUME_COLUMNS[2:]}
    return ResultsTable(
        "Cement volume per level (ml)",
        VOLUME_COLUMNS,
        tuple(rows),
        digits,
        ("SD: sample standard deviation; IQR by linear interpolation.",),
    )


ANALGESIC_COLUMNS = (
    "timepoint",
    "label",
    "n",
    *(f"{a}_n" for a in ANALGESICS),
    *(f"{a}_pct" for a in ANALGESICS),
    "opioid_pct",
    "opioid_ci95_lo",
    "opioid_ci95_hi",
)


def analgesic_table(
    visits: pd.DataFrame, *, protocol: FollowUpProtocol = DEFAULT_PROTOCOL
) -> ResultsTable:
    """Analgesics per time point (``visits``: ``timepoint``, ``analgesic_use`` per completed
    visit; visits where the question was not asked are left out): n (%) per class and the share
    on any opioid with its Wilson CI."""
    rows: list[tuple[Any, ...]] = []
    for tp in protocol.timepoints:
        answers = [
            a
            for a in visits.loc[visits["timepoint"] == tp.code, "analgesic_use"].tolist()
            if isinstance(a, str) and a in ANALGESICS
        ]
        n = len(answers)
        if n == 0:
            continue
        counts = [answers.count(a) for a in ANALGESICS]
        pcts = [100.0 * c / n for c in counts]
        opioid = answers.count("weak_opioid") + answers.count("strong_opioid")
        lo, hi = wilson_ci(opioid, n)
        rows.append((tp.code, tp.label, n, *counts, *pcts, 100.0 * opioid / n, lo, hi))
    digits = {c: 1 for c in ANALGESIC_COLUMNS if c.endswith(("_pct", "_lo", "_hi"))}
    return ResultsTable(
        "Analgesic use over time",
        ANALGESIC_COLUMNS,
        tuple(rows),
        digits,
        ("n = visits with the question answered; opioid = weak or strong; Wilson score 95% CI.",),
    )
