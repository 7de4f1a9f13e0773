"""Plain-NumPy reference implementation of Gaussian-mixture EM (slow, obviously correct).

Written from the textbook formulas with dense matrices and explicit inverses, independent of
fastgmm's kernels and of scikit-learn, so that both can be checked against it.
"""

import numpy as np
from scipy.special import logsumexp


def covariance_matrices(covariances, covariance_type, n_components, n_features):
    """Dense (K, D, D) covariance matrices for any covariance type."""
    if covariance_type == "full":
        return np.asarray(covariances, dtype=float)
    if covariance_type == "tied":
        return np.repeat(np.asarray(covariances, dtype=float)[None], n_components, axis=0)
    if covariance_type == "diag":
        return np.stack([np.diag(c) for c in np.asarray(covariances, dtype=float)])
    return np.stack([np.eye(n_features) * c for c in np.asarray(covariances, dtype=float)])


def weighted_log_prob(X, weights, means, cov_matrices):
    """log w_k + log N(x | mu_k, Sigma_k) for every row and component."""
    X = np.asarray(X, dtype=float)
    n_features = X.shape[1]
    out = np.empty((X.shape[0], len(weights)))
    for k, (w, mu, cov) in enumerate(zip(weights, means, cov_matrices)):
        diff = X - mu
        maha = np.einsum("nd,de,ne->n", diff, np.linalg.inv(cov), diff)
        _, logdet = np.linalg.slogdet(cov)
        out[:, k] = np.log(w) - 0.5 * (n_features * np.log(2 * np.pi) + logdet + maha)
    return out


def e_step(X, weights, means, cov_matrices, sample_weight=None):
    """Responsibilities and the weighted mean log-likelihood."""
    lp = weighted_log_prob(X, weights, means, cov_matrices)
    lse = logsumexp(lp, axis=1)
    sw = np.ones(len(X)) if sample_weight is None else np.asarray(sample_weight, dtype=float)
    return np.exp(lp - lse[:, None]), float(sw @ lse / sw.sum())


def m_step(X, resp, covariance_type, reg_covar, sample_weight=None):
    """Weighted maximum-likelihood parameters given responsibilities."""
    X = np.asarray(X, dtype=float)
    sw = np.ones(len(X)) if sample_weight is None else np.asarray(sample_weight, dtype=float)
    r = resp * sw[:, None]
    nk = r.sum(axis=0)
    means = (r.T @ X) / nk[:, None]
    full = np.stack(
        [((r[:, k, None] * (X - means[k])).T @ (X - means[k])) / nk[k] for k in range(len(nk))]
    )
    return nk / nk.sum(), means, covariances_of_type(full, nk, covariance_type, reg_covar)


def covariances_of_type(full, nk, covariance_type, reg_covar):
    """A covariance type's estimates from each component's full scatter ``full`` (K, D, D)."""
    n_features = full.shape[1]
    if covariance_type == "full":
        return full + reg_covar * np.eye(n_features)
    if covariance_type == "tied":
        return np.tensordot(nk, full, axes=1) / nk.sum() + reg_covar * np.eye(n_features)
    if covariance_type == "diag":
        return np.stack([np.diag(c) for c in full]) + reg_covar
    return np.array([np.trace(c) / n_features for c in full]) + reg_covar


def fit(
    X, weights, means, covariances, covariance_type, *, n_iter, reg_covar=1e-6, sample_weight=None
):
    """``n_iter`` EM iterations; returns the final parameters and the lower bounds."""
    n_components, n_features = np.shape(means)
    lower_bounds = []
    for _ in range(n_iter):
        mats = covariance_matrices(covariances, covariance_type, n_components, n_features)
        resp, lower_bound = e_step(X, weights, means, mats, sample_weight)
        lower_bounds.append(lower_bound)
        weights, means, covariances = m_step(X, resp, covariance_type, reg_covar, sample_weight)
    return weights, means, covariances, lower_bounds


def precisions_of(covariances, covariance_type):
    """The precisions (inverse covariances) in scikit-learn's shapes."""
    if covariance_type in ("full", "tied"):
        return np.linalg.inv(covariances)
    return 1.0 / np.asarray(covariances)
