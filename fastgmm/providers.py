"""Where the rows live: the provider protocol, the passes it serves, and the in-memory provider.

Every fit, whatever holds its rows (an array, a file read chunk by chunk, Dask blocks on a
cluster), needs the same few things from the data:

* **one pass that serves many requests** (:meth:`ChunkProvider.collect`): the summed statistics
  under given parameters (:class:`StatsRequest`: EM's soft E-step, k-means' hard assignment,
  responsibilities given or drawn at random, or only the totals for scoring), the
  worst-explained rows (:class:`WorstRowsRequest`, for ``on_degenerate='reinit'``), or the
  columns' ranges (:class:`RangeRequest`, for a noise component's volume). Model selection
  puts every candidate's request into one pass;
* **a uniform sample of rows** (:meth:`ChunkProvider.sample_rows`) for the initialisation;
* the rows themselves when they are in memory (:meth:`ChunkProvider.in_memory`), so that
  starts can follow scikit-learn's random draws exactly.

:func:`evaluate` computes any request on one chunk and :func:`combine` adds two partial results;
the providers only differ in how they walk their chunks and add the parts (in order in memory and
for files, by a fixed tree on Dask workers).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from time import perf_counter
from typing import Protocol, runtime_checkable

import numpy as np

from . import _interrupts, _marginal
from ._kernels.modes import GIVEN, HARD, SCORE, SOFT
from ._reservoir import DRAW_ROWS, sample
from .estep import chunk_statistics, score_chunk

__all__ = [
    "GIVEN",
    "HARD",
    "SCORE",
    "SOFT",
    "ArrayChunks",
    "ChunkProvider",
    "ChunkedProvider",
    "RangeRequest",
    "Ranges",
    "StatsRequest",
    "WorstRows",
    "WorstRowsRequest",
    "combine",
    "evaluate",
]


@dataclass(eq=False)
class StatsRequest:
    """Ask a pass for the summed statistics of every row under ``layout``.

    Attributes
    ----------
    layout : FactorLayout or SharedLayout
        The parameters, laid out for the kernels (unused with ``GIVEN``, except its means).
    shift : ndarray of shape (n_components, n_features)
        Origin of the moments.
    kind : int
        ``FULL``, ``DIAG`` or ``POOLED`` statistics.
    mode : int
        ``SOFT`` (EM), ``HARD`` (k-means assignment), ``GIVEN`` or ``SCORE`` (totals only).
    resp : ndarray of shape (n_samples, n_components), optional
        ``GIVEN`` responsibilities of every row (sliced along the chunks).
    random_state : numpy.random.RandomState, optional
        ``GIVEN`` without ``resp``: each row's responsibilities are drawn uniformly and
        normalised, in row order (scikit-learn's ``init_params='random'``), so the draws do not
        depend on how the rows are chunked.
    want_entropy : bool
        Also sum ``w_i sum_k r_ik log r_ik``.
    missing : bool
        Rows may hold NaN, which are marginalised out (:func:`fastgmm._marginal.chunk_statistics`).
    fill : ndarray of shape (n_features,), optional
        Replace each NaN by its column's value first (the initialisation of such fits).
    seconds : float
        Compute time spent on this request (filled by the pass).

    Examples
    --------
    >>> import numpy as np
    >>> from fastgmm.providers import ArrayChunks, StatsRequest
    >>> from fastgmm.stats import DIAG, SharedLayout
    >>> means = np.array([[0.0, 0.0], [5.0, 5.0]])
    >>> layout = SharedLayout.diagonal(np.array([0.5, 0.5]), means, np.ones((2, 2)))
    >>> X = np.array([[0.0, 0.0], [0.2, 0.1], [5.0, 5.0], [5.2, 4.9]])
    >>> [stats] = ArrayChunks(X).collect([StatsRequest(layout, means, DIAG)])
    >>> stats.nk.round(6)
    array([2., 2.])
    """

    layout: object
    shift: np.ndarray
    kind: int
    mode: int = SOFT
    resp: np.ndarray | None = None
    random_state: object = None
    want_entropy: bool = False
    missing: bool = False
    fill: np.ndarray | None = None
    seconds: float = field(default=0.0, compare=False)


@dataclass(eq=False)
class WorstRowsRequest:
    """Ask a pass for the ``n_keep`` rows with the lowest log-likelihood under ``layout``.

    Only rows with a positive weight count; ties go to the lower row number, so the answer does
    not depend on the chunking. With ``missing``, rows may hold NaN (marginalised out).

    Examples
    --------
    >>> import numpy as np
    >>> from fastgmm.providers import ArrayChunks, WorstRowsRequest
    >>> from fastgmm.stats import SharedLayout
    >>> layout = SharedLayout.diagonal(np.ones(1), np.zeros((1, 1)), np.ones((1, 1)))
    >>> X = np.array([[0.0], [3.0], [-1.0], [9.0]])
    >>> [worst] = ArrayChunks(X).collect([WorstRowsRequest(layout, 2)])
    >>> worst.rows, worst.points.ravel()
    (array([3, 1]), array([9., 3.]))
    """

    layout: object
    n_keep: int
    missing: bool = False
    seconds: float = field(default=0.0, compare=False)


@dataclass
class WorstRows:
    """The answer to a :class:`WorstRowsRequest`: row numbers, rows and log-likelihoods.

    Examples
    --------
    >>> import numpy as np
    >>> from fastgmm.providers import WorstRows, combine
    >>> a = WorstRows(np.array([4]), np.array([[1.0]]), np.array([-9.0]), 2)
    >>> b = WorstRows(np.array([1]), np.array([[2.0]]), np.array([-5.0]), 2)
    >>> combine(a, b).rows
    array([4, 1])
    """

    rows: np.ndarray
    points: np.ndarray
    log_lik: np.ndarray
    n_keep: int


@dataclass(eq=False)
class RangeRequest:
    """Ask a pass for the smallest and largest value of each column of ``(X - origin) @ axes``
    (of ``X`` itself when ``axes`` is None): the bounding boxes of :mod:`fastgmm.noise`.

    Every row counts, whatever its weight.

    Examples
    --------
    >>> import numpy as np
    >>> from fastgmm.providers import ArrayChunks, RangeRequest
    >>> X = np.array([[0.0, 1.0], [2.0, -1.0]])
    >>> [box] = ArrayChunks(X).collect([RangeRequest()])
    >>> box.lower, box.upper
    (array([ 0., -1.]), array([2., 1.]))
    """

    origin: np.ndarray | None = None
    axes: np.ndarray | None = None
    seconds: float = field(default=0.0, compare=False)


@dataclass
class Ranges:
    """The answer to a :class:`RangeRequest`; two answers add to the ranges of both.

    Examples
    --------
    >>> import numpy as np
    >>> from fastgmm.providers import Ranges
    >>> both = Ranges(np.array([0.0]), np.array([1.0]), 3) + Ranges(np.array([-2.0]),
    ...                                                              np.array([0.5]), 2)
    >>> both.lower, both.upper, both.n_rows
    (array([-2.]), array([1.]), 5)
    """

    lower: np.ndarray
    upper: np.ndarray
    n_rows: int

    def __add__(self, other: Ranges) -> Ranges:
        return Ranges(
            np.minimum(self.lower, other.lower),
            np.maximum(self.upper, other.upper),
            self.n_rows + other.n_rows,
        )


@runtime_checkable
class ChunkProvider(Protocol):
    """What the engine needs from wherever the rows live.

    Implemented by :class:`ArrayChunks` (memory), :class:`fastgmm.streaming.SourceChunks`
    (files and streams) and :class:`fastgmm.distributed.DaskChunks` (Dask blocks).

    Examples
    --------
    >>> import numpy as np
    >>> from fastgmm.providers import ArrayChunks, ChunkProvider
    >>> isinstance(ArrayChunks(np.zeros((3, 2))), ChunkProvider)
    True
    """

    n_features: int
    dtype: np.dtype

    @property
    def n_samples(self) -> int | None:
        """Rows, or None while a stream has not been counted."""

    def count_rows(self) -> int:
        """The number of rows (counting a stream in one pass if needed)."""

    def collect(self, requests: Sequence, *, n_threads=None) -> list:
        """One pass over every row answering every request, in order."""

    def sample_rows(self, size: int, random_state):
        """``(rows, weights or None, row numbers)``: a uniform sample drawn in one pass."""

    def in_memory(self):
        """``(X, sample_weight or None)`` when the rows are in memory, else None."""


def evaluate(request, X, sample_weight, offset, *, n_threads=None, rng=None):
    """The answer to ``request`` for one chunk starting at row ``offset``.

    ``rng`` draws the ``GIVEN`` random responsibilities (the request's own generator when not
    given: in-order providers draw from one stream as they walk the chunks). A request of
    another type that has an ``answer(X, sample_weight, offset, n_threads=)`` method answers
    itself (see :class:`fastgmm.missing.SurveyRequest`); its answers must add with ``+``.

    Examples
    --------
    >>> import numpy as np
    >>> from fastgmm.providers import WorstRowsRequest, evaluate
    >>> from fastgmm.stats import SharedLayout
    >>> layout = SharedLayout.diagonal(np.ones(1), np.zeros((1, 1)), np.ones((1, 1)))
    >>> evaluate(WorstRowsRequest(layout, 1), np.array([[0.0], [4.0]]), np.empty(0), 10).rows
    array([11])
    """
    start = perf_counter()
    if isinstance(request, WorstRowsRequest):
        result = _worst_rows(request, X, sample_weight, offset, n_threads)
    elif isinstance(request, RangeRequest):
        result = _ranges(request, X)
    elif not isinstance(request, StatsRequest):
        result = request.answer(X, sample_weight, offset, n_threads=n_threads)
    elif request.mode == GIVEN and request.resp is None:
        result = _random_resp_statistics(request, X, sample_weight, rng, n_threads)
    else:
        resp = None
        if request.mode == GIVEN:
            resp = request.resp[offset : offset + X.shape[0]]
        if request.fill is not None:
            X = _marginal.fill_missing(X, request.fill)
        result = _statistics_of(request)(
            X,
            sample_weight,
            request.layout,
            request.shift,
            request.kind,
            mode=request.mode,
            resp=resp,
            want_entropy=request.want_entropy,
            n_threads=n_threads,
        )
    request.seconds += perf_counter() - start
    return result


def _random_resp_statistics(request, X, sample_weight, rng, n_threads):
    """Statistics under uniform random responsibilities, drawn in row order (sklearn's 'random').

    Drawn in pieces of ``DRAW_ROWS`` rows, never for all rows at once: uniform draws are
    split-invariant, so this is the same matrix as one ``uniform(size=(n_samples, K))`` draw,
    without its memory.
    """
    rng = request.random_state if rng is None else rng
    n_components = request.layout.n_components
    if request.fill is not None:
        X = _marginal.fill_missing(X, request.fill)
    statistics = _statistics_of(request)
    total = None
    for lo in range(0, max(X.shape[0], 1), DRAW_ROWS):
        rows = X[lo : lo + DRAW_ROWS]
        resp = rng.uniform(size=(rows.shape[0], n_components))
        resp /= resp.sum(axis=1)[:, None]
        weights = sample_weight[lo : lo + DRAW_ROWS] if sample_weight.size else sample_weight
        stats = statistics(
            rows,
            weights,
            request.layout,
            request.shift,
            request.kind,
            mode=GIVEN,
            resp=resp,
            n_threads=n_threads,
        )
        total = stats if total is None else total + stats
    return total


def _ranges(request, X) -> Ranges:
    """Column ranges of one chunk, rotated in pieces of ``DRAW_ROWS`` rows (bounded memory)."""
    n_columns = X.shape[1] if request.axes is None else request.axes.shape[1]
    lower = np.full(n_columns, np.inf)
    upper = np.full(n_columns, -np.inf)
    for lo in range(0, X.shape[0], DRAW_ROWS):
        rows = X[lo : lo + DRAW_ROWS]
        if request.axes is not None:
            rows = (rows - request.origin) @ request.axes
        lower = np.minimum(lower, rows.min(axis=0))
        upper = np.maximum(upper, rows.max(axis=0))
    return Ranges(lower, upper, X.shape[0])


def _statistics_of(request):
    """The chunk statistics function for a request: rows with NaN marginalised, or not."""
    return _marginal.chunk_statistics if request.missing else chunk_statistics


def _worst_rows(request, X, sample_weight, offset, n_threads) -> WorstRows:
    score = _marginal.score_chunk if request.missing else score_chunk
    lse, _, _ = score(X, request.layout, n_threads=n_threads)
    if sample_weight.size:
        lse = np.where(sample_weight > 0, lse, np.inf)
    take = min(request.n_keep, len(lse))
    if take == 0:
        local = np.empty(0, dtype=np.int64)
    else:
        local = np.argpartition(lse, take - 1)[:take]
        local = local[np.isfinite(lse[local])]
    points = np.asarray(X[local], dtype=np.float64)
    if request.missing:
        # A component moved onto a row needs a whole point: the row's conditional means.
        points, _ = _marginal.impute_chunk(points, request.layout, n_threads=n_threads)
    found = WorstRows(offset + local, points, lse[local], request.n_keep)
    return combine(found, None)


def combine(a, b):
    """The sum of two partial answers to one request (``b`` may be None).

    Statistics add; worst rows merge and keep the lowest, ties to the lower row number.

    Examples
    --------
    >>> import numpy as np
    >>> from fastgmm.providers import WorstRows, combine
    >>> a = WorstRows(np.array([7, 2]), np.zeros((2, 1)), np.array([-3.0, -3.0]), 2)
    >>> combine(a, None).rows  # equal log-likelihoods: the lower row first
    array([2, 7])
    """
    if b is None and not isinstance(a, WorstRows):
        return a
    if isinstance(a, WorstRows):
        rows, points, log_lik = a.rows, a.points, a.log_lik
        if b is not None:
            rows = np.concatenate([rows, b.rows])
            points = np.concatenate([points, b.points])
            log_lik = np.concatenate([log_lik, b.log_lik])
        order = np.lexsort((rows, log_lik))[: a.n_keep]
        return WorstRows(rows[order], points[order], log_lik[order], a.n_keep)
    return a + b


class ChunkedProvider:
    """A provider that walks its rows as ``(offset, X, weights)`` chunks, in order.

    Subclasses define ``chunks()``, ``n_samples``, ``n_features`` and ``dtype``; this class
    answers the protocol's passes from them. Every chunk is read once per pass, whatever the
    number of requests: model selection advances all its candidates in one read.

    Examples
    --------
    >>> import numpy as np
    >>> from fastgmm.providers import ArrayChunks
    >>> rows, weights, numbers = ArrayChunks(np.arange(8.0).reshape(4, 2)).sample_rows(
    ...     2, np.random.RandomState(0))
    >>> rows.shape, weights, bool(np.array_equal(rows, 2 * numbers[:, None] + [0, 1]))
    ((2, 2), None, True)
    """

    def chunks(self) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:  # pragma: no cover
        raise NotImplementedError

    def count_rows(self) -> int:
        """The number of rows, with one pass if it is not known yet."""
        if self.n_samples is None:
            for _ in self.chunks():
                pass
        return self.n_samples

    def collect(self, requests, *, n_threads=None) -> list:
        """Answer every request in one pass over the chunks (see :class:`ChunkProvider`)."""
        results = [None] * len(requests)
        for offset, X, sample_weight in self.chunks():
            for j, request in enumerate(requests):
                part = evaluate(request, X, sample_weight, offset, n_threads=n_threads)
                results[j] = part if results[j] is None else combine(results[j], part)
        if any(result is None for result in results):
            raise ValueError("The data provided no rows.")
        return results

    def sample_rows(self, size: int, random_state):
        """A uniform sample of ``min(size, n_samples)`` rows, drawn in one pass.

        Every row gets an i.i.d. uniform key, drawn in row order from ``random_state``, and the
        rows with the ``size`` smallest keys are kept (see :mod:`fastgmm._reservoir`): the sample
        does not depend on how the rows are chunked, and it is the sample that
        :meth:`fastgmm.sources.ChunkSource.reservoir_sample` draws with the same generator.
        """
        return sample(
            self.chunks,
            size,
            random_state,
            n_features=self.n_features,
            dtype=self.dtype,
            n_rows=self.n_samples,
        )

    def in_memory(self):
        return None


class ArrayChunks(ChunkedProvider):
    """An in-memory data set as a provider.

    A writable C-contiguous array is handed to the kernels whole (they parallelise inside).
    A read-only array (a memory map) is copied through a reusable buffer in pieces, because
    Numba compiles read-only arrays as a separate type: one compiled signature is enough.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features), float32 or float64, C-contiguous
    sample_weight : ndarray of shape (n_samples,) or None

    Examples
    --------
    >>> import numpy as np
    >>> from fastgmm.providers import ArrayChunks
    >>> data = ArrayChunks(np.zeros((5, 2)))
    >>> [(offset, X.shape, weights.size) for offset, X, weights in data.chunks()]
    [(0, (5, 2), 0)]
    """

    _COPY_ROWS = 1 << 16

    def __init__(self, X: np.ndarray, sample_weight: np.ndarray | None = None):
        self.X = X
        self.sample_weight = (
            np.empty(0) if sample_weight is None else np.ascontiguousarray(sample_weight, float)
        )
        self.n_samples, self.n_features = X.shape
        self.dtype = X.dtype

    def chunks(self) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
        """Yield ``(row_offset, X_chunk, sample_weight_chunk)`` covering every row once."""
        _interrupts.check()
        if self.X.flags.writeable and self.X.flags.c_contiguous:
            yield 0, self.X, self.sample_weight
            return
        buffer = np.empty((min(self._COPY_ROWS, self.n_samples), self.n_features), self.dtype)
        for start in range(0, self.n_samples, self._COPY_ROWS):
            stop = min(start + self._COPY_ROWS, self.n_samples)
            piece = buffer[: stop - start]
            piece[...] = self.X[start:stop]
            weights = self.sample_weight[start:stop] if self.sample_weight.size else np.empty(0)
            yield start, piece, weights

    def in_memory(self):
        """``(X, sample_weight or None)``."""
        return self.X, (self.sample_weight if self.sample_weight.size else None)
