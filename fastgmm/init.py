"""Initialisation strategies: k-means, k-means++, random responsibilities, random rows.

They follow scikit-learn's ``BaseMixture._initialize_parameters`` in meaning, but the clustering
is fastgmm's own Numba code (k-means++ seeding and parallel Lloyd steps) rather than sklearn's
KMeans. k-means runs on a uniform sample of at most ``init_sample`` rows: the centres it finds
barely change with more rows, while its cost would grow with all of them. One hard-assignment pass
over every row then turns the centres into the first mixture parameters.

Every strategy reads the data only through the chunk provider's ``chunks()`` (an in-memory
:class:`~fastgmm.em.ArrayChunks` or a streamed :class:`~fastgmm.streaming.SourceChunks`), and draws
its random numbers row by row in data order: the sample keys of :func:`sample_rows` and the
responsibilities of 'random'. The same ``random_state`` therefore gives the same initialisation for
an array and for a file holding the same rows, however either is cut into chunks.
"""

from __future__ import annotations

import numpy as np

from . import _interrupts
from ._kernels.kmeans import candidate_potentials, lloyd_step, update_closest
from ._reservoir import DRAW_ROWS, sample
from .em import (
    GIVEN,
    HARD,
    chunk_statistics,
    collect_statistics,
    n_slots_for,
    params_from_stats,
)
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

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = np.vstack([rng.normal(0, 0.5, (100, 2)), rng.normal(5, 0.5, (100, 2))])
    >>> from fastgmm.init import kmeans_plusplus
    >>> centres, rows = kmeans_plusplus(X, 2, np.random.RandomState(0))
    >>> bool(np.array_equal(centres, X[rows])), sorted(int(r) // 100 for r in rows)
    (True, [0, 1])
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
        _interrupts.check()  # a dropped command-line signal stops here (fastgmm._interrupts)
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

    Examples
    --------
    Labels are the nearest centres (this is how ``examples/gmm_vs_kmeans.py`` uses it):

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = np.vstack([rng.normal(0, 0.5, (100, 2)), rng.normal(5, 0.5, (100, 2))])
    >>> from fastgmm.init import kmeans
    >>> centres = kmeans(X, 2, np.random.RandomState(0))
    >>> bool(np.abs(np.sort(centres[:, 0]) - [0, 5]).max() < 0.2)
    True
    >>> labels = np.argmin(((X[:, None, :] - centres) ** 2).sum(axis=2), axis=1)
    >>> np.bincount(labels)
    array([100, 100])
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
        _interrupts.check()
        counts, sums, _ = lloyd_step(X, kernel_weights, centres, n_slots, n_threads=n_threads)
        moved = np.zeros_like(centres)
        filled = counts > 0
        moved[filled] = sums[filled] / counts[filled, None]
        centres = centres + moved
        if float(np.sum(moved**2)) <= threshold:
            break
    return centres


def sample_rows(data, size: int, random_state):
    """A uniform sample of ``min(size, n_samples)`` rows, drawn in one pass over ``data.chunks()``.

    Every row gets an i.i.d. uniform key, drawn in row order from ``random_state``, and the rows
    with the ``size`` smallest keys are kept (vectorised reservoir sampling): each subset of that
    size is equally likely. Rows whose key cannot enter the reservoir any more are skipped
    without being copied, so the pass costs little beyond reading the data. Because the keys are
    one sequential random stream, the sample does not depend on how the rows are chunked, and it
    is the sample that :meth:`fastgmm.sources.ChunkSource.reservoir_sample` draws with the same
    ``random_state``.

    Parameters
    ----------
    data : chunk provider
        ``ArrayChunks`` or ``SourceChunks``; ``chunks()`` yields ``(offset, X, weights)``.
    size : int
        Requested sample size (>= 1).
    random_state : numpy.random.RandomState or numpy.random.Generator

    Returns
    -------
    sample : ndarray of shape (min(size, n_samples), n_features)
        C-contiguous, in the data's dtype, rows in data order.
    weights : ndarray of shape (min(size, n_samples),) or None
        The rows' sample weights (None for unit weights).
    indices : ndarray of shape (min(size, n_samples),), int64
        Row numbers of the sample (increasing).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = np.vstack([rng.normal(0, 0.5, (100, 2)), rng.normal(5, 0.5, (100, 2))])
    >>> from fastgmm.em import ArrayChunks
    >>> from fastgmm.init import sample_rows
    >>> sample, weights, rows = sample_rows(ArrayChunks(X), 5, np.random.RandomState(0))
    >>> sample.shape, weights, bool(np.array_equal(sample, X[rows]))
    ((5, 2), None, True)
    """
    n_rows = getattr(data, "n_samples", None)
    return sample(
        data.chunks,
        size,
        random_state,
        n_features=data.n_features,
        dtype=data.dtype,
        n_rows=n_rows,
    )


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
    data,
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
    data : ArrayChunks or SourceChunks
        All rows (with their weights). Only ``chunks()``, ``n_features`` and, after the first
        pass, ``n_samples`` are used, so a stream is never held in memory.
    random_state : numpy.random.RandomState
    init_sample : int
        Rows that k-means and k-means++ look at (a uniform sample when there are more).

    Notes
    -----
    Passes over the data: 'kmeans' two (the sample, then one hard assignment of every row),
    'k-means++' and 'random_from_data' one (the sample), 'random' one.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = np.vstack([rng.normal(0, 0.5, (100, 2)), rng.normal(5, 0.5, (100, 2))])
    >>> from fastgmm.em import ArrayChunks
    >>> from fastgmm.init import initial_params
    >>> params = initial_params(ArrayChunks(X), method="kmeans", n_components=2,
    ...                         covariance_type="diag", reg_covar=1e-6,
    ...                         random_state=np.random.RandomState(0))
    >>> params.weights.round(3), params.covariances.shape
    (array([0.5, 0.5]), (2, 2))
    """
    n_features = data.n_features
    if method in ("kmeans", "k-means++"):
        if init_sample < n_components:
            raise ValueError(
                f"init_sample={init_sample} is smaller than n_components={n_components}: "
                "k-means needs at least one sampled row per component."
            )
        sample, weights, _ = sample_rows(data, init_sample, random_state)
        _check_enough_rows(data.n_samples, n_components)
        if method == "k-means++":
            centres, _ = kmeans_plusplus(sample, n_components, random_state, weights, n_threads)
            return _point_params(centres, data.n_samples, covariance_type, reg_covar, float32_hint)
        centres = kmeans(sample, n_components, random_state, weights, n_threads=n_threads)
        kparams = KernelParams(
            centres,
            _identity_factors(covariance_type, n_components, n_features),
            np.zeros(n_components),
        )
        stats = collect_statistics(data.chunks(), kparams, centres, mode=HARD, n_threads=n_threads)
    elif method == "random":
        stats = _random_resp_statistics(
            data, n_components, covariance_type, random_state, n_threads
        )
        _check_enough_rows(stats.n_rows, n_components)
    elif method == "random_from_data":
        points, _, _ = sample_rows(data, n_components, random_state)
        _check_enough_rows(data.n_samples, n_components)
        points = points.astype(np.float64)
        return _point_params(points, data.n_samples, covariance_type, reg_covar, float32_hint)
    else:  # pragma: no cover - validated by the estimator
        raise ValueError(f"Unknown init_params {method!r}.")
    params = params_from_stats(stats, covariance_type, reg_covar, float32_hint=float32_hint)
    # As sklearn: initial weights are nk / n_samples, not renormalised.
    params.weights = (stats.nk + 10 * np.finfo(np.float64).eps) / stats.weight_sum
    return params


def _random_resp_statistics(data, n_components, covariance_type, random_state, n_threads):
    """Statistics of every row under uniform random responsibilities (sklearn's 'random').

    The responsibilities are drawn chunk by chunk in row order, never for all rows at once:
    uniform draws are split-invariant, so this is the same matrix as one
    ``uniform(size=(n_samples, n_components))`` draw, without its memory.
    """
    factors = _identity_factors(covariance_type, n_components, data.n_features)
    total = shift = kparams = None
    for _, X, w in data.chunks():
        for lo in range(0, X.shape[0], DRAW_ROWS):
            rows = X[lo : lo + DRAW_ROWS]
            resp = random_state.uniform(size=(rows.shape[0], n_components))
            resp /= resp.sum(axis=1)[:, None]
            if shift is None:
                # Any fixed origin near the data keeps the moments' digits; the first rows'
                # mean costs no extra pass.
                with np.errstate(over="ignore", invalid="ignore"):
                    centre = np.mean(rows, axis=0, dtype=np.float64)
                if not np.all(np.isfinite(centre)):  # the sum overflowed: any row will do
                    centre = np.asarray(rows[0], dtype=np.float64)
                shift = np.ascontiguousarray(np.broadcast_to(centre, (n_components, len(centre))))
                kparams = KernelParams(shift, factors, np.zeros(n_components))
            weights = w[lo : lo + DRAW_ROWS] if w.size else w
            stats = chunk_statistics(
                rows, weights, kparams, shift, mode=GIVEN, resp=resp, n_threads=n_threads
            )
            total = stats if total is None else total + stats
    return total


def _check_enough_rows(n_samples, n_components):
    if n_samples < n_components:
        raise ValueError(
            "Expected n_samples >= n_components "
            f"but got n_components = {n_components}, n_samples = {n_samples}"
        )
