"""The fuzz tally: cases run, outcomes and the largest memory peak per reader, printed at the end.

Each fuzz test calls :func:`record` once per generated case; ``pytest_terminal_summary`` prints
one line per reader (``-rA`` not needed), e.g.
``fuzz nifti: 300 cases (41 read, 259 refused), 0 tracebacks, peak 9.1 MB (bound 64 MB)``.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import pytest


@dataclass
class Tally:
    cases: int = 0
    read: int = 0
    refused: int = 0
    tracebacks: int = 0
    over_bound: int = 0
    peak_mb: float = 0.0


TALLY: dict[str, Tally] = defaultdict(Tally)


def record(reader: str, *, outcome: str, peak_mb: float, bound_mb: float) -> None:
    """Count one case: ``outcome`` is ``read``, ``refused`` or ``traceback``."""
    tally = TALLY[reader]
    tally.cases += 1
    setattr(
        tally,
        outcome if outcome != "traceback" else "tracebacks",
        1 + getattr(tally, outcome if outcome != "traceback" else "tracebacks"),
    )
    tally.over_bound += int(peak_mb > bound_mb)
    tally.peak_mb = max(tally.peak_mb, peak_mb)


@pytest.hookimpl(trylast=True)
def pytest_terminal_summary(terminalreporter) -> None:  # type: ignore[no-untyped-def]
    if not TALLY:
        return
    from test_fuzz_readers import MEMORY_BOUND_MB

    terminalreporter.section("fuzz tally")
    total = 0
    for reader, tally in sorted(TALLY.items()):
        total += tally.cases
        terminalreporter.write_line(
            f"fuzz {reader}: {tally.cases} cases ({tally.read} read, {tally.refused} refused "
            f"with an input error), {tally.tracebacks} tracebacks, {tally.over_bound} over the "
            f"memory bound; peak {tally.peak_mb:.1f} MB (bound {MEMORY_BOUND_MB} MB)"
        )
    terminalreporter.write_line(f"fuzz total: {total} generated cases")
