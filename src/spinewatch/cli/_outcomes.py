"""``spinewatch outcomes table [COHORT.csv]``: the cohort's VAS results table (and plot);
``spinewatch outcomes results DIR``: the rest of the results section as files.

With a file, the table is computed from that long-format CSV (``patient_id,timepoint,vas``);
without one, from the registry's completed follow-ups. Output as an aligned text table (default),
CSV or JSON on stdout; ``--plot PATH.png`` also writes the trajectory plot.
"""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["add_parser", "run", "run_results"]

FORMATS = ("text", "csv", "json")
TESTS = ("paired-t", "wilcoxon")


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "outcomes",
        help="cohort results: VAS per time point, change from baseline, tests, mixed model, plot",
        description="Cohort outcome tables, reported the way a paper reports them.",
    )
    nested = parser.add_subparsers(dest="outcomes_command", metavar="SUBCOMMAND", required=True)
    table = nested.add_parser(
        "table",
        help="the VAS outcome table of a cohort file or of the registry",
        description=(
            "Per time point n, mean, SD, median and IQR; for each post-operative point the mean "
            "change from baseline with its 95% CI, the paired t-test (or Wilcoxon signed-rank) "
            "p-value, the Holm-adjusted p and the share of responders (improvement >= 2 points "
            "or >= 30%); a linear mixed model (random intercept per patient) estimate per time "
            "point. Without COHORT.csv the registry's completed follow-ups are used."
        ),
    )
    table.add_argument(
        "cohort",
        type=Path,
        nargs="?",
        default=None,
        metavar="COHORT.csv",
        help="long-format CSV with header patient_id,timepoint,vas (default: the registry)",
    )
    table.add_argument(
        "--format", choices=FORMATS, default="text", help="output format (default text)"
    )
    table.add_argument(
        "--test",
        choices=TESTS,
        default="paired-t",
        help="test against baseline: paired-t (default) or wilcoxon (signed-rank)",
    )
    table.add_argument(
        "--plot", type=Path, default=None, metavar="PATH.png", help="also write the plot here"
    )
    table.add_argument(
        "--no-mixed-model",
        dest="mixed_model",
        action="store_false",
        help="skip the linear mixed model",
    )
    registry = table.add_argument_group(
        "registry filters", "select part of the registry's cohort (only without COHORT.csv)"
    )
    for option, dest, metavar, help_text in _FILTERS:
        registry.add_argument(option, dest=dest, default=None, metavar=metavar, help=help_text)
    table.set_defaults(run=run)
    results = nested.add_parser(
        "results",
        help="the results section: Table 1, leakage/complication rates, cement, analgesics, "
        "Kaplan-Meier; CSV, text, PNG and SVG files",
        description=(
            "Write the registry's results section into DIR: Table 1 (baseline characteristics), "
            "cement leakage (Yeom type, symptomatic) and SIR complication rates per region and "
            "approach with Wilson 95% CIs, cement volume per level, analgesic use over time and "
            "Kaplan-Meier estimates of freedom from new fracture, from re-treatment and of "
            "overall survival with numbers at risk. Each table as .csv and .txt, each plot as "
            ".png and .svg. De-identified (study ids, ages top-coded at 90, days)."
        ),
    )
    results.add_argument("directory", type=Path, metavar="DIR")
    selection = results.add_argument_group("registry filters", "select part of the registry")
    for option, dest, metavar, help_text in _FILTERS:
        selection.add_argument(option, dest=dest, default=None, metavar=metavar, help=help_text)
    results.set_defaults(run=run_results)


# (option, cohort_frame keyword, metavar, help)
_FILTERS: tuple[tuple[str, str, str, str], ...] = (
    ("--diagnosis", "diagnosis", "KIND", "patients with this diagnosis (e.g. myeloma)"),
    ("--level", "level", "LEVEL", "procedures treating this level (e.g. L1)"),
    ("--approach", "approach", "APPROACH", "procedures using this approach"),
    ("--procedure-type", "procedure_type", "TYPE", "procedures of this type"),
    ("--from", "date_from", "YYYY-MM-DD", "procedures on or after this date"),
    ("--to", "date_to", "YYYY-MM-DD", "procedures on or before this date"),
)


def _filters(args: argparse.Namespace) -> dict[str, object]:
    import datetime as dt

    from spinewatch.core.errors import InputError

    chosen: dict[str, object] = {}
    for option, dest, _, _ in _FILTERS:
        value = getattr(args, dest, None)
        if value is None:
            continue
        if dest in ("date_from", "date_to"):
            try:
                value = dt.date.fromisoformat(value)
            except ValueError:
                raise InputError(
                    f"{option} {value!r} is not a date; expected an ISO date YYYY-MM-DD"
                ) from None
        chosen[dest] = value
    return chosen


def _registry_frame(**filters: object) -> object:
    from spinewatch.cli._django import setup_django

    setup_django()
    from spinewatch.registry.services import cohort_frame

    return cohort_frame(**filters)  # type: ignore[arg-type]


def run(args: argparse.Namespace) -> int:
    import json

    import pandas as pd

    from spinewatch.core.errors import InputError
    from spinewatch.outcomes.cohort_file import read_cohort_csv
    from spinewatch.outcomes.plot import plot_trajectories
    from spinewatch.outcomes.table import outcome_table

    filters = _filters(args)
    if args.cohort is not None:
        if filters:
            options = ", ".join(o for o, dest, _, _ in _FILTERS if dest in filters)
            raise InputError(
                f"{options} select from the registry; expected either COHORT.csv or registry "
                "filters, not both"
            )
        frame = read_cohort_csv(args.cohort)
    else:
        frame = _registry_frame(**filters)
        assert isinstance(frame, pd.DataFrame)
        if len(frame) == 0:
            if filters:
                shown = ", ".join(f"{k}={v}" for k, v in filters.items())
                raise InputError(
                    f"the registry holds no completed follow-up with a VAS matching {shown}; "
                    "expected filters that select at least one patient"
                )
            raise InputError(
                "the registry holds no completed follow-up with a VAS; expected a cohort "
                "(import one with `spinewatch import cohort COHORT.csv`, or pass COHORT.csv)"
            )
    table = outcome_table(frame, test=args.test, mixed_model=args.mixed_model)
    if args.plot is not None:
        plot_trajectories(frame, args.plot)
    if args.format == "json":
        print(json.dumps(table.to_json_dict(), indent=2, allow_nan=False))
    elif args.format == "csv":
        print(table.to_csv(), end="")
    else:
        print(table.to_text(), end="")
    return 0


def run_results(args: argparse.Namespace) -> int:
    from spinewatch.cli._django import setup_django

    setup_django()
    from spinewatch.core.errors import InputError
    from spinewatch.registry.results import results_report

    filters = _filters(args)
    report = results_report(args.directory, **filters)
    if not report["tables"]:
        raise InputError(
            "the registry holds no performed procedure matching the filters; expected at least one"
        )
    for path in report["files"]:
        print(path)
    return 0
