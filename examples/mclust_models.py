"""mclust's fourteen covariance models
===================================

R's mclust writes each component's covariance as ``Sigma_k = lambda_k D_k A_k D_k^T``: a volume
``lambda_k``, a shape ``A_k`` (the axes' relative lengths, with product 1) and an orientation
``D_k`` (the axes' directions). Its fourteen models say, letter by letter, whether volume, shape
and orientation are **E**\\ qual across the components, **V**\\ ariable, or the **I**\\ dentity
(round, or axis-aligned): EII (equal spheres) ... VVV (every component its own ellipse).
scikit-learn's 'spherical', 'diag', 'tied' and 'full' are VII, VVI, EEE and VVV.

This example fits all fourteen, as mclust's ``Mclust(X)`` does: from mclust's hierarchical start
(``init_params='hc'``), with mclust's convergence test, for K = 1 to 6, and draws each model's
fit at the chosen K beside the BIC curves. fastgmm reports BIC with scikit-learn's sign (lower
is better); R's mclust prints the same numbers negated (higher is better).

The data: three clusters of different sizes, shapes and directions, so the constrained models
have to bend: EII draws equal circles, EEE three copies of one ellipse, and only the models
that let orientation vary follow every cluster.

Run it with ``python examples/mclust_models.py``. ``FASTGMM_EXAMPLE_N`` sets the number of points
(default 900), ``FASTGMM_EXAMPLE_OUTDIR`` where the PNG goes.
"""

import math

import numpy as np
from _common import PALETTE, draw_ellipses, example_seed, example_size, new_mosaic, save_figure

from fastgmm import select_model
from fastgmm._names import MCLUST_MODELS

GRID = range(1, 7)
# (weight, mean, standard deviations along the axes, angle of the first axis in degrees)
CLUSTERS = (
    (0.40, (0.0, 0.0), (2.2, 0.45), 30.0),
    (0.35, (5.0, 4.0), (1.2, 0.35), -60.0),
    (0.25, (6.0, -2.0), (0.6, 0.5), 0.0),
)


def make_data(n_samples, seed):
    rng = np.random.default_rng(seed)
    labels = rng.choice(len(CLUSTERS), size=n_samples, p=[c[0] for c in CLUSTERS])
    X = np.empty((n_samples, 2))
    for k, (_, mean, stds, angle) in enumerate(CLUSTERS):
        rows = labels == k
        t = math.radians(angle)
        rotation = np.array([[math.cos(t), -math.sin(t)], [math.sin(t), math.cos(t)]])
        X[rows] = mean + (rng.normal(size=(int(rows.sum()), 2)) * stds) @ rotation.T
    return X


def main():
    n_samples = example_size(900, minimum=200)
    seed = example_seed()
    X = make_data(n_samples, seed)
    print(f"mclust_models: {n_samples} points from {len(CLUSTERS)} clusters, K in 1..6 x 14 models")

    result = select_model(
        X,
        n_components=GRID,
        covariance_types="mclust",
        init_params="hc",
        convergence="mclust",
        tol=1e-5,  # mclust's default (emControl()$tol[1]), with mclust's relative test
        random_state=seed,
    )
    bic = result.criterion_table("bic")
    print(
        f"{len(result.results_)} candidates in {result.n_passes} shared passes "
        f"({result.fit_seconds:.2f} s); one hierarchical tree for all of them\n"
    )
    print("BIC (lower is better; R's mclust prints these numbers negated):")
    print(f"{'K':>3}" + "".join(f"{m:>9}" for m in MCLUST_MODELS))
    for k, row in zip(GRID, bic):
        print(f"{k:>3}" + "".join(f"{v:9.1f}" if np.isfinite(v) else f"{'NA':>9}" for v in row))
    best = result.results_[result.best_index_]
    print(
        f"\nchosen by BIC: K={best['n_components']} {best['covariance_type']} "
        f"({best['n_parameters']} parameters)"
    )
    # Each model's best K, then the fits drawn at the chosen K.
    per_model = {m: GRID[int(np.nanargmin(bic[:, j]))] for j, m in enumerate(MCLUST_MODELS)}
    print("best K per model: " + ", ".join(f"{m}={k}" for m, k in per_model.items()))
    plot(X, result, bic)


def plot(X, result, bic):
    from fastgmm import GaussianMixture

    layout = [list("ABCD"), list("EFGH"), list("IJKL"), ["M", "N", "Z", "Z"]]
    fig, axes = new_mosaic(layout, size=(15.0, 14.0))
    if fig is None:
        return
    k = result.n_components_
    for panel, model in zip("ABCDEFGHIJKLMN", MCLUST_MODELS):
        ax = axes[panel]
        gm = GaussianMixture(
            k, covariance_type=model, init_params="hc", convergence="mclust", tol=1e-5
        ).fit(X)
        labels = gm.predict(X)
        ax.scatter(*X.T, s=4, c=PALETTE[labels % len(PALETTE)], alpha=0.4, linewidths=0)
        draw_ellipses(ax, gm.means_, gm.covariances_, PALETTE, n_stds=(1, 2), label=False)
        ax.set_title(f"{model}: BIC {gm.bic(X):.0f}", fontsize=11)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_aspect("equal")
    ax = axes["Z"]
    styles = ["-", "--", ":", "-."]
    for j, model in enumerate(MCLUST_MODELS):
        ax.plot(
            list(result.n_components_grid),
            bic[:, j],
            linestyle=styles[j % len(styles)],
            marker="o",
            markersize=3,
            color=PALETTE[j % len(PALETTE)],
            label=model,
        )
    ax.set_xlabel("number of components K")
    ax.set_ylabel("BIC (lower is better; mclust plots -BIC)")
    ax.legend(ncol=2, fontsize=8)
    ax.set_title(f"BIC curves; chosen: {result.covariance_type_}, K={k}")
    fig.suptitle(f"mclust's fourteen models at K={k}: volume, shape, orientation", fontsize=14)
    save_figure(fig, "mclust_models")


if __name__ == "__main__":
    main()
