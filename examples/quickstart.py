"""Quick start
===========

Fit overlapping 2-D blobs and look at the soft assignments between clusters.

Run it with ``python examples/quickstart.py``. It prints the fitted parameters and, for the
points that lie between two clusters, the probability that each cluster generated them: the
"soft" part of soft clustering. The picture colours every point by its memberships (a pure
colour: one component is sure; a blend: the point is shared) and circles the uncertain ones.
``FASTGMM_EXAMPLE_N`` sets the number of points (default 1200).
"""

import numpy as np
from _common import PALETTE, blend, draw_ellipses, example_size, new_figure, save_figure

from fastgmm import GaussianMixture


def make_blobs(n_samples, seed=0):
    """Three overlapping elongated clusters in 2-D, ``n_samples // 3`` points each."""
    rng = np.random.default_rng(seed)
    centres = np.array([[0.0, 0.0], [4.0, 1.0], [1.5, 4.0]])
    shapes = [
        np.array([[1.2, 0.6], [0.0, 0.6]]),
        np.array([[0.8, -0.5], [0.0, 0.9]]),
        np.array([[0.7, 0.0], [0.4, 1.0]]),
    ]
    size = n_samples // 3
    parts = [c + rng.normal(size=(size, 2)) @ s for c, s in zip(centres, shapes)]
    return np.vstack(parts)


def main():
    X = make_blobs(example_size(1200))
    gm = GaussianMixture(n_components=3, covariance_type="full", random_state=0).fit(X)
    print(f"converged: {gm.converged_} after {gm.n_iter_} iterations")
    print(f"mean log-likelihood: {gm.lower_bound_:.4f}")
    for k in np.argsort(gm.means_[:, 0]):
        print(f"component {k}: weight {gm.weights_[k]:.3f}, mean {np.round(gm.means_[k], 2)}")

    proba = gm.predict_proba(X)
    # Points between clusters: no component claims them with more than 70% probability.
    between = np.flatnonzero(proba.max(axis=1) < 0.7)
    print(f"\n{len(between)} of {len(X)} points lie between clusters; the first five:")
    print("      x      y  " + "  ".join(f"P(c{k})" for k in range(3)))
    for i in between[:5]:
        probs = "  ".join(f"{p:5.2f}" for p in proba[i])
        print(f"{X[i, 0]:7.2f}{X[i, 1]:7.2f}  {probs}")

    fig, axes = new_figure(size=(7.0, 6.0))
    if fig is None:
        return
    ax = axes[0]
    ax.scatter(X[:, 0], X[:, 1], c=blend(proba), s=12, linewidths=0)
    ax.scatter(
        X[between, 0],
        X[between, 1],
        s=60,
        facecolors="none",
        edgecolors="black",
        linewidths=0.8,
        label="no membership above 0.7",
    )
    draw_ellipses(ax, gm.means_, gm.covariances_, PALETTE[:3])
    ax.set_title("colour = memberships blended; circled: shared between clusters", fontsize=10)
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.set_aspect("equal", adjustable="datalim")
    ax.legend(loc="upper left", fontsize=8)
    save_figure(fig, "quickstart")


if __name__ == "__main__":
    main()
