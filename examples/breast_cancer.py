"""Breast cancer: clusters and anomalies
=====================================

Real data: 569 breast masses that ship with scikit-learn (the Wisconsin diagnostic data), each
described by 30 measurements of its cell nuclei in a digitised image (radius, texture,
smoothness, concavity...: the mean, the spread and the worst value of each of ten), and
diagnosed as benign (357) or malignant (212).

**Two questions.**

1. *Clustering.* Without the diagnosis, do the measurements fall into groups, and do the
   groups follow the diagnosis? BIC picks the number of components and the covariance type;
   a cross table compares the components with the diagnosis.
2. *Anomalies.* A mixture fitted only to benign tumours describes what "benign" looks like. Do
   malignant tumours, which it never saw, fall where its density is low? This is novelty
   detection with ``GaussianMixtureOutlierDetector``: the example holds out part of the benign
   tumours, scores them with all the malignant ones, and measures how well the density ranks
   malignant below benign (ROC AUC: 1 is a perfect ranking, 0.5 a coin) and what a threshold
   flagging 5% of the benign training tumours catches.

The measurements are skewed and positive (areas, concavities near zero), so they are taken on
a log scale before being standardised: Gaussians fit the logarithms better. A screening tool
would need far more care than this; the point is what a density says about a new case.

Run it with ``python examples/breast_cancer.py``; ``FASTGMM_EXAMPLE_N`` uses that many tumours,
drawn at random (default: all 569).
"""

import numpy as np
from _common import PALETTE, example_seed, example_size, new_mosaic, save_figure
from sklearn.datasets import load_breast_cancer
from sklearn.metrics import adjusted_rand_score, confusion_matrix, roc_auc_score, roc_curve
from sklearn.preprocessing import StandardScaler

import fastgmm

TYPES = ("full", "tied", "diag", "spherical")
CONTAMINATION = 0.05
BENIGN_TRAIN_SHARE = 0.6


def load(n_samples, seed):
    data = load_breast_cancer()
    X, malignant = data.data, data.target == 0  # scikit-learn codes malignant as 0
    if n_samples < len(X):
        keep = np.sort(np.random.default_rng(seed).choice(len(X), n_samples, replace=False))
        X, malignant = X[keep], malignant[keep]
    # Some concavities are exactly 0: shift by a small constant before the logarithm.
    return np.log(X + 1e-3), malignant


def main():
    seed = example_seed()
    X, malignant = load(example_size(569, minimum=300), seed)
    print(
        f"breast_cancer: {len(X)} tumours, {X.shape[1]} measurements, "
        f"{malignant.sum()} malignant, {(~malignant).sum()} benign"
    )

    # 1. Clusters without the diagnosis.
    Z = StandardScaler().fit_transform(X)
    result = fastgmm.select_model(
        Z, n_components=range(1, 6), covariance_types=TYPES, n_init=3, random_state=seed
    )
    gm = result.best_estimator_
    labels = gm.predict(Z)
    print(
        f"\nBIC chose K={gm.n_components} {gm.covariance_type} (of K=1..5, four covariance types)"
    )
    table = confusion_matrix(malignant, labels, labels=range(max(2, gm.n_components)))[:2]
    print("            " + "".join(f"  comp {k}" for k in range(gm.n_components)))
    for name, row in zip(("benign:   ", "malignant:"), table):
        print(f"{name}  " + "".join(f"{row[k]:8d}" for k in range(gm.n_components)))
    purity = table.max(axis=0).sum() / len(Z)
    print(f"ARI against the diagnosis: {adjusted_rand_score(malignant, labels):.3f}")
    print(f"tumours in a component where their diagnosis is the majority: {purity:.1%}")

    # 2. Novelty detection: learn benign tumours only, then score unseen tumours.
    rng = np.random.default_rng(seed)
    benign = rng.permutation(np.flatnonzero(~malignant))
    train = benign[: int(BENIGN_TRAIN_SHARE * len(benign))]
    test = np.setdiff1d(np.arange(len(X)), train)
    scaler = StandardScaler().fit(X[train])
    detector = fastgmm.GaussianMixtureOutlierDetector(
        n_components="bic", contamination=CONTAMINATION, random_state=seed
    ).fit(scaler.transform(X[train]))
    mixture = detector.mixture_
    print(
        f"\nnovelty detector: fitted on {len(train)} benign tumours; BIC chose "
        f"K={mixture.n_components} {mixture.covariance_type}"
    )
    scores = detector.score_samples(scaler.transform(X[test]))
    flags = detector.predict(scaler.transform(X[test])) == -1
    auc = roc_auc_score(malignant[test], -scores)
    caught = flags[malignant[test]].mean()
    false_alarms = flags[~malignant[test]].mean()
    print(f"held out: {(~malignant[test]).sum()} benign, {malignant[test].sum()} malignant")
    print(f"ROC AUC of -log p(x) for malignant: {auc:.3f}")
    print(
        f"threshold flagging {CONTAMINATION:.0%} of the benign training tumours: "
        f"malignant flagged {caught:.1%}, held-out benign flagged {false_alarms:.1%}"
    )

    plot(Z, labels, malignant, scores, test, detector, auc)


def plot(Z, labels, malignant, scores, test, detector, auc):
    fig, axes = new_mosaic([["clusters", "scores", "roc"]], size=(15.0, 4.6))
    if fig is None:
        return
    from sklearn.decomposition import PCA

    xy = PCA(2).fit_transform(Z)
    ax = axes["clusters"]
    for is_malignant, marker, name in ((False, "o", "benign"), (True, "^", "malignant")):
        rows = malignant == is_malignant
        ax.scatter(
            xy[rows, 0],
            xy[rows, 1],
            c=PALETTE[labels[rows] % len(PALETTE)],
            marker=marker,
            s=16,
            linewidths=0,
        )
        ax.scatter([], [], marker=marker, color="0.5", label=name)
    ax.set_xlabel("principal component 1")
    ax.set_ylabel("principal component 2")
    ax.set_title("clusters found without the diagnosis (colour: component)", fontsize=10)
    ax.legend(fontsize=8)

    ax = axes["scores"]
    # A few malignant tumours score far below the rest: they are gathered in the first bin, so
    # that the overlap near the threshold stays readable.
    low = max(scores.min(), detector.threshold_ - 4 * (scores.max() - detector.threshold_))
    bins = np.linspace(low, scores.max(), 40)
    shown = np.clip(scores, low, None)
    held_malignant = malignant[test]
    ax.hist(shown[~held_malignant], bins=bins, color=PALETTE[0], alpha=0.7, label="held-out benign")
    ax.hist(
        shown[held_malignant],
        bins=bins,
        color=PALETTE[3],
        alpha=0.7,
        label=f"malignant (first bin: all below {low:.0f})",
    )
    ax.axvline(
        detector.threshold_,
        color="black",
        linestyle="--",
        label="threshold (5% of benign training)",
    )
    ax.set_xlabel("log p(x) under the benign-only mixture")
    ax.set_ylabel("tumours")
    ax.set_title("malignant tumours fall where benign density is low", fontsize=10)
    ax.legend(fontsize=8)

    ax = axes["roc"]
    false_positive, true_positive, _ = roc_curve(held_malignant, -scores)
    ax.plot(false_positive, true_positive, color=PALETTE[3], label=f"density (AUC {auc:.2f})")
    ax.plot([0, 1], [0, 1], ":", color="0.5", label="chance")
    ax.set_xlabel("benign tumours flagged")
    ax.set_ylabel("malignant tumours flagged")
    ax.set_title("every threshold at once: the ROC curve", fontsize=10)
    ax.set_aspect("equal")
    ax.legend(fontsize=8, loc="lower right")
    save_figure(fig, "breast_cancer")


if __name__ == "__main__":
    main()
