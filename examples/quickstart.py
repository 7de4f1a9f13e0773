"""Quick start: fit overlapping 2-D blobs and look at the soft assignments between clusters.

Run it with ``python examples/quickstart.py``. It prints the fitted parameters and, for the
points that lie between two clusters, the probability that each cluster generated them: the
"soft" part of soft clustering.
"""

import numpy as np

from fastgmm import GaussianMixture


def make_blobs(seed=0):
    """Three overlapping elongated clusters in 2-D."""
    rng = np.random.default_rng(seed)
    centres = np.array([[0.0, 0.0], [4.0, 1.0], [1.5, 4.0]])
    shapes = [
        np.array([[1.2, 0.6], [0.0, 0.6]]),
        np.array([[0.8, -0.5], [0.0, 0.9]]),
        np.array([[0.7, 0.0], [0.4, 1.0]]),
    ]
    parts = [c + rng.normal(size=(400, 2)) @ s for c, s in zip(centres, shapes)]
    return np.vstack(parts)


def main():
    X = make_blobs()
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


if __name__ == "__main__":
    main()
