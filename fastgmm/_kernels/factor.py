"""Parallel drivers of the per-component factor form: the fused E-step with statistics, and scores.

The form of the general models (full/VVV, EEV, VEV, EVV): each component has its own
upper-triangular precision factor ``U_k`` (see :mod:`fastgmm._kernels.blocks`).

Determinism: rows are cut into blocks of ``block`` rows and the blocks are dealt to ``n_slots``
partial-statistics slots (slot ``p`` takes the ``p``-th of ``n_slots`` contiguous, equal-sized
runs of blocks). Neither number depends on the thread count; ``prange`` only decides which
thread runs which slot, and the slots are summed in index order afterwards. Results are
therefore bit-identical for any thread count, and the memory for partials is bounded by
``n_slots`` copies of the statistics. Equal runs also keep threads balanced: dealing blocks
round-robin gave the first slots one block more, and a 98-block chunk over 64 slots put 64
blocks on one thread and 34 on the other. The same scheme serves :mod:`.shared` and
:mod:`.feature_map`.
"""

import numpy as np
from numba import prange

from .._jit import kernel
from .blocks import (
    accumulate_full,
    copy_given,
    factor_log_prob,
    load_block,
    load_weights,
    responsibilities,
    sum_slots,
    total_weight,
    write_row_outputs,
)
from .modes import GIVEN, SCORE, SOFT


@kernel
def factor_statistics(
    X, sample_weight, means, prec, log_const, shift, resp_in, mode, want_entropy, n_slots, block
):
    """One pass over ``X``: responsibilities and their per-component full statistics.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features), float32 or float64
    sample_weight : ndarray of shape (n_samples,) or (0,) for unit weights, float64
    means : ndarray of shape (n_components, n_features), float64
    prec : ndarray of shape (n_components, n_features, n_features), float64
        Upper-triangular precision Cholesky factors.
    log_const : ndarray of shape (n_components,), float64
        ``log w_k - D/2 log(2 pi) + log det U_k`` (plus any per-component constant of the
        estimator, e.g. the variational mixture's expectations).
    shift : ndarray of shape (n_components, n_features), float64
        Origin of each component's first and second moments.
    resp_in : ndarray of shape (n_samples, n_components) or (0, n_components), float64
        Responsibilities for ``mode == GIVEN``.
    mode : int
        ``SOFT``, ``HARD``, ``GIVEN`` or ``SCORE`` (see :mod:`.modes`).
    want_entropy : bool
        Also sum ``w_i sum_k r_ik log r_ik``.
    n_slots : int
        Number of partial-statistics slots (independent of the thread count).
    block : int
        Rows per block (chosen from the shape by :func:`fastgmm.estep.block_rows_for`).

    Returns
    -------
    nk, s1, s2, totals, weight_sum
        ``nk`` (K,), ``s1`` (K, D), ``s2`` (K, D, D) with the upper triangle filled, ``totals``
        (3,): the weighted sums of the rows' log-likelihoods (``HARD``: of the best weighted
        log-densities), of ``log max_k r_ik`` and of the entropy term; and the sum of weights.
        With ``SCORE`` the statistics are zero.
    """
    n_samples, n_features = X.shape
    n_components = means.shape[0]
    n_blocks = (n_samples + block - 1) // block
    nk_p = np.zeros((n_slots, n_components))
    s1_p = np.zeros((n_slots, n_components, n_features))
    s2_p = np.zeros((n_slots, n_components, n_features, n_features))
    tot_p = np.zeros((n_slots, 3))
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
        mx = np.empty(block)
        sq = np.empty(block)
        wd = np.empty(block)
        lse = np.empty(block)
        extras = np.empty((3, block))
        bits = np.empty(block, dtype=np.int64)
        for b in range(p * n_blocks // n_slots, (p + 1) * n_blocks // n_slots):
            start = b * block
            n_rows = min(block, n_samples - start)
            load_block(X, start, n_rows, xt)
            load_weights(sample_weight, start, n_rows, w)
            if mode == GIVEN:
                copy_given(resp_in, start, n_rows, lp)
            else:
                factor_log_prob(xt, n_rows, means, prec, prec_x, log_const, lp, diff, work, sq)
                soft = mode == SOFT or mode == SCORE
                responsibilities(lp, n_rows, soft, w, lse, mx, bits, extras, want_entropy, tot_p[p])
            sw_p[p] += total_weight(w, n_rows)
            if mode != SCORE:
                accumulate_full(
                    xt, n_rows, w, lp, shift, nk_p[p], s1_p[p], s2_p[p], diff, work, mx, wd, gram
                )
    return sum_slots(nk_p), sum_slots(s1_p), sum_slots(s2_p), sum_slots(tot_p), sum_slots(sw_p)


@kernel
def factor_scores(X, means, prec, log_const, out_lse, out_resp, out_labels, block):
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
        mx = np.empty(block)
        sq = np.empty(block)
        lse = np.empty(block)
        extras = np.empty((3, block))
        bits = np.empty(block, dtype=np.int64)
        start = b * block
        n_rows = min(block, n_samples - start)
        load_block(X, start, n_rows, xt)
        factor_log_prob(xt, n_rows, means, prec, prec, log_const, lp, diff, work, sq)
        write_row_outputs(lp, n_rows, start, lse, mx, bits, extras, out_lse, out_resp, out_labels)
