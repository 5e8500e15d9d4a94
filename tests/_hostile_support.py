"""Hostile input files built in code: header bombs, zip and gzip bombs, malformed DICOM.

The bombs are real: :func:`deflate_zeros` makes a valid raw deflate stream of ``n`` zero bytes
in about a second per few GiB by compressing one zero chunk after a full flush and repeating
those bytes (after ``Z_FULL_FLUSH`` the compressor starts from an empty window, so every chunk
compresses to the same bytes); the CRC-32 and sizes in the containers are the true ones, so a
reader that inflates the whole member gets all ``n`` bytes without a CRC error.
"""

from __future__ import annotations

import io
import json
import os
import resource
import struct
import subprocess
import sys
import textwrap
import warnings
import zipfile
import zlib
from pathlib import Path

import nibabel as nib
import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

_CHUNK = 4 << 20  # zero bytes per repeated deflate piece


def deflate_zeros(n: int, prefix: bytes = b"") -> tuple[bytes, int]:
    """A raw deflate stream of ``prefix`` + ``n`` zero bytes (n a multiple of 4 MiB after the
    first partial chunk is allowed), and its CRC-32."""
    co = zlib.compressobj(9, zlib.DEFLATED, -15)
    out = [co.compress(prefix) + co.flush(zlib.Z_FULL_FLUSH)]
    crc = zlib.crc32(prefix)
    chunk = bytes(_CHUNK)
    piece = co.compress(chunk) + co.flush(zlib.Z_FULL_FLUSH)
    full, rest = divmod(n, _CHUNK)
    out.extend([piece] * full)
    for _ in range(full):
        crc = zlib.crc32(chunk, crc)
    if rest:
        out.append(co.compress(bytes(rest)) + co.flush(zlib.Z_FULL_FLUSH))
        crc = zlib.crc32(bytes(rest), crc)
    out.append(co.flush(zlib.Z_FINISH))
    return b"".join(out), crc


def nifti_header_bytes(
    shape: tuple[int, ...],
    dtype: type = np.int16,
    affine: np.ndarray | None = None,
) -> bytes:
    """A single-file NIfTI-1 header (352 bytes with the extension flag) for ``shape``."""
    header = nib.Nifti1Header()
    header.set_data_shape(shape)
    header.set_data_dtype(dtype)
    header.set_sform(np.eye(4) if affine is None else affine, code=1)
    header.set_qform(np.eye(4) if affine is None else affine, code=1)
    header["vox_offset"] = 352
    return header.binaryblock + b"\0\0\0\0"


def header_bomb_nifti(path: Path, shape: tuple[int, ...], dtype: type = np.int16) -> Path:
    """A NIfTI file of a few hundred bytes whose header claims ``shape`` voxels."""
    path.write_bytes(nifti_header_bytes(shape, dtype) + bytes(64))
    return path


def gzip_bomb_nifti(
    path: Path, shape: tuple[int, int, int], affine: np.ndarray | None = None
) -> Path:
    """A valid .nii.gz of ``shape`` uint8 zero voxels: a few MB on disk, shape[0]*[1]*[2] bytes
    when read."""
    header = nifti_header_bytes(shape, np.uint8, affine)
    n = int(np.prod(shape))
    body, crc = deflate_zeros(n, prefix=header)
    gz = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff" + body
    gz += struct.pack("<II", crc, (len(header) + n) & 0xFFFFFFFF)
    path.write_bytes(gz)
    return path


def zip_bomb(path: Path, member_bytes: int, name: str = "image.dcm") -> Path:
    """A zip holding one real deflated member of ``member_bytes`` zero bytes (true CRC/size)."""
    body, _ = deflate_zeros(member_bytes)

    class _Canned:
        def compress(self, data: bytes) -> bytes:
            return b""

        def flush(self) -> bytes:
            return body

    chunk = bytes(_CHUNK)
    with (
        zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf,
        zf.open(name, "w", force_zip64=True) as fh,
    ):
        fh._compressor = _Canned()  # the CRC and size are computed from the data fed
        left = member_bytes
        while left:
            piece = chunk[: min(left, _CHUNK)]
            fh.write(piece)
            left -= len(piece)
    return path


def lying_zip(path: Path, actual: bytes, declared_size: int, name: str = "image.dcm") -> Path:
    """A zip whose member holds ``actual`` but whose headers declare ``declared_size`` bytes."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(name, actual)
    data = bytearray(buffer.getvalue())
    true_size = struct.pack("<I", len(actual))
    fake = struct.pack("<I", declared_size)
    local = data.find(b"PK\x03\x04")
    data[local + 22 : local + 26] = fake  # local header: uncompressed size
    central = data.find(b"PK\x01\x02")
    assert data[central + 24 : central + 28] == true_size
    data[central + 24 : central + 28] = fake  # central directory: uncompressed size
    path.write_bytes(bytes(data))
    return path


def dicom_slice(
    *,
    rows: int | str | None = 4,
    columns: int | str | None = 4,
    z: float = 0.0,
    series_uid: str = "1.2.3.4",
    pixels: bytes | None = None,
    extra: dict[str, object] | None = None,
) -> bytes:
    """One small CT slice as DICOM bytes (explicit VR little endian); header values may be
    anything a hostile file may carry (``rows=None`` writes an empty Rows)."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom warns about the invalid values we write
        return _dicom_bytes(meta, rows, columns, z, series_uid, pixels, extra)


def _dicom_bytes(meta, rows, columns, z, series_uid, pixels, extra) -> bytes:  # type: ignore[no-untyped-def]
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "CT"
    ds.SeriesInstanceUID = series_uid
    ds.StudyInstanceUID = "1.2.3"
    ds.ImagePositionPatient = ["0", "0", f"{z:g}"]
    ds.ImageOrientationPatient = ["1", "0", "0", "0", "1", "0"]
    ds.PixelSpacing = ["1", "1"]
    ds.Rows = rows
    ds.Columns = columns
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 1
    ds.RescaleSlope = "1"
    ds.RescaleIntercept = "-1024"
    for keyword, value in (extra or {}).items():
        setattr(ds, keyword, value)
    if pixels is None:
        r = rows if isinstance(rows, int) else 4
        c = columns if isinstance(columns, int) else 4
        pixels = np.arange(r * c, dtype=np.int16).tobytes()
    ds.PixelData = pixels
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def dicom_series(directory: Path, n: int = 3, **kwargs: object) -> Path:
    """``n`` slices 1 mm apart (``kwargs`` as :func:`dicom_slice`, on every slice)."""
    directory.mkdir(parents=True, exist_ok=True)
    for k in range(n):
        (directory / f"{k:03d}.dcm").write_bytes(dicom_slice(z=float(k), **kwargs))  # type: ignore[arg-type]
    return directory


# ---------------------------------------------------------------------------------------------
# measuring a read in a separate process


_PROBE = textwrap.dedent(
    """
    import json, resource, sys, time
    started = time.monotonic()
    kind, args = sys.argv[1], sys.argv[2:]
    outcome = {"error": None, "message": None}
    try:
        if kind == "study":
            from spinewatch.imaging.io import load_study
            load_study(args[0] if args[0] != "-" else None, args[1])
        elif kind == "image":
            from spinewatch.imaging.io import load_image
            load_image(args[0], modality="ct")
        elif kind == "report":
            from spinewatch.imaging.compare import load_report
            load_report(args[0])
        else:
            raise SystemExit(f"unknown probe {kind}")
    except Exception as exc:
        from spinewatch.core.errors import InputError
        outcome = {
            "error": type(exc).__name__,
            "input_error": isinstance(exc, InputError),
            "message": str(exc),
        }
    # VmHWM: this process image's own peak; ru_maxrss would carry the forking parent's peak
    # (a pytest worker that already ran imaging tests) across exec
    with open("/proc/self/status") as status:
        hwm_kb = [int(line.split()[1]) for line in status if line.startswith("VmHWM:")]
    if hwm_kb:
        outcome["maxrss_mb"] = hwm_kb[0] / 1024
    else:
        outcome["maxrss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    outcome["seconds"] = time.monotonic() - started
    print(json.dumps(outcome))
    """
)

#: Address-space cap of a probe: a regression that tries to allocate a bomb's size fails
#: with MemoryError instead of thrashing the machine.
PROBE_ADDRESS_SPACE_BYTES = 4 << 30


def _cap_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (PROBE_ADDRESS_SPACE_BYTES, PROBE_ADDRESS_SPACE_BYTES))


def probe(kind: str, *args: str, timeout_s: float = 120.0) -> dict[str, object]:
    """Read a hostile input in a fresh interpreter under an address-space cap; returns
    ``{"error", "input_error", "message", "maxrss_mb", "seconds"}`` (peak resident memory of
    the whole process, imports included)."""
    env = dict(os.environ)
    env["OPENBLAS_NUM_THREADS"] = env["OMP_NUM_THREADS"] = "1"
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, kind, *args],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        env=env,
        preexec_fn=_cap_memory,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])
