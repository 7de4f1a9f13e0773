"""Information criteria for choosing a mixture, with scikit-learn's sign: lower is better.

``bic = -2 log L + p log n``, ``aic = -2 log L + 2 p`` and the integrated completed likelihood
``icl = bic - 2 sum_i log max_k r_ik`` (Biernacki, Celeux & Govaert 2000): BIC plus the entropy
of the hard assignments, which penalises overlapping components. R's mclust reports BIC and ICL
with the opposite sign (higher is better): its values are ours negated.
"""

from __future__ import annotations

import math

__all__ = ["CRITERIA", "DEFAULT_N_COMPONENTS", "aic", "bic", "icl"]

#: The criteria that model selection can minimise.
CRITERIA = ("bic", "aic", "icl")

#: The numbers of components tried when the caller does not say.
DEFAULT_N_COMPONENTS = tuple(range(1, 11))


def bic(log_likelihood: float, n_parameters: int, n_samples: int) -> float:
    """Bayesian information criterion from the total log-likelihood (lower is better).

    Examples
    --------
    >>> from fastgmm.criteria import bic
    >>> round(bic(-100.0, 5, 50), 4)
    219.5601
    """
    return -2.0 * log_likelihood + n_parameters * math.log(n_samples)


def aic(log_likelihood: float, n_parameters: int) -> float:
    """Akaike information criterion from the total log-likelihood (lower is better).

    Examples
    --------
    >>> from fastgmm.criteria import aic
    >>> aic(-100.0, 5)
    210.0
    """
    return -2.0 * log_likelihood + 2.0 * n_parameters


def icl(log_likelihood: float, n_parameters: int, n_samples: int, log_max_resp: float) -> float:
    """Integrated completed likelihood criterion (lower is better).

    ``log_max_resp`` is ``sum_i w_i log max_k r_ik``, the log-probability of the hard
    assignments (0 when every row belongs surely to one component, so that ICL equals BIC).

    Examples
    --------
    >>> from fastgmm.criteria import bic, icl
    >>> icl(-100.0, 5, 50, 0.0) == bic(-100.0, 5, 50)
    True
    >>> round(icl(-100.0, 5, 50, -3.0) - bic(-100.0, 5, 50), 6)
    6.0
    """
    return bic(log_likelihood, n_parameters, n_samples) - 2.0 * log_max_resp
