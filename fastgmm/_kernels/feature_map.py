"""Parallel drivers through the quadratic feature map: every component in two BLAS products.

Every Gaussian log-density is a linear function of the features ``[x', x' x'^T (upper), 1]`` of a
row (``x' = x - centre``; squares only for diagonal models), so one matrix product scores all
components of a block and another sums all their statistics. This is the fastest form for small
``D`` (whatever the covariance model: the coefficients are built from the precisions), at the
price of taking every component's moments about one centre (see ``fastgmm.stats.FeatureMap``).
Block/slot determinism as in :mod:`.factor`.
"""

import numpy as np
from numba import prange

from .._jit import kernel
from .blocks import (
    copy_given,
    load_features,
    load_weights,
    responsibilities,
    sum_slots,
    total_weight,
    write_row_outputs,
)
from .modes import GIVEN, SCORE, SOFT


@kernel
def feature_statistics(
    X, sample_weight, centre, coef, pairs, resp_in, mode, want_entropy, buffers, n_slots, block
):
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
    X, sample_weight, resp_in, mode, want_entropy, n_slots, block
        As for :func:`fastgmm._kernels.factor.factor_statistics`.
    centre : ndarray of shape (n_features,)
    coef : ndarray of shape (n_feature_map, n_components)
        Coefficients of each component's weighted log-density in the feature map.
    pairs : bool
        Products (full, tied) or squares (diag, spherical).
    buffers : ndarray of shape (0,)
        Its dtype is the arithmetic's: ``X``'s own (float32 rows in single precision), or
        float64 for float32 rows that the single-precision map does not suit (the features are
        widened as they are built, with no widened copy of the rows).

    Returns
    -------
    packed : ndarray of shape (n_components, n_feature_map)
        ``sum_i w_i r_ik phi_i`` (zero with ``SCORE``).
    totals, weight_sum
        As for ``factor_statistics``.
    """
    n_samples = X.shape[0]
    n_map, n_components = coef.shape
    n_blocks = (n_samples + block - 1) // block
    packed_p = np.zeros((n_slots, n_components, n_map))
    tot_p = np.zeros((n_slots, 3))
    sw_p = np.zeros(n_slots)
    # Both products run in the buffers' dtype: single-precision BLAS for float32 data.
    coef_t = coef.T.astype(buffers.dtype)
    for p in prange(n_slots):
        phi = np.zeros((n_map, block), buffers.dtype)
        lp = np.zeros((n_components, block), buffers.dtype)
        part = np.empty((n_components, n_map), buffers.dtype)
        w = np.empty(block)
        mx = np.empty(block)
        lse = np.empty(block)
        extras = np.empty((3, block))
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
                soft = mode == SOFT or mode == SCORE
                responsibilities(lp, n_rows, soft, w, lse, mx, bits, extras, want_entropy, tot_p[p])
            sw_p[p] += total_weight(w, n_rows)
            if mode == SCORE:
                continue
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
    return sum_slots(packed_p), sum_slots(tot_p), sum_slots(sw_p)


@kernel
def feature_scores(X, centre, coef, pairs, out_lse, out_resp, out_labels, block):
    """Per-row outputs through the quadratic feature map (one BLAS product per block, in
    float64 like :func:`fastgmm._kernels.factor.factor_scores`)."""
    n_samples = X.shape[0]
    n_map, n_components = coef.shape
    n_blocks = (n_samples + block - 1) // block
    coef_t = coef.T
    for b in prange(n_blocks):
        phi = np.zeros((n_map, block))
        lp = np.empty((n_components, block))
        mx = np.empty(block)
        lse = np.empty(block)
        extras = np.empty((3, block))
        bits = np.empty(block, dtype=np.int64)
        start = b * block
        n_rows = min(block, n_samples - start)
        load_features(X, start, n_rows, centre, pairs, phi)
        np.dot(coef_t, phi, lp)
        write_row_outputs(lp, n_rows, start, lse, mx, bits, extras, out_lse, out_resp, out_labels)
