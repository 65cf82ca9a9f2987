"""First-day camera problems, said in one line with the fix (docs/record.md has the details).

librealsense reports everything as ``RuntimeError`` with the SDK's wording ("xioctl(VIDIOC_S_FMT)
failed, errno=16", "Couldn't resolve requests", "Requested extrinsics are not available!").
A lab needs to know what is wrong with *its* set-up and what to do; :func:`explain` turns the
SDK's message into that, and the other functions cover what librealsense does not report as
an error at all (USB 2 links, missing frame metadata).
"""

from __future__ import annotations

import platform

USB3_FIX = "plug the D415 into a USB 3 port (blue, or marked SS) with a USB 3 cable, directly or through a powered USB 3 hub"

UDEV_FIX = ("install librealsense's udev rules: sudo cp 99-realsense-libusb.rules /etc/udev/rules.d/ && "
            "sudo udevadm control --reload-rules && sudo udevadm trigger, then unplug and re-plug the camera")

_PATTERNS: list[tuple[tuple[str, ...], str]] = [
    (("busy", "errno=16", "resource temporarily unavailable"),
     "{camera} is busy: another program has it open (close realsense-viewer, another station, ROS nodes "
     "or a browser tab using the camera) and try again"),
    (("permission denied", "errno=13", "no permission", "failed to open usb interface", "access denied"),
     "{camera} cannot be opened: permission denied. On Linux the librealsense udev rules are probably "
     "missing; " + UDEV_FIX),
    (("requested extrinsics are not available",),
     "{camera} has no colour stream to pair with depth (a recording made without colour?); the station "
     "needs depth z16 + colour rgb8"),
    (("couldn't resolve requests", "failed to resolve the request", "no profiles"),
     "{camera} does not offer the requested depth + colour mode; check --width/--height/--fps "
     "(the DSME-3D mode is 848x480@60, which needs USB 3)"),
    (("no device connected", "device disconnected", "no such device", "errno=19"),
     "{camera} is not connected (or was unplugged): check the cable, " + USB3_FIX),
    (("frame didn't arrive", "frame didn't arrived"),
     "{camera} stopped sending frames; unplug and re-plug it, " + USB3_FIX),
    (("failed to set power state", "hwmon command"),
     "{camera} did not respond to a control command (power state); unplug and re-plug it, and close "
     "other programs using it (realsense-viewer)"),
]


def explain(err: BaseException | str, camera: str = "the RealSense camera") -> str:
    """One line saying what a librealsense error means for the lab and what to do."""
    text = str(err).strip()
    lowered = text.lower()
    for needles, message in _PATTERNS:
        if any(n in lowered for n in needles):
            return message.format(camera=camera) + f" (librealsense: {text.splitlines()[0][:160] if text else '?'})."
    first = text.splitlines()[0][:200] if text else type(err).__name__
    return f"{camera}: librealsense error: {first}. Unplug and re-plug the camera; if it persists see docs/record.md."


def usb_problem(usb_type: str | None, width: int, height: int, fps: int) -> str | None:
    """A sentence if the camera's USB link cannot carry the mode, else ``None``."""
    if not usb_type or not usb_type.strip().startswith("2"):
        return None
    return (f"The camera is connected over USB {usb_type}; on USB 2 a D415 has no {width}x{height}@{fps} "
            f"depth + colour mode (USB 2 carries at most 640x480@15 / 424x240@30). Fix: {USB3_FIX}.")


def metadata_fix(system: str | None = None) -> str:
    """What to do when frames arrive without firmware metadata, for this operating system."""
    system = system or platform.system()
    if system == "Windows":
        return ("run librealsense's scripts/realsense_metadata_win10.ps1 in an administrator PowerShell "
                "(it adds the MetadataBufferSizeInKB0 registry keys for the camera), then re-plug it")
    if system == "Darwin":
        return "use a librealsense build with the RSUSB backend (FORCE_RSUSB_BACKEND=ON), which reads metadata on macOS"
    return ("install the D4xx kernel metadata patch (librealsense scripts/patch-realsense-ubuntu-lts-hwe.sh, "
            "or the librealsense2-dkms package), or use a librealsense built with FORCE_RSUSB_BACKEND=ON")


def metadata_warning(system: str | None = None) -> str:
    return ("frames carry no firmware metadata: frame numbers are host counters and timestamps are host "
            "time, so frames lost before librealsense leave no gap and cannot be counted. Fix: "
            + metadata_fix(system) + ".")
