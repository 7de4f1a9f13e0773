"""One run of the ``fastgmm`` command: its thread count, timings, log lines and JSON report.

The standard library only: the runner (:mod:`fastgmm.cli._main`) creates the :class:`Job`
before any command module, and NumPy with it, is imported.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
import threading
import time

from ._errors import UsageError

THREAD_VARIABLES = ("NUMBA_NUM_THREADS", "SLURM_CPUS_PER_TASK", "OMP_NUM_THREADS")


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
        # Timings are also added from the input's background reader thread (read time).
        self._timings_lock = threading.Lock()
        self.outputs = {}
        self.warnings = []
        self.report = {}
        # Bars per pass over the input (fastgmm.cli._progress.PassBars), set when the input is
        # opened: drawn only on a terminal, so this module stays free of tqdm.
        self.progress = None
        # Closed when the command ends: the listeners a command subscribed for its whole run.
        self.cleanup = contextlib.ExitStack()

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
            return io.StringIO()
        return self.stderr

    def log(self, message):
        if not self.quiet:
            print(f"fastgmm {self.args.command}: {message}", file=self.stderr, flush=True)

    def warn(self, message):
        self.warnings.append(message)
        print(f"fastgmm {self.args.command}: warning: {message}", file=self.stderr, flush=True)

    def timed(self, name):
        """A context manager adding the time its block takes to the timing ``name``."""
        return _Timer(self, name)

    def add_time(self, name, seconds):
        """Add ``seconds`` to the timing ``name`` (from any thread)."""
        with self._timings_lock:
            self.timings[name] = self.timings.get(name, 0.0) + seconds

    def payload(self, status, exit_code, error=None):
        """The JSON report: status, versions, threads, timings, outputs and the command's own."""
        from importlib import metadata  # 40 ms to import (measured): not at start-up

        versions = {"python": sys.version.split()[0]}
        for dist in ("fastgmm", "numpy", "scipy", "scikit-learn", "numba"):
            try:
                versions[dist] = metadata.version(dist)
            except metadata.PackageNotFoundError:
                versions[dist] = None
        with self._timings_lock:
            self.timings["total"] = time.perf_counter() - self.started
            timings = {k: round(v, 6) for k, v in self.timings.items()}
        out = {
            "command": self.args.command,
            "status": status,
            "exit_code": exit_code,
            "versions": versions,
            "threads": self.n_threads,
            "threads_source": self.threads_source,
            "timings": timings,
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
        self.job.add_time(self.name, time.perf_counter() - self.start)
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


def setup_threads(job, args):
    """Settle the job's thread count, and size Numba's pool to it if Numba is not loaded yet."""
    n_threads, source = resolve_threads(getattr(args, "threads", None))
    # Numba sizes its pool from NUMBA_NUM_THREADS when it is first imported, which happens
    # below this point: sizing it to the job avoids spinning up threads that would only
    # compete with the job's neighbours on a shared node. --threads overrides the variable.
    if "numba" not in sys.modules and (
        source == "--threads" or "NUMBA_NUM_THREADS" not in os.environ
    ):
        os.environ["NUMBA_NUM_THREADS"] = str(n_threads)
    job.n_threads, job.threads_source = n_threads, source
