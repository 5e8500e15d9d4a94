"""From a label map to the vertebrae to analyse: convention, plausibility, merging, naming.

:func:`prepare_labels` is what :func:`spinewatch.imaging.analysis.analyze` runs before
:func:`~spinewatch.imaging.anatomy.find_vertebrae`:

1. **Convention.** Given (``--labels-convention``), or detected (``auto``): every reading of the
   ids (:func:`spinewatch.core.conventions.candidate_readings`, which also uses the modality and
   the label table TotalSegmentator writes into its NIfTI header) is judged on the geometry
   (:func:`spinewatch.imaging.label_check.check_reading`); exactly one plausible reading is
   taken, otherwise the map is refused naming the labels, each reading and why it fails, and
   the option to pass. A SPINEPS/TPTBox subregion map is refused saying what it is.
2. **Endplates.** In a SPINEPS/TPTBox instance map each endplate label (200 + id) covers the
   endplates on both sides of its disc; every endplate voxel is given to the vertebra label it
   is nearest to (among the vertebrae *id* and the next one below), so the vertebra is whole
   again -- without it the heights of the real TPTBox MRI miss its endplate layers (see the
   tests). Discs are never vertebrae.
3. **Levels named by the user.** ``lowest_level`` (``--lowest-level L5``) names the most caudal
   vertebra and the ones above it are counted cranially from it; ``level`` (``--level T12``)
   names the one vertebra of the map. The vertebrae are the convention's vertebra labels
   (renamed) or, for one label holding several vertebrae (a binary mask, TotalSegmentator
   ``total_mr`` 19, ``vertebrae_body`` 1), its pieces (:func:`spinewatch.imaging.label_split.
   split_vertebrae`). Without a named level such a map is refused, saying how many
   vertebra-like pieces it holds.
4. **Plausibility.** Every label named a vertebra is checked for its level; a label that fails
   is not analysed and is listed in ``rejected_labels`` with the reason (never dropped
   silently). A map whose sizes contradict the numbering as a whole, or where nothing plausible
   remains, is refused.

The result (:class:`PreparedLabels`) holds the map to analyse (the input itself when nothing
had to change, else a new array: VerSe ids when the levels were named by the user) and the
facts the report records (:meth:`PreparedLabels.scan_fields`).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from spinewatch.core.acquisition import Modality
from spinewatch.core.conventions import (
    ConventionError,
    LabelConvention,
    Reading,
    candidate_readings,
    endplate_of,
    group_labels,
    ids_text,
    is_subregion_map,
    label_for_level,
    merge_equivalent,
    subregion_refusal,
    vertebra_labels,
)
from spinewatch.core.levels import ALL_LEVELS, VertebralLevel
from spinewatch.imaging.label_check import (
    LEVEL_NORMS,
    LabelGeometry,
    LabelVerdict,
    ReadingCheck,
    check_levels,
    check_reading,
    measure_labels,
)
from spinewatch.imaging.volume import LabelVolume

__all__ = [
    "LabelMapRefused",
    "PreparedLabels",
    "label_table",
    "prepare_labels",
    "read_label_names",
]

log = logging.getLogger(__name__)

Boxes = list[tuple[slice, ...] | None]

#: Consecutive pieces of a split mask further apart than this multiple of the median spacing
#: (or, with two pieces, of the nominal spacing of the named levels) leave room for a vertebra
#: the split did not find; the split is then refused rather than the levels above it being
#: named wrong. Engineering choice.
MAX_PIECE_GAP_FACTOR = 1.6

_ADVICE = (
    "pass --labels-convention (totalsegmentator, totalsegmentator_mr, "
    "totalsegmentator_vertebrae_mr, totalsegmentator_vertebrae_body, verse, tptbox or binary)"
)


class LabelMapRefused(ConventionError):
    """A label map whose vertebrae cannot be named with confidence (message says why and what
    to pass instead)."""


@dataclass(frozen=True)
class PreparedLabels:
    """The label map to analyse and how it was read.

    ``labels``: what :func:`~spinewatch.imaging.anatomy.find_vertebrae` analyses, in
    ``analysis_convention``; ``convention``: the input map's convention (recorded in the report
    as ``scan.labels_convention``); ``convention_source``: ``"user"`` or ``"detected"`` with
    ``evidence``; ``rejected``: labels not analysed and why; ``levels_named_by``: None, or how
    the user named the levels; ``notes``: other changes (endplates merged...); ``boxes``: the
    bounding boxes of ``labels`` when already known (None: not computed).
    """

    labels: LabelVolume
    convention: LabelConvention
    analysis_convention: LabelConvention
    convention_source: str
    evidence: str
    rejected: tuple[LabelVerdict, ...] = ()
    levels_named_by: str | None = None
    notes: tuple[str, ...] = ()
    boxes: Boxes | None = field(default=None, repr=False, compare=False)

    def scan_fields(self) -> dict[str, Any]:
        """The fields the report's ``scan`` record gains (see ``imaging.report``)."""
        return {
            "labels_convention_source": self.convention_source,
            "labels_convention_evidence": self.evidence,
            "levels_named_by": self.levels_named_by,
            "rejected_labels": [v.as_json() for v in self.rejected],
            "label_notes": list(self.notes),
        }


def read_label_names(labels: LabelVolume) -> dict[int, str]:
    """The id -> class-name table stored in the label map's NIfTI header (TotalSegmentator's
    ``--ml`` output has one), or {} when there is none or the source is not a file."""
    path = Path(labels.source) if labels.source else None
    if path is None or not path.is_file():
        return {}
    return label_table(path)


#: One entry of TotalSegmentator's XML label table (``--ml`` output's NIfTI header extension).
_LABEL_XML = re.compile(r'<Label Key="(\d+)"[^>]*>\s*<!\[CDATA\[([^\]]*)\]\]>')


def label_table(path: Path | str) -> dict[int, str]:
    """Label id -> class name from the XML label table TotalSegmentator stores in the header
    extension of its multilabel file (``<Label Key="31" ...><![CDATA[vertebrae_L1]]></Label>``;
    {} when absent or unreadable). Label-map detection uses it as evidence of the task."""
    import nibabel as nib

    try:
        header = nib.load(str(path)).header
    except Exception:  # already validated by load_labels; the table is optional
        return {}
    table: dict[int, str] = {}
    for ext in getattr(header, "extensions", []):
        content = ext.get_content()
        text = content.decode("utf-8", "replace") if isinstance(content, bytes) else str(content)
        for key, name in _LABEL_XML.findall(text):
            table[int(key)] = name.strip()
    return table


# -- detection ----------------------------------------------------------------------------------


def _measure(
    labels: LabelVolume, readings: list[Reading], ids: list[int], boxes: Boxes
) -> dict[int, LabelGeometry]:
    """Geometry of the labels the readings name (all labels when a reading puts every vertebra
    in one label: the others are then checked for being further vertebrae)."""
    wanted: set[int] = set()
    for r in readings:
        if r.possible:
            wanted |= set(r.vertebrae) | set(r.group)
            if r.group and not r.vertebrae:
                wanted |= set(ids)
    return measure_labels(labels, wanted, boxes=boxes)


def _refuse_text(source: str, ids: list[int], checks: list[ReadingCheck]) -> str:
    why = "; ".join(f"{c.reading.title}: {c.reason}" for c in checks)
    hint = _ADVICE
    if any(c.numbering_off for c in checks):
        hint = (
            "if the labels are vertebrae counted from elsewhere (SPINEPS numbers from the top of "
            "the image when C2 is not in view), name the lowest one with --lowest-level LEVEL; "
            "else " + _ADVICE
        )
    elif len(ids) > 1:
        hint = (
            f"{_ADVICE}; if all non-zero voxels are one vertebra, name it with --level LEVEL "
            "(several: --lowest-level LEVEL)"
        )
    return (
        f"{source}: cannot read labels {ids_text(ids)} as vertebrae -- readings considered: "
        f"{why}; {hint}"
    )


def _detect(
    labels: LabelVolume,
    ids: list[int],
    boxes: Boxes,
    modality: Modality | None,
    names: Mapping[int, str],
    named_by_user: bool,
) -> tuple[ReadingCheck, dict[int, LabelGeometry], str]:
    readings = list(candidate_readings(ids, modality=modality, names=names or None))
    geoms = _measure(labels, readings, ids, boxes)
    checks = [check_reading(r, geoms) for r in readings]
    plausible = [c for c in checks if c.plausible]
    kept = merge_equivalent(c.reading for c in plausible)
    plausible = [c for c in plausible if c.reading in kept]
    source = labels.source
    if len(plausible) == 1 and plausible[0].reading.convention is None:
        raise LabelMapRefused(f"{source}: {subregion_refusal(ids)}")
    plausible = [c for c in plausible if c.reading.convention is not None]
    if len(plausible) == 1:
        c = plausible[0]
        others = [
            x
            for x in checks
            if x is not c
            and x.reading.possible
            and x.reading.convention is not None
            and not (x.plausible and not x.reading.vertebrae)
        ]
        ruled = "; ".join(f"{x.reading.title} ({x.reason})" for x in others[:3])
        return (
            c,
            geoms,
            f"{c.reading.title}: {c.reason}"
            + (f"; ruled out on the geometry: {ruled}" if ruled else ""),
        )
    if named_by_user and not plausible:
        # the user names the levels: a reading whose only fault is its numbering still tells
        # which labels are vertebrae
        renamable = [c for c in checks if c.numbering_off and c.reading.possible]
        if len(renamable) == 1:
            c = renamable[0]
            return c, geoms, f"{c.reading.title} (its numbering replaced by the named level)"
        union = Reading(
            LabelConvention.BINARY.value, LabelConvention.BINARY, True, "", group=tuple(ids)
        )
        return (
            ReadingCheck(union, plausible=True, reason="all non-zero labels as one mask"),
            geoms,
            "no convention reads the labels as vertebrae: every non-zero voxel taken as "
            "vertebral tissue",
        )
    if not plausible:
        # the readings the geometry ruled out, and those the modality or the file's own label
        # table did (a bare id mismatch is not worth a line)
        shown = [c for c in checks if c.reading.ruled_by != "ids"] or checks
        raise LabelMapRefused(_refuse_text(source, ids, shown))
    listed = "; ".join(f"{c.reading.title} ({c.reading.summary()})" for c in plausible)
    raise LabelMapRefused(
        f"{source}: labels {ids_text(ids)} fit {len(plausible)} readings -- {listed}; "
        f"{_ADVICE}, or name the levels with --lowest-level/--level"
    )


def _given(
    conv: LabelConvention, ids: list[int], labels: LabelVolume, boxes: Boxes
) -> tuple[ReadingCheck, dict[int, LabelGeometry]]:
    endplates = {x: o for x in ids if (o := endplate_of(x, conv)) is not None}
    # a map given as binary: every non-zero voxel is vertebral tissue, whatever its id
    group = tuple(ids) if conv is LabelConvention.BINARY else group_labels(ids, conv)
    reading = Reading(conv.value, conv, True, "given", vertebra_labels(ids, conv), group, endplates)
    geoms = _measure(labels, [reading], ids, boxes)
    return check_reading(reading, geoms), geoms


# -- building the map to analyse ----------------------------------------------------------------


def _merge_endplates(
    arr: npt.NDArray[Any], endplates: Mapping[int, int], vertebrae: Mapping[int, VertebralLevel]
) -> tuple[npt.NDArray[Any], list[str]]:
    """Give each endplate voxel to the nearest vertebra among its owner and the next below."""
    if not endplates:
        return arr, []
    out = np.array(arr, copy=True)
    order = sorted(vertebrae, key=lambda k: vertebrae[k].rank)
    notes = []
    for ep, owner in sorted(endplates.items()):
        if owner not in vertebrae:
            out[out == ep] = 0
            notes.append(f"endplate label {ep}: vertebra {owner} absent, not used")
            continue
        i = order.index(owner)
        near = [owner, *order[i + 1 : i + 2]]
        sel = out == ep
        box = ndimage.find_objects(sel.astype(np.int8))[0]
        box = tuple(slice(max(b.start - 3, 0), b.stop + 3) for b in box)
        sub = out[box]
        target = np.isin(sub, near)
        if not target.any():
            out[sel] = 0
            notes.append(f"endplate label {ep}: touches no vertebra, not used")
            continue
        _, ind = ndimage.distance_transform_edt(~target, return_indices=True)
        nearest = sub[tuple(ind)]
        here = sub == ep
        sub[here] = nearest[here]
        notes.append(f"endplate label {ep} merged into vertebra label(s) {near}")
    return out, notes


def _levels_up(lowest: VertebralLevel, n: int, source: str) -> list[VertebralLevel]:
    """``n`` levels ending at ``lowest``, cranial first (variants only as the named level)."""
    seq = [lv for lv in ALL_LEVELS if (not lv.is_variant or lv is lowest) and lv <= lowest]
    if n > len(seq):
        raise LabelMapRefused(
            f"{source}: {n} vertebrae found but only {len(seq)} levels lie at or above "
            f"{lowest}; name a lower --lowest-level"
        )
    return seq[len(seq) - n :]


def _check_gaps(centroids_z: list[float], levels: list[VertebralLevel], source: str) -> None:
    """Refuse a split whose pieces leave room for a vertebra it did not find."""
    gaps = [a - b for a, b in pairwise(centroids_z)]
    if not gaps:
        return
    ref = float(np.median(gaps)) if len(gaps) >= 2 else LEVEL_NORMS[levels[0]].spacing_mm
    for i, g in enumerate(gaps):
        if g > MAX_PIECE_GAP_FACTOR * ref:
            raise LabelMapRefused(
                f"{source}: the vertebrae could not be told apart reliably -- pieces "
                f"{i + 1} and {i + 2} (from the top) are {g:.0f} mm apart where the others are "
                f"~{ref:.0f} mm: a vertebra may be hidden in one of them, and the levels above "
                "it would be named wrong; give a map with one label per vertebra"
            )


def _named_map(
    labels: LabelVolume,
    reading: Reading,
    geoms: Mapping[int, LabelGeometry],
    lowest: VertebralLevel,
    single: bool,
) -> tuple[npt.NDArray[np.uint8], dict[int, VertebralLevel], list[str]]:
    """A new map in VerSe ids with the user's levels; returns it, id -> level and notes."""
    source = labels.source
    arr = labels.labels
    notes: list[str] = []
    if reading.vertebrae:
        merged, notes = _merge_endplates(arr, reading.endplates, reading.vertebrae)
        units = sorted(reading.vertebrae, key=lambda k: -geoms[k].centroid_mm[2])
        masks = [merged == k for k in units]
        zs = [geoms[k].centroid_mm[2] for k in units]
        what = f"labels {', '.join(map(str, units))}"
    else:
        from spinewatch.imaging.label_split import split_vertebrae

        tissue = np.isin(arr, list(reading.group))
        pieces = split_vertebrae(tissue, labels.grid.affine)
        # one vertebra named by --level: all of the tissue is it (fragments included)
        masks = (
            [tissue]
            if single and pieces.count == 1
            else [pieces.labels == i for i in range(1, pieces.count + 1)]
        )
        zs = [float(c[2]) for c in pieces.centroids_mm]
        if pieces.fragments_ml > 0 and len(masks) > 1:
            notes.append(f"{pieces.fragments_ml:.1f} ml of fragments not given to a vertebra")
        which = ids_text(reading.group)
        what = f"label {which}" if pieces.count == 1 else f"{pieces.count} pieces of label {which}"
    if not masks:
        raise LabelMapRefused(f"{source}: no vertebral tissue to name")
    if single and len(masks) != 1:
        raise LabelMapRefused(
            f"{source}: --level names one vertebra, but the map holds {len(masks)} vertebra-like "
            f"pieces ({what}); name the lowest with --lowest-level instead"
        )
    levels = _levels_up(lowest, len(masks), source)
    if not reading.vertebrae:
        _check_gaps(zs, levels, source)
    out = np.zeros(arr.shape, dtype=np.uint8)
    mapping: dict[int, VertebralLevel] = {}
    for m, lv in zip(masks, levels, strict=True):
        vid = label_for_level(lv, LabelConvention.VERSE)
        out[m] = vid
        mapping[vid] = lv
    if single:
        notes.insert(0, f"{what} analysed as {lowest}")
    else:
        notes.insert(0, f"{what} named {levels[0]}..{levels[-1]}, counted up from {lowest}")
    return out, mapping, notes


def _without(arr: npt.NDArray[Any], drop: list[int]) -> npt.NDArray[Any]:
    if not drop:
        return arr
    out = np.array(arr, copy=True)
    out[np.isin(out, drop)] = 0
    return out


def _group_refusal(labels: LabelVolume, reading: Reading, conv: LabelConvention) -> LabelMapRefused:
    from spinewatch.imaging.label_split import split_vertebrae

    pieces = split_vertebrae(np.isin(labels.labels, list(reading.group)), labels.grid.affine)
    n = pieces.count
    vols = ", ".join(f"{v:.0f}" for v in pieces.volumes_ml[:8])
    which = ", ".join(map(str, reading.group))
    if n == 1:
        return LabelMapRefused(
            f"{labels.source}: label {which} ({conv.label}) is one vertebra-like piece "
            f"({vols} ml) whose level the ids do not give; name it with --level LEVEL"
        )
    return LabelMapRefused(
        f"{labels.source}: label {which} ({conv.label}) holds {n} vertebra-like pieces along "
        f"the column ({vols} ml, cranial first), all in one label, so their levels are not "
        "known; name the lowest one with --lowest-level LEVEL to split them"
    )


def prepare_labels(
    labels: LabelVolume,
    convention: LabelConvention | str = "auto",
    *,
    modality: Modality | str | None = None,
    lowest_level: VertebralLevel | str | None = None,
    level: VertebralLevel | str | None = None,
    boxes: Boxes | None = None,
    names: Mapping[int, str] | None = None,
) -> PreparedLabels:
    """Read ``labels`` under ``convention`` (``"auto"``: detected) into the map to analyse.

    ``modality``: the scan's modality when known (None: unknown); ``lowest_level`` / ``level``:
    levels named by the user (at most one of them); ``boxes``: the map's
    :func:`~spinewatch.imaging.anatomy.label_bounding_boxes`; ``names``: the file's id -> name
    table (read from the header of ``labels.source`` when None). Raises
    :class:`LabelMapRefused` (an InputError) with the reason. See the module docstring.
    """
    from spinewatch.imaging.anatomy import label_bounding_boxes, present_labels

    if lowest_level is not None and level is not None:
        raise LabelMapRefused("give either --lowest-level or --level, not both")
    named = level if level is not None else lowest_level
    named_level = None if named is None else VertebralLevel.parse(named)
    mod = None if modality is None else Modality.parse(modality)
    found = label_bounding_boxes(labels) if boxes is None else boxes
    ids = present_labels(found)
    source = labels.source
    if not ids:
        raise LabelMapRefused(f"{source}: the label map holds no label other than background 0")
    auto = isinstance(convention, str) and convention.strip().lower() == "auto"
    if auto:
        table = read_label_names(labels) if names is None else dict(names)
        check, geoms, evidence = _detect(labels, ids, found, mod, table, named_level is not None)
        conv_source = "detected"
    else:
        conv = LabelConvention.parse(convention)
        check, geoms = _given(conv, ids, labels, found)
        evidence = f"given: {conv.label}"
        conv_source = "user"
    reading = check.reading
    assert reading.convention is not None
    conv = reading.convention
    if not check.plausible and is_subregion_map(ids):
        raise LabelMapRefused(f"{source}: {subregion_refusal(ids)}")
    notes: list[str] = []
    if named_level is not None:
        return _prepare_named(
            labels, reading, geoms, named_level, level is not None, conv_source, evidence
        )
    if not reading.vertebrae:
        if reading.group:
            raise _group_refusal(labels, reading, conv)
        raise LabelMapRefused(
            f"{source}: no vertebra label in the {conv.label} convention among labels "
            f"{ids_text(ids)}"
        )
    if check.numbering_off:
        raise LabelMapRefused(_refuse_text(source, ids, [check]))
    rejected = [v for v in check.verdicts.values() if not v.ok]
    if len(rejected) == len(check.verdicts):
        raise LabelMapRefused(
            f"{source}: no label plausibly a vertebra under {conv.label}: "
            + "; ".join(f"{v.label} ({v.level}): {'; '.join(v.reasons)}" for v in rejected[:4])
        )
    arr, ep_notes = _merge_endplates(labels.labels, reading.endplates, reading.vertebrae)
    notes += ep_notes
    arr = _without(arr, [v.label for v in rejected])
    out = labels if arr is labels.labels else LabelVolume(arr, labels.grid, labels.source)
    for v in rejected:
        log.warning("%s: label %d not analysed: %s", source, v.label, "; ".join(v.reasons))
    return PreparedLabels(
        labels=out,
        convention=conv,
        analysis_convention=conv,
        convention_source=conv_source,
        evidence=evidence,
        rejected=tuple(rejected),
        notes=tuple(notes),
        boxes=found if out is labels else None,
    )


def _prepare_named(
    labels: LabelVolume,
    reading: Reading,
    geoms: Mapping[int, LabelGeometry],
    named_level: VertebralLevel,
    single: bool,
    conv_source: str,
    evidence: str,
) -> PreparedLabels:
    conv = reading.convention
    assert conv is not None
    arr, mapping, named_notes = _named_map(labels, reading, geoms, named_level, single)
    out = LabelVolume(arr, labels.grid, labels.source)
    new_geoms = measure_labels(out, list(mapping))
    verdicts, complaints, _ = check_levels(mapping, new_geoms)
    sized = [v for v in verdicts.values() if v.size_failed]
    if 2 * len(sized) > len(verdicts):
        raise LabelMapRefused(
            f"{labels.source}: the vertebrae do not fit the levels named from "
            f"{named_level}: " + "; ".join(f"{v.level}: {v.reasons[0]}" for v in sized[:3])
        )
    rejected = [v for v in verdicts.values() if not v.ok]
    if len(rejected) == len(verdicts):
        raise LabelMapRefused(
            f"{labels.source}: no piece is plausibly a vertebra at the named levels: "
            + "; ".join(f"{v.level}: {'; '.join(v.reasons)}" for v in rejected[:4])
        )
    out = LabelVolume(_without(arr, [v.label for v in rejected]), labels.grid, labels.source)
    flag = "--level" if single else "--lowest-level"
    return PreparedLabels(
        labels=out,
        convention=conv,
        analysis_convention=LabelConvention.VERSE,
        convention_source=conv_source,
        evidence=evidence,
        rejected=tuple(rejected),
        levels_named_by=f"user: {flag} {named_level}",
        notes=(*named_notes, *complaints),
    )
