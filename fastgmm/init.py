"""Initialisation strategies: k-means, k-means++, random responsibilities, random rows, and
mclust's model-based hierarchical clustering ('hc').

They follow scikit-learn's ``BaseMixture._initialize_parameters`` in meaning, but the clustering
is fastgmm's own Numba code (k-means++ seeding and parallel Lloyd steps) rather than sklearn's
KMeans. k-means runs on a uniform sample of at most ``init_sample`` rows: the centres it finds
barely change with more rows, while its cost would grow with all of them. One hard-assignment pass
over every row then turns the centres into the first mixture parameters.

Every strategy reads the data only through the provider protocol
(:class:`fastgmm.providers.ChunkProvider`): one pass serving a statistics request, or a uniform
sample of rows. On in-memory arrays the random draws are scikit-learn's; elsewhere they are
drawn row by row in data order (the sample keys, the responsibilities of 'random'), so the same
``random_state`` gives the same initialisation for a file and for a Dask array holding the same
rows, however either is cut into chunks.

'hc' is mclust's default start (:class:`HierarchicalStart`): a uniform sample of at most
:data:`HC_MAX_ROWS` rows (every row when there are fewer, as in mclust), its model-based
agglomerative tree (:func:`fastgmm.hierarchical.hc_tree`), the tree cut into ``n_components``
clusters, and one M-step on that partition of the sample; EM then runs on every row. One
tree serves every ``n_components`` and covariance model of a selection grid.

A noise component (``fitter.noise``, see :mod:`fastgmm.noise`) is started from the user's mask
of likely noise rows, as mclust does: the Gaussian components from the rows outside the mask
(the tree is built on those; the other methods run on the sample's rows outside the mask), the
noise weight from the share of the mask in the sample.
"""

from __future__ import annotations

import numpy as np

from . import _interrupts
from ._kernels.kmeans import candidate_potentials, lloyd_step, update_closest
from ._names import INIT_METHODS
from .errors import CovarianceOverflowError
from .estep import n_slots_for
from .providers import GIVEN, HARD, ArrayChunks, StatsRequest
from .stats import MixtureParams, SharedLayout
from .validation import check_n_samples

__all__ = [
    "DEFAULT_INIT_SAMPLE",
    "HC_MAX_ROWS",
    "INIT_METHODS",
    "HierarchicalStart",
    "initial_params",
    "kmeans",
    "kmeans_plusplus",
]

DEFAULT_INIT_SAMPLE = 100_000
#: Rows the hierarchical start agglomerates at most (mclust's ``mclust.options("subset")``):
#: the tree needs 8 n^2 bytes and n^2 D^3 time.
HC_MAX_ROWS = 2000


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
    n_slots = n_slots_for(n_samples, 1, 2)
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
        raise CovarianceOverflowError()
    threshold = tol * float(np.mean(spread))
    n_slots = n_slots_for(X.shape[0], n_clusters, 1 + X.shape[1])
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


def initial_params(
    provider,
    fitter,
    *,
    method: str,
    n_components: int,
    random_state,
    init_sample: int = DEFAULT_INIT_SAMPLE,
    reg_covar: float | None = None,
    n_threads=None,
    noise_init=None,
    hc_start=None,
) -> MixtureParams:
    """First mixture parameters by ``method`` (one of :data:`INIT_METHODS`).

    Parameters
    ----------
    provider : ChunkProvider
        All rows (with their weights): an array, a stream or Dask blocks. A stream is never
        held in memory.
    fitter : fastgmm.em.MaximumLikelihood
        Whose covariance model and M-step turn the starting responsibilities into parameters.
    method : str
    n_components : int
    random_state : numpy.random.RandomState
    init_sample : int
        Rows that k-means looks at (a uniform sample when there are more).
    reg_covar : float, optional
        Overrides the fitter's (``on_degenerate`` retries a collapsed start more regularised).
    noise_init : ndarray of shape (n_samples,), bool, optional
        Rows that start in the noise component, when the fitter has one (``fitter.noise``).
    hc_start : HierarchicalStart, optional
        For 'hc': a tree drawn already (model selection shares one for all candidates).

    Notes
    -----
    The random draws follow scikit-learn's on in-memory arrays: 'random' draws the
    responsibilities row by row, 'random_from_data' picks rows with
    ``random_state.choice(n_samples, n_components, replace=False)`` and 'k-means++' seeds on
    every row, so the same ``random_state`` gives scikit-learn's start. On streamed sources and
    Dask arrays, which cannot be indexed at random, 'random_from_data' and 'k-means++' draw from
    a uniform sample of the rows instead (one pass). 'kmeans' runs fastgmm's own k-means on a
    sample of at most ``init_sample`` rows everywhere (scikit-learn's ``KMeans`` is what this
    package is faster than), then assigns every row to its nearest centre in one pass.

    Examples
    --------
    >>> import numpy as np
    >>> from fastgmm.covariance import get_model
    >>> from fastgmm.em import MaximumLikelihood
    >>> from fastgmm.init import initial_params
    >>> from fastgmm.providers import ArrayChunks
    >>> rng = np.random.default_rng(0)
    >>> X = np.vstack([rng.normal(0, 0.5, (100, 2)), rng.normal(5, 0.5, (100, 2))])
    >>> fitter = MaximumLikelihood(get_model("diag"), reg_covar=1e-6)
    >>> params = initial_params(ArrayChunks(X), fitter, method="kmeans", n_components=2,
    ...                         random_state=np.random.RandomState(0))
    >>> params.weights.round(3), params.covariances.shape
    (array([0.5, 0.5]), (2, 2))
    """
    n_features = provider.n_features
    reg = fitter.reg_covar if reg_covar is None else float(reg_covar)
    if method == "hc":
        if hc_start is None:
            hc_start = HierarchicalStart.draw(
                provider, random_state, noise_init=noise_init, n_threads=n_threads
            )
        return hc_start.params(fitter, n_components, reg=reg, n_threads=n_threads)
    if getattr(fitter, "noise", False):
        return _start_beside_noise(
            provider, fitter, method, n_components, random_state, init_sample, reg, noise_init,
            n_threads,
        )  # fmt: skip
    in_memory = provider.in_memory()
    if method in ("k-means++", "random_from_data") and in_memory is not None:
        X, sample_weight = in_memory
        check_n_samples(X.shape[0], n_components)
        if method == "k-means++":
            _, indices = kmeans_plusplus(X, n_components, random_state, sample_weight, n_threads)
        else:
            indices = random_state.choice(X.shape[0], size=n_components, replace=False)
        points = np.asarray(X[indices], dtype=np.float64)
        return fitter.point_params(points, X.shape[0], reg=reg)
    if method in ("kmeans", "k-means++"):
        if init_sample < n_components:
            raise ValueError(
                f"init_sample={init_sample} is smaller than n_components={n_components}: "
                "k-means needs at least one sampled row per component."
            )
        sample, weights, _ = provider.sample_rows(init_sample, random_state)
        n_samples = provider.count_rows()
        check_n_samples(n_samples, n_components)
        if method == "k-means++":
            centres, _ = kmeans_plusplus(sample, n_components, random_state, weights, n_threads)
            return fitter.point_params(centres, n_samples, reg=reg)
        centres = kmeans(sample, n_components, random_state, weights, n_threads=n_threads)
        [stats] = provider.collect([assignment_request(centres, fitter.kind)], n_threads=n_threads)
    elif method == "random":
        request = random_request(provider, n_components, n_features, fitter.kind, random_state)
        [stats] = provider.collect([request], n_threads=n_threads)
        check_n_samples(stats.n_rows, n_components)
    elif method == "random_from_data":
        points, _, _ = provider.sample_rows(n_components, random_state)
        n_samples = provider.count_rows()
        check_n_samples(n_samples, n_components)
        return fitter.point_params(points.astype(np.float64), n_samples, reg=reg)
    else:  # pragma: no cover - validated by the estimator
        raise ValueError(f"Unknown init_params {method!r}.")
    return fitter.initial_params(stats, reg=reg)


def _start_beside_noise(
    provider, fitter, method, n_components, random_state, init_sample, reg, noise_init, n_threads
):
    """The Gaussian components by ``method`` on the sample's rows outside the noise mask; the
    noise weight is the mask's (weighted) share of the sample."""
    rows, weights, numbers = provider.sample_rows(init_sample, random_state)
    noise = noise_rows(noise_init, numbers)
    share = _weighted_share(noise, weights)
    clustered = ArrayChunks(
        np.ascontiguousarray(rows[~noise]), None if weights is None else weights[~noise]
    )
    params = initial_params(
        clustered,
        fitter.gaussian,
        method=method,
        n_components=n_components,
        random_state=random_state,
        init_sample=init_sample,
        reg_covar=reg,
        n_threads=n_threads,
    )
    params.weights = params.weights * (1.0 - share)
    params.noise_weight = share
    return params


def noise_rows(noise_init, numbers) -> np.ndarray:
    """The noise mask of the sampled rows ``numbers`` (all False without a mask).

    Examples
    --------
    >>> import numpy as np
    >>> from fastgmm.init import noise_rows
    >>> noise_rows(np.array([True, False, True]), np.array([0, 1])), noise_rows(None, [4, 7])
    (array([ True, False]), array([False, False]))
    """
    numbers = np.asarray(numbers, dtype=np.int64)
    if noise_init is None:
        return np.zeros(numbers.shape[0], dtype=bool)
    return np.asarray(noise_init, dtype=bool)[numbers]


def _weighted_share(mask, weights) -> float:
    if weights is None:
        return float(np.count_nonzero(mask)) / max(mask.shape[0], 1)
    total = float(np.sum(weights))
    return float(np.sum(weights[mask])) / total if total > 0.0 else 0.0


class HierarchicalStart:
    """mclust's default start: a sample of rows and its model-based agglomerative tree.

    Build it with :meth:`draw`; :meth:`params` cuts the tree into any number of clusters and
    runs one M-step on that partition of the sample (a ``GIVEN`` pass over the sample held in
    memory), for any fitter: model selection draws one tree for its whole grid.

    Attributes
    ----------
    rows : ndarray of shape (n_sample, n_features)
        The sampled rows (every row when there are at most ``max_rows``), in row order.
    weights : ndarray of shape (n_sample,) or None
        Their sample weights (the tree ignores them; the M-step uses them).
    noise : ndarray of shape (n_sample,), bool
        Sampled rows in the noise mask: left out of the tree, started in the noise component.
    tree : fastgmm.hierarchical.HierarchicalTree
        Built on ``rows[~noise]``.

    Examples
    --------
    >>> import numpy as np
    >>> from fastgmm.covariance import get_model
    >>> from fastgmm.em import MaximumLikelihood
    >>> from fastgmm.init import HierarchicalStart
    >>> from fastgmm.providers import ArrayChunks
    >>> rng = np.random.default_rng(0)
    >>> X = np.vstack([rng.normal(0, 1, (30, 2)), rng.normal(8, 1, (20, 2))])
    >>> start = HierarchicalStart.draw(ArrayChunks(X), np.random.RandomState(0))
    >>> fitter = MaximumLikelihood(get_model("VVV"), reg_covar=0.0)
    >>> start.params(fitter, 2).weights  # the tree cut in two: the two clusters
    array([0.6, 0.4])
    """

    def __init__(self, rows, weights, noise, tree):
        self.rows = rows
        self.weights = weights
        self.noise = noise
        self.tree = tree
        self._partitions = {}  # K -> labels: every model of a grid cuts the tree at the same K

    @classmethod
    def draw(
        cls, provider, random_state, *, noise_init=None, max_rows=HC_MAX_ROWS, n_threads=None
    ) -> HierarchicalStart:
        """Sample at most ``max_rows`` rows in one pass and build the tree of those outside
        ``noise_init``."""
        rows, weights, numbers = provider.sample_rows(max_rows, random_state)
        return cls.from_sample(rows, weights, numbers, noise_init=noise_init, n_threads=n_threads)

    @classmethod
    def from_sample(
        cls, rows, weights, numbers, *, noise_init=None, n_threads=None
    ) -> HierarchicalStart:
        """The tree of sampled ``rows`` (row ``numbers``) outside ``noise_init``."""
        from .hierarchical import hc_tree

        noise = noise_rows(noise_init, numbers)
        clustered = rows[~noise]
        if clustered.shape[0] < 2:
            raise ValueError(
                f"init_params='hc' needs at least 2 rows outside the noise mask in its sample "
                f"of {rows.shape[0]} rows; found {clustered.shape[0]}."
            )
        tree = hc_tree(clustered, max_rows=None, n_jobs=n_threads)
        return cls(rows, weights, noise, tree)

    def params(self, fitter, n_components: int, *, reg=None, n_threads=None) -> MixtureParams:
        """The M-step of ``fitter`` on the tree's partition into ``n_components`` clusters
        (and the noise rows in the noise component, if the fitter has one)."""
        n_tree = self.tree.n_rows
        if n_components > n_tree:
            raise ValueError(
                f"init_params='hc' cannot make {n_components} clusters from the {n_tree} rows "
                "of its tree; use fewer components."
            )
        with_noise = bool(getattr(fitter, "noise", False))
        n_columns = n_components + with_noise
        resp = np.zeros((self.rows.shape[0], n_columns))
        clustered = np.flatnonzero(~self.noise)
        if n_components not in self._partitions:
            self._partitions[n_components] = self.tree.partition(n_components)
        resp[clustered, self._partitions[n_components]] = 1.0
        if with_noise:
            resp[self.noise, n_components] = 1.0
        # Moments about each cluster's own mean keep their digits (no cancellation).
        counts = np.maximum(resp.sum(axis=0), 1.0)
        shift = np.ascontiguousarray((resp.T @ self.rows.astype(np.float64)) / counts[:, None])
        layout = SharedLayout.diagonal(
            np.ones(n_columns), shift, np.ones((n_columns, self.rows.shape[1]))
        )
        request = StatsRequest(layout, shift, fitter.kind, GIVEN, resp=resp)
        [stats] = ArrayChunks(self.rows, self.weights).collect([request], n_threads=n_threads)
        return fitter.initial_params(stats, reg=reg)


def assignment_request(centres: np.ndarray, kind: int) -> StatsRequest:
    """A pass assigning every row to its nearest centre (k-means' hard assignment).

    With identity factors and equal constants the most probable component is the nearest
    centre; the statistics of the assignment, of ``kind``, give the first parameters.

    Examples
    --------
    >>> import numpy as np
    >>> from fastgmm.init import assignment_request
    >>> from fastgmm.providers import ArrayChunks
    >>> from fastgmm.stats import DIAG
    >>> X = np.array([[0.0], [1.0], [9.0]])
    >>> [stats] = ArrayChunks(X).collect([assignment_request(np.array([[0.0], [10.0]]), DIAG)])
    >>> stats.nk
    array([2., 1.])
    """
    centres = np.ascontiguousarray(centres, dtype=np.float64)
    n_components, n_features = centres.shape
    layout = SharedLayout.diagonal(
        np.ones(n_components), centres, np.ones((n_components, n_features))
    )
    # Zero constants, not -D/2 log(2 pi): the log-densities are then -|x - c_k|^2 / 2 alone,
    # whose differences keep their digits even for rows 1e-20 apart.
    layout.log_const = np.zeros(n_components)
    return StatsRequest(layout, centres, kind, HARD)


def random_request(provider, n_components, n_features, kind, random_state) -> StatsRequest:
    """A pass under uniform random responsibilities (scikit-learn's 'random'), drawn in row
    order from ``random_state`` (see :func:`fastgmm.providers.evaluate`).

    The moments are taken about a point near the data, so that they keep their digits: the
    first row's value (one row read, no random number drawn).

    Examples
    --------
    >>> import numpy as np
    >>> from fastgmm.init import random_request
    >>> from fastgmm.providers import ArrayChunks
    >>> from fastgmm.stats import DIAG
    >>> data = ArrayChunks(np.arange(10.0).reshape(5, 2))
    >>> [stats] = data.collect([random_request(data, 3, 2, DIAG, np.random.RandomState(0))])
    >>> round(float(stats.nk.sum()), 12)
    5.0
    """
    origin = _first_row(provider)
    shift = np.ascontiguousarray(np.broadcast_to(origin, (n_components, n_features)))
    layout = SharedLayout.diagonal(
        np.ones(n_components), shift, np.ones((n_components, n_features))
    )
    return StatsRequest(layout, shift, kind, GIVEN, random_state=random_state)


def _first_row(provider) -> np.ndarray:
    in_memory = provider.in_memory()
    if in_memory is not None:
        return np.asarray(in_memory[0][0], dtype=np.float64)
    first = getattr(provider, "first_row", None)
    if first is not None:
        return np.asarray(first(), dtype=np.float64)
    for _, X, _ in provider.chunks():
        if X.shape[0]:
            return np.asarray(X[0], dtype=np.float64)
    return np.zeros(provider.n_features)
