"""Concurrency and determinism: thread pools, processes sharing a cache, the workqueue layer.

Results must be bit-identical to serial fits whatever runs around them: 32 fits at once from a
thread pool, two processes compiling into one fresh Numba cache directory at the same time, and
fits from a thread pool under Numba's ``workqueue`` layer (where fastgmm runs the serial twin of
each kernel off the main thread). The same ``random_state`` gives the same model for 1 and 2
threads, across processes, and for a streamed source and an in-memory array.
"""

import json
import os
import subprocess
import sys
import textwrap
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from fastgmm import GaussianMixture
from fastgmm.sources import open_source

# The workload, shared verbatim by this process and the subprocesses.
WORKLOAD = textwrap.dedent(
    """
    import hashlib, json, warnings
    import numpy as np
    from sklearn.exceptions import ConvergenceWarning
    from fastgmm import GaussianMixture

    COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")

    def job_data(job):
        rng = np.random.default_rng(1000 + job)
        centres = rng.normal(scale=5.0, size=(3, 3))
        X = centres[rng.integers(3, size=700)] + rng.normal(size=(700, 3))
        return np.ascontiguousarray(X)

    def fingerprint(gm):
        digest = hashlib.sha256()
        for name in ("weights_", "means_", "covariances_", "precisions_cholesky_"):
            digest.update(np.ascontiguousarray(getattr(gm, name)).tobytes())
        digest.update(np.asarray(gm.lower_bounds_, dtype=np.float64).tobytes())
        digest.update(str(gm.n_iter_).encode())
        return digest.hexdigest()

    def run_job(job, n_jobs=None):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            gm = GaussianMixture(
                3,
                covariance_type=COVARIANCE_TYPES[job % 4],
                random_state=job,
                max_iter=25,
                n_jobs=n_jobs,
            ).fit(job_data(job))
        return fingerprint(gm)
    """
)
namespace: dict = {}
exec(WORKLOAD, namespace)  # our own source text, shared verbatim with the subprocesses
run_job = namespace["run_job"]
fingerprint = namespace["fingerprint"]
job_data = namespace["job_data"]

N_JOBS = 32


@pytest.fixture(scope="module")
def serial_fingerprints():
    """Fingerprints of every job fitted one after the other in this process."""
    return [run_job(job) for job in range(N_JOBS)]


def _environment(**extra):
    env = dict(os.environ)
    env.update(extra)
    return env


def _script(body):
    return WORKLOAD + "\n" + textwrap.dedent(body)


# ------------------------------------------------------------------------------- threads
def test_32_concurrent_fits_from_a_thread_pool_equal_serial_fits(serial_fingerprints):
    with ThreadPoolExecutor(max_workers=N_JOBS) as pool:
        concurrent = list(pool.map(run_job, range(N_JOBS)))
    assert concurrent == serial_fingerprints
    assert len(set(serial_fingerprints)) == N_JOBS  # 32 different models, not one repeated


def test_same_random_state_same_model_for_one_and_two_threads(serial_fingerprints):
    for job in range(4):
        assert run_job(job, n_jobs=1) == serial_fingerprints[job]
        assert run_job(job, n_jobs=2) == serial_fingerprints[job]
        assert run_job(job) == serial_fingerprints[job]  # and again: run to run


# ------------------------------------------------------------------------------ streaming
@pytest.mark.parametrize("covariance_type", ["full", "diag"])
def test_streamed_source_gives_the_in_memory_model(covariance_type, tmp_path):
    X = job_data(0)

    def fit(data, **params):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            return GaussianMixture(
                3, covariance_type=covariance_type, random_state=7, max_iter=25, **params
            ).fit(data)

    in_memory = fit(X)
    # One chunk holding every row: the very same sums, bit for bit.
    assert fingerprint(fit(open_source(X))) == fingerprint(in_memory)
    np.save(tmp_path / "X.npy", X)
    assert fingerprint(fit(str(tmp_path / "X.npy"))) == fingerprint(in_memory)
    # Other chunks: the same model up to the rounding of differently grouped sums.
    chunked = fit(open_source(X, batch_size=97))
    np.testing.assert_allclose(chunked.means_, in_memory.means_, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(chunked.covariances_, in_memory.covariances_, rtol=1e-9)
    np.testing.assert_allclose(chunked.lower_bounds_, in_memory.lower_bounds_, rtol=1e-12)
    assert chunked.n_iter_ == in_memory.n_iter_


# ----------------------------------------------------------------------------- processes
def test_two_processes_sharing_a_fresh_numba_cache(tmp_path):
    """Both compile into one empty cache directory at the same time, then a third loads it.

    The two compiling processes must agree with each other, and the process that loads their
    (possibly interleaved) cache entries must agree with them: a kernel's results may not depend
    on whether it was just compiled or read back from the cache.
    """
    cache = tmp_path / "numba_cache"
    cache.mkdir()
    script = _script(
        """
        print(json.dumps([run_job(job) for job in range(4)]))
        """
    )
    env = _environment(NUMBA_CACHE_DIR=str(cache))
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", script],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    compiled = []
    for process in processes:
        stdout, stderr = process.communicate(timeout=900)
        assert process.returncode == 0, stderr[-3000:]
        compiled.append(json.loads(stdout.strip().splitlines()[-1]))
    assert compiled[0] == compiled[1], "two processes compiling at once disagree"
    assert any(cache.rglob("*.nbi")), "nothing was cached"
    loaded = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=900
    )
    assert loaded.returncode == 0, loaded.stderr[-3000:]
    from_cache = json.loads(loaded.stdout.strip().splitlines()[-1])
    # Known failure (reported to the kernel owner): since the kernels of 70ef7f1, the code
    # Numba JIT-compiles and the object code it writes to the cache round em_statistics' sums
    # (nk, s1) differently in the last bit, so a first, compiling process fits a (very slightly)
    # different model than every later process that loads the cache.
    assert from_cache == compiled[0], (
        "kernels loaded from the cache give other bits than the freshly compiled kernels "
        "(jobs: full, tied, diag, spherical): "
        + str([a == b for a, b in zip(from_cache, compiled[0])])
    )


def test_workqueue_layer_thread_pool_fits_are_safe_and_identical():
    """Under ``workqueue`` (not thread-safe) concurrent fits from a thread pool must not crash
    and must give the main thread's results, with 1 or 2 threads."""
    script = _script(
        """
        from concurrent.futures import ThreadPoolExecutor
        import numba

        main_thread = [run_job(job) for job in range(8)]
        layer = numba.threading_layer()
        one_thread = [run_job(job, n_jobs=1) for job in range(8)]
        with ThreadPoolExecutor(max_workers=8) as pool:
            pooled = list(pool.map(run_job, range(8)))
        print(json.dumps({"layer": layer, "main": main_thread, "one_thread": one_thread,
                          "pooled": pooled}))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        env=_environment(NUMBA_THREADING_LAYER="workqueue"),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["layer"] == "workqueue"
    assert len(set(report["main"])) == 8
    assert report["one_thread"] == report["main"]
    assert report["pooled"] == report["main"]
