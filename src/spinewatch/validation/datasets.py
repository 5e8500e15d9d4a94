"""The real scans of ``../shared/data`` that the validation runs on, and how to read each.

Each :class:`RealDataset` names its files relative to the data root, the label convention to read
them with (``"auto"``: the analysis detects it), the modality, and what is known about it (the
source's README): which reading of its label map is right (or that it must be refused), which
levels it holds, which vertebrae are believed healthy or fractured, and -- for a map that ``auto``
rightly refuses -- the option a user who knows the levels would give (``--level``,
``--lowest-level``). The files are never copied into the repository.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["DATASETS", "IMAGES_WITHOUT_LABELS", "RealDataset", "by_name", "default_data_root"]


@dataclass(frozen=True)
class RealDataset:
    """One real scan (or label map alone) in the shared data folder.

    ``ct`` and ``labels`` are paths relative to the data root (``ct`` None: label map alone);
    ``convention`` is passed to the analysis (``"auto"``: detected); ``modality`` is the known
    truth ("CT" or "MR"); ``note`` says what the scan is and what is known about it.

    What a right reading is:

    * ``readings``: the conventions a correct automatic reading may report (``verse`` and
      ``tptbox`` share their vertebra ids); empty: the map must be refused;
    * ``levels``: the levels the map holds, as documented by its source (empty: undocumented);
    * ``healthy_levels`` / ``known_fractures``: vertebrae believed healthy / fractured (the
      Genant section's real reference set).

    The user's option (for a map ``auto`` refuses): ``user_level`` (``--level``) or
    ``user_lowest_level`` (``--lowest-level``); ``user_readings``: the conventions that run may
    report; ``levels_documented``: False when the source does not document the levels, so the
    names given are for display only; ``user_note``: why this option.
    """

    name: str
    title: str
    ct: str | None
    labels: str | None
    convention: str
    modality: str
    note: str
    readings: tuple[str, ...] = ()
    levels: tuple[str, ...] = ()
    healthy_levels: tuple[str, ...] = ()
    known_fractures: tuple[str, ...] = ()
    user_level: str | None = None
    user_lowest_level: str | None = None
    user_readings: tuple[str, ...] = ()
    levels_documented: bool = True
    user_note: str = ""

    def path(self, root: Path, which: str) -> Path | None:
        """``root / self.ct`` or ``root / self.labels`` (``which`` = "ct" | "labels")."""
        rel = self.ct if which == "ct" else self.labels
        return None if rel is None else root / rel

    def present(self, root: Path) -> bool:
        """True when every file the dataset names exists under ``root``."""
        return all(
            p is None or p.exists() for p in (self.path(root, "ct"), self.path(root, "labels"))
        )

    @property
    def has_user_option(self) -> bool:
        """True when a user's option (a named level) is shown besides the automatic run."""
        return self.user_level is not None or self.user_lowest_level is not None

    def user_option_text(self) -> str:
        """The option as given on the command line (``--level T12``), "" without one."""
        if self.user_level is not None:
            return f"--level {self.user_level}"
        if self.user_lowest_level is not None:
            return f"--lowest-level {self.user_lowest_level}"
        return ""


_THORACOLUMBAR_VERSE = ("T9", "T10", "T11", "T12", "L1", "L2", "L3", "L4", "L5")

DATASETS: tuple[RealDataset, ...] = (
    RealDataset(
        "ts-example-3mm",
        "TotalSegmentator example CT, 30 slices at 3 mm (T11-L2)",
        "ct/totalseg-example/example_ct_sm.nii.gz",
        "ct/totalseg-example/example_seg.nii.gz",
        "auto",
        "CT",
        "abdominal CT, RAS, its TotalSegmentator v2 total map (T11 and L2 partly in view)",
        readings=("totalsegmentator",),
        levels=("T11", "T12", "L1", "L2"),
        healthy_levels=("T11", "T12", "L1", "L2"),
    ),
    RealDataset(
        "ts-example-dicom",
        "TotalSegmentator example DICOM series, 0.98 x 0.98 x 2 mm (20 slices)",
        "ct/totalseg-example/dicom",
        "ct/totalseg-example/example_seg_dicom.nii.gz",
        "auto",
        "CT",
        "JPEG 2000 Siemens series without UIDs; its label map in LAS order",
        readings=("totalsegmentator",),
        levels=("T11", "T12"),
        healthy_levels=("T11", "T12"),
    ),
    RealDataset(
        "verse004",
        "VerSe004 expert vertebra mask, T9-L5, 1 x 1 x 2 mm (no CT)",
        None,
        "ct/verse004/sub-verse004_seg-vert_msk.nii.gz",
        "auto",
        "CT",
        "expert mask, PIR oblique; L1 is a severe fracture; expert body centroids in its JSON",
        readings=("verse", "tptbox"),
        levels=_THORACOLUMBAR_VERSE,
        healthy_levels=tuple(lv for lv in _THORACOLUMBAR_VERSE if lv != "L1"),
        known_fractures=("L1",),
    ),
    RealDataset(
        "tptbox-ct",
        "TPTBox CT crop, 1.5 mm (L2-L4)",
        "ct/tptbox-ct/sub-ct_label-22_ct.nii.gz",
        "ct/tptbox-ct/sub-ct_seg-vert_label-22_msk.nii.gz",
        "auto",
        "CT",
        "real CT crop with its vertebra instance mask (VerSe ids 21-23)",
        readings=("verse", "tptbox"),
        levels=("L2", "L3", "L4"),
        healthy_levels=("L2", "L3", "L4"),
    ),
    RealDataset(
        "tptbox-ct-subreg",
        "TPTBox CT crop with its subregion map (ids 41-50)",
        "ct/tptbox-ct/sub-ct_label-22_ct.nii.gz",
        "ct/tptbox-ct/sub-ct_seg-subreg_label-22_msk.nii.gz",
        "auto",
        "CT",
        "a subregion map names parts of vertebrae (49/50 body, 41-48 posterior elements), not "
        "levels: it must be refused (the frame section uses its bodies with the vertebra mask)",
    ),
    RealDataset(
        "cta",
        "TotalSegmentator CT angiography crop, 1.5 mm (T12 binary mask)",
        "ct/totalseg-aorta-cta/ct_cropped.nii.gz",
        "ct/totalseg-aorta-cta/vertebrae_T12.nii.gz",
        "auto",
        "CT",
        "contrast-enhanced (arterial) CT; the T12 mask touches the crop's edge; a binary mask "
        "does not say its level, so auto refuses it",
        levels=("T12",),
        user_level="T12",
        user_readings=("binary",),
        user_note="the file name (vertebrae_T12) documents the level",
    ),
    RealDataset(
        "tptbox-mri",
        "TPTBox sagittal T2-weighted MRI crop, 1.5 mm (vertebrae 5-7)",
        "mri/tptbox-mri/sub-mri_label-6_T2w.nii.gz",
        "mri/tptbox-mri/sub-mri_seg-vert_label-6_msk.nii.gz",
        "auto",
        "MR",
        "MRI in signal units: geometry only; SPINEPS instance map (discs 100+id, endplates "
        "200+id) whose ids 5-7 (C5-C7 in the VerSe numbering) do not fit the vertebrae's sizes",
        user_lowest_level="L3",
        user_readings=("tptbox",),
        levels_documented=False,
        user_note=(
            "the source does not document the true levels; the one whole vertebra (label 6: "
            "53 ml with its posterior elements, body heights about 30 mm) has a lumbar size, so "
            "the three are named L1-L3 for display only -- the names, and with them the normal "
            "shape each is graded against, are not known"
        ),
    ),
    RealDataset(
        "tptbox-mri-subreg",
        "TPTBox MRI with its subregion map (ids 41-62)",
        "mri/tptbox-mri/sub-mri_label-6_T2w.nii.gz",
        "mri/tptbox-mri/sub-mri_seg-subreg_label-6_msk.nii.gz",
        "auto",
        "MR",
        "a subregion map (parts of vertebrae, canal and cord): it must be refused",
    ),
    RealDataset(
        "ts-example-mr",
        "TotalSegmentator example MRI, 3 mm (total_mr map)",
        "mri/totalseg-example-mr/example_mr_sm.nii.gz",
        "mri/totalseg-example-mr/example_seg_mr.nii.gz",
        "auto",
        "MR",
        "abdominal MRI; TotalSegmentator total_mr ids (not the CT table): every vertebra in "
        "label 19, 46-49 back muscles",
        user_lowest_level="L1",
        user_readings=("totalsegmentator_mr",),
        levels_documented=False,
        user_note=(
            "total_mr puts every vertebra in one label and the source does not document the "
            "levels; the two pieces are named T12-L1 for display only"
        ),
    ),
    RealDataset(
        "verse004-l2-crop",
        "VerSe004 L2 crop, 1 mm, with its 6-class compartment map (spineFE-benchmark)",
        "ct/verse004-L2-crop/sub-verse004_0000_vertebra_21_im.nii.gz",
        "ct/verse004-L2-crop/sub-verse004_0000_vertebra_21_seg.nii.gz",
        "auto",
        "CT",
        "one vertebra (L2: VerSe id 21 in the file name) in a compartment map whose classes "
        "the source does not document; classes 5 and 6 (median 0 HU) lie above and below the "
        "body (disc or padding layers), so no user option is shown: the union of the classes "
        "as one vertebra would measure its heights through them. It must be refused",
        levels=("L2",),
    ),
)

#: Real images without a label map: only their modality decision is validated.
IMAGES_WITHOUT_LABELS: tuple[tuple[str, str, str], ...] = (
    (
        "ct/totalseg-example/example_ct.nii.gz",
        "CT",
        "TotalSegmentator example CT, 3 mm, whole abdomen (no label map)",
    ),
)


def by_name(name: str) -> RealDataset:
    """The dataset called ``name`` (KeyError naming the choices otherwise)."""
    for d in DATASETS:
        if d.name == name:
            return d
    raise KeyError(f"{name!r}; expected one of {', '.join(d.name for d in DATASETS)}")


def default_data_root(repo_root: Path) -> Path:
    """``<repo>/../shared/data``: where CI and developers keep the real scans."""
    return repo_root.parent / "shared" / "data"
