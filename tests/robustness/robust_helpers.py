"""Shared helpers of the robustness suite: data, outcome checks, time limits.

Not a ``conftest.py``: the parent folder's ``conftest`` is imported by name from other test
modules, and a second module of that name would shadow it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning

TESTS_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if TESTS_DIR not in sys.path:
    sys.path.insert(0, TESTS_DIR)

import reference  # noqa: E402  (tests/reference.py, the plain-NumPy EM)

COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")
FITTED_ARRAYS = ("weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_")

# Words that betray an internal failure leaking through instead of a message for the user.
_INTERNAL_WORDS = (
    "numba",
    "typingerror",
    "no implementation of function",
    "invalid use of",
    "nopython",
    "lowering",
    "object has no attribute",
    "unsupported operand",
    "not subscriptable",
    "referenced before assignment",
)

__all__ = [
    "COVARIANCE_TYPES",
    "FITTED_ARRAYS",
    "assert_clean_error",
    "assert_finite_model",
    "blobs",
    "dense_covariances",
    "only_convergence_warnings",
    "reference",
    "time_limit",
]


def blobs(n_samples=300, n_features=2, n_components=2, seed=0, spread=6.0):
    """Well separated Gaussian clusters (float64, C order) and their labels."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=spread, size=(n_components, n_features))
    labels = rng.integers(n_components, size=n_samples)
    return centres[labels] + rng.normal(size=(n_samples, n_features)), labels


def dense_covariances(gm):
    """The fitted covariances as (K, D, D) float64 matrices, whatever the type."""
    k, d = gm.means_.shape
    return reference.covariance_matrices(gm.covariances_, gm.covariance_type, k, d)


def assert_finite_model(gm):
    """A fitted mixture holds no NaN/inf, positive definite covariances and weights summing to 1."""
    for name in FITTED_ARRAYS:
        value = np.asarray(getattr(gm, name), dtype=np.float64)
        assert np.all(np.isfinite(value)), f"{name} is not finite: {value}"
    # max_iter=0 only initialises: no E-step has scored the data (scikit-learn: -inf).
    assert np.isfinite(gm.lower_bound_) or (gm.n_iter_ == 0 and gm.lower_bound_ == -np.inf)
    weights = np.asarray(gm.weights_, dtype=np.float64)
    assert np.all(weights >= 0)
    tolerance = 1e-5 if gm.weights_.dtype == np.float32 else 1e-10
    assert abs(weights.sum() - 1.0) < tolerance
    for matrix in dense_covariances(gm):
        np.linalg.cholesky(matrix)  # raises if not positive definite


def assert_clean_error(exc: BaseException, *, allowed=(ValueError, TypeError)):
    """The exception is of an allowed type and its message speaks to the user."""
    assert isinstance(exc, allowed), f"unexpected {type(exc).__name__}: {exc}"
    # Numba's errors subclass TypeError in some versions: rule them out by module too.
    assert not type(exc).__module__.startswith("numba"), f"Numba error leaked: {exc!r}"
    message = str(exc)
    assert len(message) >= 10, f"uninformative message: {message!r}"
    lowered = message.lower()
    for word in _INTERNAL_WORDS:
        assert word not in lowered, f"internal error leaked ({word!r}): {message}"


@contextlib.contextmanager
def only_convergence_warnings():
    """Record warnings and fail on any that is not a ConvergenceWarning (or a subclass)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield caught
    others = [w for w in caught if not issubclass(w.category, ConvergenceWarning)]
    assert not others, "unexpected warnings: " + "; ".join(
        f"{w.category.__name__}: {w.message}" for w in others
    )


class CaseTimeout(Exception):
    """A single case ran past its time limit (a hang)."""


@contextlib.contextmanager
def time_limit(seconds: float):
    """Fail a case that runs longer than ``seconds`` (SIGALRM; main thread on POSIX only)."""

    def on_alarm(signum, frame):
        raise CaseTimeout(f"case did not finish within {seconds} s")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
