"""The trial viewer (``station view TRIAL.h5``): what a recording holds, frame by frame.

Colour and depth side by side with the frame's device number and clocks (device timestamp,
host arrival), the protocol markers as spans and ticks on the timeline and in a list (click to
jump), dropped frames as red ticks (``m`` / ``b`` step through markers and drops), the current
frame's point cloud in an open3d window (``c``), and a frame range (``[`` / ``]``) exported to
MP4 (``e``) beside the trial.  Frames are read on demand, as in the coding tool.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
from PyQt6.QtCore import Qt, QTimer
from PyQt6.QtGui import QKeySequence, QShortcut
from PyQt6.QtWidgets import QLabel, QListWidget, QListWidgetItem, QMainWindow, QSplitter, QVBoxLayout, QWidget

from station.checks import StationError
from station.gui.app import app
from station.gui.keys import RATE_TEXT, RATES, VIEWER_KEYS, key_html, parse_rate
from station.gui.media import TrialMedia
from station.gui.widgets import (FrameView, Timeline, TimelineModel, identity_html, save_snapshot, set_central, stacked,
                                  status_label)
from station.record import schema


class ViewerWindow(QMainWindow):
    """See the module docstring."""

    def __init__(self, trial: str | Path, rate: float | str = 1.0):
        super().__init__()
        self.media = TrialMedia(trial)
        self.rate = parse_rate(rate)
        self.index = 0
        self.playing = False
        self.range: list[int | None] = [None, None]
        self.cloud_process: subprocess.Popen | None = None
        self.last_export: dict | None = None
        self.marks = {"onset": None, "apex": None, "offset": None}  # the script player's interface
        spans, ticks = self.media.spans_and_events()
        self.events = sorted([(s.start, f"{s.kind}_start {s.label}") for s in spans]
                             + [(s.end, f"{s.kind}_end {s.label}") for s in spans] + ticks
                             + [(i, f"DROP {g} frame(s) missing") for i, g in self.media.drops()])
        self.model = TimelineModel(n=self.media.n, fps=self.media.fps, times=(self.media.stamps - self.media.stamps[0]) / 1000.0, spans=spans, ticks=ticks,
                                   drops=self.media.drops(), curve_label="dropped frames in red")
        self._build_ui()
        self.timer = QTimer(self)
        self.timer.timeout.connect(self._tick)
        self.refresh()
        self.setFocus()

    def _build_ui(self) -> None:
        ident = self.media.identity
        self.setWindowTitle(f"station view - {ident['participant'] or '?'} session {ident['session'] or '?'} "
                            f"{self.media.name}")
        self.color_view, self.depth_view = FrameView("colour"), FrameView("depth")
        views = QSplitter(Qt.Orientation.Horizontal)
        views.addWidget(self.color_view)
        views.addWidget(self.depth_view)
        self.status = status_label()
        self.timeline = Timeline(self.model)
        self.timeline.seek.connect(self.seek)
        left = stacked(views, self.status, self.timeline)
        side = QWidget()
        side.setMaximumWidth(340)
        sv = QVBoxLayout(side)
        drops = self.media.drops()
        sv.addWidget(QLabel(f"{identity_html(ident, self.media.name)}<br>{self.media.n} frames, "
                            f"{self.media.time_s(self.media.n - 1):.1f} s, "
                            f"<span style='color:#e33'>{sum(g for _, g in drops)} frame(s) dropped in "
                            f"{len(drops)} gap(s)</span>"))
        sv.addWidget(QLabel("markers and drops (click to jump)"))
        self.event_list = QListWidget()
        self.event_list.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        for index, text in self.events:
            item = QListWidgetItem(f"{self.media.number(index):>7}  {self.media.time_s(index):8.3f} s  {text}")
            item.setData(Qt.ItemDataRole.UserRole, index)
            if text.startswith("DROP"):
                item.setForeground(Qt.GlobalColor.red)
            self.event_list.addItem(item)
        self.event_list.itemClicked.connect(lambda item: self.seek(item.data(Qt.ItemDataRole.UserRole)))
        sv.addWidget(self.event_list, 1)
        self.message_label = QLabel("h or F1: keys")
        self.message_label.setWordWrap(True)
        sv.addWidget(self.message_label)
        self.help = set_central(self, left, side, "<h3>station view - keys</h3>" + key_html(VIEWER_KEYS))
        self.help.hide()
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        QShortcut(QKeySequence("Ctrl+Q"), self).activated.connect(self.close)
        self.resize(1400, 760)

    def resizeEvent(self, event) -> None:  # noqa: N802
        super().resizeEvent(event)
        self.help.setGeometry(self.centralWidget().rect().adjusted(30, 30, -30, -30))

    def message(self, text: str, error: bool = False) -> None:
        self.message_label.setText(text)
        self.message_label.setStyleSheet("color: #e33;" if error else "")

    def refresh(self) -> None:
        m, i = self.media, self.index
        row = m.table[i]
        number, stamp = schema.frame_numbers(row), schema.timestamps_ms(row)
        self.color_view.show_image(m.color(i), f"#{int(number)}  device {stamp:.3f} ms")
        depth = m.depth_rgb(i)
        d_number, d_stamp = schema.frame_numbers(row, schema.DEPTH), schema.timestamps_ms(row, schema.DEPTH)
        self.depth_view.show_image(depth, (f"#{int(d_number)}  device {d_stamp:.3f} ms"
                                           if depth is not None else "no depth stream"))
        gap = dict(m.drops()).get(i)
        self.status.setText(
            f"frame <b>{m.number(i)}</b> ({i + 1}/{m.n}) &nbsp; t = <b>{m.time_s(i):.3f} s</b> &nbsp; host "
            f"{m.host[i]:.3f} &nbsp; rate <b>{RATE_TEXT[self.rate]}</b> {'&#9654; playing' if self.playing else 'paused'}"
            + (f" &nbsp; <span style='color:#e33'><b>{gap} frame(s) dropped before this one</b></span>" if gap else "")
            + (f" &nbsp; export range {m.number(self.range[0]) if self.range[0] is not None else '-'}.."
               f"{m.number(self.range[1]) if self.range[1] is not None else '-'}" if any(r is not None for r in self.range) else ""))
        self.model.cursor = i
        self.model.range = (self.range[0] if self.range[0] is not None else i,
                            self.range[1] if self.range[1] is not None else i) if any(
            r is not None for r in self.range) else None
        self.timeline.follow()
        self.timeline.update()

    def seek(self, index: int) -> None:
        self.index = int(np.clip(index, 0, self.media.n - 1))
        self.refresh()

    def toggle_play(self) -> None:
        self.playing = not self.playing
        if self.playing:
            self._start_clock()
        else:
            self.timer.stop()
        self.refresh()

    def _start_clock(self) -> None:
        """Playback follows the device timestamps and the wall clock (frames skipped if decoding lags)."""
        import time

        self._play_t0, self._play_i0 = time.perf_counter(), self.index
        self.timer.start(max(5, round(500 / (self.media.fps * self.rate))))  # twice per frame: no beat

    def _tick(self) -> None:
        import time

        if self.index >= self.media.n - 1:
            self.toggle_play()
            return
        elapsed_ms = (time.perf_counter() - self._play_t0) * 1000 * self.rate
        target = int(np.searchsorted(self.media.stamps, self.media.stamps[self._play_i0] + elapsed_ms, side="right")) - 1
        if target > self.index:
            self.seek(target)

    def jump_event(self, direction: int) -> None:
        ahead = [i for i, _ in self.events if (i > self.index if direction > 0 else i < self.index)]
        if ahead:
            self.seek(ahead[0] if direction > 0 else ahead[-1])
        else:
            self.message("no more markers or drops this way")

    def show_cloud(self) -> None:
        """The point cloud of this frame in an open3d window (its own process)."""
        self.cloud_process = subprocess.Popen([sys.executable, "-m", "station.gui.cloud", str(self.media.path),
                                               str(self.index)])
        self.message(f"point cloud of frame {self.media.number(self.index)} opening in an open3d window")

    def export(self) -> None:
        from station.gui.export import export_mp4

        first = self.range[0] if self.range[0] is not None else 0
        last = self.range[1] if self.range[1] is not None else self.media.n - 1
        first, last = sorted((first, last))
        n = self.media.number
        out = self.media.path.with_name(f"{self.media.name.split('.')[0]}-{n(first)}-{n(last)}.mp4")
        k = 1
        while out.exists():
            k += 1
            out = out.with_name(f"{self.media.name.split('.')[0]}-{n(first)}-{n(last)}-{k}.mp4")
        try:
            self.last_export = export_mp4(self.media.path, out, n(first), n(last))
        except StationError as err:
            self.message(str(err), error=True)
            return
        self.message(f"exported {self.last_export['frames']} frames to {out}")

    def keyPressEvent(self, event) -> None:  # noqa: N802
        K, key, text = Qt.Key, event.key(), event.text()
        if event.modifiers() & Qt.KeyboardModifier.ControlModifier:
            return super().keyPressEvent(event)
        second = max(1, round(self.media.fps))
        simple = {K.Key_Right: 1, K.Key_Left: -1, K.Key_Up: 10, K.Key_Down: -10, K.Key_PageDown: second,
                  K.Key_PageUp: -second}
        chars = {"d": 1, "a": -1, "w": 10, "s": -10}
        if key in simple:
            self.seek(self.index + simple[key])
        elif key == K.Key_Home:
            self.seek(0)
        elif key == K.Key_End:
            self.seek(self.media.n - 1)
        elif key == K.Key_Space:
            self.toggle_play()
        elif key in (K.Key_F1,) or text == "h":
            self.help.setVisible(not self.help.isVisible())
            self.help.raise_()
        elif key == K.Key_Escape:
            self.help.hide()
        elif text in chars:
            self.seek(self.index + chars[text])
        elif text in RATES:
            self.rate = RATES[text]
            if self.playing:
                self._start_clock()
            self.refresh()
        elif text in ("m", "b"):
            self.jump_event(1 if text == "m" else -1)
        elif text == "c":
            self.show_cloud()
        elif text in ("[", "]"):
            self.range[0 if text == "[" else 1] = self.index
            self.refresh()
        elif text == "e":
            self.export()
        elif text == "v":
            self.depth_view.setVisible(not self.depth_view.isVisible())
        elif text in ("=", "-"):
            self.timeline.zoom(0.5 if text == "=" else 2.0)
        else:
            super().keyPressEvent(event)

    def closeEvent(self, event) -> None:  # noqa: N802
        self.timer.stop()
        self.media.close()
        super().closeEvent(event)


def run_viewer(trial, rate="1", script=None, snapshot=None) -> None:
    from station.gui.script import play, read_tokens

    tokens = read_tokens(script) if script else None
    parse_rate(rate)
    TrialMedia(trial).close()  # a missing or damaged file is reported before any window opens
    application = app()
    window = ViewerWindow(trial, rate=rate)
    window.show()
    failed: list[StationError] = []  # raised once Qt's loop is left (a raise in a slot aborts)
    if tokens is not None:
        def scripted():
            play(window, tokens)
            if window.isVisible():
                if snapshot:
                    try:
                        save_snapshot(window, snapshot)
                    except StationError as err:
                        failed.append(err)
                window.close()
        QTimer.singleShot(200, scripted)
    application.exec()
    if failed:
        raise failed[0]
