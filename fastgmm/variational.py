"""The variational mixture's fitter: Normal-Wishart posteriors on the engine's statistics.

``BayesianGaussianMixture`` (scikit-learn's variational Gaussian mixture; Bishop 2006, section
10.2; Blei & Jordan 2006 for the stick-breaking prior) runs through the same loop as maximum
likelihood (:func:`fastgmm.em.run_em`); only its fitter, :class:`Variational`, differs:

* **E-step**: the same kernels, with the *expected* precisions. The factors are those of
  ``covariances_ = W_k^-1 / nu_k`` (the precision ``nu_k W_k``), and the per-component
  constant of the layout holds everything that does not depend on the row::

      E[ln pi_k] + 1/2 E[ln |Lambda_k|] - 1/2 ln |nu_k W_k| - D / (2 beta_k) + layout's own terms

  where ``E[ln |Lambda_k|] = D ln 2 + ln |W_k| + sum_d psi((nu_k - d) / 2)`` (Bishop 10.65) and
  ``E[ln pi_k]`` is the Dirichlet's ``psi(alpha_k) - psi(sum alpha)`` or, for the
  Dirichlet process, the stick-breaking sums of ``psi`` (Blei & Jordan 2006, eq. 21).
* **M-step**: the conjugate updates of the Dirichlet (or Beta sticks), the Gaussian on the means
  and the Wishart on the precisions, from the counts, means and scatter that
  :func:`fastgmm.stats.scatter` gives (scikit-learn's ``_estimate_gaussian_parameters``,
  ``reg_covar`` included), so every covariance type, provider and dtype is served.
* **Lower bound**: scikit-learn's evidence lower bound, without the constants it drops: the
  entropy of the responsibilities (which the kernels sum when ``want_entropy`` is set, so no
  extra pass is needed), the Wishart and Dirichlet (or Beta) normalisers and ``-D/2 sum ln
  beta_k``. As in scikit-learn, iteration ``t`` combines the responsibilities of the parameters
  entering it with the parameters it produced.

The arithmetic follows scikit-learn 1.9's ``_bayesian_mixture.py`` operation for operation where
that decides the last bits (the order of sums in the updates), so fits from the same start agree
with scikit-learn to rounding.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
from scipy.special import betaln, digamma, gammaln

from .covariance import cholesky_factors, precisions_cholesky_of
from .init import _first_row, assignment_request
from .providers import SCORE, SOFT, StatsRequest
from .stats import DIAG, FULL, MixtureParams, SufficientStats, scatter, symmetrise_upper
from .streaming import OnlineEM

__all__ = [
    "PRIOR_TYPES",
    "DataMoments",
    "StochasticVariational",
    "Variational",
    "VariationalParams",
    "VariationalPrior",
    "data_moments",
    "expected_log_weights",
    "mixture_weights",
]

#: ``weight_concentration_prior_type`` values.
PRIOR_TYPES = ("dirichlet_process", "dirichlet_distribution")


@dataclass
class VariationalPrior:
    """The prior of a variational mixture (scikit-learn's ``*_prior_`` attributes).

    Attributes
    ----------
    prior_type : {'dirichlet_process', 'dirichlet_distribution'}
    weight_concentration : float
        gamma_0 (the Beta sticks' second parameter, or the Dirichlet's concentration).
    mean_precision : float
        beta_0.
    mean : ndarray of shape (n_features,)
        m_0.
    degrees_of_freedom : float
        nu_0, greater than ``n_features - 1``.
    covariance : ndarray or float
        W_0^-1, in the covariance type's shape ((D, D) for full and tied, (D,) for diag, a
        float for spherical).
    data_second_moment : ndarray of shape (n_features, n_features), optional
        ``sum_i w_i x_i x_i^T`` over every row. Only 'tied' starts from one-hot
        responsibilities need it (see :meth:`Variational.point_params`).

    Examples
    --------
    >>> import numpy as np
    >>> from fastgmm.variational import VariationalPrior
    >>> prior = VariationalPrior("dirichlet_process", 0.5, 1.0, np.zeros(2), 2.0, np.eye(2))
    >>> prior.mean.shape
    (2,)
    """

    prior_type: str
    weight_concentration: float
    mean_precision: float
    mean: np.ndarray
    degrees_of_freedom: float
    covariance: object
    data_second_moment: np.ndarray | None = None


@dataclass
class VariationalParams(MixtureParams):
    """The variational posterior: :class:`~fastgmm.stats.MixtureParams` plus its parameters.

    ``weights`` are the posterior means of the weights (scikit-learn's ``weights_``), ``means``
    the means m_k, ``covariances`` ``W_k^-1 / nu_k`` and ``precisions_cholesky`` their
    precision factors, all in scikit-learn's attribute shapes.

    Attributes
    ----------
    weight_concentration : ndarray or tuple of two ndarrays
        The Dirichlet's alpha_k, or the Beta sticks' ``(a_k, b_k)``.
    mean_precision : ndarray of shape (n_components,)
        beta_k.
    degrees_of_freedom : ndarray of shape (n_components,), or float for 'tied'
        nu_k.

    Examples
    --------
    >>> import numpy as np
    >>> from fastgmm.variational import VariationalParams
    >>> params = VariationalParams(np.array([0.5, 0.5]), np.zeros((2, 1)), np.ones(2),
    ...                            np.ones(2), "spherical", None, np.array([3.0, 3.0]),
    ...                            np.array([3.0, 3.0]), np.array([4.0, 4.0]))
    >>> params.n_components, params.degrees_of_freedom
    (2, array([4., 4.]))
    """

    weight_concentration: object = None
    mean_precision: np.ndarray | None = None
    degrees_of_freedom: object = None


# ------------------------------------------------------------------------ the weights' posterior
def mixture_weights(weight_concentration, prior_type: str) -> np.ndarray:
    """Posterior mean weights (scikit-learn's ``weights_``), normalised to sum to 1.

    For the Dirichlet process, the expected stick lengths ``a_k / (a_k + b_k)`` times the
    expected remainders ``prod_{j<k} b_j / (a_j + b_j)``.

    Examples
    --------
    >>> import numpy as np
    >>> from fastgmm.variational import mixture_weights
    >>> mixture_weights(np.array([1.0, 3.0]), "dirichlet_distribution")
    array([0.25, 0.75])
    >>> # The first stick takes half, the second half of the rest; then normalised:
    >>> mixture_weights((np.array([2.0, 1.0]), np.array([2.0, 1.0])), "dirichlet_process")
    array([0.66666667, 0.33333333])
    """
    if prior_type == "dirichlet_process":
        a, b = weight_concentration
        total = a + b
        remainder = np.hstack((1.0, np.cumprod(b / total)[:-1]))
        weights = a / total * remainder
        return weights / np.sum(weights)
    alpha = np.asarray(weight_concentration)
    return alpha / np.sum(alpha)


def expected_log_weights(weight_concentration, prior_type: str) -> np.ndarray:
    """``E[ln pi_k]`` under the weights' posterior (Dirichlet, or Beta sticks).

    Examples
    --------
    >>> import numpy as np
    >>> from scipy.special import digamma
    >>> from fastgmm.variational import expected_log_weights
    >>> alpha = np.array([1.0, 2.0])
    >>> bool(np.allclose(expected_log_weights(alpha, "dirichlet_distribution"),
    ...                  digamma(alpha) - digamma(3.0)))
    True
    """
    if prior_type == "dirichlet_process":
        a, b = weight_concentration
        psi_total = digamma(a + b)
        # ln of the k-th stick plus the ln of every earlier stick's remainder.
        earlier = np.hstack((0.0, np.cumsum(digamma(b) - psi_total)[:-1]))
        return digamma(a) - psi_total + earlier
    alpha = np.asarray(weight_concentration)
    return digamma(alpha) - digamma(np.sum(alpha))


def _log_weight_normaliser(weight_concentration, prior_type: str) -> float:
    """ln of the normalising constant of the weights' posterior (the lower bound's term)."""
    if prior_type == "dirichlet_process":
        a, b = weight_concentration
        return float(-np.sum(betaln(a, b)))
    alpha = np.asarray(weight_concentration)
    return float(gammaln(np.sum(alpha)) - np.sum(gammaln(alpha)))


def _sum_digamma(degrees_of_freedom, n_features) -> np.ndarray:
    """``sum_{d<D} psi((nu - d) / 2)`` per component (shape (K,), or (1,) for a scalar nu)."""
    nu = np.atleast_1d(np.asarray(degrees_of_freedom, dtype=np.float64))
    return np.sum(digamma(0.5 * (nu - np.arange(n_features)[:, None])), axis=0)


def _log_det_factor(precisions_cholesky, covariance_type, n_features) -> np.ndarray:
    """``ln |U_k|`` of the precision factors in their attribute shapes."""
    if covariance_type == "full":
        return np.sum(np.log(np.diagonal(precisions_cholesky, axis1=1, axis2=2)), axis=1)
    if covariance_type == "tied":
        return np.sum(np.log(np.diag(precisions_cholesky)))
    if covariance_type == "diag":
        return np.sum(np.log(precisions_cholesky), axis=1)
    return n_features * np.log(precisions_cholesky)


def _log_wishart_normaliser(degrees_of_freedom, log_det_factor, n_features):
    """ln B(W, nu) of each Wishart without its ``ln pi`` term (Bishop B.79), as scikit-learn."""
    nu = np.asarray(degrees_of_freedom, dtype=np.float64)
    return -(
        nu * log_det_factor
        + nu * n_features * 0.5 * math.log(2.0)
        + np.sum(gammaln(0.5 * (nu - np.arange(n_features)[:, None])), axis=0)
    )


# ------------------------------------------------------------------------------ Wishart updates
# W_k^-1 (the "covariance" scikit-learn keeps, before its division by nu_k) from the prior, the
# counts, the data means and the scatter, one function per covariance type: Bishop 10.62 with
# the term beta_0 N_k / beta_k (xbar_k - m_0)(xbar_k - m_0)^T, pooled over components for 'tied'.
def _wishart_full(prior, nk, xk, sk, beta):
    diff = xk - prior.mean
    shrink = nk * prior.mean_precision / beta
    scale = (
        prior.covariance
        + nk[:, None, None] * sk
        + shrink[:, None, None] * (diff[:, :, None] * diff[:, None, :])
    )
    nu = prior.degrees_of_freedom + nk
    return nu, scale / nu[:, None, None]


def _wishart_tied(prior, nk, xk, sk, beta):
    n_components = nk.shape[0]
    diff = xk - prior.mean
    per_component = nk.sum() / n_components
    scale = (
        prior.covariance
        + sk * per_component
        + prior.mean_precision / n_components * np.dot((nk / beta) * diff.T, diff)
    )
    nu = prior.degrees_of_freedom + per_component
    return nu, scale / nu


def _wishart_diag(prior, nk, xk, sk, beta):
    diff = xk - prior.mean
    scale = prior.covariance + nk[:, None] * (sk + (prior.mean_precision / beta)[:, None] * diff**2)
    nu = prior.degrees_of_freedom + nk
    return nu, scale / nu[:, None]


def _wishart_spherical(prior, nk, xk, sk, beta):
    diff = xk - prior.mean
    scale = prior.covariance + nk * (sk + prior.mean_precision / beta * np.mean(diff**2, axis=1))
    nu = prior.degrees_of_freedom + nk
    return nu, scale / nu


_WISHART = {
    "full": _wishart_full,
    "tied": _wishart_tied,
    "diag": _wishart_diag,
    "spherical": _wishart_spherical,
}


def _precision_factors(covariances, covariance_type):
    """Precision factors of ``covariances`` (attribute shapes), with the typed errors."""
    if covariance_type == "full":
        return cholesky_factors(covariances)
    if covariance_type == "tied":
        return cholesky_factors(covariances[None], shared=True)[0]
    return precisions_cholesky_of(covariances)


# ---------------------------------------------------------------------------------- the fitter
class Variational:
    """The fitter of ``BayesianGaussianMixture``: mean-field variational Bayes on the engine.

    It has the interface of :class:`fastgmm.em.MaximumLikelihood` (``request``, ``m_step``,
    ``lower_bound``, ``layout``, ``initial_params``, ``point_params``), so the EM loop, the
    initialisations and every provider serve it unchanged (see the module docstring).

    Parameters
    ----------
    model : CovarianceModel
        One of scikit-learn's four ('full', 'tied', 'diag', 'spherical').
    prior : VariationalPrior or None
        None only to lay out fitted parameters for scoring.
    reg_covar : float
    dtype : numpy dtype
        The data's dtype (its epsilon guards empty components, as in scikit-learn).

    Examples
    --------
    >>> import numpy as np
    >>> from fastgmm.covariance import get_model
    >>> from fastgmm.em import EMRun, run_em
    >>> from fastgmm.providers import ArrayChunks
    >>> from fastgmm.variational import Variational, VariationalPrior
    >>> rng = np.random.default_rng(0)
    >>> X = np.vstack([rng.normal(0, 1, (100, 2)), rng.normal(8, 1, (100, 2))])
    >>> prior = VariationalPrior("dirichlet_process", 0.25, 1.0, X.mean(axis=0), 2.0,
    ...                          np.var(X, axis=0, ddof=1))
    >>> fitter = Variational(get_model("diag"), prior, reg_covar=1e-6)
    >>> start = fitter.point_params(X[[0, 1, 150, 151]], n_samples=200)  # four components
    >>> run = EMRun(fitter, start, tol=1e-3, max_iter=200)
    >>> _ = run_em(ArrayChunks(X), [run])
    >>> run.converged, int((run.params.weights > 0.01).sum())  # two of four are switched off
    (True, 2)
    """

    want_entropy = True
    # Rows with NaN are refused (missing='marginalize' is GaussianMixture's option only).
    missing = False

    def __init__(self, model, prior: VariationalPrior | None, *, reg_covar, dtype=np.float64):
        if model.name not in _WISHART:
            raise ValueError(
                f"The variational mixture supports covariance types {', '.join(_WISHART)}; "
                f"got {model.name!r}."
            )
        self.model = model
        self.prior = prior
        self.reg_covar = float(reg_covar)
        self.dtype = np.dtype(dtype)

    @property
    def kind(self) -> int:
        """The statistics kind the M-step needs."""
        return self.model.statistics

    # --------------------------------------------------------------------------- E-step
    def layout(self, params: VariationalParams):
        """The kernels' layout with expected precisions and the variational constants."""
        n_features = params.n_features
        plain = replace(params, weights=np.ones(params.n_components))
        layout = self.model.layout(plain)
        nu = np.asarray(params.degrees_of_freedom, dtype=np.float64)
        expected_log_det = n_features * math.log(2.0) + _sum_digamma(nu, n_features)
        # The factors are those of nu_k W_k; E[ln |Lambda_k|] replaces their ln |nu_k W_k|.
        # Set before any feature map is derived from the layout (it caches its constants).
        layout.log_const = np.ascontiguousarray(
            layout.log_const
            + expected_log_weights(params.weight_concentration, self._prior_type(params))
            - 0.5 * n_features * np.log(nu)
            + 0.5 * (expected_log_det - n_features / params.mean_precision)
        )
        return layout

    def request(self, params: VariationalParams, *, mode: int = SOFT) -> StatsRequest:
        """What a pass must compute for ``params`` (the entropy too, for the lower bound)."""
        shift = np.ascontiguousarray(params.means, dtype=np.float64)
        return StatsRequest(self.layout(params), shift, self.kind, mode, want_entropy=mode != SCORE)

    # --------------------------------------------------------------------------- M-step
    def m_step(self, stats: SufficientStats, previous=None, *, reg=None) -> VariationalParams:
        """The posterior's parameters from the statistics of an E-step.

        Raises
        ------
        IllDefinedCovarianceError
            A Wishart scale is not positive definite.
        """
        nk, xk, covariance = scatter(stats, self.reg_covar if reg is None else reg, self.dtype)
        return self.update(nk, xk, covariance)

    def update(self, nk, xk, covariance) -> VariationalParams:
        """The conjugate updates from counts, data means and scatter (:func:`scatter`'s kinds).

        ``covariance`` is of the model's statistics kind: (K, D, D) full, (D, D) pooled or
        (K, D) diagonal (averaged over the features here for 'spherical').
        """
        prior = self.prior
        ctype = self.model.name
        if ctype == "spherical":
            covariance = covariance.mean(axis=1)
        if prior.prior_type == "dirichlet_process":
            # b_k = gamma_0 + sum_{j>k} N_j, summed from the last component as scikit-learn.
            later = np.hstack((np.cumsum(nk[::-1])[-2::-1], 0.0))
            concentration = (1.0 + nk, prior.weight_concentration + later)
        else:
            concentration = prior.weight_concentration + nk
        beta = prior.mean_precision + nk
        means = (prior.mean_precision * prior.mean + nk[:, None] * xk) / beta[:, None]
        nu, covariances = _WISHART[ctype](prior, nk, xk, covariance, beta)
        factors = _precision_factors(covariances, ctype)
        return VariationalParams(
            mixture_weights(concentration, prior.prior_type),
            means,
            covariances,
            factors,
            ctype,
            None,
            concentration,
            beta,
            nu,
        )

    def initial_params(self, stats: SufficientStats, reg=None) -> VariationalParams:
        """The M-step of an initialisation (scikit-learn's ``_initialize``: the same update)."""
        return self.m_step(stats, reg=reg)

    def point_params(self, points: np.ndarray, n_samples: int, reg=None) -> VariationalParams:
        """The update from one-hot responsibilities on single rows ('k-means++',
        'random_from_data').

        Each component has count ``1 + 10 eps``, mean its row divided by that count and scatter
        ``reg_covar``. For 'tied', scikit-learn's pooled scatter sums ``x x^T`` over *every*
        row (its formula assumes responsibilities summing to one per row), so the start is
        ``(sum_i x_i x_i^T - sum_k N_k xbar_k xbar_k^T) / sum_k N_k + reg_covar``; that needs
        the data's second moment from the prior (``data_second_moment``).
        """
        n_components, n_features = points.shape
        nk = np.full(n_components, 1.0 + 10 * np.finfo(self.dtype).eps)
        reg = self.reg_covar if reg is None else float(np.max(reg))
        xk = np.asarray(points, dtype=np.float64) / nk[:, None]
        eye = np.eye(n_features)
        if self.kind == DIAG:
            covariance = np.full((n_components, n_features), reg)
        elif self.kind == FULL:
            covariance = np.repeat(reg * eye[None], n_components, axis=0)
        else:
            second = self.prior.data_second_moment
            if second is None:
                raise ValueError("A 'tied' start from single rows needs the data's second moment.")
            covariance = (second - np.dot(nk * xk.T, xk)) / nk.sum()
            covariance[np.diag_indices(n_features)] += reg
        return self.update(nk, xk, covariance)

    # ---------------------------------------------------------------------- lower bound
    def lower_bound(self, stats: SufficientStats, params: VariationalParams) -> float:
        """The evidence lower bound (up to scikit-learn's constants) of an iteration.

        ``stats`` are the E-step's (their entropy term), ``params`` the M-step's result.
        """
        n_features = params.n_features
        nu = params.degrees_of_freedom
        log_det = _log_det_factor(params.precisions_cholesky, self.model.name, n_features)
        log_det = log_det - 0.5 * n_features * np.log(nu)
        log_wishart = _log_wishart_normaliser(nu, log_det, n_features)
        if self.model.name == "tied":
            log_wishart = params.n_components * float(np.squeeze(log_wishart))
        else:
            log_wishart = float(np.sum(log_wishart))
        log_norm_weight = _log_weight_normaliser(
            params.weight_concentration, self._prior_type(params)
        )
        return float(
            -stats.entropy
            - log_wishart
            - log_norm_weight
            - 0.5 * n_features * np.sum(np.log(params.mean_precision))
        )

    @staticmethod
    def _prior_type(params) -> str:
        # The stick-breaking posterior is a pair (a_k, b_k); the Dirichlet's one array.
        if isinstance(params.weight_concentration, tuple):
            return "dirichlet_process"
        return "dirichlet_distribution"


# ------------------------------------------------------------------------------- data moments
@dataclass
class DataMoments:
    """Weighted moments of every row, for the default priors (one pass, any provider).

    Attributes
    ----------
    weight_sum : float
        ``W = sum_i w_i`` (the number of rows when unweighted).
    mean : ndarray of shape (n_features,)
    scatter : ndarray of shape (n_features, n_features), or (n_features,) when only the
        diagonal was asked for
        ``sum_i w_i (x_i - mean)(x_i - mean)^T``.
    second_moment : ndarray of shape (n_features, n_features) or None
        ``sum_i w_i x_i x_i^T`` (the full scatter about the origin), or None.

    Examples
    --------
    >>> import numpy as np
    >>> from fastgmm.providers import ArrayChunks
    >>> from fastgmm.variational import data_moments
    >>> X = np.array([[0.0, 1.0], [2.0, 3.0], [4.0, 2.0]])
    >>> moments = data_moments(ArrayChunks(X), full=True)
    >>> bool(np.allclose(moments.covariance(), np.cov(X.T)))
    True
    """

    weight_sum: float
    mean: np.ndarray
    scatter: np.ndarray
    second_moment: np.ndarray | None

    def covariance(self) -> np.ndarray:
        """The unbiased covariance ``scatter / (W - 1)`` (frequency weights: ``np.cov``'s).

        Raises
        ------
        ValueError
            The weights sum to 1 or less.
        """
        if not self.weight_sum > 1.0:
            raise ValueError(
                f"The sample weights sum to {self.weight_sum:g}; the default covariance_prior "
                "(the covariance of X with one degree of freedom removed, as np.cov) needs a "
                "total weight above 1. Pass covariance_prior or rescale sample_weight."
            )
        return self.scatter / (self.weight_sum - 1.0)


def data_moments(provider, *, full: bool, n_threads=None) -> DataMoments:
    """The weighted mean and scatter of every row of ``provider``, in one pass.

    The pass is k-means' assignment to a single centre (the first row): every row belongs to
    it, and the statistics are its moments about that row, which keep their digits however far
    the data lie from the origin. ``full`` asks for the whole scatter matrix (and the second
    moment about the origin) rather than its diagonal.

    Examples
    --------
    >>> import numpy as np
    >>> from fastgmm.providers import ArrayChunks
    >>> from fastgmm.variational import data_moments
    >>> X = np.array([[1e9, 1.0], [1e9 + 2.0, 3.0]])  # far from the origin: no digits lost
    >>> moments = data_moments(ArrayChunks(X), full=False)
    >>> moments.mean - [1e9, 0.0], moments.scatter
    (array([1., 2.]), array([2., 2.]))
    """
    origin = _first_row(provider)
    shift = origin[None, :]
    [stats] = provider.collect(
        [assignment_request(shift, FULL if full else DIAG)], n_threads=n_threads
    )
    weight_sum = float(stats.nk[0])
    offset = stats.s1[0] / weight_sum
    mean = origin + offset
    if full:
        second = symmetrise_upper(stats.s2[0])
        scatter_matrix = second - weight_sum * np.outer(offset, offset)
        s1 = stats.s1[0]
        about_origin = (
            second
            + np.outer(s1, origin)
            + np.outer(origin, s1)
            + weight_sum * np.outer(origin, origin)
        )
        return DataMoments(weight_sum, mean, scatter_matrix, about_origin)
    return DataMoments(weight_sum, mean, stats.s2[0, 0] - weight_sum * offset**2, None)


# ------------------------------------------------------------------------- partial_fit (SVI)
class _Scaled:
    """A fitter whose M-step sees the per-row running statistics scaled to ``weight_seen`` rows."""

    def __init__(self, fitter):
        self.fitter = fitter
        self.weight_seen = 0.0

    def __getattr__(self, name):
        # Only called for names not found on the instance; while copy or pickle rebuild it,
        # ``fitter`` itself is not there yet and must not be looked up through itself.
        if name == "fitter" or name.startswith("__"):
            raise AttributeError(name)
        return getattr(self.fitter, name)

    def m_step(self, stats: SufficientStats, previous=None, **kwargs):
        n = self.weight_seen
        scaled = replace(
            stats,
            nk=stats.nk * n,
            s1=stats.s1 * n,
            s2=stats.s2 * n,
            log_lik=stats.log_lik * n,
            weight_sum=n,
            entropy=stats.entropy * n,
        )
        return self.fitter.m_step(scaled, previous, **kwargs)


class StochasticVariational(OnlineEM):
    """Stochastic variational inference (Hoffman, Blei, Wang & Paisley 2013) for ``partial_fit``.

    The state is :class:`fastgmm.streaming.OnlineEM`'s: per-row running averages ``s`` of the
    sufficient statistics, blended with each chunk's ``s_t`` as ``(1 - rho_t) s + rho_t s_t``
    with ``rho_t = (t + t0) ** -kappa``. The posterior's natural parameters are the prior's plus
    ``N`` times the statistics (counts, ``sum r x``, ``sum r x x^T``: the Dirichlet's or Beta
    sticks', the Gaussian's and the Wishart's parameters are all linear in them), so the
    conjugate update of ``prior + N s`` is the natural-gradient step of SVI,
    ``lambda <- (1 - rho_t) lambda + rho_t (prior + N s_t)``, for a fixed ``N``.

    ``N``: a stream has no data-set size, so the update uses the total weight of the rows seen so
    far (the number of rows when unweighted). The prior then weighs against the evidence of the
    rows seen, as in the exact posterior of those rows; after one pass over a finite data set
    ``N`` is its size, the value SVI would use. An ``N`` fixed in advance would instead hold the
    prior's weight at that of an ``N``-row data set from the first chunk on.

    Examples
    --------
    >>> import numpy as np
    >>> from fastgmm.covariance import get_model
    >>> from fastgmm.variational import StochasticVariational, Variational, VariationalPrior
    >>> prior = VariationalPrior("dirichlet_process", 0.5, 1.0, np.full(2, 3.0), 2.0, np.ones(2))
    >>> fitter = Variational(get_model("diag"), prior, reg_covar=1e-6)
    >>> start = fitter.point_params(np.array([[0.0, 0.0], [6.0, 6.0]]), n_samples=2)
    >>> online = StochasticVariational(start, fitter)
    >>> rng = np.random.default_rng(0)
    >>> for _ in range(10):
    ...     chunk = np.vstack([rng.normal(0, 1, (50, 2)), rng.normal(6, 1, (50, 2))])
    ...     _ = online.update(chunk, np.empty(0))
    >>> online.weight_seen, bool(np.abs(online.params.means - [[0, 0], [6, 6]]).max() < 0.3)
    (1000.0, True)
    """

    def __init__(self, params, fitter, **options):
        super().__init__(params, _Scaled(fitter), **options)

    @property
    def weight_seen(self) -> float:
        """Total weight of the rows absorbed so far (the ``N`` of the updates)."""
        return self.fitter.weight_seen

    def update(self, X, sample_weight, *, n_threads=None) -> float:
        """Absorb one chunk (see :meth:`fastgmm.streaming.OnlineEM.update`)."""
        before = self.fitter.weight_seen
        weight = float(X.shape[0]) if not sample_weight.size else float(np.sum(sample_weight))
        self.fitter.weight_seen = before + weight
        try:
            return super().update(X, sample_weight, n_threads=n_threads)
        except BaseException:
            self.fitter.weight_seen = before
            raise
