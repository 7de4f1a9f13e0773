"""Out-of-core fitting and scoring through sources, and online EM (fastgmm.streaming)."""

import warnings

import numpy as np
import pytest
from conftest import COVARIANCE_TYPES, initial_parameters, make_mixture_data
from sklearn.exceptions import ConvergenceWarning

from fastgmm import GaussianMixture, open_source
from fastgmm.estep import chunk_statistics
from fastgmm.providers import ArrayChunks, ChunkedProvider
from fastgmm.stats import DIAG, FULL, POOLED, SufficientStats
from fastgmm.streaming import (
    OnlineEM,
    SourceChunks,
    blend,
    normalised,
    release_pages,
    reshift,
)

N, D, K = 1500, 3, 3
BATCH = 400  # several chunks, the last one short
INIT_METHODS = ("kmeans", "k-means++", "random", "random_from_data")


@pytest.fixture(scope="module")
def X():
    return make_mixture_data(n_samples=N, n_features=D, n_components=K, seed=5)[0]


def _fit(data, **params):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return GaussianMixture(K, **{"tol": 0, "max_iter": 8, **params}).fit(data)


def _assert_same_model(a, b, rtol):
    for name in ("weights_", "means_", "covariances_", "precisions_cholesky_"):
        if rtol == 0:
            np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
        else:
            # Relative to the largest entry: a covariance's near-zero entries carry its scale.
            expected = getattr(b, name)
            np.testing.assert_allclose(
                getattr(a, name),
                expected,
                rtol=rtol,
                atol=rtol * np.max(np.abs(expected)),
                err_msg=name,
            )
    if rtol == 0:
        assert a.lower_bounds_ == b.lower_bounds_
    else:
        np.testing.assert_allclose(a.lower_bounds_, b.lower_bounds_, rtol=rtol)
    assert a.n_iter_ == b.n_iter_


# ------------------------------------------------------------------ files of every format
def _write(fmt, X, path):
    """Write ``X`` in format ``fmt`` under ``path``; return what open_source/fit accepts."""
    if fmt == "npy":
        np.save(path / "x.npy", X)
        return str(path / "x.npy")
    if fmt == "npz":
        np.savez(path / "x.npz", X=X, other=np.zeros(3))
        return str(path / "x.npz") + ":X"
    if fmt == "hdf5":
        h5py = pytest.importorskip("h5py")
        with h5py.File(path / "x.h5", "w") as f:
            f.create_dataset("train/X", data=X, chunks=(128, X.shape[1]))
        return str(path / "x.h5") + ":/train/X"
    if fmt == "zarr":
        zarr = pytest.importorskip("zarr")
        arr = zarr.create_array(
            path / "x.zarr", shape=X.shape, chunks=(128, X.shape[1]), dtype="f8"
        )
        arr[:] = X
        return str(path / "x.zarr")
    if fmt == "parquet":
        pa = pytest.importorskip("pyarrow")
        pq = pytest.importorskip("pyarrow.parquet")
        table = pa.table({f"x{j}": X[:, j] for j in range(X.shape[1])})
        pq.write_table(table, path / "x.parquet", row_group_size=300)
        return str(path / "x.parquet")
    if fmt == "csv":
        header = ",".join(f"x{j}" for j in range(X.shape[1]))
        np.savetxt(path / "x.csv", X, delimiter=",", header=header, comments="", fmt="%.17g")
        return str(path / "x.csv")
    assert fmt == "callable"

    def chunks():
        for start in range(0, len(X), 333):
            yield X[start : start + 333]

    return chunks


FORMATS = ("npy", "npz", "hdf5", "zarr", "parquet", "csv", "callable")


@pytest.mark.parametrize("fmt", FORMATS)
def test_fit_from_every_format_equals_in_memory_fit(tmp_path, X, fmt):
    source = _write(fmt, X, tmp_path)
    init = initial_parameters(X, K, "full")
    memory = _fit(X, **init)
    streamed = _fit(open_source(source, batch_size=BATCH), **init)
    _assert_same_model(streamed, memory, rtol=1e-10)
    assert streamed.n_features_in_ == D
    # The fitted model scores the file like the array.
    np.testing.assert_allclose(streamed.score_samples(source), memory.score_samples(X), rtol=1e-10)


@pytest.mark.parametrize("init_params", INIT_METHODS)
def test_same_chunks_give_a_bit_identical_model(tmp_path, X, init_params):
    np.save(tmp_path / "x.npy", X)
    params = dict(init_params=init_params, random_state=7)
    memory = _fit(X, **params)
    # One chunk: exactly the kernel calls of the in-memory fit.
    whole = _fit(open_source(tmp_path / "x.npy", batch_size=N), **params)
    if init_params in ("k-means++", "random_from_data"):
        # In memory these draw scikit-learn's rows (random indexing); a stream, which cannot
        # be indexed, draws them from a uniform sample: the starts differ by design.
        assert not np.array_equal(whole.means_, memory.means_)
        memory = whole
    _assert_same_model(whole, memory, rtol=0)
    # Several chunks: a memory-mapped file and a generator cut at the same rows agree bit for
    # bit, and both agree with the in-memory fit up to the rounding of the chunked sums.
    from_file = _fit(open_source(tmp_path / "x.npy", batch_size=BATCH), **params)

    def chunks():
        for start in range(0, N, BATCH):
            yield X[start : start + BATCH].copy()

    from_generator = _fit(chunks, **params)
    _assert_same_model(from_file, from_generator, rtol=0)
    _assert_same_model(from_file, memory, rtol=1e-10)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_streamed_fit_for_every_covariance_type(X, covariance_type):
    memory = _fit(X, covariance_type=covariance_type, random_state=1)
    streamed = _fit(
        open_source(X, batch_size=BATCH), covariance_type=covariance_type, random_state=1
    )
    _assert_same_model(streamed, memory, rtol=1e-10)


def test_float32_file(tmp_path, X):
    X32 = X.astype(np.float32)
    np.save(tmp_path / "x32.npy", X32)
    memory = _fit(X32, random_state=0)
    streamed = _fit(open_source(tmp_path / "x32.npy", batch_size=BATCH), random_state=0)
    assert streamed.means_.dtype == np.float32
    # float32 rows are multiplied in single precision within each block, and the file's chunks
    # cut the blocks elsewhere than the in-memory array: the two round differently.
    _assert_same_model(streamed, memory, rtol=1e-5)


def test_initial_sample_is_the_sources_reservoir_sample(X):
    source = open_source(X, batch_size=BATCH)
    for size in (5, 200, N, 2 * N):
        rows, weights, indices = SourceChunks(source).sample_rows(size, np.random.RandomState(size))
        expected_rows, expected_indices = source.reservoir_sample(size, random_state=size)
        np.testing.assert_array_equal(indices, expected_indices)
        np.testing.assert_array_equal(rows, expected_rows)
        assert weights is None
        # An in-memory array (one chunk, keys drawn in blocks) gets the same sample.
        _, _, in_memory = ArrayChunks(X).sample_rows(size, np.random.RandomState(size))
        np.testing.assert_array_equal(in_memory, expected_indices)
        assert len(indices) == min(size, N)


def test_sample_carries_the_weights_of_its_rows(X):
    weights = np.arange(N, dtype=float)
    rows, sampled_weights, indices = ArrayChunks(X, weights).sample_rows(
        100, np.random.RandomState(0)
    )
    np.testing.assert_array_equal(sampled_weights, indices.astype(float))
    np.testing.assert_array_equal(rows, X[indices])


class _Chunks(ChunkedProvider):
    """A chunk provider over ``X`` in ``batch``-row chunks that may hide its row count."""

    def __init__(self, X, batch, count_known):
        self.X, self.batch = X, batch
        self.n_features, self.dtype = X.shape[1], X.dtype
        self.n_samples = len(X) if count_known else None

    def chunks(self):
        empty = np.empty(0)
        for start in range(0, len(self.X), self.batch):
            yield start, self.X[start : start + self.batch], empty


@pytest.mark.parametrize("make_rng", [np.random.RandomState, np.random.default_rng])
def test_sample_with_a_starting_threshold_is_the_unguided_sample(make_rng):
    """Knowing the row count lets the scan skip rows early; the sample must not change."""
    from fastgmm._reservoir import sample

    X = np.random.default_rng(0).normal(size=(20_000, 3))
    unguided_rng, guided_rng, fallback_rng = make_rng(5), make_rng(5), make_rng(5)
    unguided = _Chunks(X, 3001, False).sample_rows(700, unguided_rng)
    guided = _Chunks(X, 3001, True).sample_rows(700, guided_rng)
    # A starting threshold far too low (negative margin): the scan runs again without it.
    data = _Chunks(X, 3001, True)
    fallback = sample(
        data.chunks, 700, fallback_rng, n_features=3, dtype=X.dtype, n_rows=20_000, margin=-50
    )
    for result in (guided, fallback):
        np.testing.assert_array_equal(result[2], unguided[2])
        np.testing.assert_array_equal(result[0], X[unguided[2]])
    # Every variant consumed exactly one key per row from the random stream.
    follow = unguided_rng.random()
    assert guided_rng.random() == follow and fallback_rng.random() == follow


def test_init_sample_is_used_and_validated(X):
    small = _fit(X, random_state=3, init_sample=K, max_iter=0)
    large = _fit(X, random_state=3, max_iter=0)
    # k-means++ on exactly K rows puts the centres on those rows: the start differs.
    assert not np.allclose(small.means_, large.means_)
    with pytest.raises(ValueError, match="init_sample=2 is smaller than n_components=3"):
        _fit(X, init_sample=2)
    with pytest.raises(ValueError, match="init_sample"):
        GaussianMixture(K, init_sample=0).fit(X)


def test_every_row_contributes(X):
    source = open_source(X, batch_size=BATCH)
    model = _fit(X, random_state=0)
    params = model._current_params()
    request = model._make_fitter(np.float64).request(params)
    [stats] = SourceChunks(source).collect([request])
    assert stats.n_rows == N
    assert stats.weight_sum == N
    assert stats.nk.sum() == pytest.approx(N, rel=1e-12)


def test_fit_predict_score_bic_on_a_source(tmp_path, X):
    path = _write("npy", X, tmp_path)
    memory = _fit(X, random_state=2)
    model = GaussianMixture(K, tol=0, max_iter=8, random_state=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        labels = model.fit_predict(path)
    np.testing.assert_array_equal(labels, memory.predict(X))
    np.testing.assert_array_equal(model.predict(path), memory.predict(X))
    np.testing.assert_allclose(model.predict_proba(path), memory.predict_proba(X), rtol=1e-9)
    assert model.score(path) == pytest.approx(memory.score(X), rel=1e-12)
    assert model.bic(path) == pytest.approx(memory.bic(X), rel=1e-12)
    assert model.aic(path) == pytest.approx(memory.aic(X), rel=1e-12)


# ----------------------------------------------------------------------------- out= outputs
@pytest.mark.parametrize("streamed", [False, True])
def test_outputs_written_to_npy_files(tmp_path, X, streamed):
    model = _fit(X, random_state=0)
    data = open_source(X, batch_size=BATCH) if streamed else X
    for method, dtype, shape in (
        ("score_samples", np.float64, (N,)),
        ("predict_proba", np.float64, (N, K)),
        ("predict", np.int64, (N,)),
    ):
        expected = getattr(model, method)(X)
        path = tmp_path / f"{method}.npy"
        written = getattr(model, method)(data, out=path)
        assert isinstance(written, np.memmap)
        del written
        stored = np.load(path)
        assert stored.dtype == dtype and stored.shape == shape
        np.testing.assert_array_equal(stored, expected)


def test_outputs_written_into_arrays(X):
    model = _fit(X, random_state=0)
    source = open_source(X, batch_size=BATCH)
    out = np.empty((N, K))
    assert model.predict_proba(source, out=out) is out
    np.testing.assert_array_equal(out, model.predict_proba(X))
    labels = np.empty(N, dtype=np.int32)  # cast chunk by chunk
    model.predict(X, out=labels)
    np.testing.assert_array_equal(labels, model.predict(X))
    scores = np.empty(2 * N)[::2]  # not contiguous: written through a scratch buffer
    model.score_samples(source, out=scores)
    np.testing.assert_array_equal(scores, model.score_samples(X))


def test_output_errors(tmp_path, X):
    model = _fit(X, random_state=0)
    with pytest.raises(ValueError, match=r"out has shape \(10,\).*shape \(1500,\)"):
        model.score_samples(X, out=np.empty(10))
    with pytest.raises(TypeError, match="cannot hold the float64 values of predict_proba"):
        model.predict_proba(open_source(X), out=np.empty((N, K), dtype=np.int64))
    with pytest.raises(TypeError, match="out must be None, a path"):
        model.predict(X, out=[0] * N)
    with pytest.raises(FileNotFoundError, match="no such directory"):
        model.predict(X, out=tmp_path / "missing" / "labels.npy")
    read_only = np.empty(N)
    read_only.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        model.score_samples(X, out=read_only)


def test_output_of_a_source_of_unknown_length(tmp_path, X):
    path = _write("csv", X, tmp_path)
    model = _fit(X, random_state=0)
    assert open_source(path).n_samples is None
    model.predict(path, out=tmp_path / "labels.npy")
    np.testing.assert_array_equal(np.load(tmp_path / "labels.npy"), model.predict(X))
    np.testing.assert_allclose(model.score_samples(path), model.score_samples(X), rtol=1e-12)


def test_memory_mapped_chunks_are_copied_and_released(tmp_path, X):
    np.save(tmp_path / "x.npy", X)
    data = SourceChunks(open_source(tmp_path / "x.npy", batch_size=BATCH))
    pieces = []
    for offset, chunk, weights in data.chunks():
        assert chunk.flags.writeable and chunk.flags.c_contiguous
        assert weights.size == 0
        pieces.append((offset, chunk.copy()))
    np.testing.assert_array_equal(np.concatenate([c for _, c in pieces]), X)
    assert [o for o, _ in pieces] == list(range(0, N, BATCH))


def test_release_pages_keeps_file_contents(tmp_path):
    mapped = np.lib.format.open_memmap(tmp_path / "o.npy", mode="w+", dtype=float, shape=(5000,))
    mapped[:] = np.arange(5000.0)
    assert release_pages(mapped[1000:3000])  # written pages of a shared mapping: not lost
    np.testing.assert_array_equal(mapped, np.arange(5000.0))
    del mapped
    np.testing.assert_array_equal(np.load(tmp_path / "o.npy"), np.arange(5000.0))
    assert not release_pages(np.arange(10.0))  # ordinary memory: nothing to do


# ------------------------------------------------------------------------------- bad input
def test_non_finite_chunk_is_located_through_fit(tmp_path, X):
    bad = X.copy()
    bad[1000, 2] = np.nan
    np.save(tmp_path / "bad.npy", bad)
    with pytest.raises(ValueError, match=r"NaN or infinity in chunk 2 \(rows 800\.\.1199\)"):
        GaussianMixture(K).fit(open_source(tmp_path / "bad.npy", batch_size=BATCH))


def test_wrong_columns_and_non_numeric_data(tmp_path, X):
    def ragged():
        yield X[:500]
        yield X[500:, :2]

    with pytest.raises(ValueError, match=r"chunk 1 \(row offset 500\).*2 columns; expected 3"):
        GaussianMixture(K).fit(ragged)
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    pq.write_table(pa.table({"a": X[:, 0], "name": ["x"] * N}), tmp_path / "mixed.parquet")
    with pytest.raises(TypeError, match=r"column 'name'.*non-numeric"):
        GaussianMixture(K).fit(str(tmp_path / "mixed.parquet"))
    with pytest.raises(ValueError, match=r"column\(s\) \['nope'\] not found"):
        GaussianMixture(K).fit(open_source(tmp_path / "mixed.parquet", columns=["nope"]))


def test_missing_and_empty_sources(tmp_path, X):
    with pytest.raises(FileNotFoundError, match="no such file"):
        GaussianMixture(K).fit(str(tmp_path / "absent.npy"))
    h5py = pytest.importorskip("h5py")
    with h5py.File(tmp_path / "x.h5", "w") as f:
        f.create_dataset("X", data=X)
    with pytest.raises(ValueError, match="no dataset 'Y'"):
        GaussianMixture(K).fit(str(tmp_path / "x.h5") + ":Y")
    with pytest.raises(ValueError, match="empty"):
        GaussianMixture(K).fit(lambda: iter([np.empty((0, 3))]))
    with pytest.raises(ValueError, match="Expected n_samples >= n_components"):
        GaussianMixture(K).fit(open_source(X[:2]))
    with pytest.raises(ValueError, match="minimum of 2 is required"):
        GaussianMixture(1).fit(lambda: iter([X[:1]]))


def test_one_shot_generator_asks_for_a_callable(X):
    with pytest.raises(TypeError, match="zero-argument callable"):
        GaussianMixture(K).fit(iter([X]))


def test_rows_changing_between_passes_is_an_error(X):
    calls = []

    def shrinking():
        calls.append(1)
        yield X[: N - 10 * len(calls)]

    with pytest.raises(ValueError, match="rows were lost or added between passes"):
        _fit(shrinking, random_state=0)


def test_sample_weight_is_refused_for_sources(X):
    with pytest.raises(ValueError, match="sample_weight is not supported"):
        GaussianMixture(K).fit(open_source(X), sample_weight=np.ones(N))


def test_feature_count_mismatch_at_predict(tmp_path, X):
    model = _fit(X, random_state=0)
    np.save(tmp_path / "wide.npy", np.zeros((10, D + 1)))
    for method in ("predict", "predict_proba", "score_samples", "score"):
        with pytest.raises(
            ValueError, match="X has 4 features, but GaussianMixture is expecting 3"
        ):
            getattr(model, method)(str(tmp_path / "wide.npy"))


def test_source_fit_forgets_feature_names(X):
    pd = pytest.importorskip("pandas")
    model = _fit(pd.DataFrame(X, columns=["a", "b", "c"]), random_state=0)
    assert hasattr(model, "feature_names_in_")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(open_source(X))
    assert not hasattr(model, "feature_names_in_")
    assert model.n_features_in_ == D


# ------------------------------------------------------------------------------ online EM
def _moments(X, resp, shift, kind):
    """Statistics about ``shift`` computed directly in NumPy (the oracle for reshift)."""
    diff = X[None, :, :] - shift[:, None, :]  # (K, N, D)
    nk = resp.sum(axis=0)
    s1 = np.einsum("nk,knd->kd", resp, diff)
    if kind == FULL:
        s2 = np.einsum("nk,knd,kne->kde", resp, diff, diff)
    elif kind == POOLED:
        s2 = np.einsum("nk,knd,kne->de", resp, diff, diff)[None]
    else:
        s2 = np.einsum("nk,knd->kd", resp, diff**2)[:, None, :]
    return SufficientStats(nk, s1, s2, kind, shift, 0.0, float(len(X)), len(X))


@pytest.mark.parametrize("kind", [FULL, DIAG, POOLED])
def test_reshift_is_exact(X, kind):
    rng = np.random.default_rng(0)
    resp = rng.dirichlet(np.ones(K), size=N)
    a = rng.normal(size=(K, D))
    b = a + 100.0 + rng.normal(size=(K, D))
    moved = reshift(_moments(X, resp, a, kind), b)
    direct = _moments(X, resp, b, kind)
    np.testing.assert_array_equal(moved.shift, b)
    np.testing.assert_array_equal(moved.nk, direct.nk)
    np.testing.assert_allclose(moved.s1, direct.s1, rtol=1e-11)
    np.testing.assert_allclose(moved.s2, direct.s2, rtol=1e-11)
    # Only the upper triangle of a full or pooled s2 is read (the kernels' layout).
    upper_only = _moments(X, resp, a, kind)
    if kind != DIAG:
        upper_only.s2 = np.triu(upper_only.s2)
    np.testing.assert_allclose(reshift(upper_only, b).s2, direct.s2, rtol=1e-11)
    with pytest.raises(ValueError, match="different shifts"):
        blend(normalised(direct), normalised(_moments(X, resp, a, kind)), 0.5)


def test_online_update_is_the_documented_blend(X):
    init = initial_parameters(X, K, "full")
    model = GaussianMixture(K, **init)
    fitter = model._make_fitter(np.float64)
    first = model._start(ArrayChunks(X), fitter, np.random.RandomState(0), 1, 1e-6)
    online = OnlineEM(first, fitter)
    a, b = X[:700], X[700:]
    online.update(a, np.empty(0))
    params_after_a = online.params
    stats_a = online.stats
    online.update(b, np.empty(0))
    request = fitter.request(params_after_a)
    chunk_b = normalised(
        chunk_statistics(b, np.empty(0), request.layout, request.shift, request.kind)
    )
    gamma = 2.0**-0.6
    assert online.step_size(1) == pytest.approx(gamma)
    expected = reshift(stats_a, chunk_b.shift)
    np.testing.assert_allclose(
        online.stats.s2, (1 - gamma) * expected.s2 + gamma * chunk_b.s2, rtol=1e-13
    )
    np.testing.assert_allclose(
        online.stats.nk, (1 - gamma) * expected.nk + gamma * chunk_b.nk, rtol=1e-13
    )
    assert online.stats.n_rows == N
    assert online.lower_bounds[1] == pytest.approx(chunk_b.log_lik)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_partial_fit_converges_close_to_batch_em(covariance_type):
    X, _ = make_mixture_data(n_samples=3000, n_features=3, n_components=3, seed=11)
    batch = GaussianMixture(3, covariance_type=covariance_type, random_state=0, tol=1e-6).fit(X)
    online = GaussianMixture(3, covariance_type=covariance_type, random_state=0)
    chunks = np.array_split(np.random.default_rng(1).permutation(X), 10)
    for _ in range(3):
        for chunk in chunks:
            online.partial_fit(chunk)
    assert online.n_iter_ == 30 and not online.converged_
    assert len(online.lower_bounds_) == 30
    batch_score, online_score = batch.score(X), online.score(X)
    assert abs(online_score - batch_score) <= 0.01 * abs(batch_score)


def test_partial_fit_accepts_float32_chunks():
    X, _ = make_mixture_data(n_samples=2000, n_features=3, n_components=2, seed=4)
    chunks = np.array_split(X, 8)
    as64 = GaussianMixture(2, random_state=0)
    as32 = GaussianMixture(2, random_state=0)
    for chunk in chunks:
        as64.partial_fit(chunk)
        as32.partial_fit(chunk.astype(np.float32))
    assert as32.means_.dtype == np.float32
    np.testing.assert_allclose(as32.means_, as64.means_, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(as32.covariances_, as64.covariances_, rtol=1e-3, atol=1e-4)
    # Mixed dtypes continue one model: the state stays float64 between calls.
    as32.partial_fit(chunks[0])
    assert as32.means_.dtype == np.float64


def test_partial_fit_after_fit_takes_one_em_step(X):
    init = initial_parameters(X, K, "full")
    fitted = _fit(X, **init)
    longer = GaussianMixture(K, tol=0, max_iter=9, **init)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        longer.fit(X)
    # The first chunk after fit is taken whole (step 1): one EM iteration on all of X.
    fitted.partial_fit(X)
    np.testing.assert_allclose(fitted.means_, longer.means_, rtol=1e-10)
    np.testing.assert_allclose(fitted.covariances_, longer.covariances_, rtol=1e-9)
    assert fitted.lower_bound_ == pytest.approx(longer.lower_bound_, rel=1e-12)
    # A full fit starts afresh.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        fitted.fit(X)
    assert fitted._online is None


def test_partial_fit_sample_weight_equals_duplicated_rows(X):
    init = initial_parameters(X, K, "diag")
    weights = np.random.default_rng(0).integers(1, 3, size=N)
    weighted = GaussianMixture(K, covariance_type="diag", **init)
    duplicated = GaussianMixture(K, covariance_type="diag", **init)
    for part in np.array_split(np.arange(N), 3):
        weighted.partial_fit(X[part], sample_weight=weights[part])
        duplicated.partial_fit(np.repeat(X[part], weights[part], axis=0))
    np.testing.assert_allclose(weighted.means_, duplicated.means_, rtol=1e-10)
    np.testing.assert_allclose(weighted.covariances_, duplicated.covariances_, rtol=1e-10)


def test_partial_fit_errors(X):
    with pytest.raises(ValueError, match=r"first chunk given to partial_fit.*n_samples = 2"):
        GaussianMixture(K).partial_fit(X[:2])
    model = GaussianMixture(K, random_state=0).partial_fit(X[:500])
    with pytest.raises(ValueError, match="X has 2 features, but GaussianMixture is expecting 3"):
        model.partial_fit(X[:100, :2])
    with pytest.raises(ValueError, match="at least one non-zero"):
        model.partial_fit(X[:100], sample_weight=np.zeros(100))
    bad = X[:100].copy()
    bad[3, 0] = np.inf
    with pytest.raises(ValueError, match="first is row 3"):
        model.partial_fit(bad)
    with pytest.raises(ValueError, match="learning_decay"):
        GaussianMixture(K, learning_decay=0.5).partial_fit(X)
    with pytest.raises(ValueError, match="learning_offset"):
        GaussianMixture(K, learning_offset=-1.0).partial_fit(X)
