"""Parallel drivers: the fused E-step with sufficient statistics, and per-row scoring.

Determinism: rows are cut into blocks of ``block`` rows and the blocks are dealt to ``n_slots``
partial-statistics slots (slot ``p`` takes the ``p``-th of ``n_slots`` contiguous, equal-sized
runs of blocks). Neither number depends on the thread count; ``prange`` only decides which
thread runs which slot, and the slots are summed in index order afterwards. Results are
therefore bit-identical for any thread count, and the memory for partials is bounded by
``n_slots`` copies of the statistics. Equal runs also
keep threads balanced: dealing blocks round-robin gave the first slots one block more, and a
98-block chunk over 64 slots put 64 blocks on one thread and 34 on the other.
"""

import numpy as np
from numba import prange

from .._jit import kernel
from .blocks import (
    accumulate,
    copy_given,
    load_block,
    load_features,
    load_weights,
    responsibilities,
    sum_slots,
    total_weight,
    weighted_log_prob,
    write_row_outputs,
)

# How ``em_statistics`` obtains responsibilities.
SOFT = 0  # EM: posterior probabilities from the current parameters
HARD = 1  # one-hot at the most probable component (k-means assignment with identity factors)
GIVEN = 2  # read from ``resp_in`` (initialisation from user or random responsibilities)


@kernel
def em_statistics(X, sample_weight, means, prec, log_const, shift, resp_in, mode, n_slots, block):
    """One pass over ``X``: responsibilities and their sufficient statistics.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features), float32 or float64
    sample_weight : ndarray of shape (n_samples,) or (0,) for unit weights, float64
    means : ndarray of shape (n_components, n_features), float64
    prec : ndarray of shape (n_components, n_features or 1, n_features), float64
        Precision Cholesky factors, see :mod:`fastgmm._kernels.blocks`.
    log_const : ndarray of shape (n_components,), float64
        ``log w_k - D/2 log(2 pi) + log det U_k``.
    shift : ndarray of shape (n_components, n_features), float64
        Origin of each component's first and second moments.
    resp_in : ndarray of shape (n_samples, n_components) or (0, n_components), float64
        Responsibilities for ``mode == GIVEN``.
    mode : int
        ``SOFT``, ``HARD`` or ``GIVEN``.
    n_slots : int
        Number of partial-statistics slots (independent of the thread count).
    block : int
        Rows per block (chosen from the shape by :func:`fastgmm.em.block_rows_for`).

    Returns
    -------
    nk, s1, s2, log_lik, weight_sum
        ``nk`` (K,), ``s1`` (K, D), ``s2`` (K, D or 1, D) with the upper triangle filled for full
        factors, the weighted sum of row log-likelihoods (``SOFT``; for ``HARD`` the sum of the
        best weighted log-densities) and the sum of sample weights.
    """
    n_samples, n_features = X.shape
    n_components = means.shape[0]
    n_rows_s2 = prec.shape[1]
    n_blocks = (n_samples + block - 1) // block
    nk_p = np.zeros((n_slots, n_components))
    s1_p = np.zeros((n_slots, n_components, n_features))
    s2_p = np.zeros((n_slots, n_components, n_rows_s2, n_features))
    ll_p = np.zeros(n_slots)
    sw_p = np.zeros(n_slots)
    # Row buffers, and the factors that multiply them in BLAS, take the input's dtype.
    prec_x = prec.astype(X.dtype)
    for p in prange(n_slots):
        xt = np.zeros((n_features, block), X.dtype)
        diff = np.zeros((n_features, block), X.dtype)
        work = np.zeros((n_features, block), X.dtype)
        gram = np.empty((n_features, n_features), X.dtype)
        lp = np.empty((n_components, block))
        w = np.empty(block)
        acc = np.empty(block)
        sq = np.empty(block)
        wd = np.empty(block)
        lse = np.empty(block)
        bits = np.empty(block, dtype=np.int64)
        for b in range(p * n_blocks // n_slots, (p + 1) * n_blocks // n_slots):
            start = b * block
            n_rows = min(block, n_samples - start)
            load_block(X, start, n_rows, xt)
            load_weights(sample_weight, start, n_rows, w)
            if mode == GIVEN:
                copy_given(resp_in, start, n_rows, lp)
            else:
                weighted_log_prob(xt, n_rows, means, prec, prec_x, log_const, lp, diff, work, sq)
                ll_p[p] += responsibilities(lp, n_rows, mode == SOFT, w, lse, acc, bits)
            sw_p[p] += total_weight(w, n_rows)
            accumulate(
                xt, n_rows, w, lp, shift, nk_p[p], s1_p[p], s2_p[p], diff, work, sq, wd, gram
            )
    return sum_slots(nk_p), sum_slots(s1_p), sum_slots(s2_p), sum_slots(ll_p), sum_slots(sw_p)


@kernel
def score_rows(X, means, prec, log_const, out_lse, out_resp, out_labels, block):
    """Per-row outputs of the E-step, written into caller-provided arrays, in float64.

    Unlike the statistics, whose rounding errors average out over the rows, each output here is
    one row's value: float32 rows are therefore widened and scored in double precision (a
    single-precision triangular product loses up to ``cond(U_k)`` ulps in a row's density).

    ``out_lse[i]`` receives the log-likelihood of row ``i``. ``out_resp`` (n_samples, K) receives
    responsibilities and ``out_labels`` the most probable component, unless they have length 0.
    Rows are independent, so blocks run in any order without affecting the result.
    """
    n_samples, n_features = X.shape
    n_components = means.shape[0]
    n_blocks = (n_samples + block - 1) // block
    for b in prange(n_blocks):
        xt = np.zeros((n_features, block))
        diff = np.empty((n_features, block))
        work = np.empty((n_features, block))
        lp = np.empty((n_components, block))
        acc = np.empty(block)
        sq = np.empty(block)
        lse = np.empty(block)
        bits = np.empty(block, dtype=np.int64)
        start = b * block
        n_rows = min(block, n_samples - start)
        load_block(X, start, n_rows, xt)
        weighted_log_prob(xt, n_rows, means, prec, prec, log_const, lp, diff, work, sq)
        write_row_outputs(lp, n_rows, start, lse, acc, bits, out_lse, out_resp, out_labels)


@kernel
def feature_statistics(X, sample_weight, centre, coef, pairs, resp_in, mode, n_slots, block):
    """The fused E-step with statistics through the quadratic feature map (two BLAS products).

    With ``Phi`` the block's features (see ``load_features``), the weighted log-densities of all
    components are ``coef^T Phi^T`` and, after normalisation, the statistics of all components
    are ``R Phi``: the features' first entries give ``s1`` about ``centre``, the products or
    squares give ``s2``, and the constant gives ``nk``. Two large products per block replace K
    small ones, which is what makes small-D and diagonal models fast (measured on
    N=2e5, D=8, K=16 full: 0.024 s of CPU instead of 0.042 s; on D=64, K=64 diag 0.048 s
    instead of 0.063 s per 5e4 rows). The price is that moments are taken about one ``centre``
    for all components: a component whose mean lies ``t`` of its standard deviations from it
    loses about ``t**2`` ulps in its covariance.

    Parameters
    ----------
    X, sample_weight, resp_in, mode, n_slots, block
        As for :func:`em_statistics`.
    centre : ndarray of shape (n_features,)
    coef : ndarray of shape (n_feature_map, n_components)
        Coefficients of each component's weighted log-density in the feature map.
    pairs : bool
        Products (full, tied) or squares (diag, spherical).

    Returns
    -------
    packed : ndarray of shape (n_components, n_feature_map)
        ``sum_i w_i r_ik phi_i``.
    log_lik, weight_sum : float
    """
    n_samples = X.shape[0]
    n_map, n_components = coef.shape
    n_blocks = (n_samples + block - 1) // block
    packed_p = np.zeros((n_slots, n_components, n_map))
    ll_p = np.zeros(n_slots)
    sw_p = np.zeros(n_slots)
    # Both products run in the input's dtype: single-precision BLAS for float32 data.
    coef_t = coef.T.astype(X.dtype)
    for p in prange(n_slots):
        phi = np.zeros((n_map, block), X.dtype)
        lp = np.zeros((n_components, block), X.dtype)
        part = np.empty((n_components, n_map), X.dtype)
        w = np.empty(block)
        mx = np.empty(block)
        lse = np.empty(block)
        bits = np.empty(block, dtype=np.int64)
        for b in range(p * n_blocks // n_slots, (p + 1) * n_blocks // n_slots):
            start = b * block
            n_rows = min(block, n_samples - start)
            load_features(X, start, n_rows, centre, pairs, phi)
            load_weights(sample_weight, start, n_rows, w)
            if mode == GIVEN:
                copy_given(resp_in, start, n_rows, lp)
            else:
                np.dot(coef_t, phi, lp)
                ll_p[p] += responsibilities(lp, n_rows, mode == SOFT, w, lse, mx, bits)
            sw_p[p] += total_weight(w, n_rows)
            for k in range(n_components):
                for i in range(n_rows):
                    lp[k, i] *= w[i]
                for i in range(n_rows, block):
                    lp[k, i] = 0.0  # the rows past the block's end add nothing
            np.dot(lp, phi.T, part)
            # An explicit loop: the array expression ``packed_p[p] += part`` cost 4% of the
            # kernel on N=1e6, D=32, K=32 in float32 (a temporary per block).
            total = packed_p[p]
            for k in range(n_components):
                for f in range(n_map):
                    total[k, f] += part[k, f]
    return sum_slots(packed_p), sum_slots(ll_p), sum_slots(sw_p)


@kernel
def feature_scores(X, centre, coef, pairs, out_lse, out_resp, out_labels, block):
    """:func:`score_rows` through the quadratic feature map (one BLAS product per block, in
    float64 like :func:`score_rows`)."""
    n_samples = X.shape[0]
    n_map, n_components = coef.shape
    n_blocks = (n_samples + block - 1) // block
    coef_t = coef.T
    for b in prange(n_blocks):
        phi = np.zeros((n_map, block))
        lp = np.empty((n_components, block))
        mx = np.empty(block)
        lse = np.empty(block)
        bits = np.empty(block, dtype=np.int64)
        start = b * block
        n_rows = min(block, n_samples - start)
        load_features(X, start, n_rows, centre, pairs, phi)
        np.dot(coef_t, phi, lp)
        write_row_outputs(lp, n_rows, start, lse, mx, bits, out_lse, out_resp, out_labels)
