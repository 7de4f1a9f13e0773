"""The parser of the ``fastgmm`` command (the standard library only).

``fastgmm --help`` and usage errors need nothing else, so they answer in milliseconds; the
commands' own modules, and NumPy with them, are imported only when a command runs (see
:mod:`fastgmm.cli._main`).
"""

from __future__ import annotations

import argparse

from .. import __version__
from .._names import COVARIANCE_ALIASES, COVARIANCE_TYPES, INIT_METHODS, SKLEARN_COVARIANCE_TYPES

_DESCRIPTION = """\
Gaussian mixture models for large data, from the command line.

INPUT is any file fastgmm streams: .npy (memory-mapped), .npz:KEY, .csv (header row),
.parquet, .h5:/DATASET (or .hdf5), .zarr[:PATH]. MODEL files are safe .npz model files
(JSON header + arrays, never pickle); see `fastgmm info MODEL`.
"""

_EPILOG = """\
examples:
  fastgmm fit data.npy -k 5 --out model.npz
  fastgmm select data.parquet -k 1:10 --covariance full,diag --out best.npz
  fastgmm predict model.npz data.npy --out labels.npy --proba proba.npy
  fastgmm outliers data.h5:/X -k bic --contamination 0.01 --out flags.npy
  fastgmm warmup            # once per node or cache directory, before an array job
  fastgmm demo              # the whole workflow on generated data, with a PNG

exit codes:
  0    success
  1    data, model or I/O error (one-line message; add --debug for the traceback)
  2    usage error (bad option or value)
  3    the fit did not converge and --strict was given (no output is written)
  130  interrupted (Ctrl-C); 143 terminated (SIGTERM). No partial output file is left.

progress (stderr):
  fit logs one line per --verbose-interval EM iterations. On a terminal, every pass over
  INPUT also draws a bar (rows; "init pass 1", "EM pass 3", "scoring", ...), erased when the
  pass ends; this needs tqdm (pip install 'fastgmm[cli]'). Redirected stderr (a batch job's
  log file) gets no bars. --quiet silences both.

threads (first found wins):
  --threads, NUMBA_NUM_THREADS, SLURM_CPUS_PER_TASK, OMP_NUM_THREADS, the CPU affinity mask.
  Results are bit-identical for any thread count.

environment:
  NUMBA_CACHE_DIR  where compiled kernels are cached (default: next to the installed
                   package). On a shared or read-only install, point it at a writable
                   directory shared by the job's nodes and run `fastgmm warmup` once.

Every command takes --json (one JSON object on stdout; logs stay on stderr), --threads,
--quiet and --debug. `fastgmm COMMAND --help` shows a command's options and examples.
"""


# ------------------------------------------------------------------------- argument types
def _bounded(convert, minimum, what):
    """An argparse ``type``: ``convert(text)`` if finite and >= ``minimum``, else a usage error."""

    def parse(text):
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if not minimum <= value < float("inf"):  # also refuses NaN
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return value

    return parse


_positive_int = _bounded(int, 1, "a positive integer")
_non_negative_int = _bounded(int, 0, "an integer >= 0")
_non_negative_float = _bounded(float, 0.0, "a finite number >= 0")


def _seed(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer seed, got {text!r}") from None
    if not 0 <= value < 2**32:
        raise argparse.ArgumentTypeError(f"seed must be in [0, 2**32), got {text!r}")
    return value


def parse_k_range(text):
    """``"1:10"`` (inclusive), ``"2,4,8"`` or ``"5"`` as a sorted list of component counts.

    Examples
    --------
    >>> parse_k_range("1:4"), parse_k_range("8,2"), parse_k_range("3")
    ([1, 2, 3, 4], [2, 8], [3])
    """
    values = set()
    for part in text.split(","):
        part = part.strip()
        try:
            if ":" in part:
                low, high = (int(p) for p in part.split(":"))
                if low > high:
                    raise ValueError
                values.update(range(low, high + 1))
            else:
                values.add(int(part))
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected component counts like 1:10, 2,4,8 or 5, got {text!r}"
            ) from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"component counts must be >= 1, got {text!r}")
    return sorted(values)


def _k_or_bic(text):
    if text == "bic":
        return "bic"
    return _positive_int(text)


def _covariance_list(text):
    types = [
        name
        for t in text.split(",")
        if t.strip()
        for name in COVARIANCE_ALIASES.get(t.strip(), (t.strip(),))
    ]
    bad = [t for t in types if t not in COVARIANCE_TYPES]
    if bad or not types:
        raise argparse.ArgumentTypeError(
            f"covariance types must be among {', '.join(COVARIANCE_TYPES)} (or the groups "
            f"{', '.join(COVARIANCE_ALIASES)}), got {text!r}"
        )
    return list(dict.fromkeys(types))


def _contamination(text):
    if text == "auto":
        return "auto"
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected 'auto' or a fraction in (0, 0.5], got {text!r}"
        ) from None
    if not 0 < value <= 0.5:
        raise argparse.ArgumentTypeError(f"contamination must be in (0, 0.5], got {text!r}")
    return value


def _columns(text):
    columns = [c.strip() for c in text.split(",") if c.strip()]
    if not columns:
        raise argparse.ArgumentTypeError("expected comma-separated column names")
    return columns


# ------------------------------------------------------------------------------- the parser
def _add_common(parser):
    group = parser.add_argument_group("job options")
    group.add_argument(
        "--threads",
        type=_positive_int,
        metavar="N",
        help="threads for the kernels (default: NUMBA_NUM_THREADS, SLURM_CPUS_PER_TASK, "
        "OMP_NUM_THREADS, then the CPU affinity mask)",
    )
    group.add_argument(
        "--json", action="store_true", help="print one JSON object on stdout (logs on stderr)"
    )
    group.add_argument("-q", "--quiet", action="store_true", help="no progress bars or log lines")
    group.add_argument("--debug", action="store_true", help="show tracebacks on errors")


def _add_model(parser):
    parser.add_argument("model", metavar="MODEL", help="model file written by fastgmm")


def _add_input(parser, *, with_dtype=True):
    parser.add_argument("input", metavar="INPUT", help="data file (see `fastgmm --help`)")
    group = parser.add_argument_group("input options")
    group.add_argument(
        "--batch-size", type=_positive_int, metavar="ROWS", help="rows read per chunk"
    )
    group.add_argument(
        "--columns", type=_columns, metavar="A,B", help="CSV/Parquet columns to use (default all)"
    )
    if with_dtype:
        group.add_argument(
            "--dtype",
            choices=("float32", "float64"),
            help="compute dtype (default: float32 input stays float32, anything else float64)",
        )


def _add_em(parser, *, covariance_list=False):
    group = parser.add_argument_group("EM options")
    if covariance_list:
        group.add_argument(
            "--covariance",
            "--covariance-type",
            "--models",
            dest="covariance",
            type=_covariance_list,
            # scikit-learn's four, not every accepted type: the default grid stays what its
            # help says when more covariance models are added.
            default=list(SKLEARN_COVARIANCE_TYPES),
            metavar="TYPES",
            help="comma-separated covariance types to try, or 'mclust' for mclust's fourteen "
            "models (default: scikit-learn's four)",
        )
    else:
        group.add_argument(
            "--covariance",
            "--covariance-type",
            dest="covariance",
            choices=COVARIANCE_TYPES,
            default="full",
            help="covariance type (default: full)",
        )
    group.add_argument(
        "--max-iter", type=_non_negative_int, default=100, metavar="N", help="(default: 100)"
    )
    group.add_argument(
        "--tol",
        type=_non_negative_float,
        default=1e-3,
        metavar="TOL",
        help="stop when the mean log-likelihood changes less (default: 1e-3)",
    )
    group.add_argument(
        "--n-init", type=_positive_int, default=1, metavar="N", help="restarts (default: 1)"
    )
    group.add_argument("--init", choices=INIT_METHODS, default="kmeans", help="(default: kmeans)")
    group.add_argument(
        "--reg-covar",
        type=_non_negative_float,
        default=1e-6,
        metavar="R",
        help="added to covariance diagonals (default: 1e-6)",
    )
    group.add_argument("--seed", type=_seed, metavar="S", help="random seed (reproducible fits)")
    group.add_argument(
        "--verbose-interval",
        type=_positive_int,
        default=10,
        metavar="N",
        help="EM iterations between progress lines on stderr (default: 10)",
    )
    group.add_argument(
        "--strict",
        action="store_true",
        help="exit with code 3, writing nothing, if the fit did not converge",
    )
    group.add_argument(
        "--missing",
        choices=("raise", "marginalize"),
        default="raise",
        help="NaN in INPUT: an error (default), or missing entries integrated out exactly; "
        "predict and score then follow the model file's setting",
    )


def _add_mclust(parser):
    group = parser.add_argument_group("mclust options")
    group.add_argument(
        "--prior",
        choices=("default",),
        help="MAP estimates under mclust's conjugate prior with its default hyperparameters "
        "(mclust's models EII VII EEI VEI EVI VVI EEE EEV VEV VVV)",
    )
    group.add_argument(
        "--noise-init",
        metavar="MASK.npy",
        help="add a uniform noise component; the .npy boolean mask marks the rows it starts with",
    )
    group.add_argument(
        "--convergence",
        choices=("sklearn", "mclust"),
        default="sklearn",
        help="'mclust': mclust's relative test on the log-likelihood (default: sklearn)",
    )


def _command(subparsers, name, help_text, epilog):
    parser = subparsers.add_parser(
        name,
        help=help_text,
        description=help_text,
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    return parser


def build_parser():
    """The argparse parser of the ``fastgmm`` command (standard library only).

    Examples
    --------
    >>> from fastgmm.cli import build_parser
    >>> args = build_parser().parse_args(["select", "x.npy", "-k", "2:4", "--out", "m.npz"])
    >>> args.command, args.n_components, args.covariance
    ('select', [2, 3, 4], ['full', 'tied', 'diag', 'spherical'])
    """
    parser = argparse.ArgumentParser(
        prog="fastgmm",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"fastgmm {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True

    p = _command(
        subparsers,
        "fit",
        "fit a Gaussian mixture with K components and save it",
        "examples:\n"
        "  fastgmm fit data.npy -k 5 --out model.npz\n"
        "  fastgmm fit data.csv --columns x,y -k 3 --covariance diag --seed 0 --out m.npz\n"
        "  fastgmm fit big.h5:/X -k 8 --dtype float32 --threads 8 --json --strict --out m.npz\n"
        "  fastgmm fit data.npy -k 3 --covariance-type VEV --init hc --out m.npz",
    )
    _add_input(p)
    p.add_argument("-k", "--n-components", type=_positive_int, required=True, metavar="K")
    p.add_argument("--out", required=True, metavar="MODEL", help="model file to write (.npz)")
    _add_em(p)
    _add_mclust(p)
    _add_common(p)

    p = _command(
        subparsers,
        "select",
        "choose the number of components and covariance type by BIC, AIC or ICL",
        "examples:\n"
        "  fastgmm select data.npy -k 1:10 --out best.npz\n"
        "  fastgmm select data.parquet -k 2,4,8,16 --covariance full,diag --criterion aic "
        "--out best.npz\n"
        "  fastgmm select data.npy -k 1:9 --models mclust --init hc --out best.npz\n\n"
        "The criterion table is printed (stdout; stderr with --json, where it is also in the "
        "JSON as 'results'). Lower is better, as in scikit-learn: R's mclust prints BIC and ICL "
        "negated (higher is better).",
    )
    _add_input(p)
    p.add_argument(
        "-k",
        "--n-components",
        type=parse_k_range,
        default=parse_k_range("1:10"),
        metavar="RANGE",
        help="component counts: 1:10 (inclusive), 2,4,8 or 5 (default: 1:10)",
    )
    p.add_argument("--criterion", choices=("bic", "aic", "icl"), default="bic")
    p.add_argument("--out", required=True, metavar="MODEL", help="best model file to write")
    _add_em(p, covariance_list=True)
    _add_mclust(p)
    _add_common(p)

    p = _command(
        subparsers,
        "predict",
        "write the most probable component of each row (and optionally probabilities)",
        "examples:\n"
        "  fastgmm predict model.npz data.npy --out labels.npy\n"
        "  fastgmm predict model.npz data.h5:/X --out labels.npy --proba proba.npy\n\n"
        "For an outlier-detector model the labels are +1 (inlier) and -1 (outlier).",
    )
    _add_model(p)
    _add_input(p, with_dtype=False)
    p.add_argument("--out", required=True, metavar="LABELS.npy", help="labels (int64, .npy)")
    p.add_argument("--proba", metavar="PROBA.npy", help="also write posterior probabilities")
    _add_common(p)

    p = _command(
        subparsers,
        "score",
        "write the log-likelihood of each row under a model",
        "examples:\n  fastgmm score model.npz data.npy --out scores.npy",
    )
    _add_model(p)
    _add_input(p, with_dtype=False)
    p.add_argument("--out", required=True, metavar="SCORES.npy", help="scores (float64, .npy)")
    _add_common(p)

    p = _command(
        subparsers,
        "outliers",
        "flag the rows with unusually low density under a fitted mixture",
        "examples:\n"
        "  fastgmm outliers data.npy -k bic --contamination 0.01 --out flags.npy\n"
        "  fastgmm outliers data.npy -k 3 --out flags.npy --model-out detector.npz\n\n"
        "FLAGS.npy holds +1 for inliers and -1 for outliers (int64), as the detector's "
        "predict().",
    )
    _add_input(p)
    p.add_argument(
        "-k",
        "--n-components",
        type=_k_or_bic,
        default=1,
        metavar="K|bic",
        help="components of the density model, or 'bic' to choose them (default: 1)",
    )
    p.add_argument(
        "--contamination",
        type=_contamination,
        default="auto",
        metavar="C",
        help="expected fraction of outliers in (0, 0.5], or 'auto' (default)",
    )
    p.add_argument("--out", required=True, metavar="FLAGS.npy", help="+1/-1 flags (.npy)")
    p.add_argument("--scores", metavar="SCORES.npy", help="also write the density scores")
    p.add_argument("--model-out", metavar="MODEL", help="also save the fitted detector")
    _add_em(p)
    _add_common(p)

    p = _command(
        subparsers,
        "sample",
        "draw rows from a fitted mixture",
        "examples:\n"
        "  fastgmm sample model.npz -n 100000 --seed 0 --out X.npy --labels y.npy\n\n"
        "Rows come grouped by component within each batch of --batch-size rows; with "
        "n <= batch size the result equals GaussianMixture.sample(n).",
    )
    _add_model(p)
    p.add_argument("-n", "--n-samples", type=_positive_int, required=True, metavar="N")
    p.add_argument("--out", required=True, metavar="X.npy", help="samples (float64, .npy)")
    p.add_argument("--labels", metavar="Y.npy", help="also write each row's component")
    p.add_argument("--seed", type=_seed, metavar="S", help="default: the model's random_state")
    p.add_argument(
        "--batch-size", type=_positive_int, default=65536, metavar="ROWS", help="rows per draw"
    )
    _add_common(p)

    p = _command(
        subparsers,
        "info",
        "print a model file's header and a summary of its parameters",
        "examples:\n  fastgmm info model.npz\n  fastgmm info model.npz --json | jq .header",
    )
    _add_model(p)
    _add_common(p)

    p = _command(
        subparsers,
        "demo",
        "run the whole workflow on generated 2-D data and draw it",
        "examples:\n"
        "  fastgmm demo\n"
        "  fastgmm demo --plot /tmp/demo.png --seed 3\n\n"
        "Generates overlapping 2-D clusters with planted anomalies, picks K by BIC, reports\n"
        "soft assignments of points between clusters, the anomalies found (precision and\n"
        "recall) and the BIC table, and draws them when matplotlib is installed.",
    )
    plot = p.add_mutually_exclusive_group()
    plot.add_argument(
        "--plot",
        default="fastgmm_demo.png",
        metavar="PATH",
        help="PNG to write (default: fastgmm_demo.png in the current directory)",
    )
    plot.add_argument("--no-plot", action="store_true", help="do not draw")
    p.add_argument("--seed", type=_seed, default=0, metavar="S", help="data seed (default 0)")
    _add_common(p)

    p = _command(
        subparsers,
        "warmup",
        "compile and cache every kernel signature (float32 and float64)",
        "examples:\n"
        "  fastgmm warmup\n"
        "  NUMBA_CACHE_DIR=/shared/numba-cache fastgmm warmup   # once, before an array job\n\n"
        "Later processes using the same cache directory load the kernels instead of compiling.",
    )
    _add_common(p)
    return parser
