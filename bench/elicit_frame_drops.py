"""Does recording make PsychoPy drop display frames?  In-process writer vs child process vs none.

Plays a demo clip in a real PsychoPy window (flips paced to 60 Hz when there is no vsync, as
under Xvfb) for ``--seconds`` while one of these runs:

* ``none``      — no camera, no recording (the reference)
* ``thread``    — the station's Recorder in this process (capture + HDF5 writer threads)
* ``process``   — the same Recorder in a child process (multiprocessing, spawn)

The camera is a *replay* source: framesets rendered once by the virtual D415 and handed out
again at the camera's frame rate with fresh frame numbers, so the cost measured is the
recorder's (queueing, LZ4 compression, HDF5 writes), not the synthetic scene's rendering,
which a real D415 does not cost the host.  Conditions are interleaved and repeated because
the machine is shared.  Output: a markdown table (mean over repeats) and the ratios.

    xvfb-run -a python bench/elicit_frame_drops.py --seconds 8 --repeats 3

``--session`` measures the whole demo session instead (issue #16 item 2): ``station run`` on
``protocols/demo.yaml`` (camera 848x480 colour + depth at 60 fps, the paper's mode) with the
real recorder child and the virtual D415, and the same session with a recorder that records
nothing, interleaved in one run; it reports display frames dropped during the films, camera
frames written / missing, film frames shown, and the ratio of display drops.

    xvfb-run -a python bench/elicit_frame_drops.py --session --repeats 2
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _common import scratch  # noqa: E402


class ReplaySource:
    """Pre-rendered framesets re-emitted in real time; cheap, so only the recorder costs CPU."""

    def __init__(self, width: int, height: int, fps: int, n: int = 30):
        from station.camera import open_camera

        cam = open_camera("virtual", width=width, height=height, fps=fps, realtime=False)
        self.calibration = cam.start()
        self.frames = [cam.read(timeout_s=5.0) for _ in range(n)]
        cam.stop()
        self.fps, self.description = fps, f"replay of {n} virtual frames"
        self.i = 0
        self.next_t = None

    def start(self):
        self.next_t = time.perf_counter()
        return self.calibration

    def read(self, timeout_s: float = 1.0):
        from dataclasses import replace

        self.next_t += 1.0 / self.fps
        delay = self.next_t - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        fs = self.frames[self.i % len(self.frames)]
        self.i += 1
        ct = replace(fs.color_times, number=self.i)
        dt = replace(fs.depth_times, number=self.i)
        return replace(fs, color_times=ct, depth_times=dt, host_time=time.perf_counter())

    def stop(self):
        pass


def _child_record(width, height, fps, seconds, path, ready, result):
    from station.record.recorder import Recorder

    rec = Recorder(ReplaySource(width, height, fps))
    rec.open()
    rec.begin_trial(path, {})
    ready.set()
    time.sleep(seconds)
    stats = rec.end_trial()
    rec.close()
    result.put((stats.frames_written, stats.dropped))


def play(display, clip: Path, seconds: float) -> dict:
    from psychopy import visual

    movie = visual.MovieStim(display.win, str(clip), size=(0.8, 0.45), noAudio=True, loop=True, units="height")
    display.phase = display.clip = ""
    for _ in range(10):  # settle
        movie.draw()
        display.flip()
    start = len(display.log.times)
    movie.play()
    display.phase, display.clip = "clip", "bench"
    t0 = time.perf_counter()
    pts, gaps, last = 0, 0, None
    while time.perf_counter() - t0 < seconds:
        movie.draw()
        if movie.pts is not None and movie.pts != last:
            if last is not None and 0 < movie.pts - last > 1.5 / 30:
                gaps += round((movie.pts - last) * 30) - 1
            last = movie.pts
            pts += 1
        display.flip()
    movie.stop()
    movie.unload()
    s = display.summary(display.intervals(clip="bench", phases=("clip",)))
    display.log.clips[start:] = ["x"] * (len(display.log.times) - start)  # don't count twice
    s["movie_frames"] = pts
    s["movie_skipped"] = gaps
    return s


def run_condition(kind: str, display, clip: Path, seconds: float, mode: tuple[int, int, int], tmp: Path, k: int) -> dict:
    from station.record.recorder import Recorder

    w, h, fps = mode
    path = tmp / f"{kind}-{k}.h5"
    cam = {}
    if kind == "none":
        s = play(display, clip, seconds)
    elif kind == "thread":
        rec = Recorder(ReplaySource(w, h, fps))
        rec.open()
        rec.begin_trial(path, {})
        s = play(display, clip, seconds)
        stats = rec.end_trial()
        rec.close()
        cam = {"cam_written": stats.frames_written, "cam_dropped": stats.dropped}
    else:
        ctx = mp.get_context("spawn")
        ready, result = ctx.Event(), ctx.Queue()
        proc = ctx.Process(target=_child_record, args=(w, h, fps, seconds + 1.0, str(path), ready, result))
        proc.start()
        ready.wait(60)
        s = play(display, clip, seconds)
        written, dropped = result.get(timeout=120)
        proc.join()
        cam = {"cam_written": written, "cam_dropped": dropped}
    return {**s, **cam}


class NoRecording:
    """Plays the recorder role (station.elicit.recording.RecorderRole) and records nothing:
    the reference session, with the same window, films, forms and journal."""

    def __init__(self):
        import threading
        from types import SimpleNamespace

        self.calibration, self.source = None, SimpleNamespace(description="no recording (benchmark reference)")
        self.ended, self.error, self.session_markers = threading.Event(), "", []
        self._stats = None

    def open(self) -> None:
        pass

    def begin_trial(self, path, attrs=None, ground_truth=None):
        from station.record.recorder import TrialStats

        self._stats = TrialStats(Path(path))
        return Path(path)

    def end_trial(self, reason: str = ""):
        stats, self._stats = self._stats, None
        stats.ended, stats.stop_reason = time.perf_counter(), reason
        return stats

    def mark(self, event, clip="", detail="", t=None) -> None:
        pass

    def status(self):
        from station.record.recorder import RecorderStatus

        fields = {f: 0 for f in RecorderStatus.__dataclass_fields__}
        fields.update(fps=0.0, mb_per_s=0.0, recording=self._stats is not None, warning="", error="")
        return RecorderStatus(**fields)

    def close(self) -> None:
        pass


def session_condition(record: bool, sessions: Path, k: int, priority: str = "background") -> dict:
    """One demo session (simulated participant) with or without recording; summed over its films."""
    import os

    from station.elicit.session_run import run_session

    tag = f"bench{k:02d}{('r' + priority[0]) if record else 'n'}"
    load0 = os.getloadavg()[0]
    session = run_session(ROOT / "protocols" / "demo.yaml", tag,
                          camera="virtual" if record else NoRecording(), sessions_root=sessions, simulate="",
                          live=False, windowed=True, recorder_priority=priority)
    trials = session.data["trials"]
    out = {"flips": sum(t["display_clip"]["flips"] for t in trials),
           "dropped": sum(t["display_clip"]["dropped"] for t in trials),
           "movie_frames": sum(t["movie"].get("frames_shown", 0) for t in trials),
           "movie_expected": sum(t["movie"].get("frames_expected", 0) for t in trials),
           "status": session.data["status"],
           "verdicts": [c.get("outcome") for c in session.data.get("clips", [])],
           "begin_wait_s": [t.get("begin_wait_s", 0.0) for t in trials],
           "load": (round(load0, 2), round(os.getloadavg()[0], 2))}
    if record:
        cams = [t["camera"] for t in trials]
        cams = [c for c in cams if c]
        out.update(cam_written=sum(c["frames_written"] for c in cams), cam_dropped=sum(c["dropped"] for c in cams),
                   cam_expected=sum(round(c["seconds"] * 60) for c in cams))
    return out


def main_session(args) -> int:
    with scratch("bench-session-") as tmp:
        return _main_session(args, tmp)


def _main_session(args, tmp: Path) -> int:
    import os

    conditions = ["none"] + [p for p in args.priorities.split(",") if p]
    rows: dict[str, list[dict]] = {c: [] for c in conditions}
    load_start = os.getloadavg()
    for r in range(args.repeats):
        order = conditions if r % 2 == 0 else [conditions[0]] + conditions[:0:-1]  # alternate the recording variants
        for cond in order:
            res = session_condition(cond != "none", tmp, r, cond if cond != "none" else "background")
            rows[cond].append(res)
            print(f"repeat {r} {cond:10s} {res}", file=sys.stderr)
    load_end = os.getloadavg()

    def mean(cond, key):
        vals = [x[key] for x in rows[cond] if key in x]
        return statistics.mean(vals) if vals else float("nan")

    def median(cond, key):
        vals = [x[key] for x in rows[cond] if key in x]
        return statistics.median(vals) if vals else float("nan")

    print(f"\ndemo session (protocols/demo.yaml: 3 films of 6 s, camera 848x480@60, virtual D415), "
          f"{args.repeats} repeats interleaved; load average (1/5/15 min) at the start "
          f"{'/'.join(f'{x:.2f}' for x in load_start)}, at the end {'/'.join(f'{x:.2f}' for x in load_end)}\n")
    print("| session | display flips in films | dropped display frames (mean; median) | film frames shown / expected | "
          "camera frames written | camera frames missing (dropped) | wait before each trial, s (mean; max) | "
          "verdicts |")
    print("|---|---|---|---|---|---|---|---|")
    names = {"none": "no recording", "background": "recording (child process, background priority)",
             "normal": "recording (child process, every thread at the session's priority)"}
    for cond in conditions:
        record = cond != "none"
        cam = (f"{mean(cond, 'cam_written'):.0f} | {mean(cond, 'cam_dropped'):.1f}" if record else "— | —")
        waits = [w for x in rows[cond] for w in x["begin_wait_s"]]
        wait = f"{statistics.mean(waits):.2f}; {max(waits):.2f}" if record and waits else "—"
        verdicts = sorted({v for x in rows[cond] for v in x["verdicts"]})
        print(f"| {names.get(cond, cond)} | {mean(cond, 'flips'):.0f} | {mean(cond, 'dropped'):.1f}; "
              f"{median(cond, 'dropped'):.0f} | {mean(cond, 'movie_frames'):.0f} / {mean(cond, 'movie_expected'):.0f} | "
              f"{cam} | {wait} | {', '.join(verdicts)} |")
    base, flips = mean("none", "dropped"), mean("none", "flips")
    for cond in conditions[1:]:
        rec = mean(cond, "dropped")
        print(f"\ndisplay drops, recording ({cond}) vs without: {rec:.1f} vs {base:.1f} "
              f"({100 * (rec - base) / flips:+.2f} % of the films' flips; ratio (drops+1) {(rec + 1) / (base + 1):.2f}; "
              f"ratio of medians {(median(cond, 'dropped') + 1) / (median('none', 'dropped') + 1):.2f})")
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--mode", default="848x480@60", help="camera mode WxH@FPS (paper: 848x480@60)")
    ap.add_argument("--window", default="800x600")
    ap.add_argument("--session", action="store_true", help="whole demo sessions with and without recording")
    ap.add_argument("--priorities", default="background",
                    help="--session: recording variants to interleave with the reference, comma-separated: "
                         "background (station run's default), normal (every recorder thread at the session's priority)")
    args = ap.parse_args(argv)
    if args.session:
        return main_session(args)
    wh, fps = args.mode.split("@")
    mode = (*map(int, wh.split("x")), int(fps))
    with scratch("bench-elicit-") as tmp:
        return _main_display(args, mode, tmp)


def _main_display(args, mode: tuple[int, int, int], tmp: Path) -> int:
    from station.elicit.democlips import DemoSpec, write_demo_clip
    from station.elicit.display import Display

    clip = write_demo_clip(DemoSpec("bench", "happiness", 6.0), tmp / "bench.mp4")
    display = Display(tuple(map(int, args.window.split("x"))), fullscreen=False)
    kinds = ("none", "thread", "process")
    rows: dict[str, list[dict]] = {k: [] for k in kinds}
    for r in range(args.repeats):
        for kind in kinds:
            res = run_condition(kind, display, clip, args.seconds, mode, tmp, r)
            rows[kind].append(res)
            print(f"repeat {r} {kind:8s} {res}", file=sys.stderr)
    display.close()

    def mean(kind, key):
        vals = [x.get(key) for x in rows[kind] if x.get(key) is not None]
        return statistics.mean(vals) if vals else float("nan")

    print(f"\nvsync: {display.vsync}, paced at {display.paced_hz} Hz; camera {args.mode}; clip 30 fps; "
          f"{args.seconds:g} s x {args.repeats} repeats\n")
    print("| recorder | display flips | dropped display frames | late intervals | p99 interval ms | max ms | "
          "film frames shown | film frames skipped | camera frames written | camera dropped |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for kind in kinds:
        print(f"| {kind} | {mean(kind, 'flips'):.0f} | {mean(kind, 'dropped'):.1f} | {mean(kind, 'late_intervals'):.1f} | "
              f"{mean(kind, 'p99_ms'):.1f} | {mean(kind, 'max_ms'):.1f} | {mean(kind, 'movie_frames'):.0f} | "
              f"{mean(kind, 'movie_skipped'):.1f} | {mean(kind, 'cam_written'):.0f} | {mean(kind, 'cam_dropped'):.1f} |")
    base = mean("none", "dropped") + 1
    print(f"\nratio (dropped display frames + 1) vs none: thread {(mean('thread', 'dropped') + 1) / base:.2f}, "
          f"process {(mean('process', 'dropped') + 1) / base:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
