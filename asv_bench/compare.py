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

    python asv_bench/compare.py --shape 400000,24,12 --data blobs \\
        --covariance-type full,tied,diag,spherical --peers sklearn
    python asv_bench/compare.py --config b --covariance-type spherical,diag,full --peers kmeans

With ``--dtype float32`` fastgmm is also timed on the same numbers in float64 (the last column),
and the run checks that both fits reach the same lower bound and labels.
    python asv_bench/compare.py --predict --config c

``--covariance-type`` times each listed covariance model (any registered name, see
``fastgmm.covariance.COVARIANCE_TYPES``) on the configuration's shape; scikit-learn and oneDAL
run only the types they have. ``--data blobs`` draws well-separated blobs with rotated
covariances, started diagonal from the data's variances (``benchmarks.make_blobs``);
``standard`` (the default) is the perturbed-truth data of the reference configurations.
``--peers kmeans`` also times one Lloyd iteration of scikit-learn's ``KMeans`` on the same data,
from the same means.

**The floor.** Beside each fastgmm figure the script prints the time no implementation can beat
on this machine: the larger of the bytes read per iteration (X once, ``N D`` items) over the
memory bandwidth, and the arithmetic per iteration (``benchmarks.floor_flops_per_row``) over the
GEMM peak, both measured in the same run. The bandwidth is the best of three parallel reads of a
512 MB array with the kernels' thread count.
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

from benchmarks import (  # noqa: E402
    DATA_KINDS,
    REG_COVAR,
    fixed_work_params,
    floor_flops_per_row,
    make_data,
    score_flops_per_row,
)

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
PEERS = ("sklearn", "onedal", "kmeans")
SKLEARN_TYPES = ("full", "tied", "diag", "spherical")
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


def memory_bandwidth(n_threads=None, megabytes=512, repeat=3):
    """Best GB/s of reading a ``megabytes`` float64 array once, split over ``n_threads`` threads.

    NumPy's sum releases the GIL, so each thread streams its own contiguous part; the pairwise
    summation does about one add per 8 bytes, far below the core's rate, so the time is the
    memory's.
    """
    from concurrent.futures import ThreadPoolExecutor

    from fastgmm._jit import default_n_threads

    n_threads = n_threads or default_n_threads()
    data = np.ones(megabytes * 2**20 // 8)
    parts = np.array_split(data, n_threads)
    with ThreadPoolExecutor(n_threads) as pool:
        list(pool.map(np.sum, parts))  # warm-up: page faults

        def read():
            list(pool.map(np.sum, parts))

        best = min(_timed(read) for _ in range(repeat))
    return data.nbytes / best / 1e9


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


def _fit_kmeans(mixture, max_iter):
    """scikit-learn's Lloyd k-means from the mixture's initial means (one job, no restarts)."""
    from sklearn.cluster import KMeans

    model = KMeans(
        n_clusters=mixture.n_components,
        init=mixture.means_init.astype(mixture.X.dtype),
        n_init=1,
        max_iter=max_iter,
        tol=0.0,
        algorithm="lloyd",
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


def _attribute_shape(ctype):
    """The covariance model's attribute shape, for the shared initial covariances."""
    from fastgmm.covariance import get_model

    return get_model(ctype).covariance_shape


def floor_seconds(ctype, n_samples, n_features, n_components, itemsize, peak, bandwidth):
    """The floor of one iteration: ``(seconds, bound, bytes per row, flops per row)``."""
    flops = floor_flops_per_row(ctype, n_features, n_components)
    nbytes = n_features * itemsize
    compute = n_samples * flops / (peak * 1e9)
    memory = n_samples * nbytes / (bandwidth * 1e9)
    if compute >= memory:
        return compute, "flops", nbytes, flops
    return memory, "memory", nbytes, flops


def _config_shape(name, args):
    if name == "shape":
        return args.shape
    n_samples, n_features, n_components, _ = CONFIGS[name]
    return args.n_samples or n_samples, n_features, n_components


def run_config(name, ctype, args, peaks, bandwidth, onedal_python):
    n_samples, n_features, n_components = _config_shape(name, args)
    iters = args.iters or DEFAULT_ITERS.get(name, 5)
    dtype = np.dtype(args.dtype)
    peak = peaks[args.dtype]
    mixture = make_data(
        args.data,
        n_samples,
        n_features,
        n_components,
        ctype,
        dtype=dtype,
        seed=args.seed,
        attribute_shape=_attribute_shape(ctype),
    )
    floor, bound, bytes_per_row, flops_per_row = floor_seconds(
        ctype, n_samples, n_features, n_components, dtype.itemsize, peak, bandwidth
    )
    row = {
        "config": name,
        "n_samples": n_samples,
        "n_features": n_features,
        "n_components": n_components,
        "covariance_type": ctype,
        "data": args.data,
        "dtype": args.dtype,
        "method": args.method,
        "iters": iters,
        "repeat": args.repeat,
        "flops_per_iteration": n_samples * floor_flops_per_row(ctype, n_features, n_components),
        "floor_seconds": floor,
        "floor_bound": bound,
        "floor_bytes_per_row": bytes_per_row,
        "floor_flops_per_row": flops_per_row,
        "peers": {},
        "checks": {},
    }
    print(
        f"[{name}] N={n_samples} D={n_features} K={n_components} {ctype} {args.dtype} "
        f"{args.data}: {args.repeat} repeats of {iters} timed iterations ({args.method})",
        flush=True,
    )
    print(
        f"  floor    {floor:.4g} s/iter ({bound}-bound: {bytes_per_row} B and "
        f"{flops_per_row:.0f} flop per row against {bandwidth:.1f} GB/s and "
        f"{peak:.0f} GFLOP/s)",
        flush=True,
    )
    sklearn_type = ctype in SKLEARN_TYPES
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning: tol=0 never converges by design
        result, ours = time_in_process(_fit_fastgmm, mixture, args.method, iters, args.repeat)
        row["peers"]["fastgmm"] = result
        print(
            f"  fastgmm  {result['seconds_per_iteration']:.4g} s/iter "
            f"({result['seconds_per_iteration'] / floor:.2f}x the floor of {floor:.3g})",
            flush=True,
        )
        if mixture.X.dtype == np.float32:
            wide_floor, *_ = floor_seconds(
                ctype, n_samples, n_features, n_components, 8, peaks["float64"], bandwidth
            )
            row["float64_floor_seconds"] = wide_floor
            _compare_with_own_float64(row, mixture, ours, args, iters, wide_floor)
        theirs = None
        if "kmeans" in args.peers:
            result, _ = time_in_process(_fit_kmeans, mixture, args.method, iters, args.repeat)
            row["peers"]["kmeans"] = result
            timed = _iteration_counts(args.method, iters)[-1]
            if result["n_iter"] < timed:
                # Lloyd stops once no label changes (tol=0 does not prevent it): on separated
                # blobs after 2 or 3 iterations, and the difference of two such fits is mostly
                # noise (it came out negative on N=4e5, D=24, K=12 blobs).
                result["seconds_per_iteration"] = None
                print(
                    f"  KMeans   not timed: Lloyd converged after {result['n_iter']} of the "
                    f"{timed} iterations (try --data standard)",
                    flush=True,
                )
            else:
                print(
                    f"  KMeans   {result['seconds_per_iteration']:.4g} s/iter (scikit-learn "
                    f"Lloyd, {result['n_iter']} iterations run)",
                    flush=True,
                )
        if "sklearn" in args.peers and sklearn_type:
            result, theirs = time_in_process(_fit_sklearn, mixture, args.method, iters, args.repeat)
            row["peers"]["sklearn"] = result
            print(f"  sklearn  {result['seconds_per_iteration']:.4g} s/iter", flush=True)
    if "onedal" in args.peers and ctype in ONEDAL_STORAGE:
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
    row["fastgmm_over_floor"] = fast / floor
    for peer in (*PEERS, "fastgmm_float64"):
        result = row["peers"].get(peer)
        if result and result.get("seconds_per_iteration") is not None:
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


def _compare_with_own_float64(row, mixture, ours, args, iters, floor):
    """Time fastgmm on the same numbers in float64; check that both fits agree.

    The float64 fit sees the float32 data widened, so any difference comes from the arithmetic
    alone: the lower bounds after the same iterations, and the predicted labels.
    """
    wide = dataclasses.replace(mixture, X=mixture.X.astype(np.float64))
    result, wide_model = time_in_process(_fit_fastgmm, wide, args.method, iters, args.repeat)
    row["peers"]["fastgmm_float64"] = result
    print(
        f"  fastgmm float64  {result['seconds_per_iteration']:.4g} s/iter "
        f"({result['seconds_per_iteration'] / floor:.2f}x its floor of {floor:.3g})",
        flush=True,
    )
    row["checks"]["float32_vs_float64_lower_bound_rel_diff"] = _rel(
        ours.lower_bound_, wide_model.lower_bound_
    )
    rows = slice(0, min(len(mixture.X), 200_000))  # a prediction pass, not a second benchmark
    same = ours.predict(mixture.X[rows]) == wide_model.predict(wide.X[rows])
    row["checks"]["float32_vs_float64_label_disagreement"] = 1.0 - float(np.mean(same))


def run_predict(name, ctype, args, dgemm_peak):
    """Scoring time of fastgmm and scikit-learn with parameters from one EM iteration each.

    Scoring is float64 whatever the data's dtype, so its rate is given as a fraction of the
    DGEMM peak: ``score_flops_per_row`` (each component's quadratic form) per row.
    """
    n_samples, n_features, n_components = _config_shape(name, args)
    mixture = make_data(
        args.data,
        n_samples,
        n_features,
        n_components,
        ctype,
        dtype=np.dtype(args.dtype),
        seed=args.seed,
        attribute_shape=_attribute_shape(ctype),
    )
    flops = n_samples * score_flops_per_row(ctype, n_features, n_components)
    print(
        f"[{name} predict] N={n_samples} D={n_features} K={n_components} {ctype} "
        f"{args.dtype} {args.data}: median of {args.repeat}; {flops / n_samples:.0f} flop per "
        f"row, DGEMM peak {dgemm_peak:.0f} GFLOP/s",
        flush=True,
    )
    peers = (("fastgmm", _fit_fastgmm),)
    if ctype in SKLEARN_TYPES:
        peers += (("sklearn", _fit_sklearn),)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        models = {label: fit(mixture, 1)[2] for label, fit in peers}
    row = {
        "config": name,
        "n_samples": n_samples,
        "covariance_type": ctype,
        "dtype": args.dtype,
        "dgemm_peak_gflops": dgemm_peak,
        "methods": {},
    }
    for method in ("predict_proba", "score_samples", "predict"):
        times = {}
        for label, model in models.items():
            func = getattr(model, method)
            func(mixture.X)  # warm-up
            times[label] = statistics.median(
                _timed(lambda f=func: f(mixture.X)) for _ in range(args.repeat)
            )
        times["fraction_of_dgemm_peak"] = flops / times["fastgmm"] / 1e9 / dgemm_peak
        if "sklearn" in times:
            times["ratio_sklearn_to_fastgmm"] = times["sklearn"] / times["fastgmm"]
        row["methods"][method] = times
        print(
            f"  {method:14s} fastgmm {times['fastgmm']:.4g} s "
            f"({100 * times['fraction_of_dgemm_peak']:.0f}% of the DGEMM peak), "
            f"sklearn {_fmt(times.get('sklearn'), 4)} s, "
            f"ratio {_fmt(times.get('ratio_sklearn_to_fastgmm'))}",
            flush=True,
        )
    if "sklearn" not in models:
        return row
    ours, theirs = models["fastgmm"], models["sklearn"]
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


def markdown_fit_table(rows, peak_by_dtype, bandwidth):
    lines = [
        "| config | N | D | K | type | data | dtype | fastgmm s/iter | floor s/iter "
        "| fastgmm/floor | sklearn s/iter | oneDAL s/iter | KMeans s/iter "
        "| sklearn/fastgmm | oneDAL/fastgmm | KMeans/fastgmm | fastgmm GFLOP/s | % of GEMM peak "
        "| fastgmm float64 / float32 |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        peers = row["peers"]
        sk = peers.get("sklearn", {})
        od = peers.get("onedal", {})
        own = peers.get("fastgmm_float64", {})
        km = peers.get("kmeans", {})
        lines.append(
            f"| ({row['config']}) | {_count(row['n_samples'])} | {row['n_features']} "
            f"| {row['n_components']} | {row['covariance_type']} | {row['data']} "
            f"| {row['dtype']} | {_fmt(peers['fastgmm']['seconds_per_iteration'])} "
            f"| {_fmt(row['floor_seconds'])} ({row['floor_bound']}) "
            f"| {_fmt(row['fastgmm_over_floor'])} "
            f"| {_fmt(sk.get('seconds_per_iteration'))} | {_fmt(od.get('seconds_per_iteration'))} "
            f"| {_fmt(km.get('seconds_per_iteration'))} "
            f"| {_fmt(sk.get('ratio_to_fastgmm'))} | {_fmt(od.get('ratio_to_fastgmm'))} "
            f"| {_fmt(km.get('ratio_to_fastgmm'))} "
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
        f"every implementation, no convergence test. GFLOP/s from the floor's flops per row "
        f"(benchmarks.floor_flops_per_row); the floor is the larger of N·D items over the "
        f"memory bandwidth and those flops over the GEMM peak, both measured in the same run: "
        f"{peaks}, {bandwidth:.1f} GB/s."
    )
    return "\n".join(lines)


def markdown_predict_table(rows):
    lines = [
        "| config | N | type | dtype | method | fastgmm s | % of DGEMM peak | sklearn s "
        "| sklearn/fastgmm |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        for method, times in row["methods"].items():
            lines.append(
                f"| ({row['config']}) | {_count(row['n_samples'])} | {row['covariance_type']} "
                f"| {row['dtype']} | {method} | {_fmt(times['fastgmm'])} "
                f"| {100 * times['fraction_of_dgemm_peak']:.0f} | {_fmt(times.get('sklearn'))} "
                f"| {_fmt(times.get('ratio_sklearn_to_fastgmm'))} |"
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
        "--covariance-type",
        default=None,
        help="comma-separated covariance models to time on each configuration's shape (any "
        "registered name, or 'all'; default: the configuration's own type)",
    )
    parser.add_argument(
        "--data",
        choices=DATA_KINDS,
        default="standard",
        help="standard: the reference configurations' perturbed-truth mixture; blobs: "
        "well-separated centres at scale 6, rotated covariances, started diagonal from the "
        "data's variances",
    )
    parser.add_argument(
        "--shape",
        default=None,
        help="N,D,K: time this shape instead of the named configurations",
    )
    parser.add_argument(
        "--peers",
        default="sklearn,onedal",
        help="comma-separated subset of sklearn,onedal,kmeans ('' for fastgmm only); kmeans is "
        "scikit-learn's Lloyd KMeans on the same data",
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
    if args.shape is not None:
        try:
            n, d, k = (int(float(v)) for v in args.shape.split(","))
        except ValueError:
            parser.error(f"--shape takes N,D,K, got {args.shape!r}")
        args.shape = (n, d, k)
        names = ["shape"]
    else:
        if args.config is None:
            args.config = "c" if args.predict else "a"
        names = list(CONFIGS) if args.config == "all" else args.config.split(",")
        unknown = [n for n in names if n not in CONFIGS]
        if unknown:
            parser.error(
                f"unknown configuration(s) {unknown}; choose from {list(CONFIGS)} or 'all'"
            )
    args.configs = names
    from fastgmm.covariance import COVARIANCE_TYPES

    if args.covariance_type is None:
        args.types = None
    else:
        wanted = args.covariance_type.split(",")
        args.types = list(COVARIANCE_TYPES) if wanted == ["all"] else wanted
        bad = [t for t in args.types if t not in COVARIANCE_TYPES]
        if bad:
            parser.error(f"unknown covariance type(s) {bad}; choose from {list(COVARIANCE_TYPES)}")
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
    output["load_average"] = os.getloadavg()
    print(f"Load average (1, 5, 15 min) at the start: {output['load_average']}")
    dtypes = ["float64"] if args.dtype == "float64" or args.predict else ["float64", "float32"]
    peak_by_dtype = {dtype: gemm_peak(np.dtype(dtype), args.gemm_size) for dtype in dtypes}
    for dtype, peak in peak_by_dtype.items():
        print(
            f"{'D' if dtype == 'float64' else 'S'}GEMM peak ({args.gemm_size}², best of 3): "
            f"{peak:.1f} GFLOP/s" + (f" [with {', '.join(tuned)} set]" if tuned else "")
        )
    output["gemm_peak_gflops"] = peak_by_dtype
    jobs = [
        (name, ctype)
        for name in args.configs
        for ctype in (args.types or [CONFIGS[name][3] if name in CONFIGS else "full"])
    ]
    if args.predict:
        print()
        rows = [run_predict(name, ctype, args, peak_by_dtype["float64"]) for name, ctype in jobs]
        print()
        print(markdown_predict_table(rows))
        output["predict"] = rows
    else:
        bandwidth = memory_bandwidth()
        print(f"Memory bandwidth (512 MB read, best of 3): {bandwidth:.1f} GB/s")
        print()
        rows = [
            run_config(name, ctype, args, peak_by_dtype, bandwidth, args.onedal_python)
            for name, ctype in jobs
        ]
        print()
        print(markdown_fit_table(rows, peak_by_dtype, bandwidth))
        output["memory_bandwidth_gbs"] = bandwidth
        output["results"] = rows
    output["load_average_at_end"] = os.getloadavg()
    print(f"\nLoad average (1, 5, 15 min) at the end: {output['load_average_at_end']}")
    if args.json:
        Path(args.json).write_text(json.dumps(output, indent=2, default=float))
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
