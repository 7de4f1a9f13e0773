"""Covariance models: one object per parameterisation, in one registry.

A covariance model says which statistics its M-step needs, runs that M-step, counts its free
parameters, lays its parameters out for the E-step kernels and maps them to the estimators'
attributes (see :class:`CovarianceModel`). The EM loop, the initialisation, the data providers
and the kernels are shared by every model, so a new model is one new object here.

scikit-learn's four types keep scikit-learn's attribute shapes: 'full', 'tied', 'diag' and
'spherical'.
"""

from __future__ import annotations

from .._names import COVARIANCE_TYPES
from ._base import CovarianceModel, cholesky_factors, precisions_cholesky_of
from ._sklearn import Diag, Full, Spherical, Tied

__all__ = [
    "COVARIANCE_TYPES",
    "CovarianceModel",
    "cholesky_factors",
    "get_model",
    "precisions_cholesky_of",
]

_REGISTRY: dict[str, CovarianceModel] = {
    model.name: model for model in (Full(), Tied(), Diag(), Spherical())
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
