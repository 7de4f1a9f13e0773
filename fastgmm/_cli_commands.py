"""The commands behind :mod:`fastgmm.cli` (imported only once a command runs).

Each ``cmd_*`` function takes the :class:`fastgmm.cli.Job` of the run, logs to stderr through
it, records timings, results and output paths in it, and returns the exit code. Errors are
raised (``CommandError``, ``ValueError``, ``OSError``...) and turned into exit code 1 by
:func:`fastgmm.cli.main`.

Outputs are never written in place: every file goes through
:func:`fastgmm.persistence.atomic_path` (a temporary file in the same directory, fsync, rename),
so an interrupted job leaves the previous file or none. Per-row outputs of ``predict`` and
``score`` are written chunk by chunk into a memory-mapped ``.npy`` temporary file.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
import warnings

import numpy as np

from ._progress import pass_bars
from .cli import (
    COVARIANCE_TYPES,
    EXIT_NOT_CONVERGED,
    EXIT_OK,
    INIT_METHODS,
    CommandError,
    UsageError,
)
from .persistence import atomic_path, load, read_header, save
from .sources import open_source

# Commands that pass over an INPUT file: on a terminal, each pass draws a progress bar.
_PASSES_OVER_INPUT = ("fit", "select", "predict", "score", "outliers")


def run(job):
    """Run the command named in ``job.args``; returns its exit code."""
    command = {
        "fit": cmd_fit,
        "select": cmd_select,
        "predict": cmd_predict,
        "score": cmd_score,
        "outliers": cmd_outliers,
        "sample": cmd_sample,
        "info": cmd_info,
        "demo": cmd_demo,
        "warmup": cmd_warmup,
    }[job.args.command]
    job.progress = pass_bars(
        job.stderr,
        # No terminal bars for commands that read no INPUT (and no tqdm import or hint there).
        quiet=job.quiet or job.args.command not in _PASSES_OVER_INPUT,
        log=job.log,
    )
    return command(job)


# ------------------------------------------------------------------------------- helpers
def _check_outputs(job=None, **paths):
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


def _open_input(job, *, path=None):
    args = job.args
    path = args.input if path is None else path
    with job.timed("read"):
        source = open_source(path, batch_size=args.batch_size, columns=args.columns)
    _time_reads(job, source)
    source = job.progress.wrap(source)  # itself unless bars are drawn (on a terminal)
    rows = "an unknown number of" if source.n_samples is None else f"{source.n_samples}"
    job.log(f"input {path}: {rows} rows x {source.n_features} features ({source.dtype})")
    job.report["input"] = {
        "path": path,
        "n_samples": source.n_samples,
        "n_features": source.n_features,
        "dtype": str(source.dtype),
    }
    return source


def _time_reads(job, source):
    """Count the time the source spends producing chunks as the job's ``read`` time.

    The reader hook ``_read_pass`` is wrapped on this one source. With prefetching it runs in a
    background thread, so this is the time spent reading (and validating) the data, which
    overlaps the computation, rather than the time the computation waited for it.
    """
    read_pass = getattr(source, "_read_pass", None)
    if read_pass is None:
        return

    def timed_read_pass():
        chunks = read_pass()
        try:
            while True:
                start = time.perf_counter()
                try:
                    chunk = next(chunks)
                except StopIteration:
                    return
                finally:
                    job.timings["read"] = job.timings.get("read", 0.0) + (
                        time.perf_counter() - start
                    )
                yield chunk
        finally:
            chunks.close()

    source._read_pass = timed_read_pass


def _as_dtype(job, source):
    """The source as the computation should see it: ``--dtype`` converts chunk by chunk."""
    requested = getattr(job.args, "dtype", None)
    if requested is None or np.dtype(requested) == source.dtype:
        return source
    dtype = np.dtype(requested)

    def converted():
        for _, chunk in source.iter_chunks(prefetch=False):
            yield chunk.astype(dtype)

    job.log(f"converting {source.dtype} to {dtype} while reading")
    return open_source(converted, batch_size=source.batch_size)


def _import_estimators(job, announce=True):
    """Import the numerical stack (timed) and settle the thread count actually used."""
    with job.timed("import"):
        from ._jit import resolve_n_threads
        from .mixture import GaussianMixture
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


def _em_params(job):
    args = job.args
    return {
        "tol": args.tol,
        "reg_covar": args.reg_covar,
        "max_iter": args.max_iter,
        "n_init": args.n_init,
        "init_params": args.init,
        "random_state": args.seed,
        "verbose": 0 if job.quiet else 2,
        "verbose_interval": args.verbose_interval,
        "n_jobs": job.n_threads,
    }


@contextlib.contextmanager
def _captured_warnings(job):
    """Report library warnings (ConvergenceWarning...) as one log line each, and in the JSON."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    for w in caught:
        job.warn(f"{w.category.__name__}: {' '.join(str(w.message).split())}")


class _KernelClock:
    """Time spent loading or compiling kernels, and how many signatures were each.

    Numba holds its global compiler lock while it loads a kernel from the cache or compiles
    it; a listener on that lock's events (outermost acquisition only: the lock is re-entrant)
    measures both without touching the kernels.
    """

    def __init__(self, job):
        self.job = job
        self.depth = 0
        self.start = 0.0
        self.total = 0.0

    def __enter__(self):
        from numba.core import event

        listener = self

        class _Listener(event.Listener):
            def on_start(self, ev):
                if listener.depth == 0:
                    listener.start = time.perf_counter()
                listener.depth += 1

            def on_end(self, ev):
                listener.depth -= 1
                if listener.depth == 0:
                    listener.total += time.perf_counter() - listener.start

        self.listener = _Listener()
        event.register("numba:compiler_lock", self.listener)
        self.before = self._counts()
        return self

    def __exit__(self, *exc):
        from numba.core import event

        event.unregister("numba:compiler_lock", self.listener)
        loaded, compiled = (a - b for a, b in zip(self._counts(), self.before))
        timings = self.job.timings
        timings["compile"] = timings.get("compile", 0.0) + self.total
        kernels = self.job.report.setdefault("kernels", {"loaded": 0, "compiled": 0})
        kernels["loaded"] += loaded
        kernels["compiled"] += compiled
        return False

    @staticmethod
    def _counts():
        from ._jit import registered_kernels

        loaded = compiled = 0
        for dispatcher in registered_kernels().values():
            stats = dispatcher.stats
            loaded += sum(stats.cache_hits.values())
            compiled += sum(stats.cache_misses.values())
        return loaded, compiled


def _time_initialisation(job, estimator):
    """Time the initialisation inside ``fit`` by wrapping the estimator's own step.

    The wrapper is set on this one instance only (the class is untouched) and calls the
    original unchanged; it is how the JSON report can give ``init`` apart from ``fit``, and
    how the progress bars tell the initialisation's passes from the EM iterations'.
    """
    original = getattr(estimator, "_initial_params", None)
    if original is None:
        return

    def timed_initial_params(*args, **kwargs):
        job.progress.phase("init")
        with job.timed("init"):
            params = original(*args, **kwargs)
        # EM pass n is EM iteration n of this initialisation (the verbose line's number).
        job.progress.phase("EM")
        return params

    estimator._initial_params = timed_initial_params


def _finite(value):
    value = float(value)
    return value if math.isfinite(value) else None


def _mixture_report(gm, n_samples=None, mean_log_likelihood=None):
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
        "lower_bound": _finite(gm.lower_bound_),
    }
    if mean_log_likelihood is not None:
        n, p = int(n_samples), report["n_parameters"]
        log_likelihood = mean_log_likelihood * n
        report["n_samples"] = n
        report["log_likelihood"] = _finite(log_likelihood)
        report["bic"] = _finite(-2 * log_likelihood + p * math.log(n))
        report["aic"] = _finite(-2 * log_likelihood + 2 * p)
    return report


def _describe_fit(report):
    text = (
        f"{report['n_components']} {report['covariance_type']} components on "
        f"{report['n_features']} features: "
        + (
            f"converged in {report['n_iter']} iterations"
            if report["converged"]
            else f"NOT converged after {report['n_iter']} iterations"
        )
    )
    if report.get("lower_bound") is not None:
        text += f", lower bound {report['lower_bound']:.6g}"
    if report.get("bic") is not None:
        text += f", BIC {report['bic']:.6g}, AIC {report['aic']:.6g}"
    return text


def _not_converged(job, what):
    job.log(f"{what} did not converge and --strict was given: nothing written")
    return EXIT_NOT_CONVERGED


def _estimators_in(model):
    """The model and the estimators inside it (a selection's best, a detector's mixture)."""
    yield model
    for attribute in ("best_estimator_", "mixture_"):
        inner = getattr(model, attribute, None)
        if inner is not None and hasattr(inner, "get_params"):
            yield from _estimators_in(inner)


def _set_runtime_params(model, **values):
    for estimator in _estimators_in(model):
        params = estimator.get_params(deep=False)
        estimator.set_params(**{k: v for k, v in values.items() if k in params})


def _save_model(job, model, path, key="model", extra=None):
    metadata = {
        "command": job.args.command,
        "input": job.report.get("input", {}).get("path"),
        "n_samples": job.report.get("input", {}).get("n_samples"),
        "threads": job.n_threads,
    }
    metadata.update(extra or {})
    # Progress printing and the thread count belong to this job, not to the model: whoever
    # loads the file later gets the library defaults (and the job's count is in the metadata).
    _set_runtime_params(model, verbose=0, n_jobs=None)
    with job.timed("write"):
        save(model, path, metadata=metadata)
    job.outputs[key] = os.path.abspath(path)
    job.log(f"wrote {path}")


def _load_model(job, path):
    with job.timed("load"):
        model = load(path)
    job.report["model_file"] = os.path.abspath(path)
    return model


def _n_features_of(model):
    for candidate in (model, getattr(model, "best_estimator_", None)):
        n = getattr(candidate, "n_features_in_", None)
        if n is not None:
            return int(n)
    return None


# ------------------------------------------------------------------------------- commands
def cmd_fit(job):
    args = job.args
    _check_outputs(job, out=args.out)
    source = _open_input(job)
    GaussianMixture = _import_estimators(job)
    data = _as_dtype(job, source)
    gm = GaussianMixture(args.n_components, covariance_type=args.covariance, **_em_params(job))
    _time_initialisation(job, gm)
    job.log(f"fitting {args.n_components} {args.covariance} components")
    # Passes before the initialisation: the row count of a CSV file or a converted input.
    job.progress.phase("counting rows", numbered=False)
    with _KernelClock(job), _captured_warnings(job):
        with job.timed("fit"):
            # The estimator streams the source: one pass per EM iteration, chunks prefetched.
            gm.fit(data)
        job.progress.phase("scoring", numbered=False)
        with job.timed("score"):
            mean_log_likelihood = gm.score(data)
    report = _mixture_report(gm, data.n_samples, mean_log_likelihood)
    job.report["input"]["n_samples"] = data.n_samples
    job.report["model"] = report
    print(f"fit: {_describe_fit(report)}", file=job.result_stream)
    if args.strict and not gm.converged_:
        return _not_converged(job, "the fit")
    _save_model(job, gm, args.out, extra={"bic": report["bic"], "aic": report["aic"]})
    return EXIT_OK


def cmd_select(job):
    args = job.args
    _check_outputs(job, out=args.out)
    source = _open_input(job)
    _import_estimators(job)
    data = _as_dtype(job, source)
    with job.timed("import"):
        from .selection import select_model
    params = _em_params(job)
    n_init, seed = params.pop("n_init"), params.pop("random_state")
    # select_model advances all candidates together and prints no per-candidate progress.
    params.pop("verbose"), params.pop("verbose_interval")
    job.log(
        f"trying K in {_format_ks(args.n_components)} x {','.join(args.covariance)} "
        f"by {args.criterion.upper()} (all candidates share each pass over the data)"
    )
    # All candidates share each pass: the passes are numbered, not named per candidate.
    job.progress.phase("select")
    with _KernelClock(job), _captured_warnings(job), job.timed("fit"):
        result = select_model(
            data,
            n_components=args.n_components,
            covariance_types=tuple(args.covariance),
            criterion=args.criterion,
            n_init=n_init,
            random_state=seed,
            **params,
        )
    best = result.best_estimator_
    rows = [_plain_record(r) for r in result.results_]
    chosen = rows[result.best_index_]
    n_samples = int(result.n_samples)
    report = _mixture_report(best)
    report.update(
        n_samples=n_samples,
        log_likelihood=chosen.get("log_likelihood"),
        bic=chosen.get("bic"),
        aic=chosen.get("aic"),
    )
    job.report["input"]["n_samples"] = n_samples
    job.report["results"] = rows
    job.report["criterion"] = args.criterion
    job.report["model"] = report
    print(_format_table(rows, chosen, args.criterion), file=job.result_stream)
    print(f"best: {_describe_fit(report)}", file=job.result_stream)
    if args.strict and not best.converged_:
        return _not_converged(job, "the best model")
    _save_model(
        job,
        best,
        args.out,
        extra={"criterion": args.criterion, "bic": report["bic"], "aic": report["aic"]},
    )
    return EXIT_OK


def _format_ks(ks):
    if ks == list(range(ks[0], ks[-1] + 1)) and len(ks) > 2:
        return f"{ks[0]}..{ks[-1]}"
    return ",".join(map(str, ks))


def _plain_record(record):
    out = {}
    for key, value in dict(record).items():
        if isinstance(value, (np.floating, float)):
            value = _finite(value)
        elif isinstance(value, (np.integer,)):
            value = int(value)
        elif isinstance(value, np.bool_):
            value = bool(value)
        elif value is not None and not isinstance(value, (int, str, bool)):
            value = str(value)
        out[key] = value
    return out


def _format_table(rows, best, criterion):
    """The criterion table in grid order, marking the selected candidate."""
    header = (
        f"{'covariance':<10} {'K':>4} {'BIC':>14} {'AIC':>14} {'log-lik':>14} "
        f"{'params':>7} {'iter':>5} {'conv':>5} {'seconds':>8}"
    )
    lines = [header, "-" * len(header)]

    for r in rows:
        line = (
            f"{r.get('covariance_type', '?'):<10} {r.get('n_components', '?'):>4} "
            f"{_cell(r, 'bic', 14, '.6g')} {_cell(r, 'aic', 14, '.6g')} "
            f"{_cell(r, 'log_likelihood', 14, '.6g')} {_cell(r, 'n_parameters', 7, 'd')} "
            f"{_cell(r, 'n_iter', 5, 'd')} {('yes' if r.get('converged') else 'no'):>5} "
            f"{_cell(r, 'fit_seconds', 8, '.3f')}"
        )
        if r is best:
            line += f"  <- best {criterion.upper()}"
        if r.get("error"):
            line += f"  error: {r['error']}"
        lines.append(line)
    return "\n".join(lines)


def _cell(record, key, width, fmt):
    value = record.get(key)
    text = "-" if value is None else format(value, fmt)
    return f"{text:>{width}}"


def _inner_mixture(model):
    """The GaussianMixture inside a model (itself, a selection's best, a detector's)."""
    from .mixture import GaussianMixture

    seen = model
    for _ in range(3):
        if isinstance(seen, GaussianMixture):
            return seen
        for attribute in ("best_estimator_", "mixture_"):
            inner = getattr(seen, attribute, None)
            if inner is not None:
                seen = inner
                break
        else:
            break
    raise CommandError(f"a {type(model).__name__} holds no fitted GaussianMixture")


def cmd_outliers(job):
    args = job.args
    _check_outputs(job, out=args.out, scores=args.scores, model_out=args.model_out)
    source = _open_input(job)
    _import_estimators(job)
    data = _as_dtype(job, source)
    with job.timed("import"):
        from .outliers import GaussianMixtureOutlierDetector
    params = _em_params(job)
    params.pop("verbose"), params.pop("verbose_interval")  # the detector prints no progress
    detector = GaussianMixtureOutlierDetector(
        n_components=args.n_components,
        covariance_type=args.covariance,
        contamination=args.contamination,
        **params,
    )
    job.log(
        f"fitting the density model (K={args.n_components}, {args.covariance}), "
        f"contamination={args.contamination}"
    )
    job.progress.phase("fit")  # the density model's passes, then the threshold's
    with _KernelClock(job), _captured_warnings(job), job.timed("fit"):
        detector.fit(data)
    mixture = detector.mixture_
    report = _mixture_report(mixture)
    job.report["model"] = report
    if args.strict and not mixture.converged_:
        return _not_converged(job, "the density model")
    counts = {"outliers": 0}

    def flag(X):
        flags = detector.predict(X)
        counts["outliers"] += int(np.count_nonzero(flags == -1))
        return flags

    outputs = {"flags": (args.out, flag, np.int64, None)}
    if args.scores:
        outputs["scores"] = (args.scores, detector.score_samples, np.float64, None)
    n_rows = _stream_rows(job, detector, outputs, "flagging", source=data)
    n_out = counts["outliers"]
    job.report["outliers"] = {
        "n_outliers": n_out,
        "fraction": n_out / n_rows,
        "threshold": _finite(detector.threshold_),
        "offset": _finite(detector.offset_),
        "contamination": args.contamination,
    }
    print(
        f"outliers: {n_out} of {n_rows} rows ({100 * n_out / n_rows:.3g}%) below log-density "
        f"{detector.threshold_:.6g}; {_describe_fit(report)}",
        file=job.result_stream,
    )
    if args.model_out:
        _save_model(job, detector, args.model_out)
    return EXIT_OK


def _stream_rows(job, model, outputs, label, source=None):
    """Apply the model to every chunk of the input, writing each output as it goes.

    ``outputs`` maps a key to ``(path, method, dtype, n_columns or None)``. Each output is a
    ``.npy`` memory map in a temporary file, renamed over its path once every row is written.
    ``label`` describes the pass on the progress bar.
    """
    args = job.args
    source = _open_input(job) if source is None else source
    n_features = _n_features_of(model)
    if n_features is not None and source.n_features != n_features:
        raise CommandError(
            f"{args.input} has {source.n_features} features but the model was fitted on "
            f"{n_features}"
        )
    if source.n_samples is None:
        job.progress.phase("counting rows", numbered=False)
        with job.timed("read"):
            for _ in source.iter_chunks():  # CSV: one counting pass, then the real one
                pass
    job.progress.phase(label, numbered=False)
    n_samples = source.n_samples
    with contextlib.ExitStack() as stack:
        maps = {}
        for key, (path, _method, dtype, n_columns) in outputs.items():
            tmp = stack.enter_context(atomic_path(path))
            shape = (n_samples,) if n_columns is None else (n_samples, n_columns)
            maps[key] = np.lib.format.open_memmap(tmp, mode="w+", dtype=dtype, shape=shape)
        with _KernelClock(job):
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


def _model_to_apply(job, **outputs):
    """Check the output paths, then load MODEL to run on the job's threads (predict, score)."""
    _check_outputs(job, **outputs)
    _import_estimators(job)
    model = _load_model(job, job.args.model)
    _set_runtime_params(model, n_jobs=job.n_threads)
    return model


def cmd_predict(job):
    args = job.args
    model = _model_to_apply(job, out=args.out, proba=args.proba)
    outputs = {"labels": (args.out, model.predict, np.int64, None)}
    if args.proba:
        if not hasattr(model, "predict_proba"):
            raise CommandError(f"a {type(model).__name__} has no probabilities to write")
        n_columns = int(_inner_mixture(model).n_components)
        outputs["proba"] = (args.proba, model.predict_proba, np.float64, n_columns)
    n = _stream_rows(job, model, outputs, "predicting")
    print(f"predict: {n} rows labelled", file=job.result_stream)
    return EXIT_OK


def cmd_score(job):
    args = job.args
    model = _model_to_apply(job, out=args.out)
    n = _stream_rows(
        job, model, {"scores": (args.out, model.score_samples, np.float64, None)}, "scoring"
    )
    print(f"score: {n} rows scored", file=job.result_stream)
    return EXIT_OK


def cmd_sample(job):
    args = job.args
    _check_outputs(job, out=args.out, labels=args.labels)
    _import_estimators(job)
    model = _load_model(job, args.model)
    gm = _inner_mixture(model)
    from sklearn.utils import check_random_state

    # One RandomState for every batch, so that batches continue one stream (an int seed in
    # random_state would restart it at each call and repeat the same rows).
    rng = check_random_state(args.seed if args.seed is not None else gm.random_state)
    gm.set_params(random_state=rng)
    n, batch = args.n_samples, args.batch_size
    d = int(gm.n_features_in_)
    with contextlib.ExitStack() as stack:
        tmp_x = stack.enter_context(atomic_path(args.out))
        X = np.lib.format.open_memmap(tmp_x, mode="w+", dtype=np.float64, shape=(n, d))
        Y = None
        if args.labels:
            tmp_y = stack.enter_context(atomic_path(args.labels))
            Y = np.lib.format.open_memmap(tmp_y, mode="w+", dtype=np.int64, shape=(n,))
        for start in range(0, n, batch):
            stop = min(start + batch, n)
            with job.timed("compute"):
                x, y = gm.sample(stop - start)
            with job.timed("write"):
                X[start:stop] = x
                if Y is not None:
                    Y[start:stop] = y
        with job.timed("write"):
            X.flush()
            if Y is not None:
                Y.flush()
            del X, Y
    job.outputs["samples"] = os.path.abspath(args.out)
    if args.labels:
        job.outputs["labels"] = os.path.abspath(args.labels)
    job.report["n_samples"] = n
    print(f"sample: wrote {n} rows x {d} features to {args.out}", file=job.result_stream)
    return EXIT_OK


def cmd_info(job):
    args = job.args
    with job.timed("load"):
        header = read_header(args.model)
    _import_estimators(job, announce=False)
    model = _load_model(job, args.model)
    summary = _summary(model)
    job.report["header"] = header
    job.report["summary"] = summary
    print(_format_info(args.model, header, summary), file=job.result_stream)
    return EXIT_OK


def _summary(model):
    from .mixture import GaussianMixture

    if isinstance(model, GaussianMixture):
        report = _mixture_report(model)
        covariances = np.asarray(model.covariances_, dtype=np.float64)
        k, d = model.means_.shape
        if model.covariance_type == "full":
            variances = np.diagonal(covariances, axis1=1, axis2=2)
        elif model.covariance_type == "tied":
            variances = np.broadcast_to(np.diagonal(covariances), (k, d))
        elif model.covariance_type == "diag":
            variances = covariances
        else:
            variances = np.broadcast_to(covariances[:, None], (k, d))
        report["components"] = [
            {
                "weight": float(model.weights_[i]),
                "mean": np.asarray(model.means_[i], dtype=np.float64).tolist(),
                "std": np.sqrt(variances[i]).tolist(),
            }
            for i in range(k)
        ]
        return report
    report = {"class": type(model).__name__}
    for name, value in sorted(vars(model).items()):
        if not name.endswith("_") or name.startswith("_"):
            continue
        if isinstance(value, GaussianMixture):
            report[name] = _summary(value)
        elif isinstance(value, (bool, int, float, str, np.number, np.bool_)):
            report[name] = value.item() if hasattr(value, "item") else value
    return report


def _format_info(path, header, summary):
    lines = [
        f"{path}: {header['class']} (model format {header['format_version']}, written by "
        f"fastgmm {header.get('fastgmm_version')} on {header.get('created')})"
    ]
    params = header["model"].get("params", {})
    shown = ", ".join(
        f"{k}={v!r}" for k, v in sorted(params.items()) if not isinstance(v, (dict, list))
    )
    lines.append(f"  params: {shown}")
    if header.get("metadata"):
        lines.append(
            "  metadata: " + ", ".join(f"{k}={v!r}" for k, v in header["metadata"].items())
        )
    for note in header.get("notes", []):
        lines.append(f"  note: {note}")
    lines.extend(_format_summary(summary, "  "))
    return "\n".join(lines)


def _format_summary(summary, indent):
    lines = []
    if "components" not in summary:
        for key, value in summary.items():
            if isinstance(value, dict):
                lines.append(f"{indent}{key}: {value.get('class')}")
                lines.extend(_format_summary(value, indent + "  "))
            elif key != "class":
                lines.append(f"{indent}{key}: {value}")
        return lines
    lines.append(
        f"{indent}{summary['n_components']} components, {summary['covariance_type']} "
        f"covariances, {summary['n_features']} features, {summary['dtype']}, "
        f"{summary['n_parameters']} free parameters"
    )
    lines.append(
        f"{indent}converged: {summary['converged']} in {summary['n_iter']} iterations, "
        f"lower bound {summary['lower_bound']}"
    )
    shown = min(summary["n_features"], 6)
    more = " ..." if summary["n_features"] > shown else ""
    lines.append(f"{indent}{'k':>3} {'weight':>8}  mean / std (first {shown} features)")
    for i, c in enumerate(summary["components"]):
        mean = " ".join(f"{v:9.4g}" for v in c["mean"][:shown])
        std = " ".join(f"{v:9.4g}" for v in c["std"][:shown])
        lines.append(f"{indent}{i:>3} {c['weight']:8.4f}  mean {mean}{more}")
        lines.append(f"{indent}{'':>3} {'':>8}  std  {std}{more}")
    return lines


def cmd_warmup(job):
    GaussianMixture = _import_estimators(job)
    from sklearn.exceptions import ConvergenceWarning

    from . import stats
    from ._jit import registered_kernels

    kernels = registered_kernels()
    rng = np.random.default_rng(0)
    # Small models go through the feature-map kernels and wide full ones through the
    # per-component kernels, so a narrow and a wide problem are both run.
    wide = getattr(stats, "FEATURE_MAP_MAX_FULL", 32) + 1
    problems = [
        (2, list(zip(INIT_METHODS, COVARIANCE_TYPES))),
        (wide, [("kmeans", "full"), ("random", "tied")]),
    ]
    with _KernelClock(job) as clock, job.timed("warmup"):
        # Every public path once per dtype, on a tiny problem: the fits discover each kernel's
        # argument types (pairing each init method with one covariance type covers both).
        for n_features, runs in problems:
            X64 = np.concatenate(
                [rng.normal(size=(60, n_features)), rng.normal(size=(60, n_features)) + 4.0]
            )
            weights = rng.uniform(0.5, 1.5, size=len(X64))
            for dtype in (np.float64, np.float32):
                X = np.ascontiguousarray(X64, dtype=dtype)
                for init, covariance_type in runs:
                    gm = GaussianMixture(
                        2,
                        covariance_type=covariance_type,
                        init_params=init,
                        max_iter=2,
                        random_state=0,
                        n_jobs=1,
                    )
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore", ConvergenceWarning)
                        gm.fit(X, sample_weight=weights if init == "kmeans" else None)
                    gm.predict_proba(X)
                    gm.score_samples(X)
    rows = []
    for name, dispatcher in kernels.items():
        stats = dispatcher.stats
        for signature in dispatcher.signatures:
            status = "compiled" if stats.cache_misses.get(signature) else "loaded"
            rows.append(
                {
                    "kernel": name,
                    # Every kernel has one compiled flavour since the serial twin went; the
                    # field stays for the readers of the JSON report.
                    "flavour": "parallel",
                    "dtype": str(getattr(signature[0], "dtype", signature[0])),
                    "status": status,
                    "signature": str(signature),
                }
            )
    rows.sort(key=lambda r: (r["kernel"], r["flavour"], r["dtype"]))
    job.report["compiled"] = rows
    job.report["cache_dir"] = _cache_dir()
    stream = job.result_stream
    for r in rows:
        print(f"{r['kernel']:<22} {r['flavour']:<9} {r['dtype']:<8} {r['status']}", file=stream)
    kernels = job.report["kernels"]
    print(
        f"warmup: {len(rows)} kernel signatures ready ({kernels['compiled']} compiled, "
        f"{kernels['loaded']} loaded from the cache) in {clock.total:.2f} s of compilation; "
        f"cache: {job.report['cache_dir']}",
        file=stream,
    )
    return EXIT_OK


def _cache_dir():
    from numba.core import config

    return config.CACHE_DIR or "__pycache__ next to the fastgmm sources"


def cmd_demo(job):
    from .demo import run_demo

    if job.threads_source != "--threads":
        # 612 rows: waking threads costs more than it saves, and much more on a busy node
        # (measured: 2 threads 46 s, 1 thread 3.5 s for the whole demo with 12 runnable
        # processes on 2 cores). An explicit --threads is still honoured.
        job.n_threads, job.threads_source = 1, "demo default (use --threads to change)"
    _import_estimators(job)
    plot = None if job.args.no_plot else job.args.plot
    if plot is not None:
        _check_outputs(job, plot=plot)
    with _KernelClock(job), _captured_warnings(job), job.timed("demo"):
        report = run_demo(
            seed=job.args.seed,
            plot=plot,
            n_jobs=job.n_threads,
            stream=job.result_stream,
            log=job.log,
        )
    job.report["demo"] = report
    if report.get("plot"):
        job.outputs["plot"] = os.path.abspath(report["plot"])
    return EXIT_OK
