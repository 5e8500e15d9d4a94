"""Lytic lesions inserted into real bone, false lesions on untouched real vertebrae, and diffuse
infiltration on real scans and on a simulated myeloma pattern.

**Method.** Synthetic lesions of 0.3-10 ml -- spheres, ellipsoids and lobulated shapes, central,
touching the posterior wall or reaching into a pedicle -- are written into the real vertebrae of
`../shared/data` by the insertion toolkit (`spinewatch.validation.lesion_insertion`: partial
volume from 64 sub-samples per voxel, the scan's own noise and its neighbour correlation, truth =
what was written), one at a time, each vertebra native and with its trabecular background moved
to osteoporotic (75 HU) and normal (200 HU) density, keeping its texture
(`spinewatch.validation.lesion_matrix`). The density is drawn from -20..70 HU, but at least
40 HU below the lesion's own bone: a region 20 HU below 75 HU bone is not lytic-looking, and the
issue's targets are read for lesions at least 70 HU below their bone (the detector's stated
contrast), 60-70 HU and 40-60 HU reported beside them. A lesion is **found** when a reported
lesion covers at least a fifth of its voxels (those at least half lesion). Sizes are the true
volume inside the body; the targets apply from 1 ml at voxels up to 2 mm and from 2 ml at 3 mm.
The same matrix generator, with lesions at least 60 HU below the bone, is asserted in
`tests/imaging/test_lesions_real.py`.

Real vertebrae: the TotalSegmentator example at 3 mm (T11-L2), its DICOM series at
0.98 x 0.98 x 2 mm (T11-T12), the TPTBox CT crop at 1.5 mm (L2-L4), the contrast CTA crop at
1.5 mm (T12, binary mask) and the VerSe004 L2 crop at 1 mm (compartment classes 1-4; with all six
classes, "verse+disc", the disc layers along both endplates are inside the label).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

from spinewatch.validation.lesion_matrix import Case, FalseLesionCheck
from spinewatch.validation.markdown import table
from spinewatch.validation.section import Headline, Section, ValidationContext

__all__ = ["INSERT_INTO", "MYELOMA_DROPS_HU", "lesions_section"]

#: The vertebrae lesions are inserted into (full run; ``ctx.quick``: :data:`_QUICK_INTO`):
#: every real vertebra with a measurable trabecular background (TPTBox L2 is cut by the crop).
INSERT_INTO = (
    "ts3mm/L1",
    "ts3mm/L2",
    "dicom/T12",
    "tptbox/L3",
    "tptbox/L4",
    "cta/T12",
    "verse/L2",
)
_QUICK_INTO = ("tptbox/L3",)
_PER_BACKGROUND = 8
_QUICK_PER_BACKGROUND = 2
#: Drawn at least this far below the bone; the targets apply from :data:`TARGET_CONTRAST_HU`.
MIN_CONTRAST_HU = 40.0
TARGET_CONTRAST_HU = 70.0
_CONTRAST_BANDS = ((70.0, None), (60.0, 70.0), (40.0, 60.0))
_SIZE_BANDS = ((0.3, 1.0), (1.0, 2.0), (2.0, 5.0), (5.0, 10.5))
#: Simulated myeloma: one level's trabecular background lowered by each of these (HU).
MYELOMA_DROPS_HU = (30.0, 50.0, 70.0)
#: The drops the infiltration finding must report (the finding's floor is 40 HU).
_MYELOMA_MUST_FLAG_HU = 50.0
_WHOLE_CT = "ct/totalseg-example/example_ct.nii.gz"


def _voxel_class(c: Case) -> str:
    if c.voxel_max_mm <= 1.5:
        return "<= 1.5 mm"
    return "2 mm" if c.voxel_max_mm <= 2.0 else "3 mm"


def _band(c: Case) -> str:
    for lo, hi in _CONTRAST_BANDS:
        if c.contrast_hu >= lo and (hi is None or c.contrast_hu < hi):
            return f">= {lo:.0f} HU" if hi is None else f"{lo:.0f}-{hi:.0f} HU"
    return f"< {_CONTRAST_BANDS[-1][0]:.0f} HU"


def _size_band(c: Case) -> str:
    for lo, hi in _SIZE_BANDS:
        if lo <= c.truth_body_ml < hi:
            return f"{lo:g}-{min(hi, 10.0):g} ml"
    return "< 0.3 ml" if c.truth_body_ml < 0.3 else "> 10 ml"


def _target(c: Case) -> bool:
    return c.sized and c.contrast_hu >= TARGET_CONTRAST_HU


def _rate(cases: Sequence[Case], pred: Callable[[Case], bool] = lambda c: c.found) -> str:
    if not cases:
        return "-"
    n = sum(pred(c) for c in cases)
    return f"{n}/{len(cases)} ({100.0 * n / len(cases):.0f} %)"


def _frac(cases: Sequence[Case], pred: Callable[[Case], bool] = lambda c: c.found) -> float:
    return sum(bool(pred(c)) for c in cases) / len(cases) if cases else 0.0


def _detection(cases: list[Case]) -> tuple[str, list[Headline]]:
    bands = [b for b in (">= 70 HU", "60-70 HU", "40-60 HU")]
    sizes = [f"{lo:g}-{min(hi, 10.0):g} ml" for lo, hi in _SIZE_BANDS]
    rows: list[list[object]] = []
    for vc in ("<= 1.5 mm", "2 mm", "3 mm"):
        for sb in sizes:
            sel = [c for c in cases if _voxel_class(c) == vc and _size_band(c) == sb]
            if not sel:
                continue
            rows.append([vc, sb, *(_rate([c for c in sel if _band(c) == b]) for b in bands)])
    heads: list[Headline] = []
    for vc, need, what in (
        ("<= 1.5 mm", 1.0, "lesions >= 1 ml found at voxels <= 1.5 mm"),
        ("2 mm", 1.0, "lesions >= 1 ml found at 1 x 1 x 2 mm voxels"),
        ("3 mm", 2.0, "lesions >= 2 ml found at 3 mm voxels"),
    ):
        sel = [c for c in cases if _voxel_class(c) == vc and c.truth_body_ml >= need and _target(c)]
        heads.append(
            Headline(
                f"{what} (>= {TARGET_CONTRAST_HU:.0f} HU below their bone)",
                _rate(sel) if sel else "none in this run",
                ">= 95 %",
                None if not sel else _frac(sel) >= 0.95,
            )
        )
    faint = [c for c in cases if c.sized and 60.0 <= c.contrast_hu < TARGET_CONTRAST_HU]
    fainter = [c for c in cases if c.sized and c.contrast_hu < 60.0]
    heads.append(
        Headline(
            "target-size lesions 60-70 HU below their bone found",
            _rate(faint) if faint else "none in this run",
            ">= 75 % (tests)",
            None if not faint else _frac(faint) >= 0.75,
        )
    )
    heads.append(Headline("target-size lesions 40-60 HU below their bone found", _rate(fainter)))
    missed = [c for c in cases if _target(c) and not c.found]
    body = (
        "#### Detection by voxel class, true size and contrast below the bone\n\n"
        + table(["voxels", "true size", *(f"found, {b} below" for b in bands)], rows)
        + (
            "\n\nMissed target lesions: " + "; ".join(str(c) for c in missed)
            if missed
            else "\n\nNo target lesion was missed."
        )
    )
    return body, heads


def _volume_text(found: Sequence[Case]) -> str:
    errors = [c.volume_error for c in found]
    off = sum(abs(e) > 0.25 for e in errors)
    if not errors:
        return "none found"
    return (
        f"{len(found) - off} of {len(found)}; median {100 * statistics.median(errors):+.1f} %, "
        f"worst {100 * max(abs(e) for e in errors):.0f} %"
    )


def _measures(cases: list[Case]) -> tuple[str, list[Headline]]:
    found = [c for c in cases if c.sized and c.found]
    target = [c for c in found if c.contrast_hu >= TARGET_CONTRAST_HU]
    off = [c for c in found if abs(c.volume_error) > 0.25]
    flags = [c for c in cases if c.found]
    wall_ok = [c for c in flags if c.wall == c.truth_wall]
    ped_ok = [c for c in flags if (c.left, c.right) == (c.truth_left, c.truth_right)]
    both_ok = [c for c in flags if c in wall_ok and c in ped_ok]
    rows: list[list[object]] = []
    for place in ("central", "posterior_wall", "pedicle_left", "pedicle_right"):
        sel = [c for c in flags if c.spec.place == place]
        sf = [c for c in found if c.spec.place == place]
        rows.append(
            [
                place,
                len(sel),
                _rate(sel, lambda c: c.wall == c.truth_wall),
                _rate(sel, lambda c: (c.left, c.right) == (c.truth_left, c.truth_right)),
                f"{100 * statistics.median([c.volume_error for c in sf]):+.1f}" if sf else "-",
                f"{100 * max(abs(c.volume_error) for c in sf):.1f}" if sf else "-",
            ]
        )
    vrows = [
        [band, _volume_text([c for c in found if _band(c) == band])]
        for band in (">= 70 HU", "60-70 HU", "40-60 HU")
    ]
    body = (
        "#### Volume and involvement of the found lesions\n\n"
        "Volume of the found lesions of target size (true volume in the body) against the "
        "contrast below their bone -- within 25 %, median and worst error:\n\n"
        + table(["below the bone", "within 25 %"], vrows)
        + "\n\nInvolvement of every found lesion, and the volume error of the target-size ones, "
        "per place:\n\n"
        + table(
            [
                "place",
                "found",
                "posterior wall right",
                "pedicles right",
                "volume error median %",
                "worst |error| %",
            ],
            rows,
        )
        + ("\n\nVolume off by more than 25 %: " + "; ".join(str(c) for c in off) if off else "")
    )
    heads = [
        Headline(
            f"found target-size lesions' volume within 25 % (>= {TARGET_CONTRAST_HU:.0f} HU "
            "below their bone)",
            _volume_text(target),
            "all",
            None if not target else all(abs(c.volume_error) <= 0.25 for c in target),
        ),
        Headline(
            "found target-size lesions' volume within 25 %, 40-70 HU below their bone",
            _volume_text([c for c in found if c.contrast_hu < TARGET_CONTRAST_HU]),
        ),
        Headline(
            "posterior wall / pedicle involvement right",
            f"wall {_rate(flags, lambda c: c in wall_ok)}, pedicles "
            f"{_rate(flags, lambda c: c in ped_ok)}, both {_rate(flags, lambda c: c in both_ok)}",
            ">= 90 %",
            None if not flags else _frac(flags, lambda c: c in both_ok) >= 0.9,
        ),
    ]
    return body, heads


def _listed(checks: Sequence[FalseLesionCheck]) -> str:
    return " (" + ", ".join(f"{c.vertebra} {c.background}" for c in checks) + ")" if checks else ""


def _untouched(checks: list[FalseLesionCheck], cases: list[Case]) -> tuple[str, list[Headline]]:
    false = [c for c in checks if c.largest_ml >= 0.3]
    flagged = [c for c in checks if c.posterior_wall or c.pedicle]
    rows = [
        [
            c.vertebra,
            c.background,
            c.n_lesions,
            f"{c.largest_ml:.2f}",
            "wall" if c.posterior_wall else ("pedicle" if c.pedicle else "-"),
            f"{c.seconds:.2f}",
        ]
        for c in checks
    ]
    seconds = [c.seconds for c in checks] + [c.seconds for c in cases]
    body = (
        "#### Untouched real vertebrae\n\n"
        "The detector on every real vertebra as it is and with its trabecular background moved "
        "to 75 and 200 HU (the backgrounds the lesions go into); a lesion below 0.3 ml is under "
        "the issue's size of interest.\n\n"
        + table(["vertebra", "background", "lesions", "largest ml", "involvement", "seconds"], rows)
    )
    heads = [
        Headline(
            "false lesions >= 0.3 ml on untouched real vertebrae",
            f"{len(false)} of {len(checks)} runs" + _listed(false),
            "0",
            not false,
        ),
        Headline(
            "untouched real vertebrae with wall/pedicle involvement",
            f"{len(flagged)} of {len(checks)} runs",
            "0",
            not flagged,
        ),
        Headline(
            "lesion detection time per vertebra (s)",
            f"median {statistics.median(seconds):.2f}, max {max(seconds):.2f}" if seconds else "-",
        ),
    ]
    return body, heads


def _infiltration(ctx: ValidationContext) -> tuple[str, list[Headline]]:
    """Diffuse infiltration on the real scans (each run of the real-scans section, and the whole
    TotalSegmentator example CT segmented by the built-in segmenter) and on a simulated myeloma
    pattern in that CT."""
    from spinewatch.imaging.analysis import analyze
    from spinewatch.imaging.io import load_ct
    from spinewatch.imaging.segmentation import segment_ct
    from spinewatch.validation.datasets import DATASETS
    from spinewatch.validation.myeloma import lower_level_density
    from spinewatch.validation.runs import run_dataset

    real_rows: list[list[object]] = []
    assessed = flagged = 0
    reports: list[tuple[str, dict[str, Any]]] = []
    for d in DATASETS:
        if d.modality != "CT" or d.ct is None:
            continue
        run = run_dataset(ctx, d)
        if run.report is not None:
            reports.append((d.name, run.report.to_json_dict()))
    ct = load_ct(ctx.data_root / _WHOLE_CT)
    seg = segment_ct(ct)
    whole = analyze(ct, seg.labels, convention="totalsegmentator").to_json_dict()
    reports.append(("TotalSegmentator example CT, whole (built-in segmentation)", whole))
    for name, report in reports:
        vs = report["vertebrae"]
        values = [v.get("diffuse_infiltration") for v in vs]
        n_true = values.count(True)
        n_assessed = sum(x is not None for x in values)
        assessed += n_assessed
        flagged += n_true
        below = [
            f"{v['level']} {v['diffuse_infiltration_hu_below_own']:+.0f}"
            for v in vs
            if v.get("diffuse_infiltration_hu_below_own") is not None
        ]
        real_rows.append([name, len(vs), n_assessed, n_true, ", ".join(below) or "-"])

    levels = [
        v["level"]
        for v in whole["vertebrae"]
        if v.get("diffuse_infiltration") is not None and not v.get("truncated")
    ]
    drops = (70.0,) if ctx.quick else MYELOMA_DROPS_HU
    targets = levels[len(levels) // 2 : len(levels) // 2 + 1] if ctx.quick else levels
    sim_rows: list[list[object]] = []
    must = caught = others = others_n = 0
    for level in targets:
        for drop in drops:
            moved, shift = lower_level_density(ct, seg.labels, "totalsegmentator", level, drop)
            t0 = time.perf_counter()
            rep = analyze(moved, seg.labels, convention="totalsegmentator").to_json_dict()
            seconds = time.perf_counter() - t0
            by_level = {v["level"]: v for v in rep["vertebrae"]}
            v = by_level[level]
            wrong = [
                lv
                for lv, o in by_level.items()
                if lv != level and o.get("diffuse_infiltration") is True
            ]
            others += len(wrong)
            others_n += sum(
                1
                for lv, o in by_level.items()
                if lv != level and o.get("diffuse_infiltration") is not None
            )
            if drop >= _MYELOMA_MUST_FLAG_HU:
                must += 1
                caught += v.get("diffuse_infiltration") is True
            sim_rows.append(
                [
                    level,
                    f"{shift.original_hu:.0f} -> {shift.target_hu:.0f}",
                    v.get("trabecular_hu_median"),
                    v.get("diffuse_infiltration_hu_below_own"),
                    v.get("diffuse_infiltration"),
                    ", ".join(wrong) or "-",
                    v.get("collapse_risk"),
                    f"{seconds:.1f}",
                ]
            )
    drop_text = ", ".join(f"{d:.0f}" for d in drops)
    body = (
        "#### Diffuse infiltration\n\n"
        "A level is reported as diffusely infiltrated when its trabecular background lies far "
        "below the line through the patient's *other* reliably measured levels "
        "(`imaging/infiltration.py`: at least 40 HU and 3 robust scatters below; at least three "
        "reference levels, else not assessable). The crops of the real-scans section hold too "
        "few whole levels to be assessed; the whole TotalSegmentator example CT (3 mm, no label "
        "map of its own) is segmented by the built-in segmenter for a spine that can be.\n\n"
        + table(
            ["real scan", "vertebrae", "assessed", "infiltrated", "HU below own spine"],
            real_rows,
        )
        + "\n\nSimulated myeloma pattern: in that CT, one level's trabecular background lowered "
        f"(texture and noise kept; `spinewatch.validation.myeloma`) by {drop_text} HU, and the "
        "whole CT analysed again:\n\n"
        + table(
            [
                "level",
                "background HU",
                "measured HU",
                "HU below own spine",
                "infiltrated",
                "other levels flagged",
                "risk",
                "seconds",
            ],
            sim_rows,
        )
    )
    heads = [
        Headline(
            "real vertebrae reported as diffusely infiltrated",
            f"{flagged} of {assessed} assessed",
            "0",
            assessed > 0 and flagged == 0,
        ),
        Headline(
            f"simulated myeloma levels (>= {_MYELOMA_MUST_FLAG_HU:.0f} HU below own spine) "
            "reported",
            f"{caught} of {must}",
            "all",
            must > 0 and caught == must,
        ),
        Headline(
            "other levels reported infiltrated in the simulated runs",
            f"{others} of {others_n}",
            "0",
            others == 0,
        ),
    ]
    return body, heads


def lesions_section(ctx: ValidationContext) -> Section:
    """Detection, volume and involvement of lesions inserted into real vertebrae, false
    lesions on the untouched ones, and diffuse infiltration (see the module docstring)."""
    from spinewatch.validation.lesion_matrix import (
        check_untouched,
        insert_matrix,
        load_real_vertebrae,
    )

    keys = ("tptbox",) if ctx.quick else ("ts3mm", "dicom", "tptbox", "cta", "verse", "verse+disc")
    vertebrae = load_real_vertebrae(ctx.data_root, keys)
    cases = insert_matrix(
        vertebrae,
        _QUICK_INTO if ctx.quick else INSERT_INTO,
        per_background=_QUICK_PER_BACKGROUND if ctx.quick else _PER_BACKGROUND,
        min_contrast_hu=MIN_CONTRAST_HU,
    )
    checks = check_untouched(vertebrae, moved_to=() if ctx.quick else (75.0, 200.0))
    parts: list[str] = []
    heads: list[Headline] = []
    for body, hs in (_detection(cases), _measures(cases), _untouched(checks, cases)):
        parts.append(body)
        heads += hs
    body, hs = _infiltration(ctx)
    parts.append(body)
    heads += hs
    n_target = sum(_target(c) for c in cases)
    intro = __doc__.split("\n\n", 1)[1].strip() if __doc__ else ""
    summary = (
        f"{len(cases)} lesions in {len({c.vertebra for c in cases})} real vertebrae "
        f"({n_target} of target size and contrast); backgrounds "
        + ", ".join(sorted({c.background for c in cases}))
        + "."
    )
    return Section(
        "Lytic lesions in real bone", intro + "\n\n" + summary + "\n\n" + "\n\n".join(parts), heads
    )
