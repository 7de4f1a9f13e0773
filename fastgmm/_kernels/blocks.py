"""Serial building blocks that the drivers in :mod:`fastgmm._kernels.estep` run once per block.

A block is up to ``block`` rows, copied transposed into a ``(n_features, block)`` buffer ``xt``.
Working on the transpose puts the row index innermost, so every inner loop runs over contiguous
memory with independent iterations, which LLVM turns into SIMD code.

Precision: the row buffers (``xt``, ``diff``, ``work``, the feature map ``phi``) have the input's
dtype, so float32 data go through single-precision BLAS at twice the flop rate of double. Every
sum across rows of a chunk (the statistics, log-likelihoods, squared norms) is accumulated in
float64 whatever the dtype: in float32 only the per-block products are single precision, and their
rounding errors, about ``sqrt(block)`` ulps, are independent from block to block.

Two E-step factor forms share these blocks (see ``fastgmm.stats``, ``FactorLayout`` and
``SharedLayout``):

* **per-component factor**: the upper-triangular Cholesky factor ``U_k`` of each precision
  (sklearn's ``precisions_cholesky_``), ``prec`` of shape ``(n_components, D, D)``:

  .. math::

      \\log w_k + \\log\\mathcal{N}(x \\mid \\mu_k, \\Sigma_k)
          = c_k - \\tfrac12 \\lVert U_k^T (x - \\mu_k) \\rVert^2;

* **shared transform, per-component diagonal scale**: one matrix ``T`` for all components
  (``U`` of a tied covariance, the common orientation of mclust's equal-orientation models, or
  the identity for the diagonal models) and scales ``s_k``, with ``y = T^T (x - centre)`` computed
  once per block and ``nu_k = T^T (mu_k - centre)``:

  .. math::

      \\log w_k + \\log\\mathcal{N}(x \\mid \\mu_k, \\Sigma_k)
          = c_k - \\tfrac12 \\sum_d s_{kd}^2 (y_d - \\nu_{kd})^2.

``c_k`` (``log_const``) is computed once per iteration outside the kernels.

Statistics come in three kinds, the smallest one the covariance model's M-step needs:
per-component full second moments, per-component diagonal ones, or one pooled second moment
(see :func:`accumulate_pooled`).
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


# Rows per tile of the transposing copies (load_block, load_features).
_TILE = 16


@inline
def load_block(X, start, n_rows, xt):
    """Copy rows ``start:start+n_rows`` of ``X`` transposed into ``xt`` (in ``xt``'s dtype).

    Columns past ``n_rows`` keep what an earlier block left there; drivers allocate ``xt`` with
    zeros so that those columns are always finite.

    The copy goes through a tile of ``_TILE`` rows: read row by row (contiguous), written
    feature by feature (``_TILE`` contiguous items). Writing each row straight into the
    transpose touched ``D`` lines ``8 * block`` bytes apart, which share one L1 set when the
    stride is a multiple of 4 KiB: measured on D=24, one thread, 84 ns per row with 1024-row
    blocks and 41 with 256 (24 and 30 with the tile; a feature-outer loop gave 24 and 32).
    """
    n_features = X.shape[1]
    tile = np.empty((_TILE, n_features), xt.dtype)
    full = n_rows - n_rows % _TILE
    for i0 in range(0, full, _TILE):
        for t in range(_TILE):
            for d in range(n_features):
                tile[t, d] = X[start + i0 + t, d]
        for d in range(n_features):
            for t in range(_TILE):
                xt[d, i0 + t] = tile[t, d]
    for i in range(full, n_rows):
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
def load_centred(X, start, n_rows, origin, diff):
    """``diff[d, i] = X[start + i, d] - origin[d]`` through a tile (see :func:`load_block`)."""
    n_features = X.shape[1]
    tile = np.empty((_TILE, n_features), diff.dtype)
    full = n_rows - n_rows % _TILE
    for i0 in range(0, full, _TILE):
        for t in range(_TILE):
            for d in range(n_features):
                tile[t, d] = X[start + i0 + t, d] - origin[d]
        for d in range(n_features):
            for t in range(_TILE):
                diff[d, i0 + t] = tile[t, d]
    for i in range(full, n_rows):
        for d in range(n_features):
            diff[d, i] = X[start + i, d] - origin[d]


@inline
def centre(xt, n_rows, mean, diff):
    """``diff[d, i] = xt[d, i] - mean[d]``."""
    for d in range(xt.shape[0]):
        m = mean[d]
        for i in range(n_rows):
            diff[d, i] = xt[d, i] - m


@inline
def factor_log_prob(xt, n_rows, means, prec, prec_blas, log_const, lp, diff, work, sq):
    """Per-component factor form: ``lp[k, i] = c_k - |U_k^T (x_i - mu_k)|^2 / 2``.

    From ``GEMM_MIN_FEATURES`` features the block's ``U_k^T (x - mu_k)`` is one small matrix
    product per component (BLAS ``trmm``), several times faster than any loop nest Numba emits.
    Below that size the call overhead dominates and a triangular loop, which only touches the
    ``d <= e`` half of ``U_k``, is faster. ``work`` is a scratch array shaped like ``xt``; for the
    BLAS path the whole block width is computed, and the columns past ``n_rows`` (stale but finite
    rows of an earlier block) are ignored. ``prec_blas`` is ``prec`` in the buffers' dtype, for
    the BLAS path; the loops keep ``prec`` in float64.
    """
    n_components = means.shape[0]
    n_features = xt.shape[0]
    use_blas = n_features >= GEMM_MIN_FEATURES
    width = xt.shape[1] if use_blas else n_rows
    for k in range(n_components):
        for i in range(width):
            sq[i] = 0.0
        if use_blas:
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


@inline
def transform_rows(xt, n_rows, origin, transform, triangular, diff, yt):
    """``yt = T^T (xt - origin)`` for the shared-transform form.

    ``triangular``: ``T`` is upper triangular (a tied covariance's precision factor), so half of
    it is skipped. From ``GEMM_MIN_FEATURES`` features the product is one BLAS call over the
    whole block width (``trmm`` in place for a triangular ``T``, ``gemm`` otherwise); below it a
    loop nest is faster. ``diff`` is scratch shaped like ``xt``; both have the buffers' dtype, as
    has ``transform``.
    """
    n_features = xt.shape[0]
    if n_features >= GEMM_MIN_FEATURES:
        width = xt.shape[1]
        if triangular:
            centre(xt, width, origin, yt)
            upper_transpose_times(transform, yt)
        else:
            centre(xt, width, origin, diff)
            np.dot(transform.T, diff, yt)
        return
    centre(xt, n_rows, origin, diff)
    for e in range(n_features):
        row = yt[e]
        for i in range(n_rows):
            row[i] = 0.0
        for d in range(e + 1 if triangular else n_features):
            t = transform[d, e]
            for i in range(n_rows):
                row[i] += t * diff[d, i]


@inline
def transform_centred(diff, n_rows, transform, yt):
    """``yt = T^T diff`` for an upper-triangular ``T`` and rows already centred (``diff``).

    As :func:`transform_rows` (BLAS ``trmm`` over the whole block from ``GEMM_MIN_FEATURES``
    features, a triangular loop below), without the centring pass.
    """
    n_features = diff.shape[0]
    if n_features >= GEMM_MIN_FEATURES:
        for d in range(n_features):
            source = diff[d]
            out = yt[d]
            for i in range(diff.shape[1]):
                out[i] = source[i]
        upper_transpose_times(transform, yt)
        return
    for e in range(n_features):
        row = yt[e]
        for i in range(n_rows):
            row[i] = 0.0
        for d in range(e + 1):
            t = transform[d, e]
            source = diff[d]
            for i in range(n_rows):
                row[i] += t * source[i]


@inline
def shared_log_prob(yt, n_rows, nu, scales, log_const, lp, sq):
    """Shared form: ``lp[k, i] = c_k - sum_d (s_kd (y_di - nu_kd))^2 / 2``.

    ``yt`` holds the block's transformed rows (the rows themselves for the identity transform,
    with ``nu`` the means): one multiply-add chain per component and feature, vectorised over
    the block's rows.
    """
    n_components, n_features = nu.shape
    for k in range(n_components):
        for i in range(n_rows):
            sq[i] = 0.0
        for d in range(n_features):
            s = scales[k, d]
            m = nu[k, d]
            row = yt[d]
            for i in range(n_rows):
                v = (row[i] - m) * s
                sq[i] += v * v
        c = log_const[k]
        for i in range(n_rows):
            lp[k, i] = c - 0.5 * sq[i]


@inline
def unit_scale_log_prob(yt, n_rows, nu_x, offsets, lp, lpx, sq):
    """Shared form with unit scales (tied): ``lp[k, i] = o_k + nu_k . y_i - |y_i|^2 / 2``.

    ``o_k = c_k - |nu_k|^2 / 2`` (``offsets``). The products ``nu_k . y_i`` of every component
    are one matrix product per block (``nu_x`` is ``nu`` in the buffers' dtype, ``lpx`` its
    scratch output); the loops of :func:`shared_log_prob` take ``3 K D`` operations per row
    and were a sixth of a tied iteration at D=24, K=12. The expansion loses
    ``eps * (|nu_k|^2 + |y_i|^2) / 2`` against ``|y_i - nu_k|^2 / 2``: callers use it only while
    ``max_k |nu_k|^2`` (the means' spread in their own standard deviations) stays below the
    feature map's limit (``FEATURE_MAP_MAX_SPREAD``, 1e4: 1e-12 absolute in float64); rows far
    from every component have ``|y_i|^2`` large too, but then their log-density is as large,
    and the relative error stays ``eps``.
    """
    np.dot(nu_x, yt, lpx)
    n_features = yt.shape[0]
    for i in range(n_rows):
        sq[i] = 0.0
    for d in range(n_features):
        row = yt[d]
        for i in range(n_rows):
            v = np.float64(row[i])
            sq[i] += v * v
    for k in range(nu_x.shape[0]):
        o = offsets[k]
        for i in range(n_rows):
            lp[k, i] = o + lpx[k, i] - 0.5 * sq[i]


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
def normalise(lp, n_rows, lse, mx, bits, extras, want_entropy):
    """Turn weighted log-probabilities into responsibilities in place (log-sum-exp).

    On return ``lp[k, i]`` holds the responsibility of component ``k`` for row ``i`` and
    ``lse[i]`` the row's log-likelihood. ``extras`` (shape ``(3, block)``) receives per row the
    log of the largest responsibility (``extras[0]``, ICL's term) and, with ``want_entropy``,
    ``sum_k r_ik log r_ik`` (``extras[1]``, the variational lower bound's entropy term);
    ``extras[2]`` is scratch. Subtracting the row maximum keeps ``exp`` in range, so rows
    thousands of standard deviations from every component still get finite values. ``bits`` is
    an int64 scratch array of the block's length.

    With ``t_ik = lp_ik - max_k lp_ik`` and ``S_i = sum_k exp(t_ik)``,
    ``log r_ik = t_ik - log S_i``: the largest responsibility's log is ``-log S_i`` and the
    entropy term is ``sum_k exp(t_ik) t_ik / S_i - log S_i``, both from quantities the
    normalisation forms anyway (no logarithm per entry).
    """
    n_components = lp.shape[0]
    log_max = extras[0]
    entropy = extras[1]
    saved = extras[2]
    for i in range(n_rows):
        mx[i] = lp[0, i]
    for k in range(1, n_components):
        for i in range(n_rows):
            mx[i] = max(mx[i], lp[k, i])
    for i in range(n_rows):
        lse[i] = 0.0
        entropy[i] = 0.0
    for k in range(n_components):
        row = lp[k]
        for i in range(n_rows):
            row[i] -= mx[i]
        if want_entropy:
            for i in range(n_rows):
                saved[i] = row[i]
        exp_nonpositive(row, n_rows, bits)
        for i in range(n_rows):
            lse[i] += row[i]
        if want_entropy:
            for i in range(n_rows):
                entropy[i] += row[i] * saved[i]
    for i in range(n_rows):
        inv = 1.0 / lse[i]
        log_total = np.log(lse[i])
        lse[i] = mx[i] + log_total
        mx[i] = inv
        log_max[i] = -log_total
        if want_entropy:
            entropy[i] = entropy[i] * inv - log_total
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
def responsibilities(lp, n_rows, soft, w, lse, mx, bits, extras, want_entropy, totals):
    """Turn weighted log-densities into responsibilities and add the block's totals.

    ``soft``: posterior probabilities (log-sum-exp). ``totals`` (float64, length 3) receives the
    sums of ``w_i log p(x_i)``, of ``w_i log max_k r_ik`` and (with ``want_entropy``) of
    ``w_i sum_k r_ik log r_ik``. Otherwise one-hot rows at the most probable component (k-means
    assignment), and ``totals[0]`` the sum of ``w_i`` times each row's best weighted log-density
    (the other two are 0 for one-hot rows).
    """
    if soft:
        normalise(lp, n_rows, lse, mx, bits, extras, want_entropy)
        log_max = extras[0]
        entropy = extras[1]
        first = 0.0
        second = 0.0
        for i in range(n_rows):
            first += w[i] * log_max[i]
            second += w[i] * entropy[i]
        totals[1] += first
        totals[2] += second
    else:
        harden(lp, n_rows, lse, bits)
    total = 0.0
    for i in range(n_rows):
        total += w[i] * lse[i]
    totals[0] += total


@inline
def write_row_outputs(lp, n_rows, start, lse, mx, bits, extras, out_lse, out_resp, out_labels):
    """Per-row results of a block: labels (argmax of ``lp``), log-likelihoods, responsibilities.

    ``out_resp`` and ``out_labels`` are skipped when they have length 0. ``lp`` holds weighted
    log-densities on entry and responsibilities on return.
    """
    n_components = lp.shape[0]
    if out_labels.shape[0] > 0:
        argmax_rows(lp, n_rows, mx, bits)
        for i in range(n_rows):
            out_labels[start + i] = bits[i]
    normalise(lp, n_rows, lse, mx, bits, extras, False)
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


# Kinds of second moments the statistics kernels accumulate (see the module docstring).
FULL = 0  # per component, (K, D, D), upper triangle
DIAG = 1  # per component, diagonal only, (K, 1, D)
POOLED = 2  # one matrix for all components, (1, D, D) upper triangle, plus component pairs


@inline
def weigh(w, resp_k, n_rows, width, wr):
    """``wr[i] = w_i r_ik`` (zero past ``n_rows`` up to ``width``); returns their sum.

    The products and the sum are two loops on purpose. A loop that writes an array and sums
    into a scalar reads arrays the compiler cannot prove distinct from the one it writes, so
    LLVM guards its vectorised version with a run-time overlap check on the addresses: the sum
    was then taken in SIMD lanes or one by one depending on where the buffers happened to be
    allocated, and a process that loaded the kernel from Numba's cache (another allocation
    history) summed ``nk`` differently in the last bit than the process that compiled it. A
    loop that only reads needs no such check. Every reduction in these blocks reads only.
    """
    for i in range(n_rows):
        wr[i] = w[i] * resp_k[i]
    for i in range(n_rows, width):
        wr[i] = 0.0
    total = 0.0
    for i in range(n_rows):
        total += wr[i]
    return total


@inline
def accumulate_diag(xt, n_rows, w, resp, shift, nk, s1, s2, wr):
    """Add ``nk``, ``s1`` and the diagonal second moments ``s2[k, 0, d]`` about ``shift``.

    ``nk[k] += sum_i w_i r_ik``, ``s1[k] += sum_i w_i r_ik (x_i - shift_k)`` and
    ``s2[k, 0] += sum_i w_i r_ik (x_i - shift_k)**2``. Moments about a shift near the component
    mean keep their digits when the data sit far from the origin. ``wr`` (block,) is scratch.
    """
    n_components, n_features = shift.shape
    for k in range(n_components):
        total = weigh(w, resp[k], n_rows, n_rows, wr)
        if total == 0.0:
            continue  # hard assignments leave most components empty in a block
        nk[k] += total
        for d in range(n_features):
            m = shift[k, d]
            row = xt[d]
            first = 0.0
            second = 0.0
            for i in range(n_rows):
                v = row[i] - m
                t = wr[i] * v
                first += t
                second += t * v
            s1[k, d] += first
            s2[k, 0, d] += second


@inline
def accumulate_full(xt, n_rows, w, resp, shift, nk, s1, s2, diff, work, wr, wd, gram):
    """Add ``nk``, ``s1`` and the full second moments about ``shift`` (upper triangle of ``s2``).

    ``s2[k] += sum_i w_i r_ik (x_i - shift_k)(x_i - shift_k)^T``. ``wr``, ``wd`` (block,) and
    ``gram`` (D, D) are scratch arrays, ``diff`` and ``work`` are shaped like ``xt``.
    """
    n_components, n_features = shift.shape
    use_blas = n_features >= GEMM_MIN_FEATURES
    width = xt.shape[1] if use_blas else n_rows
    for k in range(n_components):
        total = weigh(w, resp[k], n_rows, width, wr)
        if total == 0.0:
            continue
        nk[k] += total
        if use_blas:
            # s2 += Z Z^T with Z = sqrt(w r) (x - shift): a symmetric rank-B update (syrk), half
            # the flops of a general product and far faster than a loop nest. Z is formed
            # straight from xt in one pass (no centred copy: the block is too big for L1/L2).
            for i in range(width):
                wd[i] = np.sqrt(wr[i])
            for d in range(n_features):
                m = shift[k, d]
                row = xt[d]
                out = work[d]
                for i in range(width):
                    out[i] = (row[i] - m) * wd[i]
                first = 0.0
                for i in range(width):  # a separate, read-only reduction (see ``weigh``)
                    first += wr[i] * (row[i] - m)
                s1[k, d] += first
            gram_lower(work, gram)
            for d in range(n_features):
                for e in range(d, n_features):
                    s2[k, d, e] += gram[e, d]
            continue
        centre(xt, width, shift[k], diff)
        for d in range(n_features):
            for i in range(width):
                work[d, i] = wr[i] * diff[d, i]
            first = 0.0
            for i in range(width):  # a separate, read-only reduction (see ``weigh``)
                first += work[d, i]
            s1[k, d] += first
        for d in range(n_features):
            for e in range(d, n_features):
                second = 0.0
                for i in range(n_rows):
                    second += work[d, i] * diff[e, i]
                s2[k, d, e] += second


@inline
def accumulate_pooled(xt, n_rows, w, resp, shift, origin, nk, s1, s2, pairs, work, wr, gram):
    """Add ``nk``, ``s1`` and the pieces of the pooled second moment about the shifts.

    The pooled moment ``sum_k sum_i w_i r_ik (x_i - c_k)(x_i - c_k)^T`` (``c_k = shift_k``) is one
    D x D matrix, not K of them: with responsibilities that sum to 1 over ``k`` and the row's
    responsibility-weighted shift ``m_i = sum_k r_ik c_k``, it equals

    .. math::

        \\sum_i w_i e_i e_i^T + \\sum_{k<j} P_{kj} (c_k - c_j)(c_k - c_j)^T,
        \\qquad e_i = x_i - m_i, \\quad P_{kj} = \\sum_i w_i r_{ik} r_{ij},

    (expand ``x - c_k = e + (m - c_k)``: the cross terms vanish and
    ``sum_k r_k (m - c_k)(m - c_k)^T = sum_{k<j} r_k r_j (c_k - c_j)(c_k - c_j)^T``). Every term is
    positive semi-definite, so nothing cancels: ``e_i`` is the row's offset from its
    (soft-)assigned component, of the size of the within-component spread however far apart the
    components lie. This kernel adds ``sum_i w_i e_i e_i^T`` to ``s2[0]`` (upper triangle) and
    ``P_kj`` to ``pairs[k, j]`` (``k < j``); :func:`fastgmm.stats.pooled_second_moment` adds the
    pair terms. ``origin`` (D,) is any point near the data (subtracted before forming ``m_i``).
    ``work`` is shaped like ``xt``; ``wr`` (block,) and ``gram`` (D, D) are scratch.
    """
    n_components, n_features = shift.shape
    use_blas = n_features >= GEMM_MIN_FEATURES
    width = xt.shape[1] if use_blas else n_rows
    for k in range(n_components):
        total = weigh(w, resp[k], n_rows, n_rows, wr)
        if total == 0.0:
            continue
        nk[k] += total
        for d in range(n_features):
            m = shift[k, d]
            row = xt[d]
            first = 0.0
            for i in range(n_rows):
                first += wr[i] * (row[i] - m)
            s1[k, d] += first
    # e = (x - origin) - sum_k r_k (c_k - origin), scaled by sqrt(w) for the symmetric product.
    for i in range(width):
        wr[i] = np.sqrt(w[i]) if i < n_rows else 0.0
    for d in range(n_features):
        o = origin[d]
        row = xt[d]
        out = work[d]
        for i in range(n_rows):
            out[i] = row[i] - o
        for k in range(n_components):
            c = shift[k, d] - o
            r = resp[k]
            for i in range(n_rows):
                out[i] -= r[i] * c
        for i in range(width):
            out[i] *= wr[i]
    if use_blas:
        gram_lower(work, gram)
        for d in range(n_features):
            for e in range(d, n_features):
                s2[0, d, e] += gram[e, d]
    else:
        for d in range(n_features):
            for e in range(d, n_features):
                second = 0.0
                for i in range(n_rows):
                    second += work[d, i] * work[e, i]
                s2[0, d, e] += second
    for k in range(n_components):
        rk = resp[k]
        for j in range(k + 1, n_components):
            rj = resp[j]
            total = 0.0
            for i in range(n_rows):
                total += w[i] * rk[i] * rj[i]
            pairs[k, j] += total


@inline
def accumulate_pooled_gemm(
    xt,
    n_rows,
    w,
    resp,
    shift,
    origin,
    c_t,
    nk,
    s1,
    s2,
    pairs,
    diff,
    work,
    rx,
    wrx,
    part,
    pp,
    wd,
    gram,
):
    """:func:`accumulate_pooled` with its three ``K``-sized loops as matrix products.

    With ``X' = X - origin`` (``diff``), ``R`` the responsibilities (``rx``, zero past
    ``n_rows``), ``W`` the weights and ``C'`` the shifts less the origin (``c_t``, D x K):
    ``s1_k = (R W X'^T)_k - n_k (c_k - origin)``, ``E = X' - C' R`` and ``P = R W R^T``: three
    products per block instead of ``6 K D + 3 K^2 / 2`` operations per row in loops (measured
    on D=24, K=12, one thread: 160 ns per row in loops). ``s1`` subtracts ``n_k`` times the
    shift's offset from the product: both are about ``t`` standard deviations (``t`` the
    means' spread), so the mean moves by ``eps t`` standard deviations, which is the rounding
    of the mean itself; ``E`` is formed as in the loops. ``rx``, ``wrx`` (K, block), ``part``
    (K, D) and ``pp`` (K, K) have the buffers' dtype.
    """
    n_components, n_features = shift.shape
    width = xt.shape[1]
    for k in range(n_components):
        rk = resp[k]
        out = rx[k]
        wout = wrx[k]
        for i in range(n_rows):
            out[i] = rk[i]
            wout[i] = w[i] * rk[i]
        for i in range(n_rows, width):
            out[i] = 0.0
            wout[i] = 0.0
    centre(xt, width, origin, diff)
    np.dot(wrx, diff.T, part)
    for k in range(n_components):
        # Two read-only sums (see ``weigh``): nk from the float64 products; the shift's
        # correction from the products as the matrix product saw them (rounded to float32 for
        # float32 buffers), so that it cancels exactly what the product added.
        rk = resp[k]
        total = 0.0
        for i in range(n_rows):
            total += w[i] * rk[i]
        nk[k] += total
        seen = 0.0
        wout = wrx[k]
        for i in range(n_rows):
            seen += np.float64(wout[i])
        for d in range(n_features):
            s1[k, d] += np.float64(part[k, d]) - seen * (shift[k, d] - origin[d])
    np.dot(c_t, rx, work)
    for i in range(width):
        wd[i] = np.sqrt(w[i]) if i < n_rows else 0.0
    for d in range(n_features):
        row = diff[d]
        out = work[d]
        for i in range(width):
            out[i] = (row[i] - out[i]) * wd[i]
    gram_lower(work, gram)
    for d in range(n_features):
        for e in range(d, n_features):
            s2[0, d, e] += gram[e, d]
    np.dot(wrx, rx.T, pp)
    for k in range(n_components):
        for j in range(k + 1, n_components):
            pairs[k, j] += pp[k, j]


@inline
def accumulate_pooled_origin(diff, n_rows, w, unit, resp, nk, s1, s2, work, wrx, part, gram):
    """Pooled statistics about one origin: ``s1_k += R W X'^T`` and ``s2[0] += X' W X'^T``.

    ``diff`` holds the block's rows less the origin (``X'``, D x block). Two products per
    block, against three and the pairs' weights for moments about the components' shifts
    (:func:`accumulate_pooled_gemm`), at the price of the feature map's precision: the pooled
    scatter is then ``S - sum_k n_k d_k d_k^T`` with ``d_k`` the means' offsets from the
    origin, which loses ``t**2`` ulps (``t`` the means' spread in standard deviations; callers
    stay within the feature map's limit, ``t**2 <= 1e4``: 1e-12 relative). Measured on
    D=24, K=12, blobs, one thread: tied's statistics 75 -> 40 ns per row. ``unit``: all
    weights are 1, so full blocks need no weighted copy of ``X'``.
    """
    n_components = resp.shape[0]
    n_features, width = diff.shape
    for k in range(n_components):
        rk = resp[k]
        wout = wrx[k]
        for i in range(n_rows):
            wout[i] = w[i] * rk[i]
        for i in range(n_rows, width):
            wout[i] = 0.0
        total = 0.0
        for i in range(n_rows):  # a separate, read-only reduction (see ``weigh``)
            total += w[i] * rk[i]
        nk[k] += total
    np.dot(wrx, diff.T, part)
    for k in range(n_components):
        for d in range(n_features):
            s1[k, d] += part[k, d]
    if unit and n_rows == width:
        gram_lower(diff, gram)
    else:
        for d in range(n_features):
            row = diff[d]
            out = work[d]
            for i in range(n_rows):
                out[i] = row[i] * np.sqrt(w[i])
            for i in range(n_rows, width):
                out[i] = 0.0
        gram_lower(work, gram)
    for d in range(n_features):
        for e in range(d, n_features):
            s2[0, d, e] += gram[e, d]


@inline
def accumulate(
    kind, xt, n_rows, w, resp, shift, origin, nk, s1, s2, pairs, diff, work, wr, wd, gram
):
    """Add the block's statistics of ``kind`` (``FULL``, ``DIAG`` or ``POOLED``)."""
    if kind == DIAG:
        accumulate_diag(xt, n_rows, w, resp, shift, nk, s1, s2, wr)
    elif kind == POOLED:
        accumulate_pooled(xt, n_rows, w, resp, shift, origin, nk, s1, s2, pairs, work, wr, gram)
    else:
        accumulate_full(xt, n_rows, w, resp, shift, nk, s1, s2, diff, work, wr, wd, gram)


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
    # Through a tile, as load_block (measured on D=24 diag, one thread: 44 -> 25 ns per row).
    tile = np.empty((_TILE, n_features), phi.dtype)
    full = n_rows - n_rows % _TILE
    for i0 in range(0, full, _TILE):
        for t in range(_TILE):
            for d in range(n_features):
                tile[t, d] = X[start + i0 + t, d] - centre[d]
        for d in range(n_features):
            for t in range(_TILE):
                phi[d, i0 + t] = tile[t, d]
    for i in range(full, n_rows):
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
