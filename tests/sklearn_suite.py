"""Run one of scikit-learn's own test modules against fastgmm's estimators.

fastgmm says it is a drop-in for ``sklearn.mixture``; scikit-learn's tests are the judge. A
test file of ours calls :func:`load_suite` and puts what it returns in its globals, so that
pytest collects scikit-learn's tests (and their fixtures) as the file's own::

    globals().update(load_suite(Suite("sklearn.mixture.tests.test_gaussian_mixture", ...)))

How the module is loaded, and why:

* It is imported afresh from the installed scikit-learn, under its own name, through the normal
  import system, so pytest's assertion rewriting applies (the module's file name matches
  ``test_*.py``) and a failure shows the compared values. ``sys.modules`` and the parent
  package are restored afterwards, so the rest of the session sees scikit-learn's module as
  before. Rejected: exec'ing the source in a new namespace (no assertion rewriting without
  pytest's private API) and patching scikit-learn's imported module in place (it would change
  the module for every other user in the session).
* While it imports, ``sklearn.mixture.<Name>`` is fastgmm's class, so that
  ``from sklearn.mixture import <Name>`` binds fastgmm's, including in objects built at import
  time (parametrize lists of instances). The attribute is restored in a ``finally``.
* scikit-learn's ``global_dtype`` and ``global_random_seed`` fixtures live in its conftest,
  which pytest does not load for an installed module (and whose hooks would also reach our
  own tests: it limits every thread pool at start-up). This file defines both: ``global_dtype``
  always includes float32 (what ``SKLEARN_RUN_FLOAT32_TESTS=1`` turns on), and
  ``global_random_seed`` is 42 unless ``SKLEARN_TESTS_GLOBAL_RANDOM_SEED`` says otherwise, as
  in scikit-learn.
* Deselected tests stay visible: each is replaced by one skipped test of the same name whose
  reason says why, so ``pytest -ra`` lists it on every run (one line per test, not one per
  parametrization: the array API tests alone have 270). A name that no longer exists in the
  module is an error (the list would otherwise go stale silently), and so is a module that does
  not bind the substituted class.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
from dataclasses import dataclass, field

import numpy as np
import pytest

import fastgmm

# Reasons shared by several suites.
ARRAY_API = (
    "array API dispatch (sklearn.config_context(array_api_dispatch=True)) is not supported: "
    "fastgmm computes on NumPy arrays only"
)


@dataclass(frozen=True)
class Suite:
    """One scikit-learn test module, the estimators to swap and the tests left out.

    Parameters
    ----------
    module : str
        Dotted name of the installed test module.
    estimators : tuple of str
        Names that ``sklearn.mixture`` and ``fastgmm`` both export; the test module's names
        are bound to fastgmm's classes.
    deselected : dict of str to str
        Test function name to the reason it is not run against fastgmm.
    """

    module: str
    estimators: tuple[str, ...]
    deselected: dict[str, str] = field(default_factory=dict)


@pytest.fixture(params=[np.float32, np.float64], ids=["float32", "float64"])
def global_dtype(request):
    """scikit-learn's fixture, float32 always on (``SKLEARN_RUN_FLOAT32_TESTS=1``)."""
    return request.param


def _random_seeds() -> list[int]:
    value = os.environ.get("SKLEARN_TESTS_GLOBAL_RANDOM_SEED")
    if value is None:
        return [42]  # scikit-learn's default
    if value == "all":
        return list(range(100))
    first, _, last = value.partition("-")
    seeds = list(range(int(first), int(last or first) + 1))
    if not seeds or seeds[0] < 0 or seeds[-1] > 99:
        raise ValueError(f"SKLEARN_TESTS_GLOBAL_RANDOM_SEED must be in [0, 99], got {value!r}")
    return seeds


@pytest.fixture(params=_random_seeds())
def global_random_seed(request):
    """scikit-learn's fixture: 42, or the seeds ``SKLEARN_TESTS_GLOBAL_RANDOM_SEED`` names."""
    return request.param


def _placeholder(name, reason):
    """A test that is always skipped with ``reason``: what the report shows in its place."""

    @pytest.mark.skip(reason=reason)
    def placeholder():
        pass

    placeholder.__name__ = placeholder.__qualname__ = name
    return placeholder


@contextlib.contextmanager
def _bound_to_fastgmm(names):
    target = importlib.import_module("sklearn.mixture")
    saved = {name: getattr(target, name) for name in names}
    try:
        for name in names:
            setattr(target, name, getattr(fastgmm, name))
        yield
    finally:
        for name, value in saved.items():
            setattr(target, name, value)


def _import_fresh(name, estimators):
    """Import ``name`` anew with the estimators swapped, leaving sys.modules as it was."""
    parent_name, _, child = name.rpartition(".")
    parent = importlib.import_module(parent_name)
    missing = object()
    saved_module = sys.modules.pop(name, missing)
    saved_attr = getattr(parent, child, missing)
    try:
        with _bound_to_fastgmm(estimators):
            return importlib.import_module(name)
    finally:
        sys.modules.pop(name, None)
        if saved_module is not missing:
            sys.modules[name] = saved_module
        if saved_attr is missing:
            with contextlib.suppress(AttributeError):
                delattr(parent, child)
        else:
            setattr(parent, child, saved_attr)


def load_suite(suite: Suite) -> dict:
    """The names a test file needs in its globals for pytest to collect ``suite``."""
    if importlib.util.find_spec(suite.module) is None:
        raise ImportError(
            f"{suite.module} is not installed: this scikit-learn was packaged without its tests"
        )
    module = _import_fresh(suite.module, suite.estimators)
    for name in suite.estimators:
        if getattr(module, name, None) is not getattr(fastgmm, name):
            raise RuntimeError(
                f"{suite.module} does not bind {name} by 'from sklearn.mixture import {name}'; "
                "update tests/sklearn_suite.py to substitute it"
            )
    namespace = {name: value for name, value in vars(module).items() if not name.startswith("__")}
    stale = sorted(set(suite.deselected) - set(namespace))
    if stale:
        raise RuntimeError(f"deselected tests not found in {suite.module}: {stale}")
    for name, reason in suite.deselected.items():
        namespace[name] = _placeholder(name, f"deselected {name}: {reason}")
    namespace["global_dtype"] = global_dtype
    namespace["global_random_seed"] = global_random_seed
    return namespace
