"""``spinewatch demo``: SpineWatch on built-in synthetic data, no set-up.

Creates a fresh demo registry (fictional patients, procedures, follow-ups) in ``DIR/data``,
analyses two synthetic spine CTs of one patient (a prior and a current scan), writes their
reports and pictures, compares them and stores the current analysis in the registry, prints the
cohort's outcome table and writes its plot; then creates one demo log-in per role (fresh random
passwords, printed) and serves the web application until interrupted (``--no-serve`` to stop
after the printout).
"""

from __future__ import annotations

import argparse
import os
import shutil
from pathlib import Path
from typing import Any

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
    parser.add_argument("--port", type=int, default=8000, help="port to serve on (default 8000)")
    parser.add_argument(
        "--no-serve", action="store_true", help="build and print only; do not serve the application"
    )
    parser.set_defaults(run=run)


DEMO_ROLES = ("clinician", "case_manager", "researcher", "admin")


def _demo_users() -> dict[str, tuple[Any, str]]:
    """One user per role, ``demo-<role>``, each with a fresh random password."""
    import secrets

    from spinewatch.accounts.users import create_user

    users = {}
    for role in DEMO_ROLES:
        password = "-".join(secrets.token_urlsafe(4) for _ in range(4))
        name = f"demo-{role.replace('_', '-')}"
        users[role] = (create_user(username=name, password=password, role=role), password)
    return users


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


def _analyse_demo_scans(folder: Path, *, requested_by: Any) -> dict[str, dict[str, Any]]:
    """Give the first myeloma patient the prior and current phantom CTs, analysed through the
    same upload -> background job -> stored analysis path the web application uses.

    Returns the stored report of each scan (``prior``, ``current``) and copies its sagittal
    picture next to the phantom as ``spine.png``; writes ``report.json`` there too.
    """
    import datetime as dt
    import json

    from django.core.files import File

    from spinewatch.registry import models as m
    from spinewatch.registry.services import add_imaging_study
    from spinewatch.web.scans.jobs import enqueue_analysis, latest_job
    from spinewatch.web.scans.uploads import store_upload
    from spinewatch.web.scans.worker import picture_path, run_pending_jobs

    patient = m.Patient.objects.filter(diagnoses__kind="myeloma").order_by("id").first()
    if patient is None:
        raise RuntimeError("the demo registry has no myeloma patient to attach the scans to")
    today = dt.date.today()
    studies = {}
    for name, days_ago in (("prior", 120), ("current", 0)):
        study = add_imaging_study(
            patient=patient,
            study_date=today - dt.timedelta(days=days_ago),
            description=f"Demo phantom CT, {name} scan (synthetic)",
        )
        with (
            (folder / name / "ct.nii.gz").open("rb") as ct,
            (folder / name / "labels.nii.gz").open("rb") as labels,
        ):
            upload = store_upload(
                File(ct, name=f"{name}-ct.nii.gz"), File(labels, name=f"{name}-labels.nii.gz")
            )
        enqueue_analysis(study_id=study.pk, upload=upload, requested_by=requested_by)
        studies[name] = study
    run_pending_jobs()
    reports = {}
    for name, study in studies.items():
        study.refresh_from_db()
        job = latest_job(study.pk)
        picture = picture_path(job) if job is not None else None
        if study.report is None or picture is None:
            message = job.message if job is not None else "no job"
            raise RuntimeError(f"demo {name} scan was not analysed: {message}")
        reports[name] = study.spine_report()
        (folder / name / "report.json").write_text(json.dumps(study.report, indent=2) + "\n")
        shutil.copyfile(picture, folder / name / "spine.png")
    return reports


def run(args: argparse.Namespace) -> int:
    out: Path = args.dir.resolve()
    data_dir = out / "data"
    if data_dir.exists():
        shutil.rmtree(data_dir)  # the demo registry is always built afresh
    data_dir.mkdir(parents=True)
    os.environ["SPINEWATCH_DATA_DIR"] = str(data_dir)
    if not args.no_serve:
        # The served application needs a real secret key before Django starts (kept, mode 0600,
        # in the demo's data directory).
        from spinewatch.web.security import ensure_secret_key

        os.environ["SPINEWATCH_SECRET_KEY"] = ensure_secret_key(data_dir)

    import json

    from spinewatch.cli._django import setup_django

    setup_django()

    from spinewatch.imaging.compare import compare_reports, format_comparison_text
    from spinewatch.imaging.phantom import make_spine_phantom, write_phantom
    from spinewatch.imaging.report import format_text
    from spinewatch.outcomes.plot import plot_trajectories
    from spinewatch.outcomes.table import outcome_table
    from spinewatch.registry.demo import build_demo_registry
    from spinewatch.registry.services import cohort_frame

    print(f"SpineWatch demo -- everything below is synthetic; outputs in {out}\n")

    for name, spec in zip(("prior", "current"), _phantom_specs(), strict=True):
        write_phantom(make_spine_phantom(spec), out / "phantom" / name)

    from spinewatch.audit.context import acting_as

    with acting_as("demo", via="system"):
        users = _demo_users()
        summary = build_demo_registry(
            n_patients=args.patients,
            seed=args.seed,
            case_managers=[users["case_manager"][0]],
        )
        reports = _analyse_demo_scans(out / "phantom", requested_by=users["clinician"][0])
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

    url = f"http://127.0.0.1:{args.port}/"
    print(f"\nWeb application: {url}  (demo log-ins, passwords new each run)")
    for role, (user, password) in users.items():
        extra = "  (sets up two-factor at first log-in)" if role == "admin" else ""
        print(f"  {role:<13} {user.get_username():<18} {password}{extra}")
    if args.no_serve:
        return 0
    from spinewatch.cli import _serve

    serve_args = argparse.Namespace(
        host="127.0.0.1", port=args.port, workers=2, timeout=120, no_worker=False
    )
    return int(_serve.run(serve_args) or 0)
