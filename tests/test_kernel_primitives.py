"""The kernels outside the E-step matrix against their oracles (``tests/naive.py``): k-means++
potentials, closest-centre updates and Lloyd steps (``_kernels.kmeans``), the triangular inverse
(``_kernels.linalg``), the BLAS wrappers (``_kernels.blas``) and the vectorised ``exp``
(``_kernels.blocks.exp_nonpositive``). ``_kernels.hc`` has its oracle in
``tests/test_hierarchical.py``.

Tolerances are worst-case rounding bounds (``gamma`` from ``tests/error_bounds.py``), each
derived in its test. Squared distances and their weighted sums have no cancellation (every term
is >= 0), so their bounds are relative.
"""

import error_bounds as eb
import naive
import numpy as np
import pytest

from fastgmm._kernels.blas import gram_lower, upper_transpose_times
from fastgmm._kernels.blocks import BLOCK, exp_nonpositive
from fastgmm._kernels.kmeans import candidate_potentials, lloyd_step, update_closest
from fastgmm._kernels.linalg import invert_lower_transposed

N_ROWS, N_FEATURES = 700, 5  # three blocks of 256 rows, the last one partial
DTYPES = pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])


def _data(dtype, seed=0):
    """Four clusters away from the origin, with float32-representable values."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=4.0, size=(4, N_FEATURES)) + 10.0
    X = centres[rng.integers(4, size=N_ROWS)] + rng.normal(size=(N_ROWS, N_FEATURES))
    X = np.ascontiguousarray(X, dtype=np.float32).astype(dtype)
    weights = rng.uniform(0.0, 2.0, N_ROWS)
    weights[::50] = 0.0
    return X, weights, rng


def _sum_gamma(n_slots):
    """``gamma`` of the kernels' float64 sums over the rows: at most ``BLOCK`` rows per block,
    then the blocks of a slot, then the slots, each sum in any order (fastmath)."""
    n_blocks = -(-N_ROWS // BLOCK)
    return eb.gamma(BLOCK + n_blocks + n_slots, eb.U64 + naive.U_ORACLE)


# Each squared distance ``sum_d (x_d - c_d)^2`` from float64 buffers: one rounding for the
# difference, one for the square, ``D`` terms summed: relative ``gamma(D + 2)``.
DIST_GAMMA = eb.gamma(N_FEATURES + 2, eb.U64 + naive.U_ORACLE)


# -------------------------------------------------------------------------------- k-means
@DTYPES
def test_update_closest(dtype):
    X, _, rng = _data(dtype)
    closest = rng.uniform(0.0, 200.0, N_ROWS)
    closest[:100] = np.inf  # before the first centre
    centre = X[rng.integers(N_ROWS)].astype(np.float64)
    expected = naive.update_closest(X, closest, centre)
    dist = np.asarray(naive.squared_distances(X, centre[None])[:, 0], dtype=np.float64)
    out = closest.copy()
    update_closest(X, out, centre)
    # min(a, b) moves by at most the error of the computed distance.
    eb.assert_within(out, expected, DIST_GAMMA * dist, "closest")


@DTYPES
@pytest.mark.parametrize("weighted", [False, True], ids=["unit", "weighted"])
@pytest.mark.parametrize("n_slots", [1, 3])
def test_candidate_potentials(dtype, weighted, n_slots):
    X, weights, rng = _data(dtype)
    sw = weights if weighted else np.empty(0)
    w = weights if weighted else np.ones(N_ROWS)
    closest = np.asarray(
        naive.squared_distances(X, X[rng.choice(N_ROWS, 2)].astype(np.float64)).min(axis=1),
        dtype=np.float64,
    )
    candidates = np.ascontiguousarray(X[rng.choice(N_ROWS, 6)], dtype=np.float64)
    got = candidate_potentials(X, sw, closest, candidates, n_slots)
    expected = naive.candidate_potentials(X, w, closest, candidates)
    # Terms w_i min(d_i, closest_i) >= 0: each within DIST_GAMMA (and one product) of its
    # exact value, and their sum within _sum_gamma of theirs.
    bound = (DIST_GAMMA + eb.gamma(1, eb.U64) + _sum_gamma(n_slots)) * np.asarray(expected, float)
    eb.assert_within(got, expected, bound, "potentials")
    np.testing.assert_array_equal(
        got, candidate_potentials(X, sw, closest, candidates, n_slots, n_threads=1)
    )


@DTYPES
@pytest.mark.parametrize("weighted", [False, True], ids=["unit", "weighted"])
@pytest.mark.parametrize("n_slots", [1, 3])
def test_lloyd_step(dtype, weighted, n_slots):
    X, weights, rng = _data(dtype)
    sw = weights if weighted else np.empty(0)
    w = weights if weighted else np.ones(N_ROWS)
    centres = np.ascontiguousarray(X[rng.choice(N_ROWS, 4, replace=False)] + 0.3, np.float64)
    counts, sums, inertia = lloyd_step(X, sw, centres, n_slots)
    exp_counts, exp_sums, exp_inertia, labels = naive.lloyd_step(X, w, centres)

    # Labels are exact where the two nearest centres differ by more than both distances' error.
    dist = np.asarray(naive.squared_distances(X, centres), dtype=np.float64)
    two = np.sort(dist, axis=1)[:, :2]
    assert np.all(two[:, 1] - two[:, 0] > DIST_GAMMA * (two[:, 0] + two[:, 1]))
    g = _sum_gamma(n_slots) + eb.gamma(2, eb.U64)  # one product w (x - c), one difference
    eb.assert_within(counts, exp_counts, _sum_gamma(n_slots) * np.asarray(exp_counts, float), "n")
    onehot = np.eye(4)[labels] * w[:, None]
    magnitude = np.einsum("nk,nkd->kd", onehot, np.abs(X[:, None, :] - centres[None]))
    eb.assert_within(sums, exp_sums, g * magnitude, "sums")
    inertia_bound = (DIST_GAMMA + g) * float(exp_inertia)
    eb.assert_within(inertia, exp_inertia, inertia_bound, "inertia")
    for a, b in zip((counts, sums, inertia), lloyd_step(X, sw, centres, n_slots, n_threads=1)):
        np.testing.assert_array_equal(a, b)


# -------------------------------------------------------------------------- linear algebra
def _lower_factors(n_features, cond, seed):
    """Three Cholesky factors of SPD matrices with condition number ``cond``."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(3):
        q, _ = np.linalg.qr(rng.normal(size=(n_features, n_features)))
        eig = np.geomspace(1.0, cond, n_features) if n_features > 1 else np.ones(1)
        out.append(np.linalg.cholesky((q * eig) @ q.T))
    return np.ascontiguousarray(out)


@pytest.mark.parametrize("n_features", [1, 2, 5, 17])
@pytest.mark.parametrize("cond", [10.0, 1e8])
def test_invert_lower_transposed(n_features, cond):
    """Forward substitution for each column ``x`` of ``inv(L)`` (``L x = e_j``) is backward
    stable, ``(L + dL) x^ = e_j`` with ``|dL| <= gamma(D) |L|`` in any order of its sums
    (Higham 2002, ch. 8, triangular systems), so ``|x^ - x| <= gamma(D) |inv(L)||L||x^|``:
    ``2 gamma(D) |X||L||X|`` covers the second-order term while ``gamma(D) cond(L) < 1/2``."""
    lower = _lower_factors(n_features, cond, seed=n_features)
    out = np.full_like(lower, np.nan)
    invert_lower_transposed(lower, out)
    expected = naive.invert_lower_transposed(lower)  # inv(L)^T, upper triangular
    u = eb.U64 + naive.U_ORACLE
    for k in range(len(lower)):
        X = np.abs(np.asarray(expected[k], dtype=np.float64)).T  # |inv(L)|
        bound = 2 * eb.gamma(n_features, u) * (X @ np.abs(lower[k]) @ X)
        eb.assert_within(out[k], expected[k], bound.T, f"inverse {k}")
        assert np.all(np.tril(out[k], -1) == 0.0)


@DTYPES
@pytest.mark.parametrize(("n_features", "n_cols"), [(1, 5), (16, 300), (17, 33)])
def test_gram_lower(dtype, n_features, n_cols):
    """``syrk`` (``gemm`` below 32 features): each entry a dot product of ``n_cols`` terms,
    ``gamma(n_cols) |Z||Z|^T``; the upper triangle is either not written or holds the same
    products (the contract callers rely on: they read the lower triangle only)."""
    rng = np.random.default_rng(n_features)
    Z = np.ascontiguousarray(rng.normal(size=(n_features, n_cols)), dtype=dtype)
    out = np.full((n_features, n_features), np.nan, dtype=dtype)
    gram_lower(Z, out)
    u = (eb.U32 if dtype == np.float32 else eb.U64) + naive.U_ORACLE
    absZ = np.abs(Z.astype(np.float64))
    bound = eb.gamma(n_cols, u) * (absZ @ absZ.T)
    lower = np.tril_indices(n_features)
    eb.assert_within(out[lower], naive.gram_lower(Z)[lower], bound[lower], "Z Z^T")
    upper = np.triu_indices(n_features, 1)
    if not np.all(np.isnan(out[upper])):
        eb.assert_within(out[upper], naive.gram_lower(Z).T[upper], bound.T[upper], "upper")


@DTYPES
@pytest.mark.parametrize(("n_features", "n_cols"), [(1, 5), (16, 300), (17, 33)])
def test_upper_transpose_times(dtype, n_features, n_cols):
    """``trmm``: ``U^T M`` in place, ``gamma(D) |U|^T |M|``; ``U``'s strictly lower triangle is
    never read (it holds NaN here)."""
    rng = np.random.default_rng(n_features)
    U = np.triu(rng.normal(size=(n_features, n_features))) + 3 * np.eye(n_features)
    U[np.tril_indices(n_features, -1)] = np.nan
    U = np.ascontiguousarray(U, dtype=dtype)
    M = np.ascontiguousarray(rng.normal(size=(n_features, n_cols)), dtype=dtype)
    expected = naive.upper_transpose_times(np.nan_to_num(U, nan=0.0), M)
    out = M.copy()
    upper_transpose_times(U, out)
    u = (eb.U32 if dtype == np.float32 else eb.U64) + naive.U_ORACLE
    absU = np.abs(np.triu(np.nan_to_num(U.astype(np.float64), nan=0.0)))
    bound = eb.gamma(n_features, u) * (absU.T @ np.abs(M.astype(np.float64)))
    eb.assert_within(out, expected, bound, "U^T M")


# ----------------------------------------------------------------------------------- exp
# exp(v) = 2^k exp(r), v = k ln2 + r, |r| <= ln2/2. k ln2_hi is exact (ln2_hi has 32 trailing
# zero bits, |k| < 2^11) and so is v - k ln2_hi; k ln2_lo and the subtraction round once each:
# r is within 0.35 u + |k| 2e-10 u of its value, exp(r) within 0.35 u relative. The degree-13
# Taylor polynomial truncates at r^14/14! < 0.06 u relative. Horner's steps round twice each
# (< 2 u e^|r| absolute), and step j's error reaches the result times r^j:
# sum_j 0.347^j 2 u e^0.347 / e^-0.347 < 6.2 u. Scaling by 2^k is exact for normal results.
# Total < 6.7 u: the bound is 8 u; float32 buffers add one rounding of the result (u32).
EXP_RTOL = {np.float64: 8 * eb.U64, np.float32: eb.U32 + 9 * eb.U64}


@DTYPES
def test_exp_nonpositive(dtype):
    floor = eb.EXP_FLOOR[dtype]
    x = -np.concatenate(
        [
            np.linspace(0.0, 50.0, 1001),
            np.geomspace(1e-300, 1e3, 300),
            [0.0, 1e-300, -floor - 1e-9, -floor, -floor + 1e-6, 745.0, 1e6, np.inf],
        ]
    ).astype(dtype)
    values = x.copy()
    n = len(values) - 3
    exp_nonpositive(values, n, np.empty(len(values), dtype=np.int64))
    expected = naive.exp_nonpositive(x[:n], floor)
    eb.assert_within(values[:n], expected, EXP_RTOL[dtype] * np.asarray(expected, float), "exp")
    # At or below the floor (subnormal and smaller results) exactly 0, never NaN or negative.
    assert np.all(values[:n][x[:n] <= floor] == 0.0)
    np.testing.assert_array_equal(values[n:], x[n:])  # beyond n, untouched
