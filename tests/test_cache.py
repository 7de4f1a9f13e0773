"""Every kernel must load from Numba's on-disk cache in a fresh process.

A kernel that reads a Numba global (``numba.get_num_threads()``) or holds a ctypes pointer is
silently not cached, and every batch job then pays seconds of compilation. This test runs a small
fit in this process (populating the cache), then the same work in a fresh interpreter, and
requires that the second process compiled nothing.
"""

import json
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import json, warnings
    import numpy as np
    warnings.simplefilter("error")  # a NumbaWarning about caching fails the run
    from fastgmm import GaussianMixture
    from fastgmm._jit import registered_kernels

    rng = np.random.default_rng(0)
    # D=2 goes through the feature-map kernels, full D=40 through the per-component ones,
    # tied through the shared transform.
    for X in (rng.normal(size=(500, 2)), rng.normal(size=(300, 40))):
        for dtype in (np.float64, np.float32):
            for ctype in ("full", "diag", "tied"):
                gm = GaussianMixture(3, covariance_type=ctype, random_state=0)
                gm.fit(X.astype(dtype)).predict_proba(X.astype(dtype))
    report = {}
    for name, dispatcher in registered_kernels().items():
        stats = dispatcher.stats
        report[name] = [sum(stats.cache_hits.values()), sum(stats.cache_misses.values())]
    print(json.dumps(report))
    """
)


def _run():
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=600, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_fresh_process_loads_every_kernel_from_cache():
    _run()  # populate the cache (a no-op when it is already warm)
    report = _run()
    used = {
        "factor_statistics",
        "factor_scores",
        "shared_statistics",
        "shared_scores",
        "feature_statistics",
        "feature_scores",
        "lloyd_step",
        "update_closest",
        "candidate_potentials",
    }
    assert set(report) >= used
    for name, (_, misses) in report.items():
        assert misses == 0, f"{name} was compiled again in a fresh process"
    for name in used:
        assert report[name][0] > 0, f"{name} was not loaded from the cache"
