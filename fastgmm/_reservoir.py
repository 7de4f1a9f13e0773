"""Uniform row sampling in one pass: the rows with the smallest i.i.d. random keys.

Every row gets a uniform key, drawn in row order from one random stream, and the ``size`` rows
with the smallest keys form the sample. Each subset of that size is then equally likely, and
because NumPy's uniform draws do not depend on how a stream is split into calls, the sample does
not depend on how the rows are chunked either. Both the estimators' initialisation
(:meth:`fastgmm.providers.ChunkedProvider.sample_rows`) and
:meth:`fastgmm.sources.ChunkSource.reservoir_sample` use
this one implementation, so a file and an array holding the same rows give the same sample.

Only keys and row numbers move while a chunk is scanned; a chunk's surviving rows are copied once,
when the chunk is done. The scan keeps a threshold (the ``size``-th smallest key so far) and
skips every row above it, so the work after the first ``size`` rows shrinks as the pass goes on.
When the number of rows is known, :func:`sample` starts from a threshold that the sample fills
all but surely, and skips almost every row from the first. This module needs NumPy only: the
light source layer imports it.
"""

from __future__ import annotations

import copy
import math

import numpy as np

# Keys drawn per call: bounds the key buffer for a large in-memory chunk without changing the
# numbers drawn (uniform draws are split-invariant).
DRAW_ROWS = 1 << 16


class Reservoir:
    """The ``size`` rows with the smallest keys among all rows offered so far.

    Parameters
    ----------
    size : int
        Rows to keep (>= 1).
    n_features : int
    dtype : numpy dtype
        dtype of the kept rows.
    threshold : float, default=inf
        Keys at or above it are skipped from the start (see :func:`sample`).

    Examples
    --------
    >>> import numpy as np
    >>> from fastgmm._reservoir import Reservoir
    >>> X = np.arange(20.0).reshape(10, 2)
    >>> reservoir = Reservoir(3, n_features=2, dtype=X.dtype)
    >>> reservoir.offer(0, X[:4], np.random.RandomState(0))
    >>> reservoir.offer(4, X[4:], np.random.RandomState(1))
    >>> rows, weights, indices = reservoir.result()
    >>> rows.shape, bool(np.array_equal(rows, X[indices])), bool(np.all(np.diff(indices) > 0))
    ((3, 2), True, True)
    """

    def __init__(self, size: int, *, n_features: int, dtype, threshold=np.inf):
        self.size = int(size)
        self.keys = np.empty(0)
        self.indices = np.empty(0, dtype=np.int64)
        self.rows = np.empty((0, n_features), dtype=dtype)
        self.weights = None
        # Only keys below the threshold can enter: the size-th smallest key so far, or a
        # starting guess (see :func:`sample`).
        self.threshold = threshold

    def offer(self, offset: int, X, random_state, weights=None) -> None:
        """Draw the keys of the chunk ``X`` (rows ``offset...``) and keep the rows that qualify.

        ``weights`` (per row, optional) travel with their rows. ``X`` may be reused by the caller
        afterwards: the kept rows are copied.
        """
        keys, local = [], []
        n_pending = 0
        for lo in range(0, X.shape[0], DRAW_ROWS):
            block_keys = random_state.random(min(DRAW_ROWS, X.shape[0] - lo))
            take = np.flatnonzero(block_keys < self.threshold)
            if take.size == 0:
                continue
            keys.append(block_keys[take])
            local.append(lo + take)
            n_pending += take.size
            if n_pending + self.keys.size >= 2 * self.size:
                # Tighten the threshold on keys alone; rows are copied once, at the end.
                keys, local = [np.concatenate(keys)], [np.concatenate(local)]
                self._lower_threshold(keys[0])
                keep = keys[0] <= self.threshold
                keys, local = [keys[0][keep]], [local[0][keep]]
                n_pending = keys[0].size
        if n_pending == 0:
            return
        keys, local = np.concatenate(keys), np.concatenate(local)
        keep = keys <= self.threshold
        keys, local = keys[keep], local[keep]
        self.keys = np.concatenate([self.keys, keys])
        self.indices = np.concatenate([self.indices, offset + local])
        self.rows = np.concatenate([self.rows, X[local]])  # fancy indexing copies
        if weights is not None and len(weights):
            kept = weights[local]
            self.weights = kept if self.weights is None else np.concatenate([self.weights, kept])
        if self.keys.size > self.size:
            self._lower_threshold(np.empty(0))
        if self.keys.size == self.size:
            self.threshold = float(self.keys.max())

    def _lower_threshold(self, pending_keys) -> None:
        """Set the threshold to the size-th smallest key and drop kept rows above it.

        Masks rather than ``argpartition`` keep the survivors in row order, so the sample needs
        no sort at the end.
        """
        everything = np.concatenate([self.keys, pending_keys])
        if everything.size <= self.size:
            return
        self.threshold = float(np.partition(everything, self.size - 1)[self.size - 1])
        keep = self.keys <= self.threshold
        if not keep.all():
            self._keep(keep)

    def _keep(self, keep) -> None:
        """Keep only the entries selected by ``keep`` (a mask or sorted positions)."""
        self.keys, self.indices, self.rows = self.keys[keep], self.indices[keep], self.rows[keep]
        if self.weights is not None:
            self.weights = self.weights[keep]

    def result(self):
        """The sample: ``(rows, weights or None, indices)``, rows in increasing row order."""
        if self.keys.size > self.size:
            self._lower_threshold(np.empty(0))
        if self.keys.size > self.size:  # only ties on the threshold key can leave extra rows
            self._keep(np.sort(np.argsort(self.keys, kind="stable")[: self.size]))
        return np.ascontiguousarray(self.rows), self.weights, self.indices


def starting_threshold(size: int, n_rows: int | None, margin: float = 8.0) -> float:
    """A key threshold that ``size`` of ``n_rows`` uniform keys fall below all but surely.

    The number of keys below ``t`` is Binomial(n_rows, t); ``t`` is set ``margin`` standard
    deviations (plus a constant for small samples) above ``size``, so with the default the
    threshold is too low with probability below 1e-15. Scanning with it from the start skips
    almost every row that cannot end in the sample, instead of first collecting twice the sample
    and narrowing down. Infinity when ``n_rows`` is unknown or the sample is a large part of it.
    """
    if n_rows is None or n_rows <= 2 * size:
        return np.inf
    wanted = size + margin * math.sqrt(size) + 64
    return wanted / n_rows if wanted < n_rows / 2 else np.inf


def sample(passes, size: int, random_state, *, n_features: int, dtype, n_rows=None, margin=8.0):
    """The rows with the ``size`` smallest keys, in one pass (two if a guess was too low).

    Parameters
    ----------
    passes : callable
        ``passes()`` returns an iterator of ``(row_offset, X, weights)`` over all rows, in
        order (``weights`` may be empty); it is called a second time only in the fallback.
    size : int
    random_state : numpy.random.RandomState or numpy.random.Generator
        Advanced by one key per row, exactly as without the starting threshold.
    n_features : int
    dtype : numpy dtype
    n_rows : int, optional
        The number of rows, when known: enables the starting threshold.
    margin : float
        Standard deviations of slack in the starting threshold (tests lower it to force the
        fallback).

    Returns
    -------
    rows, weights or None, indices
        As :meth:`Reservoir.result`.

    Examples
    --------
    >>> import numpy as np
    >>> from fastgmm._reservoir import sample
    >>> X = np.arange(2000.0).reshape(1000, 2)
    >>> rows, _, indices = sample(lambda: iter([(0, X, np.empty(0))]), 5, np.random.RandomState(0),
    ...                           n_features=2, dtype=X.dtype, n_rows=1000)
    >>> rows.shape, bool(np.array_equal(rows, X[indices]))
    ((5, 2), True)
    """
    threshold = starting_threshold(size, n_rows, margin)
    saved = copy.deepcopy(random_state) if np.isfinite(threshold) else None
    reservoir = _scan(passes, size, random_state, n_features, dtype, threshold)
    if saved is not None and reservoir.keys.size < min(size, n_rows):
        # The guess was too low (fewer than size keys fell below it): scan again from the same
        # random stream without it. The result is the same sample as a single unguided scan.
        _restore(random_state, saved)
        reservoir = _scan(passes, size, random_state, n_features, dtype, np.inf)
    return reservoir.result()


def _restore(random_state, saved):
    """Put ``random_state`` back into the state of its copy ``saved``."""
    if isinstance(random_state, np.random.Generator):
        random_state.bit_generator.state = saved.bit_generator.state
    else:
        random_state.set_state(saved.get_state())


def _scan(passes, size, random_state, n_features, dtype, threshold):
    reservoir = Reservoir(size, n_features=n_features, dtype=dtype, threshold=threshold)
    for offset, X, weights in passes():
        reservoir.offer(offset, X, random_state, weights)
    return reservoir
