"""Named events that the library emits and a caller may listen to (standard library only).

The command line reports how long a job spent reading its input and initialising, and names
its progress bars after the EM iteration under way. Rather than wrapping library methods to
find out, it listens to events that the library emits at those points::

    with listen("init.end", on_init_end):
        estimator.fit(source)

Events (name: payload keyword arguments; who emits them):

``"source.chunk"``: ``source``, ``n_rows``, ``seconds``
    :class:`fastgmm.sources.ChunkSource`, once per chunk of a pass, after reading and
    validating it; ``seconds`` is the time that took. With prefetching this runs in the
    reader's background thread.
``"init.start"``: ``estimator``, ``init``
    ``GaussianMixture`` fits, before initialising restart ``init`` (0, 1, ... ``n_init - 1``).
``"init.end"``: ``estimator``, ``init``, ``seconds``
    After that initialisation (its retries under ``on_degenerate`` included), also when it
    raised.
``"em.iteration"``: ``estimator``, ``n_iter``, ``change``
    After each EM iteration's M-step (``n_iter`` counts from 1 within a restart; ``change``
    is the change of the lower bound).

Listeners run in the emitting thread, synchronously: they must be quick and thread-safe, and
an exception they raise propagates to the emitter (a listener's bug stops the fit rather than
passing unseen). When nobody listens, :func:`emit` is one dictionary lookup (0.4 us with its
keyword arguments, measured; it runs once per initialisation or EM iteration), and an emitter
whose payload costs work (two clock reads per chunk) checks :func:`listening` once per pass.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

__all__ = ["EVENTS", "emit", "listen", "listening", "span"]

#: Every event name and the keyword arguments its listeners receive.
EVENTS = {
    "source.chunk": ("source", "n_rows", "seconds"),
    "init.start": ("estimator", "init"),
    "init.end": ("estimator", "init", "seconds"),
    "em.iteration": ("estimator", "n_iter", "change"),
}

# name -> tuple of listeners. A tuple is replaced, never changed, under the lock, so that
# emit() reads a consistent snapshot without taking the lock; a name without listeners has
# no entry (listening() is then one membership test).
_LISTENERS: dict[str, tuple[Callable[..., None], ...]] = {}
_LOCK = threading.Lock()


def emit(name: str, **payload) -> None:
    """Call every listener of ``name`` with ``payload`` (nothing happens without listeners).

    Examples
    --------
    >>> from fastgmm import _events
    >>> _events.emit("em.iteration", estimator=None, n_iter=1, change=0.5)  # nobody listens
    """
    for listener in _LISTENERS.get(name, ()):
        listener(**payload)


def listening(name: str) -> bool:
    """Whether ``name`` has a listener now (to skip computing a payload nobody reads).

    Examples
    --------
    >>> from fastgmm import _events
    >>> _events.listening("source.chunk")
    False
    """
    return name in _LISTENERS


@contextmanager
def listen(name: str, listener: Callable[..., None]) -> Iterator[None]:
    """Call ``listener(**payload)`` for every ``name`` event emitted inside the block.

    The listener hears events from every thread, for as long as the block runs.

    Raises
    ------
    ValueError
        ``name`` is not one of :data:`EVENTS`.

    Examples
    --------
    >>> from fastgmm import _events
    >>> heard = []
    >>> with _events.listen("em.iteration", lambda **payload: heard.append(payload["n_iter"])):
    ...     _events.emit("em.iteration", estimator=None, n_iter=1, change=0.5)
    >>> _events.emit("em.iteration", estimator=None, n_iter=2, change=0.1)  # after the block
    >>> heard
    [1]
    """
    if name not in EVENTS:
        raise ValueError(f"unknown event {name!r}; the events are {', '.join(EVENTS)}")
    with _LOCK:
        _LISTENERS[name] = (*_LISTENERS.get(name, ()), listener)
    try:
        yield
    finally:
        with _LOCK:
            remaining = list(_LISTENERS[name])
            remaining.remove(listener)  # one registration; the same listener may have others
            if remaining:
                _LISTENERS[name] = tuple(remaining)
            else:
                del _LISTENERS[name]


@contextmanager
def span(name: str, **payload) -> Iterator[None]:
    """Emit ``name + ".start"`` before the block and ``name + ".end"`` after it.

    The end event adds ``seconds``, the block's duration, and is emitted also when the block
    raises, so that a listener sees every start matched by an end.

    Examples
    --------
    >>> from fastgmm import _events
    >>> heard = []
    >>> with _events.listen("init.end", lambda **payload: heard.append(sorted(payload))):
    ...     with _events.span("init", estimator=None, init=0):
    ...         pass
    >>> heard
    [['estimator', 'init', 'seconds']]
    """
    emit(f"{name}.start", **payload)
    start = time.perf_counter()
    try:
        yield
    finally:
        emit(f"{name}.end", seconds=time.perf_counter() - start, **payload)
