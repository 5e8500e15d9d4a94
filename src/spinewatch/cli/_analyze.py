"""``spinewatch analyze [CT] --labels LABELS``: measure every vertebra of one study."""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["add_parser", "run"]


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "analyze",
        help="analyse a spine CT and its vertebra label map (heights, Genant, density, lesions)",
        description=(
            "Per vertebra: body centroid and volume, anterior/middle/posterior heights in the "
            "vertebra's own frame, Genant grade and deformity, trabecular HU, lytic lesions, "
            "cement, collapse risk with its reasons and the imaging part of SINS. Without a CT "
            "only the geometry is measured."
        ),
    )
    parser.add_argument(
        "ct",
        nargs="?",
        type=Path,
        default=None,
        metavar="CT",
        help="CT: .nii/.nii.gz, a DICOM directory or a .zip (optional)",
    )
    parser.add_argument(
        "--labels", type=Path, default=None, metavar="LABELS", help="vertebra label map (NIfTI)"
    )
    parser.add_argument(
        "--labels-convention",
        choices=("auto", "totalsegmentator", "verse"),
        default="auto",
        help="label numbering (default auto: decided from the labels when unambiguous)",
    )
    parser.add_argument("--series", default=None, metavar="UID", help="DICOM series to read")
    parser.add_argument("--format", choices=("json", "text"), default="json")
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        metavar="DIR",
        help="write report.json and spine.png (sagittal reformat coloured by risk) here",
    )
    parser.add_argument(
        "--prior",
        type=Path,
        default=None,
        metavar="PRIOR.json",
        help="report of an earlier scan: add the comparison to the output",
    )
    parser.add_argument(
        "--fast",
        action="store_true",
        help="analyse sub-millimetre scans on a 1.4 mm working grid (2-4x faster; heights may "
        "move by up to 0.6 mm, so a vertebra on a Genant boundary can change grade)",
    )
    parser.add_argument(
        "--segment",
        choices=("builtin", "totalsegmentator"),
        default=None,
        help="segmenter used when no --labels are given (default builtin: classical, CPU; "
        "totalsegmentator needs its weights installed); --out also gets labels.nii.gz",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import json
    import sys
    import tempfile

    from spinewatch.core.errors import InputError

    class UsageError(InputError):
        """Arguments that do not fit together."""

    if args.labels is None and args.ct is None:
        raise UsageError("give a CT (segmented first when --labels is absent) or --labels")
    if args.labels is None and args.segment is None:
        args.segment = "builtin"
    if args.segment is not None and args.ct is None:
        raise UsageError("--segment needs the CT to segment")
    if args.labels is not None and args.segment is not None:
        raise UsageError("give either --labels or --segment, not both")

    from spinewatch.imaging.analysis import FAST_WORKING_RESOLUTION_MM, analyze
    from spinewatch.imaging.io import load_study

    prior = None
    if args.prior is not None:
        from spinewatch.imaging.compare import load_report

        prior = load_report(args.prior)

    segmentation = None
    with tempfile.TemporaryDirectory(prefix="spinewatch-seg-") as work:
        labels_path: Path = args.labels
        convention = args.labels_convention
        if args.segment is not None:
            from spinewatch.imaging.io import load_ct
            from spinewatch.imaging.segmentation import get_segmenter, write_label_map

            ct = load_ct(args.ct, series_uid=args.series)
            segmentation = get_segmenter(args.segment).segment(ct, ct_path=args.ct)
            labels = segmentation.labels
            labels_path = Path(work) / "labels.nii.gz"
            if args.out is not None:
                labels_path = write_label_map(labels, args.out / "labels.nii.gz")
            convention = "totalsegmentator"
        else:
            ct, labels = load_study(args.ct, labels_path, series_uid=args.series)
        report = analyze(
            ct,
            labels,
            convention=convention,
            ct_path=None if args.ct is None else str(args.ct),
            labels_path=str(labels_path),
            working_resolution_mm=FAST_WORKING_RESOLUTION_MM if args.fast else None,
        )
    result = report.to_json_dict()
    if segmentation is not None:
        result["segmentation"] = segmentation.to_json_dict()
    if prior is not None:
        from spinewatch.imaging.compare import compare_reports

        result["comparison"] = compare_reports(
            prior, result, prior_source=str(args.prior), current_source="this analysis"
        )
    text = json.dumps(result, indent=2, allow_nan=False)
    if args.out is not None:
        from spinewatch.imaging.render import render_sagittal

        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "report.json").write_text(text + "\n", encoding="utf-8")
        render_sagittal(
            ct,
            labels,
            result,
            args.out / "spine.png",
            convention=result["scan"]["labels_convention"],
        )
    if args.format == "json":
        print(text)
    else:
        from spinewatch.imaging.report import format_text

        print(format_text(result))
        if prior is not None:
            from spinewatch.imaging.compare import format_comparison_text

            print()
            print(format_comparison_text(result["comparison"]))
        if args.out is not None:
            print(f"\nwritten: {args.out / 'report.json'}, {args.out / 'spine.png'}")
    sys.stdout.flush()
    return 0
