"""EM fitting: fixed-work time per covariance type, size and dtype; memory; GFLOP/s; threads."""

import time
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning

from fastgmm import GaussianMixture

from . import (
    COVARIANCE_TYPES,
    FIT_ITERATIONS,
    SIZES,
    available_cpus,
    fixed_work_params,
    flops_per_iteration,
    make_blobs,
    make_mixture,
    warm_jit,
)

DTYPES = ["float64", "float32"]


def _quiet():
    # tol=0 never converges by design; the warning each fit raises is expected here.
    warnings.simplefilter("ignore", ConvergenceWarning)


class FitFixedWork:
    """``fit`` with ``tol=0, max_iter=5`` from explicit initial parameters (no k-means).

    The time is per fit of ``FIT_ITERATIONS`` iterations, so divide by 5 for seconds per
    iteration. ``track_lower_bound`` records the quality beside the speed: a kernel change that
    alters the numbers shows up there.
    """

    params = (list(COVARIANCE_TYPES), list(SIZES), DTYPES)
    param_names = ["covariance_type", "size", "dtype"]
    timeout = 300

    def setup(self, covariance_type, size, dtype):
        _quiet()
        warm_jit(dtype)
        self.mixture = make_mixture(*SIZES[size], covariance_type, dtype=np.dtype(dtype))
        self.model = GaussianMixture(**fixed_work_params(self.mixture))

    def time_fit(self, covariance_type, size, dtype):
        self.model.fit(self.mixture.X)

    def peakmem_fit(self, covariance_type, size, dtype):
        self.model.fit(self.mixture.X)

    def track_lower_bound(self, covariance_type, size, dtype):
        return float(self.model.fit(self.mixture.X).lower_bound_)

    track_lower_bound.unit = "mean log-likelihood"


class FitThroughput:
    """GFLOP/s of one EM iteration (flop counts in :func:`flops_per_iteration`).

    The iteration time is the difference between fits of ``1 + FIT_ITERATIONS`` and 1
    iterations, divided by ``FIT_ITERATIONS``: the per-fit overheads cancel. Best of three.
    """

    params = (list(COVARIANCE_TYPES), DTYPES)
    param_names = ["covariance_type", "dtype"]
    timeout = 300

    def setup(self, covariance_type, dtype):
        _quiet()
        warm_jit(dtype)
        self.mixture = make_mixture(*SIZES["medium"], covariance_type, dtype=np.dtype(dtype))

    def _fit_seconds(self, max_iter):
        model = GaussianMixture(**fixed_work_params(self.mixture, max_iter=max_iter))
        start = time.perf_counter()
        model.fit(self.mixture.X)
        return time.perf_counter() - start

    def track_gflops(self, covariance_type, dtype):
        per_iteration = min(
            (self._fit_seconds(1 + FIT_ITERATIONS) - self._fit_seconds(1)) / FIT_ITERATIONS
            for _ in range(3)
        )
        n_samples, n_features, n_components = SIZES["medium"]
        flops = flops_per_iteration(covariance_type, n_samples, n_features, n_components)
        return flops / max(per_iteration, 1e-9) / 1e9

    track_gflops.unit = "GFLOP/s"


class FitBlobs:
    """Seconds per EM iteration on well-separated blobs, per covariance type and dtype.

    The case of the performance issue 16: centres at scale 6 (means hundreds of their own
    variances from the common centre, where the kernels' spread limits matter), rotated
    covariances, started diagonal from the data's variances. One iteration is the difference
    of fits with ``1 + FIT_ITERATIONS`` and 1 iterations over ``FIT_ITERATIONS``, best of
    three; float32 beside float64 shows whether single precision pays.
    """

    params = (list(COVARIANCE_TYPES), DTYPES)
    param_names = ["covariance_type", "dtype"]
    timeout = 300

    def setup(self, covariance_type, dtype):
        _quiet()
        warm_jit(dtype)
        self.mixture = make_blobs(*SIZES["medium"], covariance_type, dtype=np.dtype(dtype))

    def _fit_seconds(self, max_iter):
        model = GaussianMixture(**fixed_work_params(self.mixture, max_iter=max_iter))
        start = time.perf_counter()
        model.fit(self.mixture.X)
        return time.perf_counter() - start

    def track_seconds_per_iteration(self, covariance_type, dtype):
        return min(
            (self._fit_seconds(1 + FIT_ITERATIONS) - self._fit_seconds(1)) / FIT_ITERATIONS
            for _ in range(3)
        )

    track_seconds_per_iteration.unit = "seconds"


class FitThreads:
    """Thread scaling of a full-covariance fit (results are identical for any count)."""

    params = [1, 2, 4]
    param_names = ["n_jobs"]
    timeout = 300

    def setup(self, n_jobs):
        if n_jobs > available_cpus():
            raise NotImplementedError(f"only {available_cpus()} CPUs available")
        _quiet()
        warm_jit("float64", n_jobs=n_jobs)
        self.mixture = make_mixture(*SIZES["medium"], "full")
        self.model = GaussianMixture(**fixed_work_params(self.mixture), n_jobs=n_jobs)

    def time_fit(self, n_jobs):
        self.model.fit(self.mixture.X)
