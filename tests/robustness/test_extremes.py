"""Numerical extremes: offsets, scales, duplicated and constant data, tiny and wide shapes.

Most checks compare a fit on transformed data with a fit on the original, started from the same
(transformed) explicit initialisation, so that the answer is known without trusting fastgmm.
"""

import warnings

import mpmath
import numpy as np
import pytest
from robust_helpers import (
    COVARIANCE_TYPES,
    assert_clean_error,
    assert_finite_model,
    blobs,
    dense_covariances,
    only_convergence_warnings,
    reference,
)
from scipy.special import logsumexp
from sklearn.exceptions import ConvergenceWarning

from fastgmm import GaussianMixture
from fastgmm.covariance import get_model
from fastgmm.estep import chunk_statistics, score_chunk
from fastgmm.stats import MixtureParams


def _init(X, n_components, covariance_type, seed=1):
    """Explicit initial parameters: random rows as means, the data's variance everywhere."""
    rng = np.random.default_rng(seed)
    n_features = X.shape[1]
    means = X[rng.choice(len(X), n_components, replace=False)]
    precision = 1.0 / X.var(axis=0).mean()
    precisions = {
        "full": np.repeat(np.eye(n_features)[None] * precision, n_components, axis=0),
        "tied": np.eye(n_features) * precision,
        "diag": np.full((n_components, n_features), precision),
        "spherical": np.full(n_components, precision),
    }[covariance_type]
    return {
        "weights_init": np.full(n_components, 1.0 / n_components),
        "means_init": means,
        "precisions_init": precisions,
    }


def _fit(X, **params):
    params.setdefault("max_iter", 30)
    params.setdefault("tol", 0.0)  # a fixed number of iterations: both fits do the same work
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return GaussianMixture(**params).fit(X)


@pytest.fixture(scope="module")
def data():
    return blobs(n_samples=240, n_features=3, n_components=3, seed=4)[0]


# ------------------------------------------------------------------------ offsets, scales
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_offset_of_1e8_with_unit_scale(data, covariance_type):
    init = _init(data, 3, covariance_type)
    base = _fit(data, n_components=3, covariance_type=covariance_type, **init)
    shifted_init = dict(init, means_init=init["means_init"] + 1e8)
    shifted = _fit(data + 1e8, n_components=3, covariance_type=covariance_type, **shifted_init)
    assert_finite_model(shifted)
    # The data themselves lose ~1e-8 to rounding at 1e8 (ulp 1.5e-8); nothing else may.
    np.testing.assert_allclose(shifted.means_ - 1e8, base.means_, atol=2e-7)
    np.testing.assert_allclose(shifted.covariances_, base.covariances_, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(shifted.lower_bounds_, base.lower_bounds_, rtol=1e-7)


@pytest.mark.parametrize("scale", [1e-8, 1e8])
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_scales_of_1e_minus_8_and_1e8(data, covariance_type, scale):
    init = _init(data, 3, covariance_type)
    base = _fit(data, n_components=3, covariance_type=covariance_type, **init)
    scaled_init = {
        "weights_init": init["weights_init"],
        "means_init": init["means_init"] * scale,
        "precisions_init": init["precisions_init"] / scale**2,
    }
    scaled = _fit(
        data * scale,
        n_components=3,
        covariance_type=covariance_type,
        reg_covar=1e-6 * scale**2,
        **scaled_init,
    )
    assert_finite_model(scaled)
    np.testing.assert_allclose(scaled.means_ / scale, base.means_, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(scaled.covariances_ / scale**2, base.covariances_, rtol=1e-9)
    # Densities scale by scale**-D: the mean log-likelihood shifts by -D log(scale).
    shift = -data.shape[1] * np.log(scale)
    np.testing.assert_allclose(
        np.array(scaled.lower_bounds_) - shift, base.lower_bounds_, rtol=1e-9, atol=1e-9
    )


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag"])
def test_features_whose_scales_differ_by_1e6(data, covariance_type):
    scales = np.array([1e-3, 1.0, 1e3])
    init = _init(data, 3, covariance_type)
    base = _fit(data, n_components=3, covariance_type=covariance_type, reg_covar=1e-20, **init)
    inverse = 1.0 / scales
    precisions = init["precisions_init"]
    if covariance_type in ("full", "tied"):
        precisions = precisions * np.outer(inverse, inverse)  # S^-1 P S^-1
    else:
        precisions = precisions * inverse**2
    scaled = _fit(
        data * scales,
        n_components=3,
        covariance_type=covariance_type,
        reg_covar=1e-20,
        weights_init=init["weights_init"],
        means_init=init["means_init"] * scales,
        precisions_init=precisions,
    )
    assert_finite_model(scaled)
    np.testing.assert_allclose(scaled.means_ / scales, base.means_, rtol=1e-8, atol=1e-8)
    expected = dense_covariances(base) * np.outer(scales, scales)
    np.testing.assert_allclose(
        dense_covariances(scaled) / np.outer(scales, scales),
        expected / np.outer(scales, scales),
        rtol=1e-7,
        atol=1e-9,
    )
    # det(S) = 1e-3 * 1 * 1e3 = 1: the log-likelihood does not move.
    np.testing.assert_allclose(scaled.lower_bounds_, base.lower_bounds_, rtol=1e-8)


# ------------------------------------------------------------------- duplicated, constant
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_duplicated_points_count_like_weights(data, covariance_type):
    init = _init(data, 3, covariance_type)
    base = _fit(data, n_components=3, covariance_type=covariance_type, **init)
    tripled = _fit(
        np.repeat(data, 3, axis=0), n_components=3, covariance_type=covariance_type, **init
    )
    np.testing.assert_allclose(tripled.means_, base.means_, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(tripled.covariances_, base.covariances_, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(tripled.lower_bounds_, base.lower_bounds_, rtol=1e-10)


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag"])
def test_constant_feature_has_the_regularisation_as_variance(data, covariance_type):
    constant = 7.5
    X = np.ascontiguousarray(np.hstack([data, np.full((len(data), 1), constant)]))
    init = _init(data, 3, covariance_type)
    base = _fit(data, n_components=3, covariance_type=covariance_type, **init)
    reg = 1e-6
    precisions = init["precisions_init"]
    if covariance_type in ("full", "tied"):
        p = np.zeros((*precisions.shape[:-2], 4, 4))
        p[..., :3, :3] = precisions
        p[..., 3, 3] = 1.0 / reg
    else:
        p = np.concatenate([precisions, np.full((3, 1), 1.0 / reg)], axis=1)
    means = np.hstack([init["means_init"], np.full((3, 1), constant)])
    gm = _fit(
        X,
        n_components=3,
        covariance_type=covariance_type,
        reg_covar=reg,
        weights_init=init["weights_init"],
        means_init=means,
        precisions_init=p,
    )
    assert_finite_model(gm)
    np.testing.assert_array_equal(gm.means_[:, 3], constant)
    covs = dense_covariances(gm)
    np.testing.assert_allclose(covs[:, 3, 3], reg, rtol=1e-12)
    np.testing.assert_array_equal(covs[:, 3, :3], 0.0)
    # The constant feature adds log N(c | c, reg) to every row and changes nothing else.
    np.testing.assert_allclose(
        gm.lower_bounds_,
        np.array(base.lower_bounds_) - 0.5 * np.log(2 * np.pi * reg),
        rtol=1e-10,
    )


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_all_rows_identical(covariance_type):
    X = np.full((40, 3), -2.25)
    with only_convergence_warnings():
        gm = GaussianMixture(2, covariance_type=covariance_type, random_state=0).fit(X)
    assert_finite_model(gm)
    np.testing.assert_allclose(gm.means_, -2.25, rtol=1e-12)
    np.testing.assert_allclose(
        dense_covariances(gm)[:, np.arange(3), np.arange(3)], 1e-6, rtol=1e-9
    )


# --------------------------------------------------------------------------------- shapes
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_one_feature_one_component_is_the_sample_gaussian(covariance_type):
    X = np.random.default_rng(2).normal(3.0, 2.0, size=(500, 1))
    with only_convergence_warnings():
        gm = GaussianMixture(1, covariance_type=covariance_type).fit(X)
    assert gm.converged_
    np.testing.assert_allclose(gm.means_[0], X.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(dense_covariances(gm)[0, 0, 0], X.var() + 1e-6, rtol=1e-12)
    expected = -0.5 * np.mean(
        np.log(2 * np.pi * (X.var() + 1e-6)) + (X - X.mean()) ** 2 / (X.var() + 1e-6)
    )
    np.testing.assert_allclose(gm.score(X), expected, rtol=1e-12)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_as_many_components_as_rows(covariance_type):
    X = np.random.default_rng(5).normal(scale=10, size=(12, 2))
    with only_convergence_warnings():
        gm = GaussianMixture(12, covariance_type=covariance_type, random_state=0).fit(X)
    assert_finite_model(gm)
    if covariance_type != "tied":
        # One component per row, each with a twelfth of the weight.
        np.testing.assert_allclose(np.sort(gm.weights_), 1 / 12, rtol=1e-6)
        order = np.lexsort(gm.means_.T[::-1])
        np.testing.assert_allclose(gm.means_[order], X[np.lexsort(X.T[::-1])], atol=1e-6)


@pytest.mark.parametrize("covariance_type", ["full", "diag"])
def test_512_features_600_rows(covariance_type):
    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(size=(300, 512)), rng.normal(size=(300, 512)) + 0.5])
    with only_convergence_warnings():
        gm = GaussianMixture(2, covariance_type=covariance_type, random_state=0, max_iter=5).fit(X)
    assert_finite_model(gm)
    # The fitted model's log-likelihood, recomputed with dense inverses and log-determinants.
    mats = dense_covariances(gm)
    _, expected = reference.e_step(X, gm.weights_, gm.means_, mats)
    np.testing.assert_allclose(gm.score(X), expected, rtol=1e-9)
    labels = gm.predict(X)
    assert len(np.unique(labels)) == 2


# ------------------------------------------------------------------------------- float32
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize(
    "scale, offset", [(1.0, 0.0), (1e-3, 0.0), (1e3, 0.0), (1.0, 1e4), (1e-2, 1e3)]
)
def test_float32_variances_are_positive_and_likelihoods_finite(covariance_type, scale, offset):
    X = (blobs(400, 3, 3, seed=7)[0] * scale + offset).astype(np.float32)
    X[:40] = X[0]  # a block of duplicated rows: zero variance in float32 arithmetic
    with only_convergence_warnings():
        gm = GaussianMixture(
            3, covariance_type=covariance_type, random_state=0, reg_covar=1e-6 * scale**2
        ).fit(X)
    assert gm.covariances_.dtype == np.float32
    assert_finite_model(gm)
    if covariance_type in ("full", "tied"):
        mats = gm.covariances_ if covariance_type == "full" else gm.covariances_[None]
        assert np.all(np.diagonal(mats, axis1=1, axis2=2) > 0)
        assert np.all(np.linalg.eigvalsh(mats.astype(np.float64)) > 0)
    else:
        assert np.all(gm.covariances_ > 0)
    assert np.all(gm.precisions_cholesky_ > 0) if covariance_type in ("diag", "spherical") else True
    log_prob = gm.score_samples(X)
    assert np.all(np.isfinite(log_prob))
    resp = gm.predict_proba(X)
    assert np.all(np.isfinite(resp))
    np.testing.assert_allclose(resp.sum(axis=1), 1.0, rtol=1e-12)


# ------------------------------------------------------------------ far points, big values
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_points_1e3_standard_deviations_away(covariance_type, dtype):
    X = blobs(300, 2, 2, seed=1)[0].astype(dtype)
    with only_convergence_warnings():
        gm = GaussianMixture(2, covariance_type=covariance_type, random_state=0).fit(X)
    sd = float(np.sqrt(dense_covariances(gm)[:, [0, 1], [0, 1]].max()))
    centre = gm.means_.astype(np.float64).mean(axis=0)
    far = centre + sd * np.array([[1e3, 0.0], [0.0, -1e3], [7e2, 7e2], [-1e3, 1e3], [1e4, 0.0]])
    far = far.astype(dtype)
    log_prob = gm.score_samples(far)
    resp = gm.predict_proba(far)
    assert np.all(np.isfinite(log_prob)), log_prob
    assert np.all(np.isfinite(resp)) and np.all(resp >= 0)
    np.testing.assert_allclose(resp.sum(axis=1), 1.0, rtol=1e-12)
    # Against the dense reference evaluated in float64 on the same (float32) parameters.
    lp = reference.weighted_log_prob(
        far.astype(np.float64),
        gm.weights_.astype(np.float64),
        gm.means_.astype(np.float64),
        dense_covariances(gm),
    )
    np.testing.assert_allclose(log_prob, logsumexp(lp, axis=1), rtol=1e-6)
    np.testing.assert_array_equal(gm.predict(far), np.argmax(lp, axis=1))


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_fit_with_an_outlier_1e3_standard_deviations_away(covariance_type):
    X = blobs(300, 2, 2, seed=1)[0]
    X = np.vstack([X, [[1e4, -1e4]]])
    with only_convergence_warnings():
        gm = GaussianMixture(2, covariance_type=covariance_type, random_state=0).fit(X)
    assert_finite_model(gm)
    assert np.all(np.isfinite(gm.predict_proba(X)))


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("magnitude", [1e160, 1e200, 1e300])
def test_values_too_large_to_square_fail_clearly(covariance_type, magnitude):
    X = blobs(100, 2, 2, seed=3)[0] * magnitude
    with pytest.raises(ValueError, match="too large") as info:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # numpy's own overflow notes
            GaussianMixture(2, covariance_type=covariance_type, random_state=0).fit(X)
    assert_clean_error(info.value)


# --------------------------------------------------------------- mpmath reference (exact)
def _mp_mean_log_likelihood(X, params):
    """The mean log-likelihood with 40 significant digits, from the exact float64 inputs."""
    mpmath.mp.dps = 40
    n_components, n_features = params.means.shape
    ctype = params.covariance_type
    prec = np.asarray(params.precisions_cholesky, dtype=np.float64)
    factors = []
    for k in range(n_components):
        if ctype == "full":
            u = prec[k]
        elif ctype == "tied":
            u = prec
        elif ctype == "diag":
            u = np.diag(prec[k])
        else:
            u = np.eye(n_features) * prec[k]
        factors.append(mpmath.matrix(u.tolist()))
    log_2pi = mpmath.log(2 * mpmath.pi)
    total = mpmath.mpf(0)
    for x in X:
        terms = []
        for k in range(n_components):
            u = factors[k]
            diff = mpmath.matrix(
                [[mpmath.mpf(float(a)) - mpmath.mpf(float(b)) for a, b in zip(x, params.means[k])]]
            )
            y = diff * u
            sq = mpmath.fsum(v * v for v in y)
            log_det = mpmath.fsum(mpmath.log(u[d, d]) for d in range(n_features))
            terms.append(
                mpmath.log(mpmath.mpf(float(params.weights[k])))
                - n_features / 2 * log_2pi
                + log_det
                - sq / 2
            )
        peak = max(terms)
        total += peak + mpmath.log(mpmath.fsum(mpmath.exp(t - peak) for t in terms))
    return total / len(X)


def _random_params(X, n_components, covariance_type, seed):
    rng = np.random.default_rng(seed)
    n_features = X.shape[1]
    weights = rng.dirichlet(np.ones(n_components))
    means = X[rng.choice(len(X), n_components, replace=False)] + rng.normal(
        scale=0.1, size=(n_components, n_features)
    )

    def factor():
        a = rng.normal(size=(n_features, n_features))
        return np.triu(a, 1) * 0.3 + np.diag(rng.uniform(0.5, 2.0, n_features))

    prec = {
        "full": np.stack([factor() for _ in range(n_components)]),
        "tied": factor(),
        "diag": rng.uniform(0.5, 2.0, size=(n_components, n_features)),
        "spherical": rng.uniform(0.5, 2.0, size=n_components),
    }[covariance_type]
    return MixtureParams(weights, means, None, prec, covariance_type)


@pytest.mark.parametrize("offset", [0.0, 1e4])
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_mean_log_likelihood_agrees_with_mpmath_to_1e_minus_12(covariance_type, offset):
    X = np.ascontiguousarray(blobs(40, 3, 3, seed=11, spread=2.0)[0] + offset)
    params = _random_params(X, 3, covariance_type, seed=12)
    exact = _mp_mean_log_likelihood(X, params)
    model = get_model(covariance_type)
    layout = model.layout(params)
    means = np.ascontiguousarray(params.means)
    fused = chunk_statistics(X, np.empty(0), layout, means, model.statistics)
    per_row, _, _ = score_chunk(X, layout)
    for value in (fused.mean_log_likelihood, float(mpmath.fsum(per_row.tolist()) / len(X))):
        relative = abs((mpmath.mpf(value) - exact) / exact)
        assert relative < 1e-12, (value, float(exact), float(relative))


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_float32_parameters_beyond_float32_range_are_refused(covariance_type):
    # Variances ~1e-40 with reg_covar=0: the precisions (~1e40) do not fit in float32. Storing
    # them would put inf in precisions_; the fit must say so instead.
    X = (blobs(300, 3, 2, seed=0)[0] * 1e-20).astype(np.float32)
    with pytest.raises(ValueError, match="cannot be represented in float32") as info:
        with only_convergence_warnings():
            GaussianMixture(2, covariance_type=covariance_type, reg_covar=0, random_state=0).fit(X)
    assert_clean_error(info.value)
    # The same data in float64 fit, with finite parameters.
    with only_convergence_warnings():
        gm = GaussianMixture(2, covariance_type=covariance_type, reg_covar=0, random_state=0).fit(
            X.astype(np.float64)
        )
    assert_finite_model(gm)
