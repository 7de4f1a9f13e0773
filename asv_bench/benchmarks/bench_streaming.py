"""Out-of-core fitting through sources: time per pass, peak memory, and their in-memory ratios.

Targets (the streaming issue):

- one EM pass over a ``.npy`` file in the page cache costs at most 1.2x an in-memory iteration,
  over Parquet at most 2x (``StreamingPass.track_pass_ratio``, 2e6 x 16, K=8 full, 1e5-row
  chunks: large enough for the kernel to parallelise inside each chunk);
- fitting a 1e7 x 16 float64 ``.npy`` (1.28 GB) through a source with 1e5-row chunks keeps the
  peak RSS within 400 MB of the interpreter's baseline, and the peak does not grow from 1e6 to
  1e7 rows (``StreamingPeakRSS``). Each measurement runs in a fresh subprocess, because
  ``ru_maxrss`` only ever grows within a process; the baseline is the RSS after imports and a
  small warm-up fit.

The data files are written to a temporary directory in ``setup`` and deleted in ``teardown``.
The functions ``pass_seconds`` and ``peak_rss_above_baseline`` can also be called directly
(``python -c "from benchmarks.bench_streaming import ..."`` from ``asv_bench/``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
import warnings

import numpy as np

from . import make_mixture, warm_jit

PASS_SIZE = (2_000_000, 16, 8)  # n_samples, n_features, n_components
CHUNK_ROWS = 100_000
RSS_SIZES = [1_000_000, 10_000_000]
RSS_FEATURES, RSS_COMPONENTS = 16, 8


def write_source(fmt, X, directory):
    """Write ``X`` as ``fmt`` ('npy' or 'parquet') in ``directory``; return the path."""
    if fmt == "npy":
        path = os.path.join(directory, "X.npy")
        np.save(path, X)
        return path
    if fmt == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        path = os.path.join(directory, "X.parquet")
        table = pa.table({f"x{j}": X[:, j] for j in range(X.shape[1])})
        pq.write_table(table, path, row_group_size=CHUNK_ROWS)
        return path
    raise ValueError(f"unknown format {fmt!r}")


def write_large_npy(path, n_samples, n_features=RSS_FEATURES, n_components=RSS_COMPONENTS):
    """A mixture sample written chunk by chunk into a ``.npy`` file (never whole in memory)."""
    rng = np.random.default_rng(0)
    centres = rng.normal(scale=3.0, size=(n_components, n_features))
    out = np.lib.format.open_memmap(
        path, mode="w+", dtype=np.float64, shape=(n_samples, n_features)
    )
    for start in range(0, n_samples, 1_000_000):
        rows = min(1_000_000, n_samples - start)
        labels = rng.integers(n_components, size=rows)
        out[start : start + rows] = centres[labels] + rng.standard_normal((rows, n_features))
    out.flush()
    del out


def _provider(fmt, X, path):
    from fastgmm.providers import ArrayChunks
    from fastgmm.sources import open_source
    from fastgmm.streaming import SourceChunks

    if fmt == "memory":
        return ArrayChunks(X)
    return SourceChunks(open_source(path, batch_size=CHUNK_ROWS))


def pass_seconds(provider, params, repeat=5, n_threads=None):
    """Median seconds of one E-step + statistics pass over ``provider`` (the EM iteration)."""
    from fastgmm.covariance import get_model
    from fastgmm.em import MaximumLikelihood

    fitter = MaximumLikelihood(get_model(params.covariance_type), reg_covar=0.0)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        provider.collect([fitter.request(params)], n_threads=n_threads)
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def _true_params(mixture):
    from fastgmm.covariance import get_model
    from fastgmm.stats import MixtureParams

    model = get_model(mixture.covariance_type)
    scatter = np.asarray(mixture.covariances, dtype=np.float64)
    if mixture.covariance_type == "spherical":
        scatter = np.repeat(scatter[:, None], mixture.means.shape[1], axis=1)
    _, covariances, prec_chol, _ = model.estimate(
        np.ones(len(mixture.weights)), mixture.means, scatter
    )
    return MixtureParams(
        mixture.weights, mixture.means, covariances, prec_chol, mixture.covariance_type
    )


class StreamingPass:
    """One exact EM pass from memory, a page-cached ``.npy`` and Parquet (2e6 x 16, K=8).

    ``threads='serial'`` runs the kernels on one thread: the ratio then shows the cost of
    reading, checking and copying alone. With all threads, each chunk is one parallel region
    of the kernel, whose start and end cost little on an idle machine but a lot on an
    oversubscribed one (a descheduled worker stalls the region): compare with the in-memory
    pass cut into the same chunks to tell the two apart.
    """

    params = (["memory", "npy", "parquet"], ["parallel", "serial"])
    param_names = ["source", "threads"]
    timeout = 600
    number = 1
    repeat = 5

    def setup(self, source, threads):
        warm_jit("float64", n_jobs=1 if threads == "serial" else None)
        self.n_threads = 1 if threads == "serial" else None
        self.mixture = make_mixture(*PASS_SIZE, "full")
        self.params_ = _true_params(self.mixture)
        self.directory = tempfile.mkdtemp(prefix="fastgmm-bench-")
        self.path = None
        if source != "memory":
            self.path = write_source(source, self.mixture.X, self.directory)
        self.provider = _provider(source, self.mixture.X, self.path)
        # Page cache and buffers warm.
        pass_seconds(self.provider, self.params_, repeat=1, n_threads=self.n_threads)

    def teardown(self, source, threads):
        shutil.rmtree(self.directory, ignore_errors=True)

    def time_pass(self, source, threads):
        pass_seconds(self.provider, self.params_, repeat=1, n_threads=self.n_threads)

    def track_pass_ratio(self, source, threads):
        memory = _provider("memory", self.mixture.X, None)
        memory_seconds = pass_seconds(memory, self.params_, n_threads=self.n_threads)
        return pass_seconds(self.provider, self.params_, n_threads=self.n_threads) / memory_seconds

    track_pass_ratio.unit = "x in-memory pass"


class StreamingFit:
    """``fit`` of ``SIZES['medium']``-like data from a ``.npy`` source versus the array."""

    params = ["memory", "npy"]
    param_names = ["source"]
    timeout = 600

    def setup(self, source):
        from sklearn.exceptions import ConvergenceWarning

        from . import SIZES, fixed_work_params

        warnings.simplefilter("ignore", ConvergenceWarning)
        warm_jit("float64")
        self.mixture = make_mixture(*SIZES["medium"], "full")
        self.kwargs = fixed_work_params(self.mixture)
        self.directory = tempfile.mkdtemp(prefix="fastgmm-bench-")
        self.data = self.mixture.X
        if source == "npy":
            from fastgmm import open_source

            path = write_source("npy", self.mixture.X, self.directory)
            self.data = open_source(path, batch_size=CHUNK_ROWS)

    def teardown(self, source):
        shutil.rmtree(self.directory, ignore_errors=True)

    def time_fit(self, source):
        from fastgmm import GaussianMixture

        GaussianMixture(**self.kwargs).fit(self.data)

    def peakmem_fit(self, source):
        from fastgmm import GaussianMixture

        GaussianMixture(**self.kwargs).fit(self.data)


_RSS_SCRIPT = textwrap.dedent(
    """
    import json, resource, sys, warnings
    import numpy as np
    import psutil
    from sklearn.exceptions import ConvergenceWarning
    import fastgmm.sources
    from fastgmm import GaussianMixture, open_source

    path, max_iter, release = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1"
    warnings.simplefilter("ignore", ConvergenceWarning)
    if not release:  # the comparison run: keep every touched page of the mapping resident
        fastgmm.sources.release_pages = lambda view: False
    # Baseline: imports plus a small fit that loads every kernel the measured fit uses.
    warm = np.random.default_rng(0).normal(size=(3000, 16))
    GaussianMixture(8, max_iter=2, random_state=0).fit(warm).predict(warm)
    # Reset the peak to the current RSS (Linux >= 4.0), so that neither the imports nor a
    # Numba compilation in the warm-up can be the peak we report.
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        reset = True
    except OSError:
        reset = False
    baseline = psutil.Process().memory_info().rss
    model = GaussianMixture(8, max_iter=max_iter, tol=0, random_state=0)
    model.fit(open_source(path, batch_size=%d))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB
    print(json.dumps({"baseline": baseline, "peak": peak, "reset": reset,
                      "lower_bound": model.lower_bound_}))
    """
    % CHUNK_ROWS
)


def peak_rss_above_baseline(path, max_iter=3, release=True):
    """Peak RSS (bytes) of a streamed fit of ``path`` above the warmed-up interpreter's RSS.

    Runs in a fresh interpreter. The peak is reset after the warm-up where Linux allows it
    (``/proc/self/clear_refs``), so it is the fit's own. ``release=False`` disables
    :func:`fastgmm.sources.release_pages` to show what the mapped pages cost without it.
    """
    result = subprocess.run(
        [sys.executable, "-c", _RSS_SCRIPT, path, str(max_iter), "1" if release else "0"],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise RuntimeError(f"the measuring subprocess failed:\n{result.stderr}")
    measured = json.loads(result.stdout.strip().splitlines()[-1])
    return measured["peak"] - measured["baseline"], measured


class StreamingPeakRSS:
    """Peak RSS above baseline of a streamed K=8 full fit (3 iterations) of an N x 16 ``.npy``."""

    params = (RSS_SIZES, [True, False])
    param_names = ["n_samples", "release_pages"]
    timeout = 1800
    number = 1
    repeat = 1

    def setup(self, n_samples, release_pages):
        try:
            import psutil  # noqa: F401
        except ImportError:
            raise NotImplementedError("psutil is needed to read the RSS baseline") from None
        self.directory = tempfile.mkdtemp(prefix="fastgmm-bench-")
        if shutil.disk_usage(self.directory).free < 3 * n_samples * RSS_FEATURES * 8:
            shutil.rmtree(self.directory)
            raise NotImplementedError("not enough free disk space for the data file")
        self.path = os.path.join(self.directory, "X.npy")
        write_large_npy(self.path, n_samples)

    def teardown(self, n_samples, release_pages):
        shutil.rmtree(self.directory, ignore_errors=True)

    def track_peak_rss_above_baseline(self, n_samples, release_pages):
        return peak_rss_above_baseline(self.path, release=release_pages)[0] / 2**20

    track_peak_rss_above_baseline.unit = "MiB"
