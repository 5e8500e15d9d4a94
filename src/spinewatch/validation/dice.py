"""Overlap of a predicted vertebra label map with a reference: Dice per vertebra and where the
misses go.

Two Dice figures per reference vertebra (both label maps on one grid, arrays of shape (I, J, K)):

* **matched**: against the predicted label that overlaps it most -- the shape alone, whatever
  the name (a segmenter that names levels relative to each other is judged on its shapes);
* **same id**: against the predicted label with the same id -- shape *and* level name.

:func:`vertebra_overlap` also splits the error (Taha and Hanbury, BMC Med Imaging 2015, on why
one overlap figure hides the kind of error): the reference voxels *missed* (predicted
background), those *given to a neighbour* (another predicted label: a boundary placed off the
disc or two vertebrae merged), and the predicted voxels that *leak* outside the reference, with
what the reference has there (background, a neighbour vertebra, a rib, the aorta...).

>>> import numpy as np
>>> ref = np.zeros((4, 1, 1), dtype=np.uint8); ref[:2] = 30; ref[2:] = 31
>>> pred = np.full((4, 1, 1), 31, dtype=np.uint8)   # both merged into one label
>>> o = vertebra_overlap(pred, ref, 30)
>>> o.best_label, round(o.matched_dice, 2), o.same_id_dice, o.given_to_neighbour
(31, 0.67, 0.0, 0.0)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = ["VertebraOverlap", "vertebra_overlap"]


@dataclass(frozen=True)
class VertebraOverlap:
    """One reference vertebra against a predicted map.

    ``reference_voxels``: its size; ``best_label``: the predicted label overlapping it most (0:
    missed entirely); ``matched_dice`` / ``same_id_dice`` (module docstring); ``missed`` and
    ``given_to_neighbour``: fractions of the reference vertebra predicted as background / as a
    label other than ``best_label``; ``leaked``: fraction of the ``best_label`` prediction lying
    outside this reference vertebra; ``leaked_into``: what the reference has under that leak,
    as (name, fraction of the prediction) pairs, largest first.
    """

    reference_label: int
    reference_voxels: int
    best_label: int
    matched_dice: float
    same_id_dice: float
    missed: float
    given_to_neighbour: float
    leaked: float
    leaked_into: tuple[tuple[str, float], ...]


def _dice(a: npt.NDArray[np.bool_], b: npt.NDArray[np.bool_]) -> float:
    total = int(a.sum()) + int(b.sum())
    return 0.0 if total == 0 else 2.0 * int(np.count_nonzero(a & b)) / total


def vertebra_overlap(
    pred: npt.NDArray[np.integer],
    ref: npt.NDArray[np.integer],
    label: int,
    *,
    name_of: Callable[[int], str] = str,
) -> VertebraOverlap:
    """The overlap of reference vertebra ``label`` with ``pred`` (same shape, same grid).

    ``name_of`` names a reference id under a leak (0 is always "background").
    """
    if pred.shape != ref.shape:
        raise ValueError(f"maps of shapes {pred.shape} and {ref.shape}: expected one grid")
    m = ref == label
    n = int(m.sum())
    if n == 0:
        raise ValueError(f"reference label {label} is absent")
    vals, counts = np.unique(pred[m], return_counts=True)
    fg = vals > 0
    best = int(vals[fg][np.argmax(counts[fg])]) if fg.any() else 0
    missed = float(counts[~fg].sum()) / n
    given = float(counts[fg].sum() - (counts[vals == best].sum() if best else 0)) / n
    if best == 0:
        return VertebraOverlap(label, n, 0, 0.0, _dice(m, pred == label), missed, given, 0.0, ())
    p = pred == best
    outside = p & ~m
    n_pred = int(p.sum())
    under, under_counts = np.unique(ref[outside], return_counts=True)
    named: dict[str, int] = {}
    for u, c in zip(under.tolist(), under_counts.tolist(), strict=True):
        key = "background" if u == 0 else name_of(int(u))
        named[key] = named.get(key, 0) + int(c)
    into = tuple(
        (k, v / n_pred) for k, v in sorted(named.items(), key=lambda kv: kv[1], reverse=True)
    )
    return VertebraOverlap(
        reference_label=label,
        reference_voxels=n,
        best_label=best,
        matched_dice=_dice(m, p),
        same_id_dice=_dice(m, pred == label),
        missed=missed,
        given_to_neighbour=given,
        leaked=int(outside.sum()) / n_pred,
        leaked_into=into,
    )
