"""mclust's model grid, fastgmm against R's ``Mclust``, and every model streamed from a file.

Two measurements for issue 17, printed as Markdown with the machine's load (the team's machine
is shared: the load average is printed before and after each part)::

    python asv_bench/mclust_vs_r.py speed                # 2e4 x 4 blobs, 3 alternating repeats
    python asv_bench/mclust_vs_r.py streamed             # 1e7 x 8 .npy in a temporary folder

``speed``: R's ``Mclust(X)`` with every default (14 models, G = 1..9, hierarchical start on a
sample of 2000 rows, ``emControl()``'s tol = 1e-5) against ``select_model(X, range(1, 10),
covariance_types='mclust', init_params='hc', convergence='mclust', tol=1e-5, reg_covar=0)``,
the same grid from the same kind of start with the same convergence test. R's time is taken
inside R (``system.time`` around ``Mclust`` alone, not R's start-up); the runs alternate, R then
fastgmm, so that both see the same load. fastgmm's kernels are loaded before the first timed
run. The blobs are five unit-variance clusters in 4 dimensions with centres drawn from
N(0, 4^2), as in tests/mclust_reference/generate.R's timings.

``streamed``: a ``.npy`` file of N x D blobs is written chunk by chunk (never held in memory),
then a fresh process fits every one of the fourteen models on it in shared passes
(``select_model(path, [K], covariance_types='mclust', init_params='hc', max_iter=..., tol=0)``,
fixed work) and a noise fit (``noise_init`` a mask of every row), and reports its peak resident
memory (``VmHWM``) beside the file's size.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
import warnings
from pathlib import Path

import numpy as np

R_SCRIPT = r"""
suppressMessages(library(mclust))
args <- commandArgs(trailingOnly = TRUE)
X <- as.matrix(read.csv(args[1], header = FALSE))
t <- system.time(fit <- Mclust(X, verbose = FALSE))[["elapsed"]]
cat(t, fit$modelName, fit$G, "\n")
"""


def blobs(n_samples, n_features, seed, n_clusters=5):
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=4.0, size=(n_clusters, n_features))
    return centres[rng.integers(n_clusters, size=n_samples)] + rng.normal(
        size=(n_samples, n_features)
    )


def load():
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


# ------------------------------------------------------------------------------------- speed
def fastgmm_grid(X, seed):
    from fastgmm import select_model

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        start = time.perf_counter()
        result = select_model(
            X,
            range(1, 10),
            covariance_types="mclust",
            init_params="hc",
            convergence="mclust",
            tol=1e-5,
            reg_covar=0.0,
            random_state=seed,
        )
    return time.perf_counter() - start, result.covariance_type_, result.n_components_


def speed(args):
    X = blobs(args.n_samples, args.n_features, args.seed)
    fastgmm_grid(X[:500], 0)  # load the compiled kernels (or compile them, the first time)
    use_r = not args.no_r and shutil.which("Rscript") is not None
    rows = []
    print(f"load average before: {load()}")
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "X.csv"
        np.savetxt(data, X, delimiter=",", fmt="%.17g")
        script = Path(tmp) / "mclust.R"
        script.write_text(R_SCRIPT)
        for i in range(args.repeat):
            row = {}
            if use_r:
                out = subprocess.run(
                    ["Rscript", str(script), str(data)], capture_output=True, text=True, check=True
                ).stdout.split()
                row["r"] = (float(out[0]), out[1], int(out[2]))
            row["fastgmm"] = fastgmm_grid(X, args.seed + i)
            rows.append(row)
    print(f"load average after: {load()}")
    print("\n| run | R Mclust (s) | R's choice | fastgmm (s) | fastgmm's choice |")
    print("|---|---|---|---|---|")
    for i, row in enumerate(rows):
        r = row.get("r", (float("nan"), "-", 0))
        f = row["fastgmm"]
        print(f"| {i + 1} | {r[0]:.2f} | {r[1]},{r[2]} | {f[0]:.3f} | {f[1]},{f[2]} |")
    f_med = float(np.median([row["fastgmm"][0] for row in rows]))
    summary = {"n_samples": args.n_samples, "n_features": args.n_features, "fastgmm": f_med}
    line = f"\nmedians: fastgmm {f_med:.3f} s"
    if use_r:
        r_med = float(np.median([row["r"][0] for row in rows]))
        summary["r"] = r_med
        line += f", R {r_med:.2f} s, R / fastgmm = {r_med / f_med:.1f}"
    print(line)
    return summary


# ---------------------------------------------------------------------------------- streamed
CHILD = textwrap.dedent(
    """
    import json, sys, time, warnings
    import numpy as np

    def peak_rss_mb():
        # VmHWM, this process's own high-water mark: getrusage's ru_maxrss keeps that of the
        # process it was forked from (Linux carries it across exec), here the parent that
        # has just written the data file.
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024

    from fastgmm import GaussianMixture, select_model
    path, n_rows, k, max_iter = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    warnings.simplefilter("ignore")
    start = time.perf_counter()
    result = select_model(path, [k], covariance_types="mclust", init_params="hc",
                          max_iter=max_iter, tol=0.0, random_state=0)
    grid = time.perf_counter() - start
    failed = [r["covariance_type"] for r in result.results_ if r["error"]]
    mask = np.zeros(n_rows, dtype=bool)
    mask[::1000] = True
    start = time.perf_counter()
    noisy = GaussianMixture(k, covariance_type="EEE", init_params="hc", max_iter=max_iter,
                            tol=0.0, noise_init=mask, random_state=0).fit(path)
    noise = time.perf_counter() - start
    print(json.dumps({
        "grid_seconds": grid, "n_passes": result.n_passes, "failed": failed,
        "noise_seconds": noise, "noise_weight": noisy.noise_weight_,
        "peak_rss_mb": peak_rss_mb(),
    }))
    """
)


def write_npy(path, n_samples, n_features, seed, chunk=1_000_000):
    out = np.lib.format.open_memmap(
        path, mode="w+", dtype=np.float64, shape=(n_samples, n_features)
    )
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=4.0, size=(5, n_features))
    for start in range(0, n_samples, chunk):
        stop = min(start + chunk, n_samples)
        out[start:stop] = centres[rng.integers(5, size=stop - start)] + rng.normal(
            size=(stop - start, n_features)
        )
    out.flush()
    del out


def streamed(args):
    with tempfile.TemporaryDirectory(dir=args.tmpdir) as tmp:
        path = Path(tmp) / "X.npy"
        write_npy(path, args.n_samples, args.n_features, args.seed)
        size_mb = path.stat().st_size / 2**20
        print(f"load average before: {load()}")
        out = subprocess.run(
            [sys.executable, "-c", CHILD, str(path), str(args.n_samples), str(args.k),
             str(args.max_iter)],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        print(f"load average after: {load()}")
    report = json.loads(out.strip().splitlines()[-1])
    report.update(file_mb=size_mb, n_samples=args.n_samples, n_features=args.n_features)
    print(
        f"\n{args.n_samples} x {args.n_features} .npy ({size_mb:.0f} MB): the 14 models at "
        f"K={args.k}, {args.max_iter} EM iterations each, in {report['n_passes']} shared passes: "
        f"{report['grid_seconds']:.1f} s; a noise fit (EEE): {report['noise_seconds']:.1f} s; "
        f"peak RSS {report['peak_rss_mb']:.0f} MB (failed: {report['failed'] or 'none'})"
    )
    return report


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="part", required=True)
    p = sub.add_parser("speed")
    p.add_argument("--n-samples", type=int, default=20_000)
    p.add_argument("--n-features", type=int, default=4)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--no-r", action="store_true", help="time fastgmm alone")
    p = sub.add_parser("streamed")
    p.add_argument("--n-samples", type=int, default=10_000_000)
    p.add_argument("--n-features", type=int, default=8)
    p.add_argument("-k", type=int, default=4)
    p.add_argument("--max-iter", type=int, default=5)
    p.add_argument("--tmpdir", default=None, help="where the .npy is written (default: /tmp)")
    for p in sub.choices.values():
        p.add_argument("--seed", type=int, default=1)
        p.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    report = speed(args) if args.part == "speed" else streamed(args)
    report["machine_peak_rss_mb_of_this_process"] = (
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    )
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
