"""The ``fastgmm`` command line: fit, select, predict, score, outliers, sample, info, demo, warmup.

Built for batch jobs. This module imports only the standard library, so ``fastgmm --help`` and
usage errors answer in a few milliseconds; NumPy, scikit-learn and Numba are imported by the
command that runs (:mod:`fastgmm._cli_commands`), after the thread count has been decided and
``NUMBA_NUM_THREADS`` set from it.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
import traceback

from . import _interrupts

__all__ = ["main"]

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_NOT_CONVERGED = 3
EXIT_SIGINT = 128 + signal.SIGINT
EXIT_SIGTERM = 128 + signal.SIGTERM

COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")
INIT_METHODS = ("kmeans", "k-means++", "random", "random_from_data")
THREAD_VARIABLES = ("NUMBA_NUM_THREADS", "SLURM_CPUS_PER_TASK", "OMP_NUM_THREADS")

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


class UsageError(Exception):
    """A bad command-line value found after parsing (reported like argparse's errors, exit 2)."""


class CommandError(Exception):
    """A data, model or I/O problem found by a command (exit 1, one-line message)."""


class _Terminated(BaseException):
    """Raised by the SIGTERM handler so that ``finally`` blocks remove temporary files."""

    def __init__(self, signum):
        super().__init__(signum)
        self.signum = signum


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
    types = [t.strip() for t in text.split(",") if t.strip()]
    bad = [t for t in types if t not in COVARIANCE_TYPES]
    if bad or not types:
        raise argparse.ArgumentTypeError(
            f"covariance types must be among {', '.join(COVARIANCE_TYPES)}, got {text!r}"
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
            type=_covariance_list,
            default=list(COVARIANCE_TYPES),
            metavar="TYPES",
            help="comma-separated covariance types to try (default: all four)",
        )
    else:
        group.add_argument(
            "--covariance",
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
    """The argparse parser of the ``fastgmm`` command (standard library only)."""
    parser = argparse.ArgumentParser(
        prog="fastgmm",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    from . import __version__

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
        "  fastgmm fit big.h5:/X -k 8 --dtype float32 --threads 8 --json --strict --out m.npz",
    )
    _add_input(p)
    p.add_argument("-k", "--n-components", type=_positive_int, required=True, metavar="K")
    p.add_argument("--out", required=True, metavar="MODEL", help="model file to write (.npz)")
    _add_em(p)
    _add_common(p)

    p = _command(
        subparsers,
        "select",
        "choose the number of components and covariance type by BIC or AIC",
        "examples:\n"
        "  fastgmm select data.npy -k 1:10 --out best.npz\n"
        "  fastgmm select data.parquet -k 2,4,8,16 --covariance full,diag --criterion aic "
        "--out best.npz\n\n"
        "The criterion table is printed (stdout; stderr with --json, where it is also in the "
        "JSON as 'results').",
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
    p.add_argument("--criterion", choices=("bic", "aic"), default="bic")
    p.add_argument("--out", required=True, metavar="MODEL", help="best model file to write")
    _add_em(p, covariance_list=True)
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
    p.add_argument("model", metavar="MODEL", help="model file written by fastgmm")
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
    p.add_argument("model", metavar="MODEL", help="model file written by fastgmm")
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
    p.add_argument("model", metavar="MODEL", help="model file written by fastgmm")
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
    p.add_argument("model", metavar="MODEL", help="model file written by fastgmm")
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


# ----------------------------------------------------------------------------- the runtime
def resolve_threads(requested, environ=None):
    """The thread count and where it came from.

    ``--threads`` > ``NUMBA_NUM_THREADS`` > ``SLURM_CPUS_PER_TASK`` > ``OMP_NUM_THREADS`` > the
    CPU affinity mask (the CPUs this process may run on).

    Returns
    -------
    n_threads : int
    source : str

    Raises
    ------
    UsageError
        An environment variable holds something other than a positive integer.

    Examples
    --------
    >>> resolve_threads(None, {"SLURM_CPUS_PER_TASK": "4", "OMP_NUM_THREADS": "8"})
    (4, 'SLURM_CPUS_PER_TASK')
    >>> resolve_threads(2, {"NUMBA_NUM_THREADS": "16"})
    (2, '--threads')
    """
    environ = os.environ if environ is None else environ
    if requested is not None:
        return int(requested), "--threads"
    for name in THREAD_VARIABLES:
        text = environ.get(name, "").strip()
        if not text:
            continue
        # OMP_NUM_THREADS may list one count per nesting level ("4,2"): the first applies.
        first = text.split(",")[0].strip() if name == "OMP_NUM_THREADS" else text
        try:
            value = int(first)
        except ValueError:
            value = 0
        if value < 1:
            raise UsageError(f"{name}={text!r} is not a positive integer")
        return value, name
    try:
        return max(1, len(os.sched_getaffinity(0))), "affinity"
    except AttributeError:  # pragma: no cover - no affinity API (macOS, Windows)
        return max(1, os.cpu_count() or 1), "cpu_count"


class Job:
    """What one command run reports: logs on stderr, and the JSON object on stdout."""

    def __init__(self, args, stdout, stderr):
        self.args = args
        self.stdout = stdout
        self.stderr = stderr
        self.started = time.perf_counter()
        self.n_threads = None
        self.threads_source = None
        self.timings = {}
        self.outputs = {}
        self.warnings = []
        self.report = {}
        # Bars per pass over the input (fastgmm._progress.PassBars), set by the command runner:
        # drawn only on a terminal, so this module stays free of tqdm.
        self.progress = None

    @property
    def quiet(self):
        return getattr(self.args, "quiet", False)

    @property
    def json_mode(self):
        return getattr(self.args, "json", False)

    @property
    def result_stream(self):
        """Where human-readable results go: stdout, or stderr when stdout carries the JSON
        (nowhere with ``--json --quiet``)."""
        if not self.json_mode:
            return self.stdout
        if self.quiet:
            import io

            return io.StringIO()
        return self.stderr

    def log(self, message):
        if not self.quiet:
            print(f"fastgmm {self.args.command}: {message}", file=self.stderr, flush=True)

    def warn(self, message):
        self.warnings.append(message)
        print(f"fastgmm {self.args.command}: warning: {message}", file=self.stderr, flush=True)

    def timed(self, name):
        return _Timer(self, name)

    def payload(self, status, exit_code, error=None):
        from importlib import metadata

        versions = {"python": sys.version.split()[0]}
        for dist in ("fastgmm", "numpy", "scipy", "scikit-learn", "numba"):
            try:
                versions[dist] = metadata.version(dist)
            except metadata.PackageNotFoundError:
                versions[dist] = None
        self.timings["total"] = time.perf_counter() - self.started
        out = {
            "command": self.args.command,
            "status": status,
            "exit_code": exit_code,
            "versions": versions,
            "threads": self.n_threads,
            "threads_source": self.threads_source,
            "timings": {k: round(v, 6) for k, v in self.timings.items()},
            "outputs": self.outputs,
            "warnings": self.warnings,
        }
        out.update(self.report)
        if error is not None:
            out["error"] = error
        return out

    def emit_json(self, status, exit_code, error=None):
        if self.json_mode:
            text = json.dumps(self.payload(status, exit_code, error), default=_json_default)
            print(text, file=self.stdout, flush=True)


class _Timer:
    def __init__(self, job, name):
        self.job, self.name = job, name

    def __enter__(self):
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.job.timings[self.name] = self.job.timings.get(self.name, 0.0) + (
            time.perf_counter() - self.start
        )
        return False


def _json_default(value):
    """JSON for numpy scalars and arrays; non-finite floats become null."""
    if hasattr(value, "tolist"):
        return _finite_or_none(value.tolist())
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _finite_or_none(value):
    if isinstance(value, float):
        return value if value == value and abs(value) != float("inf") else None
    if isinstance(value, list):
        return [_finite_or_none(v) for v in value]
    return value


def _setup_threads(job, args):
    n_threads, source = resolve_threads(getattr(args, "threads", None))
    # Numba sizes its pool from NUMBA_NUM_THREADS when it is first imported, which happens
    # below this point: sizing it to the job avoids spinning up threads that would only
    # compete with the job's neighbours on a shared node. --threads overrides the variable.
    if "numba" not in sys.modules and (
        source == "--threads" or "NUMBA_NUM_THREADS" not in os.environ
    ):
        os.environ["NUMBA_NUM_THREADS"] = str(n_threads)
    job.n_threads, job.threads_source = n_threads, source


def _one_line(exc):
    text = str(exc).strip() or type(exc).__name__
    return " ".join(text.split())


def main(argv=None):
    """Run the ``fastgmm`` command line; returns the exit code.

    Parameters
    ----------
    argv : list of str, optional
        Arguments without the program name (default ``sys.argv[1:]``).

    Returns
    -------
    int
        0 success, 1 data/model/I-O error, 2 usage error, 3 not converged under ``--strict``,
        130 interrupted, 143 terminated.

    Examples
    --------
    >>> from fastgmm.cli import main
    >>> main(["info", "missing.npz", "--quiet"])
    1
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: --help/--version (0) or a usage error (2)
        return int(exc.code or 0)

    stdout, stderr = sys.stdout, sys.stderr
    job = Job(args, stdout, stderr)
    previous_term = signal.getsignal(signal.SIGTERM)
    previous_int = signal.getsignal(signal.SIGINT)

    # Each handler also records its signal: an exception raised while a ctypes callback runs
    # (Numba loading a kernel) is dropped, and the record still stops the output's commit.
    def on_term(signum, frame):
        _interrupts.record(signum)
        raise _Terminated(signum)

    def on_int(signum, frame):
        _interrupts.record(signum)
        raise KeyboardInterrupt

    in_main_thread = _in_main_thread()
    if in_main_thread:
        signal.signal(signal.SIGTERM, on_term)
        signal.signal(signal.SIGINT, on_int)
    try:
        _setup_threads(job, args)
        from . import _cli_commands

        # Everything the libraries print (the estimator's verbose progress lines included)
        # goes to stderr, so that stdout carries only results or the JSON object.
        sys.stdout = stderr
        try:
            code = _cli_commands.run(job)
        finally:
            sys.stdout = stdout
        job.emit_json("ok" if code == EXIT_OK else "not_converged", code)
        return code
    except UsageError as exc:
        print(
            f"fastgmm {args.command}: error: {_one_line(exc)} "
            f"(see `fastgmm {args.command} --help`)",
            file=stderr,
        )
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"fastgmm {args.command}: interrupted; no output written", file=stderr)
        job.emit_json("interrupted", EXIT_SIGINT, "interrupted (SIGINT)")
        return EXIT_SIGINT
    except (_Terminated, _interrupts.Interrupted) as exc:
        print(f"fastgmm {args.command}: terminated; no output written", file=stderr)
        job.emit_json("terminated", 128 + exc.signum, "terminated (SIGTERM)")
        return 128 + exc.signum
    except Exception as exc:
        if args.debug:
            traceback.print_exc(file=stderr)
        message = _one_line(exc)
        if isinstance(exc, MemoryError):
            message = f"out of memory: {message}"
        elif not isinstance(exc, (CommandError, ValueError, TypeError, OSError, ImportError)):
            message = f"internal error: {type(exc).__name__}: {message} (rerun with --debug)"
        print(f"fastgmm {args.command}: error: {message}", file=stderr)
        job.emit_json("error", EXIT_ERROR, message)
        return EXIT_ERROR
    finally:
        _interrupts.clear()
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous_term)
            signal.signal(signal.SIGINT, previous_int)


def _in_main_thread():
    import threading

    return threading.current_thread() is threading.main_thread()


def console_main():
    """Entry point of the console script and ``python -m fastgmm``."""
    sys.exit(main())


if __name__ == "__main__":
    # Run the imported module's main, not this __main__ copy: the command modules catch and
    # raise fastgmm.cli's exception classes, which must be the ones main() catches.
    from fastgmm.cli import console_main as _console_main

    _console_main()
