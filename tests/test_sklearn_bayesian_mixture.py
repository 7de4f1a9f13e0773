"""scikit-learn's own ``test_bayesian_mixture.py``, against ``fastgmm.BayesianGaussianMixture``.

Prepared, not run yet: see ``NO_BAYESIAN_YET`` in ``sklearn_suite.py``.
"""

from sklearn_suite import NO_BAYESIAN_YET, Suite, load_suite

SUITE = Suite(
    module="sklearn.mixture.tests.test_bayesian_mixture",
    estimators=("BayesianGaussianMixture",),
    deselected={
        "test_log_dirichlet_norm": "tests scikit-learn's private helper _log_dirichlet_norm",
        "test_log_wishart_norm": "tests scikit-learn's private helper _log_wishart_norm",
        "test_compare_covar_type": (
            "calls the estimator's private methods _check_parameters and _initialize_parameters"
        ),
    },
    disabled=NO_BAYESIAN_YET,
)

globals().update(load_suite(SUITE))
