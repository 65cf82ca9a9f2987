"""How fast is the synthetic participant?  Ratios against references measured in the same run.

References: a plain copy of one color + depth frame, and one full-frame ``cv2.remap`` of the
848x480 color image (the least a warping generator must do).  Measured: ``render(index)`` over
a trial with micro/macro-expressions and blinks (head motion and sensor noise on), and a
virtual-D415 fast-mode ``read()`` (render + reprojection into the depth camera + librealsense
software device + syncer).  One thread for OpenCV, as on one core; times are CPU time of this process (what a dedicated
core spends), because the machine the figures come from is shared.

    python bench/synth_speed.py [--frames 300] [--rounds 5]

``--dataset``: ``station synth dataset`` end to end (render, librealsense, HDF5 writer, worker
processes), this tree against a reference checkout (``--ref``, e.g. ``git worktree add -f
/tmp/ref-synth <commit>``), each run a fresh ``python -m station.cli`` subprocess, the two
interleaved ``--repeats`` times; medians of wall time, CPU time (the command and all its
worker processes) and bytes written, and a check that both wrote the same frames (color,
depth, frame numbers and timestamps) and the same ground truth, bit for bit:

    nice python bench/synth_speed.py --dataset --ref /tmp/ref-synth --subjects 4 --samples 45 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from _common import children_cpu_s

HERE = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(HERE))  # this tree's station, wherever it runs
from station.camera.base import EndOfStream  # noqa: E402
from station.camera.virtual import VirtualD415  # noqa: E402
from station.synth.participant import sample_timeline_scene  # noqa: E402


def per_frame_ms(fn, n: int) -> float:
    """CPU milliseconds per call: on a shared machine wall time counts other jobs' turns too,
    CPU time of this (single-threaded) process is what one dedicated core would spend."""
    fn(0)  # warm up
    t0 = time.process_time()
    for i in range(n):
        fn(i)
    return (time.process_time() - t0) * 1000.0 / n


def run_dataset(tree: Path, out: Path, subjects: int, samples: int, extra: list[str]) -> dict:
    """One ``station synth dataset`` of the tree at ``tree`` into ``out``: wall s, CPU s, bytes, frames."""
    before = children_cpu_s()
    t0 = time.perf_counter()
    env = {**os.environ, "PYTHONPATH": str(tree)}
    subprocess.run([sys.executable, "-m", "station.cli", "synth", "dataset", "--subjects", str(subjects),
                    "--samples", str(samples), "--out", str(out), *extra], cwd=tree, env=env, check=True,
                   stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    cpu = children_cpu_s() - before  # includes the command's own (waited-for) workers
    manifest = json.loads((out / "manifest.json").read_text())
    return {"wall": wall, "cpu": cpu,
            "bytes": manifest["bytes"], "frames": manifest["frames"], "trials": len(manifest["trials"])}


def same_content(a: Path, b: Path) -> int:
    """Trials of datasets ``a`` and ``b`` compared frame for frame; returns the frames compared."""
    import h5py
    import hdf5plugin  # noqa: F401  (the filters)

    from station.record import schema

    files = sorted(p.relative_to(a) for p in a.rglob("*.h5"))
    assert files == sorted(p.relative_to(b) for p in b.rglob("*.h5")), "different trial files"
    frames = 0
    for rel in files:
        with h5py.File(a / rel) as x, h5py.File(b / rel) as y:
            for name in (schema.COLOR, schema.DEPTH, f"{schema.GROUND_TRUTH}/{schema.GT_LANDMARKS}"):
                assert np.array_equal(x[name][...], y[name][...]), f"{rel}: {name} differs"
            table_x, table_y = x[schema.FRAMES][...], y[schema.FRAMES][...]
            for field in table_x.dtype.names:
                if "host" not in field and "arrival" not in field:  # wall-clock fields
                    assert np.array_equal(table_x[field], table_y[field]), f"{rel}: frames/{field} differs"
            assert schema.read_ground_truth_events(x) == schema.read_ground_truth_events(y), f"{rel}: events differ"
            frames += x[schema.COLOR].shape[0]
    return frames


def dataset_main(args: argparse.Namespace) -> None:
    ref = Path(args.ref).resolve()
    runs: dict[str, list[dict]] = {"reference": [], "this tree": []}
    trees = {"reference": (ref, []), "this tree": (HERE, args.new_args.split())}
    load = [os.getloadavg()[0]]
    with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
        kept: dict[str, Path] = {}
        for r in range(args.repeats):
            for name, (tree, extra) in (trees.items() if r % 2 == 0 else reversed(trees.items())):
                out = Path(tmp) / f"{name.replace(' ', '-')}-{r}"
                runs[name].append(run_dataset(tree, out, args.subjects, args.samples, extra))
                load.append(os.getloadavg()[0])
                if name in kept:
                    shutil.rmtree(out)
                else:
                    kept[name] = out
        compared = same_content(kept["reference"], kept["this tree"])
    med = {name: {k: float(np.median([x[k] for x in v])) for k in v[0]} for name, v in runs.items()}
    ref_m, new_m = med["reference"], med["this tree"]
    print(f"station synth dataset --subjects {args.subjects} --samples {args.samples}: {int(new_m['trials'])} trials, "
          f"{int(new_m['frames'])} frames; medians of {args.repeats} interleaved runs; "
          f"load average {min(load):.1f}-{max(load):.1f}; os.cpu_count() = {os.cpu_count()}")
    print(f"{'':<12} {'wall s':>8} {'ms/frame':>9} {'CPU s':>8} {'CPU ms/frame':>13} {'MB':>8}")
    for name, m in med.items():
        print(f"{name:<12} {m['wall']:8.1f} {1000 * m['wall'] / m['frames']:9.2f} {m['cpu']:8.1f} "
              f"{1000 * m['cpu'] / m['frames']:13.2f} {m['bytes'] / 1e6:8.0f}")
    print(f"ratio new/ref: wall {new_m['wall'] / ref_m['wall']:.3f}, CPU {new_m['cpu'] / ref_m['cpu']:.3f}, "
          f"bytes {new_m['bytes'] / ref_m['bytes']:.3f}")
    print(f"content: {compared} frames compared, color, depth, frame numbers/timestamps, events and true "
          "landmarks bit-identical")
    for name, v in runs.items():
        walls = ", ".join(f"{x['wall']:.1f}" for x in v)
        print(f"  {name} runs (wall s): {walls}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--dataset", action="store_true", help="time `station synth dataset` against --ref")
    parser.add_argument("--ref", default="/tmp/ref-synth", help="reference checkout (git worktree)")
    parser.add_argument("--subjects", type=int, default=4)
    parser.add_argument("--samples", type=int, default=45)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--new-args", default="", help="extra arguments for this tree's command, e.g. '--jobs 1'")
    parser.add_argument("--tmp", default=None, help="folder for the datasets (default: the system's temp)")
    args = parser.parse_args()
    if args.dataset:
        dataset_main(args)
        return
    cv2.setNumThreads(1)
    kinds = ["micro", "blink", "micro", "macro", "micro", "blink", "micro", "micro"]
    scene = sample_timeline_scene(1, 0, kinds)
    n = min(args.frames, scene.n_frames)
    color, depth = scene.render(0)
    gy, gx = np.mgrid[0:480, 0:848].astype(np.float32)
    mx, my = gx + 0.37, gy - 0.21

    # Interleave the measurements in rounds and keep each one's median: the machine is shared,
    # and a load burst during one measurement would otherwise skew its ratio.
    steps = {
        "copy color+depth (reference)": lambda i: (color.copy(), depth.copy()),
        "cv2.remap full color frame (reference)": lambda i: cv2.remap(color, mx, my, cv2.INTER_LINEAR),
        "scene.render (synthetic participant)": scene.render,
    }
    rounds = {name: [] for name in steps}
    chunk = max(1, n // args.rounds)
    for r in range(args.rounds):
        for name, fn in steps.items():
            start = r * chunk
            rounds[name].append(per_frame_ms(lambda i, fn=fn: fn(start + i), chunk))
    results = {name: float(np.median(v)) for name, v in rounds.items()}
    camera = VirtualD415(sample_timeline_scene(1, 0, kinds), realtime=False)
    results["DepthReprojector alone (station/camera/virtual.py)"] = per_frame_ms(
        lambda i: camera._reproject(depth), min(n, 60))
    camera.start()
    try:
        def read(_):
            try:
                camera.read(2.0)
            except EndOfStream:
                pass
        results["virtual D415 fast read (render + reprojection + librealsense)"] = per_frame_ms(read, n - 2)
    finally:
        camera.stop()

    ref = results["cv2.remap full color frame (reference)"]
    print(f"{n} frames of a {scene.n_frames}-frame trial, 848x480, cv2 threads = 1, CPU time")
    print(f"{'step':<66} {'ms/frame':>9} {'x remap':>8} {'fps':>7}")
    for name, ms in results.items():
        print(f"{name:<66} {ms:9.2f} {ms / ref:8.2f} {1000 / ms:7.1f}")


if __name__ == "__main__":
    main()
