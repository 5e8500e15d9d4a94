"""Uploaded scan files: checked, stored under ``DATA_DIR/uploads/<uuid>/``, never in the repo.

A study's upload directory holds the CT (``ct.nii.gz``, ``ct.nii`` or ``ct.zip`` -- a DICOM
series zipped) and the vertebra label map (``labels.nii.gz`` or ``labels.nii``), later also the
sagittal pictures drawn by the analysis jobs. Directories are created with mode 0700; files are
served only through views that check permissions (never as static or media files).

The type of a file is decided by its name AND its first bytes (a NIfTI header starts with
``sizeof_hdr`` 348 or 540; gzip starts with ``1f 8b``; a zip has a central directory), so a
renamed PDF is refused at once with a message naming the file, instead of failing later in the
job.

Size limit: ``SPINEWATCH_UPLOAD_MAX_MB`` (environment, default 2048 MB per request) or the Django
setting ``SPINEWATCH_UPLOAD_MAX_BYTES`` when present. :class:`LimitedUploadHandler` stops reading
an upload at the limit, before it fills the disk. What a file's HEADER claims is checked against
the input limits of :mod:`spinewatch.imaging.limits` as soon as it is stored (a NIfTI's
dimensions, a zip's declared sizes and inflation ratios): a header or zip bomb is refused on the
upload page, not later in the job.
"""

from __future__ import annotations

import gzip
import logging
import os
import shutil
import struct
import uuid
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.files.uploadhandler import FileUploadHandler, StopUpload

from spinewatch.core.errors import InputError

__all__ = [
    "CT_SUFFIXES",
    "LABEL_SUFFIXES",
    "LimitedUploadHandler",
    "StoredUpload",
    "UploadError",
    "check_ct_file",
    "check_labels_file",
    "remove_upload",
    "store_upload",
    "upload_dir",
    "upload_max_bytes",
    "uploads_root",
]

logger = logging.getLogger(__name__)

CT_SUFFIXES = (".nii.gz", ".nii", ".zip")
LABEL_SUFFIXES = (".nii.gz", ".nii")
_DEFAULT_MAX_MB = 2048
_CHUNK = 1 << 20


class UploadError(InputError):
    """An uploaded file of the wrong type, empty, too large or unreadable (names file and why)."""


def upload_max_bytes() -> int:
    """The largest request body accepted by the upload page, in bytes."""
    configured = getattr(settings, "SPINEWATCH_UPLOAD_MAX_BYTES", None)
    if configured is not None:
        if isinstance(configured, bool) or not isinstance(configured, int) or configured < 1:
            raise ImproperlyConfigured(
                f"SPINEWATCH_UPLOAD_MAX_BYTES={configured!r}: expected a positive number of bytes"
            )
        return configured
    raw = os.environ.get("SPINEWATCH_UPLOAD_MAX_MB", "")
    if raw == "":
        return _DEFAULT_MAX_MB * 1024 * 1024
    try:
        mb = int(raw)
    except ValueError:
        mb = 0
    if not 1 <= mb <= 1024 * 1024:
        raise ImproperlyConfigured(
            f"SPINEWATCH_UPLOAD_MAX_MB={raw!r}: expected a whole number of megabytes, 1 or more"
        )
    return mb * 1024 * 1024


def uploads_root() -> Path:
    """``DATA_DIR/uploads`` (created on first use)."""
    return Path(settings.DATA_DIR) / "uploads"


def upload_dir(name: str) -> Path:
    """The directory of one upload; ``name`` must be the hex uuid this module created."""
    try:
        parsed = uuid.UUID(hex=name)
    except (ValueError, TypeError):
        raise UploadError(
            f"upload directory {name!r}: expected a 32-digit hex identifier"
        ) from None
    return uploads_root() / parsed.hex


class LimitedUploadHandler(FileUploadHandler):
    """Counts the bytes of every file in a request; stops the upload past ``limit_bytes``.

    Sets ``request.upload_too_large = True`` so the view can say why the files are missing.
    Install it before ``request.POST``/``FILES`` are read (the view is ``csrf_exempt`` and
    applies ``csrf_protect`` itself, as Django's documentation describes).
    """

    def __init__(self, request: Any, limit_bytes: int) -> None:
        super().__init__(request)
        self.limit_bytes = limit_bytes
        self.seen = 0

    def handle_raw_input(
        self,
        input_data: Any,
        META: Any,
        content_length: int,
        boundary: Any,
        encoding: str | None = None,
    ) -> None:
        # A body far beyond the limit: refuse at the first file chunk (fields before it, such
        # as the CSRF token, are still read).
        if content_length and content_length > self.limit_bytes + 64 * 1024:
            self.request.upload_too_large = True

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes:
        self.seen += len(raw_data)
        if self.seen > self.limit_bytes or getattr(self.request, "upload_too_large", False):
            self.request.upload_too_large = True
            raise StopUpload(connection_reset=False)
        return raw_data

    def file_complete(self, file_size: int) -> None:
        return None


def _suffix(name: str, allowed: tuple[str, ...]) -> str | None:
    lower = name.lower()
    for suffix in allowed:
        if lower.endswith(suffix):
            return suffix
    return None


def _nifti_header_ok(head: bytes) -> bool:
    if len(head) < 4:
        return False
    return any(struct.unpack(f"{e}i", head[:4])[0] in (348, 540) for e in "<>")


def _check_nifti(fh: IO[bytes], suffix: str, what: str, name: str) -> None:
    start = fh.read(2)
    fh.seek(0)
    if suffix == ".nii.gz":
        if start != b"\x1f\x8b":
            raise UploadError(
                f"{what} {name!r}: not gzip-compressed although named .nii.gz; expected a "
                "NIfTI file (.nii or .nii.gz)"
            )
        try:
            with gzip.GzipFile(fileobj=fh, mode="rb") as gz:
                head = gz.read(4)
        except (OSError, EOFError, zlib.error):
            head = b""
        fh.seek(0)
    else:
        head = fh.read(4)
        fh.seek(0)
    if not _nifti_header_ok(head):
        raise UploadError(
            f"{what} {name!r}: not a NIfTI image (its header does not start with sizeof_hdr "
            "348 or 540); expected a NIfTI file (.nii or .nii.gz)"
        )


def check_ct_file(fh: IO[bytes], name: str) -> str:
    """The CT's stored suffix (``.nii.gz``, ``.nii`` or ``.zip``) once its content matches."""
    suffix = _suffix(name, CT_SUFFIXES)
    if suffix is None:
        raise UploadError(
            f"CT {name!r}: unsupported file type; expected a DICOM series as a .zip or a NIfTI "
            "file (.nii or .nii.gz)"
        )
    if suffix == ".zip":
        ok = zipfile.is_zipfile(fh)
        fh.seek(0)
        names: list[str] = []
        if ok:
            try:
                with zipfile.ZipFile(fh) as archive:
                    names = [n for n in archive.namelist() if not n.endswith("/")]
            except (zipfile.BadZipFile, OSError):
                ok = False
            fh.seek(0)
        if not ok:
            raise UploadError(f"CT {name!r}: not a readable zip archive; expected a DICOM .zip")
        if not names:
            raise UploadError(f"CT {name!r}: the zip archive is empty; expected DICOM files")
    else:
        _check_nifti(fh, suffix, "CT", name)
    return suffix


def check_labels_file(fh: IO[bytes], name: str) -> str:
    """The label map's stored suffix (``.nii.gz`` or ``.nii``) once its content matches."""
    suffix = _suffix(name, LABEL_SUFFIXES)
    if suffix is None:
        raise UploadError(
            f"label map {name!r}: unsupported file type; expected a NIfTI file (.nii or .nii.gz)"
        )
    _check_nifti(fh, suffix, "label map", name)
    return suffix


@dataclass(frozen=True)
class StoredUpload:
    """Where one study's files were stored: ``dir_name`` under :func:`uploads_root`."""

    dir_name: str
    ct_file: str
    labels_file: str
    ct_name: str
    labels_name: str

    @property
    def path(self) -> Path:
        return upload_dir(self.dir_name)


def _display_name(name: str | None) -> str:
    base = os.path.basename(str(name or "").replace("\\", "/")).strip()
    return base[:255] or "unnamed"


def _copy(source: Any, target: Path) -> int:
    size = 0
    with target.open("xb") as out:
        chunks = (
            source.chunks(_CHUNK)
            if hasattr(source, "chunks")
            else iter(lambda: source.read(_CHUNK), b"")
        )
        for chunk in chunks:
            out.write(chunk)
            size += len(chunk)
    os.chmod(target, 0o600)
    return size


def _check_bounds(path: Path, name: str, what: str) -> None:
    """Refuse at once a file whose HEADER claims more than the input limits allow (a NIfTI's
    dimensions, a zip's declared sizes and ratios) -- nothing is inflated or allocated here; the
    analysis would refuse it the same way, later."""
    from spinewatch.imaging.dicom import check_zip_archive
    from spinewatch.imaging.io import read_nifti_header

    try:
        if path.suffix == ".zip":
            check_zip_archive(path)
        else:
            read_nifti_header(path, what)
    except InputError as exc:
        raise UploadError(str(exc).replace(str(path), name)) from None


def store_upload(ct: Any, labels: Any = None) -> StoredUpload:
    """Check and store an uploaded CT and, when given, its label map (Django ``UploadedFile``
    objects). Without a label map ``labels_file`` is empty and the worker segments the CT.

    Raises :class:`UploadError` (nothing is left on disk then).
    """
    ct_name = _display_name(getattr(ct, "name", None))
    labels_name = _display_name(getattr(labels, "name", None)) if labels is not None else ""
    given = [("CT", ct, ct_name)] + ([("label map", labels, labels_name)] if labels else [])
    for what, upload, name in given:
        if not getattr(upload, "size", 0):
            raise UploadError(f"{what} {name!r}: the file is empty")
    ct_suffix = check_ct_file(ct, ct_name)
    labels_suffix = check_labels_file(labels, labels_name) if labels is not None else ""
    dir_name = uuid.uuid4().hex
    root = uploads_root()
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    target = root / dir_name
    target.mkdir(mode=0o700)
    try:
        ct_file = f"ct{ct_suffix}"
        labels_file = f"labels{labels_suffix}" if labels is not None else ""
        _copy(ct, target / ct_file)
        if labels is not None:
            _copy(labels, target / labels_file)
        _check_bounds(target / ct_file, ct_name, "CT")
        if labels is not None:
            _check_bounds(target / labels_file, labels_name, "label map")
    except BaseException:
        shutil.rmtree(target, ignore_errors=True)
        raise
    logger.info("stored upload %s (%s, %s)", dir_name, ct_name, labels_name or "CT only")
    return StoredUpload(dir_name, ct_file, labels_file, ct_name, labels_name)


def remove_upload(dir_name: str) -> None:
    """Delete an upload directory (after a failed registration)."""
    shutil.rmtree(upload_dir(dir_name), ignore_errors=True)
