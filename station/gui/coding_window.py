"""The coding tool (``station code``): mark onset, apex, offset and AUs of each movement in a trial.

What a FACS coder expects from ELAN or Pupil Player, on a trial of any length:

* colour and depth side by side, frame by frame or played at x1 .. x1/16 (the rate is shown);
* the whole trial on a timeline: spotting score curve, spotted candidates, film / baseline
  markers, dropped frames, saved movements; click or drag to seek, drag the onset / apex /
  offset lines, drag in the movement lane to mark a movement;
* zoom on the face (box from the 68 landmarks), the difference image against the onset frame;
* AUs typed in FACS notation and checked as they are typed, right under the field;
* saved movements listed, selectable, editable, deletable, with undo (Ctrl+Z);
* every change saved at once (atomic rewrite of the coder's CSV), and the next session opens
  at the frame where the coder left.

Movements are stored by trial identity (:mod:`station.process.coding`), so one coder file can
hold every participant's ``trial-01-<clip>.h5`` without mixing them.  Frames are read on demand
(:class:`station.gui.media.TrialMedia`), so a 1,000 s trial opens as fast as a 10 s one.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PyQt6.QtCore import QEvent, Qt, QTimer
from PyQt6.QtGui import QKeySequence, QShortcut
from PyQt6.QtWidgets import (QHBoxLayout, QLabel, QLineEdit, QListWidget, QListWidgetItem,
                             QMainWindow, QPushButton, QSplitter, QVBoxLayout, QWidget)

from station.checks import StationError
from station.gui.app import app
from station.gui.candidates import candidates_file, load_candidates
from station.gui.curves import MotionCurve, SpotThread
from station.gui.keys import CODING_KEYS, RATE_TEXT, RATES, key_html, parse_rate
from station.gui.media import TrialMedia
from station.gui.widgets import (FrameView, Timeline, TimelineModel, identity_html, save_snapshot, set_central, stacked,
                                  status_label)
from station.process.coding import CodingStore
from station.vocab.facs import format_aus, parse_aus

OK_STYLE = "QLineEdit { border: 2px solid #3c3; }"
BAD_STYLE = "QLineEdit { border: 2px solid #e33; background: #fee; }"

class CodingWindow(QMainWindow):
    """See the module docstring."""

    def __init__(self, trial: str | Path, coder: str, out: str | Path, candidates: str | Path | None = None,
                 rate: float | str = 0.25, position: tuple[int, int] = (0, 1)):
        super().__init__()
        self.position = position  # (this trial, how many) when coding a list of trials
        self.go = 0  # set by . / , : the next / previous trial of the list
        self.media = TrialMedia(trial)
        self.identity = self.media.identity
        out = Path(out)
        self.store = CodingStore(out, coder)
        in_own_folder = out.resolve().parent == (self.media.path.resolve().parent / "codings")
        adopted = self.store.adopt_legacy(self.identity, unambiguous=in_own_folder)
        legacy = len(self.store.legacy_rows(self.identity))
        self.candidates = load_candidates(candidates, self.media)
        self.candidates_path = candidates_file(candidates, self.media)
        self.rate = parse_rate(rate)
        self.playing = False
        self.zoom = self.diff = False
        self.marks: dict[str, int | None] = {"onset": None, "apex": None, "offset": None}
        self.selected: int | None = None
        resumed = self.store.cursor(self.identity)
        self.index = int(np.clip(resumed or 0, 0, self.media.n - 1))
        self._saved_cursor = self.index
        self._build_model()
        self._build_ui()
        self.timer = QTimer(self)
        self.timer.timeout.connect(self._tick)
        self.cursor_timer = QTimer(self)
        self.cursor_timer.timeout.connect(self._save_cursor)
        self.cursor_timer.start(2000)
        self.curve_timer = QTimer(self)
        self.curve_thread: MotionCurve | None = None
        self.spot_thread: SpotThread | None = None
        self.spot_timer = QTimer(self)
        self.spot_timer.timeout.connect(self._spot_progress)
        self._start_curve()
        first = (f"resumed at frame {self.media.number(self.index)}" if resumed is not None
                 else "h or F1: keys")
        if adopted:
            first += f"; {adopted} movement(s) of an older coding file linked to this trial"
        if legacy:
            first += (f"; {legacy} row(s) name {self.media.name} without a trial id and are not shown: the coding "
                      "file is not in this trial's folder, so they may belong to another participant")
        self.message(first)
        self.refresh()
        self.setFocus()  # keys go to the frames, not to the first text field

    def showEvent(self, event) -> None:  # noqa: N802
        super().showEvent(event)
        if not isinstance(self.focusWidget(), QLineEdit):
            self.setFocus()

    # -- model and layout --------------------------------------------------------------------
    def _build_model(self) -> None:
        spans, ticks = self.media.spans_and_events()
        idx = self.media.index_of
        self.model = TimelineModel(n=self.media.n, fps=self.media.fps, times=(self.media.stamps - self.media.stamps[0]) / 1000.0, spans=spans, ticks=ticks,
                                   drops=self.media.drops(),
                                   candidates=[(idx(a), idx(b), idx(c), k) for a, b, c, k, _ in self.candidates])

    def _build_ui(self) -> None:
        ident = self.identity
        k, n = self.position
        self.setWindowTitle(f"station code - {ident['participant'] or '?'} session {ident['session'] or '?'} "
                            f"{self.media.name} - coder {self.store.coder}" + (f" - trial {k + 1} of {n}" if n > 1 else ""))
        self.color_view = FrameView("colour")
        self.depth_view = FrameView("depth")
        views = QSplitter(Qt.Orientation.Horizontal)
        views.addWidget(self.color_view)
        views.addWidget(self.depth_view)
        self.status = status_label()
        self.timeline = Timeline(self.model)
        self.timeline.seek.connect(self.seek)
        self.timeline.mark_moved.connect(self._mark_dragged)
        self.timeline.range_marked.connect(self._range_dragged)
        self.timeline.movement_clicked.connect(self.select)
        left = stacked(views, self.status, self.timeline)

        side = QWidget()
        side.setMinimumWidth(300)
        side.setMaximumWidth(380)
        sv = QVBoxLayout(side)
        self.identity_label = QLabel(
            f"{identity_html(ident, self.media.name)}<br><small>id {ident['trial_id'] or '(none)'}</small>")
        self.identity_label.setWordWrap(True)
        sv.addWidget(self.identity_label)
        self.marks_label = QLabel()
        sv.addWidget(self.marks_label)
        sv.addWidget(QLabel("AUs (FACS, e.g. 1+2, R12+25, L14, 4+7C)"))
        self.aus_edit = QLineEdit()
        self.aus_edit.setPlaceholderText("u to type; Enter saves")
        self.aus_edit.textChanged.connect(self._check_aus)
        sv.addWidget(self.aus_edit)
        self.aus_feedback = QLabel("")
        self.aus_feedback.setWordWrap(True)
        sv.addWidget(self.aus_feedback)
        sv.addWidget(QLabel("note"))
        self.notes_edit = QLineEdit()
        self.notes_edit.setPlaceholderText("t to type; Enter saves")
        sv.addWidget(self.notes_edit)
        for edit in (self.aus_edit, self.notes_edit):
            edit.installEventFilter(self)
        buttons = QHBoxLayout()
        for text, slot in (("Save (Enter)", self.save_movement), ("Delete (x)", self.delete_selected),
                           ("Undo (Ctrl+Z)", self.undo)):
            b = QPushButton(text)
            b.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            b.clicked.connect(slot)
            buttons.addWidget(b)
        sv.addLayout(buttons)
        sv.addWidget(QLabel("saved movements ([ and ] select, click to edit)"))
        self.movement_list = QListWidget()
        self.movement_list.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.movement_list.itemClicked.connect(lambda item: self.select(item.data(Qt.ItemDataRole.UserRole)))
        sv.addWidget(self.movement_list, 1)
        self.message_label = QLabel()
        self.message_label.setWordWrap(True)
        sv.addWidget(self.message_label)

        self.help = set_central(self, left, side, "<h3>station code - keys</h3>" + key_html(CODING_KEYS)
                                + "<p>Mouse: click/drag the timeline to seek; drag an onset/apex/offset line to "
                                "move it; drag in the lowest lane to mark onset..offset (apex at the curve's peak); "
                                "click a saved movement to edit it; wheel zooms the timeline.</p>")
        self.help.setWordWrap(True)
        self.help.hide()
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        for seq, slot in (("Ctrl+Z", self.undo), ("Ctrl+Q", self.close)):
            shortcut = QShortcut(QKeySequence(seq), self)
            shortcut.setContext(Qt.ShortcutContext.WindowShortcut)
            shortcut.activated.connect(slot)
        self.resize(1400, 820)

    def resizeEvent(self, event) -> None:  # noqa: N802
        super().resizeEvent(event)
        self.help.setGeometry(self.centralWidget().rect().adjusted(30, 30, -30, -30))

    # -- the curve -----------------------------------------------------------------------------
    def _start_curve(self) -> None:
        stored = self.media.stored_score(self.candidates_path)
        if stored is not None:
            numbers, score, label = stored
            self.model.curve_index = np.array([self.media.index_of(int(v)) for v in numbers], np.int64)
            self.model.curve, self.model.curve_label = score, label
            return
        self.curve_thread = MotionCurve(self.media.path, self.media.n)
        self.model.curve_index = self.curve_thread.index
        self.model.curve = self.curve_thread.values
        self.model.curve_label = "motion (frame difference; run `station spot` for the spotting score)"
        self.curve_thread.start()
        self.curve_timer.timeout.connect(self._curve_progress)
        self.curve_timer.start(300)

    def _curve_progress(self) -> None:
        thread = self.curve_thread
        if thread is None:
            return
        self.timeline.update()
        if not thread.is_alive():
            self.curve_timer.stop()

    def run_spotter(self) -> None:
        if self.spot_thread is not None and self.spot_thread.is_alive():
            self.message(f"spotting: {self.spot_thread.frames_read} of {self.media.n} frames read")
            return
        self.spot_thread = SpotThread(self.media.path)
        self.spot_thread.start()
        self.spot_timer.start(500)
        self.message("spotting this trial in the background; the curve and candidates follow")

    def _spot_progress(self) -> None:
        thread = self.spot_thread
        if thread is None or thread.is_alive():
            if thread is not None:
                self.message(f"spotting: {min(thread.frames_read, self.media.n)} of {self.media.n} frames read")
            return
        self.spot_timer.stop()
        if thread.result is None:
            self.message(f"spotting failed: {thread.error}", error=True)
            return
        r, idx = thread.result, self.media.index_of
        if self.curve_thread is not None:
            self.curve_thread.stop = True
        self.model.curve_index = np.array([idx(int(v)) for v in r.frame_numbers], np.int64)
        self.model.curve = np.asarray(r.score, np.float64)
        self.model.curve_label = "spotting score (computed now; `station spot` stores it)"
        self.candidates = sorted((c.onset, c.apex, c.offset, c.kind, c.score) for c in r.candidates)
        self.model.candidates = [(idx(a), idx(b), idx(c), k) for a, b, c, k, _ in self.candidates]
        self.message(f"spotted {len(self.candidates)} candidate(s); n / p jump between them")
        self.refresh()

    # -- state -> screen -----------------------------------------------------------------------
    def message(self, text: str, error: bool = False) -> None:
        self.message_label.setText(text)
        self.message_label.setStyleSheet("color: #e33;" if error else "")

    def movements(self):
        return self.store.for_trial(self.identity)

    def refresh(self) -> None:
        """Redraw frame views, status, side panel and timeline from the state."""
        media, i = self.media, self.index
        onset = self._reference()
        if self.diff and onset is not None:
            image = media.difference(i, onset)
            caption = f"difference vs onset frame {media.number(onset)} (x4)"
        else:
            image = media.color(i)
            caption = "difference: mark an onset first (o)" if self.diff else ""
        depth = media.depth_rgb(i) if self.depth_view.isVisible() or not self.isVisible() else None
        if self.zoom:
            box = media.face_box(i)
            if box is None:
                caption += "  no face found for the zoom"
            else:
                x0, y0, x1, y1 = box
                image = image[y0:y1, x0:x1]
                caption += "  face zoom"
                dbox = media.depth_face_box(i) if depth is not None else None
                if dbox is not None:
                    depth = depth[dbox[1]:dbox[3], dbox[0]:dbox[2]]
        self.color_view.show_image(image, caption)
        self.depth_view.show_image(depth, "0.3-1.5 m, near = red" if depth is not None else "no depth stream")
        state = "&#9654; playing" if self.playing else "paused"
        self.status.setText(
            f"frame <b>{media.number(i)}</b> ({i + 1}/{media.n}) &nbsp; t = <b>{media.time_s(i):.3f} s</b> &nbsp; "
            f"rate <b>{RATE_TEXT[self.rate]}</b> {state} &nbsp; {len(self.candidates)} candidate(s), "
            f"{len(self.model.drops)} drop(s)")
        marks = "  ".join(f"{k} <b>{media.number(v) if v is not None else '-'}</b>" for k, v in self.marks.items())
        editing = f"editing movement {self.selected}" if self.selected is not None else "new movement"
        self.marks_label.setText(f"{editing}<br>{marks}")
        self._fill_list()
        self.model.cursor = i
        self.model.marks = dict(self.marks)
        self.model.selected = self.selected
        idx = media.index_of
        self.model.movements = [(idx(a.onset), idx(a.apex), idx(a.offset), a.aus or "-", a.sample)
                                for a in self.movements()]
        self.timeline.follow()
        self.timeline.update()

    def _fill_list(self) -> None:
        """Rebuild the list only when the movements or the selection changed (not on every frame)."""
        movements = self.movements()
        signature = (tuple((a.sample, a.onset, a.apex, a.offset, a.aus, a.notes) for a in movements), self.selected)
        if signature == getattr(self, "_list_signature", None):
            return
        self._list_signature = signature
        self.movement_list.clear()
        for a in movements:
            item = QListWidgetItem(f"{a.sample:>3}  {a.onset}/{a.apex}/{a.offset}  AU {a.aus or '-'}"
                                   + (f"  - {a.notes}" if a.notes else ""))
            item.setData(Qt.ItemDataRole.UserRole, a.sample)
            self.movement_list.addItem(item)
            if a.sample == self.selected:
                item.setSelected(True)

    def _reference(self) -> int | None:
        return self.marks["onset"]

    def _check_aus(self, text: str) -> bool:
        try:
            units = parse_aus(text, "AUs")
        except StationError as err:
            self.aus_edit.setStyleSheet(BAD_STYLE)
            self.aus_feedback.setText(str(err).replace("AUs: ", ""))
            self.aus_feedback.setStyleSheet("color: #e33;")
            return False
        self.aus_edit.setStyleSheet(OK_STYLE if text.strip() else "")
        self.aus_feedback.setText(f"= {format_aus(units)}" if units else "")
        self.aus_feedback.setStyleSheet("color: #3a3;")
        return True

    # -- actions --------------------------------------------------------------------------------
    def seek(self, index: int) -> None:
        self.index = int(np.clip(index, 0, self.media.n - 1))
        self.refresh()

    def step(self, delta: int) -> None:
        self.seek(self.index + delta)

    def set_mark(self, name: str, index: int | None = None) -> None:
        self.marks[name] = self.index if index is None else int(index)
        self.message(f"{name} = frame {self.media.number(self.marks[name])}")
        self.refresh()

    def _mark_dragged(self, name: str, index: int) -> None:
        self.marks[name] = int(index)
        self.index = int(index)
        self.refresh()

    def _range_dragged(self, onset: int, apex: int, offset: int) -> None:
        self.marks = {"onset": onset, "apex": apex, "offset": offset}
        self.index = apex
        n = self.media.number
        self.message(f"marked {n(onset)}/{n(apex)}/{n(offset)} (apex at the curve's peak); type the AUs (u), Enter saves")
        self.refresh()

    def set_rate(self, rate: float) -> None:
        self.rate = rate
        if self.playing:
            self._start_clock()
        self.refresh()

    def _start_clock(self) -> None:
        """Playback follows the wall clock: at x1 on a slow machine frames are skipped, so the
        rate shown is the rate played (the device timestamps, not the decode speed, set time)."""
        import time

        self._play_t0, self._play_i0 = time.perf_counter(), self.index
        self.timer.start(max(5, round(500 / (self.media.fps * self.rate))))  # twice per frame: no beat

    def toggle_play(self) -> None:
        self.playing = not self.playing
        if self.playing:
            self._start_clock()
        else:
            self.timer.stop()
            self._save_cursor()
        self.refresh()

    def _tick(self) -> None:
        import time

        if self.index >= self.media.n - 1:
            self.toggle_play()
            return
        elapsed_ms = (time.perf_counter() - self._play_t0) * 1000 * self.rate
        start_ms = self.media.stamps[self._play_i0]
        target = int(np.searchsorted(self.media.stamps, start_ms + elapsed_ms, side="right")) - 1
        if target > self.index:
            self.seek(target)

    def jump_candidate(self, direction: int) -> None:
        if not self.candidates:
            self.message("no spotted candidates (run `station spot`, or pass --candidates)")
            return
        here = self.media.number(self.index)
        ahead = [c for c in self.candidates if (c[0] > here if direction > 0 else c[0] < here)]
        if not ahead:
            self.message("no more candidates this way")
            return
        c = ahead[0] if direction > 0 else ahead[-1]
        self.seek(self.media.index_of(c[0]))
        self.message(f"candidate {c[3]} {c[0]}-{c[2]} (score {c[4]:.1f}); c takes its marks")

    def take_candidate(self) -> None:
        here = self.media.number(self.index)
        for onset, apex, offset, kind, _ in self.candidates:
            if onset <= here <= offset:
                idx = self.media.index_of
                self.marks = {"onset": idx(onset), "apex": idx(apex), "offset": idx(offset)}
                self.message(f"marks taken from candidate {onset}-{offset}")
                self.refresh()
                return
        self.message("the cursor is not inside a candidate")

    def select(self, sample: int | None) -> None:
        """Load a saved movement into the editor (or clear the editor with None)."""
        self.selected = sample
        if sample is None:
            self.marks = {"onset": None, "apex": None, "offset": None}
            self.aus_edit.setText("")
            self.notes_edit.setText("")
            self.refresh()
            return
        a = self.store.get(self.identity, sample)
        idx = self.media.index_of
        self.marks = {"onset": idx(a.onset), "apex": idx(a.apex), "offset": idx(a.offset)}
        self.aus_edit.setText(a.aus)
        self.notes_edit.setText(a.notes)
        self.index = idx(a.onset)
        self.message(f"editing movement {sample}: change marks, AUs or note, Enter saves; x deletes; Esc leaves")
        self.refresh()

    def select_next(self, direction: int) -> None:
        samples = [a.sample for a in self.movements()]
        if not samples:
            self.message("no saved movements yet")
            return
        if self.selected not in samples:
            self.select(samples[0] if direction > 0 else samples[-1])
        else:
            k = samples.index(self.selected) + direction
            self.select(samples[int(np.clip(k, 0, len(samples) - 1))])

    def save_movement(self) -> None:
        if not self._check_aus(self.aus_edit.text()):
            self.message("AUs not in FACS notation: fix them (see under the field), then Enter", error=True)
            self.aus_edit.setFocus()
            return
        missing = [k for k, v in self.marks.items() if v is None]
        if missing:
            self.message(f"mark {', '.join(missing)} first (o / k / f, or drag on the timeline)", error=True)
            self.setFocus()
            return
        n = self.media.number
        frames = {k: n(v) for k, v in self.marks.items()}
        aus, notes = self.aus_edit.text().strip(), self.notes_edit.text().strip()
        try:
            if self.selected is not None:
                ann = self.store.update(self.identity, self.selected, aus=aus, notes=notes, **frames)
                text = f"movement {ann.sample} changed: {ann.onset}/{ann.apex}/{ann.offset} AU {ann.aus or '-'}"
            else:
                ann = self.store.add(self.identity, frames["onset"], frames["apex"], frames["offset"], aus, notes)
                text = f"saved movement {ann.sample}: {ann.onset}/{ann.apex}/{ann.offset} AU {ann.aus or '-'}"
        except StationError as err:
            self.message(str(err), error=True)
            return
        self.selected = None
        self.marks = {"onset": None, "apex": None, "offset": None}
        self.aus_edit.setText("")
        self.notes_edit.setText("")
        self.setFocus()
        self.message(text + " (saved)")
        self.refresh()

    def delete_selected(self) -> None:
        if self.selected is None:
            self.message("select a movement first ([ / ] or click it)", error=True)
            return
        sample = self.selected
        try:
            self.store.remove(self.identity, sample)
        except StationError as err:
            self.message(str(err), error=True)
            return
        self.select(None)
        self.message(f"deleted movement {sample} (Ctrl+Z undoes)")

    def undo(self) -> None:
        try:
            undone = self.store.undo()
        except StationError as err:
            self.message(str(err), error=True)
            return
        if undone:
            if self.selected is not None and self.selected not in [a.sample for a in self.movements()]:
                self.selected = None
            self.message("undone (saved)")
        else:
            self.message("nothing to undo")
        self.refresh()

    def move_trial(self, step: int) -> None:
        """Close this trial (everything is saved) and open the next / previous one of the list."""
        k, n = self.position
        if not 0 <= k + step < n:
            self.message("no more trials this way" if n > 1 else "one trial was given (station code FOLDER codes a list)")
            return
        self.go = step
        self.close()

    def toggle_help(self) -> None:
        self.help.setVisible(not self.help.isVisible())
        self.help.raise_()

    # -- keys ------------------------------------------------------------------------------------
    def eventFilter(self, obj, event) -> bool:  # noqa: N802 - Esc leaves a text field, Enter saves
        if event.type() == QEvent.Type.KeyPress and event.key() == Qt.Key.Key_Escape:
            self.setFocus()
            return True
        if event.type() == QEvent.Type.KeyPress and event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            self.save_movement()  # consumed here: QLineEdit would pass the key on to the window too
            return True
        return super().eventFilter(obj, event)

    def event(self, event) -> bool:
        if event.type() == QEvent.Type.KeyPress and event.key() == Qt.Key.Key_Tab:
            self.aus_edit.setFocus()  # Tab is Qt's focus key: take it before focus navigation does
            return True
        return super().event(event)

    def keyPressEvent(self, event) -> None:  # noqa: N802
        key, text = event.key(), event.text()
        K = Qt.Key
        ctrl = bool(event.modifiers() & Qt.KeyboardModifier.ControlModifier)
        if ctrl:
            return super().keyPressEvent(event)
        second = max(1, round(self.media.fps))
        simple = {K.Key_Right: lambda: self.step(1), K.Key_Left: lambda: self.step(-1),
                  K.Key_Up: lambda: self.step(10), K.Key_Down: lambda: self.step(-10),
                  K.Key_PageDown: lambda: self.step(second), K.Key_PageUp: lambda: self.step(-second),
                  K.Key_Home: lambda: self.seek(0), K.Key_End: lambda: self.seek(self.media.n - 1),
                  K.Key_Space: self.toggle_play, K.Key_Return: self.save_movement, K.Key_Enter: self.save_movement,
                  K.Key_Delete: self.delete_selected, K.Key_F1: self.toggle_help,
                  K.Key_Escape: lambda: self.select(None) if not self.help.isVisible() else self.help.hide()}
        chars = {"d": lambda: self.step(1), "a": lambda: self.step(-1), "w": lambda: self.step(10),
                 "s": lambda: self.step(-10), "o": lambda: self.set_mark("onset"), "k": lambda: self.set_mark("apex"),
                 "f": lambda: self.set_mark("offset"), "n": lambda: self.jump_candidate(1),
                 "p": lambda: self.jump_candidate(-1), "c": self.take_candidate, "u": self.aus_edit.setFocus,
                 "t": self.notes_edit.setFocus, "]": lambda: self.select_next(1), "[": lambda: self.select_next(-1),
                 "x": self.delete_selected, "z": self._toggle("zoom"), "g": self._toggle("diff"),
                 "v": self._toggle_depth, "h": self.toggle_help, "r": self.run_spotter,
                 "=": lambda: self.timeline.zoom(0.5), "-": lambda: self.timeline.zoom(2.0),
                 ".": lambda: self.move_trial(1), ",": lambda: self.move_trial(-1)}
        if key in simple:
            simple[key]()
        elif text.lower() in chars and text:
            chars[text.lower()]()
        elif text in RATES:
            self.set_rate(RATES[text])
        else:
            super().keyPressEvent(event)

    def _toggle(self, name: str):
        def flip():
            setattr(self, name, not getattr(self, name))
            self.refresh()
        return flip

    def _toggle_depth(self) -> None:
        self.depth_view.setVisible(not self.depth_view.isVisible())
        self.refresh()

    # -- leaving ---------------------------------------------------------------------------------
    def _save_cursor(self) -> None:
        """Where the coder is (for resuming); a disk that refuses it costs only the resume point."""
        if self.index != self._saved_cursor:
            try:
                self.store.set_cursor(self.identity, self.index)
            except OSError as err:
                self.message(f"cannot save the position for resuming: {err.strerror or err}", error=True)
                return
            self._saved_cursor = self.index

    def closeEvent(self, event) -> None:  # noqa: N802
        self.timer.stop()
        self.cursor_timer.stop()
        self.curve_timer.stop()
        self.spot_timer.stop()
        self._saved_cursor = -1
        self._save_cursor()
        if self.curve_thread is not None:
            self.curve_thread.stop = True
            self.curve_thread.join(timeout=5)
        self.media.close()
        super().closeEvent(event)


def run_coding(trials, coder: str, out=None, candidates=None, rate="1/4", script=None, snapshot=None) -> list[dict]:
    """Code one trial after another (``.`` / ``,`` move on) until the coder closes the window (or
    the script, played into the first window, ends); returns one summary per trial opened.

    ``out`` is the coder's CSV; by default ``codings/<coder>.csv`` in each trial's own folder.
    """
    from station.gui.script import play, read_tokens

    trials = [Path(t) for t in (trials if isinstance(trials, (list, tuple)) else [trials])]
    tokens = read_tokens(script) if script else None
    parse_rate(rate)
    for trial in trials:  # a missing or damaged file is reported before any window opens
        TrialMedia(trial).close()
    application = app()
    summaries: list[dict] = []
    failed: list[StationError] = []  # raised once Qt's loop is left (a raise in a slot aborts)
    k = 0
    while 0 <= k < len(trials):
        trial = trials[k]
        target = Path(out) if out else trial.parent / "codings" / f"{coder}.csv"
        window = CodingWindow(trial, coder, target, candidates=candidates, rate=rate, position=(k, len(trials)))
        window.show()
        summary = {"trial": window.media.name, "out": str(target)}

        def finish(window=window, summary=summary):
            summary.update(annotations=len(window.movements()), frame=window.media.number(window.index))
            if snapshot:
                try:
                    save_snapshot(window, snapshot)
                except StationError as err:
                    failed.append(err)

        if tokens is not None:  # the script goes on in the next window when a token moves there
            def scripted(window=window, finish=finish):
                del tokens[:play(window, list(tokens))]
                if window.isVisible():
                    finish()
                    window.close()
            QTimer.singleShot(200, scripted)
        original_close = window.closeEvent

        def on_close(event, original_close=original_close, finish=finish, summary=summary):
            if "annotations" not in summary:
                finish()
            original_close(event)
        window.closeEvent = on_close
        application.exec()
        summaries.append(summary)
        if failed:
            raise failed[0]
        if window.go == 0:
            break
        k += window.go
    return summaries
