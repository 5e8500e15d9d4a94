"""``spinewatch segment CT --out LABELS.nii.gz``: a vertebra label map from a CT alone."""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["add_parser", "run"]


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "segment",
        help="segment and name the vertebrae of a CT (label map in TotalSegmentator v2 ids)",
        description=(
            "Writes a label map on the CT's own grid in TotalSegmentator v2 'total' ids (25 "
            "sacrum, 27 L5 ... 31 L1, 32 T12 ... 43 T1, 44 C7 ... 50 C1) and prints how each "
            "level was named (sacrum, ribs, or relative and unconfirmed)."
        ),
    )
    parser.add_argument("ct", type=Path, metavar="CT", help="CT: .nii/.nii.gz, DICOM dir or .zip")
    parser.add_argument(
        "--out", type=Path, required=True, metavar="LABELS.nii.gz", help="label map to write"
    )
    parser.add_argument("--series", default=None, metavar="UID", help="DICOM series to read")
    parser.add_argument(
        "--segmenter",
        choices=("builtin", "totalsegmentator"),
        default="builtin",
        help="builtin (classical, CPU, seconds) or totalsegmentator (its model and weights)",
    )
    parser.add_argument("--format", choices=("json", "text"), default="text")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import json

    from spinewatch.imaging.io import load_ct
    from spinewatch.imaging.segmentation import get_segmenter, write_label_map

    ct = load_ct(args.ct, series_uid=args.series)
    result = get_segmenter(args.segmenter).segment(ct, ct_path=args.ct)
    write_label_map(result.labels, args.out)
    record = result.to_json_dict()
    if args.format == "json":
        print(json.dumps(record, indent=2))
        return 0
    state = "confirmed" if result.levels_confirmed else "UNCONFIRMED"
    print(f"{result.segmenter} {result.version}: levels {state} ({result.level_method})")
    for line in result.level_evidence:
        print(f"  {line}")
    for v in result.vertebrae:
        doubt = "" if v.level_confirmed or not result.levels_confirmed else "  (unconfirmed)"
        print(f"  {v.level:>6}  label {v.label:>2}  {v.volume_ml:7.1f} ml{doubt}")
    print(f"written: {args.out}")
    return 0
