"""``spinewatch demo``: SpineWatch on built-in synthetic data, no set-up.

Creates a fresh demo registry (fictional patients, procedures, follow-ups) in ``DIR/data``,
prints the cohort's outcome table and writes its plot, then analyses two synthetic spine CTs of
one patient (a prior and a current scan), writes their reports and pictures, compares them and
stores the current analysis in the registry.
"""

from __future__ import annotations

import argparse
import os
import shutil
from pathlib import Path

__all__ = ["add_parser", "run"]


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="run SpineWatch on built-in synthetic demo data",
        description=__doc__.splitlines()[0] if __doc__ else None,
    )
    parser.add_argument(
        "--dir",
        type=Path,
        default=Path("spinewatch-demo"),
        help="where the demo registry and outputs go (default: ./spinewatch-demo)",
    )
    parser.add_argument("--patients", type=int, default=24, help="fictional patients (default 24)")
    parser.add_argument("--seed", type=int, default=2013)
    parser.set_defaults(run=run)


def _phantom_specs():  # type: ignore[no-untyped-def]
    from spinewatch.imaging.phantom import LesionSpec, PhantomSpec

    levels = ("T10", "T11", "T12", "L1", "L2", "L3", "L4")
    common = dict(levels=levels, spacing_mm=(0.9, 0.9, 1.25), noise_hu_sd=15.0, seed=7)
    prior = PhantomSpec(
        **common,  # type: ignore[arg-type]
        lesions={"L1": (LesionSpec(radius_mm=5.0, offset_mm=(0.0, -3.0, 0.0)),)},
        cement=("L4",),
        trabecular_hu={"L2": 95.0},
    )
    current = PhantomSpec(
        **common,  # type: ignore[arg-type]
        lesions={
            "L1": (LesionSpec(radius_mm=10.0, offset_mm=(0.0, -6.0, 0.0)),),
            "T11": (LesionSpec(radius_mm=6.0, offset_mm=(0.0, 0.0, 0.0)),),
        },
        deformities={"T12": ("wedge", 30.0)},
        cement=("L4",),
        trabecular_hu={"L2": 95.0},
    )
    return prior, current


def run(args: argparse.Namespace) -> int:
    out: Path = args.dir.resolve()
    data_dir = out / "data"
    if data_dir.exists():
        shutil.rmtree(data_dir)  # the demo registry is always built afresh
    data_dir.mkdir(parents=True)
    os.environ["SPINEWATCH_DATA_DIR"] = str(data_dir)

    import json

    from spinewatch.cli._django import setup_django

    setup_django()

    from spinewatch.core.conventions import LabelConvention
    from spinewatch.imaging.analysis import analyze
    from spinewatch.imaging.compare import compare_reports, format_comparison_text
    from spinewatch.imaging.phantom import make_spine_phantom, write_phantom
    from spinewatch.imaging.render import render_sagittal
    from spinewatch.imaging.report import format_text
    from spinewatch.outcomes.plot import plot_trajectories
    from spinewatch.outcomes.table import outcome_table
    from spinewatch.registry.demo import build_demo_registry
    from spinewatch.registry.services import cohort_frame

    print(f"SpineWatch demo -- everything below is synthetic; outputs in {out}\n")

    reports = {}
    for name, spec in zip(("prior", "current"), _phantom_specs(), strict=True):
        phantom = make_spine_phantom(spec)
        folder = out / "phantom" / name
        write_phantom(phantom, folder)
        report = analyze(
            phantom.ct, phantom.labels, convention=LabelConvention.TOTALSEGMENTATOR
        ).to_json_dict()
        (folder / "report.json").write_text(json.dumps(report, indent=2) + "\n")
        render_sagittal(
            phantom.ct,
            phantom.labels,
            report,
            folder / "spine.png",
            convention=LabelConvention.TOTALSEGMENTATOR,
        )
        reports[name] = report

    from spinewatch.audit.context import acting_as

    with acting_as("demo", via="system"):
        summary = build_demo_registry(
            n_patients=args.patients, seed=args.seed, imaging_report=reports["current"]
        )
    print(
        f"Demo registry: {summary.patients} fictional patients, {summary.procedures} procedures, "
        f"{summary.follow_ups_completed} completed follow-ups ({data_dir / 'registry.sqlite3'})\n"
    )

    frame = cohort_frame()
    table = outcome_table(frame)
    print("Pain (VAS 0-10) after vertebroplasty, from the registry:")
    print(table.to_text())
    plot_path = plot_trajectories(frame, out / "outcomes.png", title="Demo cohort: pain (VAS)")
    print(f"\nPlot: {plot_path}\n")

    print("CT analysis of a synthetic spine (current scan):")
    print(format_text(reports["current"]))
    print(f"\nReport: {out / 'phantom' / 'current' / 'report.json'}")
    print(f"Picture: {out / 'phantom' / 'current' / 'spine.png'}\n")
    comparison = compare_reports(reports["prior"], reports["current"])
    (out / "phantom" / "comparison.json").write_text(json.dumps(comparison, indent=2) + "\n")
    print("Change since the prior scan:")
    print(format_comparison_text(comparison))
    return 0
