"""A disk that fills up under a command that writes: one line naming the file, a true exit code,
no green tick, nothing cut short under its final name.  Real tmpfs, real subprocesses.

Found on a CI machine whose /tmp filled up: `station export-pointclouds` and `station view
--export` printed a tick over files the disk had cut short (open3d and imageio-ffmpeg report
success), `station process` ticked "0 sample(s) exported", a disk that filled mid-command gave a
traceback, and a process that had written a trial in-process crashed in HDF5 at exit (139).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import ROOT, fill_disk, run_station

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trial(tmp_path_factory) -> Path:
    """A finished synthetic trial (62 frames, 848x480) on the ordinary disk."""
    from station.record.writer import Storage
    from station.synth.dataset import TrialPlan, record_scene, trial_scene

    path = tmp_path_factory.mktemp("full-disk") / "sub01" / "trial-01.h5"
    path.parent.mkdir()
    record_scene(trial_scene(TrialPlan(1, 1, ("micro",)), 3), path, Storage("lz4"))
    return path


def _frames(trial: Path) -> int:
    from station.record.schema import readable_frames
    from station.record.writer import open_trial

    with open_trial(trial) as f:
        return readable_frames(f)


def _said(proc: subprocess.CompletedProcess) -> str:
    return " ".join((proc.stdout + proc.stderr).split())  # rich wraps lines at the terminal width


def test_point_clouds_the_disk_cut_short_are_refused(trial, tmpfs):
    disk = tmpfs("1m")
    proc = run_station("export-pointclouds", str(trial), str(disk / "ply"))
    said = _said(proc)
    assert proc.returncode == 2, said
    assert "cannot write point cloud" in said and "need" in said and "✓" not in said and "Traceback" not in said
    done = re.search(r"(\d+) of (\d+) point clouds were written before it", said)
    assert done and int(done.group(2)) == _frames(trial) and int(done.group(1)) < int(done.group(2)), said
    left = sorted(p.name for p in (disk / "ply").iterdir())  # the whole ones; no short PLY, no partial
    assert len(left) == int(done.group(1)) and all(not n.startswith(".") for n in left)
    assert re.search(r"point cloud '[^']+/frame-\d{6}\.ply'", said)


def test_a_video_ffmpeg_could_not_finish_is_refused_and_keeps_its_partial_name(trial, tmpfs):
    disk = tmpfs("1m")
    fill_disk(disk, leave=64 * 1024)
    proc = run_station("view", str(trial), "--export", str(disk / "clip.mp4"))
    said = _said(proc)
    assert proc.returncode == 2, said
    held = re.search(r"holds (\d+) of the (\d+) frames sent", said)
    assert held and int(held.group(2)) == _frames(trial) and int(held.group(1)) < int(held.group(2)), said
    assert ".clip.mp4.partial.mp4" in said and "✓" not in said
    assert not (disk / "clip.mp4").exists() and (disk / ".clip.mp4.partial.mp4").exists()


def test_process_gives_no_tick_to_an_export_the_disk_stopped(trial, tmpfs):
    disk = tmpfs("1m")
    proc = run_station("process", str(trial), "--from-ground-truth", "--out", str(disk / "db"), "--no-ply")
    said = _said(proc)
    assert proc.returncode == 1, said
    assert "0 sample(s) exported" in said and "skipped for an error" in said
    assert "✓" not in said
    cells = "".join(said.replace("│", "").split())  # the table's cells, wrapped whole
    assert "cannotwritetheframeimage" in cells and "(diskfull:" in cells
    assert str(disk / "db" / "2d").replace(" ", "") in cells


def test_spotting_stopped_by_the_disk_says_so_and_leaves_no_score_file(trial, tmpfs):
    """The score curves are an HDF5 file written in the command's own process: the disk-full
    line, exit 1 -- not HDF5's crash at exit (139) -- and no half file under its name."""
    disk = tmpfs("2m")
    fill_disk(disk, leave=8 * 1024)
    proc = run_station("spot", str(trial), "--out", str(disk / "candidates.csv"))
    said = _said(proc)
    assert proc.returncode == 1, said
    assert "the disk is full while writing" in said and "candidates.scores.h5" in said and "✓" not in said
    assert not (disk / "candidates.scores.h5").exists()
    assert sorted(p.name for p in disk.iterdir() if p.name.startswith(".")) == []


def test_an_image_opencv_would_not_write_is_refused_with_the_likely_cause(tmp_path, tmpfs):
    import numpy as np

    from station.checks import StationError
    from station.fileio import write_image

    image = np.random.default_rng(0).integers(0, 255, (240, 320, 3)).astype(np.uint8)
    assert write_image(tmp_path / "a.png", image).stat().st_size > 0
    with pytest.raises(StationError, match=r"'.*a\.xyz'.*no writer for '\.xyz'; use \.png or \.jpg"):
        write_image(tmp_path / "a.xyz", image)
    with pytest.raises(StationError, match=r"does not exist or is not writable"):
        write_image(tmp_path / "missing" / "a.png", image)
    disk = tmpfs("1m")
    fill_disk(disk, leave=4096)
    with pytest.raises(StationError, match=r"'.*frame\.png' \(disk full: .* free there\)"):
        write_image(disk / "frame.png", image)


def test_a_trial_cut_short_in_process_names_its_file_and_ends_with_the_code_meant(tmpfs):
    """In-process HDF5 writes that met a full disk crash the interpreter at exit unless the
    process ends through ``hard_exit_if_hdf5_broken`` -- as the CLI, pool workers and this
    suite (conftest) do."""
    disk = tmpfs("6m")
    script = textwrap.dedent(f"""
        from pathlib import Path
        from station.checks import disk_full_message, is_disk_full
        from station.record.writer import Storage, hard_exit_if_hdf5_broken
        from station.synth.dataset import TrialPlan, record_scene, trial_scene
        try:
            record_scene(trial_scene(TrialPlan(1, 1, ("micro",)), 3), Path({str(disk / "sub01" / "trial-01.h5")!r}),
                         Storage("none"))
        except OSError as err:
            assert is_disk_full(err), err
            print(disk_full_message(err), flush=True)
        hard_exit_if_hdf5_broken(3)
        print("HDF5 had nothing broken")
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, cwd=ROOT)
    said = " ".join(proc.stdout.split())
    assert proc.returncode == 3, proc.stdout + proc.stderr[-2000:]
    assert "the disk is full while writing" in said and "sub01/trial-01.h5.writing" in said
    assert "HDF5 had nothing broken" not in said


def test_a_trial_whose_close_meets_a_full_disk_is_kept_as_writing_and_freeing_it_is_safe(tmpfs):
    """Frames appended, then another program fills the disk, then the writer closes: HDF5's last
    flush fails.  The writer's objects used to be freed with the error's traceback, and HDF5
    crashed (exit 139, `station synth dataset --jobs 1`); now they are kept until the process
    ends through ``hard_exit_if_hdf5_broken``."""
    disk = tmpfs("200m")
    script = textwrap.dedent(f"""
        import gc
        from pathlib import Path
        from station.camera.virtual import VirtualD415
        from station.record.writer import Storage, TrialWriter, hard_exit_if_hdf5_broken
        from station.synth.dataset import TrialPlan, trial_scene
        disk = Path({str(disk)!r})
        camera = VirtualD415(trial_scene(TrialPlan(1, 1, ("micro",)), 3), realtime=False, fps=60)
        writer = TrialWriter(disk / "trial-01.h5", camera.start(), Storage("zstd"))
        for _ in range(30):
            if (fs := camera.read(timeout_s=2.0)) is not None:
                writer.append(fs)
        camera.stop()
        with open(disk / "filler", "wb", buffering=0) as fh:  # another program fills the disk
            try:
                while True:
                    fh.write(b"x" * (1 << 16))
            except OSError:
                pass
        try:
            print("closed as", writer.close().name, flush=True)
        except OSError as err:
            print("close failed:", str(err)[:60], flush=True)
        del writer
        gc.collect()
        print("freed", flush=True)
        hard_exit_if_hdf5_broken(3)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, cwd=ROOT)
    said = " ".join(proc.stdout.split())
    assert proc.returncode == 3 and "freed" in said, proc.stdout + proc.stderr[-2000:]
    assert "close failed" in said or "closed as trial-01.h5.writing" in said, said
    assert not (disk / "trial-01.h5").exists() and (disk / "trial-01.h5.writing").exists()


def test_an_atomic_write_the_disk_stopped_names_its_file_and_leaves_no_temporary(tmpfs):
    """A failed write names no file (ENOSPC at flush); ``atomic_path`` names the target, and the
    CLI turns it into one line, exit 1 (``station.cli.dispatch``, in a child process: after a
    disk-full error it marks the process's HDF5 as unsafe to shut down)."""
    from station.checks import disk_full_message, is_disk_full
    from station.fileio import atomic_write_text

    disk = tmpfs("64k")
    fill_disk(disk, leave=4096)
    with pytest.raises(OSError) as caught:
        atomic_write_text(disk / "micro-expression.csv", "x" * 200_000)
    assert is_disk_full(caught.value) and caught.value.filename == str(disk / "micro-expression.csv")
    assert "micro-expression.csv" in disk_full_message(caught.value)
    assert sorted(p.name for p in disk.iterdir()) == ["filler"]

    script = textwrap.dedent(f"""
        import argparse, sys
        from station.cli import dispatch
        from station.fileio import atomic_write_text
        verb = lambda args: atomic_write_text({str(disk / "index.csv")!r}, "x" * 200_000)
        sys.exit(dispatch(argparse.Namespace(func=verb)))
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=ROOT,
                          env={**os.environ, "COLUMNS": "200"})
    said = _said(proc)
    assert proc.returncode == 1, said
    assert "the disk is full while writing" in said and "index.csv" in said and "Traceback" not in said
    assert sorted(p.name for p in disk.iterdir()) == ["filler"]


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_a_synthetic_dataset_stopped_by_the_disk_says_so_keeps_whole_trials_and_resumes(tmp_path, tmpfs, jobs):
    """Another program fills the disk while `station synth dataset` writes (its own free-space
    check passed): the run is frozen with SIGSTOP once a trial is being written, the disk is
    filled, the run goes on.  In-process (--jobs 1) this was a segfault (exit 139)."""
    import shutil
    import signal
    import time

    disk = tmpfs("120m")
    args = ["synth", "dataset", "--subjects", "2", "--samples", "4", "--resolution", "424x240", "--jobs", jobs]
    run = subprocess.Popen([sys.executable, "-m", "station.cli", *args, "--out", str(disk / "db")], cwd=ROOT,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
                           env={**os.environ, "COLUMNS": "200"})
    deadline = time.monotonic() + 120
    while not any(p.stat().st_size > 1e6 for p in disk.glob("db/*/*.writing")):
        assert run.poll() is None and time.monotonic() < deadline, run.stdout.read() if run.poll() else "no trial began"
        time.sleep(0.02)
    os.killpg(run.pid, signal.SIGSTOP)
    fill_disk(disk, leave=0)
    os.killpg(run.pid, signal.SIGCONT)
    said = " ".join(run.communicate(timeout=300)[0].split())
    assert run.returncode == 1, said
    assert "the disk is full while writing" in said and ".h5" in said, said
    assert "Traceback" not in said and "✓" not in said
    finals = sorted(disk.glob("db/*/*.h5"))  # under its final name only when whole
    for path in finals:
        assert _frames(path) > 0 and run_station("inspect", str(path), "--check").returncode == 0, path
    assert len(finals) < 2 and list(disk.glob("db/*/*.writing")), "one trial at least was cut short"
    # space again (the lab deletes the other program's file): the same command resumes and completes
    shutil.copytree(disk / "db", tmp_path / "db")
    again = run_station(*args, "--out", str(tmp_path / "db"))
    assert again.returncode == 0, again.stdout + again.stderr
    whole = sorted(tmp_path.glob("db/*/*.h5"))
    assert len(whole) == 2 and not list(tmp_path.glob("db/*/*.writing"))
    assert all(run_station("inspect", str(p), "--check").returncode == 0 for p in whole)


@pytest.mark.skipif(not os.environ.get("DISPLAY"), reason="needs a display: run under xvfb-run -a")
@pytest.mark.parametrize("verb", ["view", "code", "preview"])
def test_a_window_snapshot_the_disk_cannot_take_is_an_error_naming_it(trial, tmp_path, tmpfs, verb):
    """`--snapshot` of the viewer and the coding tool (Qt: QPixmap.save only returns False) and of
    the seating preview (PsychoPy's saveMovieFrames named no file) onto a full disk."""
    disk = tmpfs("1m")
    fill_disk(disk, leave=8192)
    shot = disk / "window.png"
    keys = tmp_path / "keys.txt"
    keys.write_text("n\n")
    args = {"view": ["view", str(trial), "--script", str(keys)],
            "code": ["code", str(trial), "--coder", "me", "--out", str(tmp_path / "me.csv"), "--script", str(keys)],
            "preview": ["preview", "--camera", "virtual", "--seconds", "2"]}[verb]
    proc = run_station(*args, "--snapshot", str(shot), timeout=180)
    said = _said(proc)
    assert proc.returncode == 2, said
    assert f"cannot write the snapshot '{shot}' (disk full" in said and "Traceback" not in said, said
    assert not shot.exists()
