"""``spinewatch export redcap DIR`` and ``spinewatch export fhir PATIENT|--all --out FILE``.

REDCap: the project files (data dictionary, events, instrument-event mapping, records) of the
registry, de-identified unless ``--identifiable``. FHIR: a Bundle (R4) of one patient or of all,
identifiable unless ``--deidentified``. Each export records an ``export`` event in the audit trail.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

__all__ = ["add_parser", "run_fhir", "run_redcap"]


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "export",
        help="export the registry for research tools and other systems (REDCap, FHIR)",
        description="Export the registry in the formats the field uses.",
    )
    kinds = parser.add_subparsers(dest="export_kind", metavar="FORMAT", required=True)
    redcap = kinds.add_parser(
        "redcap",
        help="REDCap project files: data dictionary, events, instrument mapping, records",
        description=(
            "Write data_dictionary.csv (REDCap's 18 columns; identifiers marked y), events.csv "
            "(pre-op, 3 d, 1, 3, 6, 12 months with their day offsets and windows), "
            "instrument_event_mapping.csv and records.csv (REDCap's flat import format, one row "
            "per record and event) into DIR. De-identified unless --identifiable."
        ),
    )
    redcap.add_argument("directory", type=Path, metavar="DIR")
    redcap.add_argument(
        "--identifiable",
        action="store_true",
        help="include names, hospital numbers and calendar dates (default: de-identified)",
    )
    redcap.set_defaults(run=run_redcap)
    fhir = kinds.add_parser(
        "fhir",
        help="a FHIR R4 Bundle of one patient (study id) or of all patients",
        description=(
            "Write a FHIR R4 collection Bundle: Patient, Condition, Procedure, pain Observations "
            "(LOINC 72514-3), ImagingStudy and per-vertebra findings. Identifiable unless "
            "--deidentified."
        ),
    )
    who = fhir.add_mutually_exclusive_group(required=True)
    who.add_argument("patient", nargs="?", default=None, metavar="PATIENT", help="a study id")
    who.add_argument("--all", action="store_true", help="every patient")
    fhir.add_argument("--out", type=Path, required=True, metavar="FILE", help="Bundle JSON file")
    fhir.add_argument(
        "--deidentified",
        action="store_true",
        help="no names, numbers, dates or DICOM UIDs (day offsets instead)",
    )
    fhir.set_defaults(run=run_fhir)


def _audit(what: str, detail: dict[str, Any]) -> None:
    from spinewatch.audit.trail import record

    record(
        actor=None,
        action="export",
        object_type="registry.patient",
        object_id=None,
        detail={"export": what, **detail},
    )


def run_redcap(args: argparse.Namespace) -> int:
    from spinewatch.cli._django import setup_django

    setup_django()
    import getpass

    from spinewatch.audit.context import acting_as
    from spinewatch.registry.redcap import export_redcap

    with acting_as(getpass.getuser(), via="cli"):
        paths = export_redcap(args.directory, identifiable=args.identifiable)
        rows = paths["records"].read_text(encoding="utf-8").count("\n") - 1
        _audit("redcap", {"rows": rows, "deidentified": not args.identifiable})
    for name in ("dictionary", "events", "mapping", "records"):
        print(paths[name])
    return 0


def run_fhir(args: argparse.Namespace) -> int:
    from spinewatch.cli._django import setup_django

    setup_django()
    import getpass
    import json

    from spinewatch.audit.context import acting_as
    from spinewatch.registry.fhir import all_patients_bundle, fhir_bundle

    with acting_as(getpass.getuser(), via="cli"):
        if args.all:
            bundle = all_patients_bundle(deidentified=args.deidentified)
        else:
            bundle = fhir_bundle(args.patient, deidentified=args.deidentified)
        _audit(
            "fhir",
            {
                "patient": args.patient or "all",
                "entries": len(bundle["entry"]),
                "deidentified": bool(args.deidentified),
            },
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(bundle, indent=1), encoding="utf-8")
    print(f"wrote {len(bundle['entry'])} resources to {args.out}")
    return 0
