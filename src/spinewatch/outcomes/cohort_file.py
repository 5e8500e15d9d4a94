"""Reading a cohort file: one VAS pain score per patient and time point, long format.

The file is UTF-8 CSV (a byte-order mark is tolerated) whose header contains at least::

    patient_id,timepoint,vas

``timepoint`` is a code of the follow-up protocol (``pre, 3d, 1m, 3m, 6m, 12m`` by default) and
``vas`` a pain score on the 0-10 visual analogue scale (decimals allowed). Extra columns are kept
as text (for example ``diagnosis``, ``level``, ``approach``); ``procedure_date``, when present,
is an ISO date (``YYYY-MM-DD``), may be empty, and must not disagree between two lines of the same
patient.

Everything is validated before anything is returned -- callers import all or nothing -- and every
error is a :class:`CohortFileError` whose message names the file, the line (header = line 1), the
column and the offending value. The :mod:`csv` module is used rather than pandas' parser so that
line numbers are exact, also around quoted fields that span lines.

Tolerances (documented, not configurable): leading/trailing spaces around fields and header
names are ignored, time point codes are matched case-insensitively, and lines that are entirely
empty (or only separators, as spreadsheets export them) are skipped.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import logging
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from spinewatch.core.errors import InputError
from spinewatch.core.pain import PainScore, PainScoreError
from spinewatch.core.protocol import DEFAULT_PROTOCOL, FollowUpProtocol

__all__ = [
    "OPTIONAL_DATE_COLUMN",
    "REQUIRED_COLUMNS",
    "CohortFileError",
    "read_cohort_csv",
]

logger = logging.getLogger(__name__)

REQUIRED_COLUMNS: tuple[str, ...] = ("patient_id", "timepoint", "vas")
OPTIONAL_DATE_COLUMN = "procedure_date"
_RESERVED = ("line",)


class CohortFileError(InputError):
    """A cohort file SpineWatch refuses; the message names file, line, column and value."""


def _where(path: Path, line: int | None = None, column: str | None = None) -> str:
    parts = [str(path)]
    if line is not None:
        parts.append(f"line {line}")
    if column is not None:
        parts.append(f'column "{column}"')
    return ", ".join(parts)


def _fail(path: Path, line: int | None, column: str | None, message: str) -> CohortFileError:
    return CohortFileError(f"{_where(path, line, column)}: {message}")


def _decode(path: Path, raw: bytes) -> str:
    """The file's text without BOM; a non-UTF-8 byte names its line, column and bytes."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        start = exc.start
        line = raw.count(b"\n", 0, start) + 1
        line_start = raw.rfind(b"\n", 0, start) + 1
        bad = raw[start : exc.end]
        column = _column_of_bad_byte(raw, line_start, start)
        raise _fail(
            path,
            line,
            column,
            f"bytes {bad!r} at byte offset {start} are not valid UTF-8; "
            "expected a UTF-8 encoded CSV file (save it as 'CSV UTF-8')",
        ) from None


def _column_of_bad_byte(raw: bytes, line_start: int, bad_at: int) -> str | None:
    """Best effort: the header name of the field that holds the undecodable byte."""
    header_end = raw.find(b"\n")
    header_bytes = raw[: header_end if header_end >= 0 else len(raw)]
    try:
        header = next(csv.reader([header_bytes.decode("utf-8-sig").rstrip("\r")]))
    except (UnicodeDecodeError, StopIteration, csv.Error):
        return None
    if line_start == 0:
        return None
    prefix = raw[line_start:bad_at].decode("utf-8", errors="replace")
    try:
        fields_before = next(csv.reader([prefix + "x"]))
    except (StopIteration, csv.Error):
        return None
    index = len(fields_before) - 1
    return header[index].strip() if 0 <= index < len(header) else None


def _read_rows(path: Path, text: str) -> list[tuple[int, list[str]]]:
    """Each CSV record with the 1-based number of the line it starts on."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    rows: list[tuple[int, list[str]]] = []
    previous_end = 0
    try:
        for record in reader:
            rows.append((previous_end + 1, record))
            previous_end = reader.line_num
    except csv.Error as exc:
        raise _fail(path, reader.line_num, None, f"malformed CSV ({exc})") from None
    return rows


def _check_header(path: Path, header: Sequence[str]) -> list[str]:
    names = [name.strip() for name in header]
    found = ", ".join(repr(n) for n in names)
    seen: dict[str, int] = {}
    for index, name in enumerate(names, start=1):
        if name == "":
            raise _fail(path, 1, None, f"header field {index} is empty; header found: {found}")
        if name in seen:
            raise _fail(
                path,
                1,
                name,
                f"column name {name!r} appears twice (fields {seen[name]} and {index}); "
                f"header found: {found}",
            )
        if name in _RESERVED:
            raise _fail(path, 1, name, f"column name {name!r} is reserved; header found: {found}")
        seen[name] = index
    missing = [c for c in REQUIRED_COLUMNS if c not in seen]
    if missing:
        what = ", ".join(f'"{c}"' for c in missing)
        noun = "column" if len(missing) == 1 else "columns"
        raise _fail(
            path,
            1,
            None,
            f"missing {noun} {what}; header found: {found}; "
            f"expected at least {','.join(REQUIRED_COLUMNS)}",
        )
    return names


def _parse_date(path: Path, line: int, value: str) -> dt.date | None:
    if value == "":
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise _fail(
            path,
            line,
            OPTIONAL_DATE_COLUMN,
            f"{value!r} is not a date; expected an ISO date YYYY-MM-DD",
        ) from None


def read_cohort_csv(path: Path, *, protocol: FollowUpProtocol = DEFAULT_PROTOCOL) -> pd.DataFrame:
    """Read and validate a long-format cohort file.

    Returns one row per (patient, time point), in file order, with columns ``patient_id`` (str),
    ``timepoint`` (categorical in protocol order, categories = ``protocol.codes``), ``vas``
    (float, 0-10), the extra columns of the file in their order (text; empty -> missing;
    ``procedure_date`` as :class:`datetime.date` or ``None``), and ``line`` (the 1-based line the
    record starts on; header = line 1).

    Raises :class:`CohortFileError` (an :class:`InputError`) for a missing or unreadable file,
    an empty file, a missing column, a wrong number of fields, an empty patient_id, an unknown
    time point, a VAS that is empty / not a number / outside 0-10, a duplicate (patient, time
    point) and non-UTF-8 bytes; nothing is returned unless the whole file is valid.
    """
    path = Path(path)
    text = _read_text(path)
    rows = _read_rows(path, text)
    header_line, header = rows[0]
    names = _check_header(path, header)
    index = {name: i for i, name in enumerate(names)}
    extras = [n for n in names if n not in REQUIRED_COLUMNS]
    codes_by_key = {code.lower(): code for code in protocol.codes}

    records: dict[str, list[object]] = {name: [] for name in (*REQUIRED_COLUMNS, *extras)}
    lines: list[int] = []
    first_seen: dict[tuple[str, str], int] = {}
    patient_dates: dict[str, tuple[dt.date, int]] = {}

    for line, fields in rows[1:]:
        if all(field.strip() == "" for field in fields):
            continue  # blank line, or a spreadsheet's row of empty cells
        if len(fields) != len(names):
            raise _fail(
                path,
                line,
                None,
                f"{len(fields)} fields {','.join(fields)!r}; expected {len(names)} "
                f"({', '.join(names)}) as in the header",
            )
        values = [field.strip() for field in fields]

        patient, code, vas = _required_values(path, line, values, index, codes_by_key, protocol)

        key = (patient, code)
        if key in first_seen:
            raise _fail(
                path,
                line,
                "timepoint",
                f"duplicate time point {code!r} for patient {patient!r}: lines "
                f"{first_seen[key]} and {line}; expected one VAS per patient and time point",
            )
        first_seen[key] = line

        records["patient_id"].append(patient)
        records["timepoint"].append(code)
        records["vas"].append(vas)
        for name in extras:
            value = values[index[name]]
            records[name].append(_extra_value(path, line, name, value, patient, patient_dates))
        lines.append(line)

    if not lines:
        raise _fail(
            path,
            header_line,
            None,
            "the file has a header but no data lines; expected one line per patient and time point",
        )

    frame = _cohort_frame(records, extras, lines, protocol)
    logger.debug(
        "read %d VAS values of %d patients from %s",
        len(frame),
        frame["patient_id"].nunique(),
        path,
    )
    return frame


def _read_text(path: Path) -> str:
    """The file's text; CohortFileError when it cannot be read, is not UTF-8 or is empty."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise CohortFileError(f"{path}: file not found; expected a cohort CSV file") from None
    except IsADirectoryError:
        raise CohortFileError(f"{path}: is a directory; expected a cohort CSV file") from None
    except PermissionError:
        raise CohortFileError(f"{path}: permission denied reading the cohort file") from None

    text = _decode(path, raw)
    if text.strip() == "":
        raise _fail(
            path,
            None,
            None,
            f"the file is empty; expected a header line {','.join(REQUIRED_COLUMNS)} "
            "followed by one line per patient and time point",
        )
    return text


def _required_values(
    path: Path,
    line: int,
    values: list[str],
    index: dict[str, int],
    codes_by_key: dict[str, str],
    protocol: FollowUpProtocol,
) -> tuple[str, str, float]:
    """``(patient_id, time point code, VAS)`` of one data line, each checked."""
    patient = values[index["patient_id"]]
    if patient == "":
        raise _fail(path, line, "patient_id", "empty patient_id; expected an identifier")

    raw_code = values[index["timepoint"]]
    code = codes_by_key.get(raw_code.lower())
    if code is None:
        raise _fail(
            path,
            line,
            "timepoint",
            f"unknown time point {raw_code!r}; expected one of {', '.join(protocol.codes)}",
        )

    raw_vas = values[index["vas"]]
    if raw_vas == "":
        raise _fail(path, line, "vas", "empty VAS; expected a number from 0 to 10")
    try:
        vas = PainScore.parse(raw_vas).value
    except PainScoreError:
        raise _fail(
            path,
            line,
            "vas",
            f"VAS {raw_vas!r} is not a pain score; expected a number from 0 to 10",
        ) from None
    return patient, code, float(vas)


def _extra_value(
    path: Path,
    line: int,
    name: str,
    value: str,
    patient: str,
    patient_dates: dict[str, tuple[dt.date, int]],
) -> object:
    """An extra column's value: text or None; the procedure date parsed, one per patient
    (``patient_dates`` remembers each patient's first date and its line)."""
    if name == OPTIONAL_DATE_COLUMN:
        date = _parse_date(path, line, value)
        if date is not None:
            earlier = patient_dates.setdefault(patient, (date, line))
            if earlier[0] != date:
                raise _fail(
                    path,
                    line,
                    OPTIONAL_DATE_COLUMN,
                    f"procedure date {value!r} for patient {patient!r} disagrees with "
                    f"{earlier[0].isoformat()!r} on line {earlier[1]}; expected one "
                    "procedure date per patient",
                )
        return date
    return value if value != "" else None


def _cohort_frame(
    records: dict[str, list[object]],
    extras: list[str],
    lines: list[int],
    protocol: FollowUpProtocol,
) -> pd.DataFrame:
    """The validated records as the frame :func:`read_cohort_csv` returns."""
    frame = pd.DataFrame(
        {
            "patient_id": pd.Series(records["patient_id"], dtype="str"),
            "timepoint": pd.Categorical(
                records["timepoint"], categories=list(protocol.codes), ordered=True
            ),
            "vas": pd.Series(records["vas"], dtype="float64"),
        }
    )
    for name in extras:
        if name == OPTIONAL_DATE_COLUMN:
            frame[name] = pd.Series(records[name], dtype="object")
        else:
            frame[name] = pd.Series(records[name], dtype="str")
    frame["line"] = pd.Series(lines, dtype="int64")
    return frame
