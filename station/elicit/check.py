"""`station check PROTOCOL`: pre-flight everything before a participant sits down.

A film that does not decode to its end, a missing file, a wrong duration in the manifest,
a key PsychoPy does not know, too little disk, no display or no camera must be found by the
experimenter the day before, not in front of a participant.  Each check gives OK / WARN /
FAIL with a detail that says what to fix; FAIL means `station run` would stop: ``station
run`` runs :func:`preflight` (the same film and disk checks, same messages) before it opens
the window.  Decoding a film to its end takes a while, so results are cached per file
(path, size, modification time) in ``~/.cache/station/film-probes.json``.
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
from station.fileio import file_identity

OK, WARN, FAIL = "OK", "WARN", "FAIL"
#: One rule for `check` and `run`: the decoded film's length may differ from the manifest by this.
DURATION_TOLERANCE_S = 0.5
#: Disk estimate: margin over the estimated size (LZ4 ratio varies with the scene) plus the
#: recorder's own stop limit, which must stay free at the end of the session.
DISK_MARGIN = 1.5
#: Compressed bytes per pixel per frame for colour (3 B) + depth (2 B) under LZ4, measured on
#: the virtual and real D415 (docs/benchmarks.md storage table: about 2:1).
BYTES_PER_PIXEL_LZ4 = 2.5


@dataclass
class Check:
    name: str
    item: str
    result: str
    detail: str


@dataclass
class ClipProbe:
    """What decoding a film file found."""

    frames: int  # as the container says
    fps: float
    width: int
    height: int
    first_ok: bool
    last_ok: bool
    has_audio: bool | None  # None: could not tell
    decoded: int = -1  # frames that decode, reading the whole film (-1: not decoded)

    @property
    def duration(self) -> float:
        """Seconds of film that decode (the container's claim when not decoded)."""
        n = self.decoded if self.decoded >= 0 else self.frames
        return n / self.fps if self.fps else 0.0

    @property
    def truncated(self) -> bool:
        return 0 <= self.decoded < self.frames - 1


def probe_clip(path: Path, to_end: bool = True) -> ClipProbe:
    """Open a film, decode it to its end (or only first and last frames), read its length and
    whether it has sound."""
    import cv2

    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise StationError(f"{path} cannot be opened as a video (unknown container or codec).")
    try:
        frames = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        fps = float(cap.get(cv2.CAP_PROP_FPS))
        width, height = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        first_ok = cap.read()[0]
        decoded, last_ok = -1, False
        if to_end:
            decoded = int(first_ok)
            while first_ok and cap.grab():
                decoded += 1
            last_ok = decoded >= frames - 1 and decoded > 0
        elif frames > 1:
            cap.set(cv2.CAP_PROP_POS_FRAMES, frames - 1)
            last_ok = cap.read()[0]
    finally:
        cap.release()
    return ClipProbe(frames, fps, width, height, bool(first_ok), bool(last_ok), _has_audio(path), decoded)


def _cache_file() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "station" / "film-probes.json"


def probe_clip_cached(path: Path) -> ClipProbe:
    """:func:`probe_clip` to the end, remembered per (path, size, mtime): a film changes rarely."""
    import json
    from dataclasses import asdict

    key = file_identity(path, "film")  # the station's one cache-key policy (station.fileio)
    cache_path = _cache_file()
    try:
        cache = json.loads(cache_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        cache = {}
    if key in cache:
        try:
            return ClipProbe(**cache[key])
        except TypeError:  # an older cache layout
            pass
    probe = probe_clip(path)
    try:
        from station.fileio import atomic_write_json

        cache_path.parent.mkdir(parents=True, exist_ok=True)
        cache = {k: v for k, v in cache.items() if not k.startswith(f"{path.resolve()}|")}
        cache[key] = asdict(probe)
        atomic_write_json(cache_path, cache)
    except OSError:  # a read-only home: decode again next time
        pass
    return probe


def duration_problem(clip, probe: ClipProbe) -> str:
    """The one manifest-duration rule of `check` and `run` ('' when the film is as described)."""
    if clip.duration is not None and abs(clip.duration - probe.duration) > DURATION_TOLERANCE_S:
        return (f"duration {probe.duration:.2f} s but manifest says {clip.duration:g} s "
                f"({clip.where('duration')}; tolerance {DURATION_TOLERANCE_S:g} s)")
    return ""


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
            probe = probe_clip_cached(clip.path)
        except StationError as err:
            out.append(Check("clip", clip.id, FAIL, str(err)))
            continue
        if not probe.first_ok or probe.frames < 1 or probe.fps <= 0:
            out.append(Check("clip", clip.id, FAIL, f"{clip.path.name}: no decodable video frames"))
            continue
        problems, warnings = [], []
        if probe.truncated:
            problems.append(f"{clip.path.name} stops decoding at frame {probe.decoded} of {probe.frames} "
                            f"({probe.decoded / probe.fps:.2f} s of {probe.frames / probe.fps:.2f} s): truncated or damaged file")
        elif not probe.last_ok:
            problems.append("last frame does not decode (truncated file?)")
        if clip.duration is None:
            warnings.append(f"no duration in manifest (file: {probe.duration:.1f} s)")
        elif duration_problem(clip, probe):
            problems.append(duration_problem(clip, probe))
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


def describe_settings(settings) -> str:
    """The protocol's ``camera.settings`` in one line ('camera defaults' when none is set)."""
    requested = settings.requested()
    return ", ".join(f"{k}={v}" for k, v in requested.items()) if requested else "none set: the camera's own values"


def check_camera_settings(protocol, attrs: dict | None = None) -> Check:
    """What ``camera.settings`` asks for and, once a camera is opened, what it reports back.

    A live D415 applies them at start; the read-back values are what every trial stores.
    """
    import json

    detail = describe_settings(protocol.camera.settings)
    stored = (attrs or {}).get("camera_settings")
    if stored:
        device = json.loads(stored).get("device", {})
        if device.get("applied") is False:
            detail += f" (not applied: {device.get('why', 'no sensor options')}; stored as requested)"
        else:
            shown = {k: v for k, v in device.items() if k != "requested_by"}
            detail += "; device reports " + (", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
                                                      for k, v in shown.items()) or "no options")
    return Check("camera settings", "protocol camera.settings", OK, detail)


def check_camera(protocol, spec: str, found: dict | None = None) -> Check:
    """Open the camera at the protocol's mode and settings and read one frame; ``found`` gets
    the camera's trial attributes (settings read back) for :func:`check_camera_settings`."""
    from station.camera import open_camera

    try:
        source = open_camera(spec, width=protocol.camera.width, height=protocol.camera.height, fps=protocol.camera.fps,
                             settings=protocol.camera.settings)
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
        if found is not None:
            found.update(getattr(source, "trial_attrs", dict)())
        return Check("camera", spec, OK, f"{dev.get('name', '?')} serial {dev.get('serial', '?')} "
                                         f"{protocol.camera.width}x{protocol.camera.height}@{protocol.camera.fps}")
    except Exception as err:
        return Check("camera", spec, FAIL, f"no frames: {err}")
    finally:
        source.stop()


def recorded_seconds(protocol) -> float:
    """Seconds the protocol records: baseline + film + blank per clip (+ rest when recorded);
    a film without a manifest duration counts as the paper's longest (3 min)."""
    per_rest = (protocol.rest.max_seconds or protocol.rest.seconds) if protocol.record.rest else 0.0
    return sum((c.duration or 180.0) + protocol.baseline.seconds + protocol.record.after_clip_seconds + per_rest
               for c in protocol.clips)


def disk_estimate(protocol, min_free_bytes: int | None = None) -> tuple[float, float, float]:
    """(MB/s at the camera mode, recorded seconds, bytes needed with margin and the recorder's stop limit)."""
    from station.record.recorder import MIN_FREE_BYTES

    cam = protocol.camera
    rate = cam.fps * cam.width * cam.height * BYTES_PER_PIXEL_LZ4
    seconds = recorded_seconds(protocol)
    limit = MIN_FREE_BYTES if min_free_bytes is None else min_free_bytes
    return rate / 1e6, seconds, rate * seconds * DISK_MARGIN + limit


def check_disk(protocol, sessions_root: str | Path = "sessions", min_free_bytes: int | None = None) -> Check:
    """Free space on the sessions disk against MB/s x recorded seconds (with margin)."""
    mb_s, seconds, need = disk_estimate(protocol, min_free_bytes)
    free = free_bytes(sessions_root)
    cam = protocol.camera
    detail = (f"{format_bytes(free)} free; the session needs about {format_bytes(need)} "
              f"({mb_s:.0f} MB/s at {cam.width}x{cam.height}@{cam.fps} x {seconds:.0f} s recorded, "
              f"x{DISK_MARGIN:g} margin, + the recorder's stop limit)")
    return Check("disk", str(sessions_root), OK if free >= need else FAIL, detail)


def preflight(protocol, sessions_root: str | Path = "sessions", min_free_bytes: int | None = None) -> list[Check]:
    """The checks `station run` makes before opening the window; returns the FAILed ones."""
    checks = [c for c in check_clips(protocol) if c.result == FAIL]
    disk = check_disk(protocol, sessions_root, min_free_bytes)
    return checks + ([disk] if disk.result == FAIL else [])


def run_checks(protocol_path: str | Path, camera: str | None = "virtual", display: bool = True,
               sessions_root: str | Path = "sessions") -> bool:
    """Run every check, print the table; True when nothing FAILs."""
    checks = collect_checks(protocol_path, camera, display, sessions_root)
    return print_checks(checks, f"station check {protocol_path}")


def collect_checks(protocol_path: str | Path, camera: str | None = "virtual", display: bool = True,
                   sessions_root: str | Path = "sessions") -> list[Check]:
    """Every check, in table order."""
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
        attrs: dict = {}
        if camera:
            checks.append(check_camera(protocol, camera, attrs))
        checks.append(check_camera_settings(protocol, attrs))
        ok, why = audio_output()
        checks.append(Check("sound", "output", OK if ok else WARN if protocol.sound else OK,
                            why + ("" if ok or not protocol.sound else "; films would play muted")))
        checks.append(check_disk(protocol, sessions_root))
    try:
        import pylsl  # noqa: F401

        checks.append(Check("lsl", "pylsl", OK, "installed: `station run --lsl` publishes markers"))
    except ImportError:
        checks.append(Check("lsl", "pylsl", OK, "not installed (optional extra 'lsl')"))
    return checks


def print_checks(checks: list[Check], title: str) -> bool:
    """The OK / WARN / FAIL table; True when nothing FAILs."""
    table = Table(title=title)
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
    return not failed
