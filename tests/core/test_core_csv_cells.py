"""spinewatch.core.csv_cells: no CSV cell a spreadsheet would run as a formula (OWASP)."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

import numpy as np
import pytest

from spinewatch.core.csv_cells import FORMULA_TRIGGERS, SafeCsvWriter, csv_text, safe_cell


@pytest.mark.parametrize(
    "text",
    ["=1+1", "+1+1", "-2+3", "@SUM(A1:A2)", "\t=1", "\r=1", "\0x", "=HYPERLINK(\"http://x\")",
     "-A1", "=cmd|' /C calc'!A0"],
)  # fmt: skip
def test_every_formula_trigger_is_prefixed_with_a_quote(text: str) -> None:
    assert safe_cell(text) == "'" + text
    assert text.startswith(FORMULA_TRIGGERS)


@pytest.mark.parametrize(
    ("value", "written"),
    [
        (-3, "-3"),
        (-3.25, "-3.25"),
        (np.float32(-1.5), "-1.5"),
        (np.int64(-7), "-7"),
        (Decimal("-2.50"), "-2.50"),
        (float("nan"), ""),
        (float("-inf"), ""),
        (None, ""),
        (True, "True"),
        ("L1", "L1"),
        ("a=b", "a=b"),
        ("", ""),
    ],
)
def test_numbers_stay_numbers_and_plain_text_is_untouched(value, written) -> None:
    assert safe_cell(value) == written


def test_the_writer_neutralises_rows_and_mappings_and_keeps_rfc_4180_quoting() -> None:
    buffer = io.StringIO()
    writer = SafeCsvWriter(buffer, fieldnames=["id", "note", "n"])
    writer.writeheader()
    writer.writerow({"id": "=1+2", "note": 'says "hi", then', "n": -4})
    writer.writerow(["@x", None, 2.5])
    rows = list(csv.reader(io.StringIO(buffer.getvalue())))
    assert rows == [["id", "note", "n"], ["'=1+2", 'says "hi", then', "-4"], ["'@x", "", "2.5"]]
    assert csv_text(["a"], [["+1"]]) == "a\n'+1\n"
