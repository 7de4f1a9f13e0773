"""Helpers shared by the teaching examples: sizes from the environment, and plotting.

Every example reads its size from ``FASTGMM_EXAMPLE_N`` (CI and the documentation's gallery run
them at the sizes in ``SMALL_N``), its seed from ``FASTGMM_EXAMPLE_SEED`` and writes its PNG to
``FASTGMM_EXAMPLE_OUTDIR`` (default: next to the script). Plots use ``matplotlib.figure.Figure``
directly rather than ``pyplot``: no GUI backend is chosen, no global figure state is kept, and a
missing matplotlib only skips the picture. An example names its own PNG (``save_figure(fig,
"soft_clustering")``) rather than deriving it from ``__file__``, which sphinx-gallery does not
define when it runs the examples for the documentation.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

EXAMPLES_DIR = Path(__file__).resolve().parent

# The number of rows (FASTGMM_EXAMPLE_N) each example runs with in tests/test_examples.py and in
# the documentation's gallery (docs/_ext/fastgmm_docs.py): small enough to run in seconds, large
# enough for what each example claims to hold (the tests check the claims at these sizes).
SMALL_N = {
    "quickstart": 600,
    "soft_clustering": 600,
    "gmm_vs_kmeans": 600,
    "anomaly_detection": 600,
    "choosing_k": 600,
    "bayesian_vs_em": 1500,
    "density_and_sampling": 1000,
    "out_of_core": 20_000,
    "dask_cluster": 20_000,
    "digits": 1797,  # the real data sets are used whole (the image: pixels to fit on)
    "wine": 178,
    "breast_cancer": 569,
    "colour_segmentation": 5000,
    "mclust_models": 600,
    "missing_values": 569,
}

# matplotlib's "tab10" colours, as RGB, so that memberships can be blended without matplotlib.
PALETTE = np.array(
    [
        [0.12, 0.47, 0.71],
        [1.00, 0.50, 0.05],
        [0.17, 0.63, 0.17],
        [0.84, 0.15, 0.16],
        [0.58, 0.40, 0.74],
        [0.55, 0.34, 0.29],
        [0.89, 0.47, 0.76],
        [0.50, 0.50, 0.50],
    ]
)


def env_int(name: str, default: int, minimum: int = 1) -> int:
    """An integer setting from the environment, with a message that names a bad value."""
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        raise SystemExit(f"{name}={text!r} is not an integer") from None
    if value < minimum:
        raise SystemExit(f"{name}={value} must be at least {minimum}")
    return value


def example_size(default: int, minimum: int = 50) -> int:
    """Number of rows to generate: ``FASTGMM_EXAMPLE_N`` or ``default``."""
    return env_int("FASTGMM_EXAMPLE_N", default, minimum)


def example_seed() -> int:
    """Seed of the generated data and of the fits: ``FASTGMM_EXAMPLE_SEED`` or 0."""
    return env_int("FASTGMM_EXAMPLE_SEED", 0, minimum=0)


def output_path(name: str, suffix: str = ".png") -> Path:
    """``<FASTGMM_EXAMPLE_OUTDIR or the examples' folder>/<name><suffix>``."""
    directory = os.environ.get("FASTGMM_EXAMPLE_OUTDIR") or EXAMPLES_DIR
    return Path(directory) / (Path(name).stem + suffix)


def new_figure(n_cols: int = 1, n_rows: int = 1, size=(6.0, 5.0)):
    """A figure and its axes, or ``(None, None)`` when matplotlib is not installed."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        print("plot: skipped (matplotlib is not installed; pip install 'fastgmm[plot]')")
        return None, None
    fig = Figure(figsize=(size[0] * n_cols, size[1] * n_rows), layout="constrained")
    axes = fig.subplots(n_rows, n_cols, squeeze=False)
    return fig, axes.ravel()


def new_mosaic(layout, size=(12.0, 8.0), **kwargs):
    """A figure with axes laid out by ``Figure.subplot_mosaic``, or ``(None, None)``."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        print("plot: skipped (matplotlib is not installed; pip install 'fastgmm[plot]')")
        return None, None
    fig = Figure(figsize=size, layout="constrained")
    return fig, fig.subplot_mosaic(layout, **kwargs)


def save_figure(fig, name: str) -> Path:
    """Write ``fig`` as the PNG ``<name>.png`` and say where."""
    path = output_path(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=100)
    print(f"plot: {path}")
    return path


def full_covariances(gm) -> np.ndarray:
    """The (n_components, d, d) covariance matrices of a fitted mixture, whatever its type."""
    from fastgmm.covariance import get_model

    n_components, n_features = gm.means_.shape
    return get_model(gm.covariance_type).dense(gm.covariances_, n_components, n_features)


def mahalanobis(X: np.ndarray, mean: np.ndarray, covariance: np.ndarray) -> np.ndarray:
    """Distance of each row of ``X`` to ``mean`` in units of ``covariance`` (sqrt of x'S^-1x)."""
    diff = X - mean
    solved = np.linalg.solve(covariance, diff.T).T
    return np.sqrt(np.einsum("ij,ij->i", diff, solved))


def draw_ellipses(ax, means, covariances, colours, n_stds=(1, 2), label=True):
    """Draw the 1- and 2-sigma ellipses of 2-D Gaussians (solid, then dashed).

    The n-sigma ellipse is the set of points at Mahalanobis distance n from the mean: its axes
    point along the covariance's eigenvectors, with half-lengths n times the square roots of
    the eigenvalues.
    """
    from matplotlib.patches import Ellipse

    for k, (mean, cov) in enumerate(zip(means, covariances)):
        values, vectors = np.linalg.eigh(cov)
        angle = np.degrees(np.arctan2(vectors[1, -1], vectors[0, -1]))
        for n_std, style in zip(n_stds, ("-", "--", ":")):
            ax.add_patch(
                Ellipse(
                    mean,
                    2 * n_std * np.sqrt(values[-1]),
                    2 * n_std * np.sqrt(values[0]),
                    angle=angle,
                    fill=False,
                    linestyle=style,
                    linewidth=1.6,
                    edgecolor=colours[k] * 0.75,
                )
            )
        ax.plot(*mean, marker="+", markersize=12, mew=2, color="black")
    if label:
        # Legend entries in neutral grey: the ellipses themselves take their component's colour.
        for n_std, style in zip(n_stds, ("-", "--", ":")):
            ax.plot([], [], linestyle=style, color="0.35", label=f"{n_std}-sigma ellipse")
        ax.plot([], [], linestyle="none", marker="+", mew=2, color="black", label="mean")


def blend(proba: np.ndarray) -> np.ndarray:
    """RGB colour of each row: the component colours mixed by membership probability."""
    n_components = proba.shape[1]
    return np.clip(proba @ PALETTE[np.arange(n_components) % len(PALETTE)], 0.0, 1.0)
