"""Coded concepts of the DICOM results: vertebral levels, lesions, measurements, risk.

Sources, in order of preference (no code here is made up):

1. **Vertebral levels and segment categories** -- TotalSegmentator's SNOMED CT mapping
   (``totalsegmentator/resources/totalsegmentator_snomed_mapping.csv`` of wasserth/TotalSegmentator,
   Apache-2.0; the rows for the vertebrae, the sacrum and the tumour category are vendored as
   ``totalsegmentator_snomed_vertebrae.csv`` beside this module), e.g. T12 = SCT 23215003,
   L1 = SCT 66794005, category "Anatomical Structure" SCT 123037004, "Morphologically Altered
   Structure" SCT 49755003. T13 and L6 (transitional vertebrae) have no code of their own there:
   they are coded as "Vertebra" (SCT 51282000, the file's code for the thoracic/lumbar groups)
   and named by the tracking identifier.
2. **Standard DICOM / SNOMED CT / UCUM concepts** from pydicom's code dictionary (generated from
   DICOM PS3.16): Height (DCM 121207), Attenuation Coefficient (DCM 112031), Volume
   (SCT 118565006), Lesion (SCT 52988006), Median, Anterior/Central/Posterior, Low/Moderate/High
   risk, Computed tomography; units mm, [hnsf'U], %, and ``ml`` (UCUM millilitre).
3. **SpineWatch's private coding scheme** ``99SPW`` (DICOM reserves designators starting with
   "99" for private schemes; declared in each SR's CodingSchemeIdentificationSequence) for the
   concepts DICOM does not code: the Genant grade and deformity type, the lytic lesion volume of
   a vertebral body, the height loss and "collapse risk" itself.
"""

from __future__ import annotations

import csv
import functools
from dataclasses import dataclass
from pathlib import Path

from pydicom.sr.codedict import codes
from pydicom.sr.coding import Code

from spinewatch.core.conventions import ConventionError, totalsegmentator_name
from spinewatch.core.errors import InputError
from spinewatch.core.levels import VertebralLevel

__all__ = [
    "ANATOMICAL_STRUCTURE",
    "ATTENUATION",
    "COLLAPSE_RISK",
    "COLLAPSE_RISK_VALUES",
    "CT_PROCEDURE",
    "DEFORMITY_VALUES",
    "GENANT_DEFORMITY",
    "GENANT_GRADE",
    "GENANT_GRADE_VALUES",
    "HEIGHT",
    "HEIGHT_LOSS",
    "HEIGHT_SITES",
    "LESION",
    "LYTIC_VOLUME",
    "MEDIAN",
    "MORPHOLOGICALLY_ALTERED",
    "PRIVATE_SCHEME",
    "PRIVATE_SCHEME_NAME",
    "UNIT_HU",
    "UNIT_ML",
    "UNIT_MM",
    "UNIT_PERCENT",
    "VERTEBRA",
    "LevelCode",
    "level_code",
]

PRIVATE_SCHEME = "99SPW"
PRIVATE_SCHEME_NAME = "SpineWatch private concepts"

_CSV = Path(__file__).with_name("totalsegmentator_snomed_vertebrae.csv")


@dataclass(frozen=True)
class LevelCode:
    """A level's SNOMED CT code and its SEG display colour (RGB 0-255) from the mapping file."""

    code: Code
    rgb: tuple[int, int, int]


@functools.cache
def _mapping() -> dict[str, tuple[Code, Code, tuple[int, int, int]]]:
    """Structure name -> (category, type, RGB) from the vendored TotalSegmentator rows."""
    out: dict[str, tuple[Code, Code, tuple[int, int, int]]] = {}
    with _CSV.open(newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            pre_cat = "SegmentedPropertyCategoryCodeSequence."
            pre_type = "SegmentedPropertyTypeCodeSequence."
            category = Code(
                row[pre_cat + "CodeValue"],
                row[pre_cat + "CodingSchemeDesignator"],
                row[pre_cat + "CodeMeaning"],
            )
            kind = Code(
                row[pre_type + "CodeValue"],
                row[pre_type + "CodingSchemeDesignator"],
                row[pre_type + "CodeMeaning"],
            )
            r, g, b = (int(v) for v in row["DicomRGBColor"].split(","))
            out[row["Structure"]] = (category, kind, (r, g, b))
    return out


ANATOMICAL_STRUCTURE: Code = _mapping()["vertebrae_L1"][0]
MORPHOLOGICALLY_ALTERED: Code = _mapping()["liver_tumor"][0]
VERTEBRA: Code = _mapping()["vertebrae_thoracic"][1]
LESION: Code = codes.SCT.Lesion
HEIGHT: Code = codes.DCM.Height
ATTENUATION: Code = codes.DCM.AttenuationCoefficient
MEDIAN: Code = codes.SCT.Median
CT_PROCEDURE: Code = codes.SCT.ComputedTomography
HEIGHT_SITES: dict[str, Code] = {
    "anterior": codes.SCT.Anterior,
    "middle": codes.SCT.Central,
    "posterior": codes.SCT.Posterior,
}
UNIT_MM: Code = codes.UCUM.Millimeter
UNIT_HU: Code = codes.UCUM.HounsfieldUnit
UNIT_PERCENT: Code = codes.UCUM.Percent
UNIT_ML = Code("ml", "UCUM", "milliliter")

GENANT_GRADE = Code("GENANT-GRADE", PRIVATE_SCHEME, "Genant semiquantitative fracture grade")
GENANT_DEFORMITY = Code("GENANT-TYPE", PRIVATE_SCHEME, "Vertebral deformity type")
HEIGHT_LOSS = Code("HEIGHT-LOSS", PRIVATE_SCHEME, "Vertebral body height loss")
LYTIC_VOLUME = Code("LYTIC-VOLUME", PRIVATE_SCHEME, "Lytic lesion volume in vertebral body")
COLLAPSE_RISK = Code("COLLAPSE-RISK", PRIVATE_SCHEME, "Risk of vertebral collapse")

GENANT_GRADE_VALUES: dict[int, Code] = {
    0: Code("GENANT-0", PRIVATE_SCHEME, "Genant grade 0 (normal)"),
    1: Code("GENANT-1", PRIVATE_SCHEME, "Genant grade 1 (mild, 20-25% height loss)"),
    2: Code("GENANT-2", PRIVATE_SCHEME, "Genant grade 2 (moderate, 25-40% height loss)"),
    3: Code("GENANT-3", PRIVATE_SCHEME, "Genant grade 3 (severe, over 40% height loss)"),
}
DEFORMITY_VALUES: dict[str, Code] = {
    "none": Code("DEFORMITY-NONE", PRIVATE_SCHEME, "No deformity"),
    "wedge": Code("DEFORMITY-WEDGE", PRIVATE_SCHEME, "Wedge deformity"),
    "biconcave": Code("DEFORMITY-BICONCAVE", PRIVATE_SCHEME, "Biconcave deformity"),
    "crush": Code("DEFORMITY-CRUSH", PRIVATE_SCHEME, "Crush deformity"),
}
COLLAPSE_RISK_VALUES: dict[str, Code] = {
    "low": codes.SCT.LowRisk,
    "moderate": codes.SCT.ModerateRisk,
    "high": codes.SCT.HighRisk,
    "not_assessable": codes.SCT.Indeterminate,
}


def level_code(level: VertebralLevel | str) -> LevelCode:
    """The SNOMED CT code of a vertebral level (T13/L6: "Vertebra") and its colour.

    >>> level_code("L1").code.value
    '66794005'
    """
    lv = VertebralLevel.parse(level)
    try:
        name = totalsegmentator_name(lv)
    except ConventionError:
        name = "vertebrae_thoracic" if lv is VertebralLevel.T13 else "vertebrae_lumbar"
    try:
        _, kind, rgb = _mapping()[name]
    except KeyError:  # pragma: no cover - the vendored file lists every standard level
        raise InputError(f"level {lv}: no SNOMED CT code in {_CSV.name}") from None
    return LevelCode(kind, rgb)
