"""The Dask engine against the in-memory fit, on a two-process LocalCluster on loopback.

One cluster serves the whole module (starting worker processes costs seconds). Data are small
(2,000 x 3 rows in blocks of 500) and built with ``da.from_array`` so that Dask can recompute
any block a lost worker held.
"""

import os
import signal
import threading
import time
import warnings

import dask
import dask.array as da
import numpy as np
import pytest
from conftest import COVARIANCE_TYPES, initial_parameters, make_mixture_data
from dask.array.core import PerformanceWarning
from distributed import Client, LocalCluster
from sklearn.exceptions import ConvergenceWarning

from fastgmm import GaussianMixture
from fastgmm.covariance import get_model
from fastgmm.distributed import DaskChunks, as_dask_chunks, is_dask_array
from fastgmm.em import MaximumLikelihood
from fastgmm.init import initial_params
from fastgmm.streaming import SourceChunks

N_SAMPLES, N_FEATURES, BLOCK = 2000, 3, 500
FITTED = ("weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_")


@pytest.fixture(scope="module")
def X():
    return np.ascontiguousarray(make_mixture_data(N_SAMPLES, N_FEATURES, seed=7)[0])


@pytest.fixture(scope="module")
def client():
    cluster = LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
    )
    with cluster, Client(cluster) as c:
        yield c


def _quiet_fit(estimator, X, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return estimator.fit(X, **kwargs)


def _rel(a, b):
    a, b = np.asarray(a, float), np.asarray(b, float)
    return np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300)


def _assert_same_fit(ours, expected, rtol=1e-10):
    for name in FITTED:
        assert _rel(getattr(ours, name), getattr(expected, name)) < rtol, name
    np.testing.assert_allclose(ours.lower_bounds_, expected.lower_bounds_, rtol=rtol)
    assert ours.n_iter_ == expected.n_iter_
    assert ours.converged_ == expected.converged_
    assert ours.n_features_in_ == expected.n_features_in_


def _assert_identical_fit(a, b):
    for name in FITTED:
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    assert a.lower_bounds_ == b.lower_bounds_


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("init", ["explicit", "kmeans"])
def test_fit_equals_in_memory(client, X, covariance_type, init):
    kwargs = dict(covariance_type=covariance_type, tol=0, max_iter=15, random_state=3)
    if init == "explicit":
        kwargs.update(initial_parameters(X, 3, covariance_type))
    else:
        kwargs.update(n_init=2)  # both k-means runs draw from one random_state, in order
    expected = _quiet_fit(GaussianMixture(3, **kwargs), X)
    ours = _quiet_fit(GaussianMixture(3, **kwargs), da.from_array(X, chunks=(BLOCK, N_FEATURES)))
    _assert_same_fit(ours, expected)


@pytest.mark.parametrize("init_params", ["kmeans", "k-means++", "random", "random_from_data"])
def test_initialisation_matches_a_stream_of_the_same_rows(client, X, init_params):
    # init_sample < n_samples, so the k-means sample really is a subsample of the blocks. Dask
    # blocks, like streamed files, cannot be indexed at random: every start is drawn from a
    # uniform sample of the rows, the same sample as a stream's.
    fitter = MaximumLikelihood(get_model("full"), reg_covar=1e-6)
    kwargs = dict(fitter=fitter, method=init_params, n_components=4, init_sample=300)
    data = as_dask_chunks(da.from_array(X, chunks=(BLOCK, N_FEATURES)))
    assert data.client is client
    ours = initial_params(data, random_state=np.random.RandomState(5), **kwargs)
    stream = SourceChunks(X)
    expected = initial_params(stream, random_state=np.random.RandomState(5), **kwargs)
    for name in ("weights", "means", "covariances", "precisions_cholesky"):
        assert _rel(getattr(ours, name), getattr(expected, name)) < 1e-10, name


@pytest.mark.parametrize("covariance_type", ["full", "diag"])
def test_sample_weight_as_dask_array(client, X, covariance_type):
    weights = np.random.default_rng(2).integers(0, 4, size=N_SAMPLES).astype(float)
    kwargs = dict(covariance_type=covariance_type, tol=0, max_iter=10, random_state=0)
    kwargs.update(initial_parameters(X, 3, covariance_type))
    expected = _quiet_fit(GaussianMixture(3, **kwargs), X, sample_weight=weights)
    Xd = da.from_array(X, chunks=(BLOCK, N_FEATURES))
    ours = _quiet_fit(
        GaussianMixture(3, **kwargs), Xd, sample_weight=da.from_array(weights, chunks=BLOCK)
    )
    _assert_same_fit(ours, expected)
    # Differently chunked weights, and a NumPy array, are laid out like X's rows.
    for w in (da.from_array(weights, chunks=700), weights):
        _assert_identical_fit(_quiet_fit(GaussianMixture(3, **kwargs), Xd, sample_weight=w), ours)


def test_float32_blocks_give_float32_attributes(client, X):
    X32 = X.astype(np.float32)
    kwargs = dict(tol=0, max_iter=8, **initial_parameters(X, 3, "full"))
    expected = _quiet_fit(GaussianMixture(3, **kwargs), X32)
    ours = _quiet_fit(GaussianMixture(3, **kwargs), da.from_array(X32, chunks=(BLOCK, 3)))
    for name in FITTED:
        assert getattr(ours, name).dtype == np.float32
    # float32 rows are multiplied in single precision within blocks that Dask's chunks cut
    # elsewhere than the in-memory array; precisions amplify that rounding by the covariances'
    # condition numbers.
    _assert_same_fit(ours, expected, rtol=1e-4)


def test_inference_is_lazy_and_matches_in_memory(client, X):
    kwargs = dict(tol=0, max_iter=10, random_state=1)
    expected = _quiet_fit(GaussianMixture(3, **kwargs), X)
    Xd = da.from_array(X, chunks=(BLOCK, N_FEATURES))
    ours = _quiet_fit(GaussianMixture(3, **kwargs), Xd)
    labels, resp, log_prob = ours.predict(Xd), ours.predict_proba(Xd), ours.score_samples(Xd)
    for lazy in (labels, resp, log_prob):
        assert is_dask_array(lazy)
        assert lazy.chunks[0] == Xd.chunks[0]
    assert resp.shape == (N_SAMPLES, 3)
    np.testing.assert_array_equal(labels.compute(), expected.predict(X))
    np.testing.assert_allclose(resp.compute(), expected.predict_proba(X), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(log_prob.compute(), expected.score_samples(X), rtol=1e-10)
    assert ours.score(Xd) == pytest.approx(expected.score(X), rel=1e-10)
    assert ours.bic(Xd) == pytest.approx(expected.bic(X), rel=1e-10)
    # A model fitted in memory scores Dask blocks too, and fit_predict labels the fitted rows.
    np.testing.assert_array_equal(expected.predict(Xd).compute(), expected.predict(X))
    fit_labels = _quiet_fit_predict(GaussianMixture(3, **kwargs), Xd)
    assert is_dask_array(fit_labels)
    np.testing.assert_array_equal(fit_labels.compute(), labels.compute())


def _quiet_fit_predict(estimator, X):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return estimator.fit_predict(X)


def test_local_scheduler_gives_bitwise_the_cluster_result(client, X):
    # The reduction tree depends only on the blocks, not on who computed them.
    kwargs = dict(covariance_type="tied", tol=0, max_iter=10, random_state=4)
    on_cluster = _quiet_fit(GaussianMixture(3, **kwargs), da.from_array(X, chunks=(BLOCK, 3)))
    with dask.config.set(scheduler="threads"):
        data = as_dask_chunks(da.from_array(X, chunks=(BLOCK, 3)))
        assert data.client is None
        local = _quiet_fit(GaussianMixture(3, **kwargs), da.from_array(X, chunks=(BLOCK, 3)))
    _assert_identical_fit(local, on_cluster)


def test_unknown_block_lengths_are_measured(client, X):
    keep = np.arange(N_SAMPLES) % 3 != 0
    Xd = da.from_array(X, chunks=(BLOCK, N_FEATURES))
    masked = Xd[da.from_array(keep, chunks=BLOCK)]
    assert np.isnan(masked.shape[0])
    kwargs = dict(tol=0, max_iter=8, **initial_parameters(X, 3, "diag"), covariance_type="diag")
    _assert_same_fit(
        _quiet_fit(GaussianMixture(3, **kwargs), masked),
        _quiet_fit(GaussianMixture(3, **kwargs), X[keep]),
    )


def test_column_chunks_are_merged_with_a_warning(client, X):
    kwargs = dict(tol=0, max_iter=5, **initial_parameters(X, 3, "full"))
    expected = _quiet_fit(GaussianMixture(3, **kwargs), da.from_array(X, chunks=(BLOCK, 3)))
    with pytest.warns(PerformanceWarning, match=r"chunked along its columns \(column chunks"):
        ours = _quiet_fit(GaussianMixture(3, **kwargs), da.from_array(X, chunks=(BLOCK, 2)))
    _assert_identical_fit(ours, expected)
    with pytest.warns(PerformanceWarning, match="columns"):
        labels = ours.predict(da.from_array(X, chunks=(BLOCK, 1)))
    np.testing.assert_array_equal(labels.compute(), expected.predict(X))


def test_nan_names_block_and_rows(client, X):
    bad = X.copy()
    bad[1234, 1] = np.nan
    bad[1700, 0] = np.inf
    Xd = da.from_array(bad, chunks=(BLOCK, N_FEATURES))
    message = (
        r"Input X \(Dask block 2, rows 1000 to 1499\) contains NaN or infinity: 1 row\(s\).*"
        r"the first is row 1234 \(column 1 is nan\)"
    )
    # Two bad blocks: the fit reports the first in block order, whichever failed first.
    with pytest.raises(ValueError, match=message):
        GaussianMixture(3).fit(Xd)
    fitted = _quiet_fit(GaussianMixture(3, max_iter=2), X)
    bad[1700, 0] = 0.0
    lazy = fitted.predict(da.from_array(bad, chunks=(BLOCK, N_FEATURES)))
    with pytest.raises(ValueError, match=message):  # inference is lazy: it fails on compute
        lazy.compute()


def test_bad_sample_weights_name_the_block(client, X):
    Xd = da.from_array(X, chunks=(BLOCK, N_FEATURES))
    weights = np.ones(N_SAMPLES)
    weights[612] = -1.0
    with pytest.raises(ValueError, match=r"sample_weight \(Dask block 1, rows 500 to 999\).*612"):
        GaussianMixture(2).fit(Xd, sample_weight=da.from_array(weights, chunks=BLOCK))
    with pytest.raises(ValueError, match="sample_weight is all zero"):
        GaussianMixture(2).fit(Xd, sample_weight=np.zeros(N_SAMPLES))
    with pytest.raises(ValueError, match=r"sample_weight.shape == \(1999,\), expected \(2000,\)"):
        GaussianMixture(2).fit(Xd, sample_weight=np.ones(N_SAMPLES - 1))


def test_bad_shapes_and_types(client, X):
    with pytest.raises(ValueError, match="Expected a 2D Dask array"):
        GaussianMixture(2).fit(da.ones(10, chunks=5))
    with pytest.raises(TypeError, match="must be numeric"):
        GaussianMixture(2).fit(da.from_array(np.array([["a"], ["b"]]), chunks=1))
    with pytest.raises(ValueError, match="minimum of 2 is required by GaussianMixture"):
        GaussianMixture(1).fit(da.ones((1, 3), chunks=(1, 3)))
    with pytest.raises(ValueError, match="Expected n_samples >= n_components"):
        GaussianMixture(5).fit(da.ones((4, 3), chunks=(2, 3)))
    fitted = _quiet_fit(GaussianMixture(2, max_iter=2), X)
    with pytest.raises(ValueError, match="X has 2 features, but GaussianMixture is expecting 3"):
        fitted.predict(da.ones((4, 2), chunks=(2, 2)))
    # Integer blocks are converted to float64, as the in-memory path does.
    integers = np.rint(X * 10).astype(np.int64)
    kwargs = dict(tol=0, max_iter=3, random_state=0)
    _assert_same_fit(
        _quiet_fit(GaussianMixture(2, **kwargs), da.from_array(integers, chunks=(BLOCK, 3))),
        _quiet_fit(GaussianMixture(2, **kwargs), integers),
    )


def _record_kernel_threads():
    """Wrap the worker's kernel entry point to record the thread counts it runs with."""
    import threading

    import numba

    import fastgmm.providers as engine

    original = engine.chunk_statistics
    engine._recorded_calls = calls = []

    def recording(*args, **kwargs):
        on_task_thread = threading.current_thread() is not threading.main_thread()
        calls.append((kwargs.get("n_threads"), numba.get_num_threads(), on_task_thread))
        return original(*args, **kwargs)

    recording.original = original
    engine.chunk_statistics = recording


def _recorded_kernel_threads():
    import fastgmm.providers as engine

    engine.chunk_statistics = engine.chunk_statistics.original
    return engine._recorded_calls


def test_tasks_run_the_kernel_on_one_thread(client, X):
    # Inside a task the kernel gets one thread: n_threads=1 and a Numba thread limit of 1
    # (a parallel region there would compete with the worker's other task threads).
    client.run(_record_kernel_threads)
    try:
        _quiet_fit(GaussianMixture(2, max_iter=2), da.from_array(X, chunks=(BLOCK, 3)))
    finally:
        recorded = client.run(_recorded_kernel_threads)
    calls = [call for calls in recorded.values() for call in calls]
    assert len(calls) >= 3 * 4  # the k-means pass and two EM iterations, four blocks each
    assert set(calls) == {(1, 1, True)}


def _fit_or_record(estimator, X, errors):
    try:
        _quiet_fit(estimator, X)
    except Exception as exc:  # reported by the test's thread
        errors.append(exc)


def test_fit_survives_a_killed_worker(client, X):
    """A worker dies after iteration 2; Dask recomputes its blocks and the fit is unchanged."""
    Xd = da.from_array(X, chunks=(BLOCK, N_FEATURES))
    kwargs = dict(covariance_type="full", tol=0, max_iter=6, **initial_parameters(X, 3, "full"))
    undisturbed = _quiet_fit(GaussianMixture(3, **kwargs), Xd)
    killed = {}

    def kill_after_second_iteration(n_iter, change):
        if n_iter != 2:
            return
        # The victim must hold persisted blocks of X, so that losing it means recomputing.
        holders = [
            address
            for address, keys in client.has_what().items()
            if any(isinstance(k, tuple) and "fastgmm-X-" in str(k[0]) for k in keys)
        ]
        assert holders, "no worker holds blocks of X"
        victim = holders[0]
        pid = client.run(os.getpid, workers=[victim])[victim]
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 60
        while victim in client.scheduler_info()["workers"]:
            assert time.monotonic() < deadline, "the scheduler did not notice the dead worker"
            time.sleep(0.1)
        killed["pid"] = pid

    disturbed = GaussianMixture(3, **kwargs)
    disturbed._print_verbose_msg_iter_end = kill_after_second_iteration
    # Bounded: a hung fit fails the test (its daemon thread is abandoned) instead of the suite.
    errors = []
    fitting = threading.Thread(target=_fit_or_record, args=(disturbed, Xd, errors), daemon=True)
    fitting.start()
    fitting.join(timeout=180)
    assert not fitting.is_alive(), "the fit did not finish within 180 s"
    assert not errors, errors
    assert killed, "the worker was not killed"
    _assert_identical_fit(disturbed, undisturbed)
    assert disturbed.n_iter_ == 6
    client.wait_for_workers(2, timeout=120)  # the nanny restarts it
    assert killed["pid"] not in client.run(os.getpid).values()


def test_is_dask_array_and_helpers(client, X):
    assert is_dask_array(da.zeros((2, 2)))
    assert not is_dask_array(X)
    data = as_dask_chunks(da.from_array(X, chunks=(BLOCK, N_FEATURES)))
    assert isinstance(data, DaskChunks)
    assert data.block_rows == (BLOCK,) * 4
    assert data.n_samples == N_SAMPLES and data.n_features == N_FEATURES
    rows, weights = data.take_rows([0, 499, 500, 1999])
    np.testing.assert_array_equal(rows, X[[0, 499, 500, 1999]])
    assert weights is None
