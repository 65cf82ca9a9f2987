"""Terminal signals end a recording the same way Ctrl-C does: cleanly, with everything kept.

A lab's terminal delivers SIGINT (Ctrl-C), SIGHUP (the terminal window is closed) and SIGTERM
(``kill``, a shutdown, a job scheduler) to the whole foreground process group.  Inside
:func:`interrupt_on_signals` each of them raises :class:`Interrupted` (a
``KeyboardInterrupt``, so every existing Ctrl-C path finalises the trial) in the main thread
once; signals that follow while the session is being finalised are noted, not raised, so the
finalisation itself cannot be cut short.  Exit codes follow the shell's convention,
128 + signal number (130 SIGINT, 129 SIGHUP, 143 SIGTERM).

Third-party code does not always let the exception through.  Measured in a real PsychoPy
form under load (``station run``, SIGTERM to the process group): numpy swallows an exception
raised in ``__len__`` while it builds an array (PsychoPy's ``Color`` is such an object), so the
session went on to its end (exit 3 instead of 143); ctypes turns one raised while it converts an
argument into ``ArgumentError`` (pyglet's GL calls), so the session ended as a fault (exit 4).
Hence two more rules inside :func:`interrupt_on_signals`:

- :func:`check_interrupted` is a checkpoint in every loop (the display calls it on each flip):
  it raises the signal again if its exception never reached us;
- :func:`interruption` names the signal behind any exception that ends a session while a signal
  is pending, so the exit code and the status say "interrupted", not "fault".

Child processes that must outlive the parent's signals (the recorder) are started inside
:func:`signals_blocked`: the blocked mask is inherited through fork + exec, so a signal sent
to the process group never reaches the child before it ignores it itself
(:func:`ignore_terminal_signals`).
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from dataclasses import dataclass, field
from typing import Iterator, NoReturn

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


def signal_name(err: BaseException) -> str:
    """'SIGTERM', 'SIGHUP', ... for an :class:`Interrupted`; 'SIGINT' for a plain KeyboardInterrupt."""
    return getattr(err, "signal_name", "SIGINT")


@dataclass
class _Watch:
    """The signals one :func:`interrupt_on_signals` block has received, in order."""

    received: list[int] = field(default_factory=list)


#: the active :func:`interrupt_on_signals` blocks, innermost last (main thread only)
_watches: list[_Watch] = []


@contextlib.contextmanager
def interrupt_on_signals(signals=TERMINAL_SIGNALS) -> Iterator[list[int]]:
    """Raise :class:`Interrupted` for the first of ``signals``; yields the list of signals received."""
    watch = _Watch()
    if threading.current_thread() is not threading.main_thread():  # handlers only work there
        yield watch.received
        return

    def handler(signum, frame):
        watch.received.append(signum)
        if len(watch.received) == 1:
            raise Interrupted(signum)

    old = {s: signal.signal(s, handler) for s in signals}
    _watches.append(watch)
    try:
        yield watch.received
    finally:
        _watches.remove(watch)
        for s, h in old.items():
            signal.signal(s, h)


def pending() -> Interrupted | None:
    """The first signal the innermost :func:`interrupt_on_signals` block received, or None
    (always None outside the main thread: the signal is the main thread's to act on)."""
    if not _watches or not _watches[-1].received or threading.current_thread() is not threading.main_thread():
        return None
    return Interrupted(_watches[-1].received[0])


def check_interrupted() -> None:
    """Checkpoint for loops: raise :class:`Interrupted` again if a signal arrived and its
    exception was lost in third-party code (see the module docstring).

    Does nothing while any exception is being handled (``except`` / ``finally`` blocks): the
    code finalising an interrupted session must run to its end.
    """
    err = pending()
    if err is not None and sys.exc_info()[1] is None:
        raise err


def interruption(err: BaseException) -> KeyboardInterrupt | None:
    """The terminal signal behind ``err``, or None if it is an ordinary error.

    ``err`` itself for a KeyboardInterrupt (Ctrl-C, :class:`Interrupted`); the pending signal
    for any other exception raised after a signal arrived, since third-party code may have
    turned the signal's exception into its own (ctypes: ``ArgumentError: argument 4:
    Interrupted: SIGTERM``).
    """
    if isinstance(err, KeyboardInterrupt):
        return err
    return pending()


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


def raise_interruption(stop: KeyboardInterrupt, err: BaseException) -> NoReturn:
    """After cleaning up: raise ``err`` again if it is the interrupt itself, else ``stop`` (the
    signal a library turned into ``err``), chained to it."""
    if stop is err:
        raise err
    raise stop from err
