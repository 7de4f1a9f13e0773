"""Corrupted files: random bytes, truncations and bit flips (hypothesis).

``fastgmm.load`` and the file sources must refuse a damaged file with a clean error, or read
it (a flipped bit inside a number is just another number), and never crash, hang or hand back a
model with NaN parameters. Each case runs under a time limit.
"""

import functools
import io
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from robust_helpers import assert_clean_error, assert_finite_model, time_limit

from fastgmm import GaussianMixture, load, save
from fastgmm.sources import open_source

FUZZ = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
CASE_SECONDS = 60


@st.composite
def corruptions(draw, original: bytes):
    """The original bytes truncated, bit-flipped, overwritten, or replaced by random bytes."""
    kind = draw(st.sampled_from(["truncate", "flip", "flip", "overwrite", "random", "append"]))
    data = bytearray(original)
    if kind == "truncate":
        data = data[: draw(st.integers(0, len(data) - 1))]
    elif kind == "flip":
        for _ in range(draw(st.integers(1, 8))):
            position = draw(st.integers(0, len(data) - 1))
            data[position] ^= 1 << draw(st.integers(0, 7))
    elif kind == "overwrite":
        start = draw(st.integers(0, len(data) - 1))
        junk = draw(st.binary(min_size=1, max_size=64))
        data[start : start + len(junk)] = junk
    elif kind == "random":
        data = bytearray(draw(st.binary(min_size=0, max_size=2048)))
    else:
        data += draw(st.binary(min_size=1, max_size=64))
    event(kind)
    return bytes(data)


# Module-level caches rather than fixtures: hypothesis prints a failing case's arguments, and
# kilobytes of file content would bury the message.
@functools.cache
def _fitted():
    X = np.random.default_rng(0).normal(size=(80, 2))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return GaussianMixture(2, covariance_type="full", random_state=0).fit(X), X


@functools.cache
def _model_bytes(directory):
    path = directory / "model.npz"
    save(_fitted()[0], path)
    return path.read_bytes()


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("model")


# ---------------------------------------------------------------------------- model files
@FUZZ
@given(data=st.data())
def test_load_refuses_or_reads_corrupted_model_files(model_dir, tmp_path, data):
    corrupted = data.draw(corruptions(_model_bytes(model_dir)), label="bytes")
    path = tmp_path / "corrupted.npz"
    path.write_bytes(corrupted)
    with time_limit(CASE_SECONDS), warnings.catch_warnings():
        warnings.simplefilter("error")  # a damaged file must not slip through with a warning
        try:
            model = load(path)
        except (ValueError, TypeError) as exc:
            assert_clean_error(exc)
            event("refused")
            return
    event("loaded")
    # Whatever was loaded must be a working model: finite parameters, finite outputs.
    assert_finite_model(model)
    X = _fitted()[1]
    assert np.all(np.isfinite(model.score_samples(X)))


def test_intact_model_file_loads_to_the_same_model(model_dir, tmp_path):
    fitted = _fitted()
    path = tmp_path / "intact.npz"
    path.write_bytes(_model_bytes(model_dir))
    model = load(path)
    np.testing.assert_array_equal(model.means_, fitted[0].means_)
    np.testing.assert_array_equal(
        model.score_samples(fitted[1]), fitted[0].score_samples(fitted[1])
    )


# ---------------------------------------------------------------------------- input files
def _writers():
    """Writers of each supported input format: (suffix, write(path, X), open(path))."""

    def npy(path, X):
        np.save(path, X)

    def npz(path, X):
        np.savez(path, X=X)

    def csv(path, X):
        buffer = io.StringIO()
        np.savetxt(buffer, X, delimiter=",", header="a,b,c", comments="")
        path.write_text(buffer.getvalue())

    def parquet(path, X):
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.table({name: X[:, j] for j, name in enumerate("abc")}), path)

    def hdf5(path, X):
        import h5py

        with h5py.File(path, "w") as f:
            f.create_dataset("X", data=X)

    return {".npy": npy, ".npz": npz, ".csv": csv, ".parquet": parquet, ".h5": hdf5}


WRITERS = _writers()


@functools.cache
def _input_bytes(directory, suffix):
    path = directory / f"data{suffix}"
    WRITERS[suffix](path, np.random.default_rng(1).normal(size=(50, 3)))
    return path.read_bytes()


@pytest.fixture(scope="module")
def input_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("inputs")


@pytest.mark.parametrize("suffix", sorted(WRITERS))
@settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_sources_refuse_or_read_corrupted_input_files(input_dir, tmp_path, suffix, data):
    corrupted = data.draw(corruptions(_input_bytes(input_dir, suffix)), label="bytes")
    path = tmp_path / f"corrupted{suffix}"
    path.write_bytes(corrupted)
    with time_limit(CASE_SECONDS), warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            rows = open_source(str(path), batch_size=16).to_array()
        except (ValueError, TypeError) as exc:
            assert_clean_error(exc)
            assert str(path) in str(exc), exc  # the message names the file
            event("refused")
            return
    event("read")
    # A readable file gives finite rows of the declared width (validation ran on every chunk).
    assert rows.ndim == 2 and rows.shape[0] > 0
    assert np.all(np.isfinite(rows))
