"""What one validation section produces: Markdown, figures and headline figures with targets."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Headline", "Section", "ValidationContext"]


@dataclass(frozen=True)
class Headline:
    """One headline figure: what was measured, the value as text, the target, whether it holds.

    ``met`` is None when the figure has no target (reported for information).
    """

    what: str
    value: str
    target: str = ""
    met: bool | None = None


@dataclass
class Section:
    """A titled part of ``docs/validation.md``: Markdown body and its headline figures."""

    title: str
    body: str
    headlines: list[Headline] = field(default_factory=list)


@dataclass(frozen=True)
class ValidationContext:
    """Where the real data is and where figures go (``figures_dir`` relative links from the doc).

    ``quick``: smaller matrices (for a smoke run in the tests); the document written by
    ``make validate`` is always the full run. ``cache``: results several sections share (each
    real dataset is analysed once per run: :func:`spinewatch.validation.runs.run_dataset`).
    """

    data_root: Path
    figures_dir: Path
    doc_dir: Path
    quick: bool = False
    cache: dict[Any, Any] = field(default_factory=dict, compare=False, repr=False)

    def figure_link(self, path: Path) -> str:
        """The figure's path relative to the document, for a Markdown image link."""
        return path.relative_to(self.doc_dir).as_posix()
