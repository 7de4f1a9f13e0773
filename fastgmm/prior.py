"""mclust's conjugate prior for a fit: its hyperparameters from the data, in one pass.

``GaussianMixture(prior='default')`` and ``select_model(..., prior='default')`` give MAP
estimates under the prior of Fraley & Raftery (2007, "Bayesian regularization for normal
mixture estimation and model-based clustering"), with mclust's default hyperparameters
(``defaultPrior``: shrinkage 0.01, the data's mean, D + 2 degrees of freedom, a scale from the
data's covariance divided by ``K^(2/D)``; see
:class:`fastgmm.covariance.ConjugatePrior`). Those need the data's mean and covariance, which
:func:`data_moments` takes in one pass of any provider (arrays, files, Dask). The M-steps
themselves are the covariance models' (:mod:`fastgmm.covariance._mclust_msteps`), for the ten
models where mclust defines the prior (:data:`fastgmm.covariance.PRIOR_MODELS`).

Under the prior a component keeps a regular covariance however few rows it holds, so a
component can empty completely without any covariance failing; R's ``mclustBIC`` then reports
NA. The M-step fails such a component the same way (:data:`PRIOR_EMPTY_WEIGHT` rows,
:class:`fastgmm.errors.EmptyComponentError`).
"""

from __future__ import annotations

import numpy as np

from .covariance import PRIOR_MODELS, ConjugatePrior
from .covariance._mclust import PRIOR_EMPTY_WEIGHT
from .providers import HARD, StatsRequest
from .stats import FULL, SharedLayout, symmetrise_upper

__all__ = ["PRIOR_EMPTY_WEIGHT", "check_prior_model", "data_moments", "resolve_prior"]


def data_moments(provider, *, requests=(), n_threads=None):
    """The (weighted) mean and sample covariance (``n - 1`` denominator) of every row, in one
    pass that also answers ``requests``.

    Returns
    -------
    mean : ndarray of shape (n_features,)
    covariance : ndarray of shape (n_features, n_features)
    answers : list
        The answers to ``requests``.

    Examples
    --------
    >>> import numpy as np
    >>> from fastgmm.prior import data_moments
    >>> from fastgmm.providers import ArrayChunks
    >>> X = np.array([[0.0, 0.0], [2.0, 0.0], [0.0, 4.0], [2.0, 4.0]])
    >>> mean, covariance, _ = data_moments(ArrayChunks(X))
    >>> mean, bool(np.allclose(covariance, np.cov(X, rowvar=False)))
    (array([1., 2.]), True)
    """
    from .init import _first_row

    n_features = provider.n_features
    # Moments about a row of the data keep their digits for data far from the origin.
    origin = np.ascontiguousarray(_first_row(provider)[None, :], dtype=np.float64)
    one = SharedLayout.diagonal(np.ones(1), origin, np.ones((1, n_features)))
    answers = provider.collect(
        [StatsRequest(one, origin, FULL, HARD), *requests], n_threads=n_threads
    )
    stats = answers[0]
    total = float(stats.nk[0])
    offset = stats.s1[0] / total
    scatter = symmetrise_upper(stats.s2[0]) - total * np.outer(offset, offset)
    covariance = scatter / (total - 1.0) if total > 1.0 else np.zeros_like(scatter)
    return origin[0] + offset, covariance, answers[1:]


def check_prior_model(model) -> str:
    """The model's mclust letters if mclust defines its prior, else a ``ValueError``.

    Examples
    --------
    >>> from fastgmm.covariance import get_model
    >>> from fastgmm.prior import check_prior_model
    >>> check_prior_model(get_model("VEV"))
    'VEV'
    """
    letters = getattr(model, "mclust_name", None)
    if letters not in PRIOR_MODELS:
        raise ValueError(
            f"A conjugate prior is defined for mclust's models {', '.join(sorted(PRIOR_MODELS))}, "
            f"not for covariance_type={model.name!r} (scikit-learn's 'spherical', 'diag', "
            "'tied' and 'full' are mclust's 'VII', 'VVI', 'EEE' and 'VVV')."
        )
    return letters


def resolve_prior(prior, model, n_components: int, n_features: int, moments=None):
    """The :class:`~fastgmm.covariance.ConjugatePrior` a fit uses, or None.

    Parameters
    ----------
    prior : None, 'default' or ConjugatePrior
        'default' is mclust's ``defaultPrior`` from ``moments`` (the data's mean and
        covariance, see :func:`data_moments`) for ``model`` and ``n_components``.
    model : CovarianceModel
        One of mclust's models where the prior is defined.

    Raises
    ------
    ValueError
        For a model without a prior (scikit-learn's four names: use mclust's VII, VVI, EEE or
        VVV), or a prior whose shape does not suit the model.

    Examples
    --------
    >>> import numpy as np
    >>> from fastgmm.covariance import get_model
    >>> from fastgmm.prior import resolve_prior
    >>> moments = (np.zeros(2), 4.0 * np.eye(2))
    >>> resolve_prior("default", get_model("EEE"), 4, 2, moments).scale
    array([[1., 0.],
           [0., 1.]])
    >>> resolve_prior(None, get_model("full"), 4, 2) is None
    True
    """
    if prior is None:
        return None
    letters = check_prior_model(model)
    if isinstance(prior, str):
        if prior != "default":
            raise ValueError(f"prior must be None, 'default' or a ConjugatePrior, got {prior!r}.")
        mean, covariance = moments
        return ConjugatePrior.from_moments(mean, covariance, n_components, letters)
    if not isinstance(prior, ConjugatePrior):
        raise ValueError(
            f"prior must be None, 'default' or a ConjugatePrior, got {type(prior).__name__}."
        )
    prior._check(letters, n_features)
    return prior
