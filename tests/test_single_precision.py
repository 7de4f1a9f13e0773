"""float32 data: single-precision products, float64 sums, and the same fitted model.

float32 rows go through single-precision BLAS (the feature map, ``strmm``/``ssyrk``), while every
sum over rows is float64. The reference for each fit is the float64 fit of the *same* numbers
(the float32 data widened), so that the only difference is the arithmetic, not the data.

These are the fit-level checks and the rules that choose the arithmetic. Each kernel path in
single precision, widened, and after an overflow is checked against the oracle in
``tests/test_kernels.py``.
"""

import warnings

import numpy as np
import pytest
from conftest import initial_parameters, make_mixture_data
from sklearn.exceptions import ConvergenceWarning

from fastgmm import GaussianMixture
from fastgmm.covariance import get_model
from fastgmm.stats import DIAG, POOLED, MixtureParams, SharedLayout


def _fit(X, covariance_type, labels=None, n_iter=10):
    """Ten EM iterations from a fixed start.

    With ``labels``, the start is the clusters' own means (and, for full models, precisions):
    far from any saddle point, where EM would amplify every rounding difference, and as well or
    ill conditioned as the fit itself, so that one arithmetic serves every iteration.
    """
    init = initial_parameters(X.astype(np.float64), 3, covariance_type)
    if labels is not None:
        groups = [X[labels == k].astype(np.float64) for k in range(3)]
        init["means_init"] = np.array([g.mean(axis=0) for g in groups])
        if covariance_type == "full":
            init["precisions_init"] = np.array([np.linalg.inv(np.cov(g.T)) for g in groups])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return GaussianMixture(
            3, covariance_type=covariance_type, tol=0, max_iter=n_iter, **init
        ).fit(X)


def _rel(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return np.max(np.abs(a - b)) / np.max(np.abs(b))


def _fitted_layout(gm):
    params = MixtureParams(
        gm.weights_, gm.means_, gm.covariances_, gm.precisions_cholesky_, gm.covariance_type
    )
    model = get_model(gm.covariance_type)
    return model.layout(params), model.statistics


def _clusters(n_features, spread, skew, seed=21, n_samples=1500):
    """Three Gaussian clusters with centres ``spread`` apart per feature, and their labels.

    ``skew`` scales the random part of each cluster's factor ``I + skew * G``: the larger, the
    more correlated the features and the worse conditioned the covariances.
    """
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=spread, size=(3, n_features))
    labels = rng.integers(3, size=n_samples)
    factors = rng.normal(size=(3, n_features, n_features)) * skew + np.eye(n_features)
    noise = rng.normal(size=(n_samples, n_features))
    return centres[labels] + np.einsum("nd,nde->ne", noise, factors[labels]), labels


def _arithmetic(layout_and_kind):
    """Which arithmetic float32 rows get under these parameters (see ``chunk_statistics``)."""
    layout, kind = layout_and_kind
    if kind != POOLED and layout.feature_map(np.float32, kind, 1500) is not None:
        return "single, feature map"
    if kind != POOLED and layout.feature_map(np.float64, kind) is not None:
        return "double, feature map"  # where float64 rows take the map: never slower
    if layout.single_precision_suits():
        return "single, per component"
    return "double"


# (n_features, covariance_type, spread of the centres, skew, arithmetic expected). The map takes
# full models up to 32 features and every diagonal one while the rounding bound of
# fastgmm.stats.single_precision_error stays small; where float64 rows take the map, float32
# rows take it in double precision beyond that (never slower than float64); elsewhere
# per-component single-precision products (strmm, ssyrk from 16 features, loops below) while
# cond(U_k) stays small; float64 beyond.
CASES = {
    "map, full": (2, "full", 4.0, 0.3, "single, feature map"),
    "map, diag": (6, "diag", 4.0, 0.3, "single, feature map"),
    "map, D=20": (20, "full", 1.5, 0.05, "single, feature map"),
    "per component, means spread wide": (20, "full", 30.0, 0.1, "single, per component"),
    "double map, correlated": (20, "full", 1.5, 0.3, "double, feature map"),
    "per component, D=40": (40, "full", 4.0, 0.1, "single, per component"),
    "per component, tied": (40, "tied", 4.0, 0.1, "single, per component"),
    "per component loops": (5, "full", 60.0, 0.1, "single, per component"),
    "per component loops, diag": (5, "diag", 60.0, 0.3, "single, per component"),
    "ill-conditioned: double": (40, "full", 4.0, 0.3, "double"),
}


@pytest.mark.parametrize("case", CASES)
def test_float32_fit_matches_float64_fit_of_the_same_numbers(case):
    n_features, covariance_type, spread, skew, arithmetic = CASES[case]
    X, labels = _clusters(n_features, spread, skew)
    X32 = X.astype(np.float32)
    X64 = X32.astype(np.float64)
    ours32 = _fit(X32, covariance_type, labels)
    ours64 = _fit(X64, covariance_type, labels)

    assert _arithmetic(_fitted_layout(ours64)) == arithmetic
    # The bound is 1e-5; single-precision products stay an order inside it, and the
    # float64 fallback agrees to rounding.
    # "double, feature map" is the final parameters' arithmetic; the first iterations, with
    # broader components, may have taken the single-precision map.
    rtol = 1e-12 if arithmetic == "double" else 1e-6
    np.testing.assert_allclose(ours32.lower_bounds_, ours64.lower_bounds_, rtol=rtol)
    assert _rel(ours32.means_, ours64.means_) < 1e-5
    assert _rel(ours32.covariances_, ours64.covariances_) < 1e-4
    assert _rel(ours32.weights_, ours64.weights_) < 1e-5
    np.testing.assert_array_equal(ours32.predict(X32), ours64.predict(X64))
    # Per-row outputs are computed in float64 (then rounded to the input's float32), so they
    # differ only through the parameters.
    np.testing.assert_allclose(ours32.score_samples(X32), ours64.score_samples(X64), rtol=1e-4)
    proba = ours32.predict_proba(X32)
    assert proba.dtype == np.float32
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)


def test_float32_far_from_origin_keeps_its_digits():
    # Moments are taken about each mean (per component) or the centre of the means (map), never
    # about the origin: translating float32 data by 1e3 changes nothing but the input rounding.
    X, _ = make_mixture_data(n_samples=1200, n_features=20, seed=22)
    near = _fit(X.astype(np.float32), "full")
    far = _fit((X + 1e3).astype(np.float32), "full")
    assert far.lower_bound_ == pytest.approx(near.lower_bound_, rel=1e-5)
    np.testing.assert_allclose(far.means_ - 1e3, near.means_, atol=1e-3)


def test_single_precision_map_refuses_widely_spread_means():
    # A mean 90 standard deviations from the centre of the means (t**2 = 8100) puts an error of
    # sqrt(5) * 2**-24 * 2 * 8101 = 2.2e-3 on a row's log-density in the single-precision map
    # (5 features). That is within the per-row bound, 1e-2, but its mean over 1000 rows
    # (7e-5) is not within 1e-5, so float32 data take other kernels there; 1e8 rows average it
    # out. float64 data (which can spare 1e4 ulps) keep the map.
    weights = np.array([0.5, 0.5])
    layout = SharedLayout.diagonal(weights, np.array([[-90.0, 0.0], [90.0, 0.0]]), np.ones((2, 2)))
    assert layout.feature_map(np.float64, DIAG, 1000) is not None
    assert layout.feature_map(np.float32, DIAG, 1000) is None
    assert layout.feature_map(np.float32, DIAG, 10**8) is not None
    near = SharedLayout.diagonal(weights, np.array([[-5.0, 0.0], [5.0, 0.0]]), np.ones((2, 2)))
    assert near.feature_map(np.float32, DIAG, 1000) is not None


def test_float32_overflow_falls_back_to_float64():
    # A row 1e20 from both components: its squared offset (1e40) overflows float32's 3.4e38
    # in the single-precision products. The chunk is then computed in float64, which holds it,
    # and the fit equals the float64 fit of the same numbers.
    rng = np.random.default_rng(23)
    X = np.vstack([rng.normal(size=(300, 3)), rng.normal(size=(300, 3)) + 6, [[1e20, 0, 0]]])
    X32 = X.astype(np.float32)
    init = dict(means_init=[[0.0, 0, 0], [6.0, 6, 6]], max_iter=3, tol=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours32 = GaussianMixture(2, **init).fit(X32)
        ours64 = GaussianMixture(2, **init).fit(X32.astype(np.float64))
    np.testing.assert_allclose(ours32.lower_bounds_, ours64.lower_bounds_, rtol=1e-6)
    assert _rel(ours32.covariances_, ours64.covariances_) < 1e-5
