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
LOAD_ONLY = (
    "import sys, nibabel as nib, numpy as np\n"
    "ct = np.asanyarray(nib.load(sys.argv[1]).dataobj)\n"
    "lab = np.asanyarray(nib.load(sys.argv[2]).dataobj)\n"
    "print(ct.shape, lab.shape)\n"
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
    "print(elapsed, usage.ru_maxrss * 1024, os.waitstatus_to_exitcode(status))\n"
)


def _run(cmd: list[str]) -> tuple[float, int]:
    """Wall seconds and peak RSS (bytes) of ``cmd`` (``cmd[0]`` an absolute path), measured by
    :data:`LAUNCHER` in a fresh small process."""
    with tempfile.NamedTemporaryFile(prefix="bench-stderr-", suffix=".txt") as err_file:
        out = subprocess.run(
            [sys.executable, "-I", "-S", "-c", LAUNCHER, err_file.name, *cmd],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.split()
        elapsed, rss, code = float(out[0]), int(out[1]), int(out[2])
        if code != 0:
            err = Path(err_file.name).read_text(errors="replace")
            raise SystemExit(f"benchmark command failed ({code}): {' '.join(cmd)}\n{err}")
    return elapsed, rss


def _best(cmd: list[str], repeat: int) -> tuple[float, int]:
    runs = [_run(cmd) for _ in range(repeat)]
    return min(r[0] for r in runs), max(r[1] for r in runs)


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

    load_s, load_rss = _best(
        [sys.executable, "-c", LOAD_ONLY, str(ct_path), str(labels_path)], repeat
    )
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
    e2e_s, e2e_rss = _best(cli, repeat)

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
        "analyze_cli_s": round(e2e_s, 3),
        "end_to_end_ratio": round(e2e_s / load_s, 2),
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


def main(argv: list[str] | None = None) -> int:
    from spinewatch.imaging.phantom import PhantomSpec, full_spine_spec

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("bench-results"))
    parser.add_argument("--small", action="store_true", help="quick run on small volumes")
    parser.add_argument(
        "--cases",
        default="lumbar_0.5mm,full_spine,full_spine_segment",
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
    cases["full_spine_segment"] = cases["full_spine"]
    wanted = [c.strip() for c in args.cases.split(",") if c.strip()]
    results, seg_results = [], []
    with tempfile.TemporaryDirectory(prefix="spinewatch-bench-") as tmp:
        for name in wanted:
            if name.endswith("_segment"):
                row = bench_segment(name, cases[name], Path(tmp), args.repeat)
                seg_results.append(row)
            else:
                row = bench_case(name, cases[name], Path(tmp), args.repeat)
                results.append(row)
            print(json.dumps(row))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(results + seg_results, indent=2) + "\n")
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
