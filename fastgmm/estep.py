"""One chunk through the E-step kernels: which kernel runs, and its output as statistics.

Every provider (arrays, streamed files, Dask blocks) computes the statistics of its chunks here,
so the choice of kernel path and the precision rules live in one place:

* **map**: the quadratic feature map (:mod:`fastgmm._kernels.feature_map`), two BLAS products
  for all components; the fastest for small ``D``, within its spread limit (see
  :class:`fastgmm.stats.FeatureMap`).
* **factor**: one triangular product per component (:mod:`fastgmm._kernels.factor`), for
  :class:`~fastgmm.stats.FactorLayout`.
* **shared**: one transform per block and per-component scales (:mod:`fastgmm._kernels.shared`),
  for :class:`~fastgmm.stats.SharedLayout`.

float32 rows are multiplied in single precision where the model's conditioning allows it (see
``fastgmm.stats.SINGLE_PRECISION_MAX_COND``), widened to float64 in bounded pieces otherwise,
and recomputed in float64 if a single-precision product overflowed. Per-row outputs
(:func:`score_chunk`) are always computed in float64.

Tests force each path with :func:`forced_path` to check them all against the NumPy reference.
"""

from __future__ import annotations

import contextvars
from contextlib import contextmanager

import numpy as np

from ._kernels.blocks import BLOCK, GEMM_MIN_FEATURES
from ._kernels.modes import GIVEN, HARD, SCORE, SOFT
from .stats import (
    DIAG,
    FULL,
    POOLED,
    FactorLayout,
    SharedLayout,
    SufficientStats,
    pooled_about,
    pooled_second_moment,
)

__all__ = [
    "GIVEN",
    "HARD",
    "PATHS",
    "SCORE",
    "SOFT",
    "block_rows_for",
    "choose_path",
    "chunk_statistics",
    "forced_path",
    "n_slots_for",
    "score_chunk",
]

#: The kernel paths (see the module docstring).
PATHS = ("map", "factor", "shared")

# Bytes allowed for the per-slot partial statistics of one kernel call.
_PARTIALS_BUDGET = 256 * 2**20
# Upper bound on slots: enough to keep 64 threads busy, few enough that the final reduction and
# the partial buffers stay small.
_MAX_SLOTS = 64
# Rows per float64 piece of an ill-conditioned float32 chunk: 32 MB of widened rows at most.
_WIDEN_BYTES = 32 * 2**20

_FORCED = contextvars.ContextVar("fastgmm_forced_path", default=(None, None))


@contextmanager
def forced_path(path=None, precision=None):
    """Force the kernel path (and, for float32 rows, the precision) inside the block.

    A private switch for tests, so that every path is compared with the reference whatever the
    shape, spread or conditioning would choose. ``path`` is one of :data:`PATHS` (``'map'``
    raises if the parameters have no feature map); ``precision`` is ``'single'`` (float32 rows
    in single precision, whatever the conditioning) or ``'double'`` (widened to float64).

    Examples
    --------
    >>> from fastgmm.estep import choose_path, forced_path
    >>> with forced_path("shared"):
    ...     pass
    """
    if path not in (None, *PATHS) or precision not in (None, "single", "double"):
        raise ValueError(f"Unknown path {path!r} or precision {precision!r}.")
    token = _FORCED.set((path, precision))
    try:
        yield
    finally:
        _FORCED.reset(token)


def block_rows_for(n_features: int, blas: bool, itemsize: int = 8) -> int:
    """Rows per E-step block for a problem shape and the data's item size (4 for float32).

    The loop kernels want blocks that stay in L1/L2 (``BLOCK`` rows). The BLAS paths (from
    ``GEMM_MIN_FEATURES`` features) want larger products to amortise BLAS's packing. Measured
    (one thread): on N=1e4, D=128, K=16 1024-row blocks take 20% less time than 256-row ones,
    and 2048 rows gain nothing more; on D=32, K=32 blocks beyond 1024 rows were slower.
    Single-precision BLAS prefers 512 rows (2 threads, N=2e5, D=128, K=16: 0.98 s against
    1.11 s with 1024 rows; D=32, K=32: 0.25 s against 0.29 s).

    Examples
    --------
    >>> from fastgmm.estep import block_rows_for
    >>> block_rows_for(8, blas=True), block_rows_for(64, blas=True), block_rows_for(64, False)
    (256, 1024, 256)
    """
    if not blas or n_features < GEMM_MIN_FEATURES:
        return BLOCK
    most = 512 if itemsize == 4 else 1024
    return int(min(most, max(BLOCK, (2**17 // n_features) // 64 * 64)))


def n_slots_for(n_rows: int, n_components: int, per_component: int, block: int = BLOCK) -> int:
    """Number of partial-statistics slots for a kernel call.

    Depends only on the problem's shape, never on the thread count, so the order of every sum
    is fixed and results are bit-identical for any number of threads. ``per_component`` is the
    number of float64 values a slot holds per component.

    Examples
    --------
    >>> from fastgmm.estep import n_slots_for
    >>> n_slots_for(100_000, 3, 10), n_slots_for(100, 3, 10)
    (64, 1)
    """
    n_blocks = max(1, -(-n_rows // block))
    per_slot = 8 * n_components * max(per_component, 1)
    return int(max(1, min(n_blocks, _MAX_SLOTS, _PARTIALS_BUDGET // per_slot)))


def choose_path(layout, kind: int, dtype=np.float64, n_rows: int | None = None) -> str:
    """The kernel path for ``layout``, the statistics ``kind`` and the data's ``dtype``.

    The feature map wherever it applies, except for pooled statistics: the shared transform
    needs ``D^2 + 3 K D`` flops per row for them where the map needs ``2 K D^2``. Otherwise the
    layout's own form.

    Examples
    --------
    >>> import numpy as np
    >>> from fastgmm.estep import choose_path
    >>> from fastgmm.stats import DIAG, SharedLayout
    >>> layout = SharedLayout.diagonal(np.ones(2) / 2, np.zeros((2, 3)), np.ones((2, 3)))
    >>> choose_path(layout, DIAG)
    'map'
    """
    forced, _ = _FORCED.get()
    if forced is not None:
        if forced == "factor" and not isinstance(layout, FactorLayout):
            return "shared"  # a shared layout has no per-component factor of its own
        if forced == "shared" and isinstance(layout, FactorLayout):
            return "factor"
        return forced
    if kind != POOLED and layout.feature_map(dtype, kind, n_rows) is not None:
        return "map"
    return "factor" if isinstance(layout, FactorLayout) else "shared"


def chunk_statistics(
    X: np.ndarray,
    sample_weight: np.ndarray,
    layout,
    shift: np.ndarray,
    kind: int,
    *,
    mode: int = SOFT,
    resp: np.ndarray | None = None,
    want_entropy: bool = False,
    n_threads: int | None = None,
) -> SufficientStats:
    """Sufficient statistics of one chunk (the fused E-step).

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features), float32 or float64, C-contiguous, writable
    sample_weight : ndarray of shape (n_samples,), or (0,) for unit weights
    layout : FactorLayout or SharedLayout
    shift : ndarray of shape (n_components, n_features)
        Origin of the moments (the feature map takes them about its own centre; the returned
        statistics say which in their ``shift``).
    kind : int
        ``FULL``, ``DIAG`` or ``POOLED``.
    mode : int
        ``SOFT``, ``HARD``, ``GIVEN`` (with ``resp``) or ``SCORE`` (totals only).
    want_entropy : bool
        Also sum ``w_i sum_k r_ik log r_ik`` (the variational mixture's lower bound).

    Examples
    --------
    >>> import numpy as np
    >>> from fastgmm.estep import chunk_statistics
    >>> from fastgmm.stats import DIAG, SharedLayout
    >>> X = np.array([[0.0, 0.0], [0.2, 0.1], [5.0, 5.0], [5.2, 4.9]])
    >>> means = np.array([[0.0, 0.0], [5.0, 5.0]])
    >>> layout = SharedLayout.diagonal(np.array([0.5, 0.5]), means, np.ones((2, 2)))
    >>> stats = chunk_statistics(X, np.empty(0), layout, means, DIAG)
    >>> stats.nk.round(6), stats.n_rows  # two rows per component
    (array([2., 2.]), 4)
    """
    if mode == GIVEN and resp is None:
        raise ValueError("mode=GIVEN needs the responsibilities.")
    single = X.dtype == np.float32
    path = choose_path(layout, kind, X.dtype, X.shape[0])
    _, precision = _FORCED.get()
    if single and precision == "double":
        return _widened(X, sample_weight, layout, shift, kind, mode, resp, want_entropy, n_threads)
    wide = False
    if single and precision is None:
        # The passes of an initialisation (hard assignments to k-means centres, given
        # responsibilities) run under identity factors, which say nothing of the data's scale:
        # rows 1e-20 apart would have squared distances below float32's range. A scoring pass
        # gives users a number (score, bic), which is float64 like every per-row output. Each
        # is one pass, so they run in float64.
        usable = mode not in (HARD, GIVEN, SCORE) and (
            layout.feature_map(X.dtype, kind, X.shape[0]) is not None
            if path == "map"
            else layout.single_precision_suits()
        )
        if not usable and choose_path(layout, kind, np.float64) == "map":
            # float64 data would take the map here: float32 rows take the same map in double
            # precision, widened as their features are built (never slower than float64).
            # The per-component single-precision kernels cost more than the double map on
            # D=32, K=32: 1.74 s against 0.92 s per iteration (issue 16).
            path, wide = "map", True
        elif not usable:
            return _widened(
                X, sample_weight, layout, shift, kind, mode, resp, want_entropy, n_threads
            )
    stats = _run_kernel(
        path, X, sample_weight, layout, shift, kind, mode, resp, want_entropy, n_threads, wide
    )
    if single and not wide and not stats.is_finite():
        # A single-precision product overflowed (3.4e38: rows some 1e19 from a component, whose
        # squares float64 still holds). Overflow never goes unnoticed: an infinity stays
        # infinite or turns into NaN in every sum it enters, except exp(-inf) = 0, which is
        # also what float64 gives for such a row.
        return _widened(X, sample_weight, layout, shift, kind, mode, resp, want_entropy, n_threads)
    return stats


def _run_kernel(
    path, X, sample_weight, layout, shift, kind, mode, resp, want_entropy, n_threads, wide=False
):
    n_samples, n_features = X.shape
    n_components = layout.n_components
    resp_in = np.empty((0, n_components)) if resp is None else resp
    if path == "map":
        fmap = None if wide else layout.feature_map(X.dtype, kind, n_samples)
        if fmap is None:
            fmap = layout.feature_map(np.float64, kind)
        if fmap is None:
            raise ValueError("These parameters have no feature map (spread or dimension).")
        from ._kernels.feature_map import feature_statistics

        n_map = fmap.coef.shape[0]
        packed, totals, weight_sum = feature_statistics(
            X,
            sample_weight,
            fmap.centre,
            fmap.coef,
            fmap.pairs,
            resp_in,
            mode,
            want_entropy,
            np.empty(0, np.float64 if wide else X.dtype),
            n_slots_for(n_samples, n_components, n_map, BLOCK),
            BLOCK,
            n_threads=n_threads,
        )
        nk, s1, s2 = fmap.unpack(packed)
        shift = np.broadcast_to(fmap.centre, (n_components, n_features))
        stats = _stats(nk, s1, s2, FULL if fmap.pairs else DIAG, shift, totals, weight_sum, X)
        return stats.reduced(kind)
    if path == "factor":
        from ._kernels.factor import factor_statistics

        block = block_rows_for(n_features, True, X.itemsize)
        nk, s1, s2, totals, weight_sum = factor_statistics(
            X,
            sample_weight,
            layout.means,
            layout.prec,
            layout.log_const,
            shift,
            resp_in,
            mode,
            want_entropy,
            n_slots_for(n_samples, n_components, 1 + n_features + n_features**2, block),
            block,
            n_threads=n_threads,
        )
        return _stats(nk, s1, s2, FULL, shift, totals, weight_sum, X).reduced(kind)
    from ._kernels.shared import shared_statistics

    if not isinstance(layout, SharedLayout):
        raise ValueError("The shared path needs a SharedLayout.")
    block = block_rows_for(n_features, not layout.is_diagonal or kind != DIAG, X.itemsize)
    unit_products = layout.unit_scale_products(X.dtype, n_samples)
    # Pooled moments about the layout's origin within the same spread limit as the products
    # (float64's t**2 <= 1e4, see accumulate_pooled_origin). Single precision keeps the
    # moments about the shifts, whose products lose only t ulps, and moves them to the origin
    # afterwards in float64, so every chunk of one layout returns moments about one point
    # whatever its dtype or fallback (statistics only add about equal shifts).
    origin_layout = kind == POOLED and layout.triangular and layout.unit_scale_products()
    about_origin = origin_layout and X.dtype == np.float64
    per_component = 1 + n_features + (n_features if kind == DIAG else n_features**2)
    nk, s1, s2, pairs, totals, weight_sum = shared_statistics(
        X,
        sample_weight,
        layout.kernel_tuple(),
        shift,
        resp_in,
        mode,
        kind,
        want_entropy,
        (unit_products, kind == POOLED, about_origin),
        n_slots_for(n_samples, n_components, per_component + n_components, block),
        block,
        n_threads=n_threads,
    )
    if kind == POOLED and not about_origin:
        s2 = pooled_second_moment(s2, pairs, shift)
    if origin_layout and not about_origin:
        s1, s2 = pooled_about(nk, s1, s2, shift, layout.origin)
    if origin_layout:
        shift = np.broadcast_to(layout.origin, shift.shape)
    return _stats(nk, s1, s2, kind, shift, totals, weight_sum, X)


def _stats(nk, s1, s2, kind, shift, totals, weight_sum, X):
    return SufficientStats(
        nk,
        s1,
        s2,
        kind,
        shift,
        float(totals[0]),
        float(weight_sum),
        X.shape[0],
        float(totals[1]),
        float(totals[2]),
    )


def _widened(X, sample_weight, layout, shift, kind, mode, resp, want_entropy, n_threads):
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
            layout,
            shift,
            kind,
            mode=mode,
            resp=None if resp is None else resp[start:stop],
            want_entropy=want_entropy,
            n_threads=n_threads,
        )
        total = stats if total is None else total + stats
    return total


def score_chunk(
    X: np.ndarray,
    layout,
    *,
    want_resp: bool = False,
    want_labels: bool = False,
    n_threads: int | None = None,
    out_lse: np.ndarray | None = None,
    out_resp: np.ndarray | None = None,
    out_labels: np.ndarray | None = None,
):
    """Per-row log-likelihoods, and optionally responsibilities and labels, of one chunk.

    Computed in float64 whatever the data's dtype: a row's own value is not averaged with any
    other row's, so single-precision rounding would show.

    Returns
    -------
    log_lik : ndarray of shape (n_samples,)
    resp : ndarray of shape (n_samples, n_components), or (0, n_components) unless wanted
    labels : ndarray of shape (n_samples,), int64, or (0,) unless wanted

    Examples
    --------
    >>> import numpy as np
    >>> from fastgmm.estep import score_chunk
    >>> from fastgmm.stats import SharedLayout
    >>> X = np.array([[0.0, 0.0], [0.2, 0.1], [5.0, 5.0], [5.2, 4.9]])
    >>> layout = SharedLayout.diagonal(np.array([0.5, 0.5]), np.array([[0.0, 0.0], [5.0, 5.0]]),
    ...                                np.ones((2, 2)))
    >>> log_lik, resp, labels = score_chunk(X, layout, want_resp=True, want_labels=True)
    >>> labels, resp.sum(axis=1).round(12)
    (array([0, 0, 1, 1]), array([1., 1., 1., 1.]))
    """
    n_samples = X.shape[0]
    n_components = layout.n_components
    lse = np.empty(n_samples) if out_lse is None else out_lse
    if out_resp is None:
        out_resp = np.empty((n_samples if want_resp else 0, n_components))
    if out_labels is None:
        out_labels = np.empty(n_samples if want_labels else 0, dtype=np.int64)
    # Scoring is float64 whatever the dtype, so the map's float64 limits apply.
    path = choose_path(layout, DIAG if layout.is_diagonal else FULL, np.float64)
    if path == "map":
        fmap = layout.feature_map(np.float64, DIAG if layout.is_diagonal else FULL)
        if fmap is not None:
            from ._kernels.feature_map import feature_scores

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
        path = "factor" if isinstance(layout, FactorLayout) else "shared"
    if path == "factor":
        from ._kernels.factor import factor_scores

        factor_scores(
            X,
            layout.means,
            layout.prec,
            layout.log_const,
            lse,
            out_resp,
            out_labels,
            block_rows_for(X.shape[1], True),
            n_threads=n_threads,
        )
    else:
        from ._kernels.shared import shared_scores

        shared_scores(
            X,
            layout.kernel_tuple(),
            lse,
            out_resp,
            out_labels,
            block_rows_for(X.shape[1], not layout.is_diagonal),
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
