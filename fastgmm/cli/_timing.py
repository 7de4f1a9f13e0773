"""What a command measures while the library works: the library's events, and Numba's.

Nothing here wraps or replaces a library function. The library emits named events
(:mod:`fastgmm._events`: a source's chunk read, the start and end of an initialisation, each EM
iteration), and Numba its own (``numba:compiler_lock``); the listeners below turn them into the
job's timings, kernel counts and progress-bar names for as long as their block runs.
"""

from __future__ import annotations

import contextlib
import time

from .. import _events


@contextlib.contextmanager
def reads(job, sources):
    """Count the time ``sources`` spend producing chunks as the job's ``read`` time.

    With prefetching the chunks are read in a background thread, so this is the time spent
    reading (and validating) the data, which overlaps the computation, rather than the time
    the computation waited for it. Only ``sources`` count: a converted copy of the input
    (``--dtype``) reads through the input, and would count its reads twice.
    """

    def on_chunk(source, n_rows, seconds):
        if any(source is watched for watched in sources):
            job.add_time("read", seconds)

    with _events.listen("source.chunk", on_chunk):
        yield


@contextlib.contextmanager
def fit_phases(job, estimator):
    """Time ``estimator``'s initialisations as ``init``, and name the bars of its passes.

    The passes of an initialisation draw ``init pass 1``, ``init pass 2``...; the pass of EM
    iteration n draws ``EM pass n``, the number of the estimator's verbose line for it.
    """

    def on_init_start(**event):
        if event["estimator"] is estimator:
            job.progress.phase("init")

    def on_init_end(**event):
        if event["estimator"] is estimator:
            job.add_time("init", event["seconds"])
            job.progress.phase("EM pass 1", numbered=False)

    def on_iteration(**event):
        if event["estimator"] is estimator:
            job.progress.phase(f"EM pass {event['n_iter'] + 1}", numbered=False)

    with contextlib.ExitStack() as stack:
        stack.enter_context(_events.listen("init.start", on_init_start))
        stack.enter_context(_events.listen("init.end", on_init_end))
        stack.enter_context(_events.listen("em.iteration", on_iteration))
        yield


class KernelClock:
    """Time spent loading or compiling kernels, and how many signatures were each.

    Numba holds its global compiler lock while it loads a kernel from the cache or compiles
    it; a listener on that lock's events (outermost acquisition only: the lock is re-entrant)
    measures both without touching the kernels. The counts are the change of the cache hits
    and misses of every kernel's dispatcher (:func:`fastgmm._jit.registered_kernels`).
    """

    def __init__(self, job):
        self.job = job
        self.depth = 0
        self.start = 0.0
        self.total = 0.0

    def __enter__(self):
        from numba.core import event

        clock = self

        class _Listener(event.Listener):
            def on_start(self, ev):
                if clock.depth == 0:
                    clock.start = time.perf_counter()
                clock.depth += 1

            def on_end(self, ev):
                clock.depth -= 1
                if clock.depth == 0:
                    clock.total += time.perf_counter() - clock.start

        self.listener = _Listener()
        event.register("numba:compiler_lock", self.listener)
        self.before = self._counts()
        return self

    def __exit__(self, *exc):
        from numba.core import event

        event.unregister("numba:compiler_lock", self.listener)
        loaded, compiled = (a - b for a, b in zip(self._counts(), self.before))
        self.job.add_time("compile", self.total)
        kernels = self.job.report.setdefault("kernels", {"loaded": 0, "compiled": 0})
        kernels["loaded"] += loaded
        kernels["compiled"] += compiled
        return False

    @staticmethod
    def _counts():
        from .._jit import registered_kernels

        loaded = compiled = 0
        for dispatcher in registered_kernels().values():
            stats = dispatcher.stats
            loaded += sum(stats.cache_hits.values())
            compiled += sum(stats.cache_misses.values())
        return loaded, compiled
