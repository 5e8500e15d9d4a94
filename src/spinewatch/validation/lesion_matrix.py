"""The lesion validation matrix: synthetic lytic lesions inserted into the real vertebrae of
``../shared/data`` and measured by the detector, with their truth.

Shared by the validation document's lesion section (``make validate``) and the real-data tests
(``tests/imaging/test_lesions_real.py``), so both measure the same thing the same way. The
lesions themselves come from :mod:`spinewatch.validation.lesion_insertion`; this module only
chooses where, what and how many, runs :func:`~spinewatch.imaging.lesions.detect_lytic_lesions`
on each, and records truth against finding.

Real vertebrae (:data:`REAL_KEYS`, each ``key/level``):

* ``ts3mm``: the TotalSegmentator example, 3 mm voxels (T11-L2);
* ``dicom``: its DICOM series, 0.98 x 0.98 x 2 mm (T11, T12);
* ``tptbox``: the TPTBox CT crop, 1.5 mm (L2-L4);
* ``cta``: the CT angiography crop, 1.5 mm, arterial phase, its binary mask read as T12;
* ``verse``: the VerSe004 L2 crop, 1 mm, compartment classes 1-4 (the vertebra);
  ``verse+disc``: the same with all six classes -- the disc layers (5, 6) along both endplates
  inside the label, a known source of false lesions.

The spineFE-benchmark README calls the crop's classes cortical, trabecular, body, process and
*disk* components, and its image is zero outside classes 1-4 (the discs were cropped away).

Backgrounds (:func:`backgrounds`): the native crop, and its trabecular bone moved to an
osteoporotic (75 HU) and to a normal (200 HU) background with
:func:`~spinewatch.validation.lesion_insertion.with_trabecular_background`.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from spinewatch.validation.datasets import by_name
from spinewatch.validation.lesion_insertion import (
    InsertionError,
    LesionSpec,
    estimate_noise,
    insert_lesion,
    with_trabecular_background,
)

if TYPE_CHECKING:
    from spinewatch.imaging.anatomy import VertebraRegion

__all__ = [
    "DEFAULT_PLACES",
    "DEFAULT_SHAPES",
    "DEFAULT_SIZES_ML",
    "NORMAL_HU",
    "OSTEOPOROTIC_HU",
    "REAL_KEYS",
    "Case",
    "FalseLesionCheck",
    "RealVertebra",
    "backgrounds",
    "check_untouched",
    "insert_matrix",
    "load_real_vertebrae",
    "real_files",
]

#: The real scans the lesions go into (see the module docstring).
REAL_KEYS = ("ts3mm", "dicom", "tptbox", "cta", "verse", "verse+disc")
_DATASET = {
    "ts3mm": "ts-example-3mm",
    "dicom": "ts-example-dicom",
    "tptbox": "tptbox-ct",
    "cta": "cta",
    "verse": "verse004-l2-crop",
    "verse+disc": "verse004-l2-crop",
}
#: Sizes (ml), shapes and places, cycled through by the case counter.
DEFAULT_SIZES_ML = (1.0, 2.0, 4.0, 0.5, 3.0, 8.0, 1.5, 0.3, 6.0, 10.0, 2.5, 1.2)
DEFAULT_SHAPES = ("sphere", "ellipsoid", "lobulated")
DEFAULT_PLACES = ("central", "posterior_wall", "central", "pedicle_left", "pedicle_right")
#: The trabecular backgrounds a real vertebra is moved to (HU).
OSTEOPOROTIC_HU = 75.0
NORMAL_HU = 200.0
#: A lesion takes at most this share of the body.
_MAX_SHARE_OF_BODY = 0.25
#: The densities drawn: uniform in -20..70 HU, and at most ``min_contrast_hu`` below the bone.
_LESION_HU = (-20.0, 70.0)


@dataclass(frozen=True, eq=False)
class RealVertebra:
    """One real vertebra: ``name`` (``key/level``), the dataset it comes from, its region and
    its CT crop (``hu``, the shape of ``region.mask``)."""

    name: str
    dataset: str
    region: VertebraRegion
    hu: npt.NDArray[Any] = field(repr=False)

    @property
    def voxel_max_mm(self) -> float:
        return float(max(self.region.grid.spacing_mm))


def real_files(key: str) -> tuple[str, str]:
    """(CT path, label-map path) of ``key`` relative to the data root."""
    if key not in _DATASET:
        raise KeyError(f"{key!r}; expected one of {', '.join(REAL_KEYS)}")
    d = by_name(_DATASET[key])
    if d.ct is None or d.labels is None:
        raise ValueError(f"{key}: dataset {d.name} needs both a CT and a label map")
    return d.ct, d.labels


def _load(data_root: Path, key: str) -> list[RealVertebra]:
    from spinewatch.imaging.anatomy import crop_hu, find_vertebrae
    from spinewatch.imaging.io import load_study
    from spinewatch.imaging.volume import LabelVolume

    ct_rel, labels_rel = real_files(key)
    ct, labels = load_study(data_root / ct_rel, data_root / labels_rel)
    if ct is None or not hasattr(ct, "hu"):
        raise ValueError(f"{key}: {ct_rel} is not a CT")
    conv = "totalsegmentator"
    if key == "tptbox":
        conv = "verse"
    elif key == "cta":
        # a binary mask of T12 (the file name documents the level): TotalSegmentator's T12 id
        t12 = (np.asarray(labels.labels) > 0).astype(np.uint8) * 32
        labels = LabelVolume(t12, labels.grid, labels.source)
    elif key in ("verse", "verse+disc"):
        classes = np.asarray(labels.labels)
        keep = classes > 0 if key == "verse+disc" else (classes >= 1) & (classes <= 4)
        labels = LabelVolume(keep.astype(np.uint8) * 21, labels.grid, labels.source)  # VerSe L2
        conv = "verse"
    return [
        RealVertebra(f"{key}/{r.level}", _DATASET[key], r, crop_hu(ct.hu, r))
        for r in find_vertebrae(labels, conv)
    ]


def load_real_vertebrae(
    data_root: Path, keys: Sequence[str] = REAL_KEYS
) -> dict[str, RealVertebra]:
    """Every vertebra of the real scans ``keys`` (see :data:`REAL_KEYS`), by ``key/level``."""
    out: dict[str, RealVertebra] = {}
    for key in keys:
        for v in _load(data_root, key):
            out[v.name] = v
    return out


def _bone_hu(hu: npt.NDArray[Any], region: VertebraRegion) -> float | None:
    from spinewatch.imaging.lesions import detect_lytic_lesions

    return detect_lytic_lesions(hu, region, density=None).background_hu


def backgrounds(
    region: VertebraRegion, hu: npt.NDArray[Any], bone_hu: float
) -> Iterator[tuple[str, npt.NDArray[Any]]]:
    """The native crop, and its trabecular bone moved to osteoporotic (when the bone is denser
    than 95 HU) and to normal density (when it is below 150 HU)."""
    yield "native", hu
    if bone_hu > 95.0:
        yield "osteoporotic", with_trabecular_background(hu, region, OSTEOPOROTIC_HU)[0]
    if bone_hu < 150.0:
        yield "normal", with_trabecular_background(hu, region, NORMAL_HU)[0]


@dataclass(frozen=True)
class Case:
    """One inserted lesion and what the detector made of it.

    Truth: ``truth_body_ml`` (the lesion volume in the body), involvement of the posterior wall
    and each pedicle. Finding: ``found`` (a lesion reported that covers at least a fifth of the
    truth's voxels -- those at least half lesion), its volume and flags; ``seconds``: the
    detector's time on the vertebra.
    """

    vertebra: str
    background: str
    seed: int
    bone_hu: float
    voxel_max_mm: float
    spec: LesionSpec
    truth_body_ml: float
    truth_wall: bool
    truth_left: bool
    truth_right: bool
    found: bool
    volume_ml: float
    wall: bool
    left: bool
    right: bool
    seconds: float

    @property
    def contrast_hu(self) -> float:
        """How far the lesion lies below its bone (HU)."""
        return self.bone_hu - self.spec.hu

    @property
    def sized(self) -> bool:
        """Big enough for the issue's targets: >= 1 ml at voxels up to 2 mm, >= 2 ml at 3 mm."""
        need = 1.0 if self.voxel_max_mm <= 2.0 else 2.0
        return self.truth_body_ml >= need

    @property
    def volume_error(self) -> float:
        """Measured / true body volume - 1."""
        return self.volume_ml / self.truth_body_ml - 1.0

    def __str__(self) -> str:
        return (
            f"{self.vertebra} {self.background} (seed {self.seed}) bone {self.bone_hu:.0f} HU: "
            f"{self.spec.volume_ml} ml {self.spec.shape} "
            f"{self.spec.place} {self.spec.hu:.0f} HU, truth {self.truth_body_ml:.2f} ml "
            f"wall={self.truth_wall} L={self.truth_left} R={self.truth_right} -> found="
            f"{self.found} {self.volume_ml:.2f} ml wall={self.wall} L={self.left} R={self.right}"
        )


def _measure(
    v: RealVertebra,
    image: npt.NDArray[Any],
    background: str,
    bone: float,
    spec: LesionSpec,
    seed: int,
    noise: Any,
) -> Case:
    from spinewatch.imaging.density import trabecular_density
    from spinewatch.imaging.lesions import detect_lytic_lesions

    region = v.region
    les = insert_lesion(image, region, spec, seed=seed, noise=noise)
    t0 = time.perf_counter()
    f = detect_lytic_lesions(les.hu, region, density=trabecular_density(les.hu, region))
    seconds = time.perf_counter() - t0
    truth_mask = (les.fraction >= 0.5) & np.asarray(region.body, dtype=np.bool_)
    overlap = np.count_nonzero(f.lesion_mask & truth_mask)
    return Case(
        vertebra=v.name,
        background=background,
        seed=seed,
        bone_hu=bone,
        voxel_max_mm=v.voxel_max_mm,
        spec=spec,
        truth_body_ml=les.body_volume_ml,
        truth_wall=bool(les.posterior_wall_involved),
        truth_left=bool(les.pedicle_left_involved),
        truth_right=bool(les.pedicle_right_involved),
        found=bool(f.n_lesions > 0 and overlap >= 0.2 * max(1, int(truth_mask.sum()))),
        volume_ml=float(f.volume_ml),
        wall=bool(f.posterior_wall_involved),
        left=bool(f.pedicle_left_involved),
        right=bool(f.pedicle_right_involved),
        seconds=seconds,
    )


def insert_matrix(
    vertebrae: Mapping[str, RealVertebra],
    names: Sequence[str],
    *,
    per_background: int,
    min_contrast_hu: float,
    sizes_ml: Sequence[float] = DEFAULT_SIZES_ML,
    shapes: Sequence[str] = DEFAULT_SHAPES,
    places: Sequence[str] = DEFAULT_PLACES,
    first_seed: int = 1,
) -> list[Case]:
    """Insert ``per_background`` lesions into each background of each vertebra ``names``, one
    at a time, and measure each (deterministic).

    Case ``k`` (counting from ``first_seed`` over every attempt) has size ``sizes_ml[k % n]``,
    shape ``shapes[k % 3]``, place ``places[k % 5]`` and a density drawn uniformly from -20 HU
    to ``min(70, bone - min_contrast_hu)`` with the seed ``k``: a lytic lesion lies markedly below
    its own bone (at 60 HU in 75 HU bone there is nothing to find). A size above a quarter of
    the body, or a placement the toolkit cannot make, is skipped (the next ``k`` is tried).
    """
    out: list[Case] = []
    k = first_seed - 1
    for name in names:
        v = vertebrae[name]
        region = v.region
        noise = estimate_noise(v.hu, region.mask, region.grid.spacing_mm)
        native_bone = _bone_hu(v.hu, region)
        if native_bone is None:
            raise ValueError(f"{name}: the body is too small for a trabecular background")
        for background, image in backgrounds(region, v.hu, native_bone):
            bone = _bone_hu(image, region)
            if bone is None:
                raise ValueError(f"{name} {background}: no trabecular background")
            placed = 0
            while placed < per_background:
                k += 1
                rng = np.random.default_rng(k)
                size = sizes_ml[k % len(sizes_ml)]
                if size > _MAX_SHARE_OF_BODY * region.body_volume_ml:
                    continue
                top = min(_LESION_HU[1], bone - min_contrast_hu)
                if top < _LESION_HU[0]:
                    break  # bone at soft-tissue density: no lytic lesion to draw
                spec = LesionSpec(
                    volume_ml=size,
                    hu=float(rng.uniform(_LESION_HU[0], top)),
                    shape=shapes[k % len(shapes)],
                    place=places[k % len(places)],
                )
                try:
                    case = _measure(v, image, background, bone, spec, k, noise)
                except InsertionError:
                    continue
                placed += 1
                out.append(case)
    return out


@dataclass(frozen=True)
class FalseLesionCheck:
    """The detector on one untouched real vertebra (native or with a moved background): the
    largest lesion it reported (ml), how many, involvement flags, and its time (s)."""

    vertebra: str
    background: str
    largest_ml: float
    n_lesions: int
    posterior_wall: bool
    pedicle: bool
    seconds: float


def check_untouched(
    vertebrae: Mapping[str, RealVertebra],
    names: Sequence[str] | None = None,
    *,
    moved_to: Sequence[float] = (OSTEOPOROTIC_HU, NORMAL_HU),
) -> list[FalseLesionCheck]:
    """The detector on every untouched vertebra ``names`` (all when None), native and with its
    trabecular background moved to each of ``moved_to`` (HU)."""
    from spinewatch.imaging.density import trabecular_density
    from spinewatch.imaging.lesions import detect_lytic_lesions

    out = []
    for name in vertebrae if names is None else names:
        v = vertebrae[name]
        images: list[tuple[str, npt.NDArray[Any]]] = [("native", v.hu)]
        if _bone_hu(v.hu, v.region) is not None:
            for target in moved_to:
                moved, _ = with_trabecular_background(v.hu, v.region, target)
                images.append((f"{target:.0f} HU", moved))
        for background, image in images:
            t0 = time.perf_counter()
            f = detect_lytic_lesions(image, v.region, density=trabecular_density(image, v.region))
            out.append(
                FalseLesionCheck(
                    vertebra=name,
                    background=background,
                    largest_ml=float(f.largest_ml),
                    n_lesions=int(f.n_lesions),
                    posterior_wall=bool(f.posterior_wall_involved),
                    pedicle=bool(f.pedicle_left_involved or f.pedicle_right_involved),
                    seconds=time.perf_counter() - t0,
                )
            )
    return out
