"""Batch analysis: many studies from a CSV manifest, on Dask (a local cluster or a scheduler).

Manifest: a CSV file with the header ``study_id,ct,labels`` and optionally ``convention``,
``series_uid``, ``prior``, ``modality`` and ``contrast_phase`` (any order, no other columns).
Paths are relative to the manifest's folder (absolute paths are kept). ``ct`` is the image (CT
or MRI) and may be empty (labels only: geometry without density); ``convention`` is ``auto``
(default) or a :class:`~spinewatch.core.conventions.LabelConvention` value
(``totalsegmentator``, ``totalsegmentator_mr``, ``verse``, ``tptbox``...); ``prior`` is the
report JSON of the patient's earlier scan, compared with this one; ``modality`` is ``auto``
(default: the DICOM tag, or detected from a NIfTI's values), ``ct`` or ``mr``;
``contrast_phase`` is ``auto`` (default), ``native``, ``arterial``, ``portal-venous``,
``delayed`` or ``unknown`` (see :func:`spinewatch.imaging.io.load_image`).

The whole manifest is checked before anything runs (:func:`read_manifest`): every error names
the file, line, column and value. Each study then runs as one Dask task
(:func:`analyse_study`): it is analysed with
:mod:`spinewatch.imaging.analysis` (``load_study`` + ``analyze``, i.e. ``analyze_files``
with the volumes kept for the picture), drawn with
:func:`spinewatch.imaging.render.render_sagittal` and compared with its prior; the task returns
the report, picture and comparison, and the client writes ``out_dir/<study_id>/report.json``,
``spine.png`` and ``compare.json`` (so remote workers need read access to the inputs only).
A study that fails records its error message and the others go on. ``out_dir/batch-summary.json``
and ``batch-summary.csv`` list status, seconds, vertebrae, high-risk and not-assessable levels
per study (the risk after the comparison with the prior: its signal to treat raises a level,
see :func:`spinewatch.imaging.compare.apply_comparison`).

Library code never prints: progress goes to an ``on_result`` callback (the CLI draws a tqdm bar
with it) and to the log.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import logging
import re
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from spinewatch.core.collapse_risk import CollapseRisk
from spinewatch.core.conventions import LabelConvention
from spinewatch.core.csv_cells import SafeCsvWriter
from spinewatch.core.errors import InputError
from spinewatch.imaging.report import SpineReport

__all__ = [
    "MANIFEST_COLUMNS",
    "REQUIRED_COLUMNS",
    "BatchSummary",
    "ManifestEntry",
    "ManifestError",
    "SchedulerError",
    "StudyOutcome",
    "analyse_study",
    "read_manifest",
    "run_batch",
]

logger = logging.getLogger(__name__)

REQUIRED_COLUMNS: tuple[str, ...] = ("study_id", "ct", "labels")
MANIFEST_COLUMNS: tuple[str, ...] = (
    *REQUIRED_COLUMNS,
    "convention",
    "series_uid",
    "prior",
    "modality",
    "contrast_phase",
)
_CONVENTIONS = ("auto", *(c.value for c in LabelConvention))
_MODALITIES = ("auto", "ct", "mr")
_PHASES = ("auto", "native", "arterial", "portal-venous", "delayed", "unknown")
_OPTIONAL = "[,convention,series_uid,prior,modality,contrast_phase]"
_STUDY_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_OUTPUTS = ("report.json", "spine.png", "compare.json")
_HTTP_ADDRESS = "127.0.0.1:0"  # the local cluster's scheduler HTTP server: any free loopback port


class ManifestError(InputError):
    """A manifest that cannot be run (names the file, line, column and value)."""


class SchedulerError(InputError):
    """The Dask scheduler given cannot be reached."""


@dataclass(frozen=True)
class ManifestEntry:
    """One study of a manifest, with absolute paths. ``line`` is its line in the CSV file."""

    study_id: str
    ct: Path | None
    labels: Path
    convention: str = "auto"
    series_uid: str | None = None
    prior: Path | None = None
    line: int = 0
    modality: str = "auto"
    contrast_phase: str = "auto"


@dataclass(frozen=True)
class StudyOutcome:
    """What became of one study. ``status`` is ``"ok"`` or ``"failed"`` (then ``error`` says
    why, in one message); paths are None for outputs not written; ``warnings`` are problems
    that did not fail the study (e.g. the picture could not be drawn)."""

    study_id: str
    status: str
    elapsed_s: float
    n_vertebrae: int | None = None
    n_high_risk: int | None = None
    high_risk_levels: tuple[str, ...] = ()
    not_assessable_levels: tuple[str, ...] = ()
    signal_to_treat: tuple[str, ...] | None = None
    report: Path | None = None
    picture: Path | None = None
    comparison: Path | None = None
    error: str | None = None
    warnings: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "study_id": self.study_id,
            "status": self.status,
            "elapsed_s": round(self.elapsed_s, 2),
            "n_vertebrae": self.n_vertebrae,
            "n_high_risk": self.n_high_risk,
            "high_risk_levels": list(self.high_risk_levels),
            "not_assessable_levels": list(self.not_assessable_levels),
            "signal_to_treat": (
                list(self.signal_to_treat) if self.signal_to_treat is not None else None
            ),
            "report": str(self.report) if self.report else None,
            "picture": str(self.picture) if self.picture else None,
            "comparison": str(self.comparison) if self.comparison else None,
            "error": self.error,
            "warnings": list(self.warnings),
        }


@dataclass(frozen=True)
class BatchSummary:
    """The outcome of :func:`run_batch`; ``studies`` in manifest order."""

    manifest: Path
    out_dir: Path
    scheduler: str
    n_workers: int | None
    elapsed_s: float
    studies: tuple[StudyOutcome, ...]
    summary_json: Path
    summary_csv: Path
    started_at: str = field(default="")

    @property
    def n_ok(self) -> int:
        return sum(1 for s in self.studies if s.ok)

    @property
    def n_failed(self) -> int:
        return len(self.studies) - self.n_ok

    @property
    def failed(self) -> tuple[StudyOutcome, ...]:
        return tuple(s for s in self.studies if not s.ok)

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "manifest": str(self.manifest),
            "out_dir": str(self.out_dir),
            "scheduler": self.scheduler,
            "n_workers": self.n_workers,
            "started_at": self.started_at,
            "elapsed_s": round(self.elapsed_s, 2),
            "n_studies": len(self.studies),
            "n_ok": self.n_ok,
            "n_failed": self.n_failed,
            "studies": [s.to_json_dict() for s in self.studies],
        }


# -- the manifest -----------------------------------------------------------------------------


def read_manifest(path: Path) -> list[ManifestEntry]:
    """Read and check a whole manifest; raise :class:`ManifestError` at the first problem.

    Checks: the header (required columns, no unknown or repeated column), each row's width,
    non-empty and directory-safe unique ``study_id``, an existing ``labels`` file, an existing
    ``ct`` (file, DICOM directory or zip) when given, a known ``convention``, ``modality`` and
    ``contrast_phase`` (an MRI has no contrast phase), and a ``prior`` that is a readable
    SpineWatch report.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ManifestError(f"{path}: not a UTF-8 CSV manifest (byte {exc.start})") from None
    reader = csv.reader(io.StringIO(text, newline=""))
    columns = _manifest_header(path, reader)
    col = {name: i for i, name in enumerate(columns)}
    entries: list[ManifestEntry] = []
    seen: dict[str, int] = {}
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            raise ManifestError(f"{path}: line {reader.line_num}: {exc}") from None
        line = reader.line_num
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(columns):
            raise ManifestError(
                f"{path}: line {line}: {len(row)} values, expected {len(columns)} "
                f"({','.join(columns)})"
            )
        entries.append(_manifest_entry(_ManifestRow(path, row, col, line), seen))
    if not entries:
        raise ManifestError(f"{path}: no studies listed under the header")
    return entries


def _manifest_header(path: Path, reader: Any) -> list[str]:
    """The manifest's column names (lower case), checked: none unknown or repeated, every
    required one present. Blank lines before the header are skipped."""
    try:
        header = next(reader, None)
        while header is not None and not any(cell.strip() for cell in header):
            header = next(reader, None)
    except csv.Error as exc:
        raise ManifestError(f"{path}: line {reader.line_num}: {exc}") from None
    if header is None:
        raise ManifestError(
            f"{path}: empty manifest; expected a header line {','.join(REQUIRED_COLUMNS)}"
            f"{_OPTIONAL}"
        )
    columns = [c.strip().lower() for c in header]
    header_line = reader.line_num
    for i, name in enumerate(columns, start=1):
        if name not in MANIFEST_COLUMNS:
            raise ManifestError(
                f"{path}: line {header_line}, column {i}: unknown column {header[i - 1]!r}; "
                f"expected {', '.join(MANIFEST_COLUMNS)}"
            )
        if columns.index(name) != i - 1:
            raise ManifestError(f"{path}: line {header_line}, column {i}: column {name!r} repeated")
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        raise ManifestError(
            f"{path}: line {header_line}: header {','.join(header)!r} lacks column(s) "
            f"{', '.join(missing)}; expected "
            f"{','.join(REQUIRED_COLUMNS)}{_OPTIONAL}"
        )
    return columns


@dataclass(frozen=True)
class _ManifestRow:
    """One data row of a manifest, its cells by column name and where each one is."""

    path: Path
    row: list[str]
    col: dict[str, int]
    line: int

    def cell(self, name: str) -> str:
        return self.row[self.col[name]].strip() if name in self.col else ""

    def where(self, name: str) -> str:
        return f"{self.path}: line {self.line}, column {self.col[name] + 1} ({name})"

    def existing(self, name: str, value: str) -> Path:
        p = Path(value).expanduser()
        p = p if p.is_absolute() else self.path.resolve().parent / p
        if not p.exists():
            raise ManifestError(f"{self.where(name)}: file {value!r} not found (looked for {p})")
        return p


def _manifest_entry(r: _ManifestRow, seen: dict[str, int]) -> ManifestEntry:
    """One row's study, every cell checked (``seen``: the study ids so far, and their lines)."""
    from spinewatch.imaging.compare import load_report

    cell, where, existing, line = r.cell, r.where, r.existing, r.line
    study_id = cell("study_id")
    if not _STUDY_ID.match(study_id):
        raise ManifestError(
            f"{where('study_id')}: study_id {study_id!r} must be 1-128 letters, digits, "
            "'.', '_' or '-' starting with a letter or digit (it names the output folder)"
        )
    if study_id in seen:
        raise ManifestError(
            f"{where('study_id')}: duplicate study_id {study_id!r} (first on line {seen[study_id]})"
        )
    seen[study_id] = line

    labels_value = cell("labels")
    if not labels_value:
        raise ManifestError(f"{where('labels')}: empty; every study needs a label map")
    labels = existing("labels", labels_value)
    if labels.is_dir():
        raise ManifestError(
            f"{where('labels')}: {labels_value!r} is a directory; expected a NIfTI label map"
        )
    ct_value = cell("ct")
    ct = existing("ct", ct_value) if ct_value else None
    convention = cell("convention").lower() or "auto"
    if convention not in _CONVENTIONS:
        raise ManifestError(
            f"{where('convention')}: convention {cell('convention')!r} unknown; expected "
            f"{', '.join(_CONVENTIONS)} (or empty for auto)"
        )
    series_uid = cell("series_uid") or None
    if series_uid is not None and ct is None:
        raise ManifestError(f"{where('series_uid')}: series_uid {series_uid!r} given without a ct")
    modality = cell("modality").lower() or "auto"
    if modality not in _MODALITIES:
        raise ManifestError(
            f"{where('modality')}: modality {cell('modality')!r} unknown; expected "
            f"{', '.join(_MODALITIES)} (or empty for auto)"
        )
    phase = cell("contrast_phase").lower().replace("_", "-") or "auto"
    if phase not in _PHASES:
        raise ManifestError(
            f"{where('contrast_phase')}: contrast_phase {cell('contrast_phase')!r} unknown; "
            f"expected {', '.join(_PHASES)} (or empty for auto)"
        )
    if modality == "mr" and phase not in ("auto", "native"):
        raise ManifestError(
            f"{where('contrast_phase')}: contrast_phase {phase!r} is a CT phase; an MRI "
            "(modality mr) has none"
        )
    prior_value = cell("prior")
    prior = existing("prior", prior_value) if prior_value else None
    if prior is not None:
        try:
            load_report(prior)
        except InputError as exc:
            raise ManifestError(f"{where('prior')}: {exc}") from None
    return ManifestEntry(
        study_id=study_id,
        ct=ct,
        labels=labels,
        convention=convention,
        series_uid=series_uid,
        prior=prior,
        line=line,
        modality=modality,
        contrast_phase=phase,
    )


# -- one study (runs on a worker) -------------------------------------------------------------


def _error_message(exc: BaseException) -> str:
    if isinstance(exc, InputError):
        return str(exc)
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.strerror}: {exc.filename}" if exc.filename else exc.strerror
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"


def analyse_study(entry: ManifestEntry, *, picture: bool = True) -> dict[str, Any]:
    """Analyse one study; never raises for a study's own failure.

    Returns ``{"study_id", "status": "ok"|"failed", "elapsed_s", "report": dict | None,
    "png": bytes | None, "comparison": dict | None, "error": str | None, "warnings": [...]}``.
    Runs on a Dask worker (a plain, picklable top-level function).
    """
    start = time.perf_counter()
    out: dict[str, Any] = {
        "study_id": entry.study_id,
        "status": "failed",
        "report": None,
        "png": None,
        "comparison": None,
        "error": None,
        "warnings": [],
    }
    try:
        from spinewatch.imaging.analysis import analyze
        from spinewatch.imaging.io import load_study, requested_acquisition

        # analyze_files() = load_study() + analyze(); done in two steps here so the picture
        # reuses the loaded volumes instead of reading the scan twice.
        ct, labels = load_study(
            entry.ct,
            entry.labels,
            series_uid=entry.series_uid,
            modality=entry.modality,
            contrast_phase=entry.contrast_phase,
            convention=entry.convention,
        )
        report = analyze(
            ct,
            labels,
            convention=entry.convention,
            ct_path=None if entry.ct is None else str(entry.ct),
            labels_path=str(entry.labels),
            acquisition=None
            if ct is not None
            else requested_acquisition(entry.modality, entry.contrast_phase),
        )
        out["report"] = report.to_json_dict()
        json.dumps(out["report"], allow_nan=False)  # the contract: JSON without NaN
        out["status"] = "ok"
    except Exception as exc:  # one study failing must not stop the batch
        out["error"] = _error_message(exc)
        logger.info("study %s failed: %s", entry.study_id, out["error"])
        out["elapsed_s"] = time.perf_counter() - start
        return out

    if entry.prior is not None:
        # first, so the signal to treat raises the levels' risk in the report and the picture
        try:
            from spinewatch.imaging.compare import apply_comparison, compare_reports, load_report

            comparison = compare_reports(
                load_report(entry.prior),
                report,
                prior_source=str(entry.prior),
                current_source=f"{entry.study_id} report",
            )
            report = apply_comparison(report, comparison)
            out["report"] = report.to_json_dict()
            out["comparison"] = comparison
        except Exception as exc:
            out["warnings"].append(f"comparison with the prior failed: {_error_message(exc)}")
    if picture:
        try:
            out["png"] = _draw(ct, labels, report)
        except Exception as exc:
            out["warnings"].append(f"picture not drawn: {_error_message(exc)}")
    out["elapsed_s"] = time.perf_counter() - start
    return out


def _draw(ct: Any, labels: Any, report: SpineReport) -> bytes:
    import tempfile

    from spinewatch.imaging.render import render_sagittal

    convention = report.scan.labels_convention
    rejected = report.scan.rejected_labels
    if rejected:  # labels found implausible as vertebrae are not drawn as vertebrae
        import numpy as np

        from spinewatch.imaging.volume import LabelVolume

        drop = [r.label for r in rejected]
        arr = np.where(np.isin(labels.labels, drop), 0, labels.labels)
        labels = LabelVolume(arr, labels.grid, labels.source)
    with tempfile.TemporaryDirectory(prefix="spinewatch-") as tmp:
        png = render_sagittal(ct, labels, report, Path(tmp) / "spine.png", convention=convention)
        return png.read_bytes()


# -- the batch --------------------------------------------------------------------------------


def _outcome(result: Mapping[str, Any], study_dir: Path) -> StudyOutcome:
    """Write a finished study's files; return its outcome."""
    study_dir.mkdir(parents=True, exist_ok=True)
    for name in _OUTPUTS:  # never leave a previous run's files beside a new result
        (study_dir / name).unlink(missing_ok=True)
    data = result.get("report")
    if result.get("status") != "ok" or not isinstance(data, Mapping):
        return StudyOutcome(
            study_id=str(result["study_id"]),
            status="failed",
            elapsed_s=float(result.get("elapsed_s", 0.0)),
            error=str(result.get("error") or "unknown error"),
            warnings=tuple(result.get("warnings", ())),
        )
    report = SpineReport.from_json_dict(data, source=f"{result['study_id']} report")
    report_path = study_dir / "report.json"
    report_path.write_text(json.dumps(data, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    picture_path = None
    if result.get("png"):
        picture_path = study_dir / "spine.png"
        picture_path.write_bytes(result["png"])
    comparison_path = None
    signal: tuple[str, ...] | None = None
    comparison = result.get("comparison")
    if isinstance(comparison, Mapping):
        comparison_path = study_dir / "compare.json"
        comparison_path.write_text(
            json.dumps(comparison, indent=2, allow_nan=False) + "\n", encoding="utf-8"
        )
        signal = tuple(comparison.get("summary", {}).get("signal_to_treat", ()))
    vertebrae = report.vertebrae
    high = tuple(str(v.level) for v in vertebrae if v.collapse_risk is CollapseRisk.HIGH)
    return StudyOutcome(
        study_id=str(result["study_id"]),
        status="ok",
        elapsed_s=float(result.get("elapsed_s", 0.0)),
        n_vertebrae=len(vertebrae),
        n_high_risk=len(high),
        high_risk_levels=high,
        not_assessable_levels=tuple(
            str(v.level) for v in vertebrae if v.collapse_risk is CollapseRisk.NOT_ASSESSABLE
        ),
        signal_to_treat=signal,
        report=report_path,
        picture=picture_path,
        comparison=comparison_path,
        warnings=tuple(result.get("warnings", ())),
    )


def _write_summary(summary: BatchSummary) -> None:
    summary.summary_json.write_text(
        json.dumps(summary.to_json_dict(), indent=2, allow_nan=False) + "\n", encoding="utf-8"
    )
    fields = [
        "study_id",
        "status",
        "elapsed_s",
        "n_vertebrae",
        "n_high_risk",
        "high_risk_levels",
        "not_assessable_levels",
        "signal_to_treat",
        "report",
        "picture",
        "error",
    ]
    with summary.summary_csv.open("w", encoding="utf-8", newline="") as fh:
        writer = SafeCsvWriter(fh, fieldnames=fields)  # study ids and errors come from outside
        writer.writeheader()
        for s in summary.studies:
            d = s.to_json_dict()
            d["high_risk_levels"] = " ".join(d["high_risk_levels"])
            d["not_assessable_levels"] = " ".join(d["not_assessable_levels"])
            d["signal_to_treat"] = (
                " ".join(d["signal_to_treat"]) if d["signal_to_treat"] is not None else ""
            )
            writer.writerow({k: ("" if d[k] is None else d[k]) for k in fields})


def run_batch(
    manifest: Path,
    *,
    out_dir: Path,
    scheduler: str | None = None,
    n_workers: int | None = None,
    progress: bool = True,
    picture: bool = True,
    on_result: Callable[[StudyOutcome, int, int], None] | None = None,
    connect_timeout_s: float = 10.0,
) -> BatchSummary:
    """Run every study of ``manifest`` on Dask; write the outputs and the summary under ``out_dir``.

    ``scheduler``: a Dask scheduler address (``tcp://host:8786``); None starts a local cluster of
    ``n_workers`` processes (default ``min(2, n_studies)``), one thread each, its HTTP server on a
    free loopback port (no dashboard), closed
    on return. ``on_result(outcome, n_done, n_total)`` is called as each study finishes (in
    completion order); ``progress`` also logs each one at INFO. ``picture=False`` skips the
    PNGs; ``connect_timeout_s`` bounds the wait for a remote scheduler. A bad manifest raises
    :class:`ManifestError` before any work starts; an unreachable scheduler
    :class:`SchedulerError`. Studies that fail are recorded, not raised.
    """
    entries = read_manifest(manifest)
    if n_workers is not None and n_workers < 1:
        raise InputError(f"number of workers must be at least 1, got {n_workers}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    started = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    t0 = time.perf_counter()

    client, cluster, where, workers = _connect(
        scheduler, n_workers, len(entries), connect_timeout_s
    )

    try:
        outcomes = _run_all(client, entries, out_dir, picture, progress, on_result)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()

    summary = BatchSummary(
        manifest=Path(manifest),
        out_dir=out_dir,
        scheduler=where,
        n_workers=workers,
        elapsed_s=time.perf_counter() - t0,
        studies=tuple(outcomes[e.study_id] for e in entries),
        summary_json=out_dir / "batch-summary.json",
        summary_csv=out_dir / "batch-summary.csv",
        started_at=started,
    )
    _write_summary(summary)
    return summary


def _connect(
    scheduler: str | None, n_workers: int | None, n_studies: int, connect_timeout_s: float
) -> tuple[Any, Any, str, int | None]:
    """``(client, local cluster or None, where, n_workers)``: a local cluster of ``n_workers``
    processes (default ``min(2, n_studies)``) when ``scheduler`` is None, else a client of it."""
    from distributed import Client, LocalCluster

    cluster = None
    workers: int | None
    if scheduler is None:
        workers = n_workers or min(2, n_studies)
        cluster = LocalCluster(  # type: ignore[no-untyped-call]
            processes=True,
            n_workers=workers,
            threads_per_worker=1,
            # Not None: with None the scheduler still binds its HTTP (health) server to 8787,
            # and when another cluster holds 8787 the failed attempt leaks a socket
            # (ResourceWarning) and warns. A free loopback port avoids both; no dashboard
            # is served without bokeh anyway.
            dashboard_address=_HTTP_ADDRESS,
            silence_logs=logging.ERROR,
        )
        where = "local cluster"
        client = Client(cluster, set_as_default=False)  # type: ignore[no-untyped-call]
    else:
        workers = None
        if n_workers is not None:
            logger.info("n_workers=%d ignored: the scheduler %s has its own", n_workers, scheduler)
        where = scheduler
        try:
            client = Client(  # type: ignore[no-untyped-call]
                scheduler, timeout=connect_timeout_s, set_as_default=False
            )
        except (OSError, TimeoutError, ValueError) as exc:
            raise SchedulerError(
                f"cannot reach the Dask scheduler {scheduler!r}: {exc}; expected an address "
                "like tcp://host:8786 of a running `dask scheduler`"
            ) from None
    return client, cluster, where, workers


def _run_all(
    client: Any,
    entries: Sequence[ManifestEntry],
    out_dir: Path,
    picture: bool,
    progress: bool,
    on_result: Callable[[StudyOutcome, int, int], None] | None,
) -> dict[str, StudyOutcome]:
    """Submit every study, write each one's files as it finishes; the outcomes by study id."""
    from distributed import as_completed

    outcomes: dict[str, StudyOutcome] = {}
    token = uuid.uuid4().hex[:8]
    futures = {
        client.submit(
            analyse_study,
            entry,
            picture=picture,
            key=f"spinewatch-{entry.study_id}-{token}",
            pure=False,
        ): entry
        for entry in entries
    }
    completed = as_completed(futures, loop=client.loop)  # type: ignore[no-untyped-call]
    for done, future in enumerate(completed, start=1):
        entry = futures[future]
        try:
            result = future.result()
        except Exception as exc:  # the task itself died (worker lost, killed...)
            result = {
                "study_id": entry.study_id,
                "status": "failed",
                "elapsed_s": 0.0,
                "error": f"task lost on the cluster: {_error_message(exc)}",
            }
        outcome = _outcome(result, out_dir / entry.study_id)
        outcomes[entry.study_id] = outcome
        if progress:
            logger.info(
                "[%d/%d] %s %s (%.1f s)%s",
                done,
                len(entries),
                entry.study_id,
                outcome.status,
                outcome.elapsed_s,
                f": {outcome.error}" if outcome.error else "",
            )
        if on_result is not None:
            on_result(outcome, done, len(entries))
    return outcomes
