"""Vertebrae measured in parallel threads, results in the vertebrae's own order.

Each vertebra's measurement works on its own crop, and the heavy steps (numpy, scipy.ndimage,
cc3d) release the GIL, so threads share the cores without copying the CT. Results come back in
the order of the input, whatever order the threads finish in, so a report never depends on the
thread count. ``SPINEWATCH_ANALYSIS_THREADS`` sets the count (default: the machine's cores, at
most :data:`MAX_DEFAULT_THREADS`; 1 runs everything in the calling thread).

>>> ordered_map(lambda x: x * x, [3, 1, 2], threads=2)
[9, 1, 4]
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from spinewatch.core.errors import InputError

__all__ = [
    "ENVIRONMENT_VARIABLE",
    "MAX_DEFAULT_THREADS",
    "ThreadSettingError",
    "analysis_threads",
    "ordered_imap",
    "ordered_map",
]

T = TypeVar("T")
R = TypeVar("R")

ENVIRONMENT_VARIABLE = "SPINEWATCH_ANALYSIS_THREADS"
#: Default thread count at most this: each thread holds one vertebra's working arrays.
MAX_DEFAULT_THREADS = 4


class ThreadSettingError(InputError):
    """A thread count that is not a whole number >= 1."""


def analysis_threads(threads: int | None = None, environ: Mapping[str, str] | None = None) -> int:
    """``threads`` when given, else ``SPINEWATCH_ANALYSIS_THREADS``, else the machine's core
    count (at most :data:`MAX_DEFAULT_THREADS`); refused unless a whole number >= 1."""
    if threads is None:
        raw = (os.environ if environ is None else environ).get(ENVIRONMENT_VARIABLE, "").strip()
        if not raw:
            return max(1, min(os.cpu_count() or 1, MAX_DEFAULT_THREADS))
        try:
            threads = int(raw)
        except ValueError:
            threads = 0
        if threads < 1:
            raise ThreadSettingError(
                f"{ENVIRONMENT_VARIABLE}={raw!r}: expected a whole number >= 1"
            )
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ThreadSettingError(f"thread count {threads!r}: expected a whole number >= 1")
    return threads


def ordered_imap(fn: Callable[[T], R], items: Sequence[T], threads: int) -> Iterator[R]:
    """``fn`` over ``items`` on ``threads`` threads, yielded in the order of ``items`` (an
    exception raised by ``fn`` comes out at its item, as in a plain loop)."""
    if threads <= 1 or len(items) <= 1:
        for item in items:
            yield fn(item)
        return
    with ThreadPoolExecutor(max_workers=min(threads, len(items))) as pool:
        yield from pool.map(fn, items)


def ordered_map(fn: Callable[[T], R], items: Sequence[T], threads: int) -> list[R]:
    """:func:`ordered_imap` as a list."""
    return list(ordered_imap(fn, items, threads))
