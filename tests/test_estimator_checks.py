"""scikit-learn's own estimator checks."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from fastgmm import BayesianGaussianMixture, GaussianMixture


@parametrize_with_checks([GaussianMixture(), BayesianGaussianMixture()])
def test_sklearn_compatible(estimator, check):
    check(estimator)
