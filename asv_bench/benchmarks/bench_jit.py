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
