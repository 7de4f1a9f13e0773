"""What to do when a mixture component collapses: the ``on_degenerate`` policy of the M-step.

A component is *degenerate* after an M-step when its covariance has no Cholesky factor (it is
not positive definite: singleton or duplicated rows, a constant feature inside the component,
``reg_covar`` too small for the scale of the data) or when it is *empty* (its weight ``nk`` is
below ``EMPTY_ROWS`` average rows). scikit-learn stops with "ill-defined empirical covariance"
in the first case and keeps empty components as dead weight. :class:`DegenerateHandler` runs
the M-step of :func:`fastgmm.em.run_em` under one of three policies:

``"raise"``
    scikit-learn's behaviour and message: a covariance without Cholesky factor raises
    ``ValueError``; empty components are kept.
``"reinit"``
    Every degenerate component (empty or without Cholesky factor) is moved to the worst-explained
    row of the last E-step (the row with the lowest log-likelihood; several components get
    distinct rows), with weight ``1 / n_components`` (then renormalised) and the average
    covariance of the healthy components. Finding that row costs one extra scoring pass over the
    data, only in the iterations that need it; per-row values are never stored. The lower bound
    may drop after such an event.
``"reg"``
    A component without Cholesky factor gets its own regularisation, raised tenfold at a time
    (from ``10 * reg_covar``, or from ``1e-6`` times the mean variance of the data when
    ``reg_covar == 0``) until the factorisation succeeds. The raised value stays in force for
    that component for the rest of the run. Empty components are kept, as with ``"raise"``.

Every action is recorded as a dict in :attr:`DegenerateHandler.events` (the estimator's
``degenerate_events_``) and announced with a :class:`DegenerateComponentWarning`.
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning

from .errors import ILL_DEFINED_MESSAGE, IllDefinedCovarianceError
from .providers import HARD, StatsRequest, WorstRowsRequest
from .stats import DIAG, FULL, POOLED, MixtureParams, SharedLayout, scatter

__all__ = [
    "EMPTY_ROWS",
    "ON_DEGENERATE",
    "DegenerateComponentWarning",
    "DegenerateHandler",
    "data_variance",
    "initialise",
    "pooled_variances",
]

#: The accepted values of ``on_degenerate``.
ON_DEGENERATE = ("raise", "reinit", "reg")

#: A component whose weight ``nk`` is below this many average rows (``weight_sum / n_rows``) is
#: empty. A millionth of a row carries no information about a mean or a covariance, while any
#: real cluster, even a single outlier row, holds a sizeable fraction of one row.
EMPTY_ROWS = 1e-6

# Reinitialisations allowed per component and run. An empty component needs one; a component
# that collapses again after being moved sits on a point mass that only regularisation fixes,
# and repeating the move would loop until max_iter.
_MAX_REINITS_PER_COMPONENT = 2

# Rows kept as reseeding candidates per collapsed component: extra candidates let several
# components be moved to distinct rows when the worst rows are duplicates of each other.
_CANDIDATES_PER_COMPONENT = 4


class DegenerateComponentWarning(ConvergenceWarning):
    """A component collapsed and was reinitialised or regularised (``on_degenerate``).

    A subclass of scikit-learn's ``ConvergenceWarning``, so filters for that warning cover it.

    Examples
    --------
    >>> from sklearn.exceptions import ConvergenceWarning
    >>> from fastgmm.degenerate import DegenerateComponentWarning
    >>> issubclass(DegenerateComponentWarning, ConvergenceWarning)
    True
    """


def pooled_variances(stats) -> np.ndarray:
    """Per-feature weighted variance of all rows, from statistics of any kind and shifts.

    The moments of component ``k`` are about ``shift_k``; moving them to the pooled mean ``m``
    uses ``sum r (x - m)^2 = S2 + 2 (shift - m) S1 + nk (shift - m)^2`` per feature, summed over
    the components (which pooled statistics have already summed in their first term).

    Examples
    --------
    >>> import numpy as np
    >>> from fastgmm.degenerate import pooled_variances
    >>> from fastgmm.estep import chunk_statistics
    >>> from fastgmm.stats import DIAG, SharedLayout
    >>> X = np.array([[0.0, 1.0], [2.0, 1.0], [4.0, 3.0], [6.0, 3.0]])
    >>> means = np.array([[1.0, 1.0], [5.0, 3.0]])
    >>> layout = SharedLayout.diagonal(np.array([0.5, 0.5]), means, np.ones((2, 2)))
    >>> stats = chunk_statistics(X, np.empty(0), layout, means, DIAG)
    >>> pooled_variances(stats).round(10), X.var(axis=0)
    (array([5., 1.]), array([5., 1.]))
    """
    nk = stats.nk
    total = float(nk.sum())
    if not total > 0.0:
        return np.zeros(stats.s1.shape[1])
    mean = (nk @ stats.shift + stats.s1.sum(axis=0)) / total
    if stats.kind == DIAG:
        second = stats.s2[:, 0, :].sum(axis=0)
    else:
        second = np.diagonal(stats.s2, axis1=1, axis2=2).sum(axis=0)
    delta = stats.shift - mean
    scatter_ = second + (2.0 * delta * stats.s1 + nk[:, None] * delta**2).sum(axis=0)
    return np.maximum(scatter_ / total, 0.0)


def data_variance(provider, *, n_threads=None) -> float:
    """Mean per-feature weighted variance of all rows, 1.0 if zero or not finite (two passes).

    The first pass finds the mean (moments about the origin), the second the variance about
    it, so data far from the origin keep their digits. Used only to scale a regularisation
    when ``reg_covar == 0`` and an initialisation collapsed.

    Examples
    --------
    >>> import numpy as np
    >>> from fastgmm.degenerate import data_variance
    >>> from fastgmm.providers import ArrayChunks
    >>> data_variance(ArrayChunks(np.array([[1e8], [1e8 + 2.0]])))
    1.0
    """
    n_features = provider.n_features
    origin = np.zeros((1, n_features))
    for _ in range(2):
        layout = SharedLayout.diagonal(np.ones(1), origin, np.ones((1, n_features)))
        [stats] = provider.collect([StatsRequest(layout, origin, DIAG, HARD)], n_threads=n_threads)
        if not stats.nk[0] > 0.0:
            return 1.0
        origin = origin + stats.s1 / stats.nk[:, None]
    variance = float(np.mean(pooled_variances(stats)))
    return variance if np.isfinite(variance) and variance > 0.0 else 1.0


class DegenerateHandler:
    """The M-step of one EM run under an ``on_degenerate`` policy.

    Create one per EM run (per initialisation): the raised regularisations of ``"reg"`` and the
    recorded events belong to that run. It works for every covariance model through the
    fitter's M-step: a covariance model reports which components have no Cholesky factor
    (:class:`fastgmm.errors.IllDefinedCovarianceError`), ``"reg"`` raises those components'
    regularisation, and ``"reinit"`` replaces their scatter by the average of the healthy
    components' before the model's M-step.

    Parameters
    ----------
    action : {'raise', 'reinit', 'reg'}
        The policy; see the module docstring.
    fitter : fastgmm.em.MaximumLikelihood
        Whose M-step runs under the policy.

    Attributes
    ----------
    events : list of dict
        One dict per action, in order, with keys ``iteration`` (the 1-based EM iteration whose
        M-step acted; the lower bound of the next iteration may be lower than this one's),
        ``component`` (its index, or None for a covariance shared by all components),
        ``action`` (``'reinit'`` or ``'reg'``), ``reason`` (``'empty'`` or ``'cholesky'``) and,
        for ``'reinit'``, ``row`` (index of the row the component was moved to), for ``'reg'``,
        ``reg_covar`` (the component's regularisation from then on).

    Examples
    --------
    Component 0 sits on two identical rows, far from the others: with ``reg_covar=0`` its
    variance is exactly zero, and ``'reg'`` regularises it.

    >>> import warnings
    >>> import numpy as np
    >>> from fastgmm.covariance import get_model
    >>> from fastgmm.degenerate import DegenerateHandler
    >>> from fastgmm.em import MaximumLikelihood
    >>> from fastgmm.providers import ArrayChunks
    >>> from fastgmm.stats import MixtureParams
    >>> X = np.array([[0.0, 0.0], [0.0, 0.0], [300.0, 150.0], [301.0, 151.0]])
    >>> params = MixtureParams(np.array([0.5, 0.5]), np.array([[0.0, 0.0], [300.5, 150.5]]),
    ...                        np.ones((2, 2)), np.ones((2, 2)), "diag")
    >>> fitter = MaximumLikelihood(get_model("diag"), reg_covar=0.0)
    >>> data = ArrayChunks(X)
    >>> [stats] = data.collect([fitter.request(params)])
    >>> handler = DegenerateHandler("reg", fitter)
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     new, changed = handler.m_step(stats, params, 1, data)
    >>> changed, handler.events[0]["component"], handler.events[0]["action"]
    (True, 0, 'reg')
    >>> caught[0].category.__name__
    'DegenerateComponentWarning'
    """

    def __init__(self, action: str, fitter):
        if action not in ON_DEGENERATE:
            raise ValueError(f"on_degenerate must be one of {ON_DEGENERATE}, got {action!r}.")
        self.action = action
        self.fitter = fitter
        self.events: list[dict] = []
        self._reg: np.ndarray | None = None  # per-component regularisation ("reg")

    # ----------------------------------------------------------------------------- M-step
    def m_step(
        self, stats, previous: MixtureParams, iteration: int, provider=None, *, n_threads=None
    ):
        """The M-step from ``stats`` with the policy applied.

        Parameters
        ----------
        stats : SufficientStats
            Statistics of the E-step just run.
        previous : MixtureParams
            The parameters of that E-step (``"reinit"`` scores the rows with them).
        iteration : int
            The 1-based EM iteration, for the record.
        provider : ChunkProvider, optional
            The rows (``"reinit"`` looks for the worst-explained ones).

        Returns
        -------
        params : MixtureParams
        changed : bool
            Whether the policy acted. The EM loop must not declare convergence then: the
            returned parameters differ from a plain M-step and have not been scored yet.
        """
        if self.action == "raise":
            return self.fitter.m_step(stats, previous), False
        if self.action == "reg":
            return self._regularise(stats, previous, iteration)
        return self._reinit(stats, previous, iteration, provider, n_threads)

    # ------------------------------------------------------------------------------- reg
    def _regularise(self, stats, previous, iteration):
        n_components = len(stats.nk)
        reg_covar = self.fitter.reg_covar
        if self._reg is None:
            self._reg = np.full(n_components, reg_covar)
        base = reg_covar
        if not base > 0.0:
            variance = float(np.mean(pooled_variances(stats)))
            base = 1e-6 * variance if np.isfinite(variance) and variance > 0.0 else 1e-6
        raised = {}
        while True:
            try:
                params = self.fitter.m_step(stats, previous, reg=self._reg)
                break
            except IllDefinedCovarianceError as exc:
                shared = exc.components is None
                failing = range(n_components) if shared else exc.components
                for k in failing:
                    value = float(self._reg[k])
                    value = value * 10.0 if value > 0.0 else base
                    if not np.isfinite(value):  # pragma: no cover - finite matrices factorise
                        raise
                    self._reg[k] = value
                    raised[None if shared else int(k)] = value
        if not raised:
            return params, False
        new_events = [
            {
                "iteration": int(iteration),
                "component": k,
                "action": "reg",
                "reason": "cholesky",
                "reg_covar": value,
            }
            for k, value in raised.items()
        ]
        self._record(new_events)
        return params, True

    # ---------------------------------------------------------------------------- reinit
    def _reinit(self, stats, previous, iteration, provider, n_threads):
        n_components = len(stats.nk)
        mean_weight = stats.weight_sum / max(stats.n_rows, 1)
        empty = stats.nk < EMPTY_ROWS * mean_weight
        failing = np.zeros(n_components, dtype=bool)
        fitter = self.fitter
        nk, means, covariance = scatter(stats, fitter.reg_covar, fitter.dtype)
        while True:
            replaced = empty | failing
            try:
                estimate = fitter.model.estimate(
                    nk,
                    means,
                    _with_template(covariance, replaced, stats, fitter),
                    previous=previous,
                    prior=fitter.prior,
                )
                break
            except IllDefinedCovarianceError as exc:
                if exc.components is None:
                    raise IllDefinedCovarianceError(
                        None,
                        ILL_DEFINED_MESSAGE
                        + f" With covariance_type={fitter.model.name!r} the failing covariance is "
                        "shared by all components, so on_degenerate='reinit' cannot repair it; "
                        "use on_degenerate='reg' or a larger reg_covar.",
                    ) from None
                new = np.zeros(n_components, dtype=bool)
                new[list(exc.components)] = True
                if not (new & ~failing).any():  # pragma: no cover - replaced ones factorise
                    raise
                failing |= new
        collapsed = empty | failing
        new_means, covariances, factors, decomposition = estimate
        weights = nk / nk.sum()
        if not collapsed.any():
            return MixtureParams(
                weights, new_means, covariances, factors, fitter.model.name, decomposition
            ), False

        collapsed_ids = np.flatnonzero(collapsed)
        n_before = sum(e["action"] == "reinit" for e in self.events)
        limit = _MAX_REINITS_PER_COMPONENT * n_components
        if n_before + len(collapsed_ids) > limit:
            raise ValueError(
                f"on_degenerate='reinit': components collapsed {n_before + len(collapsed_ids)} "
                f"times by EM iteration {iteration} and reinitialising them does not help: the "
                "data hold a point mass (duplicated rows) or a flat direction that the "
                f"components fit with zero variance at reg_covar={fitter.reg_covar}. Use "
                "on_degenerate='reg' or a larger reg_covar."
            )
        rows, points = self._worst_rows(provider, previous, len(collapsed_ids), n_threads)
        weights = weights.copy()
        new_means = new_means.copy()
        new_events = []
        for j, k in enumerate(collapsed_ids):
            new_means[k] = points[j]
            weights[k] = 1.0 / n_components
            new_events.append(
                {
                    "iteration": int(iteration),
                    "component": int(k),
                    "action": "reinit",
                    "reason": "empty" if empty[k] else "cholesky",
                    "row": int(rows[j]),
                }
            )
        weights /= weights.sum()
        self._record(new_events)
        return MixtureParams(
            weights, new_means, covariances, factors, fitter.model.name, decomposition
        ), True

    def _worst_rows(self, provider, previous, n_wanted, n_threads):
        """Indices and values of the ``n_wanted`` worst-explained rows, distinct if possible.

        One scoring pass keeps only a few candidates per chunk (the rows with the lowest
        log-likelihood and a positive weight), so memory does not grow with the data.
        """
        if provider is None:
            raise ValueError(
                "on_degenerate='reinit' needs a pass over the rows, which was not provided; "
                "use on_degenerate='reg'."
            )
        request = WorstRowsRequest(
            self.fitter.layout(previous),
            n_wanted * _CANDIDATES_PER_COMPONENT,
            missing=getattr(self.fitter, "missing", False),
        )
        [worst] = provider.collect([request], n_threads=n_threads)
        if worst.rows.size == 0:
            raise ValueError("on_degenerate='reinit' found no row with a positive weight.")
        chosen = []
        for j in range(len(worst.rows)):
            if not any(np.array_equal(worst.points[j], worst.points[c]) for c in chosen):
                chosen.append(j)
            if len(chosen) == n_wanted:
                break
        # Fewer distinct rows than collapsed components: reuse them in order.
        chosen = [chosen[i % len(chosen)] for i in range(n_wanted)]
        return worst.rows[chosen], worst.points[chosen]

    def _record(self, new_events):
        self.events.extend(new_events)
        _warn(new_events)


def _with_template(covariance, replaced, stats, fitter):
    """The scatter with the ``replaced`` components' replaced by the healthy ones' average.

    A pooled scatter has no per-component part to replace (an empty component adds nothing to
    it); with no healthy component left, the data's own variances (diagonal) are used.
    """
    if not replaced.any() or stats.kind == POOLED:
        return covariance
    covariance = covariance.copy()
    healthy = ~replaced
    if healthy.any():
        template = covariance[healthy].mean(axis=0)
    else:
        variances = pooled_variances(stats) + fitter.reg_covar
        template = np.diag(variances) if stats.kind == FULL else variances
    covariance[replaced] = template
    return covariance


def initialise(action, make_params, *, reg_covar, random_state, provider=None, n_threads=None):
    """First parameters under a policy: a failing initialisation is retried, more regularised.

    An initialisation (k-means clusters, single rows for 'k-means++' and 'random_from_data')
    can give a covariance without Cholesky factor before EM has started, for instance on
    duplicated rows with ``reg_covar=0``. Under ``'reinit'`` and ``'reg'`` it is computed again
    with the regularisation raised tenfold at a time (from ``10 * reg_covar``, or ``1e-6`` times
    the mean variance of the data when ``reg_covar == 0``), from the same random state, so it
    picks the same rows. The EM iterations then use ``reg_covar`` again, with the policy.

    Parameters
    ----------
    action : {'raise', 'reinit', 'reg'}
    make_params : callable
        ``make_params(reg_covar)`` returns the initial :class:`MixtureParams`.
    reg_covar : float
    random_state : numpy.random.RandomState
        Rewound before each retry.
    provider : ChunkProvider, optional
        The rows, to measure the data's variance when ``reg_covar == 0``.

    Returns
    -------
    params : MixtureParams
    events : list of dict
        Empty, or one ``'reg'`` event with ``iteration`` 0 and ``component`` None.

    Examples
    --------
    A start whose covariance is exactly zero unless regularised:

    >>> import warnings
    >>> import numpy as np
    >>> from fastgmm.covariance import get_model
    >>> from fastgmm.degenerate import initialise
    >>> from fastgmm.em import MaximumLikelihood
    >>> from fastgmm.providers import ArrayChunks
    >>> X = np.array([[0.0, 1.0], [2.0, 1.0], [4.0, 3.0], [6.0, 3.0]])
    >>> def make_params(reg_covar):
    ...     fitter = MaximumLikelihood(get_model("diag"), reg_covar=reg_covar)
    ...     return fitter.point_params(X[:1], n_samples=4)
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     params, events = initialise("reg", make_params, reg_covar=0.0,
    ...                                 random_state=np.random.RandomState(0),
    ...                                 provider=ArrayChunks(X))
    >>> events[0]["action"], events[0]["reg_covar"], caught[0].category.__name__
    ('reg', 3e-06, 'DegenerateComponentWarning')
    """
    if action == "raise":
        return make_params(reg_covar), []
    state = random_state.get_state()
    try:
        return make_params(reg_covar), []
    except IllDefinedCovarianceError as exc:
        failure = exc
    value = float(reg_covar)
    if value > 0.0:
        value *= 10.0
    else:
        variance = 1.0 if provider is None else data_variance(provider, n_threads=n_threads)
        value = 1e-6 * variance
    while np.isfinite(value):
        random_state.set_state(state)
        try:
            params = make_params(value)
        except IllDefinedCovarianceError:
            value *= 10.0
            continue
        event = {
            "iteration": 0,
            "component": None,
            "action": "reg",
            "reason": "cholesky",
            "reg_covar": value,
        }
        _warn([event])
        return params, [event]
    raise failure  # pragma: no cover - finite covariances factorise once reg dominates


# ------------------------------------------------------------------------------- helpers
def _warn(events):
    described = ", ".join(
        ("all components" if e["component"] is None else f"component {e['component']}")
        + f" ({e['reason']}) "
        + (
            f"moved to row {e['row']}"
            if e["action"] == "reinit"
            else f"regularised with {e['reg_covar']:.3g}"
        )
        for e in events
    )
    iteration = events[0]["iteration"]
    where = "initialisation" if iteration == 0 else f"EM iteration {iteration}"
    warnings.warn(
        f"{where}: degenerate {described}. See degenerate_events_.",
        DegenerateComponentWarning,
        stacklevel=5,
    )
