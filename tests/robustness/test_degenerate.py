"""The ``on_degenerate`` policy: 'raise' (scikit-learn), 'reinit' and 'reg'."""

import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from robust_helpers import (
    COVARIANCE_TYPES,
    assert_clean_error,
    assert_finite_model,
    dense_covariances,
    reference,
)
from scipy.special import logsumexp
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture as SkGaussianMixture

from fastgmm import GaussianMixture
from fastgmm.covariance import get_model
from fastgmm.degenerate import DegenerateComponentWarning, DegenerateHandler
from fastgmm.em import MaximumLikelihood
from fastgmm.providers import ArrayChunks
from fastgmm.sources import open_source
from fastgmm.stats import DIAG, FULL, POOLED, MixtureParams, SufficientStats


def _two_blobs_and_far_cluster(seed=0):
    """Two unit blobs and, last, a small far cluster that the initial components do not see."""
    rng = np.random.default_rng(seed)
    X = np.vstack(
        [
            rng.normal(size=(150, 2)),
            rng.normal(size=(150, 2)) + np.array([8.0, 8.0]),
            rng.normal(scale=0.3, size=(12, 2)) + np.array([20.0, -20.0]),
        ]
    )
    init = {
        "weights_init": np.array([0.4, 0.4, 0.2]),
        "means_init": np.array([[0.0, 0.0], [8.0, 8.0], [1e4, 1e4]]),  # component 2: empty
        "precisions_init": np.repeat(np.eye(2)[None], 3, axis=0),
    }
    return X, init


def _worst_rows_under(X, init, sample_weight=None):
    """Rows ordered from worst to best explained by the initial parameters (plain NumPy)."""
    covs = np.linalg.inv(init["precisions_init"])
    lse = logsumexp(
        reference.weighted_log_prob(X, init["weights_init"], init["means_init"], covs), 1
    )
    if sample_weight is not None:
        lse = np.where(sample_weight > 0, lse, np.inf)
    return np.argsort(lse, kind="stable")


def _steps_without_events(gm):
    """The indices ``j`` of ``gm.lower_bounds_`` whose step from ``j - 1`` must not fall.

    ``lower_bounds_[j]`` is iteration ``j + 1``, scored with the parameters of M-step ``j``.
    Steps right after an event's M-step are left out, and so is everything after the first
    'reg' event: the component keeps its larger regularisation, and a regularised M-step no
    longer maximises the likelihood.
    """
    event_iterations = {e["iteration"] for e in gm.degenerate_events_}
    first_reg = min(
        (e["iteration"] for e in gm.degenerate_events_ if e["action"] == "reg"), default=None
    )
    return [
        j
        for j in range(1, len(gm.lower_bounds_))
        if j not in event_iterations and (first_reg is None or j < first_reg)
    ]


def _assert_monotone_except_at_events(gm, rtol=1e-9):
    """Each lower bound is >= the previous one, except where ``_steps_without_events`` says."""
    bounds = gm.lower_bounds_
    for j in _steps_without_events(gm):
        slack = rtol * (1.0 + abs(bounds[j - 1]))
        assert bounds[j] >= bounds[j - 1] - slack, (j, bounds, gm.degenerate_events_)


def _fit(X, **params):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # includes the degenerate warning
        return GaussianMixture(**params).fit(X)


# --------------------------------------------------------------------------------- raise
def test_raise_is_sklearns_behaviour_and_message():
    rng = np.random.default_rng(0)
    X = np.vstack([np.repeat([[1.0, 2.0]], 50, axis=0), rng.normal(size=(200, 2)) + 5])
    with pytest.raises(ValueError) as ours:
        GaussianMixture(2, reg_covar=0, random_state=0).fit(X)
    with pytest.raises(ValueError) as theirs:
        SkGaussianMixture(2, reg_covar=0, random_state=0).fit(X)
    assert str(ours.value) == str(theirs.value)
    assert "ill-defined empirical covariance" in str(ours.value)


def test_raise_keeps_empty_components_and_records_nothing():
    X, init = _two_blobs_and_far_cluster()
    gm = _fit(X, n_components=3, **init)
    assert gm.degenerate_events_ == []
    assert gm.weights_[2] < 1e-10  # the empty component stays empty, as in scikit-learn


def test_invalid_policy_is_named():
    X, _ = _two_blobs_and_far_cluster()
    with pytest.raises(ValueError, match="on_degenerate"):
        GaussianMixture(2, on_degenerate="drop").fit(X)
    with pytest.raises(ValueError, match="on_degenerate"):
        GaussianMixture(2, on_degenerate=None).fit(X)


# -------------------------------------------------------------------------------- reinit
def test_reinit_moves_an_empty_component_to_the_worst_row():
    X, init = _two_blobs_and_far_cluster()
    expected_row = int(_worst_rows_under(X, init)[0])
    assert expected_row >= 300  # a row of the far cluster
    with pytest.warns(DegenerateComponentWarning, match="component 2 \\(empty\\)"):
        gm = GaussianMixture(3, on_degenerate="reinit", **init).fit(X)
    assert gm.degenerate_events_ == [
        {"iteration": 1, "component": 2, "action": "reinit", "reason": "empty", "row": expected_row}
    ]
    assert gm.converged_
    assert_finite_model(gm)
    # The moved component now describes the far cluster: 12 of 312 rows, near (20, -20).
    np.testing.assert_allclose(gm.means_[2], [20.0, -20.0], atol=0.5)
    np.testing.assert_allclose(gm.weights_[2], 12 / 312, rtol=1e-3)
    _assert_monotone_except_at_events(gm)
    assert gm.lower_bounds_[-1] > _fit(X, n_components=3, **init).lower_bounds_[-1]


def test_reinit_finds_the_worst_row_across_chunks_of_a_stream():
    X, init = _two_blobs_and_far_cluster()
    in_memory = _fit(X, n_components=3, on_degenerate="reinit", **init)
    # 37-row chunks put the far cluster's rows in the last chunks and split it.
    streamed = _fit(open_source(X, batch_size=37), n_components=3, on_degenerate="reinit", **init)
    assert streamed.degenerate_events_ == in_memory.degenerate_events_
    np.testing.assert_allclose(streamed.means_, in_memory.means_, rtol=1e-10)
    np.testing.assert_allclose(streamed.lower_bounds_, in_memory.lower_bounds_, rtol=1e-12)


def test_reinit_skips_rows_of_zero_weight():
    X, init = _two_blobs_and_far_cluster()
    weights = np.ones(len(X))
    worst = _worst_rows_under(X, init)
    weights[worst[0]] = 0.0
    gm = _fit(X, n_components=3, on_degenerate="reinit", **init)
    assert gm.degenerate_events_[0]["row"] == worst[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        weighted = GaussianMixture(3, on_degenerate="reinit", **init).fit(X, sample_weight=weights)
    assert weighted.degenerate_events_[0]["row"] == _worst_rows_under(X, init, weights)[0]
    assert weighted.degenerate_events_[0]["row"] == worst[1]


def test_reinit_gives_several_empty_components_distinct_rows():
    X, init = _two_blobs_and_far_cluster()
    init = {
        "weights_init": np.array([0.4, 0.4, 0.1, 0.1]),
        "means_init": np.array([[0.0, 0.0], [8.0, 8.0], [1e4, 1e4], [-1e4, 1e4]]),
        "precisions_init": np.repeat(np.eye(2)[None], 4, axis=0),
    }
    gm = _fit(X, n_components=4, on_degenerate="reinit", **init)
    first = [e for e in gm.degenerate_events_ if e["iteration"] == 1]
    assert [e["component"] for e in first] == [2, 3]
    assert [e["row"] for e in first] == list(_worst_rows_under(X, init)[:2])
    assert_finite_model(gm)
    _assert_monotone_except_at_events(gm)


@pytest.mark.parametrize("covariance_type", ["full", "diag", "spherical"])
def test_reinit_repairs_a_collapsed_component(covariance_type):
    # Component 2 starts as a needle on a lone row with reg_covar=0: no other row has any
    # responsibility for it, its covariance collapses to 0, and it is moved to the
    # worst-explained row. The lone row then joins the nearest blob.
    X, _ = _two_blobs_and_far_cluster()
    X = np.vstack([X[:300], [[4.0, -4.0]]])
    needle = 1e6
    gm = _fit(
        X,
        n_components=3,
        covariance_type=covariance_type,
        reg_covar=0.0,
        on_degenerate="reinit",
        means_init=[[0.0, 0.0], [8.0, 8.0], [4.0, -4.0]],
        weights_init=[0.45, 0.45, 0.1],
        precisions_init={
            "full": np.array([np.eye(2), np.eye(2), needle * np.eye(2)]),
            "diag": np.array([[1.0, 1.0], [1.0, 1.0], [needle, needle]]),
            "spherical": np.array([1.0, 1.0, needle]),
        }[covariance_type],
    )
    first = gm.degenerate_events_[0]
    assert (first["iteration"], first["component"], first["action"], first["reason"]) == (
        1,
        2,
        "reinit",
        "cholesky",
    )
    assert first["row"] < 300  # a row of the blobs, not the lone row
    assert_finite_model(gm)
    assert gm.converged_
    _assert_monotone_except_at_events(gm)


def test_reinit_that_keeps_collapsing_fails_clearly():
    # A point mass with reg_covar=0 has no maximum-likelihood fit: moving the component away
    # only makes it collapse on the point mass again.
    rng = np.random.default_rng(0)
    X = np.vstack([np.repeat([[1.0, 2.0]], 50, axis=0), rng.normal(size=(200, 2)) + 5])
    with pytest.raises(ValueError, match="on_degenerate='reg'") as info:
        _fit(
            X,
            n_components=2,
            covariance_type="diag",
            reg_covar=0,
            on_degenerate="reinit",
            random_state=0,
        )
    assert_clean_error(info.value)
    assert "reinitialising them does not help" in str(info.value)


def test_reinit_cannot_repair_a_tied_covariance_and_says_so():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(100, 3))
    X[:, 1] = 4.0  # a constant feature: the shared covariance is singular with reg_covar=0
    with pytest.raises(ValueError, match=r"tied.*on_degenerate='reg'") as info:
        _fit(
            X,
            n_components=2,
            covariance_type="tied",
            reg_covar=0,
            on_degenerate="reinit",
            random_state=0,
        )
    assert str(info.value).startswith("Fitting the mixture model failed")
    gm = _fit(
        X, n_components=2, covariance_type="tied", reg_covar=0, on_degenerate="reg", random_state=0
    )
    assert_finite_model(gm)
    assert {e["component"] for e in gm.degenerate_events_} == {None}


# ----------------------------------------------------------------------------------- reg
def _stats(nk, shift, s1, s2, kind=FULL):
    nk = np.asarray(nk, float)
    return SufficientStats(
        nk,
        np.asarray(s1, float),
        np.asarray(s2, float),
        kind,
        np.asarray(shift, float),
        -1.0,
        float(nk.sum()),
        10,
    )


def _unit_params(n_components, n_features, covariance_type):
    prec = {
        "full": np.repeat(np.eye(n_features)[None], n_components, axis=0),
        "tied": np.eye(n_features),
        "diag": np.ones((n_components, n_features)),
        "spherical": np.ones(n_components),
    }[covariance_type]
    return MixtureParams(
        np.full(n_components, 1 / n_components),
        np.zeros((n_components, n_features)),
        None,
        prec,
        covariance_type,
    )


def _handler(covariance_type, reg_covar):
    fitter = MaximumLikelihood(get_model(covariance_type), reg_covar=reg_covar)
    return DegenerateHandler("reg", fitter)


def test_reg_steps_tenfold_from_reg_covar_until_cholesky_succeeds():
    # Component 0's scatter [[1, 3], [3, 1]] has eigenvalues 4 and -2: it needs more than 2 on
    # its diagonal. From reg_covar = 1e-6 the steps are 1e-5, ..., 1, 10: 10 is the first.
    s2 = np.array([[[1.0, 3.0], [0.0, 1.0]], [[1.0, 0.0], [0.0, 1.0]]])
    stats = _stats([1.0, 1.0], np.zeros((2, 2)), np.zeros((2, 2)), s2)
    handler = _handler("full", 1e-6)
    with pytest.warns(DegenerateComponentWarning, match="component 0 \\(cholesky\\)"):
        params, changed = handler.m_step(stats, _unit_params(2, 2, "full"), 7)
    assert changed
    [event] = handler.events
    assert event["iteration"] == 7 and event["component"] == 0 and event["action"] == "reg"
    np.testing.assert_allclose(event["reg_covar"], 10.0, rtol=1e-12)
    scatter = np.array([[1.0, 3.0], [3.0, 1.0]]) / (1 + 10 * np.finfo(float).eps)
    np.testing.assert_allclose(params.covariances[0], scatter + 10.0 * np.eye(2), rtol=1e-12)
    assert np.linalg.eigvalsh(scatter + 1.0 * np.eye(2)).min() < 0  # the step before fails
    np.testing.assert_allclose(params.covariances[1], np.eye(2) * (1 + 1e-6), rtol=1e-12)

    # The raised value stays: the next M-step needs no new event for the same statistics.
    params, changed = handler.m_step(stats, _unit_params(2, 2, "full"), 8)
    assert not changed and len(handler.events) == 1
    np.testing.assert_allclose(params.covariances[0], scatter + 10.0 * np.eye(2), rtol=1e-12)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_reg_starts_from_a_millionth_of_the_mean_variance_when_reg_covar_is_zero(covariance_type):
    # Two components on exact duplicates of two rows: zero variance, pooled variance 4.5/2.
    X = np.repeat([[1.0, 5.0], [4.0, 2.0]], 5, axis=0)
    shift = np.array([[1.0, 5.0], [4.0, 2.0]])
    kind = get_model(covariance_type).statistics
    s2 = {FULL: (2, 2, 2), DIAG: (2, 1, 2), POOLED: (1, 2, 2)}[kind]
    stats = _stats([5.0, 5.0], shift, np.zeros((2, 2)), np.zeros(s2), kind)
    params = _unit_params(2, 2, covariance_type)
    handler = _handler(covariance_type, 0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DegenerateComponentWarning)
        params, changed = handler.m_step(stats, params, 1, ArrayChunks(X))
    assert changed
    expected = 1e-6 * np.var(X, axis=0).mean()
    components = [None] if covariance_type == "tied" else [0, 1]
    assert [e["component"] for e in handler.events] == components
    for event in handler.events:
        np.testing.assert_allclose(event["reg_covar"], expected, rtol=1e-12)
    if covariance_type == "tied":
        # The tied covariance also holds the spread of the means (none: zero offsets here).
        np.testing.assert_allclose(params.covariances, expected * np.eye(2), rtol=1e-9)


def test_reg_rescues_a_fit_that_raise_refuses():
    # Rows on a line at scale 1e8: the 1e-6 of reg_covar vanishes in the rounding of 1e16.
    rng = np.random.default_rng(0)
    t = rng.normal(size=(200, 1))
    X = np.hstack([t, 2 * t, -t]) * 1e8 + rng.normal(size=(200, 1)) * [0.0, 0.0, 0.0]
    with pytest.raises(ValueError, match="ill-defined empirical covariance"):
        GaussianMixture(1, random_state=0).fit(X)
    gm = _fit(X, n_components=1, on_degenerate="reg", random_state=0)
    assert_finite_model(gm)
    assert gm.degenerate_events_, "the collapse was not recorded"
    for event in gm.degenerate_events_:
        steps = np.log10(event["reg_covar"] / 1e-6)
        assert steps >= 1 and abs(steps - round(steps)) < 1e-9, event
    # The mean is still the data's mean and the covariance still its direction.
    np.testing.assert_allclose(gm.means_[0], X.mean(axis=0), rtol=1e-9, atol=1e-3)
    direction = np.linalg.eigh(gm.covariances_[0])[1][:, -1]
    np.testing.assert_allclose(abs(direction), np.array([1, 2, 1]) / np.sqrt(6), rtol=1e-6)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_reg_with_zero_reg_covar_on_duplicates(covariance_type):
    rng = np.random.default_rng(0)
    X = np.vstack([np.repeat([[1.0, 2.0]], 50, axis=0), rng.normal(size=(200, 2)) + 5])
    gm = _fit(
        X,
        n_components=2,
        covariance_type=covariance_type,
        reg_covar=0,
        on_degenerate="reg",
        random_state=0,
    )
    assert_finite_model(gm)
    assert gm.converged_
    # The point mass is kept as a tight component (diag/full/spherical) instead of failing.
    if covariance_type != "tied":
        k = int(np.argmin(np.abs(gm.means_ - [1.0, 2.0]).sum(axis=1)))
        np.testing.assert_allclose(gm.weights_[k], 0.2, rtol=1e-6)
    _assert_monotone_except_at_events(gm)
    # Each component is regularised once, or again only if its statistics changed.
    assert len(gm.degenerate_events_) <= 4


def test_reinit_and_reg_are_deterministic():
    X, _ = _two_blobs_and_far_cluster()
    for policy in ("reinit", "reg"):
        a = _fit(X, n_components=3, on_degenerate=policy, reg_covar=0.0, random_state=5)
        b = _fit(X, n_components=3, on_degenerate=policy, reg_covar=0.0, random_state=5, n_jobs=1)
        assert a.degenerate_events_ == b.degenerate_events_
        np.testing.assert_array_equal(a.means_, b.means_)
        np.testing.assert_array_equal(a.covariances_, b.covariances_)


# --------------------------------------------------------- lower bound monotone (property)
@st.composite
def degenerate_problems(draw):
    n_features = draw(st.integers(1, 3))
    n_components = draw(st.integers(2, 4))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    n_blob = draw(st.integers(30, 120))
    parts = [
        rng.normal(size=(n_blob, n_features)) + rng.normal(scale=6, size=n_features)
        for _ in range(draw(st.integers(1, 3)))
    ]
    if draw(st.booleans()):  # a point mass
        parts.append(
            np.repeat(rng.normal(scale=6, size=(1, n_features)), draw(st.integers(2, 20)), 0)
        )
    if draw(st.booleans()):  # a far outlier
        parts.append(rng.normal(scale=50, size=(1, n_features)))
    X = np.ascontiguousarray(rng.permutation(np.vstack(parts)))
    means = X[rng.choice(len(X), n_components, replace=False)]
    if draw(st.booleans()):  # a component placed where no data are: empty at once
        means[-1] = 1e5
    params = {
        "n_components": n_components,
        "covariance_type": draw(st.sampled_from(COVARIANCE_TYPES)),
        "reg_covar": draw(st.sampled_from([0.0, 1e-6])),
        "on_degenerate": draw(st.sampled_from(["reinit", "reg"])),
        "means_init": means,
        "random_state": seed,
        "max_iter": 60,
        "tol": 1e-8,
    }
    return X, params


def _regularisation_allowance(gm, reg_covar):
    """How far one regularised M-step may lower the mean log-likelihood (the EM bound).

    The M-step's covariance ``S + reg_covar I`` is not the maximiser ``S`` of the expected
    complete log-likelihood; per component it gives up ``N_k / 2 * sum_i [log(1 + r / s_i) -
    r / (s_i + r)]`` (``s_i`` the eigenvalues of ``S``, ``r = reg_covar``), and the likelihood
    may fall by that much divided by N. ``gm`` holds the parameters of that M-step.
    """
    if reg_covar == 0.0:
        return 0.0
    covariances = dense_covariances(gm)
    weights = np.asarray(gm.weights_, dtype=np.float64)
    if gm.covariance_type == "tied":
        covariances, weights = covariances[:1], np.ones(1)
    eigenvalues = np.linalg.eigvalsh(covariances) - reg_covar
    if np.any(eigenvalues <= 0):
        return np.inf
    per_component = np.sum(
        np.log1p(reg_covar / eigenvalues) - reg_covar / (eigenvalues + reg_covar), axis=1
    )
    return float(0.5 * weights @ per_component)


def _worst_condition(gm):
    """The largest condition number among the fitted covariances (inf when singular)."""
    eigenvalues = np.linalg.eigvalsh(dense_covariances(gm))
    with np.errstate(divide="ignore"):
        return float(np.max(eigenvalues[:, -1] / np.maximum(eigenvalues[:, 0], 0.0)))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(degenerate_problems())
def test_lower_bound_is_monotone_except_at_degenerate_events(problem):
    X, params = problem
    try:
        gm = _fit(X, **params)
    except ValueError as exc:  # only the documented refusals of 'reinit'
        assert_clean_error(exc)
        assert params["on_degenerate"] == "reinit", exc
        assert "on_degenerate='reg'" in str(exc)
        return
    assert_finite_model(gm)
    bounds = gm.lower_bounds_
    for j in _steps_without_events(gm):
        drop = bounds[j - 1] - bounds[j]
        if drop <= 1e-7 * (1.0 + abs(bounds[j - 1])):
            continue
        # A fall must have a cause. bounds[j] is scored with the parameters of M-step j, which
        # the same fit stopped after j iterations reproduces.
        scored_by = _fit(X, **{**params, "max_iter": j, "tol": 0})
        allowance = _regularisation_allowance(scored_by, params["reg_covar"])
        # A covariance singular at working precision (a component on D rows or fewer, just
        # before its 'cholesky' event) leaves its log-densities with no correct digits.
        singular = _worst_condition(scored_by) > 1e10
        assert singular or drop <= allowance * (1 + 1e-6) + 1e-12 * (1.0 + abs(bounds[j - 1])), (
            j,
            drop,
            allowance,
            bounds,
            gm.degenerate_events_,
        )
    for event in gm.degenerate_events_:
        assert 0 <= event["iteration"] <= gm.n_iter_
        assert event["action"] in (params["on_degenerate"], "reg")
        assert event["component"] is None or 0 <= event["component"] < params["n_components"]
