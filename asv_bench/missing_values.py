#!/usr/bin/env python
"""What marginalising missing values costs: an EM iteration with NaN against one without.

For each D and fraction of entries missing (completely at random), the same rows are timed
twice in one process, side by side: complete, and with that fraction of entries replaced by NaN
(``missing='marginalize'``). An iteration is the engine's: one pass of the E-step statistics
(``provider.collect``) and the M-step, from the same fixed parameters (fixed work: the cost
cannot change with convergence). The two are timed alternately, ``--repeat`` times each, so that
the load of a shared machine falls on both alike; the medians (and the minima, the least
disturbed runs) are reported with their ratio, and the machine's load averages before and after.

The acceptance figure of the missing-value work is the first configuration's: at 20% missing,
D=8, K=8, N=1e6, full covariances, an iteration within 3x of a complete-data one.

Examples::

    python asv_bench/missing_values.py                       # D=8 and 32, 5/20/50% missing
    python asv_bench/missing_values.py --n-samples 200000 --features 8 --fractions 0.2
    python asv_bench/missing_values.py --json missing.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import numpy as np


def make_data(n_samples, n_features, n_components, fraction, seed=0):
    """Rows of a known mixture, and the same rows with ``fraction`` of the entries NaN (MCAR;
    a row left with no entry keeps its first)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=3.0, size=(n_components, n_features))
    X = centres[rng.integers(n_components, size=n_samples)] + rng.normal(
        size=(n_samples, n_features)
    )
    holes = X.copy()
    holes[rng.random(X.shape) < fraction] = np.nan
    empty = np.isnan(holes).all(axis=1)
    holes[empty, 0] = X[empty, 0]
    return X, holes, centres


def fixed_parameters(centres, covariance_type):
    """Parameters near the truth (unit covariances at shifted centres), for every run alike."""
    from fastgmm.covariance import get_model
    from fastgmm.stats import MixtureParams

    n_components, n_features = centres.shape
    model = get_model(covariance_type)
    start = {
        "full": np.repeat(np.eye(n_features)[None], n_components, axis=0),
        "tied": np.eye(n_features),
        "diag": np.ones((n_components, n_features)),
        "spherical": np.ones((n_components, n_features)),
    }[covariance_type]
    means, covariances, factors, extra = model.estimate(np.ones(n_components), centres + 0.1, start)
    weights = np.full(n_components, 1.0 / n_components)
    return MixtureParams(weights, means, covariances, factors, covariance_type, extra)


def time_iterations(X, holes, params, covariance_type, repeat, n_threads):
    """Seconds per iteration, complete and with NaN, timed alternately."""
    from fastgmm._jit import single_threaded_blas
    from fastgmm.covariance import get_model
    from fastgmm.em import MaximumLikelihood
    from fastgmm.providers import ArrayChunks

    model = get_model(covariance_type)
    runs = {
        "complete": (ArrayChunks(X), MaximumLikelihood(model, reg_covar=1e-6)),
        "missing": (ArrayChunks(holes), MaximumLikelihood(model, reg_covar=1e-6, missing=True)),
    }
    seconds = {name: [] for name in runs}

    def iteration(name):
        data, fitter = runs[name]
        start = time.perf_counter()
        [stats] = data.collect([fitter.request(params)], n_threads=n_threads)
        fitter.m_step(stats, params)
        return time.perf_counter() - start

    with single_threaded_blas():
        for name in runs:  # compile, and touch the data once
            iteration(name)
        for _ in range(repeat):
            for name in runs:
                seconds[name].append(iteration(name))
    return seconds


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n-samples", type=float, default=1e6)
    parser.add_argument("--features", default="8,32", help="comma-separated D (default 8,32)")
    parser.add_argument("--components", type=int, default=8)
    parser.add_argument("--fractions", default="0.05,0.2,0.5", help="fractions missing")
    parser.add_argument("--covariance-type", default="full")
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("--threads", type=int, default=None, help="default: all available")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args(argv)

    from fastgmm._jit import resolve_n_threads

    n_threads = resolve_n_threads(args.threads)
    n_samples = int(args.n_samples)
    load_before = os.getloadavg()
    print(
        f"N={n_samples} K={args.components} {args.covariance_type}, {n_threads} thread(s), "
        f"{os.cpu_count()} CPUs, load average before {load_before[0]:.2f} "
        f"{load_before[1]:.2f} {load_before[2]:.2f}; medians (minima) of {args.repeat} "
        "alternated runs"
    )
    results = []
    for n_features in (int(d) for d in args.features.split(",")):
        for fraction in (float(f) for f in args.fractions.split(",")):
            X, holes, centres = make_data(n_samples, n_features, args.components, fraction)
            params = fixed_parameters(centres, args.covariance_type)
            seconds = time_iterations(
                X, holes, params, args.covariance_type, args.repeat, n_threads
            )
            complete = statistics.median(seconds["complete"])
            missing = statistics.median(seconds["missing"])
            row = {
                "n_features": n_features,
                "fraction_missing": fraction,
                "rows_with_nan": float(np.isnan(holes).any(axis=1).mean()),
                "complete_s": complete,
                "missing_s": missing,
                "ratio": missing / complete,
                "complete_min_s": min(seconds["complete"]),
                "missing_min_s": min(seconds["missing"]),
                "ratio_of_minima": min(seconds["missing"]) / min(seconds["complete"]),
            }
            results.append(row)
            print(
                f"D={n_features:3d} {100 * fraction:4.0f}% missing "
                f"({100 * row['rows_with_nan']:5.1f}% of rows): complete "
                f"{1e3 * complete:8.1f} ms ({1e3 * row['complete_min_s']:.1f}), missing "
                f"{1e3 * missing:8.1f} ms ({1e3 * row['missing_min_s']:.1f}), ratio "
                f"{row['ratio']:.2f} ({row['ratio_of_minima']:.2f})",
                flush=True,
            )
    load_after = os.getloadavg()
    print(f"load average after {load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(
                {
                    "n_samples": n_samples,
                    "n_components": args.components,
                    "covariance_type": args.covariance_type,
                    "n_threads": n_threads,
                    "load_before": load_before,
                    "load_after": load_after,
                    "results": results,
                },
                f,
                indent=2,
            )


if __name__ == "__main__":
    main()
