"""k-means kernels for initialisation: k-means++ candidate scoring and Lloyd steps.

Both use the fixed block/slot partition of :mod:`fastgmm._kernels.estep`, so seeding and Lloyd
iterations give the same result for any thread count.
"""

import numpy as np
from numba import prange

from .._jit import inline, kernel
from .blocks import BLOCK, load_block, load_weights, sum_slots


@kernel
def candidate_potentials(X, sample_weight, closest_sq, candidates, n_slots):
    """Potential of each k-means++ candidate: ``sum_i w_i min(closest_sq_i, |x_i - c|^2)``.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    sample_weight : ndarray of shape (n_samples,) or (0,)
    closest_sq : ndarray of shape (n_samples,)
        Squared distance of each row to its closest chosen centre.
    candidates : ndarray of shape (n_candidates, n_features), float64
    n_slots : int

    Returns
    -------
    ndarray of shape (n_candidates,)
    """
    n_samples, n_features = X.shape
    n_cand = candidates.shape[0]
    n_blocks = (n_samples + BLOCK - 1) // BLOCK
    pot_p = np.zeros((n_slots, n_cand))
    for p in prange(n_slots):
        xt = np.empty((n_features, BLOCK))
        w = np.empty(BLOCK)
        dist = np.empty(BLOCK)
        for b in range(p * n_blocks // n_slots, (p + 1) * n_blocks // n_slots):
            start = b * BLOCK
            n_rows = min(BLOCK, n_samples - start)
            load_block(X, start, n_rows, xt)
            load_weights(sample_weight, start, n_rows, w)
            for t in range(n_cand):
                _sq_dist(xt, n_rows, candidates[t], dist)
                total = 0.0
                for i in range(n_rows):
                    total += w[i] * min(dist[i], closest_sq[start + i])
                pot_p[p, t] += total
    return sum_slots(pot_p)


@kernel
def update_closest(X, closest_sq, centre):
    """``closest_sq = min(closest_sq, |x - centre|^2)`` in place."""
    n_samples, n_features = X.shape
    n_blocks = (n_samples + BLOCK - 1) // BLOCK
    for b in prange(n_blocks):
        xt = np.empty((n_features, BLOCK))
        dist = np.empty(BLOCK)
        start = b * BLOCK
        n_rows = min(BLOCK, n_samples - start)
        load_block(X, start, n_rows, xt)
        _sq_dist(xt, n_rows, centre, dist)
        for i in range(n_rows):
            closest_sq[start + i] = min(closest_sq[start + i], dist[i])


@kernel
def lloyd_step(X, sample_weight, centres, n_slots):
    """Assign rows to their nearest centre and sum them per cluster.

    Returns
    -------
    counts : ndarray of shape (n_clusters,)
        Weighted cluster sizes.
    sums : ndarray of shape (n_clusters, n_features)
        Weighted sums of ``x - centre_k`` over each cluster (about the old centre, for accuracy);
        the new centre is ``centre_k + sums[k] / counts[k]``.
    inertia : float
        Weighted sum of squared distances to the assigned centres.
    """
    n_samples, n_features = X.shape
    n_clusters = centres.shape[0]
    n_blocks = (n_samples + BLOCK - 1) // BLOCK
    counts_p = np.zeros((n_slots, n_clusters))
    sums_p = np.zeros((n_slots, n_clusters, n_features))
    inertia_p = np.zeros(n_slots)
    for p in prange(n_slots):
        xt = np.empty((n_features, BLOCK))
        w = np.empty(BLOCK)
        dist = np.empty(BLOCK)
        best = np.empty(BLOCK)
        label = np.empty(BLOCK, dtype=np.int64)
        for b in range(p * n_blocks // n_slots, (p + 1) * n_blocks // n_slots):
            start = b * BLOCK
            n_rows = min(BLOCK, n_samples - start)
            load_block(X, start, n_rows, xt)
            load_weights(sample_weight, start, n_rows, w)
            for i in range(n_rows):
                best[i] = np.inf
                label[i] = 0
            for k in range(n_clusters):
                _sq_dist(xt, n_rows, centres[k], dist)
                for i in range(n_rows):
                    if dist[i] < best[i]:
                        best[i] = dist[i]
                        label[i] = k
            for i in range(n_rows):
                k = label[i]
                counts_p[p, k] += w[i]
                inertia_p[p] += w[i] * best[i]
                for d in range(n_features):
                    sums_p[p, k, d] += w[i] * (xt[d, i] - centres[k, d])
    return sum_slots(counts_p), sum_slots(sums_p), sum_slots(inertia_p)


@inline
def _sq_dist(xt, n_rows, centre, dist):
    """``dist[i] = |x_i - centre|^2`` for the block's rows."""
    for i in range(n_rows):
        dist[i] = 0.0
    for d in range(xt.shape[0]):
        c = centre[d]
        for i in range(n_rows):
            v = xt[d, i] - c
            dist[i] += v * v
