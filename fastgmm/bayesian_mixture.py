"""``BayesianGaussianMixture``: scikit-learn's variational mixture, computed by fastgmm's engine."""

from __future__ import annotations

from numbers import Real

import numpy as np
from sklearn.base import _fit_context
from sklearn.utils import check_array
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import _check_sample_weight

from . import streaming as _streaming
from ._estimator import BaseMixture
from ._jit import holds_single_threaded_blas, resolve_n_threads
from ._names import SKLEARN_COVARIANCE_TYPES
from .covariance import get_model
from .init import DEFAULT_INIT_SAMPLE
from .mixture import GaussianMixture
from .providers import ArrayChunks
from .validation import check_shape, validate_rows
from .variational import (
    PRIOR_TYPES,
    StochasticVariational,
    Variational,
    VariationalParams,
    VariationalPrior,
    data_moments,
)

__all__ = ["BayesianGaussianMixture"]

# Starts whose one-hot responsibilities do not cover every row: scikit-learn's 'tied' scatter
# then sums x x^T over all rows (see Variational.point_params), which needs the data's moments.
_ONE_HOT_STARTS = ("k-means++", "random_from_data")


class BayesianGaussianMixture(BaseMixture):
    """Variational Bayesian Gaussian mixture, a drop-in for scikit-learn's.

    The weights get a Dirichlet-process (stick-breaking) or Dirichlet prior, the means a Gaussian
    and the precisions a Wishart prior; mean-field variational inference (Bishop 2006, section
    10.2; Blei & Jordan 2006) then switches components the data do not need off: their weights
    shrink to the prior's. Constructor, fitted attributes, methods, warnings and error messages
    follow scikit-learn 1.9. Each iteration is one fused pass of fastgmm's E-step kernels with
    the expected precisions (see ``fastgmm.variational``), so sample weights, float32,
    streamed sources, Dask arrays, model files and :meth:`partial_fit` work as for
    :class:`~fastgmm.GaussianMixture`.

    Parameters
    ----------
    n_components : int, default=1
        The largest number of components; the fit may leave some of them (nearly) empty.
    covariance_type : {'full', 'tied', 'diag', 'spherical'}, default='full'
    tol : float, default=1e-3
        Convergence threshold on the change of the lower bound (the evidence lower bound, a
        total over the rows, up to constants).
    reg_covar : float, default=1e-6
        Non-negative regularisation added to the diagonal of the scatter.
    max_iter : int, default=100
    n_init : int, default=1
        Initialisations; the one with the largest lower bound is kept.
    init_params : {'kmeans', 'k-means++', 'random', 'random_from_data'}, default='kmeans'
        How the first responsibilities are drawn. 'random', 'random_from_data' and 'k-means++'
        draw scikit-learn's on in-memory arrays (the same ``random_state`` gives the same start);
        'kmeans' is fastgmm's own k-means on a sample of at most ``init_sample`` rows.
    weight_concentration_prior_type : {'dirichlet_process', 'dirichlet_distribution'}, \
default='dirichlet_process'
    weight_concentration_prior : float or None, default=None
        gamma_0 > 0; None means ``1 / n_components``. Smaller values switch more components off.
    mean_precision_prior : float or None, default=None
        beta_0 > 0; None means 1.
    mean_prior : array-like of shape (n_features,), default=None
        m_0; None means the (weighted) mean of ``X``.
    degrees_of_freedom_prior : float or None, default=None
        nu_0 > n_features - 1; None means ``n_features``.
    covariance_prior : float or array-like, default=None
        W_0^-1: (D, D) for 'full' and 'tied', (D,) for 'diag', a float for 'spherical'; None
        means the (weighted, ``ddof=1``) covariance of ``X`` in that shape.
    random_state : int, RandomState instance or None, default=None
    warm_start : bool, default=False
        If True, each ``fit`` continues from the previous solution (``n_init`` is ignored).
    verbose : int, default=0
    verbose_interval : int, default=10
    n_jobs : int, default=None
        Threads for the kernels (None: every CPU this process may use). Results do not depend
        on it.
    init_sample : int, default=100_000
        Rows of the uniform sample that 'kmeans' runs on.
    learning_decay : float, default=0.6
        kappa in (0.5, 1] of the step ``(t + learning_offset) ** -kappa`` of :meth:`partial_fit`.
    learning_offset : float, default=1.0
        t0 >= 0 of that step.

    Attributes
    ----------
    weights_, means_, covariances_, precisions_, precisions_cholesky_ : ndarray
        In the dtype of the training data and scikit-learn's shapes. ``covariances_`` is
        ``W_k^-1 / nu_k`` (the inverse of the expected precision), as in scikit-learn.
    weight_concentration_ : ndarray or tuple of two ndarrays
        The Dirichlet's parameters, or the Beta sticks' ``(a_k, b_k)``.
    mean_precision_ : ndarray of shape (n_components,)
    degrees_of_freedom_ : ndarray of shape (n_components,), or float for 'tied'
    weight_concentration_prior_, mean_precision_prior_, mean_prior_, degrees_of_freedom_prior_, \
covariance_prior_
        The priors used.
    converged_ : bool
    n_iter_ : int
    lower_bound_ : float
        The lower bound of the best run's last iteration.
    lower_bounds_ : list of float
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Only when ``X`` had string column names.

    Notes
    -----
    ``score_samples`` and ``score`` return, as scikit-learn's, ``ln sum_k exp(E[ln pi_k] +
    E[ln N(x | mu_k, Lambda_k)])`` under the variational posterior, not a predictive density.

    Examples
    --------
    >>> import numpy as np
    >>> from fastgmm import BayesianGaussianMixture
    >>> rng = np.random.default_rng(0)
    >>> X = np.vstack([rng.normal(0, 1, (200, 2)), rng.normal(8, 1, (200, 2))])
    >>> bgm = BayesianGaussianMixture(n_components=6, random_state=0, max_iter=500).fit(X)
    >>> int((bgm.weights_ > 0.01).sum())  # two clusters: four components switched off
    2
    """

    # The parameters shared with GaussianMixture take its constraints (scikit-learn's base class
    # and fastgmm's engine options); covariance types are scikit-learn's four only.
    _parameter_constraints: dict = {
        **{
            name: GaussianMixture._parameter_constraints[name]
            for name in (
                "n_components",
                "tol",
                "reg_covar",
                "max_iter",
                "n_init",
                "init_params",
                "random_state",
                "warm_start",
                "verbose",
                "verbose_interval",
                "n_jobs",
                "init_sample",
                "learning_decay",
                "learning_offset",
            )
        },
        "covariance_type": [StrOptions(set(SKLEARN_COVARIANCE_TYPES))],
        "weight_concentration_prior_type": [StrOptions(set(PRIOR_TYPES))],
        "weight_concentration_prior": [None, Interval(Real, 0.0, None, closed="neither")],
        "mean_precision_prior": [None, Interval(Real, 0.0, None, closed="neither")],
        "mean_prior": [None, "array-like"],
        "degrees_of_freedom_prior": [None, Interval(Real, 0.0, None, closed="neither")],
        "covariance_prior": [None, "array-like", Interval(Real, 0.0, None, closed="neither")],
    }

    def __init__(
        self,
        *,
        n_components=1,
        covariance_type="full",
        tol=1e-3,
        reg_covar=1e-6,
        max_iter=100,
        n_init=1,
        init_params="kmeans",
        weight_concentration_prior_type="dirichlet_process",
        weight_concentration_prior=None,
        mean_precision_prior=None,
        mean_prior=None,
        degrees_of_freedom_prior=None,
        covariance_prior=None,
        random_state=None,
        warm_start=False,
        verbose=0,
        verbose_interval=10,
        n_jobs=None,
        init_sample=DEFAULT_INIT_SAMPLE,
        learning_decay=_streaming.DEFAULT_LEARNING_DECAY,
        learning_offset=_streaming.DEFAULT_LEARNING_OFFSET,
    ):
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.tol = tol
        self.reg_covar = reg_covar
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.weight_concentration_prior_type = weight_concentration_prior_type
        self.weight_concentration_prior = weight_concentration_prior
        self.mean_precision_prior = mean_precision_prior
        self.mean_prior = mean_prior
        self.degrees_of_freedom_prior = degrees_of_freedom_prior
        self.covariance_prior = covariance_prior
        self.random_state = random_state
        self.warm_start = warm_start
        self.verbose = verbose
        self.verbose_interval = verbose_interval
        self.n_jobs = n_jobs
        self.init_sample = init_sample
        self.learning_decay = learning_decay
        self.learning_offset = learning_offset

    # ------------------------------------------------------------------ fitting
    def fit(self, X, y=None, sample_weight=None):
        """Fit the variational posterior by coordinate ascent on the lower bound.

        Runs ``n_init`` initialisations and keeps the one with the largest lower bound; each
        stops when the lower bound changes by less than ``tol`` or after ``max_iter``
        iterations (then with a ``ConvergenceWarning``).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), path, ChunkSource, callable or Dask
            array
            The rows, in memory or streamed (each iteration is one pass over the source).
        y : Ignored
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative row weights, as frequencies: a weight of 2 counts a row twice (the
            default priors use the weighted mean and covariance). Not for streamed sources.

        Returns
        -------
        self : BayesianGaussianMixture

        Examples
        --------
        >>> import numpy as np
        >>> from fastgmm import BayesianGaussianMixture
        >>> X = np.random.default_rng(0).normal(size=(300, 2))
        >>> bgm = BayesianGaussianMixture(n_components=3, max_iter=500, random_state=0).fit(X)
        >>> bgm.converged_, round(float(bgm.weights_.sum()), 12)
        (True, 1.0)
        """
        self._fit(X, sample_weight)
        return self

    def fit_predict(self, X, y=None, sample_weight=None):
        """Fit, then label each row of ``X`` with its most probable component.

        The labels equal ``fit(X).predict(X)`` (a final E-step with the kept parameters).

        Returns
        -------
        labels : ndarray of shape (n_samples,)

        Examples
        --------
        >>> import numpy as np
        >>> from fastgmm import BayesianGaussianMixture
        >>> X = np.vstack([np.zeros((50, 1)), np.full((50, 1), 9.0)])
        >>> X += np.random.default_rng(0).normal(size=X.shape)
        >>> labels = BayesianGaussianMixture(n_components=2, random_state=0).fit_predict(X)
        >>> len(set(labels[:50])), len(set(labels[50:])), bool(labels[0] != labels[-1])
        (1, 1, True)
        """
        data = self._fit(X, sample_weight)
        return self._labels(data)

    @_fit_context(prefer_skip_nested_validation=True)
    @holds_single_threaded_blas
    def partial_fit(self, X, y=None, sample_weight=None):
        """Update the posterior with one chunk of rows (stochastic variational inference).

        Each call runs the E-step on the chunk, blends its per-row statistics into running
        averages with the step ``rho_t = (t + learning_offset) ** -learning_decay`` (``t``
        counts the chunks after the first), and sets the posterior to the prior plus ``N``
        times the averages: the natural-gradient step of SVI (Hoffman et al. 2013). ``N`` is
        the total weight of the rows seen so far (see
        ``fastgmm.variational.StochasticVariational``), since a stream has no data-set
        size. The first call computes the default priors from its chunk and initialises with
        ``init_params``; it needs at least ``n_components`` rows. A model fitted by :meth:`fit`
        is continued instead (with its priors).

        The result is approximate and depends on the order and size of the chunks; :meth:`fit`
        on a source gives the exact batch solution for data that can be read several times.

        Returns
        -------
        self : BayesianGaussianMixture
            ``lower_bound_`` is the chunk's mean of :meth:`score_samples` under the parameters
            before the update, ``lower_bounds_`` their history, ``n_iter_`` the number of
            calls; ``converged_`` is False.

        Examples
        --------
        >>> import numpy as np
        >>> from fastgmm import BayesianGaussianMixture
        >>> rng = np.random.default_rng(0)
        >>> bgm = BayesianGaussianMixture(n_components=2, random_state=0)
        >>> for _ in range(30):
        ...     labels = rng.integers(2, size=400)
        ...     bgm = bgm.partial_fit(rng.normal(size=(400, 2)) + 8.0 * labels[:, None])
        >>> np.sort(bgm.means_[:, 0]).round(1), bgm.n_iter_
        (array([0., 8.]), 30)
        """
        if getattr(self, "_online", None) is None and not hasattr(self, "means_"):
            rows = validate_rows(self, X, reset=True)
            if rows.shape[0] >= self.n_components:  # else _partial_fit says what is wrong
                weights = None
                if sample_weight is not None:
                    weights = _check_sample_weight(
                        sample_weight, rows, dtype=np.float64, ensure_non_negative=True
                    )
                self._check_priors(ArrayChunks(rows, weights), resolve_n_threads(self.n_jobs))
        return self._partial_fit(X, sample_weight, StochasticVariational)

    def _provider_for_fit(self, X, sample_weight):
        # The priors are the data's (one pass) before any initialisation draws from them.
        provider = super()._provider_for_fit(X, sample_weight)
        self._check_priors(provider, resolve_n_threads(self.n_jobs))
        return provider

    # --------------------------------------------------------------------------- priors
    def _check_priors(self, provider, n_threads) -> None:
        """The ``*_prior_`` attributes, scikit-learn's checks, one pass for data defaults."""
        n_features = provider.n_features
        ctype = self.covariance_type
        dtype = provider.dtype
        self.weight_concentration_prior_ = (
            1.0 / self.n_components
            if self.weight_concentration_prior is None
            else self.weight_concentration_prior
        )
        self.mean_precision_prior_ = (
            1.0 if self.mean_precision_prior is None else self.mean_precision_prior
        )
        mean_prior = None
        if self.mean_prior is not None:
            mean_prior = check_array(
                self.mean_prior, dtype=[np.float64, np.float32], ensure_2d=False
            )
            check_shape(mean_prior, (n_features,), "means")
        if self.degrees_of_freedom_prior is None:
            self.degrees_of_freedom_prior_ = n_features
        elif self.degrees_of_freedom_prior > n_features - 1.0:
            self.degrees_of_freedom_prior_ = self.degrees_of_freedom_prior
        else:
            raise ValueError(
                "The parameter 'degrees_of_freedom_prior' should be greater than "
                f"{n_features - 1}, but got {self.degrees_of_freedom_prior:.3f}."
            )
        covariance_prior = self._given_covariance_prior(n_features)

        full = ctype in ("full", "tied")
        needs_second_moment = ctype == "tied" and self.init_params in _ONE_HOT_STARTS
        moments = None
        if mean_prior is None or covariance_prior is None or needs_second_moment:
            moments = data_moments(provider, full=full, n_threads=n_threads)
        self.mean_prior_ = moments.mean.astype(dtype) if mean_prior is None else mean_prior
        if covariance_prior is None:
            covariance = moments.covariance()
            covariance_prior = {
                "full": covariance,
                "tied": covariance,
                "diag": covariance.astype(dtype),
                "spherical": dtype.type(np.mean(covariance)),
            }[ctype]
        self.covariance_prior_ = covariance_prior
        self._data_second_moment = None if moments is None else moments.second_moment

    def _given_covariance_prior(self, n_features):
        """The user's ``covariance_prior``, checked as scikit-learn does (None if not given)."""
        value, ctype = self.covariance_prior, self.covariance_type
        if value is None or ctype == "spherical":
            return value
        prior = check_array(value, dtype=[np.float64, np.float32], ensure_2d=False)
        if ctype == "diag":
            check_shape(prior, (n_features,), "diag covariance_prior")
            if np.any(prior <= 0.0):
                raise ValueError("'diag precision' should be positive")
            return prior
        check_shape(prior, (n_features, n_features), f"{ctype} covariance_prior")
        if not (np.allclose(prior, prior.T) and np.all(np.linalg.eigvalsh(prior) > 0.0)):
            raise ValueError(f"'{ctype} precision' should be symmetric, positive-definite")
        return prior

    def _prior(self) -> VariationalPrior | None:
        if not hasattr(self, "mean_prior_"):
            return None
        covariance = self.covariance_prior_
        return VariationalPrior(
            self.weight_concentration_prior_type,
            float(self.weight_concentration_prior_),
            float(self.mean_precision_prior_),
            np.asarray(self.mean_prior_, dtype=np.float64),
            float(self.degrees_of_freedom_prior_),
            np.asarray(covariance, dtype=np.float64) if np.ndim(covariance) else float(covariance),
            getattr(self, "_data_second_moment", None),
        )

    # ------------------------------------------------------------------- the engine's hooks
    def _make_fitter(self, dtype):
        return Variational(
            get_model(self.covariance_type), self._prior(), reg_covar=self.reg_covar, dtype=dtype
        )

    def _current_params(self) -> VariationalParams:
        def wide(value):
            return np.asarray(value, dtype=np.float64)

        concentration = self.weight_concentration_
        if isinstance(concentration, tuple):
            concentration = tuple(wide(c) for c in concentration)
        else:
            concentration = wide(concentration)
        nu = self.degrees_of_freedom_
        return VariationalParams(
            wide(self.weights_),
            wide(self.means_),
            wide(self.covariances_),
            wide(self.precisions_cholesky_),
            self.covariance_type,
            None,
            concentration,
            wide(self.mean_precision_),
            wide(nu) if np.ndim(nu) else float(nu),
        )

    def _set_params(self, params: VariationalParams, dtype) -> None:
        dtype = np.dtype(dtype)
        model = get_model(self.covariance_type)

        def narrow(value):
            return np.asarray(value, dtype=dtype)

        with np.errstate(over="ignore"):  # overflow to float32's inf is refused below
            values = {
                "weights_": narrow(params.weights),
                "means_": narrow(params.means),
                "covariances_": narrow(params.covariances),
                "precisions_cholesky_": narrow(params.precisions_cholesky),
            }
            values["precisions_"] = model.precisions(values["precisions_cholesky_"])
        bad = [name for name, value in values.items() if not np.all(np.isfinite(value))]
        if bad:
            raise ValueError(
                f"The fitted {', '.join(bad)} cannot be represented in {dtype.name}; fit "
                "float64 data, scale the input data, or increase reg_covar."
            )
        concentration = params.weight_concentration
        if isinstance(concentration, tuple):
            values["weight_concentration_"] = tuple(narrow(c) for c in concentration)
        else:
            values["weight_concentration_"] = narrow(concentration)
        values["mean_precision_"] = narrow(params.mean_precision)
        nu = params.degrees_of_freedom
        values["degrees_of_freedom_"] = narrow(nu) if np.ndim(nu) else dtype.type(nu)
        for name, value in values.items():
            setattr(self, name, value)

    # ------------------------------------------------- scikit-learn's private entry points
    def _check_parameters(self, X, xp=None):
        """Set the ``*_prior_`` attributes from ``X`` (scikit-learn's private step, which its
        own tests call)."""
        X = validate_rows(self, X, reset=True)
        self._check_priors(ArrayChunks(X), resolve_n_threads(self.n_jobs))

    @holds_single_threaded_blas
    def _initialize_parameters(self, X, random_state, xp=None):
        """Set the starting posterior from ``X`` by ``init_params`` (scikit-learn's private
        step, which its own tests call after :meth:`_check_parameters`)."""
        X = validate_rows(self, X, reset=False)
        fitter = self._make_fitter(X.dtype)
        n_threads = resolve_n_threads(self.n_jobs)
        params = self._start(ArrayChunks(X), fitter, random_state, n_threads, self.reg_covar)
        self._set_params(params, X.dtype)

    # ---------------------------------------------------------------------- inference
    def score_samples(self, X, out=None):
        """``ln sum_k exp(E[ln pi_k] + E[ln N(x | k)])`` of each row (scikit-learn's value).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), path, ChunkSource or callable
        out : None, str, os.PathLike or ndarray, default=None
            As in :meth:`fastgmm.GaussianMixture.score_samples`.

        Returns
        -------
        log_prob : ndarray of shape (n_samples,)

        Examples
        --------
        >>> import numpy as np
        >>> from fastgmm import BayesianGaussianMixture
        >>> X = np.random.default_rng(0).normal(size=(200, 2))
        >>> bgm = BayesianGaussianMixture(n_components=2, random_state=0).fit(X)
        >>> near, far = bgm.score_samples([[0.0, 0.0], [6.0, 6.0]])
        >>> bool(near > far)
        True
        """
        return self._output(X, "score_samples", out)

    def score(self, X, y=None):
        """Mean of :meth:`score_samples` over the rows of ``X`` (a source: in one pass).

        Examples
        --------
        >>> import numpy as np
        >>> from fastgmm import BayesianGaussianMixture
        >>> X = np.random.default_rng(0).normal(size=(200, 2))
        >>> bgm = BayesianGaussianMixture(n_components=2, random_state=0).fit(X)
        >>> bool(np.isclose(bgm.score(X), bgm.score_samples(X).mean()))
        True
        """
        return self._score(X)

    def predict(self, X, out=None):
        """The most probable component of each row (``out`` as in :meth:`score_samples`).

        Examples
        --------
        >>> import numpy as np
        >>> from fastgmm import BayesianGaussianMixture
        >>> rng = np.random.default_rng(0)
        >>> X = np.concatenate([rng.normal(0, 1, (100, 1)), rng.normal(9, 1, (100, 1))])
        >>> bgm = BayesianGaussianMixture(n_components=2, random_state=0).fit(X)
        >>> labels = bgm.predict([[0.1], [9.1]])
        >>> bool(labels[0] != labels[1])
        True
        """
        return self._output(X, "predict", out)

    def predict_proba(self, X, out=None):
        """Responsibilities of the components for each row (``out`` as in
        :meth:`score_samples`).

        Examples
        --------
        >>> import numpy as np
        >>> from fastgmm import BayesianGaussianMixture
        >>> X = np.random.default_rng(0).normal(size=(100, 2))
        >>> bgm = BayesianGaussianMixture(n_components=3, max_iter=500, random_state=0).fit(X)
        >>> bgm.predict_proba(X[:4]).sum(axis=1).round(12)
        array([1., 1., 1., 1.])
        """
        return self._output(X, "predict_proba", out)

    def sample(self, n_samples=1):
        """Draw rows from the mixture with the fitted ``weights_``, ``means_`` and
        ``covariances_`` (scikit-learn's draws).

        Returns
        -------
        X : ndarray of shape (n_samples, n_features)
        y : ndarray of shape (n_samples,)

        Examples
        --------
        >>> import numpy as np
        >>> from fastgmm import BayesianGaussianMixture
        >>> X = np.random.default_rng(0).normal(size=(100, 3))
        >>> bgm = BayesianGaussianMixture(n_components=2, random_state=0).fit(X)
        >>> [a.shape for a in bgm.sample(4)]
        [(4, 3), (4,)]
        """
        return self._sample(n_samples)
