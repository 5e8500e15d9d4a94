"""Modality and contrast phase: parsing, density offsets, the Acquisition record."""

from __future__ import annotations

import pytest

from spinewatch.core.acquisition import (
    Acquisition,
    AcquisitionError,
    ContrastPhase,
    Modality,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("CT", Modality.CT), ("ct", Modality.CT), ("MR", Modality.MR), (" mri ", Modality.MR)],
)
def test_modality_parse(text: str, expected: Modality) -> None:
    assert Modality.parse(text) is expected


def test_modality_refuses_unknown_naming_the_value() -> None:
    with pytest.raises(AcquisitionError, match="'PET'"):
        Modality.parse("PET")


def test_only_ct_has_hounsfield_units() -> None:
    assert Modality.CT.has_hounsfield_units
    assert not Modality.MR.has_hounsfield_units


@pytest.mark.parametrize(
    ("text", "phase", "offset"),
    [
        ("native", ContrastPhase.NATIVE, 0.0),
        ("none", ContrastPhase.NATIVE, 0.0),
        ("arterial", ContrastPhase.ARTERIAL, 20.0),
        ("Portal-Venous", ContrastPhase.PORTAL_VENOUS, 14.75),
        ("venous", ContrastPhase.PORTAL_VENOUS, 14.75),
        ("delayed", ContrastPhase.DELAYED, 14.75),
        ("unknown", ContrastPhase.UNKNOWN_PHASE, 20.0),
    ],
)
def test_contrast_phase_parse_and_offset(text: str, phase: ContrastPhase, offset: float) -> None:
    parsed = ContrastPhase.parse(text)
    assert parsed is phase
    assert parsed.density_offset_hu == offset
    assert parsed.is_contrast is (phase is not ContrastPhase.NATIVE)


def test_contrast_phase_refuses_unknown() -> None:
    with pytest.raises(AcquisitionError, match="'equilibrium'"):
        ContrastPhase.parse("equilibrium")


def test_acquisition_defaults_and_validation() -> None:
    a = Acquisition()
    assert (a.modality, a.contrast_phase, a.modality_source) == (
        Modality.CT,
        ContrastPhase.NATIVE,
        "assumed",
    )
    assert Acquisition(modality="MR", modality_source="dicom").modality is Modality.MR  # type: ignore[arg-type]
    with pytest.raises(AcquisitionError, match="an MRI has none"):
        Acquisition(modality=Modality.MR, contrast_phase=ContrastPhase.ARTERIAL)
    with pytest.raises(AcquisitionError, match="modality_source 'guess'"):
        Acquisition(modality_source="guess")
