"""Micro-benchmarks of the kernels (pytest-benchmark): pure timings, no correctness checks.

The kernels' correctness is tested against the plain-NumPy oracle in ``tests/test_kernels.py``
and ``tests/test_kernel_primitives.py``. CI runs these with ``--benchmark-disable`` (the default
in pyproject.toml): each kernel then runs once, a smoke test at a size larger than the oracle
tests use. To time them::

    pytest tests/test_benchmarks.py --benchmark-enable

Data: 20,000 x 8 rows from a known mixture, four components.
"""

import numpy as np
import pytest
from conftest import COVARIANCE_TYPES, make_mixture_data

from fastgmm._kernels.kmeans import lloyd_step
from fastgmm.covariance import get_model
from fastgmm.estep import chunk_statistics, n_slots_for, score_chunk
from fastgmm.stats import DIAG, FULL, POOLED, MixtureParams

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
    factors = rng.normal(size=(k, d, d)) / np.sqrt(d)
    full = factors @ np.swapaxes(factors, 1, 2) + np.eye(d)
    model = get_model(covariance_type)
    scatter = {FULL: full, DIAG: np.diagonal(full, axis1=1, axis2=2).copy(), POOLED: full.mean(0)}
    _, covariances, prec_chol, _ = model.estimate(np.ones(k), means, scatter[model.statistics])
    return MixtureParams(weights, means, covariances, prec_chol, covariance_type)


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
    assert stats.n_rows == N_SAMPLES


@pytest.mark.parametrize("covariance_type", ["full", "diag"])
def test_score_chunk(benchmark, data, covariance_type):
    layout = get_model(covariance_type).layout(_params(data, covariance_type, seed=5))
    lse, _, _ = benchmark(score_chunk, data, layout, want_resp=True, want_labels=True)
    assert lse.shape == (N_SAMPLES,)


@pytest.mark.parametrize("weighted", [False, True])
def test_lloyd_step(benchmark, data, weighted):
    rng = np.random.default_rng(7)
    centres = np.ascontiguousarray(data[rng.choice(N_SAMPLES, N_COMPONENTS, replace=False)] + 0.3)
    sw = rng.uniform(0.0, 2.0, N_SAMPLES) if weighted else np.empty(0)
    n_slots = n_slots_for(N_SAMPLES, N_COMPONENTS, 1 + N_FEATURES)
    counts, _, _ = benchmark(lloyd_step, data, sw, centres, n_slots)
    assert counts.shape == (N_COMPONENTS,)
