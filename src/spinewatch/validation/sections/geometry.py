"""Geometry: body centroids against an expert's, heights and Genant against phantom truth.

- **VerSe004**: the expert-annotated vertebral body centroids (the VerSe sample's JSON, voxel
  coordinates of the mask, mapped through its oblique PIR affine) against SpineWatch's body
  centroids from the expert vertebra mask.
- **Phantoms**: anterior/middle/posterior heights, Genant grade and type of a deformed L1 between
  intact T12 and L2, over five grid geometries (RAS 1 mm, LPS anisotropic, PIR 1.25 mm, 12 degrees
  tilt, -15 degrees tilt in LPS) and ten deformities (none; wedge, biconcave, crush at 22, 30 and
  45 % height loss).
"""

from __future__ import annotations

import json

import numpy as np

from spinewatch.imaging.report import VertebraReport
from spinewatch.validation.markdown import table
from spinewatch.validation.runs import as_written, deformity_of, grade_of
from spinewatch.validation.section import Headline, Section, ValidationContext

__all__ = ["GEOMETRIES", "geometry_section"]

#: The phantom grid geometries of the height matrix (the same as the unit tests').
GEOMETRIES: dict[str, dict[str, object]] = {
    "RAS 1 mm": {"spacing_mm": (1.0, 1.0, 1.0)},
    "LPS 2 x 0.8 x 1 mm": {"orientation": "LPS", "spacing_mm": (2.0, 0.8, 1.0)},
    "PIR 1.25 x 1 x 0.8 mm": {"orientation": "PIR", "spacing_mm": (1.25, 1.0, 0.8)},
    "tilt 12 deg": {"tilt_deg": 12.0, "spacing_mm": (1.0, 1.0, 1.0)},
    "tilt -15 deg LPS": {"tilt_deg": -15.0, "orientation": "LPS", "spacing_mm": (0.8, 1.2, 1.0)},
}
_DEFORMITIES = [("none", 0.0)] + [
    (kind, loss) for kind in ("wedge", "biconcave", "crush") for loss in (22.0, 30.0, 45.0)
]
_HEIGHTS = ("height_anterior_mm", "height_middle_mm", "height_posterior_mm")


def _heights(v: VertebraReport) -> tuple[float | None, float | None, float | None]:
    """The measured heights of ``v`` in the order of :data:`_HEIGHTS` (mm)."""
    return (v.heights.anterior_mm, v.heights.middle_mm, v.heights.posterior_mm)


def _verse_centroids(ctx: ValidationContext) -> tuple[str, list[Headline]]:
    from spinewatch.core.conventions import level_for_label
    from spinewatch.imaging.anatomy import find_vertebrae
    from spinewatch.imaging.io import load_labels

    mask = ctx.data_root / "ct/verse004/sub-verse004_seg-vert_msk.nii.gz"
    ctd = json.loads((ctx.data_root / "ct/verse004/sub-verse004_seg-subreg_ctd.json").read_text())
    labels = load_labels(mask)
    regions = {r.label: r for r in find_vertebrae(labels, "verse")}
    rows, errors = [], []
    for entry in ctd[1:]:
        expert = labels.grid.to_world([entry["X"], entry["Y"], entry["Z"]])
        err = float(np.linalg.norm(regions[entry["label"]].frame.origin_mm - expert))
        errors.append(err)
        rows.append([str(level_for_label(entry["label"], "verse")), err])
    median, worst = float(np.median(errors)), float(max(errors))
    body = "#### VerSe004 body centroids (expert vs SpineWatch)\n\n" + table(
        ["level", "error mm"], rows, digits=2
    )
    return body, [
        Headline("VerSe004 body centroid error, median", f"{median:.2f} mm", "< 2 mm", median < 2),
        Headline(
            "VerSe004 body centroid error, worst level", f"{worst:.2f} mm", "< 3 mm", worst < 3
        ),
    ]


def _phantom_heights(ctx: ValidationContext) -> tuple[str, list[Headline]]:
    from spinewatch.imaging.analysis import analyze
    from spinewatch.imaging.phantom import PhantomSpec, make_spine_phantom

    geometries = dict(list(GEOMETRIES.items())[:2]) if ctx.quick else GEOMETRIES
    deformities = _DEFORMITIES[:4] if ctx.quick else _DEFORMITIES
    rows: list[list[object]] = []
    worst_mm, exact, total = 0.0, 0, 0
    for gname, geometry in geometries.items():
        for kind, loss in deformities:
            spec = PhantomSpec(
                levels=("T12", "L1", "L2"),
                deformities={"L1": (kind, loss)},
                **geometry,  # type: ignore[arg-type]
            )
            ph = make_spine_phantom(spec)
            report = as_written(analyze(None, ph.labels, convention="totalsegmentator"))
            got = {str(v.level): v for v in report.vertebrae}
            err = max(
                abs(float(measured) - float(getattr(t, key)))  # type: ignore[arg-type]
                for name, t in ph.truth.items()
                for key, measured in zip(_HEIGHTS, _heights(got[name]), strict=True)
            )
            worst_mm = max(worst_mm, err)
            t = ph.truth["L1"]
            ok = (grade_of(got["L1"]), deformity_of(got["L1"])) == (
                t.genant_grade,
                t.deformity,
            ) and all(grade_of(got[n]) == 0 for n in ("T12", "L2"))
            exact += ok
            total += 1
            rows.append(
                [
                    gname,
                    f"{kind} {loss:g} %",
                    err,
                    f"{t.genant_grade} {t.deformity}",
                    f"{grade_of(got['L1'])} {deformity_of(got['L1'])}",
                    "yes" if ok else "NO",
                ]
            )
    body = "#### Phantom heights and Genant (L1 deformed between intact T12 and L2)\n\n" + table(
        ["grid", "L1 drawn", "worst height error mm", "truth", "measured", "exact"], rows, 2
    )
    return body, [
        Headline("phantom heights, worst error", f"{worst_mm:.2f} mm", "<= 1 mm", worst_mm <= 1.0),
        Headline(
            "phantom Genant grade and type exact", f"{exact} / {total}", "all", exact == total
        ),
    ]


def geometry_section(ctx: ValidationContext) -> Section:
    """VerSe004 centroids and the phantom height matrix."""
    verse_md, verse_h = _verse_centroids(ctx)
    ph_md, ph_h = _phantom_heights(ctx)
    intro = __doc__.split("\n\n", 1)[1].strip() if __doc__ else ""
    return Section(
        "Geometry and Genant on phantoms", "\n\n".join([intro, verse_md, ph_md]), verse_h + ph_h
    )
