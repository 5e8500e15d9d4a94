"""batch.read_manifest: the whole manifest is checked before anything runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from spinewatch.core.errors import InputError
from spinewatch.imaging.batch import ManifestError, read_manifest, run_batch


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "ct.nii.gz").write_bytes(b"x")
    (tmp_path / "a" / "seg.nii.gz").write_bytes(b"x")
    (tmp_path / "dicom").mkdir()
    (tmp_path / "prior.json").write_text(
        json.dumps({"scan": {}, "vertebrae": [{"level": "L1", "lytic_volume_ml": 0.0}]})
    )
    (tmp_path / "broken.json").write_text('{"scan": {}, "vertebrae": [')
    return tmp_path


def write(folder: Path, text: str) -> Path:
    path = folder / "manifest.csv"
    path.write_text(text)
    return path


def test_good_manifest_resolves_paths_against_its_folder(
    folder: Path, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    manifest = write(
        folder,
        "study_id,ct,labels,convention,series_uid,prior\n"
        "p1-2024,a/ct.nii.gz,a/seg.nii.gz,verse,,prior.json\n"
        "\n"
        "p2,,a/seg.nii.gz,,,\n"
        f"p3,dicom,{folder / 'a' / 'seg.nii.gz'},TotalSegmentator,1.2.3,\n"
        "p4,,a/seg.nii.gz,tptbox,,\n"
        "p5,,a/seg.nii.gz,totalsegmentator_mr,,\n",
    )
    monkeypatch.chdir(tmp_path_factory.mktemp("elsewhere"))
    entries = read_manifest(manifest)
    assert [e.study_id for e in entries] == ["p1-2024", "p2", "p3", "p4", "p5"]
    first, second, third, fourth, fifth = entries
    assert first.ct == folder / "a" / "ct.nii.gz"
    assert first.labels == folder / "a" / "seg.nii.gz"
    assert first.convention == "verse"
    assert first.prior == folder / "prior.json"
    assert first.line == 2
    assert second.ct is None and second.convention == "auto" and second.line == 4
    assert third.ct == folder / "dicom" and third.series_uid == "1.2.3"
    assert third.convention == "totalsegmentator"
    assert (fourth.convention, fifth.convention) == ("tptbox", "totalsegmentator_mr")


def test_modality_and_contrast_phase_columns(folder: Path) -> None:
    manifest = write(
        folder,
        "study_id,ct,labels,modality,contrast_phase\n"
        "s1,a/ct.nii.gz,a/seg.nii.gz,MR,\n"
        "s2,a/ct.nii.gz,a/seg.nii.gz,ct,Portal_Venous\n"
        "s3,a/ct.nii.gz,a/seg.nii.gz,,\n",
    )
    entries = read_manifest(manifest)
    assert [(e.modality, e.contrast_phase) for e in entries] == [
        ("mr", "auto"),
        ("ct", "portal-venous"),
        ("auto", "auto"),
    ]


def test_analyse_study_passes_the_modality_to_the_analysis(tmp_path: Path) -> None:
    from spinewatch.imaging.batch import ManifestEntry, analyse_study
    from spinewatch.imaging.phantom import PhantomSpec, make_spine_phantom, write_phantom

    phantom = make_spine_phantom(PhantomSpec(levels=("L1", "L2"), spacing_mm=(2.0, 2.0, 2.0)))
    ct, labels, _ = write_phantom(phantom, tmp_path)
    # a TotalSegmentator CT ("total") map is read on an MRI only when the manifest says so
    entry = ManifestEntry("s1", ct, labels, convention="totalsegmentator", modality="mr")
    result = analyse_study(entry, picture=False)
    assert result["status"] == "ok", result["error"]
    scan = result["report"]["scan"]
    assert (scan["modality"], scan["modality_source"]) == ("MR", "user")
    assert all(v["trabecular_hu_median"] is None for v in result["report"]["vertebrae"])
    labels_only = analyse_study(ManifestEntry("s2", None, labels, contrast_phase="arterial"))
    assert labels_only["report"]["scan"]["contrast_source"] == "user"


def test_columns_in_any_order_and_bom(folder: Path) -> None:
    manifest = folder / "m.csv"
    manifest.write_bytes("\ufefflabels,study_id,ct\na/seg.nii.gz,s1,a/ct.nii.gz\n".encode())
    (entry,) = read_manifest(manifest)
    assert entry.study_id == "s1" and entry.ct == folder / "a" / "ct.nii.gz"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty manifest"),
        ("study_id,ct\n", r"line 1: header 'study_id,ct' lacks column\(s\) labels"),
        ("study_id,ct,labels,patient\n", r"line 1, column 4: unknown column 'patient'"),
        ("study_id,ct,labels,ct\n", r"line 1, column 4: column 'ct' repeated"),
        ("study_id,ct,labels\n", "no studies listed"),
        ("study_id,ct,labels\ns1,a/ct.nii.gz\n", r"line 2: 2 values, expected 3"),
        ("study_id,ct,labels\n,a/ct.nii.gz,a/seg.nii.gz\n", r"line 2, column 1 \(study_id\)"),
        ("study_id,ct,labels\n../up,a/ct.nii.gz,a/seg.nii.gz\n", r"study_id '\.\./up'"),
        (
            "study_id,ct,labels\ns1,a/ct.nii.gz,a/seg.nii.gz\ns1,,a/seg.nii.gz\n",
            r"line 3, column 1 \(study_id\): duplicate study_id 's1' \(first on line 2\)",
        ),
        (
            "study_id,ct,labels\ns1,a/missing.nii.gz,a/seg.nii.gz\n",
            r"line 2, column 2 \(ct\): file 'a/missing.nii.gz' not found",
        ),
        ("study_id,ct,labels\ns1,a/ct.nii.gz,\n", r"line 2, column 3 \(labels\): empty"),
        ("study_id,ct,labels\ns1,a/ct.nii.gz,dicom\n", "is a directory"),
        (
            "study_id,ct,labels,convention\ns1,a/ct.nii.gz,a/seg.nii.gz,nnunet\n",
            r"line 2, column 4 \(convention\): convention 'nnunet' unknown",
        ),
        (
            "study_id,ct,labels,series_uid\ns1,,a/seg.nii.gz,1.2.3\n",
            "series_uid '1.2.3' given without a ct",
        ),
        (
            "study_id,ct,labels,modality\ns1,a/ct.nii.gz,a/seg.nii.gz,pet\n",
            r"line 2, column 4 \(modality\): modality 'pet' unknown; expected auto, ct, mr",
        ),
        (
            "study_id,ct,labels,contrast_phase\ns1,a/ct.nii.gz,a/seg.nii.gz,venous-ish\n",
            r"line 2, column 4 \(contrast_phase\): contrast_phase 'venous-ish' unknown",
        ),
        (
            "study_id,ct,labels,modality,contrast_phase\ns1,a/ct.nii.gz,a/seg.nii.gz,mr,arterial\n",
            r"line 2, column 5 \(contrast_phase\): contrast_phase 'arterial' is a CT phase",
        ),
        (
            "study_id,ct,labels,prior\ns1,a/ct.nii.gz,a/seg.nii.gz,broken.json\n",
            r"line 2, column 4 \(prior\): .*broken\.json: line 1, column 28: invalid JSON",
        ),
        ('study_id,ct,labels\n"s1,a/ct.nii.gz,a/seg.nii.gz\n', "line"),
    ],
)
def test_bad_manifests_name_file_line_column_value(folder: Path, text: str, message: str) -> None:
    manifest = write(folder, text)
    with pytest.raises(ManifestError, match=message) as info:
        read_manifest(manifest)
    assert isinstance(info.value, InputError)
    assert str(manifest) in str(info.value)


def test_bad_manifest_fails_before_any_cluster_starts(folder: Path) -> None:
    manifest = write(folder, "study_id,ct,labels\ns1,a/nope.nii.gz,a/seg.nii.gz\n")
    with pytest.raises(ManifestError, match="not found"):
        run_batch(manifest, out_dir=folder / "out")
    assert not (folder / "out").exists()


def test_not_utf8_manifest(folder: Path) -> None:
    manifest = folder / "m.csv"
    manifest.write_bytes(b"study_id,ct,labels\n\xff\xfe,x,y\n")
    with pytest.raises(ManifestError, match="not a UTF-8 CSV"):
        read_manifest(manifest)


def test_zero_workers_refused(folder: Path) -> None:
    manifest = write(folder, "study_id,ct,labels\ns1,a/ct.nii.gz,a/seg.nii.gz\n")
    with pytest.raises(InputError, match="at least 1"):
        run_batch(manifest, out_dir=folder / "out", n_workers=0)
