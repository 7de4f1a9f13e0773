"""Out-of-core fitting
===================

Fit a mixture to a file chunk by chunk, score it into a file, and learn online.

Run it with ``python examples/out_of_core.py``. It writes a 200,000-row ``.npy`` file (about
13 MB; ``FASTGMM_EXAMPLE_N`` sets another number of rows) to a temporary directory, then

1. fits a GaussianMixture *through the file*: each EM iteration is one pass over the file in
   65,536-row chunks, read by a background thread while the kernels work; the model equals the
   one fitted to the array in memory;
2. writes the labels of every row to another ``.npy`` file chunk by chunk (``out=``), so that
   scoring a file larger than memory needs little memory;
3. learns the same mixture online with ``partial_fit``, one chunk at a time, as one would on a
   stream that cannot be read twice.

The same calls accept HDF5, Zarr, Parquet and CSV files, or a callable returning an iterator of
chunks (see ``fastgmm.open_source``). The picture shows how the two learners climb: batch EM
gains a step of likelihood per pass over the file, online EM one small step per chunk.
"""

import os
import tempfile
import warnings
from pathlib import Path

import numpy as np
from _common import PALETTE, new_figure, save_figure
from sklearn.exceptions import ConvergenceWarning

from fastgmm import GaussianMixture, open_source


def write_data(path, n_samples, seed=0):
    """Four well separated 8-D clusters, written to ``path`` chunk by chunk."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=4.0, size=(4, 8))
    X = np.lib.format.open_memmap(path, mode="w+", dtype=np.float64, shape=(n_samples, 8))
    for start in range(0, n_samples, 100_000):
        rows = min(100_000, n_samples - start)
        labels = rng.integers(4, size=rows)
        X[start : start + rows] = centres[labels] + rng.normal(size=(rows, 8))
    X.flush()


def main():
    n_samples = int(os.environ.get("FASTGMM_EXAMPLE_N") or 200_000)
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "X.npy"
        write_data(path, n_samples)

        # 1. Exact EM through the file, and the same fit in memory for comparison.
        source = open_source(path)
        print(source)
        streamed = GaussianMixture(4, random_state=0).fit(source)
        in_memory = GaussianMixture(4, random_state=0).fit(np.load(path))
        gap = np.max(np.abs(streamed.means_ - in_memory.means_))
        print(
            f"streamed fit: {streamed.n_iter_} passes, mean log-likelihood "
            f"{streamed.lower_bound_:.6f}; largest difference to the in-memory means {gap:.1e}"
        )

        # 2. Labels of every row, written into a .npy file chunk by chunk.
        labels_path = Path(directory) / "labels.npy"
        streamed.predict(source, out=labels_path)
        labels = np.load(labels_path, mmap_mode="r")
        print(
            f"labels written to {labels_path.name}: shape {labels.shape}, "
            f"cluster sizes {np.bincount(labels).tolist()}"
        )

        # 3. Online EM: one E-step and M-step per chunk, three passes over 20 chunks. The
        # score of the whole file after each chunk is only for the picture.
        online = GaussianMixture(4, random_state=0)
        chunks = open_source(path, batch_size=max(1_000, n_samples // 20))
        n_chunks = -(-n_samples // chunks.batch_size)
        online_scores = []
        for _ in range(3):
            for _, chunk in chunks.iter_chunks():
                online.partial_fit(chunk)
                online_scores.append(online.score(source))
        print(
            f"online EM after {online.n_iter_} chunks: mean log-likelihood "
            f"{online.score(source):.6f} (batch EM: {streamed.score(source):.6f})"
        )
        sample = np.load(path, mmap_mode="r")[: min(n_samples, 4000)]
        plot(streamed, online_scores, n_chunks, sample, labels[: len(sample)])


def plot(streamed, online_scores, n_chunks, sample, labels):
    """The climb of both learners, and a sample of the file coloured by the written labels."""
    fig, axes = new_figure(n_cols=2, size=(5.6, 4.6))
    if fig is None:
        return
    ax, ax_rows = axes
    passes = np.arange(1, len(streamed.lower_bounds_) + 1)
    ax.plot(
        passes, streamed.lower_bounds_, "o", color=PALETTE[0], label="batch EM, after each pass"
    )
    ax.axhline(streamed.lower_bound_, color=PALETTE[0], linestyle="--", linewidth=1)
    seen = np.arange(1, len(online_scores) + 1) / n_chunks
    ax.plot(seen, online_scores, ".-", color=PALETTE[1], label="online EM, after each chunk")
    low = min(min(streamed.lower_bounds_), min(online_scores))
    span = streamed.lower_bound_ - low
    ax.set_ylim(low - 0.05 * span, streamed.lower_bound_ + 0.15 * span)
    ax.set_xlabel("passes over the file")
    ax.set_ylabel("mean log-likelihood of the file")
    ax.set_title("batch EM: a step per pass; online EM: a small one per chunk", fontsize=10)
    ax.legend(loc="lower right", fontsize=8)
    colours = PALETTE[np.asarray(labels) % len(PALETTE)]
    ax_rows.scatter(sample[:, 0], sample[:, 1], c=colours, s=6, linewidths=0)
    ax_rows.plot(*streamed.means_[:, :2].T, "k+", markersize=12, mew=2, label="fitted means")
    ax_rows.set_xlabel("feature 1 of 8")
    ax_rows.set_ylabel("feature 2 of 8")
    ax_rows.set_title("rows coloured by the labels written to labels.npy", fontsize=10)
    ax_rows.legend(loc="best", fontsize=8)
    save_figure(fig, "out_of_core")


if __name__ == "__main__":
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        main()
