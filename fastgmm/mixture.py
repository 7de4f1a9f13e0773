"""``GaussianMixture``: scikit-learn's estimator, computed by fastgmm's engine."""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
from sklearn.base import _fit_context
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from . import _marginal, criteria
from . import streaming as _streaming
from ._estimator import BaseMixture
from ._jit import holds_single_threaded_blas, resolve_n_threads
from ._names import COVARIANCE_TYPES, INIT_METHODS
from .covariance import ConjugatePrior, Decomposition, MclustModel, get_model
from .degenerate import ON_DEGENERATE
from .init import DEFAULT_INIT_SAMPLE
from .missing import MISSING
from .noise import NOISE_PARAMETERS, check_noise_init, data_hypervolume, make_fitter
from .prior import check_prior_model, data_moments, resolve_prior
from .stats import MixtureParams
from .validation import check_means_init, check_weights_init, validate_rows

__all__ = ["GaussianMixture"]


# Not a ClusterMixin, like scikit-learn's own GaussianMixture: ClusterMixin enrols the clustering
# estimator checks, which need a ``labels_`` attribute (an n_samples array kept after every fit,
# unaffordable on data that does not fit in memory) and a default of more than one component.
# ``fit_predict`` is provided all the same.
class GaussianMixture(BaseMixture):
    """Gaussian mixture model fitted by EM, a drop-in for ``sklearn.mixture.GaussianMixture``.

    The constructor, fitted attributes, methods, warnings and error messages follow
    scikit-learn 1.9. The E-step and the sufficient statistics run in one fused, parallel Numba
    pass over row blocks; responsibilities are never stored for the whole data set during
    ``fit``. Statistics accumulate in float64 whatever the input dtype, and results are
    bit-identical for any number of threads.

    Parameters
    ----------
    n_components : int, default=1
        The number of mixture components.
    covariance_type : str, default='full'
        The form of the covariance matrices: scikit-learn's 'full', 'tied', 'diag' or
        'spherical' (with scikit-learn's attribute shapes), or one of mclust's fourteen models
        'EII', 'VII', 'EEI', 'VEI', 'EVI', 'VVI', 'EEE', 'VEE', 'EVE', 'VVE', 'EEV', 'VEV',
        'EVV', 'VVV': ``Σ_k = λ_k D_k A_k D_kᵀ`` with volume λ, shape A and orientation D
        Equal across components, Variable, or the Identity (see
        :class:`fastgmm.covariance.MclustModel`). 'VVE_mclust' is mclust 6.0.0's own VVE step
        (to reproduce R; 'VVE' is the maximum-likelihood step).
    tol : float, default=1e-3
        Convergence threshold on the change of the lower bound (mean log-likelihood).
    reg_covar : float, default=1e-6
        Non-negative regularisation added to the diagonal of covariances.
    max_iter : int, default=100
        The number of EM iterations to perform.
    n_init : int, default=1
        The number of initialisations; the best result is kept.
    init_params : {'kmeans', 'k-means++', 'random', 'random_from_data', 'hc'}, default='kmeans'
        How responsibilities are initialised. 'kmeans' and 'k-means++' use fastgmm's own
        k-means on a uniform sample of at most ``init_sample`` rows; 'random_from_data' picks
        rows the same way, and 'random' draws responsibilities row by row, so that arrays and
        streamed sources holding the same rows get the same initialisation. 'hc' is mclust's
        default start: model-based hierarchical clustering of a uniform sample of at most 2000
        rows (all of them below that), cut into ``n_components`` clusters, and one M-step on
        that partition (:class:`fastgmm.init.HierarchicalStart`).
    weights_init, means_init, precisions_init : array-like, default=None
        User-provided initial parameters, as in scikit-learn.
    random_state : int, RandomState instance or None, default=None
        Controls the initialisation and :meth:`sample`.
    warm_start : bool, default=False
        If True, each ``fit`` continues from the previous solution.
    verbose : int, default=0
        Verbosity as in scikit-learn.
    verbose_interval : int, default=10
        Iterations between verbose messages.
    n_jobs : int, default=None
        Threads for the kernels. None uses the CPUs this process may run on (honouring
        ``NUMBA_NUM_THREADS``); -1 means the same; a positive value is used as given. Results do
        not depend on it.
    init_sample : int, default=100_000
        Rows of the uniform sample (drawn in one pass, also from a stream) on which k-means and
        k-means++ initialise; all rows when there are fewer.
    learning_decay : float, default=0.6
        Exponent kappa in (0.5, 1] of the step size ``(t + learning_offset) ** -kappa`` of
        :meth:`partial_fit` (Cappé & Moulines 2009).
    learning_offset : float, default=1.0
        Offset t0 >= 0 of that step size; the first update after the initialising chunk uses
        ``(1 + t0) ** -kappa``.
    on_degenerate : {'raise', 'reinit', 'reg'}, default='raise'
        What to do when a component collapses during EM: its covariance has no Cholesky factor
        (singleton or duplicated rows, a feature constant inside the component, ``reg_covar``
        too small for the scale of the data) or, for ``'reinit'``, it is empty (weight below a
        millionth of an average row).

        - ``'raise'``: scikit-learn's behaviour and message ("ill-defined empirical
          covariance"). Use it when a collapse means the model is wrong for the data (too
          many components, unscaled or duplicated data) and you want to be told, and for exact
          parity with scikit-learn.
        - ``'reinit'``: move the component to the worst-explained row of the last E-step
          (lowest log-likelihood) with the average covariance of the healthy components, and
          warn. Use it when every component should describe data (clustering, vector
          quantisation, a fixed ``n_components`` chosen by the pipeline) and an empty or
          collapsed one is wasted capacity. The lower bound may drop at these events.
        - ``'reg'``: raise that component's own regularisation tenfold at a time (from
          ``10 * reg_covar``, or from ``1e-6`` times the mean variance of the data when
          ``reg_covar=0``) until its Cholesky factorisation succeeds; the raised value stays
          for the rest of the run. Use it for density estimation when a component legitimately
          lies in a lower-dimensional subspace (discrete or duplicated values, a feature that is
          constant in one cluster) and should stay a tight but valid Gaussian.

        Every action is recorded in ``degenerate_events_`` and announced by a
        ``fastgmm.degenerate.DegenerateComponentWarning`` (a ``ConvergenceWarning``).
    noise_init : array-like of shape (n_samples,), bool, default=None
        Adds a uniform noise component (mclust's ``noise``, :mod:`fastgmm.noise`): density
        ``1/V`` over the data's region (``V`` as mclust's ``hypvol``), with its own weight. The
        rows marked True start in it; the Gaussian components start from the others.
        ``predict`` labels noise rows -1, ``predict_proba`` has the noise as its last column,
        and BIC counts two more parameters (as mclust). Not with ``on_degenerate='reinit'`` or
        :meth:`partial_fit`.
    prior : None, 'default' or ConjugatePrior, default=None
        MAP estimates under mclust's conjugate prior (Fraley & Raftery 2007): 'default' takes
        mclust's ``defaultPrior`` hyperparameters from the data (one extra pass); a
        :class:`fastgmm.covariance.ConjugatePrior` gives them explicitly. For mclust's models
        EII, VII, EEI, VEI, EVI, VVI, EEE, EEV, VEV and VVV (where mclust defines it). The
        lower bound is then the log-likelihood, which MAP steps need not increase. Not with
        :meth:`partial_fit`.
    convergence : {'sklearn', 'mclust'}, default='sklearn'
        The convergence test. 'sklearn': the mean log-likelihood per row changed by less than
        ``tol``; the fit keeps the M-step that follows. 'mclust' (``emControl(tol = ...)``):
        the total log-likelihood ``log L`` changed by at most ``tol * (1 + |log L|)``; the fit
        keeps the parameters whose E-step met the test (and reproduces R's BIC and ICL).
    missing : {'raise', 'marginalize'}, default='raise'
        What a NaN in the data means.

        - ``'raise'``: an input error, as in scikit-learn.
        - ``'marginalize'``: a missing entry, integrated out exactly (Ghahramani & Jordan
          1994): each row is explained by the marginal density of its observed entries, and EM
          uses the expected complete-data statistics (the missing entries' conditional means,
          and their conditional covariance added to the second moments). ``fit``,
          ``predict``, ``predict_proba``, ``score_samples``, ``score``, ``bic`` and ``aic``
          then accept rows with NaN, on arrays, streamed sources and Dask arrays; the lower
          bound is the observed-data log-likelihood. A row needs at least one observed entry,
          and infinity is still an error. Data without NaN are fitted exactly as with
          ``'raise'`` (one more pass checks that). See :meth:`impute` and
          :mod:`fastgmm.missing`.

    Attributes
    ----------
    weights_, means_, covariances_, precisions_, precisions_cholesky_ : ndarray
        Fitted parameters, in the dtype of the training data.
    converged_ : bool
    n_iter_ : int
    lower_bound_ : float
        Mean log-likelihood of the best run's last iteration.
    lower_bounds_ : list of float
        The lower bound at each iteration of the best run.
    n_features_in_ : int
    degenerate_events_ : list of dict
        The ``on_degenerate`` actions of the best run, in order: ``iteration`` (the 1-based EM
        iteration whose M-step acted), ``component`` (None for the shared ``'tied'``
        covariance), ``action`` (``'reinit'`` or ``'reg'``), ``reason`` (``'empty'`` or
        ``'cholesky'``), and ``row`` (``'reinit'``: the row the component moved to) or
        ``reg_covar`` (``'reg'``: the component's regularisation from then on). Empty when
        nothing collapsed.
    feature_names_in_ : ndarray of str
        Only when ``X`` had string column names.
    volumes_, shapes_, orientations_ : ndarray
        mclust's models only: ``Σ_k = volumes_[k] * orientations_[k] @ diag(shapes_[k]) @
        orientations_[k].T``, of shapes (K,), (K, D) and (K, D, D); each shape has product 1.
    noise_weight_, noise_volume_ : float
        With ``noise_init`` only: the noise component's weight (``weights_`` sum to
        ``1 - noise_weight_``) and the volume ``V`` of its density ``1/V``.

    Notes
    -----
    Data that do not fit in memory can be passed to :meth:`fit`, :meth:`predict`,
    :meth:`predict_proba`, :meth:`score_samples` and :meth:`score` as a path (``.npy``, ``.npz``,
    HDF5, Zarr, Parquet, CSV), a :class:`~fastgmm.sources.ChunkSource` from
    :func:`fastgmm.open_source` or a zero-argument callable returning an iterator of 2-D chunks.
    Each EM iteration is then one exact pass over the source, and the fit equals the in-memory
    fit of the same rows. :meth:`partial_fit` fits unbounded streams approximately (online EM).

    Examples
    --------
    >>> import numpy as np
    >>> from fastgmm import GaussianMixture
    >>> X = np.array([[1, 2], [1, 4], [1, 0], [10, 2], [10, 4], [10, 0]])
    >>> gm = GaussianMixture(n_components=2, random_state=0).fit(X)
    >>> np.sort(gm.means_[:, 0]).round(3)
    array([ 1., 10.])
    >>> gm.predict([[0, 0], [12, 3]]) == gm.predict([[1, 2], [10, 2]])
    array([ True,  True])
    """

    _parameter_constraints: dict = {
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "covariance_type": [StrOptions(set(COVARIANCE_TYPES))],
        "tol": [Interval(Real, 0.0, None, closed="left")],
        "reg_covar": [Interval(Real, 0.0, None, closed="left")],
        "max_iter": [Interval(Integral, 0, None, closed="left")],
        "n_init": [Interval(Integral, 1, None, closed="left")],
        "init_params": [StrOptions(set(INIT_METHODS))],
        "weights_init": ["array-like", None],
        "means_init": ["array-like", None],
        "precisions_init": ["array-like", None],
        "random_state": ["random_state"],
        "warm_start": ["boolean"],
        "verbose": ["verbose"],
        "verbose_interval": [Interval(Integral, 1, None, closed="left")],
        "n_jobs": [Integral, None],
        "on_degenerate": [StrOptions(set(ON_DEGENERATE))],
        "init_sample": [Interval(Integral, 1, None, closed="left")],
        "learning_decay": [Interval(Real, 0.5, 1.0, closed="right")],
        "learning_offset": [Interval(Real, 0.0, None, closed="left")],
        "noise_init": ["array-like", None],
        "convergence": [StrOptions({"sklearn", "mclust"})],
        "prior": [None, StrOptions({"default"}), ConjugatePrior],
        "missing": [StrOptions(set(MISSING))],
    }

    def __init__(
        self,
        n_components=1,
        *,
        covariance_type="full",
        tol=1e-3,
        reg_covar=1e-6,
        max_iter=100,
        n_init=1,
        init_params="kmeans",
        weights_init=None,
        means_init=None,
        precisions_init=None,
        random_state=None,
        warm_start=False,
        verbose=0,
        verbose_interval=10,
        n_jobs=None,
        on_degenerate="raise",
        init_sample=DEFAULT_INIT_SAMPLE,
        learning_decay=_streaming.DEFAULT_LEARNING_DECAY,
        learning_offset=_streaming.DEFAULT_LEARNING_OFFSET,
        noise_init=None,
        prior=None,
        convergence="sklearn",
        missing="raise",
    ):
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.tol = tol
        self.reg_covar = reg_covar
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.weights_init = weights_init
        self.means_init = means_init
        self.precisions_init = precisions_init
        self.random_state = random_state
        self.warm_start = warm_start
        self.verbose = verbose
        self.verbose_interval = verbose_interval
        self.n_jobs = n_jobs
        self.on_degenerate = on_degenerate
        self.init_sample = init_sample
        self.learning_decay = learning_decay
        self.learning_offset = learning_offset
        self.noise_init = noise_init
        self.prior = prior
        self.convergence = convergence
        self.missing = missing

    def __sklearn_tags__(self):
        # scikit-learn's checks and meta-estimators read whether NaN is accepted from here.
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = self.missing == "marginalize"
        return tags

    # ------------------------------------------------------------------ fitting
    def fit(self, X, y=None, sample_weight=None):
        """Estimate model parameters with the EM algorithm.

        Runs ``n_init`` initialisations and keeps the one with the largest lower bound.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), path, ChunkSource or callable
            The rows, in memory or streamed from a source (see :func:`fastgmm.open_source`);
            every EM iteration is then one pass. Sources whose length is unknown (CSV files,
            callables) are counted in one extra pass first.
        y : Ignored
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative row weights (weighted EM); a weight of 2 counts a row twice. Not
            supported for streamed sources.

        Returns
        -------
        self : GaussianMixture

        Examples
        --------
        >>> import numpy as np
        >>> from fastgmm import GaussianMixture
        >>> rng = np.random.default_rng(0)
        >>> X = np.vstack([rng.normal(0, 1, (100, 2)), rng.normal(6, 1, (100, 2))])
        >>> gm = GaussianMixture(n_components=2, random_state=0).fit(X)
        >>> gm.converged_, gm.weights_.round(2)
        (True, array([0.5, 0.5]))
        """
        self._fit(X, sample_weight)
        return self

    def fit_predict(self, X, y=None, sample_weight=None):
        """Fit the model and return the most probable component of each row of ``X``.

        A final E-step with the best parameters makes the labels equal to
        ``fit(X).predict(X)``.

        Returns
        -------
        labels : ndarray of shape (n_samples,)

        Examples
        --------
        >>> import numpy as np
        >>> from fastgmm import GaussianMixture
        >>> rng = np.random.default_rng(0)
        >>> X = np.vstack([rng.normal(0, 1, (100, 2)), rng.normal(6, 1, (100, 2))])
        >>> labels = GaussianMixture(2, random_state=0).fit_predict(X)
        >>> gm = GaussianMixture(2, random_state=0).fit(X)
        >>> bool(np.array_equal(labels, gm.predict(X)))
        True
        """
        data = self._fit(X, sample_weight)
        return self._labels(data)

    @_fit_context(prefer_skip_nested_validation=True)
    @holds_single_threaded_blas
    def partial_fit(self, X, y=None, sample_weight=None):
        """Update the model with one chunk of rows by online (stepwise) EM.

        For streams that are too long, or arrive too late, for repeated passes. Each call runs
        one E-step on the chunk under the current parameters, blends the chunk's per-row
        sufficient statistics into running averages with the step size
        ``(t + learning_offset) ** -learning_decay`` (``t`` counts the chunks after the first)
        and runs the M-step on the averages (Cappé & Moulines 2009;
        :class:`fastgmm.streaming.OnlineEM`). The first call initialises the model from its
        chunk with ``init_params`` (k-means by default), or from ``weights_init``,
        ``means_init`` and ``precisions_init``; it needs at least ``n_components`` rows. A
        model already fitted by :meth:`fit` is the starting point instead.

        The result is approximate: it depends on the order and size of the chunks and, on
        stationary data, approaches the batch EM solution as chunks accumulate. For data that
        can be read several times, :meth:`fit` on a source gives the exact solution.

        Parameters
        ----------
        X : array-like of shape (n_rows, n_features)
            One chunk, float64 or float32 (statistics accumulate in float64 either way).
        y : Ignored
        sample_weight : array-like of shape (n_rows,), default=None
            Non-negative row weights within the chunk.

        Returns
        -------
        self : GaussianMixture
            ``lower_bound_`` is the chunk's mean log-likelihood under the parameters before the
            update and ``lower_bounds_`` the history of those values; ``n_iter_`` counts the
            calls; ``converged_`` is False (online EM has no convergence test). A later
            :meth:`fit` starts afresh.

        Examples
        --------
        >>> import numpy as np
        >>> from fastgmm import GaussianMixture
        >>> rng = np.random.default_rng(0)
        >>> gm = GaussianMixture(2, random_state=0)
        >>> for _ in range(20):
        ...     labels = rng.integers(2, size=500)
        ...     gm = gm.partial_fit(rng.normal(size=(500, 2)) + 6.0 * labels[:, None])
        >>> bool(np.allclose(np.sort(gm.means_[:, 0]), [0.0, 6.0], atol=0.2))
        True
        """
        if self.noise_init is not None or self.prior is not None or self._has_noise():
            raise ValueError(
                "partial_fit supports neither a noise component nor a prior: both depend on "
                "the whole data set (its volume, its moments); use fit."
            )
        return self._partial_fit(X, sample_weight, _streaming.OnlineEM)

    # ------------------------------------------------------------------- the engine's hooks
    def _fit_provider(self, provider) -> None:
        """What a fit needs from the whole data before EM: the noise volume, the prior."""
        n_threads = resolve_n_threads(self.n_jobs)
        model = get_model(self.covariance_type)
        if self.noise_init is not None and self.on_degenerate == "reinit":
            raise ValueError(
                "on_degenerate='reinit' is not supported with a noise component (noise_init); "
                "use on_degenerate='reg' or 'raise'."
            )
        if self.noise_init is not None:
            self._noise_mask = check_noise_init(self.noise_init, provider.count_rows())
            self.noise_volume_ = data_hypervolume(provider, n_threads=n_threads)
        else:
            for name in ("noise_weight_", "noise_volume_", "_noise_mask"):
                self.__dict__.pop(name, None)
        moments = None
        if self.prior is not None:
            check_prior_model(model)  # before any pass over the data
            if isinstance(self.prior, str):
                moments = data_moments(provider, n_threads=n_threads)[:2]
        self._fit_prior = resolve_prior(
            self.prior, model, self.n_components, provider.n_features, moments
        )
        super()._fit_provider(provider)

    def _has_noise(self) -> bool:
        return getattr(self, "noise_volume_", None) is not None

    def _make_fitter(self, dtype):
        return make_fitter(
            get_model(self.covariance_type),
            reg_covar=self.reg_covar,
            dtype=dtype,
            prior=getattr(self, "_fit_prior", None),
            noise_volume=getattr(self, "noise_volume_", None),
            missing=self.missing == "marginalize",
        )

    def _check_init_params(self, n_features):
        """Validated copies of the user's initial parameters (the estimator's own stay as given)."""
        k = self.n_components
        weights = None if self.weights_init is None else check_weights_init(self.weights_init, k)
        means = (
            None if self.means_init is None else check_means_init(self.means_init, k, n_features)
        )
        precisions = None
        if self.precisions_init is not None:
            from .validation import as_float_array

            name = f"{self.covariance_type} precision"
            precisions = as_float_array(self.precisions_init, name)
            get_model(self.covariance_type).check_precisions(precisions, k, n_features)
        return weights, means, precisions

    def _start(self, provider, fitter, random_state, n_threads, reg_covar):
        """First parameters: the user's, completed (as scikit-learn) by ``init_params``."""
        weights, means, precisions = self._check_init_params(provider.n_features)
        model = fitter.model
        if weights is None or means is None or precisions is None:
            params = super()._start(
                provider,
                fitter,
                random_state,
                n_threads,
                reg_covar,
                noise_init=getattr(self, "_noise_mask", None),
            )
        else:
            params = MixtureParams(weights, means, None, None, model.name)
            if self._has_noise():
                params.noise_weight = float(np.mean(self._noise_mask))
        if weights is not None:
            # The user's weights (summing to 1) share what the noise leaves.
            params.weights = weights * (1.0 - (params.noise_weight or 0.0))
        if means is not None:
            params.means = means
        if precisions is not None:
            params.precisions_cholesky = model.precisions_cholesky_from_precisions(precisions)
            params.covariances = model.covariances_from_precisions_cholesky(
                params.precisions_cholesky
            )
            params.decomposition = None
        return params

    def _current_params(self) -> MixtureParams:
        """The fitted parameters in float64, to continue from (warm start) or score with."""
        covariances = getattr(self, "covariances_", None)
        return MixtureParams(
            np.asarray(self.weights_, dtype=np.float64),
            np.asarray(self.means_, dtype=np.float64),
            None if covariances is None else np.asarray(covariances, dtype=np.float64),
            np.asarray(self.precisions_cholesky_, dtype=np.float64),
            self.covariance_type,
            getattr(self, "_decomposition", None),
            noise_weight=getattr(self, "noise_weight_", None),
        )

    def _set_params(self, params: MixtureParams, dtype) -> None:
        model = get_model(self.covariance_type)
        if params.covariances is None:
            params.covariances = model.covariances_from_precisions_cholesky(
                params.precisions_cholesky
            )
        with np.errstate(over="ignore"):  # overflow to float32's inf is refused below
            values = {
                "weights_": np.asarray(params.weights, dtype=dtype),
                "means_": np.asarray(params.means, dtype=dtype),
                "covariances_": np.asarray(params.covariances, dtype=dtype),
                "precisions_cholesky_": np.asarray(params.precisions_cholesky, dtype=dtype),
            }
            values["precisions_"] = model.precisions(values["precisions_cholesky_"])
        # float32 data whose spread is near float32's limits (tiny variances with reg_covar=0,
        # or rows ~1e20 apart) give precisions or covariances beyond float32's range: refuse
        # rather than store inf.
        overflow = [name for name, value in values.items() if not np.all(np.isfinite(value))]
        if overflow:
            raise ValueError(
                f"The fitted {', '.join(overflow)} cannot be represented in "
                f"{np.dtype(dtype).name} (the variances, or their inverses, exceed its range). Fit "
                "float64 data, scale the input data, or increase reg_covar."
            )
        for name, value in values.items():
            setattr(self, name, value)
        self._decomposition = params.decomposition
        if isinstance(model, MclustModel):
            dec = params.decomposition
            if not isinstance(dec, Decomposition):  # user precisions, never through an M-step
                dec = model.decompose(params.covariances)
                self._decomposition = None
            self.volumes_ = np.asarray(dec.volumes, dtype=dtype)
            self.shapes_ = np.asarray(dec.shapes, dtype=dtype)
            self.orientations_ = np.asarray(dec.orientations, dtype=dtype)
        else:
            for name in ("volumes_", "shapes_", "orientations_"):
                self.__dict__.pop(name, None)
        if params.noise_weight is not None:
            self.noise_weight_ = float(params.noise_weight)

    def score_samples(self, X, out=None):
        """Log-likelihood of each sample under the model.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), path, ChunkSource or callable
            Rows in memory or streamed from a source (chunk by chunk, in one pass).
        out : None, str, os.PathLike or ndarray, default=None
            Where to write the result: None returns a new array; a path creates a ``.npy``
            file filled chunk by chunk through a memory map (returned), so that scoring a
            source larger than memory needs little memory; an array of shape (n_samples,) is
            filled in place and returned.

        Returns
        -------
        log_prob : ndarray of shape (n_samples,)

        Examples
        --------
        >>> import numpy as np
        >>> from fastgmm import GaussianMixture
        >>> rng = np.random.default_rng(0)
        >>> X = np.vstack([rng.normal(0, 1, (100, 2)), rng.normal(6, 1, (100, 2))])
        >>> gm = GaussianMixture(2, random_state=0).fit(X)
        >>> log_p = gm.score_samples([[0, 0], [3, 3], [20, 20]])
        >>> bool(log_p[0] > log_p[1] > log_p[2])  # a centre, between, far away
        True
        """
        return self._output(X, "score_samples", out)

    def score(self, X, y=None):
        """Mean log-likelihood of ``X`` under the model (a source: in one pass).

        Examples
        --------
        >>> import numpy as np
        >>> from fastgmm import GaussianMixture
        >>> rng = np.random.default_rng(0)
        >>> X = np.vstack([rng.normal(0, 1, (100, 2)), rng.normal(6, 1, (100, 2))])
        >>> gm = GaussianMixture(2, random_state=0).fit(X)
        >>> bool(np.isclose(gm.score(X), gm.score_samples(X).mean()))
        True
        """
        return self._score(X)

    def predict(self, X, out=None):
        """Most probable component of each sample.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), path, ChunkSource or callable
        out : None, str, os.PathLike or ndarray, default=None
            As in :meth:`score_samples`; an array must have shape (n_samples,) and an integer
            dtype.

        Returns
        -------
        labels : ndarray of shape (n_samples,)
            -1 for rows most probably noise (with ``noise_init``).

        Examples
        --------
        >>> import numpy as np
        >>> from fastgmm import GaussianMixture
        >>> rng = np.random.default_rng(0)
        >>> X = np.vstack([rng.normal(0, 1, (100, 2)), rng.normal(6, 1, (100, 2))])
        >>> gm = GaussianMixture(2, random_state=0).fit(X)
        >>> labels = gm.predict([[0, 0], [0.5, -0.5], [6, 6]])
        >>> bool(labels[0] == labels[1] != labels[2])
        True
        """
        return self._output(X, "predict", out)

    def predict_proba(self, X, out=None):
        """Posterior probability of each component for each sample.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), path, ChunkSource or callable
        out : None, str, os.PathLike or ndarray, default=None
            As in :meth:`score_samples`, with shape (n_samples, n_components).

        Returns
        -------
        resp : ndarray of shape (n_samples, n_components)
            With a noise component (``noise_init``), (n_samples, n_components + 1): the last
            column is the noise.

        Examples
        --------
        >>> import numpy as np
        >>> from fastgmm import GaussianMixture
        >>> rng = np.random.default_rng(0)
        >>> X = np.vstack([rng.normal(0, 1, (100, 2)), rng.normal(6, 1, (100, 2))])
        >>> gm = GaussianMixture(2, random_state=0).fit(X)
        >>> proba = gm.predict_proba([[0, 0], [6, 6]])
        >>> proba.sum(axis=1), proba.max(axis=1).round(3)
        (array([1., 1.]), array([1., 1.]))
        """
        return self._output(X, "predict_proba", out)

    def impute(self, X, return_std=False):
        """Each missing entry (NaN) of ``X`` replaced by its conditional mean under the model.

        For a row with observed entries ``x_o``, each component ``k`` predicts its missing
        entries by the conditional mean ``mu_k,m + Sigma_k,mo Sigma_k,oo^-1 (x_o - mu_k,o)``;
        the imputed value is their average weighted by the responsibilities ``p(k | x_o)``
        (the mean of the conditional mixture). Observed entries are kept. Any fitted model
        imputes, whatever its ``missing`` setting.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), or a Dask array
            NaN marks a missing entry; every row needs at least one observed entry.
        return_std : bool, default=False
            Also return the standard deviation of each entry under the conditional mixture
            (``sqrt(sum_k r_k (Var_k(x_d | x_o) + (x_hat_kd - x_imputed_d)^2))``; 0 where
            observed).

        Returns
        -------
        X_imputed : ndarray of shape (n_samples, n_features)
            In the input's floating dtype (Dask arrays stay lazy).
        std : ndarray of shape (n_samples, n_features)
            Only with ``return_std``.

        Examples
        --------
        >>> import numpy as np
        >>> from fastgmm import GaussianMixture
        >>> rng = np.random.default_rng(0)
        >>> X = rng.multivariate_normal([0, 0], [[1.0, 0.9], [0.9, 1.0]], size=2000)
        >>> gm = GaussianMixture(1).fit(X)
        >>> filled, std = gm.impute([[2.0, np.nan], [np.nan, -1.0]], return_std=True)
        >>> filled.round(1)  # the regression of one coordinate on the other
        array([[ 2. ,  1.8],
               [-0.9, -1. ]])
        >>> std.round(1)  # sqrt(1 - 0.9**2) = 0.44
        array([[0. , 0.4],
               [0.4, 0. ]])
        """
        from .distributed import is_dask_array

        if is_dask_array(X):
            from .distributed import impute_lazily

            return impute_lazily(self, X, return_std)
        check_is_fitted(self)
        X = validate_rows(self, X, reset=False, allow_nan=True)
        filled, variance = _marginal.impute_chunk(
            X,
            self._inference_layout(),
            want_var=return_std,
            n_threads=resolve_n_threads(self.n_jobs),
        )
        filled = filled.astype(X.dtype, copy=False)
        if not return_std:
            return filled
        return filled, np.sqrt(variance).astype(X.dtype, copy=False)

    def sample(self, n_samples=1):
        """Draw samples from the fitted mixture (the same draws as scikit-learn's).

        Returns
        -------
        X : ndarray of shape (n_samples, n_features)
        y : ndarray of shape (n_samples,)
            Component of each sample.

        Examples
        --------
        >>> import numpy as np
        >>> from fastgmm import GaussianMixture
        >>> rng = np.random.default_rng(0)
        >>> X = np.vstack([rng.normal(0, 1, (100, 2)), rng.normal(6, 1, (100, 2))])
        >>> gm = GaussianMixture(2, random_state=0).fit(X)
        >>> X_new, component = gm.sample(5)
        >>> X_new.shape, component.shape
        ((5, 2), (5,))
        """
        check_is_fitted(self)
        if self._has_noise():
            raise NotImplementedError(
                "sample() does not draw from the uniform noise component (its region is only "
                "known by its volume); sample the Gaussian components with a copy fitted "
                "without noise_init."
            )
        return self._sample(n_samples)

    # ----------------------------------------------------------- model choice
    def _n_parameters(self):
        """Number of free parameters of the model (mclust's count with a noise component)."""
        n_parameters = get_model(self.covariance_type).n_parameters(
            self.n_components, self.means_.shape[1]
        )
        return n_parameters + (NOISE_PARAMETERS if self._has_noise() else 0)

    def _n_output_columns(self) -> int:
        """Columns of ``predict_proba``: the components, and the noise."""
        return self.n_components + int(self._has_noise())

    def bic(self, X):
        """Bayesian information criterion on ``X`` (lower is better).

        Examples
        --------
        >>> import numpy as np
        >>> from fastgmm import GaussianMixture
        >>> rng = np.random.default_rng(0)
        >>> X = np.vstack([rng.normal(0, 1, (100, 2)), rng.normal(6, 1, (100, 2))])
        >>> one = GaussianMixture(1).fit(X)
        >>> two = GaussianMixture(2, random_state=0).fit(X)
        >>> bool(two.bic(X) < one.bic(X))  # two clusters explain the data better
        True
        """
        score, n = self._mean_score(X)
        return criteria.bic(score * n, self._n_parameters(), n)

    def aic(self, X):
        """Akaike information criterion on ``X`` (lower is better).

        Examples
        --------
        >>> import numpy as np
        >>> from fastgmm import GaussianMixture
        >>> rng = np.random.default_rng(0)
        >>> X = np.vstack([rng.normal(0, 1, (100, 2)), rng.normal(6, 1, (100, 2))])
        >>> one = GaussianMixture(1).fit(X)
        >>> two = GaussianMixture(2, random_state=0).fit(X)
        >>> bool(two.aic(X) < one.aic(X))
        True
        """
        score, n = self._mean_score(X)
        return criteria.aic(score * n, self._n_parameters())
