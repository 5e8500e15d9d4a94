"""Every real scan of the shared data analysed as a user would: what the report says per level.

Each dataset goes through `spinewatch.imaging.analysis.analyze` with the dataset's
convention (usually `auto`); a refusal is shown with its message -- a refusal with a clear reason
is a correct outcome for input that cannot be read safely. A picture (the curved sagittal
reformat coloured by risk) is drawn for each analysed scan.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from spinewatch.core.errors import InputError
from spinewatch.validation.datasets import DATASETS, RealDataset
from spinewatch.validation.markdown import table
from spinewatch.validation.section import Headline, Section, ValidationContext

__all__ = ["real_scans_section"]

log = logging.getLogger(__name__)


def _analyse(ctx: ValidationContext, d: RealDataset) -> tuple[dict[str, Any] | None, str, float]:
    from spinewatch.imaging.analysis import analyze
    from spinewatch.imaging.io import load_study
    from spinewatch.imaging.render import render_sagittal

    ct_path, labels_path = d.path(ctx.data_root, "ct"), d.path(ctx.data_root, "labels")
    assert labels_path is not None
    t0 = time.perf_counter()
    try:
        ct, labels = load_study(ct_path, labels_path)
        report = analyze(
            ct,
            labels,
            convention=d.convention,
            ct_path=None if ct_path is None else ct_path.name,
            labels_path=labels_path.name,
        ).to_json_dict()
    except InputError as exc:
        return None, str(exc).replace(str(ctx.data_root) + "/", ""), time.perf_counter() - t0
    seconds = time.perf_counter() - t0
    picture = ctx.figures_dir / f"{d.name}.png"
    render_sagittal(
        ct, labels, report, picture, convention=report["scan"]["labels_convention"], dpi=80
    )
    return report, ctx.figure_link(picture), seconds


def _rows(report: dict[str, Any]) -> list[list[object]]:
    rows: list[list[object]] = []
    for v in report["vertebrae"]:
        rows.append(
            [
                v["level"],
                v.get("height_anterior_mm"),
                v.get("height_middle_mm"),
                v.get("height_posterior_mm"),
                v.get("genant_grade"),
                v.get("deformity"),
                v.get("trabecular_hu_median"),
                v.get("lytic_volume_ml"),
                v.get("collapse_risk"),
                v.get("confidence"),
                ", ".join(v.get("quality_flags") or []),
            ]
        )
    return rows


def real_scans_section(ctx: ValidationContext) -> Section:
    """Analyse every present dataset; one table (and picture) per dataset."""
    parts: list[str] = [__doc__.split("\n\n", 1)[1].strip() if __doc__ else ""]
    analysed = refused = 0
    for d in DATASETS:
        if not d.present(ctx.data_root):
            raise FileNotFoundError(f"{d.name}: files missing under {ctx.data_root}")
        report, outcome, seconds = _analyse(ctx, d)
        parts.append(f"### {d.title}\n\n{d.note}.")
        if report is None:
            refused += 1
            parts.append(f"Refused ({seconds:.1f} s): `{outcome}`")
            continue
        analysed += 1
        scan = report["scan"]
        parts.append(
            f"Read as **{scan['labels_convention']}**, modality **{scan['modality']}** "
            f"({scan['modality_source']}), contrast **{scan['contrast_phase']}** "
            f"({scan['contrast_source']}); {len(report['vertebrae'])} vertebrae in {seconds:.1f} s."
        )
        parts.append(
            table(
                [
                    "level",
                    "Ha mm",
                    "Hm mm",
                    "Hp mm",
                    "grade",
                    "deformity",
                    "HU",
                    "lytic ml",
                    "risk",
                    "confidence",
                    "flags",
                ],
                _rows(report),
            )
        )
        parts.append(f"![{d.title}]({outcome})")
    return Section(
        title="Real scans as a user would run them",
        body="\n\n".join(parts),
        headlines=[
            Headline(
                "real scans analysed / refused with a reason",
                f"{analysed} / {refused} of {len(DATASETS)}",
            )
        ],
    )
