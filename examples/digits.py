"""Handwritten digits
==================

Real data: the 1,797 handwritten digits that ship with scikit-learn (8x8 grey images, 64
pixel features; the test set of UCI's "optical recognition of handwritten digits" data).

**The question.** Without being told which digit an image shows, does a Gaussian mixture find
the ten digits? And which images does it find unusual?

1. **The fit.** A full covariance on 64 pixels costs 2,080 parameters per component, more than
   the ~180 images of a digit can support, so the pixels are first reduced to their 10
   principal components (PCA), where the digits still differ.
2. **Model selection.** BIC chooses the number of components among 8 to 24. It picks *more*
   than ten: BIC asks how many Gaussians describe the density well, not how many digits there
   are, and several digits are written in more than one style (a 1 with or without its foot,
   a 7 with or without a bar).
3. **What the clusters mean.** Each component's mean, mapped back from the principal
   components to pixels, is an image: the component's typical digit. The example prints which
   digits each component holds, and how well "label each component by its commonest digit"
   recovers the truth.
4. **What the anomalies mean.** The images with the lowest density ``log p(x)`` are the
   oddly written digits: too thick, cut off, slanted, or looking like another digit.
5. **A generative model.** New digits drawn with ``sample()`` look like handwriting.

Run it with ``python examples/digits.py``; ``FASTGMM_EXAMPLE_N`` uses that many images, drawn at
random (default: all 1,797).
"""

import numpy as np
from _common import example_seed, example_size, new_mosaic, save_figure
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.metrics import adjusted_rand_score

import fastgmm

N_PCA = 10
CANDIDATE_K = range(8, 25, 2)
N_ODD = 12


def load(n_samples, seed):
    """The digit images (as rows of 64 pixels) and their labels, ``n_samples`` of them."""
    digits = load_digits()
    X, y = digits.data, digits.target
    if n_samples < len(X):
        keep = np.sort(np.random.default_rng(seed).choice(len(X), n_samples, replace=False))
        X, y = X[keep], y[keep]
    return X, y


def mosaic(images, n_cols, top=0):
    """Tile 8x8 images into one picture, one blank pixel apart and ``top`` blank rows above each
    (room for a caption). Returns the picture and the top-left corner of each tile."""
    n_rows = -(-len(images) // n_cols)
    step_r, step_c = 9 + top, 9
    canvas = np.full((n_rows * step_r + 1, n_cols * step_c + 1), np.nan)
    corners = []
    for i, image in enumerate(images):
        r, c = divmod(i, n_cols)
        row, col = 1 + top + step_r * r, 1 + step_c * c
        canvas[row : row + 8, col : col + 8] = image.reshape(8, 8)
        corners.append((row, col))
    return canvas, corners


def main():
    seed = example_seed()
    X, y = load(example_size(1797, minimum=300), seed)
    print(f"digits: {len(X)} images of 8x8 pixels, digits 0-9, {np.bincount(y).min()} or more each")

    pca = PCA(n_components=N_PCA, random_state=seed).fit(X)
    Z = pca.transform(X)
    kept = pca.explained_variance_ratio_.sum()
    print(f"PCA: {N_PCA} components keep {kept:.1%} of the pixel variance")

    result = fastgmm.select_model(
        Z, n_components=CANDIDATE_K, covariance_types=("full",), n_init=2, random_state=seed
    )
    print("\nK    BIC")
    for record in result.results_:
        print(f"{record['n_components']:<4} {record['bic']:.1f}")
    gm = result.best_estimator_
    print(f"BIC chose K={gm.n_components} full components for 10 digits")

    # What the clusters mean: the digits each component holds.
    labels = gm.predict(Z)
    print("\ncomponent  size  commonest digit  its share  other digits (count)")
    majority = np.zeros(gm.n_components, dtype=int)
    for k in np.argsort(-np.bincount(labels, minlength=gm.n_components)):
        members = y[labels == k]
        if len(members) == 0:
            continue
        counts = np.bincount(members, minlength=10)
        majority[k] = counts.argmax()
        others = ", ".join(f"{d} ({counts[d]})" for d in np.argsort(-counts)[1:3] if counts[d])
        print(
            f"{k:>9}  {len(members):>4}  {majority[k]:>15}  {counts.max() / len(members):9.1%}"
            f"  {others}"
        )
    split = [d for d in range(10) if np.sum(majority == d) > 1]
    missing = [d for d in range(10) if not np.any(majority == d)]
    print(f"digits written in several styles (more than one component): {split}")
    print(f"digits no component is mostly made of: {missing}")
    print(f"adjusted Rand index, components vs digits: {adjusted_rand_score(y, labels):.3f}")
    accuracy = np.mean(majority[labels] == y)
    print(f"labelling each component by its commonest digit: {accuracy:.1%} of images right")

    # What the anomalies mean: the images the mixture finds least likely.
    log_density = gm.score_samples(Z)
    odd = np.argsort(log_density)[:N_ODD]
    threshold = np.quantile(log_density, 0.01)
    print(f"\nthe {N_ODD} least likely images (1% of images lie below log p = {threshold:.1f}):")
    print("image  digit  log p(x)  read as")
    for i in odd:
        print(f"{i:>5}  {y[i]:>5}  {log_density[i]:8.1f}  {majority[labels[i]]:>7}")
    misread = np.mean(majority[labels[odd]] != y[odd])
    typical = np.mean(majority[labels] != y)
    print(f"misread among the least likely: {misread:.0%} (among all images: {typical:.0%})")

    # A generative model: new digits from the mixture, back in pixel space.
    drawn, _ = gm.sample(24)
    new_digits = np.clip(pca.inverse_transform(drawn), 0, 16)
    print(f"drew {len(new_digits)} new digits with sample()")

    plot(result, gm, pca, majority, X[odd], y[odd], new_digits)


def plot(result, gm, pca, majority, odd_images, odd_digits, new_digits):
    layout = [["bic", "means"], ["odd", "odd"], ["new", "new"]]
    fig, axes = new_mosaic(layout, size=(12.0, 9.5), width_ratios=[1, 2], height_ratios=[2, 1, 1])
    if fig is None:
        return
    ks = [r["n_components"] for r in result.results_]
    bics = [r["bic"] for r in result.results_]
    ax = axes["bic"]
    ax.plot(ks, bics, "o-", color="0.3")
    ax.plot(gm.n_components, min(bics), "o", color="tab:red", markersize=10, label="chosen")
    ax.axvline(10, color="tab:blue", linestyle=":", label="10 digits")
    ax.set_xlabel("number of components K")
    ax.set_ylabel("BIC (lower is better)")
    ax.set_title("BIC chooses the number of components", fontsize=10)
    ax.legend(fontsize=8)

    order = np.argsort(majority, kind="stable")
    means = np.clip(pca.inverse_transform(gm.means_[order]), 0, 16)
    panels = (
        (
            "means",
            means,
            min(len(means), 8),
            majority[order],
            "each component's mean, as an image (in red: the digit most of its images show)",
        ),
        (
            "odd",
            odd_images,
            len(odd_images),
            odd_digits,
            "the least likely images (in red: the digit the writer meant)",
        ),
        ("new", new_digits, len(new_digits) // 2, None, "new digits drawn with sample()"),
    )
    for key, images, cols, captions, title in panels:
        ax = axes[key]
        top = 0 if captions is None else 4
        canvas, corners = mosaic(images, cols, top=top)
        ax.imshow(canvas, cmap="gray_r", vmin=0, vmax=16)
        if captions is not None:
            for (row, col), caption in zip(corners, captions):
                ax.text(
                    col + 3.5,
                    row - 1.2,
                    str(caption),
                    ha="center",
                    va="bottom",
                    fontsize=10,
                    color="tab:red",
                )
        ax.set_title(title, fontsize=10)
        ax.axis("off")
    save_figure(fig, "digits")


if __name__ == "__main__":
    main()
