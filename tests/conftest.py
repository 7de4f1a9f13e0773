"""Shared fixtures: small data sets drawn from known mixtures, and the hypothesis profiles."""

import os

import numpy as np
import pytest
from hypothesis import settings

# "ci" (set by .ci/run): the property tests draw the same examples on every run, so that a
# landing does not depend on the luck of the draw; a failure found by a random run locally is
# then replayed deterministically by the example database. The default profile explores.
settings.register_profile("ci", derandomize=True, database=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")


def make_mixture_data(n_samples=600, n_features=3, n_components=3, seed=0, offset=0.0):
    """Overlapping Gaussian clusters with random orientations (float64, C order)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=4.0, size=(n_components, n_features))
    labels = rng.integers(n_components, size=n_samples)
    factors = rng.normal(size=(n_components, n_features, n_features)) * 0.5 + np.eye(n_features)
    noise = rng.normal(size=(n_samples, n_features))
    X = centres[labels] + np.einsum("nd,nde->ne", noise, factors[labels])
    return X + offset, labels


def initial_parameters(X, n_components, covariance_type, seed=1):
    """A deliberately imperfect explicit initialisation (the same for every implementation)."""
    rng = np.random.default_rng(seed)
    n_features = X.shape[1]
    means = X[rng.choice(len(X), n_components, replace=False)]
    weights = np.full(n_components, 1.0 / n_components)
    var = X.var(axis=0).mean()
    if covariance_type == "full":
        precisions = np.repeat(np.eye(n_features)[None] / var, n_components, axis=0)
    elif covariance_type == "tied":
        precisions = np.eye(n_features) / var
    elif covariance_type == "diag":
        precisions = np.full((n_components, n_features), 1.0 / var)
    else:
        precisions = np.full(n_components, 1.0 / var)
    return {"weights_init": weights, "means_init": means, "precisions_init": precisions}


@pytest.fixture(scope="session")
def blobs():
    return make_mixture_data()[0]
