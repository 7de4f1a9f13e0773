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
from scipy import linalg
from sklearn.exceptions import ConvergenceWarning

from .em import params_from_stats, score_chunk
from .stats import _FLOAT32_HINT, _ILL_DEFINED, MixtureParams, m_step, precision_cholesky

__all__ = [
    "EMPTY_ROWS",
    "ON_DEGENERATE",
    "DegenerateComponentWarning",
    "DegenerateHandler",
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
    """Per-feature weighted variance of all rows, from statistics taken about any shifts.

    The moments of component ``k`` are about ``shift_k``; moving them to the pooled mean ``m``
    uses ``sum r (x - m)^2 = S2 + 2 (shift - m) S1 + nk (shift - m)^2`` per feature.

    Examples
    --------
    >>> import numpy as np
    >>> from fastgmm.degenerate import pooled_variances
    >>> from fastgmm.em import chunk_statistics
    >>> from fastgmm.stats import MixtureParams, kernel_params
    >>> X = np.array([[0.0, 1.0], [2.0, 1.0], [4.0, 3.0], [6.0, 3.0]])
    >>> params = MixtureParams(np.array([0.5, 0.5]), np.array([[1.0, 1.0], [5.0, 3.0]]), None,
    ...                        np.ones((2, 2)), "diag")
    >>> stats = chunk_statistics(X, np.empty(0), kernel_params(params), params.means)
    >>> pooled_variances(stats).round(10), X.var(axis=0)
    (array([5., 1.]), array([5., 1.]))
    """
    nk = stats.nk
    total = float(nk.sum())
    if not total > 0.0:
        return np.zeros(stats.s1.shape[1])
    mean = (nk @ stats.shift + stats.s1.sum(axis=0)) / total
    if stats.s2.shape[1] == 1:
        second = stats.s2[:, 0, :]
    else:
        second = np.diagonal(stats.s2, axis1=1, axis2=2)
    delta = stats.shift - mean
    scatter = second + 2.0 * delta * stats.s1 + nk[:, None] * delta**2
    return np.maximum(scatter.sum(axis=0) / total, 0.0)


class DegenerateHandler:
    """The M-step of one EM run under an ``on_degenerate`` policy.

    Create one per EM run (per initialisation): the raised regularisations of ``"reg"`` and the
    recorded events belong to that run.

    Parameters
    ----------
    action : {'raise', 'reinit', 'reg'}
        The policy; see the module docstring.
    chunks : callable, optional
        ``chunks()`` yields ``(row_offset, X_chunk, sample_weight_chunk)`` over all rows, as
        :meth:`fastgmm.em.ArrayChunks.chunks`. Needed by ``"reinit"`` to find the worst rows.
    n_threads : int, optional
        Threads for that scoring pass.

    Attributes
    ----------
    events : list of dict
        One dict per action, in order, with keys ``iteration`` (the 1-based EM iteration whose
        M-step acted; the lower bound of the next iteration may be lower than this one's),
        ``component`` (its index, or None for the shared covariance of ``'tied'``), ``action``
        (``'reinit'`` or ``'reg'``), ``reason`` (``'empty'`` or ``'cholesky'``) and, for
        ``'reinit'``, ``row`` (index of the row the component was moved to), for ``'reg'``,
        ``reg_covar`` (the component's regularisation from then on).

    Examples
    --------
    >>> import numpy as np
    >>> from fastgmm.degenerate import DegenerateHandler
    >>> from fastgmm.em import ArrayChunks, chunk_statistics
    >>> from fastgmm.stats import MixtureParams, kernel_params

    Component 0 sits on two identical rows, far from the others: with ``reg_covar=0`` its
    variance is exactly zero, and ``'reg'`` regularises it.

    >>> import warnings
    >>> X = np.array([[0.0, 0.0], [0.0, 0.0], [300.0, 150.0], [301.0, 151.0]])
    >>> params = MixtureParams(
    ...     np.array([0.5, 0.5]), np.array([[0.0, 0.0], [300.5, 150.5]]), None,
    ...     np.array([[1.0, 1.0], [1.0, 1.0]]), "diag")
    >>> kparams = kernel_params(params)
    >>> stats = chunk_statistics(X, np.empty(0), kparams, params.means.copy())
    >>> handler = DegenerateHandler("reg", ArrayChunks(X).chunks)
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     new, changed = handler.m_step(stats, kparams, 1, covariance_type="diag",
    ...                                   reg_covar=0.0)
    >>> changed, handler.events[0]["component"], handler.events[0]["action"]
    (True, 0, 'reg')
    >>> caught[0].category.__name__
    'DegenerateComponentWarning'
    """

    def __init__(self, action: str, chunks=None, *, n_threads: int | None = None):
        if action not in ON_DEGENERATE:
            raise ValueError(f"on_degenerate must be one of {ON_DEGENERATE}, got {action!r}.")
        self.action = action
        self.chunks = chunks
        self.n_threads = n_threads
        self.events: list[dict] = []
        self._reg: np.ndarray | None = None  # per-component regularisation ("reg")

    # ----------------------------------------------------------------------------- M-step
    def m_step(
        self,
        stats,
        kparams,
        iteration: int,
        *,
        covariance_type: str,
        reg_covar: float,
        float32_hint: bool = False,
    ) -> tuple[MixtureParams, bool]:
        """The M-step from ``stats`` with the policy applied.

        Parameters
        ----------
        stats : SufficientStats
            Statistics of the E-step just run.
        kparams : KernelParams
            The parameters of that E-step (``"reinit"`` scores the rows with them).
        iteration : int
            The 1-based EM iteration, for the record.
        covariance_type, reg_covar, float32_hint
            As for :func:`fastgmm.em.params_from_stats`.

        Returns
        -------
        params : MixtureParams
        changed : bool
            Whether the policy acted. The EM loop must not declare convergence then: the
            returned parameters differ from a plain M-step and have not been scored yet.
        """
        if self.action == "raise":
            params = params_from_stats(stats, covariance_type, reg_covar, float32_hint=float32_hint)
            return params, False
        weights, means, covariances = m_step(stats, covariance_type, reg_covar)
        if self.action == "reg":
            return self._regularise(
                stats,
                weights,
                means,
                covariances,
                iteration,
                reg_covar,
                covariance_type,
                float32_hint,
            )
        return self._reinit(
            stats,
            kparams,
            weights,
            means,
            covariances,
            iteration,
            reg_covar,
            covariance_type,
            float32_hint,
        )

    # ------------------------------------------------------------------------------- reg
    def _regularise(
        self, stats, weights, means, covariances, iteration, reg_covar, ctype, float32_hint
    ):
        n_slots = 1 if ctype == "tied" else len(weights)
        if self._reg is None:
            self._reg = np.full(n_slots, float(reg_covar))
        # Components regularised in earlier iterations keep their raised value.
        extra = self._reg - reg_covar
        if np.any(extra > 0):
            covariances = _add_to_component_diagonals(covariances, ctype, extra)
        failing = _failing_components(covariances, ctype)
        if not failing.any():
            return _params(weights, means, covariances, ctype, float32_hint), False
        _check_finite_covariances(covariances, ctype, failing)
        base = float(reg_covar)
        if not base > 0.0:
            variance = float(np.mean(pooled_variances(stats)))
            base = 1e-6 * variance if np.isfinite(variance) and variance > 0.0 else 1e-6
        new_events = []
        for k in np.flatnonzero(failing):
            current = float(self._reg[k])
            matrix = _component(covariances, ctype, k)
            unregularised = _shift_diagonal(matrix, ctype, -current)
            value = current
            while True:
                value = value * 10.0 if value > 0.0 else base
                if not np.isfinite(value):  # pragma: no cover - a finite matrix always succeeds
                    raise ValueError(_message(float32_hint))
                candidate = _shift_diagonal(unregularised, ctype, value)
                if _factorises(candidate, ctype):
                    break
            self._reg[k] = value
            covariances = _set_component(covariances, ctype, k, candidate)
            new_events.append(
                {
                    "iteration": int(iteration),
                    "component": None if ctype == "tied" else int(k),
                    "action": "reg",
                    "reason": "cholesky",
                    "reg_covar": value,
                }
            )
        self._record(new_events)
        return _params(weights, means, covariances, ctype, float32_hint), True

    # ---------------------------------------------------------------------------- reinit
    def _reinit(
        self, stats, kparams, weights, means, covariances, iteration, reg_covar, ctype, float32_hint
    ):
        failing = _failing_components(covariances, ctype)
        if ctype == "tied" and failing.any():
            _check_finite_covariances(covariances, ctype, failing)
            raise ValueError(
                _message(float32_hint)
                + " With covariance_type='tied' the failing covariance is shared by all "
                "components, so on_degenerate='reinit' cannot repair it; use "
                "on_degenerate='reg' or a larger reg_covar."
            )
        _check_finite_covariances(covariances, ctype, failing)
        mean_weight = stats.weight_sum / max(stats.n_rows, 1)
        empty = stats.nk < EMPTY_ROWS * mean_weight
        collapsed = empty | (failing if ctype != "tied" else False)
        if not collapsed.any():
            return _params(weights, means, covariances, ctype, float32_hint), False

        collapsed_ids = np.flatnonzero(collapsed)
        n_before = sum(e["action"] == "reinit" for e in self.events)
        limit = _MAX_REINITS_PER_COMPONENT * len(weights)
        if n_before + len(collapsed_ids) > limit:
            raise ValueError(
                f"on_degenerate='reinit': components collapsed {n_before + len(collapsed_ids)} "
                f"times by EM iteration {iteration} and reinitialising them does not help: the "
                "data hold a point mass (duplicated rows) or a flat direction that the "
                f"components fit with zero variance at reg_covar={reg_covar}. Use "
                "on_degenerate='reg' or a larger reg_covar."
            )
        rows, points = self._worst_rows(kparams, len(collapsed_ids))
        healthy = ~collapsed
        if ctype != "tied":
            covariances = covariances.copy()
            if healthy.any():
                template = covariances[healthy].mean(axis=0)
            else:
                template = _pooled_covariance(stats, ctype, reg_covar)
            if not _factorises(template, ctype):
                raise ValueError(
                    _message(float32_hint)
                    + " on_degenerate='reinit' found no usable covariance to restart the "
                    "collapsed components with (every component collapsed and the data have no "
                    "variance); use on_degenerate='reg' or a larger reg_covar."
                )
        weights = weights.copy()
        means = means.copy()
        new_events = []
        for j, k in enumerate(collapsed_ids):
            means[k] = points[j]
            weights[k] = 1.0 / len(weights)
            if ctype != "tied":
                covariances[k] = template
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
        return _params(weights, means, covariances, ctype, float32_hint), True

    def _worst_rows(self, kparams, n_wanted):
        """Indices and values of the ``n_wanted`` worst-explained rows, distinct if possible.

        One scoring pass keeps only a few candidates per chunk (the rows with the lowest
        log-likelihood and a positive weight), so memory does not grow with the data.
        """
        if self.chunks is None:
            raise ValueError(
                "on_degenerate='reinit' needs a pass over the rows, which this data engine "
                "does not provide; use on_degenerate='reg'."
            )
        n_keep = n_wanted * _CANDIDATES_PER_COMPONENT
        best_ll = np.empty(0)
        best_rows = np.empty(0, dtype=np.int64)
        best_points = np.empty((0, kparams.means.shape[1]))
        for start, X, sample_weight in self.chunks():
            lse, _, _ = score_chunk(X, kparams, n_threads=self.n_threads)
            if sample_weight.size:
                lse = np.where(sample_weight > 0, lse, np.inf)
            take = min(n_keep, len(lse))
            local = np.argpartition(lse, take - 1)[:take]
            local = local[np.isfinite(lse[local])]
            best_ll = np.concatenate([best_ll, lse[local]])
            best_rows = np.concatenate([best_rows, start + local])
            best_points = np.concatenate([best_points, np.asarray(X[local], dtype=np.float64)])
            # Stable order (log-likelihood, then row index): ties resolve the same way for
            # any chunking, so the choice is deterministic.
            order = np.lexsort((best_rows, best_ll))[:n_keep]
            best_ll, best_rows, best_points = best_ll[order], best_rows[order], best_points[order]
        if best_rows.size == 0:
            raise ValueError("on_degenerate='reinit' found no row with a positive weight.")
        chosen = []
        for j in range(len(best_rows)):
            if not any(np.array_equal(best_points[j], best_points[c]) for c in chosen):
                chosen.append(j)
            if len(chosen) == n_wanted:
                break
        # Fewer distinct rows than collapsed components: reuse them in order.
        chosen = [chosen[i % len(chosen)] for i in range(n_wanted)]
        return best_rows[chosen], best_points[chosen]

    def _record(self, new_events):
        self.events.extend(new_events)
        _warn(new_events)


def initialise(action, make_params, *, reg_covar, random_state, chunks=None):
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
    chunks : callable, optional
        ``chunks()`` over the rows, to measure the data's variance when ``reg_covar == 0``.

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
    >>> from fastgmm.degenerate import initialise
    >>> from fastgmm.em import ArrayChunks
    >>> from fastgmm.stats import MixtureParams, precision_cholesky
    >>> X = np.array([[0.0, 1.0], [2.0, 1.0], [4.0, 3.0], [6.0, 3.0]])
    >>> def make_params(reg_covar):
    ...     covariances = np.zeros((1, 2)) + reg_covar
    ...     factors = precision_cholesky(covariances, "diag")
    ...     return MixtureParams(np.ones(1), X[:1].copy(), covariances, factors, "diag")
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     params, events = initialise("reg", make_params, reg_covar=0.0,
    ...                                 random_state=np.random.RandomState(0),
    ...                                 chunks=ArrayChunks(X).chunks)
    >>> events[0]["action"], events[0]["reg_covar"], caught[0].category.__name__
    ('reg', 3e-06, 'DegenerateComponentWarning')
    """
    if action == "raise":
        return make_params(reg_covar), []
    state = random_state.get_state()
    try:
        return make_params(reg_covar), []
    except ValueError as exc:
        if not str(exc).startswith(_ILL_DEFINED):
            raise
        failure = exc
    value = float(reg_covar)
    base = value * 10.0 if value > 0.0 else 1e-6 * _mean_variance(chunks)
    value = base
    while np.isfinite(value):
        random_state.set_state(state)
        try:
            params = make_params(value)
        except ValueError as exc:
            if not str(exc).startswith(_ILL_DEFINED):
                raise
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


def _mean_variance(chunks) -> float:
    """Mean per-feature variance of the rows (weighted), 1.0 if unknown or zero."""
    if chunks is None:
        return 1.0
    n = 0.0
    shift = total = total_sq = None
    for _, X, w in chunks():
        X = np.asarray(X, dtype=np.float64)
        weights = w if w.size else np.ones(len(X))
        if shift is None:
            shift = X[0].copy()  # moments about a row keep their digits far from the origin
            total = np.zeros_like(shift)
            total_sq = np.zeros_like(shift)
        diff = X - shift
        n += float(weights.sum())
        total += weights @ diff
        total_sq += weights @ diff**2
    if shift is None or not n > 0.0:
        return 1.0
    variance = float(np.mean(np.maximum(total_sq / n - (total / n) ** 2, 0.0)))
    return variance if np.isfinite(variance) and variance > 0.0 else 1.0


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


def _message(float32_hint):
    return _ILL_DEFINED + (_FLOAT32_HINT if float32_hint else "")


def _params(weights, means, covariances, ctype, float32_hint):
    prec_chol = precision_cholesky(covariances, ctype, float32_hint=float32_hint)
    return MixtureParams(weights, means, covariances, prec_chol, ctype)


def _component(covariances, ctype, k):
    return covariances if ctype == "tied" else covariances[k]


def _set_component(covariances, ctype, k, value):
    if ctype == "tied":
        return value
    covariances = covariances.copy()
    covariances[k] = value
    return covariances


def _shift_diagonal(matrix, ctype, value):
    """``matrix + value * I`` for a full/tied matrix, ``+ value`` for diagonal variances."""
    if ctype in ("full", "tied"):
        out = matrix.copy()
        out[np.diag_indices_from(out)] += value
        return out
    return matrix + value


def _add_to_component_diagonals(covariances, ctype, extra):
    if ctype == "tied":
        return _shift_diagonal(covariances, ctype, float(extra[0]))
    covariances = covariances.copy()
    for k in np.flatnonzero(extra > 0):
        covariances[k] = _shift_diagonal(covariances[k], ctype, float(extra[k]))
    return covariances


def _factorises(matrix, ctype) -> bool:
    """Whether one component's covariance has a Cholesky factor (positive variances)."""
    if not np.all(np.isfinite(matrix)):
        return False
    if ctype in ("full", "tied"):
        try:
            linalg.cholesky(matrix, lower=True)
        except linalg.LinAlgError:
            return False
        return True
    return bool(np.all(matrix > 0.0))


def _failing_components(covariances, ctype) -> np.ndarray:
    """Boolean mask of the covariances (one for 'tied') without a Cholesky factor."""
    if ctype == "tied":
        return np.array([not _factorises(covariances, ctype)])
    return np.array([not _factorises(c, ctype) for c in covariances], dtype=bool)


def _check_finite_covariances(covariances, ctype, failing):
    """Overflowed covariances cannot be repaired by any policy: say why, plainly."""
    for k in np.flatnonzero(failing):
        if not np.all(np.isfinite(_component(covariances, ctype, k))):
            raise ValueError(
                f"The covariance of component {k} is not finite: the data's values are too "
                "large to square in float64. Scale the input data."
            )


def _pooled_covariance(stats, ctype, reg_covar):
    """A covariance of the data as a whole (diagonal), in the layout of ``ctype``."""
    variances = pooled_variances(stats) + reg_covar
    if ctype == "full":
        return np.diag(variances)
    if ctype == "diag":
        return variances
    return np.float64(variances.mean())
