"""Fitting on a Dask cluster
=========================

Fit a Gaussian mixture on a Dask cluster, and check it against the in-memory fit.

A two-worker ``LocalCluster`` on this machine stands in for a real cluster; on SLURM, replace it
by ``dask_jobqueue.SLURMCluster`` (see the README) and nothing else changes. The rows are
generated inside the workers, block by block from a seeded generator, so the client never holds
them during the fit (and Dask can regenerate any block whose worker is lost).

Run::

    python examples/dask_cluster.py                          # 1,000,000 rows
    FASTGMM_EXAMPLE_N=20000 python examples/dask_cluster.py  # a quick run, as CI does

It prints the timings of both fits and how closely they agree: with the same ``random_state``
the Dask fit starts from the same initialisation and reaches the same model up to rounding. The
picture follows both fits iteration by iteration: their lower bounds lie on top of each other,
and their difference stays at the level of float64 rounding.
"""

import os
import time
import warnings

import numpy as np
from _common import PALETTE, new_figure, save_figure

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
    plot(on_dask, in_memory)


def plot(on_dask, in_memory):
    """Both fits' lower bounds per iteration, and how far apart they are."""
    fig, axes = new_figure(n_cols=2, size=(5.6, 4.4))
    if fig is None:
        return
    from matplotlib.ticker import MaxNLocator

    ax, ax_gap = axes
    dask_bounds = np.asarray(on_dask.lower_bounds_)
    memory_bounds = np.asarray(in_memory.lower_bounds_)
    ax.plot(
        np.arange(1, len(memory_bounds) + 1),
        memory_bounds,
        "o-",
        color=PALETTE[0],
        markersize=7,
        label="in memory",
    )
    ax.plot(
        np.arange(1, len(dask_bounds) + 1),
        dask_bounds,
        "x--",
        color=PALETTE[1],
        markersize=7,
        label="on the Dask cluster",
    )
    ax.ticklabel_format(axis="y", useOffset=False)
    for a in axes:
        a.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("EM iteration")
    ax.set_ylabel("lower bound (mean log-likelihood)")
    ax.set_title("the same EM path, on a cluster and in memory", fontsize=10)
    ax.legend(loc="lower right", fontsize=8)
    n = min(len(dask_bounds), len(memory_bounds))
    gap = np.abs(dask_bounds[:n] - memory_bounds[:n]) / np.abs(memory_bounds[:n])
    # Zero differences (bit-identical iterations) would vanish from a log scale: show them on
    # the bottom edge so that every iteration has its point.
    shown = np.maximum(gap, 1e-18)
    ax_gap.semilogy(np.arange(1, n + 1), shown, "o-", color=PALETTE[2])
    ax_gap.axhline(np.finfo(np.float64).eps, color="0.4", linestyle=":", label="float64 epsilon")
    ax_gap.set_ylim(1e-18, 1e-6)
    ax_gap.set_xlabel("EM iteration")
    ax_gap.set_ylabel("relative difference of the lower bounds")
    ax_gap.set_title("difference: rounding only (bottom edge: identical)", fontsize=10)
    ax_gap.legend(loc="upper right", fontsize=8)
    save_figure(fig, "dask_cluster")


if __name__ == "__main__":
    main()
