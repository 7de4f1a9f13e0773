#!/usr/bin/env python
"""Seconds per EM iteration of fastgmm, scikit-learn and oneDAL on the reference configurations.

Every implementation fits the same data (drawn with a seeded RNG from a known mixture, see
``benchmarks.make_mixture``) from the same initial weights, means and covariances (the truth,
perturbed), with no convergence test (``tol=0`` / ``accuracyThreshold=0``), in one run.

Timing (``--method diff``, the default): for each repeat, fit with 1 and with ``1 + iters``
iterations and divide the difference in wall time by the difference in iterations *performed*
(oneDAL's ``em_gmm`` may stop one iteration early even with ``accuracyThreshold=0``, so its own
``nIterations`` is used). Everything a fit does besides iterating cancels: input validation,
scikit-learn's initialisation (it estimates parameters from responsibilities even when all three
initial parameters are given), conversions. ``--method fit`` instead divides the time of one fit
of ``iters`` iterations by the iterations performed, overheads included. The median over
``--repeat`` repeats is reported.

GFLOP/s use 2·N·K·D² flops per iteration for full/tied and 4·N·K·D for diag/spherical
(``benchmarks.flops_per_iteration``), and "% peak" divides them by the matrix-multiply rate
measured in the same run (numpy matmul of two 4096² matrices, best of three, float64 for
float64 fits and float32 for float32 fits).

oneDAL runs in a subprocess (``--onedal-python``, default this interpreter): importing daal4py
loads TBB, which would make Numba pick its TBB threading layer instead of OpenMP if it were
loaded before fastgmm's first parallel call, and TBB and OpenMP worker threads would compete in
one process. The subprocess also lets oneDAL live in another virtualenv.

Examples::

    python asv_bench/compare.py --config c --repeat 3 --iters 5
    python asv_bench/compare.py --config a,b --n-samples 200000 --json out.json
    python asv_bench/compare.py --config c --dtype float32 --peers sklearn
    python asv_bench/compare.py --config c,e --dtype float32 --peers onedal

With ``--dtype float32`` fastgmm is also timed on the same numbers in float64 (the last column),
and the run checks that both fits reach the same lower bound and labels.
    python asv_bench/compare.py --predict --config c
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from benchmarks import REG_COVAR, fixed_work_params, flops_per_iteration, make_mixture  # noqa: E402

# The reference configurations of the performance issue: (n_samples, n_features, n_components,
# covariance_type), with a default number of timed iterations (the tiny one needs more to rise
# above timer noise).
CONFIGS = {
    "a": (100_000, 2, 3, "full"),
    "b": (1_000_000, 8, 16, "full"),
    "c": (1_000_000, 32, 32, "full"),
    "d": (1_000_000, 64, 64, "diag"),
    "e": (200_000, 128, 16, "full"),
}
DEFAULT_ITERS = {"a": 50, "b": 5, "c": 5, "d": 5, "e": 5}
ONEDAL_STORAGE = {"full": "full", "diag": "diagonal"}
PEERS = ("sklearn", "onedal")
OPENBLAS_TUNING_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


# --------------------------------------------------------------------------- machine description
def _cpu_model():
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _physical_cores():
    """Distinct (physical id, core id) pairs in /proc/cpuinfo, or None where it is not there."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return None
    cores, phys = set(), "0"
    for line in text.splitlines():
        if line.startswith("physical id"):
            phys = line.split(":", 1)[1].strip()
        elif line.startswith("core id"):
            cores.add((phys, line.split(":", 1)[1].strip()))
    return len(cores) or None


def machine_description(onedal_version):
    import numba
    import scipy
    import sklearn
    from threadpoolctl import threadpool_info

    import fastgmm

    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        affinity = None
    try:
        layer = numba.threading_layer()
    except ValueError:
        layer = "not chosen yet"
    pools = [
        {
            key: (Path(info[key]).name if key == "filepath" else info[key])
            for key in (
                "user_api",
                "internal_api",
                "version",
                "num_threads",
                "architecture",
                "threading_layer",
                "filepath",
            )
            if key in info
        }
        for info in threadpool_info()
    ]
    return {
        "cpu": _cpu_model(),
        "logical_cpus": os.cpu_count(),
        "physical_cores": _physical_cores(),
        "cpus_in_affinity": affinity,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "numba": numba.__version__,
        "scikit-learn": sklearn.__version__,
        "fastgmm": fastgmm.__version__,
        "daal4py": onedal_version,
        "numba_threads": numba.get_num_threads(),
        "numba_threading_layer": layer,
        "thread_pools": pools,
        "environment": {
            name: os.environ[name]
            for name in (
                *OPENBLAS_TUNING_VARS,
                "OPENBLAS_NUM_THREADS",
                "OMP_NUM_THREADS",
                "NUMBA_NUM_THREADS",
                "NUMBA_THREADING_LAYER",
                "MKL_NUM_THREADS",
            )
            if name in os.environ
        },
    }


def print_machine(machine):
    print("## Machine")
    print(
        f"- CPU: {machine['cpu']}; {machine['logical_cpus']} logical CPUs, "
        f"{machine['physical_cores']} physical cores, {machine['cpus_in_affinity']} usable"
    )
    print(
        f"- Python {machine['python']}, numpy {machine['numpy']}, scipy {machine['scipy']}, "
        f"numba {machine['numba']}, scikit-learn {machine['scikit-learn']}, "
        f"fastgmm {machine['fastgmm']}, daal4py {machine['daal4py'] or 'not available'}"
    )
    print(
        f"- Numba: {machine['numba_threads']} threads, threading layer "
        f"{machine['numba_threading_layer']}"
    )
    for pool in machine["thread_pools"]:
        details = ", ".join(f"{k}={v}" for k, v in pool.items())
        print(f"- thread pool: {details}")
    if machine["environment"]:
        print(f"- environment: {machine['environment']}")
    print()


# ---------------------------------------------------------------------------- GEMM peak
def gemm_peak(dtype, size=4096, repeat=3):
    """Best GFLOP/s of ``a @ b`` for two ``size``² matrices of ``dtype`` (numpy's BLAS)."""
    rng = np.random.default_rng(0)
    a = rng.random((size, size)).astype(dtype)
    b = rng.random((size, size)).astype(dtype)
    a @ b  # warm-up: thread pool start, page faults of the output
    best = min(_timed(lambda: a @ b) for _ in range(repeat))
    return 2.0 * size**3 / best / 1e9


def _timed(func):
    start = time.perf_counter()
    func()
    return time.perf_counter() - start


# ---------------------------------------------------------------------------- peers
def _fit_fastgmm(mixture, max_iter):
    from fastgmm import GaussianMixture

    model = GaussianMixture(**fixed_work_params(mixture, max_iter=max_iter))
    seconds = _timed(lambda: model.fit(mixture.X))
    return seconds, model.n_iter_, model


def _fit_sklearn(mixture, max_iter):
    from sklearn.mixture import GaussianMixture

    # random_from_data is sklearn's cheapest init_params: with all three initial parameters given
    # it still estimates parameters from (one-hot) responsibilities, but runs no k-means.
    model = GaussianMixture(
        **fixed_work_params(mixture, max_iter=max_iter),
        init_params="random_from_data",
        random_state=0,
    )
    seconds = _timed(lambda: model.fit(mixture.X))
    return seconds, model.n_iter_, model


def _iteration_counts(method, iters):
    return (1, 1 + iters) if method == "diff" else (iters,)


def _per_iteration(method, runs):
    """Seconds per iteration of one repeat from its ``[(seconds, n_iter), ...]`` fits."""
    if method == "diff":
        (t1, n1), (t2, n2) = runs
        if n2 > n1:
            return (t2 - t1) / (n2 - n1)
        # Both fits stopped after the same iteration (oneDAL's early stop): no difference to
        # take, so fall back to the longer fit's average.
        return t2 / n2
    ((seconds, n_iter),) = runs
    return seconds / n_iter


def time_in_process(fit, mixture, method, iters, repeat):
    """Median seconds per iteration, and the model of the last, longest fit."""
    counts = _iteration_counts(method, iters)
    fit(mixture, 1)  # warm-up: JIT cache load, thread pools, page faults
    per_iteration, model = [], None
    for _ in range(repeat):
        runs = []
        for max_iter in counts:
            seconds, n_iter, model = fit(mixture, max_iter)
            runs.append((seconds, n_iter))
        per_iteration.append(_per_iteration(method, runs))
    return {
        "seconds_per_iteration": statistics.median(per_iteration),
        "all_seconds_per_iteration": per_iteration,
        "n_iter": model.n_iter_,
    }, model


def onedal_worker(spec_path):
    """Subprocess entry: time daal4py's em_gmm as described by the JSON spec; print JSON."""
    spec = json.loads(Path(spec_path).read_text())
    import daal4py

    if spec.get("probe"):
        # daal4py has no __version__; it ships in the scikit-learn-intelex distribution.
        from importlib.metadata import PackageNotFoundError, version

        try:
            found = f"scikit-learn-intelex {version('scikit-learn-intelex')}"
        except PackageNotFoundError:
            found = getattr(daal4py, "__version__", "unknown")
        print(json.dumps({"version": found}))
        return
    X = np.load(spec["data"])
    init = np.load(spec["init"])
    fptype = "float" if X.dtype == np.float32 else "double"
    weights = init["weights"].astype(X.dtype)[None, :]
    means = init["means"].astype(X.dtype)
    if spec["storage"] == "full":
        covariances = [np.ascontiguousarray(c, dtype=X.dtype) for c in init["covariances"]]
    else:  # diagonal storage: one 1 x D table per component
        covariances = [np.ascontiguousarray(c[None, :], dtype=X.dtype) for c in init["covariances"]]

    def run(max_iter):
        algorithm = daal4py.em_gmm(
            nComponents=spec["n_components"],
            fptype=fptype,
            maxIterations=max_iter,
            accuracyThreshold=0.0,
            regularizationFactor=spec["reg_covar"],
            covarianceStorage=spec["storage"],
        )
        start = time.perf_counter()
        result = algorithm.compute(X, weights, means, covariances)
        seconds = time.perf_counter() - start
        n_iter = int(np.ravel(result.nIterations)[0])
        return seconds, n_iter, float(np.ravel(result.goalFunction)[0])

    run(1)  # warm-up
    repeats = []
    for _ in range(spec["repeat"]):
        repeats.append([run(m) for m in spec["counts"]])
    print(json.dumps({"repeats": repeats}))


def _run_worker(python, spec, workdir):
    spec_path = Path(workdir) / "spec.json"
    spec_path.write_text(json.dumps(spec))
    result = subprocess.run(
        [python, str(Path(__file__).resolve()), "--onedal-worker", str(spec_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        message = (result.stderr.strip().splitlines() or ["no output"])[-1]
        return None, message
    return json.loads(result.stdout.strip().splitlines()[-1]), None


def probe_onedal(python):
    with tempfile.TemporaryDirectory(prefix="fastgmm-compare-") as workdir:
        out, error = _run_worker(python, {"probe": True}, workdir)
    return (out["version"], None) if out else (None, error)


def time_onedal(python, mixture, method, iters, repeat, workdir):
    ctype = mixture.covariance_type
    if ctype not in ONEDAL_STORAGE:
        return None, f"em_gmm has no {ctype!r} covariance storage"
    data_path = Path(workdir) / "X.npy"
    init_path = Path(workdir) / "init.npz"
    np.save(data_path, mixture.X)
    np.savez(
        init_path,
        weights=mixture.weights_init,
        means=mixture.means_init,
        covariances=mixture.covariances_init,
    )
    counts = _iteration_counts(method, iters)
    spec = {
        "data": str(data_path),
        "init": str(init_path),
        "n_components": mixture.n_components,
        "storage": ONEDAL_STORAGE[ctype],
        "reg_covar": REG_COVAR,
        "counts": list(counts),
        "repeat": repeat,
    }
    out, error = _run_worker(python, spec, workdir)
    data_path.unlink(missing_ok=True)
    if out is None:
        return None, error
    per_iteration = [
        _per_iteration(method, [(seconds, n_iter) for seconds, n_iter, _ in runs])
        for runs in out["repeats"]
    ]
    _, last_n_iter, last_goal = out["repeats"][-1][-1]
    return {
        "seconds_per_iteration": statistics.median(per_iteration),
        "all_seconds_per_iteration": per_iteration,
        "n_iter": last_n_iter,
        "requested_iter": counts[-1],
        # goalFunction is the summed log-likelihood of the parameters entering the last iteration
        "lower_bound": last_goal / mixture.X.shape[0],
    }, None


# ---------------------------------------------------------------------------- benchmark driver
def _rel(a, b):
    return abs(a - b) / max(abs(b), 1e-300)


def run_config(name, args, peak, onedal_python):
    n_samples, n_features, n_components, ctype = CONFIGS[name]
    n_samples = args.n_samples or n_samples
    iters = args.iters or DEFAULT_ITERS[name]
    mixture = make_mixture(
        n_samples, n_features, n_components, ctype, dtype=np.dtype(args.dtype), seed=args.seed
    )
    row = {
        "config": name,
        "n_samples": n_samples,
        "n_features": n_features,
        "n_components": n_components,
        "covariance_type": ctype,
        "dtype": args.dtype,
        "method": args.method,
        "iters": iters,
        "repeat": args.repeat,
        "flops_per_iteration": flops_per_iteration(ctype, n_samples, n_features, n_components),
        "peers": {},
        "checks": {},
    }
    print(
        f"[{name}] N={n_samples} D={n_features} K={n_components} {ctype} {args.dtype}: "
        f"{args.repeat} repeats of {iters} timed iterations ({args.method})",
        flush=True,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning: tol=0 never converges by design
        result, ours = time_in_process(_fit_fastgmm, mixture, args.method, iters, args.repeat)
        row["peers"]["fastgmm"] = result
        print(f"  fastgmm  {result['seconds_per_iteration']:.4g} s/iter", flush=True)
        if mixture.X.dtype == np.float32:
            _compare_with_own_float64(row, mixture, ours, args, iters)
        theirs = None
        if "sklearn" in args.peers:
            result, theirs = time_in_process(_fit_sklearn, mixture, args.method, iters, args.repeat)
            row["peers"]["sklearn"] = result
            print(f"  sklearn  {result['seconds_per_iteration']:.4g} s/iter", flush=True)
    if "onedal" in args.peers:
        with tempfile.TemporaryDirectory(prefix="fastgmm-compare-") as workdir:
            result, error = time_onedal(
                onedal_python, mixture, args.method, iters, args.repeat, workdir
            )
        if result is None:
            row["peers"]["onedal"] = {"error": error}
            print(f"  oneDAL   unavailable: {error}", flush=True)
        else:
            row["peers"]["onedal"] = result
            print(
                f"  oneDAL   {result['seconds_per_iteration']:.4g} s/iter "
                f"({result['n_iter']} of {result['requested_iter']} iterations run)",
                flush=True,
            )

    fast = row["peers"]["fastgmm"]["seconds_per_iteration"]
    gflops = row["flops_per_iteration"] / fast / 1e9
    row["fastgmm_gflops"] = gflops
    row["fraction_of_gemm_peak"] = gflops / peak
    for peer in (*PEERS, "fastgmm_float64"):
        result = row["peers"].get(peer)
        if result and "seconds_per_iteration" in result:
            result["ratio_to_fastgmm"] = result["seconds_per_iteration"] / fast
    # Same data, same initialisation, same number of iterations: the lower bounds must agree.
    reference = theirs if theirs is not None else ours
    if theirs is not None:
        row["checks"]["fastgmm_vs_sklearn_lower_bound_rel_diff"] = _rel(
            ours.lower_bound_, theirs.lower_bound_
        )
    onedal = row["peers"].get("onedal", {})
    if "lower_bound" in onedal and onedal["n_iter"] <= len(reference.lower_bounds_):
        row["checks"][
            "onedal_vs_"
            + ("sklearn" if theirs is not None else "fastgmm")
            + "_lower_bound_rel_diff"
        ] = _rel(onedal["lower_bound"], reference.lower_bounds_[onedal["n_iter"] - 1])
    for check, value in row["checks"].items():
        print(f"  check: {check} = {value:.2e}")
    return row


def _compare_with_own_float64(row, mixture, ours, args, iters):
    """Time fastgmm on the same numbers in float64; check that both fits agree.

    The float64 fit sees the float32 data widened, so any difference comes from the arithmetic
    alone: the lower bounds after the same iterations, and the predicted labels.
    """
    wide = dataclasses.replace(mixture, X=mixture.X.astype(np.float64))
    result, wide_model = time_in_process(_fit_fastgmm, wide, args.method, iters, args.repeat)
    row["peers"]["fastgmm_float64"] = result
    print(f"  fastgmm float64  {result['seconds_per_iteration']:.4g} s/iter", flush=True)
    row["checks"]["float32_vs_float64_lower_bound_rel_diff"] = _rel(
        ours.lower_bound_, wide_model.lower_bound_
    )
    rows = slice(0, min(len(mixture.X), 200_000))  # a prediction pass, not a second benchmark
    same = ours.predict(mixture.X[rows]) == wide_model.predict(wide.X[rows])
    row["checks"]["float32_vs_float64_label_disagreement"] = 1.0 - float(np.mean(same))


def run_predict(name, args):
    """Scoring time of fastgmm and scikit-learn with parameters from one EM iteration each."""
    n_samples, n_features, n_components, ctype = CONFIGS[name]
    n_samples = args.n_samples or n_samples
    mixture = make_mixture(
        n_samples, n_features, n_components, ctype, dtype=np.dtype(args.dtype), seed=args.seed
    )
    print(
        f"[{name} predict] N={n_samples} D={n_features} K={n_components} {ctype} "
        f"{args.dtype}: median of {args.repeat}",
        flush=True,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, _, ours = _fit_fastgmm(mixture, 1)
        _, _, theirs = _fit_sklearn(mixture, 1)
    row = {"config": name, "n_samples": n_samples, "dtype": args.dtype, "methods": {}}
    for method in ("predict_proba", "score_samples", "predict"):
        times = {}
        for label, model in (("fastgmm", ours), ("sklearn", theirs)):
            func = getattr(model, method)
            func(mixture.X)  # warm-up
            times[label] = statistics.median(
                _timed(lambda f=func: f(mixture.X)) for _ in range(args.repeat)
            )
        times["ratio_sklearn_to_fastgmm"] = times["sklearn"] / times["fastgmm"]
        row["methods"][method] = times
        print(
            f"  {method:14s} fastgmm {times['fastgmm']:.4g} s, sklearn {times['sklearn']:.4g} s, "
            f"ratio {times['ratio_sklearn_to_fastgmm']:.3g}",
            flush=True,
        )
    row["score_samples_max_abs_diff"] = float(
        np.max(np.abs(ours.score_samples(mixture.X) - theirs.score_samples(mixture.X)))
    )
    print(
        f"  check: score_samples max |fastgmm - sklearn| = {row['score_samples_max_abs_diff']:.2e}"
    )
    return row


# ---------------------------------------------------------------------------- output
def _count(n):
    """``1e6`` for round counts, the plain number otherwise."""
    short = f"{n:.0e}".replace("e+0", "e").replace("e+", "e")
    return short if float(short) == n else str(n)


def _fmt(value, digits=3):
    return "-" if value is None else f"{value:.{digits}g}"


def markdown_fit_table(rows, peak_by_dtype):
    lines = [
        "| config | N | D | K | type | dtype | fastgmm s/iter | sklearn s/iter | oneDAL s/iter "
        "| sklearn/fastgmm | oneDAL/fastgmm | fastgmm GFLOP/s | % of GEMM peak "
        "| fastgmm float64 / float32 |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        peers = row["peers"]
        sk = peers.get("sklearn", {})
        od = peers.get("onedal", {})
        own = peers.get("fastgmm_float64", {})
        lines.append(
            f"| ({row['config']}) | {_count(row['n_samples'])} | {row['n_features']} "
            f"| {row['n_components']} | {row['covariance_type']} | {row['dtype']} "
            f"| {_fmt(peers['fastgmm']['seconds_per_iteration'])} "
            f"| {_fmt(sk.get('seconds_per_iteration'))} | {_fmt(od.get('seconds_per_iteration'))} "
            f"| {_fmt(sk.get('ratio_to_fastgmm'))} | {_fmt(od.get('ratio_to_fastgmm'))} "
            f"| {_fmt(row['fastgmm_gflops'])} | {100 * row['fraction_of_gemm_peak']:.1f} "
            f"| {_fmt(own.get('ratio_to_fastgmm'))} |"
        )
    peaks = ", ".join(
        f"{'D' if d == 'float64' else 'S'}GEMM {v:.0f} GFLOP/s" for d, v in peak_by_dtype.items()
    )
    method = rows[0]["method"] if rows else "diff"
    how = (
        "difference of fits with 1 and 1+iters iterations, divided by the iterations performed"
        if method == "diff"
        else "one fit of iters iterations divided by the iterations performed, overheads included"
    )
    lines.append("")
    lines.append(
        f"Seconds per EM iteration, median of repeats ({how}); same data and initialisation for "
        f"every implementation, no convergence test. GFLOP/s from 2·N·K·D² (full) or 4·N·K·D "
        f"(diag) flops per iteration; peak measured in the same run: {peaks}."
    )
    return "\n".join(lines)


def markdown_predict_table(rows):
    lines = [
        "| config | N | dtype | method | fastgmm s | sklearn s | sklearn/fastgmm |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        for method, times in row["methods"].items():
            lines.append(
                f"| ({row['config']}) | {_count(row['n_samples'])} | {row['dtype']} | {method} "
                f"| {_fmt(times['fastgmm'])} | {_fmt(times['sklearn'])} "
                f"| {_fmt(times['ratio_sklearn_to_fastgmm'])} |"
            )
    return "\n".join(lines)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description="Time fastgmm against scikit-learn and oneDAL (seconds per EM iteration).",
        epilog="Configurations: "
        + "; ".join(f"{k}: N={v[0]:.0e} D={v[1]} K={v[2]} {v[3]}" for k, v in CONFIGS.items()),
    )
    parser.add_argument(
        "--config",
        default=None,
        help="comma-separated subset of a,b,c,d,e or 'all' (default a; c with --predict)",
    )
    parser.add_argument("--repeat", type=int, default=3, help="repeats; the median is reported")
    parser.add_argument(
        "--iters",
        type=int,
        default=None,
        help="timed EM iterations per fit (default 50 for a, 5 otherwise)",
    )
    parser.add_argument("--dtype", choices=["float64", "float32"], default="float64")
    parser.add_argument(
        "--peers",
        default="sklearn,onedal",
        help="comma-separated subset of sklearn,onedal ('' for fastgmm only)",
    )
    parser.add_argument(
        "--method",
        choices=["diff", "fit"],
        default="diff",
        help="diff: (t(1+iters) - t(1)) / iterations; fit: t(iters) / iterations",
    )
    parser.add_argument(
        "--n-samples",
        type=int,
        default=None,
        help="override N of every selected configuration (for quick checks)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--predict",
        action="store_true",
        help="time predict_proba/score_samples/predict against sklearn instead "
        "(default configuration c)",
    )
    parser.add_argument(
        "--gemm-size", type=int, default=4096, help="matrix size of the GEMM peak measurement"
    )
    parser.add_argument(
        "--onedal-python",
        default=sys.executable,
        help="interpreter with daal4py installed (default: this one)",
    )
    parser.add_argument("--json", default=None, help="also write all results to this file")
    parser.add_argument("--onedal-worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.onedal_worker:
        return args
    if args.config is None:
        args.config = "c" if args.predict else "a"
    names = list(CONFIGS) if args.config == "all" else args.config.split(",")
    unknown = [n for n in names if n not in CONFIGS]
    if unknown:
        parser.error(f"unknown configuration(s) {unknown}; choose from {list(CONFIGS)} or 'all'")
    args.configs = names
    args.peers = [p for p in args.peers.split(",") if p]
    bad = [p for p in args.peers if p not in PEERS]
    if bad:
        parser.error(f"unknown peer(s) {bad}; choose from {list(PEERS)}")
    if args.repeat < 1 or (args.iters is not None and args.iters < 1):
        parser.error("--repeat and --iters must be at least 1")
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.onedal_worker:
        onedal_worker(args.onedal_worker)
        return 0

    onedal_version, onedal_error = (None, "not requested")
    if "onedal" in args.peers:
        onedal_version, onedal_error = probe_onedal(args.onedal_python)
        if onedal_version is None:
            print(f"oneDAL (daal4py) not usable with {args.onedal_python}: {onedal_error}")
            args.peers = [p for p in args.peers if p != "onedal"]

    # A first fastgmm call fixes Numba's threading layer and loads the kernels before anything
    # else runs, so the description below shows the layer the timings use.
    from benchmarks import warm_jit

    warm_jit(args.dtype)
    machine = machine_description(onedal_version)
    print_machine(machine)
    tuned = [name for name in OPENBLAS_TUNING_VARS if name in os.environ]
    if tuned:
        print(
            f"NOTE: {', '.join(tuned)} set in the environment. Current OpenBLAS picks its "
            "kernels itself and these slow it (the GEMM peak and scikit-learn below). Re-run "
            "as `env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python asv_bench/compare.py ...` "
            "and check the 'architecture' of the BLAS thread pool above.\n"
        )

    output = {"machine": machine, "arguments": {k: v for k, v in vars(args).items()}}
    if args.predict:
        rows = [run_predict(name, args) for name in args.configs]
        print()
        print(markdown_predict_table(rows))
        output["predict"] = rows
    else:
        peak = gemm_peak(np.dtype(args.dtype), args.gemm_size)
        peak_by_dtype = {args.dtype: peak}
        print(
            f"{'D' if args.dtype == 'float64' else 'S'}GEMM peak ({args.gemm_size}², best of 3): "
            f"{peak:.1f} GFLOP/s" + (f" [with {', '.join(tuned)} set]" if tuned else "")
        )
        print()
        rows = [run_config(name, args, peak, args.onedal_python) for name in args.configs]
        print()
        print(markdown_fit_table(rows, peak_by_dtype))
        output["gemm_peak_gflops"] = peak_by_dtype
        output["results"] = rows
    if args.json:
        Path(args.json).write_text(json.dumps(output, indent=2, default=float))
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
