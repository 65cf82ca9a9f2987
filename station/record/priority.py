"""CPU priorities of the recorder's work, so that the participant's display gets the CPU first.

On a modest PC (and always with software OpenGL, Mesa llvmpipe, which renders on every core)
PsychoPy's flips, the recorder and the virtual D415's take rendering share the same cores.
They are not equally urgent:

* **display flips** (the PsychoPy process): a late flip is a missed refresh, gone for good;
* **capture** (the recorder's ``capture`` thread and the camera's own threads: librealsense,
  the virtual D415's streaming thread): must drain the camera at 60 fps, but its queue holds
  about a second;
* **writing** (the ``writer`` thread and its ``lz4`` compressor threads): throughput, not
  latency — the trial's queue holds :attr:`~station.record.recorder.Recorder.queue_size`
  framesets (2 s at 60 fps), and the writer catches up during the blank, the forms and the
  rest;
* **the face check** (``face``, 2 Hz, ~12 ms of dlib): a help for the experimenter;
* **rendering takes** (the virtual D415's worker processes): the next trial's participant,
  needed only when that trial starts, seconds to minutes later.

So the recorder process keeps capture at the session's priority and moves writing and the
face check to ``SCHED_BATCH`` (Linux: never preempts an interactive thread when it wakes, a
60 Hz wake-up each; no higher nice value, see :data:`BACKGROUND_THREADS`), and take
rendering, in worker processes that share no GIL with capture, to ``SCHED_BATCH`` at nice 19
(:data:`RENDER_PRIORITY`), paused while a film plays.  Unprivileged processes may always *lower*
their own priority, so no setting or capability is needed; elsewhere than Linux only the
nice value is used (or nothing, where that is unsupported).  docs/benchmarks.md ("The demo
session at the paper's settings") measures the effect.
"""

from __future__ import annotations

import os
import threading

#: Thread-name prefix -> (scheduling class, nice increment) for a recorder child.
#: ``writer`` creates its ``lz4`` threads, which inherit its class; named anyway.
#: No thread of the recorder process gets a higher nice value: each one holds the GIL at
#: times (h5py's writes in ``writer``, dlib in ``face``, the pool's bookkeeping between two
#: LZ4 blocks in ``lz4``), and one kept off the CPU while holding it stops the capture thread
#: and the camera's streaming thread with it (priority inversion: the camera skips frames;
#: measured with the face check at nice +10, and likely with ``lz4`` at +5 at load 8-12).
BACKGROUND_THREADS: dict[str, tuple[str, int]] = {"writer": ("batch", 0), "lz4": ("batch", 0), "face": ("batch", 0)}
#: Take rendering (worker processes, no GIL shared with anyone): scheduling class and nice.
#: Not SCHED_IDLE: on a PC that also runs other work it can starve for tens of seconds
#: (measured: a 20.8 s wait before a trial at load 6-9), and the trial would wait for it.
RENDER_PRIORITY: tuple[str, int] = ("batch", 19)
#: What ``ProcessRecorder(priority=...)`` accepts.
PRIORITIES = ("background", "normal")

_POLICIES = {"batch": "SCHED_BATCH", "idle": "SCHED_IDLE"}


def lower_task(tid: int, policy: str, nice: int = 0) -> bool:
    """Move one thread (Linux task id; 0 = the calling thread) to ``policy`` and ``nice`` more.

    ``policy`` is 'batch', 'idle' or 'other' (keep the class).  Returns False when the
    system refused or does not support it (the recording goes on at the old priority).
    """
    ok = True
    const = getattr(os, _POLICIES.get(policy, ""), None)
    if const is not None and hasattr(os, "sched_setscheduler"):
        try:
            os.sched_setscheduler(tid, const, os.sched_param(0))
        except OSError:
            ok = False
    if nice and policy != "idle":  # (a SCHED_IDLE task's nice value does not matter)
        try:
            which = os.PRIO_PROCESS  # on Linux a task id names one thread
            os.setpriority(which, tid, min(19, os.getpriority(which, tid) + nice))
        except (OSError, AttributeError):
            ok = False
    return ok


def lower_process(policy: str = RENDER_PRIORITY[0], nice: int = RENDER_PRIORITY[1]) -> bool:
    """Every thread of this process to ``policy`` and ``nice`` more (render workers: call first thing)."""
    tasks = [0]
    try:
        tasks = [int(t) for t in os.listdir("/proc/self/task")]
    except OSError:
        pass
    return all([lower_task(t, policy, nice) for t in tasks])


class ThreadPriorities:
    """Lowers this process's background threads (by name, :data:`BACKGROUND_THREADS`) as they appear.

    Threads come and go with trials (a ``writer`` and its ``lz4`` pool per trial file), so
    :meth:`apply` is called periodically (the recorder child's status loop, 5 times a second)
    and right after a trial begins; each thread is changed once.
    """

    def __init__(self, table: dict[str, tuple[str, int]] | None = None):
        self.table = BACKGROUND_THREADS if table is None else table
        self._done: set[int] = set()
        self.lowered: dict[str, str] = {}  # thread name -> 'batch+5' (what was applied, for the record)

    def apply(self) -> None:
        alive = set()
        for thread in threading.enumerate():
            tid = thread.native_id
            if tid is None:
                continue
            alive.add(tid)
            if tid in self._done:
                continue
            rule = next((r for prefix, r in self.table.items() if thread.name.startswith(prefix)), None)
            self._done.add(tid)
            if rule is not None and lower_task(tid, *rule):
                self.lowered[thread.name] = f"{rule[0]}+{rule[1]}"
        self._done &= alive  # a task id may be reused by a later thread
