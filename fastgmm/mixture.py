"""``GaussianMixture``: scikit-learn's estimator, computed by fastgmm's kernels."""

from __future__ import annotations

import math
import warnings
from numbers import Integral, Real
from time import time

import numpy as np
from sklearn.base import BaseEstimator, DensityMixin, _fit_context
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import _check_sample_weight, check_is_fitted

from . import _events
from . import distributed as _distributed
from . import stats as _stats
from . import streaming as _streaming
from ._jit import holds_single_threaded_blas, resolve_n_threads
from .degenerate import ON_DEGENERATE, DegenerateHandler, initialise
from .em import ArrayChunks, collect_statistics, run_em, score_chunk
from .init import DEFAULT_INIT_SAMPLE, INIT_METHODS, initial_params
from .sources import is_source_like
from .stats import MixtureParams, kernel_params
from .validation import (
    check_means_init,
    check_precisions_init,
    check_weights_init,
    validate_rows,
)


# Not a ClusterMixin, like scikit-learn's own GaussianMixture: ClusterMixin enrols the clustering
# estimator checks, which need a ``labels_`` attribute (an n_samples array kept after every fit,
# unaffordable on data that does not fit in memory) and a default of more than one component.
# ``fit_predict`` is provided all the same.
class GaussianMixture(DensityMixin, BaseEstimator):
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
    covariance_type : {'full', 'tied', 'diag', 'spherical'}, default='full'
        The form of the covariance matrices.
    tol : float, default=1e-3
        Convergence threshold on the change of the lower bound (mean log-likelihood).
    reg_covar : float, default=1e-6
        Non-negative regularisation added to the diagonal of covariances.
    max_iter : int, default=100
        The number of EM iterations to perform.
    n_init : int, default=1
        The number of initialisations; the best result is kept.
    init_params : {'kmeans', 'k-means++', 'random', 'random_from_data'}, default='kmeans'
        How responsibilities are initialised. 'kmeans' and 'k-means++' use fastgmm's own
        k-means on a uniform sample of at most ``init_sample`` rows; 'random_from_data' picks
        rows the same way, and 'random' draws responsibilities row by row, so that arrays and
        streamed sources holding the same rows get the same initialisation.
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
        "covariance_type": [StrOptions(set(_stats.COVARIANCE_TYPES))],
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
        return self._score(data, want_labels=True)[2]

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
        online = getattr(self, "_online", None)
        first_call = online is None and not hasattr(self, "means_")
        X = validate_rows(self, X, reset=first_call)
        if sample_weight is not None:
            sample_weight = _check_sample_weight(
                sample_weight, X, dtype=np.float64, ensure_non_negative=True
            )
        n_threads = resolve_n_threads(self.n_jobs)
        if online is None:
            if first_call:
                if X.shape[0] < self.n_components:
                    raise ValueError(
                        "The first chunk given to partial_fit initialises the model and needs "
                        f"n_samples >= n_components, but got n_components = {self.n_components}"
                        f", n_samples = {X.shape[0]}"
                    )
                params = self._initial_params(
                    ArrayChunks(X, sample_weight),
                    self._check_init_params(X.shape[1]),
                    check_random_state(self.random_state),
                    n_threads,
                )
            else:
                params = self._current_params()
            online = _streaming.OnlineEM(
                params, learning_decay=self.learning_decay, learning_offset=self.learning_offset
            )
        weights = np.empty(0) if sample_weight is None else sample_weight
        online.update(X, weights, reg_covar=self.reg_covar, n_threads=n_threads)
        self._online = online
        self._set_params(online.params, X.dtype)
        # The same list object, extended in place: no copy per call on unbounded streams.
        self.lower_bounds_ = online.lower_bounds
        self.lower_bound_ = online.lower_bounds[-1]
        self.n_iter_ = len(online.lower_bounds)
        self.converged_ = False
        return self

    @_fit_context(prefer_skip_nested_validation=True)
    @holds_single_threaded_blas
    def _fit(self, X, sample_weight):
        if _distributed.is_dask_array(X):  # the same EM on the blocks of a Dask array
            return _distributed.fit(self, X, sample_weight)
        if is_source_like(X):  # the same EM, one pass over the source per iteration
            return self._fit_source(X, sample_weight)
        X = validate_rows(self, X, reset=True, ensure_min_samples=2)
        if X.shape[0] < self.n_components:
            raise ValueError(
                "Expected n_samples >= n_components "
                f"but got n_components = {self.n_components}, "
                f"n_samples = {X.shape[0]}"
            )
        if sample_weight is not None:
            sample_weight = _check_sample_weight(
                sample_weight, X, dtype=np.float64, ensure_non_negative=True
            )
        data = ArrayChunks(X, sample_weight)
        self._fit_data(data)
        return data

    def _fit_source(self, X, sample_weight):
        if sample_weight is not None:
            raise ValueError(
                "sample_weight is not supported when X is a streamed source; pass the rows as "
                "an array to weight them."
            )
        data = _streaming.SourceChunks(X)
        n_samples = data.count_rows()
        if n_samples < 2:
            raise ValueError(
                f"Found array with {n_samples} sample(s) (shape=({n_samples}, "
                f"{data.n_features})) while a minimum of 2 is required by GaussianMixture."
            )
        if n_samples < self.n_components:
            raise ValueError(
                "Expected n_samples >= n_components "
                f"but got n_components = {self.n_components}, "
                f"n_samples = {n_samples}"
            )
        # What validate_data(reset=True) records for arrays; a source has no column names.
        self.n_features_in_ = data.n_features
        if hasattr(self, "feature_names_in_"):
            del self.feature_names_in_
        self._fit_data(data)
        return data

    def _fit_data(self, data: ArrayChunks) -> None:
        """EM with ``n_init`` restarts on validated data (the shared part of every fit)."""
        self._online = None  # a full fit ends any partial_fit sequence
        n_features = data.n_features
        user_init = self._check_init_params(n_features)
        n_threads = resolve_n_threads(self.n_jobs)
        float32_hint = data.dtype == np.float32

        do_init = not (self.warm_start and hasattr(self, "converged_"))
        n_init = self.n_init if do_init else 1
        random_state = check_random_state(self.random_state)

        def collect(kparams, shift):
            return collect_statistics(data.chunks(), kparams, shift, n_threads=n_threads)

        collect = getattr(data, "collect", collect)  # engines that sum where the data live

        def on_iteration(n_iter, change):
            _events.emit("em.iteration", estimator=self, n_iter=n_iter, change=change)
            self._print_verbose_msg_iter_end(n_iter, change)

        best = None
        for init in range(n_init):
            self._print_verbose_msg_init_beg(init)
            if do_init:
                with _events.span("init", estimator=self, init=init):
                    params, init_events = initialise(
                        self.on_degenerate,
                        lambda reg: self._initial_params(
                            data, user_init, random_state, n_threads, reg_covar=reg
                        ),
                        reg_covar=self.reg_covar,
                        random_state=random_state,
                        chunks=getattr(data, "chunks", None),
                    )
                lower_bound = -np.inf
            else:
                params, init_events = self._current_params(), []
                lower_bound = self.lower_bound_
            events = init_events
            if self.max_iter == 0:
                result_params, result_lb, lbs, n_iter, converged = params, lower_bound, [], 0, False
            else:
                # Engines without ``chunks()`` (Dask) cannot run the reinit's scoring pass.
                handler = DegenerateHandler(
                    self.on_degenerate, getattr(data, "chunks", None), n_threads=n_threads
                )
                result = run_em(
                    params,
                    collect,
                    reg_covar=self.reg_covar,
                    tol=self.tol,
                    max_iter=self.max_iter,
                    lower_bound=lower_bound,
                    on_iteration=on_iteration,
                    float32_hint=float32_hint,
                    degenerate=handler,
                )
                events = init_events + handler.events
                result_params, result_lb = result.params, result.lower_bound
                lbs, n_iter, converged = result.lower_bounds, result.n_iter, result.converged
                self._print_verbose_msg_init_end(result_lb, converged)
            if best is None or result_lb > best[1]:
                best = (result_params, result_lb, lbs, n_iter, converged, events)

        params, lower_bound, lower_bounds, n_iter, converged, events = best
        self.converged_ = converged
        if not converged and self.max_iter > 0:
            warnings.warn(
                "Best performing initialization did not converge. "
                "Try different init parameters, or increase max_iter, "
                "tol, or check for degenerate data.",
                ConvergenceWarning,
                stacklevel=3,
            )
        self._set_params(params, data.dtype)
        self.n_iter_ = n_iter
        self.lower_bound_ = lower_bound
        self.lower_bounds_ = lower_bounds
        self.degenerate_events_ = events

    def _check_init_params(self, n_features):
        """Validated copies of the user's initial parameters (the estimator's own stay as given)."""
        k = self.n_components
        weights = None if self.weights_init is None else check_weights_init(self.weights_init, k)
        means = (
            None if self.means_init is None else check_means_init(self.means_init, k, n_features)
        )
        precisions = (
            None
            if self.precisions_init is None
            else check_precisions_init(self.precisions_init, self.covariance_type, k, n_features)
        )
        return weights, means, precisions

    def _initial_params(
        self, data, user_init, random_state, n_threads, reg_covar=None
    ) -> MixtureParams:
        weights, means, precisions = user_init
        ctype = self.covariance_type
        if weights is None or means is None or precisions is None:
            params = getattr(data, "initial_params", initial_params)(
                data,
                method=self.init_params,
                n_components=self.n_components,
                covariance_type=ctype,
                reg_covar=self.reg_covar if reg_covar is None else reg_covar,
                random_state=random_state,
                init_sample=self.init_sample,
                n_threads=n_threads,
                float32_hint=data.dtype == np.float32,
            )
        else:
            params = MixtureParams(weights, means, None, None, ctype)
        if weights is not None:
            params.weights = weights
        if means is not None:
            params.means = means
        if precisions is not None:
            params.precisions_cholesky = _stats.precision_cholesky_from_precisions(
                precisions, ctype
            )
            params.covariances = _stats.covariances_from_cholesky(params.precisions_cholesky, ctype)
        return params

    def _current_params(self) -> MixtureParams:
        """The fitted parameters in float64, to continue from (warm start)."""
        covariances = getattr(self, "covariances_", None)
        return MixtureParams(
            np.asarray(self.weights_, dtype=np.float64),
            np.asarray(self.means_, dtype=np.float64),
            None if covariances is None else np.asarray(covariances, dtype=np.float64),
            np.asarray(self.precisions_cholesky_, dtype=np.float64),
            self.covariance_type,
        )

    def _set_params(self, params: MixtureParams, dtype) -> None:
        ctype = self.covariance_type
        if params.covariances is None:
            params.covariances = _stats.covariances_from_cholesky(params.precisions_cholesky, ctype)
        with np.errstate(over="ignore"):  # overflow to float32's inf is refused below
            values = {
                "weights_": np.asarray(params.weights, dtype=dtype),
                "means_": np.asarray(params.means, dtype=dtype),
                "covariances_": np.asarray(params.covariances, dtype=dtype),
                "precisions_cholesky_": np.asarray(params.precisions_cholesky, dtype=dtype),
            }
            values["precisions_"] = _stats.precisions_from_cholesky(
                values["precisions_cholesky_"], ctype
            )
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

    # --------------------------------------------------------------- inference
    def _validated(self, X) -> ArrayChunks:
        if _distributed.is_dask_array(X):
            return _distributed.validated(self, X)
        if is_source_like(X):
            check_is_fitted(self)
            data = _streaming.SourceChunks(X)
            if data.n_features != self.n_features_in_:
                raise ValueError(
                    f"X has {data.n_features} features, but {type(self).__name__} is "
                    f"expecting {self.n_features_in_} features as input."
                )
            return data
        check_is_fitted(self)
        return ArrayChunks(validate_rows(self, X, reset=False))

    def _score(self, data: ArrayChunks, *, want_resp=False, want_labels=False):
        """Per-row log-likelihood, responsibilities and labels from the fitted parameters."""
        if isinstance(data, _distributed.DaskRows):  # lazy Dask arrays, block by block
            return data.score(self, want_resp=want_resp, want_labels=want_labels)
        kparams = kernel_params(self._current_params())
        n_threads = resolve_n_threads(self.n_jobs)
        n = data.n_samples
        lse = np.empty(n)
        resp = np.empty((n if want_resp else 0, self.n_components))
        labels = np.empty(n if want_labels else 0, dtype=np.int64)
        for start, X, _ in data.chunks():
            stop = start + X.shape[0]
            score_chunk(
                X,
                kparams,
                n_threads=n_threads,
                out_lse=lse[start:stop],
                out_resp=resp[start:stop] if want_resp else resp,
                out_labels=labels[start:stop] if want_labels else labels,
            )
        return lse, resp, labels

    def _output(self, X, what, out):
        """``score_samples``, ``predict_proba`` or ``predict`` of arrays or sources."""
        data = self._validated(X)
        streamed = isinstance(data, _streaming.SourceChunks)
        if streamed or (out is not None and isinstance(data, ArrayChunks)):
            kparams = kernel_params(self._current_params())
            n_threads = resolve_n_threads(self.n_jobs)
            return _streaming.score_into(data, kparams, what, out, n_threads=n_threads)
        if out is not None:
            raise TypeError(f"out= is supported for arrays and sources, not for {type(X)}.")
        lse, resp, labels = self._score(
            data, want_resp=what == "predict_proba", want_labels=what == "predict"
        )
        return {"score_samples": lse, "predict_proba": resp, "predict": labels}[what]

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
        return self._mean_score(X)[0]

    def _mean_score(self, X):
        """Mean log-likelihood and number of rows of ``X``."""
        data = self._validated(X)
        if isinstance(data, _streaming.SourceChunks):
            kparams = kernel_params(self._current_params())
            return _streaming.mean_score(data, kparams, n_threads=resolve_n_threads(self.n_jobs))
        scores = self._score(data)[0]
        return float(np.mean(scores)), len(scores)

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
        # numpy's multinomial would silently truncate 2.5 to 2 draws.
        if isinstance(n_samples, bool) or not isinstance(n_samples, Integral):
            raise TypeError(f"n_samples must be an integer, got {n_samples!r}.")
        if n_samples < 1:
            raise ValueError(
                "Invalid value for 'n_samples': %d . The sampling requires at "
                "least one sample." % (n_samples)
            )
        _, n_features = self.means_.shape
        rng = check_random_state(self.random_state)
        weights = np.asarray(self.weights_, dtype=np.float64)
        # Initial weights (max_iter=0) follow sklearn's nk / n_samples and may exceed 1 by ulps.
        counts = rng.multinomial(n_samples, weights / weights.sum())
        means = np.asarray(self.means_, dtype=np.float64)
        covs = np.asarray(self.covariances_, dtype=np.float64)
        if self.covariance_type == "full":
            parts = [rng.multivariate_normal(m, c, int(n)) for m, c, n in zip(means, covs, counts)]
        elif self.covariance_type == "tied":
            parts = [rng.multivariate_normal(m, covs, int(n)) for m, n in zip(means, counts)]
        else:
            parts = [
                m + rng.standard_normal(size=(n, n_features)) * np.sqrt(c)
                for m, c, n in zip(means, covs, counts)
            ]
        X = np.vstack(parts)
        y = np.concatenate([np.full(int(n), k, dtype=np.int64) for k, n in enumerate(counts)])
        return X, y

    # ----------------------------------------------------------- model choice
    def _n_parameters(self):
        """Number of free parameters of the model."""
        return _stats.n_parameters(self.covariance_type, self.n_components, self.means_.shape[1])

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
        return -2 * score * n + self._n_parameters() * math.log(n)

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
        return -2 * score * n + 2 * self._n_parameters()

    # ----------------------------------------------------------------- verbose
    def _print_verbose_msg_init_beg(self, n_init):
        if self.verbose == 1:
            print("Initialization %d" % n_init)
        elif self.verbose >= 2:
            print("Initialization %d" % n_init)
            self._init_prev_time = time()
            self._iter_prev_time = self._init_prev_time

    def _print_verbose_msg_iter_end(self, n_iter, diff_ll):
        if n_iter % self.verbose_interval == 0:
            if self.verbose == 1:
                print("  Iteration %d" % n_iter)
            elif self.verbose >= 2:
                cur_time = time()
                print(
                    "  Iteration %d\t time lapse %.5fs\t ll change %.5f"
                    % (n_iter, cur_time - self._iter_prev_time, diff_ll)
                )
                self._iter_prev_time = cur_time

    def _print_verbose_msg_init_end(self, lb, init_has_converged):
        converged_msg = "converged" if init_has_converged else "did not converge"
        if self.verbose == 1:
            print(f"Initialization {converged_msg}.")
        elif self.verbose >= 2:
            t = time() - self._init_prev_time
            print(f"Initialization {converged_msg}. time lapse {t:.5f}s\t lower bound {lb:.5f}.")
