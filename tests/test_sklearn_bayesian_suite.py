"""scikit-learn's own ``test_bayesian_mixture.py``, run against fastgmm's estimator.

The installed module is loaded under a private name with ``BayesianGaussianMixture`` swapped
for fastgmm's, so every test of the estimator runs unchanged (the same assertions, data and
tolerances). Only tests of scikit-learn's private helper functions are deselected, each with
its reason in ``DESELECTED``; they exercise scikit-learn's code, not an estimator.
"""

import importlib.util
import sys

import pytest
import sklearn.mixture.tests.test_bayesian_mixture as upstream

from fastgmm import BayesianGaussianMixture

DESELECTED = {
    "test_log_dirichlet_norm": (
        "tests sklearn.mixture._bayesian_mixture._log_dirichlet_norm, a private helper of "
        "scikit-learn (fastgmm's equivalent is checked in tests/test_bayesian_mixture.py)"
    ),
    "test_log_wishart_norm": (
        "tests sklearn.mixture._bayesian_mixture._log_wishart_norm, a private helper of "
        "scikit-learn (fastgmm's equivalent is checked in tests/test_bayesian_mixture.py)"
    ),
}


def _swapped_module():
    """A fresh copy of scikit-learn's test module whose estimator is fastgmm's."""
    spec = importlib.util.spec_from_file_location(
        "_sklearn_test_bayesian_mixture_on_fastgmm", upstream.__file__
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.BayesianGaussianMixture = BayesianGaussianMixture
    sys.modules[spec.name] = module
    return module


_MODULE = _swapped_module()


def _cases():
    for name in sorted(vars(_MODULE)):
        test = getattr(_MODULE, name)
        if not (name.startswith("test_") and callable(test)):
            continue
        upstream_marks = getattr(test, "pytestmark", [])
        parametrize = [m for m in upstream_marks if m.name == "parametrize"]
        # The upstream marks other than parametrize (its filterwarnings) go with each case.
        marks = [m for m in upstream_marks if m.name != "parametrize"]
        if name in DESELECTED:
            marks.append(pytest.mark.skip(reason=DESELECTED[name]))
        if parametrize:
            (mark,) = parametrize
            names = [n.strip() for n in mark.args[0].split(",")]
            for values in mark.args[1]:
                values = values if isinstance(values, tuple) else (values,)
                kwargs = dict(zip(names, values))
                label = "-".join(str(v) for v in values)
                yield pytest.param(test, kwargs, id=f"{name}[{label}]", marks=marks)
        else:
            yield pytest.param(test, {}, id=name, marks=marks)


def test_the_estimator_is_swapped():
    assert _MODULE.BayesianGaussianMixture is BayesianGaussianMixture
    assert set(DESELECTED) <= set(vars(_MODULE))


@pytest.mark.parametrize("test, kwargs", list(_cases()))
def test_sklearn(test, kwargs):
    test(**kwargs)
