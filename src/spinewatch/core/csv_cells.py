"""CSV cells that a spreadsheet cannot run: the one writer of every CSV export SpineWatch makes.

A cell whose text starts with ``=``, ``+``, ``-`` or ``@`` (or a tab or carriage return, which
some spreadsheets skip before reading a formula) is taken as a formula by Excel, LibreOffice
Calc and Google Sheets when the file is opened -- and a study id, a note or an error message
typed by someone else can be made to start that way ("CSV injection"). OWASP's advice
(https://owasp.org/www-community/attacks/CSV_Injection) is to prefix such a cell with a single
quote, which the spreadsheet shows as text; ASVS 5.0 requirement 1.2.10 adds the NUL character
to the list. Quoting and embedded quotes are left to :mod:`csv` (RFC 4180).

Numbers (``int``/``float``/numpy/``Decimal`` values, not text) are written as they are (floats
at full precision; NaN and infinities as an empty cell): a negative number is data, not a
formula, and must stay a number in the spreadsheet. Only text is neutralised, so a study id
``-12`` typed as text does become ``'-12``.

>>> safe_cell("=HYPERLINK(\\"http://x\\")")
'\\'=HYPERLINK("http://x")'
>>> safe_cell(-3.5), safe_cell(None), safe_cell("L1")
('-3.5', '', 'L1')
>>> csv_text(["id", "note"], [["SW-1", "@SUM(A1)"]])
"id,note\\nSW-1,'@SUM(A1)\\n"
"""

from __future__ import annotations

import csv
import io
import math
import numbers
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import IO, Any

__all__ = [
    "FORMULA_TRIGGERS",
    "SafeCsvWriter",
    "csv_text",
    "safe_cell",
    "safe_row",
]

#: First characters that make a spreadsheet read a cell as a formula (OWASP, plus ASVS's NUL).
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r", "\0")


def safe_cell(value: object) -> str:
    """The text to write for one cell: numbers as they are, empty for None/NaN, and text that a
    spreadsheet would run prefixed with ``'``."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, numbers.Integral | Decimal):  # numpy scalars register as numbers too
        return str(value)
    if isinstance(value, numbers.Real):
        number = float(value)
        return repr(number) if math.isfinite(number) else ""
    text = str(value)
    if text.startswith(FORMULA_TRIGGERS):
        return "'" + text
    return text


def safe_row(values: Iterable[object]) -> list[str]:
    """:func:`safe_cell` of each value."""
    return [safe_cell(v) for v in values]


class SafeCsvWriter:
    """:func:`csv.writer` (``lineterminator="\\n"``) whose rows pass through :func:`safe_cell`;
    with ``fieldnames`` it writes mappings like :class:`csv.DictWriter` (missing keys empty)."""

    def __init__(self, handle: IO[str], fieldnames: Sequence[str] | None = None) -> None:
        self._writer = csv.writer(handle, lineterminator="\n")
        self.fieldnames = list(fieldnames) if fieldnames is not None else None

    def writeheader(self) -> None:
        if self.fieldnames is None:
            raise TypeError("writeheader() needs fieldnames")
        self.writerow(self.fieldnames)

    def writerow(self, row: Iterable[object] | Mapping[str, object]) -> None:
        if isinstance(row, Mapping):
            if self.fieldnames is None:
                raise TypeError("a mapping row needs fieldnames")
            row = [row.get(name) for name in self.fieldnames]
        self._writer.writerow(safe_row(row))

    def writerows(self, rows: Iterable[Iterable[object] | Mapping[str, object]]) -> None:
        for row in rows:
            self.writerow(row)


def csv_text(header: Sequence[str], rows: Iterable[Iterable[Any]]) -> str:
    """A whole CSV document (header line + rows), every cell through :func:`safe_cell`."""
    buffer = io.StringIO()
    writer = SafeCsvWriter(buffer)
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()
