"""Segmenter adapters: produce a vertebra label map from a CT when none is given.

TotalSegmentator v2 (``pip install TotalSegmentator``; weights downloaded once) is run as its
command-line program::

    TotalSegmentator -i CT -o OUT.nii.gz --ml --task total --roi_subset vertebrae_C1 ... \\
        [--fast] --device cpu

``--ml`` writes one multilabel file in the "total" class numbering (31 = vertebrae_L1 ...);
``--roi_subset`` restricts the run to the vertebrae, which saves most of the CPU time.
:func:`read_totalsegmentator_output` reads either that file or a directory of per-structure
masks (``vertebrae_L1.nii.gz`` ...) into one label map in the TotalSegmentator convention.
"""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from spinewatch.core.conventions import (
    ConventionError,
    LabelConvention,
    label_for_level,
    level_from_totalsegmentator_name,
    totalsegmentator_name,
)
from spinewatch.core.errors import InputError
from spinewatch.core.levels import VertebralLevel
from spinewatch.imaging.io import ImageReadError, align_labels, load_labels
from spinewatch.imaging.label_reading import label_table
from spinewatch.imaging.volume import LabelVolume

__all__ = [
    "INSTALL_HINT",
    "TOTALSEGMENTATOR_EXECUTABLE",
    "SegmenterFailed",
    "SegmenterUnavailable",
    "label_table",
    "read_totalsegmentator_output",
    "run_totalsegmentator",
    "totalsegmentator_command",
    "vertebra_roi_subset",
]

log = logging.getLogger(__name__)

TOTALSEGMENTATOR_EXECUTABLE = "TotalSegmentator"
INSTALL_HINT = (
    "pip install TotalSegmentator and download its weights (totalseg_download_weights -t total) "
    "-- needs network once; see https://github.com/wasserth/TotalSegmentator"
)
_OUTPUT_NAME = "vertebrae_totalsegmentator.nii.gz"
_DEVICE = re.compile(r"^(cpu|gpu|mps|gpu:\d+)$")
_TS = LabelConvention.TOTALSEGMENTATOR


class SegmenterUnavailable(InputError):
    """The segmenter asked for is not installed (message says how to install it)."""


class SegmenterFailed(InputError):
    """The segmenter ran but did not produce a label map (message quotes its error output)."""


def vertebra_roi_subset() -> list[str]:
    """TotalSegmentator class names of every vertebra it labels, C1..S1, cranial first."""
    names = []
    for level in VertebralLevel:
        try:
            names.append(totalsegmentator_name(level))
        except ConventionError:
            continue  # T13, L6: not labelled by TotalSegmentator
    return names


def totalsegmentator_command(
    ct_path: Path | str,
    out_path: Path | str,
    *,
    fast: bool = False,
    device: str = "cpu",
) -> list[str]:
    """The TotalSegmentator v2 command line writing the vertebrae of ``ct_path`` to ``out_path``
    (one multilabel NIfTI file, "total" numbering). ``device``: cpu, gpu, gpu:N or mps.

    >>> totalsegmentator_command("ct.nii.gz", "seg.nii.gz", fast=True)[:8]
    ['TotalSegmentator', '-i', 'ct.nii.gz', '-o', 'seg.nii.gz', '--ml', '--task', 'total']
    """
    if not _DEVICE.match(device):
        raise InputError(f"segmenter device {device!r}; expected cpu, gpu, gpu:N or mps")
    cmd = [
        TOTALSEGMENTATOR_EXECUTABLE,
        "-i",
        str(ct_path),
        "-o",
        str(out_path),
        "--ml",
        "--task",
        "total",
    ]
    if fast:
        cmd.append("--fast")
    cmd += ["--device", device, "--roi_subset", *vertebra_roi_subset()]
    return cmd


def run_totalsegmentator(
    ct_path: Path | str,
    work_dir: Path | str,
    *,
    fast: bool = False,
    device: str = "cpu",
    timeout_s: float | None = None,
) -> Path:
    """Run TotalSegmentator on ``ct_path`` (NIfTI, DICOM directory or zip) and return the
    multilabel vertebra map it wrote in ``work_dir``.

    Raises :class:`SegmenterUnavailable` (with an install hint) when the program is not on
    PATH, :class:`SegmenterFailed` when it exits with an error or writes nothing.
    """
    exe = shutil.which(TOTALSEGMENTATOR_EXECUTABLE)
    if exe is None:
        raise SegmenterUnavailable(
            f"segmenter 'totalsegmentator' is not installed ({TOTALSEGMENTATOR_EXECUTABLE} not "
            f"found on PATH); {INSTALL_HINT}"
        )
    work = Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    out = work / _OUTPUT_NAME
    cmd = totalsegmentator_command(Path(ct_path), out, fast=fast, device=device)
    cmd[0] = exe
    log.info("running %s", " ".join(cmd[:8]))
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=timeout_s)
    except subprocess.TimeoutExpired as exc:
        raise SegmenterFailed(
            f"TotalSegmentator on {ct_path} did not finish within {timeout_s} s"
        ) from exc
    except OSError as exc:
        raise SegmenterUnavailable(f"cannot start {exe} ({exc}); {INSTALL_HINT}") from exc
    if done.returncode != 0:
        tail = "\n".join((done.stderr or done.stdout or "").strip().splitlines()[-5:])
        raise SegmenterFailed(
            f"TotalSegmentator on {ct_path} failed with exit status {done.returncode}: {tail}"
        )
    if not out.is_file():
        raise SegmenterFailed(f"TotalSegmentator on {ct_path} finished but wrote no {out}")
    return out


# --------------------------------------------------------------------------------------------
# reading its output


#: Class names of TotalSegmentator tasks that hold all vertebrae in one label.
_GROUP_NAMES = {"vertebrae": "total_mr", "vertebrae_body": "vertebrae_body"}


def _renumber(volume: LabelVolume, table: dict[int, str]) -> LabelVolume:
    """Map the file's own ids to the "total" numbering via its label table, if they differ."""
    mapping: dict[int, int] = {}
    for key, name in table.items():
        try:
            mapping[key] = label_for_level(level_from_totalsegmentator_name(name), _TS)
        except ConventionError:
            continue
    if not mapping or all(k == v for k, v in mapping.items()):
        return volume
    log.info("%s: label ids renumbered to the TotalSegmentator 'total' ids", volume.source)
    lut = np.zeros(int(volume.labels.max()) + 1, dtype=np.uint8)
    for key, value in mapping.items():
        if key < lut.size:
            lut[key] = value
    return LabelVolume(labels=lut[volume.labels], grid=volume.grid, source=volume.source)


def _mask_level(path: Path) -> VertebralLevel | None:
    name = path.name
    for suffix in (".nii.gz", ".nii"):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
            break
    else:
        return None
    try:
        return level_from_totalsegmentator_name(name)
    except ConventionError:
        return None


def _combine_masks(directory: Path) -> LabelVolume:
    masks = sorted(
        ((level, p) for p in directory.iterdir() if (level := _mask_level(p)) is not None),
        key=lambda item: item[0].rank,
    )
    if not masks:
        raise ImageReadError(
            f"{directory}: no vertebra masks found; expected TotalSegmentator output files "
            "such as vertebrae_L1.nii.gz"
        )
    combined: npt.NDArray[Any] | None = None
    grid = None
    for level, p in masks:
        mask = load_labels(p)
        if grid is None:
            grid = mask.grid
            combined = np.zeros(grid.shape, dtype=np.uint8)
        else:
            mask = align_labels(mask, grid)
        assert combined is not None
        values = np.unique(mask.labels)
        if values.size and int(values.max()) > 1:
            raise ImageReadError(
                f"{p}: a binary mask was expected (0/1), found values {values[:6].tolist()}"
            )
        on = mask.labels > 0
        overlap = int(np.count_nonzero(on & (combined > 0)))
        if overlap:
            log.warning("%s: %d voxels already belong to another vertebra; kept there", p, overlap)
            on &= combined == 0
        combined[on] = label_for_level(level, _TS)
    assert combined is not None and grid is not None
    return LabelVolume(labels=combined, grid=grid, source=str(directory))


def read_totalsegmentator_output(path: Path | str) -> LabelVolume:
    """TotalSegmentator's output as one label map in its v2 "total" numbering.

    ``path`` is a multilabel file (``--ml``; ids renumbered through the label table in its
    header when the file uses other ids, e.g. the ``vertebrae_mr`` task's 2 = vertebrae_L5) or a
    directory of per-structure masks, of which the ``vertebrae_*`` files are combined (organs
    and other structures ignored). A file whose table puts every vertebra in one label
    (``total_mr``'s "vertebrae", ``vertebrae_body``) cannot be expressed in the "total" ids:
    :class:`~spinewatch.core.conventions.ConventionError`.
    """
    path = Path(path)
    if path.is_dir():
        return _combine_masks(path)
    volume = load_labels(path)
    table = label_table(path)
    grouped = sorted(k for k, name in table.items() if name.strip() in _GROUP_NAMES)
    if grouped:
        raise ConventionError(
            f"{path}: TotalSegmentator output with label {grouped[0]} "
            f"{table[grouped[0]]!r}, which holds every vertebra in one label (task "
            f"{_GROUP_NAMES[table[grouped[0]].strip()]}); analyse it with --labels-convention "
            "auto and --lowest-level LEVEL, or run the 'total' task"
        )
    return _renumber(volume, table)
