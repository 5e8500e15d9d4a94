"""A small results table shared by Table 1, the procedure outcomes and the survival tables:
named columns, rows of plain values, written as CSV (numbers rounded for people, through
:mod:`spinewatch.core.csv_cells`), as aligned text and as JSON-able dicts."""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from spinewatch.core.csv_cells import SafeCsvWriter

__all__ = ["ResultsTable", "rounded"]


def rounded(value: Any, digits: int) -> Any:
    """``value`` rounded to ``digits`` decimals (an integral result as an int); ``None`` for
    missing or non-finite numbers; anything that is not a float unchanged."""
    if value is None:
        return None
    if isinstance(value, (bool, int)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        out = round(value, digits)
        return int(out) if digits == 0 else out
    return value


@dataclass(frozen=True)
class ResultsTable:
    """``columns`` (names), ``rows`` (tuples of plain values), ``digits`` per numeric column
    (decimals written), a ``title`` and ``notes`` printed under the text table."""

    title: str
    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]
    digits: dict[str, int]
    notes: tuple[str, ...] = ()

    def records(self) -> list[dict[str, Any]]:
        """Rows as dicts, numbers rounded as in the CSV."""
        return [
            {c: rounded(v, self.digits.get(c, 6)) for c, v in zip(self.columns, row, strict=True)}
            for row in self.rows
        ]

    def to_json_dict(self) -> dict[str, Any]:
        return {"title": self.title, "rows": self.records(), "notes": list(self.notes)}

    def to_csv(self) -> str:
        buffer = io.StringIO()
        writer = SafeCsvWriter(buffer, self.columns)
        writer.writeheader()
        writer.writerows(self.records())
        return buffer.getvalue()

    def to_text(self) -> str:
        def cell(column: str, value: Any) -> str:
            value = rounded(value, self.digits.get(column, 6))
            if value is None:
                return "--"
            if isinstance(value, float):
                return f"{value:.{self.digits.get(column, 2)}f}"
            return str(value)

        lines: list[Sequence[str]] = [self.columns]
        lines += [[cell(c, v) for c, v in zip(self.columns, row, strict=True)] for row in self.rows]
        widths = [max(len(line[i]) for line in lines) for i in range(len(self.columns))]
        rendered = [
            "  ".join(
                text.ljust(widths[i]) if i == 0 else text.rjust(widths[i])
                for i, text in enumerate(line)
            ).rstrip()
            for line in lines
        ]
        rule = "-" * max(len(r) for r in rendered)
        out = [self.title, rule, rendered[0], rule, *rendered[1:], rule, *self.notes]
        return "\n".join(out) + "\n"
