"""Model selection: select_model and GaussianMixtureIC.

Oracles: standalone fastgmm.GaussianMixture fits (each candidate must equal one), sklearn's
GaussianMixture for the parameter count, and mixtures with a known true (K, covariance type).
"""

import sys
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture as SkGaussianMixture
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from fastgmm import GaussianMixture, GaussianMixtureIC, select_model
from fastgmm._names import SKLEARN_COVARIANCE_TYPES as COVARIANCE_TYPES
from fastgmm.sources import open_source

RECORD_KEYS = {
    "n_components",
    "covariance_type",
    "bic",
    "aic",
    "icl",
    "log_likelihood",
    "n_parameters",
    "converged",
    "n_iter",
    "fit_seconds",
    "error",
}


def three_blobs(n=300, seed=0):
    rng = np.random.default_rng(seed)
    sizes = [n // 3, n // 3, n - 2 * (n // 3)]
    centres = np.array([[0.0, 0.0], [6.0, 1.0], [1.0, 7.0]])
    X = np.vstack([rng.normal(c, s, (m, 2)) for c, s, m in zip(centres, (1.0, 0.7, 1.3), sizes)])
    return X


def rotation(theta):
    c, s = np.cos(theta), np.sin(theta)
    return np.array([[c, -s], [s, c]])


def true_mixture(covariance_type, seed, n=600):
    """Four well-separated 2-D components whose covariance type is identifiable by BIC."""
    rng = np.random.default_rng(seed)
    means = np.array([[0.0, 0.0], [14.0, 0.0], [0.0, 14.0], [14.0, 14.0]])
    if covariance_type == "full":  # strongly correlated, each with its own orientation
        covs = [rotation(a) @ np.diag([4.0, 0.15]) @ rotation(a).T for a in (0.4, 1.2, 2.0, 2.8)]
    elif covariance_type == "tied":  # one shared, correlated covariance
        covs = [np.array([[2.0, 1.6], [1.6, 2.0]])] * 4
    elif covariance_type == "diag":  # axis-aligned, unequal variances differing per component
        covs = [np.diag(v) for v in ([4.0, 0.2], [0.2, 4.0], [2.5, 0.5], [0.4, 3.0])]
    else:  # isotropic with different scales
        covs = [np.eye(2) * v for v in (0.3, 1.0, 2.0, 3.5)]
    counts = rng.multinomial(n, [0.25] * 4)
    parts = [rng.multivariate_normal(m, c, size=k) for m, c, k in zip(means, covs, counts)]
    return np.vstack(parts)


def duplicated_points():
    """Four distinct points in two pairs, each repeated.

    With reg_covar=0, K=1 fits any type; K=2 puts one pair in each component, which a spherical
    covariance fits but a full one cannot (two points span a line); K=3 leaves a component on a
    single point, which no type fits.
    """
    points = np.array([[0.0, 0.0], [0.0, 1.0], [10.0, 0.0], [10.0, 1.0]])
    return np.repeat(points, 20, axis=0)


# ------------------------------------------------------------------ equality with standalone
@pytest.mark.parametrize(
    ("init_params", "n_init", "dtype"),
    [
        ("kmeans", 1, np.float64),
        ("kmeans", 2, np.float64),
        ("kmeans", 1, np.float32),
        ("k-means++", 1, np.float64),
        ("random", 1, np.float64),
        ("random_from_data", 1, np.float64),
    ],
)
def test_each_candidate_equals_its_standalone_fit(init_params, n_init, dtype):
    X = three_blobs().astype(dtype)
    grid = (1, 2, 3)
    result = select_model(
        X,
        n_components=grid,
        n_init=n_init,
        random_state=7,
        init_params=init_params,
        max_iter=30,
        n_jobs=1,
    )
    assert [(r["n_components"], r["covariance_type"]) for r in result.results_] == [
        (k, t) for k in grid for t in COVARIANCE_TYPES
    ]
    for record in result.results_:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            gm = GaussianMixture(
                record["n_components"],
                covariance_type=record["covariance_type"],
                n_init=n_init,
                random_state=7,
                init_params=init_params,
                max_iter=30,
                n_jobs=1,
            ).fit(X)
        assert record["error"] is None
        assert record["n_iter"] == gm.n_iter_
        assert record["converged"] == gm.converged_
        assert record["bic"] == gm.bic(X)
        assert record["aic"] == gm.aic(X)
        # score() returns X's dtype (as scikit-learn): float32 rounds the mean once.
        rel = 1e-14 if dtype == np.float64 else float(np.finfo(np.float32).eps)
        assert record["log_likelihood"] == pytest.approx(gm.score(X) * len(X), rel=rel)
        assert record["n_parameters"] == gm._n_parameters()
    best = result.best_estimator_
    ref = GaussianMixture(
        result.n_components_,
        covariance_type=result.covariance_type_,
        n_init=n_init,
        random_state=7,
        init_params=init_params,
        max_iter=30,
        n_jobs=1,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ref.fit(X)
    for name in ("weights_", "means_", "covariances_", "precisions_cholesky_"):
        np.testing.assert_array_equal(getattr(best, name), getattr(ref, name))
        assert getattr(best, name).dtype == dtype
    assert best.lower_bound_ == ref.lower_bound_
    assert best.lower_bounds_ == ref.lower_bounds_
    assert best.degenerate_events_ == ref.degenerate_events_ == []
    np.testing.assert_array_equal(best.predict(X), ref.predict(X))


def test_best_minimises_the_criterion_and_bic_is_lower_is_better():
    X = three_blobs()
    for criterion in ("bic", "aic"):
        result = select_model(
            X, n_components=range(1, 6), criterion=criterion, random_state=0, n_jobs=1
        )
        values = [r[criterion] for r in result.results_]
        assert result.best_index_ == int(np.argmin(values))
        best = result.results_[result.best_index_]
        assert (result.n_components_, result.covariance_type_) == (
            best["n_components"],
            best["covariance_type"],
        )
        assert result.best_estimator_.n_components == best["n_components"]
        assert result.best_estimator_.covariance_type == best["covariance_type"]
        n = len(X)
        # The definitions, with the sign of scikit-learn (lower is better).
        for r in result.results_:
            assert r["bic"] == pytest.approx(
                -2 * r["log_likelihood"] + r["n_parameters"] * np.log(n), rel=1e-12
            )
            assert r["aic"] == pytest.approx(-2 * r["log_likelihood"] + 2 * r["n_parameters"])
    assert result.criterion == "aic"


def test_parameter_count_matches_sklearn():
    X = three_blobs(n=90)
    result = select_model(X, n_components=(1, 3), random_state=0, n_jobs=1, max_iter=5)
    for record in result.results_:
        sk = SkGaussianMixture(
            record["n_components"], covariance_type=record["covariance_type"], max_iter=1
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            sk.fit(X)
        assert record["n_parameters"] == sk._n_parameters()


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_bic_recovers_the_true_model(covariance_type):
    hits = []
    for seed in range(10):
        X = true_mixture(covariance_type, seed)
        result = select_model(X, n_components=range(1, 7), random_state=seed, n_jobs=1)
        hits.append((result.n_components_, result.covariance_type_) == (4, covariance_type))
    assert sum(hits) >= 9, hits


# ------------------------------------------------------------------------- shared passes
def test_one_read_per_iteration_for_the_whole_grid(tmp_path):
    X = three_blobs(n=600)
    reads = []

    def chunks():  # a stream of unknown length, read in chunks of 128 rows
        reads.append(1)
        for start in range(0, len(X), 128):
            yield X[start : start + 128]

    result = select_model(chunks, n_components=(1, 2, 3, 4), random_state=3, n_jobs=1)
    n_iter = [r["n_iter"] for r in result.results_]
    assert all(r["error"] is None for r in result.results_)
    # EM passes: one hard-assignment pass, then one per iteration of the longest run, then the
    # final scoring pass; all 16 candidates share each of them.
    assert result.n_passes == 1 + max(n_iter) + 1
    # Reads of the stream: opening it, counting its rows, one k-means sample (shared by every
    # K, same seed) and the EM passes. A loop of fits would need sum(n_iter) + ... reads.
    assert len(reads) == 3 + result.n_passes
    assert sum(n_iter) > 3 * max(n_iter)


def test_a_source_gives_the_array_result(tmp_path):
    X = three_blobs(n=500)
    path = tmp_path / "X.npy"
    np.save(path, X)
    from_array = select_model(X, n_components=(1, 2, 3, 4), random_state=1, n_jobs=1)
    for source in (str(path), open_source(X, batch_size=96)):
        streamed = select_model(source, n_components=(1, 2, 3, 4), random_state=1, n_jobs=1)
        assert (streamed.n_components_, streamed.covariance_type_) == (
            from_array.n_components_,
            from_array.covariance_type_,
        )
        for a, b in zip(from_array.results_, streamed.results_):
            # Same initialisation (the k-means sample does not depend on the chunking); only
            # the order of the sums differs.
            assert a["n_iter"] == b["n_iter"]
            assert a["bic"] == pytest.approx(b["bic"], rel=1e-9)
        np.testing.assert_allclose(
            streamed.best_estimator_.means_, from_array.best_estimator_.means_, rtol=1e-9
        )


# ------------------------------------------------------------------ failures and warnings
def test_failed_candidate_is_recorded_with_its_error():
    X = duplicated_points()
    result = select_model(
        X,
        n_components=(1, 2, 3),
        covariance_types=("full", "spherical"),
        reg_covar=0.0,
        random_state=0,
        n_jobs=1,
    )
    by_key = {(r["n_components"], r["covariance_type"]): r for r in result.results_}
    assert len(by_key) == 6
    for key in [(2, "full"), (3, "full"), (3, "spherical")]:
        record = by_key[key]
        # The typed error (a ValueError) that a standalone fit raises.
        assert record["error"].startswith("IllDefinedCovarianceError: ")
        assert "ill-defined empirical covariance" in record["error"]
        assert np.isnan(record["bic"]) and np.isnan(record["aic"])
        assert record["converged"] is False
    for key in [(1, "full"), (1, "spherical"), (2, "spherical")]:
        assert by_key[key]["error"] is None
        assert np.isfinite(by_key[key]["bic"])
    assert result.results_[result.best_index_]["error"] is None


def test_error_when_every_candidate_fails_names_each():
    X = duplicated_points()
    with pytest.raises(ValueError, match="All 2 candidate models failed") as info:
        select_model(
            X,
            n_components=3,
            covariance_types=("full", "diag"),
            reg_covar=0.0,
            random_state=0,
            n_jobs=1,
        )
    message = str(info.value)
    for ctype in ("full", "diag"):
        expected = f"n_components=3, covariance_type='{ctype}': IllDefinedCovarianceError: Fitting"
        assert expected in message


def test_non_convergence_is_recorded_and_warned_once():
    X = three_blobs()
    with pytest.warns(ConvergenceWarning) as caught:
        result = select_model(X, n_components=(2, 3), random_state=0, max_iter=1, n_jobs=1)
    convergence = [w for w in caught if issubclass(w.category, ConvergenceWarning)]
    assert len(convergence) == 1
    assert "selected model" in str(convergence[0].message)
    assert [r["converged"] for r in result.results_] == [False] * 8
    assert [r["n_iter"] for r in result.results_] == [1] * 8
    assert result.best_estimator_.converged_ is False


# ----------------------------------------------------------------------------- bad input
def test_empty_n_components():
    with pytest.raises(ValueError, match="n_components is empty"):
        select_model(three_blobs(), n_components=[])


def test_empty_covariance_types():
    with pytest.raises(ValueError, match="covariance_types is empty"):
        select_model(three_blobs(), covariance_types=())


def test_n_components_above_n_samples():
    with pytest.raises(
        ValueError, match=r"must not exceed n_samples=5, .* include \[6, 7\]; drop them"
    ):
        select_model(three_blobs()[:5], n_components=range(1, 8))


def test_unknown_covariance_type():
    with pytest.raises(ValueError, match=r"Unknown covariance type\(s\) 'bogus'; choose from"):
        select_model(three_blobs(), covariance_types=("full", "bogus"))


def test_unknown_criterion():
    with pytest.raises(ValueError, match="Unknown criterion 'mdl'; choose 'bic', 'aic' or 'icl'"):
        select_model(three_blobs(), criterion="mdl")


def test_invalid_n_components_values():
    with pytest.raises(ValueError, match=r"integers >= 1; got \[0\]"):
        select_model(three_blobs(), n_components=[0, 1])
    with pytest.raises(ValueError, match=r"integers >= 1; got \[2.5\]"):
        select_model(three_blobs(), n_components=[1, 2.5])


def test_unsupported_and_unknown_options():
    with pytest.raises(TypeError, match=r"does not accept means_init .*depend on n_components"):
        select_model(three_blobs(), means_init=np.zeros((2, 2)))
    with pytest.raises(TypeError, match=r"unexpected keyword argument.*'colour'.*tol, reg_covar"):
        select_model(three_blobs(), colour="red")
    with pytest.raises(ValueError, match="n_init must be an integer >= 1, got 0"):
        select_model(three_blobs(), n_init=0)
    with pytest.raises(ValueError, match="Unknown init_params 'spectral'"):
        select_model(three_blobs(), init_params="spectral")


def test_bad_rows_are_reported():
    X = three_blobs()
    X[5, 1] = np.nan
    with pytest.raises(ValueError, match="contains NaN or infinity"):
        select_model(X, n_components=(1, 2))


# --------------------------------------------------------------------- results and plots
def test_results_make_a_dataframe():
    pd = pytest.importorskip("pandas")
    result = select_model(three_blobs(), n_components=(1, 2), random_state=0, n_jobs=1)
    assert all(set(r) == RECORD_KEYS for r in result.results_)
    frame = pd.DataFrame(result.results_)
    assert frame.shape == (8, len(RECORD_KEYS))
    assert frame["bic"].idxmin() == result.best_index_
    assert (frame["fit_seconds"] > 0).all()


def test_feature_names_reach_the_best_estimator():
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(three_blobs(), columns=["a", "b"])
    result = select_model(frame, n_components=(1, 2), random_state=0, n_jobs=1)
    assert list(result.best_estimator_.feature_names_in_) == ["a", "b"]
    result.best_estimator_.predict(frame)  # no feature-name warning (warnings are errors)


def test_plot_draws_one_curve_per_type():
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    X = duplicated_points()
    result = select_model(
        X,
        n_components=(1, 2, 3),
        covariance_types=("full", "spherical"),
        reg_covar=0.0,
        random_state=0,
        n_jobs=1,
    )
    ax = result.plot()
    lines = ax.get_lines()
    assert [line.get_label() for line in lines[:2]] == ["full", "spherical"]
    table = result.criterion_table()
    for j, line in enumerate(lines[:2]):
        np.testing.assert_array_equal(line.get_xdata(), [1, 2, 3])
        np.testing.assert_array_equal(line.get_ydata(), table[:, j])  # NaN gaps for failures
    assert np.isnan(table[2, 0])
    best = result.results_[result.best_index_]
    assert lines[2].get_ydata()[0] == best["bic"]
    assert ax.get_ylabel() == "BIC (lower is better)"
    plt.close("all")


def test_plot_without_matplotlib_says_what_to_install(monkeypatch):
    result = select_model(three_blobs(), n_components=(1, 2), random_state=0, n_jobs=1)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match=r"pip install 'fastgmm\[plot\]'"):
        result.plot()


# -------------------------------------------------------------------- GaussianMixtureIC
def test_ic_behaves_as_the_selected_mixture():
    X = three_blobs()
    ic = GaussianMixtureIC(n_components=range(1, 5), random_state=0, n_jobs=1).fit(X)
    best = ic.best_estimator_
    assert (ic.n_components_, ic.covariance_type_) == (best.n_components, best.covariance_type)
    assert ic.criterion_.shape == (4, 4)
    records = {(r["n_components"], r["covariance_type"]): r["bic"] for r in ic.results_}
    for i, k in enumerate(range(1, 5)):
        for j, t in enumerate(COVARIANCE_TYPES):
            assert ic.criterion_[i, j] == records[k, t]
    assert np.nanmin(ic.criterion_) == best.bic(X)
    np.testing.assert_array_equal(ic.predict(X), best.predict(X))
    np.testing.assert_array_equal(ic.predict_proba(X), best.predict_proba(X))
    np.testing.assert_array_equal(ic.score_samples(X), best.score_samples(X))
    assert ic.score(X) == best.score(X)
    assert ic.bic(X) == best.bic(X) and ic.aic(X) == best.aic(X)
    np.testing.assert_array_equal(ic.means_, best.means_)
    assert ic.n_iter_ == best.n_iter_
    np.testing.assert_array_equal(ic.fit_predict(X), ic.predict(X))
    samples, labels = ic.sample(50)
    assert samples.shape == (50, 2) and labels.shape == (50,)


def test_ic_in_a_pipeline():
    X = three_blobs() * [100.0, 0.01]
    pipe = make_pipeline(
        StandardScaler(), GaussianMixtureIC(n_components=(1, 2, 3, 4), random_state=0, n_jobs=1)
    )
    labels = pipe.fit(X).predict(X)
    ic = pipe[-1]
    scaled = pipe[0].transform(X)
    np.testing.assert_array_equal(labels, ic.best_estimator_.predict(scaled))
    assert ic.n_components_ == 3
    assert pipe.score(X) == ic.best_estimator_.score(scaled)


def test_ic_fits_a_source(tmp_path):
    X = three_blobs()
    path = tmp_path / "X.npy"
    np.save(path, X)
    ic = GaussianMixtureIC(n_components=(1, 2, 3), random_state=0, n_jobs=1).fit(str(path))
    assert ic.n_features_in_ == 2
    assert ic.predict(X).shape == (len(X),)


def test_ic_validates_its_options():
    with pytest.raises(ValueError, match="Unknown criterion 'hqc'"):
        GaussianMixtureIC(criterion="hqc").fit(three_blobs())
    with pytest.raises(ValueError, match="covariance_types is empty"):
        GaussianMixtureIC(covariance_types=[]).fit(three_blobs())


# n_jobs=1: the checks fit tiny arrays (20 rows), where a parallel region costs more than the
# work, and much more when other processes share the cores. Results do not depend on n_jobs.
@parametrize_with_checks([GaussianMixtureIC(n_components=[1, 2], n_jobs=1)])
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)
