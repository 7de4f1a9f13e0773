"""The Dask engine: seconds per EM iteration on a cluster against one process.

The configuration of the acceptance test: 20 blocks of 500,000 x 16 float64 rows (1.28 GB),
K = 16 full covariances, a two-worker ``LocalCluster`` with one thread per worker, against one
process fitting the same rows in memory with two threads. Rows are generated inside the workers
from a seeded generator per block (nothing is shipped from the client), then persisted. Both fits
start from the same explicit parameters with ``tol=0`` and time every iteration; the figure is
the median of iterations 2 to ``N_ITER`` (iteration 1 also pays the fit's validation pass).

It takes a few minutes and about 4 GB of memory, so it is run on purpose, not in CI::

    python asv_bench/benchmarks/bench_dask.py      # prints the figure
    asv run --python=same -b DaskIteration         # the same numbers, recorded by asv

``FASTGMM_DASK_BENCH_ROWS`` overrides the rows per block for a quick smoke run.
"""

import os
import time
import warnings

import numpy as np

N_BLOCKS = 20
BLOCK_ROWS = 500_000
N_FEATURES = 16
N_COMPONENTS = 16
N_ITER = 6
SEED = 0


def _truth():
    rng = np.random.default_rng(SEED)
    centres = rng.normal(scale=3.0, size=(N_COMPONENTS, N_FEATURES))
    scales = rng.uniform(0.5, 1.5, size=(N_COMPONENTS, N_FEATURES))
    return centres, scales


def _mixture_block(centres, scales, block_info=None):
    index = block_info[None]["chunk-location"][0]
    n_rows = block_info[None]["chunk-shape"][0]
    rng = np.random.default_rng([SEED, index])
    labels = rng.integers(len(centres), size=n_rows)
    return centres[labels] + rng.normal(size=(n_rows, centres.shape[1])) * scales[labels]


def _initial_parameters():
    """The truth, perturbed: every fit starts here (no k-means in the timing)."""
    centres, scales = _truth()
    rng = np.random.default_rng(SEED + 1)
    precisions = np.stack([np.diag(1.0 / (1.3 * s) ** 2) for s in scales])
    return {
        "weights_init": np.full(N_COMPONENTS, 1.0 / N_COMPONENTS),
        "means_init": centres + rng.normal(scale=0.5, size=centres.shape),
        "precisions_init": precisions,
    }


def _seconds_per_iteration(estimator, X):
    """Median wall time of iterations 2.. of one fit, from the estimator's per-iteration hook."""
    stamps = []
    # The verbose hook runs after every EM iteration; an instance attribute replaces it.
    estimator._print_verbose_msg_iter_end = lambda n_iter, change: stamps.append(
        time.perf_counter()
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tol=0 never converges, by design
        estimator.fit(X)
    return float(np.median(np.diff(stamps)))


def _model(max_iter=N_ITER, **extra):
    from fastgmm import GaussianMixture

    return GaussianMixture(
        N_COMPONENTS,
        covariance_type="full",
        tol=0,
        max_iter=max_iter,
        **_initial_parameters(),
        **extra,
    )


def measure(block_rows=BLOCK_ROWS):
    """Seconds per iteration on the cluster and in one process, and the time to make the data."""
    import dask.array as da
    from distributed import Client, LocalCluster, wait

    centres, scales = _truth()
    with (
        LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
        ) as cluster,
        Client(cluster),
    ):
        start = time.perf_counter()
        X = da.map_blocks(
            _mixture_block,
            centres,
            scales,
            chunks=((block_rows,) * N_BLOCKS, (N_FEATURES,)),
            dtype=np.float64,
            meta=np.empty((0, 0)),
        ).persist()
        wait(X)
        generate = time.perf_counter() - start
        # Load the compiled kernels in the workers first.
        _seconds_per_iteration(_model(max_iter=2), X[block_rows - 4096 : block_rows + 4096])
        on_cluster = _seconds_per_iteration(_model(), X)
        X_local = X.compute()
    _seconds_per_iteration(_model(max_iter=2, n_jobs=2), X_local[:4096])
    in_process = _seconds_per_iteration(_model(n_jobs=2), X_local)
    return {"dask": on_cluster, "single_process": in_process, "generate": generate}


class DaskIteration:
    """Seconds per EM iteration, K=16 full on 1e7 x 16 rows: 2 Dask workers vs 1 process."""

    timeout = 3600
    unit = "seconds"

    def setup_cache(self):
        rows = int(os.environ.get("FASTGMM_DASK_BENCH_ROWS", BLOCK_ROWS))
        return measure(rows)

    def track_dask_seconds_per_iteration(self, result):
        return result["dask"]

    def track_single_process_seconds_per_iteration(self, result):
        return result["single_process"]

    def track_dask_over_single_process(self, result):
        return result["dask"] / result["single_process"]

    track_dask_over_single_process.unit = "ratio"


def main():
    rows = int(os.environ.get("FASTGMM_DASK_BENCH_ROWS", BLOCK_ROWS))
    result = measure(rows)
    print(
        f"{N_BLOCKS} blocks of {rows} x {N_FEATURES} float64, K={N_COMPONENTS} full, "
        f"median of iterations 2-{N_ITER}"
    )
    print(f"generate + persist on the workers: {result['generate']:8.2f} s")
    print(f"Dask, 2 workers x 1 thread:        {result['dask']:8.2f} s per iteration")
    print(f"one process, 2 threads:            {result['single_process']:8.2f} s per iteration")
    print(f"ratio Dask / one process:          {result['dask'] / result['single_process']:8.2f}")


if __name__ == "__main__":
    main()
