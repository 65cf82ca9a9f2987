"""`station run`: everything around the runner — pre-flight, session folder, camera, window,
signals, verdict, summary.

Order matters for never losing data: the pre-flight (films decode to their end, key names,
disk) runs before anything is created; the session folder and its journal exist before the
camera opens; every event, trial and form is journalled as it happens; and whatever stops the
session (a fault, a closed window, Ctrl-C, SIGTERM, SIGHUP) goes through :func:`_finish`,
which ends the trial (frames flushed, ``interrupted`` marker, counters), closes camera and
window, and stamps the verdict (:mod:`station.elicit.verdict`) with its exit code
(:data:`EXIT_CODES`).
"""

from __future__ import annotations

import functools
import os
import sys
import time
from pathlib import Path

from rich.markup import escape
from rich.table import Table

from station.camera import CameraError, open_camera
from station.checks import StationError
from station.console import console, print_error, print_ok, print_warning
from station.elicit.display import Display, WindowClosed
from station.elicit.markers import Markers, open_lsl
from station.elicit.order import clip_order
from station.elicit.protocol import Protocol, load_protocol
from station.elicit.recording import OpensInBackground, RecorderRole
from station.elicit.runner import Runner, SimulatedParticipant
from station.elicit.status import RunState, live_status
from station.elicit.verdict import COMPLETE, RECORDER_VERDICT, session_verdict, stamp_recorder_verdicts
from station.session import Session, create_session, now_iso
from station.signals import exit_code as signal_exit_code
from station.signals import interrupt_on_signals, interruption, raise_interruption, signal_name
from station.vocab.markers import Marker
from station.vocab.participant import SEXES, check_participant_id

#: ``station run`` exit codes (also in docs/elicit.md and ``station run --help``).
EXIT_COMPLETE = 0  # every planned clip recorded whole, every form answered
EXIT_ERROR = 2  # refused before anything was recorded (bad protocol, failed pre-flight, bad id)
EXIT_INCOMPLETE = 3  # the session ran to its end, but not every clip is whole (aborted, form missing...)
EXIT_FAULT = 4  # a fault stopped a clip or the session (disk, camera, recorder, window closed)
EXIT_CODES = {EXIT_COMPLETE: "complete", EXIT_ERROR: "refused before recording (nothing recorded)",
              EXIT_INCOMPLETE: "incomplete: a clip was not recorded whole or a form is missing",
              EXIT_FAULT: "incomplete: a fault (disk, camera, recorder, window) stopped a clip",
              128 + 1: "interrupted by SIGHUP (terminal closed); finalised", 128 + 2: "interrupted by Ctrl-C (SIGINT); finalised",
              128 + 15: "interrupted by SIGTERM; finalised"}


class SessionEnded(StationError):
    """The session stopped early (window closed...); everything is saved; ``exit_code`` says how."""

    def __init__(self, message: str, exit_code: int):
        super().__init__(message)
        self.exit_code = exit_code


def audio_output() -> tuple[bool, str]:
    """Is there a sound output device?  (False, why) when not, e.g. under Xvfb in CI."""
    try:
        import sounddevice as sd

        devices = sd.query_devices()
        if any(d.get("max_output_channels", 0) > 0 for d in devices):
            return True, "sound output available"
        return False, "no sound output device found"
    except OSError:  # PortAudio missing: look for ALSA / PulseAudio instead
        pass
    except Exception as err:
        return False, f"sound devices cannot be listed ({err})"
    cards = Path("/proc/asound/cards")
    if cards.exists() and "no soundcards" not in cards.read_text(errors="replace"):
        return True, "ALSA sound card present"
    if os.environ.get("PULSE_SERVER") or Path(f"/run/user/{os.getuid()}/pulse").exists():
        return True, "PulseAudio server present"
    return False, "no sound card (no /proc/asound/cards, no PulseAudio)"


def ask_participant_info(participant: str | None, age: int | None, sex: str | None,
                         simulated: bool) -> tuple[str, int | None, str | None]:
    """Fill missing participant info: PsychoPy dialog if possible, else terminal prompts.

    A simulated participant never gets a dialog (nobody would answer it): it needs --participant.
    """
    if participant is not None:
        check_participant_id(participant)
    if simulated and not participant:
        raise StationError("--simulate-participant needs --participant ID (a pseudonym such as P07); "
                           "no dialog is opened for a simulated participant.")
    if participant and (simulated or (age is not None and sex is not None)):
        return participant, age, sex
    info = {"participant": participant or "", "age": "" if age is None else age, "sex": sex or "undisclosed"}
    try:
        from psychopy import gui

        dlg = gui.DlgFromDict(info, title="station: participant", order=["participant", "age", "sex"])
        if not dlg.OK:
            raise StationError("participant dialog cancelled; nothing was recorded.")
    except StationError:
        raise
    except Exception:  # no Qt / no display: ask in the terminal instead
        if not sys.stdin.isatty():
            if not participant:
                raise StationError("no participant id: give --participant ID (a pseudonym such as P07).") from None
            return participant, age, sex
        from rich.prompt import IntPrompt, Prompt

        info["participant"] = participant or Prompt.ask("participant id (pseudonym)", console=console)
        info["age"] = age if age is not None else IntPrompt.ask("age (years)", console=console)
        info["sex"] = sex or Prompt.ask("sex", choices=list(SEXES), console=console)
    age_v = info["age"]
    if isinstance(age_v, str):
        age_v = int(age_v) if age_v.strip().isdigit() else None
    return check_participant_id(str(info["participant"])), age_v, (info["sex"] or None)


def prepare_clips(protocol: Protocol, sessions_root: str | Path = "sessions", min_free_bytes: int | None = None) -> None:
    """Generate missing demo clips; refuse to start when a film is missing, does not decode to
    its end or has the wrong duration, or the sessions disk is too small: the same checks,
    with the same messages, as ``station check`` (:func:`station.elicit.check.preflight`)."""
    from station.elicit.democlips import ensure_demo_clips

    for path in ensure_demo_clips(protocol.manifest):
        print_ok(f"generated demo clip {path}")
    for clip in protocol.clips:
        if not clip.path.exists():
            raise StationError(f"{clip.where('file')}: clip {clip.id!r} file {str(clip.path)!r} does not exist. "
                               f"Copy the film there (see docs/elicit.md) and run `station check {protocol.file}`.")
        if not decodes(clip.path):
            raise StationError(f"{clip.where('file')}: clip {clip.id!r} file {str(clip.path)!r} cannot be decoded "
                               f"as a video (damaged file or unknown codec). Run `station check {protocol.file}`.")
    from station.elicit.check import preflight

    failed = preflight(protocol, sessions_root, min_free_bytes)
    if failed:
        raise StationError("pre-flight failed, nothing was recorded:\n" + "\n".join(
            f"  {c.name} {c.item}: {c.detail}" for c in failed) + f"\nRun `station check {protocol.file}`.")


def decodes(path: Path) -> bool:
    """Whether a film opens and its first frame decodes, from the one film probe of `station check`
    (:func:`station.elicit.check.probe_clip_cached`: decoded to its end once, then remembered, so
    the pre-flight that follows costs nothing more)."""
    from station.elicit.check import probe_clip_cached

    try:
        return probe_clip_cached(path).first_ok
    except StationError:
        return False


def summary_table(session: Session) -> Table:
    verdicts = {v["clip"]: v for v in session.data.get("clips", [])}
    t = Table(title=f"session {session.participant}/{session.session_id}: {session.data.get('status')}")
    for col in ("#", "clip", "outcome", "file", "camera frames", "camera dropped", "display flips",
                "display dropped", "film frames shown/expected", "clip verdict"):
        t.add_column(col, overflow="fold")
    for tr in session.data["trials"]:
        cam, disp, mov = tr.get("camera") or {}, tr.get("display_clip") or {}, tr.get("movie") or {}
        v = verdicts.get(tr["clip"], {})
        t.add_row(str(tr["number"]), tr["clip"], tr["outcome"], tr.get("file") or "—",
                  str(cam.get("frames_written", "—")), str(cam.get("dropped", "—")), str(disp.get("flips", 0)),
                  str(disp.get("dropped", 0)), f"{mov.get('frames_shown', 0)}/{mov.get('frames_expected', 0)}",
                  v.get("outcome", "") + (f": {'; '.join(v['reasons'])}" if v.get("reasons") else ""))
    return t


def print_trial_verdicts(session: Session) -> None:
    """Each trial file's verdict with its reasons: the rule of ``station record`` / ``inspect --check``."""
    for tr in session.data["trials"]:
        v = tr.get(RECORDER_VERDICT)
        name = tr.get("file") or f"trial {tr['number']} ({tr['clip']})"
        if v is None:
            console.print(f"[bold red]✗[/] trial verdict: {escape(name)}: no trial file")
        elif v.get("ok"):
            print_ok(f"trial verdict: {escape(name)} is whole")
        else:
            console.print(f"[bold red]✗[/] trial verdict: {escape(name)} is NOT whole — "
                          + escape("; ".join(v.get("reasons", []))))
        for warning in (v or {}).get("warnings", []):
            print_warning(f"{name}: {warning}")


def open_recorder(camera, protocol: Protocol, recorder_mode: str, warn, min_free_bytes: int | None = None,
                  background: bool = False, camera_faults: str | None = None, preview: bool = False,
                  priority: str = "background") -> RecorderRole:
    """The recorder for ``camera``: a child process for a camera spec, else a thread here.

    With ``background`` a recorder that can (:class:`OpensInBackground`) is only started;
    the caller waits for it (:func:`wait_recorder`) after opening the window.
    """
    cam = protocol.camera
    options = {} if min_free_bytes is None else {"min_free_bytes": min_free_bytes}
    camera_options: dict = {"settings": cam.settings}  # applied at start, read back, stored per trial
    if camera == "virtual":  # each trial's participant rendered before it starts, as a D415 costs nothing
        camera_options["takes"] = True
    if camera_faults:
        from station.camera.faults import Faults

        if camera != "virtual":
            raise StationError(f"--camera-faults is for the virtual camera only, got --camera {camera!r}.")
        camera_options["faults"] = Faults.parse(camera_faults)
    try:
        if isinstance(camera, RecorderRole):  # already a recorder (benchmarks: one that records nothing)
            camera.open()
            return camera
        if isinstance(camera, str) and recorder_mode == "process":
            from station.record.procrecorder import ProcessRecorder

            recorder = ProcessRecorder(camera, cam.width, cam.height, cam.fps, on_warning=warn,
                                       camera_options=camera_options, preview=preview, priority=priority, **options)
        else:
            from station.record.recorder import Recorder

            source = open_camera(camera, width=cam.width, height=cam.height, fps=cam.fps, **camera_options) \
                if isinstance(camera, str) else camera
            recorder = Recorder(source, on_warning=warn, **options)
        if background and isinstance(recorder, OpensInBackground):
            recorder.start()  # the child opens the camera while we open the window
        else:
            recorder.open()
    except (CameraError, RuntimeError) as err:
        raise _camera_error(camera, err) from err
    return recorder


def wait_recorder(recorder: RecorderRole, camera) -> None:
    if isinstance(recorder, OpensInBackground):
        try:
            recorder.wait_ready()
        except CameraError as err:
            raise _camera_error(camera, err) from err


def _camera_error(camera, err) -> StationError:
    return StationError(f"camera {str(camera)!r} cannot be opened: {err}. Check the USB 3 cable, "
                        "or run with --camera virtual to try the station without one.")


def _new_session(protocol: Protocol, participant: str, age, sex, sessions_root, order_row, sim, simulate) -> Session:
    order, order_info = clip_order([c.id for c in protocol.clips], protocol.order.policy, participant,
                                   protocol.order.seed, order_row)
    session = create_session(sessions_root, participant, age=age, sex=sex, protocol={
        "file": str(protocol.file), "name": protocol.name, "as_written": protocol.raw, "text": protocol.text},
        extra={"order": order, "order_info": order_info, "simulated_participant": sim is not None,
               "simulation_script": simulate if sim is not None else None})
    if session.data["previous_sessions"]:
        print_warning(f"participant {participant} already has session(s) {', '.join(session.data['previous_sessions'])}; "
                      f"this run is session {session.session_id} (nothing is overwritten).")
    console.print(f"session folder: [bold]{session.folder}[/]   order: {', '.join(order)}")
    return session


def _describe(session: Session, camera, recorder: RecorderRole, protocol: Protocol, display: Display) -> None:
    session.update(device={"camera": camera if isinstance(camera, str) else type(camera).__name__,
                           "recorder": type(recorder).__name__, "description": getattr(recorder.source, "description", ""),
                           **(recorder.calibration.device if recorder.calibration else {}),
                           "width": protocol.camera.width, "height": protocol.camera.height,
                           "fps": protocol.camera.fps},
                   display=display.info(), status="running", started=now_iso())
    if not display.vsync:
        print_warning(f"no vertical sync on this display (median flip {1000 / display.refresh_hz:.1f} ms); "
                      f"flips are paced at {display.paced_hz:g} Hz by software.")


def _sound(protocol: Protocol) -> tuple[bool, dict]:
    """Whether the films play with sound, and why not (stored in session.json ``audio``)."""
    has_audio, why = audio_output()
    if protocol.sound and not has_audio:
        print_warning(f"{why}: the films play MUTED. Connect speakers/headphones for a real session.")
    sound = protocol.sound and has_audio
    return sound, {"requested": protocol.sound, "playing": sound, "reason": why}


def _open_devices(parts: dict, session: Session, protocol: Protocol, camera, open_rec, sim, window_size, windowed,
                  lsl) -> Markers:
    """Recorder (its camera opens in the background), markers, participant window; seating check."""
    parts["recorder"] = recorder = open_rec(background=True)
    parts["first_take"] = _announce_first_take(recorder, protocol, session.data["order"])
    markers = Markers(recorder, session, open_lsl(lsl), simulated=sim is not None)
    parts["display"] = display = Display(
        window_size or protocol.display.size, fullscreen=protocol.display.fullscreen and not windowed,
        screen=protocol.display.screen, background=protocol.display.background, markers=markers,
        log_file=session.folder / "psychopy.log")
    wait_recorder(recorder, camera)
    _describe(session, camera, recorder, protocol, display)
    _seating_check(session, recorder)
    markers.emit(Marker.SESSION_START, detail=f"protocol={protocol.name} simulated={sim is not None}")
    return markers


def _announce_first_take(recorder, protocol: Protocol, order: list[str]) -> str | None:
    """The first trial's length, told to the camera before the window opens: the virtual D415
    renders that take while the window opens and the welcome is read.  Returns its clip id."""
    from station.elicit.runner import announce_take

    if not order or not announce_take(recorder, protocol, protocol.manifest.clips[order[0]]):
        return None
    return order[0]


def _seating_check(session: Session, recorder, wait_s: float = 3.0) -> None:
    """Before the instructions: is the face found, 0.5-0.7 m away, lit?  Told, and journalled."""
    deadline = time.monotonic() + wait_s
    while getattr(recorder, "face", None) is None and time.monotonic() < deadline and hasattr(recorder, "face"):
        time.sleep(0.1)
    face = getattr(recorder, "face", None)
    if face is None:
        return
    problems = face.seating_problems()
    (print_warning if problems else print_ok)(f"seating: {face.summary()}" + (
        "  (seat the participant with `station preview` before the session)" if problems else ""))
    session.update(save=False, seating={**face.as_dict(), "problems": problems})


def run_session(protocol_path: str | Path, participant: str | None, *, camera="virtual",
                age: int | None = None, sex: str | None = None, sessions_root: str | Path = "sessions",
                simulate: str | None = None, window_size: tuple[int, int] | None = None,
                windowed: bool = False, lsl: bool = False, order_row: int | None = None,
                live: bool = True, recorder_mode: str = "process", min_free_bytes: int | None = None,
                camera_faults: str | None = None, preview: bool = False,
                recorder_priority: str = "background") -> Session:
    """Run a protocol for one participant; returns the session, its verdict in
    ``data['status']`` / ``data['clips']`` and its exit code in ``data['exit_code']``.

    ``camera`` is a spec for :func:`station.camera.open_camera`, an already built source
    (always recorded in this process) or an object playing :class:`RecorderRole`.  ``recorder_mode`` 'process' runs the recorder in a
    child process (default: HDF5 writing then cannot delay display flips, see
    docs/benchmarks.md), 'thread' in this process.  A terminal signal (Ctrl-C, SIGTERM,
    SIGHUP) finalises everything and re-raises as :class:`station.signals.Interrupted`; a
    closed window raises :class:`SessionEnded`.  ``recorder_priority`` 'background' (default)
    runs the recorder child's writing, face check and take rendering below the display
    (:mod:`station.record.priority`); 'normal' leaves every thread at the session's priority.
    """
    from station.checks import check_choice
    from station.record.priority import PRIORITIES

    check_choice(recorder_mode, ("process", "thread"), "recorder mode")
    check_choice(recorder_priority, PRIORITIES, "recorder priority")
    protocol = load_protocol(protocol_path)
    sim = SimulatedParticipant.from_script(simulate) if simulate is not None else None
    participant, age, sex = ask_participant_info(participant, age, sex, sim is not None)
    prepare_clips(protocol, sessions_root, min_free_bytes)
    session = _new_session(protocol, participant, age, sex, sessions_root, order_row, sim, simulate)
    sound, audio = _sound(protocol)
    state = RunState(participant=participant, session=session.session_id)
    session.update(status="starting", audio=audio)
    warn = lambda m: setattr(state, "message", m)  # noqa: E731 - shown in the live panel
    parts: dict = {"recorder": None, "display": None, "runner": None}
    with interrupt_on_signals():
        try:
            open_rec = functools.partial(open_recorder, camera, protocol, recorder_mode, warn, min_free_bytes,
                                         camera_faults=camera_faults, preview=preview, priority=recorder_priority)
            markers = _open_devices(parts, session, protocol, camera, open_rec, sim, window_size, windowed, lsl)

            def reopen() -> RecorderRole:
                old, parts["recorder"] = parts["recorder"], None
                _close_recorder(old)
                new = parts["recorder"] = markers.recorder = open_rec()
                return new

            runner = parts["runner"] = Runner(protocol, session.data["order"], session, parts["recorder"],
                                              parts["display"], markers, state, sim, sound,
                                              reopen=reopen if isinstance(camera, str) else None,
                                              first_take=parts.get("first_take"))
            with live_status(state, lambda: runner.recorder, enabled=live):
                stop = runner.run()
            markers.emit(Marker.SESSION_END, detail=stop)
        except WindowClosed:
            code = _finish(session, parts, "window closed", fault=True)
            raise SessionEnded(f"the participant window was closed, so the session stopped. Everything recorded "
                               f"so far is kept in {session.folder} (trial files and session.json).", code) from None
        except BaseException as err:
            stop = interruption(err)
            if stop is None:
                _finish(session, parts, f"stopped: {type(err).__name__}: {err}"[:300], fault=True)
                raise
            _finish(session, parts, f"interrupted by {signal_name(stop)}", exit_code=signal_exit_code(stop))
            raise_interruption(stop, err)
        _finish(session, parts, stop, fault="fault" in stop)
    return session


def _close_recorder(recorder) -> None:
    if recorder is None:
        return
    try:
        recorder.close()
    except Exception as err:  # the camera or the recorder process may be gone already
        print_warning(f"camera did not close cleanly: {err}")


def _finish(session: Session, parts: dict, stop: str, *, fault: bool = False, exit_code: int | None = None) -> int:
    """Close trial, camera and window; stamp timing, verdict and exit code; print the summary.

    Called once, whatever stopped the session; a second signal meanwhile is only noted
    (:func:`station.signals.interrupt_on_signals`), so this always runs to its end.
    """
    display = parts.get("display")
    runner = parts.get("runner")
    recorder = runner.recorder if runner is not None else parts.get("recorder")
    if display is not None:
        s = display.summary(display.intervals())
        session.update(save=False, timing={"display_all": s, "frame_intervals_file": "frame-intervals.csv"},
                       ended=now_iso())
        if runner is not None:
            runner._save_frames()
        display.close()
    _close_recorder(recorder)
    if recorder is not None and recorder.session_markers:
        session.update(save=False, markers_between_trials=recorder.session_markers)
    if stamp_recorder_verdicts(session):  # trials journalled without one (a file closed late)
        session.update(save=False, trials=session.data["trials"])
    status, verdicts = session_verdict(session.data)
    if exit_code is None:
        exit_code = EXIT_COMPLETE if status == COMPLETE else EXIT_FAULT if fault else EXIT_INCOMPLETE
    session.update(status=status, stop_reason=stop, clips=[v.as_dict() for v in verdicts], exit_code=exit_code,
                   exit_meaning=EXIT_CODES.get(exit_code, ""))
    session.close()
    console.print(summary_table(session))
    print_trial_verdicts(session)
    (print_ok if status == COMPLETE else print_error)(
        f"session {status} ({stop}); exit code {exit_code}: {EXIT_CODES.get(exit_code, '')}. "
        f"Data in {session.folder}")
    if status != COMPLETE:
        for v in verdicts:
            if v.outcome != COMPLETE:
                console.print(f"  {v.clip}: {v.outcome} — {'; '.join(v.reasons)}")
    print_ok(f"session saved in {session.folder}")
    return exit_code
