"""``spinewatch validate --quick`` on the real data: the document, its figures and its JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from spinewatch.cli import main
from spinewatch.validation.datasets import DATASETS


@pytest.mark.shared_data
def test_quick_validation_writes_document_figures_and_json(
    shared_data: Path, tmp_path: Path
) -> None:
    out = tmp_path / "docs" / "validation.md"
    assert main(["validate", "--data", str(shared_data), "--out", str(out), "--quick"]) == 0
    text = out.read_text(encoding="utf-8")
    assert text.startswith("# SpineWatch validation")
    for d in DATASETS:
        assert d.title in text
    figures = json.loads(out.with_suffix(".json").read_text())["figures"]
    by_what = {f["what"]: f for f in figures}
    # the expert centroids of VerSe004 are matched as the unit tests require
    assert by_what["VerSe004 body centroid error, median"]["met"] is True
    # every picture the document links exists
    for line in text.splitlines():
        if line.startswith("!["):
            assert (out.parent / line.split("](", 1)[1].rstrip(")")).is_file(), line


def test_validate_without_data_is_one_clear_error(tmp_path: Path, capsys) -> None:
    assert main(["validate", "--data", str(tmp_path / "nowhere")]) == 2
    assert "no shared data folder" in capsys.readouterr().err
