"""PsychoPy's key names: what a protocol's ``keys:`` may name.

``psychopy.event.getKeys`` (pyglet backend, the station's window) reports a key as pyglet's
symbol name in lower case without its leading underscore (``escape``, ``space``, ``f9``,
``1``, ``num_enter``).  A protocol naming a key that PsychoPy never reports (``esc``) would
leave the participant unable to stop a film, so protocols are checked against this list.
"""

from __future__ import annotations

import functools
from pathlib import Path


@functools.lru_cache(maxsize=1)
def _key_module():
    """pyglet's ``window/key.py`` loaded on its own: importing the ``pyglet.window`` package
    would open a shadow window on the display (and fail without one)."""
    import importlib.util
    import sys

    if "pyglet.window.key" in sys.modules:
        return sys.modules["pyglet.window.key"]
    import pyglet

    spec = importlib.util.spec_from_file_location("station_pyglet_keys", Path(pyglet.__file__).parent / "window" / "key.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@functools.lru_cache(maxsize=1)
def key_names() -> frozenset[str]:
    """Every key name PsychoPy's pyglet backend can report (no display needed)."""
    key = _key_module()
    names = {n.lower().lstrip("_") for n, v in vars(key).items()
             if n.isupper() and isinstance(v, int) and not n.startswith("MOD_")}
    names |= {key.symbol_string(v).lower().lstrip("_") for n, v in vars(key).items()
              if n.isupper() and isinstance(v, int) and not n.startswith("MOD_")}
    names.discard("enter")  # PsychoPy reports the Return key as 'return'
    return frozenset(names)


def pyglet_symbol(name: str) -> int:
    """The pyglet key symbol of a PsychoPy key name (to inject real key events)."""
    key = _key_module()
    for candidate in (name.upper(), "_" + name.upper()):
        if hasattr(key, candidate):
            return getattr(key, candidate)
    raise ValueError(f"{name!r} is not a PsychoPy key name")
