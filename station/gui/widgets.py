"""The two drawing widgets both windows share: a frame view and the trial timeline.

The timeline draws the whole trial (or the zoomed part: mouse wheel) in lanes, top to bottom:
protocol spans (films, baselines, rests) and single markers; the score curve, drawn as the
per-pixel maximum so a one-frame peak in a 60,000-frame trial still shows; dropped frames as red
ticks; spotted candidates; saved movements (the selected one outlined) and the marks being set.
Clicking or dragging seeks; dragging an onset/apex/offset line moves that mark; dragging in the
movement lane marks onset (press) to offset (release) with the apex at the curve's peak between;
clicking a saved movement selects it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from PyQt6.QtCore import QPointF, QRectF, Qt, pyqtSignal
from PyQt6.QtGui import QColor, QFont, QImage, QPainter, QPainterPath, QPen
from PyQt6.QtWidgets import QHBoxLayout, QLabel, QMainWindow, QSizePolicy, QVBoxLayout, QWidget

SPAN_COLORS = {"clip": QColor(70, 110, 200), "film": QColor(70, 110, 200), "baseline": QColor(120, 120, 120),
               "rest": QColor(60, 140, 90), "instructions": QColor(140, 110, 60)}
CANDIDATE_COLORS = {"micro": QColor(255, 150, 30), "macro": QColor(200, 90, 200), "blink": QColor(90, 170, 230)}
MARK_COLORS = {"onset": QColor(80, 230, 120), "apex": QColor(255, 230, 60), "offset": QColor(240, 90, 90)}


def stacked(*widgets: QWidget, stretch_first: bool = True) -> QWidget:
    """A column of ``widgets`` (the frame views above the status line and the timeline)."""
    column = QWidget()
    layout = QVBoxLayout(column)
    for i, widget in enumerate(widgets):
        layout.addWidget(widget, 1 if (i == 0 and stretch_first) else 0)
    return column


def status_label() -> QLabel:
    """The rich-text status line under the frame views."""
    label = QLabel()
    label.setTextFormat(Qt.TextFormat.RichText)
    return label


def identity_html(ident: dict, name: str) -> str:
    """Participant, session and trial of a trial file, as the side panels head them."""
    return (f"<b>{ident['participant'] or 'participant ?'}</b> session {ident['session'] or '?'} "
            f"trial {ident['trial'] or '?'}<br>{name}")


def set_central(window: QMainWindow, left: QWidget, side: QWidget, help_html: str) -> QLabel:
    """Frames and timeline on the left, the side panel on the right; returns the hidden help overlay."""
    central = QWidget()
    row = QHBoxLayout(central)
    row.addWidget(left, 1)
    row.addWidget(side)
    window.setCentralWidget(central)
    overlay = QLabel(central)
    overlay.setTextFormat(Qt.TextFormat.RichText)
    overlay.setText(help_html)
    overlay.setStyleSheet("QLabel { background: rgba(0,0,0,215); color: white; padding: 14px; }")
    return overlay


def to_qimage(rgb: np.ndarray) -> QImage:
    """A QImage sharing an RGB uint8 array (the caller keeps the array alive)."""
    h, w = rgb.shape[:2]
    return QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888)


def from_qimage(image: QImage) -> np.ndarray:
    """An (H, W, 3) uint8 RGB copy of ``image`` (rows padded by Qt are cut)."""
    image = image.convertToFormat(QImage.Format.Format_RGB888)
    h, w, stride = image.height(), image.width(), image.bytesPerLine()
    bits = image.constBits()
    bits.setsize(h * stride)
    return np.frombuffer(bits, np.uint8).reshape(h, stride)[:, :3 * w].reshape(h, w, 3).copy()


def save_snapshot(widget: QWidget, path) -> None:
    """What ``widget`` shows, written through the one image writer (:func:`station.fileio.write_image`).

    Why not ``QPixmap.save``: it returns False and nothing else on a full disk or a missing
    folder, and the snapshot a lab asked for would silently not exist.
    """
    from station.fileio import write_image

    write_image(path, from_qimage(widget.grab().toImage()), "snapshot")


class FrameView(QWidget):
    """An image scaled to fit (aspect kept) with a caption line on top."""

    def __init__(self, title: str, parent=None):
        super().__init__(parent)
        self.title, self.caption = title, ""
        self._rgb: np.ndarray | None = None
        self.setMinimumSize(240, 160)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)

    def show_image(self, rgb: np.ndarray | None, caption: str = "") -> None:
        self._rgb = None if rgb is None else np.ascontiguousarray(rgb)
        self.caption = caption
        self.update()

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt name
        p = QPainter(self)
        p.fillRect(self.rect(), QColor(20, 20, 20))
        if self._rgb is not None:
            image = to_qimage(self._rgb)
            h, w = self._rgb.shape[:2]
            scale = min(self.width() / w, (self.height() - 18) / h)
            tw, th = w * scale, h * scale
            target = QRectF((self.width() - tw) / 2, 18 + (self.height() - 18 - th) / 2, tw, th)
            p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, scale < 1)
            p.drawImage(target, image)
        else:
            p.setPen(QColor(150, 150, 150))
            p.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, "no image")
        p.setPen(QColor(230, 230, 230))
        p.drawText(QRectF(4, 0, self.width() - 8, 18), Qt.AlignmentFlag.AlignVCenter,
                   f"{self.title}   {self.caption}")
        p.end()


@dataclass
class TimelineModel:
    """What the timeline draws, in frame indices (0 .. n-1)."""

    n: int
    fps: float = 60.0
    curve_index: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    curve: np.ndarray = field(default_factory=lambda: np.zeros(0))
    curve_label: str = ""
    spans: list = field(default_factory=list)  # media.Span
    ticks: list = field(default_factory=list)  # (index, label)
    drops: list = field(default_factory=list)  # (index, missing)
    candidates: list = field(default_factory=list)  # (onset, apex, offset, kind)
    movements: list = field(default_factory=list)  # (onset, apex, offset, label, sample)
    selected: int | None = None  # sample number
    marks: dict = field(default_factory=lambda: {"onset": None, "apex": None, "offset": None})
    range: tuple | None = None  # (start, end) export range of the viewer
    cursor: int = 0
    times: np.ndarray | None = None  # seconds of each frame on the device clock (the axis); None: index / fps


class Timeline(QWidget):
    """See the module docstring."""

    seek = pyqtSignal(int)
    mark_moved = pyqtSignal(str, int)
    range_marked = pyqtSignal(int, int, int)
    movement_clicked = pyqtSignal(int)

    LANES = {"spans": (0, 16), "curve": (16, 86), "candidates": (88, 100), "movements": (102, 120), "axis": (120, 134)}

    def __init__(self, model: TimelineModel, parent=None):
        super().__init__(parent)
        self.model = model
        self.view = (0, max(1, model.n - 1))
        self.setMinimumHeight(self.LANES["axis"][1] + 2)
        self.setMaximumHeight(self.LANES["axis"][1] + 2)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.setMouseTracking(False)
        self._drag: tuple[str, int] | None = None  # ("seek"|"mark:<name>"|"range", start index)

    # -- coordinates --------------------------------------------------------------------------
    def x_of(self, index: float) -> float:
        v0, v1 = self.view
        return (index - v0) / max(1e-9, v1 - v0) * (self.width() - 1)

    def index_at(self, x: float) -> int:
        v0, v1 = self.view
        return int(np.clip(round(v0 + x / max(1, self.width() - 1) * (v1 - v0)), 0, self.model.n - 1))

    def lane_at(self, y: float) -> str:
        for name, (top, bottom) in self.LANES.items():
            if top <= y < bottom:
                return name
        return "axis"

    def follow(self) -> None:
        """Keep the cursor in view when zoomed (page the view along)."""
        v0, v1 = self.view
        c = self.model.cursor
        if not v0 <= c <= v1:
            width = v1 - v0
            v0 = int(np.clip(c - width // 2, 0, max(0, self.model.n - 1 - width)))
            self.view = (v0, v0 + width)

    # -- painting -----------------------------------------------------------------------------
    def paintEvent(self, event) -> None:  # noqa: N802
        m, p = self.model, QPainter(self)
        w = self.width()
        p.fillRect(self.rect(), QColor(28, 28, 30))
        small = QFont(self.font())
        small.setPointSizeF(max(6.0, small.pointSizeF() * 0.8))
        p.setFont(small)
        top, bottom = self.LANES["spans"]
        for span in m.spans:
            x0, x1 = self.x_of(span.start), self.x_of(span.end)
            color = SPAN_COLORS.get(span.kind, QColor(100, 100, 140))
            p.fillRect(QRectF(x0, top + 1, max(1.0, x1 - x0), bottom - top - 2), color)
            p.setPen(QColor(240, 240, 240))
            p.drawText(QRectF(x0 + 2, top, max(1.0, x1 - x0), bottom - top), Qt.AlignmentFlag.AlignVCenter,
                       f"{span.kind} {span.label}".strip())
        p.setPen(QPen(QColor(200, 200, 255), 1))
        for index, label in m.ticks:
            x = self.x_of(index)
            p.drawLine(QPointF(x, top), QPointF(x, self.LANES["curve"][1]))
        self._paint_curve(p, w)
        ctop, cbottom = self.LANES["curve"]
        for index, missing in m.drops:  # between the frames before and after the gap, with its size
            x = self.x_of(index - 0.5)
            p.fillRect(QRectF(x - 1.5, ctop, 3.0, cbottom - ctop), QColor(255, 40, 40))
            p.setPen(QColor(255, 110, 110))
            p.drawText(QPointF(x + 3, cbottom - 4), f"{missing} dropped")
        top, bottom = self.LANES["candidates"]
        for onset, apex, offset, kind in m.candidates:
            x0, x1 = self.x_of(onset), self.x_of(offset)
            p.fillRect(QRectF(x0, top, max(2.0, x1 - x0), bottom - top), CANDIDATE_COLORS.get(kind, QColor(255, 150, 30)))
        top, bottom = self.LANES["movements"]
        for onset, apex, offset, label, sample in m.movements:
            x0, x1 = self.x_of(onset), self.x_of(offset)
            rect = QRectF(x0, top, max(3.0, x1 - x0), bottom - top)
            p.fillRect(rect, QColor(50, 190, 80))
            if sample == m.selected:
                p.setPen(QPen(QColor(255, 255, 255), 2))
                p.drawRect(rect)
            p.setPen(QColor(10, 10, 10))
            p.drawText(rect, Qt.AlignmentFlag.AlignCenter, label)
        if m.range is not None:
            x0, x1 = self.x_of(m.range[0]), self.x_of(m.range[1])
            p.fillRect(QRectF(x0, top, max(2.0, x1 - x0), bottom - top), QColor(90, 160, 255, 160))
        for name, index in m.marks.items():
            if index is not None:
                x = self.x_of(index)
                p.setPen(QPen(MARK_COLORS[name], 2))
                p.drawLine(QPointF(x, ctop), QPointF(x, bottom))
                p.drawText(QPointF(x + 2, ctop + 10), name[:2])
        self._paint_axis(p, w)
        x = self.x_of(m.cursor)
        p.setPen(QPen(QColor(255, 255, 255), 1))
        p.drawLine(QPointF(x, 0), QPointF(x, self.LANES["movements"][1]))
        p.end()

    def _paint_curve(self, p: QPainter, w: int) -> None:
        m = self.model
        top, bottom = self.LANES["curve"]
        p.fillRect(QRectF(0, top, w, bottom - top), QColor(36, 36, 40))
        if len(m.curve) == 0:
            p.setPen(QColor(140, 140, 140))
            p.drawText(QRectF(4, top, w, bottom - top), Qt.AlignmentFlag.AlignVCenter,
                       m.curve_label or "no score curve")
            return
        v0, v1 = self.view
        inside = (m.curve_index >= v0 - 1) & (m.curve_index <= v1 + 1)
        idx, val = m.curve_index[inside], np.nan_to_num(m.curve[inside])
        if len(idx) == 0:
            return
        cols = np.clip(((idx - v0) / max(1e-9, v1 - v0) * (w - 1)).astype(np.int64), 0, w - 1)
        peak = np.full(w, np.nan)
        np.fmax.at(peak, cols, val)
        finite = np.nan_to_num(m.curve, nan=0.0)
        scale = float(np.percentile(finite, 99.5)) or float(finite.max()) or 1.0
        path = QPainterPath()
        started = False
        for x in np.flatnonzero(~np.isnan(peak)):
            y = bottom - 2 - min(1.0, peak[x] / scale) * (bottom - top - 14)
            if started:
                path.lineTo(float(x), float(y))
            else:
                path.moveTo(float(x), float(y))
                started = True
        p.setPen(QPen(QColor(120, 220, 255), 1.3))
        p.drawPath(path)
        p.setPen(QColor(160, 160, 160))
        p.drawText(QRectF(4, top + 1, w, 12), Qt.AlignmentFlag.AlignLeft, m.curve_label)

    def _paint_axis(self, p: QPainter, w: int) -> None:
        """Seconds on the device clock: with dropped frames, index / fps would drift."""
        top, bottom = self.LANES["axis"]
        v0, v1 = self.view
        times = self.model.times if self.model.times is not None else np.arange(self.model.n) / self.model.fps
        t0, t1 = float(times[v0]), float(times[v1])
        step = next((s for s in (0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600) if (t1 - t0) / s <= 12), 1200)
        p.setPen(QColor(170, 170, 170))
        t = np.ceil(t0 / step) * step
        while t <= t1 + 1e-9:
            i = int(np.searchsorted(times, t - 1e-9))  # the first frame at or after t
            if i > 0 and times[i] - t > 1e-9:  # between two frames (a drop): place it proportionally
                i = i - 1 + (t - times[i - 1]) / (times[i] - times[i - 1])
            x = self.x_of(i)
            p.drawLine(QPointF(x, top), QPointF(x, top + 3))
            p.drawText(QPointF(x + 2, bottom - 2), f"{t:g} s")
            t += step

    # -- mouse --------------------------------------------------------------------------------
    def _near_mark(self, x: float) -> str | None:
        best, name = 5.0, None
        for key, index in self.model.marks.items():
            if index is not None and abs(self.x_of(index) - x) <= best:
                best, name = abs(self.x_of(index) - x), key
        return name

    def _movement_at(self, x: float) -> int | None:
        for onset, _, offset, _, sample in self.model.movements:
            if self.x_of(onset) - 2 <= x <= max(self.x_of(offset), self.x_of(onset) + 3) + 2:
                return sample
        return None

    def mousePressEvent(self, event) -> None:  # noqa: N802
        if event.button() != Qt.MouseButton.LeftButton:
            return
        x, y = event.position().x(), event.position().y()
        index = self.index_at(x)
        mark = self._near_mark(x)
        if mark and self.lane_at(y) in ("curve", "movements", "candidates"):
            self._drag = (f"mark:{mark}", index)
        elif self.lane_at(y) == "movements":
            self._drag = ("range", index)
        else:
            self._drag = ("seek", index)
            self.seek.emit(index)

    def mouseMoveEvent(self, event) -> None:  # noqa: N802
        if self._drag is None:
            return
        index = self.index_at(event.position().x())
        kind = self._drag[0]
        if kind == "seek":
            self.seek.emit(index)
        elif kind.startswith("mark:"):
            self.mark_moved.emit(kind[5:], index)
        self.update()

    def mouseReleaseEvent(self, event) -> None:  # noqa: N802
        if self._drag is None:
            return
        kind, start = self._drag
        self._drag = None
        x = event.position().x()
        index = self.index_at(x)
        if kind.startswith("mark:"):
            self.mark_moved.emit(kind[5:], index)
        elif kind == "range":
            if abs(self.x_of(index) - self.x_of(start)) < 3:  # a click, not a drag
                sample = self._movement_at(x)
                if sample is not None:
                    self.movement_clicked.emit(sample)
                else:
                    self.seek.emit(index)
                return
            onset, offset = sorted((start, index))
            self.range_marked.emit(onset, self.peak_between(onset, offset), offset)

    def peak_between(self, onset: int, offset: int) -> int:
        """Frame of the curve's maximum in [onset, offset] (the middle if there is no curve there)."""
        m = self.model
        inside = (m.curve_index >= onset) & (m.curve_index <= offset)
        if not inside.any():
            return (onset + offset) // 2
        return int(m.curve_index[inside][int(np.nanargmax(np.nan_to_num(m.curve[inside], nan=-np.inf)))])

    def wheelEvent(self, event) -> None:  # noqa: N802
        self.zoom(0.66 if event.angleDelta().y() > 0 else 1.5, self.index_at(event.position().x()))

    def zoom(self, factor: float, centre: int | None = None) -> None:
        """Show ``factor`` times as many frames, keeping ``centre`` (default: the cursor) in place."""
        v0, v1 = self.view
        width = v1 - v0
        centre = self.model.cursor if centre is None else centre
        new = int(np.clip(width * factor, 30, max(30, self.model.n - 1)))
        frac = (centre - v0) / max(1, width)
        start = int(np.clip(centre - frac * new, 0, max(0, self.model.n - 1 - new)))
        self.view = (start, min(self.model.n - 1, start + new)) if new < self.model.n - 1 else (0, self.model.n - 1)
        self.update()
