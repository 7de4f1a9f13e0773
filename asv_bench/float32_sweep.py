#!/usr/bin/env python
"""float32 against float64 on the same numbers, over the means' spread and the conditioning.

A test-free benchmark for issue 16's rule that float32 input is never slower than float64 input.
For each ``(scale, condition)`` it draws blobs (``benchmarks.make_blobs``: centres at ``scale``,
each covariance's eigenvalues spread from 1 to ``condition``), converts them to float32, and
times fastgmm's EM iteration on the float32 rows and on their float64 copy, interleaved in one
process (median of ``--repeat`` differences of fits with 1 and ``1 + iters`` iterations). It
prints the ratio float64 / float32 (at least 1 means float32 is not slower) and the kernel
arithmetic the float32 rows took at the end (``fastgmm.estep``'s choice).

Example::

    python asv_bench/float32_sweep.py --shape 200000,16,8 --covariance-type full,diag
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchmarks import fixed_work_params, make_blobs


def arithmetic(model, n_rows):
    """The kernel path and precision float32 rows take under the model's final parameters."""
    from fastgmm.covariance import get_model
    from fastgmm.estep import choose_path
    from fastgmm.stats import POOLED, MixtureParams

    covariance = get_model(model.covariance_type)
    params = MixtureParams(
        model.weights_,
        model.means_,
        model.covariances_,
        model.precisions_cholesky_,
        model.covariance_type,
    )
    layout, kind = covariance.layout(params), covariance.statistics
    if kind != POOLED and layout.feature_map(np.float32, kind, n_rows) is not None:
        return "single map"
    if choose_path(layout, kind, np.float64) == "map":
        return "double map"
    return "single " + choose_path(layout, kind) if layout.single_precision_suits() else "double"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", default="200000,16,8", help="N,D,K")
    parser.add_argument("--covariance-type", default="full,tied,diag,spherical")
    parser.add_argument("--scales", default="1,3,6,12,24")
    parser.add_argument("--conditions", default="1,10,100,1000")
    parser.add_argument("--iters", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    from fastgmm import GaussianMixture

    n, d, k = (int(float(v)) for v in args.shape.split(","))
    print(f"load average {os.getloadavg()}; N={n} D={d} K={k}; float64 / float32 per iteration")
    worst = None
    for ctype in args.covariance_type.split(","):
        for scale in (float(v) for v in args.scales.split(",")):
            for condition in (float(v) for v in args.conditions.split(",")):
                mixture = make_blobs(
                    n, d, k, ctype, dtype=np.float32, scale=scale, condition=condition
                )
                wide = mixture.X.astype(np.float64)

                def fit(X, max_iter, mixture=mixture):
                    model = GaussianMixture(**fixed_work_params(mixture, max_iter=max_iter))
                    start = time.perf_counter()
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        model.fit(X)
                    return time.perf_counter() - start, model

                fit(mixture.X, 1), fit(wide, 1)  # warm-up
                single, double = [], []
                for _ in range(args.repeat):
                    for X, out in ((mixture.X, single), (wide, double)):
                        one, _ = fit(X, 1)
                        more, model = fit(X, 1 + args.iters)
                        out.append((more - one) / args.iters)
                ratio = statistics.median(double) / statistics.median(single)
                path = arithmetic(model, n)
                worst = ratio if worst is None else min(worst, ratio)
                print(
                    f"{ctype:9s} scale {scale:5g} cond {condition:6g}: float32 "
                    f"{statistics.median(single):.4f} s, float64 {statistics.median(double):.4f} s,"
                    f" ratio {ratio:.2f} ({path})",
                    flush=True,
                )
    print(f"smallest float64 / float32 ratio: {worst:.2f}; load average {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
