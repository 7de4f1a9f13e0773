"""Soft clustering
===============

A Gaussian mixture says *how much* each point belongs to each cluster.

Three overlapping 2-D clusters are generated from known Gaussians and a 3-component
``GaussianMixture`` is fitted to them. The lesson in three prints:

1. the fitted weights and means recover the generating ones;
2. ``predict_proba`` gives every point a membership probability per component (each row sums
   to 1). Deep inside a cluster it is close to 1; between two clusters it is split, and the
   example prints those split points;
3. the 1- and 2-sigma ellipses of the plot are the points at Mahalanobis distance 1 and 2 from
   a component's mean. In two dimensions they hold 1 - exp(-1/2) = 39% and 1 - exp(-2) = 86% of
   the component's points (not the 68% and 95% of one dimension): the example measures it.

Run it with ``python examples/soft_clustering.py``. ``FASTGMM_EXAMPLE_N`` sets the number of
points (default 1500), ``FASTGMM_EXAMPLE_OUTDIR`` where the PNG goes (default: next to this
script). Without matplotlib it prints the same numbers and skips the picture.
"""

import math

import numpy as np
from _common import (
    PALETTE,
    blend,
    draw_ellipses,
    example_seed,
    example_size,
    full_covariances,
    mahalanobis,
    new_figure,
    save_figure,
)
from scipy.optimize import linear_sum_assignment

from fastgmm import GaussianMixture

# The generating clusters: name, weight, mean, covariance. A and B overlap; C touches both.
CLUSTERS = (
    ("A", 0.40, (0.0, 0.0), ((1.0, 0.55), (0.55, 0.9))),
    ("B", 0.35, (3.0, 0.6), ((0.7, -0.25), (-0.25, 0.5))),
    ("C", 0.25, (1.3, 3.2), ((0.5, 0.05), (0.05, 1.0))),
)
# A point is "between two clusters" when its two largest memberships are both at least this.
SPLIT = 0.25
N_SHOWN = 8


def make_data(n_samples, seed):
    """Rows drawn from ``CLUSTERS`` and the cluster index of each."""
    rng = np.random.default_rng(seed)
    weights = np.array([c[1] for c in CLUSTERS])
    labels = rng.choice(len(CLUSTERS), size=n_samples, p=weights)
    X = np.empty((n_samples, 2))
    for k, (_, _, mean, cov) in enumerate(CLUSTERS):
        rows = labels == k
        X[rows] = rng.multivariate_normal(mean, cov, size=int(rows.sum()))
    return X, labels


def match_components(gm):
    """Order of the fitted components that best matches ``CLUSTERS`` (by mean distance).

    A mixture's components come in no particular order ("label switching"), so comparing with
    the truth needs a matching first.
    """
    true_means = np.array([c[2] for c in CLUSTERS])
    cost = np.linalg.norm(true_means[:, None, :] - gm.means_[None, :, :], axis=2)
    _, order = linear_sum_assignment(cost)
    return order


def main():
    n_samples = example_size(1500)
    seed = example_seed()
    X, truth = make_data(n_samples, seed)
    print(f"soft_clustering: {n_samples} points from {len(CLUSTERS)} overlapping 2-D Gaussians")

    gm = GaussianMixture(n_components=3, covariance_type="full", random_state=seed).fit(X)
    print(f"fit: converged={gm.converged_} after {gm.n_iter_} EM iterations")

    # Relabel the components A, B, C in the order of the generating clusters.
    order = match_components(gm)
    means = gm.means_[order]
    weights = gm.weights_[order]
    covariances = full_covariances(gm)[order]
    proba = gm.predict_proba(X)[:, order]
    names = [c[0] for c in CLUSTERS]

    print("\ncomponent  true weight  fitted weight  true mean        fitted mean")
    for k, (name, weight, mean, _) in enumerate(CLUSTERS):
        print(
            f"{name:>9}  {weight:11.3f}  {weights[k]:13.3f}  ({mean[0]:5.2f}, {mean[1]:5.2f})"
            f"   ({means[k, 0]:5.2f}, {means[k, 1]:5.2f})"
        )
    error = float(np.max(np.abs(means - np.array([c[2] for c in CLUSTERS]))))
    print(f"largest error of a fitted mean coordinate: {error:.3f}")

    print(f"\nmembership rows sum to 1: max |sum - 1| = {np.max(np.abs(proba.sum(1) - 1)):.1e}")
    confident = proba.max(axis=1)
    print(
        f"points with one membership above 0.9: {np.mean(confident > 0.9):.1%}; "
        f"hard labels equal to the true cluster: {np.mean(proba.argmax(1) == truth):.1%}"
    )

    # Points split between two clusters: the two largest memberships are both >= SPLIT.
    top_two = np.sort(proba, axis=1)[:, -2:]
    between = np.flatnonzero(top_two[:, 0] >= SPLIT)
    between = between[np.argsort(top_two[between, 1] - top_two[between, 0])][:N_SHOWN]
    print(
        f"\npoints between two clusters (two memberships >= {SPLIT}): "
        f"{int(np.sum(top_two[:, 0] >= SPLIT))}; the {len(between)} most evenly split:"
    )
    print("      x1      x2   " + "  ".join(f"P({name})" for name in names))
    for i in between:
        cells = "  ".join(f"{p:5.3f}" for p in proba[i])
        print(f"between {X[i, 0]:7.3f} {X[i, 1]:7.3f}   {cells}")

    # What the ellipses mean: the share of each component's points (weighted by membership)
    # within Mahalanobis distance 1 and 2 of its mean, against the 2-D chi-square law.
    print("\nshare of a component's points inside its n-sigma ellipse (2-D: 1 - exp(-n^2/2))")
    for n_std in (1, 2):
        shares = []
        for k in range(3):
            inside = mahalanobis(X, means[k], covariances[k]) <= n_std
            shares.append(float(proba[inside, k].sum() / proba[:, k].sum()))
        expected = 1 - math.exp(-(n_std**2) / 2)
        cells = "  ".join(f"{name} {s:.3f}" for name, s in zip(names, shares))
        print(f"ellipse {n_std}-sigma: {cells}   expected {expected:.3f}")

    fig, axes = new_figure(n_cols=2, size=(6.2, 5.4))
    if fig is None:
        return
    ax, ax_unsure = axes
    colours = PALETTE[:3]
    ax.scatter(X[:, 0], X[:, 1], c=blend(proba), s=10, linewidths=0)
    draw_ellipses(ax, means, covariances, colours)
    for k, name in enumerate(names):
        ax.scatter([], [], color=colours[k], s=30, label=f"component {name}")
    ax.scatter(
        X[between, 0],
        X[between, 1],
        s=90,
        facecolors="none",
        edgecolors="black",
        linewidths=1.2,
        label="printed 'between' points",
    )
    ax.set_title("colour = memberships blended (pure colour: certain)", fontsize=10)
    ax.legend(loc="upper left", fontsize=8)

    uncertainty = 1 - proba.max(axis=1)
    points = ax_unsure.scatter(
        X[:, 0], X[:, 1], c=uncertainty, cmap="viridis", vmin=0, vmax=2 / 3, s=10, linewidths=0
    )
    draw_ellipses(ax_unsure, means, covariances, colours, label=False)
    fig.colorbar(points, ax=ax_unsure, label="1 - largest membership (0: certain)")
    ax_unsure.set_title("uncertainty: highest between the clusters", fontsize=10)
    for a in axes:
        a.set_xlabel("x1")
        a.set_ylabel("x2")
        a.set_aspect("equal", adjustable="datalim")
    save_figure(fig, "soft_clustering")


if __name__ == "__main__":
    main()
