"""Sufficient statistics, the M-step, and the parameter conversions around them.

Everything that turns kernel output into mixture parameters, or parameters into kernel input,
lives here, so the in-memory, streaming and Dask fits share one copy of the maths.

The statistics of a data set are additive over any partition of its rows::

    nk[k]  = sum_i w_i r_ik
    s1[k]  = sum_i w_i r_ik (x_i - shift_k)
    s2[k]  = sum_i w_i r_ik (x_i - shift_k)(x_i - shift_k)^T      (full, tied)
           = sum_i w_i r_ik (x_i - shift_k)**2                      (diag, spherical)

Moments are taken about ``shift`` (the means of the previous iteration) rather than the origin:
``cov = s2/nk - d d^T`` with ``d = s1/nk`` then subtracts two numbers of the size of the
covariance, instead of two of the size of ``|x|^2``, so data far from 0 keep their digits.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import linalg

from ._kernels.linalg import invert_lower_transposed

COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")

_ILL_DEFINED = (
    "Fitting the mixture model failed because some components have "
    "ill-defined empirical covariance (for instance caused by singleton "
    "or collapsed samples). Try to decrease the number of components, "
    "increase reg_covar, or scale the input data."
)
# A covariance that overflowed is not "ill-defined": its rows are too large to square.
_OVERFLOW = (
    "Fitting the mixture model failed because a covariance is not finite: the input values "
    "are too large to be squared in float64 (or too far from each other). Scale the input data."
)
_FLOAT32_HINT = (
    " The numerical accuracy can also be improved by passing float64 data instead of float32."
)


@dataclass
class SufficientStats:
    """Additive statistics of some rows under fixed parameters (all float64).

    Attributes
    ----------
    nk : ndarray of shape (n_components,)
    s1 : ndarray of shape (n_components, n_features)
    s2 : ndarray of shape (n_components, n_features, n_features) or (n_components, 1, n_features)
        Upper triangle only for full factors; see :func:`m_step`.
    shift : ndarray of shape (n_components, n_features)
        The origin of ``s1`` and ``s2``. Statistics can only be added if their shifts agree.
    log_lik : float
        Weighted sum of the rows' log-likelihoods.
    weight_sum : float
        Sum of the sample weights (the number of rows when unweighted).
    n_rows : int
        Number of rows seen; used to prove that no row of a source was lost.

    Examples
    --------
    >>> import numpy as np
    >>> from fastgmm.stats import SufficientStats
    >>> def at_origin(n):  # the statistics of n rows at the origin, one component
    ...     return SufficientStats(np.array([float(n)]), np.zeros((1, 2)), np.zeros((1, 1, 2)),
    ...                            np.zeros((1, 2)), -1.5 * n, float(n), n)
    >>> total = at_origin(3) + at_origin(5)  # statistics add over any split of the rows
    >>> total.n_rows, total.mean_log_likelihood
    (8, -1.5)
    """

    nk: np.ndarray
    s1: np.ndarray
    s2: np.ndarray
    shift: np.ndarray
    log_lik: float
    weight_sum: float
    n_rows: int

    def __add__(self, other: SufficientStats) -> SufficientStats:
        if not np.array_equal(self.shift, other.shift):
            raise ValueError("Cannot add statistics taken about different shifts.")
        return SufficientStats(
            self.nk + other.nk,
            self.s1 + other.s1,
            self.s2 + other.s2,
            self.shift,
            self.log_lik + other.log_lik,
            self.weight_sum + other.weight_sum,
            self.n_rows + other.n_rows,
        )

    @property
    def mean_log_likelihood(self) -> float:
        """The lower bound that EM reports: the weighted mean log-likelihood per row."""
        return self.log_lik / self.weight_sum

    def is_finite(self) -> bool:
        """Whether every statistic and the log-likelihood are finite."""
        return bool(
            np.isfinite(self.log_lik)
            and np.isfinite(self.nk).all()
            and np.isfinite(self.s1).all()
            and np.isfinite(self.s2).all()
        )


@dataclass
class MixtureParams:
    """Parameters of a Gaussian mixture in scikit-learn's shapes (float64 during fitting).

    Examples
    --------
    >>> import numpy as np
    >>> from fastgmm.stats import MixtureParams, precision_cholesky
    >>> covariances = np.array([[1.0, 4.0], [0.25, 1.0]])
    >>> params = MixtureParams(np.array([0.3, 0.7]), np.zeros((2, 2)), covariances,
    ...                        precision_cholesky(covariances, "diag"), "diag")
    >>> params.n_components, params.n_features, params.precisions_cholesky
    (2, 2, array([[1. , 0.5],
           [2. , 1. ]]))
    """

    weights: np.ndarray
    means: np.ndarray
    covariances: np.ndarray | None
    precisions_cholesky: np.ndarray
    covariance_type: str

    @property
    def n_components(self) -> int:
        return self.means.shape[0]

    @property
    def n_features(self) -> int:
        return self.means.shape[1]


# Full/tied models up to this many features are scored through the quadratic feature map (one
# BLAS product for all components); beyond it the map's D(D+1)/2 columns outgrow the cache and
# one triangular product per component is faster.
FEATURE_MAP_MAX_FULL = 32
# The feature map takes every component's moments about one centre, so a component whose mean
# lies t of its own standard deviations from that centre loses about t**2 ulps in its covariance.
# Beyond t**2 = 1e4 (digits lost: 4) the exact per-component kernels are used instead; that is
# the case of a component collapsing onto a point far from the others.
FEATURE_MAP_MAX_SPREAD = 1e4
# float32 data go through the map in single precision (eps 6e-8), where 1e4 ulps would be a
# relative error of 6e-4, so the map takes them only up to t**2 = 1e3, and the per-component
# kernels (moments about each mean) beyond. Measured on (c)'s data (t**2 = 436, D=32, K=32):
# covariances within 9e-7 relative of the float64 kernels at N=8000, and 2e-7 at N=2e5 (the
# per-block errors are independent and average out); the mean log-likelihood within 1.4e-8.
FEATURE_MAP_MAX_SPREAD_FLOAT32 = 1e3
# Single-precision products lose about cond ulps: cond(U_k) for a triangular product (U_k^T
# (x - mu_k)) and cond(Sigma_k) = cond(U_k)**2 for the feature map, whose coefficients are the
# precisions themselves. float32 data are multiplied in single precision only while that stays
# below these bounds (with eps 6e-8: a row's log-density within about 4e-5 relative in the
# worst case; the statistics average these errors out over the rows). Ill-conditioned models
# (a component thin along some direction) are computed in float64 instead. The bound applies to
# the feature map as t**2 + cond(Sigma_k), spread and conditioning together.
SINGLE_PRECISION_MAX_COND = 300.0
# Magnitudes the single-precision feature map accepts (float32 overflows at 3.4e38 and loses
# precision below 1.2e-38), with room for the products of features and coefficients.
_FLOAT32_SAFE = 1e30


@dataclass
class FeatureMap:
    """Each component's weighted log-density as a linear function of quadratic features.

    ``log w_k + log N(x | k) = phi(x - centre) . coef[:, k]`` with ``phi`` the features of
    :func:`fastgmm._kernels.blocks.load_features`.

    Examples
    --------
    >>> import numpy as np
    >>> from fastgmm.stats import MixtureParams, kernel_params
    >>> params = MixtureParams(np.array([0.5, 0.5]), np.array([[0.0, 0.0], [2.0, 2.0]]), None,
    ...                        np.ones((2, 2)), "diag")
    >>> fmap = kernel_params(params).feature_map()
    >>> fmap.centre, fmap.coef.shape, fmap.pairs  # features: x, x**2 and 1, per component
    (array([1., 1.]), (5, 2), False)
    """

    centre: np.ndarray
    coef: np.ndarray
    pairs: bool
    #: The largest squared distance, in its own standard deviations, of a mean from ``centre``.
    spread: float = 0.0
    #: Whether coefficients and features stay well inside float32's normal range.
    fits_float32: bool = True


@dataclass
class KernelParams:
    """Parameters laid out for the kernels (see :mod:`fastgmm._kernels.blocks`).

    Examples
    --------
    >>> import numpy as np
    >>> from fastgmm.stats import MixtureParams, kernel_params
    >>> params = MixtureParams(np.array([0.5, 0.5]), np.array([[0.0, 0.0], [2.0, 2.0]]), None,
    ...                        np.ones((2, 2)), "diag")
    >>> kp = kernel_params(params)
    >>> kp.means.shape, kp.prec.shape, kp.log_const.shape
    ((2, 2), (2, 1, 2), (2,))
    """

    means: np.ndarray
    prec: np.ndarray
    log_const: np.ndarray
    _feature_map: FeatureMap | None = None
    _condition: float | None = None

    def feature_map(self, dtype=np.float64) -> FeatureMap | None:
        """The feature-map form of these parameters, or None where it does not suit them.

        ``dtype`` is that of the data: float32 data are mapped in single precision, which
        tolerates less spread between the means (see ``FEATURE_MAP_MAX_SPREAD_FLOAT32``).
        """
        if self._feature_map is None:
            self._feature_map = _feature_map(self.means, self.prec, self.log_const)
        fmap = self._feature_map
        if not fmap:
            return None
        if np.dtype(dtype) != np.float32:
            return fmap if fmap.spread <= FEATURE_MAP_MAX_SPREAD else None
        # Coefficients are precisions (1/variance) and features squared offsets (variances):
        # variances near 1e-40 or 1e40 overflow or underflow in float32, so the per-component
        # kernels (which work with standard deviations) take those.
        usable = (
            fmap.fits_float32
            and fmap.spread + self.condition() ** 2 <= FEATURE_MAP_MAX_SPREAD_FLOAT32
        )
        return fmap if usable else None

    def condition(self) -> float:
        """The largest condition number of a precision factor ``U_k`` (about
        ``sqrt(cond(Sigma_k))``), see :func:`factor_condition`."""
        if self._condition is None:
            self._condition = factor_condition(self.prec)
        return self._condition

    def single_precision_suits(self) -> bool:
        """Whether float32 rows may go through the single-precision per-component kernels."""
        return self.condition() <= SINGLE_PRECISION_MAX_COND


def factor_condition(prec: np.ndarray) -> float:
    """The largest condition number of the kernels' precision factors ``prec``.

    LAPACK's 1-norm estimate for the triangular factors (``dtrcon``: O(D^2) per component,
    exact to a small factor), the ratio of the largest to the smallest entry for diagonal ones
    ``(K, 1, D)``. Singular or non-finite factors give ``inf``.

    Examples
    --------
    >>> import numpy as np
    >>> from fastgmm.stats import factor_condition
    >>> float(factor_condition(np.array([[[1.0, 4.0]], [[2.0, 2.0]]])))  # diag
    4.0
    >>> float(factor_condition(np.eye(3)[None]))
    1.0
    """
    from scipy.linalg import lapack

    if not np.all(np.isfinite(prec)):
        return math.inf
    if prec.shape[1] == 1:
        magnitude = np.abs(prec[:, 0, :])
        with np.errstate(divide="ignore"):
            return float(np.max(magnitude.max(axis=1) / magnitude.min(axis=1)))
    worst = 0.0
    for factor in prec:
        rcond, _ = lapack.dtrcon(factor, norm="1", uplo="U")
        worst = max(worst, math.inf if rcond <= 0.0 else 1.0 / rcond)
    return worst


def _feature_map(means, prec, log_const):
    _, s2_rows, n_features = prec.shape
    pairs = s2_rows != 1
    if pairs and n_features > FEATURE_MAP_MAX_FULL:
        return False
    centre = means.mean(axis=0)
    offsets = means - centre
    whitened = np.einsum("kde,kd->ke", prec, offsets) if pairs else prec[:, 0, :] * offsets
    spread = float(np.max(np.einsum("kd,kd->k", whitened, whitened)))
    if not spread <= FEATURE_MAP_MAX_SPREAD:  # also refuses NaN
        return False
    if pairs:
        precisions = prec @ np.swapaxes(prec, 1, 2)
        linear = np.einsum("kde,ke->kd", precisions, offsets)
        rows, cols = np.triu_indices(n_features)
        quadratic = -precisions[:, rows, cols] * np.where(rows == cols, 0.5, 1.0)
    else:
        precisions = prec[:, 0, :] ** 2
        linear = precisions * offsets
        quadratic = -0.5 * precisions
    constant = log_const - 0.5 * np.einsum("kd,kd->k", offsets, linear)
    coef = np.concatenate([linear, quadratic, constant[:, None]], axis=1).T
    variances = 1.0 / (np.diagonal(precisions, axis1=1, axis2=2) if pairs else precisions)
    fits_float32 = bool(
        np.max(np.abs(coef)) <= _FLOAT32_SAFE and np.max(variances) <= _FLOAT32_SAFE
    )
    return FeatureMap(centre, np.ascontiguousarray(coef), pairs, spread, fits_float32)


def unpack_feature_statistics(packed, fmap: FeatureMap):
    """``nk``, ``s1`` and ``s2`` (about ``fmap.centre``) from the feature kernel's sums.

    Examples
    --------
    >>> import numpy as np
    >>> from fastgmm.stats import FeatureMap, unpack_feature_statistics
    >>> fmap = FeatureMap(np.zeros(2), np.zeros((5, 1)), pairs=False)
    >>> packed = np.array([[1.0, 2.0, 3.0, 4.0, 5.0]])  # s1 (2 features), s2 diagonal, nk
    >>> unpack_feature_statistics(packed, fmap)
    (array([5.]), array([[1., 2.]]), array([[[3., 4.]]]))
    """
    n_components = packed.shape[0]
    n_features = fmap.centre.shape[0]
    nk = packed[:, -1].copy()
    s1 = packed[:, :n_features].copy()
    if fmap.pairs:
        s2 = np.zeros((n_components, n_features, n_features))
        rows, cols = np.triu_indices(n_features)
        s2[:, rows, cols] = packed[:, n_features:-1]
    else:
        s2 = packed[:, None, n_features:-1].copy()
    return nk, s1, s2


def m_step(stats: SufficientStats, covariance_type: str, reg_covar: float, dtype=np.float64):
    """Turn sufficient statistics into new weights, means and covariances.

    Follows scikit-learn's ``_estimate_gaussian_parameters`` (including its ``10 * eps`` guard on
    empty components) but works from moments about ``stats.shift``.

    Returns
    -------
    weights, means, covariances : ndarray
        Weights normalised to sum to 1; covariances in scikit-learn's shape for the type.

    Examples
    --------
    The rows (0, 1) and (2, -1), one component, moments about the origin:

    >>> import numpy as np
    >>> from fastgmm.stats import SufficientStats, m_step
    >>> stats = SufficientStats(nk=np.array([2.0]), s1=np.array([[2.0, 0.0]]),
    ...                         s2=np.array([[[4.0, 2.0]]]), shift=np.zeros((1, 2)),
    ...                         log_lik=-3.0, weight_sum=2.0, n_rows=2)
    >>> weights, means, covariances = m_step(stats, "diag", reg_covar=0.0)
    >>> weights, means.round(12), covariances.round(12)
    (array([1.]), array([[1., 0.]]), array([[1., 1.]]))
    """
    if not all(np.all(np.isfinite(a)) for a in (stats.nk, stats.s1, stats.s2)):
        raise ValueError(_OVERFLOW)  # before NumPy warns about inf - inf below
    nk = stats.nk + 10 * np.finfo(dtype).eps
    offset = stats.s1 / nk[:, None]
    means = stats.shift + offset
    if covariance_type in ("full", "tied"):
        s2 = _symmetrise_upper(stats.s2)
        scatter = s2 / nk[:, None, None] - offset[:, :, None] * offset[:, None, :]
        if covariance_type == "full":
            covariances = scatter
            _add_to_diagonal(covariances, reg_covar)
        else:
            covariances = np.tensordot(nk, scatter, axes=1) / nk.sum()
            covariances = 0.5 * (covariances + covariances.T)
            covariances[np.diag_indices_from(covariances)] += reg_covar
    else:
        variances = stats.s2[:, 0, :] / nk[:, None] - offset**2
        if covariance_type == "diag":
            covariances = variances + reg_covar
        else:
            covariances = variances.mean(axis=1) + reg_covar
    return nk / nk.sum(), means, covariances


def _symmetrise_upper(s2: np.ndarray) -> np.ndarray:
    """Copy the upper triangle of each matrix onto its lower triangle."""
    upper = np.triu(s2)
    return upper + np.swapaxes(np.triu(s2, 1), -1, -2)


def _add_to_diagonal(matrices: np.ndarray, value: float) -> None:
    n = matrices.shape[-1]
    idx = np.arange(n)
    matrices[..., idx, idx] += value


def precision_cholesky(covariances: np.ndarray, covariance_type: str, float32_hint=False):
    """Upper-triangular Cholesky factors of the precisions, as sklearn's ``precisions_cholesky_``.

    Raises
    ------
    ValueError
        scikit-learn's message when a covariance is not positive definite.

    Examples
    --------
    >>> import numpy as np
    >>> from fastgmm.stats import precision_cholesky
    >>> precision_cholesky(np.array([[4.0, 0.25]]), "diag")  # 1 / standard deviations
    array([[0.5, 2. ]])
    >>> cov = np.array([[[2.0, 1.0], [1.0, 2.0]]])
    >>> U = precision_cholesky(cov, "full")[0]
    >>> bool(np.allclose(U @ U.T, np.linalg.inv(cov[0]))), bool(np.allclose(U, np.triu(U)))
    (True, True)
    >>> precision_cholesky(np.array([[0.0, 1.0]]), "diag")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: Fitting the mixture model failed because some components have ill-defined ...
    """
    message = _ILL_DEFINED + (_FLOAT32_HINT if float32_hint else "")
    if covariance_type in ("full", "tied"):
        matrices = covariances if covariance_type == "full" else covariances[None]
        if not np.all(np.isfinite(matrices)):
            raise ValueError(_OVERFLOW)
        lower = np.empty(matrices.shape)
        for k, cov in enumerate(matrices):
            try:
                lower[k] = linalg.cholesky(cov, lower=True)
            except linalg.LinAlgError:
                raise ValueError(message) from None
        out = np.empty(matrices.shape)
        invert_lower_transposed(lower, out)
        return out if covariance_type == "full" else out[0]
    if not np.all(np.isfinite(covariances)):
        raise ValueError(_OVERFLOW)
    if np.any(covariances <= 0.0):
        raise ValueError(message)
    return 1.0 / np.sqrt(covariances)


def precision_cholesky_from_precisions(precisions: np.ndarray, covariance_type: str):
    """Upper Cholesky factors ``U`` with ``U U^T = precision`` (sklearn's flip trick).

    Examples
    --------
    >>> import numpy as np
    >>> from fastgmm.stats import precision_cholesky_from_precisions
    >>> precisions = np.array([[[2.0, -1.0], [-1.0, 2.0]]])
    >>> U = precision_cholesky_from_precisions(precisions, "full")[0]
    >>> bool(np.allclose(U @ U.T, precisions[0])), bool(np.allclose(U, np.triu(U)))
    (True, True)
    """
    if covariance_type in ("full", "tied"):
        matrices = precisions if covariance_type == "full" else precisions[None]
        out = np.stack([np.flip(linalg.cholesky(np.flip(p), lower=True)) for p in matrices])
        return out if covariance_type == "full" else out[0]
    return np.sqrt(precisions)


def precisions_from_cholesky(prec_chol: np.ndarray, covariance_type: str) -> np.ndarray:
    """``precisions_`` from ``precisions_cholesky_``.

    Examples
    --------
    >>> import numpy as np
    >>> from fastgmm.stats import precisions_from_cholesky
    >>> precisions_from_cholesky(np.array([[0.5, 2.0]]), "diag")
    array([[0.25, 4.  ]])
    """
    if covariance_type == "full":
        return prec_chol @ np.swapaxes(prec_chol, 1, 2)
    if covariance_type == "tied":
        return prec_chol @ prec_chol.T
    return prec_chol**2


def covariances_from_cholesky(prec_chol: np.ndarray, covariance_type: str) -> np.ndarray:
    """Covariances implied by precision factors (used when only precisions were given).

    Examples
    --------
    >>> import numpy as np
    >>> from fastgmm.stats import covariances_from_cholesky, precision_cholesky
    >>> cov = np.array([[[2.0, 1.0], [1.0, 2.0]]])
    >>> bool(np.allclose(covariances_from_cholesky(precision_cholesky(cov, "full"), "full"), cov))
    True
    """
    if covariance_type in ("full", "tied"):
        matrices = prec_chol if covariance_type == "full" else prec_chol[None]
        eye = np.eye(matrices.shape[-1])
        covs = []
        for u in matrices:
            u_inv = linalg.solve_triangular(u, eye, lower=False)
            covs.append(u_inv.T @ u_inv)
        out = np.stack(covs)
        return out if covariance_type == "full" else out[0]
    return 1.0 / prec_chol**2


def log_det_cholesky(prec_chol: np.ndarray, covariance_type: str, n_features: int):
    """``log det U_k`` per component, as sklearn's ``_compute_log_det_cholesky``.

    Examples
    --------
    >>> import numpy as np
    >>> from fastgmm.stats import log_det_cholesky
    >>> log_det_cholesky(np.array([[0.5, 2.0], [1.0, np.e]]), "diag", 2)
    array([0., 1.])
    """
    if covariance_type == "full":
        return np.log(np.diagonal(prec_chol, axis1=1, axis2=2)).sum(axis=1)
    if covariance_type == "tied":
        return np.log(np.diagonal(prec_chol)).sum()
    if covariance_type == "diag":
        return np.log(prec_chol).sum(axis=1)
    return n_features * np.log(prec_chol)


def kernel_params(params: MixtureParams) -> KernelParams:
    """Lay parameters out for the kernels: float64, precision factors as a 3-D array.

    Examples
    --------
    >>> import numpy as np
    >>> from fastgmm.stats import MixtureParams, kernel_params
    >>> params = MixtureParams(np.array([0.5, 0.5]), np.zeros((2, 3)), None, np.ones(2),
    ...                        "spherical")
    >>> kernel_params(params).prec.shape  # one factor per feature, as for 'diag'
    (2, 1, 3)
    """
    n_components, n_features = params.means.shape
    ctype = params.covariance_type
    prec_chol = np.asarray(params.precisions_cholesky, dtype=np.float64)
    if ctype == "full":
        prec = prec_chol
    elif ctype == "tied":
        prec = np.repeat(prec_chol[None], n_components, axis=0)
    elif ctype == "diag":
        prec = prec_chol[:, None, :]
    else:
        prec = np.repeat(prec_chol[:, None, None], n_features, axis=2)
    log_det = np.broadcast_to(log_det_cholesky(prec_chol, ctype, n_features), (n_components,))
    with np.errstate(divide="ignore"):
        log_weights = np.log(np.asarray(params.weights, dtype=np.float64))
    log_const = log_weights - 0.5 * n_features * math.log(2 * math.pi) + log_det
    return KernelParams(
        np.ascontiguousarray(params.means, dtype=np.float64),
        np.ascontiguousarray(prec),
        np.ascontiguousarray(log_const, dtype=np.float64),
    )


def n_parameters(covariance_type: str, n_components: int, n_features: int) -> int:
    """Number of free parameters, as sklearn's ``GaussianMixture._n_parameters``.

    Weights (K - 1), means (K D) and covariances: K D (D + 1) / 2 for 'full', D (D + 1) / 2
    for 'tied', K D for 'diag', K for 'spherical'.

    Examples
    --------
    >>> from fastgmm.stats import n_parameters
    >>> [n_parameters(t, 3, 2) for t in ("full", "tied", "diag", "spherical")]
    [17, 11, 14, 11]
    """
    if covariance_type == "full":
        cov_params = n_components * n_features * (n_features + 1) / 2.0
    elif covariance_type == "diag":
        cov_params = n_components * n_features
    elif covariance_type == "tied":
        cov_params = n_features * (n_features + 1) / 2.0
    else:
        cov_params = n_components
    mean_params = n_features * n_components
    return int(cov_params + mean_params + n_components - 1)
