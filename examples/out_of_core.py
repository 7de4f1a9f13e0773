"""Out of core: fit a mixture to a file chunk by chunk, score it into a file, and learn online.

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
chunks (see ``fastgmm.open_source``).
"""

import os
import tempfile
import warnings
from pathlib import Path

import numpy as np
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

        # 3. Online EM: one E-step and M-step per chunk, three passes over 20 chunks.
        online = GaussianMixture(4, random_state=0)
        chunks = open_source(path, batch_size=max(1_000, n_samples // 20))
        for _ in range(3):
            for _, chunk in chunks.iter_chunks():
                online.partial_fit(chunk)
        print(
            f"online EM after {online.n_iter_} chunks: mean log-likelihood "
            f"{online.score(source):.6f} (batch EM: {streamed.score(source):.6f})"
        )


if __name__ == "__main__":
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        main()
