"""Missing values: fit and impute through the holes
================================================

Real data with holes: the 569 breast-cancer biopsies that ship with scikit-learn (30
measurements of cell nuclei each), with 30% of their entries removed completely at random.
A Gaussian mixture can use a row with holes exactly as it is: ``missing='marginalize'``
explains each row by the density of the entries it has, and EM fills in the rest with their
conditional distribution (Ghahramani & Jordan 1994). No imputation step comes first.

1. **The fits.** The same mixture (two components, a tied covariance) is fitted three times:
   on the complete data (the reference the others should approach), on the data with holes
   (``missing='marginalize'``), and on the holes filled with their column's mean first, the
   usual quick fix.
2. **Imputation.** ``impute`` replaces each hole by its conditional mean under the fitted
   mixture: the measurements are strongly correlated (a nucleus's radius, perimeter and area
   move together), so the entries a row has say much about the ones it lacks. The error on the
   removed entries is compared with that of the column means.
3. **The model itself.** The clusterings are compared with the complete-data fit's (adjusted
   Rand index), and the component means with its means: filling holes with the column mean
   pulls every row towards the centre of the data, and the fit with it.

Run it with ``python examples/missing_values.py``; ``FASTGMM_EXAMPLE_N`` uses that many
biopsies, drawn at random (default: all 569).
"""

import numpy as np
from _common import PALETTE, example_seed, example_size, new_mosaic, save_figure
from sklearn.datasets import load_breast_cancer
from sklearn.metrics import adjusted_rand_score

import fastgmm

FRACTION = 0.3
OPTIONS = {"n_components": 2, "covariance_type": "tied", "n_init": 5}


def load(n_samples, seed):
    data = load_breast_cancer()
    X = data.data
    if n_samples < len(X):
        X = X[np.sort(np.random.default_rng(seed).choice(len(X), n_samples, replace=False))]
    return X, list(data.feature_names)


def remove_entries(X, fraction, seed):
    """``fraction`` of the entries set to NaN at random; every row keeps at least one."""
    rng = np.random.default_rng(seed)
    holes = rng.random(X.shape) < fraction
    holes[np.arange(len(X)), rng.integers(X.shape[1], size=len(X))] = False
    with_holes = X.copy()
    with_holes[holes] = np.nan
    return with_holes, holes


def matched_distance(means, reference):
    """Mean distance between component means, matched to the reference's (two components)."""
    straight = np.linalg.norm(means - reference, axis=1).mean()
    swapped = np.linalg.norm(means[::-1] - reference, axis=1).mean()
    return min(straight, swapped)


def main():
    seed = example_seed()
    X, names = load(example_size(569, minimum=300), seed)
    X_holes, holes = remove_entries(X, FRACTION, seed)
    complete_rows = int((~holes).all(axis=1).sum())
    print(
        f"breast cancer: {len(X)} rows x {X.shape[1]} measurements; removed "
        f"{100 * holes.mean():.1f}% of the entries, {complete_rows} rows left complete"
    )
    if complete_rows < OPTIONS["n_components"] * X.shape[1]:
        print("(too few complete rows to fit anything on them alone: every row has holes)")
    # Standardise with what the data with holes can tell: each column's observed entries.
    centre, scale = np.nanmean(X_holes, axis=0), np.nanstd(X_holes, axis=0)
    Z, Z_holes = (X - centre) / scale, (X_holes - centre) / scale

    complete = fastgmm.GaussianMixture(**OPTIONS, random_state=seed).fit(Z)
    marginal = fastgmm.GaussianMixture(**OPTIONS, missing="marginalize", random_state=seed)
    marginal.fit(Z_holes)
    Z_means = np.where(np.isnan(Z_holes), 0.0, Z_holes)  # column means are 0 after scaling
    by_means = fastgmm.GaussianMixture(**OPTIONS, random_state=seed).fit(Z_means)
    print(
        f"fit with missing='marginalize': {marginal.n_iter_} EM iterations, converged "
        f"{marginal.converged_}, mean log-likelihood of the observed entries "
        f"{marginal.score(Z_holes):.2f}"
    )

    filled, std = marginal.impute(Z_holes, return_std=True)
    error = filled - Z
    rmse = np.sqrt(np.mean(error[holes] ** 2))
    rmse_means = np.sqrt(np.mean(Z[holes] ** 2))
    inside = np.mean(np.abs(error[holes]) <= 2 * std[holes])
    print("\nimputation of the removed entries (standardised units)")
    print(f"RMSE: mixture {rmse:.3f}, column means {rmse_means:.3f}")
    print(f"removed entries within 2 predicted standard deviations: {100 * inside:.1f}%")
    worst = np.argsort([-np.sqrt(np.mean(Z[holes[:, j], j] ** 2)) for j in range(len(names))])
    for j in worst[:3]:
        column = holes[:, j]
        print(
            f"  {names[j]:<24} RMSE mixture {np.sqrt(np.mean(error[column, j] ** 2)):.3f}, "
            f"column mean {np.sqrt(np.mean(Z[column, j] ** 2)):.3f}"
        )

    reference = complete.predict(Z)
    ari_marginal = adjusted_rand_score(reference, marginal.predict(Z_holes))
    ari_means = adjusted_rand_score(reference, by_means.predict(Z_means))
    print("\nagreement with the complete-data fit")
    print(f"clusterings (ARI): marginalize {ari_marginal:.3f}, column means {ari_means:.3f}")
    distance_marginal = matched_distance(marginal.means_, complete.means_)
    distance_means = matched_distance(by_means.means_, complete.means_)
    print(
        f"component means (distance): marginalize {distance_marginal:.3f}, column means "
        f"{distance_means:.3f}"
    )
    variance = np.trace(complete.covariances_)
    print(
        "total variance of the tied covariance: complete "
        f"{variance:.1f}, marginalize {np.trace(marginal.covariances_):.1f}, column means "
        f"{np.trace(by_means.covariances_):.1f}"
    )

    scores = (rmse, rmse_means, ari_marginal, ari_means)
    plot(Z, holes, filled, scores, (complete, marginal, by_means), names)


def plot(Z, holes, filled, scores, fits, names):
    rmse, rmse_means, ari_marginal, ari_means = scores
    complete, marginal, by_means = fits
    fig, axes = new_mosaic([["impute", "scores", "means"]], size=(15.0, 4.8))
    if fig is None:
        return
    ax = axes["impute"]
    truth, guess = Z[holes], filled[holes]
    ax.scatter(truth, guess, s=4, alpha=0.4, color=PALETTE[0], label="mixture's conditional mean")
    ax.axhline(0.0, color="0.4", linestyle="--", label="column mean")
    low, high = np.percentile(truth, [0.5, 99.5])
    ax.plot([low, high], [low, high], color="black", linewidth=0.8)
    ax.set_xlim(low, high)
    ax.set_ylim(low, high)
    ax.set_xlabel("removed entry (standardised)")
    ax.set_ylabel("imputed value")
    ax.set_title("imputation of the removed entries", fontsize=10)
    ax.legend(fontsize=8, loc="upper left")

    ax = axes["scores"]
    labels = ["imputation RMSE", "ARI with the\ncomplete-data fit"]
    width = 0.35
    positions = np.arange(2)
    ax.bar(
        positions - width / 2,
        [rmse, ari_marginal],
        width,
        color=PALETTE[0],
        label="missing='marginalize'",
    )
    ax.bar(
        positions + width / 2,
        [rmse_means, ari_means],
        width,
        color="0.6",
        label="column means first",
    )
    for x, value in zip(
        [*(positions - width / 2), *(positions + width / 2)],
        [rmse, ari_marginal, rmse_means, ari_means],
    ):
        ax.text(x, value + 0.02, f"{value:.2f}", ha="center", fontsize=8)
    ax.set_xticks(positions, labels)
    ax.set_title("lower RMSE, higher ARI are better", fontsize=10)
    ax.legend(fontsize=8)

    # The component means on the two measurements that separate them most.
    ax = axes["means"]
    gap = np.abs(complete.means_[0] - complete.means_[1])
    a, b = np.argsort(-gap)[:2]
    ax.scatter(Z[:, a], Z[:, b], s=5, color="0.8", label="the rows, complete")
    for gm, marker, colour, name in (
        (complete, "o", "black", "complete data"),
        (marginal, "s", PALETTE[0], "missing='marginalize'"),
        (by_means, "^", PALETTE[3], "column means first"),
    ):
        ax.scatter(
            gm.means_[:, a],
            gm.means_[:, b],
            marker=marker,
            s=90,
            color=colour,
            edgecolors="white",
            label=name,
        )
    ax.set_xlabel(f"{names[a]} (standardised)")
    ax.set_ylabel(f"{names[b]} (standardised)")
    ax.set_title("component means", fontsize=10)
    ax.legend(fontsize=8)
    save_figure(fig, "missing_values")


if __name__ == "__main__":
    main()
