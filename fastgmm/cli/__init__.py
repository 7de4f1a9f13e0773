"""The ``fastgmm`` command line: fit, select, predict, score, outliers, sample, info, demo, warmup.

Built for batch jobs. ``fastgmm --help`` and usage errors import the standard library only, so
they answer in milliseconds; NumPy, scikit-learn and Numba are imported by the command that
runs, after the thread count has been decided.

Modules (each imports only those below it):

- ``_main``: :func:`main`, the signal handlers and the exit code of each error; imports the
  running command's module, and nothing else of the commands.
- ``_parser`` (the argparse parser) and ``_job`` (a run's threads, timings, log lines and JSON
  report): the standard library only.
- ``_errors``: exit codes and exception classes, the standard library only.
- The commands, imported when they run: ``_fitting`` (fit, select, outliers), ``_applying``
  (predict, score, sample, info), ``_warmup`` and ``_demo``; with their helpers ``_shared``
  (inputs, outputs, model files, reports), ``_timing`` (the library's events and Numba's
  compilations as timings) and ``_progress`` (tqdm bars on a terminal).
"""

from ._job import resolve_threads
from ._main import main
from ._parser import build_parser, parse_k_range

__all__ = ["build_parser", "main", "parse_k_range", "resolve_threads"]
