"""BayesianGaussianMixture against scikit-learn's, and on fastgmm's own inputs.

Agreement: from the same start (every ``init_params`` but 'kmeans' draws scikit-learn's
responsibilities on an in-memory array), both run the same coordinate-ascent iterations, so
their results differ only by rounding: sums in another order (blocks and slots in the kernels,
moments about the previous means) and the Cholesky inverse, each a few ulps per iteration. The
largest relative difference measured over the cases below is 6e-13 after up to 300 iterations;
the tolerance is the issue's 1e-8, which leaves four orders of magnitude for other BLAS and
platforms while any error in a formula (a missing term is of relative size 1e-3 or more) fails.
"""

import io
import pickle
import warnings
from contextlib import redirect_stdout

import numpy as np
import pytest
from scipy.special import digamma
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import BayesianGaussianMixture as SklearnBGM
from sklearn.mixture import _bayesian_mixture as sk_bayes

import fastgmm
from fastgmm import BayesianGaussianMixture
from fastgmm.covariance import get_model
from fastgmm.em import EMRun, run_em
from fastgmm.providers import ArrayChunks
from fastgmm.sources import open_source
from fastgmm.variational import (
    Variational,
    _log_weight_normaliser,
    _log_wishart_normaliser,
    expected_log_weights,
    mixture_weights,
)

COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")
PRIOR_TYPES = ("dirichlet_process", "dirichlet_distribution")
RTOL = 1e-8


def _data(n_per=120, seed=0):
    """Three clusters in 3-D, one of them elongated; far from the origin in one feature."""
    rng = np.random.RandomState(seed)
    centres = np.array([[0.0, 0.0, 10.0], [5.0, 5.0, 10.0], [0.0, 6.0, 13.0]])
    scales = np.array([[1.0, 1.0, 1.0], [2.0, 0.3, 0.5], [1.0, 1.0, 1.0]])
    return np.vstack([rng.randn(n_per, 3) * s + c for c, s in zip(centres, scales)])


def _flat(concentration):
    return np.concatenate(concentration) if isinstance(concentration, tuple) else concentration


def _assert_close(ours, theirs, rtol=RTOL):
    """Every fitted value of ``ours`` within ``rtol`` of ``theirs`` (relative to its size)."""
    assert ours.n_iter_ == theirs.n_iter_
    assert ours.converged_ == theirs.converged_
    pairs = {
        "lower_bound_": (ours.lower_bound_, theirs.lower_bound_),
        "lower_bounds_": (ours.lower_bounds_, theirs.lower_bounds_),
        "weights_": (ours.weights_, theirs.weights_),
        "means_": (ours.means_, theirs.means_),
        "covariances_": (ours.covariances_, theirs.covariances_),
        "precisions_cholesky_": (ours.precisions_cholesky_, theirs.precisions_cholesky_),
        "precisions_": (ours.precisions_, theirs.precisions_),
        "weight_concentration_": (
            _flat(ours.weight_concentration_),
            _flat(theirs.weight_concentration_),
        ),
        "mean_precision_": (ours.mean_precision_, theirs.mean_precision_),
        "degrees_of_freedom_": (ours.degrees_of_freedom_, theirs.degrees_of_freedom_),
        "mean_prior_": (ours.mean_prior_, theirs.mean_prior_),
        "covariance_prior_": (ours.covariance_prior_, theirs.covariance_prior_),
    }
    for name, (a, b) in pairs.items():
        # squeeze: scikit-learn's 'tied' lower bounds are arrays of shape (1,) (its Wishart
        # term is K times a one-element array); fastgmm's are floats.
        a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float).reshape(np.shape(a))
        scale = np.max(np.abs(b)) if b.size else 1.0
        np.testing.assert_allclose(a, b, rtol=0, atol=rtol * scale, err_msg=name)


def _both(X, **params):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        theirs = SklearnBGM(**params).fit(X)
        ours = BayesianGaussianMixture(**params).fit(X)
    return ours, theirs


# ------------------------------------------------------------------ agreement with scikit-learn
@pytest.mark.parametrize("init_params", ["random", "random_from_data", "k-means++"])
@pytest.mark.parametrize("prior_type", PRIOR_TYPES)
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_equals_sklearn_from_the_same_start(covariance_type, prior_type, init_params):
    ours, theirs = _both(
        _data(),
        n_components=6,
        covariance_type=covariance_type,
        weight_concentration_prior_type=prior_type,
        init_params=init_params,
        random_state=3,
        max_iter=300,
        tol=1e-6,
    )
    _assert_close(ours, theirs)


@pytest.mark.parametrize("prior_type", PRIOR_TYPES)
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_equals_sklearn_with_given_priors_and_n_init(covariance_type, prior_type):
    n_features = 3
    covariance_prior = {
        "full": np.array([[2.0, 0.3, 0.0], [0.3, 1.0, 0.1], [0.0, 0.1, 0.5]]),
        "tied": np.diag([1.0, 2.0, 3.0]),
        "diag": np.array([0.5, 1.0, 2.0]),
        "spherical": 0.7,
    }[covariance_type]
    ours, theirs = _both(
        _data(seed=1),
        n_components=5,
        covariance_type=covariance_type,
        weight_concentration_prior_type=prior_type,
        weight_concentration_prior=0.05,
        mean_precision_prior=0.3,
        mean_prior=np.array([1.0, 2.0, 11.0]),
        degrees_of_freedom_prior=n_features + 1.5,
        covariance_prior=covariance_prior,
        init_params="random",
        n_init=3,
        random_state=7,
        tol=1e-6,
        max_iter=200,
    )
    _assert_close(ours, theirs)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_warm_start_and_max_iter_zero_equal_sklearn(covariance_type):
    X = _data(seed=2)
    params = dict(
        n_components=4,
        covariance_type=covariance_type,
        init_params="random_from_data",
        random_state=0,
    )
    ours, theirs = _both(X, max_iter=0, **params)  # the starting posterior itself
    assert ours.lower_bound_ == theirs.lower_bound_ == -np.inf
    np.testing.assert_allclose(ours.covariances_, theirs.covariances_, rtol=RTOL)
    np.testing.assert_allclose(ours.means_, theirs.means_, rtol=RTOL)
    ours.set_params(max_iter=2, warm_start=True)
    theirs.set_params(max_iter=2, warm_start=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for _ in range(3):  # each fit continues where the last one stopped
            ours.fit(X)
            theirs.fit(X)
            _assert_close(ours, theirs)


@pytest.mark.parametrize("prior_type", PRIOR_TYPES)
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_per_row_outputs_equal_sklearn(covariance_type, prior_type):
    X = _data(seed=4)
    ours, theirs = _both(
        X,
        n_components=5,
        covariance_type=covariance_type,
        weight_concentration_prior_type=prior_type,
        init_params="random",
        random_state=0,
    )
    fresh = _data(n_per=30, seed=5)
    np.testing.assert_allclose(ours.score_samples(fresh), theirs.score_samples(fresh), rtol=RTOL)
    np.testing.assert_allclose(ours.predict_proba(fresh), theirs.predict_proba(fresh), atol=RTOL)
    np.testing.assert_array_equal(ours.predict(fresh), theirs.predict(fresh))
    assert np.isclose(ours.score(fresh), theirs.score(fresh), rtol=RTOL)
    for model in (ours, theirs):  # the same draws from the same random_state
        model.random_state = 3
    np.testing.assert_allclose(ours.sample(50)[0], theirs.sample(50)[0], rtol=RTOL)


def test_helpers_equal_sklearns_private_ones():
    """The replacements of the helpers whose upstream tests are deselected in the suite."""
    rng = np.random.RandomState(0)
    alpha = rng.rand(5) + 0.1
    assert np.isclose(
        _log_weight_normaliser(alpha, "dirichlet_distribution"),
        sk_bayes._log_dirichlet_norm(alpha),
        rtol=1e-14,
    )
    nu = rng.rand(4) + 3.0
    log_det = rng.rand(4)
    np.testing.assert_allclose(
        _log_wishart_normaliser(nu, log_det, 3),
        sk_bayes._log_wishart_norm(nu, log_det, 3),
        rtol=1e-14,
    )
    # The stick-breaking expectations against their definition (Blei & Jordan 2006, eq. 21).
    a, b = rng.rand(4) + 0.5, rng.rand(4) + 0.5
    stick = digamma(a) - digamma(a + b)
    rest = digamma(b) - digamma(a + b)
    expected = [stick[k] + rest[:k].sum() for k in range(4)]
    np.testing.assert_allclose(expected_log_weights((a, b), "dirichlet_process"), expected)
    lengths = a / (a + b) * np.concatenate([[1.0], np.cumprod(b / (a + b))[:-1]])
    np.testing.assert_allclose(
        mixture_weights((a, b), "dirichlet_process"), lengths / lengths.sum(), rtol=1e-15
    )


def test_surplus_components_are_switched_off():
    X = _data()
    bgm = BayesianGaussianMixture(
        n_components=10, weight_concentration_prior=1e-3, random_state=0, max_iter=500
    ).fit(X)
    assert bgm.converged_
    assert int(np.sum(bgm.weights_ > 0.02)) == 3


# ---------------------------------------------------------------- fastgmm's inputs and outputs
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_streamed_npy_fit_equals_the_in_memory_fit(tmp_path):
    X = _data(n_per=400)
    np.save(tmp_path / "x.npy", X)
    for init_params in ("random", "kmeans"):
        params = dict(n_components=5, init_params=init_params, random_state=0, tol=1e-6)
        memory = BayesianGaussianMixture(**params).fit(X)
        source = open_source(tmp_path / "x.npy", batch_size=250)  # five chunks per pass
        streamed = BayesianGaussianMixture(**params).fit(source)
        # The same rows, summed chunk by chunk instead of in one call: rounding only.
        _assert_close(streamed, memory, rtol=1e-10)
        np.testing.assert_array_equal(streamed.predict(X), memory.predict(X))


def test_dask_fit_equals_the_in_memory_fit():
    da = pytest.importorskip("dask.array")
    import dask

    X = _data(n_per=200)
    params = dict(n_components=4, covariance_type="diag", init_params="random", random_state=0)
    memory = BayesianGaussianMixture(**params).fit(X)
    with dask.config.set(scheduler="sync"):
        distributed = BayesianGaussianMixture(**params).fit(da.from_array(X, chunks=(150, 3)))
        labels = distributed.predict(da.from_array(X, chunks=(150, 3))).compute()
    _assert_close(distributed, memory, rtol=1e-10)
    np.testing.assert_array_equal(labels, memory.predict(X))


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_integer_weights_count_rows(covariance_type):
    """A weight of w is w copies of the row: the priors and every iteration agree."""
    X = _data(n_per=40)
    weights = np.random.RandomState(0).randint(0, 4, size=len(X))
    repeated = np.repeat(X, weights, axis=0)
    fits = []
    for rows, sample_weight in ((X, weights), (repeated, None)):
        bgm = BayesianGaussianMixture(n_components=3, covariance_type=covariance_type)
        bgm._check_parameters(repeated)  # the same priors (checked below) and start
        start = Variational(get_model(covariance_type), bgm._prior(), reg_covar=1e-6)
        params = start.point_params(X[[0, 50, 100]], n_samples=len(repeated))
        run = EMRun(start, params, tol=0.0, max_iter=5)
        run_em(ArrayChunks(rows, sample_weight), [run])
        fits.append(run)
    weighted, copies = fits
    np.testing.assert_allclose(weighted.lower_bounds, copies.lower_bounds, rtol=1e-11)
    np.testing.assert_allclose(weighted.params.covariances, copies.params.covariances, rtol=1e-11)
    a = BayesianGaussianMixture(covariance_type=covariance_type).fit(X, sample_weight=weights)
    b = BayesianGaussianMixture(covariance_type=covariance_type).fit(repeated)
    np.testing.assert_allclose(a.mean_prior_, b.mean_prior_, rtol=1e-12)
    np.testing.assert_allclose(a.covariance_prior_, b.covariance_prior_, rtol=1e-11)


def test_unit_weights_change_nothing():
    X = _data()
    params = dict(n_components=4, init_params="random", random_state=0)
    plain = BayesianGaussianMixture(**params).fit(X)
    weighted = BayesianGaussianMixture(**params).fit(X, sample_weight=np.ones(len(X)))
    _assert_close(weighted, plain, rtol=1e-12)


def test_float32_fits_in_float32():
    X = _data()
    params = dict(n_components=4, init_params="random", random_state=0, max_iter=20, tol=0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        single = BayesianGaussianMixture(**params).fit(X.astype(np.float32))
        double = BayesianGaussianMixture(**params).fit(X)
    for name in ("weights_", "means_", "covariances_", "precisions_cholesky_", "mean_prior_"):
        assert getattr(single, name).dtype == np.float32, name
    # float32 rows carry 6e-8 relative error: the bound, a sum over 360 rows, within 1e-5.
    assert abs(single.lower_bound_ - double.lower_bound_) < 1e-5 * abs(double.lower_bound_)
    np.testing.assert_allclose(single.means_, double.means_, rtol=1e-4, atol=1e-4)
    assert single.score_samples(X.astype(np.float32)).dtype == np.float32


def test_model_file_round_trip(tmp_path):
    X = _data()
    for covariance_type in COVARIANCE_TYPES:
        bgm = BayesianGaussianMixture(
            n_components=3, covariance_type=covariance_type, random_state=0
        ).fit(X)
        path = fastgmm.save(bgm, tmp_path / f"{covariance_type}.npz")
        again = fastgmm.load(path)
        assert type(again) is BayesianGaussianMixture
        np.testing.assert_array_equal(again.score_samples(X), bgm.score_samples(X))
        np.testing.assert_array_equal(again.precisions_, bgm.precisions_)
        np.testing.assert_array_equal(
            _flat(again.weight_concentration_), _flat(bgm.weight_concentration_)
        )
        assert again.get_params() == {**bgm.get_params(), "mean_prior": None}


def test_model_file_refuses_an_impossible_posterior(tmp_path):
    bgm = BayesianGaussianMixture(n_components=2, covariance_type="diag").fit(_data())
    bgm.mean_precision_ = -bgm.mean_precision_
    path = fastgmm.save(bgm, tmp_path / "bad.npz")
    with pytest.raises(fastgmm.persistence.ModelFileError, match="mean_precision_"):
        fastgmm.load(path)


# ------------------------------------------------------------------------------- partial_fit
def test_one_partial_fit_is_one_batch_iteration():
    """The first chunk: the same start, then one E-step and the update with N = its rows."""
    X = _data()
    for prior_type in PRIOR_TYPES:
        params = dict(
            n_components=4,
            init_params="random",
            random_state=0,
            weight_concentration_prior_type=prior_type,
        )
        online = BayesianGaussianMixture(**params).partial_fit(X)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            batch = BayesianGaussianMixture(max_iter=1, **params).fit(X)
        np.testing.assert_allclose(online.means_, batch.means_, rtol=1e-12)
        np.testing.assert_allclose(online.covariances_, batch.covariances_, rtol=1e-12)
        np.testing.assert_allclose(
            _flat(online.weight_concentration_), _flat(batch.weight_concentration_), rtol=1e-12
        )
        assert online.n_iter_ == 1 and not online.converged_


def test_partial_fit_approaches_the_batch_posterior():
    rng = np.random.RandomState(0)
    centres = np.array([[0.0, 0.0], [6.0, 0.0], [0.0, 6.0]])
    X = centres[rng.randint(3, size=30_000)] + rng.randn(30_000, 2)
    params = dict(n_components=6, random_state=0, covariance_type="diag")
    online = BayesianGaussianMixture(**params)
    for chunk in np.array_split(X, 30):  # one pass over the data, 30 chunks
        online.partial_fit(chunk)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        batch = BayesianGaussianMixture(**params).fit(X)
    # N is the weight seen: the counts in beta_k = beta_0 + N_k add up to the 30000 rows.
    assert online._online.weight_seen == len(X) and len(online.lower_bounds_) == 30
    np.testing.assert_allclose(online.mean_precision_.sum(), len(X) + 6 * 1.0, rtol=1e-12)
    # Each true cluster gets a third of the weight (split between components or not), and the
    # density is the batch posterior's: measured 3e-4 apart in mean score_samples.
    nearest = np.argmin(((online.means_[:, None, :] - centres) ** 2).sum(axis=2), axis=1)
    np.testing.assert_allclose(np.bincount(nearest, online.weights_, 3), 1 / 3, atol=0.02)
    assert abs(online.score(X) - batch.score(X)) < 5e-3


def test_a_partial_fit_sequence_survives_pickle():
    X = _data()
    bgm = BayesianGaussianMixture(n_components=3, random_state=0).partial_fit(X[:180])
    again = pickle.loads(pickle.dumps(bgm))
    for model in (bgm, again):
        model.partial_fit(X[180:])
    np.testing.assert_array_equal(again.means_, bgm.means_)
    assert again._online.weight_seen == len(X)


def test_partial_fit_needs_enough_rows_first():
    with pytest.raises(ValueError, match="needs n_samples >= n_components"):
        BayesianGaussianMixture(n_components=5).partial_fit(np.zeros((3, 2)))


# ------------------------------------------------------------------------ errors and messages
@pytest.mark.parametrize(
    "params, message",
    [
        ({"degrees_of_freedom_prior": 1.0}, "should be greater than 2, but got 1.000"),
        ({"mean_prior": [0.0, 1.0]}, r"'means' should have the shape of \(3,\), but got \(2,\)"),
        ({"covariance_prior": np.eye(2)}, "'full covariance_prior' should have the shape"),
        ({"covariance_prior": -np.eye(3)}, "'full precision' should be symmetric"),
        (
            {"covariance_type": "tied", "covariance_prior": [[1, 2, 0], [0, 1, 0], [0, 0, 1]]},
            "'tied precision' should be symmetric, positive-definite",
        ),
        ({"covariance_type": "diag", "covariance_prior": [1.0, 0.0, 1.0]}, "'diag precision'"),
        ({"weight_concentration_prior": 0.0}, "'weight_concentration_prior' parameter"),
        ({"weight_concentration_prior_type": "pitman_yor"}, "weight_concentration_prior_type"),
        ({"n_components": 400}, "Expected n_samples >= n_components"),
    ],
)
def test_errors_match_sklearn(params, message):
    X = _data()
    for cls in (SklearnBGM, BayesianGaussianMixture):
        with pytest.raises(ValueError, match=message):
            cls(**params).fit(X)


def test_weights_summing_to_one_or_less_are_refused():
    X = _data()
    with pytest.raises(ValueError, match=r"sum to 0\.72; the default covariance_prior"):
        BayesianGaussianMixture(n_components=2).fit(X, sample_weight=np.full(len(X), 0.002))


def test_verbose_output_has_sklearns_lines():
    X = _data()
    outputs = []
    for cls in (SklearnBGM, BayesianGaussianMixture):
        buffer = io.StringIO()
        with redirect_stdout(buffer), warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            cls(
                n_components=3,
                verbose=2,
                verbose_interval=1,
                max_iter=3,
                n_init=2,
                init_params="random",
                random_state=0,
            ).fit(X)
        # Times differ; the words, iteration numbers and lower-bound changes do not.
        outputs.append([line.split("time lapse")[0] for line in buffer.getvalue().splitlines()])
    assert outputs[0] == outputs[1]


def test_fit_predict_is_fit_then_predict():
    X = _data()
    for covariance_type in COVARIANCE_TYPES:
        params = dict(n_components=5, covariance_type=covariance_type, random_state=0)
        labels = BayesianGaussianMixture(**params).fit_predict(X)
        np.testing.assert_array_equal(labels, BayesianGaussianMixture(**params).fit(X).predict(X))
