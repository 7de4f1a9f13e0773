"""``fastgmm demo``: the whole workflow on generated 2-D data (see :mod:`fastgmm.demo`)."""

from __future__ import annotations

import os

from . import _timing
from ._errors import EXIT_OK
from ._shared import captured_warnings, check_outputs, import_estimators


def cmd_demo(job):
    """``fastgmm demo``: run :func:`fastgmm.demo.run_demo` on the job's threads."""
    from ..demo import run_demo

    if job.threads_source != "--threads":
        # 612 rows: waking threads costs more than it saves, and much more on a busy node
        # (measured: 2 threads 46 s, 1 thread 3.5 s for the whole demo with 12 runnable
        # processes on 2 cores). An explicit --threads is still honoured.
        job.n_threads, job.threads_source = 1, "demo default (use --threads to change)"
    import_estimators(job)
    plot = None if job.args.no_plot else job.args.plot
    if plot is not None:
        check_outputs(job, plot=plot)
    with _timing.KernelClock(job), captured_warnings(job), job.timed("demo"):
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
