"""Slow, obviously correct NumPy versions of every kernel in ``fastgmm._kernels`` (the oracle).

Each function here is the textbook formula over dense arrays, row by row where that is clearer,
written without looking at how the kernel computes it (no blocks, no factor forms, no feature
map, no shifts of origin beyond what the output is defined by). They compute in extended
precision (``np.longdouble``: a 64-bit significand on x86-64, unit roundoff ``U_ORACLE`` = 5.4e-20)
so that their own rounding is negligible next to the kernels' float64 and float32 errors; on a
platform whose ``longdouble`` is float64 the test bounds add the oracle's error at that precision
(see ``tests/error_bounds.py``).

:mod:`reference` (the same directory) holds the EM-level reference (one E-step and M-step per
covariance type); this module is its kernel-level counterpart. ``fastgmm._kernels.hc`` has its
own oracle in ``tests/test_hierarchical.py``.
"""

import numpy as np

LD = np.longdouble
#: Unit roundoff of the oracle's arithmetic.
U_ORACLE = float(np.finfo(LD).eps) / 2


def ld(a):
    """``a`` in extended precision (exact: every float32 and float64 value is a longdouble)."""
    return np.asarray(a, dtype=LD)


# ------------------------------------------------------------------------------ linear algebra
def cholesky_lower(A):
    """The lower Cholesky factor ``L`` of one symmetric positive definite ``A`` (``L L^T = A``)."""
    A = ld(A)
    n = A.shape[0]
    L = np.zeros_like(A)
    for j in range(n):
        d = A[j, j] - L[j, :j] @ L[j, :j]
        if not d > 0:
            raise ValueError("not positive definite")
        L[j, j] = np.sqrt(d)
        for i in range(j + 1, n):
            L[i, j] = (A[i, j] - L[i, :j] @ L[j, :j]) / L[j, j]
    return L


def inverse_lower(L):
    """``inv(L)`` for one lower-triangular ``L``, column by column (``L x = e_j``)."""
    L = ld(L)
    n = L.shape[0]
    inv = np.zeros_like(L)
    for j in range(n):
        for i in range(j, n):
            rhs = (1 if i == j else 0) - L[i, j:i] @ inv[j:i, j]
            inv[i, j] = rhs / L[i, i]
    return inv


def invert_lower_transposed(lower):
    """Oracle of ``_kernels.linalg.invert_lower_transposed``: ``inv(lower[k])^T`` for each ``k``."""
    return np.stack([inverse_lower(low).T for low in lower])


def gram_lower(Z):
    """Oracle of ``_kernels.blas.gram_lower``: ``Z Z^T`` (the kernel fills the lower triangle)."""
    Z = ld(Z)
    return Z @ Z.T


def upper_transpose_times(U, M):
    """Oracle of ``_kernels.blas.upper_transpose_times``: ``U^T M`` with ``U``'s upper triangle."""
    return np.triu(ld(U)).T @ ld(M)


def exp_nonpositive(values, floor):
    """Oracle of ``_kernels.blocks.exp_nonpositive``: ``exp(v)``, and 0 at or below ``floor``."""
    values = ld(values)
    return np.where(values > floor, np.exp(values), 0)


# ------------------------------------------------------------------------------------- E-step
def log_densities(X, weights, means, precisions):
    """``log w_k + log N(x_i | mu_k, inv(P_k))`` for every row and component, shape (N, K).

    ``precisions`` are the dense precision matrices ``P_k`` (K, D, D); the log-determinant comes
    from their Cholesky factors.
    """
    X = ld(X)
    n_features = X.shape[1]
    out = np.empty((X.shape[0], len(weights)), dtype=LD)
    for k in range(len(weights)):
        P = ld(precisions[k])
        log_det = 2 * np.sum(np.log(np.diagonal(cholesky_lower(P))))
        diff = X - ld(means[k])
        maha = np.einsum("nd,de,ne->n", diff, P, diff)
        out[:, k] = (
            np.log(LD(weights[k])) - LD(n_features) / 2 * np.log(2 * LD(np.pi)) + log_det / 2
        ) - maha / 2
    return out


def log_sum_exp(lp):
    """``log sum_k exp(lp[i, k])`` per row."""
    top = lp.max(axis=1)
    return top + np.log(np.exp(lp - top[:, None]).sum(axis=1))


def responsibilities(lp, mode, given=None):
    """The responsibilities a statistics kernel uses in each mode.

    ``soft`` and ``score``: posterior probabilities; ``hard``: one-hot at the largest entry
    (the first on ties, as ``np.argmax``); ``given``: ``given`` itself.
    """
    if mode in ("soft", "score"):
        return np.exp(lp - log_sum_exp(lp)[:, None])
    if mode == "hard":
        return np.eye(lp.shape[1], dtype=LD)[np.argmax(lp, axis=1)]
    return ld(given)


def statistics(X, sample_weight, resp, shift):
    """``nk``, ``s1`` and the full per-component second moments about ``shift``.

    ``nk[k] = sum_i w_i r_ik``, ``s1[k] = sum_i w_i r_ik (x_i - shift_k)`` and
    ``s2[k] = sum_i w_i r_ik (x_i - shift_k)(x_i - shift_k)^T`` (K, D, D), from which the
    diagonal (``DIAG``) and pooled (``POOLED``: the sum over ``k``) kinds follow.
    """
    X = ld(X)
    wr = ld(resp) * ld(sample_weight)[:, None]
    y = X[:, None, :] - ld(shift)[None, :, :]  # (N, K, D)
    nk = wr.sum(axis=0)
    s1 = np.einsum("nk,nkd->kd", wr, y)
    s2 = np.stack([(wr[:, k, None] * y[:, k]).T @ y[:, k] for k in range(wr.shape[1])])
    return nk, s1, s2


def totals(lp, resp, sample_weight, mode, want_entropy):
    """The three totals of a statistics kernel: ``(log_lik, log_max_resp, entropy)``.

    ``soft``/``score``: ``sum_i w_i log p(x_i)``, ``sum_i w_i log max_k r_ik`` and (if wanted)
    ``sum_i w_i sum_k r_ik log r_ik``; ``hard``: ``sum_i w_i max_k lp_ik`` and two zeros;
    ``given``: three zeros (no densities are evaluated).
    """
    w = ld(sample_weight)
    if mode == "given":
        return LD(0), LD(0), LD(0)
    if mode == "hard":
        return w @ lp.max(axis=1), LD(0), LD(0)
    log_lik = w @ log_sum_exp(lp)
    log_max = w @ np.log(resp.max(axis=1))
    if not want_entropy:
        return log_lik, log_max, LD(0)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(resp > 0, resp * np.log(resp), 0)
    return log_lik, log_max, w @ terms.sum(axis=1)


def scores(X, weights, means, precisions):
    """Oracle of ``estep.score_chunk``: per-row log-likelihoods, responsibilities, labels."""
    lp = log_densities(X, weights, means, precisions)
    lse = log_sum_exp(lp)
    return lse, np.exp(lp - lse[:, None]), np.argmax(lp, axis=1)


# ------------------------------------------------------------------------------------ k-means
def squared_distances(X, centres):
    """``|x_i - c_t|^2``, shape (N, T)."""
    diff = ld(X)[:, None, :] - ld(centres)[None, :, :]
    return (diff * diff).sum(axis=2)


def candidate_potentials(X, sample_weight, closest_sq, candidates):
    """Oracle of ``_kernels.kmeans.candidate_potentials``:
    ``sum_i w_i min(closest_sq_i, |x_i - c_t|^2)`` per candidate ``t``."""
    dist = squared_distances(X, candidates)
    return ld(sample_weight) @ np.minimum(dist, ld(closest_sq)[:, None])


def update_closest(X, closest_sq, centre):
    """Oracle of ``_kernels.kmeans.update_closest``: ``min(closest_sq, |x - centre|^2)``."""
    return np.minimum(ld(closest_sq), squared_distances(X, centre[None])[:, 0])


def lloyd_step(X, sample_weight, centres):
    """Oracle of ``_kernels.kmeans.lloyd_step``: the nearest centre of each row (the first on
    ties), the weighted counts, the weighted sums of ``x - c_k`` and the inertia."""
    dist = squared_distances(X, centres)
    labels = np.argmin(dist, axis=1)
    w = ld(sample_weight)
    onehot = np.eye(len(centres), dtype=LD)[labels] * w[:, None]
    counts = onehot.sum(axis=0)
    sums = np.einsum("nk,nkd->kd", onehot, ld(X)[:, None, :] - ld(centres)[None, :, :])
    inertia = w @ dist[np.arange(len(X)), labels]
    return counts, sums, inertia, labels
