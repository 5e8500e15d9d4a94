"""``spinewatch analyze-batch MANIFEST.csv``: many studies on Dask, with a progress bar.

Exit status: 0 when every study succeeded, 1 when some failed (listed on stderr), 2 on a bad
manifest or an unreachable scheduler.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["add_parser", "run"]


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a whole number of workers, got {text!r}"
        ) from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected at least 1 worker, got {value}")
    return value


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "analyze-batch",
        help="analyse many studies listed in a CSV manifest, on Dask",
        description=(
            "Analyse every study of MANIFEST.csv (header: study_id,ct,labels"
            "[,convention,series_uid,prior,modality,contrast_phase]; paths relative to the "
            "manifest's folder; modality auto|ct|mr, contrast_phase auto|native|arterial|"
            "portal-venous|delayed|unknown, empty = auto) on a local Dask cluster or a "
            "scheduler. Writes OUT/<study_id>/report.json, spine.png and "
            "compare.json (when a prior report is given) and OUT/batch-summary.json/.csv. "
            "Exit 0: all succeeded; 1: some failed; 2: bad manifest."
        ),
    )
    parser.add_argument("manifest", type=Path, metavar="MANIFEST.csv")
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("spinewatch-batch"),
        metavar="DIR",
        help="output folder (default ./spinewatch-batch)",
    )
    parser.add_argument(
        "--scheduler",
        default=None,
        metavar="ADDRESS",
        help="address of a running Dask scheduler (default: start a local cluster)",
    )
    parser.add_argument(
        "--workers",
        type=_positive_int,
        default=None,
        metavar="N",
        help="local cluster worker processes (default min(2, number of studies))",
    )
    parser.add_argument("--no-picture", action="store_true", help="skip the sagittal PNGs")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from spinewatch.cli._output import check_output_dir
    from spinewatch.imaging.batch import read_manifest, run_batch

    check_output_dir(args.out, "--out")
    n_total = len(read_manifest(args.manifest))  # fail fast (exit 2) before starting a cluster
    bar = tqdm(total=n_total, unit="study", disable=args.quiet, file=sys.stderr, leave=True)

    def on_result(outcome, done: int, total: int) -> None:  # type: ignore[no-untyped-def]
        bar.set_postfix_str(f"{outcome.study_id}: {outcome.status}", refresh=False)
        bar.update(1)

    try:
        summary = run_batch(
            args.manifest,
            out_dir=args.out,
            scheduler=args.scheduler,
            n_workers=args.workers,
            progress=False,
            picture=not args.no_picture,
            on_result=on_result,
        )
    finally:
        bar.close()
    print(
        f"{summary.n_ok} of {len(summary.studies)} studies analysed in {summary.elapsed_s:.1f} s "
        f"on {summary.scheduler}; summary: {summary.summary_json}"
    )
    for s in summary.studies:
        if s.ok and s.n_high_risk:
            print(f"  {s.study_id}: high collapse risk at {', '.join(s.high_risk_levels)}")
        if s.ok and s.not_assessable_levels:
            levels = ", ".join(s.not_assessable_levels)
            print(f"  {s.study_id}: collapse risk not assessable at {levels} (see the report)")
        for warning in s.warnings:
            print(f"  {s.study_id}: warning: {warning}", file=sys.stderr)
    if summary.n_failed:
        print(
            f"spinewatch: {summary.n_failed} stud{'y' if summary.n_failed == 1 else 'ies'} failed:",
            file=sys.stderr,
        )
        for s in summary.failed:
            print(f"  {s.study_id}: {s.error}", file=sys.stderr)
        return 1
    return 0
