"""Invariants of EM checked over random shapes, dtypes and parameters (hypothesis)."""

import warnings

import numpy as np
from conftest import COVARIANCE_TYPES
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.exceptions import ConvergenceWarning

from fastgmm import GaussianMixture

SETTINGS = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def problems(draw, dtypes=(np.float32, np.float64)):
    n_components = draw(st.integers(1, 3))
    n_features = draw(st.integers(1, 4))
    n_samples = draw(st.integers(12 * n_components * n_features, 300))
    seed = draw(st.integers(0, 2**31 - 1))
    scale = draw(st.sampled_from([1e-3, 1.0, 1e3]))
    offset = draw(st.sampled_from([0.0, 10.0, -1e4]))
    dtype = draw(st.sampled_from(dtypes))
    covariance_type = draw(st.sampled_from(COVARIANCE_TYPES))
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=3.0, size=(n_components, n_features))
    X = centres[rng.integers(n_components, size=n_samples)] + rng.normal(
        size=(n_samples, n_features)
    )
    X = (X * scale + offset).astype(dtype)
    return X, n_components, covariance_type, seed


def _fit(X, n_components, covariance_type, seed, **params):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return GaussianMixture(
            n_components,
            covariance_type=covariance_type,
            random_state=seed,
            reg_covar=params.pop("reg_covar", 1e-6 * float(np.var(X))),
            **params,
        ).fit(X)


@SETTINGS
@given(problems())
def test_fitted_model_invariants(problem):
    X, n_components, covariance_type, seed = problem
    gm = _fit(X, n_components, covariance_type, seed, max_iter=15, tol=0)
    resp = gm.predict_proba(X)
    # Responsibilities come back in X's dtype (as scikit-learn's): rows sum to 1 up to the
    # rounding of K values in that dtype.
    eps = np.finfo(resp.dtype).eps
    np.testing.assert_allclose(resp.sum(axis=1), 1.0, rtol=4 * resp.shape[1] * eps)
    assert np.all(resp >= 0)
    assert abs(float(gm.weights_.sum()) - 1.0) < 1e-5
    covs = np.asarray(gm.covariances_, dtype=np.float64)
    if covariance_type in ("full", "tied"):
        mats = covs if covariance_type == "full" else covs[None]
        np.testing.assert_array_equal(mats, np.swapaxes(mats, 1, 2))
        assert np.all(np.linalg.eigvalsh(mats) > 0)
    else:
        assert np.all(covs > 0)
    assert np.all(np.isfinite(gm.score_samples(X)))


@SETTINGS
@given(problems(dtypes=(np.float64,)))
def test_lower_bound_never_decreases(problem):
    X, n_components, covariance_type, seed = problem
    # reg_covar=0 makes the M-step the exact maximiser, so EM's monotonicity holds exactly. The
    # data are float64: rounded to float32, rows at an offset of 1e4 with a spread of 1e-3 take
    # a handful of distinct values, and a component on one of them has no covariance at all.
    gm = _fit(X, n_components, covariance_type, seed, max_iter=15, tol=0, reg_covar=0.0)
    lbs = np.asarray(gm.lower_bounds_)
    slack = 1e-9 * np.maximum(np.abs(lbs[1:]), 1.0)
    assert np.all(np.diff(lbs) >= -slack)


@SETTINGS
@given(problems())
def test_same_result_for_one_and_two_threads(problem):
    X, n_components, covariance_type, seed = problem
    one = _fit(X, n_components, covariance_type, seed, max_iter=5, n_jobs=1)
    two = _fit(X, n_components, covariance_type, seed, max_iter=5, n_jobs=2)
    for name in ("weights_", "means_", "covariances_", "precisions_cholesky_"):
        np.testing.assert_array_equal(getattr(one, name), getattr(two, name))
    assert one.lower_bounds_ == two.lower_bounds_
    np.testing.assert_array_equal(one.score_samples(X), two.score_samples(X))


@SETTINGS
@given(problems(), st.integers(0, 2**31 - 1))
def test_weight_two_equals_duplicated_row(problem, seed):
    X, n_components, covariance_type, _ = problem
    X = X.astype(np.float64)
    rng = np.random.default_rng(seed)
    weights = rng.integers(1, 3, size=len(X)).astype(float)
    init = dict(
        covariance_type=covariance_type,
        max_iter=5,
        tol=0,
        reg_covar=1e-6,
        means_init=X[rng.choice(len(X), n_components, replace=False)],
        weights_init=np.full(n_components, 1.0 / n_components),
        precisions_init=_unit_precisions(covariance_type, n_components, X.shape[1]),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        weighted = GaussianMixture(n_components, **init).fit(X, sample_weight=weights)
        duplicated = GaussianMixture(n_components, **init).fit(
            np.repeat(X, weights.astype(int), axis=0)
        )
    # Equal in exact arithmetic; the sums differ in rounding only. Moments are taken about the
    # previous means, so a component that moves t of its standard deviations in one iteration
    # (from a unit-variance start to data spread over 1e4) loses about t**2 ulps: draws reach
    # 9e-9 relative. A wrong weighting would be off by whole rows.
    np.testing.assert_allclose(weighted.means_, duplicated.means_, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(
        weighted.lower_bounds_, duplicated.lower_bounds_, rtol=1e-7, atol=1e-12
    )


def _unit_precisions(covariance_type, n_components, n_features):
    if covariance_type == "full":
        return np.repeat(np.eye(n_features)[None], n_components, axis=0)
    if covariance_type == "tied":
        return np.eye(n_features)
    if covariance_type == "diag":
        return np.ones((n_components, n_features))
    return np.ones(n_components)
