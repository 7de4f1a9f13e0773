"""scikit-learn's own ``test_bayesian_mixture.py``, against ``fastgmm.BayesianGaussianMixture``."""

from sklearn_suite import Suite, load_suite

SUITE = Suite(
    module="sklearn.mixture.tests.test_bayesian_mixture",
    estimators=("BayesianGaussianMixture",),
    deselected={
        "test_log_dirichlet_norm": "tests scikit-learn's private helper _log_dirichlet_norm",
        "test_log_wishart_norm": "tests scikit-learn's private helper _log_wishart_norm",
    },
)

globals().update(load_suite(SUITE))
