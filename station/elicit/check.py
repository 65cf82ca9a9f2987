"""`station check PROTOCOL`: pre-flight everything before a participant sits down.

A film that does not decode, a missing file, a wrong duration in the manifest, no display or
no camera must be found by the experimenter the day before, not in front of a participant.
Each check gives OK / WARN / FAIL with a detail that says what to fix; FAIL means
`station run` would stop.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from rich.table import Table

from station.checks import StationError, format_bytes, free_bytes
from station.console import console

OK, WARN, FAIL = "OK", "WARN", "FAIL"
DURATION_TOLERANCE_S = 0.5


@dataclass
class Check:
    name: str
    item: str
    result: str
    detail: str


@dataclass
class ClipProbe:
    """What decoding a film file found."""

    frames: int
    fps: float
    width: int
    height: int
    first_ok: bool
    last_ok: bool
    has_audio: bool | None  # None: could not tell

    @property
    def duration(self) -> float:
        return self.frames / self.fps if self.fps else 0.0


def probe_clip(path: Path) -> ClipProbe:
    """Open a film, decode its first and last frames, read its length and whether it has sound."""
    import cv2

    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise StationError(f"{path} cannot be opened as a video (unknown container or codec).")
    try:
        frames = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        fps = float(cap.get(cv2.CAP_PROP_FPS))
        width, height = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        first_ok = cap.read()[0]
        last_ok = False
        if frames > 1:
            cap.set(cv2.CAP_PROP_POS_FRAMES, frames - 1)
            last_ok = cap.read()[0]
    finally:
        cap.release()
    return ClipProbe(frames, fps, width, height, bool(first_ok), bool(last_ok), _has_audio(path))


def _has_audio(path: Path) -> bool | None:
    try:
        import imageio_ffmpeg

        exe = imageio_ffmpeg.get_ffmpeg_exe()
    except Exception:
        return None
    proc = subprocess.run([exe, "-hide_banner", "-i", str(path)], capture_output=True, text=True, timeout=30)
    return bool(re.search(r"Stream #\S+.*Audio:", proc.stderr))


def check_clips(protocol) -> list[Check]:
    from station.elicit.democlips import ensure_demo_clips

    out = []
    try:
        for path in ensure_demo_clips(protocol.manifest):
            out.append(Check("clip", path.name, OK, "demo clip generated now"))
    except StationError as err:
        out.append(Check("clip", "demo clips", FAIL, str(err)))
    for clip in protocol.clips:
        if not clip.path.exists():
            out.append(Check("clip", clip.id, FAIL, f"file {clip.path} does not exist ({clip.where('file')}); "
                                                     "copy the film there (docs/elicit.md)"))
            continue
        try:
            probe = probe_clip(clip.path)
        except StationError as err:
            out.append(Check("clip", clip.id, FAIL, str(err)))
            continue
        if not probe.first_ok or probe.frames < 1 or probe.fps <= 0:
            out.append(Check("clip", clip.id, FAIL, f"{clip.path.name}: no decodable video frames"))
            continue
        problems, warnings = [], []
        if not probe.last_ok:
            problems.append("last frame does not decode (truncated file?)")
        if clip.duration is None:
            warnings.append(f"no duration in manifest (file: {probe.duration:.1f} s)")
        elif abs(clip.duration - probe.duration) > DURATION_TOLERANCE_S:
            problems.append(f"duration {probe.duration:.2f} s but manifest says {clip.duration:g} s "
                            f"({clip.where('duration')})")
        if clip.intensity is None and clip.generated is None:
            warnings.append("no pilot intensity rating")
        if protocol.sound and probe.has_audio is False:
            warnings.append("no audio track")
        detail = (f"{probe.width}x{probe.height} {probe.fps:g} fps {probe.duration:.1f} s"
                  f"{' +audio' if probe.has_audio else ''}")
        result = FAIL if problems else WARN if warnings else OK
        out.append(Check("clip", clip.id, result, "; ".join([detail] + problems + warnings)))
    return out


def check_display(protocol) -> Check:
    if os.name == "posix" and not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        return Check("display", "screen", FAIL, "no DISPLAY: connect a screen, or run headless with `xvfb-run -a`")
    try:
        import pyglet

        screens = pyglet.canvas.get_display().get_screens()
    except Exception as err:
        return Check("display", "screen", FAIL, f"cannot talk to the display: {err}")
    n = protocol.display.screen
    if n >= len(screens):
        return Check("display", f"screen {n}", FAIL, f"protocol asks for screen {n}, only {len(screens)} connected")
    s = screens[n]
    w, h = protocol.display.size
    detail = f"screen {n}: {s.width}x{s.height}"
    if protocol.display.fullscreen or (w <= s.width and h <= s.height):
        return Check("display", f"screen {n}", OK, detail)
    return Check("display", f"screen {n}", WARN, f"{detail}, smaller than the protocol's window {w}x{h}")


def check_camera(protocol, spec: str) -> Check:
    from station.camera import open_camera

    try:
        source = open_camera(spec, width=protocol.camera.width, height=protocol.camera.height, fps=protocol.camera.fps)
        calib = source.start()
    except Exception as err:
        return Check("camera", spec, FAIL, f"cannot open: {err}")
    try:
        deadline = time.perf_counter() + 5
        frame = None
        while frame is None and time.perf_counter() < deadline:
            frame = source.read(timeout_s=1.0)
        if frame is None:
            return Check("camera", spec, FAIL, "opened but delivered no frame within 5 s")
        dev = calib.device
        return Check("camera", spec, OK, f"{dev.get('name', '?')} serial {dev.get('serial', '?')} "
                                         f"{protocol.camera.width}x{protocol.camera.height}@{protocol.camera.fps}")
    except Exception as err:
        return Check("camera", spec, FAIL, f"no frames: {err}")
    finally:
        source.stop()


def check_disk(protocol, sessions_root: str | Path = "sessions") -> Check:
    """Rough need: raw colour + depth per frame at the protocol's mode, LZ4 ~ 2x."""
    seconds = sum((c.duration or 180.0) + protocol.baseline.seconds + protocol.record.after_clip_seconds
                  for c in protocol.clips)
    cam = protocol.camera
    need = seconds * cam.fps * cam.width * cam.height * 5 / 2
    free = free_bytes(sessions_root)
    result = OK if free > 2 * need else WARN if free > need else FAIL
    return Check("disk", str(sessions_root), result, f"{format_bytes(free)} free, a session needs about {format_bytes(need)}")


def run_checks(protocol_path: str | Path, camera: str | None = "virtual", display: bool = True,
               sessions_root: str | Path = "sessions") -> bool:
    """Run every check, print the table; True when nothing FAILs."""
    from station.elicit.protocol import load_protocol
    from station.elicit.session_run import audio_output

    checks: list[Check] = []
    try:
        protocol = load_protocol(protocol_path)
        checks.append(Check("protocol", str(protocol_path), OK, f"{protocol.name}: {len(protocol.clips)} clips, "
                                                                f"order {protocol.order.policy}"))
    except StationError as err:
        checks.append(Check("protocol", str(protocol_path), FAIL, str(err)))
        protocol = None
    if protocol is not None:
        checks += check_clips(protocol)
        if display:
            checks.append(check_display(protocol))
        if camera:
            checks.append(check_camera(protocol, camera))
        ok, why = audio_output()
        checks.append(Check("sound", "output", OK if ok else WARN if protocol.sound else OK,
                            why + ("" if ok or not protocol.sound else "; films would play muted")))
        checks.append(check_disk(protocol, sessions_root))
    try:
        import pylsl  # noqa: F401

        checks.append(Check("lsl", "pylsl", OK, "installed: `station run --lsl` publishes markers"))
    except ImportError:
        checks.append(Check("lsl", "pylsl", OK, "not installed (optional extra 'lsl')"))
    table = Table(title=f"station check {protocol_path}")
    for col in ("check", "item", "result", "detail"):
        table.add_column(col, overflow="fold")
    style = {OK: "[green]OK[/]", WARN: "[yellow]WARN[/]", FAIL: "[bold red]FAIL[/]"}
    for c in checks:
        table.add_row(c.name, c.item, style[c.result], c.detail)
    console.print(table)
    failed = [c for c in checks if c.result == FAIL]
    if failed:
        console.print(f"[bold red]{len(failed)} check(s) failed[/]: fix them before the participant arrives.")
    else:
        console.print("[green]ready[/] for a session.")
    run_checks.last = checks  # type: ignore[attr-defined]  (tests read the details)
    return not failed
