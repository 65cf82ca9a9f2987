"""Demo stimulus clips that the project generates itself.

Real elicitation films (Gross & Levenson 1995, the Asian Emotion Video library...) are not
redistributable, so the demo protocol plays short synthetic clips: a coloured background, a
caption naming the target emotion, a moving disc and a frame counter, with a sine-tone audio
track so that sound output can be checked.  They are *not* emotional stimuli; they exist to
exercise the station end to end (decoding, timing, markers, sound).

Clips are generated deterministically on first use (``ensure_demo_clips``) next to the
manifest, with the ffmpeg binary shipped in the ``imageio-ffmpeg`` wheel (H.264 + AAC).  If
that binary is missing, OpenCV writes an MPEG-4 file without sound.
"""

from __future__ import annotations

import math
import os
import subprocess
import tempfile
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from station.checks import StationError
from station.fileio import commit_temp, temp_path

WIDTH, HEIGHT, FPS = 640, 360, 30
SAMPLE_RATE = 44100

# background colour (RGB) and tone (Hz) per target emotion
_STYLE = {
    "happiness": ((230, 180, 40), 523.25),
    "surprise": ((60, 160, 230), 659.25),
    "disgust": ((110, 140, 50), 220.0),
    "sadness": ((60, 70, 130), 261.63),
    "anger": ((180, 40, 40), 293.66),
    "fear": ((70, 40, 90), 246.94),
}


@dataclass(frozen=True)
class DemoSpec:
    """What to draw for one generated clip."""

    clip_id: str
    emotion: str
    duration: float
    seed: int = 0


def _ffmpeg_exe() -> str | None:
    try:
        import imageio_ffmpeg
    except ImportError:
        return None
    try:
        return imageio_ffmpeg.get_ffmpeg_exe()
    except RuntimeError:
        return None


def render_frame(spec: DemoSpec, index: int) -> np.ndarray:
    """One RGB frame (HEIGHT, WIDTH, 3) uint8 of the clip; pure function of (spec, index)."""
    import cv2

    bg, _ = _STYLE.get(spec.emotion, ((128, 128, 128), 440.0))
    img = np.empty((HEIGHT, WIDTH, 3), np.uint8)
    img[:] = bg
    t = index / FPS
    cx = int(WIDTH / 2 + WIDTH / 3 * math.sin(2 * math.pi * t / 3.0 + spec.seed))
    cy = int(HEIGHT / 2 + HEIGHT / 5 * math.cos(2 * math.pi * t / 2.0))
    cv2.circle(img, (cx, cy), 28, (255, 255, 255), -1, lineType=cv2.LINE_AA)
    font = cv2.FONT_HERSHEY_SIMPLEX
    cv2.putText(img, "DEMO CLIP (synthetic)", (20, 40), font, 0.9, (255, 255, 255), 2, cv2.LINE_AA)
    cv2.putText(img, f"target: {spec.emotion}", (20, 80), font, 0.9, (255, 255, 255), 2, cv2.LINE_AA)
    cv2.putText(img, f"{spec.clip_id}  frame {index:04d}  t={t:5.2f}s", (20, HEIGHT - 20), font, 0.6,
                (255, 255, 255), 1, cv2.LINE_AA)
    return img


def _tone(spec: DemoSpec) -> np.ndarray:
    _, freq = _STYLE.get(spec.emotion, ((0, 0, 0), 440.0))
    n = int(round(spec.duration * SAMPLE_RATE))
    t = np.arange(n) / SAMPLE_RATE
    # 0.5 s beeps, one per second, quiet enough to be comfortable
    gate = ((t % 1.0) < 0.5).astype(np.float64)
    ramp = np.minimum(1.0, np.minimum((t % 1.0) / 0.01, np.abs(0.5 - (t % 1.0)) / 0.01))
    y = 0.2 * np.sin(2 * np.pi * freq * t) * gate * ramp
    return (y * 32767).astype("<i2")


def write_demo_clip(spec: DemoSpec, path: str | os.PathLike) -> Path:
    """Write one demo clip to ``path`` (atomically: a temporary file renamed at the end)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    n_frames = int(round(spec.duration * FPS))
    tmp = temp_path(path)  # keeps the .mp4 suffix: ffmpeg and OpenCV pick the container by name
    exe = _ffmpeg_exe()
    if exe is not None:
        with tempfile.TemporaryDirectory() as td:
            wav = Path(td) / "tone.wav"
            with wave.open(str(wav), "wb") as w:
                w.setnchannels(1)
                w.setsampwidth(2)
                w.setframerate(SAMPLE_RATE)
                w.writeframes(_tone(spec).tobytes())
            cmd = [exe, "-y", "-loglevel", "error",
                   "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{WIDTH}x{HEIGHT}", "-r", str(FPS), "-i", "-",
                   "-i", str(wav),
                   "-c:v", "libx264", "-preset", "medium", "-crf", "30", "-pix_fmt", "yuv420p",
                   "-threads", "1", "-c:a", "aac", "-b:a", "48k",
                   "-map_metadata", "-1", "-fflags", "+bitexact", "-flags:v", "+bitexact",
                   "-flags:a", "+bitexact", "-movflags", "+faststart", "-shortest", str(tmp)]
            proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stderr=subprocess.PIPE)
            assert proc.stdin is not None
            try:
                for i in range(n_frames):
                    proc.stdin.write(render_frame(spec, i).tobytes())
                proc.stdin.close()
            except BrokenPipeError:
                pass
            err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
            if proc.wait() != 0:
                tmp.unlink(missing_ok=True)
                raise StationError(f"ffmpeg could not write demo clip {str(path)!r}: {err.strip()}")
    else:  # pragma: no cover - imageio-ffmpeg ships with psychopy
        import cv2

        vw = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), FPS, (WIDTH, HEIGHT))
        if not vw.isOpened():
            raise StationError(f"OpenCV cannot write demo clip {str(path)!r} (no mp4v encoder).")
        for i in range(n_frames):
            vw.write(render_frame(spec, i)[:, :, ::-1])
        vw.release()
    commit_temp(tmp, path)
    return path


def ensure_demo_clips(manifest) -> list[Path]:
    """Generate every ``generated: demo`` clip of ``manifest`` that is not on disk yet.

    Returns the paths written (empty if all were present).
    """
    written = []
    for clip in manifest.clips.values():
        if clip.generated != "demo" or clip.path.exists():
            continue
        if clip.duration is None:
            raise StationError(f"{clip.where('duration')}: a generated demo clip needs a duration.")
        try:
            write_demo_clip(DemoSpec(clip.id, clip.emotion, float(clip.duration),
                                     seed=sum(map(ord, clip.id)) % 7), clip.path)
        except OSError as err:
            raise StationError(f"cannot write demo clip {str(clip.path)!r}: {err.strerror}. "
                               "Make the stimuli folder writable or generate the clips once "
                               "with `python -m station.elicit.democlips MANIFEST`.") from err
        written.append(clip.path)
    return written


def main(argv: list[str] | None = None) -> int:
    import argparse

    from station.elicit.protocol import load_manifest

    p = argparse.ArgumentParser(description="Generate the synthetic demo clips of a stimuli manifest.")
    p.add_argument("manifest", nargs="?", default=str(Path(__file__).resolve().parents[2] / "stimuli" / "manifest.yaml"))
    args = p.parse_args(argv)
    for path in ensure_demo_clips(load_manifest(args.manifest)):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
