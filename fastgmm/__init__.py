"""fastgmm: Gaussian mixture models for large data.

A scikit-learn compatible ``GaussianMixture`` whose EM runs in fused, parallel Numba kernels,
plus out-of-core sources, model selection, outlier detection, safe model files and a CLI.

Public names are imported on first use (PEP 562), so that ``import fastgmm`` and the command
line's ``--help`` do not pay for scikit-learn and Numba until they are needed.
"""

import os
from importlib import import_module

# OpenMP threads that wait for work by spinning take whole time slices from the threads doing the
# work whenever the machine has more runnable threads than cores (a shared node, Dask workers,
# several jobs per node): fits were measured 30x slower there (70x for two small fits with a
# spin count of 30000). Sleeping waiters cost tens of microseconds per kernel call instead, as
# each kernel call is one parallel region (see fastgmm._jit). Set before Numba loads its OpenMP
# runtime; a value the user set wins, and it has no effect if OpenMP was already loaded by another
# library.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"

_PUBLIC = {
    "GaussianMixture": "fastgmm.mixture",
    "BayesianGaussianMixture": "fastgmm.bayesian_mixture",
    "open_source": "fastgmm.sources",
    "select_model": "fastgmm.selection",
    "GaussianMixtureIC": "fastgmm.selection",
    "GaussianMixtureOutlierDetector": "fastgmm.outliers",
    "save": "fastgmm.persistence",
    "load": "fastgmm.persistence",
}

__all__ = ["__version__", *_PUBLIC]


def __getattr__(name):
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'fastgmm' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(__all__)
