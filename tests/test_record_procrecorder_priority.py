"""CPU priorities of the recorder child (station.record.priority): real threads, real processes.

The recorder child moves its writer / compressor / face-check threads to SCHED_BATCH and the
virtual D415's take-rendering workers to SCHED_BATCH at nice 19, so that the participant's
display gets the CPU first; capture stays at the session's priority.  Read back from
/proc, as the kernel applies it.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import h5py
import pytest

from station.record.priority import BACKGROUND_THREADS, RENDER_PRIORITY, ThreadPriorities
from station.record.procrecorder import ProcessRecorder

pytestmark = pytest.mark.skipif(not hasattr(os, "sched_getscheduler") or not Path("/proc/self/task").is_dir(),
                                reason="Linux scheduling classes")


def task_sched(pid: int, tid: int | None = None) -> tuple[int, int]:
    """(scheduling policy, nice) of a task, from /proc/PID/task/TID/stat (fields 41 and 19)."""
    stat = Path(f"/proc/{pid}/task/{tid or pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2:].split()  # after the command name: field 3 onwards
    return int(fields[41 - 3]), int(fields[19 - 3])


def workers(pid: int) -> list[int]:
    """The process pool workers among a process's children (not multiprocessing's resource tracker)."""
    out = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            kids = [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
        out += [k for k in kids if b"spawn_main" in Path(f"/proc/{k}/cmdline").read_bytes()]
    return out


def test_background_threads_are_lowered_by_name_and_capture_is_not():
    go, stop = threading.Event(), threading.Event()
    threads = [threading.Thread(target=stop.wait, name=n, daemon=True) for n in ("writer", "lz4_0", "face", "capture")]
    for t in threads:
        t.start()
    try:
        base_nice = os.getpriority(os.PRIO_PROCESS, threads[-1].native_id)
        prio = ThreadPriorities()
        prio.apply()
        prio.apply()  # once per thread: a second pass changes nothing
        got = {t.name: task_sched(os.getpid(), t.native_id) for t in threads}
        assert got["capture"] == (os.SCHED_OTHER, base_nice)
        for name, prefix in (("writer", "writer"), ("lz4_0", "lz4"), ("face", "face")):
            policy, nice = BACKGROUND_THREADS[prefix]
            assert got[name] == (os.SCHED_BATCH, min(19, base_nice + nice)), (name, got)
        assert prio.lowered == {"writer": "batch+0", "lz4_0": "batch+0", "face": "batch+0"}
    finally:
        stop.set()
        go.set()


@pytest.mark.slow
@pytest.mark.parametrize("priority", ["background", "normal"])
def test_recorder_child_lowers_writing_and_take_rendering_only_when_asked(tmp_path, priority):
    rec = ProcessRecorder("virtual", 424, 240, 30, camera_options={"takes": True}, priority=priority)
    rec.open()
    try:
        child = rec._proc.pid
        rec.prepare_take(1.5)
        rec.begin_trial(tmp_path / "trial-01-a.h5", {"clip": "a"})
        time.sleep(1.0)  # the status loop (5 Hz) has seen the trial's writer and lz4 threads
        tasks = {int(t.name): task_sched(child, int(t.name)) for t in Path(f"/proc/{child}/task").iterdir()}
        pool = workers(child)
        worker_tasks = [task_sched(w, int(t.name)) for w in pool for t in Path(f"/proc/{w}/task").iterdir()]
        stats = rec.end_trial()
    finally:
        rec.close()
    assert stats.complete and stats.frames_written > 20 and stats.dropped == 0
    assert len(pool) >= 1, "the virtual D415 renders takes in worker processes"
    batch = [t for t, (policy, _) in tasks.items() if policy == os.SCHED_BATCH]
    parent_nice = os.getpriority(os.PRIO_PROCESS, 0)
    if priority == "normal":
        assert not batch and all(p == (os.SCHED_OTHER, parent_nice) for p in worker_tasks), (tasks, worker_tasks)
    else:
        # writer + 2 lz4 + face at SCHED_BATCH; capture, streaming, commands, status untouched
        assert len(batch) >= 4, tasks
        assert sum(policy == os.SCHED_OTHER for policy, _ in tasks.values()) >= 4, tasks
        policy, nice = RENDER_PRIORITY
        assert all(p == (os.SCHED_BATCH, min(19, parent_nice + nice)) for p in worker_tasks), worker_tasks
    with h5py.File(tmp_path / "trial-01-a.h5", "r") as f:
        assert f["frames"]["host_time"].shape[0] == stats.frames_written


@pytest.mark.slow
def test_take_rendering_pauses_while_a_film_plays_and_resumes_after():
    from station.camera import open_camera

    cam = open_camera("virtual", width=424, height=240, fps=30, takes=True)
    cam.render_priority = "low"  # what the recorder child sets with priority 'background'
    cam.start()
    try:
        cam.hold_rendering(True)  # a film starts
        cam.prepare_take(2.0)
        pending = cam._pending
        time.sleep(1.5)
        assert pending.thread.is_alive() and pending.cache.rendered == 0  # nothing rendered during the film
        cam.hold_rendering(False)  # the film ended
        info = cam.start_take()
        assert info["frames"] == 60 and info["render_s"] >= 1.5 and info["announced_s"] >= info["render_s"]
        assert pending.cache.rendered >= 60
    finally:
        cam.stop()


@pytest.mark.slow
def test_a_trial_waits_only_for_the_frames_it_needs_and_the_margin_renders_after():
    import numpy as np

    from station.camera import open_camera

    cam = open_camera("virtual", width=424, height=240, fps=30, takes=True)
    cam.render_priority = "low"
    cam.start()
    try:
        cam.prepare_take(3.0, needed_s=1.0)  # a 1 s trial, with 2 s of margin for pauses
        info = cam.start_take()
        assert info["frames"] == 90 and info["ready_frames"] == 30, info
        take = cam._take
        assert take.tail_ready.wait(60)  # the margin rendered after the trial started
        color, depth = take.frame(45)  # a frame of the margin is the participant's frame 45 of the take
        ref_color, ref_depth = cam._renderer(take.offset + 45)
        assert np.array_equal(color, ref_color) and np.array_equal(depth, ref_depth)
        take.tail_ready.clear()  # a margin not rendered yet when the stream reaches it: the idle loop
        assert take.frame(60) is None and take.unready == 1
        log = cam.end_take()
        assert log["tail_unready_frames"] == 1 and log["overrun_frames"] >= 1
    finally:
        cam.stop()
