"""Modality and label maps: what each real scan was taken for, and how each real label map was read.

**Modality** is decided at input (`imaging/modality.py`): DICOM's Modality tag; for NIfTI
detection from the values (air/lung and fat at their fixed Hounsfield values, else the labelled
vertebrae's cortical rims -- bright on CT, a signal void on MRI), refused when unsure. An MRI
gives geometry only. **Label maps** are read by `auto` (`imaging/label_reading.py`): every
reading of the ids (TotalSegmentator `total`, `total_mr`, `vertebrae_mr`, `vertebrae_body`, VerSe,
SPINEPS/TPTBox instance, binary) judged on the labels' geometry for their levels; exactly one
plausible reading is taken, otherwise the map is refused naming the labels and why.

The truth for each map is what its source documents (`spinewatch.validation.datasets`): the
convention a right reading reports, the levels it holds, or that it must be refused (a
subregion or compartment map, a binary mask or a map whose ids do not give the levels). A map
is **read wrong** when it is read under another convention, with other levels, or read at all
when it must be refused; a readable map that is refused is counted separately.
"""

from __future__ import annotations

from spinewatch.imaging.report import SpineReport
from spinewatch.validation.datasets import DATASETS, IMAGES_WITHOUT_LABELS, RealDataset
from spinewatch.validation.markdown import table
from spinewatch.validation.runs import RunOutcome, run_dataset
from spinewatch.validation.section import Headline, Section, ValidationContext

__all__ = ["modality_labels_section", "reading_verdict"]


def _modality_rows(
    ctx: ValidationContext,
) -> tuple[list[list[object]], dict[str, dict[str, bool]]]:
    """The rows, and per truth (CT/MR) each distinct image -> every decision on it right."""
    from spinewatch.core.errors import InputError
    from spinewatch.imaging.io import load_image

    rows: list[list[object]] = []
    right: dict[str, dict[str, bool]] = {"CT": {}, "MR": {}}
    for d in DATASETS:
        if d.ct is None:
            rows.append([d.name, "-", d.modality, "CT (assumed: no image)", "-", "-"])
            continue
        run = run_dataset(ctx, d)
        acq = run.acquisition
        if acq is None:
            decided, source, evidence = "refused", "-", run.refusal or ""
        else:
            decided, source = acq.modality.value, acq.modality_source
            evidence = acq.modality_evidence
        right[d.modality][d.ct] = right[d.modality].get(d.ct, True) and decided == d.modality
        rows.append([d.name, d.ct, d.modality, decided, source, evidence])
    for rel, truth, _title in IMAGES_WITHOUT_LABELS:
        try:
            image = load_image(ctx.data_root / rel)
            decided = image.acquisition.modality.value
            source, evidence = (
                image.acquisition.modality_source,
                image.acquisition.modality_evidence,
            )
        except InputError as exc:
            decided, source, evidence = "refused", "-", str(exc)
        right[truth][rel] = decided == truth
        rows.append(["(no label map)", rel, truth, decided, source, evidence])
    for row in rows:
        row[5] = str(row[5]).replace(str(ctx.data_root) + "/", "")
    return rows, right


def _levels_read(report: SpineReport) -> set[str | None]:
    levels: set[str | None] = {str(v.level) for v in report.vertebrae}
    levels |= {r.level for r in report.scan.rejected_labels}
    return levels


def reading_verdict(d: RealDataset, run: RunOutcome) -> str:
    """``right``, ``WRONG: ...`` or ``refused a readable map``."""
    accepted = d.user_readings if run.user else d.readings
    if run.report is None:
        if run.refused_at == "input":
            return "refused at input"
        return "right (refused)" if not accepted else "refused a readable map"
    conv = run.report.scan.labels_convention
    if not accepted:
        return f"WRONG: read as {conv}, must be refused"
    if conv not in accepted:
        return f"WRONG: read as {conv}, expected {' or '.join(accepted)}"
    if d.levels and d.levels_documented and _levels_read(run.report) != set(d.levels):
        got = ", ".join(sorted(str(lv) for lv in _levels_read(run.report)))
        return f"WRONG: levels {got}, expected {', '.join(d.levels)}"
    return "right"


def _label_row(d: RealDataset, run: RunOutcome) -> list[object]:
    accepted = d.user_readings if run.user else d.readings
    expected = " or ".join(accepted) if accepted else "refusal"
    if run.report is None:
        return [
            d.labels,
            run.label,
            expected,
            "refused",
            "-",
            run.refusal,
            "-",
            reading_verdict(d, run),
        ]
    scan = run.report.scan
    rejected = "; ".join(f"{r.label} ({r.level}): {r.reason}" for r in scan.rejected_labels)
    levels = ", ".join(str(v.level) for v in run.report.vertebrae)
    if not d.levels_documented:
        levels += " (display only)"
    return [
        d.labels,
        run.label,
        expected,
        f"{scan.labels_convention}: {levels}",
        scan.labels_convention_source,
        scan.labels_convention_evidence,
        rejected or "-",
        reading_verdict(d, run),
    ]


def modality_labels_section(ctx: ValidationContext) -> Section:
    """A table of modality decisions and one of label-map readings, with their headlines."""
    intro = __doc__.split("\n\n", 1)[1].strip() if __doc__ else ""
    mod_rows, right = _modality_rows(ctx)
    label_rows: list[list[object]] = []
    wrong = refused_readable = total = 0
    for d in DATASETS:
        for user in (False, True) if d.has_user_option else (False,):
            run = run_dataset(ctx, d, user=user)
            row = _label_row(d, run)
            label_rows.append(row)
            verdict = str(row[-1])
            total += 1
            wrong += verdict.startswith("WRONG")
            refused_readable += verdict == "refused a readable map"
    ct, mr = list(right["CT"].values()), list(right["MR"].values())
    body = "\n\n".join(
        [
            intro,
            "#### Modality of every real image\n\n"
            + table(["dataset", "image", "truth", "decided", "source", "evidence"], mod_rows),
            "#### Every real label map: reading or refusal\n\n"
            + table(
                [
                    "label map",
                    "run",
                    "right reading",
                    "read as: levels",
                    "source",
                    "evidence or refusal",
                    "rejected labels",
                    "verdict",
                ],
                label_rows,
            ),
        ]
    )
    return Section(
        "Modality and label maps",
        body,
        [
            Headline("real CT images decided CT", f"{sum(ct)} of {len(ct)}", "all", all(ct)),
            Headline("real MRI images decided MR", f"{sum(mr)} of {len(mr)}", "all", all(mr)),
            Headline(
                "real label-map readings that are wrong", f"{wrong} of {total}", "0", wrong == 0
            ),
            Headline(
                "readable real label maps refused",
                f"{refused_readable} of {total}",
                "0",
                refused_readable == 0,
            ),
        ],
    )
