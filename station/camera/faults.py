"""Real-camera faults for the virtual D415, each reproducible from a seed, with the truth.

A real D415 does not start its clock at 0, loses frames per stream (librealsense #9022,
#10338), delivers some late, drifts colour against depth, switches its timestamp domain,
wraps its 32-bit microsecond clock, stalls while connected (#9417, #13365, #7252, #2168),
gets unplugged, and without kernel metadata support numbers frames with a host counter.
:class:`Faults` describes such a camera; :class:`FrameSchedule` turns it into the exact list of
frames the virtual camera pushes (what, when, with which number, timestamp and domain), and
:meth:`FrameSchedule.truth` says what a correct recorder must then find: the simulator's truth
the tests compare against.  The default ``Faults()`` is a clean camera.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from station.checks import StationError

STREAMS = ("color", "depth")
WRAP_US = 2 ** 32
#: Global time of a virtual camera starts here (ms since the epoch; a fixed value keeps runs reproducible).
GLOBAL_EPOCH_MS = 1.7e12


@dataclass(frozen=True)
class Faults:
    """What is wrong with the virtual camera; the default is a healthy D415."""

    seed: int = 0
    clock_start_ms: float = 0.0  # hardware clock at frame 0 (librealsense's test bag: 360713 ms)
    domain_switch_s: float | None = None  # hardware_clock -> global_time from this stream time on
    color_offset_ms: float = 0.0  # colour timestamps minus depth timestamps
    jitter_ms: float = 0.0  # Gaussian jitter (sd) on every timestamp
    drop_color: float = 0.0  # probability a colour frame never reaches the host
    drop_depth: float = 0.0
    late_color: float = 0.0  # probability a colour frame arrives ``late_ms`` after its time
    late_depth: float = 0.0
    late_ms: float = 9.5
    stall_s: float | None = None  # stream time at which frames stop arriving (camera connected)
    stall_for_s: float = 2.0
    unplug_s: float | None = None  # stream time at which the camera disappears
    no_metadata: bool = False  # frame numbers are host counters, timestamps host time

    def __post_init__(self) -> None:
        for name in ("drop_color", "drop_depth", "late_color", "late_depth"):
            value = getattr(self, name)
            if not 0.0 <= value < 1.0:
                raise StationError(f"fault {name} must be a probability in [0, 1), got {value!r}.")
        if self.jitter_ms < 0 or self.late_ms < 0 or self.stall_for_s < 0:
            raise StationError("fault jitter_ms, late_ms and stall_for_s must not be negative.")

    @property
    def clean(self) -> bool:
        return self == Faults(seed=self.seed)

    @classmethod
    def parse(cls, spec: str) -> "Faults":
        """From ``'drop_color=0.01,late_color=0.1,clock_start_ms=360713,no_metadata'`` (CLI --faults)."""
        fields = {f.name: f for f in dataclasses.fields(cls)}
        values: dict[str, object] = {}
        for item in filter(None, (part.strip() for part in spec.split(","))):
            key, _, raw = item.partition("=")
            key = key.strip()
            if key not in fields:
                raise StationError(f"unknown camera fault {key!r}; allowed: {', '.join(fields)}.")
            if fields[key].type in ("bool", bool):
                values[key] = raw.strip().lower() not in ("0", "false", "no", "off")
            elif key == "seed":
                values[key] = int(raw)
            else:
                try:
                    values[key] = float(raw)
                except ValueError:
                    raise StationError(f"camera fault {key} needs a number, got {raw!r}.") from None
        return cls(**values)


@dataclass(frozen=True)
class FramePush:
    """One frame the virtual camera hands to librealsense."""

    push_s: float  # when, on the stream's clock (seconds since frame 0)
    stream: str
    index: int  # which rendered frame (the capture instant)
    number: int  # frame number librealsense will report
    timestamp_ms: float
    domain: str
    metadata: bool


class FrameSchedule:
    """The frames a camera with :class:`Faults` delivers, in delivery order, and the truth."""

    def __init__(self, faults: Faults, fps: int, n_frames: int, first: int = 0):
        self.faults, self.fps, self.n_frames, self.first = faults, fps, n_frames, first
        rng = np.random.default_rng(faults.seed)
        period_ms = 1000.0 / fps
        self.delivered: dict[str, np.ndarray] = {}
        pushes: list[FramePush] = []
        t = np.arange(n_frames) / fps
        lost_by_stall = np.zeros(n_frames, bool)
        if faults.stall_s is not None:
            lost_by_stall = (t >= faults.stall_s) & (t < faults.stall_s + faults.stall_for_s)
        unplugged = t >= faults.unplug_s if faults.unplug_s is not None else np.zeros(n_frames, bool)
        for stream in STREAMS:
            drop = rng.random(n_frames) < getattr(faults, f"drop_{stream}")
            late = rng.random(n_frames) < getattr(faults, f"late_{stream}")
            jitter = rng.normal(0.0, faults.jitter_ms, n_frames) if faults.jitter_ms else np.zeros(n_frames)
            ok = ~drop & ~lost_by_stall & ~unplugged & (np.arange(n_frames) >= first)
            self.delivered[stream] = np.flatnonzero(ok)
            offset = faults.color_offset_ms if stream == "color" else 0.0
            host_counter = 0
            for i in np.flatnonzero(ok):
                nominal_ms = i * period_ms + offset + jitter[i]
                push_s = max(0.0, nominal_ms / 1000.0) + (faults.late_ms / 1000.0 if late[i] else 0.0)
                if faults.no_metadata:
                    number, domain = host_counter, "system_time"
                    timestamp = GLOBAL_EPOCH_MS + push_s * 1000.0  # host time at arrival
                    host_counter += 1
                elif faults.domain_switch_s is not None and t[i] >= faults.domain_switch_s:
                    number, domain, timestamp = int(i), "global_time", GLOBAL_EPOCH_MS + nominal_ms
                else:
                    number, domain = int(i), "hardware_clock"
                    us = int(round((faults.clock_start_ms + nominal_ms) * 1000.0)) % WRAP_US
                    timestamp = us / 1000.0
                pushes.append(FramePush(push_s, stream, int(i), number, timestamp, domain, not faults.no_metadata))
        # depth before colour at equal times, as the D415's stereo module reports first
        pushes.sort(key=lambda p: (p.push_s, p.stream != "depth", p.index))
        self.pushes = pushes

    def truth(self) -> dict[str, int]:
        """What a correct recorder finds: rows (instants both streams delivered) and, per stream,
        the frames between the first and last row not in the file (every cause together).

        A frame that arrives after a newer frame of its stream (``late_ms`` over a frame period)
        is lost too: a recorder cannot put it back in order without delaying every frame.
        Valid while colour/depth offset + jitter stay under half a frame.
        """
        usable = {s: np.setdiff1d(self.delivered[s], self.overtaken(s)) for s in STREAMS}
        both = np.intersect1d(usable["color"], usable["depth"])
        out = {"rows": int(both.size)}
        for stream in STREAMS:
            if both.size == 0:
                out[f"dropped_{stream}"] = 0
                continue
            if self.faults.no_metadata:  # host counters: only frames that reached the host are numbered
                d = self.delivered[stream]
                span = int(np.count_nonzero((d >= both[0]) & (d <= both[-1])))
            else:
                span = int(both[-1] - both[0] + 1)
            out[f"dropped_{stream}"] = span - int(both.size)
        out["dropped"] = max(out["dropped_color"], out["dropped_depth"])
        out["missing_before_host"] = {s: int(self.n_frames - self.first - self.delivered[s].size) for s in STREAMS}
        return out

    def overtaken(self, stream: str) -> np.ndarray:
        """Indices of ``stream`` that arrive after a frame with a higher index (out of order)."""
        newest, out = -1, []
        for push in self.pushes:
            if push.stream != stream:
                continue
            if push.index < newest:
                out.append(push.index)
            newest = max(newest, push.index)
        return np.asarray(out, dtype=int)

    def duration_s(self) -> float:
        return self.pushes[-1].push_s if self.pushes else 0.0

