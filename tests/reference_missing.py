"""Plain-NumPy reference for EM with missing entries (slow, per row, obviously correct).

Written from Ghahramani & Jordan (1994), section 3, in the covariance form (the kernels use the
precision form, see :mod:`fastgmm._kernels.missing`), one row and one component at a time, with
no grouping of rows by pattern.
"""

import numpy as np
from reference import covariances_of_type
from scipy.special import logsumexp


def conditional(x, mean, cov):
    """For one row ``x`` (NaN = missing) and one Gaussian: the log-density of the observed
    entries, the filled row ``x_hat`` and the conditional covariance (zero outside the missing
    block)."""
    observed = ~np.isnan(x)
    missing = ~observed
    n_features = len(x)
    cov_oo = cov[np.ix_(observed, observed)]
    diff = x[observed] - mean[observed]
    solved = np.linalg.solve(cov_oo, diff)
    _, logdet = np.linalg.slogdet(cov_oo)
    log_density = -0.5 * (observed.sum() * np.log(2 * np.pi) + logdet + diff @ solved)
    x_hat = x.copy()
    x_hat[missing] = mean[missing] + cov[np.ix_(missing, observed)] @ solved
    cond = np.zeros((n_features, n_features))
    cov_mo = cov[np.ix_(missing, observed)]
    cond[np.ix_(missing, missing)] = cov[np.ix_(missing, missing)] - cov_mo @ np.linalg.solve(
        cov_oo, cov_mo.T
    )
    return log_density, x_hat, cond


def e_step(X, weights, means, cov_matrices):
    """Per row: responsibilities, log-likelihood, filled rows and conditional covariances.

    Returns ``resp`` (N, K), ``log_lik`` (N,), ``x_hat`` (N, K, D), ``cond`` (N, K, D, D).
    """
    X = np.asarray(X, dtype=float)
    n_samples, n_features = X.shape
    n_components = len(weights)
    lp = np.empty((n_samples, n_components))
    x_hat = np.empty((n_samples, n_components, n_features))
    cond = np.empty((n_samples, n_components, n_features, n_features))
    for i in range(n_samples):
        for k in range(n_components):
            log_density, x_hat[i, k], cond[i, k] = conditional(X[i], means[k], cov_matrices[k])
            lp[i, k] = np.log(weights[k]) + log_density
    log_lik = logsumexp(lp, axis=1)
    return np.exp(lp - log_lik[:, None]), log_lik, x_hat, cond


def statistics(resp, x_hat, cond, shift, sample_weight=None):
    """Expected complete-data statistics about ``shift``: ``nk``, ``s1`` and full ``s2``."""
    n_samples = resp.shape[0]
    sw = np.ones(n_samples) if sample_weight is None else np.asarray(sample_weight, float)
    r = resp * sw[:, None]
    nk = r.sum(axis=0)
    centred = x_hat - shift[None]
    s1 = np.einsum("nk,nkd->kd", r, centred)
    s2 = np.einsum("nk,nkd,nke->kde", r, centred, centred) + np.einsum("nk,nkde->kde", r, cond)
    return nk, s1, s2


def m_step(nk, s1, s2, shift, covariance_type, reg_covar):
    """Parameters from the expected statistics (the textbook M-step)."""
    means = shift + s1 / nk[:, None]
    offset = s1 / nk[:, None]
    full = s2 / nk[:, None, None] - offset[:, :, None] * offset[:, None, :]
    return nk / nk.sum(), means, covariances_of_type(full, nk, covariance_type, reg_covar)


def em_step(X, weights, means, cov_matrices, covariance_type, reg_covar, sample_weight=None):
    """One exact EM step; returns the new parameters and the mean observed-data log-likelihood
    of the parameters entering it."""
    resp, log_lik, x_hat, cond = e_step(X, weights, means, cov_matrices)
    sw = np.ones(len(X)) if sample_weight is None else np.asarray(sample_weight, float)
    nk, s1, s2 = statistics(resp, x_hat, cond, np.asarray(means, float), sample_weight)
    return m_step(nk, s1, s2, np.asarray(means, float), covariance_type, reg_covar), float(
        sw @ log_lik / sw.sum()
    )


def impute(X, weights, means, cov_matrices):
    """Conditional means and variances of the missing entries under the mixture."""
    resp, _, x_hat, cond = e_step(X, weights, means, cov_matrices)
    mean = np.einsum("nk,nkd->nd", resp, x_hat)
    variances = np.einsum("nkdd->nkd", cond)
    var = np.einsum("nk,nkd->nd", resp, variances + (x_hat - mean[:, None]) ** 2)
    return mean, var
