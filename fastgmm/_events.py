"""Named events from the library to whoever listens (the command line's timings and bars).

A standard-library leaf. The library calls :func:`emit` at a few points (an initialisation's
start and end, each EM iteration); a listener registered with :func:`listening` receives
``(name, info)``. With no listener an event costs one attribute lookup and a truth test.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager

__all__ = ["emit", "listening"]

_LOCK = threading.Lock()
_LISTENERS: tuple = ()


def emit(name: str, **info) -> None:
    """Tell every listener that ``name`` happened, with ``info``.

    Examples
    --------
    >>> from fastgmm import _events
    >>> _events.emit("nobody listens")  # costs nothing
    """
    listeners = _LISTENERS
    if listeners:
        for listener in listeners:
            listener(name, info)


@contextmanager
def listening(listener):
    """Deliver every event to ``listener(name, info)`` inside the block (any thread).

    Examples
    --------
    >>> from fastgmm import _events
    >>> seen = []
    >>> with _events.listening(lambda name, info: seen.append((name, info))):
    ...     _events.emit("em_iteration", n_iter=1)
    >>> seen
    [('em_iteration', {'n_iter': 1})]
    """
    global _LISTENERS
    with _LOCK:
        _LISTENERS = (*_LISTENERS, listener)
    try:
        yield listener
    finally:
        with _LOCK:
            remaining = list(_LISTENERS)
            remaining.remove(listener)
            _LISTENERS = tuple(remaining)
