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

**Patterns.** The rows come sorted by their pattern of missing entries (a stable radix sort
of :func:`pattern_keys`, within stretches of the chunk: see
:func:`fastgmm._marginal.split_rows`; the key is the pattern's bits for up to 64 features, a
hash beyond, where consecutive rows are also compared entry by entry), so that a block holds
runs of one pattern: one factorisation per (pattern, component) per block serves a run
(:func:`factor_pattern`, every component at once). A long run is conditioned by vector loops
over its rows (:func:`condition_run`), a short one row by row with the components in SIMD
lanes (:func:`condition_pattern`). The sort depends only on the rows, so the order of every
sum, and the results, are the same for any thread count; blocks and slots follow
:mod:`fastgmm._kernels.factor`.

**Diagonal layouts** (``Lambda`` diagonal: diag, spherical and the other diagonal models) need
no factorisation at all: ``x_hat_m = mu_m``, and the conditional variances are the
component's own. Their rows are not sorted.

Where patterns repeat and the complete rows would use the feature map, EM passes use
:mod:`fastgmm._kernels.missing_map` instead (the same statistics, two matrix products a run).

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
from .modes import GIVEN, HARD, SCORE

_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)
# Patterns of up to this many features are their own sort key, one bit per feature.
_KEY_BITS = 64
# Runs of at least this many rows of one pattern are conditioned by vector loops over the
# rows (condition_run), shorter ones row by row with the components in SIMD lanes.
_RUN_ROWS = 16
# FNV-1a, for the keys of wider patterns (equal keys are then checked entry by entry).
_FNV_OFFSET = np.uint64(14695981039346656037)
_FNV_PRIME = np.uint64(1099511628211)


@inline
def pattern_key(X, i):
    """The sort key of row ``i``'s pattern of NaN: 0 for a complete row, its bits for up to 64
    features, else a hash (FNV-1a, never 0 with a NaN; rows with equal hashes are compared
    entry by entry by :func:`find_patterns`)."""
    n_features = X.shape[1]
    if n_features <= _KEY_BITS:
        key = np.uint64(0)
        for d in range(n_features):
            v = X[i, d]
            if v != v:
                key |= np.uint64(1) << np.uint64(d)
        return key
    key = _FNV_OFFSET
    seen = False
    for d in range(n_features):
        v = X[i, d]
        if v != v:
            key = (key ^ np.uint64(d)) * _FNV_PRIME
            seen = True
    if not seen:
        return np.uint64(0)
    return key if key != np.uint64(0) else np.uint64(1)


@kernel
def pattern_keys(X, keys, stretch, stretch_shift, block):
    """``keys[i]`` = the pattern key of row ``i`` of ``X`` (0 for a complete row).

    With ``stretch > 0`` the key of a row with a NaN also holds ``i // stretch`` from bit
    ``stretch_shift`` up, so that a sort keeps rows within stretches of the chunk (see
    :func:`fastgmm._marginal.split_rows`).
    """
    n_rows = X.shape[0]
    n_blocks = (n_rows + block - 1) // block
    for b in prange(n_blocks):
        for i in range(b * block, min((b + 1) * block, n_rows)):
            key = pattern_key(X, i)
            if stretch > 0 and key != np.uint64(0):
                key |= np.uint64(i // stretch) << np.uint64(stretch_shift)
            keys[i] = key


@kernel
def radix_histogram(keys, order, shift, counts):
    """One digit's counts per slot: ``counts[p, c]`` = rows of slot ``p`` (the ``p``-th of
    ``counts.shape[0]`` equal runs of ``order``) whose key has digit ``c`` at ``shift``."""
    n_slots, n_buckets = counts.shape
    n = order.shape[0]
    mask = np.uint64(n_buckets - 1)
    for p in prange(n_slots):
        row = counts[p]
        for c in range(n_buckets):
            row[c] = 0
        for j in range(p * n // n_slots, (p + 1) * n // n_slots):
            row[(keys[order[j]] >> shift) & mask] += 1


@kernel
def radix_scatter(keys, order, shift, offsets, out):
    """The stable scatter of one digit: slot ``p`` writes its rows, in order, from
    ``offsets[p, c]`` on for digit ``c`` (offsets from :func:`radix_histogram`'s counts)."""
    n_slots, n_buckets = offsets.shape
    n = order.shape[0]
    mask = np.uint64(n_buckets - 1)
    for p in prange(n_slots):
        at = offsets[p]
        for j in range(p * n // n_slots, (p + 1) * n // n_slots):
            c = (keys[order[j]] >> shift) & mask
            out[at[c]] = order[j]
            at[c] += 1


@kernel
def take_rows(X, rows, out, block):
    """``out[j] = X[rows[j]]`` (the complete rows of a chunk, gathered in parallel)."""
    n_rows, n_features = out.shape
    n_blocks = (n_rows + block - 1) // block
    for b in prange(n_blocks):
        for j in range(b * block, min((b + 1) * block, n_rows)):
            i = rows[j]
            for d in range(n_features):
                out[j, d] = X[i, d]


@inline
def load_rows(X, rows, first, n_rows, sample_weight, xt, w):
    """Rows ``rows[first:first+n_rows]`` of ``X`` transposed into ``xt``; their weights in
    ``w``."""
    n_features = X.shape[1]
    for j in range(n_rows):
        i = rows[first + j]
        for d in range(n_features):
            xt[d, j] = X[i, d]
    if sample_weight.shape[0] == 0:
        for j in range(n_rows):
            w[j] = 1.0
    else:
        for j in range(n_rows):
            w[j] = sample_weight[rows[first + j]]


@inline
def find_patterns(xt, keys, first, n_rows, starts, idx, n_miss):
    """Split the block (whose rows come sorted by pattern key) into runs of one pattern.

    Returns the number ``G`` of runs: run ``g`` is columns ``starts[g]:starts[g+1]`` of
    ``xt``; ``idx[g]`` lists its missing features (``n_miss[g]`` of them, increasing), then its
    observed ones. ``keys[first + j]`` is the key of the block's ``j``-th row.
    """
    n_features = xt.shape[0]
    n_groups = 0
    for j in range(n_rows):
        new = j == 0 or keys[first + j] != keys[first + j - 1]
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
def factor_pattern(prec_t, idx, n_m, chol, inv_diag, half_logdet, value):
    """Cholesky factors ``L_k`` of ``Lambda_k,mm`` (``m = idx[:n_m]``) for every component.

    ``chol[a, b, k]`` (lower), ``inv_diag[a, k] = 1 / L_k[a, a]`` and ``half_logdet[k] =
    sum_a log L_k[a, a]`` (half of ``log det Lambda_k,mm``). Components are the innermost
    index everywhere (``prec_t`` is (D, D, K)), so every loop runs over the K components in
    SIMD lanes. A block that is not positive definite (which a valid precision's principal
    block never is) gives NaN. ``value`` is (K,) scratch.
    """
    n_components = prec_t.shape[2]
    for k in range(n_components):
        half_logdet[k] = 0.0
        value[k] = 1.0
    for a in range(n_m):
        ia = idx[a]
        for b in range(a + 1):
            ib = idx[b]
            lower = chol[a, b]
            for k in range(n_components):
                lower[k] = prec_t[ia, ib, k]
            for c in range(b):
                left = chol[a, c]
                right = chol[b, c]
                for k in range(n_components):
                    lower[k] -= left[k] * right[k]
            if a == b:
                inv = inv_diag[a]
                for k in range(n_components):
                    root = np.sqrt(lower[k])
                    lower[k] = root
                    inv[k] = 1.0 / root
                    value[k] *= root
            else:
                inv = inv_diag[b]
                for k in range(n_components):
                    lower[k] *= inv[k]
        # One logarithm per component and pattern, not per diagonal entry: the running product
        # is folded into the sum before it can leave float64's range.
        for k in range(n_components):
            if not 1e-100 < value[k] < 1e100:
                half_logdet[k] += np.log(value[k])
                value[k] = 1.0
    for k in range(n_components):
        half_logdet[k] += np.log(value[k])


@inline
def condition_pattern(xt, s, e, idx, n_m, prec_t, means_t, chol, inv_diag, coupling, t, delta):
    """Fill the missing rows of ``delta[k][:, s:e]`` (one pattern, every component).

    On entry ``delta[k]`` holds ``x - mu_k`` at the observed coordinates; the missing ones get
    ``-Lambda_k,mm^-1 Lambda_k,mo (x_o - mu_k,o)`` by forward and back substitution with the
    factors of :func:`factor_pattern`. ``Lambda_k,mo`` is gathered once per pattern into
    ``coupling`` (``[a, c, k]``); each row is then solved for all components at once, the
    components in SIMD lanes. ``t`` is (D, K) scratch.

    This is the layout for short runs (the rows of a pattern in one block are few when
    patterns rarely repeat, as at large D); long runs go to :func:`condition_run`. Measured
    on blocks of 1024 unsorted rows (N=1e6, D=8, K=8, 20% missing, one thread, a loaded
    machine): one vector loop per coefficient over a pattern's handful of rows cost 690 ms,
    each row solved in scalar code component by component 540 ms, this layout 210 ms.
    """
    n_features = xt.shape[0]
    n_components = means_t.shape[1]
    n_o = n_features - n_m
    for a in range(n_m):
        ia = idx[a]
        for c in range(n_o):
            src = prec_t[ia, idx[n_m + c]]
            dst = coupling[a, c]
            for k in range(n_components):
                dst[k] = src[k]
    for j in range(s, e):
        for a in range(n_m):
            row = t[a]
            for k in range(n_components):
                row[k] = 0.0
        for c in range(n_o):
            d = idx[n_m + c]
            x = xt[d, j]
            mu = means_t[d]
            for a in range(n_m):
                row = t[a]
                coef = coupling[a, c]
                for k in range(n_components):
                    row[k] += coef[k] * (x - mu[k])
        solve_missing(t, n_m, chol, inv_diag)
        for a in range(n_m):
            row = t[a]
            d = idx[a]
            for k in range(n_components):
                delta[k, d, j] = -row[k]


@inline
def solve_missing(t, n_m, chol, inv_diag):
    """``t[:n_m] = Lambda_k,mm^-1 t[:n_m]`` for every component ``k`` (the last index), by
    forward and back substitution with the factors of :func:`factor_pattern`."""
    n_components = inv_diag.shape[1]
    for sweep in range(2 * n_m):
        back = sweep >= n_m  # L y = t, then L^T z = y
        a = 2 * n_m - 1 - sweep if back else sweep
        row = t[a]
        for b in range(a + 1 if back else 0, n_m if back else a):
            coef = chol[b, a] if back else chol[a, b]
            other = t[b]
            for k in range(n_components):
                row[k] -= coef[k] * other[k]
        inv = inv_diag[a]
        for k in range(n_components):
            row[k] *= inv[k]


@inline
def condition_run(s, e, idx, n_m, prec_t, chol, inv_diag, rhs, delta):
    """:func:`condition_pattern` for a long run of rows: component by component, each step one
    vector loop over the run's rows (contiguous in ``xt``). ``rhs`` is (D, block) scratch.

    The loops index views that start at the run (``[s:e]``) from 0: with ``range(s, e)`` LLVM
    could not rule out negative indices, kept Numba's wrap-around test in every iteration and
    did not vectorise (measured: 4x slower).
    """
    n = e - s
    n_features = delta.shape[1]
    for k in range(prec_t.shape[2]):
        dk = delta[k]
        for a in range(n_m):
            row = rhs[a, s:e]
            for j in range(n):
                row[j] = 0.0
            ia = idx[a]
            for c in range(n_m, n_features):
                d = idx[c]
                coef = prec_t[ia, d, k]
                src = dk[d, s:e]
                for j in range(n):
                    row[j] += coef * src[j]
        for a in range(n_m):
            row = rhs[a, s:e]
            for b in range(a):
                coef = chol[a, b, k]
                other = rhs[b, s:e]
                for j in range(n):
                    row[j] -= coef * other[j]
            inv = inv_diag[a, k]
            for j in range(n):
                row[j] *= inv
        for a in range(n_m - 1, -1, -1):
            row = rhs[a, s:e]
            for b in range(a + 1, n_m):
                coef = chol[b, a, k]
                other = rhs[b, s:e]
                for j in range(n):
                    row[j] -= coef * other[j]
            inv = inv_diag[a, k]
            dst = dk[idx[a], s:e]
            for j in range(n):
                row[j] *= inv
                dst[j] = -row[j]


@inline
def conditional_covariances(n_m, chol, inv_diag, linv, cov):
    """``cov[a, b, k] = (Lambda_k,mm^-1)[a, b]`` for every component (the conditional
    covariance of the missing block), from the factors ``L`` of :func:`factor_pattern`.

    ``Y = L^-1`` row by row into ``linv`` (lower triangular: ``n_m^3 / 6`` products), then
    ``Y^T Y`` as the sum of the outer products of its rows (as many again). Solving for the
    unit vectors one by one was three times the work (measured on D=32, K=8, 50% missing:
    N=1e5: an EM iteration 35 times a complete one, against 24 times).
    """
    n_components = inv_diag.shape[1]
    for a in range(n_m):
        inv = inv_diag[a]
        for b in range(a + 1):
            out = linv[a, b]
            for k in range(n_components):
                out[k] = inv[k] if a == b else 0.0
        # Y[a, b] = (delta_ab - sum_{b <= c < a} L[a, c] Y[c, b]) / L[a, a]
        for c in range(a):
            coef = chol[a, c]
            for b in range(c + 1):
                out = linv[a, b]
                src = linv[c, b]
                for k in range(n_components):
                    out[k] -= coef[k] * src[k] * inv[k]
    for a in range(n_m):
        for b in range(a + 1):
            out = cov[a, b]
            for k in range(n_components):
                out[k] = 0.0
    for c in range(n_m):
        for a in range(c + 1):
            ya = linv[c, a]
            for b in range(a + 1):
                yb = linv[c, b]
                out = cov[a, b]
                for k in range(n_components):
                    out[k] += ya[k] * yb[k]
    for a in range(n_m):
        for b in range(a):
            src = cov[a, b]
            dst = cov[b, a]
            for k in range(n_components):
                dst[k] = src[k]


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
def marginal_log_prob(xt, n_rows, patterns, form, scratch, delta, work, sq, lp):
    """Every component's weighted marginal log-densities ``lp`` and filled rows ``delta``.

    ``patterns`` is ``(n_groups, starts, idx, n_miss)`` from :func:`find_patterns`; ``scratch``
    the per-pattern tables ``(chol, inv_diag, half_logdet, value, coupling, t, rhs)``.
    """
    means, means_t, prec_t, factors, upper, diagonal, scales, log_const = form
    n_components, n_features = means.shape
    if diagonal:
        for k in range(n_components):
            diagonal_log_prob(xt, n_rows, means[k], scales[k], log_const[k], delta[k], lp[k], sq)
        return
    n_groups, starts, idx, n_miss = patterns
    chol, inv_diag, half_logdet, value, coupling, t, rhs = scratch
    for k in range(n_components):
        for d in range(n_features):
            mu = means[k, d]
            src = xt[d]
            dst = delta[k, d]
            for j in range(n_rows):
                dst[j] = src[j] - mu  # NaN where missing: every such entry is filled below
    for g in range(n_groups):
        s = starts[g]
        e = starts[g + 1]
        n_m = n_miss[g]
        if n_m > 0:
            factor_pattern(prec_t, idx[g], n_m, chol, inv_diag, half_logdet, value)
            if e - s >= _RUN_ROWS:
                condition_run(s, e, idx[g], n_m, prec_t, chol, inv_diag, rhs, delta)
            else:
                condition_pattern(
                    xt, s, e, idx[g], n_m, prec_t, means_t, chol, inv_diag, coupling, t, delta
                )
        for k in range(n_components):
            gap = log_const[k]
            if n_m > 0:
                gap += n_m * _HALF_LOG_2PI - half_logdet[k]
            row = lp[k, s:e]
            for j in range(e - s):
                row[j] = gap
    for k in range(n_components):
        factor_squares(delta[k], n_rows, factors[k], upper, work, sq)
        row = lp[k]
        for j in range(n_rows):
            row[j] -= 0.5 * sq[j]


@inline
def accumulate_component(k, delta, n_rows, wr, offset, full, work, moments):
    """Add component ``k``'s ``s1`` and ``s2`` (full upper triangle or diagonal) of the rows
    ``delta + offset`` (``x_hat - shift_k``) weighted by ``wr`` (zero past ``n_rows``).
    ``moments`` is ``(s1, s2, gram, wd)``: the sums, and (D, D) and (block,) scratch.

    The rows about the shift go into ``work`` first (over the block's whole width: the columns
    past ``n_rows`` are finite and weigh nothing), then ``s1``; the full second moment is one
    BLAS ``syrk`` of the rows scaled by ``sqrt(wr)`` from ``GEMM_MIN_FEATURES`` features, and
    loops below, as for the complete rows.
    """
    s1, s2, gram, wd = moments
    n_features, width = delta.shape
    for d in range(n_features):
        o = offset[d]
        src = delta[d]
        v = work[d]
        for j in range(width):
            v[j] = src[j] + o
        first = 0.0
        for j in range(n_rows):  # a separate, read-only reduction (see blocks.weigh)
            first += wr[j] * v[j]
        s1[k, d] += first
    if not full:
        for d in range(n_features):
            v = work[d]
            second = 0.0
            for j in range(n_rows):
                second += wr[j] * v[j] * v[j]
            s2[k, 0, d] += second
        return
    if n_features < GEMM_MIN_FEATURES:
        for d in range(n_features):
            for e in range(d, n_features):
                second = 0.0
                for j in range(n_rows):
                    second += wr[j] * work[d, j] * work[e, j]
                s2[k, d, e] += second
        return
    for j in range(width):
        wd[j] = np.sqrt(wr[j])
    for d in range(n_features):
        v = work[d]
        for j in range(width):
            v[j] *= wd[j]
    gram_lower(work, gram)
    for d in range(n_features):
        for e in range(d, n_features):
            s2[k, d, e] += gram[e, d]


@inline
def run_conditional(patterns, g, prec_t, scratch, linv, cov):
    """Run ``g``'s first and past-last rows and its number of missing entries; when it has
    some, ``cov[:n_m, :n_m, k]`` receives every component's ``Lambda_k,mm^-1``."""
    starts, idx, n_miss = patterns[1], patterns[2], patterns[3]
    n_m = n_miss[g]
    if n_m > 0:
        factor_pattern(prec_t, idx[g], n_m, scratch[0], scratch[1], scratch[2], scratch[3])
        conditional_covariances(n_m, scratch[0], scratch[1], linv, cov)
    return starts[g], starts[g + 1], n_m


@inline
def add_conditional(xt, n_rows, patterns, form, w, resp, full, s2, scratch, linv, cov, mass):
    """Add ``sum_i w_i r_ik Cov_k(x_m | x_o)`` to every component's second moment.

    One inverse per (pattern, component), times the pattern's summed weights (``mass``, (K,)
    scratch); a diagonal component's conditional variances are its own variances.
    """
    means, prec_t, diagonal, scales = form[0], form[2], form[5], form[6]
    n_components, n_features = means.shape
    if diagonal:
        for k in range(n_components):
            r = resp[k]
            for d in range(n_features):
                src = xt[d]
                total = 0.0
                for j in range(n_rows):
                    total += w[j] * r[j] if src[j] != src[j] else 0.0
                variance = 1.0 / (scales[k, d] * scales[k, d])
                if full:
                    s2[k, d, d] += total * variance
                else:
                    s2[k, 0, d] += total * variance
        return
    idx = patterns[2]
    for g in range(patterns[0]):
        s, e, n_m = run_conditional(patterns, g, prec_t, scratch, linv, cov)
        if n_m == 0:
            continue
        run = w[s:e]
        for k in range(n_components):
            r = resp[k, s:e]
            total = 0.0
            for j in range(e - s):
                total += run[j] * r[j]
            mass[k] = total
        for k in range(n_components):
            total = mass[k]
            if total == 0.0:
                continue
            for a in range(n_m):
                da = idx[g, a]
                if full:
                    for b in range(a, n_m):
                        s2[k, da, idx[g, b]] += total * cov[a, b, k]
                else:
                    s2[k, 0, da] += total * cov[a, a, k]


@inline
def mix_predictions(delta, means, resp, d, n_rows, centre, power, out):
    """``out[j] += sum_k r_kj (x_hat_kdj - centre[j]) ** power`` (power 1 or 2), feature
    ``d`` of the components' filled rows (``delta[k] + mu_k``)."""
    for k in range(means.shape[0]):
        predicted = delta[k, d]
        offset = means[k, d]
        r = resp[k]
        for j in range(n_rows):
            gap = predicted[j] + offset - centre[j]
            out[j] += r[j] * (gap if power == 1 else gap * gap)


@inline
def impute_block(xt, n_rows, patterns, form, resp, delta, scratch, linv, cov, fill, spread, out):
    """The imputation outputs of a block: conditional means and variances of missing entries.

    ``fill`` and ``spread`` are (D, block) scratch: the mixture's conditional mean, then the
    sum of the components' conditional variances and of their means' spread about it.
    ``out`` is ``(rows, first, out_mean, out_var)``.
    """
    rows, first, out_mean, out_var = out
    means, prec_t, diagonal, scales = form[0], form[2], form[5], form[6]
    n_components, n_features = means.shape
    want_var = out_var.shape[0] > 0
    # Per feature: the mixture's conditional mean, then the components' predictions' spread
    # about it (with the spread's zeroed row as the first pass's centre).
    for d in range(n_features):
        for j in range(n_rows):
            fill[d, j] = 0.0
            spread[d, j] = 0.0
        mix_predictions(delta, means, resp, d, n_rows, spread[d], 1, fill[d])
        if want_var:
            mix_predictions(delta, means, resp, d, n_rows, fill[d], 2, spread[d])
    # Plus the components' own conditional variances.
    if want_var and diagonal:
        for k in range(n_components):
            r = resp[k]
            for d in range(n_features):
                variance = 1.0 / (scales[k, d] * scales[k, d])
                dst = spread[d]
                for j in range(n_rows):
                    dst[j] += r[j] * variance
    elif want_var:
        idx = patterns[2]
        for g in range(patterns[0]):
            s, e, n_m = run_conditional(patterns, g, prec_t, scratch, linv, cov)
            for k in range(n_components):
                r = resp[k, s:e]
                for a in range(n_m):
                    dst = spread[idx[g, a], s:e]
                    variance = cov[a, a, k]
                    for j in range(e - s):
                        dst[j] += r[j] * variance
    for j in range(n_rows):
        i = rows[first + j]
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


@inline
def pattern_buffers(n_features, n_components, block):
    """A slot's buffers for the rows of a block and their patterns: ``(xt, delta, work,
    scratch, linv, cov, starts, idx, n_miss)``, ``scratch`` being the per-pattern tables of
    :func:`marginal_log_prob`. Zeroed where a product may read past a block's last row."""
    tables = (
        np.zeros((n_features, n_features, n_components)),
        np.zeros((n_features, n_components)),
        np.zeros(n_components),
        np.zeros(n_components),
        np.zeros((n_features, n_features, n_components)),
        np.zeros((n_features, n_components)),
        np.zeros((n_features, block)),
    )
    return (
        np.zeros((n_features, block)),
        np.zeros((n_components, n_features, block)),
        np.zeros((n_features, block)),
        tables,
        np.zeros((n_features, n_features, n_components)),
        np.zeros((n_features, n_features, n_components)),
        np.empty(block + 1, dtype=np.int64),
        np.empty((block, n_features), dtype=np.int64),
        np.zeros(block, dtype=np.int64),
    )


@inline
def block_log_prob(X, rows, keys, first, n_rows, sample_weight, form, buffers, lp, w, sq):
    """Load a block's rows (and weights into ``w``), find their patterns and put every
    component's weighted marginal log-densities into ``lp``; returns the patterns."""
    xt, delta, work, scratch = buffers[:4]
    starts, idx, n_miss = buffers[6:]
    load_rows(X, rows, first, n_rows, sample_weight, xt, w)
    n_groups = 0
    if not form[5]:  # a diagonal layout needs no patterns
        n_groups = find_patterns(xt, keys, first, n_rows, starts, idx, n_miss)
    patterns = (n_groups, starts, idx, n_miss)
    marginal_log_prob(xt, n_rows, patterns, form, scratch, delta, work, sq, lp)
    return patterns


@inline
def row_buffers(n_components, block):
    """A slot's per-row buffers: ``(lp, w, mx, sq, lse, extras, bits)`` (see
    :func:`fastgmm._kernels.blocks.responsibilities`)."""
    return (
        np.empty((n_components, block)),
        np.empty(block),
        np.empty(block),
        np.empty(block),
        np.empty(block),
        np.empty((3, block)),
        np.empty(block, dtype=np.int64),
    )


@kernel
def missing_statistics(
    X, rows, keys, sample_weight, form, shift, resp_in, mode, kind, want_entropy, n_slots, block
):
    """One pass over the rows ``rows`` of ``X`` (each holding a NaN): the marginal E-step and
    the expected statistics.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features), float32 or float64
    rows : ndarray of shape (n_rows,), int64
        The rows to process (each with at least one NaN and one observed entry), sorted by
        pattern (see :func:`pattern_keys` and :func:`radix_order`), so that a pattern's rows
        are contiguous and one factorisation per block serves them.
    keys : ndarray of shape (n_rows,), uint64
        The pattern key of each row of ``rows`` (unused, and may be empty, for diagonal
        layouts, which need no patterns).
    sample_weight : ndarray of shape (n_samples,) or (0,), float64
    form : tuple
        ``(means, means_t, prec_t, factors, upper, diagonal, scales, log_const)``: ``means``
        (K, D) and their transpose ``means_t`` (D, K); the precisions with the components last,
        ``prec_t`` (D, D, K); factors ``F_k`` with ``F_k F_k^T = Lambda_k`` (K, D, D; upper
        triangular when ``upper``); ``diagonal`` (the precisions are diagonal, with square roots
        ``scales`` (K, D), and the other matrices may be empty); ``log_const`` (K,) as in the
        other kernels. All float64.
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
    means = form[0]
    n_components, n_features = means.shape
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
        buffers = pattern_buffers(n_features, n_components, block)
        lp, w, mx, sq, lse, extras, bits = row_buffers(n_components, block)
        moments = (s1_p[p], s2_p[p], np.empty((n_features, n_features)), np.empty(block))
        mass = np.zeros(n_components)
        wr = np.empty(block)
        for b in range(p * n_blocks // n_slots, (p + 1) * n_blocks // n_slots):
            first = b * block
            n_rows = min(block, n_rows_total - first)
            patterns = block_log_prob(
                X, rows, keys, first, n_rows, sample_weight, form, buffers, lp, w, sq
            )
            sw_p[p] += total_weight(w, n_rows)
            if mode != GIVEN:
                # Posterior probabilities, or one-hot rows at the largest for HARD.
                posterior = mode != HARD
                responsibilities(
                    lp, n_rows, posterior, w, lse, mx, bits, extras, want_entropy, tot_p[p]
                )
            else:
                for k in range(n_components):
                    for j in range(n_rows):
                        lp[k, j] = resp_in[rows[first + j], k]
            if mode == SCORE:
                continue
            xt, delta, work, scratch, linv, cov = buffers[:6]
            for k in range(n_components):
                total = weigh(w, lp[k], n_rows, block, wr)
                if total != 0.0:
                    nk_p[p, k] += total
                    accumulate_component(k, delta[k], n_rows, wr, offsets[k], full, work, moments)
            add_conditional(
                xt, n_rows, patterns, form, w, lp, full, s2_p[p], scratch, linv, cov, mass
            )
    return sum_slots(nk_p), sum_slots(s1_p), sum_slots(s2_p), sum_slots(tot_p), sum_slots(sw_p)


@kernel
def missing_scores(X, rows, keys, form, outputs, block):
    """Per-row outputs of the rows ``rows`` of ``X`` (each holding a NaN), in float64.

    ``outputs`` is ``(out_lse, out_resp, out_labels, out_mean, out_var)``, indexed by row of
    ``X``: the log-likelihood of the observed entries; the responsibilities (n_samples, K) and
    the most probable component, unless of length 0; and for the imputation, unless of length
    0, the conditional mean of every missing entry under the mixture (``sum_k r_k x_hat_k``,
    the observed entries are copied) and its conditional variance
    (``sum_k r_k (Cov_k(x_m | x_o)_dd + (x_hat_kd - mean_d)^2)``, the observed ones set to 0).
    ``rows`` and ``keys`` as for :func:`missing_statistics`. Rows are independent, so blocks
    run in any order.
    """
    out_lse, out_resp, out_labels, out_mean, out_var = outputs
    means = form[0]
    n_components, n_features = means.shape
    n_rows_total = rows.shape[0]
    n_blocks = (n_rows_total + block - 1) // block
    no_weights = np.empty(0)
    for b in prange(n_blocks):
        buffers = pattern_buffers(n_features, n_components, block)
        xt, delta, work, scratch, linv, cov = buffers[:6]
        lp, w, mx, sq, lse, extras, bits = row_buffers(n_components, block)
        fill = np.zeros((n_features, block))
        first = b * block
        n_rows = min(block, n_rows_total - first)
        patterns = block_log_prob(
            X, rows, keys, first, n_rows, no_weights, form, buffers, lp, w, sq
        )
        if out_labels.shape[0] > 0:
            argmax_rows(lp, n_rows, mx, bits)
            for j in range(n_rows):
                out_labels[rows[first + j]] = bits[j]
        normalise(lp, n_rows, lse, mx, bits, extras, False)
        for j in range(n_rows):
            out_lse[rows[first + j]] = lse[j]
        if out_resp.shape[0] > 0:
            for j in range(n_rows):
                i = rows[first + j]
                for k in range(n_components):
                    out_resp[i, k] = lp[k, j]
        if out_mean.shape[0] == 0:
            continue
        impute_block(
            xt,
            n_rows,
            patterns,
            form,
            lp,
            delta,
            scratch,
            linv,
            cov,
            fill,
            work,
            (rows, first, out_mean, out_var),
        )
