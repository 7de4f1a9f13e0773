"""scikit-learn's four covariance types, with scikit-learn's attribute shapes and arithmetic.

In mclust's naming they are VVV ('full'), EEE ('tied'), VVI ('diag') and VII ('spherical'); the
maths is the same, only the attributes differ ('tied' keeps one (D, D) matrix, 'diag' (K, D)
variances, 'spherical' (K,) variances). Their M-steps repeat scikit-learn's formulas exactly
(``_estimate_gaussian_covariances_*``), so fits agree with scikit-learn to rounding.
"""

from __future__ import annotations

import numpy as np

from ..stats import DIAG, FULL, POOLED, SharedLayout
from ._base import (
    CovarianceModel,
    cholesky_factors,
    diagonal_layout,
    factor_layout,
    precisions_cholesky_of,
)

__all__ = ["Diag", "Full", "Spherical", "Tied"]


class Full(CovarianceModel):
    """Each component has its own general covariance matrix (mclust's VVV).

    Examples
    --------
    >>> import numpy as np
    >>> from fastgmm.covariance import get_model
    >>> full = get_model("full")
    >>> cov = np.array([[[2.0, 0.5], [0.5, 1.0]]])
    >>> means, covariances, factors, _ = full.estimate(np.ones(1), np.zeros((1, 2)), cov)
    >>> bool(np.allclose(factors[0] @ factors[0].T, np.linalg.inv(cov[0])))
    True
    """

    name = "full"
    statistics = FULL
    description = "each component has its own general covariance matrix"

    def n_covariance_parameters(self, n_components, n_features):
        return n_components * n_features * (n_features + 1) // 2

    def estimate(self, nk, means, covariance, *, previous=None, prior=None):
        _no_prior(self, prior)
        return means, covariance, cholesky_factors(covariance), None

    def layout(self, params):
        return factor_layout(params)


class Tied(CovarianceModel):
    """All components share one general covariance matrix (mclust's EEE).

    The E-step transforms each block once by the shared precision factor (see
    :class:`fastgmm.stats.SharedLayout`) and the M-step needs only the pooled scatter.

    Examples
    --------
    >>> import numpy as np
    >>> from fastgmm.covariance import get_model
    >>> tied = get_model("tied")
    >>> tied.covariance_shape(3, 2), tied.n_covariance_parameters(3, 2)
    ((2, 2), 3)
    """

    name = "tied"
    statistics = POOLED
    description = "all components share one general covariance matrix"

    def n_covariance_parameters(self, n_components, n_features):
        return n_features * (n_features + 1) // 2

    def covariance_shape(self, n_components, n_features):
        return (n_features, n_features)

    def dense(self, covariances, n_components, n_features):
        return np.repeat(np.asarray(covariances, dtype=np.float64)[None], n_components, axis=0)

    def precisions_cholesky_from_precisions(self, precisions):
        return super().precisions_cholesky_from_precisions(precisions[None])[0]

    def covariances_from_precisions_cholesky(self, precisions_cholesky):
        return super().covariances_from_precisions_cholesky(precisions_cholesky[None])[0]

    def estimate(self, nk, means, covariance, *, previous=None, prior=None):
        _no_prior(self, prior)
        return means, covariance, cholesky_factors(covariance[None], shared=True)[0], None

    def layout(self, params):
        n_components, n_features = params.means.shape
        return SharedLayout.shared(
            params.weights,
            params.means,
            params.precisions_cholesky,
            np.ones((n_components, n_features)),
            triangular=True,
        )

    def sample(self, rng, means, covariances, counts):
        return [rng.multivariate_normal(m, covariances, int(n)) for m, n in zip(means, counts)]


class Diag(CovarianceModel):
    """Each component has its own diagonal covariance (mclust's VVI).

    Examples
    --------
    >>> import numpy as np
    >>> from fastgmm.covariance import get_model
    >>> diag = get_model("diag")
    >>> diag.estimate(np.ones(1), np.zeros((1, 2)), np.array([[4.0, 0.25]]))[2]
    array([[0.5, 2. ]])
    """

    name = "diag"
    statistics = DIAG
    description = "each component has its own diagonal covariance"

    def n_covariance_parameters(self, n_components, n_features):
        return n_components * n_features

    def covariance_shape(self, n_components, n_features):
        return (n_components, n_features)

    def dense(self, covariances, n_components, n_features):
        return np.stack([np.diag(c) for c in np.asarray(covariances, dtype=np.float64)])

    def precisions(self, precisions_cholesky):
        return precisions_cholesky**2

    def precisions_cholesky_from_precisions(self, precisions):
        return np.sqrt(precisions)

    def covariances_from_precisions_cholesky(self, precisions_cholesky):
        return 1.0 / precisions_cholesky**2

    def check_precisions(self, precisions, n_components, n_features):
        _check_positive(self, precisions, (n_components, n_features))

    def estimate(self, nk, means, covariance, *, previous=None, prior=None):
        _no_prior(self, prior)
        return means, covariance, precisions_cholesky_of(covariance), None

    def layout(self, params):
        return diagonal_layout(params, params.precisions_cholesky)

    def sample(self, rng, means, covariances, counts):
        n_features = means.shape[1]
        return [
            m + rng.standard_normal(size=(int(n), n_features)) * np.sqrt(c)
            for m, c, n in zip(means, covariances, counts)
        ]


class Spherical(Diag):
    """Each component has its own single variance (mclust's VII).

    Examples
    --------
    >>> import numpy as np
    >>> from fastgmm.covariance import get_model
    >>> spherical = get_model("spherical")
    >>> spherical.estimate(np.ones(1), np.zeros((1, 2)), np.array([[3.0, 1.0]]))[1]
    array([2.])
    """

    name = "spherical"
    description = "each component has its own single variance"

    def n_covariance_parameters(self, n_components, n_features):
        return n_components

    def covariance_shape(self, n_components, n_features):
        return (n_components,)

    def dense(self, covariances, n_components, n_features):
        covariances = np.asarray(covariances, dtype=np.float64)
        return covariances[:, None, None] * np.eye(n_features)[None]

    def check_precisions(self, precisions, n_components, n_features):
        _check_positive(self, precisions, (n_components,))

    def estimate(self, nk, means, covariance, *, previous=None, prior=None):
        _no_prior(self, prior)
        variances = covariance.mean(axis=1)
        return means, variances, precisions_cholesky_of(variances), None

    def layout(self, params):
        n_features = params.means.shape[1]
        scales = np.repeat(params.precisions_cholesky[:, None], n_features, axis=1)
        return diagonal_layout(params, scales)


def _check_positive(model, precisions, shape):
    from ..validation import check_shape

    name = f"{model.name} precision"
    check_shape(precisions, shape, name)
    if np.any(precisions <= 0.0):
        raise ValueError(f"'{name}' should be positive")


def _no_prior(model, prior):
    if prior is not None:
        raise ValueError(f"covariance_type={model.name!r} takes no prior.")
