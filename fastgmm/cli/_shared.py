"""Helpers that several commands share: inputs, outputs, the numerical stack, reports.

Imported only when a command runs (it imports NumPy). Errors are raised (``CommandError``,
``ValueError``, ``OSError``...) and turned into exit code 1 by :func:`fastgmm.cli.main`.

Outputs are never written in place: every file goes through
:func:`fastgmm.persistence.atomic_path` (a temporary file in the same directory, fsync, rename),
so an interrupted job leaves the previous file or none. Per-row outputs are written chunk by
chunk into a memory-mapped ``.npy`` temporary file (:func:`stream_rows`).
"""

from __future__ import annotations

import contextlib
import math
import os
import warnings

import numpy as np

from ..persistence import atomic_path
from ..sources import open_source
from . import _timing
from ._errors import CommandError, UsageError
from ._progress import pass_bars


def check_outputs(job=None, **paths):
    """Fail before any work if an output cannot be written (a long fit would be lost), or
    would replace an input or another output."""
    given = {option: path for option, path in paths.items() if path is not None}
    seen = {}
    for option in ("model", "input"):
        path = getattr(job.args, option, None) if job is not None else None
        if path is not None:
            # "data.npz:key" and "data.h5:/X" name the file before the colon.
            for candidate in {path, path.split(":")[0]}:
                seen[os.path.realpath(candidate)] = option.upper()
    for option, path in given.items():
        real = os.path.realpath(path)
        if real in seen:
            other = seen[real] if seen[real].isupper() else f"--{seen[real]}"
            raise UsageError(f"{other} and --{option} name the same file {path!r}")
        seen[real] = option.replace("_", "-")
        directory = os.path.dirname(os.path.abspath(path))
        if os.path.isdir(path):
            raise CommandError(f"cannot write {path!r}: it is a directory")
        if not os.path.isdir(directory):
            raise CommandError(f"cannot write {path!r}: directory {directory!r} does not exist")
        if not os.access(directory, os.W_OK | os.X_OK):
            raise CommandError(f"cannot write {path!r}: directory {directory!r} is not writable")


def open_input(job, allow_nan=None):
    """Open INPUT as a source (with a progress bar per pass on a terminal), and time its reads.

    The time spent opening it, and then producing each chunk, is the job's ``read`` time. NaN
    is let through as missing entries with ``--missing marginalize`` (``allow_nan``, when given,
    decides instead: a model file's own setting for ``predict`` and ``score``).
    """
    args = job.args
    path = args.input
    if job.progress is None:
        job.progress = pass_bars(job.stderr, quiet=job.quiet, log=job.log)
    with job.timed("read"):
        opened = open_source(path, batch_size=args.batch_size, columns=args.columns)
    if allow_nan is None:
        allow_nan = getattr(args, "missing", "raise") == "marginalize"
    opened.allow_nan = bool(allow_nan)
    source = job.progress.wrap(opened)  # itself unless bars are drawn (on a terminal)
    job.cleanup.enter_context(_timing.reads(job, (opened, source)))
    rows = "an unknown number of" if source.n_samples is None else f"{source.n_samples}"
    job.log(f"input {path}: {rows} rows x {source.n_features} features ({source.dtype})")
    job.report["input"] = {
        "path": path,
        "n_samples": source.n_samples,
        "n_features": source.n_features,
        "dtype": str(source.dtype),
    }
    return source


def import_estimators(job, announce=True):
    """Import the numerical stack (timed) and settle the thread count actually used."""
    with job.timed("import"):
        from .._jit import resolve_n_threads
        from ..mixture import GaussianMixture
    used = resolve_n_threads(job.n_threads)
    if used != job.n_threads:
        job.warn(
            f"{job.threads_source} asks for {job.n_threads} threads but Numba's pool has "
            f"{used} (NUMBA_NUM_THREADS={os.environ.get('NUMBA_NUM_THREADS')}); using {used}"
        )
        job.n_threads = used
    if announce:
        job.log(f"threads: {job.n_threads} (from {job.threads_source})")
    return GaussianMixture


@contextlib.contextmanager
def captured_warnings(job):
    """Report library warnings (ConvergenceWarning...) as one log line each, and in the JSON."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    for w in caught:
        job.warn(f"{w.category.__name__}: {' '.join(str(w.message).split())}")


def finite(value):
    """``value`` as a float, or None if it is not finite (JSON has no inf or NaN)."""
    value = float(value)
    return value if math.isfinite(value) else None


def mixture_report(gm, n_samples=None, mean_log_likelihood=None):
    """What a fitted GaussianMixture reports; BIC and AIC need the data's log-likelihood."""
    report = {
        "class": type(gm).__name__,
        "n_components": int(gm.n_components),
        "covariance_type": gm.covariance_type,
        "n_features": int(gm.n_features_in_),
        "dtype": str(gm.means_.dtype),
        "n_parameters": int(gm._n_parameters()),
        "converged": bool(gm.converged_),
        "n_iter": int(gm.n_iter_),
        "lower_bound": finite(gm.lower_bound_),
    }
    if mean_log_likelihood is not None:
        n, p = int(n_samples), report["n_parameters"]
        log_likelihood = mean_log_likelihood * n
        report["n_samples"] = n
        report["log_likelihood"] = finite(log_likelihood)
        report["bic"] = finite(-2 * log_likelihood + p * math.log(n))
        report["aic"] = finite(-2 * log_likelihood + 2 * p)
    return report


def _estimators_in(model):
    """The model and the estimators inside it (a selection's best, a detector's mixture)."""
    yield model
    for attribute in ("best_estimator_", "mixture_"):
        inner = getattr(model, attribute, None)
        if inner is not None and hasattr(inner, "get_params"):
            yield from _estimators_in(inner)


def set_runtime_params(model, **values):
    """Set ``values`` on the model and the estimators inside it, where they are parameters."""
    for estimator in _estimators_in(model):
        params = estimator.get_params(deep=False)
        estimator.set_params(**{k: v for k, v in values.items() if k in params})


def n_features_of(model):
    """The number of features the model (or the best one inside it) was fitted on, if known."""
    for candidate in (model, getattr(model, "best_estimator_", None)):
        n = getattr(candidate, "n_features_in_", None)
        if n is not None:
            return int(n)
    return None


def stream_rows(job, model, outputs, label, source=None):
    """Apply the model to every chunk of the input, writing each output as it goes.

    ``outputs`` maps a key to ``(path, method, dtype, n_columns or None)``. Each output is a
    ``.npy`` memory map in a temporary file, renamed over its path once every row is written.
    ``label`` describes the pass on the progress bar.
    """
    args = job.args
    if source is None:
        source = open_input(job, allow_nan=getattr(model, "missing", "raise") == "marginalize")
    n_features = n_features_of(model)
    if n_features is not None and source.n_features != n_features:
        raise CommandError(
            f"{args.input} has {source.n_features} features but the model was fitted on "
            f"{n_features}"
        )
    if source.n_samples is None:
        job.progress.phase("counting rows", numbered=False)
        for _ in source.iter_chunks():  # CSV: one counting pass (read time), then the real one
            pass
    job.progress.phase(label, numbered=False)
    n_samples = source.n_samples
    with contextlib.ExitStack() as stack:
        maps = {}
        for key, (path, _method, dtype, n_columns) in outputs.items():
            tmp = stack.enter_context(atomic_path(path))
            shape = (n_samples,) if n_columns is None else (n_samples, n_columns)
            maps[key] = np.lib.format.open_memmap(tmp, mode="w+", dtype=dtype, shape=shape)
        with _timing.KernelClock(job):
            for offset, chunk in source.iter_chunks():
                for key, (_, method, _, _) in outputs.items():
                    with job.timed("compute"):
                        values = method(chunk)
                    with job.timed("write"):
                        maps[key][offset : offset + len(chunk)] = values
        with job.timed("write"):
            for array in maps.values():
                array.flush()
            maps.clear()  # close the maps before the files are renamed
    for key, (path, *_rest) in outputs.items():
        job.outputs[key] = os.path.abspath(path)
        job.log(f"wrote {path}")
    return n_samples
