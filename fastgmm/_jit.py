"""The one home of fastgmm's Numba settings.

Every kernel is compiled through :func:`kernel`, so the flags that decide speed, caching and
numerical behaviour live here and nowhere else.

Why these choices:

* ``cache=True`` everywhere: batch jobs start many short processes, and each would otherwise pay
  several seconds of compilation. Kernels therefore must not read Numba globals such as
  ``numba.get_num_threads()`` (a "dynamic global" makes Numba refuse to cache); the thread count is
  applied from Python by :func:`thread_limit` around each call.
* ``fastmath`` keeps every flag except ``nnan``/``ninf``: re-association lets LLVM vectorise the
  reductions over rows, while NaN/inf semantics stay intact so that bad input is detected instead of
  being optimised away.
* Callers inside Dask tasks or thread pools pass ``n_threads=1`` so that a parallel region does
  not oversubscribe the worker.
"""

from __future__ import annotations

import functools
import os
import threading
from contextlib import contextmanager, nullcontext

import numba
from numba.core.cpu_options import ParallelOptions

FASTMATH = {"nsz", "arcp", "contract", "afn", "reassoc"}
# For code whose accuracy depends on the order of its operations (a Cody-Waite range reduction):
# re-association would fold the two-part constant back into one and cost two digits.
FASTMATH_ORDERED = FASTMATH - {"reassoc"}
# Only explicit ``prange`` loops run in parallel. With plain ``parallel=True`` Numba also turns
# every whole-array expression (``np.zeros``, ``a += b`` in the slot reduction...) into a
# parallel region of its own, each of which wakes and joins the thread pool: the 63 ``+=`` of a
# 64-slot reduction cost 3 ms per call with sleeping (OMP_WAIT_POLICY=PASSIVE) OpenMP threads,
# three times the work of a 1e5-row, K=3 E-step.
# An options object, not a dict: Numba pops the keys out of a dict it is given, so a dict shared
# by several kernels configured only the first one compiled and left the others at the defaults.
_PARALLEL = ParallelOptions(
    {
        "prange": True,
        "comprehension": False,
        "reduction": False,
        "inplace_binop": False,
        "setitem": False,
        "numpy": False,
        "stencil": False,
        "fusion": False,
    }
)
# error_model="numpy": a division by zero gives inf/nan as in NumPy instead of raising inside a
# parallel region (which surfaces as an opaque SystemError); the EM loop then reports the
# non-finite log-likelihood with a clear ValueError. It also drops the zero checks from loops.
_OPTIONS = {"cache": True, "nogil": True, "error_model": "numpy"}


class Kernel:
    """A parallel Numba kernel and the policy for calling it.

    Parameters
    ----------
    func : callable
        Plain Python function written with ``numba.prange`` for its parallel loop.

    Notes
    -----
    One compiled flavour serves every caller, one thread or many, the main thread or a worker's.
    A serial twin (``parallel=False``) was tried for Dask tasks and thread pools: LLVM vectorises
    it differently and its sums differed from the parallel flavour in the last bits (measured
    4.5e-13 on values of ~1e4), so results would have depended on the calling thread. With one
    Numba thread the parallel flavour does the same work without oversubscription.
    """

    def __init__(self, func):
        self.py_func = func
        self.dispatcher = numba.njit(parallel=_PARALLEL, **_OPTIONS, fastmath=FASTMATH)(func)
        self.__doc__ = func.__doc__
        self.__name__ = func.__name__

    def __call__(self, *args, n_threads=None):
        """Run the kernel with ``n_threads`` Numba threads and single-threaded BLAS."""
        with single_threaded_blas(), _parallel_region_guard(), thread_limit(n_threads):
            return self.dispatcher(*args)


# Every kernel made by kernel(), by its function's name (unique across _kernels): what
# `fastgmm warmup` lists and the command line counts as loaded or compiled, through Numba's
# public dispatcher API (stats, signatures) rather than this module's classes.
_REGISTRY: dict[str, numba.core.dispatcher.Dispatcher] = {}


def kernel(func):
    """Decorate a parallel driver: returns a :class:`Kernel`, registered by its name."""
    compiled = Kernel(func)
    _REGISTRY[func.__name__] = compiled.dispatcher
    return compiled


def registered_kernels() -> dict[str, numba.core.dispatcher.Dispatcher]:
    """The Numba dispatcher of every kernel defined so far, by name.

    Kernels register when their module is imported (the kernel modules are imported by the
    code that first calls them).

    Examples
    --------
    >>> from fastgmm import _jit
    >>> from fastgmm._kernels import shared
    >>> dispatcher = _jit.registered_kernels()["shared_statistics"]
    >>> dispatcher is shared.shared_statistics.dispatcher
    True
    """
    return dict(_REGISTRY)


def inline(func=None, *, ordered=False):
    """Compile a serial helper that the drivers call once per block.

    ``ordered=True`` keeps floating-point operations in source order (no re-association).
    """
    flags = FASTMATH_ORDERED if ordered else FASTMATH
    if func is None:
        return lambda f: numba.njit(**_OPTIONS, fastmath=flags)(f)
    return numba.njit(**_OPTIONS, fastmath=flags)(func)


def default_n_threads() -> int:
    """Threads fastgmm uses when the caller does not say.

    ``NUMBA_NUM_THREADS`` wins when it is set (Numba reads it at start-up); otherwise the CPUs
    this process may run on (its affinity mask, which schedulers such as SLURM narrow), capped by
    the size of Numba's pool.
    """
    try:
        available = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS and Windows have no affinity API
        available = os.cpu_count() or 1
    return max(1, min(available, numba.config.NUMBA_NUM_THREADS))


def resolve_n_threads(n_jobs) -> int:
    """Translate an sklearn-style ``n_jobs`` into a thread count.

    ``None`` means :func:`default_n_threads`, a positive integer is taken as is (capped by Numba's
    pool), and negative values count back from the available CPUs as in joblib (``-1`` = all).
    """
    limit = default_n_threads()
    if n_jobs is None:
        return limit
    n_jobs = int(n_jobs)
    if n_jobs == 0:
        raise ValueError("n_jobs == 0 has no meaning; use None, a positive count or -1.")
    if n_jobs < 0:
        return max(1, limit + 1 + n_jobs)
    return max(1, min(n_jobs, numba.config.NUMBA_NUM_THREADS))


@contextmanager
def thread_limit(n_threads):
    """Run a block with ``n_threads`` Numba threads and restore the caller's count afterwards.

    Numba's thread count is per calling thread, so concurrent fits with different counts do not
    interfere. The ``finally`` matters: an exception must not leave the user's setting changed.
    """
    if n_threads is None:
        yield
        return
    previous = numba.get_num_threads()
    wanted = max(1, min(int(n_threads), numba.config.NUMBA_NUM_THREADS))
    if wanted == previous:  # two calls into Numba saved per kernel call (small fits)
        yield
        return
    numba.set_num_threads(wanted)
    try:
        yield
    finally:
        numba.set_num_threads(previous)


class _SingleThreadedBlas:
    """Keep BLAS at one thread while any kernel runs (re-entrant and thread-safe).

    Kernels call BLAS (through ``np.dot``) from inside their own parallel loop; if BLAS also
    started its threads, each Numba thread would spawn more and the machine would thrash (measured:
    20x slower). The limit is process-wide in BLAS, so concurrent kernels share one limit and the
    last one out restores the user's setting.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._depth = 0
        self._limit = None
        self._controller = None

    def __enter__(self):
        with self._lock:
            if self._depth == 0:
                if self._controller is None:
                    from threadpoolctl import ThreadpoolController

                    self._controller = ThreadpoolController()
                self._limit = self._controller.limit(limits=1, user_api="blas")
            self._depth += 1
        return self

    def __exit__(self, *exc):
        with self._lock:
            self._depth -= 1
            if self._depth == 0:
                self._limit.restore_original_limits()
                self._limit = None
        return False


_BLAS_GUARD = _SingleThreadedBlas()


def single_threaded_blas():
    """Context manager: BLAS runs single-threaded inside (see :class:`_SingleThreadedBlas`)."""
    return _BLAS_GUARD


def holds_single_threaded_blas(func):
    """Decorate a fit: BLAS stays at one thread from its start to its end, not only in kernels.

    The Python code between kernels (the M-step, k-means++ seeding) makes small BLAS calls. With
    BLAS at its default thread count each call wakes OpenBLAS's threads, which then spin for a
    while waiting for more work and take the cores from the next kernel: measured on
    N=1e6, D=8, K=16, the k-means initialisation took 0.16 s instead of 0.094 s and an EM
    iteration 0.056 s instead of 0.047 s. Those small calls lose nothing on one thread.
    """

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        with _BLAS_GUARD:
            return func(*args, **kwargs)

    return wrapper


_MAIN_THREAD = threading.main_thread()
_WORKQUEUE_LOCK = threading.Lock()


def _parallel_region_guard():
    """A lock around kernels run off the main thread when Numba uses its ``workqueue`` layer.

    That layer (used when neither OpenMP nor TBB is available) aborts the process when two
    threads enter parallel regions at once. OpenMP and TBB are thread-safe and need no lock.
    """
    if threading.current_thread() is not _MAIN_THREAD and _threading_layer() == "workqueue":
        return _WORKQUEUE_LOCK
    return nullcontext()


def _threading_layer() -> str:
    try:
        return numba.threading_layer()
    except ValueError:
        # No parallel region has run yet: the layer Numba will pick is the first available of
        # its configured preference; "workqueue" is the only unsafe one.
        layer = numba.config.THREADING_LAYER
        if layer in ("workqueue",):
            return layer
        if layer in ("default", "threadsafe", "safe", "forksafe"):
            return "workqueue" if not _has_safe_layer() else layer
        return layer


def _has_safe_layer() -> bool:
    try:
        from numba.np.ufunc import omppool  # noqa: F401
    except ImportError:
        try:
            from numba.np.ufunc import tbbpool  # noqa: F401
        except ImportError:
            return False
    return True
