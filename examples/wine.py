"""Wine cultivars from their chemistry
===================================

Real data: 178 Italian wines that ship with scikit-learn, from three cultivars (grape
varieties), each described by 13 chemical measurements (alcohol, malic acid, flavanoids,
colour intensity, proline...).

**The question.** Given only the chemistry, does a mixture find the cultivars? Which wines sit
between two of them, and which are unusual?

1. **The fit.** The measurements have very different units (proline runs to 1,680 mg/l, hue
   to 1.7), so each is standardised first. A mixture's covariance could absorb the scales, but
   the spherical and diagonal models, and k-means before them, could not.
2. **Model selection.** BIC compares K = 1 to 6 and the four covariance types. With 178 rows,
   a full 13 x 13 covariance costs 91 parameters per component, and BIC refuses to pay for
   them: it prefers diagonal or tied covariances. It may also prefer a fourth component: BIC
   looks for the best density, which need not be one component per cultivar.
3. **What the clusters mean.** A cross table of components against cultivars, and the same for
   the best three-component model: a component that holds one cultivar, and a cultivar split
   over two components, are both visible at a glance.
4. **Soft assignments and anomalies.** The wines whose largest membership is below 0.9 are the
   ones the chemistry cannot place; the least likely wines are printed with the measurements
   that make them unusual (their largest z-scores).

Run it with ``python examples/wine.py``; ``FASTGMM_EXAMPLE_N`` uses that many wines, drawn at
random (default: all 178).
"""

import numpy as np
from _common import PALETTE, example_seed, example_size, new_mosaic, save_figure
from sklearn.datasets import load_wine
from sklearn.decomposition import PCA
from sklearn.metrics import adjusted_rand_score, confusion_matrix
from sklearn.preprocessing import StandardScaler

import fastgmm

TYPES = ("full", "tied", "diag", "spherical")
N_INIT = 5


def load(n_samples, seed):
    wine = load_wine()
    X, y = wine.data, wine.target
    if n_samples < len(X):
        keep = np.sort(np.random.default_rng(seed).choice(len(X), n_samples, replace=False))
        X, y = X[keep], y[keep]
    return X, y, list(wine.feature_names)


def print_table(gm, Z, y):
    labels = gm.predict(Z)
    table = confusion_matrix(y, labels, labels=range(max(3, gm.n_components)))[:3]
    print("            " + "".join(f"  comp {k}" for k in range(gm.n_components)))
    for cultivar in range(3):
        row = "".join(f"{table[cultivar, k]:8d}" for k in range(gm.n_components))
        print(f"cultivar {cultivar + 1}: {row}")
    return labels


def main():
    seed = example_seed()
    X, y, names = load(example_size(178, minimum=120), seed)
    print(f"wine: {len(X)} wines, {X.shape[1]} measurements, cultivars {np.bincount(y).tolist()}")
    Z = StandardScaler().fit_transform(X)

    result = fastgmm.select_model(
        Z, n_components=range(1, 7), covariance_types=TYPES, n_init=N_INIT, random_state=seed
    )
    bic = {(r["n_components"], r["covariance_type"]): r["bic"] for r in result.results_}
    print("\nBIC (lower is better)")
    print("K  " + "".join(f"{t:>11}" for t in TYPES))
    for k in range(1, 7):
        print(f"{k}  " + "".join(f"{bic[k, t]:11.1f}" for t in TYPES))
    gm = result.best_estimator_
    print(f"BIC chose K={gm.n_components} {gm.covariance_type}")
    print(f"parameters of one full covariance: {13 * 14 // 2}; rows: {len(Z)}")

    print(
        f"\nchosen model against the cultivars (ARI {adjusted_rand_score(y, gm.predict(Z)):.3f}):"
    )
    labels = print_table(gm, Z, y)
    best3_type = min(TYPES, key=lambda t: bic[3, t])
    gm3 = fastgmm.GaussianMixture(
        3, covariance_type=best3_type, n_init=N_INIT, random_state=seed
    ).fit(Z)
    ari3 = adjusted_rand_score(y, gm3.predict(Z))
    print(f"\nbest three-component model, {best3_type} (ARI {ari3:.3f}):")
    print_table(gm3, Z, y)

    proba = gm.predict_proba(Z)
    unsure = np.flatnonzero(proba.max(axis=1) < 0.9)
    print(f"\nwines with no membership above 0.9: {len(unsure)} of {len(Z)}")

    log_density = gm.score_samples(Z)
    odd = np.argsort(log_density)[:5]
    print("\nthe five least likely wines and what is unusual about them (z-scores):")
    for i in odd:
        top = np.argsort(-np.abs(Z[i]))[:2]
        reasons = ", ".join(f"{names[j]} {Z[i, j]:+.1f}" for j in top)
        print(f"wine {i:3d}  cultivar {y[i] + 1}  log p(x) {log_density[i]:7.2f}  {reasons}")

    plot(result, gm, Z, y, labels, unsure, odd)


def plot(result, gm, Z, y, labels, unsure, odd):
    fig, axes = new_mosaic([["bic", "map", "table"]], size=(15.0, 4.8))
    if fig is None:
        return
    ax = axes["bic"]
    for colour, ctype in zip(PALETTE, TYPES):
        rows = [r for r in result.results_ if r["covariance_type"] == ctype]
        ax.plot(
            [r["n_components"] for r in rows],
            [r["bic"] for r in rows],
            "o-",
            color=colour,
            label=ctype,
        )
    ax.plot(
        gm.n_components,
        result.best_estimator_.bic(Z),
        "o",
        markersize=14,
        markerfacecolor="none",
        markeredgecolor="black",
        label="chosen",
    )
    ax.set_xlabel("number of components K")
    ax.set_ylabel("BIC (lower is better)")
    ax.set_title("model selection: K and the covariance type", fontsize=10)
    ax.legend(fontsize=8)

    # The wines on their first two principal components: colour = component, marker = cultivar.
    xy = PCA(2).fit_transform(Z)
    ax = axes["map"]
    for cultivar, marker in zip(range(3), ("o", "s", "^")):
        rows = y == cultivar
        ax.scatter(
            xy[rows, 0],
            xy[rows, 1],
            c=PALETTE[labels[rows] % len(PALETTE)],
            marker=marker,
            s=28,
            edgecolors="white",
            linewidths=0.4,
        )
        ax.scatter([], [], marker=marker, color="0.5", label=f"cultivar {cultivar + 1}")
    ax.scatter(
        xy[unsure, 0],
        xy[unsure, 1],
        s=110,
        facecolors="none",
        edgecolors="0.3",
        linewidths=0.8,
        label="no membership above 0.9",
    )
    ax.scatter(xy[odd, 0], xy[odd, 1], s=160, marker="x", color="black", label="least likely")
    ax.set_xlabel("principal component 1")
    ax.set_ylabel("principal component 2")
    ax.set_title("colour: component; marker: cultivar", fontsize=10)
    ax.legend(fontsize=8, loc="lower left")

    ax = axes["table"]
    table = confusion_matrix(y, labels, labels=range(max(3, gm.n_components)))[
        :3, : gm.n_components
    ]
    ax.imshow(table, cmap="Blues")
    for (r, c), count in np.ndenumerate(table):
        ax.text(
            c,
            r,
            str(count),
            ha="center",
            va="center",
            color="white" if count > table.max() / 2 else "black",
        )
    ax.set_xticks(range(gm.n_components), [f"comp {k}" for k in range(gm.n_components)])
    ax.set_yticks(range(3), [f"cultivar {c + 1}" for c in range(3)])
    ax.set_title("wines per cultivar and component", fontsize=10)
    save_figure(fig, "wine")


if __name__ == "__main__":
    main()
