"""fastgmm.GaussianMixture against scikit-learn and the NumPy reference."""

import warnings

import numpy as np
import pytest
import reference
from conftest import COVARIANCE_TYPES, initial_parameters, make_mixture_data
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.mixture import GaussianMixture as SklearnGaussianMixture

from fastgmm import GaussianMixture


def _fit_pair(X, covariance_type, n_iter=20, **extra):
    init = initial_parameters(X, 3, covariance_type)
    params = dict(covariance_type=covariance_type, tol=0, max_iter=n_iter, **init, **extra)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours = GaussianMixture(3, **params).fit(X)
        theirs = SklearnGaussianMixture(3, **params).fit(X)
    return ours, theirs


def _rel(a, b):
    a, b = np.asarray(a, float), np.asarray(b, float)
    return np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_same_answers_as_sklearn(blobs, covariance_type):
    ours, theirs = _fit_pair(blobs, covariance_type)
    assert _rel(ours.lower_bound_, theirs.lower_bound_) < 1e-8
    if hasattr(theirs, "lower_bounds_"):  # scikit-learn 1.7+; CI's floors venv has 1.6
        np.testing.assert_allclose(ours.lower_bounds_, theirs.lower_bounds_, rtol=1e-8)
    assert _rel(ours.means_, theirs.means_) < 1e-8
    assert _rel(ours.covariances_, theirs.covariances_) < 1e-8
    assert _rel(ours.weights_, theirs.weights_) < 1e-8
    assert _rel(ours.precisions_, theirs.precisions_) < 1e-8
    assert _rel(ours.precisions_cholesky_, theirs.precisions_cholesky_) < 1e-8
    np.testing.assert_array_equal(ours.predict(blobs), theirs.predict(blobs))
    np.testing.assert_allclose(ours.predict_proba(blobs), theirs.predict_proba(blobs), atol=1e-10)
    np.testing.assert_allclose(
        ours.score_samples(blobs), theirs.score_samples(blobs), rtol=1e-10, atol=1e-10
    )
    assert ours.score(blobs) == pytest.approx(theirs.score(blobs), rel=1e-10)
    assert ours.bic(blobs) == pytest.approx(theirs.bic(blobs), rel=1e-10)
    assert ours.aic(blobs) == pytest.approx(theirs.aic(blobs), rel=1e-10)
    assert ours._n_parameters() == theirs._n_parameters()
    assert ours.n_iter_ == theirs.n_iter_ == 20
    assert ours.converged_ == theirs.converged_


@pytest.mark.parametrize("covariance_type", ["full", "tied"])
def test_blas_path_matches_sklearn(covariance_type):
    # Above 32 features full/tied models use the per-component BLAS kernels (dtrmm, dsyrk) in
    # larger blocks, with a partial last block: the same answers as every other path.
    X, _ = make_mixture_data(n_samples=1500, n_features=40, n_components=3, seed=8)
    ours, theirs = _fit_pair(X, covariance_type, n_iter=8)
    assert _rel(ours.lower_bound_, theirs.lower_bound_) < 1e-10
    assert _rel(ours.means_, theirs.means_) < 1e-9
    assert _rel(ours.covariances_, theirs.covariances_) < 1e-9
    np.testing.assert_array_equal(ours.predict(X), theirs.predict(X))
    np.testing.assert_allclose(
        ours.score_samples(X), theirs.score_samples(X), rtol=1e-10, atol=1e-10
    )


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_matches_numpy_reference(blobs, covariance_type):
    init = initial_parameters(blobs, 3, covariance_type)
    covs = reference.precisions_of(init["precisions_init"], covariance_type)
    weights, means, covariances, lbs = reference.fit(
        blobs, init["weights_init"], init["means_init"], covs, covariance_type, n_iter=8
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours = GaussianMixture(3, covariance_type=covariance_type, tol=0, max_iter=8, **init)
        ours.fit(blobs)
    np.testing.assert_allclose(ours.lower_bounds_, lbs, rtol=1e-10)
    np.testing.assert_allclose(ours.means_, means, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(ours.covariances_, covariances, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(ours.weights_, weights, rtol=1e-9)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_sample_weight_equals_duplicated_rows(blobs, covariance_type):
    X = blobs[:200]
    weights = np.random.default_rng(3).integers(0, 4, size=len(X))
    duplicated = np.repeat(X, weights, axis=0)
    init = initial_parameters(X, 3, covariance_type)
    kwargs = dict(covariance_type=covariance_type, tol=0, max_iter=10, **init)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        weighted = GaussianMixture(3, **kwargs).fit(X, sample_weight=weights)
        repeated = GaussianMixture(3, **kwargs).fit(duplicated)
    np.testing.assert_allclose(weighted.means_, repeated.means_, rtol=1e-10)
    np.testing.assert_allclose(weighted.covariances_, repeated.covariances_, rtol=1e-9)
    np.testing.assert_allclose(weighted.lower_bounds_, repeated.lower_bounds_, rtol=1e-10)
    # and against the weighted reference
    covs = reference.precisions_of(init["precisions_init"], covariance_type)
    _, means, _, lbs = reference.fit(
        X,
        init["weights_init"],
        init["means_init"],
        covs,
        covariance_type,
        n_iter=10,
        sample_weight=weights,
    )
    np.testing.assert_allclose(weighted.means_, means, rtol=1e-9)
    np.testing.assert_allclose(weighted.lower_bounds_, lbs, rtol=1e-10)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_far_from_origin_keeps_its_digits(covariance_type):
    X, _ = make_mixture_data(n_samples=400, seed=5)
    ours_near, _ = _fit_pair(X, covariance_type, n_iter=10)
    ours_far, _ = _fit_pair(X + 1e6, covariance_type, n_iter=10)
    np.testing.assert_allclose(ours_far.means_ - 1e6, ours_near.means_, atol=1e-7)
    # The covariances are translation invariant; moments about the origin would lose ~12 digits.
    assert _rel(ours_far.covariances_, ours_near.covariances_) < 1e-7
    assert ours_far.lower_bound_ == pytest.approx(ours_near.lower_bound_, rel=1e-9)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_float32_input_keeps_float32_attributes(blobs, covariance_type):
    X32 = blobs.astype(np.float32)
    ours32, _ = _fit_pair(X32, covariance_type, n_iter=10)
    ours64, _ = _fit_pair(blobs, covariance_type, n_iter=10)
    for name in ("weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_"):
        assert getattr(ours32, name).dtype == np.float32, name
    # Accumulation is float64, so float32 input only loses the rounding of the input itself.
    assert ours32.lower_bound_ == pytest.approx(ours64.lower_bound_, rel=1e-5)
    np.testing.assert_array_equal(ours32.predict(X32), ours64.predict(blobs))
    # As scikit-learn's: per-row outputs in the input's dtype (computed in float64, rounded once).
    proba = ours32.predict_proba(X32)
    assert proba.dtype == np.float32
    np.testing.assert_allclose(proba, ours32.predict_proba(blobs), rtol=0, atol=2e-7)
    assert ours32.score_samples(X32).dtype == ours32.score(X32).dtype == np.float32


def test_kmeans_init_fits_well_separated_clusters():
    X, _ = make_mixture_data(n_samples=900, n_features=2, n_components=3, seed=11)
    for init in ("kmeans", "k-means++", "random_from_data"):
        gm = GaussianMixture(3, init_params=init, random_state=0, n_init=2).fit(X)
        sk = SklearnGaussianMixture(3, init_params=init, random_state=0, n_init=2).fit(X)
        assert gm.converged_
        # Same optimum as sklearn (initialisations differ, the fitted model must not).
        assert gm.lower_bound_ == pytest.approx(sk.lower_bound_, abs=1e-2), init
    gm = GaussianMixture(3, init_params="random", random_state=0, max_iter=500, tol=1e-6).fit(X)
    assert np.isfinite(gm.lower_bound_)


def test_fit_predict_equals_fit_then_predict(blobs):
    a = GaussianMixture(3, random_state=2, max_iter=5, tol=0)
    b = GaussianMixture(3, random_state=2, max_iter=5, tol=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        labels = a.fit_predict(blobs)
        np.testing.assert_array_equal(labels, b.fit(blobs).predict(blobs))
    assert labels.dtype == np.int64


def test_warm_start_continues(blobs):
    init = initial_parameters(blobs, 3, "full")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        once = GaussianMixture(3, tol=0, max_iter=6, **init).fit(blobs)
        warm = GaussianMixture(3, tol=0, max_iter=3, warm_start=True, **init).fit(blobs)
        warm.fit(blobs)
    np.testing.assert_allclose(warm.means_, once.means_, rtol=1e-12)
    assert warm.lower_bound_ == pytest.approx(once.lower_bound_, rel=1e-12)


def test_n_init_keeps_best_run(blobs):
    single = [
        GaussianMixture(3, init_params="random_from_data", random_state=rs).fit(blobs)
        for rs in range(3)
    ]
    best = GaussianMixture(3, init_params="random_from_data", n_init=3, random_state=0).fit(blobs)
    assert best.lower_bound_ >= single[0].lower_bound_ - 1e-12


def test_convergence_warning_and_max_iter_zero(blobs):
    with pytest.warns(ConvergenceWarning, match="Best performing initialization did not converge"):
        GaussianMixture(3, max_iter=1, tol=0, random_state=0).fit(blobs)
    gm = GaussianMixture(3, max_iter=0, random_state=0).fit(blobs)
    assert gm.n_iter_ == 0 and gm.lower_bounds_ == []


def test_verbose_output(blobs, capsys):
    GaussianMixture(2, verbose=2, verbose_interval=1, max_iter=3, random_state=0).fit(blobs)
    out = capsys.readouterr().out
    assert "Initialization 0" in out and "Iteration 1" in out and "lower bound" in out


def test_not_fitted_error(blobs):
    with pytest.raises(NotFittedError):
        GaussianMixture().predict(blobs)


def test_sample_matches_sklearn_draws(blobs):
    for ctype in COVARIANCE_TYPES:
        ours, theirs = _fit_pair(blobs, ctype, n_iter=5, random_state=4)
        Xo, yo = ours.sample(50)
        Xt, yt = theirs.sample(50)
        np.testing.assert_array_equal(yo, yt)
        np.testing.assert_allclose(Xo, Xt, rtol=1e-8, atol=1e-8)
    with pytest.raises(ValueError, match="n_samples"):
        ours.sample(0)


def test_feature_names_are_recorded():
    pd = pytest.importorskip("pandas")
    X, _ = make_mixture_data(n_samples=100, n_features=2)
    frame = pd.DataFrame(X, columns=["a", "b"])
    gm = GaussianMixture(2, random_state=0).fit(frame)
    np.testing.assert_array_equal(gm.feature_names_in_, ["a", "b"])


def test_layouts_and_dtypes_are_converted(blobs):
    gm = GaussianMixture(3, random_state=0).fit(blobs)
    expected = gm.score_samples(blobs)
    np.testing.assert_allclose(gm.score_samples(np.asfortranarray(blobs)), expected)
    np.testing.assert_allclose(gm.score_samples(blobs[::1, :]), expected)
    strided = np.repeat(blobs, 2, axis=0)[::2]
    np.testing.assert_allclose(gm.score_samples(strided), expected)
    ints = np.round(blobs).astype(np.int32)
    np.testing.assert_allclose(gm.score_samples(ints), gm.score_samples(ints.astype(np.float64)))
    flags = blobs > 0
    assert np.isfinite(GaussianMixture(2, random_state=0, reg_covar=1e-3).fit(flags).lower_bound_)
    readonly = blobs.copy()
    readonly.flags.writeable = False
    np.testing.assert_allclose(gm.score_samples(readonly), expected)
    gm_ro = GaussianMixture(3, random_state=0).fit(readonly)
    np.testing.assert_allclose(gm_ro.means_, gm.means_)
