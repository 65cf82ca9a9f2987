"""The coding window (``station code``): browse a trial frame by frame and code movements.

An OpenCV HighGUI window shows the frame, a status panel and a time line of the trial
(saved annotations in green, spotted candidates in orange, the cursor in white).  The coder
marks onset, apex and offset, types the AUs in FACS notation (checked as typed: an unknown AU
is refused on the spot, not found later), adds a note and saves; every save and every move
goes to disk at once (:class:`~station.process.coding.CodingStore`), so closing the window, a
crash or a power cut loses nothing and the next session opens where the coder left.

Keys come from the keyboard, or from an iterator (tests, demos, ``--script FILE``): the window
is opened and drawn either way, so a scripted session under Xvfb exercises the real GUI.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Iterable, Iterator

import cv2
import numpy as np

from station.checks import StationError
from station.process.coding import CodingStore, trial_key
from station.record import schema
from station.vocab.facs import parse_aus

KEY_HELP = """\
  d / right      next frame              a / left      previous frame
  D              10 frames forward       A             10 frames back
  space          play / pause (slowed down by --speed)
  n / p          jump to next / previous spotted candidate (c: take its onset/apex/offset)
  o / k / f      mark onset / apex / offset at the current frame
  u              type the AUs in FACS notation (e.g. 1+2, R12+25, L14), enter to accept
  t              type a note, enter to accept (esc cancels typing)
  enter          save the movement (onset, apex, offset, AUs, note)
  x              delete the last saved movement of this trial
  h              show / hide this help          q / esc    save position and quit"""

#: Names usable in a key script, besides single characters.
KEY_NAMES = {"right": ord("d"), "left": ord("a"), "enter": 13, "esc": 27, "space": 32, "backspace": 8,
             "wait": -1, "tab": 9}
_ARROWS = {65363: ord("d"), 65361: ord("a"), 2555904: ord("d"), 2424832: ord("a")}
PANEL_HEIGHT = 150


def script_keys(source: str | Path | Iterable[str]) -> Iterator[int]:
    """Key codes from a script: tokens are characters, names (KEY_NAMES) or ``text:STRING``.

    A file is read as whitespace-separated tokens; ``#`` starts a comment.
    """
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.exists():
            raise StationError(f"key script {str(path)!r} does not exist.")
        tokens = [tok for line in path.read_text().splitlines() for tok in line.split("#", 1)[0].split()]
    else:
        tokens = list(source)
    for tok in tokens:
        if tok.startswith("text:"):
            yield from (ord(ch) for ch in tok[5:])
        elif tok.lower() in KEY_NAMES:
            yield KEY_NAMES[tok.lower()]
        elif len(tok) == 1:
            yield ord(tok)
        else:
            raise StationError(f"key script token {tok!r} is not a key; use one character, "
                               f"{', '.join(KEY_NAMES)} or text:STRING.")


class CodingSession:
    """One coder on one trial; see the module docstring."""

    def __init__(self, trial: str | Path, coder: str, out: str | Path, candidates: str | Path | None = None,
                 speed: float = 0.25, window: str = "station code"):
        from station.record.writer import open_trial

        self.trial_path = Path(trial)
        self.trial = trial_key(self.trial_path)
        from station.process.trialcheck import check_trial_file

        self.file = open_trial(check_trial_file(self.trial_path))
        try:
            table = schema.frames_table(self.file)
            self.n = len(table)
        except Exception as err:  # noqa: BLE001
            self.file.close()
            raise StationError(f"trial file {str(self.trial_path)!r} cannot be read: {err}") from err
        if self.n == 0:
            self.file.close()
            raise StationError(f"trial file {str(self.trial_path)!r} holds no frames.")
        self.numbers = schema.frame_numbers(table)
        self.stamps = schema.timestamps_ms(table)
        self.fps = float(self.file.attrs.get("fps", 60))
        self.store = CodingStore(out, coder)
        self.candidates = self._load_candidates(candidates)
        self.speed, self.window = speed, window
        resumed = self.store.cursor(self.trial)
        self.index = min(max(resumed or 0, 0), self.n - 1)
        self.marks: dict[str, int | None] = {"onset": None, "apex": None, "offset": None}
        self.aus, self.notes = "", ""
        self.typing: str | None = None  # "aus" | "notes" while the coder types
        self.buffer = ""
        self.playing = False
        self.help = False
        self.message = f"resumed at frame index {self.index}" if resumed is not None else "press h for help"
        self.rendered = 0
        self.window_visible = False
        self._last_cursor_save = 0.0
        self._last_play = time.perf_counter()
        self.canvas: np.ndarray | None = None

    def _load_candidates(self, candidates) -> list:
        if candidates is None:
            default = self.trial_path.parent / "candidates.csv"
            if not default.exists():
                return []
            candidates = default
        from station.process.spotting import read_candidates, spot_trial

        if str(candidates) == "auto":
            return spot_trial(self.trial_path).candidates
        return read_candidates(candidates, self.trial)

    # -- state changes ------------------------------------------------------------------------
    def number(self, index: int | None = None) -> int:
        return int(self.numbers[self.index if index is None else index])

    def index_of(self, number: int) -> int:
        return int(np.argmin(np.abs(self.numbers - number)))

    def move(self, delta: int) -> None:
        self.index = int(np.clip(self.index + delta, 0, self.n - 1))

    def jump_candidate(self, direction: int) -> None:
        if not self.candidates:
            self.message = "no spotted candidates (run `station spot` or pass --candidates)"
            return
        here = self.number()
        ordered = sorted(self.candidates, key=lambda c: c.onset)
        pick = ([c for c in ordered if c.onset > here] if direction > 0 else [c for c in ordered if c.onset < here][::-1])
        if not pick:
            self.message = "no more candidates this way"
            return
        self.index = self.index_of(pick[0].onset)
        self.message = f"candidate {pick[0].kind} {pick[0].onset}-{pick[0].offset} (score {pick[0].score:.1f})"

    def take_candidate(self) -> None:
        here = self.number()
        for c in self.candidates:
            if c.onset <= here <= c.offset:
                self.marks = {"onset": c.onset, "apex": c.apex, "offset": c.offset}
                self.message = f"marks taken from candidate {c.onset}-{c.offset}"
                return
        self.message = "not inside a candidate"

    def save_movement(self) -> None:
        missing = [k for k, v in self.marks.items() if v is None]
        if missing:
            self.message = f"mark {', '.join(missing)} first"
            return
        try:
            ann = self.store.add(self.trial, self.marks["onset"], self.marks["apex"], self.marks["offset"],
                                 self.aus, self.notes)
        except StationError as err:
            self.message = str(err)
            return
        self.message = f"saved movement {ann.sample}: {ann.onset}/{ann.apex}/{ann.offset} AU {ann.aus or '-'}"
        self.marks = {"onset": None, "apex": None, "offset": None}
        self.aus = self.notes = ""

    def delete_last(self) -> None:
        mine = self.store.for_trial(self.trial)
        if not mine:
            self.message = "nothing to delete"
            return
        last = max(mine, key=lambda a: a.sample)
        self.store.remove(self.trial, last.sample)
        self.message = f"deleted movement {last.sample}"

    def type_key(self, key: int) -> None:
        """A key while typing AUs or a note."""
        if key == 27:
            self.typing, self.message = None, "typing cancelled"
        elif key in (13, 10):
            if self.typing == "aus":
                try:
                    parse_aus(self.buffer, "AUs")
                except StationError as err:
                    self.message = str(err)
                    return  # stay in typing mode so the coder can fix it
                self.aus = self.buffer.strip()
            else:
                self.notes = self.buffer.strip()
            self.typing, self.message = None, f"{'AUs' if self.aus else 'note'} set"
        elif key == 8:
            self.buffer = self.buffer[:-1]
        elif 32 <= key < 127:
            self.buffer += chr(key)

    def handle(self, key: int) -> bool:
        """Apply one key; False means quit."""
        key = _ARROWS.get(key, key)
        if key == -1:
            return True
        if self.typing:
            self.type_key(key)
            return True
        ch = chr(key) if 0 <= key < 0x110000 else ""
        actions = {
            "d": lambda: self.move(1), "a": lambda: self.move(-1), "D": lambda: self.move(10),
            "A": lambda: self.move(-10),
            "n": lambda: self.jump_candidate(1), "p": lambda: self.jump_candidate(-1), "c": self.take_candidate,
            "x": self.delete_last,
        }
        if ch in ("q",) or key == 27:
            return False
        if ch in actions:
            actions[ch]()
        elif ch in ("o", "k", "f"):
            name = {"o": "onset", "k": "apex", "f": "offset"}[ch]
            self.marks[name] = self.number()
            self.message = f"{name} = frame {self.number()}"
        elif ch == "u":
            self.typing, self.buffer = "aus", self.aus
        elif ch == "t":
            self.typing, self.buffer = "notes", self.notes
        elif key in (13, 10):
            self.save_movement()
        elif ch == " ":
            self.playing = not self.playing
            self._last_play = time.perf_counter()
        elif ch == "h":
            self.help = not self.help
        return True

    def tick(self, scripted: bool) -> None:
        """Advance playback: one frame per tick when scripted, at fps * speed otherwise."""
        if not self.playing:
            return
        now = time.perf_counter()
        if scripted or now - self._last_play >= 1.0 / (self.fps * self.speed):
            self._last_play = now
            if self.index >= self.n - 1:
                self.playing = False
            else:
                self.move(1)

    # -- drawing --------------------------------------------------------------------------------
    def render(self) -> np.ndarray:
        frame = schema.color_dataset(self.file)[self.index]
        image = np.ascontiguousarray(frame[..., ::-1])
        h, w = image.shape[:2]
        panel = np.full((PANEL_HEIGHT, w, 3), 30, np.uint8)
        self._timeline(panel, w)
        t_ms = self.stamps[self.index] - self.stamps[0]
        marks = "  ".join(f"{k} {v if v is not None else '-'}" for k, v in self.marks.items())
        lines = [
            f"{self.trial}  frame {self.number()} ({self.index + 1}/{self.n})  t = {t_ms:.0f} ms"
            f"{'  PLAYING x' + str(self.speed) if self.playing else ''}",
            f"{marks}   AUs {self.aus or '-'}   note {self.notes or '-'}",
            (f"typing {self.typing}: {self.buffer}_" if self.typing else self.message)[:140],
            f"saved movements: {len(self.store.for_trial(self.trial))}   candidates: {len(self.candidates)}   "
            f"coder {self.store.coder}   (h: help)",
        ]
        for i, text in enumerate(lines):
            cv2.putText(panel, text, (8, 42 + 24 * i), cv2.FONT_HERSHEY_SIMPLEX, 0.5,
                        (80, 220, 255) if i == 2 and self.typing else (230, 230, 230), 1, cv2.LINE_AA)
        if self.help:
            shade = image[: 20 * len(KEY_HELP.splitlines()) + 14, : min(w, 560)]
            shade[...] = (shade * 0.35).astype(np.uint8)
            for i, text in enumerate(KEY_HELP.splitlines()):
                cv2.putText(image, text, (10, 22 + 20 * i), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1,
                            cv2.LINE_AA)
        self.canvas = np.vstack([image, panel])
        return self.canvas

    def _timeline(self, panel: np.ndarray, w: int) -> None:
        x = lambda number: int((self.index_of(number)) / max(1, self.n - 1) * (w - 1))  # noqa: E731
        cv2.rectangle(panel, (0, 4), (w - 1, 18), (60, 60, 60), -1)
        for c in self.candidates:
            cv2.rectangle(panel, (x(c.onset), 4), (max(x(c.offset), x(c.onset) + 1), 10), (0, 140, 255), -1)
        for a in self.store.for_trial(self.trial):
            cv2.rectangle(panel, (x(a.onset), 11), (max(x(a.offset), x(a.onset) + 1), 18), (0, 200, 0), -1)
        cx = int(self.index / max(1, self.n - 1) * (w - 1))
        cv2.line(panel, (cx, 0), (cx, 22), (255, 255, 255), 2)

    # -- main loop ------------------------------------------------------------------------------
    def run(self, keys: Iterable[int] | None = None, snapshot: str | Path | None = None) -> dict:
        """Open the window and code until quit (or until the scripted keys run out)."""
        scripted = keys is not None
        key_iter = iter(keys) if scripted else None
        try:
            cv2.namedWindow(self.window, cv2.WINDOW_AUTOSIZE)
        except cv2.error as err:
            raise StationError(f"cannot open the coding window ({err}); is a display available? "
                               "Without a screen run it under Xvfb: xvfb-run -a station code ...") from err
        try:
            while True:
                cv2.imshow(self.window, self.render())
                self.rendered += 1
                pressed = cv2.waitKeyEx(1 if scripted else 15)
                self.window_visible = self.window_visible or cv2.getWindowProperty(self.window, cv2.WND_PROP_VISIBLE) >= 1
                if scripted:
                    key = next(key_iter, None)
                    if key is None:
                        break
                else:
                    key = pressed
                    if cv2.getWindowProperty(self.window, cv2.WND_PROP_VISIBLE) < 1:
                        break  # the coder closed the window
                if not self.handle(key):
                    break
                self.tick(scripted)
                self._save_cursor()
        finally:
            self._save_cursor(force=True)
            if snapshot is not None and self.canvas is not None:
                cv2.imwrite(str(snapshot), self.canvas)
            cv2.destroyWindow(self.window)
            cv2.waitKey(1)
            self.file.close()
        return {"annotations": len(self.store.for_trial(self.trial)), "index": self.index,
                "rendered": self.rendered, "window_visible": bool(self.window_visible)}

    def _save_cursor(self, force: bool = False) -> None:
        now = time.perf_counter()
        if force or now - self._last_cursor_save > 0.5:
            self.store.set_cursor(self.trial, self.index)
            self._last_cursor_save = now
