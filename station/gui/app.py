"""The one QApplication of a station window process, and what happens to errors in it."""

from __future__ import annotations

from PyQt6.QtWidgets import QApplication

from station.checks import StationError

_APP: list[QApplication] = []


def app() -> QApplication:
    """The process's QApplication, created once and kept alive (Qt aborts if it is collected).

    Without a display Qt would abort the process; say what to do instead.
    """
    import os

    if QApplication.instance() is None:
        if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY") or os.environ.get("QT_QPA_PLATFORM")):
            raise StationError("no display to open the window on (DISPLAY is not set). On a machine without a "
                               "screen run it under Xvfb: xvfb-run -a station ...; `station view --export` "
                               "needs no display.")
        _APP.append(QApplication(["station"]))
        _keep_running_on_errors()
    return QApplication.instance()


def _keep_running_on_errors() -> None:
    """An unexpected error in a Qt slot is printed and shown, not a process abort (PyQt's default):
    the coding is saved after every change, so the coder can go on or close the window."""
    import sys
    import traceback

    def hook(kind, value, tb):
        traceback.print_exception(kind, value, tb)
        for widget in QApplication.topLevelWidgets():
            if hasattr(widget, "message"):
                widget.message(f"unexpected error: {value} (details in the terminal; your coding is saved)", error=True)

    sys.excepthook = hook
