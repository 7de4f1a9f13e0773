"""Model selection: fastgmm.select_model against a loop of scikit-learn fits.

The task: choose among K = 1..10 components x 4 covariance types by BIC on N rows of D = 8
features drawn from a known 5-component mixture. fastgmm advances all 40 candidates together,
one pass over the data per EM iteration, with one k-means per K; the reference is what a user
writes with scikit-learn: a loop of ``GaussianMixture(K, covariance_type=t).fit(X)`` and
``bic(X)``. Both use ``tol=1e-3, max_iter=100, n_init=1, reg_covar=1e-6, random_state=0``. This
benchmark times the whole selection, convergence included (it is a selection, not fixed work),
so ``track_*`` record the passes and the pick beside the time.

The one-off comparison behind the report's figure::

    python -m asv_bench.benchmarks.bench_selection --n-samples 100000 200000

prints both wall times, their ratio and both picks (and ``--json PATH`` saves them).

This module imports only NumPy at import time (asv imports every module to discover benchmarks).
"""

from __future__ import annotations

import argparse
import json
import time
import warnings

import numpy as np

N_FEATURES = 8
TRUE_COMPONENTS = 5
GRID = range(1, 11)
COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")
OPTIONS = {"tol": 1e-3, "max_iter": 100, "reg_covar": 1e-6}
SEED = 0


def make_data(n_samples, seed=SEED):
    """Rows from a 5-component full-covariance mixture in 8-D (separated, correlated)."""
    rng = np.random.default_rng(seed)
    means = rng.uniform(-12.0, 12.0, size=(TRUE_COMPONENTS, N_FEATURES))
    counts = rng.multinomial(n_samples, np.full(TRUE_COMPONENTS, 1 / TRUE_COMPONENTS))
    parts = []
    for mean, count in zip(means, counts):
        factor = rng.normal(size=(N_FEATURES, N_FEATURES)) / np.sqrt(N_FEATURES)
        cov = factor @ factor.T + 0.2 * np.eye(N_FEATURES)
        parts.append(rng.multivariate_normal(mean, cov, size=count))
    X = np.vstack(parts)
    return np.ascontiguousarray(X[rng.permutation(n_samples)])


def fastgmm_select(X, n_jobs=None):
    """``(seconds, (K, type), result)`` of fastgmm.select_model over the grid."""
    from sklearn.exceptions import ConvergenceWarning

    from fastgmm import select_model

    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        result = select_model(
            X,
            n_components=GRID,
            covariance_types=COVARIANCE_TYPES,
            random_state=SEED,
            n_jobs=n_jobs,
            **OPTIONS,
        )
    seconds = time.perf_counter() - start
    return seconds, (result.n_components_, result.covariance_type_), result


def sklearn_loop(X):
    """``(seconds, (K, type), records)`` of a loop of scikit-learn fits and their BIC."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.mixture import GaussianMixture

    records = []
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for k in GRID:
            for ctype in COVARIANCE_TYPES:
                gm = GaussianMixture(k, covariance_type=ctype, random_state=SEED, **OPTIONS)
                gm.fit(X)
                records.append(
                    {
                        "n_components": k,
                        "covariance_type": ctype,
                        "bic": gm.bic(X),
                        "n_iter": gm.n_iter_,
                        "converged": gm.converged_,
                    }
                )
    seconds = time.perf_counter() - start
    best = min(records, key=lambda r: r["bic"])
    return seconds, (best["n_components"], best["covariance_type"]), records


def _warm_jit():
    """Compile (or load from the cache) every kernel the selection uses, on a few rows."""
    fastgmm_select(make_data(2000, seed=1))


class SelectModel:
    """fastgmm.select_model over K = 1..10 x 4 covariance types (40 candidates)."""

    params = [100_000, 1_000_000]
    param_names = ["n_samples"]
    timeout = 1800

    def setup(self, n_samples):
        _warm_jit()
        self.X = make_data(n_samples)

    def time_select_model(self, n_samples):
        fastgmm_select(self.X)

    def peakmem_select_model(self, n_samples):
        fastgmm_select(self.X)

    def track_passes(self, n_samples):
        return fastgmm_select(self.X)[2].n_passes

    track_passes.unit = "passes over the data"

    def track_selected_n_components(self, n_samples):
        return fastgmm_select(self.X)[1][0]

    track_selected_n_components.unit = "components"


class SklearnLoop:
    """The reference: a loop of scikit-learn GaussianMixture fits over the same grid.

    Slow by design (at 1e6 rows it takes tens of minutes on two cores); run it with
    ``-b SklearnLoop`` when the ratio is wanted.
    """

    params = [100_000, 1_000_000]
    param_names = ["n_samples"]
    timeout = 7200
    number = 1
    repeat = 1

    def setup(self, n_samples):
        self.X = make_data(n_samples)

    def time_sklearn_loop(self, n_samples):
        sklearn_loop(self.X)


def compare(n_samples_list, *, json_path=None, n_jobs=None, plot_path=None):
    """Time both selections once per size; print and return the ratios and picks.

    ``plot_path`` saves fastgmm's BIC curves (:meth:`SelectionResult.plot`) of the first size.
    """
    rows = []
    _warm_jit()
    for n_samples in n_samples_list:
        X = make_data(n_samples)
        fast_seconds, fast_pick, result = fastgmm_select(X, n_jobs=n_jobs)
        if plot_path and not rows:
            ax = result.plot()
            ax.set_title(f"select_model, N={n_samples:,}, D={N_FEATURES}")
            ax.figure.savefig(plot_path, dpi=110, bbox_inches="tight")
        sk_seconds, sk_pick, sk_records = sklearn_loop(X)
        row = {
            "n_samples": n_samples,
            "n_features": N_FEATURES,
            "fastgmm_seconds": fast_seconds,
            "sklearn_seconds": sk_seconds,
            "ratio": fast_seconds / sk_seconds,
            "speedup": sk_seconds / fast_seconds,
            "fastgmm_pick": list(fast_pick),
            "sklearn_pick": list(sk_pick),
            "same_pick": fast_pick == sk_pick,
            "fastgmm_passes": result.n_passes,
            "fastgmm_total_iterations": int(sum(r["n_iter"] for r in result.results_)),
            "sklearn_total_iterations": int(sum(r["n_iter"] for r in sk_records)),
        }
        rows.append(row)
        print(
            f"N={n_samples:>9,}  fastgmm {fast_seconds:8.2f} s  sklearn loop {sk_seconds:8.2f} s"
            f"  ratio {row['ratio']:.4f} (speed-up {row['speedup']:.1f}x)  picks: fastgmm "
            f"{fast_pick}, sklearn {sk_pick}  passes {row['fastgmm_passes']}, iterations "
            f"{row['fastgmm_total_iterations']} vs {row['sklearn_total_iterations']}",
            flush=True,
        )
    if json_path:
        with open(json_path, "w") as f:
            json.dump(rows, f, indent=2)
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n-samples", type=int, nargs="+", default=[100_000])
    parser.add_argument("--n-jobs", type=int, default=None)
    parser.add_argument("--json", default=None, help="save the results to this file")
    parser.add_argument("--plot", default=None, help="save the BIC curves (needs matplotlib)")
    args = parser.parse_args(argv)
    compare(args.n_samples, json_path=args.json, n_jobs=args.n_jobs, plot_path=args.plot)


if __name__ == "__main__":
    main()
