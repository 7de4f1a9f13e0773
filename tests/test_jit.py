"""Kernel compilation policy: only explicit ``prange`` loops may become parallel regions.

With plain ``parallel=True`` Numba turns every whole-array expression of a kernel (the slot
reductions' ``a += b``, ``np.zeros``) into a parallel region of its own; each one wakes and joins
the thread pool, which cost 3 ms per call with sleeping OpenMP threads. And a dict of options is
consumed by the first compilation that reads it, so it must not be shared between kernels.
"""

from numba.core.cpu_options import ParallelOptions

from fastgmm._jit import registered_kernels
from fastgmm._kernels import factor, feature_map, kmeans, shared  # noqa: F401 (they register)

ONLY_PRANGE = {
    "enabled": True,
    "prange": True,
    "comprehension": False,
    "reduction": False,
    "inplace_binop": False,
    "setitem": False,
    "numpy": False,
    "stencil": False,
    "fusion": False,
}


def test_every_kernel_parallelises_only_its_prange_loop():
    kernels = registered_kernels()
    assert {"factor_statistics", "shared_statistics", "feature_statistics", "lloyd_step"} <= set(
        kernels
    )
    for name, dispatcher in kernels.items():
        options = dispatcher.targetoptions["parallel"]
        # A ParallelOptions object is copied, never consumed, by each compilation.
        assert isinstance(options, ParallelOptions), name
        assert {key: getattr(options, key) for key in ONLY_PRANGE} == ONLY_PRANGE, name
