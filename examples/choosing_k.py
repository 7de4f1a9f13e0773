"""Choosing the number of components
=================================

Choose the number of components (and the covariance type) with BIC and AIC.

More components fit the training data at least as well: at its best, the log-likelihood only
goes up with K (EM may stop at a slightly worse local optimum). An information criterion adds a
price per free parameter ``p``:

- BIC = -2 log L + p log n    (Schwarz 1978)
- AIC = -2 log L + 2 p        (Akaike 1974)

and the model with the **lowest** value wins (scikit-learn's sign; R's mclust reports BIC with
the opposite sign, higher is better). BIC's price grows with the number of rows n and recovers
the true K when the model family is right; AIC's is smaller (for n > e^2 = 7.4 rows), so it
never chooses a model with fewer parameters than BIC does, and it often chooses more.

:func:`fastgmm.select_model` fits every (K, covariance type) of a grid, all candidates advancing
together through shared passes over the data, and keeps the best. Here the data come from 4
tilted, differently shaped clusters, so the right answer is K=4 with 'full' covariances.
(:class:`fastgmm.GaussianMixtureIC` does the same as an estimator.)

Run it with ``python examples/choosing_k.py``. ``FASTGMM_EXAMPLE_N`` sets the number of points
(default 2000), ``FASTGMM_EXAMPLE_OUTDIR`` where the PNG goes.
"""

import math

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

from fastgmm import select_model

CLUSTERS = (
    (0.30, (0.0, 0.0), ((1.0, 0.7), (0.7, 1.0))),
    (0.30, (5.0, 0.0), ((0.5, -0.3), (-0.3, 0.4))),
    (0.25, (2.5, 4.5), ((1.5, 0.0), (0.0, 0.2))),
    (0.15, (6.5, 5.0), ((0.3, 0.25), (0.25, 0.6))),
)
GRID = range(1, 9)
COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")


def make_data(n_samples, seed):
    rng = np.random.default_rng(seed)
    weights = np.array([c[0] for c in CLUSTERS])
    labels = rng.choice(len(CLUSTERS), size=n_samples, p=weights)
    X = np.empty((n_samples, 2))
    for k, (_, mean, cov) in enumerate(CLUSTERS):
        rows = labels == k
        X[rows] = rng.multivariate_normal(mean, cov, size=int(rows.sum()))
    return X


def main():
    n_samples = example_size(2000, minimum=100)
    seed = example_seed()
    X = make_data(n_samples, seed)
    print(
        f"choosing_k: {n_samples} points from {len(CLUSTERS)} clusters; trying K in "
        f"{GRID.start}..{GRID.stop - 1} x {', '.join(COVARIANCE_TYPES)}"
    )

    result = select_model(
        X, n_components=GRID, covariance_types=COVARIANCE_TYPES, criterion="bic", random_state=seed
    )
    records = result.results_
    print(
        f"{len(records)} candidates fitted in {result.n_passes} shared passes over the data "
        f"({result.fit_seconds:.2f} s)\n"
    )
    # One table per quantity: rows K, columns the covariance types; * marks the overall best.
    for quantity in ("log_likelihood", "bic", "aic"):
        values = {(r["n_components"], r["covariance_type"]): r[quantity] for r in records}
        best = max(values.values()) if quantity == "log_likelihood" else min(values.values())
        print(f"{quantity.upper() if quantity != 'log_likelihood' else 'log-likelihood'}:")
        print(f"{'K':>3} " + "".join(f"{t:>14}" for t in COVARIANCE_TYPES))
        for k in GRID:
            cells = [
                f"{values[k, t]:>13.2f}{'*' if values[k, t] == best else ' '}"
                for t in COVARIANCE_TYPES
            ]
            print(f"{k:>3} " + "".join(cells))
        print()

    best_bic = records[result.best_index_]
    best_aic = min(records, key=lambda r: r["aic"])
    for name, r in (("BIC", best_bic), ("AIC", best_aic)):
        print(
            f"chosen by {name}: K={r['n_components']} {r['covariance_type']} "
            f"({r['n_parameters']} parameters)"
        )
    print(f"true model: K={len(CLUSTERS)} full")
    # BIC - AIC = p (log n - 2): the only difference is the price of a parameter.
    print(
        f"price of one parameter: BIC log(n) = {math.log(n_samples):.2f}, AIC 2; "
        f"so AIC's choice has at least as many parameters as BIC's"
    )
    gm = result.best_estimator_
    print(f"selected model: weights {np.round(np.sort(gm.weights_)[::-1], 3).tolist()}")

    fig, axes = new_figure(n_cols=3, size=(5.0, 4.6))
    if fig is None:
        return
    ax_bic, ax_aic, ax_data = axes
    result.plot(ax=ax_bic)
    ax_bic.set_title("BIC: lowest is best", fontsize=10)
    # The same curves for AIC, from the same fits.
    table = result.criterion_table("aic")
    markers = {"full": "o", "tied": "s", "diag": "^", "spherical": "D"}  # as result.plot's
    for j, ctype in enumerate(result.covariance_types):
        ax_aic.plot(list(GRID), table[:, j], marker=markers[ctype], label=ctype)
    ax_aic.plot(
        [best_aic["n_components"]],
        [best_aic["aic"]],
        linestyle="none",
        marker="o",
        markersize=14,
        markerfacecolor="none",
        markeredgecolor="black",
        label=f"selected: {best_aic['n_components']}, {best_aic['covariance_type']}",
    )
    ax_aic.set_xlabel("number of components")
    ax_aic.set_ylabel("AIC (lower is better)")
    ax_aic.set_xticks(list(GRID))
    ax_aic.legend(title="covariance type", fontsize=8)
    ax_aic.set_title("AIC: a smaller price per parameter", fontsize=10)

    labels = gm.predict(X)
    colours = PALETTE[np.arange(gm.n_components) % len(PALETTE)]
    ax_data.scatter(X[:, 0], X[:, 1], c=colours[labels], s=5, linewidths=0)
    draw_ellipses(ax_data, gm.means_, full_covariances(gm), colours)
    ax_data.set_title(
        f"BIC's choice: K={gm.n_components}, {gm.covariance_type} covariances", fontsize=10
    )
    ax_data.set_xlabel("x1")
    ax_data.set_ylabel("x2")
    ax_data.set_aspect("equal", adjustable="datalim")
    ax_data.legend(loc="lower right", fontsize=8)
    save_figure(fig, "choosing_k")


if __name__ == "__main__":
    main()
