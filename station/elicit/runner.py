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
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from station.camera.base import CameraError
from station.checks import StationError
from station.console import console, print_warning
from station.elicit.display import Display, WindowClosed, missed_frames
from station.elicit.forms import FormScreen, validate_answers
from station.elicit.preview import FaceWatch
from station.elicit.protocol import Clip, Protocol
from station.elicit.status import RunState
from station.elicit.verdict import RECORDER_VERDICT, file_verdict
from station.signals import interruption, raise_interruption, signal_name
from station.vocab.markers import Marker


def reflow(text: str) -> str:
    """Join the hard-wrapped lines of a YAML block into paragraphs; the window wraps them itself.

    Blank lines separate paragraphs; a line of its own stays one (e.g. "Press SPACE...").
    """
    paragraphs = [" ".join(line.strip() for line in block.splitlines() if line.strip())
                  for block in text.strip().split("\n\n")]
    return "\n\n".join(p for p in paragraphs if p)


class RecordingFault(Exception):
    """The recording of a clip failed: the clip stops, the session asks what to do next.

    ``kind`` is the marker recorded for it (:data:`FAULT_KINDS`).
    """

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


class CameraLost(RecordingFault):
    """The camera (or the recorder process) stopped delivering frames during a trial."""

    def __init__(self, message: str, kind: str = Marker.CAMERA_LOST):
        super().__init__(kind, message)


#: Faults that stop a clip, and what the experimenter is told about each.
FAULT_KINDS = {
    Marker.CAMERA_LOST: "the camera stopped delivering frames",
    Marker.RECORDER_DIED: "the recorder process died",
    Marker.RECORDING_STOPPED: "the recorder stopped the trial",
    Marker.CAMERA_STALLED: "the camera stalled",
}
#: The experimenter's choice after a fault (keys on the participant window).
FAULT_CHOICES = {"r": "retry", "n": "next", "e": "end"}


class SessionStopped(Exception):
    """The participant chose to end the session."""


@dataclass
class SimulatedParticipant:
    """Presses keys and answers forms by itself; everything it does is marked as simulated.

    ``script`` items (comma separated on the command line): ``abort=CLIP@SECONDS`` presses
    ESCAPE that many seconds into the film; ``stop`` answers 'no' to "continue?" after an
    abort; ``close=CLIP@SECONDS`` closes the window; ``pause=CLIP@SECONDS`` pauses for 0.5 s;
    ``fault=retry|next|end`` is the experimenter's answer after a recording fault (default
    ``end``; a clip is retried once, then the next one is taken); ``wait=SECONDS`` waits that
    long before each key press and form answer (default 0.3 s and 0.2 s).
    """

    seed: int = 0
    aborts: dict[str, float] = field(default_factory=dict)
    closes: dict[str, float] = field(default_factory=dict)
    pauses: dict[str, float] = field(default_factory=dict)
    continue_after_abort: bool = True
    after_fault: str = "end"
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
            if item.startswith("wait="):  # a slower participant: seconds before each key and form answer
                try:
                    sim.key_delay = sim.form_delay = float(item.partition("=")[2])
                except ValueError:
                    raise StationError(f"--simulate-participant item {item!r}: wait needs seconds, e.g. wait=2.") from None
                continue
            if item.startswith("fault="):
                choice = item.partition("=")[2]
                if choice not in FAULT_CHOICES.values():
                    raise StationError(f"--simulate-participant item {item!r}: fault must be one of "
                                       f"{', '.join(FAULT_CHOICES.values())}, got {choice!r}.")
                sim.after_fault = choice
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
                                   "close=CLIP@SECONDS, pause=CLIP@SECONDS, stop, wait=SECONDS or fault=retry|next|end.")
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


def take_seconds(protocol: Protocol, clip: Clip) -> float:
    """How long the trial of ``clip`` records: baseline, film, blank (and rest), with margin
    for pauses and start-up.  A film without a manifest duration is measured (the probe of
    `station check`, cached)."""
    return 1.05 * trial_seconds(protocol, clip) + 2.0


def trial_seconds(protocol: Protocol, clip: Clip) -> float:
    """Baseline + film + blank (+ rest) of ``clip``'s trial as the protocol plans it, no margin."""
    p = protocol
    film = clip.duration
    if film is None:
        from station.elicit.check import probe_clip_cached

        try:
            film = probe_clip_cached(clip.path).duration
        except StationError:
            film = 180.0  # the paper's longest film
    rest = (p.rest.max_seconds or p.rest.seconds) if p.record.rest else 0.0
    baseline = p.baseline.seconds if p.record.baseline else 0.0
    return baseline + film + p.record.after_clip_seconds + rest


#: Seconds of a take that must be rendered before its trial starts, beyond the planned trial
#: (begin/end overheads); the rest of the margin (for pauses) renders during the trial.
TAKE_READY_MARGIN_S = 1.0


def announce_take(recorder, protocol: Protocol, clip: Clip) -> bool:
    """Tell ``recorder``'s camera the length of ``clip``'s trial (:func:`take_seconds`) and how much
    of it must be ready when the trial starts; False when the recorder has nothing to prepare.
    Each recorder decides what it does with ``needed_s`` (the in-process one renders it all)."""
    prepare = getattr(recorder, "prepare_take", None)
    if prepare is None:
        return False
    prepare(take_seconds(protocol, clip), needed_s=trial_seconds(protocol, clip) + TAKE_READY_MARGIN_S)
    return True


class Runner:
    """Runs one protocol for one participant; see the module docstring.

    ``reopen`` (optional) builds a fresh recorder after the camera or the recorder process
    was lost, so the experimenter can retry a clip or go on with the next one.
    """

    def __init__(self, protocol: Protocol, order: list[str], session, recorder, display: Display, markers,
                 state: RunState, simulated: SimulatedParticipant | None = None, sound: bool = True,
                 reopen: Callable[[], Any] | None = None, first_take: str | None = None):
        """``first_take``: the clip whose take the camera was told of before the window opened
        (``session_run._announce_first_take``), so the first trial does not announce it again."""
        self.p, self.order, self.session = protocol, order, session
        self.recorder, self.display, self.markers, self.state = recorder, display, markers, state
        self.sim, self.sound, self.reopen = simulated, sound, reopen
        self.keys = protocol.keys
        self.trial_open = False
        self.trial_number = 0  # one per recorded attempt: a retried clip gets the next number
        self.paused = False
        self.frame_csv = session.folder / "frame-intervals.csv"
        self._frames_saved = 0
        self.watched: list[Clip] = []  # films that reached the screen (whole or partly), in order
        self.movie_stats: dict[str, Any] = {}
        self.fault: RecordingFault | None = None
        self.face_watch = FaceWatch()  # face_lost / face_moved during a film
        self._face_t: float | None = None
        self._forms: dict[tuple[str, ...], FormScreen] = {}
        # (trial number before it, clip) whose take is ready
        self._prepared: tuple[int, str] | None = (0, first_take) if first_take else None
        self._next_clip: Clip | None = None  # the film after the current trial (its take renders during it)
        self._begin_wait = 0.0  # seconds begin_trial waited (the virtual D415 finishing a take)
        from psychopy import visual

        win = display.win
        self.win_aspect = win.size[0] / win.size[1]
        wrap = 0.9 * self.win_aspect  # text never runs off a narrow (4:3) window
        self.text = visual.TextStim(win, text="", height=0.032, wrapWidth=wrap, color="white", units="height")
        self.fixation = visual.TextStim(win, text="+", height=0.08, color="white", units="height")
        # the baseline sentence sits under the cross, never over it
        self.caption = visual.TextStim(win, text="", height=0.032, wrapWidth=wrap, color="white", units="height",
                                       pos=(0, -0.16), anchorVert="top")

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
        elif phase == "fault" and elapsed >= sim.key_delay and sim.once(f"fault{self.trial_number}", clip):
            choice = sim.after_fault
            if choice == "retry" and not sim.once("retry", clip):
                choice = "next"  # a scripted retry happens once per clip
            self.display.press(next(k for k, v in FAULT_CHOICES.items() if v == choice))
        elif can_continue and elapsed >= sim.key_delay and sim.once(phase, clip):
            self.display.press(self.keys.continue_)

    def _check_camera(self, clip: str) -> None:
        """Raise the fault that stops this clip: camera or recorder lost, trial stopped, stall."""
        if not self.trial_open:
            return
        rec = self.recorder
        if rec.ended.is_set():
            error = rec.error or "the camera stream ended"
            raise CameraLost(error, Marker.RECORDER_DIED if "recorder process" in error else Marker.CAMERA_LOST)
        st = rec.status()
        if not st.recording:
            raise RecordingFault(Marker.RECORDING_STOPPED, st.warning or st.error or "the recorder stopped writing the trial")
        if getattr(st, "stalled", False):
            raise RecordingFault(Marker.CAMERA_STALLED, getattr(st, "stall_reason", "") or st.warning
                                 or "no camera frame arrived for too long")

    def _watch_face(self, clip: str) -> None:
        """A new face check from the recorder: mark the face leaving or moving (coders want to know)."""
        face = getattr(self.recorder, "face", None)
        if face is None or face.t == self._face_t:
            return
        self._face_t = face.t
        self.state.face = face.summary()
        for event, detail in self.face_watch.update(face):
            self.markers.emit(event, clip, detail, t=face.t)
            self.state.message = f"{event} in {clip}: {detail}"

    def _handle_keys(self, clip: str, allowed: tuple[str, ...]) -> list[str]:
        """Log every key press as a marker (its own timestamp); return the allowed ones."""
        out = []
        for name, t in self.display.keys():
            self.markers.emit(Marker.KEY, clip, name + (" (simulated)" if self.sim else ""), t=t)
            if name == self.keys.pause:
                self.paused = not self.paused
                self.state.paused = self.paused
                self.display.on_flip(Marker.PAUSE if self.paused else Marker.RESUME, clip, "experimenter")
            elif name in allowed:
                out.append(name)
        return out

    def screen(self, phase: str, text: str = "", *, fixation: bool = False, seconds: float | None = None,
               min_seconds: float = 0.0, max_seconds: float | None = None, keys: tuple[str, ...] = (),
               clip: str = "") -> str:
        """Show text (or a fixation cross with the text under it) until time is up or an allowed
        key; returns the key or ''.  Time spent paused does not count.
        """
        self.state.enter(phase, clip)
        self.display.phase, self.display.clip = phase, clip
        text = reflow(text)
        stim = self.caption if fixation else self.text
        stim.text = text
        start = None
        paused_for, pause_start = 0.0, None
        self.display.clear_keys()
        while True:
            if fixation:
                self.fixation.draw()
            if text:
                stim.draw()
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
                    stim.text = text
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
        self.markers.emit(Marker.QUESTION, clip, question.splitlines()[0][:200])
        key = self.screen("confirm", question, keys=(self.keys.yes, self.keys.no), clip=clip)
        self.markers.emit(Marker.ANSWER, clip, key)
        return key == self.keys.yes

    # -- one clip ------------------------------------------------------------------------------
    def clip_file(self, clip: Clip) -> str:
        """The film's path relative to the protocol's folder (no home-directory names in files)."""
        return os.path.relpath(clip.path, self.p.file.parent)

    def _open_movie(self, clip: Clip):
        from psychopy import visual

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
        return movie

    def clip_trial(self, number: int, clip: Clip, position: int | None = None) -> str:
        """Baseline + film + blank, recorded to its own trial file; returns the outcome.

        Outcomes: complete, aborted, or a fault kind (:data:`FAULT_KINDS`); a closed window,
        the participant ending the session and signals end the trial and propagate.
        """
        self.state.clip_number = position or number
        path = self.session.trial_path(number, clip.id)
        movie = self._open_movie(clip)
        from station.record.schema import CLIP_EMOTION, identity_attrs

        attrs = identity_attrs(self.session.participant, self.session.session_id, number, clip.id,
                               **{CLIP_EMOTION: clip.emotion}, clip_file=self.clip_file(clip), protocol=self.p.name,
                               simulated_participant=self.sim is not None)
        outcome, reason = "complete", ""
        display_before = len(self.display.log.times)
        self.movie_stats = {}
        try:
            if self.p.instructions.before_clip:
                self.screen("before_clip", self.p.instructions.before_clip, seconds=2.0, clip=clip.id)
            if self.p.record.baseline:
                self._begin_trial(path, attrs, clip)
            self.display.on_flip(Marker.BASELINE_START, clip.id)
            if self.p.baseline.seconds > 0:
                self.screen("baseline", self.p.baseline.text, fixation=True, seconds=self.p.baseline.seconds,
                            clip=clip.id)
            if not self.trial_open and self.p.record.clip:
                self._begin_trial(path, attrs, clip)
            self.markers.emit(Marker.BASELINE_END, clip.id, t=self.display.last_flip)
            outcome = self.play(movie, clip)
            if self.p.record.after_clip_seconds > 0:
                self.screen("after_clip", "", seconds=self.p.record.after_clip_seconds, clip=clip.id)
            if self.p.record.rest and number < len(self.order) and outcome == "complete":
                self.rest(clip.id)
        except RecordingFault as err:
            outcome, reason, self.fault = err.kind, f"{FAULT_KINDS[err.kind]}: {err}", err
            self.markers.emit(err.kind, clip.id, str(err)[:250])
        except WindowClosed:
            self.markers.emit(Marker.WINDOW_CLOSED, clip.id)
            self._end_trial(number, clip, "window closed", display_before, "window_closed")
            raise
        except SessionStopped:
            self._end_trial(number, clip, "session ended by participant", display_before, "stopped")
            raise
        except BaseException as err:  # Ctrl-C in the terminal, SIGTERM, SIGHUP (station.signals)
            stop = interruption(err)
            if stop is None:
                raise
            why = signal_name(stop)
            self.markers.emit(Marker.INTERRUPTED, clip.id, why)
            stop.marked = True  # type: ignore[attr-defined]
            self._end_trial(number, clip, f"interrupted ({why})", display_before, "interrupted")
            raise_interruption(stop, err)
        finally:
            try:
                movie.unload()
            except Exception:
                pass
        self._end_trial(number, clip, reason or ("aborted by participant" if outcome == "aborted" else ""),
                        display_before, outcome)
        return outcome

    def _prepare(self, clip: Clip | None) -> None:
        """Let the camera get ``clip``'s trial ready now: the virtual D415 renders its participant
        ahead, in lowest-priority workers (SCHED_BATCH, nice 19), from the start of the trial
        before it (a real camera has nothing to do).  ``clip`` is the film of trial ``trial_number + 1``."""
        if clip is not None and self._prepared != (self.trial_number, clip.id):
            if announce_take(self.recorder, self.p, clip):
                self._prepared = (self.trial_number, clip.id)

    def _hold_rendering(self, on: bool) -> None:
        """While a film plays, the virtual D415 renders no take (a real camera renders nothing)."""
        hold = getattr(self.recorder, "hold_rendering", None)
        if hold is not None:
            try:
                hold(on)
            except Exception:  # noqa: BLE001 - a lost recorder is reported by _check_camera
                pass

    def _begin_trial(self, path: Path, attrs: dict, clip: Clip) -> None:
        if self.recorder is None:
            raise CameraLost("no recorder is running")
        waited = time.perf_counter()
        try:
            self.recorder.begin_trial(path, attrs)
        except CameraError as err:
            raise CameraLost(str(err), Marker.RECORDER_DIED if "recorder process" in str(err) else Marker.CAMERA_LOST) from err
        except StationError as err:  # e.g. the disk is below the recorder's minimum
            raise RecordingFault(Marker.RECORDING_STOPPED, str(err)) from err
        self._begin_wait = time.perf_counter() - waited
        self.trial_open = True
        self.markers.emit(Marker.RECORDING_START, clip.id, path.name)
        # the next trial's take renders from now on, during this one (lowest priority: see
        # station.record.priority), so that trial waits for nothing
        if self._next_clip is not None and self._next_clip.id != clip.id:
            self._prepare(self._next_clip)

    def play(self, movie, clip: Clip) -> str:
        """Play the film; first/last frame markers are the flips that showed them.

        The film's counts (frames shown / expected) are kept also when a fault or a signal
        stops it, so the verdict knows how much the participant saw.
        """
        st, d = self.state, self.display
        st.enter("clip", clip.id)
        d.phase, d.clip = "clip", clip.id
        d.clear_keys()
        self._hold_rendering(True)  # the next take renders before and after the film, not during it
        movie.play()
        self.face_watch.reset()  # where the face is when the film begins is the reference
        last_pts, shown, first_t, last_frame_t = None, 0, None, None
        gaps = 0
        frame_period = 1.0 / (movie.frameRate or 30.0)
        outcome = "complete"

        def stats() -> None:
            self.movie_stats = {"frames_shown": shown,
                                "frames_expected": int(round((movie.duration or 0) * (movie.frameRate or 0))),
                                "frames_skipped": gaps, "duration_s": movie.duration, "fps": movie.frameRate,
                                "first_frame_t": first_t, "last_frame_t": last_frame_t}

        try:
            while True:
                movie.draw()
                pts = movie.pts
                new_frame = pts is not None and pts != last_pts
                if new_frame:
                    if last_pts is not None:
                        gaps += missed_frames(pts - last_pts, frame_period)
                    if shown == 0:
                        d.on_flip(Marker.CLIP_FIRST_FRAME, clip.id, f"pts={pts:.3f}")
                    shown += 1
                    last_pts = pts
                t = d.flip()
                st.display_drops = d.late_in_phase  # live panel: display frames missed in this film so far
                if new_frame:
                    last_frame_t = t
                    first_t = first_t if first_t is not None else t
                    if shown % 30 == 1:
                        stats()
                self._watch_face(clip.id)
                try:
                    self._check_camera(clip.id)
                except RecordingFault:
                    movie.stop()
                    d.on_flip(Marker.CLIP_END, clip.id, "fault")
                    d.flip()
                    raise
                self._simulate("clip", clip.id, t - first_t if first_t else 0.0, False)
                pressed = self._handle_keys(clip.id, tuple(self.keys.abort))
                if self.paused and not movie.isPaused:
                    movie.pause()
                elif not self.paused and movie.isPaused:
                    movie.play()
                if pressed:
                    movie.stop()
                    outcome = "aborted"
                    d.on_flip(Marker.CLIP_ABORT, clip.id, f"key={pressed[0]} after {shown} frames")
                    self.text.text = ""
                    d.flip()
                    break
                if movie.isFinished:
                    break
        finally:
            self._hold_rendering(False)
            stats()
            if last_frame_t is not None:
                self.markers.emit(Marker.CLIP_LAST_FRAME, clip.id, f"pts={last_pts:.3f}", t=last_frame_t)
        d.on_flip(Marker.CLIP_END, clip.id, outcome)
        return outcome

    def _end_trial(self, number: int, clip: Clip, reason: str, display_before: int, outcome: str) -> None:
        stats, file_name = None, None
        if self.trial_open:
            self.markers.emit(Marker.RECORDING_END, clip.id, reason)
            self.trial_open = False
            try:
                stats = self.recorder.end_trial(reason)
            except (CameraError, StationError) as err:  # the recorder process is gone: what was flushed stays
                partial = [p.name for p in self.session.folder.glob(f"{self.session.trial_path(number, clip.id).name}*")]
                file_name = partial[0] if partial else None
                reason = reason or str(err)
        clip_int = self.display.intervals(clip=clip.id, phases=("clip",))
        trial_int = self.display.intervals(clip=clip.id)
        info = {
            "number": number, "clip": clip.id, "emotion": clip.emotion, "outcome": outcome,
            "file": stats.path.name if stats else file_name, "complete_file": bool(stats and stats.complete),
            "stop_reason": reason,
            "camera": ({**stats.counters(), "dropped": stats.dropped, "stop_reason": stats.stop_reason,
                        "seconds": (stats.ended or time.perf_counter()) - stats.started} if stats else None),
            "display_clip": self.display.summary(clip_int),
            "display_trial": self.display.summary(trial_int),
            "movie": self.movie_stats,
            "begin_wait_s": round(self._begin_wait, 3),
        }
        if info["file"]:  # closed by now: the recorder's own verdict, in the journal with the trial
            info[RECORDER_VERDICT] = file_verdict(self.session.folder, info["file"])
        self.movie_stats = {}
        self._begin_wait = 0.0
        self.state.display_drops = info["display_clip"]["dropped"]
        self.session.add_trial(info)
        self._save_frames()
        if info["movie"].get("frames_shown") and clip not in self.watched:
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

    # -- after a fault -------------------------------------------------------------------------
    def after_fault(self, clip: Clip) -> str:
        """Tell the experimenter (terminal and window) and ask: retry / next / end."""
        fault = self.fault
        what = f"{FAULT_KINDS.get(fault.kind, fault.kind)}: {fault}" if fault else "recording problem"
        print_warning(f"clip {clip.id!r} stopped — {what}. The clip is marked incomplete; everything recorded "
                      "so far is kept. Choose in the window: R = retry this film, N = next film, E = end the session.")
        self.state.message = f"FAULT in {clip.id}: {what[:120]} — R retry / N next / E end"
        self.markers.emit(Marker.QUESTION, clip.id, "fault: retry / next / end")
        key = self.screen("fault", f"Recording problem — please wait for the experimenter.\n\n{what}\n\n"
                                   "Experimenter: R = retry this film    N = next film    E = end the session",
                          keys=tuple(FAULT_CHOICES), clip=clip.id)
        choice = FAULT_CHOICES[key]
        self.markers.emit(Marker.ANSWER, clip.id, choice)
        self.state.message = ""
        if choice != "end" and (self.recorder is None or self.recorder.ended.is_set()):
            choice = self._restart_recorder(choice)
        return choice

    def _restart_recorder(self, choice: str) -> str:
        """The camera or recorder is gone: open a new one, or end when that is impossible."""
        if self.reopen is None:
            print_warning("the recorder cannot be restarted in this run; the session ends.")
            return "end"
        try:
            self._prepared = None  # the new camera has no take announced yet
            self.recorder = self.reopen()
            self.markers.recorder = self.recorder
        except Exception as err:  # noqa: BLE001 - any failure to reopen ends the session cleanly
            print_warning(f"the camera could not be opened again ({err}); the session ends.")
            self.recorder = None
            return "end"
        console.print(f"[green]recorder restarted[/]: {choice} ")
        return choice

    # -- rest and forms ------------------------------------------------------------------------
    def rest(self, after_clip: str) -> None:
        r = self.p.rest
        self.display.on_flip(Marker.REST_START, after_clip, f"{r.mode} {r.seconds:g}s")
        if r.mode == "fixed":
            self.screen("rest", r.text, seconds=r.seconds, clip=after_clip)
        else:
            self.screen("rest", r.text, min_seconds=r.seconds, max_seconds=r.max_seconds,
                        keys=(self.keys.continue_,), clip=after_clip)
        self.markers.emit(Marker.REST_END, after_clip, t=self.display.last_flip)

    def form(self, questions: tuple[str, ...], clip: Clip | None, when: str, title: str) -> None:
        cid = clip.id if clip else ""
        self.state.enter("self-report", cid)
        self.display.phase, self.display.clip = "form", cid
        self.display.on_flip(Marker.FORM_START, cid, when)
        screen = self._forms.get(questions)
        if screen is None:
            screen = self._forms[questions] = FormScreen(self.display, questions, title, self.p.self_report.emotions)
        else:
            screen.reset(title)
        answers, seconds = screen.run(self.sim, clip.emotion if clip else "")
        answers = validate_answers(answers, questions, self.p.self_report.emotions, where=f"form for {cid or 'end'}")
        self.markers.emit(Marker.FORM_END, cid, when, t=self.display.last_flip)
        self.session.add_self_report({"clip": cid, "when": when, **answers, "seconds": round(seconds, 3),
                                      "source": "simulated participant" if self.sim else "window",
                                      "simulated": self.sim is not None})

    # -- whole session -------------------------------------------------------------------------
    def run(self) -> str:
        """Run the protocol; returns why it ended ('complete', 'stopped by participant',
        'ended by experimenter after a fault').  Whether the data are whole is decided
        afterwards from the journal (:mod:`station.elicit.verdict`)."""
        try:
            return self._run()
        except WindowClosed:
            if not self.trial_open:
                self.markers.emit(Marker.WINDOW_CLOSED, self.state.clip)
            raise
        except BaseException as err:
            stop = interruption(err)
            if stop is None:
                raise
            if not getattr(stop, "marked", False):
                self.markers.emit(Marker.INTERRUPTED, self.state.clip, signal_name(stop))
            raise_interruption(stop, err)

    def _run(self) -> str:
        p = self.p
        self.state.clip_count = len(self.order)
        if self.order:
            self._prepare(p.manifest.clips[self.order[0]])  # rendered while the welcome is read
        self.display.on_flip(Marker.INSTRUCTIONS_START)
        self.screen("instructions", p.instructions.welcome, keys=(self.keys.continue_,), min_seconds=0.5)
        self.markers.emit(Marker.INSTRUCTIONS_END, t=self.display.last_flip)
        status = "complete"
        position = 0
        try:
            while position < len(self.order):
                clip = p.manifest.clips[self.order[position]]
                self._prepare(clip)  # (already done unless a fault changed the plan)
                following = position + 1
                self._next_clip = p.manifest.clips[self.order[following]] if following < len(self.order) else None
                self.trial_number += 1
                outcome = self.clip_trial(self.trial_number, clip, position + 1)
                choice = self.after_fault(clip) if outcome in FAULT_KINDS else "next"
                if choice != "end":  # the next trial renders during the forms and the rest
                    upcoming = position if choice == "retry" else position + 1
                    self._prepare(p.manifest.clips[self.order[upcoming]] if upcoming < len(self.order) else None)
                if choice == "retry":
                    continue
                shown = clip in self.watched
                if p.self_report.after_each_clip and (outcome not in FAULT_KINDS or shown):
                    self.form(p.self_report.after_each_clip, clip, "after_clip",
                              f"Film {position + 1} of {len(self.order)}")
                if choice == "end":
                    raise SessionStopped(f"experimenter ended the session after a fault in {clip.id}")
                if outcome == "aborted":
                    if not self.confirm("You stopped the film. That is fine.\n\nDo you want to continue with the "
                                        "next film?\n\nY = continue      N = end the session", clip.id):
                        raise SessionStopped(f"participant ended the session after aborting {clip.id}")
                position += 1
                if position < len(self.order) and not p.record.rest:
                    self.rest(clip.id)
        except SessionStopped as err:
            self.markers.emit(Marker.SESSION_STOPPED, detail=str(err)[:250])
            status = "ended by experimenter after a fault" if "experimenter" in str(err) else "stopped by participant"
        if p.self_report.at_end and self.watched:
            for i, clip in enumerate(self.watched, 1):
                self.form(p.self_report.at_end, clip, "end", f"About film {i} of {len(self.watched)} that you watched")
        self.display.on_flip(Marker.END_SCREEN)
        self.screen("end", p.instructions.end, seconds=2.0 if self.sim else 5.0, keys=(self.keys.continue_,))
        self._save_frames()
        return status
