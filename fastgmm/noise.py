"""A uniform noise component beside the Gaussian ones (mclust's ``noise``).

Banfield & Raftery (1993) and Dasgupta & Raftery (1998) model scattered outliers as one more
mixture component with the constant density ``1/V`` over the data's region, ``V`` mclust's
``hypvol``: the smaller of the bounding box and the bounding box in principal-component
coordinates (:mod:`fastgmm.covariance._hypervolume`). Its weight ``pi_0`` is estimated with the
others; nothing else is.

Design: the engine needs no code of its own for it. :class:`WithNoise` is the maximum-likelihood
fitter with one change: its layouts (:func:`with_noise`) append a component whose precision is
zero and whose constant is ``log(pi_0 / V)``, so every E-step kernel (feature map, factor,
shared; arrays, files, Dask) computes its log-density ``log pi_0 - log V`` and its
responsibilities like any other component's, and the statistics come back with one more
component. The M-step drops that component's moments and keeps its count as the noise weight.
A model whose M-step needs only the pooled scatter (``'tied'``, ``'EEE'``) asks for
per-component statistics instead: the pooled sum would hold the noise rows' scatter too.

Outputs: ``predict_proba`` has the noise probability as its *last* column (mclust's ``z`` puts
it last too), ``predict`` labels the rows whose most probable component is the noise ``-1``,
and the number of free parameters gains two, as mclust counts them (the noise weight and the
volume).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .covariance._hypervolume import box_volume, principal_axes, smaller_volume
from .em import MaximumLikelihood
from .prior import data_moments
from .providers import SOFT, RangeRequest, StatsRequest
from .stats import FULL, NOISE_LABEL, POOLED, FactorLayout, MixtureParams, SufficientStats

__all__ = [
    "NOISE_LABEL",
    "NOISE_PARAMETERS",
    "WithNoise",
    "check_noise_init",
    "data_hypervolume",
    "gaussian_part",
    "make_fitter",
    "with_noise",
]

#: Free parameters a noise component adds, as mclust's ``nMclustParams(noise = TRUE)`` counts.
NOISE_PARAMETERS = 2


class WithNoise(MaximumLikelihood):
    """Maximum-likelihood EM for Gaussian components and one uniform noise component.

    Parameters
    ----------
    model : CovarianceModel
    reg_covar : float
    volume : float
        ``V``: the noise density is ``1/V`` everywhere (see :func:`data_hypervolume`).
    dtype : numpy dtype
    prior : optional
        As for :class:`fastgmm.em.MaximumLikelihood` (the noise weight has none).

    Examples
    --------
    Two tight clusters and a far row; the noise component takes the far row.

    >>> import numpy as np
    >>> from fastgmm.covariance import get_model
    >>> from fastgmm.em import EMRun, run_em
    >>> from fastgmm.noise import WithNoise
    >>> from fastgmm.providers import ArrayChunks
    >>> from fastgmm.stats import MixtureParams
    >>> rng = np.random.default_rng(0)
    >>> X = np.vstack([rng.normal(0, 0.1, (20, 2)), rng.normal(3, 0.1, (20, 2)), [[40.0, -40.0]]])
    >>> fitter = WithNoise(get_model("VII"), reg_covar=0.0, volume=80.0 * 80.0)
    >>> start = MixtureParams(np.array([0.45, 0.45]), np.array([[0.0, 0.0], [3.0, 3.0]]), None,
    ...                       None, "VII", noise_weight=0.1)
    >>> start.precisions_cholesky = np.repeat(np.eye(2)[None], 2, axis=0)
    >>> run = EMRun(fitter, start, tol=1e-8, max_iter=100)
    >>> _ = run_em(ArrayChunks(X), [run])
    >>> round(run.params.noise_weight * len(X), 3), run.params.weights.round(3)
    (1.0, array([0.488, 0.488]))
    """

    noise = True

    def __init__(self, model, *, reg_covar, volume, dtype=np.float64, prior=None):
        super().__init__(model, reg_covar=reg_covar, dtype=dtype, prior=prior)
        volume = float(volume)
        if not (np.isfinite(volume) and volume > 0.0):
            raise ValueError(f"The noise volume must be positive and finite, got {volume}.")
        self.volume = volume
        #: The same fitter without the noise component.
        self.gaussian = MaximumLikelihood(model, reg_covar=reg_covar, dtype=dtype, prior=prior)

    @property
    def kind(self) -> int:
        """Per-component statistics where the model would pool them (see the module docstring)."""
        return FULL if self.model.statistics == POOLED else self.model.statistics

    def layout(self, params: MixtureParams):
        return with_noise(self.model.layout(params), params.noise_weight, self.volume)

    def request(self, params: MixtureParams, *, mode: int = SOFT) -> StatsRequest:
        layout = self.layout(params)
        return StatsRequest(layout, layout.means, self.kind, mode)

    def m_step(self, stats: SufficientStats, previous=None, *, reg=None) -> MixtureParams:
        n_components = stats.nk.shape[0] - 1
        if reg is not None and np.ndim(reg):
            reg = np.asarray(reg)[:n_components]
        params = self.gaussian.m_step(
            gaussian_part(stats, self.model.statistics), previous, reg=reg
        )
        eps = 10 * float(np.finfo(self.dtype).eps)
        gaussian = float(stats.nk[:n_components].sum()) + n_components * eps
        noise = float(stats.nk[n_components]) + eps
        params.weights = params.weights * (gaussian / (gaussian + noise))
        params.noise_weight = noise / (gaussian + noise)
        return params

    def initial_params(self, stats: SufficientStats, reg=None) -> MixtureParams:
        n_components = stats.nk.shape[0] - 1
        params = self.gaussian.initial_params(gaussian_part(stats, self.model.statistics), reg)
        eps = 10 * float(np.finfo(self.dtype).eps)
        params.noise_weight = (float(stats.nk[n_components]) + eps) / stats.weight_sum
        return params

    def point_params(self, points, n_samples, reg=None):
        raise NotImplementedError(
            "A noise component starts from noise_init (see fastgmm.init.initial_params)."
        )


def make_fitter(
    model, *, reg_covar, dtype=np.float64, prior=None, noise_volume=None, missing=False
):
    """The maximum-likelihood fitter, with a noise component when ``noise_volume`` is given.

    Examples
    --------
    >>> from fastgmm.covariance import get_model
    >>> from fastgmm.noise import make_fitter
    >>> type(make_fitter(get_model("EII"), reg_covar=0.0, noise_volume=2.0)).__name__
    'WithNoise'
    """
    if noise_volume is None:
        return MaximumLikelihood(
            model, reg_covar=reg_covar, dtype=dtype, prior=prior, missing=missing
        )
    if missing:
        # The marginal E-step factorises each component's precision over the missing entries;
        # the noise component has none (its density is flat), and a flat density over a
        # row's observed entries alone would need the region's volume per pattern.
        raise ValueError(
            "A noise component (noise_init) cannot be combined with missing='marginalize'; "
            "impute the rows first, or fit without noise_init."
        )
    return WithNoise(model, reg_covar=reg_covar, volume=noise_volume, dtype=dtype, prior=prior)


def with_noise(layout, weight: float, volume: float):
    """``layout`` with a uniform component appended: zero precision, constant
    ``log(weight / volume)``.

    Examples
    --------
    >>> import numpy as np
    >>> from fastgmm.estep import score_chunk
    >>> from fastgmm.noise import with_noise
    >>> from fastgmm.stats import SharedLayout
    >>> layout = SharedLayout.diagonal(np.array([0.5]), np.zeros((1, 1)), np.ones((1, 1)))
    >>> noisy = with_noise(layout, 0.5, 100.0)
    >>> noisy.n_components, noisy.noise
    (2, True)
    >>> _, resp, _ = score_chunk(np.array([[0.0], [50.0]]), noisy, want_resp=True)
    >>> resp.round(3)  # the far row is noise
    array([[0.976, 0.024],
           [0.   , 1.   ]])
    """
    centre = layout.means.mean(axis=0)
    means = np.vstack([layout.means, centre])
    with np.errstate(divide="ignore"):
        log_const = np.append(layout.log_const, np.log(weight) - np.log(volume))
    n_features = means.shape[1]
    if isinstance(layout, FactorLayout):
        prec = np.concatenate([layout.prec, np.zeros((1, n_features, n_features))])
        return FactorLayout(means, log_const, noise=True, prec=prec)
    return dataclasses.replace(
        layout,
        means=means,
        log_const=log_const,
        _feature_maps={},
        _condition=None,
        noise=True,
        nu=np.vstack([layout.nu, layout.nu.mean(axis=0)]),
        scales=np.vstack([layout.scales, np.zeros((1, n_features))]),
    )


def gaussian_part(stats: SufficientStats, kind: int) -> SufficientStats:
    """The statistics of all components but the last (the noise), reduced to ``kind``.

    The totals (log-likelihood, weights, rows) stay those of every row.

    Examples
    --------
    >>> import numpy as np
    >>> from fastgmm.noise import gaussian_part
    >>> from fastgmm.stats import DIAG, SufficientStats
    >>> stats = SufficientStats(np.array([3.0, 1.0]), np.zeros((2, 1)), np.ones((2, 1, 1)),
    ...                         DIAG, np.zeros((2, 1)), -4.0, 4.0, 4)
    >>> part = gaussian_part(stats, DIAG)
    >>> part.nk, part.weight_sum
    (array([3.]), 4.0)
    """
    return SufficientStats(
        stats.nk[:-1],
        stats.s1[:-1],
        stats.s2[:-1],
        stats.kind,
        stats.shift[:-1],
        stats.log_lik,
        stats.weight_sum,
        stats.n_rows,
        stats.log_max_resp,
        stats.entropy,
    ).reduced(kind)


def data_hypervolume(provider, *, n_threads=None) -> float:
    """mclust's ``hypvol`` of every row of ``provider``, in two passes.

    The first pass gives the columns' ranges and the (weighted) covariance, the second the
    ranges along its principal axes; ``V`` is the smaller box (as
    :func:`fastgmm.covariance._hypervolume.hypervolume` computes it for an array in memory).

    Raises
    ------
    ValueError
        If the rows do not span every dimension (a zero volume) or their ranges overflow.

    Examples
    --------
    >>> import numpy as np
    >>> from fastgmm.covariance._hypervolume import hypervolume
    >>> from fastgmm.noise import data_hypervolume
    >>> from fastgmm.providers import ArrayChunks
    >>> X = np.random.default_rng(0).normal(size=(100, 3)) @ [[1, 1, 0], [0, 1, 0], [0, 0, 2]]
    >>> bool(np.isclose(data_hypervolume(ArrayChunks(X)), hypervolume(X), rtol=1e-12))
    True
    """
    mean, covariance, [box] = data_moments(provider, requests=[RangeRequest()], n_threads=n_threads)
    axes = principal_axes(covariance)
    [pc_box] = provider.collect([RangeRequest(origin=mean, axes=axes)], n_threads=n_threads)
    return smaller_volume(
        box_volume(box.lower, box.upper),
        box_volume(pc_box.lower, pc_box.upper),
        provider.n_features,
    )


def check_noise_init(noise_init, n_samples: int) -> np.ndarray:
    """``noise_init`` as a boolean mask of the ``n_samples`` rows, or a ``ValueError``.

    Examples
    --------
    >>> import numpy as np
    >>> from fastgmm.noise import check_noise_init
    >>> check_noise_init([0, 1, 0], 3)
    array([False,  True, False])
    >>> check_noise_init([True, False], 3)
    Traceback (most recent call last):
    ...
    ValueError: noise_init must be a boolean mask of the 3 rows of X, got shape (2,).
    """
    mask = np.asarray(noise_init)
    if mask.ndim != 1 or mask.shape[0] != n_samples:
        raise ValueError(
            f"noise_init must be a boolean mask of the {n_samples} rows of X, got shape "
            f"{mask.shape}."
        )
    if mask.dtype != bool:
        if mask.dtype.kind not in "biu" or not np.isin(mask, (0, 1)).all():
            raise ValueError("noise_init must hold booleans (True: the row starts as noise).")
        mask = mask.astype(bool)
    if mask.all():
        raise ValueError("noise_init marks every row as noise; the Gaussian components need rows.")
    return mask
