"""The main job on generated data: ``fastgmm demo``.

Overlapping 2-D clusters with a few planted anomalies go through the whole workflow: choose the
number of components by BIC, fit, read the soft assignments of the points that lie between
clusters, flag the anomalies with the mixture's log-density and score the flags against the
planted truth. With matplotlib installed, one PNG shows the ellipses, the membership colours,
the anomalies and the BIC curves.
"""

from __future__ import annotations

import sys
import time
from contextlib import contextmanager

import numpy as np

__all__ = ["announce_compilation", "make_demo_data", "run_demo"]

# The lesson's clusters: (mean, covariance, rows). A and B overlap along x; C sits above them.
_CLUSTERS = (
    ((0.0, 0.0), ((1.0, 0.6), (0.6, 1.0)), 260),
    ((3.2, 0.4), ((0.8, -0.3), (-0.3, 0.6)), 200),
    ((1.2, 3.4), ((0.5, 0.0), (0.0, 1.1)), 140),
)
_N_ANOMALIES = 12
# Points whose largest membership is below this are "between clusters".
_UNCERTAIN = 0.9
# Fraction of rows the detector flags: the planted rate (12 of 612, ~2%).
_CONTAMINATION = 0.02
_GRID = range(1, 7)
_COVARIANCE_TYPES = ("full", "diag", "spherical")
# A first run compiles the demo's kernels (5 signatures). Measured on a 2-core machine with an
# empty NUMBA_CACHE_DIR: 19 s of CPU time (user time of a cold run, 21.8 s, less a warm one's,
# 2.7 s); 19 s of wall time with one other process running, 49-53 s with 4-5.
_COMPILE_ESTIMATE = "about 20 s, longer on a busy machine"


def make_demo_data(seed=0):
    """Overlapping 2-D Gaussian clusters plus uniformly scattered far-away anomalies.

    Parameters
    ----------
    seed : int

    Returns
    -------
    X : ndarray of shape (612, 2)
    cluster : ndarray of shape (612,)
        The generating cluster of each row, -1 for a planted anomaly.

    Examples
    --------
    >>> from fastgmm.demo import make_demo_data
    >>> X, cluster = make_demo_data(0)
    >>> X.shape, int((cluster == -1).sum())
    ((612, 2), 12)
    """
    rng = np.random.default_rng(seed)
    parts, labels = [], []
    for k, (mean, cov, n) in enumerate(_CLUSTERS):
        parts.append(rng.multivariate_normal(mean, cov, size=n))
        labels.append(np.full(n, k))
    # Anomalies on a ring 5 to 7.5 units from the centre of the data: outside every cluster.
    angle = rng.uniform(0, 2 * np.pi, _N_ANOMALIES)
    radius = rng.uniform(5.0, 7.5, _N_ANOMALIES)
    centre = np.array([1.4, 1.2])
    parts.append(centre + np.column_stack([np.cos(angle), np.sin(angle)]) * radius[:, None])
    labels.append(np.full(_N_ANOMALIES, -1))
    order = rng.permutation(sum(len(p) for p in parts))
    X = np.ascontiguousarray(np.concatenate(parts)[order])
    return X, np.concatenate(labels)[order]


def run_demo(seed=0, plot="fastgmm_demo.png", n_jobs=None, stream=None, log=None):
    """Run the demo, print its report to ``stream`` and return it as a dict.

    Parameters
    ----------
    seed : int
        Seed of the data and of the fits.
    plot : str or None
        PNG to write; None to skip. Skipped with a message when matplotlib is missing.
    n_jobs : int, optional
        Threads for the kernels.
    stream : file-like, default sys.stdout
    log : callable, optional
        Receives progress messages.

    Returns
    -------
    report : dict

    Examples
    --------
    >>> import io
    >>> from fastgmm.demo import run_demo
    >>> report = run_demo(plot=None, stream=io.StringIO())
    >>> report["anomalies"]["recall"], report["n_planted_anomalies"]
    (1.0, 12)
    """
    from .outliers import GaussianMixtureOutlierDetector
    from .selection import select_model

    stream = sys.stdout if stream is None else stream
    log = log or (lambda message: None)
    X, cluster = make_demo_data(seed)
    planted = cluster == -1
    log(f"generated {len(X)} points: {len(_CLUSTERS)} clusters, {planted.sum()} anomalies")

    log(f"choosing K in {_GRID.start}..{_GRID.stop - 1} by BIC")
    # Both fits compile on a cold cache; one announcement covers them.
    with announce_compilation(log):
        selection = select_model(
            X,
            n_components=_GRID,
            covariance_types=_COVARIANCE_TYPES,
            criterion="bic",
            random_state=seed,
            n_jobs=n_jobs,
        )
        gm = selection.best_estimator_
        k, ctype = gm.n_components, gm.covariance_type
        detector = GaussianMixtureOutlierDetector(
            n_components=k,
            covariance_type=ctype,
            contamination=_CONTAMINATION,
            random_state=seed,
            n_jobs=n_jobs,
        ).fit(X)

    background = _background_components(gm)
    proba = gm.predict_proba(X)
    certainty = proba.max(axis=1)
    between = np.flatnonzero((certainty < _UNCERTAIN) & ~planted)
    examples = between[np.argsort(certainty[between])][:5]

    flagged = detector.predict(X) == -1
    true_positives = int(np.sum(flagged & planted))
    precision = true_positives / max(int(flagged.sum()), 1)
    recall = true_positives / int(planted.sum())

    report = {
        "n_samples": len(X),
        "n_planted_anomalies": int(planted.sum()),
        "selected": {
            "n_components": int(k),
            "covariance_type": ctype,
            "bic": float(selection.results_[selection.best_index_]["bic"]),
        },
        "bic_table": [
            {key: r[key] for key in ("n_components", "covariance_type", "bic", "converged")}
            for r in selection.results_
        ],
        "weights": gm.weights_.tolist(),
        "means": gm.means_.tolist(),
        "spread": _spread(gm).tolist(),
        "background_components": background,
        "between_clusters": {
            "threshold": _UNCERTAIN,
            "count": int(between.size),
            "examples": [
                {"x": X[i].tolist(), "membership": proba[i].round(3).tolist()} for i in examples
            ],
        },
        "anomalies": {
            "contamination": _CONTAMINATION,
            "flagged": int(flagged.sum()),
            "true_positives": true_positives,
            "precision": precision,
            "recall": recall,
            "threshold": float(detector.threshold_),
        },
        "plot": None,
    }
    _print_report(report, stream)

    if plot is not None:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            message = "matplotlib is not installed (pip install 'fastgmm[plot]'): no plot drawn"
            report["plot_skipped"] = message
            print(f"\nplot: {message}", file=stream)
        else:
            _draw(X, planted, flagged, proba, gm, selection, report, plot)
            report["plot"] = plot
            print(f"\nplot: {plot}", file=stream)
    return report


@contextmanager
def announce_compilation(log, estimate=_COMPILE_ESTIMATE):
    """Log when Numba starts compiling inside the block, and how long compiling took.

    The first run on a machine (or after an upgrade) finds no compiled kernels in Numba's cache
    and compiles them, a silence of many seconds. Numba emits its ``numba:compile`` event only
    after a cache miss (kernels loaded from the cache do not emit it), so the first such event
    is the honest sign of a cold cache and costs nothing when the cache is warm. Rejected:
    looking for the cache's index files beforehand, which ties the check to Numba's cache
    layout and cannot tell a stale entry (other CPU, edited source) from a usable one.

    Parameters
    ----------
    log : callable
        Receives the two messages (at the first compilation, and at the end of the block).
    estimate : str
        How long compiling usually takes, for the first message.

    Yields
    ------
    seconds : list of float
        Filled on exit with the seconds spent compiling, when anything was compiled.

    Examples
    --------
    >>> import numba
    >>> from fastgmm.demo import announce_compilation
    >>> messages = []
    >>> with announce_compilation(messages.append, estimate="a moment"):
    ...     numba.njit(lambda x: x + 1)(1)
    2
    >>> print(messages[0])
    compiling the kernels for this machine (first run only, a moment; later runs load them ...)
    >>> messages[1].startswith("compiled in")
    True
    >>> with announce_compilation(messages.append):  # nothing compiled: nothing said
    ...     pass
    >>> len(messages)
    2
    """
    from numba.core import event

    state = {"depth": 0, "start": 0.0, "total": 0.0, "announced": False}

    class _Listener(event.Listener):
        def on_start(self, ev):
            if not state["announced"]:
                state["announced"] = True
                log(
                    f"compiling the kernels for this machine (first run only, {estimate}; "
                    "later runs load them from the cache)"
                )
            if state["depth"] == 0:  # kernels compile the helpers they call: count once
                state["start"] = time.perf_counter()
            state["depth"] += 1

        def on_end(self, ev):
            state["depth"] -= 1
            if state["depth"] == 0:
                state["total"] += time.perf_counter() - state["start"]

    listener = _Listener()
    seconds = []
    event.register("numba:compile", listener)
    try:
        yield seconds
    finally:
        event.unregister("numba:compile", listener)
    if state["announced"]:
        seconds.append(state["total"])
        log(f"compiled in {state['total']:.0f} s; cached for the next runs")


def _print_report(report, stream):
    sel = report["selected"]
    print(
        f"data: {report['n_samples']} points in 2-D, {len(_CLUSTERS)} overlapping clusters and "
        f"{report['n_planted_anomalies']} planted anomalies\n",
        file=stream,
    )
    print("BIC (lower is better):", file=stream)
    types = list(dict.fromkeys(r["covariance_type"] for r in report["bic_table"]))
    table = {(r["n_components"], r["covariance_type"]): r["bic"] for r in report["bic_table"]}
    print("   K " + "".join(f"{t:>12}" for t in types), file=stream)
    for k in sorted({r["n_components"] for r in report["bic_table"]}):
        cells = []
        for t in types:
            value = table.get((k, t))
            mark = "*" if (k, t) == (sel["n_components"], sel["covariance_type"]) else " "
            cells.append(f"{value:11.1f}{mark}" if value == value else f"{'failed':>11} ")
        print(f"{k:>4} " + "".join(cells), file=stream)
    print(
        f"\nselected: K={sel['n_components']}, {sel['covariance_type']} covariances "
        f"(BIC {sel['bic']:.1f})",
        file=stream,
    )
    for i, (w, m, sd) in enumerate(zip(report["weights"], report["means"], report["spread"])):
        note = "  <- background" if i in report["background_components"] else ""
        print(
            f"  component {i}: weight {w:.3f}, mean ({m[0]:5.2f}, {m[1]:5.2f}), "
            f"largest sd {sd:.2f}{note}",
            file=stream,
        )
    if report["background_components"]:
        print(
            "  A light, wide 'background' component absorbs the scattered anomalies: outliers\n"
            "  raise the likelihood of one extra broad component by more than BIC's penalty.\n"
            "  It has a low density everywhere, so the anomalies still score as outliers.",
            file=stream,
        )
    between = report["between_clusters"]
    print(
        f"\nsoft assignments: {between['count']} points lie between clusters (largest "
        f"membership < {between['threshold']}); the least certain:",
        file=stream,
    )
    for example in between["examples"]:
        x = example["x"]
        shares = ", ".join(
            f"{100 * p:.0f}% comp {j}" for j, p in enumerate(example["membership"]) if p >= 0.005
        )
        print(f"  ({x[0]:6.2f}, {x[1]:6.2f}): {shares}", file=stream)
    a = report["anomalies"]
    print(
        f"\nanomalies: {a['flagged']} points flagged (contamination {a['contamination']}), "
        f"{a['true_positives']} of them planted: precision {a['precision']:.2f}, "
        f"recall {a['recall']:.2f}",
        file=stream,
    )


def _spread(gm):
    """Largest standard deviation of each component (the square root of its top eigenvalue)."""
    return np.sqrt([np.linalg.eigvalsh(c)[-1] for c in _full_covariances(gm)])


def _background_components(gm):
    """Components at least 2.5 times wider than every other one and lighter than 10%."""
    spread = _spread(gm)
    found = []
    for j in range(gm.n_components):
        others = np.delete(spread, j)
        if others.size and gm.weights_[j] < 0.1 and spread[j] > 2.5 * others.max():
            found.append(j)
    return found


def _full_covariances(gm):
    k, d = gm.means_.shape
    cov = np.asarray(gm.covariances_, dtype=np.float64)
    if gm.covariance_type == "full":
        return cov
    if gm.covariance_type == "tied":
        return np.repeat(cov[None], k, axis=0)
    if gm.covariance_type == "diag":
        return np.stack([np.diag(c) for c in cov])
    return np.stack([np.eye(d) * c for c in cov])


def _draw(X, planted, flagged, proba, gm, selection, report, path):
    from matplotlib.figure import Figure
    from matplotlib.patches import Ellipse

    from .persistence import atomic_path

    # matplotlib's tab10 colours, mixed by membership so that shared points look blended.
    base = np.array(
        [
            [0.12, 0.47, 0.71],
            [1.0, 0.5, 0.05],
            [0.17, 0.63, 0.17],
            [0.58, 0.4, 0.74],
            [0.55, 0.34, 0.29],
            [0.89, 0.47, 0.76],
        ]
    )
    k = gm.n_components
    colours = np.clip(proba @ base[np.arange(k) % len(base)], 0, 1)

    fig = Figure(figsize=(12.5, 5.4), layout="constrained")
    ax, ax_bic = fig.subplots(1, 2, width_ratios=(1.15, 1))
    ax.scatter(X[:, 0], X[:, 1], c=colours, s=12, linewidths=0)
    background = report["background_components"]
    for j, (mean, cov) in enumerate(zip(gm.means_, _full_covariances(gm))):
        edge = (0.55, 0.55, 0.55) if j in background else base[j % len(base)] * 0.7
        values, vectors = np.linalg.eigh(cov)
        angle = np.degrees(np.arctan2(vectors[1, -1], vectors[0, -1]))
        for n_std, style in ((1, "-"), (2, "--")):
            ax.add_patch(
                Ellipse(
                    mean,
                    2 * n_std * np.sqrt(values[-1]),
                    2 * n_std * np.sqrt(values[0]),
                    angle=angle,
                    fill=False,
                    linestyle=style,
                    linewidth=1.0 if j in background else 1.4,
                    edgecolor=edge,
                    label=f"component {j}: background" if j in background and n_std == 1 else None,
                )
            )
        ax.annotate(
            f"{j}",
            mean,
            ha="center",
            va="center",
            fontsize=9 if j in background else 11,
            fontweight="bold",
            color="white",
            bbox={"boxstyle": "circle,pad=0.2", "fc": edge, "ec": "none"},
        )
    ax.scatter(X[planted, 0], X[planted, 1], marker="x", c="black", s=36, label="planted anomaly")
    ax.scatter(
        X[flagged, 0],
        X[flagged, 1],
        marker="o",
        s=130,
        facecolors="none",
        edgecolors="red",
        linewidths=1.4,
        label="flagged by the detector",
    )
    a = report["anomalies"]
    ax.set_title(
        f"K={k} {gm.covariance_type} mixture: colour = membership, ellipses = 1 and 2 sd\n"
        f"anomalies: precision {a['precision']:.2f}, recall {a['recall']:.2f}",
        fontsize=10,
    )
    ax.set_aspect("equal", adjustable="datalim")
    ax.legend(loc="lower right", fontsize=8)
    ax.set_xlabel("x1")
    ax.set_ylabel("x2")

    selection.plot(ax=ax_bic)
    ax_bic.set_title("model selection: BIC by number of components", fontsize=10)

    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
