"""Initialisation strategies: k-means, k-means++, random responsibilities, random rows.

They follow scikit-learn's ``BaseMixture._initialize_parameters`` in meaning, but the clustering
is fastgmm's own Numba code (k-means++ seeding and parallel Lloyd steps) rather than sklearn's
KMeans. k-means runs on a uniform sample of at most ``init_sample`` rows: the centres it finds
barely change with more rows, while its cost would grow with all of them. One hard-assignment pass
over every row then turns the centres into the first mixture parameters.
"""

from __future__ import annotations

import numpy as np

from ._kernels.kmeans import candidate_potentials, lloyd_step, update_closest
from .em import GIVEN, HARD, ArrayChunks, collect_statistics, n_slots_for, params_from_stats
from .stats import _OVERFLOW, KernelParams, MixtureParams, precision_cholesky

INIT_METHODS = ("kmeans", "k-means++", "random", "random_from_data")
DEFAULT_INIT_SAMPLE = 100_000


def kmeans_plusplus(X, n_clusters, random_state, sample_weight=None, n_threads=None):
    """Greedy k-means++ seeding (Arthur & Vassilvitskii 2007, with sklearn's local trials).

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features), float32 or float64, C-contiguous
    n_clusters : int
    random_state : numpy.random.RandomState
    sample_weight : ndarray of shape (n_samples,), optional
    n_threads : int, optional

    Returns
    -------
    centres : ndarray of shape (n_clusters, n_features), float64
    indices : ndarray of shape (n_clusters,)
        Rows of ``X`` chosen as centres.
    """
    n_samples, n_features = X.shape
    weights = np.ones(n_samples) if sample_weight is None else np.asarray(sample_weight, float)
    kernel_weights = np.empty(0) if sample_weight is None else weights
    n_slots = n_slots_for(n_samples, 1, 0, 1)
    n_local_trials = 2 + int(np.log(n_clusters))
    centres = np.empty((n_clusters, n_features))
    indices = np.empty(n_clusters, dtype=np.int64)

    first = random_state.choice(n_samples, p=weights / weights.sum())
    indices[0] = first
    centres[0] = X[first]
    closest = np.full(n_samples, np.inf)
    update_closest(X, closest, centres[0], n_threads=n_threads)
    potential = float(weights @ closest)
    for c in range(1, n_clusters):
        rand_vals = random_state.uniform(size=n_local_trials) * potential
        cumulative = np.cumsum(weights * closest)
        candidate_ids = np.minimum(np.searchsorted(cumulative, rand_vals), n_samples - 1)
        candidates = np.ascontiguousarray(X[candidate_ids], dtype=np.float64)
        potentials = candidate_potentials(
            X, kernel_weights, closest, candidates, n_slots, n_threads=n_threads
        )
        best = int(np.argmin(potentials))
        potential = float(potentials[best])
        indices[c] = candidate_ids[best]
        centres[c] = candidates[best]
        update_closest(X, closest, centres[c], n_threads=n_threads)
    return centres, indices


def kmeans(
    X, n_clusters, random_state, sample_weight=None, *, max_iter=100, tol=1e-4, n_threads=None
):
    """Lloyd's k-means from k-means++ seeds.

    Stops when the centres move less (in summed squared distance) than ``tol`` times the mean
    feature variance, as scikit-learn's KMeans does. An empty cluster keeps its centre.

    Returns
    -------
    centres : ndarray of shape (n_clusters, n_features), float64
    """
    centres, _ = kmeans_plusplus(X, n_clusters, random_state, sample_weight, n_threads)
    kernel_weights = np.empty(0) if sample_weight is None else sample_weight
    # Deviations from the first row: np.var's own mean overflows for rows near the float64
    # limit even when they are all equal. A spread that overflows cannot be fitted at all.
    with np.errstate(over="ignore", invalid="ignore"):
        spread = np.var(np.asarray(X, dtype=np.float64) - X[0], axis=0)
    if not np.all(np.isfinite(spread)):
        raise ValueError(_OVERFLOW)
    threshold = tol * float(np.mean(spread))
    n_slots = n_slots_for(X.shape[0], n_clusters, 0, X.shape[1])
    for _ in range(max_iter):
        counts, sums, _ = lloyd_step(X, kernel_weights, centres, n_slots, n_threads=n_threads)
        moved = np.zeros_like(centres)
        filled = counts > 0
        moved[filled] = sums[filled] / counts[filled, None]
        centres = centres + moved
        if float(np.sum(moved**2)) <= threshold:
            break
    return centres


def _sample_rows(data: ArrayChunks, size: int, random_state):
    """A uniform sample of rows without replacement (all rows when there are few)."""
    if data.n_samples <= size:
        weights = data.sample_weight if data.sample_weight.size else None
        return np.ascontiguousarray(data.X), weights, np.arange(data.n_samples)
    rows = np.sort(random_state.choice(data.n_samples, size=size, replace=False))
    weights = data.sample_weight[rows] if data.sample_weight.size else None
    return np.ascontiguousarray(data.X[rows]), weights, rows


def _identity_factors(covariance_type, n_components, n_features):
    """Precision factors that make the kernel's log-density ``-|x - c|^2 / 2`` (k-means)."""
    if covariance_type in ("full", "tied"):
        return np.broadcast_to(np.eye(n_features), (n_components, n_features, n_features)).copy()
    return np.ones((n_components, 1, n_features))


def _point_params(points, n_samples, covariance_type, reg_covar, float32_hint):
    """Parameters of components placed on single rows (sklearn's one-hot initialisation)."""
    n_components, n_features = points.shape
    nk = 1.0 + 10 * np.finfo(np.float64).eps
    if covariance_type == "full":
        covariances = np.broadcast_to(
            reg_covar * np.eye(n_features), (n_components, n_features, n_features)
        ).copy()
    elif covariance_type == "tied":
        covariances = reg_covar * np.eye(n_features)
    elif covariance_type == "diag":
        covariances = np.full((n_components, n_features), float(reg_covar))
    else:
        covariances = np.full(n_components, float(reg_covar))
    prec_chol = precision_cholesky(covariances, covariance_type, float32_hint=float32_hint)
    # sklearn divides the initial nk by n_samples, so these weights do not sum to one; the
    # first E-step normalises them. Kept for identical lower bounds.
    weights = np.full(n_components, nk / n_samples)
    return MixtureParams(weights, points / nk, covariances, prec_chol, covariance_type)


def initial_params(
    data: ArrayChunks,
    *,
    method: str,
    n_components: int,
    covariance_type: str,
    reg_covar: float,
    random_state,
    init_sample: int = DEFAULT_INIT_SAMPLE,
    n_threads=None,
    float32_hint=False,
) -> MixtureParams:
    """First mixture parameters by ``method`` (one of :data:`INIT_METHODS`).

    Parameters
    ----------
    data : ArrayChunks
        All rows (with their weights).
    random_state : numpy.random.RandomState
    init_sample : int
        Rows that k-means and k-means++ look at (a uniform sample when there are more).
    """
    n_samples, n_features = data.n_samples, data.n_features
    if method == "kmeans":
        sample, weights, _ = _sample_rows(data, init_sample, random_state)
        centres = kmeans(sample, n_components, random_state, weights, n_threads=n_threads)
        kparams = KernelParams(
            centres,
            _identity_factors(covariance_type, n_components, n_features),
            np.zeros(n_components),
        )
        stats = collect_statistics(data.chunks(), kparams, centres, mode=HARD, n_threads=n_threads)
    elif method == "random":
        resp = random_state.uniform(size=(n_samples, n_components))
        resp /= resp.sum(axis=1)[:, None]
        shift = np.broadcast_to(
            np.mean(data.X, axis=0, dtype=np.float64), (n_components, n_features)
        ).copy()
        kparams = KernelParams(
            shift,
            _identity_factors(covariance_type, n_components, n_features),
            np.zeros(n_components),
        )
        stats = collect_statistics(
            data.chunks(), kparams, shift, mode=GIVEN, resp=resp, n_threads=n_threads
        )
    elif method == "random_from_data":
        rows = random_state.choice(n_samples, size=n_components, replace=False)
        points = np.asarray(data.X[rows], dtype=np.float64)
        return _point_params(points, n_samples, covariance_type, reg_covar, float32_hint)
    elif method == "k-means++":
        sample, weights, _ = _sample_rows(data, init_sample, random_state)
        centres, _ = kmeans_plusplus(sample, n_components, random_state, weights, n_threads)
        return _point_params(centres, n_samples, covariance_type, reg_covar, float32_hint)
    else:  # pragma: no cover - validated by the estimator
        raise ValueError(f"Unknown init_params {method!r}.")
    params = params_from_stats(stats, covariance_type, reg_covar, float32_hint=float32_hint)
    # As sklearn: initial weights are nk / n_samples, not renormalised.
    params.weights = (stats.nk + 10 * np.finfo(np.float64).eps) / stats.weight_sum
    return params
