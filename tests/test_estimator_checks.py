"""scikit-learn's own estimator checks."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from fastgmm import GaussianMixture


@parametrize_with_checks([GaussianMixture()])
def test_sklearn_compatible(estimator, check):
    check(estimator)
