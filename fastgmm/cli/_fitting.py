"""The commands that fit a model on INPUT: ``fit``, ``select`` and ``outliers``.

They share the EM options, the reading of INPUT in the requested dtype, the fit report and the
saving of the model. Each takes the :class:`~fastgmm.cli._job.Job` of the run and returns the
exit code.
"""

from __future__ import annotations

import os

import numpy as np

from ..persistence import save
from ..sources import open_source
from . import _timing
from ._errors import EXIT_NOT_CONVERGED, EXIT_OK
from ._shared import (
    captured_warnings,
    check_outputs,
    finite,
    import_estimators,
    mixture_report,
    open_input,
    set_runtime_params,
    stream_rows,
)


def cmd_fit(job):
    """``fastgmm fit``: fit K components by EM, report BIC and AIC, save the model."""
    args = job.args
    check_outputs(job, out=args.out)
    source = open_input(job)
    GaussianMixture = import_estimators(job)
    data = _as_dtype(job, source)
    gm = GaussianMixture(
        args.n_components,
        covariance_type=args.covariance,
        **_em_params(job),
        **_mclust_params(job),
    )
    job.log(f"fitting {args.n_components} {args.covariance} components")
    # Passes before the initialisation: the row count of a CSV file or a converted input.
    job.progress.phase("counting rows", numbered=False)
    with _timing.KernelClock(job), _timing.fit_phases(job, gm), captured_warnings(job):
        with job.timed("fit"):
            # The estimator streams the source: one pass per EM iteration, chunks prefetched.
            gm.fit(data)
        job.progress.phase("scoring", numbered=False)
        with job.timed("score"):
            mean_log_likelihood = gm.score(data)
    report = mixture_report(gm, data.n_samples, mean_log_likelihood)
    job.report["input"]["n_samples"] = data.n_samples
    job.report["model"] = report
    print(f"fit: {_describe_fit(report)}", file=job.result_stream)
    if args.strict and not gm.converged_:
        return _not_converged(job, "the fit")
    _save_model(job, gm, args.out, extra={"bic": report["bic"], "aic": report["aic"]})
    return EXIT_OK


def cmd_select(job):
    """``fastgmm select``: fit every (K, covariance type) candidate together, save the best."""
    args = job.args
    check_outputs(job, out=args.out)
    source = open_input(job)
    import_estimators(job)
    data = _as_dtype(job, source)
    with job.timed("import"):
        from ..selection import select_model
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
    with _timing.KernelClock(job), captured_warnings(job), job.timed("fit"):
        result = select_model(
            data,
            n_components=args.n_components,
            covariance_types=tuple(args.covariance),
            criterion=args.criterion,
            n_init=n_init,
            random_state=seed,
            **params,
            **_mclust_params(job),
        )
    best = result.best_estimator_
    rows = [_plain_record(r) for r in result.results_]
    chosen = rows[result.best_index_]
    n_samples = int(result.n_samples)
    report = mixture_report(best)
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
    if len(result.covariance_types) > 1 and len(result.n_components_grid) > 1:
        print(_format_grid(result, args.criterion), file=job.result_stream)
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
            value = finite(value)
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


def _format_grid(result, criterion, n_best=3):
    """The criterion as a K x covariance-type table with the best three, as mclust's summary
    prints ``mclustBIC``; with fastgmm's sign."""
    table = result.criterion_table(criterion)
    name = criterion.upper()
    types = result.covariance_types
    width = max(10, *(len(t) + 1 for t in types))
    lines = [
        f"{name} by K and covariance type (lower is better; R's mclust prints these values "
        "negated, higher is better):",
        f"{'K':>4}" + "".join(f"{t:>{width}}" for t in types),
    ]
    for k, row in zip(result.n_components_grid, table):
        cells = "".join(f"{'NA' if not np.isfinite(v) else format(v, '.2f'):>{width}}" for v in row)
        lines.append(f"{k:>4}{cells}")
    order = [i for i in np.argsort(table, axis=None) if np.isfinite(table.flat[i])][:n_best]
    best = table.flat[order[0]]
    tops = []
    for i in order:
        k, j = np.unravel_index(i, table.shape)
        value = table.flat[i]
        tops.append(
            f"{types[j]},{result.n_components_grid[k]} = {value:.2f}"
            + ("" if value == best else f" (+{value - best:.2f})")
        )
    lines.append(f"Best {name} values: " + "; ".join(tops))
    return "\n".join(lines)


def _mclust_params(job):
    """``prior``, ``noise_init`` and ``convergence`` from the command line."""
    args = job.args
    params = {"prior": args.prior, "convergence": args.convergence}
    if args.noise_init is not None:
        try:
            mask = np.load(args.noise_init, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise ValueError(f"--noise-init: cannot read {args.noise_init!r} ({exc})") from None
        params["noise_init"] = mask
    return params


def _cell(record, key, width, fmt):
    value = record.get(key)
    text = "-" if value is None else format(value, fmt)
    return f"{text:>{width}}"


def cmd_outliers(job):
    """``fastgmm outliers``: fit the density model, flag the low-density rows chunk by chunk."""
    args = job.args
    check_outputs(job, out=args.out, scores=args.scores, model_out=args.model_out)
    source = open_input(job)
    import_estimators(job)
    data = _as_dtype(job, source)
    with job.timed("import"):
        from ..outliers import GaussianMixtureOutlierDetector
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
    with _timing.KernelClock(job), captured_warnings(job), job.timed("fit"):
        detector.fit(data)
    mixture = detector.mixture_
    report = mixture_report(mixture)
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
    n_rows = stream_rows(job, detector, outputs, "flagging", source=data)
    n_out = counts["outliers"]
    job.report["outliers"] = {
        "n_outliers": n_out,
        "fraction": n_out / n_rows,
        "threshold": finite(detector.threshold_),
        "offset": finite(detector.offset_),
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
    opened = open_source(converted, batch_size=source.batch_size)
    opened.allow_nan = source.allow_nan
    return opened


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
        "missing": args.missing,
    }


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
    set_runtime_params(model, verbose=0, n_jobs=None)
    with job.timed("write"):
        save(model, path, metadata=metadata)
    job.outputs[key] = os.path.abspath(path)
    job.log(f"wrote {path}")
