"""Shared set-up for the batch tests (no tests here): tiny phantom studies, a stand-in analysis."""

from __future__ import annotations

import json
import logging
import sys
import types
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage

from spinewatch.imaging.phantom import LesionSpec, PhantomSpec, make_spine_phantom, write_phantom
from spinewatch.imaging.report import SpineReport


@contextmanager
def inprocess_scheduler() -> Iterator[str]:
    """A Dask scheduler whose worker threads run in this process (so a stand-in module is seen)."""
    from distributed import LocalCluster

    cluster = LocalCluster(
        processes=False,
        n_workers=1,
        threads_per_worker=2,
        dashboard_address="127.0.0.1:0",
        silence_logs=logging.ERROR,
    )
    try:
        yield str(cluster.scheduler_address)
    finally:
        cluster.close()


def make_studies(root: Path) -> Path:
    """Write two tiny phantoms, a broken CT and a prior report; return the manifest path.

    Studies: ``good1`` (CT + labels, with a prior), ``labelsonly`` (no CT), ``broken`` (a CT that
    is not an image), ``good2`` (CT + labels, VerSe labels, a lesion in L1).
    """
    specs = {
        "p1": PhantomSpec(levels=("T12", "L1", "L2"), spacing_mm=(2.0, 2.0, 2.0), seed=1),
        "p2": PhantomSpec(
            levels=("L1", "L2"),
            spacing_mm=(2.0, 2.0, 2.0),
            orientation="LPS",
            convention="verse",
            lesions={"L1": (LesionSpec(radius_mm=6.0),)},
            seed=2,
        ),
    }
    for name, spec in specs.items():
        write_phantom(make_spine_phantom(spec), root / name)
    (root / "broken").mkdir(exist_ok=True)
    (root / "broken" / "ct.nii.gz").write_text("this is not a CT\n")
    prior = {
        "scan": {"ct": "old.nii.gz", "labels": "old-seg.nii.gz", "study_date": "2020-01-01"},
        "vertebrae": [{"level": "T12", "lytic_volume_ml": 0.0}, {"level": "L1"}],
    }
    (root / "prior.json").write_text(json.dumps(prior))
    manifest = root / "manifest.csv"
    manifest.write_text(
        "study_id,ct,labels,convention,prior\n"
        "good1,p1/ct.nii.gz,p1/labels.nii.gz,totalsegmentator,prior.json\n"
        "labelsonly,,p1/labels.nii.gz,,\n"
        "broken,broken/ct.nii.gz,p1/labels.nii.gz,,\n"
        "good2,p2/ct.nii.gz,p2/labels.nii.gz,verse,\n"
    )
    return manifest


def fake_analyze(
    ct: Any,
    labels: Any,
    *,
    convention: str = "auto",
    ct_path: str | None = None,
    labels_path: str | None = None,
    acquisition: Any = None,
) -> SpineReport:
    """A stand-in for analysis.analyze: reports the label centroids of the vertebrae.

    L1 is always "high" risk so the batch's high-risk counting can be checked.
    """
    from spinewatch.core.conventions import vertebra_labels
    from spinewatch.imaging.label_reading import prepare_labels

    values = np.unique(labels.labels)
    # the real reading of the map (the ids alone cannot tell VerSe from vertebrae_mr)
    conv = prepare_labels(labels, convention).convention if convention == "auto" else convention
    vertebrae = []
    for value, level in vertebra_labels(values, conv).items():
        centre = ndimage.center_of_mass(labels.labels == value)
        vertebrae.append(
            {
                "level": str(level),
                "label": int(value),
                "body_centroid_mm": [round(float(c), 1) for c in labels.grid.to_world(centre)],
                "collapse_risk": "high" if str(level) == "L1" else "low",
                "lytic_volume_ml": None if ct is None else 0.0,
                "trabecular_hu_median": None,
            }
        )
    report = {
        "scan": {
            "ct": ct_path,
            "labels": labels_path,
            "labels_convention": str(getattr(conv, "value", conv)),
        },
        "vertebrae": vertebrae,
    }
    return SpineReport.from_json_dict(report)


@contextmanager
def fake_analysis_module() -> Iterator[None]:
    """Install :func:`fake_analyze` as ``spinewatch.imaging.analysis`` in this process."""
    name = "spinewatch.imaging.analysis"
    saved = sys.modules.get(name)
    module = types.ModuleType(name)
    module.analyze = fake_analyze  # type: ignore[attr-defined]
    sys.modules[name] = module
    try:
        yield
    finally:
        if saved is None:
            sys.modules.pop(name, None)
        else:
            sys.modules[name] = saved
