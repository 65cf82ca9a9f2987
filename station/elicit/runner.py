"""The participant session: instructions, baseline + clip recorded per trial, rest, forms.

::

    welcome ─► for each clip (in the participant's order):
                 [trial file opens] baseline (neutral face, fixation) ─► film ─► blank
                 [trial file closes]  ─► self-report form ─► rest until calm
             ─► end-of-session forms ─► thank you

Every state change is a marker stamped with the flip that showed it (see display.py), sent to
the trial file, session.json and LSL.  ESCAPE stops the film at once, keeps the recording
and asks whether to go on; the experimenter's pause key freezes the film.  A lost camera or a
closed window ends the session with everything recorded so far kept and a clear message.
"""

from __future__ import annotations

import csv
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from station.camera.base import CameraError
from station.checks import StationError
from station.console import console, print_warning
from station.elicit.display import Display, WindowClosed
from station.elicit.forms import FormScreen, validate_answers
from station.elicit.protocol import Clip, Protocol
from station.elicit.status import RunState


def reflow(text: str) -> str:
    """Join the hard-wrapped lines of a YAML block into paragraphs; the window wraps them itself.

    Blank lines separate paragraphs; a line of its own stays one (e.g. "Press SPACE...").
    """
    paragraphs = [" ".join(line.strip() for line in block.splitlines() if line.strip())
                  for block in text.strip().split("\n\n")]
    return "\n\n".join(p for p in paragraphs if p)


class CameraLost(Exception):
    """The camera stopped delivering frames during a trial."""


class SessionStopped(Exception):
    """The participant chose to end the session."""


@dataclass
class SimulatedParticipant:
    """Presses keys and answers forms by itself; everything it does is marked as simulated.

    ``script`` items (comma separated on the command line): ``abort=CLIP@SECONDS`` presses
    ESCAPE that many seconds into the film; ``stop`` answers 'no' to "continue?" after an
    abort; ``close=CLIP@SECONDS`` closes the window; ``pause=CLIP@SECONDS`` pauses for 0.5 s.
    """

    seed: int = 0
    aborts: dict[str, float] = field(default_factory=dict)
    closes: dict[str, float] = field(default_factory=dict)
    pauses: dict[str, float] = field(default_factory=dict)
    continue_after_abort: bool = True
    key_delay: float = 0.3
    form_delay: float = 0.2

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self._done: set[tuple[str, str]] = set()

    @classmethod
    def from_script(cls, script: str | None, seed: int = 0) -> "SimulatedParticipant":
        sim = cls(seed=seed)
        for item in filter(None, (s.strip() for s in (script or "").split(","))):
            if item == "stop":
                sim.continue_after_abort = False
                continue
            kind, _, rest = item.partition("=")
            clip, _, sec = rest.partition("@")
            target = {"abort": sim.aborts, "close": sim.closes, "pause": sim.pauses}.get(kind)
            try:
                seconds = float(sec)
            except ValueError:
                target = None
            if target is None or not clip:
                raise StationError(f"--simulate-participant item {item!r} is not understood; use abort=CLIP@SECONDS, "
                                   "close=CLIP@SECONDS, pause=CLIP@SECONDS or stop.")
            target[clip] = seconds
        return sim

    def once(self, what: str, clip: str) -> bool:
        if (what, clip) in self._done:
            return False
        self._done.add((what, clip))
        return True

    def answer_form(self, questions, emotions, target: str) -> dict[str, Any]:
        emotion = target if target in emotions and self.rng.random() < 0.6 else self.rng.choice(list(emotions))
        return {"emotion": emotion, "intensity": self.rng.randint(1, 5),
                "movements": "(simulated participant) slight brow movement, suppressed smile"}


class Runner:
    """Runs one protocol for one participant; see the module docstring."""

    def __init__(self, protocol: Protocol, order: list[str], session, recorder, display: Display, markers,
                 state: RunState, simulated: SimulatedParticipant | None = None, sound: bool = True):
        self.p, self.order, self.session = protocol, order, session
        self.recorder, self.display, self.markers, self.state = recorder, display, markers, state
        self.sim, self.sound = simulated, sound
        self.keys = protocol.keys
        self.trial_open = False
        self.paused = False
        self.frame_csv = session.folder / "frame-intervals.csv"
        self._frames_saved = 0
        self.watched: list[Clip] = []
        self._forms: dict[tuple[str, ...], FormScreen] = {}
        from psychopy import visual

        win = display.win
        self.win_aspect = win.size[0] / win.size[1]
        wrap = 0.9 * self.win_aspect  # text never runs off a narrow (4:3) window
        self.text = visual.TextStim(win, text="", height=0.032, wrapWidth=wrap, color="white", units="height")
        self.fixation = visual.TextStim(win, text="+", height=0.08, color="white", units="height")

    # -- helpers -------------------------------------------------------------------------------
    def _simulate(self, phase: str, clip: str, elapsed: float, can_continue: bool) -> None:
        """The simulated participant acts through real key events and window events."""
        sim = self.sim
        if sim is None:
            return
        if phase == "clip":
            if clip in sim.closes and elapsed >= sim.closes[clip] and sim.once("close", clip):
                self.display.request_close()
            if clip in sim.aborts and elapsed >= sim.aborts[clip] and sim.once("abort", clip):
                self.display.press(self.keys.abort[0])
            if clip in sim.pauses and elapsed >= sim.pauses[clip] and sim.once("pause", clip):
                self.display.press(self.keys.pause)
            if clip in sim.pauses and elapsed >= sim.pauses[clip] + 0.5 and sim.once("resume", clip):
                self.display.press(self.keys.pause)
        elif phase == "confirm" and elapsed >= sim.key_delay and sim.once("confirm", clip):
            self.display.press(self.keys.yes if sim.continue_after_abort else self.keys.no)
        elif can_continue and elapsed >= sim.key_delay and sim.once(phase, clip):
            self.display.press(self.keys.continue_)

    def _check_camera(self, clip: str) -> None:
        if self.trial_open and self.recorder.ended.is_set():
            raise CameraLost(self.recorder.error or "the camera stream ended")

    def _handle_keys(self, clip: str, allowed: tuple[str, ...]) -> list[str]:
        """Log every key press as a marker (its own timestamp); return the allowed ones."""
        out = []
        for name, t in self.display.keys():
            self.markers.emit("key", clip, name + (" (simulated)" if self.sim else ""), t=t)
            if name == self.keys.pause:
                self.paused = not self.paused
                self.state.paused = self.paused
                self.display.on_flip("pause" if self.paused else "resume", clip, "experimenter")
            elif name in allowed:
                out.append(name)
        return out

    def screen(self, phase: str, text: str = "", *, fixation: bool = False, seconds: float | None = None,
               min_seconds: float = 0.0, max_seconds: float | None = None, keys: tuple[str, ...] = (),
               clip: str = "") -> str:
        """Show text (or a fixation cross) until time is up or an allowed key; returns the key or ''.

        Time spent paused does not count.
        """
        self.state.enter(phase, clip)
        self.display.phase, self.display.clip = phase, clip
        text = reflow(text)
        self.text.text = text
        start = None
        paused_for, pause_start = 0.0, None
        self.display.clear_keys()
        while True:
            if fixation:
                self.fixation.draw()
            if text:
                self.text.draw()
            t = self.display.flip()
            start = t if start is None else start
            if self.paused and pause_start is None:
                pause_start = t
            if not self.paused and pause_start is not None:
                paused_for += t - pause_start
                pause_start = None
            elapsed = t - start - paused_for - (t - pause_start if pause_start else 0.0)
            self._check_camera(clip)
            can_continue = bool(keys) and elapsed >= min_seconds
            self._simulate(phase, clip, elapsed, can_continue)
            pressed = self._handle_keys(clip, keys + tuple(self.keys.abort))
            for key in pressed:
                if key in self.keys.abort and phase not in ("confirm",):
                    if self.confirm("Do you want to end the session now?\n\nY = yes, end it      N = no, go on",
                                    clip, default_yes=False):
                        raise SessionStopped(f"participant ended the session during {phase}")
                    self.state.enter(phase, clip)
                    self.display.phase = phase
                    self.text.text = text
                elif key in keys and (elapsed >= min_seconds or phase == "confirm"):
                    return key
            if self.paused:
                continue
            if seconds is not None and elapsed >= seconds:
                return ""
            if max_seconds is not None and elapsed >= max_seconds:
                return ""

    def confirm(self, question: str, clip: str, default_yes: bool = True) -> bool:
        """Yes / no question in the window (abort follow-up)."""
        self.markers.emit("question", clip, question.splitlines()[0][:200])
        key = self.screen("confirm", question, keys=(self.keys.yes, self.keys.no), clip=clip)
        self.markers.emit("answer", clip, key)
        return key == self.keys.yes

    # -- one clip ------------------------------------------------------------------------------
    def clip_trial(self, number: int, clip: Clip) -> str:
        """Baseline + film + blank, recorded to its own trial file; returns the outcome."""
        from psychopy import visual

        st = self.state
        st.clip_number = number
        path = self.session.trial_path(number, clip.id)
        try:
            movie = visual.MovieStim(self.display.win, str(clip.path), size=self.p.display.movie_size,
                                     noAudio=not self.sound, units="pix" if self.p.display.movie_size else "height",
                                     autoStart=False)
        except Exception as err:
            raise StationError(f"clip {clip.id!r} ({clip.path}) cannot be opened by PsychoPy: {err}. "
                               f"Run `station check {self.p.file}`.") from err
        if movie.duration is None or movie.duration <= 0:
            raise StationError(f"clip {clip.id!r} ({clip.path}) has no decodable video "
                               f"({clip.where('file')}); run `station check {self.p.file}`.")
        if not self.p.display.movie_size:  # as large as fits the window, keeping the film's aspect
            w, h = movie.frameSize if movie.frameSize else (16, 9)
            height = min(0.9, 0.95 * self.win_aspect / (w / h))
            movie.size = (height * w / h, height)
        from station.record.schema import CLIP_EMOTION, identity_attrs

        attrs = identity_attrs(self.session.participant, self.session.session_id, number, clip.id,
                               **{CLIP_EMOTION: clip.emotion}, clip_file=str(clip.path), protocol=self.p.name,
                               simulated_participant=self.sim is not None)
        outcome = "complete"
        display_before = len(self.display.log.times)
        try:
            if self.p.instructions.before_clip:
                self.screen("before_clip", self.p.instructions.before_clip, seconds=2.0, clip=clip.id)
            if self.p.record.baseline:
                self._begin_trial(path, attrs, clip)
            self.display.on_flip("baseline_start", clip.id)
            if self.p.baseline.seconds > 0:
                self.screen("baseline", self.p.baseline.text, fixation=True, seconds=self.p.baseline.seconds,
                            clip=clip.id)
            if not self.trial_open and self.p.record.clip:
                self._begin_trial(path, attrs, clip)
            self.markers.emit("baseline_end", clip.id, t=self.display.last_flip)
            outcome = self.play(movie, clip)
            if self.p.record.after_clip_seconds > 0 and outcome != "camera_lost":
                self.screen("after_clip", "", seconds=self.p.record.after_clip_seconds, clip=clip.id)
            if self.p.record.rest and number < len(self.order) and outcome == "complete":
                self.rest(clip.id)
        except CameraLost as err:
            outcome = "camera_lost"
            self.markers.emit("camera_lost", clip.id, str(err)[:250])
            self._end_trial(number, clip, movie, f"camera lost: {err}", display_before, outcome)
            raise
        except WindowClosed:
            self.markers.emit("window_closed", clip.id)
            self._end_trial(number, clip, movie, "window closed", display_before, "window_closed")
            raise
        except SessionStopped:
            self._end_trial(number, clip, movie, "session ended by participant", display_before, "stopped")
            raise
        except KeyboardInterrupt:  # Ctrl-C in the experimenter's terminal
            self.markers.emit("interrupted", clip.id, "Ctrl-C")
            self._end_trial(number, clip, movie, "interrupted (Ctrl-C)", display_before, "interrupted")
            raise
        finally:
            try:
                movie.unload()
            except Exception:
                pass
        self._end_trial(number, clip, movie, "aborted by participant" if outcome == "aborted" else "",
                        display_before, outcome)
        return outcome

    def _begin_trial(self, path: Path, attrs: dict, clip: Clip) -> None:
        if self.recorder is None:
            return
        try:
            self.recorder.begin_trial(path, attrs)
        except CameraError as err:
            raise CameraLost(str(err)) from err
        self.trial_open = True
        self.markers.emit("recording_start", clip.id, path.name)

    def play(self, movie, clip: Clip) -> str:
        """Play the film; first/last frame markers are the flips that showed them."""
        st, d = self.state, self.display
        st.enter("clip", clip.id)
        d.phase, d.clip = "clip", clip.id
        d.clear_keys()
        movie.play()
        last_pts, shown, first_t, last_frame_t = None, 0, None, None
        gaps = 0
        frame_period = 1.0 / (movie.frameRate or 30.0)
        outcome = "complete"
        while True:
            movie.draw()
            pts = movie.pts
            new_frame = pts is not None and pts != last_pts
            if new_frame:
                if last_pts is not None and pts - last_pts > 1.5 * frame_period:
                    gaps += round((pts - last_pts) / frame_period) - 1
                if shown == 0:
                    d.on_flip("clip_first_frame", clip.id, f"pts={pts:.3f}")
                shown += 1
                last_pts = pts
            t = d.flip()
            st.display_drops = d.late_in_phase  # live panel: display frames missed in this film so far
            if new_frame:
                last_frame_t = t
                first_t = first_t if first_t is not None else t
            self._check_camera(clip.id)
            self._simulate("clip", clip.id, t - first_t if first_t else 0.0, False)
            pressed = self._handle_keys(clip.id, tuple(self.keys.abort))
            if self.paused and not movie.isPaused:
                movie.pause()
            elif not self.paused and movie.isPaused:
                movie.play()
            if pressed:
                movie.stop()
                outcome = "aborted"
                d.on_flip("clip_abort", clip.id, f"key={pressed[0]} after {shown} frames")
                self.text.text = ""
                d.flip()
                break
            if movie.isFinished:
                break
        if last_frame_t is not None:
            self.markers.emit("clip_last_frame", clip.id, f"pts={last_pts:.3f}", t=last_frame_t)
        self.movie_stats = {"frames_shown": shown, "frames_expected": int(round((movie.duration or 0) * (movie.frameRate or 0))),
                            "frames_skipped": gaps, "duration_s": movie.duration, "fps": movie.frameRate,
                            "first_frame_t": first_t, "last_frame_t": last_frame_t}
        d.on_flip("clip_end", clip.id, outcome)
        return outcome

    def _end_trial(self, number: int, clip: Clip, movie, reason: str, display_before: int, outcome: str) -> None:
        stats = None
        if self.trial_open:
            self.markers.emit("recording_end", clip.id, reason)
            stats = self.recorder.end_trial(reason)
            self.trial_open = False
        clip_int = self.display.intervals(clip=clip.id, phases=("clip",))
        trial_int = self.display.intervals(clip=clip.id)
        info = {
            "number": number, "clip": clip.id, "emotion": clip.emotion, "outcome": outcome,
            "file": stats.path.name if stats else None, "complete_file": bool(stats and stats.complete),
            "stop_reason": reason,
            "camera": ({**stats.counters(), "dropped": stats.dropped,
                        "seconds": (stats.ended or time.perf_counter()) - stats.started} if stats else None),
            "display_clip": self.display.summary(clip_int),
            "display_trial": self.display.summary(trial_int),
            "movie": getattr(self, "movie_stats", {}),
        }
        self.movie_stats = {}
        self.state.display_drops = info["display_clip"]["dropped"]
        self.session.add_trial(info)
        self._save_frames()
        self.watched.append(clip)

    def _save_frames(self) -> None:
        """Append new display flips to frame-intervals.csv (every flip, with phase and clip)."""
        log = self.display.log
        new = range(self._frames_saved, len(log.times))
        first = self._frames_saved == 0
        with open(self.frame_csv, "a", newline="") as f:
            w = csv.writer(f)
            if first:
                w.writerow(["flip_time", "interval_ms", "phase", "clip"])
            for i in new:
                dt = "" if i == 0 else f"{1000 * (log.times[i] - log.times[i - 1]):.3f}"
                w.writerow([f"{log.times[i]:.6f}", dt, log.phases[i], log.clips[i]])
        self._frames_saved = len(log.times)

    # -- rest and forms ------------------------------------------------------------------------
    def rest(self, after_clip: str) -> None:
        r = self.p.rest
        self.display.on_flip("rest_start", after_clip, f"{r.mode} {r.seconds:g}s")
        if r.mode == "fixed":
            self.screen("rest", r.text, seconds=r.seconds, clip=after_clip)
        else:
            self.screen("rest", r.text, min_seconds=r.seconds, max_seconds=r.max_seconds,
                        keys=(self.keys.continue_,), clip=after_clip)
        self.markers.emit("rest_end", after_clip, t=self.display.last_flip)

    def form(self, questions: tuple[str, ...], clip: Clip | None, when: str, title: str) -> None:
        cid = clip.id if clip else ""
        self.state.enter("self-report", cid)
        self.display.phase, self.display.clip = "form", cid
        self.display.on_flip("form_start", cid, when)
        screen = self._forms.get(questions)
        if screen is None:
            screen = self._forms[questions] = FormScreen(self.display, questions, title, self.p.self_report.emotions)
        else:
            screen.reset(title)
        answers, seconds = screen.run(self.sim, clip.emotion if clip else "")
        answers = validate_answers(answers, questions, self.p.self_report.emotions, where=f"form for {cid or 'end'}")
        self.markers.emit("form_end", cid, when, t=self.display.last_flip)
        self.session.add_self_report({"clip": cid, "when": when, **answers, "seconds": round(seconds, 3),
                                      "source": "simulated participant" if self.sim else "window",
                                      "simulated": self.sim is not None})

    # -- whole session -------------------------------------------------------------------------
    def run(self) -> str:
        """Run the protocol; returns the session status ('complete', 'stopped by participant')."""
        p = self.p
        self.state.clip_count = len(self.order)
        self.display.on_flip("instructions_start")
        self.screen("instructions", p.instructions.welcome, keys=(self.keys.continue_,), min_seconds=0.5)
        self.markers.emit("instructions_end", t=self.display.last_flip)
        status = "complete"
        try:
            for number, clip_id in enumerate(self.order, 1):
                clip = p.manifest.clips[clip_id]
                outcome = self.clip_trial(number, clip)
                if p.self_report.after_each_clip:
                    self.form(p.self_report.after_each_clip, clip, "after_clip",
                              f"Film {number} of {len(self.order)}")
                if outcome == "aborted":
                    if not self.confirm("You stopped the film. That is fine.\n\nDo you want to continue with the "
                                        "next film?\n\nY = continue      N = end the session", clip.id):
                        raise SessionStopped(f"participant ended the session after aborting {clip.id}")
                if number < len(self.order) and not p.record.rest:
                    self.rest(clip.id)
        except SessionStopped as err:
            self.markers.emit("session_stopped", detail=str(err)[:250])
            status = "stopped by participant"
        if p.self_report.at_end and self.watched:
            for i, clip in enumerate(self.watched, 1):
                self.form(p.self_report.at_end, clip, "end", f"About film {i} of {len(self.watched)} that you watched")
        self.display.on_flip("end_screen")
        self.screen("end", p.instructions.end, seconds=2.0 if self.sim else 5.0, keys=(self.keys.continue_,))
        self._save_frames()
        return status
