"""Covariance models: one object per parameterisation, in one registry.

A covariance model says which statistics its M-step needs, runs that M-step, counts its free
parameters, lays its parameters out for the E-step kernels and maps them to the estimators'
attributes (see :class:`CovarianceModel`). The EM loop, the initialisation, the data providers
and the kernels are shared by every model, so a new model is one new object here.

scikit-learn's four types keep scikit-learn's attribute shapes: 'full', 'tied', 'diag' and
'spherical'. mclust's fourteen models (:class:`MclustModel`: 'EII' ... 'VVV', among them
'VII', 'VVI', 'EEE' and 'VVV', the same maths as scikit-learn's four) have (K, D, D)
attributes and their decomposition into volumes, shapes and orientations; 'VVE_mclust' is
mclust 6.0.0's own VVE step (see :class:`MclustModel`).
"""

from __future__ import annotations

from .._names import COVARIANCE_TYPES, MCLUST_MODELS, MCLUST_VARIANTS
from ._base import CovarianceModel, cholesky_factors, precisions_cholesky_of
from ._mclust import MclustModel, mclust_models
from ._mclust_msteps import PRIOR_MODELS, ConjugatePrior, Decomposition
from ._sklearn import Diag, Full, Spherical, Tied

__all__ = [
    "COVARIANCE_TYPES",
    "PRIOR_MODELS",
    "ConjugatePrior",
    "CovarianceModel",
    "Decomposition",
    "MclustModel",
    "cholesky_factors",
    "get_model",
    "precisions_cholesky_of",
]

_REGISTRY: dict[str, CovarianceModel] = {
    model.name: model
    for model in (
        Full(),
        Tied(),
        Diag(),
        Spherical(),
        *mclust_models(MCLUST_MODELS + MCLUST_VARIANTS),
    )
}


def get_model(name: str) -> CovarianceModel:
    """The covariance model called ``name`` (one of :data:`COVARIANCE_TYPES`).

    Examples
    --------
    >>> from fastgmm.covariance import get_model
    >>> get_model("diag")
    <covariance model 'diag'>
    """
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(
            f"Unknown covariance type {name!r}; choose from {', '.join(COVARIANCE_TYPES)}."
        ) from None
