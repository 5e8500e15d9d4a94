"""``spinewatch validate``: imaging methods on the real scans and phantoms -> docs/validation.md."""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["add_parser", "run"]


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "validate",
        help="validate the imaging methods on ../shared/data and phantoms (docs/validation.md)",
        description=(
            "Runs every validation section (real scans as a user would run them, modality and "
            "label maps, geometry, Genant, frames, risk and confidence; lesions in real bone: "
            "pending the lesion work; the built-in segmenter: Dice, level names, time and "
            "memory) and writes the Markdown document, its pictures and a JSON "
            "of the headline figures."
        ),
    )
    parser.add_argument(
        "--data",
        type=Path,
        default=None,
        metavar="DIR",
        help="the real scans (default: ../shared/data beside the current directory)",
    )
    parser.add_argument("--out", type=Path, default=Path("docs/validation.md"), metavar="FILE.md")
    parser.add_argument("--quick", action="store_true", help="small matrices (a smoke run)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import logging

    from spinewatch.core.errors import InputError
    from spinewatch.validation.datasets import default_data_root
    from spinewatch.validation.run import run_validation, write_document
    from spinewatch.validation.section import ValidationContext

    class NoDataError(InputError):
        """The shared data folder is missing."""

    data: Path = args.data if args.data is not None else default_data_root(Path.cwd())
    if not data.is_dir():
        raise NoDataError(f"{data}: no shared data folder (give --data DIR)")
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    out: Path = args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    ctx = ValidationContext(
        data_root=data.resolve(),
        figures_dir=out.parent / out.stem,
        doc_dir=out.parent,
        quick=args.quick,
    )
    results = run_validation(ctx)
    write_document(ctx, results, out)
    failed = [h.what for s, _ in results for h in s.headlines if h.met is False]
    print(f"written: {out}" + (f"; targets not met: {'; '.join(failed)}" if failed else ""))
    return 0
