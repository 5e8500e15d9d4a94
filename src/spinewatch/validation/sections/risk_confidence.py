"""Risk states and confidence classes on every analysed real scan; nothing unmeasured shown as safe.

Collapse risk (`imaging/risk.py`) is low, moderate or high with its reasons -- or **not
assessable** when no rule found a risk but heights (a truncated vertebra), density (an MRI, a
label map without its CT) or lesions could not be measured: never "low". Confidence
(`imaging/confidence.py`) is high, medium or low from the voxel size along the vertebra,
truncation, quality flags, CT noise and the modality.

Each analysed run of the real-scans section (automatic and with the user's option) is counted
per state and class. A vertebra is **unmeasured** when its heights or its trabecular density are
null; the check is that none of them is shown as "low".
"""

from __future__ import annotations

from spinewatch.imaging.report import VertebraReport
from spinewatch.validation.markdown import table
from spinewatch.validation.runs import confidence_of, risk_of, runs
from spinewatch.validation.section import Headline, Section, ValidationContext

__all__ = ["RISK_STATES", "risk_confidence_section", "unmeasured"]

RISK_STATES = ("low", "not_assessable", "moderate", "high")
CONFIDENCE = ("high", "medium", "low")


def unmeasured(v: VertebraReport) -> list[str]:
    """What a report vertebra lacks of the measurements "low" needs: heights, density."""
    out = []
    if v.heights.posterior_mm is None:
        out.append("heights")
    if v.density.median_hu is None:
        out.append("density")
    return out


def risk_confidence_section(ctx: ValidationContext) -> Section:
    """Counts per risk state and confidence class per analysed run, and the unmeasured check."""
    rows: list[list[object]] = []
    total = n_unmeasured = 0
    shown_low: list[str] = []
    totals = dict.fromkeys(RISK_STATES + tuple(f"c-{c}" for c in CONFIDENCE), 0)
    for run in runs(ctx):
        if run.report is None:
            continue
        vs = run.report.vertebrae
        risk = [risk_of(v) for v in vs]
        conf = [confidence_of(v) for v in vs]
        lacking = [v for v in vs if unmeasured(v)]
        low = [v for v in lacking if risk_of(v) == "low"]
        shown_low += [f"{run.dataset.name} {v.level} (no {', '.join(unmeasured(v))})" for v in low]
        total += len(vs)
        n_unmeasured += len(lacking)
        for s in RISK_STATES:
            totals[s] += risk.count(s)
        for c in CONFIDENCE:
            totals[f"c-{c}"] += conf.count(c)
        rows.append(
            [
                run.dataset.name,
                run.label,
                len(vs),
                *(risk.count(s) for s in RISK_STATES),
                *(conf.count(c) for c in CONFIDENCE),
                len(lacking),
                len(low),
            ]
        )
    rows.append(
        [
            "**all**",
            "",
            total,
            *(totals[s] for s in RISK_STATES),
            *(totals[f"c-{c}"] for c in CONFIDENCE),
            n_unmeasured,
            len(shown_low),
        ]
    )
    intro = __doc__.split("\n\n", 1)[1].strip() if __doc__ else ""
    body = (
        intro
        + "\n\n"
        + table(
            [
                "dataset",
                "run",
                "vertebrae",
                "risk low",
                "not assessable",
                "moderate",
                "high",
                "confidence high",
                "medium",
                "low",
                "unmeasured",
                "unmeasured shown low",
            ],
            rows,
        )
        + ("\n\nUnmeasured vertebrae shown as low: " + "; ".join(shown_low) if shown_low else "")
    )
    return Section(
        "Risk states and confidence",
        body,
        [
            Headline(
                "unmeasured real vertebrae (no heights or no density) shown as low",
                f"{len(shown_low)} of {n_unmeasured}",
                "0",
                not shown_low,
            )
        ],
    )
