"""Parallel drivers of the shared-transform form: one transform per block, per-component scales.

The form of the diagonal models (the identity transform: spherical/VII, diag/VVI, EII, EEI, VEI,
EVI) and of the equal-orientation ones (tied/EEE, VEE, EVE, VVE): every precision is
``T diag(s_k^2) T^T`` with one ``T`` for all components, so a block is transformed once,
``y = T^T (x - origin)`` (N D^2 work), and each component only scales and sums (N K D), instead
of one triangular product per component (N K D^2). See :mod:`fastgmm._kernels.blocks` for the
maths and :mod:`.factor` for the block/slot determinism, which is the same here.

The statistics are always taken in the data's own coordinates, of the kind the covariance model
needs (``FULL``, ``DIAG`` or ``POOLED``).
"""

import numpy as np
from numba import prange

from .._jit import kernel
from .blocks import (
    DIAG,
    POOLED,
    accumulate,
    accumulate_pooled_gemm,
    accumulate_pooled_origin,
    copy_given,
    load_block,
    load_centred,
    load_weights,
    responsibilities,
    shared_log_prob,
    sum_slots,
    total_weight,
    transform_centred,
    transform_rows,
    unit_scale_log_prob,
    write_row_outputs,
)
from .modes import GIVEN, SCORE, SOFT


@kernel
def shared_statistics(
    X, sample_weight, layout, shift, resp_in, mode, kind, want_entropy, gemm, n_slots, block
):
    """One pass over ``X``: responsibilities and their statistics of ``kind``.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features), float32 or float64
    sample_weight : ndarray of shape (n_samples,) or (0,) for unit weights, float64
    layout : tuple
        ``(origin, transform, triangular, nu, scales, log_const)``: ``origin`` (D,), the point
        subtracted before transforming; ``transform`` (D, D) the matrix ``T`` (upper triangular
        when ``triangular``), or shape (0, 0) for the identity (then ``origin`` is unused);
        ``nu`` (K, D) the transformed means ``T^T (mu_k - origin)`` (the means themselves for the
        identity); ``scales`` (K, D) and ``log_const`` (K,). All float64.
    shift : ndarray of shape (n_components, n_features), float64
        Origin of each component's moments (in the data's coordinates).
    resp_in, mode, want_entropy, n_slots, block
        As for :func:`fastgmm._kernels.factor.factor_statistics`.
    kind : int
        ``FULL``, ``DIAG`` or ``POOLED`` (see :mod:`fastgmm._kernels.blocks`).
    gemm : tuple of three bool
        ``(distances, pooled, about_origin)``: the distances as one matrix product per block
        (unit scales within the spread limit, see ``unit_scale_log_prob``); the pooled
        statistics as three (``accumulate_pooled_gemm``), loops otherwise; with
        ``about_origin`` (a triangular ``T``, within the spread limit) the pooled statistics
        about ``origin`` for every component (``accumulate_pooled_origin``: two products, the
        returned moments are then about ``origin``, whatever ``shift`` says).

    Returns
    -------
    nk, s1, s2, pairs, totals, weight_sum
        ``s2`` is (K, D, D) upper triangles for ``FULL``, (K, 1, D) for ``DIAG`` and (1, D, D)
        for ``POOLED`` (the sum of ``w e e^T``, see ``accumulate_pooled``), ``pairs`` (K, K) the
        pair weights of ``POOLED`` (zero otherwise); the rest as for ``factor_statistics``.
    """
    origin, transform, triangular, nu, scales, log_const = layout
    n_samples, n_features = X.shape
    n_components = nu.shape[0]
    identity = transform.shape[0] == 0
    n_blocks = (n_samples + block - 1) // block
    s2_blocks = 1 if kind == POOLED else n_components
    s2_rows = 1 if kind == DIAG else n_features
    nk_p = np.zeros((n_slots, n_components))
    s1_p = np.zeros((n_slots, n_components, n_features))
    s2_p = np.zeros((n_slots, s2_blocks, s2_rows, n_features))
    pairs_p = np.zeros((n_slots, n_components, n_components))
    tot_p = np.zeros((n_slots, 3))
    sw_p = np.zeros(n_slots)
    transform_x = transform.astype(X.dtype)
    gemm_distances, gemm_pooled, about_origin = gemm
    gemm_pooled = gemm_pooled and kind == POOLED
    about_origin = about_origin and gemm_pooled and triangular and not identity
    unit = sample_weight.shape[0] == 0
    nu_x = nu.astype(X.dtype)
    offsets = np.empty(n_components)
    for k in range(n_components):
        total = 0.0
        for d in range(n_features):
            total += nu[k, d] * nu[k, d]
        offsets[k] = log_const[k] - 0.5 * total
    c_t = np.empty((n_features, n_components), X.dtype)
    for k in range(n_components):
        for d in range(n_features):
            c_t[d, k] = shift[k, d] - origin[d]
    for p in prange(n_slots):
        xt = np.zeros((n_features, block), X.dtype)
        yt = np.zeros((n_features, block), X.dtype)
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
        rx = np.zeros((n_components, block), X.dtype)
        wrx = np.zeros((n_components, block), X.dtype)
        lpx = np.zeros((n_components, block), X.dtype)
        part = np.empty((n_components, n_features), X.dtype)
        pp = np.empty((n_components, n_components), X.dtype)
        for b in range(p * n_blocks // n_slots, (p + 1) * n_blocks // n_slots):
            start = b * block
            n_rows = min(block, n_samples - start)
            load_weights(sample_weight, start, n_rows, w)
            if about_origin:
                # Only the centred rows are needed: y = T^T (x - origin) and the moments.
                load_centred(X, start, n_rows, origin, diff)
                if mode == GIVEN:
                    copy_given(resp_in, start, n_rows, lp)
                else:
                    transform_centred(diff, n_rows, transform_x, yt)
                    if gemm_distances:
                        unit_scale_log_prob(yt, n_rows, nu_x, offsets, lp, lpx, sq)
                    else:
                        shared_log_prob(yt, n_rows, nu, scales, log_const, lp, sq)
                    soft = mode == SOFT or mode == SCORE
                    responsibilities(
                        lp, n_rows, soft, w, lse, mx, bits, extras, want_entropy, tot_p[p]
                    )
                sw_p[p] += total_weight(w, n_rows)
                if mode != SCORE:
                    accumulate_pooled_origin(
                        diff, n_rows, w, unit, lp, nk_p[p], s1_p[p], s2_p[p], work, wrx, part, gram
                    )
                continue
            load_block(X, start, n_rows, xt)
            if mode == GIVEN:
                copy_given(resp_in, start, n_rows, lp)
            else:
                if identity:
                    shared_log_prob(xt, n_rows, nu, scales, log_const, lp, sq)
                else:
                    transform_rows(xt, n_rows, origin, transform_x, triangular, diff, yt)
                    if gemm_distances:
                        unit_scale_log_prob(yt, n_rows, nu_x, offsets, lp, lpx, sq)
                    else:
                        shared_log_prob(yt, n_rows, nu, scales, log_const, lp, sq)
                soft = mode == SOFT or mode == SCORE
                responsibilities(lp, n_rows, soft, w, lse, mx, bits, extras, want_entropy, tot_p[p])
            sw_p[p] += total_weight(w, n_rows)
            if mode != SCORE and gemm_pooled:
                accumulate_pooled_gemm(
                    xt,
                    n_rows,
                    w,
                    lp,
                    shift,
                    origin,
                    c_t,
                    nk_p[p],
                    s1_p[p],
                    s2_p[p],
                    pairs_p[p],
                    diff,
                    work,
                    rx,
                    wrx,
                    part,
                    pp,
                    wd,
                    gram,
                )
            elif mode != SCORE:
                accumulate(
                    kind,
                    xt,
                    n_rows,
                    w,
                    lp,
                    shift,
                    origin,
                    nk_p[p],
                    s1_p[p],
                    s2_p[p],
                    pairs_p[p],
                    diff,
                    work,
                    mx,
                    wd,
                    gram,
                )
    return (
        sum_slots(nk_p),
        sum_slots(s1_p),
        sum_slots(s2_p),
        sum_slots(pairs_p),
        sum_slots(tot_p),
        sum_slots(sw_p),
    )


@kernel
def shared_scores(X, layout, out_lse, out_resp, out_labels, block):
    """Per-row outputs in float64, as :func:`fastgmm._kernels.factor.factor_scores`."""
    origin, transform, triangular, nu, scales, log_const = layout
    n_samples, n_features = X.shape
    n_components = nu.shape[0]
    identity = transform.shape[0] == 0
    n_blocks = (n_samples + block - 1) // block
    for b in prange(n_blocks):
        xt = np.zeros((n_features, block))
        yt = np.zeros((n_features, block))
        diff = np.zeros((n_features, block))
        lp = np.empty((n_components, block))
        mx = np.empty(block)
        sq = np.empty(block)
        lse = np.empty(block)
        extras = np.empty((3, block))
        bits = np.empty(block, dtype=np.int64)
        start = b * block
        n_rows = min(block, n_samples - start)
        load_block(X, start, n_rows, xt)
        if identity:
            shared_log_prob(xt, n_rows, nu, scales, log_const, lp, sq)
        else:
            transform_rows(xt, n_rows, origin, transform, triangular, diff, yt)
            shared_log_prob(yt, n_rows, nu, scales, log_const, lp, sq)
        write_row_outputs(lp, n_rows, start, lse, mx, bits, extras, out_lse, out_resp, out_labels)
