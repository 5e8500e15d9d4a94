"""Small Markdown writers for the validation document (tables, figures)."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["cell", "table"]


def cell(value: object, digits: int = 1) -> str:
    """A table cell: ``-`` for None, floats rounded to ``digits``, ``|`` escaped."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def table(headers: Sequence[str], rows: Sequence[Sequence[object]], digits: int = 1) -> str:
    """A GitHub-flavoured Markdown table."""
    out = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    out += ["| " + " | ".join(cell(v, digits) for v in row) + " |" for row in rows]
    return "\n".join(out)
