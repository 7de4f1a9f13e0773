"""Start-up cost: Numba compilation with an empty cache, and import + first fit with a warm one.

Each measurement runs in a fresh subprocess, because a process compiles or loads a kernel only
once. The script fits a small model twice and reports both times; the first minus the second is
what compilation (or loading from the cache) added to the first fit.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile

from . import warm_jit

_FIRST_FIT_SCRIPT = """
import json, time, warnings
import numpy as np
from sklearn.exceptions import ConvergenceWarning
from fastgmm import GaussianMixture

warnings.simplefilter("ignore", ConvergenceWarning)
X = np.random.default_rng(0).normal(size=(5000, 4))

def run():
    start = time.perf_counter()
    GaussianMixture(3, max_iter=3, random_state=0).fit(X).predict_proba(X)
    return time.perf_counter() - start

first = run()
second = run()
print(json.dumps({"first": first, "second": second}))
"""


def _first_fit_overhead(extra_env):
    """Seconds the first fit of a fresh process takes beyond the second one."""
    env = dict(os.environ, **extra_env)
    result = subprocess.run(
        [sys.executable, "-c", _FIRST_FIT_SCRIPT],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"first-fit script failed:\n{result.stderr}")
    times = json.loads(result.stdout.strip().splitlines()[-1])
    return times["first"] - times["second"]


# The job of the start-up target (issue 16): import, then fit 1000 x 2, K=3 with defaults. Each
# Numba cache load is timed by wrapping numba's Cache.load_overload (benchmark-only code).
_LOAD_TIMES_SCRIPT = """
import json, sys, time
start = time.perf_counter()
import numpy as np
from numba.core import caching
loads = []
_load = caching.Cache.load_overload

def timed(self, sig, target_context):
    began = time.perf_counter()
    result = _load(self, sig, target_context)
    name = self._name.split(" at ")[0].replace("<function ", "")
    loads.append((name, time.perf_counter() - began, result is not None))
    return result

caching.Cache.load_overload = timed
imported = time.perf_counter()
import fastgmm
X = np.random.default_rng(0).random((1000, 2))
fitted = time.perf_counter()
fastgmm.GaussianMixture(3).fit(X)
done = time.perf_counter()
print(json.dumps({"import numpy+numba caching": imported - start,
                  "import fastgmm": fitted - imported, "first fit": done - fitted,
                  "loads": loads, "numba imported": "numba" in sys.modules}))
"""


def kernel_load_times():
    """A fresh process's import and first fit (1000 x 2, K=3), and each kernel it loads.

    Returns a dict with the phases' seconds and ``loads``: ``(function, seconds, from cache)``
    per cached function Numba loaded, in order. The first load also pays Numba's own start
    (its typing and target contexts), whatever the kernel.
    """
    result = subprocess.run(
        [sys.executable, "-c", _LOAD_TIMES_SCRIPT], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"load-time script failed:\n{result.stderr}")
    return json.loads(result.stdout.strip().splitlines()[-1])


class ColdCompile:
    """Compilation of every kernel a float64 fit + predict_proba needs, from an empty cache."""

    timeout = 900
    # One compile per measurement is already tens of seconds.
    repeat = 1
    number = 1

    def setup(self):
        self.cache_dir = tempfile.mkdtemp(prefix="fastgmm-numba-cache-")

    def teardown(self):
        shutil.rmtree(self.cache_dir, ignore_errors=True)

    def track_compile_seconds(self):
        return _first_fit_overhead({"NUMBA_CACHE_DIR": self.cache_dir})

    track_compile_seconds.unit = "seconds"


class WarmStart:
    """A new process with the kernels already in the on-disk cache (the batch-job case)."""

    timeout = 300
    number = 1
    repeat = 5

    def setup(self):
        # Populates the cache that the subprocesses below load from.
        warm_jit("float64")

    def track_cache_load_seconds(self):
        return _first_fit_overhead({})

    track_cache_load_seconds.unit = "seconds"

    def track_kernel_load_seconds(self):
        """Seconds the start-up job spends loading kernels from the cache (all of them)."""
        return sum(seconds for _, seconds, _ in kernel_load_times()["loads"])

    track_kernel_load_seconds.unit = "seconds"

    def timeraw_import_and_first_fit(self):
        # asv times the first string in a fresh interpreter; the second is untimed set-up.
        return (
            """
            import warnings
            from sklearn.exceptions import ConvergenceWarning
            warnings.simplefilter("ignore", ConvergenceWarning)
            from fastgmm import GaussianMixture
            GaussianMixture(3, max_iter=3, random_state=0).fit(X).predict_proba(X)
            """,
            """
            import numpy as np
            X = np.random.default_rng(0).normal(size=(5000, 4))
            """,
        )


if __name__ == "__main__":
    # python -m benchmarks.bench_jit (from asv_bench/): each kernel's load time, twice (the first
    # run may fill the cache).
    for _ in range(2):
        times = kernel_load_times()
    for name, seconds, hit in times.pop("loads"):
        print(f"load {name:32s} {seconds * 1e3:8.1f} ms{'' if hit else ' (compiled: not cached)'}")
    for phase, value in times.items():
        print(f"{phase}: {value}")
