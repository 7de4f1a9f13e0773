"""Fitting a grid of candidate mixtures over shared passes (the engine of model selection).

A loop of independent fits would read the data once per candidate and iteration. Here every EM
run that is still iterating advances together through :func:`fastgmm.em.run_em`: each pass over
the data reads every chunk once and answers the requests of every active run; one M-step per
run follows. An out-of-core source is therefore read once per iteration for the whole grid,
and runs that converge or fail drop out of the next pass.

The initialisations share work too. k-means is run once per number of components (and
initialisation), on one sample of rows when the random states agree (as for the first
initialisation with an integer seed), and its centres serve every covariance type; the hard
assignment of every row to those centres is one pass for every K at once, whose statistics
serve every type (reduced to the kind each type needs). With 'hc', one hierarchical tree
(:class:`fastgmm.init.HierarchicalStart`) serves every K and type: each candidate's start is one
M-step on the tree's partition at its K. The other ``init_params`` initialise each candidate
with :func:`fastgmm.init.initial_params` (every type of a K from the same random state). A
last shared pass scores the final parameters of every candidate, for BIC, AIC and ICL
(scikit-learn's ``bic(X)`` also scores the final parameters, not the last lower bound).

A noise component (``noise_init``) and a prior (``prior``) apply to every candidate; the data's
volume and moments they need are measured once for the grid. Under a prior, the one-component
candidates of mclust's models are fitted as mclustBIC fits them: VII for the spherical models,
VVI for the diagonal ones and VVV for the others (the same maths at K = 1; mclust's prior
formulas differ), and keep their own name and parameter count.

With an integer ``random_state`` each candidate ends exactly where a standalone
``GaussianMixture(n_components=K, covariance_type=t, random_state=seed, ...)`` ends.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from time import perf_counter

import numpy as np
from sklearn.utils import check_random_state

from . import criteria
from ._estimator import choose_best_run, final_likelihoods
from .covariance import get_model
from .degenerate import DegenerateHandler
from .em import EMRun, run_em
from .errors import IllDefinedCovarianceError, with_float32_hint
from .init import (
    DEFAULT_INIT_SAMPLE,
    HC_MAX_ROWS,
    HierarchicalStart,
    assignment_request,
    initial_params,
    kmeans,
)
from .missing import for_initialisation
from .noise import NOISE_PARAMETERS, make_fitter
from .prior import resolve_prior
from .providers import SCORE

__all__ = ["CANDIDATE_ERRORS", "Candidate", "GridSettings", "fit_grid", "prior_substitute"]

# Errors that make one candidate fail (recorded in results_) rather than the whole selection:
# an ill-defined covariance, a non-finite lower bound, a linear-algebra breakdown.
CANDIDATE_ERRORS = (ValueError, ArithmeticError, np.linalg.LinAlgError)


@dataclass
class GridSettings:
    """The ``GaussianMixture`` options every candidate shares.

    Examples
    --------
    >>> from fastgmm._grid import GridSettings
    >>> GridSettings(tol=1e-3, reg_covar=1e-6, max_iter=100, n_init=1,
    ...              init_params="kmeans", n_jobs=None, n_threads=2).on_degenerate
    'raise'
    """

    tol: float
    reg_covar: float
    max_iter: int
    n_init: int
    init_params: str
    n_jobs: int | None
    n_threads: int
    on_degenerate: str = "raise"
    init_sample: int = DEFAULT_INIT_SAMPLE
    #: 'sklearn' (the test on the mean log-likelihood) or 'mclust' (see fastgmm.em.EMRun).
    convergence: str = "sklearn"
    #: None, 'default' or a ConjugatePrior (see :mod:`fastgmm.prior`).
    prior: object = None
    #: The data's mean and covariance, for ``prior='default'``.
    moments: tuple | None = None
    #: The noise mask of the rows, and the volume of the noise density (None: no noise).
    noise_init: np.ndarray | None = None
    noise_volume: float | None = None
    missing: str = "raise"


class Candidate:
    """One ``(n_components, covariance_type)`` of the grid and its runs (one per init).

    Examples
    --------
    >>> from fastgmm._grid import Candidate
    >>> Candidate(3, "diag").n_parameters(2)
    14
    """

    def __init__(self, n_components, covariance_type, *, fit_type=None, noise=False):
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.model = get_model(covariance_type)
        #: The model fitted (mclustBIC's one-component substitute under a prior, see above).
        self.fit_model = self.model if fit_type is None else get_model(fit_type)
        self.noise = noise
        self.prior = None
        self.runs: list[EMRun] = []
        self.seconds = 0.0
        self.error: BaseException | None = None
        self.best: EMRun | None = None
        self.estimator = None
        self.log_likelihood = math.nan
        self.log_max_resp = math.nan

    def fail(self, exc):
        if self.error is None:
            self.error = exc

    def n_parameters(self, n_features) -> int:
        """Free parameters, as ``GaussianMixture._n_parameters``."""
        extra = NOISE_PARAMETERS if self.noise else 0
        return self.model.n_parameters(self.n_components, n_features) + extra


def _random_states(random_state, grid):
    """The random state used to initialise each number of components.

    An integer seed gives every K a fresh ``RandomState(seed)``, exactly as a standalone
    ``GaussianMixture(random_state=seed)`` would; otherwise the given (or global) generator is
    shared and consumed in grid order.
    """
    if isinstance(random_state, (int, np.integer)) and not isinstance(random_state, bool):
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

    def get(self, provider, size, rs):
        before = (size, _state_fingerprint(rs))
        if self._entry is not None and self._entry[0] == before:
            _, sample, after = self._entry
            rs.set_state(after)
            return sample
        sample = provider.sample_rows(size, rs)
        self._entry = (before, sample, rs.get_state())
        return sample


def _fitter(candidate, settings, dtype):
    return make_fitter(
        candidate.fit_model,
        reg_covar=settings.reg_covar,
        dtype=dtype,
        prior=candidate.prior,
        noise_volume=settings.noise_volume,
        missing=settings.missing == "marginalize",
    )


def prior_substitute(covariance_type: str, n_components: int, prior) -> str | None:
    """mclustBIC's one-component model under a prior: VII for EII and VII, VVI for the other
    diagonal models, VVV for the rest (None: the model itself).

    Examples
    --------
    >>> from fastgmm._grid import prior_substitute
    >>> [prior_substitute(t, 1, "default") for t in ("EII", "VEI", "EEV", "full")]
    ['VII', 'VVI', 'VVV', None]
    >>> prior_substitute("EEV", 2, "default") is None
    True
    """
    model = get_model(covariance_type)
    letters = getattr(model, "mclust_name", None)
    if prior is None or n_components != 1 or letters is None:
        return None
    if letters[1:] == "II":
        return "VII"
    return "VVI" if letters[2] == "I" else "VVV"


def _new_run(candidate, params, settings, dtype):
    fitter = _fitter(candidate, settings, dtype)
    handler = None
    if settings.on_degenerate != "raise":
        handler = DegenerateHandler(settings.on_degenerate, fitter)
    run = EMRun(
        fitter,
        params,
        tol=settings.tol,
        max_iter=settings.max_iter,
        degenerate=handler,
        mclust=settings.convergence == "mclust",
    )
    candidate.runs.append(run)
    return run


def _kmeans_starts(provider, groups, settings, states, cache, dtype):
    """k-means once per K, then one hard-assignment pass for every K; M-step per candidate."""
    centres = {}
    for k, group in groups.items():
        start = perf_counter()
        try:
            sample, weights, _ = cache.get(provider, settings.init_sample, states[k])
            centres[k] = kmeans(sample, k, states[k], weights, n_threads=settings.n_threads)
        except CANDIDATE_ERRORS as exc:
            for cand in group:
                cand.fail(exc)
        for cand in group:
            cand.seconds += (perf_counter() - start) / len(group)
    if not centres:
        return 0
    # One pass for every K, one request per statistics kind: each type gets the very sums its
    # standalone fit computes (a wider kind reduced would round differently in the last bit).
    keys = list(dict.fromkeys((k, c.model.statistics) for k in centres for c in groups[k]))
    requests = [assignment_request(centres[k], kind) for k, kind in keys]
    results = dict(zip(keys, provider.collect(requests, n_threads=settings.n_threads)))
    seconds = dict(zip(keys, (request.seconds for request in requests)))
    for k in centres:
        group = groups[k]
        for cand in group:
            key = (k, cand.model.statistics)
            cand.seconds += seconds[key] / sum(c.model.statistics == key[1] for c in group)
            _start_candidate(
                cand, settings, dtype, lambda fitter, key=key: fitter.initial_params(results[key])
            )
    return 1


def _start_candidate(cand, settings, dtype, make_params):
    """``make_params(fitter)`` as the candidate's start (or its failure), timed."""
    start = perf_counter()
    try:
        params = make_params(_fitter(cand, settings, dtype))
    except CANDIDATE_ERRORS as exc:
        cand.fail(exc)
        return
    finally:
        cand.seconds += perf_counter() - start
    _new_run(cand, params, settings, dtype)


def _method_starts(provider, groups, settings, states, dtype):
    """Every candidate initialised by :func:`fastgmm.init.initial_params` (same random state
    for every type of a K, so they start from the same responsibilities, rows or seeds)."""
    for k, group in groups.items():
        rs = states[k]
        state = rs.get_state()
        for cand in group:
            rs.set_state(state)
            _start_candidate(
                cand,
                settings,
                dtype,
                lambda fitter, k=k, rs=rs: initial_params(
                    provider,
                    fitter,
                    method=settings.init_params,
                    n_components=k,
                    random_state=rs,
                    init_sample=settings.init_sample,
                    n_threads=settings.n_threads,
                    noise_init=settings.noise_init,
                ),
            )
    return 0


def _start_runs(provider, candidates, grid, settings, random_state, dtype):
    """Every candidate's runs with their starting parameters; returns the shared passes made."""
    states = _random_states(random_state, grid)
    cache = _SampleCache()
    n_passes = 0
    trees = {}
    for _ in range(settings.n_init):
        groups = {}
        for cand in candidates:
            if cand.error is None:
                groups.setdefault(cand.n_components, []).append(cand)
        if settings.init_params == "hc":
            _hc_starts(provider, groups, settings, states, cache, trees, dtype)
        elif settings.init_params == "kmeans" and settings.noise_volume is None:
            n_passes += _kmeans_starts(provider, groups, settings, states, cache, dtype)
        else:
            n_passes += _method_starts(provider, groups, settings, states, dtype)
    return n_passes


def _hc_starts(provider, groups, settings, states, cache, trees, dtype):
    """One tree for the whole grid; each candidate's M-step on its partition of the sample.

    Each K's sample comes from its own random state, as in a standalone fit: with an integer
    seed those states are equal and the sample cache draws it once; a shared generator draws
    once per initialisation for every K. A tree is built once per distinct sample.
    """
    drawn = {}
    for k, group in groups.items():
        start = perf_counter()
        try:
            rs = states[k]
            if id(rs) not in drawn:
                rows, weights, numbers = cache.get(provider, HC_MAX_ROWS, rs)
                key = numbers.tobytes()
                if key not in trees:
                    trees[key] = HierarchicalStart.from_sample(
                        rows, weights, numbers, noise_init=settings.noise_init,
                        n_threads=settings.n_threads,
                    )  # fmt: skip
                drawn[id(rs)] = trees[key]
            hc_start = drawn[id(rs)]
        except CANDIDATE_ERRORS as exc:
            for cand in group:
                cand.fail(exc)
            continue
        finally:
            for cand in group:
                cand.seconds += (perf_counter() - start) / len(group)
        for cand in group:
            _start_candidate(
                cand,
                settings,
                dtype,
                lambda fitter, k=k, start=hc_start: start.params(
                    fitter, k, n_threads=settings.n_threads
                ),
            )


def _stop_failed_candidates(active_runs):
    """A standalone fit stops at its first failing initialisation: so does the candidate."""
    for run in active_runs:
        if run.error is not None:
            for sibling in run.candidate.runs:
                sibling.done = True


def _pick_best_runs(provider, candidates, n_threads) -> int:
    """Keep each candidate's best run, as ``GaussianMixture`` does with ``n_init`` restarts
    (:func:`fastgmm._estimator.choose_best_run`); returns the passes made (0 or 1).

    A standalone fit raises when any of its initialisations fails, so a candidate with a
    failed run is failed too (with that run's error). The final parameters of every candidate
    with several runs are scored in one shared pass.
    """
    for cand in candidates:
        for run in cand.runs:
            cand.seconds += run.seconds
            if run.error is not None:
                cand.fail(run.error)
    several = [run for c in candidates if c.error is None and len(c.runs) > 1 for run in c.runs]
    likelihoods = final_likelihoods(provider, several, n_threads) if several else {}
    for cand in candidates:
        if cand.error is None:
            cand.best = cand.runs[choose_best_run(cand.runs, likelihoods)]
    return int(bool(several))


def _score_candidates(provider, candidates, settings, dtype) -> int:
    """Total log-likelihood (and ICL's term) under each candidate's final model, in one pass.

    The models' own parameters (in the data's dtype, as ``score`` sees them) are scored, so the
    criteria equal ``model.bic(X)`` and ``model.aic(X)``.
    """
    requests = []
    for cand in candidates:
        # The request ``GaussianMixture.bic(X)`` makes: the same bits.
        fitter = cand.estimator._make_fitter(dtype)
        requests.append(fitter.request(cand.estimator._current_params(), mode=SCORE))
    results = provider.collect(requests, n_threads=settings.n_threads)
    n_rows = results[0].n_rows
    for cand, request, stats in zip(candidates, requests, results):
        cand.seconds += request.seconds
        # As GaussianMixture.bic: the mean log-likelihood times the number of rows.
        cand.log_likelihood = stats.mean_log_likelihood * stats.n_rows
        cand.log_max_resp = stats.log_max_resp
    return n_rows


def record(cand, n_features, n_samples) -> dict:
    """One row of ``results_`` for a candidate.

    Examples
    --------
    >>> from fastgmm._grid import Candidate, record
    >>> failed = Candidate(2, "full")
    >>> failed.fail(ValueError("collapsed"))
    >>> record(failed, 3, 100)["error"]
    'ValueError: collapsed'
    """
    n_params = cand.n_parameters(n_features)
    row = {
        "n_components": cand.n_components,
        "covariance_type": cand.covariance_type,
        "bic": math.nan,
        "aic": math.nan,
        "icl": math.nan,
        "log_likelihood": math.nan,
        "n_parameters": n_params,
        "converged": False,
        "n_iter": 0,
        "fit_seconds": cand.seconds,
        "error": None,
    }
    if cand.error is not None:
        row["error"] = f"{type(cand.error).__name__}: {cand.error}"
        row["n_iter"] = max((run.n_iter for run in cand.runs if run.error is not None), default=0)
        return row
    total = cand.log_likelihood
    row["log_likelihood"] = total
    row["bic"] = criteria.bic(total, n_params, n_samples)
    row["aic"] = criteria.aic(total, n_params)
    row["icl"] = criteria.icl(total, n_params, n_samples, cand.log_max_resp)
    row["converged"] = bool(cand.best.converged)
    row["n_iter"] = int(cand.best.n_iter)
    return row


def fit_grid(provider, *, grid, types, settings, random_state, build_estimator):
    """Fit every candidate of ``grid`` x ``types`` on ``provider``; score the fitted ones.

    ``build_estimator(candidate)`` turns a candidate's best run into a fitted estimator (the
    caller knows the estimator's class and options).

    Returns
    -------
    candidates : list of Candidate
        In grid order (``n_components`` ascending, then the types in the order given), each
        with its ``estimator`` (None if it failed), ``log_likelihood``, ``seconds``.
    n_samples : int
    n_passes : int
        Passes over the data for initialisation and EM (not counting the k-means samples).
    """
    dtype = provider.dtype
    noise = settings.noise_volume is not None
    candidates = [
        Candidate(k, t, fit_type=prior_substitute(t, k, settings.prior), noise=noise)
        for k in grid
        for t in types
    ]
    for cand in candidates:
        try:
            cand.prior = resolve_prior(
                settings.prior, cand.fit_model, cand.n_components, provider.n_features,
                settings.moments,
            )  # fmt: skip
        except ValueError as exc:
            cand.fail(exc)
    init_provider = provider
    n_passes = 0
    if settings.missing == "marginalize":
        # As GaussianMixture: one pass finds whether any row holds a NaN; without one, the
        # grid is fitted exactly as with missing='raise', otherwise its starts are computed on
        # mean-filled rows (fastgmm.missing).
        init_provider, has_nan = for_initialisation(provider, n_threads=settings.n_threads)
        n_passes = 1
        if not has_nan:
            settings = dataclasses.replace(settings, missing="raise")
    n_passes += _start_runs(init_provider, candidates, grid, settings, random_state, dtype)
    runs = []
    for cand in candidates:
        for run in cand.runs:
            run.candidate = cand
            runs.append(run)
    n_passes += run_em(
        provider,
        runs,
        n_threads=settings.n_threads,
        catch=CANDIDATE_ERRORS,
        on_pass=_stop_failed_candidates,
    )
    n_passes += _pick_best_runs(provider, candidates, settings.n_threads)
    fitted = [cand for cand in candidates if cand.error is None]
    if dtype == np.float32:
        for cand in candidates:
            if isinstance(cand.error, IllDefinedCovarianceError):
                cand.error = with_float32_hint(cand.error)
    if not fitted:
        return candidates, provider.count_rows(), n_passes
    for cand in fitted:
        try:
            cand.estimator = build_estimator(cand)
        except CANDIDATE_ERRORS as exc:  # e.g. parameters beyond float32's range
            cand.fail(exc)
    fitted = [cand for cand in candidates if cand.error is None]
    if not fitted:
        return candidates, provider.count_rows(), n_passes
    n_samples = _score_candidates(provider, fitted, settings, dtype)
    return candidates, n_samples, n_passes + 1
