"""Parallel drivers for rows with missing entries (NaN): the exact E-step of Ghahramani & Jordan.

For a row with observed coordinates ``o`` and missing coordinates ``m`` (Ghahramani & Jordan
1994, "Supervised learning from incomplete data via an EM approach", section 3), component
``k`` explains the row through the marginal density ``N(x_o; mu_o, Sigma_oo)``, and the M-step
takes the expected complete-data statistics: ``x_m`` replaced by its conditional mean
``x_hat_m`` and, in the second moment, the conditional covariance added in the missing block.

**Precision form.** The kernels hold each component's precision ``Lambda = Sigma^-1`` and a
factor ``F`` with ``F F^T = Lambda`` (the layouts' factors), and use the identities

.. math::

    \\hat x_m = \\mu_m - \\Lambda_{mm}^{-1} \\Lambda_{mo} (x_o - \\mu_o)
              = \\mu_m + \\Sigma_{mo} \\Sigma_{oo}^{-1} (x_o - \\mu_o),

    \\operatorname{Cov}(x_m \\mid x_o) = \\Lambda_{mm}^{-1}
              = \\Sigma_{mm} - \\Sigma_{mo} \\Sigma_{oo}^{-1} \\Sigma_{om},

    (x_o - \\mu_o)^T \\Sigma_{oo}^{-1} (x_o - \\mu_o) = \\lVert F^T (\\hat x - \\mu) \\rVert^2,
    \\qquad \\log\\det \\Sigma_{oo} = \\log\\det \\Sigma + \\log\\det \\Lambda_{mm}

(the Schur complement: ``Sigma_oo^-1 = Lambda_oo - Lambda_om Lambda_mm^-1 Lambda_mo``, and the
complete-data quadratic form, minimised over ``x_m``, is the marginal one). Each
(pattern, component) pair therefore factorises ``Lambda_k,mm`` (``|m| x |m|``) once instead of
``Sigma_k,oo`` (``|o| x |o|``): at 20% missing on D=32 that is 6 rows instead of 26, some 80
times fewer flops, and the quadratic form stays a sum of squares (no cancellation), computed by
the same triangular product as a complete row's. Both forms are exact; the tests compare these
kernels with a per-row NumPy reference written in the covariance form.

**Patterns.** The rows of a block are sorted by their pattern of missing entries (a stable
sort on a key: the pattern's bits for up to 64 features, a hash beyond, where consecutive rows
are also compared entry by entry), so that the rows of a pattern are contiguous: one
factorisation per (pattern, component) per block serves all of them, and the conditioning runs
as vector loops over those rows. The sort depends only on the rows, so the order of every sum,
and the results, are the same for any thread count; blocks and slots follow
:mod:`fastgmm._kernels.factor`.

**Diagonal layouts** (``Lambda`` diagonal: diag, spherical and the other diagonal models) need
no factorisation at all: ``x_hat_m = mu_m``, and the conditional variances are the
component's own. They skip the sort.

Only rows holding a NaN come here (``rows`` lists them); complete rows go through the other
kernels. Statistics are accumulated per component, full or diagonal (a pooled kind is the sum
of the full ones, formed by the caller).
"""

import math

import numpy as np
from numba import prange

from .._jit import inline, kernel
from .blas import gram_lower, upper_transpose_times
from .blocks import (
    DIAG,
    GEMM_MIN_FEATURES,
    argmax_rows,
    normalise,
    responsibilities,
    sum_slots,
    total_weight,
    weigh,
)
from .modes import GIVEN, SCORE, SOFT

_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)
# Patterns of up to this many features are their own sort key, one bit per feature.
_KEY_BITS = 64
# FNV-1a, for the keys of wider patterns (equal keys are then checked entry by entry).
_FNV_OFFSET = np.uint64(14695981039346656037)
_FNV_PRIME = np.uint64(1099511628211)


@kernel
def rows_with_nan(X, flags, block):
    """``flags[i] = 1`` if row ``i`` of ``X`` holds a NaN, else 0 (one parallel pass)."""
    n_samples, n_features = X.shape
    n_blocks = (n_samples + block - 1) // block
    for b in prange(n_blocks):
        for i in range(b * block, min((b + 1) * block, n_samples)):
            hit = 0
            for d in range(n_features):
                v = X[i, d]
                if v != v:
                    hit = 1
            flags[i] = hit


@inline
def load_sorted_block(X, rows, first, n_rows, sample_weight, sort, keys, order, xt, w):
    """Rows ``rows[first:first+n_rows]`` of ``X``, sorted by pattern, transposed into ``xt``.

    ``order[j]`` is the position (in ``rows[first:]``) of the ``j``-th loaded row; ``w`` gets
    the weights in the same order. Without ``sort`` the rows keep their order.
    """
    n_features = X.shape[1]
    if sort:
        for j in range(n_rows):
            i = rows[first + j]
            if n_features <= _KEY_BITS:
                key = np.uint64(0)
                for d in range(n_features):
                    v = X[i, d]
                    if v != v:
                        key |= np.uint64(1) << np.uint64(d)
            else:
                key = _FNV_OFFSET
                for d in range(n_features):
                    v = X[i, d]
                    if v != v:
                        key = (key ^ np.uint64(d)) * _FNV_PRIME
            keys[j] = key
        sorted_rows = np.argsort(keys[:n_rows], kind="mergesort")  # stable
        for j in range(n_rows):
            order[j] = sorted_rows[j]
    else:
        for j in range(n_rows):
            order[j] = j
    for j in range(n_rows):
        i = rows[first + order[j]]
        for d in range(n_features):
            xt[d, j] = X[i, d]
    if sample_weight.shape[0] == 0:
        for j in range(n_rows):
            w[j] = 1.0
    else:
        for j in range(n_rows):
            w[j] = sample_weight[rows[first + order[j]]]


@inline
def find_patterns(xt, keys, order, n_rows, starts, idx, n_miss):
    """Split the sorted block into runs of one pattern; returns their number ``G``.

    Run ``g`` is columns ``starts[g]:starts[g+1]`` of ``xt``; ``idx[g]`` lists its missing
    features (``n_miss[g]`` of them, increasing), then its observed ones.
    """
    n_features = xt.shape[0]
    n_groups = 0
    for j in range(n_rows):
        new = j == 0 or keys[order[j]] != keys[order[j - 1]]
        if not new and n_features > _KEY_BITS:
            s = starts[n_groups - 1]
            for d in range(n_features):
                if (xt[d, j] != xt[d, j]) != (xt[d, s] != xt[d, s]):
                    new = True
        if new:
            starts[n_groups] = j
            n_groups += 1
    starts[n_groups] = n_rows
    for g in range(n_groups):
        s = starts[g]
        m = 0
        for d in range(n_features):
            if xt[d, s] != xt[d, s]:
                idx[g, m] = d
                m += 1
        n_miss[g] = m
        for d in range(n_features):
            if xt[d, s] == xt[d, s]:
                idx[g, m] = d
                m += 1
    return n_groups


@inline
def cholesky_missing(prec, idx, n_m, chol):
    """Lower Cholesky factor of ``prec[m][:, m]`` (``m = idx[:n_m]``) into ``chol[:n_m, :n_m]``.

    Returns ``sum log diag`` (half of ``log det Lambda_mm``), or NaN if the block is not
    positive definite (which a valid precision's principal block always is).
    """
    half_logdet = 0.0
    for a in range(n_m):
        ia = idx[a]
        for b in range(a + 1):
            value = prec[ia, idx[b]]
            for c in range(b):
                value -= chol[a, c] * chol[b, c]
            if a == b:
                if not value > 0.0:
                    return np.nan
                chol[a, a] = np.sqrt(value)
                half_logdet += np.log(chol[a, a])
            else:
                chol[a, b] = value / chol[b, b]
    return half_logdet


@inline
def condition_pattern(xt, s, e, idx, n_m, prec, mean, chol, rhs, delta):
    """``delta[:, s:e] = x_hat - mu`` for the rows of one pattern under one component.

    Observed coordinates: ``x_o - mu_o``; missing ones: ``-Lambda_mm^-1 Lambda_mo (x_o - mu_o)``
    by forward and back substitution with ``chol`` (from :func:`cholesky_missing`). ``rhs`` is
    scratch shaped like ``xt``. Every loop runs over the pattern's rows, contiguous in ``xt``.
    """
    n_features = xt.shape[0]
    for c in range(n_m, n_features):
        d = idx[c]
        mu = mean[d]
        src = xt[d]
        dst = delta[d]
        for j in range(s, e):
            dst[j] = src[j] - mu
    for a in range(n_m):
        ia = idx[a]
        row = rhs[a]
        for j in range(s, e):
            row[j] = 0.0
        for c in range(n_m, n_features):
            d = idx[c]
            coef = prec[ia, d]
            src = delta[d]
            for j in range(s, e):
                row[j] += coef * src[j]
    for a in range(n_m):
        row = rhs[a]
        for b in range(a):
            coef = chol[a, b]
            other = rhs[b]
            for j in range(s, e):
                row[j] -= coef * other[j]
        inv = 1.0 / chol[a, a]
        for j in range(s, e):
            row[j] *= inv
    for a in range(n_m - 1, -1, -1):
        row = rhs[a]
        for b in range(a + 1, n_m):
            coef = chol[b, a]
            other = rhs[b]
            for j in range(s, e):
                row[j] -= coef * other[j]
        inv = 1.0 / chol[a, a]
        for j in range(s, e):
            row[j] *= inv
    for a in range(n_m):
        dst = delta[idx[a]]
        row = rhs[a]
        for j in range(s, e):
            dst[j] = -row[j]


@inline
def factor_squares(delta, n_rows, factor, upper, work, sq):
    """``sq[j] = |F^T delta[:, j]|^2`` for ``j < n_rows``.

    ``upper``: ``F`` is upper triangular (a triangular product, half the flops). From
    ``GEMM_MIN_FEATURES`` features one BLAS product covers the block's width (the columns past
    ``n_rows`` hold finite values of an earlier block and are ignored), as in
    :func:`fastgmm._kernels.blocks.factor_log_prob`.
    """
    n_features, width = delta.shape
    for j in range(n_rows):
        sq[j] = 0.0
    if n_features >= GEMM_MIN_FEATURES:
        if upper:
            for d in range(n_features):
                for j in range(width):
                    work[d, j] = delta[d, j]
            upper_transpose_times(factor, work)
        else:
            np.dot(factor.T, delta, work)
        for e in range(n_features):
            row = work[e]
            for j in range(n_rows):
                sq[j] += row[j] * row[j]
        return
    acc = work[0]
    for e in range(n_features):
        for j in range(n_rows):
            acc[j] = 0.0
        for d in range(e + 1 if upper else n_features):
            f = factor[d, e]
            src = delta[d]
            for j in range(n_rows):
                acc[j] += src[j] * f
        for j in range(n_rows):
            sq[j] += acc[j] * acc[j]


@inline
def diagonal_log_prob(xt, n_rows, mean, scale, log_const, delta, lp, sq):
    """A diagonal component: ``delta = x_hat - mu`` (0 where missing) and ``lp`` (one row).

    ``lp[j] = c_k + sum_{d in m} (log(2 pi) / 2 - log s_d)
    - sum_{d in o} (s_d (x_d - mu_d))^2 / 2``.
    """
    n_features = xt.shape[0]
    for j in range(n_rows):
        sq[j] = 0.0
        lp[j] = log_const
    for d in range(n_features):
        mu = mean[d]
        s = scale[d]
        gap = _HALF_LOG_2PI - np.log(s)
        src = xt[d]
        dst = delta[d]
        for j in range(n_rows):
            x = src[j]
            if x != x:
                dst[j] = 0.0
                lp[j] += gap
            else:
                v = x - mu
                dst[j] = v
                t = v * s
                sq[j] += t * t
    for j in range(n_rows):
        lp[j] -= 0.5 * sq[j]


@inline
def marginal_log_prob(
    xt, n_rows, n_groups, starts, idx, n_miss, form, k, chol, rhs, delta, work, sq, lp
):
    """Component ``k``'s weighted marginal log-densities ``lp[k]`` and filled rows ``delta``."""
    means, prec, factors, upper, diagonal, scales, log_const = form
    if diagonal:
        diagonal_log_prob(xt, n_rows, means[k], scales[k], log_const[k], delta, lp[k], sq)
        return
    row = lp[k]
    for g in range(n_groups):
        s = starts[g]
        e = starts[g + 1]
        n_m = n_miss[g]
        gap = log_const[k]
        if n_m > 0:
            half_logdet = cholesky_missing(prec[k], idx[g], n_m, chol)
            gap += n_m * _HALF_LOG_2PI - half_logdet
        condition_pattern(xt, s, e, idx[g], n_m, prec[k], means[k], chol, rhs, delta)
        for j in range(s, e):
            row[j] = gap
    factor_squares(delta, n_rows, factors[k], upper, work, sq)
    for j in range(n_rows):
        row[j] -= 0.5 * sq[j]


@inline
def conditional_covariance(prec, idx, n_m, chol, linv, inv):
    """``inv[:n_m, :n_m] = Lambda_mm^-1``, the conditional covariance of the missing block.

    From the Cholesky factor ``L`` of ``Lambda_mm``: ``L^-1`` by forward substitution (into
    ``linv``), then ``L^-T L^-1``.
    """
    cholesky_missing(prec, idx, n_m, chol)
    for a in range(n_m):
        linv[a, a] = 1.0 / chol[a, a]
        for b in range(a):
            value = 0.0
            for c in range(b, a):
                value -= chol[a, c] * linv[c, b]
            linv[a, b] = value / chol[a, a]
    for a in range(n_m):
        for b in range(a + 1):
            value = 0.0
            for c in range(a, n_m):
                value += linv[c, a] * linv[c, b]
            inv[a, b] = value
            inv[b, a] = value


@inline
def accumulate_component(k, delta, n_rows, wr, offset, full, s1, s2, work, wd, gram):
    """Add component ``k``'s ``s1`` and ``s2`` (full upper triangle or diagonal) of the rows
    ``delta + offset`` (``x_hat - shift_k``) weighted by ``wr`` (zero past ``n_rows``)."""
    n_features, width = delta.shape
    if full and n_features >= GEMM_MIN_FEATURES:
        for j in range(width):
            wd[j] = np.sqrt(wr[j])
        for d in range(n_features):
            o = offset[d]
            src = delta[d]
            out = work[d]
            for j in range(width):
                out[j] = (src[j] + o) * wd[j]
            first = 0.0
            for j in range(n_rows):  # a separate, read-only reduction (see blocks.weigh)
                first += wr[j] * (src[j] + o)
            s1[k, d] += first
        gram_lower(work, gram)
        for d in range(n_features):
            for e in range(d, n_features):
                s2[k, d, e] += gram[e, d]
        return
    for d in range(n_features):
        o = offset[d]
        src = delta[d]
        out = work[d]
        for j in range(n_rows):
            out[j] = src[j] + o
        first = 0.0
        for j in range(n_rows):
            first += wr[j] * out[j]
        s1[k, d] += first
    if full:
        for d in range(n_features):
            for e in range(d, n_features):
                second = 0.0
                for j in range(n_rows):
                    second += wr[j] * work[d, j] * work[e, j]
                s2[k, d, e] += second
    else:
        for d in range(n_features):
            second = 0.0
            for j in range(n_rows):
                second += wr[j] * work[d, j] * work[d, j]
            s2[k, 0, d] += second


@inline
def add_conditional(
    xt, n_rows, n_groups, starts, idx, n_miss, form, k, w, resp_k, full, s2, chol, linv, inv
):
    """Add ``sum_i w_i r_ik Cov_k(x_m | x_o)`` to component ``k``'s second moment.

    One inverse per (pattern, component), times the pattern's summed weights; a diagonal
    component's conditional variances are its own variances.
    """
    prec, diagonal, scales = form[1], form[4], form[5]
    n_features = xt.shape[0]
    if diagonal:
        for d in range(n_features):
            src = xt[d]
            total = 0.0
            for j in range(n_rows):
                total += w[j] * resp_k[j] if src[j] != src[j] else 0.0
            variance = 1.0 / (scales[k, d] * scales[k, d])
            if full:
                s2[k, d, d] += total * variance
            else:
                s2[k, 0, d] += total * variance
        return
    for g in range(n_groups):
        n_m = n_miss[g]
        if n_m == 0:
            continue
        total = 0.0
        for j in range(starts[g], starts[g + 1]):
            total += w[j] * resp_k[j]
        if total == 0.0:
            continue
        conditional_covariance(prec[k], idx[g], n_m, chol, linv, inv)
        for a in range(n_m):
            da = idx[g, a]
            if full:
                for b in range(a, n_m):
                    s2[k, da, idx[g, b]] += total * inv[a, b]
            else:
                s2[k, 0, da] += total * inv[a, a]


@inline
def impute_block(
    xt,
    n_rows,
    n_groups,
    starts,
    idx,
    n_miss,
    form,
    resp,
    delta,
    chol,
    linv,
    inv,
    fill,
    spread,
    rows,
    first,
    order,
    out_mean,
    out_var,
):
    """The imputation outputs of a block: conditional means and variances of missing entries.

    ``fill`` and ``spread`` are (D, block) scratch: the mixture's conditional mean, then the
    sum of the components' conditional variances (``inv``'s diagonal per pattern).
    """
    means, prec, diagonal, scales = form[0], form[1], form[4], form[5]
    n_features = xt.shape[0]
    n_components = means.shape[0]
    want_var = out_var.shape[0] > 0
    for d in range(n_features):
        for j in range(n_rows):
            fill[d, j] = 0.0
            spread[d, j] = 0.0
    for k in range(n_components):
        r = resp[k]
        for d in range(n_features):
            mu = means[k, d]
            src = delta[k, d]
            dst = fill[d]
            for j in range(n_rows):
                dst[j] += r[j] * (src[j] + mu)
    if want_var:
        for k in range(n_components):
            r = resp[k]
            if diagonal:
                for d in range(n_features):
                    variance = 1.0 / (scales[k, d] * scales[k, d])
                    dst = spread[d]
                    for j in range(n_rows):
                        dst[j] += r[j] * variance
            else:
                for g in range(n_groups):
                    n_m = n_miss[g]
                    if n_m == 0:
                        continue
                    conditional_covariance(prec[k], idx[g], n_m, chol, linv, inv)
                    for a in range(n_m):
                        dst = spread[idx[g, a]]
                        variance = inv[a, a]
                        for j in range(starts[g], starts[g + 1]):
                            dst[j] += r[j] * variance
            for d in range(n_features):
                mu = means[k, d]
                src = delta[k, d]
                centre = fill[d]
                dst = spread[d]
                for j in range(n_rows):
                    gap = src[j] + mu - centre[j]
                    dst[j] += r[j] * gap * gap
    for j in range(n_rows):
        i = rows[first + order[j]]
        for d in range(n_features):
            x = xt[d, j]
            if x != x:
                out_mean[i, d] = fill[d, j]
                if want_var:
                    out_var[i, d] = spread[d, j]
            else:
                out_mean[i, d] = x
                if want_var:
                    out_var[i, d] = 0.0


@kernel
def missing_statistics(
    X, rows, sample_weight, form, shift, resp_in, mode, kind, want_entropy, n_slots, block
):
    """One pass over the rows ``rows`` of ``X`` (each holding a NaN): the marginal E-step and
    the expected statistics.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features), float32 or float64
    rows : ndarray of shape (n_rows,), int64
        The rows to process (increasing; each with at least one NaN and one observed entry).
    sample_weight : ndarray of shape (n_samples,) or (0,), float64
    form : tuple
        ``(means, prec, factors, upper, diagonal, scales, log_const)``: ``means`` (K, D),
        the precisions ``prec`` (K, D, D), factors ``F_k`` with ``F_k F_k^T = prec_k`` (K, D, D;
        upper triangular when ``upper``), ``diagonal`` (the precisions are diagonal, with square
        roots ``scales`` (K, D)), ``log_const`` (K,) as in the other kernels. All float64.
    shift : ndarray of shape (n_components, n_features), float64
    resp_in : ndarray of shape (n_samples, n_components) or (0, n_components)
        ``GIVEN`` responsibilities, indexed by row of ``X``.
    mode, want_entropy, n_slots, block
        As for :func:`fastgmm._kernels.factor.factor_statistics`.
    kind : int
        ``DIAG`` for per-component diagonal second moments, anything else for full ones.

    Returns
    -------
    nk, s1, s2, totals, weight_sum
        As for ``factor_statistics``; ``s2`` is (K, D, D) upper triangles, or (K, 1, D).
    """
    means, diagonal = form[0], form[4]
    n_features = X.shape[1]
    n_components = means.shape[0]
    n_rows_total = rows.shape[0]
    n_blocks = (n_rows_total + block - 1) // block
    full = kind != DIAG
    nk_p = np.zeros((n_slots, n_components))
    s1_p = np.zeros((n_slots, n_components, n_features))
    s2_p = np.zeros((n_slots, n_components, n_features if full else 1, n_features))
    tot_p = np.zeros((n_slots, 3))
    sw_p = np.zeros(n_slots)
    # A loop, not ``means - shift``: an array expression outside the prange loop made Numba
    # warn that parallel=True found nothing to parallelise (an error in the test suite).
    offsets = np.empty((n_components, n_features))
    for k in range(n_components):
        for d in range(n_features):
            offsets[k, d] = means[k, d] - shift[k, d]
    for p in prange(n_slots):
        xt = np.zeros((n_features, block))
        delta = np.zeros((n_components, n_features, block))
        rhs = np.zeros((n_features, block))
        work = np.zeros((n_features, block))
        gram = np.empty((n_features, n_features))
        chol = np.zeros((n_features, n_features))
        linv = np.zeros((n_features, n_features))
        inv = np.zeros((n_features, n_features))
        keys = np.empty(block, dtype=np.uint64)
        order = np.empty(block, dtype=np.int64)
        starts = np.empty(block + 1, dtype=np.int64)
        idx = np.empty((block, n_features), dtype=np.int64)
        n_miss = np.zeros(block, dtype=np.int64)
        lp = np.empty((n_components, block))
        w = np.empty(block)
        wr = np.empty(block)
        wd = np.empty(block)
        mx = np.empty(block)
        sq = np.empty(block)
        lse = np.empty(block)
        extras = np.empty((3, block))
        bits = np.empty(block, dtype=np.int64)
        for b in range(p * n_blocks // n_slots, (p + 1) * n_blocks // n_slots):
            first = b * block
            n_rows = min(block, n_rows_total - first)
            load_sorted_block(
                X, rows, first, n_rows, sample_weight, not diagonal, keys, order, xt, w
            )
            n_groups = 0
            if not diagonal:
                n_groups = find_patterns(xt, keys, order, n_rows, starts, idx, n_miss)
            for k in range(n_components):
                marginal_log_prob(
                    xt,
                    n_rows,
                    n_groups,
                    starts,
                    idx,
                    n_miss,
                    form,
                    k,
                    chol,
                    rhs,
                    delta[k],
                    work,
                    sq,
                    lp,
                )
            if mode == GIVEN:
                for k in range(n_components):
                    for j in range(n_rows):
                        lp[k, j] = resp_in[rows[first + order[j]], k]
            else:
                soft = mode == SOFT or mode == SCORE
                responsibilities(lp, n_rows, soft, w, lse, mx, bits, extras, want_entropy, tot_p[p])
            sw_p[p] += total_weight(w, n_rows)
            if mode == SCORE:
                continue
            for k in range(n_components):
                total = weigh(w, lp[k], n_rows, block, wr)
                if total == 0.0:
                    continue
                nk_p[p, k] += total
                accumulate_component(
                    k, delta[k], n_rows, wr, offsets[k], full, s1_p[p], s2_p[p], work, wd, gram
                )
                add_conditional(
                    xt,
                    n_rows,
                    n_groups,
                    starts,
                    idx,
                    n_miss,
                    form,
                    k,
                    w,
                    lp[k],
                    full,
                    s2_p[p],
                    chol,
                    linv,
                    inv,
                )
    return sum_slots(nk_p), sum_slots(s1_p), sum_slots(s2_p), sum_slots(tot_p), sum_slots(sw_p)


@kernel
def missing_scores(X, rows, form, outputs, block):
    """Per-row outputs of the rows ``rows`` of ``X`` (each holding a NaN), in float64.

    ``outputs`` is ``(out_lse, out_resp, out_labels, out_mean, out_var)``, indexed by row of
    ``X``: the log-likelihood of the observed entries; the responsibilities (n_samples, K) and
    the most probable component, unless of length 0; and for the imputation, unless of length
    0, the conditional mean of every missing entry under the mixture (``sum_k r_k x_hat_k``,
    the observed entries are left alone) and its conditional variance
    (``sum_k r_k (Cov_k(x_m | x_o)_dd + (x_hat_kd - mean_d)^2)``, the observed ones set to 0).
    Rows are independent, so blocks run in any order.
    """
    out_lse, out_resp, out_labels, out_mean, out_var = outputs
    means, diagonal = form[0], form[4]
    n_features = X.shape[1]
    n_components = means.shape[0]
    n_rows_total = rows.shape[0]
    n_blocks = (n_rows_total + block - 1) // block
    no_weights = np.empty(0)
    for b in prange(n_blocks):
        xt = np.zeros((n_features, block))
        delta = np.zeros((n_components, n_features, block))
        rhs = np.zeros((n_features, block))
        work = np.zeros((n_features, block))
        chol = np.zeros((n_features, n_features))
        linv = np.zeros((n_features, n_features))
        inv = np.zeros((n_features, n_features))
        keys = np.empty(block, dtype=np.uint64)
        order = np.empty(block, dtype=np.int64)
        starts = np.empty(block + 1, dtype=np.int64)
        idx = np.empty((block, n_features), dtype=np.int64)
        n_miss = np.zeros(block, dtype=np.int64)
        lp = np.empty((n_components, block))
        w = np.empty(block)
        mx = np.empty(block)
        sq = np.empty(block)
        lse = np.empty(block)
        extras = np.empty((3, block))
        bits = np.empty(block, dtype=np.int64)
        first = b * block
        n_rows = min(block, n_rows_total - first)
        load_sorted_block(X, rows, first, n_rows, no_weights, not diagonal, keys, order, xt, w)
        n_groups = 0
        if not diagonal:
            n_groups = find_patterns(xt, keys, order, n_rows, starts, idx, n_miss)
        for k in range(n_components):
            marginal_log_prob(
                xt,
                n_rows,
                n_groups,
                starts,
                idx,
                n_miss,
                form,
                k,
                chol,
                rhs,
                delta[k],
                work,
                sq,
                lp,
            )
        if out_labels.shape[0] > 0:
            argmax_rows(lp, n_rows, mx, bits)
            for j in range(n_rows):
                out_labels[rows[first + order[j]]] = bits[j]
        normalise(lp, n_rows, lse, mx, bits, extras, False)
        for j in range(n_rows):
            out_lse[rows[first + order[j]]] = lse[j]
        if out_resp.shape[0] > 0:
            for j in range(n_rows):
                i = rows[first + order[j]]
                for k in range(n_components):
                    out_resp[i, k] = lp[k, j]
        if out_mean.shape[0] == 0:
            continue
        impute_block(
            xt,
            n_rows,
            n_groups,
            starts,
            idx,
            n_miss,
            form,
            lp,
            delta,
            chol,
            linv,
            inv,
            rhs,
            work,
            rows,
            first,
            order,
            out_mean,
            out_var,
        )
