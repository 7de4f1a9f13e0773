"""Too many components: EM against the variational (Bayesian) mixture
====================================================================

Give both estimators ten components for data drawn from four clusters.

Maximum likelihood (``GaussianMixture``, EM) uses every component it is given: more components
never lower the likelihood, so the ten split the four clusters between them, and only a
criterion such as BIC, over several fits, says that four would do (see the example on choosing
K). ``BayesianGaussianMixture`` puts a prior on the weights: with a Dirichlet process prior and
a small ``weight_concentration_prior``, a component must earn its weight from the data, and the
fit switches the surplus ones off (their weights shrink to the prior's, near zero) in one run.

The script prints the sorted weights of both fits, the number of components that carry more
than 1% of the data, and how the active components match the true clusters. Run it with
``python examples/bayesian_vs_em.py``. ``FASTGMM_EXAMPLE_N`` sets the number of points (default
2000), ``FASTGMM_EXAMPLE_OUTDIR`` where the PNG goes.
"""

import numpy as np
from _common import PALETTE, draw_ellipses, example_seed, example_size, new_mosaic, save_figure

from fastgmm import BayesianGaussianMixture, GaussianMixture

# The true clusters: centre, standard deviations along the axes, share of the points.
CLUSTERS = (
    ((0.0, 0.0), (1.0, 0.6), 0.35),
    ((6.0, 1.0), (0.7, 1.2), 0.25),
    ((2.0, 6.0), (1.3, 0.7), 0.25),
    ((8.0, 7.0), (0.6, 0.6), 0.15),
)
N_COMPONENTS = 10
ACTIVE = 0.01  # a component "carries data" above this weight


def make_data(n_samples, seed):
    rng = np.random.default_rng(seed)
    shares = np.array([share for _, _, share in CLUSTERS])
    labels = rng.choice(len(CLUSTERS), size=n_samples, p=shares)
    centres = np.array([centre for centre, _, _ in CLUSTERS])
    scales = np.array([scale for _, scale, _ in CLUSTERS])
    return centres[labels] + rng.normal(size=(n_samples, 2)) * scales[labels], labels


def main():
    n_samples = example_size(2000)
    seed = example_seed()
    X, truth = make_data(n_samples, seed)
    print(f"bayesian_vs_em: {n_samples} points from {len(CLUSTERS)} clusters, K={N_COMPONENTS}")

    em = GaussianMixture(N_COMPONENTS, n_init=3, random_state=seed).fit(X)
    bayes = BayesianGaussianMixture(
        n_components=N_COMPONENTS,
        weight_concentration_prior_type="dirichlet_process",
        weight_concentration_prior=0.01,
        n_init=3,
        max_iter=1000,
        random_state=seed,
    ).fit(X)

    for name, model in (("EM", em), ("Bayesian", bayes)):
        weights = np.sort(model.weights_)[::-1]
        print(f"weights {name:<9}" + " ".join(f"{w:.3f}" for w in weights))
    n_em = int(np.sum(em.weights_ > ACTIVE))
    n_bayes = int(np.sum(bayes.weights_ > ACTIVE))
    print(f"components above {ACTIVE:.0%}: EM {n_em}, Bayesian {n_bayes} (true clusters 4)")
    print(f"Bayesian fit: converged={bayes.converged_} after {bayes.n_iter_} iterations")

    # Each true cluster should be one active component: the most frequent label in it.
    labels = bayes.predict(X)
    for k, (centre, _, share) in enumerate(CLUSTERS):
        rows = truth == k
        found = np.bincount(labels[rows], minlength=N_COMPONENTS).argmax()
        purity = float(np.mean(labels[rows] == found))
        print(
            f"cluster {k} at {centre}: component {found}, weight {bayes.weights_[found]:.3f} "
            f"(true {share:.2f}), {purity:.1%} of its points"
        )

    fig, axes = new_mosaic([["em", "bayes"], ["weights", "weights"]], size=(11.0, 9.0))
    if fig is None:
        return
    colours = PALETTE[np.arange(N_COMPONENTS) % len(PALETTE)]
    for key, model, title in (
        ("em", em, f"GaussianMixture (EM): {n_em} of {N_COMPONENTS} components used"),
        ("bayes", bayes, f"BayesianGaussianMixture: {n_bayes} of {N_COMPONENTS} used"),
    ):
        ax = axes[key]
        ax.scatter(*X.T, c=colours[model.predict(X)], s=4, linewidths=0, alpha=0.6)
        active = np.flatnonzero(model.weights_ > ACTIVE)
        covariances = np.asarray(model.covariances_)[active]
        draw_ellipses(ax, model.means_[active], covariances, colours[active], n_stds=(2,))
        ax.set_title(title, fontsize=10)
        ax.set_aspect("equal")
        ax.legend(loc="lower right", fontsize=8)
    ax = axes["weights"]
    order = np.arange(N_COMPONENTS)
    width = 0.4
    ax.bar(order - width / 2, np.sort(em.weights_)[::-1], width, label="EM", color=PALETTE[0])
    ax.bar(
        order + width / 2,
        np.sort(bayes.weights_)[::-1],
        width,
        label="Bayesian (Dirichlet process)",
        color=PALETTE[1],
    )
    ax.axhline(ACTIVE, color="0.4", linestyle=":", linewidth=1, label=f"{ACTIVE:.0%}")
    ax.set_yscale("log")
    ax.set_xticks(order)
    ax.set_xlabel("components, by decreasing weight")
    ax.set_ylabel("weight (log scale)")
    ax.set_title("the weights: the prior switches the surplus components off", fontsize=10)
    ax.legend(fontsize=8)
    save_figure(fig, "bayesian_vs_em")


if __name__ == "__main__":
    main()
