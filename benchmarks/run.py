"""``make bench``: speed and memory as ratios against baselines measured in the same run.

Cases (issue 3):
- a 0.5 mm lumbar spine volume (T11-L5 phantom, 512 x 512 x 600 voxels at 0.5 mm);
- a realistic full-spine phantom (C1-L5, 24 vertebrae, 512 x 512 x 600 voxels).

For each case:
- ``end_to_end_ratio``: wall time of ``spinewatch analyze CT --labels LABELS --format json``
  in a fresh process, over that of a fresh process that merely loads the CT and the labels
  with nibabel (target <= 2);
- ``analysis_ratio``: ``analyze()`` alone on volumes already in memory, over one numpy pass
  over the CT (``np.count_nonzero(ct > 0)``: the cheapest integer pass) (target <= 5);
  ``analysis_ratio_float`` gives the same over a floating-point pass
  (``ct.astype(np.float32).mean()``), for context -- the target is judged on the first;
- ``memory_ratio``: peak resident memory of the ``spinewatch analyze`` process over the CT
  array's size in memory (target <= 3).
Segmentation case (issue 8): ``full_spine_segment``, the built-in segmenter on the full-spine
phantom CT alone (512 x 512 x 600):
- ``segment_cli_s`` / ``segment_end_to_end_ratio``: wall time of ``spinewatch segment CT --out``
  in a fresh process, and its ratio to a fresh process that merely loads the CT with nibabel
  (target: <= 10 s absolute on the 2-core machine);
- ``segment_s`` / ``segment_ratio``: ``segment_ct()`` alone on the CT in memory, and its ratio
  to one numpy pass over the CT;
- ``segment_memory_ratio``: peak resident memory of the ``spinewatch segment`` process over the
  CT array's size (target <= 3; the interpreter and libraries count too), with the load-only
  process's ratio beside it for comparison;
- ``segment_min_dice``: whole-vertebra Dice of the worst vertebra against the phantom's truth.
Results are printed and written to ``bench-results/results.json``; ``--cases`` picks cases.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

BIN = Path(sys.executable).parent
LUMBAR9_SHAPE = (240, 200, 560)  # 26.9 Mvoxel at 0.5 mm: 120 x 100 x 280 mm
LOAD_ONLY = (
    "import sys, nibabel as nib, numpy as np\n"
    "ct = np.asanyarray(nib.load(sys.argv[1]).dataobj)\n"
    "lab = np.asanyarray(nib.load(sys.argv[2]).dataobj)\n"
    "print(ct.shape, lab.shape)\n"
)

# SpineWatch's own reader (the same one ``spinewatch analyze`` uses), for the share of the
# end-to-end time that is analysis rather than reading
LOAD_ONLY_SPINEWATCH = (
    "import sys\n"
    "from spinewatch.imaging.io import load_study\n"
    "ct, lab = load_study(sys.argv[1], sys.argv[2])\n"
    "print(ct.grid.shape, lab.grid.shape)\n"
)


# Peak RSS of a child: Linux keeps a process's ``ru_maxrss`` across ``execve``, and a child forked
# from this (large) benchmark process starts as a copy of it, so ``os.wait4`` here would report
# at least *this* process's resident size for every command (the load-only and analyze processes
# then showed identical peaks). The command is therefore started by a tiny launcher (a fresh
# ``python -I -S`` with nothing imported but os/time): the command's ``ru_maxrss`` then includes
# at most the launcher's few MB, and the launcher times the command itself (excluding its own
# start-up) and reports both on stdout.
LAUNCHER = (
    "import os, sys, time\n"
    "err = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)\n"
    "null = os.open(os.devnull, os.O_WRONLY)\n"
    "t = time.perf_counter()\n"
    "pid = os.posix_spawn(sys.argv[2], sys.argv[2:], os.environ,\n"
    "    file_actions=[(os.POSIX_SPAWN_DUP2, null, 1), (os.POSIX_SPAWN_DUP2, err, 2)])\n"
    "_, status, usage = os.wait4(pid, 0)\n"
    "elapsed = time.perf_counter() - t\n"
    "cpu = usage.ru_utime + usage.ru_stime\n"
    "print(elapsed, usage.ru_maxrss * 1024, os.waitstatus_to_exitcode(status), cpu)\n"
)


def _run(cmd: list[str]) -> tuple[float, int, float]:
    """Wall seconds, peak RSS (bytes) and CPU seconds (user + system, all threads) of ``cmd``
    (``cmd[0]`` an absolute path), measured by :data:`LAUNCHER` in a fresh small process."""
    with tempfile.NamedTemporaryFile(prefix="bench-stderr-", suffix=".txt") as err_file:
        out = subprocess.run(
            [sys.executable, "-I", "-S", "-c", LAUNCHER, err_file.name, *cmd],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.split()
        elapsed, rss, code, cpu = float(out[0]), int(out[1]), int(out[2]), float(out[3])
        if code != 0:
            err = Path(err_file.name).read_text(errors="replace")
            raise SystemExit(f"benchmark command failed ({code}): {' '.join(cmd)}\n{err}")
    return elapsed, rss, cpu


def _best(cmd: list[str], repeat: int) -> tuple[float, int]:
    runs = [_run(cmd) for _ in range(repeat)]
    return min(r[0] for r in runs), max(r[1] for r in runs)


def _best_cpu(cmd: list[str], repeat: int) -> tuple[float, int, float]:
    """Best wall seconds, largest peak RSS and best CPU seconds of ``repeat`` runs."""
    runs = [_run(cmd) for _ in range(repeat)]
    return min(r[0] for r in runs), max(r[1] for r in runs), min(r[2] for r in runs)


def bench_case(name: str, spec, workdir: Path, repeat: int) -> dict[str, float | str]:
    from spinewatch.core.conventions import LabelConvention
    from spinewatch.imaging.analysis import analyze
    from spinewatch.imaging.io import load_study
    from spinewatch.imaging.phantom import make_spine_phantom, write_phantom

    t0 = time.perf_counter()
    phantom = make_spine_phantom(spec)
    gen_s = time.perf_counter() - t0
    ct_path, labels_path, _ = write_phantom(phantom, workdir / name)
    ct_bytes = phantom.ct.hu.nbytes
    shape = phantom.ct.hu.shape
    del phantom

    cli = [
        str(BIN / "spinewatch"),
        "analyze",
        str(ct_path),
        "--labels",
        str(labels_path),
        "--labels-convention",
        "totalsegmentator",
        "--format",
        "json",
    ]
    # interleaved, so that each command sees the same load on a shared machine
    nib_cmd = [sys.executable, "-c", LOAD_ONLY, str(ct_path), str(labels_path)]
    sw_cmd = [sys.executable, "-c", LOAD_ONLY_SPINEWATCH, str(ct_path), str(labels_path)]
    runs: dict[str, list[tuple[float, int, float]]] = {"nib": [], "sw": [], "cli": []}
    for _ in range(repeat):
        runs["nib"].append(_run(nib_cmd))
        runs["sw"].append(_run(sw_cmd))
        runs["cli"].append(_run(cli))
    best = {
        k: (min(r[0] for r in v), max(r[1] for r in v), min(r[2] for r in v))
        for k, v in runs.items()
    }
    load_s, load_rss, load_cpu = best["nib"]
    sw_load_s, _sw_rss, sw_load_cpu = best["sw"]
    e2e_s, e2e_rss, e2e_cpu = best["cli"]

    ct, labels = load_study(ct_path, labels_path)
    assert ct is not None
    passes, float_passes = [], []
    for _ in range(repeat):
        t = time.perf_counter()
        np.count_nonzero(ct.hu > 0)
        passes.append(time.perf_counter() - t)
        t = time.perf_counter()
        ct.hu.astype(np.float32).mean()
        float_passes.append(time.perf_counter() - t)
    analyses = []
    for _ in range(repeat):
        t = time.perf_counter()
        report = analyze(ct, labels, convention=LabelConvention.TOTALSEGMENTATOR)
        analyses.append(time.perf_counter() - t)
    n_vertebrae = len(report.to_json_dict()["vertebrae"])
    return {
        "case": name,
        "shape": "x".join(map(str, shape)),
        "vertebrae": n_vertebrae,
        "ct_mb": round(ct_bytes / 1e6, 1),
        "phantom_generation_s": round(gen_s, 2),
        "load_only_s": round(load_s, 3),
        "spinewatch_load_only_s": round(sw_load_s, 3),
        "analyze_cli_s": round(e2e_s, 3),
        "end_to_end_ratio": round(e2e_s / load_s, 2),
        "end_to_end_ratio_vs_spinewatch_load": round(e2e_s / sw_load_s, 2),
        "load_only_cpu_s": round(load_cpu, 3),
        "spinewatch_load_only_cpu_s": round(sw_load_cpu, 3),
        "analyze_cli_cpu_s": round(e2e_cpu, 3),
        "end_to_end_cpu_ratio": round(e2e_cpu / load_cpu, 2),
        "numpy_pass_s": round(min(passes), 4),
        "analysis_s": round(min(analyses), 3),
        "analysis_ratio": round(min(analyses) / min(passes), 2),
        "numpy_float_pass_s": round(min(float_passes), 4),
        "analysis_ratio_float": round(min(analyses) / min(float_passes), 2),
        "load_only_peak_mb": round(load_rss / 1e6, 1),
        "analyze_peak_mb": round(e2e_rss / 1e6, 1),
        "memory_ratio": round(e2e_rss / ct_bytes, 2),
    }


LOAD_CT_ONLY = (
    "import sys, nibabel as nib, numpy as np\n"
    "ct = np.asanyarray(nib.load(sys.argv[1]).dataobj)\n"
    "print(ct.shape)\n"
)


def _min_dice(pred: np.ndarray, truth: np.ndarray) -> float:
    """Worst whole-vertebra Dice, each truth vertebra against the predicted label overlapping it
    most (the phantom has no landmark, so names are relative)."""
    worst = 1.0
    for lab in np.unique(truth):
        if lab == 0:
            continue
        m = truth == lab
        vals, counts = np.unique(pred[m], return_counts=True)
        keep = vals > 0
        if not keep.any():
            return 0.0
        p = pred == vals[keep][np.argmax(counts[keep])]
        worst = min(worst, float(2 * np.count_nonzero(p & m) / (p.sum() + m.sum())))
    return worst


def bench_segment(name: str, spec, workdir: Path, repeat: int) -> dict[str, float | str]:
    from spinewatch.imaging.io import load_ct
    from spinewatch.imaging.phantom import make_spine_phantom, write_phantom
    from spinewatch.imaging.segmentation import segment_ct

    phantom = make_spine_phantom(spec)
    ct_path, _, _ = write_phantom(phantom, workdir / name)
    truth = np.asarray(phantom.labels.labels)
    ct_bytes = phantom.ct.hu.nbytes
    shape = phantom.ct.hu.shape
    del phantom
    load_s, load_rss = _best([sys.executable, "-c", LOAD_CT_ONLY, str(ct_path)], repeat)
    out = workdir / f"{name}-labels.nii.gz"
    cli = [str(BIN / "spinewatch"), "segment", str(ct_path), "--out", str(out)]
    seg_cli_s, seg_rss = _best(cli, repeat)
    ct = load_ct(ct_path)
    passes, runs = [], []
    for _ in range(repeat):
        t = time.perf_counter()
        np.count_nonzero(ct.hu > 0)
        passes.append(time.perf_counter() - t)
        t = time.perf_counter()
        result = segment_ct(ct)
        runs.append(time.perf_counter() - t)
    return {
        "case": name,
        "shape": "x".join(map(str, shape)),
        "vertebrae": len(result.vertebrae),
        "ct_mb": round(ct_bytes / 1e6, 1),
        "load_only_s": round(load_s, 3),
        "segment_cli_s": round(seg_cli_s, 3),
        "segment_end_to_end_ratio": round(seg_cli_s / load_s, 2),
        "numpy_pass_s": round(min(passes), 4),
        "segment_s": round(min(runs), 3),
        "segment_ratio": round(min(runs) / min(passes), 2),
        "load_only_peak_mb": round(load_rss / 1e6, 1),
        "segment_peak_mb": round(seg_rss / 1e6, 1),
        "load_only_memory_ratio": round(load_rss / ct_bytes, 2),
        "segment_memory_ratio": round(seg_rss / ct_bytes, 2),
        "segment_min_dice": round(_min_dice(np.asarray(result.labels.labels), truth), 3),
    }


# -- DICOM series read (issue 13): SpineWatch against SimpleITK and a plain pydicom loop ---------

DICOM_SHAPE = (512, 512, 400)  # rows, columns, slices

#: Each reader runs in its own fresh process; the child times the read alone (the modules each
#: reader uses are imported before the clock starts, as SimpleITK is) and reports the growth of
#: its peak resident memory during the read.
DICOM_CHILD = {
    "spinewatch": (
        "from spinewatch.imaging.dicom import load_dicom_series\n"
        "import pydicom.filereader, pydicom.pixels.processing, spinewatch.imaging.contrast\n",
        "vol = load_dicom_series(d).hu\n",
    ),
    "simpleitk": (
        "import SimpleITK as sitk\n",
        "r = sitk.ImageSeriesReader()\n"
        "r.SetFileNames(r.GetGDCMSeriesFileNames(d))\n"
        "img = r.Execute()\n"
        "vol = sitk.GetArrayViewFromImage(img)\n",
    ),
    "pydicom_loop": (
        "import numpy as np, pydicom, pydicom.pixels\nfrom pathlib import Path\n",
        "dss = [pydicom.dcmread(f) for f in sorted(Path(d).iterdir())]\n"
        "dss.sort(key=lambda ds: float(ds.ImagePositionPatient[2]))\n"
        "vol = np.stack([(ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept))"
        ".astype(np.int16) for ds in dss], axis=-1)\n",
    ),
}
DICOM_TEMPLATE = (
    "import json, resource, sys, time\n"
    "{imports}"
    "d = sys.argv[1]\n"
    "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
    "t, c = time.perf_counter(), time.process_time()\n"
    "{read}"
    "wall, cpu = time.perf_counter() - t, time.process_time() - c\n"
    "after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
    "out = {{'read_s': wall, 'read_cpu_s': cpu, 'peak_growth_bytes': (after - before) * 1024,\n"
    "       'shape': list(vol.shape), 'sum': int(vol.sum(dtype='int64'))}}\n"
    "open(sys.argv[2], 'w').write(json.dumps(out))\n"
)


def write_dicom_series(directory: Path, shape: tuple[int, int, int] = DICOM_SHAPE) -> int:
    """A synthetic axial CT series (int16, RescaleIntercept -1024, 0.7 mm pixels, 1 mm slices)
    written with pydicom, one file per slice; returns its size in bytes as int16 voxels."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

    directory.mkdir(parents=True, exist_ok=True)
    rows, cols, n = shape
    rng = np.random.default_rng(13)
    r, c = np.mgrid[0:rows, 0:cols]
    body = ((r - rows / 2) ** 2 / (0.4 * rows) ** 2 + (c - cols / 2) ** 2 / (0.45 * cols) ** 2) < 1
    series, study, frame = generate_uid(), generate_uid(), generate_uid()
    for k in range(n):
        stored = np.where(body, 1064, 24) + rng.integers(-20, 21, size=(rows, cols))
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = Dataset()
        ds.file_meta = meta
        ds.SOPClassUID = CTImageStorage
        ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
        ds.Modality = "CT"
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study, series, frame
        ds.PatientName, ds.PatientID = "BENCH^PHANTOM", "BENCH0001"
        ds.InstanceNumber = k + 1
        ds.ImagePositionPatient = [-179.2, -179.2, -200.0 + k * 1.0]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.PixelSpacing = [0.7, 0.7]
        ds.SliceThickness = 1.0
        ds.Rows, ds.Columns = rows, cols
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.BitsAllocated = ds.BitsStored = 16
        ds.HighBit = 15
        ds.PixelRepresentation = 1
        ds.RescaleSlope, ds.RescaleIntercept = 1, -1024
        ds.PixelData = stored.astype(np.int16).tobytes()
        ds.save_as(directory / f"{(k * 7919) % n:04d}.dcm", enforce_file_format=True)
    return rows * cols * n * 2


def bench_dicom(name: str, workdir: Path, repeat: int) -> dict[str, float | str]:
    """Read the synthetic series with each reader of :data:`DICOM_CHILD`, interleaved."""
    series = workdir / name
    vol_bytes = write_dicom_series(series)
    runs: dict[str, list[dict[str, float]]] = {k: [] for k in DICOM_CHILD}
    for _ in range(repeat):
        for reader, (imports, read) in DICOM_CHILD.items():
            out = workdir / f"{name}-{reader}.json"
            code = DICOM_TEMPLATE.format(imports=imports, read=read)
            _run([sys.executable, "-c", code, str(series), str(out)])
            runs[reader].append(json.loads(out.read_text()))
    sums = {reader: {r["sum"] for r in rs} for reader, rs in runs.items()}
    row: dict[str, float | str] = {
        "case": name,
        "shape": "x".join(map(str, DICOM_SHAPE)),
        "volume_mb": round(vol_bytes / 1e6, 1),
        "same_voxels": str(len(set().union(*sums.values())) == 1),
    }
    for reader, rs in runs.items():
        row[f"{reader}_s"] = round(min(r["read_s"] for r in rs), 3)
        row[f"{reader}_cpu_s"] = round(min(r["read_cpu_s"] for r in rs), 3)
        row[f"{reader}_peak_growth_mb"] = round(max(r["peak_growth_bytes"] for r in rs) / 1e6, 1)
    row["spinewatch_vs_simpleitk"] = round(
        float(row["spinewatch_s"]) / float(row["simpleitk_s"]), 2
    )
    return row


# -- heights from TotalSegmentator's example label map (its spine report: ~0.03 s a vertebra) ----

TS_LABELS = Path(__file__).resolve().parents[2] / "shared" / "data" / "ct" / "totalseg-example"


def bench_ts_heights(name: str, repeat: int) -> dict[str, float | str]:
    """Per vertebra on TotalSegmentator's example label map: SpineWatch's heights step
    (:func:`~spinewatch.imaging.heights.body_heights`) alone, per vertebra it measures (a
    vertebra cut by the scan's edge gets none), and with the vertebra's anatomy
    (:func:`~spinewatch.imaging.anatomy.find_vertebrae`: body separation and frame) it needs,
    per vertebra found."""
    from spinewatch.imaging.anatomy import find_vertebrae
    from spinewatch.imaging.heights import body_heights
    from spinewatch.imaging.io import load_labels

    path = TS_LABELS / "example_seg.nii.gz"
    labels = load_labels(path)
    find, heights, n_measured = [], [], 0
    for _ in range(max(repeat, 3)):
        t = time.perf_counter()
        regions = find_vertebrae(labels, "totalsegmentator")
        find.append(time.perf_counter() - t)
        t = time.perf_counter()
        measured = [body_heights(r) for r in regions]
        heights.append(time.perf_counter() - t)
        n_measured = sum(h is not None for h in measured)
    n = len(regions)
    return {
        "case": name,
        "labels": str(path.name),
        "shape": "x".join(map(str, labels.grid.shape)),
        "vertebrae": n,
        "heights_measured": n_measured,
        "heights_s_per_vertebra": round(min(heights) / max(n_measured, 1), 4),
        "anatomy_and_heights_s_per_vertebra": round((min(find) + min(heights)) / n, 4),
        "totalsegmentator_s_per_vertebra": 0.03,
    }


def main(argv: list[str] | None = None) -> int:
    from spinewatch.imaging.phantom import PhantomSpec, full_spine_spec

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("bench-results"))
    parser.add_argument("--small", action="store_true", help="quick run on small volumes")
    parser.add_argument(
        "--cases",
        default="lumbar_0.5mm,lumbar9_0.5mm,full_spine,full_spine_segment,dicom_series,ts_heights",
        help="comma-separated cases to run",
    )
    args = parser.parse_args(argv)
    shape = (192, 192, 200) if args.small else (512, 512, 600)
    cases = {
        "lumbar_0.5mm": PhantomSpec(
            levels=("T11", "T12", "L1", "L2", "L3", "L4", "L5"),
            spacing_mm=(1.35, 1.35, 1.5) if args.small else (0.5, 0.5, 0.5),
            shape=shape,
            noise_hu_sd=15.0,
            deformities={"L1": ("wedge", 30.0)},
            seed=1,
        ),
        "full_spine": full_spine_spec(
            shape=shape,
            noise_hu_sd=15.0,
            deformities={"T12": ("crush", 35.0), "T8": ("biconcave", 25.0)},
            seed=2,
            **({"spacing_mm": (1.9, 1.9, 3.0)} if args.small else {}),
        ),
    }
    # issue 13's case: a 0.5 mm lumbar CT of ~27 Mvoxel with 9 vertebrae (T9-L5, cropped FOV)
    cases["lumbar9_0.5mm"] = PhantomSpec(
        levels=("T9", "T10", "T11", "T12", "L1", "L2", "L3", "L4", "L5"),
        spacing_mm=(1.35, 1.35, 1.5) if args.small else (0.5, 0.5, 0.5),
        shape=(100, 80, 200) if args.small else LUMBAR9_SHAPE,
        noise_hu_sd=15.0,
        deformities={"L1": ("wedge", 30.0), "T12": ("crush", 30.0)},
        seed=3,
    )
    cases["full_spine_segment"] = cases["full_spine"]
    wanted = [c.strip() for c in args.cases.split(",") if c.strip()]
    results, seg_results, other = [], [], []
    with tempfile.TemporaryDirectory(prefix="spinewatch-bench-") as tmp:
        for name in wanted:
            if name == "dicom_series":
                row = bench_dicom(name, Path(tmp), args.repeat)
                other.append(row)
            elif name == "ts_heights":
                row = bench_ts_heights(name, args.repeat)
                other.append(row)
            elif name.endswith("_segment"):
                row = bench_segment(name, cases[name], Path(tmp), args.repeat)
                seg_results.append(row)
            else:
                row = bench_case(name, cases[name], Path(tmp), args.repeat)
                results.append(row)
            print(json.dumps(row))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(
        json.dumps(results + seg_results + other, indent=2) + "\n"
    )
    print()
    print(
        f"{'case':<14}{'shape':>14}{'load s':>9}{'analyze s':>11}{'e2e x':>8}"
        f"{'analysis x':>12}{'(float x)':>10}{'peak MB':>9}{'mem x':>7}"
    )
    for r in results:
        print(
            f"{r['case']:<14}{r['shape']:>14}{r['load_only_s']:>9}{r['analyze_cli_s']:>11}"
            f"{r['end_to_end_ratio']:>8}{r['analysis_ratio']:>12}"
            f"{r['analysis_ratio_float']:>10}{r['analyze_peak_mb']:>9}"
            f"{r['memory_ratio']:>7}"
        )
    print("targets: end-to-end <= 2x load, analysis <= 5x one numpy pass, peak memory <= 3x CT")
    for r in results:
        print(
            f"{r['case']}: end to end {r['end_to_end_ratio']} x nibabel's load-only process "
            f"({r['end_to_end_ratio_vs_spinewatch_load']} x SpineWatch's own; CPU "
            f"{r['end_to_end_cpu_ratio']} x) -- issue 13 target <= 1.3"
        )
    for r in other:
        if r["case"] == "dicom_series":
            print(
                f"DICOM {r['shape']}: SpineWatch {r['spinewatch_s']} s "
                f"(+{r['spinewatch_peak_growth_mb']} MB), SimpleITK {r['simpleitk_s']} s "
                f"(+{r['simpleitk_peak_growth_mb']} MB), "
                f"pydicom loop {r['pydicom_loop_s']} s (+{r['pydicom_loop_peak_growth_mb']} MB); "
                f"SpineWatch / SimpleITK = {r['spinewatch_vs_simpleitk']} (target <= 1), "
                f"same voxels: {r['same_voxels']}"
            )
        else:
            print(
                f"heights on {r['labels']} ({r['vertebrae']} vertebrae): "
                f"{r['heights_s_per_vertebra']} s per vertebra (with the anatomy "
                f"{r['anatomy_and_heights_s_per_vertebra']} s); TotalSegmentator's report ~0.03 s"
            )
    for r in seg_results:
        print(
            f"{r['case']}: segment {r['segment_cli_s']} s (CLI; load-only {r['load_only_s']} s), "
            f"segment_ct {r['segment_s']} s = {r['segment_ratio']} numpy passes, peak "
            f"{r['segment_peak_mb']} MB = {r['segment_memory_ratio']} x CT (load-only "
            f"{r['load_only_memory_ratio']} x), worst Dice {r['segment_min_dice']}"
        )
    if seg_results:
        print("segmentation targets: <= 10 s on 2 cores, peak memory <= 3x CT, Dice >= 0.90")
    return 0


if __name__ == "__main__":
    sys.exit(main())
