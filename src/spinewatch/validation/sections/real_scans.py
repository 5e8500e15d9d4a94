"""Every real scan of the shared data analysed as a user would: what the report says per level.

Each dataset goes through `spinewatch analyze`'s path (`spinewatch.validation.runs`) with
`--labels-convention auto`; a refusal is shown with its message -- a refusal with a clear reason
is the correct outcome for input that cannot be read safely. Where `auto` refuses a map whose
levels a user can name (a binary mask, a map numbered from elsewhere, TotalSegmentator's
`total_mr` with every vertebra in one label), the dataset is run again with the option that
user would give (`--level`, `--lowest-level`); where the source does not document the levels,
the names are for display only and the section says so. A picture (the curved sagittal
reformat coloured by risk) is drawn for each analysed run.
"""

from __future__ import annotations

from spinewatch.core.acquisition import Acquisition
from spinewatch.imaging.report import SpineReport
from spinewatch.validation.datasets import DATASETS
from spinewatch.validation.markdown import table
from spinewatch.validation.runs import (
    RunOutcome,
    confidence_of,
    deformity_of,
    grade_of,
    risk_of,
    run_dataset,
)
from spinewatch.validation.section import Headline, Section, ValidationContext

__all__ = ["real_scans_section"]

_HEADERS = [
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
]


def _rows(report: SpineReport) -> list[list[object]]:
    rows: list[list[object]] = []
    for v in report.vertebrae:
        rows.append(
            [
                str(v.level),
                v.heights.anterior_mm,
                v.heights.middle_mm,
                v.heights.posterior_mm,
                grade_of(v),
                deformity_of(v),
                v.density.median_hu,
                v.lesions.volume_ml,
                risk_of(v),
                confidence_of(v),
                ", ".join(v.quality_flags),
            ]
        )
    return rows


def _outcome_md(run: RunOutcome) -> list[str]:
    if run.report is None:
        return [f"Refused ({run.refused_at}, {run.seconds:.1f} s): `{run.refusal}`"]
    scan = run.report.scan
    named = scan.levels_named_by
    a = scan.acquisition if scan.acquisition is not None else Acquisition()
    parts = [
        f"Read as **{scan.labels_convention}** ({scan.labels_convention_source}"
        + (f"; levels named by {named}" if named else "")
        + f"), modality **{a.modality.value}** ({a.modality_source}), contrast "
        f"**{a.contrast_phase.value}** ({a.contrast_source}); "
        f"{len(run.report.vertebrae)} vertebrae in {run.seconds:.1f} s.",
        table(_HEADERS, _rows(run.report)),
        f"![{run.dataset.title} ({run.label})]({run.picture})",
    ]
    return parts


def real_scans_section(ctx: ValidationContext) -> Section:
    """Analyse every dataset (and its user option); one table and picture per analysed run."""
    parts: list[str] = [__doc__.split("\n\n", 1)[1].strip() if __doc__ else ""]
    analysed = refused = user_total = user_analysed = 0
    for d in DATASETS:
        run = run_dataset(ctx, d)
        parts.append(f"### {d.title}\n\n{d.note}.")
        parts += _outcome_md(run)
        analysed += run.analysed
        refused += not run.analysed
        if d.has_user_option:
            user = run_dataset(ctx, d, user=True)
            user_total += 1
            user_analysed += user.analysed
            display = (
                ""
                if d.levels_documented
                else " **The level names below are for display only: the true levels are not "
                "documented by the source.**"
            )
            parts.append(
                f"As a user who knows the levels would run it: `{user.label}` "
                f"({d.user_note}).{display}"
            )
            parts += _outcome_md(user)
    return Section(
        title="Real scans as a user would run them",
        body="\n\n".join(parts),
        headlines=[
            Headline(
                "real datasets (auto): analysed / refused with a reason",
                f"{analysed} / {refused} of {len(DATASETS)}",
            ),
            Headline(
                "refused maps run with the user's named level: analysed",
                f"{user_analysed} of {user_total}",
                "all",
                user_analysed == user_total,
            ),
        ],
    )
