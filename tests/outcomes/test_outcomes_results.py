"""Table 1, procedure outcome rates, Kaplan-Meier and their plots (no database)."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from spinewatch.outcomes.baseline import BaselineError, baseline_table
from spinewatch.outcomes.plot import PlotError
from spinewatch.outcomes.procedure_outcomes import (
    analgesic_table,
    cement_volume_table,
    complication_table,
    leakage_table,
    wilson_ci,
)
from spinewatch.outcomes.results_plot import km_figure, rates_figure, save_figure
from spinewatch.outcomes.survival import SurvivalError, kaplan_meier, survival_table

# Freireich et al. (1963), 6-MP arm: weeks in remission, 1 = relapse, 0 = censored; the
# product-limit estimates and Greenwood SEs as published (Kleinbaum & Klein, Survival
# Analysis, table 2.x; Klein & Moeschberger example 4.1).
FREIREICH_T = [6, 6, 6, 6, 7, 9, 10, 10, 11, 13, 16, 17, 19, 20, 22, 23, 25, 32, 32, 34, 35]
FREIREICH_E = [1, 1, 1, 0, 1, 0, 1, 0, 0, 1, 1, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0]
PUBLISHED = {  # time: (at risk, S, SE)
    6: (21, 0.857, 0.076),
    7: (17, 0.807, 0.087),
    10: (15, 0.753, 0.096),
    13: (12, 0.690, 0.107),
    16: (11, 0.627, 0.114),
    22: (7, 0.538, 0.128),
    23: (6, 0.448, 0.135),
}


def test_kaplan_meier_equals_the_published_freireich_table():
    km = kaplan_meier(FREIREICH_T, FREIREICH_E, endpoint="relapse", label="Remission")
    assert list(km.times) == list(PUBLISHED)
    for t, (risk, s, se) in PUBLISHED.items():
        i = list(km.times).index(t)
        assert km.at_risk[i] == risk
        assert km.survival[i] == pytest.approx(s, abs=5e-4)
        assert km.se[i] == pytest.approx(se, abs=5e-4)
        lo, hi = km.interval_at(t)
        assert lo < km.survival[i] < hi and lo >= 0 and hi <= 1
    assert km.at(5.9) == 1.0 and km.at(23) == pytest.approx(0.448, abs=5e-4)
    assert km.number_at_risk(0) == 21 and km.number_at_risk(33) == 2
    assert km.median_days() == 23.0  # first time S <= 0.5
    # log-log band at t = 6 (Kalbfleisch & Prentice): exp(-exp(log(-log S) +- 1.96 SE/(S|log S|)))
    s, se = km.survival[0], km.se[0]
    half = 1.959963984540054 * se / (s * abs(np.log(s)))
    assert km.interval_at(6) == pytest.approx(
        (np.exp(-np.exp(np.log(-np.log(s)) + half)), np.exp(-np.exp(np.log(-np.log(s)) - half)))
    )


def test_kaplan_meier_refuses_bad_input_and_handles_no_events():
    with pytest.raises(SurvivalError, match=r"row 1, time_days: -3"):
        kaplan_meier([1, -3], [0, 1])
    with pytest.raises(SurvivalError, match=r"row 0, event: 'yes'"):
        kaplan_meier([1], ["yes"])
    km = kaplan_meier([10, 20, 30], [0, 0, 0], endpoint="death")
    assert km.n_events == 0 and km.at(25) == 1.0 and km.number_at_risk(25) == 1
    table = survival_table([km], days=(0, 25))
    assert [r["at_risk"] for r in table.records()] == [3, 1]


def test_wilson_interval_matches_the_formula_values():
    # 5/13: Wilson 95% (17.7%, 64.5%); 0/10: (0, 27.8%) -- Brown, Cai & DasGupta (2001)
    lo, hi = wilson_ci(5, 13)
    assert (round(lo, 1), round(hi, 1)) == (17.7, 64.5)
    assert wilson_ci(0, 10)[1] == pytest.approx(27.75, abs=0.01)
    assert wilson_ci(0, 0) == (None, None)


def _levels() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "procedure_id": [1, 1, 2, 3, 4],
            "level": ["T12", "L1", "L2", "C5", "T8"],
            "approach": [
                "transpedicular",
                "transpedicular",
                "parapedicular",
                "anterolateral",
                "transpedicular",
            ],
            "cement_volume_ml": [4.5, 3.0, 5.25, 1.5, 3.333333],
            "leakage_types": ["B", "", "S;D", "", ""],
            "symptomatic": [False, False, True, False, False],
        }
    )


def test_leakage_rates_per_region_and_approach():
    table = leakage_table(_levels(), unlinked_leakages=1)
    rows = {(r["group_by"], r["group"], r["outcome"]): r for r in table.records()}
    assert rows[("all", "all levels", "leakage (any type)")]["events"] == 2
    assert rows[("all", "all levels", "leakage type D")]["events"] == 1
    assert rows[("region", "Lumbar", "leakage (any type)")]["events"] == 1
    assert rows[("region", "Lumbar", "leakage (any type)")]["n"] == 2
    assert rows[("approach", "parapedicular", "symptomatic leakage")]["pct"] == 100.0
    assert rows[("approach", "transpedicular", "leakage (any type)")]["pct"] == pytest.approx(33.3)
    assert "1 leakage(s)" in table.notes[-1]


def test_complication_rates_count_a_procedure_in_each_region():
    procedures = pd.DataFrame(
        {
            "procedure_id": [1, 2, 3],
            "levels": ["T12;L1", "L2", "C5"],
            "approaches": ["transpedicular", "parapedicular", "anterolateral"],
            "complication_classes": ["A", "", "C;A"],
        }
    )
    rows = {
        (r["group_by"], r["group"], r["outcome"]): r
        for r in complication_table(procedures).records()
    }
    assert rows[("all", "all procedures", "complication (SIR A-F)")]["events"] == 2
    assert rows[("all", "all procedures", "major complication (SIR C-F)")]["events"] == 1
    assert rows[("region", "Thoracic", "complication (SIR A-F)")]["n"] == 1
    assert rows[("region", "Lumbar", "complication (SIR A-F)")]["n"] == 2


def test_cement_volume_and_csv_numbers_are_rounded():
    table = cement_volume_table(_levels())
    rows = {r["group"]: r for r in table.records()}
    assert rows["all levels"]["n"] == 5
    assert rows["all levels"]["mean_ml"] == pytest.approx(3.52)
    assert rows["T12"]["sd_ml"] is None  # one value: no SD
    text = table.to_csv()
    assert not re.search(r"\d\.\d{3,}", text)  # no 3.5166666 or 7.487500000000001
    assert list(rows)[:3] == ["all levels", "region Cervical", "region Lumbar"]


def test_analgesics_over_time():
    visits = pd.DataFrame(
        {
            "timepoint": ["pre", "pre", "pre", "3d", "3d"],
            "analgesic_use": ["strong_opioid", "none", "weak_opioid", "none", None],
        }
    )
    rows = analgesic_table(visits).records()
    assert [(r["timepoint"], r["n"]) for r in rows] == [("pre", 3), ("3d", 1)]
    assert rows[0]["opioid_pct"] == pytest.approx(66.7)


def test_table_one_chooses_mean_or_median_and_counts_missing():
    rng = np.random.default_rng(4)
    n = 30
    frame = pd.DataFrame(
        {
            "patient_id": [f"P{i}" for i in range(n)],
            "age_years": np.round(rng.normal(70, 8, n)),
            "sex": ["female"] * 18 + ["male"] * 10 + [None] * 2,
            "diagnosis": ["metastasis"] * 10 + ["myeloma"] * 20,
            "primary_tumour": ["lung"] * 6 + ["breast"] * 4 + [None] * 20,
            "n_levels": [1] * 25 + [2, 3, 4, 6, 9],
            "baseline_vas": [*list(rng.uniform(5, 9, n - 1)), None],
            "analgesic_use": ["none"] * n,
        }
    )
    rows = baseline_table(frame).records()
    by = {(r["characteristic"], r["category"]): r for r in rows}
    assert by[("Age at index procedure (years)", "")]["statistic"] == "mean (SD)"
    assert by[("Levels treated at index procedure", "")]["statistic"] == "median [IQR]"
    assert by[("Sex", "female")]["summary"] == "18 (64.3%)"  # of the 28 with a value
    assert by[("Sex", "not recorded")]["n"] == 2
    assert by[("Primary tumour (metastases)", "lung")]["summary"] == "6 (60.0%)"
    assert by[("Baseline VAS (0-10)", "not recorded")]["n"] == 1
    with pytest.raises(BaselineError, match="'P1' appears twice"):
        baseline_table(pd.concat([frame, frame.iloc[[1]]]))


def test_plots_png_and_svg(tmp_path):
    km = kaplan_meier(FREIREICH_T, FREIREICH_E, endpoint="relapse", label="Remission")
    fig = km_figure([km], days=(0, 10, 20, 30))
    png = save_figure(fig, tmp_path / "km.png")
    svg = save_figure(fig, tmp_path / "km.svg")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = svg.read_text()
    assert 'id="km:relapse"' in text and "At risk" in text
    rates = rates_figure(leakage_table(_levels()), outcome="leakage (any type)")
    assert save_figure(rates, tmp_path / "rates.svg").stat().st_size > 1000
    with pytest.raises(PlotError, match=r"\.png or \.svg"):
        save_figure(fig, tmp_path / "km.pdf")
