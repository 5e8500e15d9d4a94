"""Optional anatomy of the spine phantom: the atlas (C1) and the dens of C2, ribs, the sacrum.

Drawn only when :class:`spinewatch.imaging.phantom.PhantomSpec` asks (``atlas``, ``ribs``,
``sacrum``), so the default phantom stays bit-identical. Each function takes local coordinates
``u`` (right), ``v`` (anterior), ``w`` (superior) in mm in one vertebra's frame and returns a
mask of the same shape.

Anatomy (Standring (ed.), Gray's Anatomy, 42nd ed., 2020, "Cervical spine"): the atlas has no
body -- an anterior arch, two lateral masses and a posterior arch make a ring, with transverse
processes pierced by the transverse foramina; the dens of the axis projects cranially from C2's
body into the front of that ring (held against the anterior arch by the transverse ligament,
the atlanto-dental interval ~1-3 mm in adults), and there is no intervertebral disc between C1
and C2: the first disc is C2/C3. Sizes: the dens ~10 mm wide and ~15 mm tall above the body
(CT: transverse diameter 9.9 mm, antero-posterior 11.5 mm, Kulkarni et al., Indian J Orthop
2013;47:250; height 12.7-17.6 mm on 167 CTs, Makhlouf et al., Sci J Univ Benghazi); cervical
bodies ~15-18 mm wide and ~14 mm tall with ~4-5 mm discs (Panjabi et al., Spine 1991;16:861).
The ring's own dimensions here are engineering choices of that order (~72 mm across its
transverse processes, ~47 mm antero-posterior).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = [
    "ATLAS_LATERAL_MM",
    "CERVICAL_SIZES",
    "DENS_HEIGHT_MM",
    "DENS_RADIUS_MM",
    "RIB_LENGTH_MM",
    "SACRUM_HEIGHT_MM",
    "atlas_ring",
    "dens",
    "rib_extent",
    "ribs",
    "sacrum",
    "sacrum_extent",
]

Mask = npt.NDArray[np.bool_]

#: (half-width a, half-depth b, height H, gap below) per level C1..C7, mm, used with ``atlas``.
#: C1's "height" and "gap" only place its ring around the dens (no body, no C1/C2 disc): its
#: centre lies ~9 mm above C2's body.
CERVICAL_SIZES: dict[str, tuple[float, float, float, float]] = {
    "C1": (7.5, 7.5, 16.0, 1.0),
    "C2": (7.5, 7.5, 15.0, 4.5),
    "C3": (7.5, 7.5, 14.0, 4.5),
    "C4": (8.0, 7.6, 14.0, 4.5),
    "C5": (8.5, 7.8, 14.0, 4.5),
    "C6": (9.0, 8.0, 14.0, 5.0),
    "C7": (9.5, 8.2, 14.5, 5.0),
}
DENS_RADIUS_MM = 5.0
#: From the C2 body's centre plane to the tip, above half the body's height, mm.
DENS_HEIGHT_MM = 16.0
#: Lateral reach of the atlas (its transverse processes), mm.
ATLAS_LATERAL_MM = 36.0
#: Length of a drawn rib from its head, and its radius, mm.
RIB_LENGTH_MM = 75.0
RIB_RADIUS_MM = 3.0
#: A rib runs laterally, this many degrees backwards and descending 0.15 mm per mm.
_RIB_BACK_DEG = 10.0
_RIB_DESCENT = 0.15
#: Gap between the rib head and the body's side (the costovertebral joint), mm.
_RIB_JOINT_MM = 3.0


def dens(
    u: npt.NDArray[Any], v: npt.NDArray[Any], w: npt.NDArray[Any], half_height_mm: float
) -> tuple[Mask, Mask]:
    """(dens, its cortex) in C2's frame: a cylinder of ``DENS_RADIUS_MM`` on the body's axis
    from its centre plane up to ``DENS_HEIGHT_MM`` above ``half_height_mm``, ending in a
    hemispherical tip."""
    top = half_height_mm + DENS_HEIGHT_MM - DENS_RADIUS_MM
    rr = np.sqrt(u**2 + v**2)
    cyl = (rr <= DENS_RADIUS_MM) & (w >= 0.0) & (w <= top)
    r3 = np.sqrt(u**2 + v**2 + (w - top) ** 2)
    cap = (r3 <= DENS_RADIUS_MM) & (w > top)
    inside = cyl | cap
    depth = np.where(w > top, DENS_RADIUS_MM - r3, DENS_RADIUS_MM - rr)
    return inside, inside & (depth < 1.0)


def atlas_ring(u: npt.NDArray[Any], v: npt.NDArray[Any], w: npt.NDArray[Any]) -> Mask:
    """The atlas in C1's frame (its centre on the dens's axis): an elliptic ring -- anterior arch
    2 mm in front of the dens, lateral masses ~11 mm thick and 12 mm tall, the posterior arch
    behind a ~15 mm space for the cord -- and transverse processes with a transverse foramen."""
    v0 = -7.5  # the ring's centre: the dens lies in its anterior third
    inner = (u / 9.5) ** 2 + ((v - v0) / 14.5) ** 2 <= 1.0
    outer = (u / 21.0) ** 2 + ((v - v0) / 19.5) ** 2 <= 1.0
    tall = np.abs(w) <= np.where(np.abs(u) >= 9.5, 6.0, 4.0)
    ring = outer & ~inner & tall
    au = np.abs(u)
    transverse = (au >= 18.0) & (au <= ATLAS_LATERAL_MM) & (np.abs(v + 5.0) <= 4.0)
    transverse &= np.abs(w) <= 3.5
    foramen = (au - 27.0) ** 2 + (v + 5.0) ** 2 <= 9.0
    return np.asarray(ring | (transverse & ~foramen), dtype=bool)


def rib_extent(a_mm: float, h_mm: float) -> tuple[float, float]:
    """(lateral reach, lowest local w) of the ribs of a body of half-width ``a_mm`` and height
    ``h_mm``, mm: for fitting the phantom's grid around them."""
    reach = a_mm + _RIB_JOINT_MM + RIB_RADIUS_MM + RIB_LENGTH_MM + RIB_RADIUS_MM
    return reach, -0.05 * h_mm - _RIB_DESCENT * RIB_LENGTH_MM - RIB_RADIUS_MM


def ribs(
    u: npt.NDArray[Any],
    v: npt.NDArray[Any],
    w: npt.NDArray[Any],
    a_mm: float,
    b_mm: float,
    h_mm: float,
) -> Mask:
    """A pair of ribs (straight rods of ``RIB_RADIUS_MM``) whose heads lie ``_RIB_JOINT_MM``
    lateral to the body's side at mid-depth, just below its mid-height, running laterally and
    slightly backwards and downwards for ``RIB_LENGTH_MM``: what the landmark test looks at (a
    long slender bone whose medial end is next to the body, at its level). Kept clear of the
    transverse processes, which real ribs meet at a joint a voxel or two wide."""
    back = np.deg2rad(_RIB_BACK_DEG)
    d = np.array([np.cos(back), -np.sin(back), -_RIB_DESCENT])
    d /= np.linalg.norm(d)
    p0 = np.array([a_mm + _RIB_JOINT_MM + RIB_RADIUS_MM, -0.3 * b_mm, -0.05 * h_mm])
    au = np.abs(u)
    t = np.clip((au - p0[0]) * d[0] + (v - p0[1]) * d[1] + (w - p0[2]) * d[2], 0.0, RIB_LENGTH_MM)
    dist2 = (au - p0[0] - t * d[0]) ** 2 + (v - p0[1] - t * d[1]) ** 2 + (w - p0[2] - t * d[2]) ** 2
    return np.asarray(dist2 <= RIB_RADIUS_MM**2, dtype=bool)


#: The first sacral body's height below the lumbosacral disc (S1 with part of S2), mm.
SACRUM_HEIGHT_MM = 30.0
#: The alae reach this far from the midline; the ilia run from the sacroiliac joint, 1.5 mm
#: beyond, out to ``_ILIUM_REACH_MM`` (the wings flare to ~100-130 mm from the midline).
_ALA_MM = 52.0
_ILIUM_REACH_MM = 110.0
_ILIUM_THICK_MM = 8.0


def sacrum_extent(h_mm: float, disc_mm: float) -> tuple[float, float, float]:
    """(lateral reach, lowest w, highest w) of the sacrum and ilia drawn below a fifth lumbar
    vertebra of height ``h_mm`` with its disc ``disc_mm``, in L5's frame, mm."""
    top = -(h_mm / 2 + disc_mm)
    return _ILIUM_REACH_MM + 2.0, top - 50.0 - 2.0, top + 25.0 + 2.0


def sacrum(
    u: npt.NDArray[Any],
    v: npt.NDArray[Any],
    w: npt.NDArray[Any],
    a_mm: float,
    b_mm: float,
    h_mm: float,
    disc_mm: float,
) -> tuple[Mask, Mask, Mask, Mask]:
    """(disc, sacral body, its cortex, alae and ilia) in L5's frame: the lumbosacral disc below
    L5, the first sacral body (an elliptic cylinder like L5's), the alae carrying it laterally
    to the sacroiliac joints (1.5 mm wide) and the iliac wings beyond them, plates of
    ``_ILIUM_THICK_MM`` sloping forwards as they run laterally -- what the sacrum landmark
    looks for: bone continuous from the body to >= 70 mm on both sides just below the disc."""
    top = -(h_mm / 2 + disc_mm)
    ell = (u / a_mm) ** 2 + (v / b_mm) ** 2
    disc = (ell <= 1.0) & (w > top) & (w < -h_mm / 2 + 2.0)
    body = (ell <= 1.0) & (w <= top) & (w >= top - SACRUM_HEIGHT_MM)
    depth = np.minimum((1.0 - np.sqrt(ell)) * min(a_mm, b_mm), np.minimum(top - w, w - top + 30))
    cortex = body & (depth < 1.0)
    au = np.abs(u)
    alae = (au <= _ALA_MM) & (v >= -b_mm) & (v <= 0.4 * b_mm)
    alae &= (w <= top - 4.0) & (w >= top - SACRUM_HEIGHT_MM)
    mid_v = -10.0 + 0.5 * (au - _ALA_MM - 1.5)
    ilia = (au >= _ALA_MM + 1.5) & (au <= _ILIUM_REACH_MM)
    ilia &= (np.abs(v - mid_v) <= _ILIUM_THICK_MM / 2) & (w >= top - 50.0) & (w <= top + 25.0)
    return disc, body, cortex, np.asarray((alae | ilia) & ~body, dtype=bool)
