"""scikit-learn's own ``test_gaussian_mixture.py``, run against ``fastgmm.GaussianMixture``.

The module comes from the installed scikit-learn (the version CI pins in
``.ci/constraints.txt``), with float32 variants on; see ``sklearn_suite.py`` for how it is
loaded. Each test below is left out with its reason, and ``pytest -ra`` lists it as skipped.
"""

from sklearn_suite import ARRAY_API, Suite, load_suite

_SKLEARN_PRIVATE = "tests scikit-learn's private helper {}; no estimator is involved"

SUITE = Suite(
    module="sklearn.mixture.tests.test_gaussian_mixture",
    estimators=("GaussianMixture",),
    deselected={
        "test_suffstat_sk_full": _SKLEARN_PRIVATE.format("_estimate_gaussian_covariances_full"),
        "test_suffstat_sk_tied": _SKLEARN_PRIVATE.format("_estimate_gaussian_covariances_tied"),
        "test_suffstat_sk_diag": _SKLEARN_PRIVATE.format("_estimate_gaussian_covariances_diag"),
        "test_gaussian_suffstat_sk_spherical": _SKLEARN_PRIVATE.format(
            "_estimate_gaussian_covariances_spherical"
        ),
        "test_compute_log_det_cholesky": _SKLEARN_PRIVATE.format("_compute_log_det_cholesky"),
        "test_gaussian_mixture_log_probabilities": _SKLEARN_PRIVATE.format(
            "_estimate_log_gaussian_prob"
        ),
        "test_gaussian_mixture_precisions_init": (
            "calls the estimator's private methods _set_parameters and _initialize(X, resp)"
        ),
        "test_gaussian_mixture_all_init_does_not_estimate_gaussian_parameters": (
            "counts calls of scikit-learn's private _estimate_gaussian_parameters through a "
            "mock; fastgmm never calls it"
        ),
        "test_gaussian_mixture_precisions_init_diag": (
            "builds its reference with the private _estimate_gaussian_parameters from "
            "sklearn.cluster.KMeans(n_init=1) labels, i.e. it assumes init_params='kmeans' is "
            "scikit-learn's KMeans; fastgmm's 'kmeans' is its own k-means (a different start)"
        ),
        "test_gaussian_mixture_array_api_compliance": ARRAY_API,
        "test_gaussian_mixture_raises_where_array_api_not_implemented": ARRAY_API,
    },
)

globals().update(load_suite(SUITE))
