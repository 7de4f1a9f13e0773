"""Micro-benchmarks of the kernels (pytest-benchmark), each checked against NumPy.

CI runs them with ``--benchmark-disable`` (the default in pyproject.toml): each kernel then runs
once and the assertions make it a correctness test. To time them::

    pytest tests/test_benchmarks.py --benchmark-enable

Data: 20,000 x 8 rows from a known mixture, four components; expected values come from the
dense NumPy reference in ``tests/reference.py``, written independently of the kernels.
"""

import numpy as np
import pytest
import reference
from conftest import COVARIANCE_TYPES, make_mixture_data
from numpy.testing import assert_allclose
from scipy.special import logsumexp

from fastgmm._kernels.kmeans import lloyd_step
from fastgmm.covariance import get_model
from fastgmm.estep import chunk_statistics, n_slots_for, score_chunk
from fastgmm.stats import DIAG, FULL, MixtureParams

N_SAMPLES, N_FEATURES, N_COMPONENTS = 20_000, 8, 4


@pytest.fixture(scope="module")
def data():
    X, _ = make_mixture_data(N_SAMPLES, N_FEATURES, N_COMPONENTS, seed=3)
    return np.ascontiguousarray(X)


def _params(X, covariance_type, seed=0):
    """Plausible mixture parameters of ``covariance_type`` (not fitted: any valid ones do)."""
    rng = np.random.default_rng(seed)
    k, d = N_COMPONENTS, X.shape[1]
    weights = rng.dirichlet(np.full(k, 4.0))
    means = X[rng.choice(len(X), k, replace=False)] + 0.1
    if covariance_type == "full":
        factors = rng.normal(size=(k, d, d)) / np.sqrt(d)
        covariances = factors @ np.swapaxes(factors, 1, 2) + np.eye(d)
    elif covariance_type == "tied":
        factor = rng.normal(size=(d, d)) / np.sqrt(d)
        covariances = factor @ factor.T + np.eye(d)
    elif covariance_type == "diag":
        covariances = rng.uniform(0.5, 3.0, size=(k, d))
    else:
        covariances = rng.uniform(0.5, 3.0, size=k)
    model = get_model(covariance_type)
    scatter = (
        covariances if covariance_type != "spherical" else np.repeat(covariances[:, None], d, 1)
    )
    _, covariances, prec_chol, _ = model.estimate(np.ones(k), means, scatter)
    return MixtureParams(weights, means, covariances, prec_chol, covariance_type)


def _reference_log_prob(X, params):
    mats = reference.covariance_matrices(
        params.covariances, params.covariance_type, N_COMPONENTS, X.shape[1]
    )
    return reference.weighted_log_prob(X.astype(np.float64), params.weights, params.means, mats)


@pytest.mark.parametrize(
    ("covariance_type", "dtype", "weighted"),
    [(c, np.float64, False) for c in COVARIANCE_TYPES]
    + [("full", np.float32, False), ("diag", np.float32, False), ("full", np.float64, True)],
)
def test_em_statistics(benchmark, data, covariance_type, dtype, weighted):
    X = np.ascontiguousarray(data, dtype=dtype)
    params = _params(data, covariance_type)
    model = get_model(covariance_type)
    layout = model.layout(params)
    shift = np.ascontiguousarray(params.means, dtype=np.float64)
    sw = np.random.default_rng(1).uniform(0.0, 2.0, N_SAMPLES) if weighted else np.empty(0)

    stats = benchmark(chunk_statistics, X, sw, layout, shift, model.statistics)

    # The reference sees the same values in float64. The kernels multiply float32 rows in single
    # precision (sums stay float64), which costs about 1e-7 relative: tolerances scale with eps.
    X64 = X.astype(np.float64)
    loose = 1.0 if dtype == np.float64 else 1e4
    lp = _reference_log_prob(X64, params)
    lse = logsumexp(lp, axis=1)
    w = sw if weighted else np.ones(N_SAMPLES)
    r = np.exp(lp - lse[:, None]) * w[:, None]
    nk = r.sum(axis=0)
    # Moments are about the origin the statistics report (a kernel may pick its own).
    centred = X64[:, None, :] - stats.shift[None, :, :]  # (N, K, D)
    s1 = np.einsum("nk,nkd->kd", r, centred)
    assert_allclose(stats.nk, nk, rtol=1e-10 * loose)
    assert_allclose(stats.s1, s1, rtol=1e-9 * loose, atol=1e-9 * loose * np.abs(s1).max())
    if stats.kind != DIAG:
        s2 = np.einsum("nk,nkd,nke->kde", r, centred, centred)
        if stats.kind != FULL:
            s2 = s2.sum(axis=0, keepdims=True)
        upper = np.triu(np.ones((N_FEATURES, N_FEATURES), dtype=bool))
        assert_allclose(
            stats.s2[:, upper], s2[:, upper], rtol=1e-9 * loose, atol=1e-9 * loose * s2.max()
        )
    else:
        s2 = np.einsum("nk,nkd->kd", r, centred**2)
        assert_allclose(stats.s2[:, 0, :], s2, rtol=1e-9 * loose)
    assert_allclose(stats.log_lik, w @ lse, rtol=1e-10 * loose)
    assert_allclose(stats.weight_sum, w.sum(), rtol=1e-12)
    assert stats.n_rows == N_SAMPLES


@pytest.mark.parametrize("covariance_type", ["full", "diag"])
def test_score_chunk(benchmark, data, covariance_type):
    params = _params(data, covariance_type, seed=5)
    layout = get_model(covariance_type).layout(params)

    lse, resp, labels = benchmark(score_chunk, data, layout, want_resp=True, want_labels=True)

    lp = _reference_log_prob(data, params)
    expected_lse = logsumexp(lp, axis=1)
    assert_allclose(lse, expected_lse, rtol=1e-10, atol=1e-10)
    assert_allclose(resp, np.exp(lp - expected_lse[:, None]), rtol=1e-8, atol=1e-12)
    # Rows whose two best components are within rounding of each other may go either way.
    top2 = np.sort(lp, axis=1)[:, -2:]
    clear = top2[:, 1] - top2[:, 0] > 1e-9
    assert clear.mean() > 0.99
    np.testing.assert_array_equal(labels[clear], np.argmax(lp, axis=1)[clear])


@pytest.mark.parametrize("weighted", [False, True])
def test_lloyd_step(benchmark, data, weighted):
    rng = np.random.default_rng(7)
    centres = np.ascontiguousarray(data[rng.choice(N_SAMPLES, N_COMPONENTS, replace=False)] + 0.3)
    sw = rng.uniform(0.0, 2.0, N_SAMPLES) if weighted else np.empty(0)
    n_slots = n_slots_for(N_SAMPLES, N_COMPONENTS, 1 + N_FEATURES)

    counts, sums, inertia = benchmark(lloyd_step, data, sw, centres, n_slots)

    w = sw if weighted else np.ones(N_SAMPLES)
    sq_dist = ((data[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2)
    labels = np.argmin(sq_dist, axis=1)
    expected_counts = np.bincount(labels, weights=w, minlength=N_COMPONENTS)
    expected_sums = np.stack(
        [
            (w[labels == k, None] * (data[labels == k] - centres[k])).sum(axis=0)
            for k in range(N_COMPONENTS)
        ]
    )
    assert_allclose(counts, expected_counts, rtol=1e-12)
    assert_allclose(sums, expected_sums, rtol=1e-9, atol=1e-9 * np.abs(expected_sums).max())
    assert_allclose(inertia, w @ sq_dist[np.arange(N_SAMPLES), labels], rtol=1e-10)
