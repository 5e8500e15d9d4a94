"""Which series of a study is analysed: the thinnest axial CT reconstruction covering the
scanned range (headers only; no PACS needed)."""

from __future__ import annotations

from pydicom import Dataset
from pydicom.uid import CTImageStorage, SegmentationStorage

from spinewatch.pacs.series import choose_series, summarise_series


def _series(
    uid: str,
    *,
    n: int,
    step_mm: float,
    start_mm: float = 0.0,
    orientation: tuple[float, ...] = (1, 0, 0, 0, 1, 0),
    modality: str = "CT",
    sop_class: str = CTImageStorage,
    image_type: tuple[str, ...] = ("ORIGINAL", "PRIMARY", "AXIAL"),
    description: str = "",
) -> list[Dataset]:
    out = []
    row, col = orientation[:3], orientation[3:]
    normal = (
        row[1] * col[2] - row[2] * col[1],
        row[2] * col[0] - row[0] * col[2],
        row[0] * col[1] - row[1] * col[0],
    )
    for k in range(n):
        ds = Dataset()
        ds.SeriesInstanceUID = uid
        ds.Modality = modality
        ds.SOPClassUID = sop_class
        ds.SeriesDescription = description
        ds.ImageType = list(image_type)
        ds.Rows = ds.Columns = 512
        ds.ImageOrientationPatient = list(orientation)
        ds.ImagePositionPatient = [(start_mm + k * step_mm) * c for c in normal]
        ds.SliceThickness = step_mm
        out.append(ds)
    return out


def test_thinnest_axial_covering_the_range_is_chosen_and_the_rest_listed() -> None:
    headers = [
        *_series("1.1", n=100, step_mm=3.0, description="Body 3mm"),
        *_series("1.2", n=300, step_mm=1.0, description="Bone 1mm"),
        *_series("1.3", n=40, step_mm=0.5, start_mm=120, description="Targeted L1 0.5mm"),
        *_series("1.4", n=200, step_mm=1.0, orientation=(0, 1, 0, 0, 0, -1), description="Sag"),
        *_series("1.5", n=1, step_mm=1.0, image_type=("ORIGINAL", "PRIMARY", "LOCALIZER")),
        *_series("1.6", n=1, step_mm=1.0, modality="SEG", sop_class=SegmentationStorage),
    ]
    summaries = summarise_series(headers)
    choice = choose_series(summaries)
    assert choice.uid == "1.2"
    notes = {s.uid: s.note for s in summaries}
    assert notes["1.1"].startswith("thicker than the chosen series")
    assert notes["1.3"] == "covers 20 of 299 mm"  # a targeted recon of one level
    assert notes["1.4"] == "not axial (a reformat)"
    assert notes["1.5"] == "localizer"
    assert notes["1.6"] == "segmentation"
    assert [s.uid for s in summaries if s.chosen] == ["1.2"]
    assert "Bone 1mm" in choice.reason


def test_gantry_tilted_axials_still_count_and_no_ct_is_refused() -> None:
    tilted = _series("2.1", n=50, step_mm=2.0, orientation=(1, 0, 0, 0, 0.94, -0.342))
    assert choose_series(summarise_series(tilted)).uid == "2.1"  # 20 degrees
    mr = _series("3.1", n=50, step_mm=2.0, modality="MR", sop_class="1.2.840.10008.5.1.4.1.1.4")
    choice = choose_series(summarise_series(mr))
    assert choice.uid is None and "modalities: MR" in choice.reason
