"""fastgmm's asv benchmarks, and the data model they share with ``asv_bench/compare.py``.

Every benchmark times *fixed work*: data drawn with a seeded RNG from a known mixture, explicit
initial weights, means and precisions (the truth, perturbed), ``tol=0`` and a fixed ``max_iter``.
A change in convergence then cannot pass for a change in speed, and every implementation that is
compared starts from the same parameters.

This module imports only NumPy, so ``compare.py`` can use it without asv installed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")

# Suite sizes as (n_samples, n_features, n_components). "medium" is the default scale of the
# suite; the large reference configurations of the issue belong to compare.py.
SIZES = {
    "small": (20_000, 8, 4),
    "medium": (200_000, 16, 8),
}

# EM iterations per timed fit. Enough that per-fit overheads (validation, final attribute
# conversion) are a small part of the time, few enough for `asv run --quick`.
FIT_ITERATIONS = 5

REG_COVAR = 1e-6


@dataclass
class Mixture:
    """A data set drawn from a known mixture, with one shared initialisation.

    Attributes
    ----------
    X : ndarray of shape (n_samples, n_features), C-contiguous
    covariance_type : str
    weights, means, covariances : ndarray
        The true parameters (covariances in scikit-learn's shape for the type).
    weights_init, means_init, covariances_init, precisions_init : ndarray
        The initialisation every implementation receives (float64).
    """

    X: np.ndarray
    covariance_type: str
    weights: np.ndarray
    means: np.ndarray
    covariances: np.ndarray
    weights_init: np.ndarray
    means_init: np.ndarray
    covariances_init: np.ndarray
    precisions_init: np.ndarray

    @property
    def n_components(self) -> int:
        return self.means.shape[0]

    def init_kwargs(self) -> dict:
        """``weights_init``, ``means_init`` and ``precisions_init`` as estimator keywords.

        Means and precisions are cast to the dtype of ``X``, as a fit on float32 data would
        produce them; the weights stay float64, because three float32 thirds do not sum to 1
        within the 1e-8 that scikit-learn's check of ``weights_init`` allows. Every
        implementation receives these same arrays.
        """
        dtype = self.X.dtype
        return {
            "weights_init": self.weights_init,
            "means_init": self.means_init.astype(dtype),
            "precisions_init": self.precisions_init.astype(dtype),
        }


def _random_spd(rng, n_features):
    """A random covariance with eigenvalues of order 0.5 to 3 (well conditioned)."""
    factor = rng.normal(size=(n_features, n_features)) / np.sqrt(n_features)
    return factor @ factor.T + 0.5 * np.eye(n_features)


def make_mixture(
    n_samples,
    n_features,
    n_components,
    covariance_type="full",
    *,
    dtype=np.float64,
    seed=0,
    separation=3.0,
):
    """Draw ``n_samples`` rows from a random mixture of the given covariance type.

    The initialisation is the truth perturbed: uniform weights, means moved by a quarter of the
    component spread, covariances inflated by 1.5. Two calls with the same arguments return the
    same data bit for bit.

    Parameters
    ----------
    n_samples, n_features, n_components : int
    covariance_type : {'full', 'tied', 'diag', 'spherical'}
    dtype : numpy dtype, default=float64
        Dtype of ``X``; the parameters stay float64.
    seed : int
    separation : float
        Standard deviation of the component means around 0.

    Returns
    -------
    Mixture
    """
    if covariance_type not in COVARIANCE_TYPES:
        raise ValueError(
            f"covariance_type must be one of {COVARIANCE_TYPES}, got {covariance_type!r}"
        )
    rng = np.random.default_rng(seed)
    weights = rng.dirichlet(np.full(n_components, 5.0))
    means = rng.normal(scale=separation, size=(n_components, n_features))
    if covariance_type == "full":
        covariances = np.stack([_random_spd(rng, n_features) for _ in range(n_components)])
        factors = np.linalg.cholesky(covariances)
    elif covariance_type == "tied":
        covariances = _random_spd(rng, n_features)
        factors = np.repeat(np.linalg.cholesky(covariances)[None], n_components, axis=0)
    elif covariance_type == "diag":
        covariances = rng.uniform(0.5, 2.0, size=(n_components, n_features))
        factors = np.stack([np.diag(np.sqrt(c)) for c in covariances])
    else:
        covariances = rng.uniform(0.5, 2.0, size=n_components)
        factors = np.stack([np.sqrt(c) * np.eye(n_features) for c in covariances])

    counts = rng.multinomial(n_samples, weights)
    X = np.empty((n_samples, n_features), dtype=dtype)
    start = 0
    for k, count in enumerate(counts):
        noise = rng.standard_normal((count, n_features))
        X[start : start + count] = means[k] + noise @ factors[k].T
        start += count
    # Interleave the components, as real data would be (blocks of one component would make the
    # E-step's branches unrealistically predictable).
    X = np.ascontiguousarray(X[rng.permutation(n_samples)])

    covariances_init = covariances * 1.5
    if covariance_type in ("full", "tied"):
        precisions_init = np.linalg.inv(covariances_init)
    else:
        precisions_init = 1.0 / covariances_init
    return Mixture(
        X=X,
        covariance_type=covariance_type,
        weights=weights,
        means=means,
        covariances=covariances,
        weights_init=np.full(n_components, 1.0 / n_components),
        means_init=means + 0.25 * rng.normal(size=means.shape),
        covariances_init=covariances_init,
        precisions_init=precisions_init,
    )


#: Data sets of ``compare.py --data``: ``standard`` is :func:`make_mixture` (means at scale 3,
#: started from the truth perturbed), ``blobs`` is :func:`make_blobs` (well-separated centres
#: at scale 6, rotated covariances, started diagonal from the data's variances).
DATA_KINDS = ("standard", "blobs")


def _rotation(rng, n_features):
    """A uniformly random orthogonal matrix (QR of a Gaussian matrix, signs fixed)."""
    q, r = np.linalg.qr(rng.standard_normal((n_features, n_features)))
    return q * np.sign(np.diag(r))


def make_blobs(
    n_samples,
    n_features,
    n_components,
    covariance_type="full",
    *,
    dtype=np.float64,
    seed=0,
    scale=6.0,
    condition=None,
    attribute_shape=None,
):
    """Well-separated blobs with rotated covariances, started diagonal from the data's variances.

    The case the performance issue measures: centres drawn at ``scale`` (standard deviation of
    each coordinate), so that once the components tighten their means lie hundreds of their own
    variances from the common centre (the feature map's spread limit matters); covariances
    ``Q diag(lambda) Q^T`` with a random rotation ``Q`` and ``lambda`` uniform in [0.5, 2] (full
    and every model that is not scikit-learn's tied, diag or spherical: a new ``Q`` per
    component; tied: one for all; diag: no rotation; spherical: one variance). The start is the
    truth's means moved by a quarter of a standard deviation, uniform weights, and every
    covariance the diagonal of the data's variances, as an initialisation from the data would
    give.

    ``condition``: eigenvalues spread geometrically from 1 to ``condition`` (each component's
    condition number, in random order) instead of uniform in [0.5, 2].
    ``attribute_shape(n_components, n_features)`` is the covariance model's attribute shape
    (default: scikit-learn's for its four names, (K, D, D) otherwise).
    """
    rng = np.random.default_rng(seed)
    weights = rng.dirichlet(np.full(n_components, 5.0))
    means = rng.normal(scale=scale, size=(n_components, n_features))

    def eigen():
        if condition is None:
            return rng.uniform(0.5, 2.0, size=n_features)
        return rng.permutation(np.geomspace(1.0, condition, n_features))

    if covariance_type == "tied":
        q = _rotation(rng, n_features)
        shared = (q * eigen()) @ q.T
        dense = np.repeat(shared[None], n_components, axis=0)
    elif covariance_type == "diag":
        dense = np.stack([np.diag(eigen()) for _ in range(n_components)])
    elif covariance_type == "spherical":
        dense = rng.uniform(0.5, 2.0, size=n_components)[:, None, None] * np.eye(n_features)
    else:
        dense = np.empty((n_components, n_features, n_features))
        for k in range(n_components):
            q = _rotation(rng, n_features)
            dense[k] = (q * eigen()) @ q.T
    factors = np.linalg.cholesky(dense)
    counts = rng.multinomial(n_samples, weights)
    X = np.empty((n_samples, n_features), dtype=dtype)
    start = 0
    for k, count in enumerate(counts):
        noise = rng.standard_normal((count, n_features))
        X[start : start + count] = means[k] + noise @ factors[k].T
        start += count
    X = np.ascontiguousarray(X[rng.permutation(n_samples)])

    variances = X.var(axis=0, dtype=np.float64)
    if covariance_type == "tied":
        covariances_init = np.diag(variances)
        precisions_init = np.diag(1.0 / variances)
        truth = dense[0]
    elif covariance_type == "diag":
        covariances_init = np.repeat(variances[None], n_components, axis=0)
        precisions_init = 1.0 / covariances_init
        truth = np.diagonal(dense, axis1=1, axis2=2).copy()
    elif covariance_type == "spherical":
        covariances_init = np.full(n_components, variances.mean())
        precisions_init = 1.0 / covariances_init
        truth = dense[:, 0, 0].copy()
    else:
        covariances_init = np.repeat(np.diag(variances)[None], n_components, axis=0)
        precisions_init = np.repeat(np.diag(1.0 / variances)[None], n_components, axis=0)
        truth = dense
    if attribute_shape is not None:
        shape = attribute_shape(n_components, n_features)
        covariances_init = covariances_init.reshape(shape)
        precisions_init = precisions_init.reshape(shape)
    return Mixture(
        X=X,
        covariance_type=covariance_type,
        weights=weights,
        means=means,
        covariances=truth,
        weights_init=np.full(n_components, 1.0 / n_components),
        means_init=means + 0.25 * rng.normal(size=means.shape),
        covariances_init=covariances_init,
        precisions_init=precisions_init,
    )


def make_data(kind, n_samples, n_features, n_components, covariance_type="full", **kwargs):
    """:func:`make_mixture` (``kind='standard'``) or :func:`make_blobs` (``'blobs'``)."""
    if kind == "blobs":
        return make_blobs(n_samples, n_features, n_components, covariance_type, **kwargs)
    if kind != "standard":
        raise ValueError(f"data must be one of {DATA_KINDS}, got {kind!r}")
    kwargs.pop("attribute_shape", None)
    if covariance_type in COVARIANCE_TYPES:
        return make_mixture(n_samples, n_features, n_components, covariance_type, **kwargs)
    # Other models (mclust's names) keep (K, D, D) attributes: fit them to full-covariance data.
    mixture = make_mixture(n_samples, n_features, n_components, "full", **kwargs)
    mixture.covariance_type = covariance_type
    return mixture


def flops_per_iteration(covariance_type, n_samples, n_features, n_components):
    """Useful floating-point operations of one EM iteration, for GFLOP/s figures.

    full, tied: ``2 N K D^2`` (a triangular solve per row and component in the E-step, a
    rank-one update of the upper triangle in the statistics; ``D^2`` each).
    diag, spherical: ``4 N K D`` (the same two passes, ``2 D`` each).
    Lower-order terms (log-sum-exp, the M-step's Cholesky factors) are left out.
    """
    n, d, k = n_samples, n_features, n_components
    if covariance_type in ("full", "tied"):
        return 2.0 * n * k * d * d
    if covariance_type in ("diag", "spherical"):
        return 4.0 * n * k * d
    raise ValueError(f"Unknown covariance_type {covariance_type!r}")


def _statistics_kind(covariance_type):
    """'full', 'pooled' or 'diag': the statistics a covariance model's M-step needs."""
    if covariance_type in COVARIANCE_TYPES:
        return {"full": "full", "tied": "pooled", "diag": "diag", "spherical": "diag"}[
            covariance_type
        ]
    from fastgmm.covariance import get_model
    from fastgmm.stats import DIAG, POOLED

    kind = get_model(covariance_type).statistics
    return "pooled" if kind == POOLED else "diag" if kind == DIAG else "full"


def floor_flops_per_row(covariance_type, n_features, n_components):
    """The arithmetic one EM iteration cannot avoid per row (a multiply-add counts 2).

    - full (one factor per component): the quadratic form through the triangular factor,
      ``D (D + 1)`` per component, and the rank-one update of the upper triangle of its second
      moment with its first moment, ``D (D + 1) + 2 D``: ``K (2 D^2 + 4 D)``.
    - tied (one shared factor): the transform ``D (D + 1)``; distances in the transformed
      space as ``|y|^2 - 2 nu_k . y + |nu_k|^2``, ``2 K D``; first moments ``2 K D``; the
      pooled second moment, the rows' offsets from their soft means ``2 K D`` and one rank-one
      update ``D (D + 1)``; pair weights ``K (K + 1)``:  ``2 D (D + 1) + 6 K D + K (K + 1)``.
    - diag: distances as a dot of ``(x, x^2)`` with ``(-2 s^2 m, s^2)``, ``4 K D``; first and
      second moments as ``R X`` and ``R X^2``, ``4 K D``: ``8 K D``.
    - spherical: ``|x|^2 - 2 mu_k . x + |mu_k|^2``, ``2 K D``; first moments ``2 K D``; second
      moments ``R |x|^2``, ``2 K``: ``4 K D + 2 K``.

    Other models count as the model of scikit-learn with the same statistics. The ``K``
    exponentials of the normalisation are left out, so this is a lower bound.
    """
    d, k = n_features, n_components
    if covariance_type == "spherical":
        return 4.0 * k * d + 2.0 * k
    kind = _statistics_kind(covariance_type)
    if kind == "diag":
        return 8.0 * k * d
    if kind == "pooled":
        return 2.0 * d * (d + 1) + 6.0 * k * d + k * (k + 1)
    return k * (2.0 * d * d + 4.0 * d)


def score_flops_per_row(covariance_type, n_features, n_components):
    """The arithmetic of scoring one row: each component's quadratic form.

    full: ``K D (D + 1)`` (the triangular factor's product); tied: ``D (D + 1) + 2 K D``;
    diag: ``4 K D``; spherical: ``2 K D``.
    """
    d, k = n_features, n_components
    if covariance_type == "spherical":
        return 2.0 * k * d
    kind = _statistics_kind(covariance_type)
    if kind == "diag":
        return 4.0 * k * d
    if kind == "pooled":
        return d * (d + 1) + 2.0 * k * d
    return k * d * (d + 1.0)


def fixed_work_params(mixture, covariance_type=None, max_iter=FIT_ITERATIONS):
    """Estimator keywords for a fit of exactly ``max_iter`` EM iterations from the shared init."""
    return {
        "n_components": mixture.n_components,
        "covariance_type": covariance_type or mixture.covariance_type,
        "tol": 0.0,
        "max_iter": max_iter,
        "reg_covar": REG_COVAR,
        **mixture.init_kwargs(),
    }


def available_cpus() -> int:
    """CPUs this process may run on (its affinity mask)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS and Windows have no affinity API
        return os.cpu_count() or 1


def warm_jit(dtype="float64", n_jobs=None):
    """Compile (or load from the on-disk cache) every kernel a fit and a prediction use.

    Called from ``setup`` so that no timed call pays for Numba compilation. The kernels are
    specialised on the input dtype only, so one small fit with k-means initialisation (the
    k-means, hard-assignment and EM kernels) and one ``predict_proba`` (the scoring kernel) per
    dtype are enough. ``n_jobs=1`` runs (and so compiles) the serial twins of the kernels.
    """
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    from fastgmm import GaussianMixture

    mixture = make_mixture(2_000, 3, 2, "full", dtype=np.dtype(dtype), seed=123)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = GaussianMixture(2, max_iter=2, random_state=0, n_jobs=n_jobs).fit(mixture.X)
    model.predict_proba(mixture.X)
