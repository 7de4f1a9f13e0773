"""The runner of the ``fastgmm`` command: parse, settle the threads, run one command, exit.

The standard library only. The command's module is imported when the command runs, after the
thread count has been decided and ``NUMBA_NUM_THREADS`` set from it (Numba sizes its pool when
it is first imported); a command never imports another group's code.
"""

from __future__ import annotations

import importlib
import signal
import sys
import threading
import traceback

from .. import _interrupts
from ._errors import (
    EXIT_ERROR,
    EXIT_OK,
    EXIT_SIGINT,
    EXIT_USAGE,
    CommandError,
    Terminated,
    UsageError,
)
from ._job import Job, setup_threads
from ._parser import build_parser

# Each command's module and function. Commands that share helpers share a module:
# _fitting fits a model on INPUT (fit, select, outliers: the EM options, the fit report),
# _applying uses a model file (predict, score, sample, info: loading it, the row streaming),
# and warmup and demo share nothing with the others or each other.
COMMANDS = {
    "fit": ("_fitting", "cmd_fit"),
    "select": ("_fitting", "cmd_select"),
    "outliers": ("_fitting", "cmd_outliers"),
    "predict": ("_applying", "cmd_predict"),
    "score": ("_applying", "cmd_score"),
    "sample": ("_applying", "cmd_sample"),
    "info": ("_applying", "cmd_info"),
    "warmup": ("_warmup", "cmd_warmup"),
    "demo": ("_demo", "cmd_demo"),
}


def command_function(name):
    """The function that runs command ``name``, its module imported now."""
    module, function = COMMANDS[name]
    return getattr(importlib.import_module(f"{__package__}.{module}"), function)


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
        raise Terminated(signum)

    def on_int(signum, frame):
        _interrupts.record(signum)
        raise KeyboardInterrupt

    in_main_thread = threading.current_thread() is threading.main_thread()
    if in_main_thread:
        signal.signal(signal.SIGTERM, on_term)
        signal.signal(signal.SIGINT, on_int)
    try:
        setup_threads(job, args)
        run = command_function(args.command)
        # Everything the libraries print (the estimator's verbose progress lines included)
        # goes to stderr, so that stdout carries only results or the JSON object.
        sys.stdout = stderr
        try:
            with job.cleanup:
                code = run(job)
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
    except (Terminated, _interrupts.Interrupted) as exc:
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


def _one_line(exc):
    text = str(exc).strip() or type(exc).__name__
    return " ".join(text.split())
