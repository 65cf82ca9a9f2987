"""`station run`: everything around the runner — session folder, camera, window, status, summary.

Order matters for never losing data: the session folder and session.json exist before the
camera opens, every trial and form is saved as it completes, and whatever stops the session
(camera lost, window closed, Ctrl-C) goes through the same ``finally`` that closes the trial
file, writes session.json and prints where the data are.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from rich.table import Table

from station.camera import CameraError, open_camera
from station.checks import StationError
from station.console import console, print_ok, print_warning
from station.elicit.display import Display, WindowClosed
from station.elicit.markers import Markers, open_lsl
from station.elicit.order import clip_order
from station.record.procrecorder import ProcessRecorder as ProcessRecorderT
from station.elicit.protocol import Protocol, load_protocol
from station.elicit.runner import CameraLost, Runner, SimulatedParticipant
from station.elicit.status import RunState, live_status
from station.session import Session, create_session, now_iso


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
    """Fill missing participant info: PsychoPy dialog if possible, else terminal prompts."""
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
        info["sex"] = sex or Prompt.ask("sex", choices=["female", "male", "other", "undisclosed"], console=console)
    age_v = info["age"]
    if isinstance(age_v, str):
        age_v = int(age_v) if age_v.strip().isdigit() else None
    return str(info["participant"]), age_v, (info["sex"] or None)


def prepare_clips(protocol: Protocol) -> None:
    """Generate missing demo clips; refuse to start when a lab film is missing."""
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


def decodes(path: Path) -> bool:
    """Quick test that a film opens and its first frame decodes (the full test is `station check`)."""
    import cv2

    cap = cv2.VideoCapture(str(path))
    try:
        return cap.isOpened() and cap.read()[0]
    finally:
        cap.release()


def summary_table(session: Session) -> Table:
    t = Table(title=f"session {session.participant}/{session.session_id}: {session.data.get('status')}")
    for col in ("#", "clip", "outcome", "file", "camera frames", "camera dropped", "display flips",
                "display dropped", "film frames shown/expected"):
        t.add_column(col)
    for tr in session.data["trials"]:
        cam, disp, mov = tr.get("camera") or {}, tr.get("display_clip") or {}, tr.get("movie") or {}
        t.add_row(str(tr["number"]), tr["clip"], tr["outcome"], tr.get("file") or "—",
                  str(cam.get("frames_written", "—")), str(cam.get("dropped", "—")), str(disp.get("flips", 0)),
                  str(disp.get("dropped", 0)), f"{mov.get('frames_shown', 0)}/{mov.get('frames_expected', 0)}")
    return t


def run_session(protocol_path: str | Path, participant: str | None, *, camera="virtual",
                age: int | None = None, sex: str | None = None, sessions_root: str | Path = "sessions",
                simulate: str | None = None, window_size: tuple[int, int] | None = None,
                windowed: bool = False, lsl: bool = False, order_row: int | None = None,
                live: bool = True, recorder_mode: str = "process") -> Session:
    """Run a protocol for one participant; returns the session (also on a clean early stop).

    ``camera`` is a spec for :func:`station.camera.open_camera` or an already built source
    (always recorded in this process).  ``recorder_mode`` 'process' runs the recorder in a
    child process (default: HDF5 writing then cannot delay display flips, see
    docs/benchmarks.md), 'thread' in this process.
    """
    from station.checks import check_choice

    check_choice(recorder_mode, ("process", "thread"), "recorder mode")
    protocol = load_protocol(protocol_path)
    sim = SimulatedParticipant.from_script(simulate) if simulate is not None else None
    participant, age, sex = ask_participant_info(participant, age, sex, sim is not None)
    prepare_clips(protocol)
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
    has_audio, audio_why = audio_output()
    sound = protocol.sound and has_audio
    if protocol.sound and not has_audio:
        print_warning(f"{audio_why}: the films play MUTED. Connect speakers/headphones for a real session.")
    state = RunState(participant=participant, session=session.session_id)
    recorder = display = None
    session.update(status="starting", audio={"requested": protocol.sound, "playing": sound, "reason": audio_why})
    try:
        try:
            warn = lambda m: setattr(state, "message", m)  # noqa: E731 - shown in the live panel
            cam = protocol.camera
            if isinstance(camera, str) and recorder_mode == "process":
                from station.record.procrecorder import ProcessRecorder

                recorder = ProcessRecorder(camera, cam.width, cam.height, cam.fps, on_warning=warn)
            else:
                from station.record.recorder import Recorder

                source = open_camera(camera, width=cam.width, height=cam.height, fps=cam.fps) \
                    if isinstance(camera, str) else camera
                recorder = Recorder(source, on_warning=warn)
            if isinstance(recorder, ProcessRecorderT):
                recorder.start()  # the child opens the camera while we open the window
            else:
                recorder.open()
        except (CameraError, RuntimeError) as err:
            recorder = None
            raise StationError(f"camera {str(camera)!r} cannot be opened: {err}. Check the USB 3 cable, "
                               "or run with --camera virtual to try the station without one.") from err
        markers = Markers(recorder, session, open_lsl(lsl), simulated=sim is not None)
        size = window_size or protocol.display.size
        display = Display(size, fullscreen=protocol.display.fullscreen and not windowed,
                          screen=protocol.display.screen, background=protocol.display.background, markers=markers,
                          log_file=session.folder / "psychopy.log")
        if isinstance(recorder, ProcessRecorderT):
            try:
                recorder.wait_ready()
            except CameraError as err:
                raise StationError(f"camera {str(camera)!r} cannot be opened: {err}. Check the USB 3 cable, "
                                   "or run with --camera virtual to try the station without one.") from err
        session.update(device={"camera": camera if isinstance(camera, str) else type(camera).__name__,
                               "recorder": type(recorder).__name__, "description": getattr(recorder.source, "description", ""),
                               **(recorder.calibration.device if recorder.calibration else {}),
                               "width": protocol.camera.width, "height": protocol.camera.height,
                               "fps": protocol.camera.fps},
                       display=display.info(), status="running", started=now_iso())
        if not display.vsync:
            print_warning(f"no vertical sync on this display (median flip {1000 / display.refresh_hz:.1f} ms); "
                          f"flips are paced at {display.paced_hz:g} Hz by software.")
        markers.emit("session_start", detail=f"protocol={protocol.name} simulated={sim is not None}")
        runner = Runner(protocol, order, session, recorder, display, markers, state, sim, sound)
        with live_status(state, recorder, enabled=live):
            status = runner.run()
        markers.emit("session_end", detail=status)
        session.update(status=status)
    except CameraLost as err:
        session.update(status=f"camera lost: {err}")
        _finish(session, recorder, display)
        raise StationError(f"the camera was lost during the session ({err}). Every trial up to that moment "
                           f"is kept in {session.folder}; the interrupted clip's file holds the frames "
                           "recorded before the loss. Reconnect the camera and start a new session "
                           "(it gets a new session number).") from None
    except WindowClosed:
        session.update(status="window closed")
        _finish(session, recorder, display)
        raise StationError(f"the participant window was closed, so the session stopped. Everything recorded "
                           f"so far is kept in {session.folder} (trial files and session.json).") from None
    except BaseException as err:
        session.update(status=f"stopped: {type(err).__name__}: {err}"[:300])
        _finish(session, recorder, display)
        raise
    _finish(session, recorder, display)
    console.print(summary_table(session))
    print_ok(f"session saved in {session.folder}")
    return session


def _finish(session: Session, recorder, display) -> None:
    """Close trial, camera and window; stamp the timing summary into session.json."""
    if display is not None:
        s = display.summary(display.intervals())
        session.update(timing={"display_all": s, "frame_intervals_file": "frame-intervals.csv"}, ended=now_iso())
        display.close()
    if recorder is not None:
        try:
            recorder.close()
        except Exception as err:  # the camera may be gone already
            print_warning(f"camera did not close cleanly: {err}")
        if recorder.session_markers:
            session.update(markers_between_trials=recorder.session_markers)
    session.save()
