"""Colour segmentation of a photograph
===================================

Real data: a photograph that ships with scikit-learn (``china.jpg``, a temple in China, 427 x
640 pixels). Each pixel is a point in the three-dimensional space of its red, green and blue
values.

**The question.** Which colours make up the picture? A mixture fitted to the pixels' colours
segments the image: every pixel gets the component that most likely produced its colour (and a
membership for every component), and the image redrawn with each component's mean colour shows
the segments.

1. **The fit.** A mixture with full covariances is fitted to a random sample of the pixels
   (``FASTGMM_EXAMPLE_N`` of them, 20,000 by default); every pixel of the image is then
   labelled with ``predict``, which is cheap.
2. **Model selection.** BIC is computed for K = 2 to 12. On real colours it keeps falling: the
   colours of a photograph are not a few Gaussian blobs, and with thousands of pixels BIC's
   penalty (log n per parameter) is small next to what each new component adds to the
   likelihood. The curve flattens, though, and the example keeps the smallest K that achieves
   90% of the BIC improvement from K=2 to the best K tried: a rule of thumb for segmentation,
   where a handful of segments is the goal, stated as such.
3. **What the clusters mean.** Each component is a colour family (sky, roof, foliage, shadow),
   printed with its mean colour and its share of the pixels.
4. **Uncertainty and anomalies.** Colours in a photograph change gradually, so many pixels
   lie between two colour families: those with no membership above 0.7 are marked. The 1% of
   pixels with the lowest density have the colours that are rarest in the picture: the red
   paint and orange tiles of the temple, which no component describes, are the anomalies.

Run it with ``python examples/colour_segmentation.py``.
"""

import numpy as np
from _common import example_seed, example_size, new_mosaic, save_figure
from sklearn.datasets import load_sample_image

import fastgmm

CANDIDATE_K = range(2, 13)
SHARE_OF_GAIN = 0.9
SURE = 0.7  # a pixel whose largest membership is below this is 'between' families


def main():
    seed = example_seed()
    image = load_sample_image("china.jpg").astype(np.float64) / 255
    height, width, _ = image.shape
    pixels = image.reshape(-1, 3)
    n_fit = min(example_size(20_000, minimum=1000), len(pixels))
    rng = np.random.default_rng(seed)
    sample = pixels[rng.choice(len(pixels), n_fit, replace=False)]
    print(f"colour_segmentation: {height} x {width} pixels; fitting on {n_fit} of them")

    result = fastgmm.select_model(
        sample, n_components=CANDIDATE_K, covariance_types=("full",), random_state=seed
    )
    bics = np.array([r["bic"] for r in result.results_])
    ks = np.array([r["n_components"] for r in result.results_])
    print("K   BIC")
    for k, b in zip(ks, bics):
        print(f"{k:<3} {b:.1f}")
    best = ks[np.argmin(bics)]
    target = bics[0] - SHARE_OF_GAIN * (bics[0] - bics.min())
    chosen = int(ks[np.argmax(bics <= target)])
    print(f"lowest BIC: K={best}; smallest K with {SHARE_OF_GAIN:.0%} of the gain: K={chosen}")

    gm = fastgmm.GaussianMixture(chosen, covariance_type="full", random_state=seed).fit(sample)
    labels = gm.predict(pixels)
    proba_max = gm.predict_proba(pixels).max(axis=1)
    log_density = gm.score_samples(pixels)
    shares = np.bincount(labels, minlength=chosen) / len(pixels)

    print("\ncomponent  share  mean colour (R G B, 0-255)")
    for k in np.argsort(-shares):
        r, g, b = np.round(gm.means_[k] * 255).astype(int)
        print(f"{k:>9}  {shares[k]:5.1%}  {r:3d} {g:3d} {b:3d}")
    unsure = proba_max < SURE
    print(f"pixels with no membership above {SURE}: {unsure.mean():.1%}")
    rare = log_density < np.quantile(log_density, 0.01)
    print(
        f"mean log-density of the sample: {gm.score(sample):.3f}; of every pixel: "
        f"{log_density.mean():.3f}"
    )
    rare_colour = np.round(pixels[rare].mean(axis=0) * 255).astype(int)
    print(f"the rarest 1% of pixels: mean colour {rare_colour.tolist()}")

    plot(image, gm, labels, unsure, rare, ks, bics, chosen)


def plot(image, gm, labels, unsure, rare, ks, bics, chosen):
    fig, axes = new_mosaic(
        [["photo", "segments"], ["uncertain", "rare"], ["bic", "palette"]],
        size=(11.0, 10.5),
        height_ratios=[1, 1, 0.9],
    )
    if fig is None:
        return
    height, width, _ = image.shape
    segmented = gm.means_[labels].reshape(height, width, 3).clip(0, 1)
    faded = 0.35 + 0.65 * image.mean(axis=2, keepdims=True) * np.ones(3)
    panels = (
        ("photo", image, "the photograph"),
        ("segments", segmented, f"{chosen} segments: each pixel in its component's mean colour"),
        (
            "uncertain",
            np.where(unsure.reshape(height, width, 1), [0.85, 0.1, 0.1], faded),
            f"red: no membership above {SURE} (between colour families)",
        ),
        (
            "rare",
            np.where(rare.reshape(height, width, 1), [0.1, 0.3, 0.95], faded),
            "blue: the 1% of pixels with the rarest colours",
        ),
    )
    for key, picture, title in panels:
        axes[key].imshow(picture)
        axes[key].set_title(title, fontsize=10)
        axes[key].axis("off")

    ax = axes["bic"]
    ax.plot(ks, bics, "o-", color="0.3")
    ax.plot(
        chosen,
        bics[list(ks).index(chosen)],
        "o",
        color="tab:red",
        markersize=10,
        label=f"kept: K={chosen}",
    )
    ax.set_xlabel("number of components K")
    ax.set_ylabel("BIC (lower is better)")
    ax.set_title("BIC keeps falling; the gain flattens", fontsize=10)
    ax.legend(fontsize=8)

    ax = axes["palette"]
    order = np.argsort(-np.bincount(labels, minlength=gm.n_components))
    shares = np.bincount(labels, minlength=gm.n_components)[order] / len(labels)
    ax.barh(range(len(order)), shares, color=gm.means_[order].clip(0, 1), edgecolor="0.3")
    ax.set_yticks(range(len(order)), [f"comp {k}" for k in order])
    ax.invert_yaxis()
    ax.set_xlabel("share of the pixels")
    ax.set_title("the colour families (bar colour: component mean)", fontsize=10)
    save_figure(fig, "colour_segmentation")


if __name__ == "__main__":
    main()
