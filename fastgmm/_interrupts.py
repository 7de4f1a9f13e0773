"""Signals that must not be lost: the command line records them, atomic writes check them.

The ``fastgmm`` command turns SIGINT and SIGTERM into exceptions so that ``finally`` blocks
remove temporary files. Python raises a signal handler's exception in the main thread at the
next bytecode, and if that bytecode runs inside a ctypes callback (Numba's JIT calls one when it
compiles or loads a kernel) the exception is printed and dropped: the job would carry on and
write its output. The handlers therefore also record the signal here, and
:func:`fastgmm.persistence.atomic_path` calls :func:`check` before it commits a file, so a
dropped signal still stops the job before anything is written. Long loops check too (each EM
iteration, streamed chunk, k-means++ centre and Lloyd step), so the job stops soon rather than at
its end. Outside the command line nothing is ever recorded and :func:`check` does nothing.
"""

from __future__ import annotations

import signal

__all__ = ["Interrupted", "check", "clear", "record"]

_received: list[int] = []


class Interrupted(BaseException):
    """A recorded signal whose own exception was lost; ``signum`` says which.

    A ``BaseException``, like ``KeyboardInterrupt``, so that ``except Exception`` blocks let
    it through to the command's handler.
    """

    def __init__(self, signum):
        super().__init__(signum)
        self.signum = signum


def record(signum: int) -> None:
    """Remember that ``signum`` arrived (called by the command line's signal handlers)."""
    _received.append(int(signum))


def check() -> None:
    """Raise the first recorded signal: KeyboardInterrupt for SIGINT, else :class:`Interrupted`.

    Examples
    --------
    >>> import signal
    >>> from fastgmm import _interrupts
    >>> _interrupts.check()  # nothing recorded: nothing happens
    >>> _interrupts.record(signal.SIGTERM)
    >>> try:
    ...     _interrupts.check()
    ... except _interrupts.Interrupted as exc:
    ...     print(exc.signum == signal.SIGTERM)
    True
    >>> _interrupts.clear()
    """
    if _received:
        signum = _received[0]
        if signum == signal.SIGINT:
            raise KeyboardInterrupt
        raise Interrupted(signum)


def clear() -> None:
    """Forget the recorded signals (at the end of a command)."""
    _received.clear()
