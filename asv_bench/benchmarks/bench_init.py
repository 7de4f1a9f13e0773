"""Initialisation alone: ``fit`` with ``max_iter=0`` for each ``init_params`` method."""

from fastgmm import GaussianMixture

from . import SIZES, make_mixture, warm_jit

INIT_METHODS = ["kmeans", "k-means++", "random", "random_from_data"]


class Initialisation:
    """Time to the first parameters (k-means runs on a sample of at most 100,000 rows).

    The seed is fixed, so k-means takes the same number of Lloyd steps on every run of the same
    code: a change here is a change in speed or in the k-means algorithm itself.
    """

    params = (INIT_METHODS, ["full", "diag"])
    param_names = ["init_params", "covariance_type"]
    timeout = 300

    def setup(self, init_params, covariance_type):
        warm_jit("float64")
        n_samples, n_features, n_components = SIZES["medium"]
        self.X = make_mixture(n_samples, n_features, n_components, covariance_type).X
        self.n_components = n_components
        # An integer seed is re-read at each fit, so every repeat draws the same sample.
        self.model = GaussianMixture(
            n_components,
            covariance_type=covariance_type,
            init_params=init_params,
            max_iter=0,
            random_state=0,
        )

    def time_init(self, init_params, covariance_type):
        self.model.fit(self.X)
