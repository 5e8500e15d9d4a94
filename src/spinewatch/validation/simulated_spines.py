"""Spines simulated from the published normal vertebral shapes: healthy populations and
fractures with known truth, to measure Genant grading's false-positive and detection rates.

Why: the real scans hold only ten vertebrae believed healthy, far too few for a rate of 2 %.
A simulated population drawn from the *same* normative distributions the grading uses
(:mod:`spinewatch.core.vertebral_shape`) tells how often natural variation plus measurement noise
alone crosses a Genant threshold.

How one spine is drawn (:func:`simulated_spine`, seeded :class:`random.Random`):

* the L1 posterior height ``Hp`` ~ N(27 mm, 2 mm); every level's ``Hp`` is it times the normal
  level-to-level growth (:func:`~spinewatch.core.vertebral_shape.posterior_scale`) times an
  independent factor ``1 + N(0, sd / sqrt(2))`` whose adjacent ratio has the tabulated step SD;
* ``Ha = Hp x N(anterior ratio mean, sd)`` and ``Hm = (Ha + Hp) / 2 x N(middle ratio mean,
  sd)`` of the level (column ratios as measured at 15 / 50 / 85 % of the body's depth);
* :func:`with_noise` adds Gaussian measurement noise (SD in mm) to every height.

A fracture (:func:`deform_heights`) is relative to the body's *own* heights, as
:func:`spinewatch.validation.fracture_insertion.deform_body` draws it in a real mask: a wedge
lowers ``Ha`` by the loss (and ``Hm`` by half of it), a biconcave ``Hm``, a crush all three.

Heights in mm; levels are :class:`~spinewatch.core.levels.VertebralLevel`.

>>> import random
>>> spine = simulated_spine(random.Random(0), PUBLISHED)
>>> [str(lv.value) for lv in spine][:3], len(spine[PUBLISHED[0]])
(['T9', 'T10', 'T11'], 3)
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from spinewatch.core.genant import GenantAssessment, GenantGrade
from spinewatch.core.levels import VertebralLevel
from spinewatch.core.vertebral_shape import normal_shape, posterior_scale
from spinewatch.imaging.grading import grade_spine

__all__ = [
    "DEFORMITY_KINDS",
    "PUBLISHED",
    "THORACOLUMBAR",
    "SimHeights",
    "SimulatedFracture",
    "deform_heights",
    "healthy_rate",
    "normal_heights",
    "normal_spine",
    "simulated_fractures",
    "simulated_spine",
    "with_noise",
]

#: The levels whose normal Ha/Hp ratio is published (T9-L5).
PUBLISHED: tuple[VertebralLevel, ...] = tuple(
    VertebralLevel.parse(x) for x in ("T9", "T10", "T11", "T12", "L1", "L2", "L3", "L4", "L5")
)
#: T4-L5: T4-T8 use the wider engineering fallback SD of :mod:`spinewatch.core.vertebral_shape`.
THORACOLUMBAR: tuple[VertebralLevel, ...] = (
    tuple(VertebralLevel.parse(f"T{i}") for i in range(4, 9)) + PUBLISHED
)
DEFORMITY_KINDS = ("wedge", "biconcave", "crush")

#: Mean L1 posterior height (mm) and its between-person SD of the simulated population: an
#: engineering choice of a typical adult (Palm et al. 2025 report the T9-L1 growth, not this).
L1_POSTERIOR_MM = (27.0, 2.0)


@dataclass(frozen=True)
class SimHeights:
    """Anterior, middle and posterior body heights, mm (what ``grade_spine`` reads)."""

    anterior_mm: float
    middle_mm: float
    posterior_mm: float


@dataclass(frozen=True)
class SimulatedFracture:
    """One fracture drawn into a simulated spine and how it was graded.

    ``loss``: the drawn loss (fraction, relative to the body's own heights); ``adjacent``: a
    second fracture was drawn next to it; ``assessment``: the grade ``grade_spine`` gave.
    """

    level: VertebralLevel
    kind: str
    loss: float
    adjacent: bool
    assessment: GenantAssessment

    @property
    def true_grade(self) -> GenantGrade:
        """Genant's grade of the drawn loss."""
        return GenantGrade.from_height_loss_pct(100.0 * self.loss)


def normal_heights(level: VertebralLevel, posterior_mm: float) -> SimHeights:
    """The mean normal body of ``level`` with this posterior height (mm)."""
    shape = normal_shape(level)
    ha = shape.anterior_ratio.mean * posterior_mm
    return SimHeights(ha, shape.middle_ratio.mean * (ha + posterior_mm) / 2, posterior_mm)


def normal_spine(
    levels: Sequence[VertebralLevel], l1_posterior_mm: float = L1_POSTERIOR_MM[0]
) -> dict[VertebralLevel, SimHeights]:
    """Every level at its mean normal shape, posterior heights scaled from L1's."""
    return {lv: normal_heights(lv, l1_posterior_mm * posterior_scale("L1", lv)) for lv in levels}


def deform_heights(h: SimHeights, kind: str, loss: float) -> SimHeights:
    """``h`` with a ``kind`` deformity of ``loss`` (fraction 0-1) relative to ``h`` itself."""
    if kind == "wedge":
        return SimHeights(h.anterior_mm * (1 - loss), h.middle_mm * (1 - loss / 2), h.posterior_mm)
    if kind == "biconcave":
        return SimHeights(h.anterior_mm, h.middle_mm * (1 - loss), h.posterior_mm)
    if kind == "crush":
        return SimHeights(
            h.anterior_mm * (1 - loss), h.middle_mm * (1 - loss), h.posterior_mm * (1 - loss)
        )
    raise ValueError(f"deformity kind {kind!r}; expected one of {', '.join(DEFORMITY_KINDS)}")


def simulated_spine(
    rng: random.Random, levels: Sequence[VertebralLevel]
) -> dict[VertebralLevel, list[float]]:
    """One healthy spine drawn from the normative distributions: level -> [Ha, Hm, Hp] mm."""
    base_l1 = rng.gauss(*L1_POSTERIOR_MM)
    out = {}
    for lv in levels:
        shape = normal_shape(lv)
        # independent per-level deviation whose adjacent ratio has the tabulated step SD
        hp = (
            base_l1
            * posterior_scale("L1", lv)
            * (1 + rng.gauss(0, shape.posterior_step.sd / 2**0.5))
        )
        ha = hp * rng.gauss(shape.anterior_ratio.mean, shape.anterior_ratio.sd)
        hm = (ha + hp) / 2 * rng.gauss(shape.middle_ratio.mean, shape.middle_ratio.sd)
        out[lv] = [ha, hm, hp]
    return out


def with_noise(
    rng: random.Random, spine: dict[VertebralLevel, list[float]], noise_mm: float
) -> dict[VertebralLevel, SimHeights]:
    """The spine as measured: Gaussian noise of SD ``noise_mm`` on every height."""
    return {lv: SimHeights(*(x + rng.gauss(0, noise_mm) for x in v)) for lv, v in spine.items()}


def healthy_rate(
    levels: Sequence[VertebralLevel], noise_mm: float, n_spines: int = 400, seed: int = 7
) -> tuple[float, int]:
    """Share of simulated healthy vertebrae graded >= 1, and how many were graded."""
    rng = random.Random(seed)
    n = positives = 0
    for _ in range(n_spines):
        grades = grade_spine(with_noise(rng, simulated_spine(rng, levels), noise_mm))
        n += len(grades)
        positives += sum(g.assessment.is_fracture for g in grades.values())
    return positives / n, n


def simulated_fractures(
    n_spines: int = 400,
    noise_mm: float = 1.0,
    *,
    levels: Sequence[VertebralLevel] = PUBLISHED,
    loss_range: tuple[float, float] = (0.25, 0.5),
    seed: int = 11,
) -> list[SimulatedFracture]:
    """Grade-2 and -3 fractures drawn into simulated spines, each graded in its spine.

    Per spine: one level (not the first or the last two) gets a random kind and a loss drawn
    uniformly from ``loss_range``; half the time the next level caudally gets one too.
    """
    rng = random.Random(seed)
    out: list[SimulatedFracture] = []
    for _ in range(n_spines):
        spine = simulated_spine(rng, levels)
        i = rng.randrange(1, len(levels) - 2)
        targets = [levels[i]] + ([levels[i + 1]] if rng.random() < 0.5 else [])
        truth = {}
        for lv in targets:
            kind, loss = rng.choice(DEFORMITY_KINDS), rng.uniform(*loss_range)
            d = deform_heights(SimHeights(*spine[lv]), kind, loss)
            spine[lv] = [d.anterior_mm, d.middle_mm, d.posterior_mm]
            truth[lv] = (kind, loss)
        grades = grade_spine(with_noise(rng, spine, noise_mm))
        for lv, (kind, loss) in truth.items():
            out.append(SimulatedFracture(lv, kind, loss, len(targets) > 1, grades[lv].assessment))
    return out
