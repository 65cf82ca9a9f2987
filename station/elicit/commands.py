"""CLI verbs of the elicitation area: ``station run``, ``station check``, ``station selfreport``."""

from __future__ import annotations

import argparse

from station.checks import StationError
from station.vocab.participant import SEXES


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
        assert w > 0 and h > 0
    except (ValueError, AssertionError):
        raise argparse.ArgumentTypeError(f"window size must look like 1280x720, got {text!r}") from None
    return w, h


EXIT_HELP = """exit codes:
  0    complete: every planned clip recorded whole, every form answered
  2    refused before recording (bad protocol or id, failed pre-flight); nothing recorded
  3    incomplete: the session ended but a clip is not whole (aborted, < 98 % of the film
       shown, camera frames missing) or a form is unanswered
  4    incomplete: a fault stopped a clip or the session (disk, camera, recorder, window)
  129  SIGHUP (terminal closed), 130 Ctrl-C, 143 SIGTERM: trial and journal finalised
session.json 'status', 'clips' (per clip outcome and reasons) and 'exit_code' say the same."""


class _Formatter(argparse.ArgumentDefaultsHelpFormatter):
    """Defaults in the help; the description wrapped, the exit-code table kept as written."""

    def _fill_text(self, text, width, indent):
        if text.startswith("exit codes:"):
            return "".join(indent + line for line in text.splitlines(keepends=True))
        return super()._fill_text(text, width, indent)


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "run", help="run an elicitation session for one participant (PsychoPy window + recording)",
        description="Show the protocol's instructions, films, rests and self-report forms in a PsychoPy "
                    "window while the camera records one trial file per film into "
                    "sessions/<participant>/<NNN>/.  The participant presses ESCAPE to stop a film "
                    "(the recording is kept) and the experimenter F9 to pause.  Missing participant "
                    "information is asked in a dialog.  Headless: prefix with `xvfb-run -a`.  "
                    "Before the window opens, every film is decoded to its end and the sessions disk "
                    "is checked (as `station check`).  A recording fault (disk, camera, recorder) stops "
                    "the clip and asks: R retry / N next / E end.",
        epilog=EXIT_HELP, formatter_class=_Formatter)
    p.add_argument("--participant", help="pseudonymous participant id, e.g. P07 (never a name)")
    p.add_argument("--protocol", required=True, help="protocol YAML, e.g. protocols/dsme3d.yaml")
    p.add_argument("--camera", default="virtual", help="virtual | realsense[:SERIAL] | playback:FILE")
    p.add_argument("--age", type=int, help="participant age in years")
    p.add_argument("--sex", choices=SEXES, help="participant sex")
    p.add_argument("--sessions", default="sessions", help="root folder of all sessions")
    p.add_argument("--simulate-participant", nargs="?", const="", default=None, metavar="SCRIPT",
                   help="answer keys and forms automatically (recorded as simulated in session.json); "
                        "optional SCRIPT such as 'abort=CLIP@2.5,stop' or 'close=CLIP@1'")
    p.add_argument("--window", type=_size, metavar="WxH", help="window size, overriding the protocol")
    p.add_argument("--windowed", action="store_true", help="no full screen, whatever the protocol says")
    p.add_argument("--lsl", action="store_true", help="also publish markers on a Lab Streaming Layer outlet")
    p.add_argument("--order-row", type=int, help="Latin-square row (default: from the participant number)")
    p.add_argument("--no-live", action="store_true", help="no live status panel in the terminal")
    p.add_argument("--recorder", choices=["process", "thread"], default="process",
                   help="run the camera recorder in a child process (HDF5 writing cannot delay display "
                        "flips; docs/benchmarks.md) or in a thread of this process")
    p.add_argument("--recorder-priority", choices=["background", "normal"], default="background",
                   help="background (default): the recorder process writes and checks the face at a lower "
                        "CPU priority than capture and the participant's display, and the virtual camera "
                        "renders takes at the lowest priority, never during a film; normal: every thread at "
                        "this process's priority (docs/elicit.md)")
    p.add_argument("--preview", action="store_true",
                   help="open the experimenter view (colour + face box and distance, depth, fps, drops) in a "
                        "second window, drawn by the recorder process (see `station preview`)")
    p.add_argument("--camera-faults", default=None, metavar="SPEC",
                   help="virtual camera only: real-camera faults (station.camera.faults), e.g. "
                        "'stall_s=4,stall_for_s=3' or 'unplug_s=4' — to rehearse what a lab meets")
    p.add_argument("--min-free-mb", type=float, default=None,
                   help="the recorder stops a trial cleanly when free disk falls under this "
                        "(default: the recorder's, 500 MB)")
    p.set_defaults(func=run_cmd)

    c = subparsers.add_parser(
        "check", help="pre-flight a protocol: clips exist and decode, durations, display, camera, sound",
        description="Check everything a session needs before the participant sits down; prints a table "
                    "and exits 1 if anything would stop the session.")
    c.add_argument("protocol", help="protocol YAML")
    c.add_argument("--camera", default="virtual", help="camera to try: virtual | realsense[:SERIAL] | playback:FILE")
    c.add_argument("--no-camera", action="store_true", help="skip the camera check")
    c.add_argument("--no-display", action="store_true", help="skip the display check")
    c.add_argument("--sessions", default="sessions", help="sessions folder whose disk must hold the session")
    c.set_defaults(func=check_cmd)

    s = subparsers.add_parser(
        "selfreport", help="run or import the self-report forms of an existing session",
        description="Show the self-report forms for the films SESSION_DIR's participant actually saw "
                    "(whole or partly, as its journal says — also after a crash), skipping films "
                    "already answered unless --redo; or with --import CSV take answers typed from paper "
                    "forms (header: clip,emotion,intensity,movements; clip 'end' for the end form).")
    s.add_argument("session_dir", help="a session folder, e.g. sessions/P07/001")
    s.add_argument("--import", dest="import_csv", metavar="CSV", help="import paper forms from CSV")
    s.add_argument("--simulate-participant", action="store_true", help="answer the forms automatically")
    s.add_argument("--redo", action="store_true", help="ask again about films that already have an answer")
    s.add_argument("--window", type=_size, default=(1024, 640), metavar="WxH", help="window size")
    s.set_defaults(func=selfreport_cmd)

    v = subparsers.add_parser(
        "preview", help="the experimenter's camera view: colour, depth, face box and distance, fps, drops",
        description="Show the camera live (like realsense-viewer) with the checks a micro-expression "
                    "session needs: a face is found, it is 0.5-0.7 m from the camera, it is lit; fps and "
                    "missing frames.  Use it to seat the participant before `station run` (which keeps "
                    "checking the face and marks face_lost / face_moved during clips).  Esc or q closes "
                    "the window.  Exit status 0 when the participant is seated well, 1 otherwise.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    v.add_argument("--camera", default="virtual", help="virtual | realsense[:SERIAL] | playback:FILE")
    v.add_argument("--mode", default="848x480@60", help="camera mode WxH@FPS (the paper's: 848x480@60)")
    v.add_argument("--seconds", type=float, default=None, help="close after this long (default: until Esc)")
    v.add_argument("--no-window", action="store_true", help="terminal line only (no window)")
    v.add_argument("--snapshot", metavar="PNG", help="save the view as a PNG when closing")
    v.set_defaults(func=preview_cmd)


def run_cmd(args) -> int:
    from station.console import print_error
    from station.elicit.session_run import SessionEnded, run_session
    from station.signals import exit_code, signal_name

    try:
        session = run_session(args.protocol, args.participant, camera=args.camera, age=args.age, sex=args.sex,
                              sessions_root=args.sessions, simulate=args.simulate_participant,
                              window_size=args.window, windowed=args.windowed, lsl=args.lsl,
                              order_row=args.order_row, live=not args.no_live, recorder_mode=args.recorder,
                              min_free_bytes=None if args.min_free_mb is None else int(args.min_free_mb * 1e6),
                              camera_faults=args.camera_faults, preview=args.preview,
                              recorder_priority=args.recorder_priority)
    except SessionEnded as err:
        print_error(str(err))
        return err.exit_code
    except KeyboardInterrupt as err:  # Ctrl-C, SIGTERM, SIGHUP: the session was finalised first
        print_error(f"interrupted ({signal_name(err)}); the session was finalised.")
        return exit_code(err)
    return int(session.data["exit_code"])


def check_cmd(args) -> int:
    from station.elicit.check import run_checks

    return 0 if run_checks(args.protocol, camera=None if args.no_camera else args.camera,
                           display=not args.no_display, sessions_root=args.sessions) else 1


def selfreport_cmd(args) -> int:
    from station.elicit.selfreport import selfreport

    selfreport(args.session_dir, import_csv=args.import_csv, simulate=args.simulate_participant,
               window_size=args.window, redo=args.redo)
    return 0


def preview_cmd(args) -> int:
    from station.console import print_ok, print_warning
    from station.elicit.preview import preview

    try:
        wh, fps = args.mode.lower().split("@")
        width, height = (int(v) for v in wh.split("x"))
        fps = int(fps)
    except ValueError:
        raise StationError(f"--mode must look like 848x480@60, got {args.mode!r}.") from None
    check = preview(args.camera, width=width, height=height, fps=fps, seconds=args.seconds,
                    window=not args.no_window, snapshot=args.snapshot)
    if args.snapshot:
        print_ok(f"view saved to {args.snapshot}")
    problems = check.seating_problems() if check is not None else ["no frame from the camera"]
    if problems:
        print_warning("not ready: " + "; ".join(problems))
        return 1
    print_ok(f"participant seated: face found at {check.distance_m:.2f} m")
    return 0


__all__ = ["register", "StationError"]


def main(argv: list[str] | None = None) -> int:
    """``python -m station.elicit.commands VERB ...``: the elicitation verbs alone.

    Same behaviour as ``station VERB``; useful when another area's verbs fail to import.
    """
    from station.cli import dispatch

    parser = argparse.ArgumentParser(prog="station")
    register(parser.add_subparsers(dest="verb", metavar="VERB", required=True))
    return dispatch(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
