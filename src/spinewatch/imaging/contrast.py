"""Whether a CT was taken after intravenous contrast, and in which phase.

Iodinated contrast raises the attenuation of vertebral marrow, so the density thresholds are
shifted by the phase (:attr:`spinewatch.core.acquisition.ContrastPhase.density_offset_hu`). The
phase is decided, in this order:

1. **The user** (``--contrast-phase``, the upload form, the batch manifest) -- always wins; a
   header that says otherwise is quoted in the evidence.
2. **The DICOM header** (:func:`phase_from_dicom`): Contrast/Bolus Agent Phase (0018,9344)
   (top level or in the Contrast/Bolus Usage Sequence); then keywords of SeriesDescription
   (0008,103E) and ProtocolName (0018,1030) in English, German and French
   (:func:`phase_from_text`: "native"/"ohne KM"/"sans injection" -> native, "arterial"/"CTA" ->
   arterial, "PV"/"portal"/"venös"/"veineux" -> portal-venous, "delayed"/"Spät"/"tardif" ->
   delayed, "KM"/"contrast"/"injecté" -> contrast of unknown phase); then Contrast/Bolus Agent
   (0018,0010) filled in (-> contrast of unknown phase, unless Contrast/Bolus Route (0018,1040)
   says oral or rectal: those do not reach the marrow, so native). A description saying native
   wins over a filled-in agent, which scanners often copy to every series of an examination.
3. **The image** (:func:`detect_contrast`, run by the analysis once the vertebrae are found,
   only when nothing above decided): a contrast-filled aorta or inferior vena cava next to the
   vertebral bodies. Found -> "contrast, phase unknown" (*detected*); not found -> native stays
   *assumed* -- an image never proves the absence of contrast.

Image detection, per vertebra from T4 to L4 (where the aorta and the IVC run beside the
column), on planes perpendicular to the vertebra's superior axis through its body centroid and
:data:`PLANE_OFFSETS_MM` above and below it, in front of the body (anterior
:data:`SEARCH_ANTERIOR_MM`, left-right :data:`SEARCH_HALF_WIDTH_MM`), voxels of the vertebra
labels (dilated by :data:`BONE_MARGIN_MM`) left out:

* voxels at :data:`ENHANCED_HU` are grouped into connected regions;
* a vessel candidate is a filled, round-to-oval region (area at least :data:`MIN_FILL_RATIO` of
  its moment ellipse, axis ratio at most :data:`MAX_AXIS_RATIO`) :data:`VESSEL_DIAMETER_MM`
  across, whose eroded interior has a median of at least :data:`MIN_LUMEN_HU` and an
  interquartile range below :data:`MAX_LUMEN_IQR_HU` (a lumen is homogeneous; bone is not);
* it must be a tube along the column: found on the middle plane and again on a neighbouring
  plane within :data:`MAX_SHIFT_MM`.

Figures: unenhanced blood in the aorta and IVC measures about 35-50 HU (descending aorta +36 HU
in anaemic and +44 HU in non-anaemic patients, "Diagnostic Utility of Non-contrast Thoracic
Computed Tomography in the Detection of Anemia and Its Severity", 2025; abdominal aorta 37.7 HU
and IVC 36.1 HU in "Enhancement of anemia detection by correlating computed tomography findings
of abdominal aorta and inferior vena cava with laboratory investigations"), and none of 166
normal subjects exceeded 70 HU in the dural sinuses ("Hemoconcentration correlates with CT
attenuation in cerebral venous sinuses", AJNR, PMC7966032). After an intravenous bolus the
aorta rises by 300-336 HU in the hepatic arterial phase and still by 117-125 HU at 45-55 s, the
portal-venous phase ("MDCT of the Liver and Hypervascular Hepatocellular Carcinomas: Optimizing
Scan Delays for Bolus-Tracking Techniques of Hepatic Arterial and Portal Venous Phases", AJR) --
about 155-165 HU. :data:`MIN_LUMEN_HU` = 120 HU lies between the two (an engineering choice:
the 150 HU sometimes quoted would miss part of the portal-venous phase); a delayed phase whose
aorta has fallen below it is not detected (then native stays assumed).

Limits: positive oral contrast in a bowel loop lying against the spine, or a stent graft, could
pass for an enhanced vessel; the phase itself is not told from one vessel.
"""

from __future__ import annotations

import itertools
import logging
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from spinewatch.core.acquisition import Acquisition, ContrastPhase, Modality
from spinewatch.core.levels import VertebralLevel

__all__ = [
    "BONE_MARGIN_MM",
    "ENHANCED_HU",
    "MAX_AXIS_RATIO",
    "MAX_LUMEN_IQR_HU",
    "MAX_SHIFT_MM",
    "MIN_FILL_RATIO",
    "MIN_LUMEN_HU",
    "PLANE_OFFSETS_MM",
    "SEARCH_ANTERIOR_MM",
    "SEARCH_HALF_WIDTH_MM",
    "VESSEL_DIAMETER_MM",
    "ContrastDecision",
    "VesselFinding",
    "decide_contrast_at_input",
    "detect_contrast",
    "parse_phase_request",
    "phase_from_dicom",
    "phase_from_text",
    "resolve_contrast",
]

log = logging.getLogger(__name__)

ENHANCED_HU = (100.0, 900.0)
MIN_LUMEN_HU = 120.0
MAX_LUMEN_IQR_HU = 150.0
VESSEL_DIAMETER_MM = (10.0, 45.0)
MIN_FILL_RATIO = 0.75
MAX_AXIS_RATIO = 2.5
MAX_SHIFT_MM = 6.0
PLANE_OFFSETS_MM = (-8.0, 0.0, 8.0)
SEARCH_ANTERIOR_MM = (5.0, 75.0)
SEARCH_HALF_WIDTH_MM = 50.0
BONE_MARGIN_MM = 3.0
_PIXEL_MM = 1.0
_VESSEL_LEVELS = (VertebralLevel.parse("T4"), VertebralLevel.parse("L4"))
_MAX_SITES = 8

# -- the header -------------------------------------------------------------------------------


def _words(text: str) -> tuple[str, ...]:
    """``"a|b c"`` -> ``("a", "b c")``: a vocabulary of folded words and phrases."""
    return tuple(text.split("|"))


#: Phrases (folded: lower case, accents and punctuation removed) meaning no IV contrast.
_NATIVE = _words(
    "native|nativ|nativphase|non contrast|noncontrast|non enhanced|nonenhanced|unenhanced|"
    "without contrast|w o contrast|wo contrast|no contrast|pre contrast|precontrast|plain|nect|"
    "ohne km|ohne kontrast|ohne kontrastmittel|sans injection|sans contraste|non injecte|sans iv"
)
_PHASES: tuple[tuple[ContrastPhase, tuple[str, ...]], ...] = (
    (
        ContrastPhase.ARTERIAL,
        _words(
            "arterial|arteriell|arterielle|arteriel|art|angio|angiography|angiographie|cta|"
            "early arterial|late arterial"
        ),
    ),
    (
        ContrastPhase.PORTAL_VENOUS,
        _words(
            "portal|portal venous|portalvenous|portovenous|portalvenos|pv|pvp|venous|venos|"
            "venoes|veineux|veineuse|portale"
        ),
    ),
    (
        ContrastPhase.DELAYED,
        _words(
            "delayed|delay|late|spat|spaet|spatphase|tardif|tardive|equilibrium|equilibre|"
            "excretory|urographic"
        ),
    ),
)
_CONTRAST = _words(
    "contrast|contraste|kontrast|kontrastmittel|km|mit km|enhanced|cect|iv contrast|injected|"
    "injecte|injection|avec injection"
)
_ARTERIAL_FIRST = ("early arterial", "late arterial", "spat arteriell", "arterielle tardive")
_C_PLUS = re.compile(r"(?<![a-z0-9])(c\+|\+c)(?![a-z0-9])", re.IGNORECASE)
_NO_AGENT = {"", "none", "no", "n/a", "na", "nil", "0", "-", "keine", "kein", "aucun", "nativ"}

#: DICOM Contrast/Bolus Agent Phase (0018,9344) defined terms.
_AGENT_PHASE = {
    "PRE_CONTRAST": ContrastPhase.NATIVE,
    "ARTERIAL": ContrastPhase.ARTERIAL,
    "CAPILLARY": ContrastPhase.ARTERIAL,
    "VENOUS": ContrastPhase.PORTAL_VENOUS,
    "PORTAL_VENOUS": ContrastPhase.PORTAL_VENOUS,
    "DELAYED": ContrastPhase.DELAYED,
    "STEADY_STATE": ContrastPhase.DELAYED,
    "POST_CONTRAST": ContrastPhase.UNKNOWN_PHASE,
    "IMMEDIATE": ContrastPhase.UNKNOWN_PHASE,
    "DYNAMIC": ContrastPhase.UNKNOWN_PHASE,
}


def _fold(text: str) -> str:
    """Lower case, accents and umlauts dropped, ``ß`` -> ``ss``, non-alphanumerics -> spaces."""
    text = unicodedata.normalize("NFKD", text.replace("ß", "ss"))
    text = "".join(c for c in text if not unicodedata.combining(c)).lower()
    return " ".join(re.sub(r"[^a-z0-9]+", " ", text).split())


def _has(folded: str, phrases: Iterable[str]) -> bool:
    padded = f" {folded} "
    return any(f" {p} " in padded for p in phrases)


def phase_from_text(text: str | None) -> ContrastPhase | None:
    """The contrast phase a free-text series description or protocol name states, if any.

    >>> phase_from_text("ABD PV 3mm").value
    'portal_venous'
    >>> phase_from_text("Abdomen nativ").value
    'native'
    >>> phase_from_text("Thorax mit KM").value
    'contrast_unknown_phase'
    >>> phase_from_text("T2 sag") is None
    True
    """
    if not text:
        return None
    folded = _fold(text)
    if _has(folded, _NATIVE):
        return ContrastPhase.NATIVE
    if _has(folded, _ARTERIAL_FIRST):
        return ContrastPhase.ARTERIAL
    found = {phase for phase, words in _PHASES if _has(folded, words)}
    if len(found) == 1:
        return found.pop()
    if found or _has(folded, _CONTRAST) or _C_PLUS.search(text):
        return ContrastPhase.UNKNOWN_PHASE  # several phases named (a multiphase series?)
    return None


def _text(ds: Any, keyword: str) -> str:
    value = ds.get(keyword) if hasattr(ds, "get") else None
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    try:
        return "/".join(str(v) for v in value).strip()
    except TypeError:
        return str(value).strip()


def _agent_phase(ds: Any) -> str:
    phase = _text(ds, "ContrastBolusAgentPhase")
    if phase:
        return phase
    usage = ds.get("ContrastBolusUsageSequence") if hasattr(ds, "get") else None
    for item in usage or ():
        phase = _text(item, "ContrastBolusAgentPhase")
        if phase:
            return phase
    return ""


def phase_from_dicom(ds: Any) -> tuple[ContrastPhase, str] | None:
    """``(phase, evidence)`` from a DICOM header (pydicom Dataset or a mapping by keyword), or
    None when the header says nothing about contrast. Order: see the module docstring."""
    agent_phase = _agent_phase(ds).upper()
    if agent_phase in _AGENT_PHASE:
        return _AGENT_PHASE[agent_phase], f"DICOM ContrastBolusAgentPhase {agent_phase!r}"
    for keyword in ("SeriesDescription", "ProtocolName"):
        value = _text(ds, keyword)
        phase = phase_from_text(value)
        if phase is not None:
            return phase, f"DICOM {keyword} {value!r}"
    agent = _text(ds, "ContrastBolusAgent")
    if agent.lower() in _NO_AGENT or _fold(agent) in _NO_AGENT:
        return None
    route = _text(ds, "ContrastBolusRoute")
    if _fold(route) in ("oral", "rectal", "po", "per os"):
        return (
            ContrastPhase.NATIVE,
            f"DICOM ContrastBolusAgent {agent!r} given by ContrastBolusRoute {route!r}: no "
            "intravenous contrast reaches the marrow",
        )
    return ContrastPhase.UNKNOWN_PHASE, f"DICOM ContrastBolusAgent (0018,0010) {agent!r}"


def parse_phase_request(value: ContrastPhase | str | None) -> ContrastPhase | None:
    """``"auto"``/None -> None (decide from the header or the image); else the phase."""
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "auto")):
        return None
    return ContrastPhase.parse(value)


@dataclass(frozen=True)
class ContrastDecision:
    """The phase decided at input, its source (dicom/user/assumed) and evidence."""

    phase: ContrastPhase
    source: str
    evidence: str


def decide_contrast_at_input(
    requested: ContrastPhase | str | None,
    *,
    modality: Modality,
    header: Any = None,
) -> ContrastDecision:
    """The contrast phase known when the image is read (before the image itself is checked).

    ``header``: a DICOM dataset (or keyword mapping) of the series, None for NIfTI. An MRI has
    no CT phase: anything but auto/native is refused by :class:`Acquisition`.
    """
    wanted = parse_phase_request(requested)
    if modality is Modality.MR:
        phase = wanted or ContrastPhase.NATIVE
        return ContrastDecision(phase, "user" if wanted else "assumed", "MRI: no CT contrast phase")
    from_header = phase_from_dicom(header) if header is not None else None
    if wanted is not None:
        note = ""
        if from_header is not None and from_header[0] is not wanted:
            note = f" ({from_header[1]} suggested {from_header[0].label})"
        return ContrastDecision(wanted, "user", f"set by the user{note}")
    if from_header is not None:
        return ContrastDecision(from_header[0], "dicom", from_header[1])
    where = "the DICOM header" if header is not None else "a NIfTI file"
    return ContrastDecision(ContrastPhase.NATIVE, "assumed", f"no contrast information in {where}")


# -- the image --------------------------------------------------------------------------------


@dataclass(frozen=True)
class VesselFinding:
    """An enhanced vessel-like tube: where (in front of which vertebra), size and attenuation."""

    level: VertebralLevel
    diameter_mm: float
    median_hu: float
    side: str  # "left", "right" or "midline" of the vertebra, as the patient's

    def describe(self) -> str:
        side = "" if self.side == "midline" else f"-{self.side}"
        return (
            f"a tubular blood-pool region {self.diameter_mm:.0f} mm across at median "
            f"{self.median_hu:.0f} HU anterior{side} of {self.level}, where unenhanced blood "
            "measures about 35-50 HU"
        )


@dataclass(frozen=True)
class _Candidate:
    u_mm: float
    v_mm: float
    diameter_mm: float
    median_hu: float


def _sample_box(
    volume: npt.NDArray[Any], vox: npt.NDArray[np.float64], order: int, cval: float
) -> npt.NDArray[np.float64]:
    """Values at fractional voxel indices ``vox`` (..., 3), read from the smallest box only."""
    from scipy import ndimage

    shape = np.asarray(volume.shape)
    flat = vox.reshape(-1, 3)
    inside = np.all((flat >= -0.5) & (flat <= shape - 0.5), axis=1)
    out = np.full(flat.shape[0], cval, dtype=np.float64)
    if not inside.any():
        return out.reshape(vox.shape[:-1])
    lo = np.maximum(np.floor(flat[inside].min(axis=0)).astype(int) - 1, 0)
    hi = np.minimum(np.ceil(flat[inside].max(axis=0)).astype(int) + 2, shape)
    box = np.asarray(volume[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]])
    box = box.astype(np.float32) if order else box
    coords = (flat[inside] - lo).T
    out[inside] = ndimage.map_coordinates(box, coords, order=order, mode="nearest")
    return out.reshape(vox.shape[:-1])


def _plane(
    hu: npt.NDArray[Any],
    labels: npt.NDArray[Any],
    vertebra_labels: npt.NDArray[np.int64],
    grid: Any,
    frame: Any,
    offset_mm: float,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_]]:
    """HU and the usable-pixel mask of one search plane, axes (left-right u, anterior v).

    Only the plane's points are read (never the whole volume); vertebra pixels are left out
    with a margin of BONE_MARGIN_MM in the plane.
    """
    from scipy import ndimage

    u = np.arange(-SEARCH_HALF_WIDTH_MM, SEARCH_HALF_WIDTH_MM + 1e-6, _PIXEL_MM)
    v = np.arange(SEARCH_ANTERIOR_MM[0], SEARCH_ANTERIOR_MM[1] + 1e-6, _PIXEL_MM)
    uu, vv = np.meshgrid(u, v, indexing="ij")
    local = np.stack([uu, vv, np.full_like(uu, offset_mm)], axis=-1)
    vox = grid.to_voxel(frame.to_world(local))
    values = _sample_box(hu, vox, order=1, cval=np.nan)
    bone = np.isin(_sample_box(labels, vox, order=0, cval=0.0), vertebra_labels)
    steps = max(1, round(BONE_MARGIN_MM / _PIXEL_MM))
    bone = ndimage.binary_dilation(bone, iterations=steps)
    return values, np.isfinite(values) & ~bone


def _candidates(values: npt.NDArray[np.float64], usable: npt.NDArray[np.bool_]) -> list[_Candidate]:
    from scipy import ndimage

    lo, hi = ENHANCED_HU
    mask = usable & (values >= lo) & (values <= hi)
    components, _ = ndimage.label(mask)
    found = []
    for index, sl in enumerate(ndimage.find_objects(components), start=1):
        if sl is None:
            continue
        comp = components[sl] == index
        area_mm2 = float(comp.sum()) * _PIXEL_MM**2
        diameter = 2.0 * float(np.sqrt(area_mm2 / np.pi))
        if not VESSEL_DIAMETER_MM[0] <= diameter <= VESSEL_DIAMETER_MM[1]:
            continue
        pts = np.argwhere(comp).astype(np.float64) * _PIXEL_MM
        eig = np.linalg.eigvalsh(np.cov(pts.T) + np.eye(2) * _PIXEL_MM**2 / 12.0)
        ellipse_mm2 = 4.0 * np.pi * float(np.sqrt(max(eig[0] * eig[1], 1e-9)))
        if area_mm2 / ellipse_mm2 < MIN_FILL_RATIO or np.sqrt(eig[1] / eig[0]) > MAX_AXIS_RATIO:
            continue
        interior = ndimage.binary_erosion(comp)
        lumen = values[sl][interior if interior.sum() >= 5 else comp]
        q1, median, q3 = (float(x) for x in np.percentile(lumen, [25, 50, 75]))
        if median < MIN_LUMEN_HU or q3 - q1 > MAX_LUMEN_IQR_HU:
            continue
        cu, cv = pts.mean(axis=0)
        found.append(
            _Candidate(
                u_mm=float(cu + sl[0].start * _PIXEL_MM - SEARCH_HALF_WIDTH_MM),
                v_mm=float(cv + sl[1].start * _PIXEL_MM + SEARCH_ANTERIOR_MM[0]),
                diameter_mm=diameter,
                median_hu=median,
            )
        )
    return found


def _tubes(planes: Sequence[list[_Candidate]]) -> list[_Candidate]:
    """Candidates found again on the next plane within MAX_SHIFT_MM."""
    tubes = []
    for here, there in itertools.pairwise(planes):
        for a in here:
            if any(np.hypot(a.u_mm - b.u_mm, a.v_mm - b.v_mm) <= MAX_SHIFT_MM for b in there):
                tubes.append(a)
    return tubes


def detect_contrast(
    hu: npt.NDArray[Any],
    grid: Any,
    labels: npt.NDArray[Any],
    sites: Sequence[tuple[VertebralLevel, Any, int]],
) -> VesselFinding | None:
    """An enhanced aorta/IVC beside the vertebrae (method: module docstring), or None.

    ``hu``: the CT (HU) on ``grid`` (a :class:`~spinewatch.imaging.volume.Grid`); ``labels``:
    the label map on the same grid; ``sites``: ``(level, frame, label)`` per analysed vertebra,
    ``frame`` a :class:`~spinewatch.imaging.anatomy.VertebraFrame` (body centroid, superior,
    anterior, right in world mm). Vertebrae outside T4-L4 are not searched; at most
    eight, spread over the column, are.
    """
    usable_sites = [s for s in sites if _VESSEL_LEVELS[0] <= s[0] <= _VESSEL_LEVELS[1]]
    if not usable_sites:
        return None
    step = max(1, int(np.ceil(len(usable_sites) / _MAX_SITES)))
    vertebra_labels = np.array(sorted({int(s[2]) for s in sites}), dtype=np.int64)
    best: VesselFinding | None = None
    for level, frame, _label in usable_sites[::step]:

        def candidates(offset: float, frame: Any = frame) -> list[_Candidate]:
            return _candidates(*_plane(hu, labels, vertebra_labels, grid, frame, offset))

        # every pair of neighbouring planes includes the middle one: look at it first
        middle = candidates(PLANE_OFFSETS_MM[1])
        if not middle:
            continue
        planes = [candidates(PLANE_OFFSETS_MM[0]), middle, candidates(PLANE_OFFSETS_MM[2])]
        for tube in _tubes(planes):
            side = "midline" if abs(tube.u_mm) < 5.0 else ("right" if tube.u_mm > 0 else "left")
            finding = VesselFinding(level, tube.diameter_mm, tube.median_hu, side)
            if best is None or finding.median_hu > best.median_hu:
                best = finding
    return best


def resolve_contrast(
    acquisition: Acquisition,
    hu: npt.NDArray[Any],
    grid: Any,
    labels: npt.NDArray[Any],
    sites: Sequence[tuple[VertebralLevel, Any, int]],
) -> Acquisition:
    """``acquisition`` with an *assumed* phase checked against the image (:func:`detect_contrast`).

    A phase from the user or the header is returned unchanged. An enhanced vessel makes the phase
    "contrast, phase unknown" (*detected*); otherwise native stays *assumed*, its evidence saying
    what was looked at.
    """
    if acquisition.modality is not Modality.CT or acquisition.contrast_source != "assumed":
        return acquisition
    finding = detect_contrast(hu, grid, labels, sites)
    base = acquisition.contrast_evidence
    if finding is not None:
        log.info("contrast detected: %s", finding.describe())
        return _replace_contrast(
            acquisition, ContrastPhase.UNKNOWN_PHASE, "detected", finding.describe()
        )
    searched = [str(s[0]) for s in sites if _VESSEL_LEVELS[0] <= s[0] <= _VESSEL_LEVELS[1]]
    note = (
        f"no contrast-filled aorta or IVC found in front of {searched[0]}-{searched[-1]}"
        if searched
        else "no vertebra between T4 and L4 to look for an enhanced aorta beside"
    )
    evidence = f"{base}; {note}" if base else note
    return _replace_contrast(acquisition, ContrastPhase.NATIVE, "assumed", evidence)


def _replace_contrast(
    acquisition: Acquisition, phase: ContrastPhase, source: str, evidence: str
) -> Acquisition:
    from dataclasses import replace

    return replace(
        acquisition, contrast_phase=phase, contrast_source=source, contrast_evidence=evidence
    )
