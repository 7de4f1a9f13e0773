"""The Dask engine: the same EM over the row blocks of a ``dask.array``, on a cluster.

``GaussianMixture.fit(X)`` with a Dask array ``X`` (rows chunked, columns in one chunk) runs on the
active ``distributed.Client`` or, without one, on Dask's local scheduler. The shape is that of
Spark's ``GaussianMixture`` and dask-ml's ``KMeans``: each iteration broadcasts the requests of
the pass, evaluates them on every block (:func:`fastgmm.providers.evaluate`, the same function
the in-memory and streamed providers run on their chunks), sums the results on the workers, and
runs the M-step on the client. :class:`DaskChunks` is a provider of the engine like the others
(:class:`fastgmm.providers.ChunkProvider`): the EM loop, the initialisation, model selection
and the outlier detector run on it unchanged, so the Dask fit cannot drift from the in-memory
one.

Decisions, with the alternatives that lost:

* **Reduction: a fixed tree of delayed sums** (fan-in :data:`SPLIT_EVERY`, blocks in index
  order). Its shape depends only on the number of blocks, so every iteration adds the same
  numbers in the same order: a fit is bit-identical from run to run, for any number of workers,
  on the local scheduler and on a cluster, and after a worker is lost and its blocks are
  recomputed. Summing futures ``as_completed`` would add in arrival order and change the last
  bits from run to run; ``dask.array.reduction`` wants one array per block, not the statistics'
  several arrays; ``dask.bag`` would add a partitioning layer for nothing. The sums run on the
  workers, next to the block statistics; only the total comes to the client.
* **Broadcast: ``Client.scatter(..., broadcast=True)``** once per iteration. Passing the
  parameters as a plain task argument would ship one copy per block through the scheduler
  (``K * D * D`` floats each, 8 MB per block for K = D = 100).
* **X is persisted, never scattered**: persisted blocks keep their lineage, so the blocks of a
  worker that dies are recomputed by Dask, whereas scattered data would be lost for good.
* **Threads: one per task.** Each task calls the kernels with ``n_threads=1``
  inside ``thread_limit(1)``, so a worker runs as many kernels as it has task threads and never
  more; parallelism comes from the blocks. No environment variable is touched: Numba's pool may
  already be running in the worker.
* **Initialisation is** :func:`fastgmm.init.initial_params` **itself**. The sample that k-means
  sees is drawn by the one reservoir sampler run over row *numbers* on the client (its random
  keys are drawn in row order, independently of the chunking), and only those rows are
  gathered from the blocks; 'random' ships each block the generator's state at the block's first
  row. The same ``random_state`` therefore gives the same initial parameters as a streamed fit
  of the same rows, without the data ever coming to the client.
"""

from __future__ import annotations

import copy
import functools
import math
import sys
import uuid
import warnings

import numpy as np

from ._jit import thread_limit
from ._reservoir import sample
from .providers import GIVEN, StatsRequest, combine, evaluate
from .validation import check_finite_rows

__all__ = [
    "SPLIT_EVERY",
    "DaskChunks",
    "DaskRows",
    "as_dask_chunks",
    "impute_lazily",
    "is_dask_array",
]

#: Fan-in of the reduction tree: partial sums of this many statistics per task. Statistics are
#: small and cheap to add, so a wide tree mostly saves scheduler round trips.
SPLIT_EVERY = 8

# Rows of generated row numbers or random draws held at once on the client.
_CLIENT_ROWS = 1 << 20


def is_dask_array(X) -> bool:
    """Whether ``X`` is a ``dask.array.Array``, without importing Dask.

    A Dask array can only exist once ``dask.array`` has been imported, so this costs nothing on
    the in-memory path.

    Examples
    --------
    >>> import numpy as np
    >>> from fastgmm.distributed import is_dask_array
    >>> is_dask_array(np.zeros((2, 2)))
    False
    """
    module = sys.modules.get("dask.array")
    return module is not None and isinstance(X, module.Array)


# ---------------------------------------------------------------------------- validation
def _block_label(what, block_info):
    """``"X (Dask block 3, rows 1500 to 1999)"`` for error messages, and the block's offset."""
    info = block_info[0]
    index = info["chunk-location"][0]
    start, stop = info["array-location"][0]
    if start is None or stop is None or math.isnan(start) or math.isnan(stop):
        return f"{what} (Dask block {index})", 0
    return f"{what} (Dask block {index}, rows {start} to {stop - 1})", int(start)


def _kernel_ready(array):
    """The array itself if the kernels can take it, else a writable C-contiguous copy.

    Numba compiles read-only and non-contiguous arrays as separate types; blocks that crossed
    the network may arrive read-only, and copying one block is cheaper than a second compile.
    """
    if array.flags.writeable and array.flags.c_contiguous:
        return array
    return np.array(array, order="C")


def _checked_block(block, allow_nan=False, block_info=None):
    """Fail with the block's index and rows if it holds NaN or infinity (runs on the workers);
    with ``allow_nan``, only infinity and rows without an observed entry fail."""
    label, offset = _block_label("X", block_info)
    check_finite_rows(block, label, row_offset=offset, allow_nan=allow_nan)
    return _kernel_ready(block)


def _checked_weights(block, block_info=None):
    """The checks of ``sample_weight`` for one block, naming the block."""
    label, offset = _block_label("sample_weight", block_info)
    bad = ~np.isfinite(block)
    if bad.any():
        row = int(np.argmax(bad))
        raise ValueError(
            f"Input {label} contains NaN or infinity: the first is row {row + offset} "
            f"({block[row]})."
        )
    negative = block < 0
    if negative.any():
        row = int(np.argmax(negative))
        raise ValueError(
            f"Negative values in data passed to `sample_weight`: {label} has "
            f"{int(negative.sum())}; the first is row {row + offset} ({block[row]})."
        )
    return _kernel_ready(block)


def _prepare(X, estimator_name, min_samples, stacklevel=3):
    """Lazy checks and conversions of a Dask array ``X``; returns an array with known row chunks.

    Column chunks are merged with a ``PerformanceWarning`` rather than refused: the fix is
    unambiguous and cheap (the pieces of one row block are concatenated, nothing is shuffled
    between row blocks), and refusing would only make every caller write the same rechunk.
    """
    from dask.array.core import PerformanceWarning

    if X.ndim != 2:
        raise ValueError(
            f"Expected a 2D Dask array, got a {X.ndim}D array of shape {X.shape} instead. "
            "Reshape your data, e.g. with X.reshape(-1, 1) for a single feature."
        )
    if X.dtype.kind not in "biuf":
        raise TypeError(
            f"X must be numeric (float64 or float32), but the Dask array has dtype {X.dtype}."
        )
    if X.dtype not in (np.float64, np.float32):
        X = X.astype(np.float64)
    if len(X.chunks[1]) > 1:
        warnings.warn(
            f"X is chunked along its columns (column chunks {X.chunks[1]}); fastgmm needs whole "
            "rows in every block and merges them with X.rechunk({1: -1}). Chunk the rows only "
            "to avoid the extra tasks.",
            PerformanceWarning,
            stacklevel=stacklevel,
        )
        X = X.rechunk({1: -1})
    if any(math.isnan(c) for c in X.chunks[0]):
        # Unknown block lengths (boolean masks, dataframe conversions): the offsets that error
        # messages and the initialisation need are measured once, on persisted blocks.
        X = X.persist()
        X.compute_chunk_sizes()
    n_samples, n_features = (int(s) for s in X.shape)
    if n_features < 1:
        raise ValueError(
            f"Found array with 0 feature(s) (shape=({n_samples}, 0)) while a minimum of 1 is "
            f"required by {estimator_name}."
        )
    if n_samples < min_samples:
        raise ValueError(
            f"Found array with {n_samples} sample(s) (shape=({n_samples}, {n_features})) while "
            f"a minimum of {min_samples} is required by {estimator_name}."
        )
    return X


def _prepare_weights(sample_weight, X):
    """``sample_weight`` as a float64 Dask array with ``X``'s row chunks."""
    import dask.array as da

    n_samples = X.shape[0]
    if is_dask_array(sample_weight):
        weights = sample_weight
        if any(math.isnan(c) for c in weights.chunks[0]):
            weights = weights.persist()
            weights.compute_chunk_sizes()
    else:
        weights = np.asarray(sample_weight)
        if weights.ndim == 0:  # sklearn accepts one number for every row
            weights = np.full(n_samples, float(weights))
    if weights.ndim != 1:
        raise ValueError(f"Sample weights must be 1D array or scalar, got {weights.ndim}D.")
    if weights.shape[0] != n_samples:
        raise ValueError(f"sample_weight.shape == ({weights.shape[0]},), expected ({n_samples},)!")
    if weights.dtype.kind not in "biuf":
        raise TypeError(f"sample_weight must be numeric, but has dtype {weights.dtype}.")
    if not is_dask_array(weights):
        weights = da.from_array(np.asarray(weights, dtype=np.float64), chunks=(X.chunks[0],))
    weights = weights.astype(np.float64)
    if weights.chunks[0] != X.chunks[0]:
        weights = weights.rechunk((X.chunks[0],))
    return weights


# ------------------------------------------------------------------------ scheduler glue
def _active_client():
    """The ``distributed.Client`` that ``dask.compute`` would use now, or None.

    Follows Dask's own rules (an explicit ``dask.config`` scheduler wins over a default client),
    so ``dask.config.set(scheduler="threads")`` selects the local path even beside a cluster.
    """
    if "distributed" not in sys.modules:
        return None
    from dask.base import get_scheduler

    owner = getattr(get_scheduler(), "__self__", None)
    return owner if type(owner).__name__ == "Client" else None


def _persist(client, collections):
    """Persist, wait, and raise the error of the first failing block in block order."""
    import dask
    from dask.core import flatten

    if client is None:
        return list(dask.persist(*collections))  # the local schedulers raise directly
    from distributed import futures_of, wait

    persisted = client.persist(list(collections))
    for collection in persisted:
        futures = {future.key: future for future in futures_of(collection)}
        wait(list(futures.values()))
        for key in flatten(collection.__dask_keys__()):
            future = futures.get(key)
            if future is not None and future.status == "error":
                future.result()  # re-raises the worker's exception (a ValueError naming the block)
    return persisted


def _block_results(block, weights, requests, offset, rngs):
    """The answers to every request for one block (a task), computed on one thread."""
    X = _kernel_ready(block)
    w = np.empty(0) if weights is None else _kernel_ready(weights)
    # thread_limit(1) as well as n_threads=1: whichever compiled flavour the kernel dispatcher
    # runs, it may use one thread, the task's own.
    with thread_limit(1):
        return [
            evaluate(request, X, w, offset, n_threads=1, rng=copy.deepcopy(rng))
            for request, rng in zip(requests, rngs)
        ]


def _sum_results(*parts):
    """Left-to-right sums, request by request: the order of the tree's leaves, whatever order
    they finished in."""
    return [functools.reduce(combine, answers) for answers in zip(*parts)]


def _tree_sum(parts, split_every=SPLIT_EVERY):
    """A delayed sum of ``parts`` whose shape depends only on ``len(parts)``."""
    import dask

    while len(parts) > 1:
        parts = [
            dask.delayed(_sum_results, pure=False)(*parts[i : i + split_every])
            for i in range(0, len(parts), split_every)
        ]
    return parts[0]


def _take_rows(block, weights, rows):
    """Rows ``rows`` (block-local, increasing) of a block and of its weights."""
    return block[rows], None if weights is None else weights[rows]


def _block_method(block, estimator, method, block_info=None):
    """``estimator.<method>(block)`` in a task, one thread; data errors name the block."""
    try:
        with thread_limit(1):
            return getattr(estimator, method)(block)
    except ValueError:
        # The in-memory message numbers rows within the block; say which block and rows.
        label, offset = _block_label("X", block_info)
        allow_nan = getattr(estimator, "missing", "raise") == "marginalize"
        check_finite_rows(block, label, row_offset=offset, allow_nan=allow_nan)
        raise


def _impute_block(block, estimator, want_std, block_info=None):
    """``estimator.impute(block)`` (or its standard deviations) in a task, one thread."""
    try:
        with thread_limit(1):
            if want_std:
                return estimator.impute(block, return_std=True)[1]
            return estimator.impute(block)
    except ValueError:
        label, offset = _block_label("X", block_info)
        check_finite_rows(block, label, row_offset=offset, allow_nan=True)
        raise


def impute_lazily(estimator, X, return_std=False):
    """``estimator.impute`` of a Dask array, block by block (lazy, like the scores).

    Examples
    --------
    One Gaussian with correlated coordinates: a hole is filled by the regression on the other.

    >>> import dask, dask.array as da, numpy as np
    >>> from fastgmm import GaussianMixture
    >>> from fastgmm.distributed import impute_lazily
    >>> gm = GaussianMixture(1).fit(np.random.default_rng(0).normal(size=(500, 1)) * [1, 1])
    >>> holes = np.array([[1.0, np.nan], [np.nan, -2.0], [3.0, np.nan], [0.5, 0.5]])
    >>> with dask.config.set(scheduler="sync"):
    ...     impute_lazily(gm, da.from_array(holes, chunks=(2, 2))).compute().round(2)
    array([[ 1. ,  1. ],
           [-2. , -2. ],
           [ 3. ,  3. ],
           [ 0.5,  0.5]])
    """
    rows = validated(estimator, X)
    single = copy.copy(estimator)
    single.n_jobs = 1
    token = uuid.uuid4().hex
    dtype = rows.dtype

    def mapped(want_std):
        return rows.X.map_blocks(
            _impute_block,
            single,
            want_std,
            dtype=dtype,
            meta=np.empty((0, 0), dtype=dtype),
            name=f"fastgmm-impute-{int(want_std)}-{token}",
        )

    return (mapped(False), mapped(True)) if return_std else mapped(False)


class _RowNumbers:
    """Chunks whose rows are row numbers: drives the reservoir sampler on the client.

    The sampler draws one random key per row in row order and keeps the smallest; run over row
    numbers it picks the same rows as over the data, and returns their numbers.
    """

    def __init__(self, n_samples):
        self.n_samples = n_samples
        self.n_features = 1
        self.dtype = np.dtype(np.int64)

    def chunks(self):
        empty = np.empty(0)
        for start in range(0, self.n_samples, _CLIENT_ROWS):
            stop = min(start + _CLIENT_ROWS, self.n_samples)
            yield start, np.arange(start, stop, dtype=np.int64)[:, None], empty


# ---------------------------------------------------------------------------- data classes
class DaskRows:
    """A validated Dask array for inference: scores, responsibilities and labels stay lazy.

    Parameters
    ----------
    X : dask.array.Array of shape (n_samples, n_features)
        Rows chunked, columns in one chunk, float32 or float64.

    Examples
    --------
    >>> import dask
    >>> import dask.array as da
    >>> import numpy as np
    >>> from fastgmm import GaussianMixture
    >>> from fastgmm.distributed import DaskRows
    >>> X = np.random.default_rng(0).normal(size=(40, 2))
    >>> gm = GaussianMixture(2, random_state=0).fit(X)
    >>> rows = DaskRows(da.from_array(X, chunks=(10, 2)))
    >>> log_prob, _, labels = rows.score(gm, want_labels=True)  # lazy Dask arrays
    >>> with dask.config.set(scheduler="sync"):
    ...     bool(np.array_equal(labels.compute(), gm.predict(X)))
    True
    """

    def __init__(self, X):
        self.X = X
        self.n_features = int(X.shape[1])
        self.dtype = X.dtype

    def score(self, estimator, *, want_resp=False, want_labels=False):
        """Lazy ``(log_prob, resp, labels)`` from ``estimator``'s in-memory methods per block.

        Each block runs ``score_samples``, ``predict_proba`` or ``predict`` of a copy of the
        fitted estimator with ``n_jobs=1``. Outputs not asked for are None.
        """
        single = copy.copy(estimator)
        single.n_jobs = 1
        X = self.X
        token = uuid.uuid4().hex
        rows = X.chunks[0]

        def mapped(method, dtype, chunks):
            extra = {"drop_axis": 1} if len(chunks) == 1 else {}
            return X.map_blocks(
                _block_method,
                single,
                method,
                dtype=dtype,
                chunks=chunks,
                meta=np.empty((0,) * len(chunks), dtype=dtype),
                name=f"fastgmm-{method}-{token}",
                **extra,
            )

        log_prob = mapped("score_samples", np.float64, (rows,))
        resp = None
        if want_resp:
            resp = mapped("predict_proba", np.float64, (rows, (single._n_output_columns(),)))
        labels = mapped("predict", np.int64, (rows,)) if want_labels else None
        return log_prob, resp, labels


class DaskChunks(DaskRows):
    """A persisted, validated Dask array as a provider of the engine.

    The Dask twin of :class:`fastgmm.providers.ArrayChunks`: :meth:`collect` answers a pass's
    requests where the blocks live, :meth:`sample_rows` gathers only the sampled rows. Build it
    with :func:`as_dask_chunks`. The persisted blocks are released when the object is dropped.

    Attributes
    ----------
    X : dask.array.Array
        The persisted, checked blocks (C-contiguous float32 or float64).
    sample_weight : dask.array.Array or None
        Persisted float64 weights with ``X``'s row chunks.
    client : distributed.Client or None
        The cluster, or None on Dask's local scheduler.
    n_samples, n_features : int
    dtype : numpy.dtype
    block_rows : tuple of int
        Rows per block.

    Examples
    --------
    >>> import dask
    >>> import dask.array as da
    >>> import numpy as np
    >>> from fastgmm.distributed import as_dask_chunks
    >>> from fastgmm.providers import StatsRequest
    >>> from fastgmm.stats import DIAG, SharedLayout
    >>> layout = SharedLayout.diagonal(np.ones(1), np.zeros((1, 2)), np.ones((1, 2)))
    >>> with dask.config.set(scheduler="sync"):
    ...     data = as_dask_chunks(da.ones((6, 2), chunks=(4, 2)))
    ...     [stats] = data.collect([StatsRequest(layout, np.zeros((1, 2)), DIAG)])
    >>> data.n_blocks, data.block_rows, stats.n_rows
    (2, (4, 2), 6)
    """

    def __init__(self, X, sample_weight, client):
        super().__init__(X)
        self.sample_weight = sample_weight
        self.client = client
        self.n_samples = int(X.shape[0])
        self.block_rows = tuple(int(c) for c in X.chunks[0])
        self.block_starts = np.concatenate([[0], np.cumsum(self.block_rows)[:-1]]).astype(int)
        self._x_blocks = list(X.to_delayed(optimize_graph=False).ravel())
        if sample_weight is None:
            self._w_blocks = [None] * len(self._x_blocks)
        else:
            self._w_blocks = list(sample_weight.to_delayed(optimize_graph=False).ravel())

    @property
    def n_blocks(self) -> int:
        return len(self.block_rows)

    def compute(self, *collections):
        """``dask.compute`` on this data's scheduler."""
        import dask

        if self.client is None:
            return dask.compute(*collections)
        return dask.compute(*collections, scheduler=self.client)

    def _broadcast(self, payload):
        import dask

        if self.client is None:
            return dask.delayed(payload, name=f"fastgmm-params-{uuid.uuid4().hex}", traverse=False)
        return self.client.scatter(payload, broadcast=True, hash=False)

    def count_rows(self) -> int:
        """The number of rows (known: the blocks' lengths were measured when persisting)."""
        return self.n_samples

    def in_memory(self):
        """None: the rows stay on the workers."""
        return None

    def first_row(self) -> np.ndarray:
        """The first row (fetched alone)."""
        rows, _ = self.take_rows(np.array([0]))
        return rows[0]

    def collect(self, requests, *, n_threads=None) -> list:
        """Answer every request in one pass over the blocks, on the workers.

        The requests are broadcast once; each block task evaluates all of them
        (:func:`fastgmm.providers.evaluate`), and a fixed tree sums the answers. A ``GIVEN``
        request that draws random responsibilities gets, per block, a copy of its generator
        advanced to the block's first row, so the draws are those of one pass in row order.
        """
        import dask

        requests = list(requests)
        payload = self._broadcast(requests)
        block_rngs = [[None] * len(requests) for _ in range(self.n_blocks)]
        for j, request in enumerate(requests):
            if isinstance(request, StatsRequest) and request.mode == GIVEN and request.resp is None:
                n_components = request.layout.n_components
                for b, rng in enumerate(self.block_generators(request.random_state, n_components)):
                    block_rngs[b][j] = rng
        parts = [
            dask.delayed(_block_results, pure=False)(x, w, payload, int(start), rngs)
            for x, w, start, rngs in zip(
                self._x_blocks, self._w_blocks, self.block_starts, block_rngs
            )
        ]
        (results,) = self.compute(_tree_sum(parts))
        for result in results:
            n_rows = getattr(result, "n_rows", None)
            if n_rows is not None and n_rows != self.n_samples:
                # A lost or duplicated block must not pass silently.
                raise RuntimeError(
                    f"The statistics covered {n_rows} rows, but X has {self.n_samples}."
                )
        return results

    def take_rows(self, rows):
        """Rows ``rows`` (global, increasing) and their weights, gathered from their blocks.

        Returns
        -------
        X_rows : ndarray of shape (len(rows), n_features), in ``X``'s dtype, C-contiguous
        weights : ndarray of shape (len(rows),) or None
        """
        import dask

        rows = np.asarray(rows, dtype=np.int64)
        block_of = np.searchsorted(self.block_starts, rows, side="right") - 1
        parts = []
        for b in np.unique(block_of):
            local = rows[block_of == b] - self.block_starts[b]
            task = dask.delayed(_take_rows, pure=False, nout=2)
            parts.append(task(self._x_blocks[b], self._w_blocks[b], local))
        gathered = self.compute(*parts)
        sample_ = np.ascontiguousarray(np.concatenate([x for x, _ in gathered]))
        weights = None if self.sample_weight is None else np.concatenate([w for _, w in gathered])
        return sample_, weights

    def sample_rows(self, size, random_state):
        """The uniform sample a stream of the same rows gives with the same generator:
        ``(rows, weights or None, row numbers)``."""
        numbers = _RowNumbers(self.n_samples)
        _, _, rows = sample(
            numbers.chunks, size, random_state, n_features=1, dtype=np.int64, n_rows=self.n_samples
        )
        picked, weights = self.take_rows(rows)
        return picked, weights, rows

    def block_generators(self, random_state, n_per_row):
        """Per block, a copy of ``random_state`` advanced to the block's first row.

        ``n_per_row`` uniform draws per row are skipped on the client (in bounded pieces), so
        block ``b`` continues the very stream that one draw over all rows would have produced.
        """
        generators = []
        for n_rows in self.block_rows:
            generators.append(copy.deepcopy(random_state))
            for start in range(0, n_rows, _CLIENT_ROWS):
                random_state.uniform(size=(min(_CLIENT_ROWS, n_rows - start), n_per_row))
        return generators


def as_dask_chunks(
    X, sample_weight=None, *, min_samples=1, estimator_name="fastgmm", allow_nan=False
):
    """Validate a Dask array, persist it on the active scheduler, and wrap it for the EM core.

    The result is a provider of the engine (:class:`fastgmm.providers.ChunkProvider`) for
    every fit: ``GaussianMixture``, model selection and the outlier detector.

    Parameters
    ----------
    X : dask.array.Array of shape (n_samples, n_features)
        Rows may be chunked freely; column chunks are merged with a ``PerformanceWarning``.
        Integer data are converted to float64.
    sample_weight : dask.array.Array, array-like or None
        Non-negative row weights; rechunked like ``X``'s rows.
    min_samples : int
        Fewest rows accepted.
    estimator_name : str
        Used in error messages.
    allow_nan : bool
        NaN marks a missing entry (``missing='marginalize'``): only infinity, and rows whose
        every entry is NaN, are refused.

    Returns
    -------
    DaskChunks

    Raises
    ------
    ValueError
        NaN or infinity in a block (the message names the block index and its rows), negative
        or non-finite weights, all-zero weights, too few rows.

    Examples
    --------
    >>> import dask
    >>> import dask.array as da
    >>> from fastgmm.distributed import as_dask_chunks
    >>> X = da.ones((6, 2), chunks=(3, 2))
    >>> with dask.config.set(scheduler="sync"):
    ...     data = as_dask_chunks(X)
    >>> data.n_samples, data.block_rows
    (6, (3, 3))
    """
    from dask.base import tokenize

    client = _active_client()
    X = _prepare(X, estimator_name, min_samples)
    weights = None if sample_weight is None else _prepare_weights(sample_weight, X)
    token = tokenize(X, weights, allow_nan)
    collections = [
        X.map_blocks(
            _checked_block,
            allow_nan,
            dtype=X.dtype,
            meta=np.empty((0, 0), X.dtype),
            name=f"fastgmm-X-{token}",
        )
    ]
    if weights is not None:
        collections.append(
            weights.map_blocks(
                _checked_weights,
                dtype=np.float64,
                meta=np.empty(0),
                name=f"fastgmm-sample_weight-{token}",
            )
        )
    persisted = _persist(client, collections)
    data = DaskChunks(persisted[0], persisted[1] if weights is not None else None, client)
    if weights is not None:
        (total,) = data.compute(data.sample_weight.sum())
        if not total > 0:
            raise ValueError("sample_weight is all zero: at least one weight must be > 0.")
    return data


def validated(estimator, X) -> DaskRows:
    """The Dask counterpart of ``GaussianMixture._validated``: checks stay lazy."""
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(estimator)
    X = _prepare(X, type(estimator).__name__, min_samples=0, stacklevel=5)
    if X.shape[1] != estimator.n_features_in_:
        raise ValueError(
            f"X has {X.shape[1]} features, but {type(estimator).__name__} is expecting "
            f"{estimator.n_features_in_} features as input."
        )
    return DaskRows(X)
