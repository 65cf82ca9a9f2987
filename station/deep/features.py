"""Network inputs computed from exported samples: numpy in, numpy out, no torch and no I/O.

Two inputs, one per deep baseline of the paper's section 4.3.3 (Table 12):

* :func:`ststnet_input` -- STSTNet (Liong et al. 2019) reads a single *motion image*: the
  optical flow from the onset frame to the apex frame (horizontal u, vertical v) and the
  optical strain derived from it, each resized to 28x28.  Flow is TV-L1 when this OpenCV
  build offers it (``cv2.optflow`` from opencv-contrib), else Farneback, which ships with
  every OpenCV build; :data:`FLOW_METHOD` says which one runs by default, and
  ``"tvl1-skimage"`` (slower) gives TV-L1 without opencv-contrib.
* :func:`sequence_input` -- the spatio-temporal 3D CNN reads the whole onset..offset clip,
  grayscale, as change since the onset frame, resampled to a fixed number of frames by
  linear interpolation (samples last anywhere from a few to dozens of frames) and resized
  to a fixed square size.
"""

from __future__ import annotations

import cv2
import numpy as np

from station.checks import StationError
from station.dataset import Sample

#: Side of STSTNet's input, as in the original network (28x28x3).
STSTNET_SIZE = 28


def _tvl1_factory():
    """The TV-L1 constructor of this OpenCV build, or None (it lives in opencv-contrib)."""
    optflow = getattr(cv2, "optflow", None)
    if optflow is not None and hasattr(optflow, "DualTVL1OpticalFlow_create"):
        return optflow.DualTVL1OpticalFlow_create
    if hasattr(cv2, "DualTVL1OpticalFlow_create"):  # OpenCV 3.x spelling
        return cv2.DualTVL1OpticalFlow_create
    return None


#: ``"tvl1"`` when OpenCV has TV-L1 (what STSTNet's authors used), else ``"farneback"``.
FLOW_METHOD = "tvl1" if _tvl1_factory() is not None else "farneback"

#: Every method :func:`optical_flow` knows.  ``"tvl1-skimage"`` is scikit-image's TV-L1: the
#: authors' algorithm without opencv-contrib, but ~100x slower than Farneback (a quarter of a
#: second per 96x96 pair), so it is a choice, not the default.
FLOW_METHODS = ("tvl1", "tvl1-skimage", "farneback")


def optical_flow(first: np.ndarray, second: np.ndarray, method: str = FLOW_METHOD) -> np.ndarray:
    """Dense flow (h, w, 2) float32 in pixels from gray ``first`` to gray ``second``.

    Channel 0 is horizontal (+x = right), channel 1 vertical (+y = down).
    """
    if first.shape != second.shape or first.ndim != 2:
        raise StationError(f"optical flow needs two gray frames of one shape, got {first.shape} and "
                           f"{second.shape}.")
    a = np.ascontiguousarray(first, dtype=np.uint8)
    b = np.ascontiguousarray(second, dtype=np.uint8)
    if method == "tvl1":
        factory = _tvl1_factory()
        if factory is None:
            raise StationError("flow method 'tvl1' needs opencv-contrib (cv2.optflow); "
                               "this OpenCV build offers only 'farneback'.")
        return factory().calc(a, b, None).astype(np.float32)
    if method == "tvl1-skimage":
        from skimage.registration import optical_flow_tvl1

        v, u = optical_flow_tvl1(a.astype(np.float32) / 255, b.astype(np.float32) / 255)
        return np.stack([u, v], axis=-1).astype(np.float32)
    if method == "farneback":
        # Small faces and sub-pixel micro-motion: fine pyramid, small window.
        return cv2.calcOpticalFlowFarneback(a, b, None, pyr_scale=0.5, levels=3, winsize=9,
                                            iterations=5, poly_n=5, poly_sigma=1.1,
                                            flags=0).astype(np.float32)
    raise StationError(f"flow method must be one of {', '.join(map(repr, FLOW_METHODS))}, got {method!r}.")


def optical_strain(flow: np.ndarray) -> np.ndarray:
    """Optical strain magnitude (h, w) of a flow field, as STSTNet's third stream.

    Strain is the symmetric part of the flow's Jacobian; its magnitude
    ``sqrt(u_x^2 + v_y^2 + 1/2 (u_y + v_x)^2)`` highlights where skin stretches, which rigid
    head motion (left after alignment) does not produce.
    """
    u, v = flow[..., 0], flow[..., 1]
    u_y, u_x = np.gradient(u)
    v_y, v_x = np.gradient(v)
    return np.sqrt(u_x ** 2 + v_y ** 2 + 0.5 * (u_y + v_x) ** 2).astype(np.float32)


def motion_image(onset: np.ndarray, apex: np.ndarray, size: int = STSTNET_SIZE,
                 method: str = FLOW_METHOD) -> np.ndarray:
    """(3, size, size) float32: u, v and optical strain from gray ``onset`` to ``apex``.

    Flow is computed at the crop's own resolution and then resized; u and v are rescaled to
    pixels of the resized image so that the three channels keep their geometric meaning.
    """
    flow = optical_flow(onset, apex, method)
    h, w = onset.shape
    small = cv2.resize(flow, (size, size), interpolation=cv2.INTER_AREA)
    small[..., 0] *= size / w
    small[..., 1] *= size / h
    strain = optical_strain(small)
    return np.stack([small[..., 0], small[..., 1], strain]).astype(np.float32)


def onset_apex_positions(sample: Sample) -> tuple[int, int]:
    """Positions of the onset and apex frames within the sample (from the index's frame numbers)."""
    if len(sample) == 0:
        raise StationError(f"sample {sample.record.subject}/{sample.record.sample} has no frames.")
    return sample.index_of(sample.record.onset), sample.index_of(sample.record.apex)


def ststnet_input(sample: Sample, size: int = STSTNET_SIZE, method: str = FLOW_METHOD) -> np.ndarray:
    """STSTNet's (3, 28, 28) motion image of one sample (onset -> apex)."""
    gray = sample.gray
    onset, apex = onset_apex_positions(sample)
    return motion_image(gray[onset], gray[apex], size, method)


def resample_frames(frames: np.ndarray, length: int) -> np.ndarray:
    """(length, h, w) float32: ``frames`` (T, h, w) linearly interpolated in time.

    Frame k of the output sits at position ``k (T-1)/(length-1)`` of the input and blends
    its two neighbours; a one-frame clip is repeated.
    """
    frames = np.asarray(frames, np.float32)
    if len(frames) == 0:
        raise StationError("cannot resample an empty clip (0 frames).")
    if len(frames) == 1 or length == 1:
        return np.repeat(frames[:1], length, axis=0)
    positions = np.linspace(0.0, len(frames) - 1, length)
    low = np.floor(positions).astype(int)
    high = np.minimum(low + 1, len(frames) - 1)
    weight = (positions - low)[:, None, None].astype(np.float32)
    return (1.0 - weight) * frames[low] + weight * frames[high]


def sequence_input(sample: Sample, frames: int = 16, size: int = 64) -> np.ndarray:
    """The 3D CNN's (frames, size, size) float32 clip: gray change since onset, time-normalised.

    Every frame has the onset frame subtracted, so the clip shows what moved rather than
    who it is: in raw frames each participant's face and lighting dwarf a one-pixel
    micro-movement, and with a few hundred samples a network never gets past them (on
    ``station.deep.synthetic`` samples with 1-pixel movements, accuracy on held-out
    subjects rose from chance, 33%, to 75-81% with this change).  The clip is then scaled
    to unit RMS, so the network sees the *shape* of the movement whatever its amplitude.
    """
    gray = sample.gray
    if len(gray) == 0:
        raise StationError(f"sample {sample.record.subject}/{sample.record.sample} has no frames.")
    onset, _ = onset_apex_positions(sample)
    resized = np.stack([cv2.resize(f, (size, size), interpolation=cv2.INTER_AREA) for f in gray])
    change = resized[onset:].astype(np.float32) - resized[onset].astype(np.float32)
    clip = resample_frames(change, frames)
    rms = float(np.sqrt(np.mean(clip ** 2)))
    return clip / rms if rms > 1e-6 else clip
