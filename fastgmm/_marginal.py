"""One chunk whose rows may hold NaN: missing entries marginalised out, exactly.

The counterparts of :func:`fastgmm.estep.chunk_statistics` and :func:`fastgmm.estep.score_chunk`
for fits with ``missing='marginalize'``. A chunk without NaN goes to them unchanged (the same
results, bit for bit, as a fit that refuses NaN). Otherwise its complete rows still go to them,
gathered into one array, and only the rows that hold a NaN go to the kernels of
:mod:`fastgmm._kernels.missing` (the exact E-step of Ghahramani & Jordan 1994), sorted by their
pattern of missing entries; the two parts are added, about the same shifts.

This module lays the parameters out for those kernels (each component's precision, a factor of
it, and whether it is diagonal) and turns their output into
:class:`~fastgmm.stats.SufficientStats` of the kind the covariance model needs: the kernels
accumulate per-component full or diagonal moments, and a pooled kind is their sum over the
components (the pooled moment about the per-component shifts, by definition). Nothing here
depends on the covariance model beyond its layout and its statistics kind.
"""

from __future__ import annotations

import contextvars
from contextlib import contextmanager

import numpy as np

from . import estep
from ._kernels.blocks import BLOCK
from ._kernels.modes import GIVEN, SCORE, SOFT
from .stats import DIAG, FULL, POOLED, FactorLayout, SufficientStats

__all__ = [
    "chunk_statistics",
    "fill_missing",
    "forced_kernel",
    "impute_chunk",
    "marginal_form",
    "marginal_scores",
    "marginal_statistics",
    "missing_block_rows",
    "nan_rows",
    "row_keys",
    "score_chunk",
    "sort_by_key",
    "split_rows",
]

# Bytes of the per-block buffer of filled rows (one (D, block) array per component): the block
# is cut to keep it near the L2 cache, and never below BLOCK rows.
_FILLED_BYTES = 1 << 20
_MAX_BLOCK = 1024
# Rows per task of the parallel scans (keys, sorts, gathers), and their largest slot count.
_SCAN_ROWS = 1 << 14
_MAX_SLOTS = 64
# Rows of a chunk are sorted by pattern within stretches of this many bytes (see split_rows).
_STRETCH_BYTES = 4 << 20
# The feature map per pattern needs runs of at least this many rows per feature, on average.
_MAP_RUN_ROWS = 2
_FORCED = contextvars.ContextVar("fastgmm_forced_missing_kernel", default=None)


def missing_block_rows(n_components: int, n_features: int) -> int:
    """Rows per block of the missing-value kernels.

    Examples
    --------
    >>> from fastgmm._marginal import missing_block_rows
    >>> missing_block_rows(8, 8), missing_block_rows(32, 64)
    (1024, 256)
    """
    rows = _FILLED_BYTES // (8 * n_components * n_features)
    return int(min(_MAX_BLOCK, max(BLOCK, rows // 64 * 64)))


def row_keys(X: np.ndarray, *, stretch=0, stretch_shift=0, n_threads=None) -> np.ndarray:
    """Each row's pattern key (uint64): 0 for a complete row (see
    :func:`fastgmm._kernels.missing.pattern_keys`).

    Examples
    --------
    >>> import numpy as np
    >>> from fastgmm._marginal import row_keys
    >>> row_keys(np.array([[1.0, 2.0], [np.nan, 0.0], [3.0, np.nan]]))
    array([0, 1, 2], dtype=uint64)
    """
    from ._kernels.missing import pattern_keys

    keys = np.empty(X.shape[0], dtype=np.uint64)
    pattern_keys(X, keys, stretch, stretch_shift, _SCAN_ROWS, n_threads=n_threads)
    return keys


def nan_rows(X: np.ndarray, *, n_threads=None) -> np.ndarray:
    """The indices (int64, increasing) of the rows of ``X`` that hold a NaN.

    Examples
    --------
    >>> import numpy as np
    >>> from fastgmm._marginal import nan_rows
    >>> nan_rows(np.array([[1.0, 2.0], [np.nan, 0.0], [3.0, np.nan]]))
    array([1, 2])
    """
    return np.flatnonzero(row_keys(X, n_threads=n_threads)).astype(np.int64)


def sort_by_key(keys: np.ndarray, n_bits: int, *, n_threads=None) -> np.ndarray:
    """The stable argsort (int64) of ``keys``, whose values are below ``2**n_bits``.

    A parallel least-significant-digit radix sort on digits of up to 16 bits: each pass counts
    the digits per slot (a fixed number of equal runs of rows, whatever the thread count, so
    the result never depends on it), then scatters each slot's rows in order. O(n) per digit:
    a million 12-bit keys in 10 ms, where NumPy's stable argsort took 75 ms.

    Examples
    --------
    >>> import numpy as np
    >>> from fastgmm._marginal import sort_by_key
    >>> sort_by_key(np.array([2, 0, 1, 0, 2], dtype=np.uint64), 2)
    array([1, 3, 2, 0, 4])
    """
    from ._kernels.missing import radix_histogram, radix_scatter

    n = len(keys)
    order = np.arange(n, dtype=np.int64)
    n_slots = int(max(1, min(_MAX_SLOTS, -(-n // _SCAN_ROWS))))
    for low in range(0, max(int(n_bits), 1), 16):
        width = max(1, min(16, int(n_bits) - low))
        counts = np.empty((n_slots, 1 << width), dtype=np.int64)
        radix_histogram(keys, order, np.uint64(low), counts, n_threads=n_threads)
        # Slot p's rows of digit c go after every row of a smaller digit, and after the rows
        # of digit c in the slots before p: an exclusive running sum, digit-major.
        totals = np.cumsum(counts.T.ravel())
        offsets = np.ascontiguousarray((totals - counts.T.ravel()).reshape(-1, n_slots).T)
        out = np.empty(n, dtype=np.int64)
        radix_scatter(keys, order, np.uint64(low), offsets, out, n_threads=n_threads)
        order = out
    return order


def split_rows(X: np.ndarray, *, sort: bool, n_threads=None):
    """``(complete, rows, keys)``: the complete rows of ``X`` (increasing), the rows that hold a
    NaN and their pattern keys, or None when no row holds a NaN.

    With ``sort``, ``rows`` are sorted by pattern (stable; see :func:`sort_by_key`): the
    kernels factorise once per (pattern, component) per block, and with the rows of a pattern
    contiguous a block holds long runs of few patterns whenever patterns repeat (D=8 at 20%
    missing: 114,000 runs in a million rows taken in order, 1,100 sorted). Without it (diagonal
    layouts, which need no factorisation) they stay in order and ``keys`` is empty.

    Examples
    --------
    >>> import numpy as np
    >>> from fastgmm._marginal import split_rows
    >>> X = np.array([[np.nan, 1.0], [2.0, np.nan], [0.0, 0.0], [np.nan, 3.0]])
    >>> split_rows(X, sort=True)
    (array([2]), array([0, 3, 1]), array([1, 1, 2], dtype=uint64))
    """
    n_bits = min(X.shape[1], 64)
    # Rows are sorted by pattern within stretches of _STRETCH_BYTES of the chunk, not across
    # it: the kernels then read rows near each other (in cache), and the runs stay long
    # (measured on N=1e6, D=8, K=8, 20% missing, one thread, exact kernels: 158 ms of CPU for
    # the rows with NaN, against 192 ms after one sort of the whole chunk). The stretch number
    # goes above the key's bits, while they fit.
    stretch = max(1, _STRETCH_BYTES // (X.itemsize * X.shape[1])) if sort else 0
    n_stretch_bits = int(max(X.shape[0] - 1, 1) // stretch).bit_length() if sort else 0
    if n_bits + n_stretch_bits > 64:
        stretch, n_stretch_bits = 0, 0
    keys = row_keys(X, stretch=stretch, stretch_shift=n_bits, n_threads=n_threads)
    if not keys.any():
        return None
    if not sort:
        complete = np.flatnonzero(keys == 0)
        return complete, np.flatnonzero(keys).astype(np.int64), np.empty(0, dtype=np.uint64)
    order = sort_by_key(keys, n_bits + n_stretch_bits, n_threads=n_threads)
    n_complete = len(keys) - int(np.count_nonzero(keys))
    rows = np.ascontiguousarray(order[n_complete:])
    return order[:n_complete], rows, np.ascontiguousarray(keys[rows])


def gather_rows(X: np.ndarray, rows: np.ndarray, *, n_threads=None) -> np.ndarray:
    """``X[rows]`` as a new C-contiguous array, copied in parallel.

    Examples
    --------
    >>> import numpy as np
    >>> from fastgmm._marginal import gather_rows
    >>> gather_rows(np.arange(6.0).reshape(3, 2), np.array([2, 0]))
    array([[4., 5.],
           [0., 1.]])
    """
    from ._kernels.missing import take_rows

    out = np.empty((len(rows), X.shape[1]), dtype=X.dtype)
    take_rows(X, rows, out, _SCAN_ROWS, n_threads=n_threads)
    return out


def marginal_form(layout) -> tuple:
    """The ``form`` argument of the missing-value kernels for a layout of any covariance model.

    ``(means, means_t, prec_t, factors, upper, diagonal, scales, log_const)``: the means and
    their transpose, the precision of every component (``F_k F_k^T``) with the components last
    (the kernels solve every component of a pattern at once, in SIMD lanes), its factor ``F_k``
    (the layout's own: ``U_k``, or ``T diag(s_k)`` for a shared transform), or for diagonal
    layouts only the scales.

    Examples
    --------
    >>> import numpy as np
    >>> from fastgmm._marginal import marginal_form
    >>> from fastgmm.stats import FactorLayout
    >>> layout = FactorLayout.build(np.ones(1), np.zeros((1, 2)), np.diag([2.0, 0.5])[None])
    >>> means, means_t, prec_t, factors, upper, diagonal, scales, log_const = marginal_form(
    ...     layout)
    >>> prec_t[:, :, 0], upper, diagonal
    (array([[4.  , 0.  ],
           [0.  , 0.25]]), True, False)
    """
    means = np.ascontiguousarray(layout.means, dtype=np.float64)
    n_components = means.shape[0]
    means_t = np.ascontiguousarray(means.T)
    log_const = np.ascontiguousarray(layout.log_const, dtype=np.float64)
    if layout.is_diagonal:
        empty = np.empty((n_components, 0, 0))
        scales = np.ascontiguousarray(layout.scales, dtype=np.float64)
        return means, means_t, np.empty((0, 0, 0)), empty, True, True, scales, log_const
    if isinstance(layout, FactorLayout):
        factors = np.ascontiguousarray(layout.prec, dtype=np.float64)
        upper = True
    else:
        factors = np.ascontiguousarray(layout.factors(), dtype=np.float64)
        upper = bool(layout.triangular)
    precisions = factors @ np.swapaxes(factors, 1, 2)
    prec_t = np.ascontiguousarray(np.moveaxis(precisions, 0, -1))
    return means, means_t, prec_t, factors, upper, False, np.empty((0, 0)), log_const


def marginal_statistics(
    X, rows, keys, sample_weight, layout, shift, kind, *, mode, resp, want_entropy, n_threads
) -> SufficientStats:
    """Statistics of the rows ``rows`` of ``X`` (each holding a NaN), about ``shift``.

    Responsibilities come from the marginal densities of the observed entries; the statistics
    are the expected complete-data ones (see :mod:`fastgmm._kernels.missing`). ``rows`` and
    ``keys`` come from :func:`split_rows` (sorted by pattern, unless the layout is diagonal).
    EM and scoring passes go through a feature map per pattern
    (:mod:`fastgmm._kernels.missing_map`) where the complete rows would go through theirs.

    Examples
    --------
    One component, unit covariance: the missing entry is replaced by the mean, and the second
    moment gets the conditional variance (1) in its place.

    >>> import numpy as np
    >>> from fastgmm._marginal import marginal_statistics
    >>> from fastgmm.stats import DIAG, SharedLayout
    >>> layout = SharedLayout.diagonal(np.ones(1), np.zeros((1, 2)), np.ones((1, 2)))
    >>> X = np.array([[2.0, np.nan]])
    >>> stats = marginal_statistics(X, np.array([0]), np.empty(0, np.uint64), np.empty(0),
    ...                             layout, np.zeros((1, 2)), DIAG, mode=0, resp=None,
    ...                             want_entropy=False, n_threads=1)
    >>> stats.s1, stats.s2
    (array([[2., 0.]]), array([[[4., 1.]]]))
    """
    n_components, n_features = layout.means.shape
    block = missing_block_rows(n_components, n_features)
    per_component = 1 + n_features + (n_features if kind == DIAG else n_features**2)
    n_slots = estep.n_slots_for(len(rows), n_components, per_component, block)
    shift = np.ascontiguousarray(shift, dtype=np.float64)
    form = marginal_form(layout)
    fmap = _feature_map(layout, kind, keys) if mode in (SOFT, SCORE) else None
    if fmap is not None:
        from ._kernels.missing_map import missing_map_statistics as statistics

        form = (form[0], np.ascontiguousarray(fmap.centre), form[2], form[7])
        given = ()  # EM and scoring passes only: no responsibilities to read
    else:
        from ._kernels.missing import missing_statistics as statistics

        given = (np.empty((0, n_components)) if resp is None else resp,)
    args = (X, rows, keys, sample_weight, form, shift, *given, mode, kind, want_entropy, n_slots)
    nk, s1, s2, totals, weight_sum = statistics(*args, block, n_threads=n_threads)
    stats = SufficientStats(
        nk,
        s1,
        s2,
        DIAG if kind == DIAG else FULL,
        shift,
        float(totals[0]),
        float(weight_sum),
        len(rows),
        float(totals[1]),
        float(totals[2]),
    )
    return stats.reduced(POOLED) if kind == POOLED else stats


def _feature_map(layout, kind, keys):
    """The feature map the rows with NaN go through (:mod:`fastgmm._kernels.missing_map`), or
    None for the exact kernels.

    The map where the complete rows' path choice would take it (forced paths included), and
    only when the rows' patterns repeat: its algebra per run of one pattern costs O(K D^3),
    against O(K D^2) per row, so runs must be long. Measured on N=1e6, K=8: at D=8 and 20%
    missing (runs of 200 rows) the map's iteration took 2.6x a complete one against 3.8x for
    the exact kernels; at D=32 and 5% missing (every pattern nearly unique) it took 35 s
    against 6.7 s for the exact kernels. Never for diagonal layouts, whose exact kernel
    factorises nothing.
    """
    if layout.is_diagonal or len(keys) == 0:
        return None
    forced = _FORCED.get()
    if forced == "exact":
        return None
    if forced is None:
        if estep.choose_path(layout, FULL if kind == POOLED else kind, np.float64) != "map":
            return None
        n_runs = 1 + int(np.count_nonzero(keys[1:] != keys[:-1]))
        if len(keys) < _MAP_RUN_ROWS * layout.means.shape[1] * n_runs:
            return None
    return layout.feature_map(np.float64, FULL)


@contextmanager
def forced_kernel(name=None):
    """Force the kernel of the rows with NaN inside the block: ``'map'`` (where the layout has
    a feature map) or ``'exact'``. A private switch for tests, as
    :func:`fastgmm.estep.forced_path` is for the complete rows.

    Examples
    --------
    >>> from fastgmm._marginal import forced_kernel
    >>> with forced_kernel("exact"):
    ...     pass
    """
    if name not in (None, "map", "exact"):
        raise ValueError(f"Unknown kernel {name!r}.")
    token = _FORCED.set(name)
    try:
        yield
    finally:
        _FORCED.reset(token)


def marginal_scores(
    X,
    rows,
    keys,
    layout,
    *,
    out_lse,
    out_resp=None,
    out_labels=None,
    out_mean=None,
    out_var=None,
    n_threads=None,
):
    """Per-row outputs of the rows ``rows`` of ``X`` (each holding a NaN), written in place.

    ``rows`` and ``keys`` come from :func:`split_rows`. ``out_lse`` (n_samples,) receives the
    log-likelihood of the observed entries, ``out_resp`` (n_samples, K) and ``out_labels``
    (n_samples,) the posterior probabilities and the most probable component, and
    ``out_mean``/``out_var`` (n_samples, D) the conditional mean and variance of each missing
    entry under the mixture (the observed entries copied, and 0); only the rows in ``rows``
    are written, and the outputs left as None are not computed.

    Examples
    --------
    >>> import numpy as np
    >>> from fastgmm._marginal import marginal_scores
    >>> from fastgmm.stats import FactorLayout
    >>> cov = np.array([[1.0, 0.8], [0.8, 1.0]])
    >>> U = np.linalg.cholesky(np.linalg.inv(cov)[::-1, ::-1])[::-1, ::-1]  # U U^T = inv(cov)
    >>> layout = FactorLayout.build(np.ones(1), np.zeros((1, 2)), U[None])
    >>> X = np.array([[1.0, np.nan]])
    >>> lse, mean, var = np.empty(1), np.empty((1, 2)), np.empty((1, 2))
    >>> marginal_scores(X, np.array([0]), np.array([2], np.uint64), layout, out_lse=lse,
    ...                 out_mean=mean, out_var=var)
    >>> mean.round(12), var.round(12)  # x_2 | x_1 = 1 is N(0.8, 1 - 0.8**2)
    (array([[1. , 0.8]]), array([[0.  , 0.36]]))
    """
    from ._kernels.missing import missing_scores

    n_components, n_features = layout.means.shape
    outputs = (
        out_lse,
        np.empty((0, n_components)) if out_resp is None else out_resp,
        np.empty(0, dtype=np.int64) if out_labels is None else out_labels,
        np.empty((0, n_features)) if out_mean is None else out_mean,
        np.empty((0, n_features)) if out_var is None else out_var,
    )
    missing_scores(
        X,
        rows,
        keys,
        marginal_form(layout),
        outputs,
        missing_block_rows(n_components, n_features),
        n_threads=n_threads,
    )


def chunk_statistics(
    X,
    sample_weight,
    layout,
    shift,
    kind,
    *,
    mode=SOFT,
    resp=None,
    want_entropy=False,
    n_threads=None,
) -> SufficientStats:
    """:func:`fastgmm.estep.chunk_statistics` for rows that may hold NaN (marginalised), with
    its arguments.

    Complete rows take the usual kernels (gathered into one array when the chunk also holds
    incomplete rows), the others :func:`marginal_statistics`; the parts are added about the
    shifts of the first (the feature map takes its moments about its own centre).

    Examples
    --------
    >>> import numpy as np
    >>> from fastgmm import _marginal
    >>> from fastgmm.stats import DIAG, SharedLayout
    >>> X = np.array([[0.0, 0.0], [0.2, np.nan], [5.0, 5.0], [np.nan, 4.9]])
    >>> means = np.array([[0.0, 0.0], [5.0, 5.0]])
    >>> layout = SharedLayout.diagonal(np.array([0.5, 0.5]), means, np.ones((2, 2)))
    >>> stats = _marginal.chunk_statistics(X, np.empty(0), layout, means, DIAG)
    >>> stats.nk.round(3), stats.n_rows
    (array([2., 2.]), 4)
    """
    options = {"mode": mode, "want_entropy": want_entropy, "n_threads": n_threads}
    parts = split_rows(X, sort=not layout.is_diagonal, n_threads=n_threads)
    if parts is None:
        return estep.chunk_statistics(X, sample_weight, layout, shift, kind, resp=resp, **options)
    if mode == GIVEN and resp is None:
        raise ValueError("mode=GIVEN needs the responsibilities.")
    complete, rows, keys = parts
    total = None
    if complete.size:
        total = estep.chunk_statistics(
            gather_rows(X, complete, n_threads=n_threads),
            sample_weight[complete] if sample_weight.size else sample_weight,
            layout,
            shift,
            kind,
            resp=None if resp is None else np.ascontiguousarray(resp[complete]),
            **options,
        )
        shift = total.shift
    part = marginal_statistics(
        X, rows, keys, sample_weight, layout, shift, kind, resp=resp, **options
    )
    return part if total is None else total + part


def score_chunk(X, layout, *, n_threads=None, **outputs):
    """:func:`fastgmm.estep.score_chunk` for rows that may hold NaN (marginalised), with its
    keyword arguments (``want_resp``, ``want_labels``, ``out_lse``, ``out_resp``,
    ``out_labels``) and its return value.

    A row's log-likelihood is that of its observed entries; its responsibilities are the
    posterior probabilities given them.

    Examples
    --------
    >>> import numpy as np
    >>> from fastgmm import _marginal
    >>> from fastgmm.stats import SharedLayout
    >>> layout = SharedLayout.diagonal(np.array([0.5, 0.5]), np.array([[0.0, 0.0], [5.0, 5.0]]),
    ...                                np.ones((2, 2)))
    >>> X = np.array([[0.0, 0.0], [np.nan, 0.1], [5.0, np.nan]])
    >>> log_lik, _, labels = _marginal.score_chunk(X, layout, want_labels=True)
    >>> labels, bool(log_lik[1] > log_lik[0])  # one density value instead of two
    (array([0, 0, 1]), True)
    """
    parts = split_rows(X, sort=not layout.is_diagonal, n_threads=n_threads)
    if parts is None:
        return estep.score_chunk(X, layout, n_threads=n_threads, **outputs)
    complete, rows, keys = parts
    # The outputs for every row: the caller's, or new ones (empty unless wanted).
    n_samples = X.shape[0]
    layouts = {
        "out_lse": ((), np.float64),
        "out_resp": ((layout.n_components,), np.float64),
        "out_labels": ((), np.int64),
    }
    out = {}
    for name, (trailing, dtype) in layouts.items():
        wanted = name == "out_lse" or outputs.get("want_" + name[4:], False)
        given = outputs.get(name)
        if given is None:
            given = np.empty(((n_samples if wanted else 0), *trailing), dtype)
        out[name] = given
    if complete.size:
        scored = estep.score_chunk(
            gather_rows(X, complete, n_threads=n_threads),
            layout,
            want_resp=out["out_resp"].shape[0] > 0,
            want_labels=out["out_labels"].shape[0] > 0,
            n_threads=n_threads,
        )
        for target, part in zip(out.values(), scored):
            if target.shape[0]:
                target[complete] = part
    marginal_scores(
        X,
        rows,
        keys,
        layout,
        **{name: array if array.shape[0] else None for name, array in out.items()},
        n_threads=n_threads,
    )
    estep._check_scores(out["out_lse"])
    return out["out_lse"], out["out_resp"], out["out_labels"]


def impute_chunk(X: np.ndarray, layout, *, want_var: bool = False, n_threads: int | None = None):
    """Each missing entry of ``X`` replaced by its conditional mean under the mixture.

    Returns
    -------
    filled : ndarray of shape (n_samples, n_features), float64
        ``X`` with every NaN replaced by ``sum_k r_k x_hat_k`` (responsibilities from the
        observed entries).
    variance : ndarray of shape (n_samples, n_features), or None unless ``want_var``
        The conditional variance of each entry under the mixture (0 where observed).

    Examples
    --------
    >>> import numpy as np
    >>> from fastgmm._marginal import impute_chunk
    >>> from fastgmm.stats import SharedLayout
    >>> layout = SharedLayout.diagonal(np.array([0.5, 0.5]), np.array([[0.0, 0.0], [5.0, 5.0]]),
    ...                                np.ones((2, 2)))
    >>> filled, _ = impute_chunk(np.array([[0.1, np.nan], [np.nan, 5.2]]), layout)
    >>> filled.round(3)
    array([[0.1, 0. ],
           [5. , 5.2]])
    """
    filled = np.array(X, dtype=np.float64, order="C")
    variance = np.zeros(X.shape) if want_var else None
    parts = split_rows(X, sort=not layout.is_diagonal, n_threads=n_threads)
    if parts is not None:
        _, rows, keys = parts
        marginal_scores(
            X,
            rows,
            keys,
            layout,
            out_lse=np.empty(X.shape[0]),
            out_mean=filled,
            out_var=variance,
            n_threads=n_threads,
        )
    return filled, variance


def fill_missing(X: np.ndarray, fill: np.ndarray) -> np.ndarray:
    """``X`` with each NaN replaced by its column's value in ``fill`` (a copy if any; ``X``
    itself if none), in ``X``'s dtype.

    Examples
    --------
    >>> import numpy as np
    >>> from fastgmm._marginal import fill_missing
    >>> fill_missing(np.array([[1.0, np.nan], [np.nan, 4.0]]), np.array([2.0, 3.0]))
    array([[1., 3.],
           [2., 4.]])
    """
    rows = nan_rows(X)
    if rows.size == 0:
        return X
    out = np.array(X, order="C")
    part = out[rows]
    holes = np.isnan(part)
    part[holes] = np.broadcast_to(fill.astype(X.dtype), part.shape)[holes]
    out[rows] = part
    return out
