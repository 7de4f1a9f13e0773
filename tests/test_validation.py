"""Bad input gets a ValueError/TypeError that names the problem."""

import numpy as np
import pytest
import scipy.sparse as sp
from conftest import initial_parameters

from fastgmm import GaussianMixture


@pytest.fixture(scope="module")
def X():
    return np.random.default_rng(0).normal(size=(60, 2))


def test_nan_and_inf_are_located(X):
    bad = X.copy()
    bad[7, 1] = np.nan
    bad[30, 0] = np.inf
    with pytest.raises(ValueError, match=r"2 row\(s\).*first is row 7 \(column 1 is nan\)"):
        GaussianMixture(2).fit(bad)
    gm = GaussianMixture(2, random_state=0).fit(X)
    with pytest.raises(ValueError, match=r"1 row\(s\).*first is row 10 \(column 0 is inf\)"):
        gm.predict(bad[20:])


@pytest.mark.parametrize(
    "data, message",
    [
        (np.zeros(5), "Expected 2D array, got 1D array"),
        (np.zeros((4, 2, 2)), "Found array with dim 3"),
        (np.zeros((0, 2)), "0 sample"),
        (np.zeros((1, 2)), "minimum of 2 is required"),
    ],
)
def test_bad_shapes(data, message):
    with pytest.raises(ValueError, match=message):
        GaussianMixture(1).fit(data)


def test_fewer_samples_than_components(X):
    with pytest.raises(ValueError, match="Expected n_samples >= n_components"):
        GaussianMixture(61).fit(X)


def test_feature_count_at_predict(X):
    gm = GaussianMixture(2, random_state=0).fit(X)
    with pytest.raises(ValueError, match="X has 3 features, but GaussianMixture is expecting 2"):
        gm.predict(np.zeros((3, 3)))


@pytest.mark.parametrize(
    "data, error, message",
    [
        (np.ones((5, 2), dtype=complex), ValueError, "Complex data not supported"),
        (np.array([["a", "b"], ["c", "d"]], dtype=object), ValueError, "could not convert"),
        (np.array([["a", "b"], ["c", "d"]]), ValueError, "could not convert string to float"),
    ],
)
def test_unsupported_dtypes(data, error, message):
    with pytest.raises(error, match=message):
        GaussianMixture(1).fit(data)


def test_sparse_is_refused(X):
    with pytest.raises(TypeError, match=r"[Ss]parse"):
        GaussianMixture(1).fit(sp.csr_matrix(X))


@pytest.mark.parametrize(
    "weights, message",
    [
        (-np.ones(60), "Negative values in data passed to `sample_weight`"),
        (np.r_[np.ones(59), np.nan], "sample_weight contains NaN"),
        (np.r_[np.ones(59), np.inf], "sample_weight contains infinity"),
        (np.ones(10), r"sample_weight.shape == \(10,\), expected \(60,\)"),
        (np.zeros(60), "Sample weights must contain at least one non-zero number"),
    ],
)
def test_bad_sample_weight(X, weights, message):
    with pytest.raises(ValueError, match=message):
        GaussianMixture(1).fit(X, sample_weight=weights)


@pytest.mark.parametrize(
    "override, error, message",
    [
        ({"weights_init": np.array([0.5, 0.4])}, ValueError, "should be normalized"),
        ({"weights_init": np.array([1.5, -0.5])}, ValueError, "should be in the range"),
        ({"weights_init": np.ones(3) / 3}, ValueError, r"'weights' should have the shape"),
        ({"means_init": np.zeros((2, 3))}, ValueError, r"'means' should have the shape"),
        ({"precisions_init": np.zeros((2, 2, 2))}, ValueError, "symmetric, positive-definite"),
        (
            {"precisions_init": np.array([[[1.0, 2.0], [0.0, 1.0]]] * 2)},
            ValueError,
            "symmetric, positive-definite",
        ),
        ({"precisions_init": np.ones((2, 3, 3))}, ValueError, "'full precision' should have"),
        ({"means_init": np.full((2, 2), np.nan)}, ValueError, "'means' contains NaN"),
        ({"means_init": np.array([["a", "b"], ["c", "d"]])}, TypeError, "must be numeric"),
    ],
)
def test_bad_initial_parameters(X, override, error, message):
    params = {**initial_parameters(X, 2, "full"), **override}
    with pytest.raises(error, match=message):
        GaussianMixture(2, **params).fit(X)


def test_bad_diag_precisions(X):
    with pytest.raises(ValueError, match="'diag precision' should be positive"):
        GaussianMixture(2, covariance_type="diag", precisions_init=-np.ones((2, 2))).fit(X)


@pytest.mark.parametrize(
    "params, message",
    [
        ({"n_components": 0}, "'n_components' parameter of GaussianMixture must be an int"),
        ({"covariance_type": "banana"}, "'covariance_type' parameter"),
        ({"init_params": "magic"}, "'init_params' parameter"),
        ({"tol": -1}, "'tol' parameter"),
        ({"reg_covar": -1.0}, "'reg_covar' parameter"),
        ({"max_iter": -1}, "'max_iter' parameter"),
        ({"n_init": 0}, "'n_init' parameter"),
        ({"n_jobs": 1.5}, "'n_jobs' parameter"),
    ],
)
def test_bad_constructor_parameters(X, params, message):
    with pytest.raises(ValueError, match=message):
        GaussianMixture(**params).fit(X)


def test_n_jobs_zero(X):
    with pytest.raises(ValueError, match="n_jobs == 0"):
        GaussianMixture(1, n_jobs=0).fit(X)


def test_collapsed_component_gives_sklearn_message():
    X = np.zeros((10, 2))
    X[5:] = 1.0
    with pytest.raises(ValueError, match="ill-defined empirical covariance"):
        GaussianMixture(2, reg_covar=0, random_state=0).fit(X)
    with pytest.raises(ValueError, match="passing float64 data instead of float32"):
        GaussianMixture(2, reg_covar=0, random_state=0).fit(X.astype(np.float32))
