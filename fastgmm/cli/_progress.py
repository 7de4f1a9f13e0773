"""Progress bars for the command line: one tqdm bar per pass over the input, on a terminal.

The library itself prints no bars and never imports tqdm. The ``fastgmm`` command wraps the
:class:`~fastgmm.sources.ChunkSource` it opens with :meth:`PassBars.wrap`, so that every pass
over the input (counting rows, sampling rows for the initialisation, each EM iteration, scoring)
draws its own bar: unit rows, the row count as the total when the source knows it, and a
description set by the command (``"init pass 1"``, ``"EM pass 3"``, ``"scoring"``).

Bars are drawn only when stderr is a terminal, ``--quiet`` was not given and tqdm can be
imported (``pip install 'fastgmm[cli]'``); otherwise :class:`PassBars` is inert and the job
log keeps its one line per ``--verbose-interval`` iterations. Each bar is erased when its pass
ends (``leave=False``), before the estimator prints its verbose line for that iteration, so the
terminal shows the log lines and at most one bar, under them.
"""

from __future__ import annotations

import copy
import functools

from ..sources import ChunkSource

__all__ = ["PassBars", "pass_bars"]

#: Shown once per run when a bar would be drawn but tqdm is not installed.
MISSING_TQDM_HINT = "progress bars need tqdm: pip install 'fastgmm[cli]' (or tqdm)"


def pass_bars(stream, *, quiet=False, log=None) -> PassBars:
    """The bars of one command run: active on a terminal with tqdm installed, else inert.

    Parameters
    ----------
    stream : file object
        Where bars are drawn (the job's stderr).
    quiet : bool
        ``--quiet``: never draw.
    log : callable, optional
        Called once with :data:`MISSING_TQDM_HINT` when ``stream`` is a terminal but tqdm
        cannot be imported (the run then goes on with log lines only).

    Examples
    --------
    >>> import io
    >>> from fastgmm.cli._progress import pass_bars
    >>> pass_bars(io.StringIO()).active  # not a terminal: no bars
    False
    """
    if quiet or not _is_terminal(stream):
        return PassBars(None, stream)
    try:
        from tqdm import tqdm
    except ImportError:
        if log is not None:
            log(MISSING_TQDM_HINT)
        return PassBars(None, stream)
    return PassBars(tqdm, stream)


def _is_terminal(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):  # no isatty, or a closed stream
        return False


class PassBars:
    """Draws one bar per pass over the sources it wrapped, described by the current phase.

    Parameters
    ----------
    tqdm : type or None
        The ``tqdm.tqdm`` class; None makes the bars inert (:meth:`wrap` returns its source).
    stream : file object
        Where the bars are drawn.

    Examples
    --------
    >>> import io
    >>> import numpy as np
    >>> from tqdm import tqdm
    >>> from fastgmm.cli._progress import PassBars
    >>> from fastgmm.sources import open_source
    >>> out = io.StringIO()
    >>> bars = PassBars(tqdm, out)
    >>> source = bars.wrap(open_source(np.zeros((10, 2)), batch_size=4))
    >>> bars.phase("EM")
    >>> for _ in range(2):
    ...     n_rows = sum(len(chunk) for _, chunk in source.iter_chunks())
    >>> "EM pass 1" in out.getvalue(), "EM pass 2" in out.getvalue(), "rows" in out.getvalue()
    (True, True, True)
    """

    def __init__(self, tqdm, stream):
        self._tqdm = tqdm
        self._stream = stream
        # Until a command names its phase (a --dtype conversion reads the first chunk early).
        self._label = "reading"
        self._numbered = False
        self._count = 0

    @property
    def active(self) -> bool:
        """Whether bars are drawn."""
        return self._tqdm is not None

    def phase(self, label, *, numbered=True) -> None:
        """Describe the next passes as ``"<label> pass <n>"`` (or ``label`` if not numbered).

        Numbering restarts at 1 when the label changes, and continues when the same phase is
        entered again (the retries of an initialisation keep counting).
        """
        if (label, numbered) != (self._label, self._numbered):
            self._label, self._numbered, self._count = label, numbered, 0

    def wrap(self, source: ChunkSource) -> ChunkSource:
        """``source`` with a bar on every pass, or ``source`` itself when the bars are inert.

        The result is a shallow copy of ``source`` whose class is a subclass of the source's
        own class, so it is still a :class:`~fastgmm.sources.ChunkSource` of the same kind
        (the estimators' ``isinstance`` checks and ``reservoir_sample`` work unchanged); only
        :meth:`~fastgmm.sources.ChunkSource.iter_chunks` differs, by drawing the bar. Use the
        returned source from then on: the row count of a CSV file is recorded on it.
        """
        if not self.active:
            return source
        if not isinstance(source, ChunkSource):
            raise TypeError(f"expected a ChunkSource to draw progress for, got {type(source)}")
        wrapped = copy.copy(source)
        wrapped.__class__ = _with_bars(type(source))
        wrapped._pass_bars = self
        return wrapped

    def _description(self) -> str:
        if not self._numbered:
            return self._label
        self._count += 1
        return f"{self._label} pass {self._count}"

    def _track(self, chunks, n_samples):
        """Yield the ``(offset, chunk)`` pairs of one pass, advancing a bar after each chunk."""
        bar = self._tqdm(
            total=n_samples,
            desc=self._description(),
            unit="rows",
            unit_scale=True,
            leave=False,
            file=self._stream,
            dynamic_ncols=True,
        )
        try:
            for offset, chunk in chunks:
                yield offset, chunk
                # After the consumer is done with the chunk: the bar counts rows processed.
                bar.update(len(chunk))
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()  # stops a prefetch thread when the pass is abandoned
            bar.close()


class _BarsOnPasses:
    """Mixin placed before a ChunkSource class: every ``iter_chunks`` pass draws a bar."""

    _pass_bars: PassBars

    def iter_chunks(self, prefetch=True, writable=False):
        chunks = super().iter_chunks(prefetch=prefetch, writable=writable)
        return self._pass_bars._track(chunks, self.n_samples)


@functools.cache
def _with_bars(cls):
    return type(f"{cls.__name__}WithBars", (_BarsOnPasses, cls), {"__module__": __name__})
