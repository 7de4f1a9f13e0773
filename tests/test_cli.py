"""The ``fastgmm`` command line, driven end to end in subprocesses on real files.

Each subprocess imports scikit-learn and loads the cached kernels (about a second), so the runs
are shared through module-scoped fixtures: ``warmup`` first (it also proves that later runs
compile nothing), then two fits whose outputs the other commands use.
"""

import ast
import inspect
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from fastgmm.cli import build_parser, main, parse_k_range, resolve_threads

THREAD_VARIABLES = ("NUMBA_NUM_THREADS", "SLURM_CPUS_PER_TASK", "OMP_NUM_THREADS")
N_ANOMALIES = 6


def _env(**extra):
    env = {k: v for k, v in os.environ.items() if k not in THREAD_VARIABLES}
    env.update({k: str(v) for k, v in extra.items()})
    return env


def run(*args, env=None, cwd=None, timeout=300):
    """``python -m fastgmm ARGS`` in a subprocess."""
    return subprocess.run(
        [sys.executable, "-m", "fastgmm", *map(str, args)],
        capture_output=True,
        text=True,
        env=env or _env(),
        cwd=cwd,
        timeout=timeout,
    )


def run_json(*args, expect=0, **kwargs):
    proc = run(*args, "--json", **kwargs)
    assert proc.returncode == expect, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 1, proc.stdout  # exactly one JSON object, nothing else on stdout
    return json.loads(lines[0]), proc


def _check_payload(payload, command, status="ok", exit_code=0):
    assert payload["command"] == command
    assert payload["status"] == status
    assert payload["exit_code"] == exit_code
    assert {"python", "fastgmm", "numpy", "scipy", "scikit-learn", "numba"} <= set(
        payload["versions"]
    )
    assert payload["versions"]["fastgmm"]
    assert isinstance(payload["threads"], int) and payload["threads"] >= 1
    assert isinstance(payload["threads_source"], str)
    timings = payload["timings"]
    assert all(isinstance(v, float) and v >= 0 for v in timings.values())
    assert timings["total"] >= max(timings.values()) - 1e-6
    assert isinstance(payload["outputs"], dict)
    assert isinstance(payload["warnings"], list)
    for path in payload["outputs"].values():
        assert os.path.isabs(path) and os.path.exists(path)


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    """Two overlapping clusters plus a few far-away rows, as .npy and .csv files."""
    root = tmp_path_factory.mktemp("cli")
    rng = np.random.default_rng(0)
    X = np.concatenate(
        [
            rng.normal(size=(300, 2)),
            rng.normal(size=(294, 2)) + np.array([4.0, 1.0]),
            rng.normal(size=(N_ANOMALIES, 2)) * 0.5 + [20.0, -15.0],
        ]
    )
    np.save(root / "X.npy", X)
    extra = rng.normal(size=(len(X), 1))
    data = np.column_stack([X[:, :1], extra, X[:, 1:]])
    np.savetxt(root / "X.csv", data, delimiter=",", header="a,noise,b", comments="", fmt="%.17g")
    return root, X


@pytest.fixture(scope="module")
def warmup(work):
    root, _ = work
    return run_json("warmup", "-q", cwd=root)[0]


@pytest.fixture(scope="module")
def fits(work, warmup):
    """The same fit with 1 and with 2 threads."""
    root, _ = work
    out = {}
    for threads in (1, 2):
        model = root / f"m{threads}.npz"
        payload, proc = run_json(
            "fit",
            root / "X.npy",
            "-k",
            2,
            "--seed",
            0,
            "--threads",
            threads,
            "--verbose-interval",
            1,
            "--out",
            model,
        )
        out[threads] = (model, payload, proc)
    return out


# ------------------------------------------------------------------------- start-up and help
def test_help_and_usage_errors_import_nothing_heavy():
    script = """
import json, sys, contextlib, io
from fastgmm.cli import main
buf = io.StringIO()
codes = {}
with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(io.StringIO()):
    codes["help"] = main(["--help"])
    for cmd in ("fit", "select", "predict", "score", "outliers", "sample", "info", "demo",
                "warmup"):
        codes[cmd] = main([cmd, "--help"])
    codes["bad_k"] = main(["fit", "x.npy", "-k", "0", "--out", "m.npz"])
    codes["bad_range"] = main(["select", "x.npy", "-k", "5:2", "--out", "m.npz"])
    codes["no_command"] = main([])
    codes["bad_contamination"] = main(["outliers", "x.npy", "--contamination", "0.7",
                                       "--out", "f.npy"])
heavy = sorted(
    {m.split(".")[0] for m in sys.modules} & {"numpy", "sklearn", "scipy", "numba", "tqdm"}
)
# Nor any command's module: they are imported when their command runs.
cli_modules = sorted(m for m in sys.modules if m.startswith("fastgmm.cli."))
# Usage errors found by a command (an output that would replace an input) come before the
# numerical stack is imported too.
with contextlib.redirect_stderr(io.StringIO()) as err:
    codes["same_file"] = main(["predict", "m.npz", "x.npy", "--out", "m.npz"])
heavy_after = sorted({m.split(".")[0] for m in sys.modules} & {"sklearn", "scipy", "numba"})
print(json.dumps({"codes": codes, "heavy": heavy, "heavy_after": heavy_after,
                  "cli_modules": cli_modules,
                  "examples": buf.getvalue().count("examples:"), "err": err.getvalue()}))
"""
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=_env(), timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["heavy"] == []
    assert result["heavy_after"] == []
    assert result["cli_modules"] == [
        "fastgmm.cli._errors",
        "fastgmm.cli._job",
        "fastgmm.cli._main",
        "fastgmm.cli._parser",
    ]
    assert result["codes"]["same_file"] == 2
    assert "MODEL and --out name the same file 'm.npz'" in result["err"]
    assert result["examples"] == 10  # the main help and every command's help have examples
    codes = result["codes"]
    assert all(codes[c] == 0 for c in ("help", "fit", "select", "demo", "warmup"))
    assert codes["bad_k"] == codes["bad_range"] == codes["no_command"] == 2
    assert codes["bad_contamination"] == 2

    # The module entry point works, documents the exit codes, and imports nothing heavy.
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "fastgmm", "--help"],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=60,
    )
    assert proc.returncode == 0
    assert "exit codes:" in proc.stdout and "143" in proc.stdout
    assert "NUMBA_CACHE_DIR" in proc.stdout
    imported = {line.split("|")[-1].strip() for line in proc.stderr.splitlines() if "|" in line}
    assert not {m for m in imported if m.split(".")[0] in ("sklearn", "numba", "scipy", "tqdm")}


def _fastgmm_imports(path, module, modules):
    """The ``modules`` that ``module`` (at ``path``) imports, in functions too."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names if alias.name in modules)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package
                for _ in range(node.level - 1):
                    parent = parent.rpartition(".")[0]
                base = f"{parent}.{base}" if base else parent
            for alias in node.names:
                # "from . import _timing" imports a module; "from .x import f" imports x.
                name = f"{base}.{alias.name}"
                name = name if name in modules else base
                if name in modules:
                    yield name


def test_the_cli_package_has_no_import_cycle_and_nothing_imports_it():
    """Dependencies point down: main -> parser, job, errors; main -> (when run) a command's
    module -> helpers -> library. Function-level imports count, and so does main's lazy import
    of each command's module."""
    import fastgmm
    from fastgmm.cli._main import COMMANDS

    root = Path(fastgmm.__file__).parent
    paths = {}
    for path in root.rglob("*.py"):
        parts = path.relative_to(root.parent).with_suffix("").parts
        paths[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    graph = {
        module: set(_fastgmm_imports(path, module, paths)) - {module}
        for module, path in paths.items()
    }
    graph["fastgmm.cli._main"] |= {f"fastgmm.cli.{module}" for module, _ in COMMANDS.values()}

    def reachable(start):
        seen, stack = set(), list(graph[start])
        while stack:
            module = stack.pop()
            if module not in seen:
                seen.add(module)
                stack.extend(graph[module])
        return seen

    cli = sorted(m for m in paths if m == "fastgmm.cli" or m.startswith("fastgmm.cli."))
    assert len(cli) >= 10
    assert [m for m in cli if m in reachable(m)] == []
    assert graph["fastgmm.cli._errors"] == set()
    importers = {m for m, imported in graph.items() if m not in cli and set(cli) & imported}
    assert importers == {"fastgmm.__main__"}


def test_every_command_has_a_function():
    from fastgmm.cli._main import COMMANDS, command_function

    parser = build_parser()
    subparsers = next(a for a in parser._actions if a.dest == "command")
    assert set(subparsers.choices) == set(COMMANDS)
    for name in COMMANDS:
        assert callable(command_function(name)), name


def test_parsers():
    assert parse_k_range("1:10") == list(range(1, 11))
    assert parse_k_range("8,2,2") == [2, 8]
    assert parse_k_range("3, 5:6") == [3, 5, 6]
    for bad in ("0:3", "a", "4:2", ""):
        with pytest.raises(Exception, match="component counts"):
            parse_k_range(bad)
    parser = build_parser()
    args = parser.parse_args(["outliers", "x.npy", "-k", "bic", "--out", "f.npy"])
    assert args.n_components == "bic" and args.contamination == "auto"
    args = parser.parse_args(["select", "x.npy", "--covariance", "diag,full", "--out", "m"])
    assert args.covariance == ["diag", "full"] and args.n_components == list(range(1, 11))


def test_thread_precedence():
    env = {"NUMBA_NUM_THREADS": "3", "SLURM_CPUS_PER_TASK": "5", "OMP_NUM_THREADS": "7"}
    assert resolve_threads(2, env) == (2, "--threads")
    assert resolve_threads(None, env) == (3, "NUMBA_NUM_THREADS")
    del env["NUMBA_NUM_THREADS"]
    assert resolve_threads(None, env) == (5, "SLURM_CPUS_PER_TASK")
    del env["SLURM_CPUS_PER_TASK"]
    assert resolve_threads(None, env) == (7, "OMP_NUM_THREADS")
    assert resolve_threads(None, {"OMP_NUM_THREADS": "4,2"}) == (4, "OMP_NUM_THREADS")
    assert resolve_threads(None, {}) == (len(os.sched_getaffinity(0)), "affinity")
    with pytest.raises(Exception, match="SLURM_CPUS_PER_TASK='x' is not a positive integer"):
        resolve_threads(None, {"SLURM_CPUS_PER_TASK": "x"})


def test_usage_error_in_process_and_env(capsys, monkeypatch):
    assert main(["fit", "x.npy", "-k", "2"]) == 2  # --out is required
    assert "required: --out" in capsys.readouterr().err
    monkeypatch.setenv("OMP_NUM_THREADS", "zero")
    monkeypatch.delenv("NUMBA_NUM_THREADS", raising=False)
    monkeypatch.delenv("SLURM_CPUS_PER_TASK", raising=False)
    assert main(["info", "m.npz"]) == 2
    assert "OMP_NUM_THREADS='zero' is not a positive integer" in capsys.readouterr().err


# --------------------------------------------------------------------------------- commands
def test_warmup_compiles_every_signature(warmup):
    import fastgmm.mixture  # noqa: F401 (imports every kernel, which registers itself)
    from fastgmm._jit import registered_kernels

    _check_payload(warmup, "warmup")
    seen = {(r["kernel"], r["flavour"], r["dtype"]) for r in warmup["compiled"]}
    # Every kernel that takes the rows (its first argument, X) in both dtypes; the others (the
    # radix sort of the missing-value patterns) take integer keys.
    expected = {
        (name, "parallel", dtype)
        for name, dispatcher in registered_kernels().items()
        if next(iter(inspect.signature(dispatcher.py_func).parameters)) == "X"
        for dtype in ("float32", "float64")
    }
    assert expected <= seen
    assert warmup["kernels"]["loaded"] + warmup["kernels"]["compiled"] >= len(expected)
    assert "compile" in warmup["timings"]


def test_fit_json_and_thread_count_does_not_change_the_model(fits, work):
    import fastgmm

    _, X = work
    models = {}
    for threads, (path, payload, proc) in fits.items():
        _check_payload(payload, "fit")
        assert payload["threads"] == threads and payload["threads_source"] == "--threads"
        assert {"read", "import", "compile", "init", "fit", "score", "write"} <= set(
            payload["timings"]
        )
        # The warmup compiled every signature this fit needs: nothing is compiled again.
        assert payload["kernels"]["compiled"] == 0
        model = payload["model"]
        assert model["converged"] is True and model["n_iter"] >= 1
        assert model["n_components"] == 2 and model["covariance_type"] == "full"
        assert payload["input"] == {
            "path": str(path.parent / "X.npy"),
            "n_samples": len(X),
            "n_features": 2,
            "dtype": "float64",
        }
        assert payload["outputs"] == {"model": str(path)}
        gm = fastgmm.load(path)
        n = len(X)
        log_likelihood = gm.score(X) * n
        assert math.isclose(model["log_likelihood"], log_likelihood, rel_tol=1e-12)
        assert math.isclose(model["bic"], -2 * log_likelihood + 11 * math.log(n), rel_tol=1e-12)
        assert math.isclose(model["aic"], -2 * log_likelihood + 22, rel_tol=1e-12)
        assert math.isclose(model["lower_bound"], gm.lower_bound_, rel_tol=0)
        # Progress lines (the estimator's verbose output) go to stderr, one per iteration.
        assert proc.stderr.count("  Iteration ") == gm.n_iter_
        # Runtime settings are not baked into the file.
        assert gm.verbose == 0 and gm.n_jobs is None
        models[threads] = gm
    for name in ("weights_", "means_", "covariances_", "precisions_cholesky_"):
        np.testing.assert_array_equal(getattr(models[1], name), getattr(models[2], name))
    assert models[1].lower_bounds_ == models[2].lower_bounds_


def test_in_process_fit_times_its_phases_and_leaves_no_listener(
    work, warmup, tmp_path, capsys, monkeypatch
):
    from fastgmm import _events

    root, _ = work
    monkeypatch.delenv("NUMBA_NUM_THREADS", raising=False)  # restored after main() sets it
    args = ["fit", root / "X.npy", "-k", 2, "--seed", 0, "--threads", 1, "--batch-size", 100]
    code = main([*map(str, args), "--json", "-q", "--out", str(tmp_path / "m.npz")])
    assert code == 0
    payload = json.loads(capsys.readouterr().out)
    # Read time from the source's chunk events, init time from the estimator's.
    assert payload["timings"]["read"] > 0 and 0 < payload["timings"]["init"]
    assert payload["timings"]["init"] < payload["timings"]["fit"]
    assert not any(_events.listening(name) for name in _events.EVENTS)


def test_predict_and_score_stream_chunk_by_chunk(fits, work):
    import fastgmm

    root, X = work
    model_path = fits[1][0]
    gm = fastgmm.load(model_path)
    payload, _ = run_json(
        "predict",
        model_path,
        root / "X.npy",
        "--out",
        root / "labels.npy",
        "--proba",
        root / "proba.npy",
        "--batch-size",
        128,
        env=_env(OMP_NUM_THREADS=2),
    )
    _check_payload(payload, "predict")
    assert payload["threads"] == 2 and payload["threads_source"] == "OMP_NUM_THREADS"
    assert payload["kernels"]["compiled"] == 0
    labels, proba = np.load(root / "labels.npy"), np.load(root / "proba.npy")
    assert labels.dtype == np.int64 and proba.shape == (len(X), 2)
    np.testing.assert_array_equal(labels, gm.predict(X))
    np.testing.assert_array_equal(proba, gm.predict_proba(X))

    # A CSV has no row count up front (one counting pass), and --columns picks the features.
    payload, _ = run_json(
        "score",
        model_path,
        root / "X.csv",
        "--columns",
        "a,b",
        "--batch-size",
        100,
        "--out",
        root / "scores.npy",
        env=_env(SLURM_CPUS_PER_TASK=1, OMP_NUM_THREADS=2),
    )
    _check_payload(payload, "score")
    assert payload["threads"] == 1 and payload["threads_source"] == "SLURM_CPUS_PER_TASK"
    np.testing.assert_array_equal(np.load(root / "scores.npy"), gm.score_samples(X))


def test_sample_continues_one_stream_across_batches(fits, work):
    import fastgmm

    root, _ = work
    model_path = fits[1][0]
    payload, _ = run_json(
        "sample",
        model_path,
        "-n",
        500,
        "--seed",
        3,
        "--batch-size",
        200,
        "--out",
        root / "S.npy",
        "--labels",
        root / "SY.npy",
        env=_env(NUMBA_NUM_THREADS=1, SLURM_CPUS_PER_TASK=2),
    )
    _check_payload(payload, "sample")
    assert payload["threads"] == 1 and payload["threads_source"] == "NUMBA_NUM_THREADS"
    gm = fastgmm.load(model_path)
    gm.set_params(random_state=np.random.RandomState(3))
    draws = [gm.sample(n) for n in (200, 200, 100)]
    np.testing.assert_array_equal(np.load(root / "S.npy"), np.concatenate([x for x, _ in draws]))
    np.testing.assert_array_equal(np.load(root / "SY.npy"), np.concatenate([y for _, y in draws]))


def test_info(fits):
    model_path = fits[1][0]
    proc = run("info", model_path)
    assert proc.returncode == 0, proc.stderr
    assert f"{model_path}: GaussianMixture (model format 1" in proc.stdout
    assert "2 components, full covariances, 2 features, float64" in proc.stdout
    metadata = next(line for line in proc.stdout.splitlines() if "metadata:" in line)
    assert "command='fit'" in metadata and "threads=1" in metadata
    payload, _ = run_json("info", model_path, "-q")
    _check_payload(payload, "info")
    assert payload["header"]["class"] == "GaussianMixture"
    assert payload["header"]["metadata"]["threads"] == 1
    assert len(payload["summary"]["components"]) == 2
    assert math.isclose(sum(c["weight"] for c in payload["summary"]["components"]), 1.0)


def test_select(work, warmup):
    import fastgmm

    root, X = work
    out = root / "selected.npz"
    payload, proc = run_json(
        "select",
        root / "X.npy",
        "-k",
        "1:3",
        "--covariance",
        "full,diag",
        "--seed",
        0,
        "--criterion",
        "bic",
        "--out",
        out,
    )
    _check_payload(payload, "select")
    results = payload["results"]
    assert [(r["n_components"], r["covariance_type"]) for r in results] == [
        (k, t) for k in (1, 2, 3) for t in ("full", "diag")
    ]
    keys = {"bic", "aic", "log_likelihood", "n_parameters", "converged", "n_iter", "fit_seconds"}
    assert all(keys <= set(r) for r in results)
    best = min(results, key=lambda r: r["bic"])
    assert payload["model"]["bic"] == best["bic"]
    assert (payload["model"]["n_components"], payload["model"]["covariance_type"]) == (
        best["n_components"],
        best["covariance_type"],
    )
    assert "<- best BIC" in proc.stderr  # the table goes to stderr when stdout has the JSON
    gm = fastgmm.load(out)
    assert (gm.n_components, gm.covariance_type) == (best["n_components"], best["covariance_type"])
    assert math.isclose(gm.score(X) * len(X), best["log_likelihood"], rel_tol=1e-10)


def test_outliers(work, warmup):
    import fastgmm

    root, X = work
    payload, _ = run_json(
        "outliers",
        root / "X.npy",
        "-k",
        2,
        "--contamination",
        0.01,
        "--seed",
        0,
        "--out",
        root / "flags.npy",
        "--scores",
        root / "oscores.npy",
        "--model-out",
        root / "detector.npz",
    )
    _check_payload(payload, "outliers")
    flags = np.load(root / "flags.npy")
    # ceil(0.01 * (n - 1)) = 6 rows are flagged: exactly the planted ones.
    assert payload["outliers"]["n_outliers"] == N_ANOMALIES
    np.testing.assert_array_equal(np.flatnonzero(flags == -1), np.arange(len(X))[-N_ANOMALIES:])
    detector = fastgmm.load(root / "detector.npz")
    assert type(detector).__name__ == "GaussianMixtureOutlierDetector"
    np.testing.assert_array_equal(flags, detector.predict(X))
    np.testing.assert_array_equal(np.load(root / "oscores.npy"), detector.score_samples(X))
    assert payload["outliers"]["threshold"] == detector.threshold_


def test_missing_values_from_fit_to_predict(work, warmup):
    import fastgmm

    root, X = work
    holes = X.copy()
    rng = np.random.default_rng(1)
    holes[rng.random(holes.shape) < 0.2] = np.nan
    holes[np.isnan(holes).all(axis=1), 0] = 0.0
    np.save(root / "holes.npy", holes)
    refused = run("fit", root / "holes.npy", "-k", 2, "--out", root / "no.npz")
    assert refused.returncode != 0 and "NaN" in refused.stderr
    payload, _ = run_json(
        "fit",
        root / "holes.npy",
        "-k",
        2,
        "--seed",
        0,
        "--missing",
        "marginalize",
        "--batch-size",
        200,
        "--out",
        root / "holes_model.npz",
    )
    _check_payload(payload, "fit")
    assert payload["kernels"]["compiled"] == 0  # the warmup covers the missing-value kernels
    gm = fastgmm.load(root / "holes_model.npz")
    assert gm.missing == "marginalize"
    expected = fastgmm.GaussianMixture(2, random_state=0, missing="marginalize").fit(holes)
    np.testing.assert_allclose(gm.means_, expected.means_, rtol=1e-10)
    # predict follows the model file's setting: no --missing needed.
    payload, _ = run_json(
        "predict", root / "holes_model.npz", root / "holes.npy", "--out", root / "hl.npy"
    )
    np.testing.assert_array_equal(np.load(root / "hl.npy"), gm.predict(holes))
    payload, _ = run_json(
        "outliers",
        root / "holes.npy",
        "-k",
        2,
        "--seed",
        0,
        "--contamination",
        0.01,
        "--missing",
        "marginalize",
        "--out",
        root / "hflags.npy",
    )
    assert payload["outliers"]["n_outliers"] >= N_ANOMALIES - 1


def test_demo(tmp_path, warmup):
    png = tmp_path / "demo.png"
    payload, proc = run_json("demo", "--plot", png)
    _check_payload(payload, "demo")
    demo = payload["demo"]
    assert demo["n_planted_anomalies"] == 12
    assert demo["anomalies"]["recall"] == 1.0 and demo["anomalies"]["precision"] >= 0.9
    assert demo["between_clusters"]["count"] > 0
    bics = {(r["n_components"], r["covariance_type"]): r["bic"] for r in demo["bic_table"]}
    chosen = (demo["selected"]["n_components"], demo["selected"]["covariance_type"])
    assert bics[chosen] == min(bics.values())
    assert "BIC (lower is better)" in proc.stderr and "precision" in proc.stderr
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert demo["plot"] is None and "matplotlib is not installed" in demo["plot_skipped"]
        assert not png.exists()
    else:
        assert demo["plot"] == str(png) and payload["outputs"]["plot"] == str(png)
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# ------------------------------------------------------------------------------- exit codes
def test_missing_input_is_a_one_line_error(work):
    root, _ = work
    proc = run("fit", root / "missing.npy", "-k", 2, "--out", root / "never.npz")
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1] == (
        f"fastgmm fit: error: no such file or directory: '{root / 'missing.npy'}'"
    )
    assert "Traceback" not in proc.stderr
    assert not (root / "never.npz").exists()


def test_corrupted_model(fits, work, tmp_path):
    root, _ = work
    bad = tmp_path / "bad.npz"
    content = fits[1][0].read_bytes()
    bad.write_bytes(content[: len(content) // 2])
    payload, proc = run_json(
        "predict", bad, root / "X.npy", "--out", tmp_path / "labels.npy", expect=1
    )
    _check_payload(payload, "predict", status="error", exit_code=1)
    assert "truncated or corrupted" in payload["error"]
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "labels.npy").exists()
    # --debug shows where it failed.
    proc = run("info", bad, "--debug")
    assert proc.returncode == 1
    assert "Traceback" in proc.stderr and "ModelFileError" in proc.stderr


def test_console_script_usage_error(work):
    root, _ = work
    script = Path(sys.executable).with_name("fastgmm")
    proc = subprocess.run(
        [script, "fit", root / "X.npy", "--out", root / "m.npz"],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=60,
    )
    assert proc.returncode == 2
    assert "the following arguments are required: -k/--n-components" in proc.stderr


def test_strict_not_converged_writes_nothing(work, warmup):
    root, _ = work
    out = root / "strict.npz"
    payload, _ = run_json(
        "fit",
        root / "X.npy",
        "-k",
        2,
        "--max-iter",
        1,
        "--init",
        "random",
        "--seed",
        0,
        "--dtype",
        "float32",
        "--strict",
        "--out",
        out,
        expect=3,
    )
    _check_payload(payload, "fit", status="not_converged", exit_code=3)
    assert payload["model"]["converged"] is False and payload["model"]["dtype"] == "float32"
    assert any("ConvergenceWarning" in w for w in payload["warnings"])
    assert payload["kernels"]["compiled"] == 0  # float32 kernels came from the warmup too
    assert payload["outputs"] == {} and not out.exists()


# The command line, with every atomic write held for a minute between writing its temporary
# file and committing it, so that a signal arrives at a known point. The command modules import
# atomic_path when the command runs, after this replaced it.
SLOW_WRITES = """
import contextlib, sys, time
from fastgmm import persistence

atomic_path = persistence.atomic_path

@contextlib.contextmanager
def slow_atomic_path(path):
    with atomic_path(path) as tmp:
        yield tmp
        time.sleep(60)

persistence.atomic_path = slow_atomic_path
from fastgmm.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _start_and_signal(args, directory, pattern, signum):
    """Start a command that sleeps inside its atomic write; signal it once the write began."""
    proc = subprocess.Popen(
        [sys.executable, "-c", SLOW_WRITES, *map(str, args), "-q"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
    )
    deadline = time.monotonic() + 120
    while not list(directory.glob(pattern)):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the write never started"
        time.sleep(0.05)
    proc.send_signal(signum)
    _, stderr = proc.communicate(timeout=180)
    return proc.returncode, stderr


def test_sigterm_during_write_leaves_the_old_file(work, tmp_path):
    root, _ = work
    out = tmp_path / "model.npz"
    out.write_bytes(b"the previous model")
    code, stderr = _start_and_signal(
        ["fit", root / "X.npy", "-k", 2, "--out", out], tmp_path, ".model.npz.*.tmp", signal.SIGTERM
    )
    assert code == 143, stderr
    assert "terminated; no output written" in stderr and "Traceback" not in stderr
    assert out.read_bytes() == b"the previous model"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.npz"]


def test_ctrl_c_during_streamed_output_leaves_no_file(fits, work, tmp_path):
    root, _ = work
    code, stderr = _start_and_signal(
        ["predict", fits[1][0], root / "X.npy", "--out", tmp_path / "labels.npy"],
        tmp_path,
        ".labels.npy.*.tmp",
        signal.SIGINT,
    )
    assert code == 130, stderr
    assert "interrupted; no output written" in stderr
    assert list(tmp_path.iterdir()) == [], stderr


def test_mclust_models_from_the_command_line(work, warmup):
    """``--models mclust`` prints the K x model table (our sign, R's noted), ``--criterion
    icl`` chooses by ICL, and ``fit`` takes mclust's names, 'hc', the noise and the prior."""
    import fastgmm

    root, X = work
    payload, proc = run_json(
        "select", root / "X.npy", "-k", "1:3", "--models", "mclust", "--init", "hc",
        "--criterion", "icl", "--reg-covar", 0, "--out", root / "mclust.npz",
    )  # fmt: skip
    _check_payload(payload, "select")
    assert len(payload["results"]) == 3 * 14
    assert payload["results"][0]["covariance_type"] == "EII"
    best = min((r for r in payload["results"] if r["icl"] is not None), key=lambda r: r["icl"])
    assert payload["model"]["covariance_type"] == best["covariance_type"]
    assert "R's mclust prints these values negated, higher is better" in proc.stderr
    assert "Best ICL values: " in proc.stderr
    mask = np.zeros(len(X), dtype=bool)
    mask[-N_ANOMALIES:] = True
    np.save(root / "mask.npy", mask)
    payload, _ = run_json(
        "fit", root / "X.npy", "-k", 2, "--covariance-type", "VEV", "--init", "hc",
        "--noise-init", root / "mask.npy", "--prior", "default", "--convergence", "mclust",
        "--out", root / "noise.npz",
    )  # fmt: skip
    _check_payload(payload, "fit")
    gm = fastgmm.load(root / "noise.npz")
    assert gm.covariance_type == "VEV" and gm.prior == "default"
    np.testing.assert_array_equal(gm.predict(X)[-N_ANOMALIES:], -1)
    proc = run("info", root / "noise.npz")
    assert "uniform noise, density 1/" in proc.stdout
