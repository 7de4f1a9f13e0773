"""Choose the number of components and the covariance type by BIC or AIC.

:func:`select_model` fits every candidate ``(n_components, covariance_type)`` of a grid and keeps
the one with the lowest criterion; :class:`GaussianMixtureIC` wraps it as a scikit-learn
estimator that then behaves as the chosen mixture.

Sign convention: as in scikit-learn, ``bic = -2 log L + p log n`` and ``aic = -2 log L + 2 p``,
so **lower is better**. R's mclust reports ``2 log L - p log n`` (higher is better); its values
are ours with the sign flipped.

How the candidates share the work
---------------------------------
A loop of independent fits reads the data once per candidate and iteration. Here every EM run
that is still iterating advances together: each pass over the data reads every chunk once and
computes, inside the loop over chunks, the fused E-step statistics of every active run; one
M-step per run follows. An out-of-core source is therefore read once per iteration for the
whole grid. Runs that converge or fail drop out of the next pass. k-means is run once per number
of components (and initialisation) and its centres serve every covariance type. Its sample of
rows (:func:`fastgmm.init.sample_rows`, one pass) is drawn once for all K when their random
states agree, as for the first initialisation with an integer seed; later initialisations draw
one sample per K, as the standalone fits would. The hard
assignment pass that turns centres into initial parameters is shared as well (full and tied use
identical statistics, as do diag and spherical). The other ``init_params`` initialise each
candidate with :func:`fastgmm.init.initial_params` (every covariance type of a K from the same
random state); for 'random' that is one pass per candidate before the shared EM passes. A last
shared pass computes the log-likelihood of the final parameters, which BIC/AIC use
(scikit-learn's ``bic(X)`` also scores the final parameters, not the last lower bound).

Each run follows :func:`fastgmm.em.run_em` step by step (same lower bound, convergence test,
M-step and failure modes), so a candidate ends exactly where a standalone
``GaussianMixture(n_components=K, covariance_type=t, ...)`` started from the same initial
parameters ends. With an integer ``random_state`` the initial parameters are also the same as
that standalone fit's (same k-means sample and seeds), so the fitted candidates are identical.
"""

from __future__ import annotations

import math
import numbers
import warnings
from dataclasses import dataclass
from time import perf_counter

import numpy as np
from sklearn.base import BaseEstimator, DensityMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from ._jit import holds_single_threaded_blas, resolve_n_threads
from .em import HARD, SOFT, ArrayChunks, chunk_statistics, params_from_stats, score_chunk
from .init import (
    DEFAULT_INIT_SAMPLE,
    INIT_METHODS,
    _identity_factors,
    initial_params,
    kmeans,
    sample_rows,
)
from .mixture import GaussianMixture
from .sources import is_source_like, open_source
from .stats import COVARIANCE_TYPES, KernelParams, kernel_params
from .stats import n_parameters as _n_parameters
from .streaming import SourceChunks
from .validation import validate_rows

__all__ = ["CRITERIA", "GaussianMixtureIC", "SelectionResult", "select_model"]

CRITERIA = ("bic", "aic")
DEFAULT_N_COMPONENTS = tuple(range(1, 11))
_DEFAULT_GRID = range(1, 11)

# GaussianMixture parameters that select_model passes on to every candidate, with defaults.
_GMM_DEFAULTS = {
    "tol": 1e-3,
    "reg_covar": 1e-6,
    "max_iter": 100,
    "init_params": "kmeans",
    "n_jobs": None,
}
# GaussianMixture parameters that have no meaning for a grid of candidates, and why.
_GMM_REJECTED = {
    "weights_init": "initial parameters depend on n_components, so they cannot be shared",
    "means_init": "initial parameters depend on n_components, so they cannot be shared",
    "precisions_init": "initial parameters depend on n_components, so they cannot be shared",
    "warm_start": "every candidate starts from its own initialisation",
    "verbose": "progress is not printed per candidate; see results_ for each candidate",
    "verbose_interval": "progress is not printed per candidate",
    "on_degenerate": "a candidate whose covariance collapses is recorded in results_ with its "
    "error (the 'raise' policy) and the others go on",
}
# Errors that make one candidate fail (recorded in results_) rather than the whole selection:
# an ill-defined covariance, a non-finite lower bound, a linear-algebra breakdown.
_CANDIDATE_ERRORS = (ValueError, ArithmeticError, np.linalg.LinAlgError)


# --------------------------------------------------------------------------------- validation
def _check_n_components(n_components) -> tuple[int, ...]:
    """The sorted, de-duplicated candidate numbers of components."""
    if isinstance(n_components, numbers.Integral) and not isinstance(n_components, bool):
        values = [n_components]
    elif isinstance(n_components, (str, bytes)):
        raise TypeError(
            f"n_components must be an int or an iterable of ints, got {n_components!r}."
        )
    else:
        try:
            values = list(n_components)
        except TypeError:
            raise TypeError(
                "n_components must be an int or an iterable of ints (e.g. range(1, 11)), "
                f"got {type(n_components).__name__}."
            ) from None
    if not values:
        raise ValueError(
            "n_components is empty: give at least one number of components to try, "
            "e.g. n_components=range(1, 11)."
        )
    bad = [v for v in values if isinstance(v, bool) or not isinstance(v, numbers.Integral)]
    if bad:
        raise ValueError(f"n_components must hold integers >= 1; got {bad!r}.")
    small = [int(v) for v in values if v < 1]
    if small:
        raise ValueError(f"n_components must hold integers >= 1; got {small!r}.")
    return tuple(sorted({int(v) for v in values}))


def _check_covariance_types(covariance_types) -> tuple[str, ...]:
    """The candidate covariance types, de-duplicated, in the order given."""
    if isinstance(covariance_types, str):
        covariance_types = (covariance_types,)
    try:
        values = list(covariance_types)
    except TypeError:
        raise TypeError(
            "covariance_types must be a string or an iterable of strings among "
            f"{', '.join(COVARIANCE_TYPES)}; got {type(covariance_types).__name__}."
        ) from None
    if not values:
        raise ValueError(
            f"covariance_types is empty: give at least one of {', '.join(COVARIANCE_TYPES)}."
        )
    unknown = [v for v in values if v not in COVARIANCE_TYPES]
    if unknown:
        raise ValueError(
            f"Unknown covariance type(s) {', '.join(map(repr, unknown))}; "
            f"choose from {', '.join(COVARIANCE_TYPES)}."
        )
    return tuple(dict.fromkeys(values))


def _check_criterion(criterion) -> str:
    if criterion not in CRITERIA:
        raise ValueError(
            f"Unknown criterion {criterion!r}; choose 'bic' or 'aic' (lower is better for both)."
        )
    return criterion


def _check_gmm_params(n_init, gmm_params: dict, caller: str) -> dict:
    """Validated GaussianMixture options shared by every candidate."""
    rejected = sorted(set(gmm_params) & set(_GMM_REJECTED))
    if rejected:
        reasons = "; ".join(f"{name}: {_GMM_REJECTED[name]}" for name in rejected)
        raise TypeError(f"{caller} does not accept {', '.join(rejected)} ({reasons}).")
    unknown = sorted(set(gmm_params) - set(_GMM_DEFAULTS))
    if unknown:
        raise TypeError(
            f"{caller} got unexpected keyword argument(s) {', '.join(map(repr, unknown))}; "
            f"the GaussianMixture options it accepts are {', '.join(_GMM_DEFAULTS)}."
        )
    params = {**_GMM_DEFAULTS, **gmm_params}
    if isinstance(n_init, bool) or not isinstance(n_init, numbers.Integral) or n_init < 1:
        raise ValueError(f"n_init must be an integer >= 1, got {n_init!r}.")
    for name in ("tol", "reg_covar"):
        value = params[name]
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value >= 0:
            raise ValueError(f"{name} must be a real number >= 0, got {value!r}.")
    max_iter = params["max_iter"]
    if isinstance(max_iter, bool) or not isinstance(max_iter, numbers.Integral) or max_iter < 0:
        raise ValueError(f"max_iter must be an integer >= 0, got {max_iter!r}.")
    if params["init_params"] not in INIT_METHODS:
        raise ValueError(
            f"Unknown init_params {params['init_params']!r}; choose from {', '.join(INIT_METHODS)}."
        )
    n_jobs = params["n_jobs"]
    if n_jobs is not None and (
        isinstance(n_jobs, bool) or not isinstance(n_jobs, numbers.Integral)
    ):
        raise ValueError(f"n_jobs must be None or an integer, got {n_jobs!r}.")
    params["n_init"] = int(n_init)
    return params


def _check_grid_fits(grid, n_samples) -> None:
    if n_samples < 2:
        raise ValueError(
            f"Found {n_samples} sample(s) while a minimum of 2 is required to fit a mixture."
        )
    too_big = [k for k in grid if k > n_samples]
    if too_big:
        raise ValueError(
            f"n_components must not exceed n_samples={n_samples}, but the candidates include "
            f"{too_big}; drop them from the grid."
        )


# ------------------------------------------------------------------------------- data access
def _chunk_provider(X, estimator):
    """``(data, feature_names)`` for an array (validated against ``estimator``) or a source."""
    if is_source_like(X):
        # Read-only chunks (memory maps) are copied in the reader thread and their pages
        # released, so a pass over a large .npy file keeps a bounded resident set.
        return SourceChunks(open_source(X)), None
    X = validate_rows(estimator, X, reset=True, ensure_min_samples=2)
    return ArrayChunks(X), getattr(estimator, "feature_names_in_", None)


# ------------------------------------------------------------------------------------ engine
@dataclass
class _Settings:
    tol: float
    reg_covar: float
    max_iter: int
    n_init: int
    init_params: str
    n_jobs: int | None
    n_threads: int
    float32_hint: bool


@dataclass
class _Task:
    """One statistics pass over all rows, requested by one or more runs."""

    kparams: object
    shift: np.ndarray
    mode: int
    total: object = None
    seconds: float = 0.0
    n_users: int = 0


class _Candidate:
    """One ``(n_components, covariance_type)`` of the grid and its runs (one per init)."""

    def __init__(self, n_components, covariance_type):
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.runs: list[_Run] = []
        self.seconds = 0.0
        self.error: BaseException | None = None
        self.best: _Run | None = None
        self.model = None
        self.mean_log_likelihood = math.nan

    def fail(self, exc):
        if self.error is None:
            self.error = exc


class _Run:
    """One EM run of a candidate, advanced one shared pass at a time.

    The steps mirror :func:`fastgmm.em.run_em` exactly: the lower bound of iteration ``t`` is
    the mean log-likelihood of the parameters entering it, the M-step follows, and the run has
    converged when the lower bound changed by less than ``tol``.
    """

    def __init__(self, candidate, settings, *, params=None, centres=None):
        self.candidate = candidate
        self.settings = settings
        self.params = params  # None until the hard-assignment pass of k-means initialisation
        self.centres = centres
        self.lower_bound = -np.inf
        self.lower_bounds: list[float] = []
        self.n_iter = 0
        self.converged = False
        self.error: BaseException | None = None
        self.done = params is not None and settings.max_iter == 0

    def task_key(self):
        if self.params is None:
            # Hard assignments to the same centres give the same statistics for full and tied
            # (and for diag and spherical): one pass serves both.
            kind = "matrix" if self.candidate.covariance_type in ("full", "tied") else "vector"
            return ("init", id(self.centres), kind)
        return ("em", id(self))

    def make_task(self) -> _Task:
        if self.params is None:
            n_components, n_features = self.centres.shape
            factors = _identity_factors(self.candidate.covariance_type, n_components, n_features)
            kparams = KernelParams(self.centres, factors, np.zeros(n_components))
            return _Task(kparams, self.centres, HARD)
        shift = np.ascontiguousarray(self.params.means, dtype=np.float64)
        return _Task(kernel_params(self.params), shift, SOFT)

    def consume(self, stats) -> None:
        """Take the summed statistics of the pass this run requested."""
        settings = self.settings
        ctype = self.candidate.covariance_type
        try:
            if self.params is None:
                params = params_from_stats(
                    stats, ctype, settings.reg_covar, float32_hint=settings.float32_hint
                )
                # As initial_params (and sklearn): initial weights are nk / n, not renormalised.
                params.weights = (stats.nk + 10 * np.finfo(np.float64).eps) / stats.weight_sum
                self.params = params
                self.centres = None
                self.done = settings.max_iter == 0
                return
            self.n_iter += 1
            previous = self.lower_bound
            lower_bound = stats.mean_log_likelihood
            self.lower_bound = lower_bound
            if not np.isfinite(lower_bound):
                raise ValueError(
                    "The log-likelihood became non-finite during EM; the data or the parameters "
                    "contain values too large for float64."
                )
            self.params = params_from_stats(
                stats, ctype, settings.reg_covar, float32_hint=settings.float32_hint
            )
            self.lower_bounds.append(lower_bound)
            if abs(lower_bound - previous) < settings.tol:
                self.converged = True
                self.done = True
            elif self.n_iter >= settings.max_iter:
                self.done = True
        except _CANDIDATE_ERRORS as exc:
            self.error = exc
            self.done = True


def _random_states(random_state, grid):
    """The random state used to initialise each number of components.

    An integer seed gives every K a fresh ``RandomState(seed)``, exactly as a standalone
    ``GaussianMixture(random_state=seed)`` would; otherwise the given (or global) generator is
    shared and consumed in grid order.
    """
    if isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool):
        return {k: np.random.RandomState(random_state) for k in grid}
    shared = check_random_state(random_state)
    return dict.fromkeys(grid, shared)


def _state_fingerprint(rs):
    _, keys, pos, has_gauss, cached = rs.get_state()
    return keys.tobytes(), pos, has_gauss, cached


class _SampleCache:
    """Reuse the k-means sample when the random state is the one it was drawn from.

    With an integer seed every K starts from ``RandomState(seed)``, so the first
    initialisation of every K draws the same sample: one pass instead of one per K. The state
    after the draw is restored too, so what follows is unchanged.
    """

    def __init__(self):
        self._entry = None

    def get(self, data, size, rs):
        before = _state_fingerprint(rs)
        if self._entry is not None and self._entry[0] == before:
            _, sample, weights, after = self._entry
            rs.set_state(after)
            return sample, weights
        sample, weights, _ = sample_rows(data, size, rs)
        self._entry = (before, sample, weights, rs.get_state())
        return sample, weights


def _make_runs(data, grid, types, settings, random_state):
    """Candidates with their runs' starting points (k-means centres or initial parameters)."""
    candidates = {(k, t): _Candidate(k, t) for k in grid for t in types}
    states = _random_states(random_state, grid)
    cache = _SampleCache()
    for _ in range(settings.n_init):
        for k in grid:
            rs = states[k]
            group = [candidates[k, t] for t in types if candidates[k, t].error is None]
            if not group:
                continue  # every type of this K already failed in an earlier initialisation
            start = perf_counter()
            if settings.init_params == "kmeans":
                try:
                    sample, weights = cache.get(data, DEFAULT_INIT_SAMPLE, rs)
                    centres = kmeans(sample, k, rs, weights, n_threads=settings.n_threads)
                except _CANDIDATE_ERRORS as exc:
                    centres = None
                    for cand in group:
                        cand.fail(exc)
                for cand in group:
                    if centres is not None:
                        cand.runs.append(_Run(cand, settings, centres=centres))
            else:
                # Each type draws from the same random state, so all of them start from the
                # same responsibilities, rows or seeds; afterwards the state is where one
                # standalone initialisation leaves it.
                state = rs.get_state()
                for cand in group:
                    rs.set_state(state)
                    try:
                        params = initial_params(
                            data,
                            method=settings.init_params,
                            n_components=k,
                            covariance_type=cand.covariance_type,
                            reg_covar=settings.reg_covar,
                            random_state=rs,
                            init_sample=DEFAULT_INIT_SAMPLE,
                            n_threads=settings.n_threads,
                            float32_hint=settings.float32_hint,
                        )
                    except _CANDIDATE_ERRORS as exc:
                        cand.fail(exc)
                        continue
                    cand.runs.append(_Run(cand, settings, params=params))
            share = (perf_counter() - start) / len(group)
            for cand in group:
                cand.seconds += share
    return list(candidates.values())


def _shared_pass(data, tasks, n_threads) -> None:
    """One read of the data: for each chunk, the statistics of every task (chunks outside)."""
    for _, X, sample_weight in data.chunks():
        for task in tasks:
            start = perf_counter()
            stats = chunk_statistics(
                X, sample_weight, task.kparams, task.shift, mode=task.mode, n_threads=n_threads
            )
            task.total = stats if task.total is None else task.total + stats
            task.seconds += perf_counter() - start


def _iterate(data, runs, settings) -> int:
    """Advance all runs together until each has converged, failed or used ``max_iter``."""
    n_passes = 0
    while True:
        active = [run for run in runs if not run.done]
        if not active:
            return n_passes
        tasks: dict = {}
        for run in active:
            key = run.task_key()
            if key not in tasks:
                tasks[key] = run.make_task()
            tasks[key].n_users += 1
        _shared_pass(data, list(tasks.values()), settings.n_threads)
        n_passes += 1
        for run in active:
            task = tasks[run.task_key()]
            start = perf_counter()
            run.consume(task.total)
            run.candidate.seconds += task.seconds / task.n_users + (perf_counter() - start)
            if run.error is not None:
                # A standalone fit stops at its first failing initialisation: so does the
                # candidate (its other runs would be discarded anyway).
                for sibling in run.candidate.runs:
                    sibling.done = True


def _pick_best_runs(candidates) -> None:
    """Keep each candidate's best run, as ``GaussianMixture`` does with ``n_init`` restarts.

    A standalone fit raises when any of its initialisations fails, so a candidate with a
    failed run is failed too (with that run's error).
    """
    for cand in candidates:
        for run in cand.runs:
            if run.error is not None:
                cand.fail(run.error)
        if cand.error is not None:
            continue
        best = None
        for run in cand.runs:
            if best is None or run.lower_bound > best.lower_bound:
                best = run
        cand.best = best


def _build_model(cand, settings, random_state, dtype, n_features):
    run = cand.best
    model = GaussianMixture(
        n_components=cand.n_components,
        covariance_type=cand.covariance_type,
        tol=settings.tol,
        reg_covar=settings.reg_covar,
        max_iter=settings.max_iter,
        n_init=settings.n_init,
        init_params=settings.init_params,
        random_state=random_state,
        n_jobs=settings.n_jobs,
    )
    model._set_params(run.params, dtype)
    model.converged_ = run.converged
    model.n_iter_ = run.n_iter
    model.lower_bound_ = run.lower_bound
    model.lower_bounds_ = list(run.lower_bounds)
    model.degenerate_events_ = []  # candidates run the 'raise' policy: a collapse fails them
    model.n_features_in_ = n_features
    return model


def _final_log_likelihoods(data, candidates, n_threads) -> int:
    """Total log-likelihood of the data under each candidate's final model, in one pass.

    The models' own parameters (in the data's dtype, as ``score`` sees them) are scored, so the
    criteria equal ``model.bic(X)`` and ``model.aic(X)``.
    """
    kparams = [kernel_params(cand.model._current_params()) for cand in candidates]
    totals = [0.0] * len(candidates)
    buffer = np.empty(0)
    n_rows = 0
    for _, X, _ in data.chunks():
        n = X.shape[0]
        n_rows += n
        if buffer.shape[0] < n:
            buffer = np.empty(n)
        lse = buffer[:n]
        for j, cand in enumerate(candidates):
            start = perf_counter()
            score_chunk(X, kparams[j], n_threads=n_threads, out_lse=lse)
            totals[j] += float(np.sum(lse))
            cand.seconds += perf_counter() - start
    for cand, total in zip(candidates, totals):
        # The mean, as GaussianMixture.score: the criteria are then computed by bic's formula.
        cand.mean_log_likelihood = total / n_rows
    return n_rows


def _record(cand, n_features, n_samples) -> dict:
    n_params = _n_parameters(cand.covariance_type, cand.n_components, n_features)
    record = {
        "n_components": cand.n_components,
        "covariance_type": cand.covariance_type,
        "bic": math.nan,
        "aic": math.nan,
        "log_likelihood": math.nan,
        "n_parameters": n_params,
        "converged": False,
        "n_iter": 0,
        "fit_seconds": cand.seconds,
        "error": None,
    }
    if cand.error is not None:
        record["error"] = f"{type(cand.error).__name__}: {cand.error}"
        failed = [run for run in cand.runs if run.error is not None]
        record["n_iter"] = max((run.n_iter for run in failed), default=0)
        return record
    mean = cand.mean_log_likelihood
    record["log_likelihood"] = mean * n_samples
    record["bic"] = -2 * mean * n_samples + n_params * math.log(n_samples)
    record["aic"] = -2 * mean * n_samples + 2 * n_params
    record["converged"] = bool(cand.best.converged)
    record["n_iter"] = int(cand.best.n_iter)
    return record


@holds_single_threaded_blas
def _select(data, *, grid, types, criterion, random_state, settings_dict, feature_names=None):
    """Fit the grid on a chunk provider and return a :class:`SelectionResult`."""
    n_threads = resolve_n_threads(settings_dict["n_jobs"])
    settings = _Settings(
        tol=float(settings_dict["tol"]),
        reg_covar=float(settings_dict["reg_covar"]),
        max_iter=int(settings_dict["max_iter"]),
        n_init=settings_dict["n_init"],
        init_params=settings_dict["init_params"],
        n_jobs=settings_dict["n_jobs"],
        n_threads=n_threads,
        float32_hint=data.dtype == np.float32,
    )
    if data.n_samples is None:
        # A stream of unknown length (CSV, callable): count it now, so that a grid that does
        # not fit the data fails before any work.
        for _ in data.chunks():
            pass
    _check_grid_fits(grid, data.n_samples)
    start = perf_counter()
    candidates = _make_runs(data, grid, types, settings, random_state)
    runs = [run for cand in candidates for run in cand.runs]
    n_passes = _iterate(data, runs, settings)
    _pick_best_runs(candidates)
    fitted = [cand for cand in candidates if cand.error is None]
    if not fitted:
        details = "\n".join(
            f"  n_components={c.n_components}, covariance_type={c.covariance_type!r}: "
            f"{type(c.error).__name__}: {c.error}"
            for c in candidates
        )
        raise ValueError(f"All {len(candidates)} candidate models failed:\n{details}")
    for cand in fitted:
        cand.model = _build_model(cand, settings, random_state, data.dtype, data.n_features)
        if feature_names is not None:
            cand.model.feature_names_in_ = feature_names
    n_samples = _final_log_likelihoods(data, fitted, n_threads)
    n_passes += 1
    records = [_record(cand, data.n_features, n_samples) for cand in candidates]
    best_index = None
    for i, record in enumerate(records):
        if record["error"] is None and (
            best_index is None or record[criterion] < records[best_index][criterion]
        ):
            best_index = i
    best = candidates[best_index]
    if not best.best.converged and settings.max_iter > 0:
        n_other = sum(1 for r in records if r["error"] is None and not r["converged"]) - 1
        warnings.warn(
            f"The selected model (n_components={best.n_components}, covariance_type="
            f"{best.covariance_type!r}) did not converge. Try different init parameters, or "
            f"increase max_iter, tol, or check for degenerate data. {n_other} other "
            "candidate(s) did not converge either (see results_['converged']).",
            ConvergenceWarning,
            stacklevel=3,
        )
    return SelectionResult(
        best_estimator_=best.model,
        results_=records,
        best_index_=best_index,
        criterion=criterion,
        n_components_grid=grid,
        covariance_types=types,
        n_samples=n_samples,
        n_passes=n_passes,
        fit_seconds=perf_counter() - start,
    )


# ------------------------------------------------------------------------------- public API
class SelectionResult:
    """Outcome of :func:`select_model`.

    Attributes
    ----------
    best_estimator_ : fastgmm.GaussianMixture
        The fitted candidate with the lowest criterion.
    results_ : list of dict
        One record per candidate, in grid order (``n_components`` ascending, then the
        covariance types in the order given), with keys ``n_components``,
        ``covariance_type``, ``bic``, ``aic``, ``log_likelihood`` (total over the rows, under
        the final parameters), ``n_parameters``, ``converged``, ``n_iter``, ``fit_seconds``
        (compute time attributed to the candidate: its share of k-means and of the shared
        passes) and ``error`` (None, or ``"ExceptionType: message"`` for a failed candidate,
        whose criteria are NaN). ``pandas.DataFrame(result.results_)`` gives a table.
    best_index_ : int
        Index of the selected candidate in ``results_``.
    criterion : {'bic', 'aic'}
    n_components_grid : tuple of int
    covariance_types : tuple of str
    n_samples : int
    n_passes : int
        Passes over the data for initialisation and EM (not counting the k-means samples).
    fit_seconds : float
        Wall time of the selection.

    Examples
    --------
    >>> import numpy as np
    >>> from fastgmm import select_model
    >>> rng = np.random.default_rng(0)
    >>> X = np.vstack([rng.normal(0, 1, (100, 2)), rng.normal(8, 1, (100, 2))])
    >>> result = select_model(X, n_components=[1, 2, 3], covariance_types=["full", "diag"],
    ...                       random_state=0)
    >>> result
    SelectionResult(criterion='bic', n_components_=2, covariance_type_='diag', n_candidates=6)
    >>> result.criterion_table().shape  # rows: n_components, columns: covariance types
    (3, 2)
    >>> result.results_[result.best_index_]["bic"] == result.best_estimator_.bic(X)
    True
    """

    def __init__(
        self,
        *,
        best_estimator_,
        results_,
        best_index_,
        criterion,
        n_components_grid,
        covariance_types,
        n_samples,
        n_passes,
        fit_seconds,
    ):
        self.best_estimator_ = best_estimator_
        self.results_ = results_
        self.best_index_ = best_index_
        self.criterion = criterion
        self.n_components_grid = tuple(n_components_grid)
        self.covariance_types = tuple(covariance_types)
        self.n_samples = n_samples
        self.n_passes = n_passes
        self.fit_seconds = fit_seconds

    @property
    def n_components_(self) -> int:
        """Number of components of the selected model."""
        return self.results_[self.best_index_]["n_components"]

    @property
    def covariance_type_(self) -> str:
        """Covariance type of the selected model."""
        return self.results_[self.best_index_]["covariance_type"]

    def __repr__(self):
        return (
            f"SelectionResult(criterion={self.criterion!r}, n_components_={self.n_components_}, "
            f"covariance_type_={self.covariance_type_!r}, n_candidates={len(self.results_)})"
        )

    def criterion_table(self, criterion=None) -> np.ndarray:
        """Criterion values as an array of shape (len(n_components_grid), len(covariance_types)).

        Failed candidates are NaN. ``criterion`` defaults to the one used for the selection.
        """
        criterion = _check_criterion(self.criterion if criterion is None else criterion)
        table = np.full((len(self.n_components_grid), len(self.covariance_types)), np.nan)
        rows = {k: i for i, k in enumerate(self.n_components_grid)}
        cols = {t: j for j, t in enumerate(self.covariance_types)}
        for record in self.results_:
            table[rows[record["n_components"]], cols[record["covariance_type"]]] = record[criterion]
        return table

    def plot(self, ax=None):
        """Plot the criterion against the number of components, one curve per covariance type.

        As mclust's BIC plot, but with scikit-learn's sign: lower is better. The selected model
        is circled; failed candidates leave gaps. Needs matplotlib (``pip install
        'fastgmm[plot]'``).

        Parameters
        ----------
        ax : matplotlib.axes.Axes, optional
            Axes to draw on; a new figure is created when omitted.

        Returns
        -------
        ax : matplotlib.axes.Axes
        """
        try:
            import matplotlib.pyplot as plt
        except ImportError as exc:
            raise ImportError(
                "SelectionResult.plot needs matplotlib, which is not installed; "
                "install it with: pip install 'fastgmm[plot]'"
            ) from exc
        if ax is None:
            _, ax = plt.subplots()
        table = self.criterion_table()
        markers = {"full": "o", "tied": "s", "diag": "^", "spherical": "D"}
        for j, ctype in enumerate(self.covariance_types):
            ax.plot(
                self.n_components_grid,
                table[:, j],
                marker=markers.get(ctype, "o"),
                label=ctype,
            )
        best = self.results_[self.best_index_]
        ax.plot(
            [best["n_components"]],
            [best[self.criterion]],
            linestyle="none",
            marker="o",
            markersize=14,
            markerfacecolor="none",
            markeredgecolor="black",
            label=f"selected: {best['n_components']}, {best['covariance_type']}",
        )
        ax.set_xlabel("number of components")
        ax.set_ylabel(f"{self.criterion.upper()} (lower is better)")
        ax.set_xticks(list(self.n_components_grid))
        ax.legend(title="covariance type")
        return ax


def select_model(
    X,
    n_components=_DEFAULT_GRID,
    covariance_types=COVARIANCE_TYPES,
    criterion="bic",
    n_init=1,
    random_state=None,
    **gmm_params,
):
    """Fit Gaussian mixtures over a grid of sizes and covariance types; keep the best by BIC/AIC.

    All candidates advance together, one pass over the data per EM iteration for the whole
    grid (see :mod:`fastgmm.selection`), so a file is read once per iteration rather than once
    per candidate and iteration.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features), or a source
        In-memory data, or anything :func:`fastgmm.sources.open_source` accepts (a path to a
        ``.npy``/``.npz``/HDF5/Zarr/Parquet/CSV file, a zero-argument callable returning an
        iterator of chunks, or a ``ChunkSource``), which is streamed.
    n_components : int or iterable of int, default=range(1, 11)
        Numbers of components to try.
    covariance_types : str or iterable of str, default=('full', 'tied', 'diag', 'spherical')
        Covariance types to try.
    criterion : {'bic', 'aic'}, default='bic'
        Criterion to minimise. Lower is better (scikit-learn's sign; R's mclust reports BIC
        with the opposite sign, higher is better).
    n_init : int, default=1
        Initialisations per candidate; each candidate keeps the run with the largest lower
        bound, as ``GaussianMixture(n_init=...)`` does.
    random_state : int, RandomState instance or None, default=None
        With an int, each candidate's initialisation equals that of
        ``GaussianMixture(random_state=random_state)``, so each candidate equals that
        standalone fit.
    **gmm_params
        Options shared by every candidate: ``tol``, ``reg_covar``, ``max_iter``,
        ``init_params`` and ``n_jobs`` (threads), as in :class:`fastgmm.GaussianMixture`.

    Returns
    -------
    result : SelectionResult
        ``result.best_estimator_`` is the selected, fitted :class:`fastgmm.GaussianMixture`;
        ``result.results_`` has one record per candidate (``pandas.DataFrame(result.results_)``
        makes a table); ``result.plot()`` draws the criterion curves.

    Raises
    ------
    ValueError
        An empty grid, an unknown covariance type or criterion, a number of components above
        the number of rows, or every candidate failing (the message lists each error). A
        candidate that fails alone (e.g. an ill-defined covariance) is recorded in
        ``results_`` with its error and the selection goes on.

    Warns
    -----
    ConvergenceWarning
        Once, when the selected model did not converge (non-convergence of the others is in
        ``results_['converged']``).

    Examples
    --------
    >>> import numpy as np
    >>> from fastgmm import select_model
    >>> rng = np.random.default_rng(0)
    >>> X = np.vstack([rng.normal(0, 1, (200, 2)), rng.normal(8, 1, (200, 2))])
    >>> result = select_model(X, n_components=range(1, 5), random_state=0)
    >>> result.n_components_, result.covariance_type_
    (2, 'spherical')
    >>> len(result.results_), sorted(result.results_[0])[:3]
    (16, ['aic', 'bic', 'converged'])
    """
    grid = _check_n_components(n_components)
    types = _check_covariance_types(covariance_types)
    criterion = _check_criterion(criterion)
    settings = _check_gmm_params(n_init, gmm_params, "select_model")
    template = GaussianMixture()
    data, feature_names = _chunk_provider(X, template)
    return _select(
        data,
        grid=grid,
        types=types,
        criterion=criterion,
        random_state=random_state,
        settings_dict=settings,
        feature_names=feature_names,
    )


class GaussianMixtureIC(DensityMixin, BaseEstimator):
    """A Gaussian mixture whose size and covariance type are chosen by BIC or AIC on ``fit``.

    ``fit`` runs :func:`select_model` over the grid; afterwards the estimator behaves as the
    selected :class:`fastgmm.GaussianMixture` (``predict``, ``predict_proba``,
    ``score_samples``, ``score``, ``bic``, ``aic``, ``sample``), so it can end a pipeline.
    Lower criterion values are better (scikit-learn's sign; mclust's BIC has the opposite sign).

    Parameters
    ----------
    n_components : int or iterable of int, default=(1, 2, ..., 10)
        Numbers of components to try (a range or list is fine).
    covariance_types : str or iterable of str, default=('full', 'tied', 'diag', 'spherical')
        Covariance types to try.
    criterion : {'bic', 'aic'}, default='bic'
    n_init : int, default=1
        Initialisations per candidate (the best is kept).
    random_state : int, RandomState instance or None, default=None
    n_jobs : int, default=None
        Threads for the kernels (None: all available).
    tol, reg_covar, max_iter, init_params
        As in :class:`fastgmm.GaussianMixture`, shared by every candidate.

    Attributes
    ----------
    best_estimator_ : fastgmm.GaussianMixture
        The selected, fitted mixture.
    n_components_ : int
    covariance_type_ : str
    criterion_ : ndarray of shape (n_candidate_sizes, n_covariance_types)
        The criterion of every candidate (rows: sorted ``n_components``, columns:
        ``covariance_types`` in the given order); NaN for failed candidates.
    results_ : list of dict
        One record per candidate, see :class:`SelectionResult`.
    weights_, means_, covariances_, precisions_, precisions_cholesky_, converged_, n_iter_, \
lower_bound_
        Those of ``best_estimator_``.
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Only when ``X`` had string column names.

    Examples
    --------
    >>> import numpy as np
    >>> from fastgmm import GaussianMixtureIC
    >>> rng = np.random.default_rng(0)
    >>> X = np.vstack([rng.normal(0, 1, (200, 2)), rng.normal(8, 1, (200, 2))])
    >>> gm = GaussianMixtureIC(n_components=range(1, 5), random_state=0).fit(X)
    >>> gm.n_components_, gm.covariance_type_, gm.criterion_.shape
    (2, 'spherical', (4, 4))
    >>> points = [[0, 0], [8, 8]]
    >>> bool(np.all(gm.predict(points) == gm.best_estimator_.predict(points)))
    True
    """

    def __init__(
        self,
        n_components=DEFAULT_N_COMPONENTS,
        *,
        covariance_types=COVARIANCE_TYPES,
        criterion="bic",
        n_init=1,
        random_state=None,
        n_jobs=None,
        tol=1e-3,
        reg_covar=1e-6,
        max_iter=100,
        init_params="kmeans",
    ):
        self.n_components = n_components
        self.covariance_types = covariance_types
        self.criterion = criterion
        self.n_init = n_init
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.tol = tol
        self.reg_covar = reg_covar
        self.max_iter = max_iter
        self.init_params = init_params

    _COPIED = (
        "weights_",
        "means_",
        "covariances_",
        "precisions_",
        "precisions_cholesky_",
        "converged_",
        "n_iter_",
        "lower_bound_",
    )

    def fit(self, X, y=None):
        """Select and fit the best candidate on ``X`` (an array or a source).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), or a source for
            :func:`fastgmm.sources.open_source`
        y : Ignored

        Returns
        -------
        self : GaussianMixtureIC

        Examples
        --------
        >>> import numpy as np
        >>> from fastgmm import GaussianMixtureIC
        >>> rng = np.random.default_rng(0)
        >>> X = np.vstack([rng.normal(0, 1, (100, 2)), rng.normal(8, 1, (100, 2))])
        >>> ic = GaussianMixtureIC(n_components=[1, 2, 3], random_state=0).fit(X)
        >>> ic.n_components_, ic.covariance_type_, len(ic.results_)
        (2, 'spherical', 12)
        """
        grid = _check_n_components(self.n_components)
        types = _check_covariance_types(self.covariance_types)
        criterion = _check_criterion(self.criterion)
        settings = _check_gmm_params(
            self.n_init,
            {
                "tol": self.tol,
                "reg_covar": self.reg_covar,
                "max_iter": self.max_iter,
                "init_params": self.init_params,
                "n_jobs": self.n_jobs,
            },
            type(self).__name__,
        )
        data, feature_names = _chunk_provider(X, self)
        if isinstance(data, SourceChunks):  # a stream: no column names to remember
            self.n_features_in_ = data.n_features
            if hasattr(self, "feature_names_in_"):
                del self.feature_names_in_
        result = _select(
            data,
            grid=grid,
            types=types,
            criterion=criterion,
            random_state=self.random_state,
            settings_dict=settings,
            feature_names=feature_names,
        )
        self.best_estimator_ = result.best_estimator_
        self.results_ = result.results_
        self.criterion_ = result.criterion_table()
        self.n_components_ = result.n_components_
        self.covariance_type_ = result.covariance_type_
        for name in self._COPIED:
            setattr(self, name, getattr(self.best_estimator_, name))
        return self

    def _best(self):
        check_is_fitted(self)
        return self.best_estimator_

    def fit_predict(self, X, y=None):
        """Select and fit on ``X``, then return the selected model's labels for ``X``.

        Examples
        --------
        >>> import numpy as np
        >>> from fastgmm import GaussianMixtureIC
        >>> rng = np.random.default_rng(0)
        >>> X = np.vstack([rng.normal(0, 1, (100, 2)), rng.normal(8, 1, (100, 2))])
        >>> ic = GaussianMixtureIC(n_components=[1, 2, 3], random_state=0).fit(X)
        >>> labels = GaussianMixtureIC(n_components=[1, 2], random_state=0).fit_predict(X)
        >>> len(set(labels[:100])), len(set(labels[100:])), bool(labels[0] != labels[-1])
        (1, 1, True)"""
        return self.fit(X).predict(X)

    def predict(self, X):
        """Most probable component of each sample under the selected model.

        Examples
        --------
        >>> import numpy as np
        >>> from fastgmm import GaussianMixtureIC
        >>> rng = np.random.default_rng(0)
        >>> X = np.vstack([rng.normal(0, 1, (100, 2)), rng.normal(8, 1, (100, 2))])
        >>> ic = GaussianMixtureIC(n_components=[1, 2, 3], random_state=0).fit(X)
        >>> bool(np.all(ic.predict(X) == ic.best_estimator_.predict(X)))
        True"""
        return self._best().predict(X)

    def predict_proba(self, X):
        """Posterior probability of each component under the selected model.

        Examples
        --------
        >>> import numpy as np
        >>> from fastgmm import GaussianMixtureIC
        >>> rng = np.random.default_rng(0)
        >>> X = np.vstack([rng.normal(0, 1, (100, 2)), rng.normal(8, 1, (100, 2))])
        >>> ic = GaussianMixtureIC(n_components=[1, 2, 3], random_state=0).fit(X)
        >>> ic.predict_proba([[0.0, 0.0]]).round(3).tolist() in ([[1.0, 0.0]], [[0.0, 1.0]])
        True"""
        return self._best().predict_proba(X)

    def score_samples(self, X):
        """Log-likelihood of each sample under the selected model.

        Examples
        --------
        >>> import numpy as np
        >>> from fastgmm import GaussianMixtureIC
        >>> rng = np.random.default_rng(0)
        >>> X = np.vstack([rng.normal(0, 1, (100, 2)), rng.normal(8, 1, (100, 2))])
        >>> ic = GaussianMixtureIC(n_components=[1, 2, 3], random_state=0).fit(X)
        >>> scores = ic.score_samples([[0.0, 0.0], [4.0, 4.0]])
        >>> bool(scores[0] > scores[1])
        True"""
        return self._best().score_samples(X)

    def score(self, X, y=None):
        """Mean log-likelihood of ``X`` under the selected model.

        Examples
        --------
        >>> import numpy as np
        >>> from fastgmm import GaussianMixtureIC
        >>> rng = np.random.default_rng(0)
        >>> X = np.vstack([rng.normal(0, 1, (100, 2)), rng.normal(8, 1, (100, 2))])
        >>> ic = GaussianMixtureIC(n_components=[1, 2, 3], random_state=0).fit(X)
        >>> ic.score(X) == ic.best_estimator_.score(X)
        True"""
        return self._best().score(X)

    def bic(self, X):
        """BIC of the selected model on ``X`` (lower is better).

        Examples
        --------
        >>> import numpy as np
        >>> from fastgmm import GaussianMixtureIC
        >>> rng = np.random.default_rng(0)
        >>> X = np.vstack([rng.normal(0, 1, (100, 2)), rng.normal(8, 1, (100, 2))])
        >>> ic = GaussianMixtureIC(n_components=[1, 2, 3], random_state=0).fit(X)
        >>> bool(ic.bic(X) == np.nanmin(ic.criterion_))  # the training BIC is the smallest
        True"""
        return self._best().bic(X)

    def aic(self, X):
        """AIC of the selected model on ``X`` (lower is better).

        Examples
        --------
        >>> import numpy as np
        >>> from fastgmm import GaussianMixtureIC
        >>> rng = np.random.default_rng(0)
        >>> X = np.vstack([rng.normal(0, 1, (100, 2)), rng.normal(8, 1, (100, 2))])
        >>> ic = GaussianMixtureIC(n_components=[1, 2, 3], random_state=0).fit(X)
        >>> bool(ic.aic(X) < ic.bic(X))  # log(200) > 2: BIC penalises more
        True"""
        return self._best().aic(X)

    def sample(self, n_samples=1):
        """Draw samples from the selected model; see :meth:`fastgmm.GaussianMixture.sample`.

        Examples
        --------
        >>> import numpy as np
        >>> from fastgmm import GaussianMixtureIC
        >>> rng = np.random.default_rng(0)
        >>> X = np.vstack([rng.normal(0, 1, (100, 2)), rng.normal(8, 1, (100, 2))])
        >>> ic = GaussianMixtureIC(n_components=[1, 2, 3], random_state=0).fit(X)
        >>> samples, labels = ic.sample(5)
        >>> samples.shape, labels.shape
        ((5, 2), (5,))"""
        return self._best().sample(n_samples)
