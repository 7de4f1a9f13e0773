"""``fastgmm warmup``: compile and cache every kernel signature, float32 and float64.

A batch job's processes then load the kernels from Numba's cache instead of compiling them.
"""

from __future__ import annotations

import warnings

import numpy as np

from .._names import INIT_METHODS, SKLEARN_COVARIANCE_TYPES
from . import _timing
from ._errors import EXIT_OK
from ._shared import import_estimators


def cmd_warmup(job):
    """Fit tiny problems through every kernel path in both dtypes, then list the signatures."""
    GaussianMixture = import_estimators(job)
    from sklearn.exceptions import ConvergenceWarning

    from .. import stats
    from .._jit import registered_kernels

    rng = np.random.default_rng(0)
    # Small models go through the feature-map kernels and wide full ones through the
    # per-component kernels, so a narrow and a wide problem are both run.
    wide = getattr(stats, "FEATURE_MAP_MAX_FULL", 32) + 1
    # scikit-learn's four covariance types: the kernels serve every model through the shape of
    # its factors, and these four give each kernel its argument types.
    # mclust's hierarchical start and EVE's compiled orientation loop ride on a small problem.
    problems = [
        (2, [*zip(INIT_METHODS, SKLEARN_COVARIANCE_TYPES), ("hc", "EVE")]),
        (wide, [("kmeans", "full"), ("random", "tied")]),
    ]
    with _timing.KernelClock(job) as clock, job.timed("warmup"):
        # Every public path once per dtype, on a tiny problem: the fits discover each kernel's
        # argument types (pairing each init method with one covariance type covers both).
        for n_features, runs in problems:
            X64 = np.concatenate(
                [rng.normal(size=(60, n_features)), rng.normal(size=(60, n_features)) + 4.0]
            )
            weights = rng.uniform(0.5, 1.5, size=len(X64))
            for dtype in (np.float64, np.float32):
                X = np.ascontiguousarray(X64, dtype=dtype)
                for init, covariance_type in runs:
                    gm = GaussianMixture(
                        2,
                        covariance_type=covariance_type,
                        init_params=init,
                        max_iter=2,
                        random_state=0,
                        n_jobs=1,
                    )
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore", ConvergenceWarning)
                        gm.fit(X, sample_weight=weights if init == "kmeans" else None)
                    gm.predict_proba(X)
                    gm.score_samples(X)
                # Rows with NaN (missing='marginalize'): the narrow problem's few patterns go
                # through the feature map per pattern, the wide one's through the exact
                # kernels; then the per-row outputs and the imputation.
                holes = X.copy()
                holes[rng.random(holes.shape) < 0.3] = np.nan
                holes[np.isnan(holes).all(axis=1), 0] = 0.0
                gm = GaussianMixture(2, max_iter=2, random_state=0, n_jobs=1, missing="marginalize")
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", ConvergenceWarning)
                    gm.fit(holes)
                gm.predict_proba(holes)
                gm.impute(holes, return_std=True)
    rows = []
    for name, dispatcher in registered_kernels().items():
        for signature in dispatcher.signatures:
            status = "compiled" if dispatcher.stats.cache_misses.get(signature) else "loaded"
            rows.append(
                {
                    "kernel": name,
                    # Every kernel has one compiled flavour since the serial twin went; the
                    # field stays for the readers of the JSON report.
                    "flavour": "parallel",
                    "dtype": str(getattr(signature[0], "dtype", signature[0])),
                    "status": status,
                    "signature": str(signature),
                }
            )
    rows.sort(key=lambda r: (r["kernel"], r["flavour"], r["dtype"]))
    job.report["compiled"] = rows
    job.report["cache_dir"] = _cache_dir()
    stream = job.result_stream
    for r in rows:
        print(f"{r['kernel']:<22} {r['flavour']:<9} {r['dtype']:<8} {r['status']}", file=stream)
    counts = job.report["kernels"]
    print(
        f"warmup: {len(rows)} kernel signatures ready ({counts['compiled']} compiled, "
        f"{counts['loaded']} loaded from the cache) in {clock.total:.2f} s of compilation; "
        f"cache: {job.report['cache_dir']}",
        file=stream,
    )
    return EXIT_OK


def _cache_dir():
    from numba.core import config

    return config.CACHE_DIR or "__pycache__ next to the fastgmm sources"
