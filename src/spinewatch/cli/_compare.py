"""``spinewatch compare PRIOR.json CURRENT.json``: per level change since the prior scan."""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["add_parser", "run"]


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "compare",
        help="compare two spine reports (prior vs current): the signal to treat before collapse",
        description=(
            "Compare the JSON reports of two `spinewatch analyze` runs of one patient, level by "
            "level: change in body heights, trabecular HU and lytic volume; new lesions, growing "
            "lesions, new or worse fractures; and which levels show the signal to treat before "
            "collapse."
        ),
    )
    parser.add_argument("prior", type=Path, metavar="PRIOR.json", help="report of the earlier scan")
    parser.add_argument(
        "current", type=Path, metavar="CURRENT.json", help="report of the later scan"
    )
    parser.add_argument(
        "--format", choices=("json", "text"), default="text", help="output format (default text)"
    )
    parser.add_argument(
        "--out", type=Path, default=None, metavar="FILE", help="also write the JSON result here"
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import json

    from spinewatch.cli._output import check_output_file, write_text_atomic
    from spinewatch.imaging.compare import compare_reports, format_comparison_text, load_report

    check_output_file(args.out, "--out")
    prior = load_report(args.prior)
    current = load_report(args.current)
    result = compare_reports(
        prior, current, prior_source=str(args.prior), current_source=str(args.current)
    )
    text = json.dumps(result, indent=2, allow_nan=False)
    if args.out is not None:
        write_text_atomic(args.out, text + "\n")
    if args.format == "json":
        print(text)
    else:
        print(format_comparison_text(result))
    return 0
