"""Fit a Gaussian mixture on a Dask cluster, and check it against the in-memory fit.

A two-worker ``LocalCluster`` on this machine stands in for a real cluster; on SLURM, replace it
by ``dask_jobqueue.SLURMCluster`` (see the README) and nothing else changes. The rows are
generated inside the workers, block by block from a seeded generator, so the client never holds
them during the fit (and Dask can regenerate any block whose worker is lost).

Run::

    python examples/dask_cluster.py                          # 1,000,000 rows
    FASTGMM_EXAMPLE_N=20000 python examples/dask_cluster.py  # a quick run, as CI does

It prints the timings of both fits and how closely they agree: with the same ``random_state``
the Dask fit starts from the same initialisation and reaches the same model up to rounding.
"""

import os
import time
import warnings

import numpy as np

N_FEATURES = 8
N_COMPONENTS = 6
N_BLOCKS = 8
SEED = 0


def _centres():
    return np.random.default_rng(SEED).normal(scale=5.0, size=(N_COMPONENTS, N_FEATURES))


def _mixture_block(centres, block_info=None):
    """One block of rows from the mixture, from a generator seeded by the block's index."""
    index = block_info[None]["chunk-location"][0]
    n_rows = block_info[None]["chunk-shape"][0]
    rng = np.random.default_rng([SEED, index])
    labels = rng.integers(len(centres), size=n_rows)
    scales = 0.5 + np.arange(len(centres))[labels, None] / len(centres)
    return centres[labels] + rng.normal(size=(n_rows, N_FEATURES)) * scales


def mixture_rows(n_samples):
    """A lazy ``(n_samples, N_FEATURES)`` Dask array in ``N_BLOCKS`` row blocks."""
    import dask.array as da

    block = -(-n_samples // N_BLOCKS)
    rows = tuple(min(block, n_samples - start) for start in range(0, n_samples, block))
    return da.map_blocks(
        _mixture_block,
        _centres(),
        chunks=(rows, (N_FEATURES,)),
        dtype=np.float64,
        meta=np.empty((0, 0)),
    )


def main():
    from distributed import Client, LocalCluster
    from sklearn.exceptions import ConvergenceWarning

    from fastgmm import GaussianMixture

    n_samples = int(os.environ.get("FASTGMM_EXAMPLE_N", "1000000"))
    settings = dict(covariance_type="full", tol=1e-4, max_iter=200, random_state=0)
    warnings.simplefilter("ignore", ConvergenceWarning)

    with (
        LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
        ) as cluster,
        Client(cluster) as client,
    ):
        n_workers = len(client.scheduler_info()["workers"])
        print(f"cluster: {n_workers} workers at {cluster.scheduler_address}")
        X = mixture_rows(n_samples)
        print(
            f"data: {n_samples} x {N_FEATURES} float64, {X.numblocks[0]} blocks made on the workers"
        )

        start = time.perf_counter()
        on_dask = GaussianMixture(N_COMPONENTS, **settings).fit(X)
        dask_seconds = time.perf_counter() - start
        labels = on_dask.predict(X)  # lazy: one task per block
        dask_labels = labels.compute()
        print(
            f"Dask fit:      {dask_seconds:7.2f} s, {on_dask.n_iter_} iterations, "
            f"lower bound {on_dask.lower_bound_:.10f}"
        )
        X_local = X.compute()  # only for the comparison below

    start = time.perf_counter()
    in_memory = GaussianMixture(N_COMPONENTS, **settings).fit(X_local)
    memory_seconds = time.perf_counter() - start
    print(
        f"in-memory fit: {memory_seconds:7.2f} s, {in_memory.n_iter_} iterations, "
        f"lower bound {in_memory.lower_bound_:.10f}"
    )

    for name in ("weights_", "means_", "covariances_"):
        ours, reference = getattr(on_dask, name), getattr(in_memory, name)
        relative = np.max(np.abs(ours - reference)) / np.max(np.abs(reference))
        print(f"max relative difference of {name:<13} {relative:.1e}")
    agree = np.mean(dask_labels == in_memory.predict(X_local))
    print(f"labels that agree: {100 * agree:.4f} %")


if __name__ == "__main__":
    main()
