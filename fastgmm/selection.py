"""Choose the number of components and the covariance type by BIC, AIC or ICL.

:func:`select_model` fits every candidate ``(n_components, covariance_type)`` of a grid and keeps
the one with the lowest criterion; :class:`GaussianMixtureIC` wraps it as a scikit-learn
estimator that then behaves as the chosen mixture. The candidates advance together over shared
passes of the data (see :mod:`fastgmm._grid`), so a file is read once per EM iteration for the
whole grid, and with an integer ``random_state`` each candidate equals the standalone
``GaussianMixture`` fit.

Sign convention: as in scikit-learn, ``bic = -2 log L + p log n``, ``aic = -2 log L + 2 p`` and
``icl = bic - 2 sum_i log max_k r_ik``, so **lower is better** (see :mod:`fastgmm.criteria`).
R's mclust reports BIC and ICL with the opposite sign (higher is better); its values are ours
with the sign flipped.
"""

from __future__ import annotations

import numbers
import warnings
from time import perf_counter

import numpy as np
from sklearn.base import BaseEstimator, DensityMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.validation import check_is_fitted

from ._estimator import make_provider
from ._grid import GridSettings, fit_grid, record
from ._jit import holds_single_threaded_blas, resolve_n_threads
from ._names import COVARIANCE_ALIASES, COVARIANCE_TYPES, INIT_METHODS, SKLEARN_COVARIANCE_TYPES
from .covariance import PRIOR_MODELS, ConjugatePrior, Decomposition
from .criteria import CRITERIA, DEFAULT_N_COMPONENTS
from .degenerate import ON_DEGENERATE
from .missing import MISSING
from .mixture import GaussianMixture
from .noise import check_noise_init, data_hypervolume
from .prior import data_moments

__all__ = ["CRITERIA", "GaussianMixtureIC", "SelectionResult", "select_model"]

# GaussianMixture parameters that select_model passes on to every candidate, with defaults.
_GMM_DEFAULTS = {
    "tol": 1e-3,
    "reg_covar": 1e-6,
    "max_iter": 100,
    "init_params": "kmeans",
    "n_jobs": None,
    "on_degenerate": "raise",
    "prior": None,
    "noise_init": None,
    "convergence": "sklearn",
    "missing": "raise",
}
# GaussianMixture parameters that have no meaning for a grid of candidates, and why.
_GMM_REJECTED = {
    "weights_init": "initial parameters depend on n_components, so they cannot be shared",
    "means_init": "initial parameters depend on n_components, so they cannot be shared",
    "precisions_init": "initial parameters depend on n_components, so they cannot be shared",
    "warm_start": "every candidate starts from its own initialisation",
    "verbose": "progress is not printed per candidate; see results_ for each candidate",
    "verbose_interval": "progress is not printed per candidate",
}


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


def _check_covariance_types(covariance_types, prior=None) -> tuple[str, ...]:
    """The candidate covariance types, de-duplicated, in the order given.

    The aliases 'mclust' (mclust's fourteen models; under a prior, the ten where mclust defines
    it, as ``mclustBIC`` does) and 'sklearn' (scikit-learn's four) expand in place.
    """
    if isinstance(covariance_types, str):
        covariance_types = (covariance_types,)
    try:
        covariance_types = [
            name
            for value in covariance_types
            for name in (
                COVARIANCE_ALIASES[value] if isinstance(value, str) and value in COVARIANCE_ALIASES
                else (value,)
            )
            if not (value == "mclust" and prior is not None and name not in PRIOR_MODELS)
        ]  # fmt: skip
    except TypeError:
        pass  # not iterable: refused below
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
            f"Unknown criterion {criterion!r}; choose 'bic', 'aic' or 'icl' (lower is better for "
            "each)."
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
    if params["on_degenerate"] not in ON_DEGENERATE:
        raise ValueError(
            f"Unknown on_degenerate {params['on_degenerate']!r}; choose from "
            f"{', '.join(ON_DEGENERATE)}."
        )
    if params["missing"] not in MISSING:
        raise ValueError(
            f"Unknown missing {params['missing']!r}; choose from {', '.join(MISSING)}."
        )
    n_jobs = params["n_jobs"]
    if n_jobs is not None and (
        isinstance(n_jobs, bool) or not isinstance(n_jobs, numbers.Integral)
    ):
        raise ValueError(f"n_jobs must be None or an integer, got {n_jobs!r}.")
    if params["convergence"] not in ("sklearn", "mclust"):
        raise ValueError(
            f"convergence must be 'sklearn' or 'mclust', got {params['convergence']!r}."
        )
    prior = params["prior"]
    if not (prior is None or prior == "default" or isinstance(prior, ConjugatePrior)):
        raise ValueError(f"prior must be None, 'default' or a ConjugatePrior, got {prior!r}.")
    if params["noise_init"] is not None and params["on_degenerate"] == "reinit":
        raise ValueError(
            "on_degenerate='reinit' is not supported with a noise component (noise_init); use "
            "on_degenerate='reg' or 'raise'."
        )
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


# ------------------------------------------------------------------------------------ engine
def _build_estimator(cand, settings, random_state, dtype, n_features, feature_names):
    run = cand.best
    params = run.params
    if cand.fit_model is not cand.model:
        # mclustBIC's one-component substitute under a prior: the same covariance structure at
        # K = 1, kept under the candidate's own name.
        dec = params.decomposition
        params.covariance_type = cand.covariance_type
        params.decomposition = Decomposition(
            cand.model.mclust_name, dec.volumes, dec.shapes, dec.orientations
        )
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
        on_degenerate=settings.on_degenerate,
        prior=settings.prior,
        noise_init=settings.noise_init,
        convergence=settings.convergence,
        missing=settings.missing,
    )
    model._fit_prior = cand.prior
    if settings.noise_volume is not None:
        model.noise_volume_ = settings.noise_volume
        model._noise_mask = settings.noise_init
    model._set_params(params, dtype)
    model.converged_ = run.converged
    model.n_iter_ = run.n_iter
    model.lower_bound_ = run.lower_bound
    model.lower_bounds_ = list(run.lower_bounds)
    model.degenerate_events_ = [] if run.degenerate is None else list(run.degenerate.events)
    model.n_features_in_ = n_features
    if feature_names is not None:
        model.feature_names_in_ = feature_names
    return model


@holds_single_threaded_blas
def _select(provider, *, grid, types, criterion, random_state, settings_dict, feature_names=None):
    """Fit the grid on a provider and return a :class:`SelectionResult`."""
    settings = GridSettings(
        tol=float(settings_dict["tol"]),
        reg_covar=float(settings_dict["reg_covar"]),
        max_iter=int(settings_dict["max_iter"]),
        n_init=settings_dict["n_init"],
        init_params=settings_dict["init_params"],
        n_jobs=settings_dict["n_jobs"],
        n_threads=resolve_n_threads(settings_dict["n_jobs"]),
        on_degenerate=settings_dict.get("on_degenerate", "raise"),
        prior=settings_dict.get("prior"),
        convergence=settings_dict.get("convergence", "sklearn"),
        missing=settings_dict.get("missing", "raise"),
    )
    # A stream of unknown length (CSV, callable) is counted now, so that a grid that does not
    # fit the data fails before any work.
    _check_grid_fits(grid, provider.count_rows())
    start = perf_counter()
    noise_init = settings_dict.get("noise_init")
    if noise_init is not None:
        settings.noise_init = check_noise_init(noise_init, provider.count_rows())
        settings.noise_volume = data_hypervolume(provider, n_threads=settings.n_threads)
    if isinstance(settings.prior, str):
        settings.moments = data_moments(provider, n_threads=settings.n_threads)[:2]
    n_features = provider.n_features

    def build(cand):
        return _build_estimator(
            cand, settings, random_state, provider.dtype, n_features, feature_names
        )

    candidates, n_samples, n_passes = fit_grid(
        provider,
        grid=grid,
        types=types,
        settings=settings,
        random_state=random_state,
        build_estimator=build,
    )
    if all(cand.error is not None for cand in candidates):
        details = "\n".join(
            f"  n_components={c.n_components}, covariance_type={c.covariance_type!r}: "
            f"{type(c.error).__name__}: {c.error}"
            for c in candidates
        )
        raise ValueError(f"All {len(candidates)} candidate models failed:\n{details}")
    records = [record(cand, n_features, n_samples) for cand in candidates]
    best_index = None
    for i, row in enumerate(records):
        if row["error"] is None and (
            best_index is None or row[criterion] < records[best_index][criterion]
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
        best_estimator_=best.estimator,
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
        for row in self.results_:
            table[rows[row["n_components"]], cols[row["covariance_type"]]] = row[criterion]
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
    n_components=DEFAULT_N_COMPONENTS,
    covariance_types=SKLEARN_COVARIANCE_TYPES,
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
        Covariance types to try: any ``covariance_type`` of :class:`fastgmm.GaussianMixture`,
        'mclust' for mclust's fourteen models (under a prior, the ten where mclust defines it,
        as ``mclustBIC``) and 'sklearn' for scikit-learn's four.
    criterion : {'bic', 'aic', 'icl'}, default='bic'
        Criterion to minimise. Lower is better (scikit-learn's sign). **R's mclust reports BIC
        and ICL with the opposite sign, higher is better**: mclust's ``mclustBIC`` table is
        ``-result.criterion_table()``.
    n_init : int, default=1
        Initialisations per candidate; each candidate keeps the run with the largest lower
        bound, as ``GaussianMixture(n_init=...)`` does.
    random_state : int, RandomState instance or None, default=None
        With an int, each candidate's initialisation equals that of
        ``GaussianMixture(random_state=random_state)``, so each candidate equals that
        standalone fit.
    **gmm_params
        Options shared by every candidate: ``tol``, ``reg_covar``, ``max_iter``,
        ``init_params``, ``n_jobs`` (threads), ``on_degenerate``, ``noise_init``, ``prior``,
        ``convergence`` and ``missing`` (``'marginalize'``: NaN entries are integrated out), as
        in :class:`fastgmm.GaussianMixture`. With ``init_params='hc'`` one hierarchical tree
        serves every candidate. Under a ``prior``, the one-component candidates of mclust's
        models are fitted as ``mclustBIC`` fits them (VII, VVI or VVV's prior: the same model at
        K = 1) and keep their names and parameter counts; a candidate whose component empties
        under the prior is recorded as failed (R: NA).

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

    Notes
    -----
    To reproduce R's ``mclustBIC(X)`` (``Mclust``'s table): ``covariance_types='mclust'``,
    ``init_params='hc'``, ``reg_covar=0`` and a tight ``tol``; R's VVE step is
    ``'VVE_mclust'`` (see :class:`fastgmm.covariance.MclustModel`), and
    ``convergence='mclust'`` its convergence test. The test decides where EM stops on the long
    plateaus some fits cross, and ICL depends on the last responsibilities to first order (BIC
    only to second), so matching R's ICL needs R's test.

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

    mclust's fourteen models from its hierarchical start (with mclust's sign, BIC is the
    negated table):

    >>> result = select_model(X, n_components=range(1, 4), covariance_types="mclust",
    ...                       init_params="hc", reg_covar=0.0)
    >>> result.criterion_table().shape, result.n_components_, result.covariance_type_
    ((3, 14), 2, 'EII')
    """
    grid = _check_n_components(n_components)
    criterion = _check_criterion(criterion)
    settings = _check_gmm_params(n_init, gmm_params, "select_model")
    types = _check_covariance_types(covariance_types, settings["prior"])
    template = GaussianMixture(missing=settings["missing"])
    data = make_provider(template, X)
    feature_names = getattr(template, "feature_names_in_", None)
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
    tol, reg_covar, max_iter, init_params, missing
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
        covariance_types=SKLEARN_COVARIANCE_TYPES,
        criterion="bic",
        n_init=1,
        random_state=None,
        n_jobs=None,
        tol=1e-3,
        reg_covar=1e-6,
        max_iter=100,
        init_params="kmeans",
        missing="raise",
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
        self.missing = missing

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
                "missing": self.missing,
            },
            type(self).__name__,
        )
        data = make_provider(self, X)
        feature_names = getattr(self, "feature_names_in_", None)
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
        >>> bool(ic.score(X) == ic.best_estimator_.score(X))
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

    def impute(self, X, return_std=False):
        """Missing entries filled by the selected model; see :meth:`fastgmm.GaussianMixture.impute`.

        Examples
        --------
        >>> import numpy as np
        >>> from fastgmm import GaussianMixtureIC
        >>> noise = np.random.default_rng(1).normal(size=(300, 2))
        >>> blobs = noise + np.repeat([[0.0, 0.0], [8.0, 8.0]], 150, axis=0)
        >>> ic = GaussianMixtureIC(n_components=[1, 2], random_state=0).fit(blobs)
        >>> ic.impute([[8.0, np.nan], [np.nan, 0.0]]).round(0) + 0.0  # each from its cluster
        array([[8., 8.],
               [0., 0.]])"""
        return self._best().impute(X, return_std=return_std)

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
