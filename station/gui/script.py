"""Scripted input for the windows: keys and mouse gestures sent through Qt's own event system.

``station code --script FILE`` (demos, tutorials, smoke tests) and the tests play the same
tokens with ``QTest`` into the real widgets -- the widget that has the keyboard focus gets the
key, the timeline gets the clicks -- so a script exercises exactly what a coder's hands do.

Tokens (whitespace-separated, ``#`` starts a comment): a single character (``d``, ``o``, ``]``);
a key name (``right left up down pgup pgdn home end enter esc space tab backspace delete f1
ctrl+z ctrl+q``); ``text:STRING`` (typed into the focused field); ``click:FRAME`` (seek by
clicking the timeline at a device frame number); ``drag:FRAME-FRAME`` (mark onset..offset by
dragging in the movement lane); ``pick:FRAME`` (click the movement lane there: selects a saved
movement); ``move:MARK:FRAME`` (drag an onset/apex/offset line to a frame); ``wait:MS``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

from station.checks import StationError

KEY_NAMES = {"right": "Key_Right", "left": "Key_Left", "up": "Key_Up", "down": "Key_Down", "pgup": "Key_PageUp",
             "pgdn": "Key_PageDown", "home": "Key_Home", "end": "Key_End", "enter": "Key_Return",
             "esc": "Key_Escape", "space": "Key_Space", "tab": "Key_Tab", "backspace": "Key_Backspace",
             "delete": "Key_Delete", "f1": "Key_F1", "ctrl+z": "Key_Z", "ctrl+q": "Key_Q"}
GESTURES = ("text:", "click:", "drag:", "pick:", "move:", "wait:")


def read_tokens(source: str | Path | Iterable[str]) -> list[str]:
    """Tokens of a script file (or a list of tokens), checked before anything is played."""
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.exists():
            raise StationError(f"key script {str(path)!r} does not exist.")
        tokens = [tok for line in path.read_text(encoding="utf-8").splitlines()
                  for tok in line.split("#", 1)[0].split()]
    else:
        tokens = list(source)
    for tok in tokens:
        if not (len(tok) == 1 or tok.lower() in KEY_NAMES or tok.startswith(GESTURES)):
            raise StationError(f"key script token {tok!r} is not a key; use one character, "
                               f"{', '.join(KEY_NAMES)}, or {', '.join(g + '...' for g in GESTURES)}.")
    return tokens


def _key_for_char(ch: str):
    from PyQt6.QtCore import Qt

    names = {" ": "Key_Space", "[": "Key_BracketLeft", "]": "Key_BracketRight", "+": "Key_Plus",
             "-": "Key_Minus", ".": "Key_Period", ",": "Key_Comma", "=": "Key_Equal"}
    if ch in names:
        return getattr(Qt.Key, names[ch])
    return Qt.Key(ord(ch.upper()))


def play(window, tokens: Iterable[str]) -> int:
    """Send each token to the window as real Qt events, letting it repaint between them; returns
    how many tokens were played (fewer than given when a token closed the window)."""
    from PyQt6.QtCore import QPoint, Qt
    from PyQt6.QtTest import QTest
    from PyQt6.QtWidgets import QApplication

    timeline = window.timeline

    window.activateWindow()
    QApplication.processEvents()

    def target():  # the window's focus widget even when no window manager made the window active
        return window.focusWidget() or window

    def at(frame: int, lane: str) -> QPoint:
        top, bottom = timeline.LANES[lane]
        index = window.media.index_of(int(frame))
        return QPoint(int(round(timeline.x_of(index))), (top + bottom) // 2)

    played = 0
    for tok in tokens:
        played += 1
        low = tok.lower()
        if tok.startswith("text:"):
            QTest.keyClicks(target(), tok[5:])
        elif tok.startswith("wait:"):
            QTest.qWait(int(tok[5:]))
        elif tok.startswith("click:"):
            QTest.mouseClick(timeline, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                             at(int(tok[6:]), "curve"))
        elif tok.startswith("pick:"):
            QTest.mouseClick(timeline, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                             at(int(tok[5:]), "movements"))
        elif tok.startswith("drag:"):
            first, last = (int(v) for v in tok[5:].split("-"))
            drag(timeline, at(first, "movements"), at(last, "movements"))
        elif tok.startswith("move:"):
            _, mark, frame = tok.split(":")
            index = window.marks[mark]
            if index is None:
                raise StationError(f"key script: {tok!r} moves {mark}, which is not marked.")
            top, bottom = timeline.LANES["curve"]
            start = QPoint(int(round(timeline.x_of(index))), (top + bottom) // 2)
            drag(timeline, start, at(int(frame), "curve"))
        elif low in ("ctrl+z", "ctrl+q"):
            QTest.keyClick(target(), getattr(Qt.Key, KEY_NAMES[low]), Qt.KeyboardModifier.ControlModifier)
        elif low in KEY_NAMES:
            QTest.keyClick(target(), getattr(Qt.Key, KEY_NAMES[low]))
        else:
            QTest.keyClick(target(), _key_for_char(tok), Qt.KeyboardModifier.NoModifier)
        QApplication.processEvents()
        if not window.isVisible():
            break
    return played


def drag(widget, start, end, steps: int = 6) -> None:
    """Press, move in steps, release: what a hand does (QTest.mouseMove alone sends no button)."""
    from PyQt6.QtCore import QPointF, Qt
    from PyQt6.QtGui import QMouseEvent
    from PyQt6.QtTest import QTest
    from PyQt6.QtWidgets import QApplication

    QTest.mousePress(widget, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, start)
    for i in range(1, steps + 1):
        x = start.x() + (end.x() - start.x()) * i / steps
        y = start.y() + (end.y() - start.y()) * i / steps
        pos = QPointF(x, y)
        event = QMouseEvent(QMouseEvent.Type.MouseMove, pos, widget.mapToGlobal(pos), Qt.MouseButton.NoButton,
                            Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
        QApplication.sendEvent(widget, event)
    QTest.mouseRelease(widget, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, end)
