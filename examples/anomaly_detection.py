"""Anomaly detection
=================

Flag the points that a fitted mixture finds unlikely.

A Gaussian mixture is a density ``p(x)``. Points where ``log p(x)`` is low are far from every
cluster (or between clusters, where no component puts much mass), and are the natural
candidates for anomalies. :class:`fastgmm.GaussianMixtureOutlierDetector` fits the mixture,
sets a threshold on ``log p(x)`` and follows scikit-learn's outlier API: ``predict`` gives +1
(inlier) or -1 (outlier), ``decision_function`` is ``log p(x) - threshold_`` (negative for
outliers), and ``explain`` says which component a point is closest to, and how far.

Data: three clusters plus a few planted anomalies spread over the plane, each at least 4
"standard deviations" (Mahalanobis distance) from every cluster. The script prints precision
(the share of flagged points that are planted anomalies) and recall (the share of planted
anomalies that are flagged) on the training data and on fresh data, for two thresholds:

- ``contamination=0.02``: flag the 2% least likely training points (the planted rate);
- ``contamination="auto"``: flag points below the density level that holds 99% of the fitted
  mixture's mass; about 1% of normal points are then flagged too, so precision drops.

Run it with ``python examples/anomaly_detection.py``. ``FASTGMM_EXAMPLE_N`` sets the number of
points (default 3000), ``FASTGMM_EXAMPLE_OUTDIR`` where the PNG goes.
"""

import numpy as np
from _common import PALETTE, example_seed, example_size, new_figure, save_figure

from fastgmm import GaussianMixtureOutlierDetector

CLUSTERS = (
    (0.45, (0.0, 0.0), ((1.0, 0.6), (0.6, 1.0))),
    (0.35, (5.0, 1.0), ((0.6, -0.2), (-0.2, 0.4))),
    (0.20, (2.0, 5.0), ((1.2, 0.0), (0.0, 0.3))),
)
ANOMALY_RATE = 0.02
# A planted anomaly lies at least this Mahalanobis distance from every cluster's mean. For a 2-D
# Gaussian, P(distance > 4) = exp(-8) = 3e-4: a normal point practically never gets there.
MIN_DISTANCE = 4.0
BOX = ((-6.0, 11.0), (-6.0, 10.0))


def distances_to_clusters(X):
    """Mahalanobis distance of every row to every generating cluster, (n_rows, n_clusters)."""
    out = np.empty((len(X), len(CLUSTERS)))
    for k, (_, mean, cov) in enumerate(CLUSTERS):
        diff = X - np.asarray(mean)
        out[:, k] = np.sqrt(np.einsum("ij,ij->i", diff @ np.linalg.inv(cov), diff))
    return out


def make_data(n_samples, rng):
    """``n_samples`` rows, ``ANOMALY_RATE`` of them planted anomalies; returns (X, is_anomaly)."""
    n_anomalies = max(1, round(ANOMALY_RATE * n_samples))
    n_normal = n_samples - n_anomalies
    weights = np.array([c[0] for c in CLUSTERS])
    labels = rng.choice(len(CLUSTERS), size=n_normal, p=weights)
    normal = np.empty((n_normal, 2))
    for k, (_, mean, cov) in enumerate(CLUSTERS):
        rows = labels == k
        normal[rows] = rng.multivariate_normal(mean, cov, size=int(rows.sum()))
    # Uniform over the box, keeping only points far from every cluster (rejection sampling).
    anomalies = np.empty((0, 2))
    while len(anomalies) < n_anomalies:
        candidates = np.column_stack(
            [rng.uniform(*BOX[0], 4 * n_anomalies), rng.uniform(*BOX[1], 4 * n_anomalies)]
        )
        far = distances_to_clusters(candidates).min(axis=1) >= MIN_DISTANCE
        anomalies = np.vstack([anomalies, candidates[far]])
    X = np.vstack([normal, anomalies[:n_anomalies]])
    is_anomaly = np.arange(n_samples) >= n_normal
    order = rng.permutation(n_samples)
    return np.ascontiguousarray(X[order]), is_anomaly[order]


def precision_recall(flagged, is_anomaly):
    true_positives = int(np.sum(flagged & is_anomaly))
    precision = true_positives / max(int(flagged.sum()), 1)
    recall = true_positives / max(int(is_anomaly.sum()), 1)
    return precision, recall


def main():
    n_samples = example_size(3000, minimum=200)
    seed = example_seed()
    rng = np.random.default_rng(seed)
    X, planted = make_data(n_samples, rng)
    X_new, planted_new = make_data(n_samples, rng)
    print(
        f"anomaly_detection: {n_samples} training points, {planted.sum()} of them planted "
        f"anomalies; {n_samples} fresh points ({planted_new.sum()} anomalies) to check on"
    )

    detectors = {
        "0.02": GaussianMixtureOutlierDetector(3, contamination=ANOMALY_RATE, random_state=seed),
        "auto": GaussianMixtureOutlierDetector(3, contamination="auto", random_state=seed),
    }
    print("\ncontamination  threshold   data   flagged  precision  recall")
    for name, detector in detectors.items():
        detector.fit(X)
        for where, data, truth in (("train", X, planted), ("fresh", X_new, planted_new)):
            flagged = detector.predict(data) == -1
            precision, recall = precision_recall(flagged, truth)
            print(
                f"{name:>13}  {detector.threshold_:9.3f}  {where:>5}  {flagged.sum():8d}"
                f"  {precision:9.3f}  {recall:6.3f}"
            )
    detector = detectors["0.02"]

    # Why were points flagged? The least likely five, with their nearest component.
    scores = detector.score_samples(X)
    worst = np.argsort(scores)[:5]
    explanation = detector.explain(X[worst])
    print("\nthe five least likely training points:")
    print("      x1      x2  log p(x)  component  Mahalanobis  planted")
    for j, i in enumerate(worst):
        print(
            f"{X[i, 0]:8.2f}{X[i, 1]:8.2f}{explanation['score'][j]:10.2f}"
            f"{explanation['component'][j]:11d}{explanation['mahalanobis'][j]:13.2f}"
            f"  {'yes' if planted[i] else 'no'}"
        )

    fig, axes = new_figure(n_cols=2, size=(6.2, 5.2))
    if fig is None:
        return
    ax, ax_hist = axes
    flagged = detector.predict(X) == -1
    pad = 1.0
    lo, hi = X.min(axis=0) - pad, X.max(axis=0) + pad
    gx, gy = np.meshgrid(np.linspace(lo[0], hi[0], 250), np.linspace(lo[1], hi[1], 250))
    grid_scores = detector.score_samples(np.column_stack([gx.ravel(), gy.ravel()]))
    levels = np.linspace(max(grid_scores.min(), detector.threshold_ - 12), grid_scores.max(), 14)
    filled = ax.contourf(
        gx, gy, grid_scores.reshape(gx.shape), levels=levels, cmap="Blues", extend="min"
    )
    fig.colorbar(filled, ax=ax, label="log p(x) under the fitted mixture")
    ax.contour(
        gx,
        gy,
        grid_scores.reshape(gx.shape),
        levels=[detector.threshold_],
        colors="red",
        linewidths=1.5,
        linestyles="solid",  # matplotlib dashes negative levels by default
    )
    ax.plot([], [], color="red", label="threshold (decision_function = 0)")
    ax.scatter(*X[~planted].T, s=5, c="0.3", linewidths=0, label="normal point")
    ax.scatter(*X[planted].T, marker="x", s=40, c="black", label="planted anomaly")
    ax.scatter(
        *X[flagged].T, s=110, facecolors="none", edgecolors="red", linewidths=1.3, label="flagged"
    )
    ax.set_title("the detector flags points outside the red contour", fontsize=10)
    ax.set_xlabel("x1")
    ax.set_ylabel("x2")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=2, fontsize=8)

    bins = np.linspace(scores.min(), scores.max(), 50)
    ax_hist.hist(scores[~planted], bins=bins, color=PALETTE[0], alpha=0.7, label="normal points")
    ax_hist.hist(scores[planted], bins=bins, color="black", alpha=0.7, label="planted anomalies")
    ax_hist.axvline(detector.threshold_, color="red", label="threshold_ (contamination=0.02)")
    ax_hist.axvline(
        detectors["auto"].threshold_, color="red", linestyle="--", label="threshold_ ('auto')"
    )
    ax_hist.set_yscale("log")
    ax_hist.set_xlabel("log p(x) (score_samples)")
    ax_hist.set_ylabel("number of training points")
    ax_hist.set_title("anomalies have low log-density", fontsize=10)
    ax_hist.legend(loc="upper left", fontsize=8)
    save_figure(fig, "anomaly_detection")


if __name__ == "__main__":
    main()
