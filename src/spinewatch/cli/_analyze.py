"""``spinewatch analyze [IMAGE] --labels LABELS``: measure every vertebra of one study."""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path
from typing import Any

__all__ = ["add_parser", "run"]


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "analyze",
        help="analyse a spine CT (or MRI) and its vertebra label map (heights, Genant, density, "
        "lesions)",
        description=(
            "Per vertebra: body centroid and volume, anterior/middle/posterior heights in the "
            "vertebra's own frame, Genant grade and deformity, trabecular HU, lytic lesions, "
            "cement, collapse risk with its reasons and the imaging part of SINS. An MRI, or no "
            "image, gives the geometry only: density, lesion and cement fields are null and each "
            "vertebra's not_assessed says why."
        ),
    )
    parser.add_argument(
        "ct",
        nargs="?",
        type=Path,
        default=None,
        metavar="IMAGE",
        help="CT or MRI: .nii/.nii.gz, a DICOM directory or a .zip (optional)",
    )
    parser.add_argument(
        "--labels", type=Path, default=None, metavar="LABELS", help="vertebra label map (NIfTI)"
    )
    from spinewatch.core.conventions import LabelConvention

    parser.add_argument(
        "--labels-convention",
        choices=("auto", *(c.value for c in LabelConvention)),
        default="auto",
        help="label numbering (default auto: decided from the ids and the labels' geometry when "
        "exactly one reading fits)",
    )
    named = parser.add_mutually_exclusive_group()
    named.add_argument(
        "--lowest-level",
        default=None,
        metavar="LEVEL",
        help="name the most caudal vertebra of a map whose ids do not name levels (a binary "
        "mask, TotalSegmentator total_mr/vertebrae_body) or name them wrong; the vertebrae "
        "above are counted up from it",
    )
    named.add_argument(
        "--level",
        default=None,
        metavar="LEVEL",
        help="the level of the single vertebra of a binary (or compartment) mask",
    )
    parser.add_argument("--series", default=None, metavar="UID", help="DICOM series to read")
    parser.add_argument(
        "--modality",
        choices=("auto", "ct", "mr"),
        default="auto",
        help="auto (default): DICOM from its Modality tag; NIfTI detected from the voxel values "
        "(a CT has air near -1000 HU and fat near -100 HU, an MRI neither) and refused when "
        "unsure. ct/mr: say it (for DICOM it must agree with the tag). An MRI gives geometry "
        "only, never HU",
    )
    parser.add_argument(
        "--contrast-phase",
        choices=("auto", "native", "arterial", "portal-venous", "delayed", "unknown"),
        default="auto",
        help="intravenous contrast of a CT, which shifts the density thresholds. auto "
        "(default): from the DICOM header (ContrastBolusAgent, series description...), else "
        "looked for in the image (an enhanced aorta beside T4-L4: contrast of unknown phase), "
        "else native is assumed. unknown: contrast given, phase not known",
    )
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
        help="report of an earlier scan: add the comparison to the output; its signal to treat "
        "before collapse is carried by each vertebra (treat_signal) and raises its risk",
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

    _check_arguments(args)
    from spinewatch.cli._output import check_output_dir

    check_output_dir(args.out, "--out")

    prior = None
    if args.prior is not None:
        from spinewatch.imaging.compare import load_report

        prior = load_report(args.prior)

    with tempfile.TemporaryDirectory(prefix="spinewatch-seg-") as work:
        ct, labels, prepared, report, segmentation = _analyse(args, Path(work))
    extra: dict[str, Any] = {}
    if segmentation is not None:
        extra["segmentation"] = segmentation.to_json_dict()
    if prior is not None:
        from spinewatch.imaging.compare import apply_comparison, compare_reports

        comparison = compare_reports(
            prior, report, prior_source=str(args.prior), current_source="this analysis"
        )
        report = apply_comparison(report, comparison)
        extra["comparison"] = comparison
    report = replace(report, extra={**report.extra, **extra})
    result = report.to_json_dict()
    text = json.dumps(result, indent=2, allow_nan=False)
    if args.out is not None:
        _write_outputs(args.out, ct, labels, report, prepared.analysis_convention, text)
    if args.format == "json":
        print(text)
    else:
        from spinewatch.imaging.report import format_text

        print(format_text(report))
        if prior is not None:
            from spinewatch.imaging.compare import format_comparison_text

            print()
            print(format_comparison_text(comparison))
        if args.out is not None:
            print(f"\nwritten: {args.out / 'report.json'}, {args.out / 'spine.png'}")
    sys.stdout.flush()
    return 0


def _check_arguments(args: argparse.Namespace) -> None:
    """Arguments that do not fit together: one clear error (exit 2). ``--segment`` defaults to
    the built-in segmenter when no label map is given."""
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
    if args.segment is not None and args.modality == "mr":
        raise UsageError("--segment segments a CT; give --labels for an MRI")


def _analyse(args: argparse.Namespace, work: Path) -> tuple[Any, Any, Any, Any, Any]:
    """``(image, labels, prepared labels, report, segmentation or None)``: the label map read or
    made (written under ``work``, or ``--out``), then the analysis."""
    from spinewatch.imaging.analysis import FAST_WORKING_RESOLUTION_MM, analyze
    from spinewatch.imaging.io import load_study, requested_acquisition

    segmentation = None
    labels_path: Path = args.labels
    convention = args.labels_convention
    if args.segment is not None:
        from spinewatch.imaging.io import load_ct
        from spinewatch.imaging.segmentation import get_segmenter, write_label_map

        ct = load_ct(args.ct, series_uid=args.series)
        segmentation = get_segmenter(args.segment).segment(ct, ct_path=args.ct)
        labels = segmentation.labels
        labels_path = work / "labels.nii.gz"
        if args.out is not None:
            labels_path = write_label_map(labels, args.out / "labels.nii.gz")
        convention = "totalsegmentator"
    else:
        ct, labels = load_study(
            args.ct,
            labels_path,
            series_uid=args.series,
            modality=args.modality,
            contrast_phase=args.contrast_phase,
            convention=convention,
        )
    from spinewatch.imaging.label_reading import prepare_labels

    prepared = prepare_labels(
        labels,
        convention,
        modality=None if ct is None else ct.acquisition.modality,
        lowest_level=args.lowest_level,
        level=args.level,
    )
    labels = prepared.labels
    report = analyze(
        ct,
        prepared,
        convention=convention,
        ct_path=None if args.ct is None else str(args.ct),
        labels_path=str(labels_path),
        working_resolution_mm=FAST_WORKING_RESOLUTION_MM if args.fast else None,
        acquisition=None
        if ct is not None
        else requested_acquisition(args.modality, args.contrast_phase),
    )
    return ct, labels, prepared, report, segmentation


def _write_outputs(
    out: Path, ct: Any, labels: Any, report: Any, convention: Any, text: str
) -> None:
    """The picture and the report under ``out``: both files or neither (the picture first, then
    the report, then the picture renamed into place)."""
    import os

    from spinewatch.cli._output import write_text_atomic
    from spinewatch.imaging.render import render_sagittal

    out.mkdir(parents=True, exist_ok=True)
    picture = out / ".spine.png.tmp.png"
    try:  # both files or neither: the picture first, then the report, then the rename
        render_sagittal(ct, labels, report, picture, convention=convention)
        write_text_atomic(out / "report.json", text + "\n")
        os.replace(picture, out / "spine.png")
    finally:
        picture.unlink(missing_ok=True)
