"""A terminal signal ends what it interrupts even when a library eats its exception.

Real signals (``os.kill`` to this process), the real handler of :mod:`station.signals`, and the
two library behaviours found under ``station run`` (docs/elicit.md, "Fault matrix"): numpy
swallows an exception raised in ``__len__`` while it builds an array, and ctypes turns one raised
while it converts an argument into ``ArgumentError``.
"""

from __future__ import annotations

import ctypes
import os
import signal

import numpy as np
import pytest

from station.signals import (Interrupted, check_interrupted, exit_code, interrupt_on_signals, interruption,
                             raise_interruption, signal_name)


def _signal_here(signum: int = signal.SIGTERM) -> None:
    """Send ``signum`` to this process and give the interpreter a few bytecodes to run its handler here."""
    os.kill(os.getpid(), signum)
    for _ in range(1000):
        pass


class _SignalInLen:
    """Like PsychoPy's Color: numpy asks its length while building an array."""

    def __len__(self) -> int:
        _signal_here()
        return 1

    def __getitem__(self, i):
        return 0.5


class _SignalInFromParam:
    """A ctypes argument type whose conversion is where the signal lands (pyglet's GL calls)."""

    signum = signal.SIGHUP

    @classmethod
    def from_param(cls, obj):
        _signal_here(cls.signum)
        return obj


def _libc_abs():
    fn = ctypes.CDLL(None).abs
    fn.argtypes, fn.restype = [_SignalInFromParam], ctypes.c_int
    return fn


def test_numpy_swallows_the_signal_and_the_checkpoint_raises_it_again():
    with interrupt_on_signals() as received:
        array = np.array(_SignalInLen())  # the handler raised inside __len__; numpy carried on
        assert received == [signal.SIGTERM] and array.dtype == object
        with pytest.raises(Interrupted) as caught:
            check_interrupted()
    assert caught.value.signal_name == "SIGTERM" and exit_code(caught.value) == 143


def test_ctypes_turns_the_signal_into_argument_error_and_interruption_names_it():
    fn = _libc_abs()
    with interrupt_on_signals():
        with pytest.raises(ctypes.ArgumentError, match="Interrupted: SIGHUP") as caught:
            fn(3)
        stop = interruption(caught.value)
    assert isinstance(stop, Interrupted) and signal_name(stop) == "SIGHUP" and exit_code(stop) == 129
    with pytest.raises(Interrupted) as raised:  # what a session raises after finalising
        raise_interruption(stop, caught.value)
    assert raised.value is stop and raised.value.__cause__ is caught.value


def test_without_a_signal_errors_stay_errors_and_the_checkpoint_is_silent():
    with interrupt_on_signals() as received:
        check_interrupted()
        assert interruption(ctypes.ArgumentError("argument 1: TypeError: wrong type")) is None
        assert interruption(KeyboardInterrupt()) is not None  # Ctrl-C outside the handler still counts
        assert received == []
    assert signal_name(KeyboardInterrupt()) == "SIGINT" and exit_code(KeyboardInterrupt()) == 130


def test_the_checkpoint_never_cuts_the_finalisation_short():
    """While the interrupt is being handled (the session finalising), checkpoints do nothing."""
    finalised = []
    with interrupt_on_signals() as received:
        try:
            _signal_here()
        except Interrupted:
            check_interrupted()  # e.g. a flip while the trial is closed
            finalised.append(True)
        os.kill(os.getpid(), signal.SIGINT)  # a second signal during finalisation is only noted
        for _ in range(1000):
            pass
    assert finalised == [True] and received == [signal.SIGTERM, signal.SIGINT]


def test_outside_a_block_nothing_is_pending():
    with interrupt_on_signals():
        np.array(_SignalInLen())
    check_interrupted()  # the block has ended: its signal is not raised elsewhere
    assert interruption(RuntimeError("x")) is None


def test_other_threads_never_see_the_main_threads_signal():
    import threading

    seen = []
    with interrupt_on_signals():
        np.array(_SignalInLen())
        worker = threading.Thread(target=lambda: seen.append((interruption(RuntimeError("x")), check_interrupted())))
        worker.start()
        worker.join()
        with pytest.raises(Interrupted):
            check_interrupted()
    assert seen == [(None, None)]
