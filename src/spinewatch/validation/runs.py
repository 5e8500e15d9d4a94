"""Each real dataset analysed as a user would run it -- once per validation run, shared by the
sections that report on it (real scans, modality and label maps, risk and confidence, Genant).

:func:`run_dataset` follows ``spinewatch analyze``: :func:`~spinewatch.imaging.io.load_study`
(the modality decided at input), :func:`~spinewatch.imaging.label_reading.prepare_labels` (the
convention detected, or the user's named level), :func:`~spinewatch.imaging.analysis.analyze`,
and the sagittal picture. A refusal (any :class:`~spinewatch.core.errors.InputError`) is an
outcome, recorded with its message and the stage that refused. Results are kept in the
context's cache, so every section sees the same run.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

from spinewatch.core.acquisition import Acquisition
from spinewatch.core.errors import InputError
from spinewatch.imaging.report import SpineReport, VertebraReport
from spinewatch.validation.datasets import RealDataset
from spinewatch.validation.section import ValidationContext

__all__ = [
    "RunOutcome",
    "as_written",
    "confidence_of",
    "deformity_of",
    "grade_of",
    "risk_of",
    "run_dataset",
    "runs",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunOutcome:
    """One run of one dataset.

    ``user``: run with the dataset's user option (else ``auto``); ``report``: the report as
    written (:func:`as_written`; None when refused); ``refusal``: the message (data root
    stripped), ``refused_at``: ``"input"`` (reading the files, the modality) or ``"labels"``
    (reading the label map, the analysis); ``acquisition``: the image's modality/contrast
    decision at input (None without an image or when the input was refused); ``seconds``: wall
    time of the run;
    ``picture``: the sagittal picture's link relative to the document (None when refused).
    """

    dataset: RealDataset
    user: bool
    report: SpineReport | None
    refusal: str | None
    refused_at: str | None
    acquisition: Acquisition | None
    seconds: float
    picture: str | None

    @property
    def analysed(self) -> bool:
        """True when the run produced a report."""
        return self.report is not None

    @property
    def label(self) -> str:
        """``auto`` or the user's option text."""
        return self.dataset.user_option_text() if self.user else "auto"


def _strip(ctx: ValidationContext, text: str) -> str:
    return text.replace(str(ctx.data_root) + "/", "")


def _execute(ctx: ValidationContext, d: RealDataset, user: bool) -> RunOutcome:
    from spinewatch.imaging.analysis import analyze
    from spinewatch.imaging.io import load_study
    from spinewatch.imaging.label_reading import prepare_labels
    from spinewatch.imaging.render import render_sagittal

    ct_path, labels_path = d.path(ctx.data_root, "ct"), d.path(ctx.data_root, "labels")
    if labels_path is None:
        raise ValueError(f"{d.name}: a dataset needs a label map")
    t0 = time.perf_counter()
    acquisition = None
    stage = "input"
    try:
        image, labels = load_study(ct_path, labels_path, convention=d.convention)
        acquisition = None if image is None else image.acquisition
        stage = "labels"
        prepared = prepare_labels(
            labels,
            d.convention,
            modality=None if image is None else image.acquisition.modality,
            lowest_level=d.user_lowest_level if user else None,
            level=d.user_level if user else None,
        )
        report = as_written(
            analyze(
                image,
                prepared,
                convention=d.convention,
                ct_path=None if ct_path is None else ct_path.name,
                labels_path=labels_path.name,
            )
        )
    except InputError as exc:
        seconds = time.perf_counter() - t0
        return RunOutcome(d, user, None, _strip(ctx, str(exc)), stage, acquisition, seconds, None)
    seconds = time.perf_counter() - t0
    picture = ctx.figures_dir / f"{d.name}{'-user' if user else ''}.png"
    render_sagittal(
        image,
        prepared.labels,
        report,
        picture,
        convention=prepared.analysis_convention,
        dpi=72,
    )
    _shrink_png(picture)
    return RunOutcome(d, user, report, None, None, acquisition, seconds, ctx.figure_link(picture))


def as_written(report: SpineReport) -> SpineReport:
    """``report`` as its JSON says it (values rounded as written): the validation judges what
    a reader of the report gets, not the analysis' unrounded floats."""
    return SpineReport.from_json_dict(report.to_json_dict(), source="analysis")


def grade_of(v: VertebraReport) -> int | None:
    """Genant's grade 0-3 as the report writes it (None: not graded)."""
    return None if v.genant.grade is None else int(v.genant.grade)


def deformity_of(v: VertebraReport) -> str | None:
    """The deformity type's name (``"wedge"``; None: not graded)."""
    return None if v.genant.deformity is None else str(v.genant.deformity.value)


def risk_of(v: VertebraReport) -> str | None:
    """The collapse risk's name (``"not_assessable"``; None: not rated)."""
    return None if v.collapse_risk is None else str(v.collapse_risk.value)


def confidence_of(v: VertebraReport) -> str | None:
    """The confidence class' name (``"high"``; None: not rated)."""
    c = v.confidence.confidence
    return None if c is None else str(c.value)


def _shrink_png(path: Path) -> None:
    """Re-save a rendering with a 128-colour palette: the document's pictures are committed, and
    a palette PNG of these flat renderings is about a third of the RGBA one."""
    from PIL import Image

    with Image.open(path) as im:
        small = im.convert("RGB").quantize(colors=128)
    small.save(path, optimize=True)


def run_dataset(ctx: ValidationContext, d: RealDataset, *, user: bool = False) -> RunOutcome:
    """The dataset analysed automatically (``user`` False) or with its user option (cached)."""
    if user and not d.has_user_option:
        raise ValueError(f"{d.name} has no user option")
    key = ("run", d.name, user)
    if key not in ctx.cache:
        if not d.present(ctx.data_root):
            raise FileNotFoundError(f"{d.name}: files missing under {ctx.data_root}")
        ctx.cache[key] = _execute(ctx, d, user)
        log.info("%s (%s): %.1f s", d.name, "user" if user else "auto", ctx.cache[key].seconds)
    outcome: RunOutcome = ctx.cache[key]
    return outcome


def runs(ctx: ValidationContext) -> list[RunOutcome]:
    """Every dataset's automatic run, and its user-option run where it has one, in order."""
    from spinewatch.validation.datasets import DATASETS

    out = []
    for d in DATASETS:
        out.append(run_dataset(ctx, d))
        if d.has_user_option:
            out.append(run_dataset(ctx, d, user=True))
    return out
