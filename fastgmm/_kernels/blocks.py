"""Serial building blocks that the drivers in :mod:`fastgmm._kernels.estep` run once per block.

A block is up to ``block`` rows, copied transposed into a ``(n_features, block)`` buffer ``xt``.
Working on the transpose puts the row index innermost, so every inner loop runs over contiguous
memory with independent iterations, which LLVM turns into SIMD code.

Precision: the row buffers (``xt``, ``diff``, ``work``, the feature map ``phi``) have the input's
dtype, so float32 data go through single-precision BLAS at twice the flop rate of double. Every
sum across rows of a chunk (the statistics, log-likelihoods, squared norms) is accumulated in
float64 whatever the dtype: in float32 only the per-block products are single precision, and their
rounding errors, about ``sqrt(block)`` ulps, are independent from block to block.

Covariance types share code through the shape of the precision factor ``prec``:

* full and tied: ``(n_components, n_features, n_features)``, the upper-triangular Cholesky factor
  ``U_k`` of each precision (sklearn's ``precisions_cholesky_``; tied repeats its one factor);
* diag and spherical: ``(n_components, 1, n_features)``, the square root of each precision
  (spherical repeats its scalar across features).

The log-density of row ``x`` under component ``k`` is then

.. math::

    \\log w_k + \\log\\mathcal{N}(x \\mid \\mu_k, \\Sigma_k)
        = c_k - \\tfrac12 \\lVert (x - \\mu_k) U_k \\rVert^2,
    \\qquad c_k = \\log w_k - \\tfrac{D}{2}\\log 2\\pi + \\sum_d \\log U_{k,dd},

where ``c_k`` (``log_const``) is computed once per iteration outside the kernels.
"""

import numpy as np

from .._jit import inline
from .blas import gram_lower, upper_transpose_times

# Rows per block for the loop kernels (k-means, and the E-step below GEMM_MIN_FEATURES): the
# block's working set stays in L1/L2. The partition into blocks never depends on the thread count
# (see estep.py), so results are reproducible. The BLAS path uses larger blocks, see
# ``fastgmm.em.block_rows_for``.
BLOCK = 256
# From this many features on, full-covariance products go through BLAS (see weighted_log_prob).
GEMM_MIN_FEATURES = 16


@inline
def load_block(X, start, n_rows, xt):
    """Copy rows ``start:start+n_rows`` of ``X`` transposed into ``xt`` (in ``xt``'s dtype).

    Columns past ``n_rows`` keep what an earlier block left there; drivers allocate ``xt`` with
    zeros so that those columns are always finite.
    """
    n_features = X.shape[1]
    for i in range(n_rows):
        for d in range(n_features):
            xt[d, i] = X[start + i, d]


@inline(ordered=True)
def sum_slots(partials):
    """The sum of the per-slot partials ``partials[0] + partials[1] + ...``, in slot order.

    The order is fixed (compiled without re-association, so even one value per slot is summed
    strictly in order), and the result does not depend on which thread filled which slot
    (bit-identical results for any thread count). ``partials`` has one leading axis of slots;
    the sum is an array, or a float for one value per slot.
    """
    total = partials[0] * 1.0  # a copy for arrays, the value itself for scalars
    for p in range(1, partials.shape[0]):
        total += partials[p]
    return total


@inline
def load_weights(sample_weight, start, n_rows, w):
    """Fill ``w`` with the block's sample weights; an empty ``sample_weight`` means all ones."""
    if sample_weight.shape[0] == 0:
        for i in range(n_rows):
            w[i] = 1.0
    else:
        for i in range(n_rows):
            w[i] = sample_weight[start + i]


@inline
def centre(xt, n_rows, mean, diff):
    """``diff[d, i] = xt[d, i] - mean[d]``."""
    for d in range(xt.shape[0]):
        m = mean[d]
        for i in range(n_rows):
            diff[d, i] = xt[d, i] - m


@inline
def weighted_log_prob(xt, n_rows, means, prec, prec_blas, log_const, lp, diff, work, sq):
    """Fill ``lp[k, i]`` with ``log w_k + log N(x_i | k)`` for every component.

    Full/tied factors with at least ``GEMM_MIN_FEATURES`` features go through BLAS: the block's
    ``U_k^T (x - mu_k)`` is one small matrix product per component, several times faster than any
    loop nest Numba emits. Below that size the call overhead dominates and a triangular loop, which
    only touches the ``d <= e`` half of ``U_k``, is faster. ``work`` is a scratch array shaped
    like ``xt``; for the BLAS path the whole block width is computed, and the columns past
    ``n_rows`` (stale but finite rows of an earlier block) are ignored. ``prec_blas`` is
    ``prec`` in the buffers' dtype, for the BLAS path; the loops keep ``prec`` in float64.
    """
    n_components = means.shape[0]
    n_features = xt.shape[0]
    is_diag = prec.shape[1] == 1
    use_blas = not is_diag and n_features >= GEMM_MIN_FEATURES
    width = xt.shape[1] if use_blas else n_rows
    for k in range(n_components):
        for i in range(width):
            sq[i] = 0.0
        if is_diag:
            for d in range(n_features):
                u = prec[k, 0, d]
                m = means[k, d]
                for i in range(n_rows):
                    y = (xt[d, i] - m) * u
                    sq[i] += y * y
        elif use_blas:
            centre(xt, width, means[k], diff)
            upper_transpose_times(prec_blas[k], diff)
            for e in range(n_features):
                for i in range(width):
                    sq[i] += diff[e, i] * diff[e, i]
        else:
            centre(xt, n_rows, means[k], diff)
            acc = lp[k]  # float64 scratch: this row of lp is only written after the loop
            for e in range(n_features):
                for i in range(n_rows):
                    acc[i] = 0.0
                for d in range(e + 1):
                    u = prec[k, d, e]
                    for i in range(n_rows):
                        acc[i] += diff[d, i] * u
                for i in range(n_rows):
                    sq[i] += acc[i] * acc[i]
        c = log_const[k]
        for i in range(n_rows):
            lp[k, i] = c - 0.5 * sq[i]


# Constants of exp_nonpositive (Cody-Waite split of ln 2, so that k*ln2 is exact in two parts).
_LN2_HI = 6.93147180369123816490e-01
_LN2_LO = 1.90821492927058770002e-10
_INV_LN2 = 1.44269504088896338700e00
# Below these, exp(x) is subnormal (2.3e-308 in float64, 1.7e-38 in float32): responsibilities
# that small are flushed to 0, because subnormal operands slow every later product down.
_EXP_FLOOR = -708.0
_EXP_FLOOR_FLOAT32 = -87.0


@inline(ordered=True)
def exp_nonpositive(values, n, bits):
    """``values[:n] = exp(values[:n])`` for arguments <= 0, in two SIMD-friendly loops.

    libm's ``exp`` is a scalar call that LLVM cannot vectorise (Numba's pip builds have no
    SVML), and it was the largest single cost of the E-step at small D. Here ``x = k ln2 + r``
    with ``|r| <= ln2/2``, ``exp(r)`` is a degree-13 Taylor polynomial (truncation error below
    1e-17 relative) and ``2^k`` is assembled from its exponent bits in ``bits`` (int64 scratch).
    Measured: ~20x faster than the libm call, relative error ~1e-16. ``values`` may be float32
    (the feature-map kernels' buffers); the arithmetic is float64 either way.
    """
    scale = bits.view(np.float64)
    floor = _EXP_FLOOR_FLOAT32 if values.itemsize == 4 else _EXP_FLOOR
    for i in range(n):
        v = max(values[i], floor)
        k = np.floor(v * _INV_LN2 + 0.5)
        r = (v - k * _LN2_HI) - k * _LN2_LO
        p = 1.0 / 6227020800.0
        p = p * r + 1.0 / 479001600.0
        p = p * r + 1.0 / 39916800.0
        p = p * r + 1.0 / 3628800.0
        p = p * r + 1.0 / 362880.0
        p = p * r + 1.0 / 40320.0
        p = p * r + 1.0 / 5040.0
        p = p * r + 1.0 / 720.0
        p = p * r + 1.0 / 120.0
        p = p * r + 1.0 / 24.0
        p = p * r + 1.0 / 6.0
        p = p * r + 0.5
        p = p * r + 1.0
        p = p * r + 1.0
        bits[i] = (np.int64(k) + 1023) << 52
        values[i] = p if values[i] > floor else 0.0
    for i in range(n):
        values[i] *= scale[i]


@inline
def normalise(lp, n_rows, lse, mx, bits):
    """Turn weighted log-probabilities into responsibilities in place (log-sum-exp).

    On return ``lp[k, i]`` holds the responsibility of component ``k`` for row ``i`` and
    ``lse[i]`` the row's log-likelihood. Subtracting the row maximum keeps ``exp`` in range, so
    rows thousands of standard deviations from every component still get finite values.
    ``bits`` is an int64 scratch array of the block's length.
    """
    n_components = lp.shape[0]
    for i in range(n_rows):
        mx[i] = lp[0, i]
    for k in range(1, n_components):
        for i in range(n_rows):
            mx[i] = max(mx[i], lp[k, i])
    for i in range(n_rows):
        lse[i] = 0.0
    for k in range(n_components):
        row = lp[k]
        for i in range(n_rows):
            row[i] -= mx[i]
        exp_nonpositive(row, n_rows, bits)
        for i in range(n_rows):
            lse[i] += row[i]
    for i in range(n_rows):
        inv = 1.0 / lse[i]
        lse[i] = mx[i] + np.log(lse[i])
        mx[i] = inv
    for k in range(n_components):
        for i in range(n_rows):
            lp[k, i] *= mx[i]


@inline
def copy_given(resp_in, start, n_rows, lp):
    """``lp[k, i] = resp_in[start + i, k]``: responsibilities supplied by the caller."""
    for k in range(lp.shape[0]):
        for i in range(n_rows):
            lp[k, i] = resp_in[start + i, k]


@inline
def responsibilities(lp, n_rows, soft, w, lse, mx, bits):
    """Turn weighted log-densities into responsibilities; return the weighted log-likelihood.

    ``soft``: posterior probabilities (log-sum-exp), and the sum of ``w_i log p(x_i)``.
    Otherwise one-hot rows at the most probable component (k-means assignment), and the sum of
    ``w_i`` times each row's best weighted log-density.
    """
    if soft:
        normalise(lp, n_rows, lse, mx, bits)
    else:
        harden(lp, n_rows, lse, bits)
    total = 0.0
    for i in range(n_rows):
        total += w[i] * lse[i]
    return total


@inline
def write_row_outputs(lp, n_rows, start, lse, mx, bits, out_lse, out_resp, out_labels):
    """Per-row results of a block: labels (argmax of ``lp``), log-likelihoods, responsibilities.

    ``out_resp`` and ``out_labels`` are skipped when they have length 0. ``lp`` holds weighted
    log-densities on entry and responsibilities on return.
    """
    n_components = lp.shape[0]
    if out_labels.shape[0] > 0:
        argmax_rows(lp, n_rows, mx, bits)
        for i in range(n_rows):
            out_labels[start + i] = bits[i]
    normalise(lp, n_rows, lse, mx, bits)
    for i in range(n_rows):
        out_lse[start + i] = lse[i]
    if out_resp.shape[0] > 0:
        for i in range(n_rows):
            for k in range(n_components):
                out_resp[start + i, k] = lp[k, i]


@inline
def total_weight(w, n_rows):
    """Sum of the block's sample weights."""
    weight = 0.0
    for i in range(n_rows):
        weight += w[i]
    return weight


@inline
def argmax_rows(lp, n_rows, best, labels):
    """Each row's largest entry of ``lp`` into ``best`` and its component into ``labels``.

    Ties go to the first component, as ``np.argmax``. The loops run component by component over
    contiguous rows, so they vectorise; scanning each row's K strided entries was the slowest
    part of a hard-assignment pass (measured 0.05 s of 0.12 s on 1e6 rows, K=16).
    """
    for i in range(n_rows):
        best[i] = lp[0, i]
        labels[i] = 0
    for k in range(1, lp.shape[0]):
        for i in range(n_rows):
            if lp[k, i] > best[i]:
                best[i] = lp[k, i]
                labels[i] = k


@inline
def harden(lp, n_rows, best, labels):
    """Replace ``lp`` by one-hot rows at each row's largest entry (see :func:`argmax_rows`)."""
    argmax_rows(lp, n_rows, best, labels)
    for k in range(lp.shape[0]):
        for i in range(n_rows):
            lp[k, i] = 1.0 if labels[i] == k else 0.0


@inline
def accumulate(xt, n_rows, w, resp, shift, nk, s1, s2, diff, work, wr, wd, gram):
    """Add the block's sufficient statistics about ``shift`` into ``nk``, ``s1``, ``s2``.

    ``nk[k] += sum_i w_i r_ik``, ``s1[k] += sum_i w_i r_ik (x_i - shift_k)`` and the second moment
    ``s2[k] += sum_i w_i r_ik (x_i - shift_k)(x_i - shift_k)^T`` (at least the upper triangle for
    full factors, the diagonal ``s2[k, 0]`` for diagonal ones). Moments about a shift near the
    component mean keep their digits when the data sit far from the origin. ``wr``, ``wd``
    (block,) and ``gram`` (D, D) are scratch arrays.
    """
    n_components, n_features = shift.shape
    is_diag = s2.shape[1] == 1
    use_blas = not is_diag and n_features >= GEMM_MIN_FEATURES
    width = xt.shape[1] if use_blas else n_rows
    for k in range(n_components):
        total = 0.0
        for i in range(n_rows):
            v = w[i] * resp[k, i]
            wr[i] = v
            total += v
        if total == 0.0:
            continue  # hard assignments leave most components empty in a block
        nk[k] += total
        for i in range(n_rows, width):
            wr[i] = 0.0
        if is_diag:
            for d in range(n_features):
                m = shift[k, d]
                first = 0.0
                second = 0.0
                for i in range(n_rows):
                    v = xt[d, i] - m
                    t = wr[i] * v
                    first += t
                    second += t * v
                s1[k, d] += first
                s2[k, 0, d] += second
            continue
        if use_blas:
            # s2 += Z Z^T with Z = sqrt(w r) (x - shift): a symmetric rank-B update (syrk), half
            # the flops of a general product and far faster than a loop nest. Z is formed
            # straight from xt in one pass (no centred copy: the block is too big for L1/L2).
            for i in range(width):
                wd[i] = np.sqrt(wr[i])
            for d in range(n_features):
                m = shift[k, d]
                first = 0.0
                for i in range(width):
                    v = xt[d, i] - m
                    first += wr[i] * v
                    work[d, i] = v * wd[i]
                s1[k, d] += first
            gram_lower(work, gram)
            for d in range(n_features):
                for e in range(d, n_features):
                    s2[k, d, e] += gram[e, d]
            continue
        centre(xt, width, shift[k], diff)
        for d in range(n_features):
            first = 0.0
            for i in range(width):
                v = wr[i] * diff[d, i]
                work[d, i] = v
                first += v
            s1[k, d] += first
        for d in range(n_features):
            for e in range(d, n_features):
                second = 0.0
                for i in range(n_rows):
                    second += work[d, i] * diff[e, i]
                s2[k, d, e] += second


@inline
def load_features(X, start, n_rows, centre, pairs, phi):
    """Write the quadratic feature map of rows ``start:start+n_rows`` into the columns of ``phi``.

    With ``x' = x - centre`` a row's features are ``[x'_d, q_1, ..., 1]`` where ``q`` are the
    products ``x'_d x'_e`` (``d <= e``, row-major order) when ``pairs`` is true, or the squares
    ``x'_d^2`` otherwise. Every Gaussian log-density is a linear function of these features, so
    one matrix product scores all components at once, and the sufficient statistics of all
    components are another (see ``feature_statistics`` in estep.py).

    ``phi`` is feature-major, ``(n_feature_map, block)``: each product is then one vector
    operation over the block's rows (measured on D=8: 3x faster than filling row by row).
    """
    n_features = X.shape[1]
    for i in range(n_rows):
        for d in range(n_features):
            phi[d, i] = X[start + i, d] - centre[d]
    f = n_features
    for d in range(n_features):
        for e in range(d, n_features if pairs else d + 1):
            for i in range(n_rows):
                phi[f, i] = phi[d, i] * phi[e, i]
            f += 1
    for i in range(n_rows):
        phi[f, i] = 1.0
