"""The real scans of ``../shared/data`` that the validation runs on, and how to read each.

Each :class:`RealDataset` names its files relative to the data root, the label convention to read
them with (None: the analysis detects it), the modality, and what is known about it (the source's
README). The files are never copied into the repository.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["DATASETS", "RealDataset", "by_name", "default_data_root"]


@dataclass(frozen=True)
class RealDataset:
    """One real scan (or label map alone) in the shared data folder.

    ``ct`` and ``labels`` are paths relative to the data root (None when absent);
    ``convention`` is passed to the analysis (``"auto"``: detected); ``modality`` is the known
    truth ("CT" or "MR"); ``note`` says what the scan is and what is known about it.
    """

    name: str
    title: str
    ct: str | None
    labels: str | None
    convention: str
    modality: str
    note: str

    def path(self, root: Path, which: str) -> Path | None:
        """``root / self.ct`` or ``root / self.labels`` (``which`` = "ct" | "labels")."""
        rel = self.ct if which == "ct" else self.labels
        return None if rel is None else root / rel

    def present(self, root: Path) -> bool:
        """True when every file the dataset names exists under ``root``."""
        return all(
            p is None or p.exists() for p in (self.path(root, "ct"), self.path(root, "labels"))
        )


DATASETS: tuple[RealDataset, ...] = (
    RealDataset(
        "ts-example-3mm",
        "TotalSegmentator example CT, 30 slices at 3 mm (T11-L2)",
        "ct/totalseg-example/example_ct_sm.nii.gz",
        "ct/totalseg-example/example_seg.nii.gz",
        "auto",
        "CT",
        "abdominal CT, RAS, its TotalSegmentator v2 total map (T11 and L2 partly in view)",
    ),
    RealDataset(
        "ts-example-dicom",
        "TotalSegmentator example DICOM series, 0.98 x 0.98 x 2 mm (20 slices)",
        "ct/totalseg-example/dicom",
        "ct/totalseg-example/example_seg_dicom.nii.gz",
        "auto",
        "CT",
        "JPEG 2000 Siemens series without UIDs; its label map in LAS order",
    ),
    RealDataset(
        "verse004",
        "VerSe004 expert vertebra mask, T9-L5, 1 x 1 x 2 mm (no CT)",
        None,
        "ct/verse004/sub-verse004_seg-vert_msk.nii.gz",
        "auto",
        "CT",
        "expert mask, PIR oblique; L1 is a severe fracture; expert body centroids in its JSON",
    ),
    RealDataset(
        "tptbox-ct",
        "TPTBox CT crop, 1.5 mm (L2-L4)",
        "ct/tptbox-ct/sub-ct_label-22_ct.nii.gz",
        "ct/tptbox-ct/sub-ct_seg-vert_label-22_msk.nii.gz",
        "auto",
        "CT",
        "real CT crop with its vertebra instance mask (VerSe ids 21-23)",
    ),
    RealDataset(
        "cta",
        "TotalSegmentator CT angiography crop, 1.5 mm (T12 binary mask)",
        "ct/totalseg-aorta-cta/ct_cropped.nii.gz",
        "ct/totalseg-aorta-cta/vertebrae_T12.nii.gz",
        "auto",
        "CT",
        "contrast-enhanced (arterial) CT; the T12 mask touches the crop's edge",
    ),
    RealDataset(
        "tptbox-mri",
        "TPTBox sagittal T2-weighted MRI crop, 1.5 mm (vertebrae 5-7)",
        "mri/tptbox-mri/sub-mri_label-6_T2w.nii.gz",
        "mri/tptbox-mri/sub-mri_seg-vert_label-6_msk.nii.gz",
        "auto",
        "MR",
        "MRI in signal units: geometry only; SPINEPS instance map (discs 100+id, endplates 200+id)",
    ),
    RealDataset(
        "ts-example-mr",
        "TotalSegmentator example MRI, 3 mm (total_mr map)",
        "mri/totalseg-example-mr/example_mr_sm.nii.gz",
        "mri/totalseg-example-mr/example_seg_mr.nii.gz",
        "auto",
        "MR",
        "abdominal MRI; TotalSegmentator total_mr ids (not the CT table)",
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
