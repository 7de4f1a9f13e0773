"""The one EM loop: runs advance together, one pass over the data per iteration.

Every fit goes through :func:`run_em`: a ``GaussianMixture`` fit (one run per initialisation),
model selection (every candidate of the grid, all advancing in the same passes), the outlier
detector and the variational mixture, on any provider (arrays, streamed files, Dask blocks).
An :class:`EMRun` holds one run's state; what differs between estimators is the *fitter*
it is given (:class:`MaximumLikelihood` here; the variational mixture brings its own), which
says what a pass must compute, how the M-step turns statistics into parameters, and what the
lower bound is::

    params ──► provider.collect([fitter.request(params), ...]) ──► stats   # one pass, all runs
    params ◄── fitter.m_step(stats, previous)                               # per run
    lower bound, convergence, on_degenerate, interrupt check                # per run, here

As in scikit-learn, the lower bound of iteration ``t`` is computed from the E-step of the
parameters *entering* iteration ``t`` (for maximum likelihood: their mean log-likelihood), and
the run has converged when it changed by less than ``tol``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from . import _interrupts
from .covariance import CovarianceModel
from .providers import SCORE, SOFT, StatsRequest
from .stats import DIAG, FULL, POOLED, MixtureParams, SufficientStats, scatter

__all__ = ["EMRun", "MaximumLikelihood", "run_em"]

_NON_FINITE = (
    "The log-likelihood became non-finite during EM; the data or the parameters contain values "
    "too large for float64."
)


class MaximumLikelihood:
    """The fitter of ``GaussianMixture``: maximum-likelihood EM for one covariance model.

    Parameters
    ----------
    model : CovarianceModel
    reg_covar : float
        Added to the diagonal of every covariance estimate.
    dtype : numpy dtype
        The data's dtype (scikit-learn's ``10 eps`` guard on empty components uses it).
    prior : optional
        A conjugate prior for MAP estimates (models that support one).
    missing : bool
        Rows may hold NaN, marginalised out (``missing='marginalize'``, see
        :mod:`fastgmm.missing`): the passes' requests say so, and the lower bound is then the
        observed-data log-likelihood.

    Examples
    --------
    >>> import numpy as np
    >>> from fastgmm.covariance import get_model
    >>> from fastgmm.em import MaximumLikelihood
    >>> from fastgmm.providers import ArrayChunks
    >>> fitter = MaximumLikelihood(get_model("diag"), reg_covar=1e-6)
    >>> X = np.array([[0.0, 1.0], [2.0, -1.0], [4.0, 1.0]])
    >>> start = fitter.point_params(X[[0, 2]], n_samples=3)  # components on rows 0 and 2
    >>> start.covariances  # reg_covar on the diagonal: one row has no spread
    array([[1.e-06, 1.e-06],
           [1.e-06, 1.e-06]])
    >>> [stats] = ArrayChunks(X).collect([fitter.request(start)])
    >>> stats.nk.round(3)  # the middle row is as near to both: half of it goes to each
    array([1.5, 1.5])
    >>> fitter.m_step(stats, start).means.round(3)
    array([[0.667, 0.333],
           [3.333, 0.333]])
    """

    want_entropy = False

    def __init__(
        self,
        model: CovarianceModel,
        *,
        reg_covar: float,
        dtype=np.float64,
        prior=None,
        missing=False,
    ):
        self.model = model
        self.reg_covar = float(reg_covar)
        self.dtype = np.dtype(dtype)
        self.prior = prior
        self.missing = bool(missing)

    @property
    def kind(self) -> int:
        """The statistics kind the M-step needs."""
        return self.model.statistics

    def layout(self, params: MixtureParams):
        """The kernels' layout of ``params``."""
        return self.model.layout(params)

    def request(self, params: MixtureParams, *, mode: int = SOFT) -> StatsRequest:
        """What an EM pass must compute for ``params``."""
        shift = np.ascontiguousarray(params.means, dtype=np.float64)
        return StatsRequest(self.layout(params), shift, self.kind, mode, missing=self.missing)

    def score_request(self, params: MixtureParams) -> StatsRequest:
        """A pass that only scores ``params`` (their log-likelihood, in float64)."""
        return self.request(params, mode=SCORE)

    def m_step(self, stats: SufficientStats, previous=None, *, reg=None) -> MixtureParams:
        """Parameters from statistics; ``reg`` overrides ``reg_covar`` per component (K,).

        Raises
        ------
        IllDefinedCovarianceError
            A covariance is not positive definite.
        """
        nk, means, covariance = scatter(stats, self.reg_covar if reg is None else reg, self.dtype)
        means, covariances, factors, decomposition = self.model.estimate(
            nk, means, covariance, previous=previous, prior=self.prior
        )
        return MixtureParams(
            nk / nk.sum(), means, covariances, factors, self.model.name, decomposition
        )

    def initial_params(self, stats: SufficientStats, reg=None) -> MixtureParams:
        """The M-step of an initialisation: weights ``nk / n_samples``, not renormalised.

        scikit-learn's ``_initialize`` keeps its ``10 eps``-guarded counts over the number of
        rows as the first weights; the first E-step normalises them. Kept for identical lower
        bounds.
        """
        params = self.m_step(stats, reg=reg)
        params.weights = (stats.nk + 10 * np.finfo(self.dtype).eps) / stats.weight_sum
        return params

    def point_params(self, points: np.ndarray, n_samples: int, reg=None) -> MixtureParams:
        """Components placed on single rows (scikit-learn's one-hot initialisations).

        Each component's statistics are those of one row: count ``1 + 10 eps``, mean the row
        divided by that count (scikit-learn's arithmetic), scatter zero, so its covariance is
        ``reg_covar`` times the identity.
        """
        n_components, n_features = points.shape
        nk = np.full(n_components, 1.0 + 10 * np.finfo(self.dtype).eps)
        reg = self.reg_covar if reg is None else float(np.max(reg))
        kind_shape = {
            FULL: (n_components, n_features, n_features),
            DIAG: (n_components, n_features),
            POOLED: (n_features, n_features),
        }[self.kind]
        covariance = np.zeros(kind_shape)
        if self.kind == DIAG:
            covariance += reg
        else:
            covariance[..., np.arange(n_features), np.arange(n_features)] = reg
        means = np.asarray(points, dtype=np.float64) / nk[:, None]
        means, covariances, factors, decomposition = self.model.estimate(
            nk, means, covariance, prior=self.prior
        )
        return MixtureParams(
            nk / n_samples, means, covariances, factors, self.model.name, decomposition
        )

    def lower_bound(self, stats: SufficientStats, params: MixtureParams) -> float:
        """The mean log-likelihood of the E-step's parameters."""
        return stats.mean_log_likelihood


class EMRun:
    """One EM run from one start, advanced one pass at a time by :func:`run_em`.

    Parameters
    ----------
    fitter : MaximumLikelihood or another fitter
    params : MixtureParams
        The starting parameters.
    tol, max_iter : float, int
        As in scikit-learn.
    lower_bound : float
        The lower bound before the first iteration (``-inf`` unless warm-starting).
    mclust : bool
        mclust's convergence (``emControl(tol = ...)``): converged when the total lower bound
        (the mean times the weight of the rows) changed by at most ``tol * (1 + |total|)``,
        and the run then keeps the parameters whose E-step met the test. By default,
        scikit-learn's: the mean changed by less than ``tol``, and the run keeps the M-step
        that followed. (The criteria of a slowly converging fit depend on which: ICL to first
        order in that last step.)
    degenerate : fastgmm.degenerate.DegenerateHandler, optional
        Runs the M-step under an ``on_degenerate`` policy (default: scikit-learn's, raise).
        When it acts, that iteration cannot be the last: the changed parameters have not been
        scored yet.
    on_iteration : callable, optional
        ``on_iteration(n_iter, change)`` after each iteration (verbose output, progress).

    Attributes
    ----------
    params, lower_bound, lower_bounds, n_iter, converged, done, error
        The run's state; ``error`` holds the exception that ended it when :func:`run_em` was
        told to catch it.

    Examples
    --------
    >>> import numpy as np
    >>> from fastgmm.covariance import get_model
    >>> from fastgmm.em import EMRun, MaximumLikelihood, run_em
    >>> from fastgmm.providers import ArrayChunks
    >>> from fastgmm.stats import MixtureParams
    >>> X = np.array([[0.0, 0.0], [0.2, 0.1], [5.0, 5.0], [5.2, 4.9]])
    >>> start = MixtureParams(np.array([0.5, 0.5]), np.array([[0.0, 0.0], [5.0, 5.0]]),
    ...                       np.ones((2, 2)), np.ones((2, 2)), "diag")
    >>> fitter = MaximumLikelihood(get_model("diag"), reg_covar=1e-6)
    >>> run = EMRun(fitter, start, tol=1e-3, max_iter=100)
    >>> run_em(ArrayChunks(X), [run])
    3
    >>> run.converged, run.params.means.round(2)
    (True, array([[0.1 , 0.05],
           [5.1 , 4.95]]))
    """

    def __init__(
        self,
        fitter,
        params: MixtureParams,
        *,
        tol: float,
        max_iter: int,
        lower_bound: float = -np.inf,
        degenerate=None,
        on_iteration: Callable[[int, float], None] | None = None,
        mclust: bool = False,
    ):
        self.fitter = fitter
        self.mclust = bool(mclust)
        self.params = params
        self.tol = float(tol)
        self.max_iter = int(max_iter)
        self.lower_bound = lower_bound
        self.lower_bounds: list[float] = []
        self.n_iter = 0
        self.converged = False
        self.done = self.max_iter == 0
        self.error: BaseException | None = None
        self.degenerate = degenerate
        self.on_iteration = on_iteration
        self.seconds = 0.0

    def request(self) -> StatsRequest:
        """What this run needs from the next pass."""
        return self.fitter.request(self.params)

    def advance(self, stats: SufficientStats, provider=None, *, n_threads=None) -> None:
        """Take the statistics of the pass: lower bound, M-step, convergence test."""
        self.n_iter += 1
        previous = self.lower_bound
        if not np.isfinite(stats.log_lik):
            raise ValueError(_NON_FINITE)
        repaired = False
        if self.degenerate is None:
            params = self.fitter.m_step(stats, self.params)
        else:
            params, repaired = self.degenerate.m_step(
                stats, self.params, self.n_iter, provider, n_threads=n_threads
            )
        lower_bound = self.fitter.lower_bound(stats, params)
        if not np.isfinite(lower_bound):
            raise ValueError(_NON_FINITE)
        previous_params = self.params
        self.params = params
        self.lower_bound = lower_bound
        self.lower_bounds.append(lower_bound)
        change = lower_bound - previous
        if self.on_iteration is not None:
            self.on_iteration(self.n_iter, change)
        if self.mclust:
            # mclust's test on the total log-likelihood, written without forming it.
            total = stats.weight_sum
            converged = abs(change) * total <= self.tol * (1.0 + abs(lower_bound) * total)
            if converged and not repaired:
                self.params = previous_params
        else:
            converged = abs(change) < self.tol
        if converged and not repaired:
            self.converged = True
            self.done = True
        elif self.n_iter >= self.max_iter:
            self.done = True


def run_em(
    provider,
    runs: Sequence[EMRun],
    *,
    n_threads: int | None = None,
    catch: tuple = (),
    on_pass: Callable[[list[EMRun]], None] | None = None,
) -> int:
    """Advance every run until each has converged, failed or used its ``max_iter``.

    Each iteration is one pass over the provider's rows for all the runs still active. A run
    whose step raises one of the ``catch`` exceptions keeps it in ``run.error`` and stops; other
    exceptions propagate. Returns the number of passes.

    Examples
    --------
    Two runs from different starts advance in the same passes:

    >>> import numpy as np
    >>> from fastgmm.covariance import get_model
    >>> from fastgmm.em import EMRun, MaximumLikelihood, run_em
    >>> from fastgmm.providers import ArrayChunks
    >>> from fastgmm.stats import MixtureParams
    >>> X = np.array([[0.0], [0.2], [5.0], [5.2]])
    >>> fitter = MaximumLikelihood(get_model("spherical"), reg_covar=1e-6)
    >>> starts = [MixtureParams(np.array([0.5, 0.5]), np.array(m), np.ones(2), np.ones(2),
    ...                         "spherical") for m in ([[0.0], [5.0]], [[1.0], [4.0]])]
    >>> runs = [EMRun(fitter, start, tol=1e-6, max_iter=50) for start in starts]
    >>> n_passes = run_em(ArrayChunks(X), runs)
    >>> n_passes == max(run.n_iter for run in runs), [run.converged for run in runs]
    (True, [True, True])
    """
    n_passes = 0
    while True:
        active = [run for run in runs if not run.done]
        if not active:
            return n_passes
        # A command-line signal whose exception was dropped stops the fit here, at the latest
        # (a no-op outside the command line, see fastgmm._interrupts).
        _interrupts.check()
        requests = [run.request() for run in active]
        results = provider.collect(requests, n_threads=n_threads)
        n_passes += 1
        for run, request, stats in zip(active, requests, results):
            run.seconds += request.seconds
            try:
                run.advance(stats, provider, n_threads=n_threads)
            except catch as exc:
                run.error = exc
                run.done = True
        if on_pass is not None:
            on_pass(active)
