"""Write example inputs for the batch scripts: ``data/train.npy`` and ``data/heldout.npy``.

Usage: ``python make_data.py [N_ROWS] [DIRECTORY]`` (defaults: 200000 rows, ``data``). The rows
come from a known mixture of 4 Gaussians in 5 dimensions, so the scripts should choose K=4. The
held-out file has a quarter as many rows, drawn independently. Files are written chunk by
chunk through a memory map, so large N does not need the memory of the whole array.
"""

import sys
from pathlib import Path

import numpy as np

N_COMPONENTS, N_FEATURES = 4, 5
CHUNK = 100_000


def write(path, n_rows, rng, centres, scales):
    X = np.lib.format.open_memmap(path, mode="w+", dtype=np.float64, shape=(n_rows, N_FEATURES))
    for start in range(0, n_rows, CHUNK):
        stop = min(start + CHUNK, n_rows)
        labels = rng.integers(N_COMPONENTS, size=stop - start)
        noise = rng.normal(size=(stop - start, N_FEATURES))
        X[start:stop] = centres[labels] + noise * scales[labels]
    X.flush()
    del X


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    n_rows = int(argv[0]) if argv else 200_000
    directory = Path(argv[1] if len(argv) > 1 else "data")
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    centres = rng.normal(scale=5.0, size=(N_COMPONENTS, N_FEATURES))
    scales = rng.uniform(0.5, 1.5, size=(N_COMPONENTS, N_FEATURES))
    write(directory / "train.npy", n_rows, rng, centres, scales)
    write(directory / "heldout.npy", max(n_rows // 4, 1), rng, centres, scales)
    print(f"wrote {directory / 'train.npy'} ({n_rows} x {N_FEATURES}) and heldout.npy")


if __name__ == "__main__":
    main()
