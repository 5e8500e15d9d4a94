"""The trajectory plot: what is drawn (checked on the Figure), the PNG, and bad paths."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from outcomes_cohorts import CODES, reference_like_cohort

from spinewatch.core.protocol import DEFAULT_PROTOCOL
from spinewatch.outcomes.plot import PlotError, plot_trajectories, short_label, trajectory_figure
from spinewatch.outcomes.table import CohortFrameError


@pytest.fixture(scope="module")
def cohort():
    return reference_like_cohort(seed=2)


def test_figure_has_one_line_per_patient_and_the_mean_with_sd(cohort):
    fig = trajectory_figure(cohort)
    ax = fig.axes[0]
    patients = {
        line.get_gid(): line for line in ax.lines if (line.get_gid() or "").startswith("patient:")
    }
    assert set(patients) == {f"patient:{p}" for p in cohort["patient_id"].unique()}
    # a patient who stopped after 3 months has 4 points, in protocol order
    p13 = cohort[cohort["patient_id"] == "P13"]
    line = patients["patient:P13"]
    assert list(line.get_xdata()) == [0, 1, 2, 3]
    assert list(line.get_ydata()) == p13["vas"].tolist()

    mean_line = next(line for line in ax.lines if line.get_gid() == "mean")
    grouped = cohort.groupby("timepoint")["vas"]
    expected_means = [grouped.get_group(c).mean() for c in CODES]
    assert np.allclose(mean_line.get_ydata(), expected_means)
    assert list(mean_line.get_xdata()) == list(range(6))

    # error bars: the vertical segments span mean -/+ SD (ddof=1)
    segments = next(c for c in ax.collections if len(c.get_segments()) == 6).get_segments()
    for segment, code in zip(segments, CODES, strict=True):
        values = grouped.get_group(code)
        low, high = sorted(segment[:, 1])
        assert low == pytest.approx(values.mean() - values.std(ddof=1))
        assert high == pytest.approx(values.mean() + values.std(ddof=1))


def test_ticks_are_labelled_with_n_under_each(cohort):
    ax = trajectory_figure(cohort, title="Cohort A").axes[0]
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert labels == [
        "Pre-op\nn = 13",
        "3 d\nn = 13",
        "1 mo\nn = 13",
        "3 mo\nn = 13",
        "6 mo\nn = 10",
        "12 mo\nn = 6",
    ]
    bottom, top = ax.get_ylim()
    assert bottom < 0 and top > 10
    assert ax.get_title(loc="left") == "Cohort A"


def test_short_labels():
    tps = {tp.code: tp for tp in DEFAULT_PROTOCOL.timepoints}
    assert short_label(tps["pre"], is_baseline=True) == "Pre-op"
    assert short_label(tps["3d"]) == "3 d"
    assert short_label(tps["12m"]) == "12 mo"


def test_writes_a_png_and_leaves_no_pyplot_figure(cohort, tmp_path):
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    path = plot_trajectories(cohort, tmp_path / "sub" / "trajectories.png")
    assert path == tmp_path / "sub" / "trajectories.png"
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (1050, 690)  # 7.0 x 4.6 in at 150 dpi
    assert plt.get_fignums() == before


def test_bad_suffix_and_unwritable_path(cohort, tmp_path):
    with pytest.raises(PlotError, match=r"must end in \.png"):
        plot_trajectories(cohort, tmp_path / "plot.jpg")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(PlotError, match="cannot write plot"):
        plot_trajectories(cohort, blocker / "plot.png")


def test_bad_frame_is_refused(tmp_path):
    frame = reference_like_cohort(seed=2)
    frame.loc[3, "vas"] = 12.0
    with pytest.raises(CohortFrameError, match=r"VAS 12\.0"):
        plot_trajectories(frame, tmp_path / "p.png")


def test_title_counts_patients_and_treatment_series_apart(cohort):
    plain = trajectory_figure(cohort).axes[0]
    n = cohort["patient_id"].nunique()
    assert plain.get_title(loc="left") == f"Pain after vertebroplasty ({n} patients)"
    assert "Individual patients" in [t.get_text() for t in plain.get_legend().get_texts()]
    # the registry's frame: the first patient's rows become a second series of the second one
    ids = sorted(cohort["patient_id"].unique())
    frame = cohort.assign(study_id=cohort["patient_id"].replace({ids[0]: ids[1]}))
    frame["patient_id"] = frame["patient_id"].replace({ids[0]: f"{ids[1]}/2"})
    ax = trajectory_figure(frame).axes[0]
    assert ax.get_title(loc="left") == (
        f"Pain after vertebroplasty ({n - 1} patients, {n} treatment series)"
    )
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "Individual treatment series" in legend
