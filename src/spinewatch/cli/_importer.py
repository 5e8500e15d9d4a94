"""``spinewatch import cohort COHORT.csv [--procedure-date YYYY-MM-DD]``: load a cohort file;
``spinewatch import redcap RECORDS.csv`` and ``spinewatch import fhir BUNDLE.json`` likewise.

All or nothing: the whole file is validated first, then written in one transaction. Prints one
summary line (``imported 13 patients, 13 procedures, 58 follow-ups``).
"""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path
from typing import Any

__all__ = ["add_parser", "run"]


def _iso_date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a date; expected an ISO date YYYY-MM-DD"
        ) from None


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "import",
        help="import data into the registry",
        description="Import data into the registry (all or nothing).",
    )
    kinds = parser.add_subparsers(dest="import_kind", metavar="KIND", required=True)
    cohort = kinds.add_parser(
        "cohort",
        help="a long-format cohort file: patient_id,timepoint,vas[,procedure_date]",
        description=(
            "Import a long-format cohort CSV (header patient_id,timepoint,vas; optional "
            "procedure_date). Each patient_id becomes a pseudonymous patient with one "
            "vertebroplasty and its follow-up schedule; each VAS completes its visit."
        ),
    )
    cohort.add_argument("path", type=Path, metavar="COHORT.csv")
    cohort.add_argument(
        "--procedure-date",
        type=_iso_date,
        default=None,
        metavar="YYYY-MM-DD",
        help="procedure date for patients without a procedure_date column value (default: today)",
    )
    cohort.set_defaults(run=run)
    redcap = kinds.add_parser(
        "redcap",
        help="REDCap records (records.csv of `spinewatch export redcap`)",
        description=(
            "Import REDCap flat records (one row per record and event, as `spinewatch export "
            "redcap` writes them): each record becomes a procedure of its patient, each pain "
            "value completes its visit on procedure date + visit_day. All or nothing."
        ),
    )
    redcap.add_argument("path", type=Path, metavar="RECORDS.csv")
    redcap.add_argument(
        "--index-date",
        type=_iso_date,
        default=None,
        metavar="YYYY-MM-DD",
        help="the date day 0 stands for (default: today minus the file's longest offset)",
    )
    redcap.set_defaults(run=run_redcap)
    fhir = kinds.add_parser(
        "fhir",
        help="a FHIR Bundle of pain Observations (LOINC 72514-3) for existing patients",
        description=(
            "Record the pain scores of a FHIR R4 Bundle on the visits of existing patients "
            "(subject: the study-id identifier; the visit extension; effectiveDateTime; value "
            "0-10). All or nothing; an error names the entry and field."
        ),
    )
    fhir.add_argument("path", type=Path, metavar="BUNDLE.json")
    fhir.set_defaults(run=run_fhir)


def run(args: argparse.Namespace) -> int:
    from spinewatch.cli._django import setup_django

    setup_django()
    import getpass

    from spinewatch.audit.context import acting_as
    from spinewatch.registry.services import import_cohort

    with acting_as(getpass.getuser(), via="import"):
        summary = import_cohort(args.path, procedure_date=args.procedure_date)
    print(summary)
    return 0


def run_redcap(args: argparse.Namespace) -> int:
    from spinewatch.cli._django import setup_django

    setup_django()
    import getpass

    from spinewatch.audit.context import acting_as
    from spinewatch.registry.redcap import import_redcap

    with acting_as(getpass.getuser(), via="import"):
        summary = import_redcap(args.path, index_date=args.index_date)
    print(summary)
    return 0


def run_fhir(args: argparse.Namespace) -> int:
    from spinewatch.cli._django import setup_django

    setup_django()
    import getpass

    from spinewatch.audit.context import acting_as
    from spinewatch.outcomes.fhir import read_bundle_file
    from spinewatch.registry.fhir import import_pain_bundle

    data = read_bundle_file(args.path)
    with acting_as(getpass.getuser(), via="import"):
        summary = import_pain_bundle(data, source=str(args.path))
    print(summary)
    for warning in summary.warnings:
        print(f"warning: {warning}")
    return 0
