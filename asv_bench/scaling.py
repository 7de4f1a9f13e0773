#!/usr/bin/env python
"""How fastgmm's EM iteration scales: with threads, with N, and in memory.

Three measurements on the reference configurations of ``compare.py`` (same data generator, same
perturbed-truth initialisation, ``tol=0``):

``--threads``
    Seconds per iteration with 1 and with 2 threads (``n_jobs``) in one process, and the speed-up.
``--sizes``
    Seconds per iteration for each N (the configuration's D, K and covariance type), and the time
    per row relative to the smallest N: 1.0 everywhere means time grows linearly in N.
``--init``
    Seconds of the default k-means initialisation (``fit(max_iter=0)`` from k-means minus the
    same fit from given initial parameters) against seconds per EM iteration, on the same
    data: the initialisation's cost in EM iterations.
``--memory``
    Peak resident memory of ``fit`` in a fresh subprocess, against X's own size. The peak is read
    from the kernel's high-water mark (``VmHWM``), which is reset just before the fit
    (``/proc/self/clear_refs``), so the generation of X does not count. "extra" is the peak above
    the resident size just before the fit (interpreter, libraries and X); the target is
    ``0.15 * X + 100 MB``.

Every timing is the median over ``--repeat`` repeats of ``(t(1 + iters) - t(1)) / iters``.

Examples::

    python asv_bench/scaling.py --threads --config c
    python asv_bench/scaling.py --sizes 1e5,1e6,1e7 --config b
    python asv_bench/scaling.py --memory --config b,c
    python asv_bench/scaling.py --init --config b
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from compare import CONFIGS  # noqa: E402

MB = 2**20


def _mixture(name, n_samples=None):
    from benchmarks import make_mixture

    n, d, k, covariance_type = CONFIGS[name]
    return make_mixture(int(n_samples or n), d, k, covariance_type)


def seconds_per_iteration(mixture, iters, repeat, n_jobs=None):
    """Median of ``(t(1 + iters) - t(1)) / iters`` over ``repeat`` repeats."""
    from benchmarks import fixed_work_params

    from fastgmm import GaussianMixture

    def fit(max_iter):
        model = GaussianMixture(**fixed_work_params(mixture, max_iter=max_iter), n_jobs=n_jobs)
        start = time.perf_counter()
        model.fit(mixture.X)
        return time.perf_counter() - start

    fit(1)  # warm-up: kernels from the cache, thread pools, page faults
    return statistics.median((fit(1 + iters) - fit(1)) / iters for _ in range(repeat))


def thread_scaling(name, iters, repeat, n_samples=None):
    mixture = _mixture(name, n_samples)
    one = seconds_per_iteration(mixture, iters, repeat, n_jobs=1)
    two = seconds_per_iteration(mixture, iters, repeat, n_jobs=2)
    return {"config": name, "1 thread": one, "2 threads": two, "speed-up": one / two}


def init_cost(name, iters, repeat, n_samples=None):
    from benchmarks import fixed_work_params

    from fastgmm import GaussianMixture

    mixture = _mixture(name, n_samples)
    given = fixed_work_params(mixture, max_iter=0)  # the shared initial parameters
    kmeans = {key: value for key, value in given.items() if not key.endswith("_init")}

    def fit_seconds(params):
        start = time.perf_counter()
        GaussianMixture(**params, random_state=0).fit(mixture.X)
        return time.perf_counter() - start

    fit_seconds(kmeans)  # warm-up
    # Both fits validate X and stop before the first EM iteration; only the first runs the
    # default k-means initialisation, so the difference is the initialisation alone.
    seconds = statistics.median(fit_seconds(kmeans) - fit_seconds(given) for _ in range(repeat))
    iteration = seconds_per_iteration(mixture, iters, repeat)
    return {
        "config": name,
        "init s": seconds,
        "s/iter": iteration,
        "init in EM iterations": seconds / iteration,
    }


def size_scaling(name, sizes, iters, repeat):
    rows = []
    for n in sizes:
        mixture = _mixture(name, n)
        seconds = seconds_per_iteration(mixture, iters, repeat)
        rows.append({"config": name, "N": int(n), "s/iter": seconds, "ns/row": seconds / n * 1e9})
        del mixture
    for row in rows:
        row["relative to smallest N"] = row["ns/row"] / rows[0]["ns/row"]
    return rows


def _status_kib(field):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field}")


def memory_worker(name, n_samples=None):
    """Subprocess entry: fit configuration ``name`` and print its memory figures as JSON."""
    from benchmarks import fixed_work_params, warm_jit

    from fastgmm import GaussianMixture

    warm_jit()
    mixture = _mixture(name, n_samples)
    model = GaussianMixture(**fixed_work_params(mixture, max_iter=3))
    before = _status_kib("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
    model.fit(mixture.X)
    peak = _status_kib("VmHWM")
    x_mb = mixture.X.nbytes / MB
    extra = (peak - before) / 1024
    print(
        json.dumps(
            {
                "config": name,
                "X MB": x_mb,
                "RSS before fit MB": before / 1024,
                "peak during fit MB": peak / 1024,
                "extra MB": extra,
                "allowed extra MB": 0.15 * x_mb + 100,
                "within target": extra <= 0.15 * x_mb + 100,
            }
        )
    )


def memory(name, n_samples=None):
    command = [sys.executable, __file__, "--memory-worker", name]
    if n_samples:
        command += ["--n-samples", str(n_samples)]
    out = subprocess.run(
        command,
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def _print(rows):
    for row in rows:
        print(
            "  ".join(
                f"{key}={value:.4g}" if isinstance(value, float) else f"{key}={value}"
                for key, value in row.items()
            )
        )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="c", help="comma-separated subset of a,b,c,d,e")
    parser.add_argument("--threads", action="store_true", help="1 against 2 threads")
    parser.add_argument("--sizes", help="comma-separated N values, e.g. 1e5,1e6,1e7")
    parser.add_argument("--memory", action="store_true", help="peak RSS of fit (subprocess)")
    parser.add_argument("--init", action="store_true", help="k-means initialisation cost")
    parser.add_argument(
        "--n-samples", type=float, help="override N for --threads, --memory, --init (quick checks)"
    )
    parser.add_argument("--iters", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--memory-worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    # Fits of a fixed number of iterations with tol=0 never "converge": that is the point.
    warnings.filterwarnings("ignore", message=".*did not converge")
    if args.memory_worker:
        memory_worker(args.memory_worker, args.n_samples)
        return
    names = args.config.split(",")
    for name in names:
        if name not in CONFIGS:
            parser.error(f"unknown configuration {name!r}; choose from {','.join(CONFIGS)}")
    if not (args.threads or args.sizes or args.memory or args.init):
        parser.error("choose at least one of --threads, --sizes, --memory, --init")
    for name in names:
        if args.threads:
            _print([thread_scaling(name, args.iters, args.repeat, args.n_samples)])
        if args.sizes:
            sizes = [float(n) for n in args.sizes.split(",")]
            _print(size_scaling(name, sizes, args.iters, args.repeat))
        if args.memory:
            _print([memory(name, args.n_samples)])
        if args.init:
            _print([init_cost(name, args.iters, args.repeat, args.n_samples)])


if __name__ == "__main__":
    main()
