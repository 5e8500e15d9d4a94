"""Bounds on what an input file may make SpineWatch allocate -- checked *before* allocating.

A file's header says how large its content is (NIfTI ``dim``/``datatype``, DICOM
Rows/Columns/NumberOfFrames and the number of slices, a zip member's declared size) and a
hostile or broken file can claim anything: a 1 kB NIfTI header claiming 30000^3 voxels asks for
49 TiB. Every reader checks the claim against these limits first and refuses with
:class:`InputTooLargeError` (an :class:`~spinewatch.core.errors.InputError`: one line and exit
status 2 on the command line, the job's message on the web) naming the file, the header
values, the bytes they need and the limit with the setting that raises it.

==========================  ==================================  =================================
limit (environment)         default                             why
==========================  ==================================  =================================
``max_image_bytes``         2 GiB                               one volume as stored: a clinical
(``SPINEWATCH_MAX_IMAGE_    (2 147 483 648 bytes)               CT of 512x512x2000 int16 is
BYTES``)                                                        1 GiB, its float32 NIfTI 2 GB
``max_file_bytes``          256 MiB                             one DICOM file or zip member (a
(``SPINEWATCH_MAX_DICOM_                                        512x512 slice is 0.5 MiB; an
FILE_BYTES``)                                                   8192x8192 uint16 one 128 MiB)
``max_archive_bytes``       8 GiB                               declared uncompressed total of a
(``SPINEWATCH_MAX_ARCHIVE_                                      zip (several series of a study)
BYTES``)
``max_zip_ratio``           100                                 uncompressed/compressed size of a
(``SPINEWATCH_MAX_ZIP_                                          member above ``ZIP_RATIO_GRACE_
RATIO``)                                                        BYTES``
``max_zip_members``         100 000                             files in one zip
``max_report_bytes``        64 MiB                              a report JSON (a whole spine's is
(``SPINEWATCH_MAX_REPORT_                                       tens of kB)
BYTES``)
``max_json_depth``          64                                  nesting of a report JSON (a
                                                                SpineWatch report nests ~6 deep)
==========================  ==================================  =================================

The zip-bomb ratio and its grace size follow Apache POI's ``ZipSecureFile`` (the reader of
Office files, which are zips): a member that inflates more than 100-fold (``MIN_INFLATE_RATIO``
0.01) is refused once it is larger than 100 kB (its "too small to worry about" threshold)
(https://poi.apache.org/apidocs/dev/org/apache/poi/openxml4j/util/ZipSecureFile.html). DICOM
pixel data compresses about 2-5-fold with deflate, so a real series is far from it. The other
defaults are engineering choices (the reasons are in the table), not published figures.

Sizes in the environment are whole bytes or a number with a binary unit (``512MiB``, ``2G``,
``1.5GiB``); a bad value is refused (:class:`LimitSettingError`) naming the variable.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from spinewatch.core.errors import InputError

__all__ = [
    "ZIP_RATIO_GRACE_BYTES",
    "InputLimits",
    "InputTooLargeError",
    "JsonInputError",
    "LimitSettingError",
    "check_image_bytes",
    "check_json_value",
    "current_limits",
    "format_bytes",
    "limits_from_env",
    "parse_json",
]

#: Members whose uncompressed size is at most this are not checked for their ratio (POI's
#: ``GRACE_ENTRY_SIZE``, 100 kB): tiny files compress absurdly well and cannot hurt.
ZIP_RATIO_GRACE_BYTES = 100 * 1024

_GIB = 1 << 30
_MIB = 1 << 20


class InputTooLargeError(InputError):
    """A file whose header claims more than a limit of :class:`InputLimits` allows."""


class LimitSettingError(InputError):
    """A limit set in the environment that is not a positive size or number."""


@dataclass(frozen=True)
class InputLimits:
    """The bounds one read applies (see the module docstring for meanings and defaults)."""

    max_image_bytes: int = 2 * _GIB
    max_file_bytes: int = 256 * _MIB
    max_archive_bytes: int = 8 * _GIB
    max_zip_ratio: float = 100.0
    max_zip_members: int = 100_000
    max_report_bytes: int = 64 * _MIB
    max_json_depth: int = 64

    def __post_init__(self) -> None:
        for name in (
            "max_image_bytes",
            "max_file_bytes",
            "max_archive_bytes",
            "max_zip_members",
            "max_report_bytes",
            "max_json_depth",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise LimitSettingError(
                    f"input limit {name}={value!r}: expected a whole number >= 1"
                )
        ratio = self.max_zip_ratio
        if isinstance(ratio, bool) or not isinstance(ratio, int | float) or not ratio >= 1:
            raise LimitSettingError(f"input limit max_zip_ratio={ratio!r}: expected a number >= 1")

    def with_(self, **changes: int | float) -> InputLimits:
        """A copy with some limits changed (tests, a caller that needs a tighter bound)."""
        return replace(self, **changes)  # type: ignore[arg-type]


#: variable -> (field, is a size)
ENVIRONMENT: Mapping[str, tuple[str, bool]] = {
    "SPINEWATCH_MAX_IMAGE_BYTES": ("max_image_bytes", True),
    "SPINEWATCH_MAX_DICOM_FILE_BYTES": ("max_file_bytes", True),
    "SPINEWATCH_MAX_ARCHIVE_BYTES": ("max_archive_bytes", True),
    "SPINEWATCH_MAX_ZIP_RATIO": ("max_zip_ratio", False),
    "SPINEWATCH_MAX_ZIP_MEMBERS": ("max_zip_members", False),
    "SPINEWATCH_MAX_REPORT_BYTES": ("max_report_bytes", True),
    "SPINEWATCH_MAX_JSON_DEPTH": ("max_json_depth", False),
}

_SIZE = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([KMGT]?)(?:i?B)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def _parse(variable: str, raw: str, is_size: bool, field: str) -> int | float:
    if is_size:
        match = _SIZE.match(raw)
        if match is not None:
            value = float(match.group(1)) * _UNITS[match.group(2).upper()]
            if value >= 1 and math.isfinite(value):
                return int(value)
        raise LimitSettingError(
            f"{variable}={raw!r}: expected a size in bytes, e.g. 2147483648, 2GiB or 512MiB"
        )
    try:
        number = float(raw) if field == "max_zip_ratio" else int(raw)
    except ValueError:
        number = 0
    if not (number >= 1 and math.isfinite(number)):
        raise LimitSettingError(f"{variable}={raw!r}: expected a number >= 1")
    return number


def limits_from_env(environ: Mapping[str, str] | None = None) -> InputLimits:
    """The defaults, overridden by the ``SPINEWATCH_MAX_*`` variables that are set."""
    env = os.environ if environ is None else environ
    changes: dict[str, int | float] = {}
    for variable, (field, is_size) in ENVIRONMENT.items():
        raw = env.get(variable, "")
        if raw.strip():
            changes[field] = _parse(variable, raw, is_size, field)
    return InputLimits(**changes)  # type: ignore[arg-type]


def current_limits(limits: InputLimits | None = None) -> InputLimits:
    """``limits`` when given, else :func:`limits_from_env` (read at each call: cheap)."""
    return limits if limits is not None else limits_from_env()


def format_bytes(n: float) -> str:
    """``1.5 GiB``-style text for messages."""
    for unit, size in (("TiB", 1 << 40), ("GiB", _GIB), ("MiB", _MIB), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{int(n)} bytes"


def check_image_bytes(
    where: str,
    shape: Sequence[int],
    itemsize: int,
    limits: InputLimits,
    *,
    what: str = "image",
    detail: str = "",
) -> int:
    """The bytes an array of ``shape`` x ``itemsize`` needs, refused above ``max_image_bytes``.

    Python integers, so a header claiming 65535^3 cannot overflow the check.
    """
    voxels = 1
    for s in shape:
        voxels *= int(s)
    needed = voxels * int(itemsize)
    if needed > limits.max_image_bytes:
        dims = "x".join(str(int(s)) for s in shape)
        raise InputTooLargeError(
            f"{where}: {what} of {dims} voxels at {itemsize} byte(s) each{detail} needs "
            f"{format_bytes(needed)}; the limit is {format_bytes(limits.max_image_bytes)} "
            "(SPINEWATCH_MAX_IMAGE_BYTES)"
        )
    return needed


# --------------------------------------------------------------------------------------------
# JSON documents (reports)


class JsonInputError(InputError):
    """JSON text that is malformed, too large, too deeply nested or holds NaN/Infinity."""


# Strings (skipped whole), brackets, and the non-standard constants Python's json accepts.
_JSON_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]|-?Infinity|NaN')


def _line_col(text: str, index: int) -> str:
    line = text.count("\n", 0, index) + 1
    return f"line {line}, column {index - (text.rfind(chr(10), 0, index) + 1) + 1}"


def parse_json(text: str, *, source: str, max_depth: int) -> object:
    """``json.loads(text)`` for untrusted input: nesting deeper than ``max_depth`` and the
    constants ``NaN``/``Infinity`` (which Python's parser accepts but JSON does not) are refused
    with :class:`JsonInputError` naming ``source``, line and column -- before parsing, so a
    10^5-deep document cannot exhaust the stack.
    """
    depth = 0
    for match in _JSON_TOKENS.finditer(text):
        token = match.group()
        if token in ("[", "{"):
            depth += 1
            if depth > max_depth:
                raise JsonInputError(
                    f"{source}: {_line_col(text, match.start())}: JSON nested more than "
                    f"{max_depth} levels deep (SPINEWATCH_MAX_JSON_DEPTH)"
                )
        elif token in ("]", "}"):
            depth = max(0, depth - 1)
        elif token[0] != '"':
            raise JsonInputError(
                f"{source}: {_line_col(text, match.start())}: {token} is not a JSON value; "
                "expected a finite number or null"
            )
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise JsonInputError(
            f"{source}: line {exc.lineno}, column {exc.colno}: invalid JSON ({exc.msg})"
        ) from None
    except ValueError as exc:  # e.g. an integer of more than 4300 digits
        raise JsonInputError(f"{source}: invalid JSON ({exc})") from None
    except RecursionError:  # pragma: no cover - the depth scan above comes first
        raise JsonInputError(f"{source}: JSON nested too deeply") from None


def check_json_value(value: object, *, source: str, max_depth: int) -> None:
    """Refuse a parsed JSON-like document (dicts, lists) nested deeper than ``max_depth`` or
    holding a non-finite number, naming the key path (``scan.source``, ``vertebrae[2].x``).

    Iterative (no recursion), for documents that arrive already parsed (a stored report).
    """
    stack: list[tuple[object, int, str]] = [(value, 1, "")]
    while stack:
        item, depth, where = stack.pop()
        if isinstance(item, float) and not math.isfinite(item):
            raise JsonInputError(
                f"{source}: {where or 'the document'} is {item}; expected a finite number or "
                "null (JSON has no NaN or Infinity)"
            )
        if isinstance(item, Mapping):
            children = [(v, f"{where}.{k}" if where else str(k)) for k, v in item.items()]
        elif isinstance(item, list | tuple):
            children = [(v, f"{where}[{i}]") for i, v in enumerate(item)]
        else:
            continue
        if depth > max_depth:
            raise JsonInputError(
                f"{source}: {where or 'the document'} is nested more than {max_depth} levels "
                "deep (SPINEWATCH_MAX_JSON_DEPTH)"
            )
        stack.extend((child, depth + 1, path) for child, path in children)
