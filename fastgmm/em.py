"""The EM loop over any provider of row chunks.

``run_em`` does not know where rows come from: an in-memory array, a file read chunk by chunk or
(through :mod:`fastgmm.distributed`) Dask blocks all reduce to "give me the summed statistics of
every row under these parameters". That function is passed in as ``collect``; the loop adds the
convergence test, the lower-bound history and the M-step, exactly as scikit-learn orders them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np

from . import _interrupts
from ._kernels.blocks import BLOCK, GEMM_MIN_FEATURES
from ._kernels.estep import (
    GIVEN,
    HARD,
    SOFT,
    em_statistics,
    feature_scores,
    feature_statistics,
    score_rows,
)
from .stats import (
    KernelParams,
    MixtureParams,
    SufficientStats,
    kernel_params,
    m_step,
    precision_cholesky,
    unpack_feature_statistics,
)

__all__ = [
    "GIVEN",
    "HARD",
    "SOFT",
    "ArrayChunks",
    "EMResult",
    "chunk_statistics",
    "collect_statistics",
    "params_from_stats",
    "run_em",
    "score_chunk",
]

# Bytes allowed for the per-slot partial statistics of one kernel call.
_PARTIALS_BUDGET = 256 * 2**20
# Upper bound on slots: enough to keep 64 threads busy, few enough that the final reduction and
# the partial buffers stay small.
_MAX_SLOTS = 64


def block_rows_for(n_features: int, s2_rows: int, itemsize: int = 8) -> int:
    """Rows per E-step block for a problem shape and the data's item size (4 for float32).

    The loop kernels want blocks that stay in L1/L2 (``BLOCK`` rows). The BLAS path (full
    covariances from ``GEMM_MIN_FEATURES`` features) wants larger products to amortise BLAS's
    packing. Measured (one thread): on N=1e4, D=128, K=16 1024-row blocks take 20% less time
    than 256-row ones, and 2048 rows gain nothing more; on D=32, K=32 blocks beyond 1024 rows
    were slower. Single-precision BLAS prefers 512 rows (2 threads, N=2e5, D=128, K=16: 0.98 s
    against 1.11 s with 1024 rows; D=32, K=32: 0.25 s against 0.29 s).
    """
    if s2_rows == 1 or n_features < GEMM_MIN_FEATURES:
        return BLOCK
    most = 512 if itemsize == 4 else 1024
    return int(min(most, max(BLOCK, (2**17 // n_features) // 64 * 64)))


def n_slots_for(
    n_rows: int, n_components: int, s2_rows: int, n_features: int, block: int = BLOCK
) -> int:
    """Number of partial-statistics slots for a kernel call.

    Depends only on the problem's shape, never on the thread count, so the order of every sum is
    fixed and results are bit-identical for any number of threads.
    """
    n_blocks = max(1, -(-n_rows // block))
    per_slot = 8 * n_components * (1 + n_features + s2_rows * n_features)
    return int(max(1, min(n_blocks, _MAX_SLOTS, _PARTIALS_BUDGET // max(per_slot, 1))))


class ArrayChunks:
    """An in-memory data set as the chunk provider of the EM core.

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
    >>> from fastgmm.em import ArrayChunks
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


def chunk_statistics(
    X: np.ndarray,
    sample_weight: np.ndarray,
    kparams: KernelParams,
    shift: np.ndarray,
    *,
    mode: int = SOFT,
    resp: np.ndarray | None = None,
    n_threads: int | None = None,
) -> SufficientStats:
    """Sufficient statistics of one chunk (the fused E-step).

    ``shift`` is the origin of the moments for the per-component kernel; the feature-map kernel
    (small full models, all diagonal ones) takes its moments about the centre of the means, and
    the returned statistics say which in their ``shift``.

    Examples
    --------
    >>> import numpy as np
    >>> from fastgmm.stats import MixtureParams, kernel_params
    >>> X = np.array([[0.0, 0.0], [0.2, 0.1], [5.0, 5.0], [5.2, 4.9]])
    >>> params = MixtureParams(np.array([0.5, 0.5]), np.array([[0.0, 0.0], [5.0, 5.0]]), None,
    ...                        np.ones((2, 2)), "diag")  # unit variances
    >>> from fastgmm.em import chunk_statistics
    >>> stats = chunk_statistics(X, np.empty(0), kernel_params(params), params.means)
    >>> stats.nk.round(6), stats.n_rows  # two rows per component
    (array([2., 2.]), 4)
    """
    single = X.dtype == np.float32
    fmap = kparams.feature_map(X.dtype)
    if single and fmap is None and not kparams.single_precision_suits():
        return _widened_statistics(X, sample_weight, kparams, shift, mode, resp, n_threads)
    stats = _statistics_in_input_dtype(
        X, sample_weight, kparams, shift, fmap, mode, resp, n_threads
    )
    if single and not stats.is_finite():
        # A single-precision product overflowed (3.4e38: rows some 1e19 from a component, whose
        # squares float64 still holds). Overflow never goes unnoticed: an infinity stays
        # infinite or turns into NaN in every sum it enters, except exp(-inf) = 0, which is
        # also what float64 gives for such a row.
        return _widened_statistics(X, sample_weight, kparams, shift, mode, resp, n_threads)
    return stats


def _statistics_in_input_dtype(X, sample_weight, kparams, shift, fmap, mode, resp, n_threads):
    """:func:`chunk_statistics` by the feature-map kernel (``fmap`` given) or per component."""
    n_components, n_features = kparams.means.shape
    s2_rows = kparams.prec.shape[1]
    resp_in = np.empty((0, n_components)) if resp is None else resp
    if fmap is not None:
        n_map = fmap.coef.shape[0]
        packed, log_lik, weight_sum = feature_statistics(
            X,
            sample_weight,
            fmap.centre,
            fmap.coef,
            fmap.pairs,
            resp_in,
            mode,
            n_slots_for(X.shape[0], n_components, 1, n_map, BLOCK),
            BLOCK,
            n_threads=n_threads,
        )
        nk, s1, s2 = unpack_feature_statistics(packed, fmap)
        shift = np.broadcast_to(fmap.centre, (n_components, n_features))
        return SufficientStats(nk, s1, s2, shift, float(log_lik), float(weight_sum), X.shape[0])
    block = block_rows_for(n_features, s2_rows, X.itemsize)
    nk, s1, s2, log_lik, weight_sum = em_statistics(
        X,
        sample_weight,
        kparams.means,
        kparams.prec,
        kparams.log_const,
        shift,
        resp_in,
        mode,
        n_slots_for(X.shape[0], n_components, s2_rows, n_features, block),
        block,
        n_threads=n_threads,
    )
    return SufficientStats(nk, s1, s2, shift, float(log_lik), float(weight_sum), X.shape[0])


# Rows per float64 piece of an ill-conditioned float32 chunk: 32 MB of widened rows at most.
_WIDEN_BYTES = 32 * 2**20


def _widened_statistics(X, sample_weight, kparams, shift, mode, resp, n_threads):
    """:func:`chunk_statistics` of float32 rows computed in float64, a piece at a time.

    For models too ill-conditioned for single-precision products (see
    ``fastgmm.stats.SINGLE_PRECISION_MAX_COND``). The pieces bound the extra memory; their size
    depends only on the shape, so results stay the same for any thread count.
    """
    step = max(BLOCK, _WIDEN_BYTES // (8 * X.shape[1]))
    total = None
    for start in range(0, max(X.shape[0], 1), step):  # one (empty) piece for an empty chunk
        stop = min(start + step, X.shape[0])
        stats = chunk_statistics(
            X[start:stop].astype(np.float64),
            sample_weight[start:stop] if sample_weight.size else sample_weight,
            kparams,
            shift,
            mode=mode,
            resp=None if resp is None else resp[start:stop],
            n_threads=n_threads,
        )
        total = stats if total is None else total + stats
    return total


def collect_statistics(
    chunks: Iterable[tuple[int, np.ndarray, np.ndarray]],
    kparams: KernelParams,
    shift: np.ndarray,
    *,
    mode: int = SOFT,
    resp: np.ndarray | None = None,
    n_threads: int | None = None,
) -> SufficientStats:
    """Sum the statistics of every chunk, in order.

    ``resp`` (all rows' responsibilities, for ``mode=GIVEN``) is sliced alongside the chunks.

    Examples
    --------
    >>> import numpy as np
    >>> from fastgmm.stats import MixtureParams, kernel_params
    >>> X = np.array([[0.0, 0.0], [0.2, 0.1], [5.0, 5.0], [5.2, 4.9]])
    >>> params = MixtureParams(np.array([0.5, 0.5]), np.array([[0.0, 0.0], [5.0, 5.0]]), None,
    ...                        np.ones((2, 2)), "diag")  # unit variances
    >>> from fastgmm.em import ArrayChunks, collect_statistics
    >>> total = collect_statistics(ArrayChunks(X).chunks(), kernel_params(params), params.means)
    >>> total.weight_sum, total.n_rows
    (4.0, 4)
    """
    total = None
    for start, X, sample_weight in chunks:
        chunk_resp = None if resp is None else resp[start : start + X.shape[0]]
        stats = chunk_statistics(
            X, sample_weight, kparams, shift, mode=mode, resp=chunk_resp, n_threads=n_threads
        )
        total = stats if total is None else total + stats
    if total is None:
        raise ValueError("The data provided no rows.")
    return total


def score_chunk(
    X: np.ndarray,
    kparams: KernelParams,
    *,
    want_resp: bool = False,
    want_labels: bool = False,
    n_threads: int | None = None,
    out_lse: np.ndarray | None = None,
    out_resp: np.ndarray | None = None,
    out_labels: np.ndarray | None = None,
):
    """Per-row log-likelihoods, and optionally responsibilities and labels, of one chunk.

    Returns
    -------
    log_lik : ndarray of shape (n_samples,)
    resp : ndarray of shape (n_samples, n_components), or (0, n_components) unless wanted
    labels : ndarray of shape (n_samples,), int64, or (0,) unless wanted

    Examples
    --------
    >>> import numpy as np
    >>> from fastgmm.stats import MixtureParams, kernel_params
    >>> X = np.array([[0.0, 0.0], [0.2, 0.1], [5.0, 5.0], [5.2, 4.9]])
    >>> params = MixtureParams(np.array([0.5, 0.5]), np.array([[0.0, 0.0], [5.0, 5.0]]), None,
    ...                        np.ones((2, 2)), "diag")  # unit variances
    >>> from fastgmm.em import score_chunk
    >>> log_lik, resp, labels = score_chunk(
    ...     X, kernel_params(params), want_resp=True, want_labels=True)
    >>> labels, resp.sum(axis=1).round(12)
    (array([0, 0, 1, 1]), array([1., 1., 1., 1.]))
    """
    n_samples = X.shape[0]
    n_components = kparams.means.shape[0]
    lse = np.empty(n_samples) if out_lse is None else out_lse
    if out_resp is None:
        out_resp = np.empty((n_samples if want_resp else 0, n_components))
    if out_labels is None:
        out_labels = np.empty(n_samples if want_labels else 0, dtype=np.int64)
    fmap = kparams.feature_map()  # scoring is float64 whatever the dtype (see score_rows)
    if fmap is not None:
        feature_scores(
            X,
            fmap.centre,
            fmap.coef,
            fmap.pairs,
            lse,
            out_resp,
            out_labels,
            BLOCK,
            n_threads=n_threads,
        )
        return lse, out_resp, out_labels
    score_rows(
        X,
        kparams.means,
        kparams.prec,
        kparams.log_const,
        lse,
        out_resp,
        out_labels,
        block_rows_for(X.shape[1], kparams.prec.shape[1]),
        n_threads=n_threads,
    )
    _check_scores(lse)
    return lse, out_resp, out_labels


def _check_scores(lse: np.ndarray) -> None:
    """Refuse rows whose log-likelihood is beyond float64 (their responsibilities would be NaN)."""
    bad = ~np.isfinite(lse)
    if bad.any():
        raise ValueError(
            f"The log-likelihood of {int(bad.sum())} row(s) is not representable in float64 "
            f"(the first is row {int(np.argmax(bad))}): the values lie too far from every "
            "component. Rescale the data or remove those rows."
        )


def params_from_stats(
    stats: SufficientStats, covariance_type: str, reg_covar: float, *, float32_hint=False
) -> MixtureParams:
    """The M-step: statistics to parameters, with the precision factors.

    Examples
    --------
    >>> import numpy as np
    >>> from fastgmm.stats import MixtureParams, kernel_params
    >>> X = np.array([[0.0, 0.0], [0.2, 0.1], [5.0, 5.0], [5.2, 4.9]])
    >>> params = MixtureParams(np.array([0.5, 0.5]), np.array([[0.0, 0.0], [5.0, 5.0]]), None,
    ...                        np.ones((2, 2)), "diag")  # unit variances
    >>> from fastgmm.em import chunk_statistics, params_from_stats
    >>> stats = chunk_statistics(X, np.empty(0), kernel_params(params), params.means)
    >>> params_from_stats(stats, "diag", reg_covar=1e-6).means.round(2)
    array([[0.1 , 0.05],
           [5.1 , 4.95]])
    """
    weights, means, covariances = m_step(stats, covariance_type, reg_covar)
    prec_chol = precision_cholesky(covariances, covariance_type, float32_hint=float32_hint)
    return MixtureParams(weights, means, covariances, prec_chol, covariance_type)


@dataclass
class EMResult:
    """Outcome of one EM run from one initialisation (see :func:`run_em`).

    Examples
    --------
    >>> from fastgmm.em import EMResult
    >>> EMResult(params=None, lower_bound=-1.5, lower_bounds=[-2.0, -1.5], n_iter=2).converged
    False
    """

    params: MixtureParams
    lower_bound: float
    lower_bounds: list = field(default_factory=list)
    n_iter: int = 0
    converged: bool = False


def run_em(
    params: MixtureParams,
    collect: Callable[[KernelParams, np.ndarray], SufficientStats],
    *,
    reg_covar: float,
    tol: float,
    max_iter: int,
    lower_bound: float = -np.inf,
    on_iteration: Callable[[int, float], None] | None = None,
    float32_hint: bool = False,
    degenerate=None,
) -> EMResult:
    """Run EM from ``params`` until the lower bound changes by less than ``tol``.

    Parameters
    ----------
    params : MixtureParams
        Starting parameters.
    collect : callable
        ``collect(kernel_params, shift)`` returns the summed :class:`SufficientStats` of all rows
        (soft responsibilities) under those parameters.
    reg_covar, tol, max_iter
        As in scikit-learn.
    lower_bound : float
        Lower bound before the first iteration (``-inf`` unless warm-starting).
    on_iteration : callable, optional
        Called as ``on_iteration(n_iter, change)`` after each iteration (verbose output).
    degenerate : fastgmm.degenerate.DegenerateHandler, optional
        Runs the M-step under an ``on_degenerate`` policy (default: scikit-learn's, raise).
        When it reinitialises or regularises a component, that iteration cannot be the last:
        the changed parameters have not been scored yet.

    Notes
    -----
    As in scikit-learn, the lower bound of iteration ``t`` is the mean log-likelihood of the
    parameters *entering* iteration ``t``; the returned parameters are those after its M-step.

    Examples
    --------
    >>> import numpy as np
    >>> from fastgmm.stats import MixtureParams, kernel_params
    >>> X = np.array([[0.0, 0.0], [0.2, 0.1], [5.0, 5.0], [5.2, 4.9]])
    >>> params = MixtureParams(np.array([0.5, 0.5]), np.array([[0.0, 0.0], [5.0, 5.0]]), None,
    ...                        np.ones((2, 2)), "diag")  # unit variances
    >>> from fastgmm.em import ArrayChunks, collect_statistics, run_em
    >>> data = ArrayChunks(X)
    >>> def collect(kparams, shift):
    ...     return collect_statistics(data.chunks(), kparams, shift)
    >>> result = run_em(params, collect, reg_covar=1e-6, tol=1e-3, max_iter=100)
    >>> result.converged, result.params.means.round(2)
    (True, array([[0.1 , 0.05],
           [5.1 , 4.95]]))
    """
    lower_bounds = []
    converged = False
    n_iter = 0
    for n_iter in range(1, max_iter + 1):
        # A command-line signal whose exception was dropped stops the fit here, at the latest
        # (a no-op outside the command line, see fastgmm._interrupts).
        _interrupts.check()
        previous = lower_bound
        shift = np.ascontiguousarray(params.means, dtype=np.float64)
        kparams = kernel_params(params)
        stats = collect(kparams, shift)
        lower_bound = stats.mean_log_likelihood
        if not np.isfinite(lower_bound):
            raise ValueError(
                "The log-likelihood became non-finite during EM; the data or the parameters "
                "contain values too large for float64."
            )
        repaired = False
        if degenerate is None:
            params = params_from_stats(
                stats, params.covariance_type, reg_covar, float32_hint=float32_hint
            )
        else:
            params, repaired = degenerate.m_step(
                stats,
                kparams,
                n_iter,
                covariance_type=params.covariance_type,
                reg_covar=reg_covar,
                float32_hint=float32_hint,
            )
        lower_bounds.append(lower_bound)
        change = lower_bound - previous
        if on_iteration is not None:
            on_iteration(n_iter, change)
        if abs(change) < tol and not repaired:
            converged = True
            break
    return EMResult(params, lower_bound, lower_bounds, n_iter, converged)
