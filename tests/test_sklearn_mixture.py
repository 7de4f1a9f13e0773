"""scikit-learn's own ``test_mixture.py``: both mixture estimators, so both must be fastgmm's.

Its tests are parametrized with instances of ``GaussianMixture`` and
``BayesianGaussianMixture``; run with only the first swapped, half of its items would test
scikit-learn's own class.
"""

from sklearn_suite import Suite, load_suite

SUITE = Suite(
    module="sklearn.mixture.tests.test_mixture",
    estimators=("GaussianMixture", "BayesianGaussianMixture"),
)

globals().update(load_suite(SUITE))
