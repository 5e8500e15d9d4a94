"""``make validate``: run every validation section and write ``docs/validation.md``.

The document starts with the headline figures (each with its target and whether it holds), then
one section per concern. Pictures go to ``docs/validation/``; the headline figures also go to
``docs/validation.json`` so the README and the closing notes quote the same numbers.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from spinewatch import __version__
from spinewatch.validation.markdown import table
from spinewatch.validation.section import Section, ValidationContext

__all__ = ["SECTIONS", "run_validation", "write_document"]

log = logging.getLogger(__name__)


def _sections() -> list[Callable[[ValidationContext], Section]]:
    from spinewatch.validation.sections.frames import frames_section
    from spinewatch.validation.sections.genant import genant_section
    from spinewatch.validation.sections.geometry import geometry_section
    from spinewatch.validation.sections.lesions import lesions_section
    from spinewatch.validation.sections.modality_labels import modality_labels_section
    from spinewatch.validation.sections.real_scans import real_scans_section
    from spinewatch.validation.sections.risk_confidence import risk_confidence_section
    from spinewatch.validation.sections.segmentation import segmentation_section

    return [
        real_scans_section,
        modality_labels_section,
        geometry_section,
        genant_section,
        frames_section,
        risk_confidence_section,
        lesions_section,
        segmentation_section,
    ]


#: The section builders, in document order (resolved lazily so importing this module is cheap).
SECTIONS = _sections


def run_validation(ctx: ValidationContext) -> list[tuple[Section, float]]:
    """Build every section; returns each with the seconds it took."""
    ctx.figures_dir.mkdir(parents=True, exist_ok=True)
    out = []
    for build in SECTIONS():
        t0 = time.perf_counter()
        section = build(ctx)
        seconds = time.perf_counter() - t0
        log.info("%s: %.1f s", section.title, seconds)
        out.append((section, seconds))
    return out


def write_document(
    ctx: ValidationContext, results: Sequence[tuple[Section, float]], path: Path
) -> None:
    """Write the Markdown document and its JSON twin (``path`` with ``.json``)."""
    rows, figures = [], []
    for section, _ in results:
        for h in section.headlines:
            met = "" if h.met is None else ("yes" if h.met else "**NO**")
            rows.append([section.title, h.what, h.value, h.target, met])
            figures.append(
                {
                    "section": section.title,
                    "what": h.what,
                    "value": h.value,
                    "target": h.target,
                    "met": h.met,
                }
            )
    total = sum(s for _, s in results)
    head = [
        "# SpineWatch validation",
        "",
        f"Written by `make validate` (SpineWatch {__version__}, "
        f"{dt.date.today().isoformat()}, {total:.0f} s) from the real scans in `../shared/data` "
        "(origins and licences in its README) and synthetic phantoms. Real scans are never "
        "copied into the repository; the pictures below are renderings.",
        "",
        "## Headline figures",
        "",
        table(["section", "measure", "value", "target", "met"], rows),
    ]
    body = [f"## {s.title}\n\n{s.body}" for s, _ in results]
    path.write_text("\n".join(head) + "\n\n" + "\n\n".join(body) + "\n", encoding="utf-8")
    path.with_suffix(".json").write_text(
        json.dumps({"version": __version__, "figures": figures}, indent=2) + "\n", encoding="utf-8"
    )
