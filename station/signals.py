"""Terminal signals end a recording the same way Ctrl-C does: cleanly, with everything kept.

A lab's terminal delivers SIGINT (Ctrl-C), SIGHUP (the terminal window is closed) and SIGTERM
(``kill``, a shutdown, a job scheduler) to the whole foreground process group.  Inside
:func:`interrupt_on_signals` each of them raises :class:`Interrupted` (a
``KeyboardInterrupt``, so every existing Ctrl-C path finalises the trial) in the main thread
once; signals that follow while the session is being finalised are noted, not raised, so the
finalisation itself cannot be cut short.  Exit codes follow the shell's convention,
128 + signal number (130 SIGINT, 129 SIGHUP, 143 SIGTERM).

Child processes that must outlive the parent's signals (the recorder) are started inside
:func:`signals_blocked`: the blocked mask is inherited through fork + exec, so a signal sent
to the process group never reaches the child before it ignores it itself
(:func:`ignore_terminal_signals`).
"""

from __future__ import annotations

import contextlib
import signal
import threading
from typing import Iterator

TERMINAL_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Interrupted(KeyboardInterrupt):
    """A terminal signal asked the program to stop; ``exit_code`` is 128 + its number."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum
        self.signal_name = signal.Signals(signum).name

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


def exit_code(err: BaseException) -> int:
    """128 + signal number for an :class:`Interrupted`, 130 for a plain KeyboardInterrupt."""
    return getattr(err, "exit_code", 128 + signal.SIGINT)


@contextlib.contextmanager
def interrupt_on_signals(signals=TERMINAL_SIGNALS) -> Iterator[list[int]]:
    """Raise :class:`Interrupted` for the first of ``signals``; yields the list of signals received."""
    received: list[int] = []
    if threading.current_thread() is not threading.main_thread():  # handlers only work there
        yield received
        return

    def handler(signum, frame):
        received.append(signum)
        if len(received) == 1:
            raise Interrupted(signum)

    old = {s: signal.signal(s, handler) for s in signals}
    try:
        yield received
    finally:
        for s, h in old.items():
            signal.signal(s, h)


@contextlib.contextmanager
def signals_blocked(signals=TERMINAL_SIGNALS) -> Iterator[None]:
    """Block ``signals`` in this thread while a child process is started (see module docstring).

    Signals that arrive meanwhile are delivered to another thread of this process, or to
    this one when the block ends; none is lost.
    """
    old = signal.pthread_sigmask(signal.SIG_BLOCK, signals)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def ignore_terminal_signals(signals=TERMINAL_SIGNALS) -> None:
    """In a child that its parent stops: ignore the terminal's signals, then unblock them."""
    for s in signals:
        signal.signal(s, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, signals)
