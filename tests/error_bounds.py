"""Rounding-error bounds for the kernels' outputs: the tolerances of ``tests/test_kernels.py``.

Every tolerance is a worst-case bound on ``|kernel - exact|`` derived from the operations the
kernel performs, never a number widened until the tests pass. The tools are the standard ones
(N. J. Higham, *Accuracy and Stability of Numerical Algorithms*, 2nd ed., SIAM 2002):

* ``gamma(n, u) = n u / (1 - n u)``; a sum of ``n`` terms in any order, or a dot product of
  length ``n``, has ``|fl(sum) - sum| <= gamma(n, u) * sum |terms|`` (Lemma 3.1, eq. (3.5)): the
  kernels re-associate their sums (fastmath) and split them into blocks and slots, and the
  bound holds for every order, so it holds for every thread count, SIMD width and block size;
* each elementary operation (a cast, a subtraction, a product) costs one more ``u`` in the
  count ``n``, so the constants below are counts of rounded operations, stated where used.

``u`` is the unit roundoff of the arithmetic a step runs in: float32 (``U32`` = 6.0e-8) for
the single-precision products of float32 rows, float64 (``U64`` = 1.1e-16) otherwise. Sums
across blocks are float64 in every case. The oracle's own error (extended precision,
``naive.U_ORACLE``) is added to every ``u``.

How the bounds scale: in the size ``N`` through the summation length (worst case ``gamma``
linear in the rows of a block plus the number of blocks, not the ``sqrt`` of probabilistic
analysis: the tests must never fail by bad luck); in the conditioning through the magnitudes
``|F|^T |x - o|`` of the products (componentwise, tighter than the normwise
``kappa(F) * |F^T (x - mu)|`` they are bounded by); in ``u`` linearly.

The log-density error ``Delta_ik`` of each row and component is the root; responsibilities,
statistics and totals inherit it through the softmax (a perturbation ``delta_k`` of every
``lp_k`` changes ``r_k`` by a factor in ``[exp(-2 max|delta|), exp(2 max|delta|)]``).
"""

from dataclasses import dataclass

import numpy as np
from naive import U_ORACLE

U32 = float(np.finfo(np.float32).eps) / 2
U64 = float(np.finfo(np.float64).eps) / 2
# exp_nonpositive flushes arguments at or below these to 0 (in the buffers' dtype).
EXP_FLOOR = {np.float32: -87.0, np.float64: -708.0}


def gamma(n, u):
    """Higham's ``gamma_n = n u / (1 - n u)`` (Lemma 3.1)."""
    n = np.asarray(n, dtype=np.float64)
    return n * u / (1.0 - n * u)


@dataclass(frozen=True)
class Arithmetic:
    """How a kernel call computes: the unit roundoff of its products and its block length.

    ``u``: unit roundoff of the per-row products (float32 rows in single precision: ``U32``;
    everything else: ``U64``), with the oracle's added. ``u64``: that of the float64 sums
    across blocks and of the layout's float64 preprocessing. ``block``: the most rows one
    block's per-row sums run over (in ``u``). ``n_blocks``: blocks plus slots, the length of
    the float64 sums that follow. ``floor``: where ``exp`` flushes to zero in the
    responsibilities' buffers.
    """

    u: float
    u64: float
    block: int
    n_blocks: int
    floor: float

    @classmethod
    def of(cls, n_rows, block, *, single, map_buffers_single=False):
        """The arithmetic of a kernel call over ``n_rows`` rows in blocks of ``block`` rows."""
        u = (U32 if single else U64) + U_ORACLE
        n_blocks = -(-max(n_rows, 1) // 256)  # the loop kernels' block is the smallest: 256
        floor = EXP_FLOOR[np.float32 if map_buffers_single else np.float64]
        return cls(u, U64 + U_ORACLE, min(block, max(n_rows, 1)), 2 * n_blocks + 2, floor)

    def sum_gamma(self, extra=0):
        """``gamma`` of a sum over the rows: per block in ``u``, across blocks in float64.

        ``extra`` counts the rounded operations in each term before it is added.
        """
        return gamma(self.block + extra, self.u) + gamma(self.n_blocks, self.u64)


# ---------------------------------------------------------------------------- log-densities
def constant_magnitude(weights, factors, transform=None, scales=None):
    """``C_k``: the magnitudes the layout's float64 constant ``log_const_k`` is formed from.

    ``log w_k - D/2 log(2 pi) + log |det F_k|``. For triangular (and diagonal) factors
    ``log |det F_k|`` is a sum of ``D`` logarithms of the diagonal. For a dense shared transform
    ``T`` (``F_k = T diag(s_k)``) it is ``sum_d log s_kd + log |det T|``, the latter from an LU
    factorisation, whose backward error ``|dT| <= gamma(3D) |L||U|`` (growth factor taken as
    <= 2, true for the near-orthogonal transforms tested) moves it by
    ``|tr(T^-1 dT)| <= 2 gamma(3D) tr(|T^-1||T|)`` (first order), at most
    ``6 gamma(D + 3) tr(|T^-1||T|)``.
    """
    n_features = factors.shape[1]
    out = np.abs(np.log(weights)) + 0.5 * n_features * np.log(2 * np.pi)
    if transform is None:
        diag = np.abs(np.diagonal(factors, axis1=1, axis2=2))
        return out + np.abs(np.log(diag)).sum(axis=1)
    log_det_t = abs(np.linalg.slogdet(transform)[1])
    skeel = float(np.trace(np.abs(np.linalg.inv(transform)) @ np.abs(transform)))
    return out + np.abs(np.log(scales)).sum(axis=1) + log_det_t + 6.0 * skeel


def exact_path_lp_error(X, means, factors, origins, lp, const_mag, arith):
    """``Delta_ik`` for the per-component factor and shared-transform kernels.

    The kernels compute ``z = F_k^T (x - mu_k)`` as ``F_k^T (x - o_k) - F_k^T (mu_k - o_k)``
    (``o_k = mu_k`` for the factor kernel and the identity transform, the layout's origin for a
    shared transform) and ``lp = c_k - |z|^2 / 2``. With
    ``a_d = (|F_k|^T (|x - o_k| + |mu_k - o_k|))_d``, each ``z_d`` is within
    ``gamma(D + 4) a_d`` (a dot product of ``D`` terms, plus the row's centring, the factor's
    cast to the rows' dtype, the subtraction of the transformed mean and the scale), so

        |delta q| <= 2 |z| . |delta z| + |delta z|^2 + gamma(D + 1) |z|^2
                  <= 2 gamma(2D + 5) sum_d a_d (|z_d| + a_d)        (a_d >= |z_d|),

    and ``Delta = gamma(2D + 5) M + u |lp| + gamma(D + 3, u64) C_k`` with
    ``M = sum_d a_d (|z_d| + a_d)`` (the last term: the layout's constant, formed in float64).
    """
    X = np.asarray(X, dtype=np.float64)
    n_features = X.shape[1]
    absF = np.abs(factors)
    x_o = np.abs(X[:, None, :] - origins[None])  # (N, K, D)
    mu_o = np.abs(means - origins)  # (K, D)
    a = (
        np.einsum("ked,nke->nkd", absF, x_o, optimize=True)
        + np.einsum("ked,ke->kd", absF, mu_o)[None]
    )
    z = np.einsum("ked,nke->nkd", factors, X[:, None, :] - means[None], optimize=True)
    M = np.einsum("nkd,nkd->nk", a, np.abs(z) + a)
    return (
        gamma(2 * n_features + 5, arith.u) * M
        + arith.u * np.abs(np.asarray(lp, dtype=np.float64))
        + gamma(n_features + 3, arith.u64) * const_mag[None]
    )


def map_path_lp_error(X, means, factors, pairs, lp, const_mag, arith):
    """``Delta_ik`` for the feature-map kernel.

    ``lp = coef_k . phi(x - c)`` with ``c`` the centre of the means, ``phi`` the ``F`` features
    ``[x', x'_d x'_e (d <= e) or x'_d^2, 1]`` and ``coef`` built in float64 from
    ``P_k = F_k F_k^T`` (``linear = P o``, ``quadratic = -P/2``, ``constant = c_k - o.P o / 2``,
    ``o = mu_k - c``). Each term of the dot product carries the features' roundings (the
    centring and one product: 3 ``u`` with the cast), the coefficient's cast and its float64
    formation (``gamma(3D + 2)`` of ``|F||F|^T`` products); the dot has ``F`` terms. With
    ``B = |x'|.|P||x'|/2 + |x'|.|P||o| + |o|.|P||o|/2 + C_k`` (``|P|`` standing for
    ``|F||F|^T``), ``Delta = gamma(F + 3D + 8) B``.
    """
    X = np.asarray(X, dtype=np.float64)
    n_features = X.shape[1]
    n_map = n_features * (n_features + 3) // 2 + 1 if pairs else 2 * n_features + 1
    centre = means.mean(axis=0)
    xc = np.abs(X - centre)  # (N, D)
    oc = np.abs(means - centre)  # (K, D)
    absP = np.einsum("kdf,kef->kde", np.abs(factors), np.abs(factors))
    B = (
        0.5 * np.einsum("nd,kde,ne->nk", xc, absP, xc, optimize=True)
        + np.einsum("nd,kde,ke->nk", xc, absP, oc, optimize=True)
        + 0.5 * np.einsum("kd,kde,ke->k", oc, absP, oc)[None]
        + const_mag[None]
    )
    return (
        gamma(n_map + 3 * n_features + 8, arith.u) * B
        + arith.u * np.abs(np.asarray(lp, dtype=np.float64))
        + gamma(n_features + 3, arith.u64) * const_mag[None]
    )


# ------------------------------------------------------------------------- responsibilities
def normalisation_terms(lp, arith):
    """Rounding of the log-sum-exp normalisation for each entry, relative to ``r_ik``.

    ``t = lp - max`` (one rounding: ``u |t|``), ``exp(t)`` (range reduction and polynomial: 6
    ``u``, see ``test_exp_nonpositive``), the row sum of ``K`` values (``gamma(K)``), one
    reciprocal and one product: ``gamma(K + 8) + u |t|``.
    """
    lp = np.asarray(lp, dtype=np.float64)
    t = np.abs(lp - lp.max(axis=1, keepdims=True))
    return gamma(lp.shape[1] + 8, arith.u) + arith.u * t


def resp_error(lp, resp, delta, mode, arith):
    """Absolute error of the kernel's responsibilities ``|r_hat - r|``, shape (N, K).

    ``soft``/``score``: ``r expm1(Delta_ik + max_j Delta_ij + normalisation)`` (the softmax
    bound of the module docstring), plus ``exp(floor)`` for entries flushed to zero;
    ``hard``: 0 (the one-hot rows are exact once the margins are clear, which
    :func:`hard_margins_clear` checks); ``given``: one cast to the buffers' dtype.
    """
    resp = np.asarray(resp, dtype=np.float64)
    if mode == "hard":
        return np.zeros_like(resp)
    if mode == "given":
        return arith.u * resp
    rho = np.expm1(delta + delta.max(axis=1, keepdims=True) + normalisation_terms(lp, arith))
    return resp * rho + np.exp(arith.floor)


def hard_margins_clear(lp, delta):
    """Whether every row's best component beats the second by more than both errors."""
    lp = np.asarray(lp, dtype=np.float64)
    order = np.argsort(lp, axis=1)
    rows = np.arange(len(lp))
    best, second = order[:, -1], order[:, -2]
    gap = lp[rows, best] - lp[rows, second]
    return bool(np.all(gap > delta[rows, best] + delta[rows, second]))


# ------------------------------------------------------------------------------ statistics
def statistics_tolerance(X, w, resp, eps, shift, kind, arith, *, origin=None):
    """Bounds on ``|nk_hat - nk|``, ``|s1_hat - s1|`` and ``|s2_hat - s2|`` (kind's shape).

    Each statistic is ``sum_i w_i r_ik g_i`` with ``g`` = 1, ``y = x - shift_k`` or ``y_d y_e``;
    with ``eps`` the responsibilities' absolute error, the bound is
    ``sum_i w_i eps_ik |g_i| + sum_gamma(6) sum_i w_i r_ik |g_i|`` (6: the products
    ``w r``, the centring, ``sqrt(w r)`` and the two factors of ``y_d y_e``, each one rounding).

    POOLED (the shared kernel: ``sum_i w_i e_i e_i^T + sum_{k<j} P_kj d_kj d_kj^T`` with
    ``e_i = (x_i - o) - sum_k r_ik (c_k - o)``, ``d_kj = c_k - c_j``, ``o`` the layout's
    origin): ``e`` moves by ``de_i = sum_k eps_ik |c_k - o|`` and by ``gamma(K + 3) a_i``
    rounding (``a_i = |x_i - o| + sum_k r_ik |c_k - o|``, which bounds ``|e_i|``), ``P_kj`` by
    ``eps_k r_j + r_k eps_j + eps_k eps_j``. Then ``|e^ e^^T - e e^T| <= de |e|^T + |e| de^T +
    de de^T`` from the responsibilities, plus the rounding of ``e`` (twice in the product) and of
    the sum over the rows, at most ``3 (gamma(K + 3) + sum_gamma) (a + de)(a + de)^T``; the pair
    terms add ``|dP_kj| |d_kj||d_kj|^T`` and their float64 sum (``gamma(K^2)``).
    """
    X = np.asarray(X, dtype=np.float64)
    y = np.abs(X[:, None, :] - shift[None])  # (N, K, D)
    wr = w[:, None] * resp
    we = w[:, None] * eps
    g = arith.sum_gamma(6)
    nk = we.sum(axis=0) + g * wr.sum(axis=0)
    s1 = np.einsum("nk,nkd->kd", we, y) + g * np.einsum("nk,nkd->kd", wr, y)
    if kind == "diag":
        s2 = np.einsum("nk,nkd->kd", we + g * wr, y * y)[:, None, :]
    elif kind == "full":
        s2 = np.einsum("nk,nkd,nke->kde", we + g * wr, y, y, optimize=True)
    else:
        K = shift.shape[0]
        co = np.abs(shift - origin)  # (K, D)
        a = np.abs(X - origin) + resp @ co  # (N, D)
        de = eps @ co  # (N, D)
        e = np.abs(X - resp @ shift)  # exact e_i = x_i - sum_k r_ik c_k
        g_e = g + gamma(K + 3, arith.u)
        s2 = np.einsum("n,nd,ne->de", w, de, e)
        s2 = s2 + s2.T + np.einsum("n,nd,ne->de", w, de, de)
        s2 += g_e * 3 * np.einsum("n,nd,ne->de", w, a + de, a + de)
        k, j = np.triu_indices(K, 1)
        d = np.abs(shift[k] - shift[j])  # (pairs, D)
        dpair = eps[:, k] * resp[:, j] + resp[:, k] * eps[:, j] + eps[:, k] * eps[:, j]
        pair_mag = np.einsum("n,np->p", w, dpair) + (g + gamma(K * K, arith.u64)) * np.einsum(
            "n,np->p", w, resp[:, k] * resp[:, j]
        )
        s2 += np.einsum("p,pd,pe->de", pair_mag, d, d)
        s2 = s2[None]
    return nk, s1, s2


def totals_tolerance(lp, resp, w, delta, mode, want_entropy, arith):
    """Bounds on the errors of ``log_lik``, ``log_max_resp`` and ``entropy``.

    ``log_lik``: the row's log-sum-exp moves by at most ``max_k Delta_ik`` plus the
    normalisation's rounding (``hard``: the best entry's ``Delta``); ``log_max_resp`` (minus
    the log of the row's normaliser ``S``) by ``sum_k r_k (Delta_k + max Delta) +
    normalisation``; the entropy term ``sum_k r_k log r_k`` by
    ``sum_k r_k rho_k (|log r_k| + 1 + rho_k)`` (a relative change ``rho`` of ``r``) plus the
    rounding of its ``K`` terms, and ``K exp(floor) |floor|`` for flushed entries. Each is
    then summed over the rows in float64 (``sum_gamma``).
    """
    lp = np.asarray(lp, dtype=np.float64)
    resp = np.asarray(resp, dtype=np.float64)
    K = lp.shape[1]
    if mode == "given":
        return 0.0, 0.0, 0.0
    g_sum = gamma(arith.block + arith.n_blocks + 4, arith.u64)
    best = lp.max(axis=1)
    if mode == "hard":
        rows = np.arange(len(lp))
        err = delta[rows, np.argmax(lp, axis=1)]
        return float(w @ err + g_sum * (w @ np.abs(best))), 0.0, 0.0
    norm = normalisation_terms(lp, arith)
    dmax = delta.max(axis=1)
    with np.errstate(divide="ignore"):
        lse = best + np.log(np.exp(lp - best[:, None]).sum(axis=1))
    lse_err = dmax + gamma(K + 8, arith.u) * (1.0 + np.abs(lse))
    log_lik = w @ lse_err + g_sum * (w @ np.abs(lse))
    t = np.abs(lp - best[:, None])
    log_s = np.log(np.exp(-t).sum(axis=1))
    log_max_err = (resp * (delta + dmax[:, None] + norm)).sum(axis=1) + gamma(K + 8, arith.u)
    log_max = w @ log_max_err + g_sum * (w @ log_s)
    if not want_entropy:
        return float(log_lik), float(log_max), 0.0
    rho = np.expm1(delta + dmax[:, None] + norm)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_r = np.where(resp > 0, np.log(resp), 0.0)
    ent_err = (resp * rho * (np.abs(log_r) + 1.0 + rho)).sum(axis=1)
    ent_err += gamma(K + 8, arith.u) * ((resp * t).sum(axis=1) + log_s)
    ent_err += K * np.exp(arith.floor) * (abs(arith.floor) + 1.0)
    entropy = w @ ent_err + g_sum * (w @ np.abs((resp * log_r).sum(axis=1)))
    return float(log_lik), float(log_max), float(entropy)


# ------------------------------------------------------------------------------- checking
def assert_within(actual, expected, tol, name):
    """``|actual - expected| <= tol`` everywhere (NaN fails), with the worst ratio reported."""
    actual = np.asarray(actual, dtype=np.float64)
    err = np.abs(actual - np.asarray(expected, dtype=np.float64))
    tol = np.broadcast_to(np.asarray(tol, dtype=np.float64), err.shape)
    ok = err <= tol
    if not np.all(ok):
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(tol > 0, err / tol, np.inf)
        worst = np.unravel_index(np.nanargmax(np.where(ok, 0, ratio)), err.shape)
        raise AssertionError(
            f"{name}: {np.size(ok) - np.count_nonzero(ok)} of {np.size(ok)} entries beyond "
            f"the bound; worst at {worst}: |error| {err[worst]:.3e} > bound {tol[worst]:.3e} "
            f"(actual {actual[worst]!r})"
        )
