"""The commands that use a model file: ``predict``, ``score``, ``sample`` and ``info``.

They share the loading of MODEL and the search for the mixture inside it (a selection's best,
an outlier detector's density model). Each takes the :class:`~fastgmm.cli._job.Job` of the
run and returns the exit code.
"""

from __future__ import annotations

import contextlib
import os

import numpy as np

from ..persistence import atomic_path, load, read_header
from ._errors import EXIT_OK, CommandError
from ._shared import (
    check_outputs,
    import_estimators,
    mixture_report,
    set_runtime_params,
    stream_rows,
)


def cmd_predict(job):
    """``fastgmm predict``: each row's component (and probabilities), chunk by chunk."""
    args = job.args
    model = _model_to_apply(job, out=args.out, proba=args.proba)
    outputs = {"labels": (args.out, model.predict, np.int64, None)}
    if args.proba:
        if not hasattr(model, "predict_proba"):
            raise CommandError(f"a {type(model).__name__} has no probabilities to write")
        n_columns = int(_inner_mixture(model).n_components)
        outputs["proba"] = (args.proba, model.predict_proba, np.float64, n_columns)
    n = stream_rows(job, model, outputs, "predicting")
    print(f"predict: {n} rows labelled", file=job.result_stream)
    return EXIT_OK


def cmd_score(job):
    """``fastgmm score``: each row's log-likelihood under the model, chunk by chunk."""
    args = job.args
    model = _model_to_apply(job, out=args.out)
    n = stream_rows(
        job, model, {"scores": (args.out, model.score_samples, np.float64, None)}, "scoring"
    )
    print(f"score: {n} rows scored", file=job.result_stream)
    return EXIT_OK


def _model_to_apply(job, **outputs):
    """Check the output paths, then load MODEL to run on the job's threads (predict, score)."""
    check_outputs(job, **outputs)
    import_estimators(job)
    model = _load_model(job, job.args.model)
    set_runtime_params(model, n_jobs=job.n_threads)
    return model


def _load_model(job, path):
    with job.timed("load"):
        model = load(path)
    job.report["model_file"] = os.path.abspath(path)
    return model


def _inner_mixture(model):
    """The GaussianMixture inside a model (itself, a selection's best, a detector's)."""
    from ..mixture import GaussianMixture

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


def cmd_sample(job):
    """``fastgmm sample``: draw rows from the model in batches of one random stream."""
    args = job.args
    check_outputs(job, out=args.out, labels=args.labels)
    import_estimators(job)
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
    """``fastgmm info``: the model file's header and a summary of its parameters."""
    args = job.args
    with job.timed("load"):
        header = read_header(args.model)
    import_estimators(job, announce=False)
    model = _load_model(job, args.model)
    summary = _summary(model)
    job.report["header"] = header
    job.report["summary"] = summary
    print(_format_info(args.model, header, summary), file=job.result_stream)
    return EXIT_OK


def _summary(model):
    from ..mixture import GaussianMixture

    if isinstance(model, GaussianMixture):
        report = mixture_report(model)
        from ..covariance import get_model

        k, d = model.means_.shape
        dense = get_model(model.covariance_type).dense(model.covariances_, k, d)
        variances = np.diagonal(dense, axis1=1, axis2=2)
        if getattr(model, "noise_volume_", None) is not None:
            report["noise"] = {"weight": model.noise_weight_, "volume": model.noise_volume_}
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
    if "noise" in summary:
        noise = summary["noise"]
        density = f"uniform noise, density 1/{noise['volume']:.6g}"
        lines.append(f"{indent}{'-1':>3} {noise['weight']:8.4f}  {density}")
    return lines
