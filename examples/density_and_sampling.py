"""Density and sampling
====================

A Gaussian mixture is a density: evaluate it, draw new data from it, and check the draws.

The data here are *not* Gaussian: a curved, skewed "banana". A single Gaussian can only match
their mean and covariance; a mixture of a few Gaussians follows the curve. The script

1. fits ``GaussianMixture(6)`` and evaluates the log-density ``score_samples`` on a grid (the
   contours of the plot);
2. draws new points with ``sample(n)``: choose a component with probability ``weights_[k]``,
   then draw from that Gaussian;
3. checks the draws' moments against the model's exact ones (mean, covariance, and the third
   moments that measure skewness): each difference is printed in standard errors (z), and
   should be a few units at most;
4. compares the model with the data: after EM's last M-step, a full-covariance mixture has
   *exactly* the data's mean and covariance (the M-step is a weighted average of the rows),
   while the skewness is learnt from the shape: a single Gaussian has none.

Run it with ``python examples/density_and_sampling.py``. ``FASTGMM_EXAMPLE_N`` sets the number
of points (default 4000; ten times as many draws); ``FASTGMM_EXAMPLE_OUTDIR`` where the PNG goes.
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

from fastgmm import GaussianMixture

N_COMPONENTS = 6
# |z| above this would mean the draws do not follow the model (P(|z| > 4.5) ~ 7e-6 each).
Z_LIMIT = 4.5


def make_data(n_samples, seed):
    """A skewed crescent: x2 follows x1 squared, plus noise."""
    rng = np.random.default_rng(seed)
    t = rng.normal(size=n_samples)
    x1 = 2.0 * t + 0.3 * rng.normal(size=n_samples)
    x2 = t**2 + 0.3 * rng.normal(size=n_samples)
    return np.column_stack([x1, x2])


def model_moments(gm):
    """Exact mean, covariance and third central moments (per feature) of a fitted mixture."""
    weights = np.asarray(gm.weights_, dtype=np.float64)
    means = np.asarray(gm.means_, dtype=np.float64)
    covs = full_covariances(gm)
    mean = weights @ means
    offsets = means - mean
    # Law of total covariance: within-component plus between-component parts.
    covariance = np.einsum("k,kij->ij", weights, covs) + np.einsum(
        "k,ki,kj->ij", weights, offsets, offsets
    )
    # E[(x - mean)^3] per feature: each component contributes a^3 + 3 a var (a = its offset).
    variances = np.diagonal(covs, axis1=1, axis2=2)
    third = weights @ (offsets**3 + 3 * offsets * variances)
    return mean, covariance, third


def z_score(values, expected):
    """How many standard errors the mean of ``values`` lies from ``expected``."""
    return (values.mean() - expected) / (values.std(ddof=1) / np.sqrt(len(values)))


def skewness(third, variance):
    return third / variance**1.5


def main():
    n_samples = example_size(4000, minimum=200)
    seed = example_seed()
    X = make_data(n_samples, seed)
    print(f"density_and_sampling: {n_samples} points on a skewed crescent (2-D)")

    gm = GaussianMixture(N_COMPONENTS, covariance_type="full", random_state=seed).fit(X)
    print(
        f"fit: {N_COMPONENTS} full components, converged={gm.converged_}, {gm.n_iter_} iterations"
    )
    print(f"mean log-density of the data: {gm.score(X):.4f}")

    # Many more draws than data points: drawing is cheap, and the standard errors of the third
    # moments (which depend on sixth moments, heavy in the tails) need many rows to be reliable.
    n_draws = max(10 * n_samples, 20_000)
    draws, components = gm.sample(n_draws)
    print(
        f"drew {len(draws)} new points; mean log-density of the draws: {gm.score(draws):.4f}"
        f" (close to the data's: the draws are as typical as the data)"
    )
    counts = np.bincount(components, minlength=N_COMPONENTS) / len(draws)
    print(
        f"share of draws per component vs weights_: largest gap "
        f"{np.max(np.abs(counts - gm.weights_)):.4f}"
    )

    mean, covariance, third = model_moments(gm)
    data_mean, data_cov = X.mean(axis=0), np.cov(X.T, bias=True)
    data_third = ((X - data_mean) ** 3).mean(axis=0)
    centred = draws - mean
    rows = [
        ("mean x1", data_mean[0], mean[0], z_score(draws[:, 0], mean[0])),
        ("mean x2", data_mean[1], mean[1], z_score(draws[:, 1], mean[1])),
        ("var x1", data_cov[0, 0], covariance[0, 0], z_score(centred[:, 0] ** 2, covariance[0, 0])),
        ("var x2", data_cov[1, 1], covariance[1, 1], z_score(centred[:, 1] ** 2, covariance[1, 1])),
        (
            "cov x1 x2",
            data_cov[0, 1],
            covariance[0, 1],
            z_score(centred[:, 0] * centred[:, 1], covariance[0, 1]),
        ),
        ("third x1", data_third[0], third[0], z_score(centred[:, 0] ** 3, third[0])),
        ("third x2", data_third[1], third[1], z_score(centred[:, 1] ** 3, third[1])),
    ]
    print("\nmoment          data       model        draws  z (draws vs model)")
    sample_cov = np.cov(draws.T, bias=True)
    sample_values = {
        "mean x1": draws[:, 0].mean(),
        "mean x2": draws[:, 1].mean(),
        "var x1": sample_cov[0, 0],
        "var x2": sample_cov[1, 1],
        "cov x1 x2": sample_cov[0, 1],
        "third x1": ((draws[:, 0] - draws[:, 0].mean()) ** 3).mean(),
        "third x2": ((draws[:, 1] - draws[:, 1].mean()) ** 3).mean(),
    }
    for name, data_value, model_value, z in rows:
        print(
            f"moment {name:<10}{data_value:9.4f}  {model_value:10.4f}  {sample_values[name]:11.4f}"
            f"  {z:+6.2f}"
        )
    worst = max(abs(z) for *_, z in rows)
    verdict = "the draws follow the model" if worst < Z_LIMIT else "MISMATCH"
    print(f"largest |z| of the draws against the model: {worst:.2f} ({verdict}; limit {Z_LIMIT})")
    # reg_covar is added to every component's diagonal, so to the mixture's covariance too.
    cov_gap = covariance - data_cov - gm.reg_covar * np.eye(X.shape[1])
    moment_gap = max(np.max(np.abs(mean - data_mean)), np.max(np.abs(cov_gap)))
    print(f"model vs data, mean and covariance: largest gap {moment_gap:.1e} (EM matches them)")
    data_skew = skewness(data_third, np.diag(data_cov))
    model_skew = skewness(third, np.diag(covariance))
    print(
        f"skewness of x2: data {data_skew[1]:.3f}, mixture {model_skew[1]:.3f}, "
        f"single Gaussian 0 (it cannot bend)"
    )

    fig, axes = new_figure(n_cols=3, size=(5.0, 4.6))
    if fig is None:
        return
    ax_data, ax_draws, ax_hist = axes
    # Axes over the central 99.8% of the data: a few far points would squash the picture.
    lo = np.quantile(X, 0.001, axis=0) - 1.0
    hi = np.quantile(X, 0.999, axis=0) + 1.0
    gx, gy = np.meshgrid(np.linspace(lo[0], hi[0], 250), np.linspace(lo[1], hi[1], 250))
    density = gm.score_samples(np.column_stack([gx.ravel(), gy.ravel()])).reshape(gx.shape)
    top = np.floor(density.max())
    levels = np.arange(top - 8.0, top + 0.5, 1.0)  # from one contour to the next: density x e
    colours = PALETTE[np.arange(N_COMPONENTS) % len(PALETTE)]
    # As many draws on the picture as data points, so that both panels look alike. sample()
    # returns the draws grouped by component, so pick them at random rather than the first n.
    shown = np.random.default_rng(seed).choice(n_draws, size=n_samples, replace=False)
    for ax, points, title in (
        (ax_data, X, "data and the fitted log-density"),
        (ax_draws, draws[shown], "new points drawn with sample()"),
    ):
        lines = ax.contour(gx, gy, density, levels=levels, cmap="viridis", linewidths=1.0)
        if ax is ax_data:
            ax.scatter(*points.T, s=4, c="0.35", linewidths=0, label="data")
            draw_ellipses(ax, gm.means_, full_covariances(gm), colours, n_stds=(1,), label=False)
            ax.plot([], [], color="0.35", label="1-sigma ellipse per component")
        else:
            ax.scatter(*points.T, s=4, c=colours[components[shown]], linewidths=0)
            ax.scatter([], [], s=20, c="0.35", label="colour: component drawn from")
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("x1")
        ax.set_ylabel("x2")
        ax.set_xlim(lo[0], hi[0])
        ax.set_ylim(lo[1], hi[1])
        ax.legend(loc="upper center", fontsize=8)
    fig.colorbar(lines, ax=ax_draws, label="log p(x) (contours 1 apart)")

    # The x2 margin: the mixture follows the skew, one Gaussian with the same moments cannot.
    bins = np.linspace(lo[1], hi[1], 60)
    ax_hist.hist(X[:, 1], bins=bins, density=True, color="0.6", label="data")
    ax_hist.hist(
        draws[:, 1], bins=bins, density=True, histtype="step", color=PALETTE[3], linewidth=1.6
    )
    ax_hist.plot([], [], color=PALETTE[3], label="draws from the mixture")
    grid = np.linspace(lo[1], hi[1], 400)
    sd = np.sqrt(data_cov[1, 1])
    gaussian = np.exp(-0.5 * ((grid - data_mean[1]) / sd) ** 2) / (sd * np.sqrt(2 * np.pi))
    ax_hist.plot(grid, gaussian, color="black", linestyle="--", label="one Gaussian, same moments")
    ax_hist.set_xlabel("x2")
    ax_hist.set_ylabel("density")
    ax_hist.set_title(
        f"skewness of x2: data {data_skew[1]:.2f}, mixture {model_skew[1]:.2f}", fontsize=10
    )
    ax_hist.legend(fontsize=8)
    save_figure(fig, "density_and_sampling")


if __name__ == "__main__":
    main()
