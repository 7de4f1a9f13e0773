#!/usr/bin/env python
"""Seconds per iteration of fastgmm's and scikit-learn's BayesianGaussianMixture, side by side.

Both fit the same data (drawn in this script from a seeded mixture, ``benchmarks.make_mixture``;
nothing is stored) from the same start: ``init_params='random_from_data'`` with the same
``random_state`` picks the same rows in both, and the priors are the data's in both. There is
no convergence test (``tol=0``). Timing as ``compare.py --method diff``: for each repeat, fits
of 1 and ``1 + iters`` iterations, the difference of their wall times divided by ``iters``, so
validation, the priors' pass and the initialisation cancel; the median over repeats is
reported. The run also prints the machine (``compare.machine_description``), its load average
before and after, and the DGEMM peak measured in the same run, and checks that both lower
bounds after the same iterations agree.

The shapes are the issue's: (b) N=1e6, D=8, K=16 and (f) N=4e5, D=24, K=12, each for the four
covariance types. Examples::

    python asv_bench/bayesian_compare.py                       # both shapes, four types
    python asv_bench/bayesian_compare.py --config f --types diag --repeat 5
    python asv_bench/bayesian_compare.py --n-samples 20000 --iters 2 --repeat 1   # a smoke run
    python asv_bench/bayesian_compare.py --threads 1   # both on one thread (a busy machine)

``--threads 1`` holds both libraries at one thread. On a machine shared with other jobs (a load
average above the number of cores) a parallel region waits for its slowest thread, which the
scheduler may have descheduled; one thread each compares the code paths without that noise.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from benchmarks import REG_COVAR, make_mixture, warm_jit  # noqa: E402
from compare import gemm_peak, machine_description, print_machine  # noqa: E402

CONFIGS = {"b": (1_000_000, 8, 16), "f": (400_000, 24, 12)}
TARGETS = {"b": 30.0, "f": 15.0}  # the required ratios sklearn / fastgmm
TYPES = ("full", "tied", "diag", "spherical")


def _params(n_components, covariance_type, max_iter, extra=None):
    return {
        **(extra or {}),
        "n_components": n_components,
        "covariance_type": covariance_type,
        "tol": 0.0,
        "max_iter": max_iter,
        "reg_covar": REG_COVAR,
        "init_params": "random_from_data",
        "random_state": 0,
    }


def _fit(cls, X, params, threads):
    from threadpoolctl import threadpool_limits

    model = cls(**params)
    # threads=None: each library's defaults. Otherwise BLAS (scikit-learn's products) and
    # fastgmm's kernels (n_jobs) are held at that many threads.
    with threadpool_limits(limits=threads, user_api="blas"):
        start = time.perf_counter()
        model.fit(X)
        return time.perf_counter() - start, model


def time_per_iteration(cls, X, n_components, covariance_type, iters, repeat, threads=None):
    """Median seconds per iteration (difference of 1 and 1 + iters iterations) and a model."""
    extra = {"n_jobs": threads} if threads and cls.__module__.startswith("fastgmm") else None

    def params(max_iter):
        return _params(n_components, covariance_type, max_iter, extra)

    _fit(cls, X, params(1), threads)  # warm-up: caches, page faults
    samples, model = [], None
    for _ in range(repeat):
        short, _ = _fit(cls, X, params(1), threads)
        long, model = _fit(cls, X, params(1 + iters), threads)
        samples.append((long - short) / iters)
    return statistics.median(samples), samples, model


def run(args):
    from sklearn.mixture import BayesianGaussianMixture as SklearnBGM

    from fastgmm import BayesianGaussianMixture

    rows = []
    for name in args.configs:
        n_samples, n_features, n_components = CONFIGS[name]
        n_samples = args.n_samples or n_samples
        for covariance_type in args.types:
            X = make_mixture(n_samples, n_features, n_components, covariance_type, seed=0).X
            print(
                f"[{name}] N={n_samples} D={n_features} K={n_components} {covariance_type}: "
                f"median of {args.repeat}, {args.iters} timed iterations",
                flush=True,
            )
            timings = {}
            models = {}
            for label, cls in (("fastgmm", BayesianGaussianMixture), ("sklearn", SklearnBGM)):
                median, samples, models[label] = time_per_iteration(
                    cls, X, n_components, covariance_type, args.iters, args.repeat, args.threads
                )
                timings[label] = {"seconds_per_iteration": median, "all": samples}
                print(f"  {label:8s} {median:.4g} s/iter", flush=True)
            ours = models["fastgmm"].lower_bound_
            theirs = float(np.squeeze(models["sklearn"].lower_bound_))
            ratio = (
                timings["sklearn"]["seconds_per_iteration"]
                / timings["fastgmm"]["seconds_per_iteration"]
            )
            rel = abs(ours - theirs) / abs(theirs)
            print(f"  sklearn/fastgmm {ratio:.1f}x; lower bounds differ by {rel:.1e} (relative)")
            rows.append(
                {
                    "config": name,
                    "n_samples": n_samples,
                    "n_features": n_features,
                    "n_components": n_components,
                    "covariance_type": covariance_type,
                    "peers": timings,
                    "ratio": ratio,
                    "lower_bound_rel_diff": rel,
                }
            )
            del X, models
    return rows


def markdown(rows, peak, load_before, load_after, threads="each library's default"):
    lines = [
        "| config | N | D | K | type | fastgmm s/iter | sklearn s/iter | sklearn/fastgmm "
        "| target | lower bounds rel. diff |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| ({row['config']}) | {row['n_samples']:.0e} | {row['n_features']} "
            f"| {row['n_components']} | {row['covariance_type']} "
            f"| {row['peers']['fastgmm']['seconds_per_iteration']:.3g} "
            f"| {row['peers']['sklearn']['seconds_per_iteration']:.3g} "
            f"| {row['ratio']:.1f}x | {TARGETS[row['config']]:.0f}x "
            f"| {row['lower_bound_rel_diff']:.1e} |"
        )
    lines.append("")
    lines.append(
        "Seconds per iteration of BayesianGaussianMixture, median of repeats of (t(1 + iters) - "
        "t(1)) / iters, same data and start (random_from_data, random_state=0), tol=0. "
        f"Threads: {threads}. DGEMM peak in the same run: {peak:.1f} GFLOP/s; load average "
        f"(1, 5, 15 min) before {load_before}, after {load_after}."
    )
    return "\n".join(lines)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="b,f", help="comma-separated subset of b,f")
    parser.add_argument("--types", default=",".join(TYPES), help="covariance types")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--iters", type=int, default=3)
    parser.add_argument("--n-samples", type=int, default=None, help="override N (smoke runs)")
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="hold both at this many threads (BLAS and fastgmm's n_jobs); default: their own",
    )
    parser.add_argument("--gemm-size", type=int, default=4096)
    parser.add_argument("--json", default=None, help="also write the results to this file")
    args = parser.parse_args(argv)
    args.configs = args.config.split(",")
    args.types = args.types.split(",")
    bad = [c for c in args.configs if c not in CONFIGS] + [t for t in args.types if t not in TYPES]
    if bad:
        parser.error(f"unknown configuration(s) or type(s): {bad}")
    return args


def main(argv=None):
    args = parse_args(argv)
    warm_jit("float64")
    machine = machine_description(None)
    print_machine(machine)
    load_before = tuple(round(x, 2) for x in os.getloadavg())
    peak = gemm_peak(np.dtype(np.float64), args.gemm_size)
    print(f"DGEMM peak ({args.gemm_size}², best of 3): {peak:.1f} GFLOP/s")
    print(f"load average before: {load_before}\n", flush=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning: tol=0 never converges by design
        rows = run(args)
    load_after = tuple(round(x, 2) for x in os.getloadavg())
    print()
    threads = "each library's default" if args.threads is None else args.threads
    print(markdown(rows, peak, load_before, load_after, threads))
    if args.json:
        output = {
            "machine": machine,
            "gemm_peak_gflops": peak,
            "load_average_before": load_before,
            "load_average_after": load_after,
            "threads": args.threads,
            "results": rows,
        }
        Path(args.json).write_text(json.dumps(output, indent=2, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
