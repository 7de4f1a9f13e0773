"""Sufficient statistics, the parameter containers, and the kernels' layouts of the parameters.

Everything that turns kernel output into the M-step's input, or parameters into kernel input,
lives here, so the in-memory, streaming and Dask fits share one copy of the maths. What a
covariance *is* (its M-step, its shapes) belongs to the covariance models
(:mod:`fastgmm.covariance`); what the kernels need to evaluate it is one of two layouts:
:class:`FactorLayout` (one triangular factor per component) or :class:`SharedLayout` (one
transform for all components, a diagonal scale per component).

The statistics of a data set are additive over any partition of its rows::

    nk[k]  = sum_i w_i r_ik
    s1[k]  = sum_i w_i r_ik (x_i - shift_k)
    s2[k]  = sum_i w_i r_ik (x_i - shift_k)(x_i - shift_k)^T        (FULL: per component)
    s2[k]  = sum_i w_i r_ik (x_i - shift_k)**2                       (DIAG)
    s2[0]  = sum_k sum_i w_i r_ik (x_i - shift_k)(x_i - shift_k)^T   (POOLED: one matrix)

Moments are taken about ``shift`` (the means of the previous iteration) rather than the origin:
the scatter about the new mean, ``s2 - nk d d^T`` with ``d = s1/nk``, then subtracts two numbers
of the size of the covariance, instead of two of the size of ``|x|^2``, so data far from 0 keep
their digits.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field

import numpy as np

from ._kernels.blocks import DIAG, FULL, POOLED
from .errors import CovarianceOverflowError

__all__ = [
    "DIAG",
    "FULL",
    "NOISE_LABEL",
    "POOLED",
    "FactorLayout",
    "FeatureMap",
    "MixtureParams",
    "SharedLayout",
    "SufficientStats",
    "factor_condition",
    "pooled_about",
    "pooled_second_moment",
    "scatter",
    "symmetrise_upper",
]

STATISTICS_KINDS = {"full": FULL, "diag": DIAG, "pooled": POOLED}

#: The label of rows whose most probable component is a noise component (see ``noise`` below).
NOISE_LABEL = -1


@dataclass
class SufficientStats:
    """Additive statistics of some rows under fixed parameters (all float64).

    Attributes
    ----------
    nk : ndarray of shape (n_components,)
    s1 : ndarray of shape (n_components, n_features)
    s2 : ndarray
        ``FULL``: (n_components, n_features, n_features), upper triangle (at least); ``DIAG``:
        (n_components, 1, n_features); ``POOLED``: (1, n_features, n_features), upper triangle.
    kind : int
        ``FULL``, ``DIAG`` or ``POOLED``.
    shift : ndarray of shape (n_components, n_features)
        The origin of ``s1`` and ``s2``. Statistics can only be added if their shifts agree.
    log_lik : float
        Weighted sum of the rows' log-likelihoods.
    weight_sum : float
        Sum of the sample weights (the number of rows when unweighted).
    n_rows : int
        Number of rows seen; used to prove that no row of a source was lost.
    log_max_resp : float
        Weighted sum of ``log max_k r_ik`` (ICL's entropy term of the hard assignments).
    entropy : float
        Weighted sum of ``sum_k r_ik log r_ik`` (when the kernel was asked for it).

    Examples
    --------
    >>> import numpy as np
    >>> from fastgmm.stats import DIAG, SufficientStats
    >>> def at_origin(n):  # the statistics of n rows at the origin, one component
    ...     return SufficientStats(np.array([float(n)]), np.zeros((1, 2)), np.zeros((1, 1, 2)),
    ...                            DIAG, np.zeros((1, 2)), -1.5 * n, float(n), n)
    >>> total = at_origin(3) + at_origin(5)  # statistics add over any split of the rows
    >>> total.n_rows, total.mean_log_likelihood
    (8, -1.5)
    """

    nk: np.ndarray
    s1: np.ndarray
    s2: np.ndarray
    kind: int
    shift: np.ndarray
    log_lik: float
    weight_sum: float
    n_rows: int
    log_max_resp: float = 0.0
    entropy: float = 0.0

    def __add__(self, other: SufficientStats) -> SufficientStats:
        if not np.array_equal(self.shift, other.shift) or self.kind != other.kind:
            raise ValueError("Cannot add statistics taken about different shifts or kinds.")
        return SufficientStats(
            self.nk + other.nk,
            self.s1 + other.s1,
            self.s2 + other.s2,
            self.kind,
            self.shift,
            self.log_lik + other.log_lik,
            self.weight_sum + other.weight_sum,
            self.n_rows + other.n_rows,
            self.log_max_resp + other.log_max_resp,
            self.entropy + other.entropy,
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

    def reduced(self, kind: int) -> SufficientStats:
        """The same statistics reduced to a smaller ``kind`` (FULL to DIAG or POOLED).

        Examples
        --------
        >>> import numpy as np
        >>> from fastgmm.stats import FULL, POOLED, SufficientStats
        >>> s2 = np.array([[[1.0, 2.0], [0.0, 3.0]], [[4.0, 5.0], [0.0, 6.0]]])
        >>> stats = SufficientStats(np.ones(2), np.zeros((2, 2)), s2, FULL, np.zeros((2, 2)),
        ...                         0.0, 2.0, 2)
        >>> stats.reduced(POOLED).s2
        array([[[5., 7.],
                [0., 9.]]])
        """
        if kind == self.kind:
            return self
        if self.kind != FULL:
            raise ValueError(f"Cannot reduce statistics of kind {self.kind} to kind {kind}.")
        if kind == DIAG:
            s2 = np.diagonal(self.s2, axis1=1, axis2=2)[:, None, :].copy()
        else:
            s2 = self.s2.sum(axis=0, keepdims=True)
        return SufficientStats(
            self.nk,
            self.s1,
            s2,
            kind,
            self.shift,
            self.log_lik,
            self.weight_sum,
            self.n_rows,
            self.log_max_resp,
            self.entropy,
        )


def pooled_second_moment(e_sum: np.ndarray, pairs: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """The pooled second moment about the shifts from the pooled kernel's two sums.

    ``sum_i w_i e_i e_i^T + sum_{k<j} P_kj (c_k - c_j)(c_k - c_j)^T`` (see
    :func:`fastgmm._kernels.blocks.accumulate_pooled`), upper triangle filled.

    Examples
    --------
    Two rows, each wholly in its own component, at their component's shift: no scatter.

    >>> import numpy as np
    >>> from fastgmm.stats import pooled_second_moment
    >>> shift = np.array([[0.0, 0.0], [3.0, 0.0]])
    >>> pooled_second_moment(np.zeros((1, 2, 2)), np.zeros((2, 2)), shift)[0]
    array([[0., 0.],
           [0., 0.]])

    One row split half and half between them adds ``(1/4) (c_0 - c_1)(c_0 - c_1)^T`` twice
    over (``r_0 r_1 = 1/4``, and the row's own offset ``e`` from its mean shift of 1.5):

    >>> e = np.array([[[2.25, 0.0], [0.0, 0.0]]])  # (x - m)(x - m)^T for x = (0, 0), m = (1.5, 0)
    >>> pairs = np.array([[0.0, 0.25], [0.0, 0.0]])
    >>> pooled_second_moment(e, pairs, shift)[0]  # 0.5 * 0 + 0.5 * 9
    array([[4.5, 0. ],
           [0. , 0. ]])
    """
    total = e_sum.copy()
    n_components = shift.shape[0]
    if n_components > 1:
        k, j = _upper(n_components, 1)
        weights = pairs[k, j]
        diff = shift[k] - shift[j]
        total[0] += np.triu(np.einsum("p,pd,pe->de", weights, diff, diff))
    return total


def pooled_about(nk, s1, s2, shift, origin):
    """Pooled moments about the shifts ``c_k`` moved to one ``origin`` ``o``: ``(s1, s2)``.

    With ``delta_k = c_k - o``: ``s1_k + n_k delta_k`` and
    ``s2 + sum_k (delta_k s1_k^T + s1_k delta_k^T + n_k delta_k delta_k^T)`` (``s2`` is
    (1, D, D), upper triangle; the result is symmetric).

    Examples
    --------
    One row at 2 in one component with shift 2: about the origin 0 its moments are 2 and 4.

    >>> import numpy as np
    >>> from fastgmm.stats import pooled_about
    >>> s1, s2 = pooled_about(np.ones(1), np.zeros((1, 1)), np.zeros((1, 1, 1)),
    ...                       np.array([[2.0]]), np.zeros(1))
    >>> s1, s2
    (array([[2.]]), array([[[4.]]]))
    """
    delta = shift - origin
    moved = s1 + nk[:, None] * delta
    cross = np.einsum("kd,ke->de", delta, s1)
    total = symmetrise_upper(s2)[0] + cross + cross.T + np.einsum("k,kd,ke->de", nk, delta, delta)
    return moved, total[None]


def scatter(stats: SufficientStats, reg_covar=0.0, dtype=np.float64):
    """The M-step's shared part: weights' counts, new means and the scatter about them.

    Follows scikit-learn's ``_estimate_gaussian_parameters`` (its ``10 * eps`` guard on empty
    components included) but works from moments about ``stats.shift``.

    Parameters
    ----------
    stats : SufficientStats
    reg_covar : float or ndarray of shape (n_components,)
        Added to the diagonal of each component's covariance estimate (a vector: one value per
        component, as ``on_degenerate='reg'`` raises them).
    dtype : numpy dtype
        The data's dtype (its epsilon guards empty components, as in scikit-learn).

    Returns
    -------
    nk : ndarray of shape (n_components,)
        ``stats.nk + 10 eps``.
    means : ndarray of shape (n_components, n_features)
    covariance : ndarray
        The regularised scatter divided by the counts: per component ``S_k`` (FULL:
        (K, D, D) symmetric; DIAG: (K, D)), or for POOLED the pooled ``sum_k nk S_k / sum nk``
        (D, D) — exactly scikit-learn's 'full', 'diag' and 'tied' covariances.

    Examples
    --------
    The rows (0, 1) and (2, -1), one component, moments about the origin:

    >>> import numpy as np
    >>> from fastgmm.stats import DIAG, SufficientStats, scatter
    >>> stats = SufficientStats(nk=np.array([2.0]), s1=np.array([[2.0, 0.0]]),
    ...                         s2=np.array([[[4.0, 2.0]]]), kind=DIAG, shift=np.zeros((1, 2)),
    ...                         log_lik=-3.0, weight_sum=2.0, n_rows=2)
    >>> nk, means, covariance = scatter(stats)
    >>> means.round(12), covariance.round(12)
    (array([[1., 0.]]), array([[1., 1.]]))
    """
    if not all(np.all(np.isfinite(a)) for a in (stats.nk, stats.s1, stats.s2)):
        raise CovarianceOverflowError()  # before NumPy warns about inf - inf below
    nk = stats.nk + 10 * np.finfo(dtype).eps
    offset = stats.s1 / nk[:, None]
    means = stats.shift + offset
    reg = np.broadcast_to(np.asarray(reg_covar, dtype=np.float64), nk.shape)
    n_features = means.shape[1]
    if stats.kind == DIAG:
        covariance = stats.s2[:, 0, :] / nk[:, None] - offset**2 + reg[:, None]
    elif stats.kind == FULL:
        s2 = symmetrise_upper(stats.s2)
        covariance = s2 / nk[:, None, None] - offset[:, :, None] * offset[:, None, :]
        covariance[:, np.arange(n_features), np.arange(n_features)] += reg[:, None]
    else:
        s2 = symmetrise_upper(stats.s2)[0]
        covariance = (s2 - np.einsum("k,kd,ke->de", nk, offset, offset)) / nk.sum()
        covariance = 0.5 * (covariance + covariance.T)
        covariance[np.diag_indices(n_features)] += float(nk @ reg) / float(nk.sum())
    return nk, means, covariance


@functools.lru_cache(maxsize=64)
def _strict_lower(n: int):
    """Row and column indices of the strict lower triangle of an ``n x n`` matrix (cached:
    ``np.tril_indices`` builds them through a mask each call, measured 0.1 ms per EM iteration
    on 2 features)."""
    rows, cols = np.tril_indices(n, -1)
    rows.flags.writeable = False
    cols.flags.writeable = False
    return rows, cols


@functools.lru_cache(maxsize=64)
def _upper(n: int, offset: int = 0):
    """Cached ``np.triu_indices(n, offset)`` (read-only)."""
    rows, cols = np.triu_indices(n, offset)
    rows.flags.writeable = False
    cols.flags.writeable = False
    return rows, cols


def symmetrise_upper(s2: np.ndarray) -> np.ndarray:
    """Copy the upper triangle of each matrix onto its lower triangle (the kernels fill the
    upper triangles of full and pooled second moments).

    Examples
    --------
    >>> import numpy as np
    >>> from fastgmm.stats import symmetrise_upper
    >>> symmetrise_upper(np.array([[1.0, 2.0], [0.0, 3.0]]))
    array([[1., 2.],
           [2., 3.]])
    """
    rows, cols = _strict_lower(s2.shape[-1])
    out = s2.copy()
    out[..., rows, cols] = s2[..., cols, rows]
    return out


@dataclass
class MixtureParams:
    """Parameters of a Gaussian mixture (float64 during fitting).

    ``covariances`` and ``precisions_cholesky`` have the attribute shapes of the covariance
    model (scikit-learn's shapes for its four types, (K, D, D) for mclust's names);
    ``decomposition`` holds a model's own extra parameters (mclust's volumes, shapes and
    orientations), which iterative M-steps continue from. ``noise_weight`` is the weight of a
    uniform noise component (see :mod:`fastgmm.noise`), or None without one; the ``weights``
    of the Gaussian components then sum to ``1 - noise_weight``.

    Examples
    --------
    >>> import numpy as np
    >>> from fastgmm.stats import MixtureParams
    >>> params = MixtureParams(np.array([0.3, 0.7]), np.zeros((2, 2)), np.ones((2, 2)),
    ...                        np.ones((2, 2)), "diag")
    >>> params.n_components, params.n_features
    (2, 2)
    """

    weights: np.ndarray
    means: np.ndarray
    covariances: np.ndarray | None
    precisions_cholesky: np.ndarray | None
    covariance_type: str
    decomposition: object = None
    # Keyword-only: subclasses (the variational posterior) add positional fields after these.
    noise_weight: float | None = field(default=None, kw_only=True)

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
# Beyond t**2 = 1e4 (digits lost: 4) the exact kernels are used instead; that is the case of a
# component collapsing onto a point far from the others.
FEATURE_MAP_MAX_SPREAD = 1e4
# float32 data go through the map in single precision (u = 2**-24 = 6e-8) while the rounding of
# a row's log-density stays below FLOAT32_LOG_DENSITY_ERROR (absolute, root-mean-square), and
# that of the chunk's mean log-likelihood below FLOAT32_MEAN_ERROR (the rows' independent
# errors over sqrt(N)), see single_precision_error. A component t standard deviations from the
# map's centre has features and coefficients whose products are about t**2 + cond(Sigma) times
# their sum's own size, so a
# row near it gets log p with an error of about sqrt(n) u 2 (t**2 + cond(Sigma)) for a product of
# n terms (the probabilistic bound of Higham and Mary, 2019, SIAM J. Sci. Comput. 41(5), with
# lambda = 1: the root-mean-square error of a sum of n independently rounded terms). 1e-2 lets
# D=32 reach t**2 + cond(Sigma) = 3.5e3 and D=8 1e4 (float64's own limit). The statistics'
# errors are independent from block to block and average out. Measured, N=1e5, D=32, K=32
# blobs fitted 5 iterations, single map against the float64 kernels: t**2 = 1655 (cond 110):
# covariances 1.5e-6 relative, means 7e-7 standard deviations, lower bound 1.2e-7; t**2 = 3725:
# 4.1e-6, 8.8e-7, 3.7e-8; t**2 = 6624: 7.6e-6, 1.0e-6, 2.4e-8. The earlier limit,
# t**2 + cond(Sigma) <= 1e3 whatever D, sent (c)'s blobs (t**2 ~ 1150) to the per-component
# single-precision kernels, which cost more than float64's map (1.74 s against 0.92 s).
FLOAT32_LOG_DENSITY_ERROR = 1e-2
# The bound on the mean over a chunk's N rows: 1e-5 absolute (3e-7 relative on a lower bound of
# -30), which keeps a 1500-row float32 fit's lower bounds within 1e-6 of float64's (tested).
FLOAT32_MEAN_ERROR = 1e-5
_FLOAT32_UNIT_ROUNDOFF = 2.0**-24


def _single_precision_bounded(error: float, n_rows) -> bool:
    """Whether a row's rounding ``error`` is within both single-precision bounds."""
    if error > FLOAT32_LOG_DENSITY_ERROR:
        return False
    return n_rows is None or error <= FLOAT32_MEAN_ERROR * math.sqrt(max(n_rows, 1))


def single_precision_error(spread: float, cond_sigma: float, n_terms: int) -> float:
    """The root-mean-square rounding of a row's log-density from single-precision products.

    ``spread`` is ``t**2`` (the means' squared distance from the expansion's centre in their
    own variances), ``cond_sigma`` the covariances' condition number and ``n_terms`` the
    length of each product (see ``FLOAT32_LOG_DENSITY_ERROR``).

    Examples
    --------
    >>> from fastgmm.stats import single_precision_error
    >>> round(single_precision_error(1000.0, 100.0, 561) * 1e3, 2)  # D=32, full: 561 features
    3.11
    """
    return math.sqrt(n_terms) * _FLOAT32_UNIT_ROUNDOFF * 2.0 * (spread + cond_sigma)


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
    >>> from fastgmm.stats import DIAG, SharedLayout
    >>> layout = SharedLayout.diagonal(np.array([0.5, 0.5]), np.array([[0.0, 0.0], [2.0, 2.0]]),
    ...                                np.ones((2, 2)))
    >>> fmap = layout.feature_map(kind=DIAG)  # features: x, x**2 and 1, per component
    >>> fmap.centre, fmap.coef.shape, fmap.pairs
    (array([1., 1.]), (5, 2), False)
    """

    centre: np.ndarray
    coef: np.ndarray
    pairs: bool
    #: The largest squared distance, in its own standard deviations, of a mean from ``centre``.
    spread: float = 0.0
    #: Whether coefficients and features stay well inside float32's normal range.
    fits_float32: bool = True

    def unpack(self, packed):
        """``nk``, ``s1`` and ``s2`` (about ``centre``, kernel layout) from the kernel's sums.

        Examples
        --------
        >>> import numpy as np
        >>> from fastgmm.stats import FeatureMap
        >>> fmap = FeatureMap(np.zeros(2), np.zeros((5, 1)), pairs=False)
        >>> packed = np.array([[1.0, 2.0, 3.0, 4.0, 5.0]])  # s1 (2 features), s2 diagonal, nk
        >>> fmap.unpack(packed)
        (array([5.]), array([[1., 2.]]), array([[[3., 4.]]]))
        """
        n_components = packed.shape[0]
        n_features = self.centre.shape[0]
        nk = packed[:, -1].copy()
        s1 = packed[:, :n_features].copy()
        if self.pairs:
            s2 = np.zeros((n_components, n_features, n_features))
            rows, cols = _upper(n_features)
            s2[:, rows, cols] = packed[:, n_features:-1]
        else:
            s2 = packed[:, None, n_features:-1].copy()
        return nk, s1, s2


@dataclass
class _Layout:
    """What both layouts share: the means, the per-component constants and derived forms."""

    means: np.ndarray
    log_const: np.ndarray
    _feature_maps: dict = field(default_factory=dict, repr=False)
    _condition: float | None = field(default=None, repr=False)
    #: The last component is a uniform noise component (zero precision, constant density; see
    #: :mod:`fastgmm.noise`): the kernels need nothing else, the precision rules skip it.
    noise: bool = False

    @property
    def n_components(self) -> int:
        return self.means.shape[0]

    @property
    def n_gaussian(self) -> int:
        """The Gaussian components (all but a noise component)."""
        return self.means.shape[0] - int(self.noise)

    is_diagonal = False

    def feature_map(self, dtype=np.float64, kind=FULL, n_rows=None) -> FeatureMap | None:
        """The feature-map form of these parameters, or None where it does not suit them.

        ``dtype`` is that of the data: float32 data are mapped in single precision, which
        tolerates less spread between the means (see ``FLOAT32_LOG_DENSITY_ERROR``), the more
        so the fewer the rows ``n_rows`` whose errors average out (not given: per row only).
        ``kind`` is the statistics wanted: squares alone suffice for diagonal statistics of a
        diagonal model; anything else needs the products.
        """
        pairs = not (kind == DIAG and self.is_diagonal)
        if pairs not in self._feature_maps:
            self._feature_maps[pairs] = _feature_map(
                self.means, self.factors(), self.log_const, pairs, self.n_gaussian
            )
        fmap = self._feature_maps[pairs]
        if not fmap:
            return None
        if np.dtype(dtype) != np.float32:
            return fmap if fmap.spread <= FEATURE_MAP_MAX_SPREAD else None
        # Coefficients are precisions (1/variance) and features squared offsets (variances):
        # variances near 1e-40 or 1e40 overflow or underflow in float32, so the exact kernels
        # (which work with standard deviations) take those.
        error = single_precision_error(fmap.spread, self.condition() ** 2, fmap.coef.shape[0])
        usable = (
            fmap.fits_float32
            and fmap.spread <= FEATURE_MAP_MAX_SPREAD
            and _single_precision_bounded(error, n_rows)
        )
        return fmap if usable else None

    def condition(self) -> float:
        """The largest condition number of a precision factor (about ``sqrt(cond(Sigma_k))``),
        see :func:`factor_condition`."""
        if self._condition is None:
            self._condition = self._factor_condition()
        return self._condition

    def single_precision_suits(self) -> bool:
        """Whether float32 rows may go through the single-precision exact kernels.

        The model must be well conditioned, and its variances inside float32's normal range:
        the statistics square offsets of the size of the standard deviations.
        """
        if self.condition() > SINGLE_PRECISION_MAX_COND:
            return False
        gaussian = self.factors()[: self.n_gaussian]
        variances = 1.0 / np.einsum("kde,kde->kd", gaussian, gaussian)
        return bool(1.0 / _FLOAT32_SAFE <= variances.min() and variances.max() <= _FLOAT32_SAFE)


@dataclass
class FactorLayout(_Layout):
    """Per-component factor form: ``prec[k]`` is the upper-triangular ``U_k``, ``U_k U_k^T =
    Sigma_k^-1`` (scikit-learn's ``precisions_cholesky_`` of a full covariance).

    Examples
    --------
    >>> import numpy as np
    >>> from fastgmm.stats import FactorLayout
    >>> layout = FactorLayout.build(np.array([0.5, 0.5]), np.zeros((2, 3)),
    ...                             np.broadcast_to(np.eye(3), (2, 3, 3)).copy())
    >>> layout.prec.shape, layout.log_const.round(4)
    ((2, 3, 3), array([-3.45, -3.45]))
    """

    prec: np.ndarray = None

    @classmethod
    def build(cls, weights, means, prec_chol) -> FactorLayout:
        """The layout of weights, means and upper-triangular precision factors (K, D, D)."""
        prec = np.ascontiguousarray(prec_chol, dtype=np.float64)
        log_det = np.log(np.diagonal(prec, axis1=1, axis2=2)).sum(axis=1)
        return cls(
            np.ascontiguousarray(means, dtype=np.float64),
            _log_const(weights, means.shape[1], log_det),
            prec=prec,
        )

    def factors(self) -> np.ndarray:
        """Matrices ``F_k`` with ``F_k F_k^T = Sigma_k^-1``, shape (K, D, D)."""
        return self.prec

    def _factor_condition(self) -> float:
        return factor_condition(self.prec[: self.n_gaussian])


@dataclass
class SharedLayout(_Layout):
    """Shared-transform form: ``Sigma_k^-1 = T diag(scales_k**2) T^T`` with one ``T``.

    ``transform`` is ``T`` (D, D), or None for the identity (the diagonal models);
    ``triangular`` says that ``T`` is upper triangular (a tied covariance's precision factor).
    ``origin`` is a point near the data (the centre of the means) subtracted before
    transforming, and ``nu`` the transformed means ``T^T (mu_k - origin)`` (the means themselves
    for the identity).

    Examples
    --------
    >>> import numpy as np
    >>> from fastgmm.stats import SharedLayout
    >>> layout = SharedLayout.diagonal(np.array([0.5, 0.5]), np.zeros((2, 3)), np.ones((2, 3)))
    >>> layout.transform is None, layout.kernel_tuple()[1].shape
    (True, (0, 0))
    """

    origin: np.ndarray = None
    transform: np.ndarray | None = None
    triangular: bool = False
    nu: np.ndarray = None
    scales: np.ndarray = None

    @classmethod
    def diagonal(cls, weights, means, scales) -> SharedLayout:
        """The identity transform: ``scales`` (K, D) are the square roots of the precisions."""
        return cls.shared(weights, means, None, scales)

    @classmethod
    def shared(cls, weights, means, transform, scales, *, triangular=False) -> SharedLayout:
        """A shared transform ``T`` (D, D), or None for the identity, with per-component scales
        (K, D)."""
        means = np.ascontiguousarray(means, dtype=np.float64)
        scales = np.ascontiguousarray(scales, dtype=np.float64)
        origin = means.mean(axis=0)
        log_det = np.log(scales).sum(axis=1)
        nu = means
        if transform is not None:
            transform = np.ascontiguousarray(transform, dtype=np.float64)
            nu = np.ascontiguousarray((means - origin) @ transform)
            if triangular:
                log_det_t = float(np.log(np.abs(np.diagonal(transform))).sum())
            else:
                log_det_t = float(np.linalg.slogdet(transform)[1])
            log_det = log_det + log_det_t
        return cls(
            means,
            _log_const(weights, means.shape[1], log_det),
            origin=origin,
            transform=transform,
            triangular=triangular,
            nu=nu,
            scales=scales,
        )

    @property
    def is_diagonal(self) -> bool:
        return self.transform is None

    def unit_scale_products(self, dtype=np.float64, n_rows=None) -> bool:
        """Whether the shared kernels may take the distances as products (``nu_k . y``).

        Only for a transform with unit scales (tied), and while the transformed means lie
        within the feature map's spread of the origin (``|nu_k|^2`` in their own variances: the
        expansion ``|y|^2 - 2 nu_k . y + |nu_k|^2`` loses ``eps |nu_k|^2``, see
        :func:`fastgmm._kernels.blocks.unit_scale_log_prob`).
        """
        if self.transform is None or not np.all(self.scales == 1.0):
            return False
        spread = float(np.max(np.einsum("kd,kd->k", self.nu, self.nu)))
        if np.dtype(dtype) != np.float32:
            return spread <= FEATURE_MAP_MAX_SPREAD
        # The products have D terms, and the transform's own rounding is the conditioning's.
        error = single_precision_error(spread, self.condition() ** 2, self.nu.shape[1])
        return spread <= FEATURE_MAP_MAX_SPREAD and _single_precision_bounded(error, n_rows)

    def kernel_tuple(self):
        """The ``layout`` argument of the shared kernels."""
        transform = np.empty((0, 0)) if self.transform is None else self.transform
        return (
            self.origin,
            transform,
            bool(self.triangular),
            self.nu,
            self.scales,
            self.log_const,
        )

    def factors(self) -> np.ndarray:
        """Matrices ``F_k = T diag(scales_k)`` with ``F_k F_k^T = Sigma_k^-1``, (K, D, D)."""
        if self.transform is None:
            return np.stack([np.diag(s) for s in self.scales])
        return self.transform[None, :, :] * self.scales[:, None, :]

    def _factor_condition(self) -> float:
        scales = self.scales[: self.n_gaussian]
        if not np.all(np.isfinite(scales)):
            return math.inf
        magnitude = np.abs(scales)
        with np.errstate(divide="ignore"):
            scale_cond = float(np.max(magnitude.max(axis=1) / magnitude.min(axis=1)))
        if self.transform is None:
            return scale_cond
        return scale_cond * factor_condition(self.transform[None])


def _log_const(weights, n_features, log_det):
    with np.errstate(divide="ignore"):
        log_weights = np.log(np.asarray(weights, dtype=np.float64))
    return np.ascontiguousarray(
        log_weights - 0.5 * n_features * math.log(2 * math.pi) + log_det, dtype=np.float64
    )


def factor_condition(prec: np.ndarray) -> float:
    """The largest 1-norm condition number of square factors ``prec`` (K, D, D).

    LAPACK's estimate for triangular factors (``dtrcon``: O(D^2) per component, exact to a small
    factor), NumPy's ``cond`` for others. Singular or non-finite factors give ``inf``.

    Examples
    --------
    >>> import numpy as np
    >>> from fastgmm.stats import factor_condition
    >>> float(factor_condition(np.diag([1.0, 4.0])[None]))
    4.0
    """
    from scipy.linalg import lapack

    if not np.all(np.isfinite(prec)):
        return math.inf
    worst = 0.0
    for factor in prec:
        if np.array_equal(factor, np.triu(factor)):
            rcond, _ = lapack.dtrcon(factor, norm="1", uplo="U")
            cond = math.inf if rcond <= 0.0 else 1.0 / rcond
        else:
            cond = float(np.linalg.cond(factor, 1))
        worst = max(worst, cond)
    return worst


def _feature_map(means, factors, log_const, pairs, n_gaussian):
    _, n_features, _ = factors.shape
    if pairs and n_features > FEATURE_MAP_MAX_FULL:
        return False
    centre = means.mean(axis=0)
    offsets = means - centre
    whitened = np.einsum("kde,kd->ke", factors, offsets)
    spread = float(np.max(np.einsum("kd,kd->k", whitened, whitened)))
    if not spread <= FEATURE_MAP_MAX_SPREAD:  # also refuses NaN
        return False
    if pairs:
        precisions = factors @ np.swapaxes(factors, 1, 2)
        linear = np.einsum("kde,ke->kd", precisions, offsets)
        rows, cols = _upper(n_features)
        quadratic = -precisions[:, rows, cols] * np.where(rows == cols, 0.5, 1.0)
        variances = 1.0 / np.diagonal(precisions[:n_gaussian], axis1=1, axis2=2)
    else:
        precisions = np.einsum("kdd->kd", factors) ** 2
        linear = precisions * offsets
        quadratic = -0.5 * precisions
        variances = 1.0 / precisions[:n_gaussian]
    constant = log_const - 0.5 * np.einsum("kd,kd->k", offsets, linear)
    coef = np.concatenate([linear, quadratic, constant[:, None]], axis=1).T
    fits_float32 = bool(
        np.max(np.abs(coef)) <= _FLOAT32_SAFE
        and 1.0 / _FLOAT32_SAFE <= np.min(variances)
        and np.max(variances) <= _FLOAT32_SAFE
    )
    return FeatureMap(centre, np.ascontiguousarray(coef), pairs, spread, fits_float32)
