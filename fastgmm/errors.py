"""Exceptions that name what went wrong, so that callers test types, not message prefixes.

Both are ``ValueError`` subclasses: code written for scikit-learn, which raises ``ValueError``
with the same message, keeps working.
"""

from __future__ import annotations

__all__ = [
    "CovarianceOverflowError",
    "EmptyComponentError",
    "IllDefinedCovarianceError",
    "with_float32_hint",
]

#: scikit-learn's message for a covariance without Cholesky factor.
ILL_DEFINED_MESSAGE = (
    "Fitting the mixture model failed because some components have "
    "ill-defined empirical covariance (for instance caused by singleton "
    "or collapsed samples). Try to decrease the number of components, "
    "increase reg_covar, or scale the input data."
)
#: What scikit-learn appends for float32 data.
FLOAT32_HINT = (
    " The numerical accuracy can also be improved by passing float64 data instead of float32."
)
_OVERFLOW_MESSAGE = (
    "Fitting the mixture model failed because a covariance is not finite: the input values "
    "are too large to be squared in float64 (or too far from each other). Scale the input data."
)


class IllDefinedCovarianceError(ValueError):
    """A covariance has no Cholesky factor: it is not positive definite at working precision.

    Parameters
    ----------
    components : tuple of int or None
        The failing components; None when the failing covariance is shared by all of them
        (``'tied'``, and mclust's models with equal volume, shape and orientation).
    message : str, optional
        Defaults to scikit-learn's message.

    Examples
    --------
    >>> from fastgmm.errors import IllDefinedCovarianceError
    >>> error = IllDefinedCovarianceError((2,))
    >>> error.components, isinstance(error, ValueError), str(error).split(" because")[0]
    ((2,), True, 'Fitting the mixture model failed')
    """

    def __init__(self, components=None, message=ILL_DEFINED_MESSAGE):
        super().__init__(message)
        self.components = None if components is None else tuple(int(k) for k in components)


class EmptyComponentError(ValueError):
    """A component lost (almost) all its weight in a fit whose covariances stay regular anyway
    (under a conjugate prior), so no Cholesky factorisation fails to say so.

    R's mclust reports such fits as NA; model selection records them as failed candidates.

    Parameters
    ----------
    components : tuple of int
    message : str

    Examples
    --------
    >>> from fastgmm.errors import EmptyComponentError
    >>> error = EmptyComponentError((1,), "component 1 emptied")
    >>> error.components, isinstance(error, ValueError)
    ((1,), True)
    """

    def __init__(self, components, message):
        super().__init__(message)
        self.components = tuple(int(k) for k in components)


class CovarianceOverflowError(ValueError):
    """A covariance is not finite: the data are too large (or too far apart) to square.

    No policy can repair it (``on_degenerate`` re-raises it); the fix is to scale the data.

    Examples
    --------
    >>> from fastgmm.errors import CovarianceOverflowError
    >>> str(CovarianceOverflowError()).startswith("Fitting the mixture model failed")
    True
    """

    def __init__(self, message=_OVERFLOW_MESSAGE):
        super().__init__(message)


def with_float32_hint(error: IllDefinedCovarianceError) -> IllDefinedCovarianceError:
    """The same error with scikit-learn's float32 sentence appended (once).

    The estimators call this where they report a failed fit of float32 data, so the kernels and
    M-steps never need to know the data's dtype to word their errors.

    Examples
    --------
    >>> from fastgmm.errors import IllDefinedCovarianceError, with_float32_hint
    >>> str(with_float32_hint(IllDefinedCovarianceError())).endswith("instead of float32.")
    True
    """
    message = str(error)
    if not message.endswith(FLOAT32_HINT):
        message += FLOAT32_HINT
    return IllDefinedCovarianceError(error.components, message)
