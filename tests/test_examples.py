"""Every example runs as a script at a small size, and what it prints is checked.

Each example is a subprocess, as a user runs it (``python examples/NAME.py``), with
``FASTGMM_EXAMPLE_N`` small and ``FASTGMM_EXAMPLE_OUTDIR`` in the test's temporary directory. The
printed numbers are parsed and held to what the example claims: the mixture beats k-means, the
detector finds the planted anomalies, BIC finds the true model, draws match the model's moments.
The PNG must be a real PNG; one more test runs the teaching examples with matplotlib hidden.

The HPC scripts are checked with ``bash -n`` and run outside SLURM with a fake array task id, on
a tiny file, with the same CLI commands they submit; ``submit.sh`` runs against a fake ``sbatch``
that records the job chain.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import re
import shutil
import struct
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
HPC = EXAMPLES / "hpc_batch"
HAS_MATPLOTLIB = importlib.util.find_spec("matplotlib") is not None
FLOAT = r"[-+]?(?:\d+\.?\d*(?:[eE][-+]?\d+)?|nan|inf)"


def _load_common():
    """examples/_common.py, the examples' shared helpers (not a package: load it by path)."""
    spec = importlib.util.spec_from_file_location("_examples_common", EXAMPLES / "_common.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# The size each example runs at, here and in the documentation's gallery.
SMALL_N = _load_common().SMALL_N
# The teaching examples: they draw with matplotlib when it is installed, and run without it.
TEACHING = {
    name: SMALL_N[name]
    for name in (
        "soft_clustering",
        "gmm_vs_kmeans",
        "anomaly_detection",
        "choosing_k",
        "density_and_sampling",
        "bayesian_vs_em",
    )
}
# The examples on real data that ship with scikit-learn (no download).
REAL_DATA = ("digits", "wine", "breast_cancer", "colour_segmentation", "missing_values")


def _env(tmp_path, n_samples=None, **extra):
    env = dict(os.environ)
    env.update({"FASTGMM_EXAMPLE_OUTDIR": str(tmp_path), "MPLBACKEND": "Agg"})
    if n_samples is not None:
        env["FASTGMM_EXAMPLE_N"] = str(n_samples)
    env.pop("FASTGMM_EXAMPLE_SEED", None)
    env.update(extra)
    return env


# Warnings that mean something is wrong in an example (a ConvergenceWarning, a NumPy overflow,
# matplotlib complaining about the figure, a deprecated call) fail it. Deprecation warnings that
# third-party packages raise about each other at import time are not the examples' business.
STRICT_WARNINGS = [
    "-W",
    "error::UserWarning",
    "-W",
    "error::RuntimeWarning",
    "-W",
    "error::FutureWarning",
]


def run_example(name, tmp_path, n_samples, *, strict_warnings=True):
    """Run ``examples/<name>.py``; return its stdout. Warnings are errors for our examples."""
    command = [sys.executable]
    if strict_warnings:
        command += STRICT_WARNINGS
    command.append(str(EXAMPLES / f"{name}.py"))
    result = subprocess.run(
        command,
        cwd=tmp_path,
        env=_env(tmp_path, n_samples),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, f"{name} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def numbers_after(label, text):
    """The numbers on the line that starts with ``label`` (after the label)."""
    for line in text.splitlines():
        if line.startswith(label):
            return [float(v) for v in re.findall(FLOAT, line[len(label) :])]
    raise AssertionError(f"no line starting with {label!r} in:\n{text}")


def check_png(stdout, tmp_path, name):
    """With matplotlib, the example says where its PNG is, and that file is a real picture."""
    path = tmp_path / f"{name}.png"
    if not HAS_MATPLOTLIB:
        assert "plot: skipped" in stdout
        assert not path.exists()
        return
    assert f"plot: {path}" in stdout
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG signature"
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    assert width >= 400 and height >= 300, (width, height)
    from matplotlib.image import imread

    pixels = imread(path)
    assert pixels.shape[:2] == (height, width)
    # Not a blank canvas: many distinct colours (points, ellipses, contours, text).
    assert len(np.unique(pixels.reshape(-1, pixels.shape[2]), axis=0)) > 100


# --------------------------------------------------------------------------- the examples
def test_soft_clustering(tmp_path):
    out = run_example("soft_clustering", tmp_path, TEACHING["soft_clustering"])
    assert numbers_after("fit: converged=True", out) is not None
    assert numbers_after("largest error of a fitted mean coordinate:", out)[0] < 0.4
    assert numbers_after("membership rows sum to 1: max |sum - 1| =", out)[0] < 1e-12

    rows = [
        [float(v) for v in line.split()[1:]]
        for line in out.splitlines()
        if line.startswith("between ")
    ]
    assert 1 <= len(rows) <= 8
    for *_, proba0, proba1, proba2 in rows:
        proba = [proba0, proba1, proba2]
        assert len(rows[0]) == 5
        assert abs(sum(proba) - 1) < 2e-3, proba  # printed to 3 decimals
        assert sorted(proba)[-2] >= 0.25, "a printed point is not split between two clusters"
    # Points split between clusters lie between the cluster centres, not far outside.
    assert all(-1.5 < x1 < 4.5 and -1.5 < x2 < 4.5 for x1, x2, *_ in rows)

    # The n-sigma ellipse holds 1 - exp(-n^2/2) of its component in 2-D (39% and 86%).
    for n_std, tolerance in ((1, 0.12), (2, 0.08)):
        values = numbers_after(f"ellipse {n_std}-sigma:", out)
        shares, expected = values[:3], values[3]
        assert expected == pytest.approx(1 - math.exp(-(n_std**2) / 2), abs=1e-3)
        for share in shares:
            assert abs(share - expected) < tolerance, (n_std, shares)
    check_png(out, tmp_path, "soft_clustering")


def test_gmm_vs_kmeans(tmp_path):
    out = run_example("gmm_vs_kmeans", tmp_path, TEACHING["gmm_vs_kmeans"])
    ari = {
        name: numbers_after(f"ARI {name} ", out)[0]
        for name in ("k-means", "GMM spherical", "GMM full")
    }
    assert all(-1 <= value <= 1 for value in ari.values())
    assert ari["GMM full"] > 0.85
    assert ari["GMM full"] > ari["k-means"] + 0.1, ari
    # A spherical mixture has k-means' blind spot: the full covariances make the difference.
    assert ari["GMM full"] > ari["GMM spherical"] + 0.1, ari
    assert "winner: GMM full" in out
    for row in ("assignment", "cluster shape", "model ", "new points", "choosing K"):
        assert any(line.startswith(row) and "|" in line for line in out.splitlines()), row
    assert numbers_after("free parameters: k-means", out) == [6, 17]
    check_png(out, tmp_path, "gmm_vs_kmeans")


def test_bayesian_vs_em(tmp_path):
    out = run_example("bayesian_vs_em", tmp_path, TEACHING["bayesian_vs_em"])
    em, bayes = numbers_after("weights EM", out), numbers_after("weights Bayesian", out)
    assert len(em) == len(bayes) == 10
    for weights in (em, bayes):
        assert weights == sorted(weights, reverse=True)
        assert sum(weights) == pytest.approx(1.0, abs=6e-3)  # ten values printed to 3 decimals
    # EM spreads the data over every component; the prior switches the six surplus ones off.
    n_em, n_bayes, n_true = numbers_after("components above 1%: EM", out)
    assert n_em == 10 and n_bayes == n_true == 4
    assert max(bayes[4:]) < 0.005
    assert "converged=True" in out
    # Each true cluster is one component with the cluster's share of the points.
    clusters = [line for line in out.splitlines() if line.startswith("cluster ")]
    assert len(clusters) == 4
    components = set()
    for line in clusters:
        found, weight, share, purity = numbers_after(line.split(": component")[0], line)[-4:]
        components.add(found)
        assert abs(weight - share) < 0.05 and purity > 95, line
    assert len(components) == 4
    check_png(out, tmp_path, "bayesian_vs_em")


def test_anomaly_detection(tmp_path):
    n = TEACHING["anomaly_detection"]
    out = run_example("anomaly_detection", tmp_path, n)
    table = {}
    pattern = re.compile(
        rf"^\s+(0\.02|auto)\s+({FLOAT})\s+(train|fresh)\s+(\d+)\s+({FLOAT})\s+({FLOAT})$"
    )
    for line in out.splitlines():
        match = pattern.match(line)
        if match:
            name, threshold, where, flagged, precision, recall = match.groups()
            table[name, where] = (float(threshold), int(flagged), float(precision), float(recall))
    assert set(table) == {(c, w) for c in ("0.02", "auto") for w in ("train", "fresh")}, out
    planted = round(0.02 * n)
    assert numbers_after("anomaly_detection:", out)[:2] == [n, planted]

    threshold, flagged, precision, recall = table["0.02", "train"]
    # contamination=c flags the training rows below the ceil(c (n - 1))-th smallest score.
    assert flagged == math.ceil(0.02 * (n - 1))
    assert precision >= 0.75 and recall >= 0.75, table
    _, _, precision, recall = table["0.02", "fresh"]
    assert precision >= 0.6 and recall >= 0.75, table
    assert table["auto", "train"][3] >= 0.8 and table["auto", "fresh"][3] >= 0.8, table
    for name in ("0.02", "auto"):  # one threshold per fitted detector
        assert table[name, "train"][0] == table[name, "fresh"][0]

    start = out.index("the five least likely training points:")
    worst = [line.split() for line in out[start:].splitlines()[2:7]]
    scores = [float(w[2]) for w in worst]
    assert scores == sorted(scores)
    assert all(score < threshold for score in scores)
    assert sum(w[-1] == "yes" for w in worst) >= 4
    assert all(float(w[4]) > 3 for w in worst)  # Mahalanobis distance to the nearest component
    check_png(out, tmp_path, "anomaly_detection")


COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")


def _n_parameters(covariance_type, k, d=2):
    """Free parameters, written out independently of fastgmm."""
    covariance = {
        "full": k * d * (d + 1) / 2,
        "tied": d * (d + 1) / 2,
        "diag": k * d,
        "spherical": k,
    }[covariance_type]
    return int(k - 1 + k * d + covariance)


def _criterion_table(out, title):
    lines = out.splitlines()
    start = lines.index(f"{title}:") + 2
    table = {}
    for line in lines[start:]:
        if not line.strip():
            break
        k, *cells = line.replace("*", " ").split()
        for ctype, cell in zip(COVARIANCE_TYPES, cells):
            table[int(k), ctype] = float(cell)
    return table


def test_choosing_k(tmp_path):
    n = TEACHING["choosing_k"]
    out = run_example("choosing_k", tmp_path, n)
    loglik, bic, aic = (_criterion_table(out, t) for t in ("log-likelihood", "BIC", "AIC"))
    assert set(bic) == {(k, t) for k in range(1, 9) for t in COVARIANCE_TYPES}
    for key in bic:
        p = _n_parameters(key[1], key[0])
        # The definitions, and the one difference between the two criteria.
        assert bic[key] == pytest.approx(-2 * loglik[key] + p * math.log(n), abs=0.05)
        assert aic[key] == pytest.approx(-2 * loglik[key] + 2 * p, abs=0.05)
        assert bic[key] - aic[key] == pytest.approx(p * (math.log(n) - 2), abs=0.05)

    chosen = {}
    for name in ("BIC", "AIC"):
        match = re.search(rf"chosen by {name}: K=(\d+) (\w+) \((\d+) parameters\)", out)
        chosen[name] = (int(match.group(1)), match.group(2))
        assert int(match.group(3)) == _n_parameters(chosen[name][1], chosen[name][0])
    assert chosen["BIC"] == min(bic, key=bic.get)
    assert chosen["AIC"] == min(aic, key=aic.get)
    assert chosen["BIC"] == (4, "full"), "BIC should recover the generating model"
    # AIC's smaller price per parameter never buys a model with fewer parameters than BIC's.
    assert _n_parameters(chosen["AIC"][1], chosen["AIC"][0]) >= _n_parameters(
        chosen["BIC"][1], chosen["BIC"][0]
    )
    check_png(out, tmp_path, "choosing_k")


def test_density_and_sampling(tmp_path):
    out = run_example("density_and_sampling", tmp_path, TEACHING["density_and_sampling"])
    moments = {}
    for line in out.splitlines():
        if line.startswith("moment ") and not line.startswith("moment  "):
            name = line[len("moment ") : len("moment ") + 10].strip()
            moments[name] = [float(v) for v in line[len("moment ") + 10 :].split()]
    assert len(moments) == 7, out
    for name, (data, model, _draws, z) in moments.items():
        assert abs(z) < 4.5, (name, z)  # the draws follow the model
        if not name.startswith("third"):
            # EM reproduces the data's mean and covariance exactly (reg_covar aside).
            assert data == pytest.approx(model, abs=2e-4), name
    assert numbers_after("model vs data, mean and covariance: largest gap", out)[0] < 1e-8
    assert numbers_after("largest |z| of the draws against the model:", out)[0] < 4.5
    assert numbers_after("share of draws per component vs weights_: largest gap", out)[0] < 0.06
    skew = numbers_after("skewness of x2:", out)
    data_skew, mixture_skew, gaussian_skew = skew
    assert gaussian_skew == 0
    assert data_skew > 1.5  # the crescent is skewed ...
    assert abs(mixture_skew - data_skew) < 0.35 * data_skew  # ... and the mixture follows it
    data_ll = numbers_after("mean log-density of the data:", out)[0]
    match = re.search(rf"drew (\d+) new points; mean log-density of the draws: ({FLOAT})", out)
    assert int(match.group(1)) >= 10 * TEACHING["density_and_sampling"]
    draws_ll = float(match.group(2))
    assert abs(data_ll - draws_ll) < 0.2
    check_png(out, tmp_path, "density_and_sampling")


def test_every_example_is_tested_and_has_a_small_size():
    """A new example joins SMALL_N (the size CI and the gallery run it at) and this module."""
    scripts = {p.stem for p in EXAMPLES.glob("*.py") if not p.name.startswith("_")}
    assert scripts == set(SMALL_N)
    source = Path(__file__).read_text()
    for name in scripts:
        assert f"def test_{name}(" in source, f"examples/{name}.py has no test here"


def test_teaching_examples_run_without_matplotlib(tmp_path):
    """matplotlib is optional: hidden, every example prints its numbers and skips the PNG."""
    sizes = {**dict.fromkeys(TEACHING, 300), "quickstart": 300}
    sizes.update((name, SMALL_N[name]) for name in REAL_DATA)
    names = list(sizes)
    script = textwrap.dedent(
        f"""
        import os, runpy, sys
        sys.modules["matplotlib"] = None  # any import of matplotlib now raises ImportError
        sys.path.insert(0, {str(EXAMPLES)!r})
        for name, size in {sizes!r}.items():
            print("=== " + name, flush=True)
            os.environ["FASTGMM_EXAMPLE_N"] = str(size)
            runpy.run_path({str(EXAMPLES)!r} + "/" + name + ".py", run_name="__main__")
        """
    )
    result = subprocess.run(
        [sys.executable, *STRICT_WARNINGS, "-c", script],
        cwd=tmp_path,
        env=_env(tmp_path, 300),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    sections = result.stdout.split("=== ")[1:]
    assert [s.splitlines()[0] for s in sections] == names
    for section in sections:
        assert "plot: skipped (matplotlib is not installed" in section
    assert not list(tmp_path.glob("*.png"))
    assert "ARI GMM full" in result.stdout and "chosen by BIC" in result.stdout


def test_out_of_core(tmp_path):
    out = run_example("out_of_core", tmp_path, SMALL_N["out_of_core"], strict_warnings=False)
    gap = numbers_after("streamed fit:", out)[-1]
    assert gap < 1e-10, "the streamed fit must equal the in-memory fit"
    match = re.search(
        r"labels written to labels\.npy: shape \((\d+),\), cluster sizes \[(.*)\]", out
    )
    sizes = [int(v) for v in match.group(2).split(",")]
    assert sum(sizes) == int(match.group(1)) and len(sizes) == 4
    online, batch = numbers_after("online EM after", out)[1:3]
    assert online <= batch + 1e-9 and batch - online < 0.05
    check_png(out, tmp_path, "out_of_core")


def test_dask_cluster(tmp_path):
    out = run_example("dask_cluster", tmp_path, SMALL_N["dask_cluster"], strict_warnings=False)
    assert numbers_after("cluster:", out)[0] == 2
    for name in ("weights_", "means_", "covariances_"):
        assert numbers_after(f"max relative difference of {name}", out)[0] < 1e-10, name
    assert numbers_after("labels that agree:", out)[0] == 100.0
    dask_lb = numbers_after("Dask fit:", out)[-1]
    memory_lb = numbers_after("in-memory fit:", out)[-1]
    assert dask_lb == pytest.approx(memory_lb, abs=1e-9)
    check_png(out, tmp_path, "dask_cluster")


def test_quickstart(tmp_path):
    out = run_example("quickstart", tmp_path, SMALL_N["quickstart"])
    assert "converged: True" in out
    weights = [numbers_after(f"component {k}:", out)[0] for k in range(3)]
    assert sum(weights) == pytest.approx(1, abs=2e-3) and min(weights) > 0.25
    start = out.index("points lie between clusters")
    rows = [line.split() for line in out[start:].splitlines()[2:7]]
    assert rows, out
    for row in rows:
        proba = [float(v) for v in row[2:]]
        assert max(proba) < 0.7 and sum(proba) == pytest.approx(1, abs=0.02)
    check_png(out, tmp_path, "quickstart")


# ------------------------------------------------------------------- examples on real data
def _table_after(title, text):
    """Rows of numbers under the line ``title``, up to the first line that is not numbers."""
    lines = text.splitlines()
    rows = []
    for line in lines[lines.index(title) + 1 :]:
        try:
            rows.append([float(v) for v in line.split()])
        except ValueError:
            break
    return rows


def test_digits(tmp_path):
    out = run_example("digits", tmp_path, SMALL_N["digits"])
    bic = {int(k): value for k, value in _table_after("K    BIC", out)}
    chosen = int(re.search(r"BIC chose K=(\d+) full components", out).group(1))
    assert chosen == min(bic, key=bic.get)
    assert chosen > 10, "the styles of some digits need components of their own"
    assert numbers_after("adjusted Rand index, components vs digits:", out)[0] > 0.6
    accuracy = numbers_after("labelling each component by its commonest digit:", out)[0]
    assert accuracy > 85
    split = re.search(r"more than one component\): \[(.*)\]", out).group(1)
    assert split.strip(), "with more components than digits, some digit has several"
    misread, overall = numbers_after("misread among the least likely:", out)
    assert misread > overall, "the least likely images are the badly written ones"
    check_png(out, tmp_path, "digits")


def test_wine(tmp_path):
    out = run_example("wine", tmp_path, SMALL_N["wine"])
    types = ("full", "tied", "diag", "spherical")
    rows = _table_after("K         full       tied       diag  spherical", out)
    bic = {(int(row[0]), t): value for row in rows for t, value in zip(types, row[1:])}
    assert len(bic) == 24
    match = re.search(r"BIC chose K=(\d+) (\w+)", out)
    chosen = (int(match.group(1)), match.group(2))
    assert chosen == min(bic, key=bic.get)
    assert chosen[1] != "full", "178 rows cannot pay for 91 parameters per component"
    assert numbers_after("chosen model against the cultivars (ARI", out)[0] > 0.5
    assert re.search(r"best three-component model, \w+ \(ARI ([\d.]+)\)", out)
    ari3 = float(re.search(r"best three-component model, \w+ \(ARI ([\d.]+)\)", out).group(1))
    assert ari3 > 0.8, "three components recover the three cultivars"
    odd = [line for line in out.splitlines() if line.startswith("wine ") and "log p(x)" in line]
    assert len(odd) == 5
    for line in odd:
        z = [abs(float(v)) for v in re.findall(r"([-+]\d+\.\d)(?:,|$)", line)]
        assert z and max(z) >= 2, line  # an unusual wine is unusual in something
    check_png(out, tmp_path, "wine")


def test_breast_cancer(tmp_path):
    out = run_example("breast_cancer", tmp_path, SMALL_N["breast_cancer"])
    assert numbers_after("ARI against the diagnosis:", out)[0] > 0.5
    assert (
        numbers_after("tumours in a component where their diagnosis is the majority:", out)[0] > 85
    )
    assert numbers_after("ROC AUC of -log p(x) for malignant:", out)[0] > 0.85
    match = re.search(
        r"threshold flagging (\d+)% .*: malignant flagged ([\d.]+)%, held-out benign flagged "
        r"([\d.]+)%",
        out,
    )
    contamination, caught, false_alarms = (float(v) for v in match.groups())
    assert contamination == 5
    assert caught > 50 and false_alarms < 15
    check_png(out, tmp_path, "breast_cancer")


def test_missing_values(tmp_path):
    out = run_example("missing_values", tmp_path, SMALL_N["missing_values"])
    # "breast cancer: 569 rows x 30 measurements; removed 28.4% of the entries, ..."
    assert 25 < numbers_after("breast cancer:", out)[2] < 35
    rmse, rmse_means = numbers_after("RMSE: mixture", out)[:2]
    assert rmse < 0.6 * rmse_means, "correlated measurements predict the missing ones"
    assert 85 < numbers_after("removed entries within 2 predicted standard deviations:", out)[0]
    ari, ari_means = numbers_after("clusterings (ARI): marginalize", out)[:2]
    assert ari > ari_means
    distance, distance_means = numbers_after("component means (distance): marginalize", out)[:2]
    assert distance < distance_means
    check_png(out, tmp_path, "missing_values")


def test_colour_segmentation(tmp_path):
    out = run_example("colour_segmentation", tmp_path, SMALL_N["colour_segmentation"])
    rows = _table_after("K   BIC", out)
    ks, bics = [int(r[0]) for r in rows], [r[1] for r in rows]
    assert ks == list(range(2, 13))
    # The rule the example states: the smallest K with 90% of the BIC gain from K=2.
    target = bics[0] - 0.9 * (bics[0] - min(bics))
    expected = next(k for k, b in zip(ks, bics) if b <= target)
    best, chosen = (int(v) for v in re.search(r"lowest BIC: K=(\d+); .*: K=(\d+)", out).groups())
    assert best == ks[bics.index(min(bics))]
    assert chosen == expected and 3 <= expected <= 12
    shares = [
        float(line.split()[1].rstrip("%"))
        for line in out.splitlines()
        if re.match(r"^\s+\d+\s+[\d.]+%", line)
    ]
    assert len(shares) == expected and sum(shares) == pytest.approx(100, abs=0.1 * expected)
    sample_ll, all_ll = numbers_after("mean log-density of the sample:", out)
    assert abs(sample_ll - all_ll) < 0.2, "a sample of pixels stands for the whole image"
    red, _green, blue = numbers_after("the rarest 1% of pixels: mean colour", out)[-3:]
    assert red - blue > 40, "the rarest colours are the temple's reds and oranges"
    check_png(out, tmp_path, "colour_segmentation")


# ----------------------------------------------------------------------- the HPC scripts
BATCH_SCRIPTS = sorted(p.name for p in HPC.iterdir() if p.suffix in (".sbatch", ".sh"))


@pytest.mark.parametrize("script", BATCH_SCRIPTS)
def test_batch_script_syntax(script):
    result = subprocess.run(["bash", "-n", str(HPC / script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    text = (HPC / script).read_text()
    assert text.startswith("#!/bin/bash\n")
    assert "set -euo pipefail" in text


def _fastgmm_command():
    beside = Path(sys.executable).with_name("fastgmm")
    found = str(beside) if beside.exists() else shutil.which("fastgmm")
    assert found, "the fastgmm console script is not installed"
    return found


@pytest.fixture(scope="module")
def batch_data(tmp_path_factory):
    """A tiny train/held-out pair from hpc_batch/make_data.py (4 Gaussians, 5 features)."""
    directory = tmp_path_factory.mktemp("batch_data")
    subprocess.run(
        [sys.executable, str(HPC / "make_data.py"), "800", str(directory)], check=True, timeout=120
    )
    return directory


def _batch_env(tmp_path, data, **extra):
    env = _env(tmp_path)
    env.update(
        FASTGMM=_fastgmm_command(),
        PYTHON=sys.executable,
        FASTGMM_DATA=str(data / "train.npy"),
        FASTGMM_HELDOUT=str(data / "heldout.npy"),
        SLURM_CPUS_PER_TASK="1",
        # Keep this environment's kernel cache (the scripts' shared default would compile anew).
        NUMBA_CACHE_DIR=os.environ.get("NUMBA_CACHE_DIR", ""),
    )
    env.update(extra)
    return env


def _report(path):
    report = json.loads(path.read_text())
    assert report["status"] == "ok" and report["exit_code"] == 0, report
    assert report["threads"] == 1 and report["threads_source"] == "--threads"
    return report


def test_job_script_runs_its_cli_commands(tmp_path, batch_data):
    out = tmp_path / "job"
    env = _batch_env(
        tmp_path, batch_data, FASTGMM_OUT=str(out), FASTGMM_KS="2:5", SLURM_JOB_ID="4242"
    )
    result = subprocess.run(
        ["bash", str(HPC / "fastgmm_job.sbatch")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    reports = {
        name: _report(out / f"{name}.json")
        for name in ("warmup", "select", "fit", "score", "predict")
    }
    assert reports["warmup"]["kernels"]["loaded"] + reports["warmup"]["kernels"]["compiled"] > 0

    select = reports["select"]
    tried = {(r["n_components"], r["covariance_type"]) for r in select["results"]}
    assert tried == {(k, t) for k in range(2, 6) for t in ("full", "diag")}
    best = min(select["results"], key=lambda r: r["bic"])
    assert (select["model"]["n_components"], select["model"]["covariance_type"]) == (
        best["n_components"],
        best["covariance_type"],
    )
    assert best["n_components"] == 4, "make_data.py draws from 4 components"
    assert f"BIC chose K={best['n_components']}, {best['covariance_type']}" in result.stdout

    fit = reports["fit"]["model"]
    assert (fit["n_components"], fit["covariance_type"]) == (
        best["n_components"],
        best["covariance_type"],
    )
    assert fit["converged"]
    scores = np.load(out / "heldout_scores.npy")
    assert scores.shape == (200,) and np.all(np.isfinite(scores))
    labels = np.load(out / "labels.npy")
    assert labels.shape == (800,) and set(np.unique(labels)) <= set(range(fit["n_components"]))


def test_array_script_and_collect(tmp_path, batch_data):
    out = tmp_path / "array"
    env = _batch_env(tmp_path, batch_data, FASTGMM_OUT=str(out), FASTGMM_KS="3 4")
    for task in ("1", "2"):
        result = subprocess.run(
            ["bash", str(HPC / "fastgmm_array.sbatch")],
            cwd=tmp_path,
            env={**env, "SLURM_ARRAY_TASK_ID": task, "SLURM_ARRAY_JOB_ID": "77"},
            capture_output=True,
            text=True,
            timeout=900,
        )
        assert result.returncode == 0, result.stdout + result.stderr
    for k in (3, 4):
        fit = _report(out / f"fit_k{k}.json")
        assert fit["model"]["n_components"] == k
        _report(out / f"score_k{k}.json")

    # A task id beyond the list of component counts is refused by name.
    result = subprocess.run(
        ["bash", str(HPC / "fastgmm_array.sbatch")],
        env={**env, "SLURM_ARRAY_TASK_ID": "3"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and "array task 3 has no component count" in result.stderr

    result = subprocess.run(
        [sys.executable, str(HPC / "collect.py"), str(out)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert [r["k"] for r in summary["results"]] == [3, 4]
    bics = {
        r["k"]: json.loads((out / f"fit_k{r['k']}.json").read_text())["model"]["bic"]
        for r in summary["results"]
    }
    assert summary["best_bic"]["k"] == min(bics, key=bics.get) == 4
    for r in summary["results"]:
        held_out = np.load(out / f"heldout_k{r['k']}.npy")
        assert r["heldout_mean_log_likelihood"] == pytest.approx(held_out.mean())
    assert "lowest BIC: K=4" in result.stdout


def test_submit_script_chains_warmup_array_and_collect(tmp_path):
    """submit.sh against a fake sbatch that records its arguments and answers 'id;cluster'."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "sbatch.log"
    fake = bin_dir / "sbatch"
    fake.write_text(
        "#!/bin/bash\n"
        f'n=$(($(wc -l < "{log}" 2>/dev/null || echo 0) + 1))\n'
        f'echo "$*" >> "{log}"\n'
        'echo "$((1000 + n));clusterA"\n'
    )
    fake.chmod(0o755)
    out = tmp_path / "run"
    env = _env(tmp_path, FASTGMM_OUT=str(out), FASTGMM_KS="2 4 8")
    env["PATH"] = f"{bin_dir}{os.pathsep}{env['PATH']}"
    result = subprocess.run(
        ["bash", str(HPC / "submit.sh")], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    calls = log.read_text().splitlines()
    assert len(calls) == 3
    warmup, array, collect = calls
    assert "warmup --json" in warmup
    assert "--dependency=afterok:1001 " in array and "--array=1-3 " in array
    assert array.endswith("fastgmm_array.sbatch")
    assert "--dependency=afterok:1002 " in collect and "collect.py" in collect
    assert str(out) in collect
    assert "warmup 1001 -> array 1002 (K = 2 4 8) -> collect 1003" in result.stdout
    assert out.is_dir()


def test_mclust_models(tmp_path):
    out = run_example("mclust_models", tmp_path, SMALL_N["mclust_models"])
    models = out.split("BIC (lower is better")[1].splitlines()[1].split()[1:]
    assert len(models) == 14 and models[0] == "EII" and models[-1] == "VVV"
    rows = out.split("BIC (lower is better")[1].splitlines()[2:8]
    table = np.array([[float(v) if v != "NA" else np.nan for v in r.split()[1:]] for r in rows])
    assert table.shape == (6, 14)
    # At K = 1 the volume and shape letters do not matter: the spherical models agree, as do
    # the diagonal ones and the ellipsoidal ones (to the table's rounding).
    np.testing.assert_allclose(table[0, :2], table[0, 0], atol=0.1)
    np.testing.assert_allclose(table[0, 2:6], table[0, 2], atol=0.1)
    np.testing.assert_allclose(table[0, 6:], table[0, 6], atol=0.1)
    match = re.search(r"chosen by BIC: K=(\d+) (\w+)", out)
    k, model = int(match.group(1)), match.group(2)
    assert k == 3  # the three clusters
    assert table[k - 1, models.index(model)] == np.nanmin(table)
    assert model[2] == "V"  # the clusters point in different directions
    check_png(out, tmp_path, "mclust_models")
