"""Helpers shared by the scans tests (no tests here): users, patients, phantom files, uploads."""

from __future__ import annotations

import datetime as dt
import gzip
import shutil
from pathlib import Path
from typing import Any

from spinewatch.imaging.phantom import PhantomSpec, make_spine_phantom, write_phantom

PASSWORD = "correct horse battery staple 42"

#: A small phantom: three vertebrae at 1.5 mm, L1 wedge-fractured (30 % anterior loss).
SMALL_SPEC = PhantomSpec(
    levels=("T12", "L1", "L2"),
    spacing_mm=(1.5, 1.5, 1.5),
    deformities={"L1": ("wedge", 30.0)},
)
#: The same spine before the fracture (a prior scan).
SMALL_PRIOR_SPEC = PhantomSpec(levels=("T12", "L1", "L2"), spacing_mm=(1.5, 1.5, 1.5))


def make_user(role: str, username: str | None = None) -> Any:
    from spinewatch.accounts.users import create_user

    return create_user(username=username or role, password=PASSWORD, role=role)


def make_patient(study_id: str = "SW-9001", hospital_number: str = "H-9001") -> Any:
    from spinewatch.registry import services

    return services.create_patient(
        study_id=study_id,
        identity=services.IdentityData(
            family_name="Testperson", given_name="Ada", hospital_number=hospital_number
        ),
    )


def write_spec(spec: PhantomSpec, directory: Path) -> tuple[Path, Path]:
    """Write a phantom's ``ct.nii.gz`` and ``labels.nii.gz`` into ``directory``."""
    ct, labels, _ = write_phantom(make_spine_phantom(spec), directory)
    return ct, labels


def truncated_copy(source: Path, target: Path, keep_bytes: int = 600) -> Path:
    """A .nii.gz whose header is intact but whose voxel data stop after ``keep_bytes``."""
    raw = gzip.decompress(source.read_bytes())
    target.write_bytes(gzip.compress(raw[:keep_bytes]))
    return target


def upload_files(ct: Path, labels: Path, tmp: Path) -> tuple[Any, Any]:
    """Open file handles (for the test client's multipart encoder), under fresh names."""
    tmp.mkdir(parents=True, exist_ok=True)
    ct_copy = tmp / f"patient-ct{''.join(ct.suffixes)}"
    labels_copy = tmp / f"patient-labels{''.join(labels.suffixes)}"
    shutil.copyfile(ct, ct_copy)
    shutil.copyfile(labels, labels_copy)
    return ct_copy.open("rb"), labels_copy.open("rb")


def post_upload(
    client: Any,
    ct: Path,
    labels: Path,
    tmp: Path,
    *,
    patient: str = "SW-9001",
    study_date: dt.date | None = None,
    convention: str = "auto",
    **extra: Any,
) -> Any:
    ct_fh, labels_fh = upload_files(ct, labels, tmp)
    with ct_fh, labels_fh:
        return client.post(
            f"/scans/upload/?patient={patient}",
            {
                "patient": patient,
                "ct": ct_fh,
                "labels": labels_fh,
                "convention": convention,
                "study_date": (study_date or dt.date(2025, 3, 1)).isoformat(),
                "description": "CT thoraco-lumbar spine",
                **extra,
            },
        )
