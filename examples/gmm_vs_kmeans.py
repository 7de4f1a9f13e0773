"""K-means or a Gaussian mixture?
==============================

Elongated, rotated clusters show the difference.

K-means gives each point to the nearest centre. Its clusters are therefore the cells of a
Voronoi diagram: round, equally wide regions separated by straight lines halfway between
centres. Three long, thin, differently rotated clusters break that assumption. A Gaussian
mixture with full covariances learns each cluster's orientation and elongation and gets them
right. A mixture whose covariances are spherical fails like k-means: the shape of the
covariance is what matters, not EM itself.

The script prints the adjusted Rand index (ARI: 1 = the true clusters, 0 = chance) of each
method against the truth, and a table of the differences. Run it with
``python examples/gmm_vs_kmeans.py``. ``FASTGMM_EXAMPLE_N`` sets the number of points
(default 1500), ``FASTGMM_EXAMPLE_OUTDIR`` where the PNG goes.

K-means here is fastgmm's own (:func:`fastgmm.init.kmeans`, the k-means++ seeding and Lloyd
iterations that also initialise ``GaussianMixture``).
"""

import numpy as np
from _common import (
    PALETTE,
    draw_ellipses,
    example_seed,
    example_size,
    full_covariances,
    new_figure,
    save_figure,
)
from scipy.optimize import linear_sum_assignment
from sklearn.metrics import adjusted_rand_score, confusion_matrix

from fastgmm import GaussianMixture
from fastgmm.covariance import get_model
from fastgmm.init import kmeans

# Generating clusters: centre, rotation of the long axis (degrees), standard deviations along
# the long and the short axis. Long and thin, and pointing in different directions.
CLUSTERS = (
    ((0.0, 0.0), 20.0, (3.0, 0.45)),
    ((3.0, 4.5), -25.0, (3.0, 0.45)),
    ((9.0, 0.5), 80.0, (3.0, 0.45)),
)
N_COMPONENTS = len(CLUSTERS)
# EM climbs to a local optimum of the likelihood; on clusters this far from round, a start from
# k-means' wrong partition can stay wrong. Restarts keep the run with the best lower bound.
N_INIT = 4

DIFFERENCES = (
    ("", "k-means", "Gaussian mixture (EM)"),
    ("assignment", "hard: one cluster per point", "soft: P(component | x), rows sum to 1"),
    ("cluster shape", "spherical, equal size (Voronoi)", "elliptical: a covariance each"),
    ("cluster sizes", "not modelled", "weights_ (mixing proportions)"),
    ("model", "none: minimises distances", "generative: a density p(x)"),
    ("new points", "distance to a centre", "score_samples = log p(x); sample()"),
    ("choosing K", "elbow heuristics", "BIC / AIC (a likelihood)"),
    ("cost / iteration", "K distances per point", "K Mahalanobis distances per point"),
)


def rotation(degrees):
    theta = np.radians(degrees)
    return np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])


def make_data(n_samples, seed):
    """Rows from ``CLUSTERS`` (equal weights) and the cluster index of each."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(N_COMPONENTS, size=n_samples)
    X = np.empty((n_samples, 2))
    for k, (centre, angle, scales) in enumerate(CLUSTERS):
        rows = labels == k
        X[rows] = centre + (rng.normal(size=(int(rows.sum()), 2)) * scales) @ rotation(angle).T
    return X, labels


def nearest_centre(X, centres):
    """K-means' assignment: the index of the closest centre (Euclidean)."""
    return np.argmin(((X[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2), axis=1)


def align(labels, truth):
    """Permutation ``p`` so that ``p[labels]`` best agrees with ``truth`` (for the colours)."""
    table = confusion_matrix(truth, labels, labels=range(N_COMPONENTS))
    rows, cols = linear_sum_assignment(-table)
    permutation = np.empty(N_COMPONENTS, dtype=int)
    permutation[cols] = rows
    return permutation


def main():
    n_samples = example_size(1500)
    seed = example_seed()
    X, truth = make_data(n_samples, seed)
    print(f"gmm_vs_kmeans: {n_samples} points in {N_COMPONENTS} elongated, rotated clusters")

    # fastgmm's k-means wants a RandomState (as scikit-learn's) for its k-means++ seeding.
    centres = kmeans(X, N_COMPONENTS, np.random.RandomState(seed))
    kmeans_labels = nearest_centre(X, centres)
    settings = dict(n_init=N_INIT, random_state=seed)
    full = GaussianMixture(N_COMPONENTS, covariance_type="full", **settings).fit(X)
    spherical = GaussianMixture(N_COMPONENTS, covariance_type="spherical", **settings).fit(X)

    scores = {
        "k-means": adjusted_rand_score(truth, kmeans_labels),
        "GMM spherical": adjusted_rand_score(truth, spherical.predict(X)),
        "GMM full": adjusted_rand_score(truth, full.predict(X)),
    }
    print("\nadjusted Rand index against the true clusters (1 = perfect, 0 = chance)")
    for name, ari in scores.items():
        print(f"ARI {name:<14} {ari:6.3f}")
    winner = "GMM full" if scores["GMM full"] > scores["k-means"] else "k-means"
    print(f"winner: {winner}")

    # Soft versus hard: how sure the mixture is about the points k-means got wrong.
    proba = full.predict_proba(X)
    kmeans_wrong = align(kmeans_labels, truth)[kmeans_labels] != truth
    print(
        f"\nk-means misassigns {kmeans_wrong.mean():.1%} of the points; on those, the full "
        f"mixture's largest membership averages {proba[kmeans_wrong].max(axis=1).mean():.3f}"
    )
    p_kmeans = N_COMPONENTS * X.shape[1]
    p_full = get_model("full").n_parameters(N_COMPONENTS, X.shape[1])
    print(f"free parameters: k-means {p_kmeans} (centres), full mixture {p_full}")
    draws, _ = full.sample(3)
    print(f"the mixture is generative: full.sample(3) ->\n{np.round(draws, 2)}")

    print()
    for name, left, right in DIFFERENCES:
        print(f"{name:<17}| {left:<32}| {right}")

    fig, axes = new_figure(n_cols=3, size=(5.0, 4.8))
    if fig is None:
        return
    # A grid over the plot: the colour of the background is each method's decision.
    pad = 1.0
    lo, hi = X.min(axis=0) - pad, X.max(axis=0) + pad
    gx, gy = np.meshgrid(np.linspace(lo[0], hi[0], 300), np.linspace(lo[1], hi[1], 300))
    grid = np.column_stack([gx.ravel(), gy.ravel()])
    colours = PALETTE[:N_COMPONENTS]
    from matplotlib.colors import ListedColormap

    light = ListedColormap(0.25 * colours + 0.75)
    panels = (
        ("truth", truth, None),
        (f"k-means (ARI {scores['k-means']:.2f})", kmeans_labels, nearest_centre(grid, centres)),
        (f"GMM, full covariances (ARI {scores['GMM full']:.2f})", full.predict(X), None),
    )
    for ax, (title, labels, regions) in zip(axes, panels):
        permutation = align(labels, truth)
        if title.startswith("GMM"):
            regions = full.predict(grid)
        if regions is not None:
            ax.pcolormesh(
                gx,
                gy,
                permutation[regions].reshape(gx.shape),
                cmap=light,
                vmin=-0.5,
                vmax=N_COMPONENTS - 0.5,
                shading="auto",
            )
        ax.scatter(X[:, 0], X[:, 1], c=colours[permutation[labels]], s=6, linewidths=0)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("x1")
        ax.set_ylabel("x2")
        ax.set_xlim(lo[0], hi[0])
        ax.set_ylim(lo[1], hi[1])
        ax.set_aspect("equal")
    axes[1].scatter(*centres.T, marker="X", s=120, c="black", label="k-means centres")
    axes[1].legend(loc="upper right", fontsize=8)
    order = np.argsort(align(full.predict(X), truth))
    draw_ellipses(axes[2], full.means_[order], full_covariances(full)[order], colours)
    axes[2].legend(loc="upper right", fontsize=8)
    fig.suptitle("background: the region each method gives to each cluster", fontsize=10)
    save_figure(fig, "gmm_vs_kmeans")


if __name__ == "__main__":
    main()
