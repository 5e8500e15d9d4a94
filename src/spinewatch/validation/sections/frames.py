"""Each vertebra's frame from the anatomy: real masks with corrupted headers and cut to bodies.

A vertebra's superior axis follows the column's curve through its neighbours and is refined to
its endplates; its anterior points from the posterior elements to the body or, for body-only
labels, along the body's symmetry line signed by its anterior wall and the column's curvature
(`imaging/anatomy.py`, `imaging/column.py`). The header is only checked against it: more than
60 degrees apart raises `header_orientation_disagrees`.

- **Against the expert**: VerSe004's column tangent against the curve through the expert body
  centroids, and its anterior against the direction from the posterior elements to the expert
  body centroid.
- **Corrupted headers** (`spinewatch.validation.frame_perturbation`): VerSe004's expert mask
  under a flipped, rotated or axis-swapped header -- the same voxels, so the frame must be the
  same in the voxel sense (angles below are to the true header's frame carried through the
  transform) and every vertebra flagged. A left-right mirror cannot be seen from the vertebrae.
- **Body-only masks**: VerSe004 cut in front of its canal (all levels; the lumbar ones alone,
  like a body-only lumbar segmentation) and the TPTBox CT's subregions 49/50 (body) carrying the
  vertebra ids, as given and under a turned header, against the full mask's frame; the flag
  must be raised exactly when the header was turned.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from spinewatch.validation.markdown import table
from spinewatch.validation.section import Headline, Section, ValidationContext

__all__ = ["frames_section"]

VERSE = "ct/verse004/sub-verse004_seg-vert_msk.nii.gz"
VERSE_CTD = "ct/verse004/sub-verse004_seg-subreg_ctd.json"
TPT_VERT = "ct/tptbox-ct/sub-ct_seg-vert_label-22_msk.nii.gz"
TPT_SUBREG = "ct/tptbox-ct/sub-ct_seg-subreg_label-22_msk.nii.gz"
_DISAGREES = "header_orientation_disagrees"
#: Targets (the unit tests' limits, tests/imaging/test_frames.py).
HEADER_TOL_DEG = 3.0
BODY_ANTERIOR_TOL_DEG = 10.0
BODY_SUPERIOR_TOL_DEG = 5.0


def _verse(ctx: ValidationContext) -> tuple[Any, list[Any]]:
    from spinewatch.imaging.anatomy import find_vertebrae
    from spinewatch.imaging.io import load_labels

    key = ("verse-regions",)
    if key not in ctx.cache:
        labels = load_labels(ctx.data_root / VERSE)
        ctx.cache[key] = (labels, find_vertebrae(labels, "verse"))
    out: tuple[Any, list[Any]] = ctx.cache[key]
    return out


def _expert(ctx: ValidationContext) -> tuple[str, list[Headline]]:
    from spinewatch.imaging.column import fit_column_curve
    from spinewatch.validation.frame_perturbation import angle_deg

    labels, regions = _verse(ctx)
    ctd = json.loads((ctx.data_root / VERSE_CTD).read_text())
    expert = np.array([labels.grid.to_world([e["X"], e["Y"], e["Z"]]) for e in ctd[1:]])
    expert_curve = fit_column_curve(expert)
    ours = fit_column_curve([r.frame.origin_mm for r in regions])
    if expert_curve is None or ours is None:
        raise ValueError("VerSe004: fewer than two vertebrae")
    rows = []
    tangent, anterior = [], []
    for i, r in enumerate(regions):
        t = angle_deg(ours.superior[i], expert_curve.superior[i])
        final = angle_deg(r.frame.superior, expert_curve.superior[i])
        toward = expert[i] - r.grid.to_world(np.argwhere(r.posterior).mean(axis=0))
        toward -= (toward @ r.frame.superior) * r.frame.superior
        a = angle_deg(r.frame.anterior, toward)
        tangent.append(t)
        anterior.append(a)
        rows.append([str(r.level.value), t, final, a, r.anterior_source])
    body = "#### VerSe004 frames against the expert body centroids\n\n" + table(
        [
            "level",
            "column tangent vs expert curve deg",
            "endplate-refined superior vs expert curve deg",
            "anterior vs posterior elements -> expert centroid deg",
            "anterior from",
        ],
        rows,
    )
    return body, [
        Headline(
            "VerSe004 column tangent vs the expert centroids' curve, worst",
            f"{max(tangent):.1f} deg",
            "< 4 deg",
            max(tangent) < 4.0,
        ),
        Headline(
            "VerSe004 anterior vs the expert body centroid direction, worst",
            f"{max(anterior):.1f} deg",
            "< 5 deg",
            max(anterior) < 5.0,
        ),
    ]


def _corruptions(labels: Any) -> list[tuple[str, npt.NDArray[np.float64]]]:
    from spinewatch.validation.frame_perturbation import (
        FLIP_X,
        FLIP_Y,
        FLIP_Z,
        rotation,
        voxel_axis_swap,
    )

    return [
        ("flip y (anterior <-> posterior)", FLIP_Y),
        ("flip z (superior <-> inferior)", FLIP_Z),
        ("axial rotation 90 deg", rotation(2, 90.0)),
        ("sagittal rotation 90 deg", rotation(0, 90.0)),
        ("swap voxel axes P and I", voxel_axis_swap(labels.grid, (0, 1))),
        ("mirror x (left <-> right)", FLIP_X),
    ]


def _worst(angles: Sequence[Any]) -> tuple[float, float, float]:
    return (
        max(a.anterior_deg for a in angles),
        max(a.superior_deg for a in angles),
        max(float(np.degrees(np.arcsin(min(a.left_right, 1.0)))) for a in angles),
    )


def _headers(ctx: ValidationContext) -> tuple[str, list[Headline]]:
    from spinewatch.imaging.anatomy import find_vertebrae, orientation_note
    from spinewatch.validation.frame_perturbation import frame_angles_deg, reheader

    labels, regions = _verse(ctx)
    corruptions = _corruptions(labels)
    if ctx.quick:
        corruptions = corruptions[:2]
    rows: list[list[object]] = []
    worst_deg, flagged, expected_flags = 0.0, 0, 0
    for name, world in corruptions:
        got = find_vertebrae(reheader(labels, world), "verse")
        angles = frame_angles_deg(got, regions, world)
        ant, sup, _ = _worst(angles)
        n_flag = sum(_DISAGREES in g.quality_flags for g in got)
        mirror = name.startswith("mirror")
        if not mirror:
            worst_deg = max(worst_deg, ant, sup)
            flagged += n_flag
            expected_flags += len(got)
        rows.append(
            [
                name,
                ant,
                sup,
                max(a.origin_mm for a in angles),
                f"{n_flag} of {len(got)}",
                "note" if orientation_note(got) else "-",
            ]
        )
    body = (
        "#### VerSe004 under corrupted headers\n\n"
        "Angles to the true header's frame carried through the corruption (0 = the same frame "
        "in the voxel sense). The mirror is shown for completeness: it leaves anterior and "
        "superior in place, so it cannot be flagged (the patient's right is then reported as "
        "left).\n\n"
        + table(
            [
                "header",
                "anterior deg",
                "superior deg",
                "centroid shift mm",
                "flagged header_orientation_disagrees",
                "scan note",
            ],
            rows,
            digits=2,
        )
    )
    return body, [
        Headline(
            "VerSe004 corrupted headers: frame vs the true one, worst",
            f"{worst_deg:.2f} deg",
            f"<= {HEADER_TOL_DEG:g} deg",
            worst_deg <= HEADER_TOL_DEG,
        ),
        Headline(
            "VerSe004 corrupted headers: vertebrae flagged",
            f"{flagged} of {expected_flags}",
            "all",
            flagged == expected_flags,
        ),
    ]


def _body_cases(ctx: ValidationContext) -> list[tuple[str, Any, list[Any], Any]]:
    """(name, body-only labels, full-mask regions, world transform) per body-only case."""
    from spinewatch.imaging.anatomy import find_vertebrae
    from spinewatch.imaging.io import load_labels
    from spinewatch.imaging.volume import LabelVolume
    from spinewatch.validation.frame_perturbation import FLIP_Y, cut_to_bodies, rotation

    labels, regions = _verse(ctx)
    bodies = cut_to_bodies(labels, regions)
    lumbar = [r for r in regions if r.level.region.value == "lumbar"]
    full = load_labels(ctx.data_root / TPT_VERT)
    sub = load_labels(ctx.data_root / TPT_SUBREG)
    tpt = LabelVolume(
        np.where(np.isin(sub.labels, [49, 50]), full.labels, 0), full.grid, "TPTBox 49/50"
    )
    tpt_regions = find_vertebrae(full, "verse")
    turn = rotation(2, 90.0)
    cases = [
        ("VerSe004 bodies, header as given", bodies, regions, np.eye(4)),
        ("VerSe004 bodies, header turned 90 deg", bodies, regions, turn),
        ("VerSe004 bodies, header flipped y", bodies, regions, FLIP_Y),
        (
            "VerSe004 lumbar bodies alone, turned 90 deg",
            cut_to_bodies(labels, lumbar),
            lumbar,
            turn,
        ),
        ("TPTBox subregions 49/50, header as given", tpt, tpt_regions, np.eye(4)),
        ("TPTBox subregions 49/50, header turned 90 deg", tpt, tpt_regions, turn),
    ]
    return cases[:2] if ctx.quick else cases


def _bodies(ctx: ValidationContext) -> tuple[str, list[Headline]]:
    from spinewatch.imaging.anatomy import find_vertebrae
    from spinewatch.imaging.heights import body_heights
    from spinewatch.validation.frame_perturbation import frame_angles_deg, reheader

    rows: list[list[object]] = []
    worst_ant = worst_sup = 0.0
    flags_right = flags_total = 0
    height_diff = 0.0
    for name, bodies, ref, world in _body_cases(ctx):
        got = find_vertebrae(reheader(bodies, world), "verse")
        angles = frame_angles_deg(got, ref, world)
        ant, sup, lr = _worst(angles)
        worst_ant, worst_sup = max(worst_ant, ant), max(worst_sup, sup)
        turned = not np.allclose(world, np.eye(4))
        whole = [g for g in got if not g.truncated]
        right = sum((_DISAGREES in g.quality_flags) is turned for g in whole)
        flags_right += right
        flags_total += len(whole)
        sources = sorted({g.anterior_source for g in got})
        diff: float | None = None
        if not turned:
            by_level = {r.level: r for r in ref}
            diffs = []
            for g in got:
                hg, hr = body_heights(g), body_heights(by_level[g.level])
                if hg is not None and hr is not None:
                    diffs += [
                        abs(hg.anterior_mm - hr.anterior_mm),
                        abs(hg.middle_mm - hr.middle_mm),
                        abs(hg.posterior_mm - hr.posterior_mm),
                    ]
            diff = max(diffs) if diffs else None
            height_diff = max(height_diff, diff or 0.0)
        rows.append(
            [name, len(got), ant, sup, lr, f"{right} of {len(whole)}", ", ".join(sources), diff]
        )
    body = (
        "#### Body-only masks against the full mask's frame\n\n"
        "The header flag is judged on whole vertebrae: a piece cut by the scan's edge has too "
        "weak a frame to raise it, by design (the TPTBox crop's L2 and L4).\n\n"
    ) + table(
        [
            "labels",
            "vertebrae",
            "anterior deg",
            "superior deg",
            "left-right twist of anterior deg",
            "header flag right",
            "anterior from",
            "heights vs full mask, worst mm",
        ],
        rows,
        digits=2,
    )
    return body, [
        Headline(
            "body-only masks: anterior vs the full mask's, worst",
            f"{worst_ant:.1f} deg",
            f"< {BODY_ANTERIOR_TOL_DEG:g} deg",
            worst_ant < BODY_ANTERIOR_TOL_DEG,
        ),
        Headline(
            "body-only masks: superior vs the full mask's, worst",
            f"{worst_sup:.1f} deg",
            f"< {BODY_SUPERIOR_TOL_DEG:g} deg",
            worst_sup < BODY_SUPERIOR_TOL_DEG,
        ),
        Headline(
            "body-only masks: header flag raised exactly when turned (whole vertebrae)",
            f"{flags_right} of {flags_total}",
            "all",
            flags_right == flags_total,
        ),
        Headline(
            "body-only masks as given: heights vs the full mask, worst",
            f"{height_diff:.1f} mm",
            "<= 2 mm",
            height_diff <= 2.0,
        ),
    ]


def frames_section(ctx: ValidationContext) -> Section:
    """The expert comparison, corrupted headers and body-only masks."""
    intro = __doc__.split("\n\n", 1)[1].strip() if __doc__ else ""
    parts, headlines = [intro], []
    for build in (_expert, _headers, _bodies):
        md, h = build(ctx)
        parts.append(md)
        headlines += h
    return Section("Frames from the anatomy", "\n\n".join(parts), headlines)
