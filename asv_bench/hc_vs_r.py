"""Time fastgmm's hierarchical agglomeration and R's mclust ``hc()`` side by side.

Both build the same tree (``hc(X, modelName = "VVV", use = "SVD")``) on the same data in the same
run; the script checks that the merge sequences agree and prints the median times::

    python asv_bench/hc_vs_r.py                      # 2000 x 4 and 2000 x 10, 5 repeats each
    python asv_bench/hc_vs_r.py --n-samples 500 --features 3 --repeat 3

R's time is measured inside R (``system.time`` around ``hc()`` alone, after one warm-up call),
fastgmm's around ``hc_tree`` after one call that loads the compiled kernel. Needs ``Rscript`` with
mclust on the PATH.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

R_SCRIPT = r"""
suppressMessages(library(mclust))
args <- commandArgs(trailingOnly = TRUE)
X <- as.matrix(read.csv(args[1], header = FALSE))
repeats <- as.integer(args[2])
tree <- hc(X, modelName = "VVV", use = "SVD")  # warm-up
times <- sapply(seq_len(repeats), function(i)
  system.time(tree <- hc(X, modelName = "VVV", use = "SVD"))[["elapsed"]])
write.table(t(unclass(tree)[, ]), args[3], sep = ",", row.names = FALSE, col.names = FALSE)
cat(times, sep = "\n")
"""


def mixture(n_samples: int, n_features: int, seed: int) -> np.ndarray:
    """Four Gaussian clusters of unequal sizes, rounded to 4 decimals (written exactly to CSV)."""
    rng = np.random.default_rng(seed)
    sizes = np.array([0.35, 0.3, 0.2, 0.15]) * n_samples
    sizes = np.diff(np.round(np.concatenate([[0], np.cumsum(sizes)])).astype(int))
    blocks = [
        rng.normal(size=(m, n_features))
        @ (np.eye(n_features) + 0.5 * rng.normal(size=(n_features,) * 2))
        + rng.normal(scale=4.0, size=n_features)
        for m in sizes
    ]
    return np.round(np.vstack(blocks), 4)


def time_r(X: np.ndarray, repeat: int, workdir: Path) -> tuple[list[float], np.ndarray]:
    data = workdir / "X.csv"
    merges = workdir / "merges.csv"
    script = workdir / "hc.R"
    np.savetxt(data, X, delimiter=",", fmt="%.4f")
    script.write_text(R_SCRIPT)
    out = subprocess.run(
        ["Rscript", str(script), str(data), str(repeat), str(merges)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    times = [float(line) for line in out.split()]
    return times, np.loadtxt(merges, delimiter=",", dtype=np.int64) - 1


def time_fastgmm(X: np.ndarray, repeat: int, n_jobs) -> tuple[list[float], np.ndarray]:
    from fastgmm.hierarchical import hc_tree

    hc_tree(X[:50], n_jobs=n_jobs)  # loads (or compiles) the kernel
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        tree = hc_tree(X, n_jobs=n_jobs)
        times.append(time.perf_counter() - start)
    return times, tree.merges


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n-samples", type=int, default=2000)
    parser.add_argument("--features", type=int, nargs="+", default=[4, 10])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--n-jobs", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    if shutil.which("Rscript") is None:
        print("Rscript is not on the PATH: nothing to compare with.", file=sys.stderr)
        return 1
    rows = []
    print("| data | R hc() median (s) | fastgmm hc_tree median (s) | R / fastgmm | same merges |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for n_features in args.features:
            X = mixture(args.n_samples, n_features, args.seed + n_features)
            r_times, r_merges = time_r(X, args.repeat, Path(tmp))
            f_times, f_merges = time_fastgmm(X, args.repeat, args.n_jobs)
            r_med, f_med = float(np.median(r_times)), float(np.median(f_times))
            same = bool(np.array_equal(r_merges, f_merges))
            rows.append(
                {
                    "n_samples": args.n_samples,
                    "n_features": n_features,
                    "r_times": r_times,
                    "fastgmm_times": f_times,
                    "same_merges": same,
                }
            )
            print(
                f"| {args.n_samples} x {n_features} | {r_med:.3f} | {f_med:.3f} | "
                f"{r_med / f_med:.1f} | {same} |"
            )
    if args.json:
        args.json.write_text(json.dumps({"results": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
