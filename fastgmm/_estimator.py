"""What the mixture estimators share: data to providers, the ``n_init`` loop, scoring, verbose.

``GaussianMixture`` and ``BayesianGaussianMixture`` differ in their fitter (maximum likelihood or
variational, see :mod:`fastgmm.em`), their starting parameters and their attributes; everything
else — turning arrays, sources and Dask arrays into providers, running the initialisations
through the one EM loop, keeping the best run, per-row outputs chunk by chunk, online updates —
is here, once. Subclasses implement the hooks that raise ``NotImplementedError``.
"""

from __future__ import annotations

import warnings
from numbers import Integral
from time import time

import numpy as np
from sklearn.base import BaseEstimator, DensityMixin, _fit_context
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from . import _events
from ._jit import holds_single_threaded_blas, resolve_n_threads
from .covariance import get_model
from .degenerate import DegenerateHandler, initialise
from .distributed import is_dask_array
from .em import EMRun, run_em
from .errors import IllDefinedCovarianceError, with_float32_hint
from .init import initial_params
from .missing import for_initialisation
from .providers import SCORE, ArrayChunks
from .sources import is_source_like
from .validation import check_n_samples, check_sample_weight, validate_rows

__all__ = ["BaseMixture", "choose_best_run", "final_likelihoods", "make_provider"]


def make_provider(estimator, X, sample_weight=None, *, min_samples=2):
    """Validate training data for ``estimator`` and wrap it as a provider of the engine.

    An array goes through scikit-learn's ``validate_data`` (which records ``n_features_in_`` and
    column names); a source (path, ``ChunkSource``, callable) is opened and counted; a Dask
    array is checked block by block and persisted. Weights are refused for sources, whose
    rows carry none. An estimator with ``missing='marginalize'`` lets NaN through as missing
    entries (infinity and rows without any observed entry are still refused).

    Examples
    --------
    >>> import numpy as np
    >>> from fastgmm import GaussianMixture
    >>> from fastgmm._estimator import make_provider
    >>> gm = GaussianMixture()
    >>> provider = make_provider(gm, np.zeros((4, 3)))
    >>> provider.n_samples, gm.n_features_in_
    (4, 3)
    """
    name = type(estimator).__name__
    allow_nan = _marginalizes(estimator)
    if is_dask_array(X):
        from .distributed import as_dask_chunks

        provider = as_dask_chunks(
            X, sample_weight, min_samples=min_samples, estimator_name=name, allow_nan=allow_nan
        )
        _record_features(estimator, provider.n_features)
        return provider
    if is_source_like(X):
        if sample_weight is not None:
            raise ValueError(
                "sample_weight is not supported when X is a streamed source; pass the rows as "
                "an array to weight them."
            )
        from .streaming import SourceChunks

        provider = SourceChunks(X, allow_nan=allow_nan)
        n_samples = provider.count_rows()
        if n_samples < min_samples:
            raise ValueError(
                f"Found array with {n_samples} sample(s) (shape=({n_samples}, "
                f"{provider.n_features})) while a minimum of {min_samples} is required by "
                f"{name}."
            )
        _record_features(estimator, provider.n_features)
        return provider
    X = validate_rows(estimator, X, reset=True, ensure_min_samples=min_samples, allow_nan=allow_nan)
    if sample_weight is not None:
        sample_weight = check_sample_weight(sample_weight, X)
    return ArrayChunks(X, sample_weight)


def final_likelihoods(provider, runs, n_threads=None) -> dict:
    """The mean log-likelihood of the data under each run's final parameters, in one pass.

    Returns ``{id(run): value}`` for the runs that converged without error and whose fitter can
    score (``score_request``); the others are left out (see :func:`choose_best_run`).

    Examples
    --------
    See :func:`choose_best_run`.
    """
    scored = [
        run
        for run in runs
        if run.error is None and run.converged and hasattr(run.fitter, "score_request")
    ]
    if not scored:
        return {}
    requests = [run.fitter.score_request(run.params) for run in scored]
    results = provider.collect(requests, n_threads=n_threads)
    return {id(run): stats.mean_log_likelihood for run, stats in zip(scored, results)}


def choose_best_run(runs, likelihoods) -> int:
    """Index of the best of several EM runs of one model (ties: the first run).

    A converged run is ranked by the likelihood of the data under its *final* parameters
    (``likelihoods``, from :func:`final_likelihoods`); a run stopped by ``max_iter`` by its last
    lower bound, as scikit-learn ranks every run. That lower bound is the likelihood of the
    parameters *before* the last M-step: two runs converging to nearly the same optimum were
    ranked the wrong way round by it (measured on scikit-learn's own test data, 'tied', 50 x 5:
    a run whose last lower bound was higher by 2e-6 ended 7e-8 lower), so that ``n_init=5``
    fitted worse than ``n_init=1``. For a converged run the two differ by less than ``tol``
    and the final likelihood is the sharper measure; a run cut short keeps scikit-learn's
    ranking (with ``max_iter=1`` its final parameters come from one M-step of an arbitrary
    start). Scoring the final parameters costs one pass over the data for all runs together,
    only when there is more than one run.

    Examples
    --------
    >>> import numpy as np
    >>> from fastgmm._estimator import choose_best_run, final_likelihoods
    >>> from fastgmm.covariance import get_model
    >>> from fastgmm.em import EMRun, MaximumLikelihood, run_em
    >>> from fastgmm.providers import ArrayChunks
    >>> from fastgmm.stats import MixtureParams
    >>> data = ArrayChunks(np.array([[0.0], [0.1], [0.2], [4.0], [4.1], [8.0]]))
    >>> fitter = MaximumLikelihood(get_model("spherical"), reg_covar=1e-3)
    >>> starts = [MixtureParams(np.array([0.5, 0.5]), np.array(m), np.ones(2), np.ones(2),
    ...                         "spherical") for m in ([[2.0], [8.0]], [[0.1], [6.0]])]
    >>> runs = [EMRun(fitter, start, tol=1e-6, max_iter=100) for start in starts]
    >>> _ = run_em(data, runs)  # two optima: {0, 4} and {8}, or {0} and {4, 8}
    >>> [round(v, 3) for v in final_likelihoods(data, runs).values()]
    [-1.761, -1.172]
    >>> choose_best_run(runs, final_likelihoods(data, runs))
    1
    """
    best = None
    for i, run in enumerate(runs):
        value = likelihoods.get(id(run), run.lower_bound if run.error is None else -np.inf)
        if best is None or value > best[1]:
            best = (i, value)
    return best[0]


def _marginalizes(estimator) -> bool:
    """Whether ``estimator`` treats NaN as missing entries (``missing='marginalize'``)."""
    return getattr(estimator, "missing", "raise") == "marginalize"


def _record_features(estimator, n_features):
    """What ``validate_data(reset=True)`` records for an input without column names."""
    estimator.n_features_in_ = n_features
    if hasattr(estimator, "feature_names_in_"):
        del estimator.feature_names_in_


class BaseMixture(DensityMixin, BaseEstimator):
    """Base class of fastgmm's mixture estimators (not for direct use).

    Examples
    --------
    >>> from fastgmm import GaussianMixture
    >>> from fastgmm._estimator import BaseMixture
    >>> issubclass(GaussianMixture, BaseMixture)
    True
    """

    # ------------------------------------------------------------------------- hooks
    def _make_fitter(self, dtype):
        """The fitter (see :mod:`fastgmm.em`) for data of ``dtype``."""
        raise NotImplementedError

    def _start(self, provider, fitter, random_state, n_threads, reg_covar, **extra):
        """Starting parameters of one initialisation, by ``init_params``.

        ``extra`` goes on to :func:`fastgmm.init.initial_params` (``noise_init``, ...).
        """
        return initial_params(
            provider,
            fitter,
            method=self.init_params,
            n_components=self.n_components,
            random_state=random_state,
            init_sample=self.init_sample,
            reg_covar=reg_covar,
            n_threads=n_threads,
            **extra,
        )

    def _current_params(self):
        """The fitted parameters (float64) as the fitter's state, to continue or score from."""
        raise NotImplementedError

    def _set_params(self, params, dtype) -> None:
        """Set the fitted attributes from the fitter's state."""
        raise NotImplementedError

    def _on_degenerate(self) -> str:
        return getattr(self, "on_degenerate", "raise")

    def _n_output_columns(self) -> int:
        """Columns of ``predict_proba`` (a noise component adds one)."""
        return self.n_components

    # --------------------------------------------------------------------- data in
    def _provider_for_fit(self, X, sample_weight):
        """Validate ``X`` (array, source or Dask array) and wrap it as a provider."""
        provider = make_provider(self, X, sample_weight)
        check_n_samples(provider.count_rows(), self.n_components)
        return provider

    # ---------------------------------------------------------------------- fitting
    @_fit_context(prefer_skip_nested_validation=True)
    @holds_single_threaded_blas
    def _fit(self, X, sample_weight):
        provider = self._provider_for_fit(X, sample_weight)
        self._fit_provider(provider)
        return provider

    def _fit_provider(self, provider) -> None:
        """EM with ``n_init`` restarts on a validated provider (the shared part of every fit)."""
        self._online = None  # a full fit ends any partial_fit sequence
        n_threads = resolve_n_threads(self.n_jobs)
        fitter = self._make_fitter(provider.dtype)
        init_provider = provider
        if fitter.missing:
            # One pass finds whether any row holds a NaN: without one the fit is exactly the
            # fit that refuses NaN; with some, the initialisation runs on mean-filled rows.
            init_provider, fitter.missing = for_initialisation(provider, n_threads=n_threads)
        try:
            best = self._best_run(provider, fitter, n_threads, init_provider)
        except IllDefinedCovarianceError as exc:
            if provider.dtype == np.float32:
                raise with_float32_hint(exc) from None
            raise
        run, events = best
        self.converged_ = run.converged
        if not run.converged and self.max_iter > 0:
            warnings.warn(
                "Best performing initialization did not converge. "
                "Try different init parameters, or increase max_iter, "
                "tol, or check for degenerate data.",
                ConvergenceWarning,
                stacklevel=4,
            )
        self._set_params(run.params, provider.dtype)
        self.n_iter_ = run.n_iter
        self.lower_bound_ = run.lower_bound
        self.lower_bounds_ = run.lower_bounds
        self.degenerate_events_ = events

    def _best_run(self, provider, fitter, n_threads, init_provider=None):
        """Run every initialisation (one after the other, as scikit-learn) and keep the best.

        The random state is consumed in scikit-learn's order: initialisation 1, its EM run
        (which draws nothing), initialisation 2, ... so the first run of ``n_init=5`` is the
        run of ``n_init=1`` with the same ``random_state``. The best run is chosen by
        :func:`choose_best_run` (the likelihood of each run's final parameters). The starts are
        computed on ``init_provider`` (default: ``provider``; see :mod:`fastgmm.missing`).
        """
        init_provider = provider if init_provider is None else init_provider
        do_init = not (self.warm_start and hasattr(self, "converged_"))
        n_init = self.n_init if do_init else 1
        random_state = check_random_state(self.random_state)
        policy = self._on_degenerate()
        runs = []
        for init in range(n_init):
            self._print_verbose_msg_init_beg(init)
            if do_init:
                with _events.span("init", estimator=self, init=init):
                    params, events = initialise(
                        policy,
                        lambda reg: self._start(
                            init_provider, fitter, random_state, n_threads, reg
                        ),
                        reg_covar=self.reg_covar,
                        random_state=random_state,
                        provider=init_provider,
                        n_threads=n_threads,
                    )
                lower_bound = -np.inf
            else:
                params, events = self._current_params(), []
                lower_bound = self.lower_bound_
            handler = None if policy == "raise" else DegenerateHandler(policy, fitter)
            run = EMRun(
                fitter,
                params,
                tol=self.tol,
                mclust=getattr(self, "convergence", "sklearn") == "mclust",
                max_iter=self.max_iter,
                lower_bound=lower_bound,
                degenerate=handler,
                on_iteration=self._on_iteration,
            )
            run_em(provider, [run], n_threads=n_threads)
            if self.max_iter > 0:
                self._print_verbose_msg_init_end(run.lower_bound, run.converged)
            runs.append((run, events + ([] if handler is None else handler.events)))
        only_runs = [run for run, _ in runs]
        likelihoods = final_likelihoods(provider, only_runs, n_threads) if n_init > 1 else {}
        return runs[choose_best_run(only_runs, likelihoods)]

    def _on_iteration(self, n_iter, change):
        _events.emit("em.iteration", estimator=self, n_iter=n_iter, change=change)
        self._print_verbose_msg_iter_end(n_iter, change)

    # ----------------------------------------------------------------- online updates
    def _partial_fit(self, X, sample_weight, online_class):
        online = getattr(self, "_online", None)
        first_call = online is None and not hasattr(self, "means_")
        X = validate_rows(self, X, reset=first_call, allow_nan=_marginalizes(self))
        if sample_weight is not None:
            sample_weight = check_sample_weight(sample_weight, X)
        n_threads = resolve_n_threads(self.n_jobs)
        fitter = self._make_fitter(X.dtype)
        if online is None:
            if first_call:
                if X.shape[0] < self.n_components:
                    raise ValueError(
                        "The first chunk given to partial_fit initialises the model and needs "
                        f"n_samples >= n_components, but got n_components = {self.n_components}"
                        f", n_samples = {X.shape[0]}"
                    )
                first = ArrayChunks(X, sample_weight)
                if fitter.missing:
                    first, _ = for_initialisation(first, n_threads=n_threads)
                params = self._start(
                    first,
                    fitter,
                    check_random_state(self.random_state),
                    n_threads,
                    self.reg_covar,
                )
            else:
                params = self._current_params()
            online = online_class(
                params,
                fitter,
                learning_decay=self.learning_decay,
                learning_offset=self.learning_offset,
            )
        weights = np.empty(0) if sample_weight is None else sample_weight
        try:
            online.update(X, weights, n_threads=n_threads)
        except IllDefinedCovarianceError as exc:
            if X.dtype == np.float32:
                raise with_float32_hint(exc) from None
            raise
        self._online = online
        self._set_params(online.params, X.dtype)
        # The same list object, extended in place: no copy per call on unbounded streams.
        self.lower_bounds_ = online.lower_bounds
        self.lower_bound_ = online.lower_bounds[-1]
        self.n_iter_ = len(online.lower_bounds)
        self.converged_ = False
        return self

    # ---------------------------------------------------------------------- inference
    def _inference_layout(self):
        """The kernels' layout of the fitted parameters."""
        return self._make_fitter(np.float64).layout(self._current_params())

    def _validated(self, X):
        """A provider of ``X`` for inference (lazy for Dask arrays)."""
        if is_dask_array(X):
            from .distributed import validated

            return validated(self, X)
        check_is_fitted(self)
        if is_source_like(X):
            from .streaming import SourceChunks

            data = SourceChunks(X, allow_nan=_marginalizes(self))
            if data.n_features != self.n_features_in_:
                raise ValueError(
                    f"X has {data.n_features} features, but {type(self).__name__} is "
                    f"expecting {self.n_features_in_} features as input."
                )
            return data
        return ArrayChunks(validate_rows(self, X, reset=False, allow_nan=_marginalizes(self)))

    def _labels(self, data):
        """The most probable component of each row of a fitted-on provider (``fit_predict``)."""
        if not hasattr(data, "chunks"):  # lazy Dask arrays, block by block
            return data.score(self, want_labels=True)[2]
        from .streaming import score_into

        n_threads = resolve_n_threads(self.n_jobs)
        return score_into(
            data,
            self._inference_layout(),
            "predict",
            n_threads=n_threads,
            missing=_marginalizes(self),
        )

    def _output(self, X, what, out):
        """``score_samples``, ``predict_proba`` or ``predict`` of arrays, sources or Dask."""
        data = self._validated(X)
        if not hasattr(data, "chunks"):
            if out is not None:
                raise TypeError(f"out= is supported for arrays and sources, not for {type(X)}.")
            lse, resp, labels = data.score(
                self, want_resp=what == "predict_proba", want_labels=what == "predict"
            )
            return {"score_samples": lse, "predict_proba": resp, "predict": labels}[what]
        from .streaming import score_into

        layout = self._inference_layout()
        result = score_into(
            data,
            layout,
            what,
            out,
            n_threads=resolve_n_threads(self.n_jobs),
            missing=_marginalizes(self),
        )
        if out is None and what != "predict" and data.dtype != result.dtype:
            # As scikit-learn: per-row outputs in the input's floating dtype (computed in
            # float64 inside, which a single row's value needs, then rounded once).
            result = result.astype(data.dtype)
        return result

    def _mean_score(self, X):
        """Mean log-likelihood and number of rows of ``X`` (float64), in one pass.

        The pass is the engine's scoring request, the very computation model selection uses,
        so ``bic(X)`` equals the selection's BIC of the same model to the last bit.
        """
        data = self._validated(X)
        if not hasattr(data, "collect"):  # lazy Dask rows of inference: validate and persist
            from .distributed import as_dask_chunks

            data = as_dask_chunks(
                data.X, estimator_name=type(self).__name__, allow_nan=_marginalizes(self)
            )
        fitter = self._make_fitter(data.dtype)
        request = fitter.request(self._current_params(), mode=SCORE)
        [stats] = data.collect([request], n_threads=resolve_n_threads(self.n_jobs))
        return stats.mean_log_likelihood, stats.n_rows

    def _score(self, X):
        """``score``: the mean of ``score_samples`` in the input's floating dtype, as sklearn."""
        mean, _ = self._mean_score(X)
        dtype = getattr(X, "dtype", None)
        return dtype.type(mean) if dtype in (np.float32, np.float64) else mean

    def _sample(self, n_samples):
        """``sample``: scikit-learn's draws from the fitted weights, means and covariances."""
        check_is_fitted(self)
        # numpy's multinomial would silently truncate 2.5 to 2 draws.
        if isinstance(n_samples, bool) or not isinstance(n_samples, Integral):
            raise TypeError(f"n_samples must be an integer, got {n_samples!r}.")
        if n_samples < 1:
            raise ValueError(
                "Invalid value for 'n_samples': %d . The sampling requires at "
                "least one sample." % (n_samples)
            )
        rng = check_random_state(self.random_state)
        weights = np.asarray(self.weights_, dtype=np.float64)
        # Initial weights (max_iter=0) follow sklearn's nk / n_samples and may exceed 1 by ulps.
        counts = rng.multinomial(n_samples, weights / weights.sum())
        means = np.asarray(self.means_, dtype=np.float64)
        covs = np.asarray(self.covariances_, dtype=np.float64)
        parts = get_model(self.covariance_type).sample(rng, means, covs, counts)
        X = np.vstack(parts)
        y = np.concatenate([np.full(int(n), k, dtype=np.int64) for k, n in enumerate(counts)])
        return X, y

    # ------------------------------------------------------------------------ verbose
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
