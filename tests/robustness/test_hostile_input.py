"""Hostile input to every public entry point (hypothesis).

Random shapes, dtypes, NaN/inf patterns, empty and huge values, wrong parameter types and
ranges. The only outcomes allowed: a correct result (a finite model, finite outputs), or a
ValueError/TypeError whose message names the problem. Never a Numba error, a crash, a hang, a
silent NaN or a warning other than ConvergenceWarning. Each case runs under a time limit.
"""

import contextlib
import io
import os
import warnings

import numba
import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st
from robust_helpers import (
    COVARIANCE_TYPES,
    assert_clean_error,
    assert_finite_model,
    only_convergence_warnings,
    time_limit,
)

from fastgmm import GaussianMixture
from fastgmm.sources import open_source

SETTINGS = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=True,  # CI must be reproducible; the seed sweep happens while developing
)
CASE_SECONDS = 120  # generous: the machine is shared, a hang is minutes

SPECIAL_VALUES = [np.nan, np.inf, -np.inf, 1e308, -1e308, 1e200, 5e-324, 1e-300, 0.0, 3.4e38]
DTYPES = [
    np.float64,
    np.float32,
    np.float16,
    np.int64,
    np.int32,
    np.uint8,
    np.bool_,
    np.complex128,
    object,
    "U3",
    "datetime64[s]",
]


@st.composite
def hostile_arrays(draw, *, min_rows=0, max_rows=30, max_cols=4, allow_odd=True):
    """Mostly 2-D numeric arrays; sometimes other dims, dtypes and containers."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    ndim = draw(st.sampled_from([2, 2, 2, 2, 1, 3, 0])) if allow_odd else 2
    n_rows = draw(st.integers(min_rows, max_rows))
    n_cols = draw(st.integers(0 if allow_odd else 1, max_cols))
    shape = {0: (), 1: (n_rows,), 2: (n_rows, n_cols), 3: (n_rows, n_cols, 2)}[ndim]
    scale = draw(st.sampled_from([1.0, 1e-8, 1e8, 1e150]))
    X = rng.normal(scale=scale, size=shape)
    if draw(st.booleans()) and X.size:  # special values at random places
        n_special = draw(st.integers(1, max(1, X.size // 3)))
        flat = X.reshape(-1)
        for _ in range(n_special):
            flat[rng.integers(X.size)] = draw(st.sampled_from(SPECIAL_VALUES))
    if draw(st.integers(0, 5)) == 0 and X.size:  # duplicated rows / constant data
        X[...] = X.reshape(-1)[0]
    dtype = (
        draw(st.sampled_from(DTYPES))
        if allow_odd
        else draw(st.sampled_from([np.float64, np.float32, np.int64]))
    )
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            X = X.astype(dtype)
        except (ValueError, TypeError, OverflowError):
            X = X.astype(np.float64)
    if not X.flags.c_contiguous or draw(st.integers(0, 4)) == 0:
        X = np.asfortranarray(X)
    container = (
        draw(st.sampled_from(["array"] * 6 + ["list", "sparse", "scalar"]))
        if (allow_odd)
        else "array"
    )
    if container == "list":
        return X.tolist()
    if container == "sparse" and X.ndim == 2 and X.dtype in (np.float64, np.float32, np.int64):
        return sp.csr_matrix(X)
    if container == "scalar":
        return draw(st.sampled_from([None, "data.csv", 3.0, {"a": 1}]))
    return X


PARAMETER_VALUES = {
    "n_components": [1, 2, 3, 0, -1, 2.5, "2", None, True, 10**6, np.int64(2)],
    "covariance_type": [*COVARIANCE_TYPES, "FULL", "", None, 1],
    "tol": [1e-3, 0.0, -1.0, np.nan, np.inf, "x", None],
    "reg_covar": [1e-6, 0.0, -1e-6, np.nan, np.inf, 1e300, 1e-300, "1e-6"],
    "max_iter": [100, 0, 1, -1, 2.0, None, 50],
    "n_init": [1, 2, 0, -1, 1.0],
    "init_params": ["kmeans", "k-means++", "random", "random_from_data", "kmeans++", None],
    "random_state": [0, None, -1, 2**40, "a", np.random.RandomState(0), 1.5],
    "n_jobs": [None, 1, 2, -1, 0, -100, 10**9, 1.5, "2"],
    "on_degenerate": ["raise", "reinit", "reg", "x", None],
    "warm_start": [False, True, "yes", 1],
    "verbose_interval": [10, 0, -1],
}


@st.composite
def hostile_params(draw):
    """Valid parameters, with one to three of them replaced by hostile values."""
    params = {"max_iter": 20}
    names = draw(st.sets(st.sampled_from(sorted(PARAMETER_VALUES)), min_size=0, max_size=3))
    for name in names:
        params[name] = draw(st.sampled_from(PARAMETER_VALUES[name]))
    if draw(st.integers(0, 4)) == 0:
        for name in draw(
            st.sets(st.sampled_from(["weights_init", "means_init", "precisions_init"]), min_size=1)
        ):
            params[name] = draw(hostile_arrays(min_rows=0, max_rows=4, max_cols=4))
    return params


@st.composite
def hostile_weights(draw, n_rows):
    kind = draw(
        st.sampled_from(
            ["none"] * 4 + ["random", "zeros", "negative", "nan", "inf", "short", "huge", "2d"]
        )
    )
    if kind == "none" or n_rows is None:
        return None
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    w = rng.uniform(0, 2, size=n_rows)
    if kind == "zeros":
        w[:] = 0
    elif kind == "negative" and n_rows:
        w[0] = -1
    elif kind == "nan" and n_rows:
        w[-1] = np.nan
    elif kind == "inf" and n_rows:
        w[0] = np.inf
    elif kind == "short":
        w = w[:-1]
    elif kind == "huge":
        w *= 1e300
    elif kind == "2d":
        w = w[:, None]
    return w


def _rows(X):
    shape = np.shape(X) if not sp.issparse(X) else X.shape
    return shape[0] if len(shape) >= 1 else None


def _outcome(exc=None):
    """Label the case for ``--hypothesis-show-statistics``: how deep did it get?"""
    event("ok" if exc is None else f"{type(exc).__name__}: {' '.join(str(exc).split()[:4])}")


def _check_outputs(gm, X):
    """Every inference method on ``X``: correct-looking output or a clean error."""
    for method in ("score_samples", "predict", "predict_proba", "score"):
        try:
            out = getattr(gm, method)(X)
        except (ValueError, TypeError) as exc:
            assert_clean_error(exc)
            continue
        out = np.asarray(out, dtype=np.float64)
        assert np.all(np.isfinite(out)), (method, out)
        if method == "predict_proba":
            np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-6)


# ------------------------------------------------------------------------------ estimator
@SETTINGS
@given(data=st.data())
def test_estimator_fit_and_methods(data):
    # Hostile data, hostile parameters, or both: each alone reaches deeper than the pair.
    mode = data.draw(st.sampled_from(["data", "params", "both"]), label="mode")
    if mode == "params":
        X = data.draw(hostile_arrays(min_rows=2, allow_odd=False), label="X")
    else:
        X = data.draw(hostile_arrays(), label="X")
    params = data.draw(hostile_params(), label="params") if mode != "data" else {}
    sample_weight = data.draw(hostile_weights(_rows(X)), label="sample_weight")
    # A string is a path to stream from: a missing file is a FileNotFoundError, as in Python.
    allowed = (
        (ValueError, TypeError, FileNotFoundError)
        if isinstance(X, str)
        else (ValueError, TypeError)
    )
    with time_limit(CASE_SECONDS), only_convergence_warnings():
        try:
            gm = GaussianMixture(**params).fit(X, sample_weight=sample_weight)
        except allowed as exc:
            assert_clean_error(exc, allowed=allowed)
            _outcome(exc)
            return
        _outcome()
        assert_finite_model(gm)
        other = data.draw(hostile_arrays(), label="X_predict")
        _check_outputs(gm, other)
        n_samples = data.draw(st.sampled_from([1, 5, 0, -3, 2.5, "3"]), label="n_samples")
        try:
            drawn, _ = gm.sample(n_samples)
        except (ValueError, TypeError) as exc:
            assert_clean_error(exc)
            assert not (isinstance(n_samples, int) and n_samples > 0), exc
        else:
            assert isinstance(n_samples, int), f"sample({n_samples!r}) was accepted"
            assert drawn.shape == (n_samples, gm.n_features_in_)
            assert np.all(np.isfinite(drawn))


@SETTINGS
@given(data=st.data())
def test_estimator_on_valid_shapes_with_hostile_values(data):
    """Fewer odd containers, more fits that get to run EM on extreme numbers."""
    X = data.draw(hostile_arrays(min_rows=2, allow_odd=False), label="X")
    n_components = data.draw(st.integers(1, 3), label="n_components")
    params = {
        "n_components": n_components,
        "covariance_type": data.draw(st.sampled_from(COVARIANCE_TYPES)),
        "reg_covar": data.draw(st.sampled_from([1e-6, 0.0, 1e-300, 1.0])),
        "init_params": data.draw(
            st.sampled_from(["kmeans", "k-means++", "random", "random_from_data"])
        ),
        "on_degenerate": data.draw(st.sampled_from(["raise", "reinit", "reg"])),
        "max_iter": 20,
        "random_state": 0,
    }
    with time_limit(CASE_SECONDS), only_convergence_warnings():
        try:
            gm = GaussianMixture(**params).fit(X)
        except (ValueError, TypeError) as exc:
            assert_clean_error(exc)
            _outcome(exc)
            return
        _outcome()
        assert_finite_model(gm)
        _check_outputs(gm, X)


# -------------------------------------------------------------------------------- sources
@st.composite
def chunk_factories(draw):
    """A zero-argument callable yielding hostile chunks (widths, dtypes, dims, NaN)."""
    odd = draw(st.booleans())
    chunks = draw(
        st.lists(
            hostile_arrays(min_rows=0, max_rows=8, max_cols=3, allow_odd=odd),
            min_size=0,
            max_size=4,
        )
    )
    if not odd and chunks:  # mostly one width, so that some streams are valid
        width = chunks[0].shape[1]
        chunks = [
            c if draw(st.integers(0, 5)) == 0 else np.resize(c, (len(c), width)) for c in chunks
        ]
    chunks = [c for c in chunks if isinstance(c, np.ndarray)]

    def factory():
        return iter([c.copy() for c in chunks])

    return factory, chunks


@SETTINGS
@given(data=st.data())
def test_open_source_on_arrays(data):
    X = data.draw(hostile_arrays(allow_odd=data.draw(st.booleans())), label="X")
    assume(isinstance(X, np.ndarray))
    batch_size = data.draw(st.sampled_from([None, None, None, 1, 3, 1000, 0, -2, 2.5, True, "4"]))
    with time_limit(CASE_SECONDS), only_convergence_warnings():
        try:
            source = open_source(X, batch_size=batch_size)
            result = source.to_array()
        except (ValueError, TypeError) as exc:
            assert_clean_error(exc)
            _outcome(exc)
            return
        _outcome()
    # A correct result: the same numbers, as float32 or float64, in the same order.
    assert X.ndim == 2 and X.shape[0] > 0
    assert result.dtype in (np.float32, np.float64)
    assert np.all(np.isfinite(result))
    np.testing.assert_array_equal(result, X.astype(result.dtype))


@SETTINGS
@given(data=st.data())
def test_open_source_on_callables_and_fit(data):
    factory, chunks = data.draw(chunk_factories(), label="chunks")
    with time_limit(CASE_SECONDS), only_convergence_warnings():
        try:
            source = open_source(factory, batch_size=data.draw(st.sampled_from([None, 2, 5])))
            result = source.to_array()
        except (ValueError, TypeError) as exc:
            assert_clean_error(exc)
            _outcome(exc)
            return
        _outcome()
        nonempty = [c for c in chunks if c.ndim == 2 and c.shape[0] > 0]
        np.testing.assert_array_equal(result, np.concatenate(nonempty).astype(result.dtype))
        assert np.all(np.isfinite(result))
        try:
            gm = GaussianMixture(2, max_iter=10, random_state=0).fit(source)
        except (ValueError, TypeError) as exc:
            assert_clean_error(exc)
            _outcome(exc)
            return
        _outcome()
        assert_finite_model(gm)


@pytest.mark.parametrize(
    "obj",
    [
        iter([np.zeros((2, 2))]),  # one-shot iterator
        lambda: np.zeros((3, 2)),  # returns an array instead of an iterator
        lambda: 5,  # returns a non-iterable
        object(),
        b"bytes",
        "/no/such/file.npy",
        "data.unknown_extension",
    ],
)
def test_open_source_refuses_non_sources(obj, tmp_path):
    with pytest.raises((ValueError, TypeError, FileNotFoundError)) as info:
        open_source(obj).to_array()
    assert len(str(info.value)) > 10
    assert "numba" not in str(info.value).lower()


# ------------------------------------------------------------------------------------ CLI
@pytest.fixture(scope="module")
def cli_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    X = np.random.default_rng(0).normal(size=(60, 2))
    np.save(root / "good.npy", X)
    bad = X.copy()
    bad[3, 1] = np.nan
    np.save(root / "nan.npy", bad)
    np.save(root / "one_d.npy", X[:, 0])
    (root / "text.csv").write_text("a,b\n1,x\n2,y\n")
    (root / "junk.npy").write_bytes(b"\x93NUMPY garbage")
    (root / "dir.npy").mkdir()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fastgmm import save

        save(GaussianMixture(2, random_state=0).fit(X), root / "model.npz")
    return root


# A valid invocation per command, as (positional inputs, options); the fuzz corrupts some of it.
CLI_VALID = {
    "fit": (["good.npy"], [["-k", "2"], ["--out", "fit.npz"], ["--max-iter", "20"]]),
    "select": (["good.npy"], [["-k", "1:2"], ["--out", "select.npz"], ["--max-iter", "10"]]),
    "predict": (["model.npz", "good.npy"], [["--out", "labels.npy"]]),
    "score": (["model.npz", "good.npy"], [["--out", "scores.npy"]]),
    "outliers": (["good.npy"], [["-k", "2"], ["--out", "flags.npy"], ["--max-iter", "10"]]),
    "sample": (["model.npz"], [["-n", "5"], ["--out", "drawn.npy"]]),
    "info": (["model.npz"], []),
}
CLI_INPUTS = [
    "good.npy",
    "nan.npy",
    "one_d.npy",
    "text.csv",
    "junk.npy",
    "dir.npy",
    "missing.npy",
    "model.npz",
    "good.npy:x",
    "text.csv",
]
CLI_OPTIONS = [
    ["-k", "0"],
    ["-k", "-1"],
    ["-k", "x"],
    ["-k", "3:1"],
    ["-k", "bic"],
    ["-k", "1000"],
    ["--covariance", "bogus"],
    ["--covariance", "diag"],
    ["--threads", "0"],
    ["--threads", "-1"],
    ["--threads", "x"],
    ["--threads", "1"],
    ["--reg-covar", "-1"],
    ["--reg-covar", "nan"],
    ["--reg-covar", "inf"],
    ["--max-iter", "-5"],
    ["--tol", "inf"],
    ["--batch-size", "0"],
    ["--batch-size", "7"],
    ["-n", "-3"],
    ["-n", "0"],
    ["-n", "2.5"],
    ["--seed", "x"],
    ["--contamination", "2"],
    ["--contamination", "0.1"],
    ["--dtype", "int8"],
    ["--dtype", "float32"],
    ["--json"],
    ["--quiet"],
    ["--strict"],
    ["--nope"],
    ["--columns", "a,b"],
    ["--n-init", "0"],
    ["--criterion", "aic"],
]


@settings(
    max_examples=30,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_cli_never_crashes(cli_files, data):
    from fastgmm.cli import main

    command = data.draw(st.sampled_from(sorted(CLI_VALID)), label="command")
    inputs, options = CLI_VALID[command]
    inputs = list(inputs)
    options = [list(o) for o in options]
    for option in options:
        if option[0] == "--out":
            option[1] = str(cli_files / option[1])
    # Zero to two corruptions of a valid invocation: deeper paths than random token soup.
    extra = []
    for corruption in data.draw(
        st.lists(st.sampled_from(["input", "option", "drop"]), max_size=2), label="corruptions"
    ):
        if corruption == "input" and inputs:
            inputs[data.draw(st.integers(0, len(inputs) - 1))] = data.draw(
                st.sampled_from(CLI_INPUTS)
            )
        elif corruption == "option":
            extra.append(data.draw(st.sampled_from(CLI_OPTIONS)))
        elif corruption == "drop" and options:
            options.pop(data.draw(st.integers(0, len(options) - 1)))
    argv = [command, *(str(cli_files / name) for name in inputs)]
    for option in options + extra:
        argv.extend(option)
    environment = dict(os.environ)
    threads = numba.get_num_threads()
    stdout, stderr = io.StringIO(), io.StringIO()
    try:
        with (
            time_limit(CASE_SECONDS),
            only_convergence_warnings(),
            contextlib.redirect_stdout(stdout),
            contextlib.redirect_stderr(stderr),
        ):
            code = main(argv)
    finally:
        os.environ.clear()
        os.environ.update(environment)
        numba.set_num_threads(threads)
    errors = stderr.getvalue()
    event(f"exit {code}: {' '.join(errors.split()[:5])}")
    assert code in (0, 1, 2, 3), (argv, code, errors)
    assert "Traceback" not in errors, (argv, errors)
    if code in (1, 2):
        assert errors.strip(), f"exit {code} without a message: {argv}"
        assert "numba" not in errors.lower() or "NUMBA_" in errors, errors


def test_float64_chunk_beyond_float32_range_after_a_float32_first_chunk():
    # Found by the fuzz: the later chunk was cast to the source's float32 with a NumPy overflow
    # warning, then reported as "NaN or infinity" although the input held neither.
    def chunks():
        return iter([np.array([[0.125]], dtype=np.float32), np.array([[1.25e149]])])

    with only_convergence_warnings(), pytest.raises(ValueError, match="beyond the float32") as info:
        open_source(chunks).to_array()
    assert_clean_error(info.value)
    assert "chunk 1" in str(info.value)
